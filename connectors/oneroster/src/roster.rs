//! OneRoster 1.1 and 1.2 rows into roster records, as 1EdTech's CSV
//! bindings define the files (OneRoster 1.1 CSV Tables, §2–3; OneRoster
//! 1.2 CSV Tables, which move a user's roles out of `users.csv` into
//! `roles.csv` with `userSourcedId`, `roleType` (`primary`/`secondary`),
//! `role` and `orgSourcedId`).
//!
//! `users.csv` gives people; their role is `users.csv`'s `role` (1.1) or
//! their `primary` row of `roles.csv` (1.2, else their first): `student`
//! is a pupil on roll (a OneRoster export holds no applicants or leavers),
//! `teacher`, `administrator`, `aide`, `proctor` and 1.2's `principal`,
//! `counselor`, `siteAdministrator`, `districtAdministrator` and
//! `systemAdministrator` are staff, and `parent`, `guardian` and
//! `relative` are contacts. `identifier` is the MIS id, `grades` a pupil's
//! year group, and `demographics.csv` their date of birth. `classes.csv`
//! gives groups (`homeroom` a registration group, `scheduled` a class) and
//! `enrollments.csv` memberships. `agentSourcedIds` links a pupil and a
//! contact from either side: a pupil's list orders their contacts (the
//! position, from 1, is the priority), and a contact's list names pupils
//! whose own row may not name them back (no priority then). The contact's
//! role is the relationship, and OneRoster has no contact type. Where a
//! list column carries several values, the first is taken.
//!
//! When the connection reads some of several schools in a drop, a user is
//! kept when one of their orgs (1.1 `orgSourcedIds`, 1.2 their roles'
//! `orgSourcedId`) is read, and a class or enrollment when its
//! `schoolSourcedId` is.
//!
//! In a delta file a `tobedeleted` row (or `inactive`, its OneRoster 1.0
//! name) is an explicit removal, and a removed person's contact links go
//! with them. A delta carries only the rows that changed, so a pupil's
//! links are written only to contacts in the same drop, and a date of
//! birth only with its user row.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek};

use rostersync_connector_sdk::date::iso_date;
use rostersync_connector_sdk::{
    ContactType, EnrolmentStatus, Group, GroupKind, MemberRole, Membership, MembershipKey, Person,
    Relationship, RelationshipKey, Removal, Role, RosterRecord, SyncError,
};

use crate::archive::{Archive, Delivery, Table, TableRow, Version};

/// Records per batch, well under the host's limit: a school's enrollments
/// run to tens of thousands.
const BATCH: usize = 5_000;

/// What a bulk drop must deliver for a full read: without any one of them,
/// reconciling would remove every record of that kind.
const BULK_FILES: [&str; 3] = ["users", "classes", "enrollments"];

/// The schools a read keeps, by org `sourcedId`; `None` keeps everything.
pub(crate) type Schools = Option<BTreeSet<String>>;

/// Whether a row of `column`'s orgs belongs to the schools read: rows
/// naming no org are kept.
fn kept(schools: &Schools, orgs: &[&str]) -> bool {
    match schools {
        None => true,
        Some(ids) => orgs.is_empty() || orgs.iter().any(|org| ids.contains(*org)),
    }
}

