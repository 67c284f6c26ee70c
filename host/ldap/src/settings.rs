//! The LDAP target's settings: what an operator configures, the defaults
//! that depend on the directory's flavour, parsed once into typed values so
//! the rest of the crate never compares setting strings.

use std::fmt;
use std::str::FromStr;

use rostersync_model::{SettingKind, SettingSpec, Settings, SyncError};

/// Setting names, as an operator writes them under `[[targets]]`.
pub mod name {
    pub const URL: &str = "url";
    pub const BIND_DN: &str = "bind-dn";
    pub const BIND_PASSWORD: &str = "bind-password";
    pub const BASE_DN: &str = "base-dn";
    pub const FLAVOUR: &str = "flavour";
    pub const EXTERNAL_ID_ATTRIBUTE: &str = "external-id-attribute";
    pub const GROUP_EXTERNAL_ID_ATTRIBUTE: &str = "group-external-id-attribute";
    pub const USER_OBJECT_CLASSES: &str = "user-object-classes";
    pub const DISABLE_METHOD: &str = "disable-method";
    pub const DISABLE_ATTRIBUTE: &str = "disable-attribute";
    pub const DISABLE_VALUE: &str = "disable-value";
    pub const UPN_SUFFIX: &str = "upn-suffix";
    pub const PAGE_SIZE: &str = "page-size";
    pub const TIMEOUT_SECONDS: &str = "timeout-seconds";
}

/// Which directory server the target speaks to: the schema and the way
/// accounts are disabled differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// OpenLDAP (or any server with the standard `inetOrgPerson` schema).
    OpenLdap,
    /// Microsoft Active Directory.
    ActiveDirectory,
}

impl FromStr for Flavour {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value {
            "openldap" => Ok(Self::OpenLdap),
            "active-directory" => Ok(Self::ActiveDirectory),
            _ => Err(()),
        }
    }
}

/// How a suspended account is marked disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisableMethod {
    /// Active Directory: the ACCOUNTDISABLE bit (0x2) of
    /// `userAccountControl` (514 disabled, 512 a normal enabled account).
    UserAccountControl,
    /// OpenLDAP with the ppolicy overlay: `pwdAccountLockedTime` set to
    /// `000001010000Z`, which locks the account until an administrator
    /// removes it.
    PpolicyLock,
    /// Any server: this value is added to this attribute while suspended,
    /// for the services that authenticate against the directory to filter on.
    Attribute { name: String, value: String },
}

/// The value slapo-ppolicy(5) reads as "locked by an administrator".
pub const PPOLICY_PERMANENT_LOCK: &str = "000001010000Z";

/// The LDAP target's settings, parsed.
#[derive(Clone)]
pub struct LdapSettings {
    pub url: String,
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    pub flavour: Flavour,
    pub external_id_attribute: String,
    pub group_external_id_attribute: String,
    pub user_object_classes: Vec<String>,
    pub disable: DisableMethod,
    /// Active Directory's `userPrincipalName` is `<username>@<suffix>`.
    pub upn_suffix: String,
    pub page_size: i32,
    /// How long the target waits for the server to accept a connection or
    /// answer one operation before giving up on it.
    pub timeout: std::time::Duration,
}

impl fmt::Debug for LdapSettings {
    /// Everything but the bind password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("base_dn", &self.base_dn)
            .field("flavour", &self.flavour)
            .field("external_id_attribute", &self.external_id_attribute)
            .field("disable", &self.disable)
            .finish_non_exhaustive()
    }
}

fn spec(
    name: &str,
    description: &str,
    kind: SettingKind,
    required: bool,
    default: Option<&str>,
) -> SettingSpec {
    SettingSpec {
        name: name.into(),
        description: description.into(),
        kind,
        required,
        default_value: default.map(Into::into),
    }
}

