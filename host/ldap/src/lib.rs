//! The LDAP / Active Directory provisioning target. LDAP is not HTTP, so
//! this target is native to the host rather than a WebAssembly plugin; the
//! delivery engine drives it through the same [`Target`] interface.
//!
//! What it owns: binding to the directory, and turning each change into
//! LDAP operations (RFC 4511: bind §4.2, search §4.5, modify §4.6, add
//! §4.7, delete §4.8, modify DN §4.9; result codes from Appendix A).
//!
//! - **Accounts.** OpenLDAP: `uid=<username>,<container>,<base DN>`, object
//!   class `inetOrgPerson` (RFC 2798) with `cn`, `sn`, `givenName`,
//!   `displayName`, `mail`, `uid` (RFC 4519 §2, RFC 4524 §2.16) and the
//!   external id in `employeeNumber` (RFC 2798 §2). Active Directory:
//!   `CN=<display name>,<container>,<base DN>` (or, when another entry
//!   has that common name there, `CN=<display name> (<username>)`), class
//!   `user` with
//!   `sAMAccountName`, `userPrincipalName` and the external id in
//!   `employeeID` ([MS-ADA3], the Active Directory schema attributes). The
//!   container is the account's placement template, an OU path relative to
//!   the base DN such as `ou=Year 7,ou=Students`; missing OUs are created
//!   (`organizationalUnit`, RFC 4519 §3.11).
//! - **Adoption.** `create-user` looks for the account by external id, then
//!   by login, then by mail, and adopts what it finds
//!   ([`Outcome::Matched`](rostersync_model::target::Outcome::Matched)); a
//!   login or mail held by an account with another external id is an
//!   [`Outcome::Conflict`](rostersync_model::target::Outcome::Conflict).
//! - **Moves.** A changed container (a pupil's year change) moves the entry
//!   with a modify DN, so it keeps its identity (`entryUUID`, RFC 4530;
//!   `objectGUID` on Active Directory), and the groups naming its old DN
//!   are rewritten, since OpenLDAP without slapo-refint(5) leaves them
//!   stale. The target's id for an object is its DN; an entry moved by hand
//!   is found again by its external id.
//! - **Suspension.** Active Directory: the ACCOUNTDISABLE bit (0x2) of
//!   `userAccountControl`, 514 for a disabled normal account and 512
//!   enabled ([MS-ADTS] §2.2.16, Microsoft's "UserAccountControl property
//!   flags"); other bits are kept. OpenLDAP by default adds
//!   `employeeType: suspended` (`disable-attribute`, `disable-value`):
//!   `employeeType` is in the standard `inetOrgPerson` schema (RFC 2798 §2)
//!   and is otherwise unused by this target, so it works on any server, but
//!   it only marks the account: the services that authenticate against the
//!   directory must filter on it, e.g. `(!(employeeType=suspended))`. Where
//!   slapd loads the ppolicy overlay, `disable-method = "ppolicy"` sets
//!   `pwdAccountLockedTime: 000001010000Z`, which slapo-ppolicy(5) reads as
//!   locked by an administrator, so slapd itself refuses the account's
//!   binds. It is not the default because without the overlay that
//!   attribute is undefined and every suspension would be refused.
//! - **Groups.** `groupOfNames` on OpenLDAP (RFC 4519 §3.5), `group` on
//!   Active Directory, members by DN, under the group's container, with the
//!   external id in `businessCategory` (RFC 4519 §2.1, a free-text
//!   attribute `groupOfNames` allows) or `adminDescription` ([MS-ADA1]).
//!   `member` must hold a value under the standard schema, so an empty
//!   `groupOfNames` holds the base DN as its only member: it is no account,
//!   so it grants no one anything, and read-back leaves it out. Owners go in
//!   `owner` (RFC 4519 §2.23) on OpenLDAP; Active Directory's `managedBy`
//!   holds one DN only, so there owners stay among the members.
//! - **Passwords.** On OpenLDAP an initial password is set right after the
//!   add with the Password Modify extended operation (RFC 3062), so slapd
//!   stores `userPassword` hashed by its `password-hash` (`{SSHA}` unless
//!   configured), never as sent; an adopted account keeps its own. Active
//!   Directory takes a password only as `unicodePwd` (the password in
//!   double quotes, UTF-16LE) over an encrypted connection ([MS-ADTS]
//!   §3.1.1.3.1.5.1): over `ldaps://` the target declares `passwords`,
//!   adds the account disabled (514), sets its `unicodePwd`, then enables
//!   it (512) if it is to be active, so no enabled account is ever without
//!   its password. Over plain `ldap://` it declares no `passwords`, and an
//!   account enabled without one is refused by the domain's policy in the
//!   server's own words.
//! - **Read-back** pages through users and groups under the base DN with
//!   the simple paged results control (RFC 2696); the cursor is the
//!   server's cookie, valid on the connection that issued it, so a read
//!   interrupted by a reconnection starts again.
//! - **Errors.** A refused bind is `Unauthorized` (result 49), an
//!   unreachable server `Unavailable`. Per change, a result code is a
//!   [`Outcome::Refused`](rostersync_model::target::Outcome::Refused) in
//!   one sentence naming the DN (busy and unavailable servers are retried);
//!   a connection lost mid-batch answers the change in flight with a retry
//!   and stops, so the rest are sent again and nothing is lost. No error
//!   ever carries the bind password. An empty password is refused as a
//!   setting, since it would make an unauthenticated bind (RFC 4513 §5.1.2).

