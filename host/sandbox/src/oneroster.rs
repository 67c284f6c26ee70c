//! OneRoster 1.1 and 1.2 CSV drops: a zip with `manifest.csv` at the root,
//! written into a drop folder, for one school or several.
//!
//! Sources: 1EdTech's OneRoster 1.1 CSV binding (manifest properties,
//! every file's columns in their order, `status`/`dateLastModified` blank
//! in bulk files and `active`/`tobedeleted` in delta ones) and OneRoster
//! 1.2 CSV binding (`users.csv` without `role` and `orgSourcedIds` but with
//! `preferredGivenName`, `primaryOrgSourcedId`, `pronouns` and the rest;
//! `roles.csv` with `userSourcedId`, `roleType`, `role`, `orgSourcedId`,
//! `userProfileSourcedId`, `beginDate`, `endDate`). 1.2 drops are written
//! as Windows exports write them, with a UTF-8 byte order mark before each
//! header; their pupils' rows leave `agentSourcedIds` empty, so only the
//! contacts' rows link them (the binding allows either side); and their
//! delta drops carry an `orgs.csv` with no rows under OneRoster 1.0's
//! header, as exports that write every file do. The bindings are silent on
//! which side of a link an export fills, and on which files it writes
//! empty.
//!
//! Bulk drops hold `orgs`, `academicSessions`, `courses`, `classes`,
//! `users`, `enrollments` and `demographics` with blank `status` and
//! `dateLastModified` (a bulk file is the whole truth). Delta drops hold the
//! users, classes and enrollments changed after a revision, each row with
//! `status` `active` or `tobedeleted` and an ISO-8601 `dateLastModified`;
//! the other files are `absent`. Pupils on roll, staff and contacts are
//! users; teaching classes are `scheduled` classes and registration groups
//! `homeroom` classes; contacts are `parent`/`guardian`/`relative` users
//! linked both ways through `agentSourcedIds`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rostersync_model::{EnrolmentStatus, GroupKind};

use crate::World;
use crate::generator::{Group, School, Stamp};

/// Bulk snapshot, or the changes after a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Bulk,
    Delta { since_revision: u64 },
}

/// The OneRoster version a drop is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1_1,
    V1_2,
}

/// What one drop holds: which schools (several make a trust's export),
/// bulk or delta, and in which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropSpec {
    pub schools: Vec<usize>,
    pub kind: DropKind,
    pub version: Version,
}

impl DropSpec {
    /// One school's OneRoster 1.1 drop.
    pub fn school(school: usize, kind: DropKind) -> Self {
        Self {
            schools: vec![school],
            kind,
            version: Version::V1_1,
        }
    }
}

pub fn org_id(sch: &School) -> String {
    format!("org-{}", sch.uid)
}
pub fn student_id(uid: u64) -> String {
    format!("stu-{uid}")
}
pub fn staff_id(uid: u64) -> String {
    format!("stf-{uid}")
}
pub fn contact_id(uid: u64) -> String {
    format!("con-{uid}")
}
pub fn class_id(uid: u64) -> String {
    format!("cls-{uid}")
}
/// Only pupils on roll are in a OneRoster export.
pub fn exported(s: &crate::generator::Student) -> bool {
    s.status == EnrolmentStatus::OnRoll
}
pub fn is_class(g: &Group) -> bool {
    matches!(g.kind, GroupKind::Class | GroupKind::Registration)
}
/// OneRoster 1.1 user role for a contact's relationship.
pub fn contact_role(relationship: &str) -> &'static str {
    match relationship {
        "Mother" | "Father" | "Step Mother" => "parent",
        "Carer" => "guardian",
        _ => "relative",
    }
}
/// UK year 7 is grade 06.
pub fn grade(year: u8) -> String {
    format!("{:02}", year - 1)
}

fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

struct Files {
    delta: Option<u64>,
    users: Vec<Vec<String>>,
    classes: Vec<Vec<String>>,
    enrollments: Vec<Vec<String>>,
    demographics: Vec<Vec<String>>,
}

impl Files {
    /// `status` and `dateLastModified` for a row, or `None` to leave it out.
    fn status(&self, stamp: &Stamp) -> Option<[String; 2]> {
        match self.delta {
            None => stamp.live().then(|| [String::new(), String::new()]),
            Some(since) if stamp.updated_rev > since => Some([
                if stamp.live() {
                    "active"
                } else {
                    "tobedeleted"
                }
                .into(),
                iso(stamp.updated_at),
            ]),
            Some(_) => None,
        }
    }
}

/// Builds one school's OneRoster 1.1 zip in memory.
pub fn build_zip(world: &World, school: usize, kind: DropKind) -> Vec<u8> {
    build(world, &DropSpec::school(school, kind))
}

