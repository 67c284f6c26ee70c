//! Arbor REST v2: `/arbor/{school-host}/rest-v2/{resource}[/{id}]` and
//! `/rest-v2/{resource}/changelog?from-revision=N[&to-revision=M]`.
//!
//! Arbor gives each school its own host name; the sandbox puts it in the
//! path. Auth is HTTP Basic with the school's app credential. Resources:
//! `students`, `staff`, `guardians`, `student-guardian-relationships`,
//! `registration-forms`, `registration-form-memberships`,
//! `academic-units`, `academic-unit-enrolments`, `academic-unit-leads`.
//! Lists answer `{"{resource}": [ … ]}` paged by `page-number` (from 1) and
//! `page-size` (default 100); a short page is the last. Unlike the real
//! API, which lists references, list entries carry the full resource, and
//! a Student, Staff or Guardian embeds its `person` (names, date of birth)
//! and `emailAddress`, to spare connectors one request per record. The
//! changelog answers `{"changes":[{changeType, fromRevision, toRevision,
//! resource:{entityType,id,href}}], "currentRevision"}`; Arbor does not
//! carry applicants or leavers here (pupils on roll only).

use axum::Json;
use axum::response::{IntoResponse, Response};
use rostersync_model::{EnrolmentStatus, GroupKind};
use serde_json::{Value, json};

use super::{not_found, page};
use crate::generator::{School, Stamp};
use crate::{Req, Shared};

pub(crate) fn authenticate(shared: &Shared, req: &Req) -> Option<usize> {
    let (user, password) = req.basic()?;
    let host = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()?
        .to_string();
    shared.school_for(crate::Provider::Arbor, |c| {
        c.arbor_user == user && c.arbor_password == password && c.arbor_host == host
    })
}

/// Arbor's numeric id of a membership row, from its group and pupil.
pub fn membership_id(group: u64, student: u64) -> u64 {
    group * 1_000_000 + student
}

pub const RESOURCES: &[(&str, &str)] = &[
    ("students", "Student"),
    ("staff", "Staff"),
    ("guardians", "Guardian"),
    (
        "student-guardian-relationships",
        "StudentGuardianRelationship",
    ),
    ("registration-forms", "RegistrationForm"),
    (
        "registration-form-memberships",
        "RegistrationFormMembership",
    ),
    ("academic-units", "AcademicUnit"),
    ("academic-unit-enrolments", "AcademicUnitEnrolment"),
    ("academic-unit-leads", "AcademicUnitLead"),
];

pub fn in_arbor(s: &crate::generator::Student) -> bool {
    s.status == EnrolmentStatus::OnRoll
}

fn reference(resource: &str, id: u64) -> Value {
    let entity = RESOURCES
        .iter()
        .find(|(r, _)| *r == resource)
        .map_or("", |(_, e)| e);
    json!({"entityType": entity, "id": id, "href": format!("/rest-v2/{resource}/{id}")})
}

fn person(
    id: u64,
    title: Option<&str>,
    first: &str,
    preferred: Option<&str>,
    middle: Option<&str>,
    last: &str,
    dob: Option<chrono::NaiveDate>,
) -> Value {
    json!({"entityType": "Person", "id": id, "href": format!("/rest-v2/people/{id}"), "title": title,
        "legalFirstName": first, "preferredFirstName": preferred.unwrap_or(first), "legalMiddleNames": middle,
        "legalLastName": last, "preferredLastName": last, "dateOfBirth": dob.map(|d| d.to_string())})
}

fn email(owner: u64, address: Option<&str>) -> Value {
    address.map_or(Value::Null, |a| json!({"entityType": "EmailAddress", "id": owner, "emailAddress": a, "emailAddressType": "WORK"}))
}