mod changes;
mod dn;
mod schema;
mod session;
pub mod settings;

use std::collections::HashSet;

use ldap3::Ldap;
use rostersync_model::target::{
    ChangeItem, ChangeResult, HeldObject, HeldPage, ObjectKind, Outcome, Target, TargetCapability,
    TargetFuture, TargetInfo,
};
use rostersync_model::{Settings, SyncError};

use session::{Failure, Session};
pub use settings::{DisableMethod, Flavour, LdapSettings};

/// How long the engine should wait before sending again a change the
/// connection dropped: long enough for a restart or a fail-over to take
/// connections again; a server still down then fails the whole call, and
/// the engine's backoff takes over.
const RETRY_SECONDS: u32 = 5;

/// The provider name the target reports.
pub const PROVIDER: &str = "LDAP";

/// A directory with the target's settings bound; one connection, opened
/// on first use and again whenever it stops answering.
pub struct LdapTarget {
    settings: LdapSettings,
    info: TargetInfo,
    connection: tokio::sync::Mutex<Option<Ldap>>,
    containers: std::sync::Mutex<HashSet<String>>,
}

impl LdapTarget {
    /// Who the target is and the settings it takes, before any are given
    /// (capabilities as on OpenLDAP).
    pub fn describe() -> TargetInfo {
        info(Flavour::OpenLdap, false)
    }