/// Builds the zip a [`DropSpec`] describes, in memory.
pub fn build(world: &World, spec: &DropSpec) -> Vec<u8> {
    let mut f = Files {
        delta: match spec.kind {
            DropKind::Bulk => None,
            DropKind::Delta { since_revision } => Some(since_revision),
        },
        users: vec![],
        classes: vec![],
        enrollments: vec![],
        demographics: vec![],
    };
    for school in &spec.schools {
        school_rows(&mut f, &world.schools[*school]);
    }
    write(world, spec, f)
}

/// One school's rows of users, classes, enrollments and demographics.
fn school_rows(f: &mut Files, sch: &School) {
    let org = org_id(sch);
    for s in sch.students.values().filter(|s| exported(s)) {
        let Some([status, modified]) = f.status(&s.stamp) else {
            continue;
        };
        let agents: Vec<String> = sch
            .contacts_of(s.uid)
            .iter()
            .map(|(c, _)| contact_id(c.uid))
            .collect();
        f.users.push(vec![
            student_id(s.uid),
            status.clone(),
            modified.clone(),
            "true".into(),
            org.clone(),
            "student".into(),
            s.email.clone().unwrap_or_default(),
            String::new(),
            s.forename.clone(),
            s.surname.clone(),
            s.middle_names.clone().unwrap_or_default(),
            s.upn.clone(),
            s.email.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            agents.join(","),
            grade(s.year),
            String::new(),
        ]);
        f.demographics.push(vec![
            student_id(s.uid),
            status,
            modified,
            s.date_of_birth.to_string(),
            if s.gender == "F" { "female" } else { "male" }.into(),
        ]);
    }
    for s in sch.staff.values() {
        let Some([status, modified]) = f.status(&s.stamp) else {
            continue;
        };
        f.users.push(vec![
            staff_id(s.uid),
            status,
            modified,
            "true".into(),
            org.clone(),
            "teacher".into(),
            s.email.clone().unwrap_or_default(),
            String::new(),
            s.forename.clone(),
            s.surname.clone(),
            String::new(),
            s.mis_id.clone(),
            s.email.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    for c in sch.contacts.values() {
        let links: Vec<_> = sch
            .students_of(c.uid)
            .into_iter()
            .filter(|(s, _)| exported(s))
            .collect();
        if links.is_empty() && c.stamp.live() {
            continue;
        }
        let Some([status, modified]) = f.status(&c.stamp) else {
            continue;
        };
        let role = links
            .first()
            .map_or("relative", |(_, l)| contact_role(&l.relationship));
        let agents: Vec<String> = links.iter().map(|(s, _)| student_id(s.uid)).collect();
        f.users.push(vec![
            contact_id(c.uid),
            status,
            modified,
            "false".into(),
            org.clone(),
            role.into(),
            c.email.clone().unwrap_or_default(),
            String::new(),
            c.forename.clone(),
            c.surname.clone(),
            String::new(),
            c.mis_id.clone(),
            c.email.clone().unwrap_or_default(),
            c.phone.clone(),
            c.phone.clone(),
            agents.join(","),
            String::new(),
            String::new(),
        ]);
    }
    for g in sch.groups.values().filter(|g| is_class(g)) {
        let Some([status, modified]) = f.status(&g.stamp) else {
            continue;
        };
        let homeroom = g.kind == GroupKind::Registration;
        f.classes.push(vec![
            class_id(g.uid),
            status.clone(),
            modified.clone(),
            g.name.clone().unwrap_or_default(),
            g.year.map(grade).unwrap_or_default(),
            course_id(sch, g),
            g.code.clone(),
            if homeroom { "homeroom" } else { "scheduled" }.into(),
            String::new(),
            org.clone(),
            term_id(sch),
            g.subject.clone().unwrap_or_default(),
            String::new(),
            String::new(),
        ]);
        let mut enrol = |person: String, role: &str, status: &str, primary: bool| {
            f.enrollments.push(vec![
                format!("enr-{}-{}", g.uid, person),
                status.into(),
                modified.clone(),
                class_id(g.uid),
                org.clone(),
                person,
                role.into(),
                if primary { "true" } else { "false" }.into(),
                String::new(),
                String::new(),
            ]);
        };
        for t in &g.teachers {
            enrol(staff_id(*t), "teacher", &status, true);
        }
        for s in g.students.iter().filter(|u| {
            sch.students
                .get(u)
                .is_some_and(|s| s.stamp.live() && exported(s))
        }) {
            enrol(student_id(*s), "student", &status, false);
        }
        if let Some(since) = f.delta {
            for (s, _) in g.departed.iter().filter(|(_, rev)| **rev > since) {
                enrol(student_id(*s), "student", "tobedeleted", false);
            }
        }
    }
}

/// The OneRoster 1.1 `users.csv` header, which [`Files::users`] rows follow.
const USERS_1_1: [&str; 18] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
];

/// The OneRoster 1.2 `users.csv` header.
const USERS_1_2: [&str; 23] = [
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
    "userMasterIdentifier",
    "resourceSourcedIds",
    "preferredGivenName",
    "preferredMiddleName",
    "preferredFamilyName",
    "primaryOrgSourcedId",
    "pronouns",
];

/// A 1.1 user row as 1.2 writes it: its `users.csv` row (pupils' links
/// left to their contacts' rows) and its `roles.csv` row.
fn user_1_2(row: Vec<String>) -> (Vec<String>, Vec<String>) {
    let field = |name: &str| {
        let index = USERS_1_1
            .iter()
            .position(|c| *c == name)
            .expect("a 1.1 column");
        row[index].clone()
    };
    let pupil = field("role") == "student";
    let user = USERS_1_2
        .iter()
        .map(|column| match *column {
            "agentSourcedIds" if pupil => String::new(),
            "primaryOrgSourcedId" => field("orgSourcedIds"),
            c if USERS_1_1.contains(&c) => field(c),
            _ => String::new(),
        })
        .collect();
    let role = vec![
        format!("rol-{}", field("sourcedId")),
        field("status"),
        field("dateLastModified"),
        field("sourcedId"),
        "primary".into(),
        field("role"),
        field("orgSourcedIds"),
        String::new(),
        String::new(),
        String::new(),
    ];
    (user, role)
}

/// Writes the files of a drop into a zip.
fn write(world: &World, spec: &DropSpec, f: Files) -> Vec<u8> {
    let schools: Vec<&School> = spec.schools.iter().map(|s| &world.schools[*s]).collect();
    let v1_2 = spec.version == Version::V1_2;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mode = if f.delta.is_some() { "delta" } else { "bulk" };
    let bulk_only = if f.delta.is_some() { "absent" } else { "bulk" };
    // A 1.2 delta carries an `orgs.csv` without rows.
    let orgs = if v1_2 { mode } else { bulk_only };
    let mut manifest = vec![
        ("manifest.version", "1.0"),
        ("oneroster.version", if v1_2 { "1.2" } else { "1.1" }),
        ("file.academicSessions", bulk_only),
        ("file.categories", "absent"),
        ("file.classes", mode),
        ("file.classResources", "absent"),
        ("file.courses", bulk_only),
        ("file.courseResources", "absent"),
        ("file.demographics", mode),
        ("file.enrollments", mode),
        ("file.lineItems", "absent"),
        ("file.orgs", orgs),
        ("file.resources", "absent"),
        ("file.results", "absent"),
        ("file.users", mode),
    ];
    if v1_2 {
        manifest.push(("file.roles", mode));
    }
    manifest.push(("source.systemName", "rostersync sandbox"));
    manifest.push(("source.systemCode", &schools[0].estab));
    let mut put = |name: &str, header: &[&str], rows: Vec<Vec<String>>| {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(header).unwrap();
        for r in rows {
            w.write_record(&r).unwrap();
        }
        zip.start_file(name, opts).unwrap();
        if v1_2 {
            zip.write_all("\u{feff}".as_bytes()).unwrap();
        }
        zip.write_all(&w.into_inner().unwrap()).unwrap();
    };
    put(
        "manifest.csv",
        &["propertyName", "value"],
        manifest
            .iter()
            .map(|(k, v)| vec![k.to_string(), v.to_string()])
            .collect(),
    );
    if f.delta.is_none() {
        let district = "org-1".to_string();
        let mut org_rows = vec![vec![
            district.clone(),
            String::new(),
            String::new(),
            world.trust_name.clone(),
            "district".into(),
            String::new(),
            String::new(),
        ]];
        org_rows.extend(schools.iter().map(|sch| {
            vec![
                org_id(sch),
                String::new(),
                String::new(),
                sch.name.clone(),
                "school".into(),
                sch.urn.clone(),
                district.clone(),
            ]
        }));
        put(
            "orgs.csv",
            &[
                "sourcedId",
                "status",
                "dateLastModified",
                "name",
                "type",
                "identifier",
                "parentSourcedId",
            ],
            org_rows,
        );
        let mut sessions = vec![vec![
            "ay-2027".into(),
            String::new(),
            String::new(),
            "2026-2027".into(),
            "schoolYear".into(),
            "2026-09-01".into(),
            "2027-07-23".into(),
            String::new(),
            "2027".into(),
        ]];
        sessions.extend(schools.iter().map(|sch| {
            vec![
                term_id(sch),
                String::new(),
                String::new(),
                "2026-2027 Full Year".into(),
                "term".into(),
                "2026-09-01".into(),
                "2027-07-23".into(),
                "ay-2027".into(),
                "2027".into(),
            ]
        }));
        put(
            "academicSessions.csv",
            &[
                "sourcedId",
                "status",
                "dateLastModified",
                "title",
                "type",
                "startDate",
                "endDate",
                "parentSourcedId",
                "schoolYear",
            ],
            sessions,
        );
        let courses: std::collections::BTreeSet<Vec<String>> = schools
            .iter()
            .flat_map(|sch| {
                sch.groups
                    .values()
                    .filter(|g| is_class(g))
                    .map(|g| (course_id(sch, g), org_id(sch)))
            })
            .map(|(c, org)| {
                let title = c.rsplit('-').next().unwrap_or_default().to_string();
                vec![
                    c.clone(),
                    String::new(),
                    String::new(),
                    "ay-2027".into(),
                    title.clone(),
                    title,
                    String::new(),
                    org,
                    String::new(),
                    String::new(),
                ]
            })
            .collect();
        put(
            "courses.csv",
            &[
                "sourcedId",
                "status",
                "dateLastModified",
                "schoolYearSourcedId",
                "title",
                "courseCode",
                "grades",
                "orgSourcedId",
                "subjects",
                "subjectCodes",
            ],
            courses.into_iter().collect(),
        );
    } else if v1_2 {
        // OneRoster 1.0's orgs header, over no rows.
        put(
            "orgs.csv",
            &[
                "sourcedId",
                "name",
                "type",
                "identifier",
                "metadata.classification",
                "metadata.gender",
                "metadata.boarding",
                "parentSourcedId",
            ],
            vec![],
        );
    }
    put(
        "classes.csv",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ],
        f.classes,
    );
    if v1_2 {
        let (users, roles): (Vec<_>, Vec<_>) = f.users.into_iter().map(user_1_2).unzip();
        put("users.csv", &USERS_1_2, users);
        put(
            "roles.csv",
            &[
                "sourcedId",
                "status",
                "dateLastModified",
                "userSourcedId",
                "roleType",
                "role",
                "orgSourcedId",
                "userProfileSourcedId",
                "beginDate",
                "endDate",
            ],
            roles,
        );
    } else {
        put("users.csv", &USERS_1_1, f.users);
    }
    put(
        "enrollments.csv",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ],
        f.enrollments,
    );
    let demographics = f.demographics.into_iter().map(|mut r| {
        r.extend(std::iter::repeat_n(String::new(), 11));
        r
    });
    put(
        "demographics.csv",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "birthDate",
            "sex",
            "americanIndianOrAlaskaNative",
            "asian",
            "blackOrAfricanAmerican",
            "nativeHawaiianOrOtherPacificIslander",
            "white",
            "demographicRaceTwoOrMoreRaces",
            "hispanicOrLatinoEthnicity",
            "countryOfBirthCode",
            "stateOfBirthAbbreviation",
            "cityOfBirth",
            "publicSchoolResidenceStatus",
        ],
        demographics.collect(),
    );
    zip.finish().unwrap().into_inner()
}

