//! One bound LDAP connection and the operations (RFC 4511 §4.5–4.9) the
//! target makes through it. Every operation answers either with the
//! server's result or with a [`Failure`] saying what the target must do:
//! stop the batch (the connection is gone), try the change again later, or
//! give up on it with one sentence naming the DN. Every operation waits
//! at most the target's `timeout-seconds` for the server's answer, so a
//! server that stops answering holds no delivery up for good.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry,
};
use rostersync_model::SyncError;

use crate::dn;
use crate::schema::{Edit, Values};
use crate::settings::LdapSettings;

/// RFC 4511 Appendix A result codes the target acts on.
pub mod code {
    pub const SUCCESS: u32 = 0;
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_DN_SYNTAX: u32 = 34;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS_RIGHTS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const ENTRY_ALREADY_EXISTS: u32 = 68;
}

/// Why one change did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection broke: nothing more can be sent on it.
    Transport(String),
    /// The server (or the directory's state) says not now.
    Retry(String),
    /// The server refused this change for good.
    Refused(String),
}

/// An entry as a search returned it.
#[derive(Debug, Clone)]
pub struct Found {
    pub dn: String,
    pub values: Values,
}

impl From<SearchEntry> for Found {
    fn from(entry: SearchEntry) -> Self {
        Self {
            dn: entry.dn,
            values: entry.attrs,
        }
    }
}

/// Opens a connection to the server and binds as the configured DN.
pub async fn connect(settings: &LdapSettings) -> Result<Ldap, SyncError> {
    let url = &settings.url;
    let options = LdapConnSettings::new().set_conn_timeout(settings.timeout);
    let (conn, mut ldap) = LdapConnAsync::with_settings(options, url)
        .await
        .map_err(|err| {
            SyncError::Unavailable(format!("could not reach the LDAP server at {url}: {err}"))
        })?;
    ldap3::drive!(conn);
    let bound = ldap
        .with_timeout(settings.timeout)
        .simple_bind(&settings.bind_dn, &settings.bind_password)
        .await
        .map_err(|err| {
            SyncError::Unavailable(format!("the LDAP server at {url} dropped the bind: {err}"))
        })?;
    let who = &settings.bind_dn;
    match bound.rc {
        code::SUCCESS => Ok(ldap),
        code::INVALID_CREDENTIALS => Err(SyncError::Unauthorized(format!(
            "the LDAP server at {url} refused the bind as {who}"
        ))),
        code::INSUFFICIENT_ACCESS_RIGHTS => Err(SyncError::Forbidden(format!(
            "the LDAP server at {url} does not let {who} bind"
        ))),
        code::BUSY | code::UNAVAILABLE => Err(SyncError::Unavailable(format!(
            "the LDAP server at {url} is not taking binds now{}",
            said(&bound)
        ))),
        rc => Err(SyncError::BadResponse(format!(
            "the LDAP server at {url} answered the bind as {who} with result code {rc}{}",
            said(&bound)
        ))),
    }
}

/// `: <the server's diagnostic message>`, when it sent one.
fn said(result: &LdapResult) -> String {
    match result.text.trim() {
        "" => String::new(),
        text => format!(": {text}"),
    }
}

/// A bound connection and what the target knows of the directory.
pub struct Session<'a> {
    ldap: Ldap,
    pub settings: &'a LdapSettings,
    /// Containers known to exist, so each is created at most once.
    containers: &'a Mutex<HashSet<String>>,
}

impl<'a> Session<'a> {
    pub fn new(
        ldap: Ldap,
        settings: &'a LdapSettings,
        containers: &'a Mutex<HashSet<String>>,
    ) -> Self {
        Self {
            ldap,
            settings,
            containers,
        }
    }

    fn transport(&self, doing: &str, dn: &str, err: LdapError) -> Failure {
        Failure::Transport(format!(
            "the LDAP server at {} stopped answering while the target was to {doing} {dn}: {err}",
            self.settings.url
        ))
    }