/// Every record of one drop, in batches, one file after another. The whole
/// drop is unpacked and checked first, so a garbled file fails the read
/// before any of the drop's records reach the host.
pub(crate) fn read_drop<R: Read + Seek>(
    archive: &mut Archive<R>,
    schools: &Schools,
) -> Result<Vec<Vec<RosterRecord>>, SyncError> {
    let version = archive.version()?;
    if !archive.is_delta() {
        let roles = (version == Version::V1_2).then_some("roles");
        for file in BULK_FILES.into_iter().chain(roles) {
            if archive.delivery(file)? == Delivery::Absent {
                return Err(SyncError::BadResponse(format!(
                    "{}: a bulk drop without {file}.csv cannot be read, because reading it would remove every record {file}.csv holds",
                    archive.name()
                )));
            }
        }
    }
    let classes = archive.delivered("classes", &["sourcedId", "title", "classType"])?;
    let (users, roles) = match version {
        Version::V1_1 => (
            archive.delivered("users", &["sourcedId", "role", "givenName", "familyName"])?,
            Roles::Column,
        ),
        Version::V1_2 => {
            let users = archive.delivered("users", &["sourcedId", "givenName", "familyName"])?;
            let roles = archive.delivered("roles", &["userSourcedId", "roleType", "role"])?;
            (users, Roles::table(roles.map(|(_, table)| table))?)
        }
    };
    let enrollments =
        archive.delivered("enrollments", &["classSourcedId", "userSourcedId", "role"])?;
    let births = match archive.optional("demographics", &["sourcedId", "birthDate"]) {
        Some((_, table)) => birth_dates(&table)?,
        None => HashMap::new(),
    };
    let mut files = Vec::new();
    if let Some((delivery, table)) = classes {
        files.push(groups(&table, delivery, schools)?);
    }
    if let Some((delivery, table)) = users {
        files.push(people(&table, delivery, &roles, schools, &births)?);
    }
    if let Some((delivery, table)) = enrollments {
        files.push(memberships(&table, delivery, schools)?);
    }
    let mut batches = Vec::new();
    for records in files {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            batches.push(records.by_ref().take(BATCH).collect());
        }
    }
    Ok(batches)
}

/// Whether a row says its record is gone. Only a delta file's removals
/// are reported; in a bulk file such a row is simply not there.
fn gone(row: &TableRow) -> Result<bool, SyncError> {
    match row.get("status").map(str::to_ascii_lowercase).as_deref() {
        None | Some("active") => Ok(false),
        Some("tobedeleted" | "inactive") => Ok(true),
        Some(other) => Err(row.bad(
            "status",
            &format!("is {other:?}, not active or tobedeleted"),
        )),
    }
}

fn date(row: &TableRow, column: &str) -> Result<Option<String>, SyncError> {
    row.get(column)
        .map(|text| {
            iso_date(text)
                .ok_or_else(|| row.bad(column, &format!("is {text:?}, not a date (YYYY-MM-DD)")))
        })
        .transpose()
}

fn first(row: &TableRow, column: &str) -> Option<String> {
    row.list(column).first().map(|value| value.to_string())
}

fn birth_dates(table: &Table) -> Result<HashMap<String, String>, SyncError> {
    let mut births = HashMap::new();
    for row in table.rows() {
        if gone(&row)? {
            continue;
        }
        if let Some(born) = date(&row, "birthDate")? {
            births.insert(row.required("sourcedId")?.to_string(), born);
        }
    }
    Ok(births)
}

fn groups(
    table: &Table,
    delivery: Delivery,
    schools: &Schools,
) -> Result<Vec<RosterRecord>, SyncError> {
    let mut records = Vec::new();
    for row in table.rows() {
        if !kept(schools, &row.list("schoolSourcedId")) {
            continue;
        }
        let id = row.required("sourcedId")?;
        if gone(&row)? {
            if delivery == Delivery::Delta {
                records.push(RosterRecord::Removed(Removal::Group(id.into())));
            }
            continue;
        }
        let kind = match row.get("classType").map(str::to_ascii_lowercase).as_deref() {
            Some("homeroom") => GroupKind::Registration,
            Some("scheduled") => GroupKind::Class,
            _ => GroupKind::Other,
        };
        let mut group = Group::new(id, kind, row.get("title").map(Into::into));
        group.code = row.get("classCode").map(Into::into);
        group.subject = first(&row, "subjects");
        group.year_group = first(&row, "grades");
        records.push(RosterRecord::Group(group));
    }
    Ok(records)
}

/// Where a drop keeps its users' roles.
enum Roles {
    /// 1.1: `users.csv`'s `role` column, and `orgSourcedIds` for orgs.
    Column,
    /// 1.2: per user, the role of their `primary` row of `roles.csv` (else
    /// their first) and the orgs of all their rows.
    Table(HashMap<String, (String, Vec<String>)>),
}