fn term_id(sch: &School) -> String {
    format!("term-{}-2027", sch.uid)
}
fn course_id(sch: &School, g: &Group) -> String {
    let subject = if g.kind == GroupKind::Registration {
        "Registration"
    } else {
        g.subject.as_deref().unwrap_or("General")
    };
    format!("crs-{}-{}", sch.uid, subject.replace(' ', "_"))
}

/// Writes one school's OneRoster 1.1 zip into `dir` (see [`write`]).
pub fn write_drop(
    world: &World,
    school: usize,
    kind: DropKind,
    dir: &Path,
) -> std::io::Result<PathBuf> {
    write_spec(world, &DropSpec::school(school, kind), dir)
}

/// Writes the zip into `dir` as
/// `oneroster[-1.2]-school{N}[+{M}…]-{bulk|delta-rREV}-rREV.zip`.
pub fn write_spec(world: &World, spec: &DropSpec, dir: &Path) -> std::io::Result<PathBuf> {
    let version = match spec.version {
        Version::V1_1 => "",
        Version::V1_2 => "-1.2",
    };
    let schools: Vec<String> = spec.schools.iter().map(|s| (s + 1).to_string()).collect();
    let kind = match spec.kind {
        DropKind::Bulk => "bulk".to_string(),
        DropKind::Delta { since_revision } => format!("delta-r{since_revision}"),
    };
    let name = format!(
        "oneroster{version}-school{}-{kind}-r{}.zip",
        schools.join("+"),
        world.revision
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, build(world, spec))?;
    Ok(path)
}