    /// The result code when it is success or one of `tolerated`, else the
    /// failure it means.
    fn judge(
        &self,
        doing: &str,
        dn: &str,
        result: &LdapResult,
        tolerated: &[u32],
    ) -> Result<u32, Failure> {
        let rc = result.rc;
        if rc == code::SUCCESS || tolerated.contains(&rc) {
            return Ok(rc);
        }
        let sentence = format!(
            "the LDAP server refused to {doing} {dn} with result code {rc}{}",
            said(result)
        );
        Err(match rc {
            code::BUSY | code::UNAVAILABLE => Failure::Retry(sentence),
            _ => Failure::Refused(sentence),
        })
    }

    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<Found>, Failure> {
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|err| self.transport("search", base, err))?;
        let ldap3::SearchResult(entries, status) = result;
        let rc = self.judge(
            "search",
            base,
            &status,
            &[code::NO_SUCH_OBJECT, code::INVALID_DN_SYNTAX],
        )?;
        if rc != code::SUCCESS {
            return Ok(Vec::new());
        }
        Ok(entries
            .into_iter()
            .map(|entry| SearchEntry::construct(entry).into())
            .collect())
    }

    /// The entry at `dn` when it exists and matches `filter`.
    pub async fn entry(
        &mut self,
        dn: &str,
        filter: &str,
        attrs: &[String],
    ) -> Result<Option<Found>, Failure> {
        Ok(self
            .search(dn, Scope::Base, filter, attrs)
            .await?
            .into_iter()
            .next())
    }

    /// Every entry under the base DN matching `filter`.
    pub async fn find_all(
        &mut self,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<Found>, Failure> {
        let base = self.settings.base_dn.clone();
        self.search(&base, Scope::Subtree, filter, attrs).await
    }

    /// The first entry under the base DN matching `filter`.
    pub async fn find(&mut self, filter: &str, attrs: &[String]) -> Result<Option<Found>, Failure> {
        Ok(self.find_all(filter, attrs).await?.into_iter().next())
    }

    /// Adds an entry; answers the result code when it is one of `tolerated`.
    pub async fn add(
        &mut self,
        dn: &str,
        attrs: Vec<(String, Vec<String>)>,
        tolerated: &[u32],
    ) -> Result<u32, Failure> {
        let attrs = attrs
            .into_iter()
            .map(|(name, values)| (name, values.into_iter().collect::<HashSet<_>>()))
            .collect();
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .add(dn, attrs)
            .await
            .map_err(|err| self.transport("add", dn, err))?;
        if result.rc == code::NO_SUCH_OBJECT {
            // A container the target believed in has gone.
            self.containers.lock().expect("containers").clear();
        }
        self.judge("add", dn, &result, tolerated)
    }

    /// Applies `edits` to `dn` in one modify operation.
    pub async fn modify(
        &mut self,
        dn: &str,
        edits: Vec<Edit>,
        tolerated: &[u32],
    ) -> Result<u32, Failure> {
        if edits.is_empty() {
            return Ok(code::SUCCESS);
        }
        let set = |values: Vec<String>| values.into_iter().collect::<HashSet<_>>();
        let mods = edits
            .into_iter()
            .map(|edit| match edit {
                Edit::Add(attr, values) => Mod::Add(attr, set(values)),
                Edit::Delete(attr, values) => Mod::Delete(attr, set(values)),
                Edit::Replace(attr, values) => Mod::Replace(attr, set(values)),
            })
            .collect();
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .modify(dn, mods)
            .await
            .map_err(|err| self.transport("modify", dn, err))?;
        self.judge("modify", dn, &result, tolerated)
    }

    /// Moves (and renames) `from` to `to` with a modify DN (RFC 4511 §4.9),
    /// so the entry keeps its identity (its `entryUUID`).
    /// Answers the result code when it is one of `tolerated`.
    pub async fn rename(
        &mut self,
        from: &str,
        to: &str,
        tolerated: &[u32],
    ) -> Result<u32, Failure> {
        let (rdn, parent) = dn::split_first(to);
        self.ensure_container(parent).await?;
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .modifydn(from, rdn, true, Some(parent))
            .await
            .map_err(|err| self.transport("move", from, err))?;
        self.judge(&format!("move {from} to"), to, &result, tolerated)
    }

    /// Sets an account's password with the Password Modify extended
    /// operation (RFC 3062), so the server stores it hashed (slapd by its
    /// `password-hash`, `{SSHA}` unless configured) rather than as given.
    pub async fn set_password(&mut self, dn: &str, password: &str) -> Result<(), Failure> {
        let doing = "set the initial password of";
        let exop = ldap3::exop::PasswordModify {
            user_id: Some(dn),
            old_pass: None,
            new_pass: Some(password),
        };
        let answer = self
            .ldap
            .with_timeout(self.settings.timeout)
            .extended(exop)
            .await
            .map_err(|err| self.transport(doing, dn, err))?;
        self.judge(doing, dn, &answer.1, &[])?;
        Ok(())
    }

    /// Sets an Active Directory account's password by replacing its
    /// `unicodePwd`, which the domain stores hashed; only over an encrypted
    /// connection. The password is never part of an error.
    pub async fn set_unicode_password(&mut self, dn: &str, password: &str) -> Result<(), Failure> {
        let doing = "set the initial password of";
        let value: HashSet<Vec<u8>> = HashSet::from([crate::schema::unicode_pwd(password)]);
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .modify(
                dn,
                vec![Mod::Replace(
                    crate::schema::UNICODE_PWD.as_bytes().to_vec(),
                    value,
                )],
            )
            .await
            .map_err(|err| self.transport(doing, dn, err))?;
        self.judge(doing, dn, &result, &[])?;
        Ok(())
    }

    /// Deletes `dn`; one already gone is no failure.
    pub async fn delete_entry(&mut self, dn: &str) -> Result<(), Failure> {
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .delete(dn)
            .await
            .map_err(|err| self.transport("delete", dn, err))?;
        self.judge("delete", dn, &result, &[code::NO_SUCH_OBJECT])?;
        Ok(())
    }

    /// Creates the organizational units of `parent` below the base DN that
    /// do not exist yet, outermost first. RDNs of other types (Active
    /// Directory's `CN=Users`) must exist already.
    pub async fn ensure_container(&mut self, parent: &str) -> Result<(), Failure> {
        let base = &self.settings.base_dn;
        let Some(container) = dn::container_of(&format!("x=x,{parent}"), base) else {
            return Ok(());
        };
        let rdns: Vec<String> = dn::rdns(&container).iter().map(|r| r.to_string()).collect();
        let base = base.clone();
        for at in (0..rdns.len()).rev() {
            let ou_dn = format!("{},{base}", rdns[at..].join(","));
            let key = dn::normal(&ou_dn);
            if self.containers.lock().expect("containers").contains(&key) {
                continue;
            }
            let Some((attr, value)) = dn::split_rdn(&rdns[at]) else {
                continue;
            };
            if attr.eq_ignore_ascii_case("ou") {
                let entry = vec![
                    (
                        "objectClass".to_string(),
                        vec!["organizationalUnit".to_string()],
                    ),
                    ("ou".to_string(), vec![value]),
                ];
                self.add(&ou_dn, entry, &[code::ENTRY_ALREADY_EXISTS])
                    .await?;
            }
            self.containers.lock().expect("containers").insert(key);
        }
        Ok(())
    }

    /// Makes `attr` of `dn` hold exactly `desired` (by DN comparison), with
    /// adds before deletes in one modify, so the attribute is never empty
    /// between them. An empty `desired` holds `placeholder` instead.
    pub async fn set_dns(
        &mut self,
        dn: &str,
        attr: &str,
        current: &[String],
        desired: &[String],
        placeholder: Option<&str>,
    ) -> Result<(), Failure> {
        let mut want: HashMap<String, String> = desired
            .iter()
            .map(|value| (dn::normal(value), value.clone()))
            .collect();
        if want.is_empty()
            && let Some(placeholder) = placeholder
        {
            want.insert(dn::normal(placeholder), placeholder.to_string());
        }
        let have: HashSet<String> = current.iter().map(|value| dn::normal(value)).collect();
        let add: Vec<String> = want
            .iter()
            .filter(|(key, _)| !have.contains(*key))
            .map(|(_, value)| value.clone())
            .collect();
        let delete: Vec<String> = current
            .iter()
            .filter(|value| !want.contains_key(&dn::normal(value)))
            .cloned()
            .collect();
        let mut edits = Vec::new();
        if !add.is_empty() {
            edits.push(Edit::Add(attr.to_string(), add));
        }
        if !delete.is_empty() {
            edits.push(Edit::Delete(attr.to_string(), delete));
        }
        self.modify(dn, edits, &[]).await?;
        Ok(())
    }

    /// One page of a paged search (RFC 2696) under the base DN: the entries
    /// and the cookie for the next page, empty after the last.
    pub async fn page(
        &mut self,
        filter: &str,
        attrs: &[String],
        cookie: Vec<u8>,
    ) -> Result<(Vec<Found>, Vec<u8>), Failure> {
        use ldap3::controls::{Control, ControlType, PagedResults};
        let base = self.settings.base_dn.clone();
        let paged = PagedResults {
            size: self.settings.page_size,
            cookie,
        };
        let result = self
            .ldap
            .with_timeout(self.settings.timeout)
            .with_controls(ldap3::controls::RawControl::from(paged))
            .search(&base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|err| self.transport("search", &base, err))?;
        let ldap3::SearchResult(entries, status) = result;
        self.judge("page through", &base, &status, &[])?;
        let next = status
            .ctrls
            .iter()
            .find_map(|Control(kind, raw)| match kind {
                Some(ControlType::PagedResults) => Some(raw.parse::<PagedResults>().cookie),
                _ => None,
            })
            .unwrap_or_default();
        let entries = entries
            .into_iter()
            .map(|entry| SearchEntry::construct(entry).into())
            .collect();
        Ok((entries, next))
    }
}

/// Whether a connection still answers (a "Who am I?", RFC 4532) within
/// `timeout`.
pub async fn alive(ldap: &mut Ldap, timeout: std::time::Duration) -> bool {
    ldap.with_timeout(timeout)
        .extended(ldap3::exop::WhoAmI)
        .await
        .is_ok_and(|answer| answer.1.rc == code::SUCCESS)
}