impl Roles {
    fn table(table: Option<Table>) -> Result<Roles, SyncError> {
        let mut roles: HashMap<String, (String, Vec<String>)> = HashMap::new();
        for row in table.iter().flat_map(Table::rows) {
            if gone(&row)? {
                continue;
            }
            let user = row.required("userSourcedId")?.to_string();
            let role = row.required("role")?.to_string();
            let primary = row
                .get("roleType")
                .is_some_and(|t| t.eq_ignore_ascii_case("primary"));
            let entry = roles
                .entry(user)
                .or_insert_with(|| (role.clone(), Vec::new()));
            if primary {
                entry.0 = role;
            }
            entry.1.extend(row.get("orgSourcedId").map(str::to_string));
        }
        Ok(Roles::Table(roles))
    }

    /// A user's role in our terms, OneRoster's own word for it, and their
    /// orgs.
    fn of<'a>(&'a self, row: &TableRow<'a>) -> Result<(Role, String, Vec<&'a str>), SyncError> {
        let (text, orgs) = match self {
            Roles::Column => (row.required("role")?.to_string(), row.list("orgSourcedIds")),
            Roles::Table(roles) => {
                let id = row.required("sourcedId")?;
                let (role, orgs) = roles.get(id).ok_or_else(|| {
                    row.bad("sourcedId", &format!("{id:?} has no role in roles.csv"))
                })?;
                let mut orgs: Vec<&str> = orgs.iter().map(String::as_str).collect();
                orgs.extend(row.get("primaryOrgSourcedId"));
                (role.clone(), orgs)
            }
        };
        let role = match text.to_ascii_lowercase().as_str() {
            "student" => Role::Student,
            "teacher"
            | "administrator"
            | "aide"
            | "proctor"
            | "principal"
            | "counselor"
            | "siteadministrator"
            | "districtadministrator"
            | "systemadministrator" => Role::Staff,
            "parent" | "guardian" | "relative" => Role::Contact,
            _ => {
                return Err(row.bad("role", &format!("is {text:?}, not a OneRoster user role")));
            }
        };
        Ok((role, text.to_ascii_lowercase(), orgs))
    }
}

fn people(
    table: &Table,
    delivery: Delivery,
    roles: &Roles,
    schools: &Schools,
    births: &HashMap<String, String>,
) -> Result<Vec<RosterRecord>, SyncError> {
    // A pupil's contacts may be listed after them, and a contact may name
    // pupils whose rows do not name them back.
    let mut contact_roles = HashMap::new();
    let mut pupils_agents: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in table.rows() {
        if gone(&row)? {
            continue;
        }
        let (role, text, orgs) = roles.of(&row)?;
        if !kept(schools, &orgs) {
            continue;
        }
        let id = row.required("sourcedId")?;
        match role {
            Role::Contact => {
                contact_roles.insert(id, text);
            }
            Role::Student => {
                pupils_agents.insert(id, row.list("agentSourcedIds"));
            }
            Role::Staff => {}
        }
    }
    let link = |student: &str, contact: &str, role: &str, priority: Option<u32>| {
        let mut link = Relationship::new(student, contact, ContactType::Other);
        link.relationship = Some(role.to_string());
        link.priority = priority;
        link.parental_responsibility = matches!(role, "parent" | "guardian");
        RosterRecord::Relationship(link)
    };
    let mut linked = HashSet::new();
    let mut records = Vec::new();
    for row in table.rows() {
        let id = row.required("sourcedId")?;
        if gone(&row)? {
            if delivery == Delivery::Delta {
                records.extend(removals_for(&row, id, roles));
            }
            continue;
        }
        let (role, _, orgs) = roles.of(&row)?;
        if !kept(schools, &orgs) {
            continue;
        }
        let mut person = Person::new(id, role);
        person.mis_id = row.get("identifier").map(Into::into);
        person.first_name = row.get("givenName").map(Into::into);
        person.preferred_first_name = row.get("preferredGivenName").map(Into::into);
        person.middle_names = row.get("middleName").map(Into::into);
        person.last_name = row.get("familyName").map(Into::into);
        person.pronouns = row.get("pronouns").map(Into::into);
        person.email = row.get("email").map(Into::into);
        person.username = row.get("username").map(Into::into);
        person.date_of_birth = births.get(id).cloned();
        if role == Role::Student {
            person.enrolment = Some(EnrolmentStatus::OnRoll);
            person.year_group = first(&row, "grades");
        }
        records.push(RosterRecord::Person(person));
        match role {
            Role::Student => {
                for (position, agent) in row.list("agentSourcedIds").into_iter().enumerate() {
                    if let Some(contact_role) = contact_roles.get(agent) {
                        linked.insert((id, agent));
                        records.push(link(id, agent, contact_role, Some(position as u32 + 1)));
                    }
                }
            }
            Role::Contact => {
                let contact_role = &contact_roles[id];
                for student in row.list("agentSourcedIds") {
                    // A pupil of a bulk drop must be in it; a delta's may
                    // be stored from before.
                    let known = pupils_agents.contains_key(student) || delivery == Delivery::Delta;
                    let named_back = pupils_agents
                        .get(student)
                        .is_some_and(|agents| agents.contains(&id));
                    if known && !named_back && linked.insert((student, id)) {
                        records.push(link(student, id, contact_role, None));
                    }
                }
            }
            Role::Staff => {}
        }
    }
    Ok(records)
}