/// Every row of a resource, live or tombstoned, with its stamp.
pub(crate) fn rows(sch: &School, resource: &str) -> Vec<(u64, Stamp, Value)> {
    let mut out = vec![];
    match resource {
        "students" => {
            for s in sch.students.values().filter(|s| in_arbor(s)) {
                let v = json!({"studentNumber": s.mis_id, "upn": s.upn, "legacySystemId": s.mis_id,
                    "person": person(s.uid, None, &s.forename, s.preferred_forename.as_deref(), s.middle_names.as_deref(), &s.surname, Some(s.date_of_birth)),
                    "emailAddress": email(s.uid, s.email.as_deref()), "startDate": s.start_date.to_string(),
                    "yearGroup": format!("Year {}", s.year),
                    "registrationForm": s.registration.map(|r| reference("registration-forms", r))});
                out.push((s.uid, s.stamp, v));
            }
        }
        "staff" => {
            for s in sch.staff.values() {
                let v = json!({"staffNumber": s.mis_id, "legacySystemId": s.mis_id,
                    "person": person(s.uid, Some(&s.title), &s.forename, None, None, &s.surname, Some(s.date_of_birth)),
                    "emailAddress": email(s.uid, s.email.as_deref())});
                out.push((s.uid, s.stamp, v));
            }
        }
        "guardians" => {
            for c in sch.contacts.values() {
                if c.stamp.live() && !sch.students_of(c.uid).iter().any(|(s, _)| in_arbor(s)) {
                    continue;
                }
                let v = json!({"legacySystemId": c.mis_id, "preferredContactMethod": "EMAIL",
                    "person": person(c.uid, Some(&c.title), &c.forename, None, None, &c.surname, None),
                    "emailAddress": email(c.uid, c.email.as_deref())});
                out.push((c.uid, c.stamp, v));
            }
        }
        "student-guardian-relationships" => {
            for (&(s, c), link) in &sch.links {
                let (Some(st), Some(ct)) = (sch.students.get(&s), sch.contacts.get(&c)) else {
                    continue;
                };
                if !in_arbor(st) {
                    continue;
                }
                let stamp = if st.stamp.live() { ct.stamp } else { st.stamp };
                let v = json!({"student": reference("students", s), "guardian": reference("guardians", c),
                    "guardianRelationshipType": {"entityType": "GuardianRelationshipType", "code": link.relationship.to_uppercase().replace(' ', "_"), "label": link.relationship},
                    "isLegalGuardian": link.parental_responsibility, "isPrimaryGuardian": link.priority == 1,
                    "isAuthorizedToCollect": link.priority <= 2, "emergencyContactPriority": link.priority});
                out.push((membership_id(s, c), stamp, v));
            }
        }
        "registration-forms" | "academic-units" => {
            let kind = if resource == "registration-forms" {
                GroupKind::Registration
            } else {
                GroupKind::Class
            };
            for g in sch.groups.values().filter(|g| g.kind == kind) {
                let v = if kind == GroupKind::Registration {
                    json!({"code": g.code, "registrationFormName": g.name, "shortName": g.code, "academicYear": {"entityType": "AcademicYear", "code": "2026/27"}, "yearGroup": g.year.map(|y| format!("Year {y}"))})
                } else {
                    json!({"uniqueIdentifier": g.code, "academicUnitName": g.name, "shortName": g.code, "academicUnitCode": g.code,
                        "subject": {"entityType": "Subject", "name": g.subject}, "academicYear": {"entityType": "AcademicYear", "code": "2026/27"},
                        "academicLevel": g.year.map(|y| format!("Year {y}"))})
                };
                out.push((g.uid, g.stamp, v));
            }
        }
        "registration-form-memberships" | "academic-unit-enrolments" => {
            let (kind, parent, field) = if resource == "registration-form-memberships" {
                (
                    GroupKind::Registration,
                    "registration-forms",
                    "registrationForm",
                )
            } else {
                (GroupKind::Class, "academic-units", "academicUnit")
            };
            for g in sch.groups.values().filter(|g| g.kind == kind) {
                for s in &g.students {
                    let Some(st) = sch.students.get(s) else {
                        continue;
                    };
                    let mut v = json!({"student": reference("students", *s), "startDate": "2026-09-01", "endDate": null});
                    v[field] = reference(parent, g.uid);
                    if kind == GroupKind::Class {
                        v["enrolmentStatus"] = json!("ENROLLED");
                    }
                    let mut stamp = st.stamp;
                    if st.stamp.live() && g.stamp.updated_rev > stamp.updated_rev {
                        stamp.touch(g.stamp.updated_rev, g.stamp.updated_at);
                    }
                    out.push((membership_id(g.uid, *s), stamp, v));
                }
                for (s, rev) in &g.departed {
                    let mut v = json!({"student": reference("students", *s)});
                    v[field] = reference(parent, g.uid);
                    let mut stamp = Stamp::new(1, g.stamp.updated_at);
                    stamp.delete(*rev, g.stamp.updated_at);
                    out.push((membership_id(g.uid, *s), stamp, v));
                }
            }
        }
        "academic-unit-leads" => {
            for g in sch.groups.values().filter(|g| g.kind == GroupKind::Class) {
                for t in &g.teachers {
                    let v = json!({"academicUnit": reference("academic-units", g.uid), "staff": reference("staff", *t), "startDate": "2026-09-01", "endDate": null});
                    out.push((membership_id(g.uid, *t), g.stamp, v));
                }
            }
        }
        _ => {}
    }
    out.sort_by_key(|(id, _, _)| *id);
    for (id, _, v) in &mut out {
        let r = reference(resource, *id);
        for key in ["entityType", "id", "href"] {
            v[key] = r[key].clone();
        }
    }
    out
}

