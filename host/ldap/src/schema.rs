//! What the directory's entries look like for each flavour: a user's and a
//! group's DN and attributes, how a suspension is written, and how a held
//! entry reads back. Pure functions, so both flavours are tested without a
//! server.

use std::collections::HashMap;

use rostersync_model::target::{HeldGroup, HeldUser, TargetGroup, TargetUser};

use crate::dn;
use crate::settings::{DisableMethod, Flavour, LdapSettings, PPOLICY_PERMANENT_LOCK};

/// `userAccountControl`'s ACCOUNTDISABLE bit ([MS-ADTS] §2.2.16).
const ACCOUNT_DISABLE: u32 = 0x2;
/// NORMAL_ACCOUNT: 512, and 514 with ACCOUNTDISABLE.
const NORMAL_ACCOUNT: u32 = 0x200;

pub const USER_ACCOUNT_CONTROL: &str = "userAccountControl";
/// Active Directory's write-only password attribute ([MS-ADTS]
/// §3.1.1.3.1.5.1).
pub const UNICODE_PWD: &str = "unicodePwd";

/// A password as `unicodePwd` takes it: in double quotes, UTF-16LE.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}
pub const PWD_ACCOUNT_LOCKED_TIME: &str = "pwdAccountLockedTime";

/// Attribute values by name, as an entry holds them.
pub type Values = HashMap<String, Vec<String>>;

/// One change to one attribute of an entry, before it becomes an LDAP
/// modify operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Add(String, Vec<String>),
    Delete(String, Vec<String>),
    /// Replace every value; no values removes the attribute (RFC 4511 §4.6).
    Replace(String, Vec<String>),
}

impl Flavour {
    /// The attribute holding the login.
    pub fn login_attribute(self) -> &'static str {
        match self {
            Self::OpenLdap => "uid",
            Self::ActiveDirectory => "sAMAccountName",
        }
    }

    pub fn group_class(self) -> &'static str {
        match self {
            Self::OpenLdap => "groupOfNames",
            Self::ActiveDirectory => "group",
        }
    }

    /// Groups have an `owner` attribute (RFC 4519 §2.23); Active Directory's
    /// `managedBy` holds one DN only, so owners stay among the members there.
    pub fn has_group_owners(self) -> bool {
        self == Self::OpenLdap
    }

    /// `groupOfNames` must hold at least one `member` (RFC 4519 §3.5);
    /// Active Directory's `group` may be empty.
    pub fn needs_a_member(self) -> bool {
        self == Self::OpenLdap
    }
}

impl LdapSettings {
    /// Where this user's entry belongs, the DN to use first:
    /// `uid=<username>,<container>,<base>` on OpenLDAP,
    /// `CN=<display name>,<container>,<base>` on Active Directory. There a
    /// common name need not be unique (two pupils called Ava
    /// Smith in one year), so the second is `CN=<display name>
    /// (<username>)`, unique as the login is. On OpenLDAP the RDN is the
    /// login itself, so there is one.
    pub fn user_dns(&self, user: &TargetUser) -> Vec<String> {
        let container = dn::under(user.container.as_deref(), &self.base_dn);
        let rdns = match self.flavour {
            Flavour::OpenLdap => vec![dn::rdn("uid", &user.username)],
            Flavour::ActiveDirectory => vec![
                dn::rdn("CN", &user.display_name),
                dn::rdn("CN", &format!("{} ({})", user.display_name, user.username)),
            ],
        };
        rdns.into_iter()
            .map(|rdn| format!("{rdn},{container}"))
            .collect()
    }

    pub fn group_dn(&self, group: &TargetGroup) -> String {
        let rdn = dn::rdn("cn", &group.name);
        format!(
            "{rdn},{}",
            dn::under(group.container.as_deref(), &self.base_dn)
        )
    }

    /// The filter matching every account the target manages.
    pub fn user_filter(&self) -> String {
        let classes: String = self
            .user_object_classes
            .iter()
            .map(|class| format!("(objectClass={})", ldap3::ldap_escape(class)))
            .collect();
        format!("(&{classes})")
    }