/// What the target needs, with the defaults that hold for every flavour.
pub fn specs() -> Vec<SettingSpec> {
    use SettingKind::{Secret, Text};
    vec![
        spec(
            name::URL,
            "The directory's address, ldap://host:389 or ldaps://host:636.",
            Text,
            true,
            None,
        ),
        spec(
            name::BIND_DN,
            "The DN the target binds as, allowed to write under the base DN.",
            Text,
            true,
            None,
        ),
        spec(
            name::BIND_PASSWORD,
            "The bind DN's password.",
            Secret,
            true,
            None,
        ),
        spec(
            name::BASE_DN,
            "Where accounts and groups live; containers are relative to it.",
            Text,
            true,
            None,
        ),
        spec(
            name::FLAVOUR,
            "`openldap` or `active-directory`.",
            Text,
            false,
            Some("openldap"),
        ),
        spec(
            name::EXTERNAL_ID_ATTRIBUTE,
            "Where an account keeps rostersync's id: `employeeNumber` on OpenLDAP, `employeeID` on Active Directory unless set.",
            Text,
            false,
            None,
        ),
        spec(
            name::GROUP_EXTERNAL_ID_ATTRIBUTE,
            "Where a group keeps rostersync's id: `businessCategory` on OpenLDAP, `adminDescription` on Active Directory unless set.",
            Text,
            false,
            None,
        ),
        spec(
            name::USER_OBJECT_CLASSES,
            "Comma-separated object classes of a new account: `inetOrgPerson` on OpenLDAP, `top,person,organizationalPerson,user` on Active Directory unless set.",
            Text,
            false,
            None,
        ),
        spec(
            name::DISABLE_METHOD,
            "How a suspended account is disabled: `attribute` (OpenLDAP's default), `ppolicy` (OpenLDAP with the ppolicy overlay) or `user-account-control` (Active Directory's default).",
            Text,
            false,
            None,
        ),
        spec(
            name::DISABLE_ATTRIBUTE,
            "With the `attribute` method, the attribute marking a suspended account.",
            Text,
            false,
            Some("employeeType"),
        ),
        spec(
            name::DISABLE_VALUE,
            "With the `attribute` method, the value marking a suspended account.",
            Text,
            false,
            Some("suspended"),
        ),
        spec(
            name::UPN_SUFFIX,
            "Active Directory: the userPrincipalName suffix; the base DN's dc parts joined by dots unless set.",
            Text,
            false,
            None,
        ),
        spec(
            name::PAGE_SIZE,
            "Entries per page when reading the directory back.",
            Text,
            false,
            Some("500"),
        ),
        spec(
            name::TIMEOUT_SECONDS,
            "Seconds to wait for the server to accept a connection or answer one operation; one that stops answering is given up on and the delivery tried again later.",
            Text,
            false,
            Some("30"),
        ),
    ]
}

fn bad(setting: &str, why: &str) -> SyncError {
    SyncError::BadSettings(format!("the LDAP target's `{setting}` setting {why}"))
}

impl LdapSettings {
    /// Whether the connection is encrypted (`ldaps://`).
    pub fn encrypted(&self) -> bool {
        self.url.starts_with("ldaps://")
    }