pub(crate) fn route(shared: &Shared, school: usize, req: &Req) -> Response {
    let sch = &shared.world.schools[school];
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["rest-v2", resource] if RESOURCES.iter().any(|(r, _)| r == resource) => {
            let size = req
                .param("page-size")
                .and_then(|p| p.parse().ok())
                .unwrap_or(100usize)
                .clamp(1, 1000);
            let number = req
                .param("page-number")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1usize);
            let live: Vec<Value> = rows(sch, resource)
                .into_iter()
                .filter(|(_, s, _)| s.live())
                .map(|(_, _, v)| v)
                .collect();
            let (data, _) = page(&live, number, size);
            Json(wrap(resource, Value::Array(data))).into_response()
        }
        ["rest-v2", resource, "changelog"] if RESOURCES.iter().any(|(r, _)| r == resource) => {
            let current = shared.world.revision;
            let from = req
                .param("from-revision")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0u64);
            let to = req
                .param("to-revision")
                .and_then(|p| p.parse().ok())
                .unwrap_or(current)
                .min(current);
            let changes: Vec<Value> = rows(sch, resource)
                .into_iter()
                .filter(|(_, s, _)| s.updated_rev > from && s.updated_rev <= to)
                .map(|(id, s, _)| {
                    let change = if s.deleted.is_some() { "DELETE" } else if s.created_rev > from { "CREATE" } else { "UPDATE" };
                    json!({"changeType": change, "fromRevision": from, "toRevision": s.updated_rev, "resource": reference(resource, id)})
                })
                .collect();
            Json(json!({"changes": changes, "currentRevision": current})).into_response()
        }
        ["rest-v2", resource, id] => {
            let Ok(id) = id.parse::<u64>() else {
                return not_found();
            };
            let singular = RESOURCES.iter().find(|(r, _)| r == resource).map(|(_, e)| {
                let mut s = e.to_string();
                s[..1].make_ascii_lowercase();
                s
            });
            match (
                singular,
                rows(sch, resource)
                    .into_iter()
                    .find(|(i, s, _)| *i == id && s.live()),
            ) {
                (Some(key), Some((_, _, v))) => Json(wrap(&key, v)).into_response(),
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn wrap(key: &str, v: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(key.to_string(), v);
    Value::Object(m)
}