    pub fn group_filter(&self) -> String {
        format!("(objectClass={})", self.flavour.group_class())
    }

    /// The value standing in for the members of an empty `groupOfNames`:
    /// the base DN, which is no account, so it grants nothing to anyone.
    pub fn placeholder_member(&self) -> Option<&str> {
        self.flavour
            .needs_a_member()
            .then_some(self.base_dn.as_str())
    }

    /// The user's attributes the target keeps up to date, each with its
    /// values (none when the roster has none, which removes it on update).
    /// The naming attribute of an Active Directory entry (`cn`) is left out:
    /// it changes only by a rename.
    pub fn user_values(&self, user: &TargetUser) -> Vec<(String, Vec<String>)> {
        let one = |value: &str| vec![value.to_string()];
        let maybe = |value: &Option<String>| value.iter().cloned().collect::<Vec<_>>();
        let mut values = vec![
            (
                "sn".to_string(),
                one(user.family_name.as_deref().unwrap_or(&user.display_name)),
            ),
            ("givenName".into(), maybe(&user.given_name)),
            ("displayName".into(), one(&user.display_name)),
            ("mail".into(), maybe(&user.email)),
            (self.flavour.login_attribute().into(), one(&user.username)),
            (self.external_id_attribute.clone(), one(&user.external_id)),
        ];
        match self.flavour {
            Flavour::OpenLdap => values.push(("cn".into(), one(&user.display_name))),
            Flavour::ActiveDirectory => values.push((
                "userPrincipalName".into(),
                one(&format!("{}@{}", user.username, self.upn_suffix)),
            )),
        }
        values
    }

    /// A new user's entry: object classes, the kept attributes and its
    /// enabled or disabled state. Never a password: that is set after the
    /// add, so the server hashes it.
    pub fn new_user(&self, user: &TargetUser) -> Vec<(String, Vec<String>)> {
        let mut attrs = vec![("objectClass".to_string(), self.user_object_classes.clone())];
        if self.flavour == Flavour::ActiveDirectory {
            attrs.push(("cn".into(), vec![user.display_name.clone()]));
        }
        attrs.extend(
            self.user_values(user)
                .into_iter()
                .filter(|(_, values)| !values.is_empty()),
        );
        match &self.disable {
            DisableMethod::UserAccountControl => attrs.push((
                USER_ACCOUNT_CONTROL.into(),
                vec![account_control(None, user.active).to_string()],
            )),
            _ if user.active => {}
            DisableMethod::PpolicyLock => attrs.push((
                PWD_ACCOUNT_LOCKED_TIME.into(),
                vec![PPOLICY_PERMANENT_LOCK.into()],
            )),
            DisableMethod::Attribute { name, value } => {
                attrs.push((name.clone(), vec![value.clone()]))
            }
        }
        attrs
    }

    /// The edit that enables or disables an account holding `held` (its
    /// `userAccountControl`, when that is the method).
    pub fn activation(&self, held: &Values, active: bool) -> Edit {
        match &self.disable {
            DisableMethod::UserAccountControl => {
                let current = first(held, USER_ACCOUNT_CONTROL).and_then(|v| v.parse().ok());
                Edit::Replace(
                    USER_ACCOUNT_CONTROL.into(),
                    vec![account_control(current, active).to_string()],
                )
            }
            DisableMethod::PpolicyLock if active => {
                Edit::Delete(PWD_ACCOUNT_LOCKED_TIME.into(), Vec::new())
            }
            DisableMethod::PpolicyLock => Edit::Replace(
                PWD_ACCOUNT_LOCKED_TIME.into(),
                vec![PPOLICY_PERMANENT_LOCK.into()],
            ),
            DisableMethod::Attribute { name, value } if active => {
                Edit::Delete(name.clone(), vec![value.clone()])
            }
            DisableMethod::Attribute { name, value } => {
                Edit::Add(name.clone(), vec![value.clone()])
            }
        }
    }