/// A removed user, and their links to the people their row lists.
fn removals_for(row: &TableRow, id: &str, roles: &Roles) -> Vec<RosterRecord> {
    let mut removals = vec![RosterRecord::Removed(Removal::Person(id.into()))];
    let link = |student: &str, contact: &str| {
        RosterRecord::Removed(Removal::Relationship(RelationshipKey {
            student: student.into(),
            contact: contact.into(),
        }))
    };
    // A removed row need not carry a usable role; without one, the person
    // alone goes.
    match roles.of(row) {
        Ok((Role::Student, ..)) => removals.extend(
            row.list("agentSourcedIds")
                .into_iter()
                .map(|contact| link(id, contact)),
        ),
        Ok((Role::Contact, ..)) => removals.extend(
            row.list("agentSourcedIds")
                .into_iter()
                .map(|student| link(student, id)),
        ),
        _ => {}
    }
    removals
}

fn memberships(
    table: &Table,
    delivery: Delivery,
    schools: &Schools,
) -> Result<Vec<RosterRecord>, SyncError> {
    let mut records = Vec::new();
    for row in table.rows() {
        if !kept(schools, &row.list("schoolSourcedId")) {
            continue;
        }
        let group = row.required("classSourcedId")?;
        let person = row.required("userSourcedId")?;
        if gone(&row)? {
            if delivery == Delivery::Delta {
                records.push(RosterRecord::Removed(Removal::Membership(MembershipKey {
                    group: group.into(),
                    person: person.into(),
                })));
            }
            continue;
        }
        let role = match row.required("role")?.to_ascii_lowercase().as_str() {
            "student" => MemberRole::Student,
            "teacher" => MemberRole::Teacher,
            _ => MemberRole::Other,
        };
        let mut membership = Membership::new(group, person, role);
        membership.start_date = date(&row, "beginDate")?;
        membership.end_date = date(&row, "endDate")?;
        records.push(RosterRecord::Membership(membership));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    const USERS: &str = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password";
    const CLASSES: &str = "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods";
    const ENROLLMENTS: &str = "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate";

    /// A zip of `(path, text)` files.
    fn zip(files: &[(&str, String)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (path, text) in files {
            writer
                .start_file(*path, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(text.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn manifest(mode: &str) -> String {
        let other = if mode == "delta" { "absent" } else { "bulk" };
        format!(
            "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,{mode}\nfile.classes,{mode}\nfile.enrollments,{mode}\nfile.demographics,{mode}\nfile.orgs,{other}\nfile.courses,absent\n"
        )
    }

    fn read(files: &[(&str, String)]) -> Result<Vec<RosterRecord>, SyncError> {
        let mut archive = Archive::open("drop.zip", Cursor::new(zip(files)))?;
        Ok(read_drop(&mut archive, &None)?
            .into_iter()
            .flatten()
            .collect())
    }

    fn bulk() -> Vec<(&'static str, String)> {
        vec![
            ("export/manifest.csv", manifest("bulk")),
            (
                "export/users.csv",
                format!(
                    "\u{feff}{USERS}\n\
                     stu-1,,,true,org-1,student,zoe1@school.example,,Zoë,Ó Súilleabháin,Léa,A3802000A,zoe1@school.example,,,\"con-2,con-3,stf-9\",07,\n\
                     stf-9,,,true,org-1,teacher,,,Maja,Jørgensen,,5000,,,,,,\n\
                     con-2,,,false,org-1,parent,,,Anaïs,Müller,,50002,,,,stu-1,,\n\
                     con-3,,,false,org-1,relative,,,Seán,Nguyễn,,50003,,,,stu-1,,"
                ),
            ),
            (
                "export/classes.csv",
                format!(
                    "{CLASSES}\ncls-1,,,7A,06,crs-1,7A,homeroom,,org-1,term-1,,,\ncls-2,,,,06,crs-2,7Ma1,scheduled,,org-1,term-1,Mathematics,,\n"
                ),
            ),
            (
                "export/enrollments.csv",
                format!(
                    "{ENROLLMENTS}\nenr-1,,,cls-1,org-1,stu-1,student,false,,\nenr-2,,,cls-2,org-1,stf-9,teacher,true,2026-09-01,\n"
                ),
            ),
            (
                "export/demographics.csv",
                "sourcedId,status,dateLastModified,birthDate,sex\nstu-1,,,2015-10-01,female\n"
                    .into(),
            ),
        ]
    }

    #[test]
    fn a_bulk_drop_becomes_people_groups_memberships_and_links() {
        let records = read(&bulk()).unwrap();
        let pupil = records
            .iter()
            .find_map(|r| match r {
                RosterRecord::Person(p) if p.id == "stu-1" => Some(p),
                _ => None,
            })
            .unwrap();
        assert_eq!(pupil.role, Role::Student);
        assert_eq!(pupil.first_name.as_deref(), Some("Zoë"));
        assert_eq!(pupil.middle_names.as_deref(), Some("Léa"));
        assert_eq!(pupil.last_name.as_deref(), Some("Ó Súilleabháin"));
        assert_eq!(pupil.mis_id.as_deref(), Some("A3802000A"));
        assert_eq!(pupil.username.as_deref(), Some("zoe1@school.example"));
        assert_eq!(pupil.date_of_birth.as_deref(), Some("2015-10-01"));
        assert_eq!(pupil.enrolment, Some(EnrolmentStatus::OnRoll));
        assert_eq!(pupil.year_group.as_deref(), Some("07"));

        let links: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                RosterRecord::Relationship(l) => Some((
                    l.contact.as_str(),
                    l.relationship.as_deref(),
                    l.priority,
                    l.parental_responsibility,
                    l.contact_type,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            links,
            [
                ("con-2", Some("parent"), Some(1), true, ContactType::Other),
                (
                    "con-3",
                    Some("relative"),
                    Some(2),
                    false,
                    ContactType::Other
                ),
            ],
            "the teacher among the agents is no contact"
        );

        let groups: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                RosterRecord::Group(g) => {
                    Some((g.id.as_str(), g.kind, g.name.clone(), g.subject.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("cls-1", GroupKind::Registration, Some("7A".into()), None),
                ("cls-2", GroupKind::Class, None, Some("Mathematics".into())),
            ]
        );
        let teacher = records
            .iter()
            .find_map(|r| match r {
                RosterRecord::Membership(m) if m.person == "stf-9" => Some(m),
                _ => None,
            })
            .unwrap();
        assert_eq!(teacher.role, MemberRole::Teacher);
        assert_eq!(teacher.start_date.as_deref(), Some("2026-09-01"));
        assert!(
            !records
                .iter()
                .any(|r| matches!(r, RosterRecord::Removed(_)))
        );
    }

    #[test]
    fn a_delta_drop_reports_changes_and_explicit_removals() {
        let records = read(&[
            ("manifest.csv", manifest("delta")),
            (
                "users.csv",
                format!(
                    "{USERS}\n\
                     stu-1,active,2026-09-01T07:31:00.000Z,true,org-1,student,,,Zoë,Smith,,A1,,,,con-2,07,\n\
                     stu-4,tobedeleted,2026-09-01T07:32:00.000Z,true,org-1,student,,,Ava,Hall,,A4,,,,\"con-2,con-5\",08,\n\
                     con-6,tobedeleted,2026-09-01T07:32:00.000Z,false,org-1,guardian,,,Ivy,Hall,,6,,,,stu-7,,"
                ),
            ),
            ("classes.csv", format!("{CLASSES}\n")),
            (
                "enrollments.csv",
                format!(
                    "{ENROLLMENTS}\nenr-1,tobedeleted,2026-09-01T07:32:00.000Z,cls-2,org-1,stu-4,student,false,,\n"
                ),
            ),
            ("demographics.csv", "sourcedId,status,dateLastModified,birthDate\n".into()),
        ])
        .unwrap();
        let people: Vec<&str> = records
            .iter()
            .filter_map(|r| match r {
                RosterRecord::Person(p) => Some(p.id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(people, ["stu-1"]);
        assert!(
            !records
                .iter()
                .any(|r| matches!(r, RosterRecord::Relationship(_))),
            "con-2 is not in this drop, so its role is unknown"
        );
        let removals: Vec<String> = records
            .iter()
            .filter_map(|r| match r {
                RosterRecord::Removed(Removal::Person(id)) => Some(format!("person {id}")),
                RosterRecord::Removed(Removal::Relationship(k)) => {
                    Some(format!("link {}/{}", k.student, k.contact))
                }
                RosterRecord::Removed(Removal::Membership(k)) => {
                    Some(format!("membership {}/{}", k.group, k.person))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            removals,
            [
                "person stu-4",
                "link stu-4/con-2",
                "link stu-4/con-5",
                "person con-6",
                "link stu-7/con-6",
                "membership cls-2/stu-4"
            ]
        );
    }

    #[test]
    fn garbled_files_name_the_file_and_the_column_or_line() {
        let mut files = bulk();
        files[3].1 = format!("{ENROLLMENTS}\nenr-1,,,cls-1,org-1,,student,false,,\n");
        let Err(SyncError::BadResponse(message)) = read(&files) else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "drop.zip/enrollments.csv: line 2: `userSourcedId` is empty"
        );

        let mut files = bulk();
        files[4].1 = "sourcedId,birthDate\nstu-1,01/10/2015\n".into();
        let Err(SyncError::BadResponse(message)) = read(&files) else {
            panic!("expected a bad response");
        };
        assert!(
            message.starts_with("drop.zip/demographics.csv: line 2: `birthDate` is \"01/10/2015\""),
            "{message}"
        );

        let mut files = bulk();
        files.remove(2);
        let Err(SyncError::BadResponse(message)) = read(&files) else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "drop.zip: manifest.csv lists classes.csv, but the zip has no classes.csv"
        );

        let Err(SyncError::BadResponse(message)) = read(&files[1..]) else {
            panic!("expected a bad response");
        };
        assert!(message.contains("there is no manifest.csv"), "{message}");

        let Err(SyncError::BadResponse(message)) =
            Archive::open("cut.zip", Cursor::new(zip(&bulk())[..200].to_vec())).map(|_| ())
        else {
            panic!("expected a bad response");
        };
        assert!(
            message.starts_with("cut.zip: not a readable zip file"),
            "{message}"
        );
    }

    #[test]
    fn a_bulk_drop_missing_a_core_file_is_refused() {
        let mut files = bulk();
        files[0].1 = manifest("bulk").replace("file.enrollments,bulk", "file.enrollments,absent");
        let Err(SyncError::BadResponse(message)) = read(&files) else {
            panic!("expected a bad response");
        };
        assert!(
            message.starts_with("drop.zip: a bulk drop without enrollments.csv"),
            "{message}"
        );
    }
}
