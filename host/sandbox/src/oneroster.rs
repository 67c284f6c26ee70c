//! OneRoster 1.1 CSV drops: a zip per school with `manifest.csv` at the
//! root, written into a drop folder.
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

/// Builds the zip in memory.
pub fn build_zip(world: &World, school: usize, kind: DropKind) -> Vec<u8> {
    let sch = &world.schools[school];
    let mut f = Files {
        delta: match kind {
            DropKind::Bulk => None,
            DropKind::Delta { since_revision } => Some(since_revision),
        },
        users: vec![],
        classes: vec![],
        enrollments: vec![],
        demographics: vec![],
    };
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
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mode = if f.delta.is_some() { "delta" } else { "bulk" };
    let bulk_only = if f.delta.is_some() { "absent" } else { "bulk" };
    let mut manifest = vec![
        ("manifest.version", "1.0"),
        ("oneroster.version", "1.1"),
        ("file.academicSessions", bulk_only),
        ("file.categories", "absent"),
        ("file.classes", mode),
        ("file.classResources", "absent"),
        ("file.courses", bulk_only),
        ("file.courseResources", "absent"),
        ("file.demographics", mode),
        ("file.enrollments", mode),
        ("file.lineItems", "absent"),
        ("file.orgs", bulk_only),
        ("file.resources", "absent"),
        ("file.results", "absent"),
        ("file.users", mode),
    ];
    manifest.push(("source.systemName", "rostersync sandbox"));
    manifest.push(("source.systemCode", &sch.estab));
    let mut put = |name: &str, header: &[&str], rows: Vec<Vec<String>>| {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(header).unwrap();
        for r in rows {
            w.write_record(&r).unwrap();
        }
        zip.start_file(name, opts).unwrap();
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
            vec![
                vec![
                    district.clone(),
                    String::new(),
                    String::new(),
                    world.trust_name.clone(),
                    "district".into(),
                    String::new(),
                    String::new(),
                ],
                vec![
                    org.clone(),
                    String::new(),
                    String::new(),
                    sch.name.clone(),
                    "school".into(),
                    sch.urn.clone(),
                    district,
                ],
            ],
        );
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
            vec![
                vec![
                    "ay-2027".into(),
                    String::new(),
                    String::new(),
                    "2026-2027".into(),
                    "schoolYear".into(),
                    "2026-09-01".into(),
                    "2027-07-23".into(),
                    String::new(),
                    "2027".into(),
                ],
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
                ],
            ],
        );
        let mut courses: Vec<Vec<String>> = sch
            .groups
            .values()
            .filter(|g| is_class(g))
            .map(|g| course_id(sch, g))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|c| {
                let title = c.rsplit('-').next().unwrap_or_default().to_string();
                vec![
                    c.clone(),
                    String::new(),
                    String::new(),
                    "ay-2027".into(),
                    title.clone(),
                    title,
                    String::new(),
                    org.clone(),
                    String::new(),
                    String::new(),
                ]
            })
            .collect();
        courses.sort();
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
            courses,
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
    put(
        "users.csv",
        &[
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
        ],
        f.users,
    );
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

/// Writes the zip into `dir` as `oneroster-school{N}-{bulk|delta-rREV}.zip`.
pub fn write_drop(
    world: &World,
    school: usize,
    kind: DropKind,
    dir: &Path,
) -> std::io::Result<PathBuf> {
    let name = match kind {
        DropKind::Bulk => format!(
            "oneroster-school{}-bulk-r{}.zip",
            school + 1,
            world.revision
        ),
        DropKind::Delta { since_revision } => format!(
            "oneroster-school{}-delta-r{since_revision}-r{}.zip",
            school + 1,
            world.revision
        ),
    };
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, build_zip(world, school, kind))?;
    Ok(path)
}