    /// Whether an account holding `held` is enabled.
    pub fn is_active(&self, held: &Values) -> bool {
        match &self.disable {
            DisableMethod::UserAccountControl => first(held, USER_ACCOUNT_CONTROL)
                .and_then(|v| v.parse::<u32>().ok())
                .is_none_or(|flags| flags & ACCOUNT_DISABLE == 0),
            DisableMethod::PpolicyLock => first(held, PWD_ACCOUNT_LOCKED_TIME).is_none(),
            DisableMethod::Attribute { name, value } => !values(held, name)
                .iter()
                .any(|held| held.eq_ignore_ascii_case(value)),
        }
    }

    /// Every attribute a read of users asks for.
    pub fn user_attributes(&self) -> Vec<String> {
        let mut attrs: Vec<String> = [
            "cn",
            "sn",
            "givenName",
            "displayName",
            "mail",
            self.flavour.login_attribute(),
            self.external_id_attribute.as_str(),
        ]
        .map(String::from)
        .to_vec();
        attrs.push(match &self.disable {
            DisableMethod::UserAccountControl => USER_ACCOUNT_CONTROL.into(),
            DisableMethod::PpolicyLock => PWD_ACCOUNT_LOCKED_TIME.into(),
            DisableMethod::Attribute { name, .. } => name.clone(),
        });
        attrs
    }

    pub fn group_attributes(&self) -> Vec<String> {
        ["cn", "description", "member", "owner"]
            .map(String::from)
            .into_iter()
            .chain([self.group_external_id_attribute.clone()])
            .collect()
    }

    pub fn held_user(&self, dn: &str, held: &Values) -> HeldUser {
        let text = |attr: &str| first(held, attr).map(str::to_string);
        HeldUser {
            target_id: dn.to_string(),
            external_id: text(&self.external_id_attribute),
            username: text(self.flavour.login_attribute()).unwrap_or_default(),
            email: text("mail"),
            given_name: text("givenName"),
            family_name: text("sn"),
            display_name: text("displayName").or_else(|| text("cn")),
            active: self.is_active(held),
            container: dn::container_of(dn, &self.base_dn),
        }
    }

    /// A group as held; the empty group's placeholder is no member.
    pub fn held_group(&self, dn: &str, held: &Values) -> HeldGroup {
        let placeholder = self.placeholder_member();
        HeldGroup {
            target_id: dn.to_string(),
            external_id: first(held, &self.group_external_id_attribute).map(str::to_string),
            name: first(held, "cn").unwrap_or_default().to_string(),
            members: values(held, "member")
                .iter()
                .filter(|member| placeholder.is_none_or(|p| !dn::same(member, p)))
                .cloned()
                .collect(),
            owners: values(held, "owner").to_vec(),
        }
    }
}

/// `userAccountControl` with ACCOUNTDISABLE set or cleared, other flags kept.
fn account_control(current: Option<u32>, active: bool) -> u32 {
    let flags = current.unwrap_or(NORMAL_ACCOUNT);
    if active {
        flags & !ACCOUNT_DISABLE
    } else {
        flags | ACCOUNT_DISABLE
    }
}

/// An attribute's values, found without regard to the case of its name.
pub fn values<'a>(held: &'a Values, attr: &str) -> &'a [String] {
    held.iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .map(|(_, values)| values.as_slice())
        .unwrap_or_default()
}