    /// Binds the target to a configuration's settings (names in
    /// [`settings::name`]). Does no I/O: the first call connects.
    pub fn open(settings: &Settings) -> Result<Self, SyncError> {
        let settings = LdapSettings::parse(settings)?;
        Ok(Self {
            info: info(settings.flavour, settings.encrypted()),
            settings,
            connection: tokio::sync::Mutex::new(None),
            containers: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// A session on the held connection while it answers, else on a new one.
    async fn session(&self) -> Result<Session<'_>, SyncError> {
        let mut held = self.connection.lock().await;
        let live = match held.as_mut() {
            Some(ldap) => session::alive(ldap, self.settings.timeout).await,
            None => false,
        };
        let ldap = match held.as_ref() {
            Some(ldap) if live => ldap.clone(),
            _ => {
                let ldap = session::connect(&self.settings).await?;
                self.containers.lock().expect("containers").clear();
                held.insert(ldap).clone()
            }
        };
        Ok(Session::new(ldap, &self.settings, &self.containers))
    }

    /// Drops a connection that failed, so the next call opens another.
    async fn forget(&self, reason: &str) {
        tracing::warn!(target: "rostersync::ldap", "{reason}");
        self.connection.lock().await.take();
    }

    /// A failure of a whole call as the error the engine acts on.
    async fn whole_call(&self, failure: Failure) -> SyncError {
        match failure {
            Failure::Transport(reason) => {
                self.forget(&reason).await;
                SyncError::Unavailable(reason)
            }
            Failure::Retry(reason) => SyncError::Unavailable(reason),
            Failure::Refused(reason) => SyncError::BadResponse(reason),
        }
    }
}

/// What the target can do: Active Directory sets passwords only over an
/// encrypted connection, and keeps owners among the members.
fn info(flavour: Flavour, encrypted: bool) -> TargetInfo {
    let mut capabilities = vec![
        TargetCapability::Groups,
        TargetCapability::Suspend,
        TargetCapability::ReadBack,
    ];
    match flavour {
        Flavour::OpenLdap => {
            capabilities.extend([TargetCapability::GroupOwners, TargetCapability::Passwords]);
        }
        Flavour::ActiveDirectory if encrypted => capabilities.push(TargetCapability::Passwords),
        Flavour::ActiveDirectory => {}
    }
    TargetInfo {
        provider: PROVIDER.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "Accounts and groups in an LDAP directory: OpenLDAP or Active Directory."
            .into(),
        settings: settings::specs(),
        capabilities,
    }
}

impl Target for LdapTarget {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn check(&self) -> TargetFuture<'_, String> {
        Box::pin(async move {
            let mut session = self.session().await?;
            let (url, base) = (&self.settings.url, &self.settings.base_dn);
            match session.entry(base, "(objectClass=*)", &[]).await {
                Ok(Some(_)) => Ok(format!(
                    "bound to {url} as {} and found the base {base}",
                    self.settings.bind_dn
                )),
                Ok(None) => Err(SyncError::BadSettings(format!(
                    "the LDAP server at {url} holds no entry at the base DN {base}"
                ))),
                Err(failure) => Err(self.whole_call(failure).await),
            }
        })
    }

    fn apply(&self, batch: Vec<ChangeItem>) -> TargetFuture<'_, Vec<ChangeResult>> {
        Box::pin(async move {
            let mut session = self.session().await?;
            let mut results = Vec::with_capacity(batch.len());
            for item in batch {
                let (outcome, stop) = match session.apply(&item.change).await {
                    Ok(outcome) => (outcome, false),
                    Err(Failure::Transport(reason)) => {
                        self.forget(&reason).await;
                        (retry(reason), true)
                    }
                    Err(Failure::Retry(reason)) => (retry(reason), false),
                    Err(Failure::Refused(reason)) => (Outcome::Refused(reason), false),
                };
                results.push(ChangeResult {
                    key: item.key,
                    outcome,
                });
                if stop {
                    break;
                }
            }
            Ok(results)
        })
    }

    fn read(&self, kind: ObjectKind, cursor: Option<String>) -> TargetFuture<'_, HeldPage> {
        Box::pin(async move {
            let cookie = match cursor {
                Some(cursor) => hex::decode(&cursor).map_err(|_| {
                    SyncError::BadSettings(format!(
                        "the read-back cursor {cursor} is not one the LDAP target gave"
                    ))
                })?,
                None => Vec::new(),
            };
            let mut session = self.session().await?;
            let (filter, attrs) = session.filter_and_attributes(kind);
            let (entries, next) = match session.page(&filter, &attrs, cookie).await {
                Ok(page) => page,
                Err(failure) => return Err(self.whole_call(failure).await),
            };
            let s = &self.settings;
            let objects = entries
                .iter()
                .map(|entry| match kind {
                    ObjectKind::User => HeldObject::User(s.held_user(&entry.dn, &entry.values)),
                    ObjectKind::Group => HeldObject::Group(s.held_group(&entry.dn, &entry.values)),
                })
                .collect();
            Ok(HeldPage {
                objects,
                next: (!next.is_empty()).then(|| hex::encode(next)),
            })
        })
    }
}

fn retry(reason: String) -> Outcome {
    Outcome::RetryAfter {
        seconds: RETRY_SECONDS,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_model::target::TargetCapability;
    use settings::name;

    fn on(url: &str, flavour: &str) -> TargetInfo {
        let settings = Settings::new()
            .with(name::URL, url)
            .with(name::BIND_DN, "cn=admin,dc=school,dc=test")
            .with(name::BIND_PASSWORD, "x")
            .with(name::BASE_DN, "dc=school,dc=test")
            .with(name::FLAVOUR, flavour);
        LdapTarget::open(&settings).unwrap().info.clone()
    }

    #[test]
    fn active_directory_sets_passwords_only_over_an_encrypted_connection() {
        let passwords = |info: TargetInfo| info.has(TargetCapability::Passwords);
        assert!(passwords(on("ldap://dc.school.test", "openldap")));
        assert!(passwords(on("ldaps://dc.school.test", "active-directory")));
        assert!(!passwords(on("ldap://dc.school.test", "active-directory")));
    }
}
