//! Each [`TargetChange`] as LDAP operations: finding an entry again by its
//! DN or external id, adopting an existing account instead of making a
//! second, moving an entry between OUs with a modify DN, and keeping group
//! members (and owners) exactly as asked. Every change is safe to repeat.

use rostersync_model::target::{
    MemberChange, ObjectKind, ObjectRef, Outcome, TargetChange, TargetGroup, TargetUser,
};

use crate::dn;
use crate::schema::{self, Edit};
use crate::session::{Failure, Found, Session, code};
use crate::settings::Flavour;

const MEMBER: &str = "member";
const OWNER: &str = "owner";

/// The result codes a suspension edit may meet and still have done its
/// job: the marker was already gone, or already there.
const ALREADY: [u32; 2] = [code::NO_SUCH_ATTRIBUTE, code::ATTRIBUTE_OR_VALUE_EXISTS];

impl Session<'_> {
    pub async fn apply(&mut self, change: &TargetChange) -> Result<Outcome, Failure> {
        match change {
            TargetChange::CreateUser { user } => self.create_user(user).await,
            TargetChange::UpdateUser { target_id, user } => {
                let object = ObjectRef {
                    external_id: user.external_id.clone(),
                    target_id: Some(target_id.clone()),
                };
                let found = self.must_locate(ObjectKind::User, &object).await?;
                self.update_user(found, user).await.map(Outcome::Done)
            }
            TargetChange::SuspendUser { object } => self.activate(object, false).await,
            TargetChange::EnableUser { object } => self.activate(object, true).await,
            TargetChange::DeleteUser { object } => self.delete(ObjectKind::User, object).await,
            TargetChange::CreateGroup { group } => self.create_group(group).await,
            TargetChange::UpdateGroup { target_id, group } => {
                let object = ObjectRef {
                    external_id: group.external_id.clone(),
                    target_id: Some(target_id.clone()),
                };
                let found = self.must_locate(ObjectKind::Group, &object).await?;
                self.update_group(found, group).await.map(Outcome::Done)
            }
            TargetChange::ChangeMembers { members } => self.change_members(members).await,
            TargetChange::DeleteGroup { object } => self.delete(ObjectKind::Group, object).await,
        }
    }

    /// The filter matching every object of `kind`, and the attributes read.
    pub fn filter_and_attributes(&self, kind: ObjectKind) -> (String, Vec<String>) {
        let s = self.settings;
        match kind {
            ObjectKind::User => (s.user_filter(), s.user_attributes()),
            ObjectKind::Group => (s.group_filter(), s.group_attributes()),
        }
    }

    fn external_id_attribute(&self, kind: ObjectKind) -> &str {
        match kind {
            ObjectKind::User => &self.settings.external_id_attribute,
            ObjectKind::Group => &self.settings.group_external_id_attribute,
        }
    }

    /// The entry of `kind` holding `attr: value` under the base DN.
    async fn find_by(
        &mut self,
        kind: ObjectKind,
        attr: &str,
        value: &str,
    ) -> Result<Option<Found>, Failure> {
        let (filter, attrs) = self.filter_and_attributes(kind);
        let filter = format!("(&{filter}({attr}={}))", ldap3::ldap_escape(value));
        self.find(&filter, &attrs).await
    }

    /// The entry an object reference names: at its target id (a DN) when
    /// that still holds one, else the one holding its external id (an
    /// entry moved by hand is found again).
    async fn locate(
        &mut self,
        kind: ObjectKind,
        object: &ObjectRef,
    ) -> Result<Option<Found>, Failure> {
        let (filter, attrs) = self.filter_and_attributes(kind);
        let external_id = self.external_id_attribute(kind).to_string();
        if let Some(dn) = &object.target_id
            && let Some(found) = self.entry(dn, &filter, &attrs).await?
        {
            return Ok(Some(found));
        }
        self.find_by(kind, &external_id, &object.external_id).await
    }

    async fn must_locate(
        &mut self,
        kind: ObjectKind,
        object: &ObjectRef,
    ) -> Result<Found, Failure> {
        self.locate(kind, object).await?.ok_or_else(|| {
            Failure::Refused(format!(
                "no {} under {} holds external id {}{}",
                match kind {
                    ObjectKind::User => "account",
                    ObjectKind::Group => "group",
                },
                self.settings.base_dn,
                object.external_id,
                object
                    .target_id
                    .as_ref()
                    .map(|dn| format!(" and nothing is at {dn}"))
                    .unwrap_or_default()
            ))
        })
    }

    /// Finds the account by external id, then by login, then by mail, and
    /// adopts it; an account held under another external id is a conflict.
    /// Only when none exists is a new entry added.
    async fn create_user(&mut self, user: &TargetUser) -> Result<Outcome, Failure> {
        let s = self.settings;
        if let Some(found) = self
            .find_by(
                ObjectKind::User,
                &s.external_id_attribute,
                &user.external_id,
            )
            .await?
        {
            return self.update_user(found, user).await.map(Outcome::Matched);
        }
        let by = [
            (s.flavour.login_attribute(), Some(&user.username)),
            ("mail", user.email.as_ref()),
        ];
        for (attr, value) in by {
            let Some(value) = value else { continue };
            let Some(found) = self.find_by(ObjectKind::User, attr, value).await? else {
                continue;
            };
            return match schema::first(&found.values, &s.external_id_attribute) {
                Some(other) if other != user.external_id => Ok(Outcome::Conflict(format!(
                    "{attr} {value} is taken by {}, which belongs to external id {other}",
                    found.dn
                ))),
                _ => self.update_user(found, user).await.map(Outcome::Matched),
            };
        }
        let candidates = s.user_dns(user);
        let (_, parent) = dn::split_first(&candidates[0]);
        self.ensure_container(parent).await?;
        // Active Directory: added disabled, enabled once it has its
        // password, so no enabled account is ever without one.
        let password_first = s.flavour == Flavour::ActiveDirectory
            && s.encrypted()
            && user.initial_password.is_some();
        let added = TargetUser {
            active: user.active && !password_first,
            ..user.clone()
        };
        for dn in &candidates {
            let rc = self
                .add(dn, s.new_user(&added), &[code::ENTRY_ALREADY_EXISTS])
                .await?;
            if rc != code::SUCCESS {
                continue;
            }
            match (s.flavour, &user.initial_password) {
                (Flavour::OpenLdap, Some(password)) => self.set_password(dn, password).await?,
                (Flavour::ActiveDirectory, Some(password)) if password_first => {
                    self.set_unicode_password(dn, password).await?;
                    if user.active {
                        let disabled: schema::Values = s.new_user(&added).into_iter().collect();
                        self.modify(dn, vec![s.activation(&disabled, true)], &[])
                            .await?;
                    }
                }
                _ => {}
            }
            return Ok(Outcome::Done(dn.clone()));
        }
        Ok(Outcome::Conflict(format!(
            "{} is taken by an entry that is not one of the target's accounts",
            candidates.join(" and ")
        )))
    }

    /// Moves the account where it belongs, brings its attributes and its
    /// enabled state up to date, and answers its DN.
    async fn update_user(&mut self, found: Found, user: &TargetUser) -> Result<String, Failure> {
        let s = self.settings;
        let dn = self.place(&found.dn, &s.user_dns(user), true).await?;
        let edits = s
            .user_values(user)
            .into_iter()
            .map(|(attr, values)| Edit::Replace(attr, values))
            .collect();
        self.modify(&dn, edits, &[]).await?;
        self.modify(
            &dn,
            vec![s.activation(&found.values, user.active)],
            &ALREADY,
        )
        .await?;
        Ok(dn)
    }

    async fn activate(&mut self, object: &ObjectRef, active: bool) -> Result<Outcome, Failure> {
        let found = self.must_locate(ObjectKind::User, object).await?;
        let edit = self.settings.activation(&found.values, active);
        self.modify(&found.dn, vec![edit], &ALREADY).await?;
        Ok(Outcome::Done(found.dn))
    }

    /// Deletes the object; one already gone is done. A deleted account
    /// leaves no member or owner value behind.
    async fn delete(&mut self, kind: ObjectKind, object: &ObjectRef) -> Result<Outcome, Failure> {
        let Some(found) = self.locate(kind, object).await? else {
            let id = object.target_id.as_ref().unwrap_or(&object.external_id);
            return Ok(Outcome::Done(id.clone()));
        };
        self.delete_entry(&found.dn).await?;
        if kind == ObjectKind::User {
            self.repoint(&found.dn, None).await?;
        }
        Ok(Outcome::Done(found.dn))
    }

    /// Moves `current` to the first of `desired` it can take when it is
    /// none of them (a year change moves a pupil to the next year's OU),
    /// keeping the entry; for an account, the groups naming it follow.
    async fn place(
        &mut self,
        current: &str,
        desired: &[String],
        account: bool,
    ) -> Result<String, Failure> {
        if desired.iter().any(|d| dn::same(current, d)) {
            return Ok(current.to_string());
        }
        for to in desired {
            if self
                .rename(current, to, &[code::ENTRY_ALREADY_EXISTS])
                .await?
                != code::SUCCESS
            {
                continue;
            }
            if account {
                self.repoint(current, Some(to)).await?;
            }
            return Ok(to.clone());
        }
        Err(Failure::Refused(format!(
            "{current} cannot move to {}: taken by entries that are not this one",
            desired.join(" or ")
        )))
    }

    /// Rewrites every `member` and `owner` value naming `old` to `new`, or
    /// removes it; servers without referential integrity (OpenLDAP without
    /// slapo-refint) would otherwise keep stale DNs.
    async fn repoint(&mut self, old: &str, new: Option<&str>) -> Result<(), Failure> {
        let s = self.settings;
        let escaped = ldap3::ldap_escape(old);
        let filter = format!(
            "(&{}(|({MEMBER}={escaped})({OWNER}={escaped})))",
            s.group_filter()
        );
        for group in self.find_all(&filter, &s.group_attributes()).await? {
            for attr in [MEMBER, OWNER] {
                let current = schema::values(&group.values, attr);
                if !current.iter().any(|value| dn::same(value, old)) {
                    continue;
                }
                let desired: Vec<String> = current
                    .iter()
                    .filter(|value| !dn::same(value, old))
                    .cloned()
                    .chain(new.map(str::to_string))
                    .collect();
                let placeholder = (attr == MEMBER).then(|| s.placeholder_member()).flatten();
                self.set_dns(&group.dn, attr, current, &desired, placeholder)
                    .await?;
            }
        }
        Ok(())
    }

    /// The DNs of accounts to add; one without an entry yet is retried
    /// later rather than dropped.
    async fn account_dns(
        &mut self,
        refs: &[ObjectRef],
        group: &str,
    ) -> Result<Vec<String>, Failure> {
        let mut dns = Vec::with_capacity(refs.len());
        for object in refs {
            match self.locate(ObjectKind::User, object).await? {
                Some(found) => dns.push(found.dn),
                None => {
                    return Err(Failure::Retry(format!(
                        "{group} cannot take {} yet: no account under {} holds that external id",
                        object.external_id, self.settings.base_dn
                    )));
                }
            }
        }
        Ok(dns)
    }

    /// The DNs of accounts to remove: those without an entry are gone already.
    async fn removed_dns(&mut self, refs: &[ObjectRef]) -> Result<Vec<String>, Failure> {
        let mut dns = Vec::with_capacity(refs.len());
        for object in refs {
            match self.locate(ObjectKind::User, object).await? {
                Some(found) => dns.push(found.dn),
                None => dns.extend(object.target_id.clone()),
            }
        }
        Ok(dns)
    }

    /// Owners are sent only where groups have them.
    fn owners<'g>(&self, owners: &'g [ObjectRef]) -> &'g [ObjectRef] {
        if self.settings.flavour.has_group_owners() {
            owners
        } else {
            &[]
        }
    }

    async fn create_group(&mut self, group: &TargetGroup) -> Result<Outcome, Failure> {
        let s = self.settings;
        let by_id = ObjectRef {
            external_id: group.external_id.clone(),
            target_id: None,
        };
        if let Some(found) = self.locate(ObjectKind::Group, &by_id).await? {
            return self.update_group(found, group).await.map(Outcome::Matched);
        }
        let dn = s.group_dn(group);
        let (filter, attrs) = self.filter_and_attributes(ObjectKind::Group);
        if let Some(found) = self.entry(&dn, &filter, &attrs).await? {
            return match schema::first(&found.values, &s.group_external_id_attribute) {
                Some(other) if other != group.external_id => Ok(Outcome::Conflict(format!(
                    "{dn} belongs to external id {other}"
                ))),
                _ => self.update_group(found, group).await.map(Outcome::Matched),
            };
        }
        let members = self.account_dns(&group.members, &dn).await?;
        let owners = self.account_dns(self.owners(&group.owners), &dn).await?;
        let mut entry = vec![
            (
                "objectClass".to_string(),
                vec![s.flavour.group_class().to_string()],
            ),
            ("cn".into(), vec![group.name.clone()]),
            (
                s.group_external_id_attribute.clone(),
                vec![group.external_id.clone()],
            ),
        ];
        entry.extend(
            group
                .description
                .clone()
                .map(|d| ("description".into(), vec![d])),
        );
        match (members.is_empty(), s.placeholder_member()) {
            (false, _) => entry.push((MEMBER.into(), members)),
            (true, Some(placeholder)) => entry.push((MEMBER.into(), vec![placeholder.into()])),
            (true, None) => {}
        }
        if !owners.is_empty() {
            entry.push((OWNER.into(), owners));
        }
        let (_, parent) = dn::split_first(&dn);
        self.ensure_container(parent).await?;
        self.add(&dn, entry, &[]).await?;
        Ok(Outcome::Done(dn))
    }

    /// Moves and renames the group where its template puts it and makes its
    /// members and owners exactly the roster's.
    async fn update_group(&mut self, found: Found, group: &TargetGroup) -> Result<String, Failure> {
        let s = self.settings;
        let members = self.account_dns(&group.members, &found.dn).await?;
        let owners = self
            .account_dns(self.owners(&group.owners), &found.dn)
            .await?;
        let dn = self
            .place(&found.dn, std::slice::from_ref(&s.group_dn(group)), false)
            .await?;
        let edits = vec![
            Edit::Replace(
                "description".into(),
                group.description.iter().cloned().collect(),
            ),
            Edit::Replace(
                s.group_external_id_attribute.clone(),
                vec![group.external_id.clone()],
            ),
        ];
        self.modify(&dn, edits, &[]).await?;
        let current = schema::values(&found.values, MEMBER);
        self.set_dns(&dn, MEMBER, current, &members, s.placeholder_member())
            .await?;
        if s.flavour.has_group_owners() {
            let current = schema::values(&found.values, OWNER);
            self.set_dns(&dn, OWNER, current, &owners, None).await?;
        }
        Ok(dn)
    }

    async fn change_members(&mut self, change: &MemberChange) -> Result<Outcome, Failure> {
        let s = self.settings;
        let found = self.must_locate(ObjectKind::Group, &change.group).await?;
        let mut attrs = vec![(MEMBER, &change.add, &change.remove, s.placeholder_member())];
        if s.flavour.has_group_owners() {
            attrs.push((OWNER, &change.add_owners, &change.remove_owners, None));
        }
        for (attr, add, remove, placeholder) in attrs {
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            let add = self.account_dns(add, &found.dn).await?;
            let remove = self.removed_dns(remove).await?;
            let current = schema::values(&found.values, attr);
            let desired: Vec<String> = current
                .iter()
                .filter(|value| {
                    !remove.iter().any(|gone| dn::same(gone, value))
                        && placeholder.is_none_or(|p| !dn::same(p, value))
                })
                .cloned()
                .chain(add)
                .collect();
            self.set_dns(&found.dn, attr, current, &desired, placeholder)
                .await?;
        }
        Ok(Outcome::Done(found.dn))
    }
}