pub fn first<'a>(held: &'a Values, attr: &str) -> Option<&'a str> {
    values(held, attr).first().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use rostersync_model::Settings;
    use rostersync_model::target::TargetRole;

    use super::*;
    use crate::settings::name;

    fn settings(flavour: &str) -> LdapSettings {
        LdapSettings::parse(
            &Settings::new()
                .with(name::URL, "ldap://127.0.0.1")
                .with(name::BIND_DN, "cn=admin,dc=school,dc=test")
                .with(name::BIND_PASSWORD, "x")
                .with(name::BASE_DN, "dc=school,dc=test")
                .with(name::FLAVOUR, flavour),
        )
        .unwrap()
    }

    fn pupil() -> TargetUser {
        TargetUser {
            external_id: "acc-1".into(),
            username: "ava.smith".into(),
            email: Some("ava.smith@school.test".into()),
            given_name: Some("Ava".into()),
            family_name: Some("Smith".into()),
            display_name: "Ava Smith".into(),
            role: TargetRole::Student,
            active: false,
            container: Some("ou=Year 7,ou=Students".into()),
            initial_password: Some("Correct-Horse-7".into()),
            attributes: Vec::new(),
        }
    }

    fn held(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect()
    }

    #[test]
    fn a_unicode_pwd_is_the_quoted_password_in_utf16le() {
        // [MS-ADTS] 3.1.1.3.1.5.1's example: "newPassword" in quotes.
        let encoded = unicode_pwd("Ab1é");
        assert_eq!(
            encoded,
            [0x22, 0, b'A', 0, b'b', 0, b'1', 0, 0xe9, 0, 0x22, 0],
            "each UTF-16 unit low byte first, é as U+00E9"
        );
    }

    #[test]
    fn openldap_user_entry() {
        let s = settings("openldap");
        assert_eq!(
            s.user_dns(&pupil()),
            ["uid=ava.smith,ou=Year 7,ou=Students,dc=school,dc=test"],
            "the login is the RDN, unique already"
        );
        let entry = s.new_user(&pupil());
        let get = |attr: &str| {
            entry
                .iter()
                .find(|(a, _)| a == attr)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("objectClass").unwrap(), ["inetOrgPerson"]);
        assert_eq!(get("employeeNumber").unwrap(), ["acc-1"]);
        assert_eq!(get("uid").unwrap(), ["ava.smith"]);
        assert!(get("userPassword").is_none(), "set hashed after the add");
        assert_eq!(get("employeeType").unwrap(), ["suspended"]);
    }

    #[test]
    fn active_directory_user_entry_never_carries_a_password() {
        let s = settings("active-directory");
        assert_eq!(
            s.user_dns(&pupil()),
            [
                "CN=Ava Smith,ou=Year 7,ou=Students,dc=school,dc=test",
                "CN=Ava Smith (ava.smith),ou=Year 7,ou=Students,dc=school,dc=test"
            ],
            "a second Ava Smith in the year takes the name with her login"
        );
        let entry = s.new_user(&pupil());
        let get = |attr: &str| {
            entry
                .iter()
                .find(|(a, _)| a == attr)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("sAMAccountName").unwrap(), ["ava.smith"]);
        assert_eq!(get("userPrincipalName").unwrap(), ["ava.smith@school.test"]);
        assert_eq!(get("employeeID").unwrap(), ["acc-1"]);
        assert_eq!(get("userAccountControl").unwrap(), ["514"]);
        assert!(get("userPassword").is_none() && get("unicodePwd").is_none());
        assert!(!s.user_values(&pupil()).iter().any(|(a, _)| a == "cn"));
    }

    #[test]
    fn user_account_control_flips_only_the_disable_bit() {
        let s = settings("active-directory");
        // DONT_EXPIRE_PASSWORD (0x10000) survives.
        let held = held(&[("userAccountControl", "66050")]);
        assert!(!s.is_active(&held));
        assert_eq!(
            s.activation(&held, true),
            Edit::Replace("userAccountControl".into(), vec!["66048".into()])
        );
        assert_eq!(
            s.activation(&Values::new(), false),
            Edit::Replace("userAccountControl".into(), vec!["514".into()])
        );
    }

    #[test]
    fn openldap_suspension_marks_and_reads_back() {
        let s = settings("openldap");
        assert_eq!(
            s.activation(&Values::new(), false),
            Edit::Add("employeeType".into(), vec!["suspended".into()])
        );
        assert!(!s.is_active(&held(&[("employeetype", "Suspended")])));
        assert!(s.is_active(&held(&[("employeeType", "staff")])));
    }

    #[test]
    fn the_placeholder_is_no_member_on_read_back() {
        let s = settings("openldap");
        let mut values = held(&[("cn", "7A/Ma"), ("businessCategory", "grp-1")]);
        values.insert("member".into(), vec!["dc=school,dc=test".into()]);
        let group = s.held_group("cn=7A/Ma,ou=Classes,dc=school,dc=test", &values);
        assert!(group.members.is_empty());
        assert_eq!(group.external_id.as_deref(), Some("grp-1"));
    }
}