    /// Parses a target's configured settings, filling the defaults.
    pub fn parse(settings: &Settings) -> Result<Self, SyncError> {
        let resolved = settings
            .resolved_by(&specs())
            .map_err(|missing| bad(&missing, "is required"))?;
        let get = |setting: &str| {
            resolved
                .get(setting)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let required = |setting: &str| {
            get(setting)
                .map(str::to_string)
                .ok_or_else(|| bad(setting, "is empty"))
        };

        let url = required(name::URL)?;
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return Err(bad(name::URL, "must start with ldap:// or ldaps://"));
        }
        let flavour: Flavour = required(name::FLAVOUR)?
            .parse()
            .map_err(|()| bad(name::FLAVOUR, "must be `openldap` or `active-directory`"))?;
        let ad = flavour == Flavour::ActiveDirectory;
        let or = |setting: &str, openldap: &str, active_directory: &str| {
            get(setting)
                .unwrap_or(if ad { active_directory } else { openldap })
                .to_string()
        };
        let base_dn = required(name::BASE_DN)?;

        let disable = match get(name::DISABLE_METHOD).unwrap_or(if ad {
            "user-account-control"
        } else {
            "attribute"
        }) {
            "user-account-control" => DisableMethod::UserAccountControl,
            "ppolicy" => DisableMethod::PpolicyLock,
            "attribute" => DisableMethod::Attribute {
                name: required(name::DISABLE_ATTRIBUTE)?,
                value: required(name::DISABLE_VALUE)?,
            },
            _ => {
                return Err(bad(
                    name::DISABLE_METHOD,
                    "must be `attribute`, `ppolicy` or `user-account-control`",
                ));
            }
        };
        let positive = |setting: &str| -> Result<u32, SyncError> {
            required(setting)?
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=i32::MAX as u32).contains(n))
                .ok_or_else(|| bad(setting, "must be a positive number"))
        };
        let page_size = positive(name::PAGE_SIZE)? as i32;
        let timeout = std::time::Duration::from_secs(positive(name::TIMEOUT_SECONDS)?.into());
        let upn_suffix = get(name::UPN_SUFFIX)
            .map(str::to_string)
            .unwrap_or_else(|| domain_of(&base_dn));

        Ok(Self {
            url,
            bind_dn: required(name::BIND_DN)?,
            // Not trimmed: spaces may be part of a password.
            bind_password: resolved
                .get(name::BIND_PASSWORD)
                .filter(|password| !password.is_empty())
                .ok_or_else(|| bad(name::BIND_PASSWORD, "is empty"))?
                .to_string(),
            base_dn,
            flavour,
            external_id_attribute: or(name::EXTERNAL_ID_ATTRIBUTE, "employeeNumber", "employeeID"),
            group_external_id_attribute: or(
                name::GROUP_EXTERNAL_ID_ATTRIBUTE,
                "businessCategory",
                "adminDescription",
            ),
            user_object_classes: or(
                name::USER_OBJECT_CLASSES,
                "inetOrgPerson",
                "top,person,organizationalPerson,user",
            )
            .split(',')
            .map(|class| class.trim().to_string())
            .filter(|class| !class.is_empty())
            .collect(),
            disable,
            upn_suffix,
            page_size,
            timeout,
        })
    }
}

/// `dc=school,dc=test` → `school.test`.
fn domain_of(base_dn: &str) -> String {
    base_dn
        .split(',')
        .filter_map(|rdn| {
            let (attr, value) = rdn.split_once('=')?;
            attr.trim()
                .eq_ignore_ascii_case("dc")
                .then(|| value.trim().to_string())
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings::new()
            .with(name::URL, "ldap://127.0.0.1:389")
            .with(name::BIND_DN, "cn=admin,dc=school,dc=test")
            .with(name::BIND_PASSWORD, "hunter2")
            .with(name::BASE_DN, "dc=school,dc=test")
    }

    #[test]
    fn openldap_defaults() {
        let parsed = LdapSettings::parse(&base()).unwrap();
        assert_eq!(parsed.flavour, Flavour::OpenLdap);
        assert_eq!(parsed.external_id_attribute, "employeeNumber");
        assert_eq!(parsed.group_external_id_attribute, "businessCategory");
        assert_eq!(parsed.user_object_classes, ["inetOrgPerson"]);
        assert_eq!(
            parsed.disable,
            DisableMethod::Attribute {
                name: "employeeType".into(),
                value: "suspended".into()
            }
        );
        assert_eq!(parsed.page_size, 500);
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }

    #[test]
    fn active_directory_defaults() {
        let parsed = LdapSettings::parse(&base().with(name::FLAVOUR, "active-directory")).unwrap();
        assert_eq!(parsed.external_id_attribute, "employeeID");
        assert_eq!(parsed.disable, DisableMethod::UserAccountControl);
        assert_eq!(parsed.upn_suffix, "school.test");
        assert_eq!(
            parsed.user_object_classes,
            ["top", "person", "organizationalPerson", "user"]
        );
    }

    #[test]
    fn errors_name_the_setting_and_never_the_password() {
        let missing = Settings::new().with(name::URL, "ldap://x");
        let err = LdapSettings::parse(&missing).unwrap_err().to_string();
        assert!(err.contains("`bind-dn`"), "{err}");

        let http = base().with(name::URL, "http://x");
        let err = LdapSettings::parse(&http).unwrap_err().to_string();
        assert!(err.contains("`url`") && !err.contains("hunter2"), "{err}");

        let method = base().with(name::DISABLE_METHOD, "magic");
        let err = LdapSettings::parse(&method).unwrap_err().to_string();
        assert!(err.contains("`disable-method`"), "{err}");
    }
}
