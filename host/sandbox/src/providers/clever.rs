//! Clever API v3.0: `/districts`, `/schools`, `/users?role=`, `/users/{id}`,
//! `/sections`, `/sections/{id}`, `/events`.
//!
//! Sources: Clever's Swagger definitions, Clever/swagger-api `v3.0.yml`
//! and `v3.0-events.yml` (the paths, `limit`/`starting_after`, the list
//! envelope, every field of `User`, `Student`, `Teacher`, `Staff`,
//! `Contact`, `StudentRelationship` and `Section` served here, the
//! `grade`, `subject`, `relationship` and `type` enums, and an event as
//! `{id, type, created, data: {object}, previous_attributes}` with
//! `previous_attributes` beside `data` on `*.updated` only); Clever's docs
//! (dev.clever.com "Student contacts": a contact's whole name in
//! `name.last`). A teacher carries `sis_id` and `teacher_number`; a staff
//! member `staff_id` and no `sis_id`, as the definitions have it.
//! The specification is silent on what `previous_attributes` holds
//! beyond "additionalProperties": here a section's update carries the
//! `students` list it had before the changes since the initial load, and
//! a user's update carries `{}`.
//!
//! Bearer token per school (a school-scoped app token). Lists are
//! `{data:[{data:{…}, uri}], links:[{rel, uri}]}` with `limit` (default
//! 100, at most 10000) and `starting_after`; the next link carries
//! `starting_after=<last id>`. Ids are 24 hex digits like Mongo ObjectIds.
//! Contacts are users with `roles.contact.student_relationships`; their
//! full name is in `name.last`. Sections are teaching classes and
//! registration groups (subject `homeroom/advisory`); Clever has no year
//! groups or houses. Events are derived from the change stamps, one event
//! per record holding its latest state (`*.created`, `*.updated`,
//! `*.deleted`), ordered by revision.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rostersync_model::{ContactType, EnrolmentStatus, GroupKind};
use serde_json::{Value, json};

use super::not_found;
use crate::generator::{Contact, Group, School, Staff, Stamp, Student};
use crate::{Req, Shared};

pub fn id(uid: u64) -> String {
    format!("5a{uid:022x}")
}
pub fn district_id() -> String {
    id(1)
}

fn iso(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
fn us_date(d: NaiveDate) -> String {
    d.format("%-m/%-d/%Y").to_string()
}

/// Clever's enum for relationships, from the school's free text.
pub fn relationship(text: &str) -> &'static str {
    match text {
        "Mother" | "Father" | "Step Mother" => "Parent",
        "Grandparent" => "Grandparent",
        "Aunt" | "Uncle" => "Aunt/Uncle",
        _ => "Other",
    }
}
pub fn contact_type(t: ContactType) -> &'static str {
    match t {
        ContactType::Primary => "Primary",
        ContactType::Secondary => "Secondary",
        ContactType::Emergency => "Emergency",
        ContactType::Other => "Other",
    }
}
pub fn subject(g: &Group) -> &'static str {
    if g.kind == GroupKind::Registration {
        return "homeroom/advisory";
    }
    match g.subject.as_deref() {
        Some("Mathematics") => "math",
        Some("English") => "english/language arts",
        Some("Science") => "science",
        Some("History" | "Geography") => "social studies",
        Some("French") => "language",
        Some("Art") => "arts and music",
        Some("Physical Education") => "PE and health",
        _ => "other",
    }
}
/// UK year 7 is US grade 6.
pub fn grade(year: u8) -> String {
    (year - 1).to_string()
}
/// Staff who teach or tutor a group are teachers; the rest are staff.
pub fn is_teacher(sch: &School, staff: u64) -> bool {
    sch.live_groups().any(|g| g.teachers.contains(&staff))
}
/// Clever carries pupils on roll only; applicants and leavers are not synced.
pub fn in_clever(s: &Student) -> bool {
    s.status == EnrolmentStatus::OnRoll
}
pub fn is_section(g: &Group) -> bool {
    matches!(g.kind, GroupKind::Class | GroupKind::Registration)
}

pub(crate) fn route(shared: &Shared, school: usize, req: &Req) -> Response {
    let sch = &shared.world.schools[school];
    let Some(path) = req.path.strip_prefix("/v3.0/") else {
        return not_found();
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["districts"] => list(req, "/districts", vec![(district_id(), ())], |_| {
            district_json(shared)
        }),
        ["schools"] => list(req, "/schools", vec![(id(sch.uid), ())], |_| {
            school_json(sch)
        }),
        ["users"] => {
            let role = req.param("role");
            let mut items: Vec<(String, UserRef)> = vec![];
            if role.is_none_or(|r| r == "student") {
                items.extend(
                    sch.live_students()
                        .filter(|s| in_clever(s))
                        .map(|s| (id(s.uid), UserRef::Student(s))),
                );
            }
            for s in sch.live_staff() {
                let r = if is_teacher(sch, s.uid) {
                    "teacher"
                } else {
                    "staff"
                };
                if role.is_none_or(|x| x == r) {
                    items.push((id(s.uid), UserRef::Staff(s)));
                }
            }
            if role.is_none_or(|r| r == "contact") {
                items.extend(
                    sch.live_contacts()
                        .filter(|c| !visible_students(sch, c).is_empty())
                        .map(|c| (id(c.uid), UserRef::Contact(c))),
                );
            }
            items.sort_by(|a, b| a.0.cmp(&b.0));
            list(req, "/users", items, |u| match u {
                UserRef::Student(s) => student_json(sch, s),
                UserRef::Staff(s) => staff_json(sch, s),
                UserRef::Contact(c) => contact_json(sch, c),
            })
        }
        ["users", uid] => find_user(sch, uid).map_or_else(not_found, |u| {
            Json(json!({"data": u, "links": []})).into_response()
        }),
        ["sections"] => {
            let items = sch
                .live_groups()
                .filter(|g| is_section(g))
                .map(|g| (id(g.uid), g))
                .collect();
            list(req, "/sections", items, |g| section_json(sch, g))
        }
        ["sections", gid] => sch
            .live_groups()
            .find(|g| is_section(g) && id(g.uid) == *gid)
            .map_or_else(not_found, |g| {
                Json(json!({"data": section_json(sch, g), "links": []})).into_response()
            }),
        ["events"] => list(req, "/events", events(sch), Value::clone),
        _ => not_found(),
    }
}

fn find_user(sch: &School, uid: &str) -> Option<Value> {
    if let Some(s) = sch
        .live_students()
        .find(|s| in_clever(s) && id(s.uid) == uid)
    {
        return Some(student_json(sch, s));
    }
    if let Some(s) = sch.live_staff().find(|s| id(s.uid) == uid) {
        return Some(staff_json(sch, s));
    }
    sch.live_contacts()
        .find(|c| id(c.uid) == uid)
        .map(|c| contact_json(sch, c))
}

#[derive(Clone, Copy)]
enum UserRef<'a> {
    Student(&'a Student),
    Staff(&'a Staff),
    Contact(&'a Contact),
}

/// Renders only the requested page, so large schools page in linear time.
fn list<T>(
    req: &Req,
    path: &str,
    items: Vec<(String, T)>,
    render: impl Fn(&T) -> Value,
) -> Response {
    let limit = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 10_000);
    let after = req.param("starting_after");
    let start = after.map_or(0, |a| items.partition_point(|(id, _)| id.as_str() <= a));
    let slice = &items[start.min(items.len())..(start + limit).min(items.len())];
    let mut extra: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k != "starting_after" && k != "limit")
        .map(|(k, v)| format!("{}={}", super::encode(k), super::encode(v)))
        .collect();
    extra.insert(0, format!("limit={limit}"));
    let base = format!("/v3.0{path}?{}", extra.join("&"));
    let mut links = vec![
        json!({"rel": "self", "uri": match after { Some(a) => format!("{base}&starting_after={a}"), None => base.clone() }}),
    ];
    if start + limit < items.len()
        && let Some((last, _)) = slice.last()
    {
        links.push(json!({"rel": "next", "uri": format!("{base}&starting_after={last}")}));
    }
    let data: Vec<Value> = slice
        .iter()
        .map(|(id, v)| json!({"data": render(v), "uri": format!("/v3.0{path}/{id}")}))
        .collect();
    Json(json!({"data": data, "links": links})).into_response()
}

fn district_json(shared: &Shared) -> Value {
    json!({"id": district_id(), "name": shared.world.trust_name, "state": "running", "sis_type": "onerosterCSV", "last_sync": iso(shared.world.now)})
}

fn school_json(sch: &School) -> Value {
    json!({"id": id(sch.uid), "district": district_id(), "name": sch.name, "sis_id": sch.estab, "school_number": sch.urn, "state_id": sch.urn, "low_grade": "6", "high_grade": "10", "created": iso(crate::generator::epoch()), "last_modified": iso(crate::generator::epoch())})
}

fn stamps(stamp: &Stamp) -> (String, String) {
    (iso(crate::generator::epoch()), iso(stamp.updated_at))
}

pub(crate) fn student_json(sch: &School, s: &Student) -> Value {
    let (created, modified) = stamps(&s.stamp);
    json!({
        "id": id(s.uid), "district": district_id(), "email": s.email, "created": created, "last_modified": modified,
        "name": {"first": s.forename, "middle": s.middle_names, "last": s.surname},
        "roles": {"student": {
            "created": created, "last_modified": modified, "credentials": {"district_username": s.email.as_ref().map(|e| e.split('@').next().unwrap_or_default().to_string())},
            "dob": us_date(s.date_of_birth), "ell_status": "", "gender": s.gender, "grade": grade(s.year),
            "graduation_year": (2026 + 13 - i32::from(s.year)).to_string(), "hispanic_ethnicity": "", "race": "",
            "enrollments": [{"school": id(sch.uid), "start_date": s.start_date.to_string(), "end_date": s.leaving_date.map(|d| d.to_string())}],
            "school": id(sch.uid), "schools": [id(sch.uid)], "sis_id": s.mis_id, "state_id": s.upn, "student_number": s.mis_id,
            "legacy_id": s.mis_id, "location": {}, "ext": {},
        }},
    })
}

fn staff_json(sch: &School, s: &Staff) -> Value {
    let (created, modified) = stamps(&s.stamp);
    let role = if is_teacher(sch, s.uid) {
        "teacher"
    } else {
        "staff"
    };
    let credentials = json!({"district_username": s.email.as_ref().map(|e| e.split('@').next().unwrap_or_default().to_string())});
    let mut roles = serde_json::Map::new();
    let fields = if role == "teacher" {
        json!({"created": created, "last_modified": modified, "credentials": credentials,
            "district": district_id(), "school": id(sch.uid), "schools": [id(sch.uid)], "sis_id": format!("T{}", s.mis_id),
            "teacher_number": s.mis_id, "state_id": null, "title": s.title, "legacy_id": s.mis_id, "ext": {}})
    } else {
        json!({"credentials": credentials, "department": null, "roles": ["Support staff"],
            "schools": [id(sch.uid)], "staff_id": s.mis_id, "title": s.title, "legacy_id": s.mis_id, "ext": {}})
    };
    roles.insert(role.into(), fields);
    json!({"id": id(s.uid), "district": district_id(), "email": s.email, "created": created, "last_modified": modified,
        "name": {"first": s.forename, "middle": null, "last": s.surname}, "roles": roles})
}

/// The contact's links to students Clever can see.
pub fn visible_students<'a>(
    sch: &'a School,
    c: &Contact,
) -> Vec<(&'a Student, &'a crate::generator::ContactLink)> {
    sch.students_of(c.uid)
        .into_iter()
        .filter(|(s, _)| in_clever(s))
        .collect()
}

fn contact_json(sch: &School, c: &Contact) -> Value {
    let (created, modified) = stamps(&c.stamp);
    let rels: Vec<Value> = visible_students(sch, c)
        .into_iter()
        .map(|(s, l)| json!({"student": id(s.uid), "relationship": relationship(&l.relationship), "type": contact_type(l.contact_type)}))
        .collect();
    json!({"id": id(c.uid), "district": district_id(), "email": c.email, "created": created, "last_modified": modified,
        "name": {"first": null, "middle": null, "last": format!("{} {}", c.forename, c.surname)},
        "roles": {"contact": {"phone": c.phone, "phone_type": "Cell", "sis_id": c.mis_id, "legacy_id": c.mis_id, "student_relationships": rels}}})
}

fn section_json(sch: &School, g: &Group) -> Value {
    let (created, modified) = stamps(&g.stamp);
    let students: Vec<String> = g
        .students
        .iter()
        .filter(|u| {
            sch.students
                .get(u)
                .is_some_and(|s| s.stamp.live() && in_clever(s))
        })
        .map(|u| id(*u))
        .collect();
    let teachers: Vec<String> = g
        .teachers
        .iter()
        .filter(|u| sch.staff.get(u).is_some_and(|s| s.stamp.live()))
        .map(|u| id(*u))
        .collect();
    json!({"id": id(g.uid), "district": district_id(), "school": id(sch.uid), "name": g.name, "sis_id": g.code,
        "section_number": g.code, "subject": subject(g), "grade": g.year.map(grade), "period": null,
        "course": null, "term_id": null, "created": created, "last_modified": modified,
        "teacher": teachers.first(), "teachers": teachers, "students": students, "ext": {}})
}

/// One event per changed record, its latest state, after the initial load.
fn events(sch: &School) -> Vec<(String, Value)> {
    let mut out: Vec<(u64, u64, &str, Value)> = vec![];
    let kind = |stamp: &Stamp| {
        if stamp.deleted.is_some() {
            Some("deleted")
        } else if stamp.created_rev > 1 {
            Some("created")
        } else if stamp.updated_rev > 1 {
            Some("updated")
        } else {
            None
        }
    };
    for s in sch.students.values().filter(|s| in_clever(s)) {
        if let Some(k) = kind(&s.stamp) {
            out.push((
                s.stamp.updated_rev,
                s.uid,
                k,
                json!({"type": format!("users.{k}"), "object": student_json(sch, s), "previous": {}}),
            ));
        }
    }
    for c in sch.contacts.values() {
        if let Some(k) = kind(&c.stamp) {
            out.push((
                c.stamp.updated_rev,
                c.uid,
                k,
                json!({"type": format!("users.{k}"), "object": contact_json(sch, c), "previous": {}}),
            ));
        }
    }
    for g in sch.groups.values().filter(|g| is_section(g)) {
        if let Some(k) = kind(&g.stamp) {
            // Before the changes: today's pupils and those who left since.
            let before: std::collections::BTreeSet<u64> = g
                .students
                .iter()
                .chain(
                    g.departed
                        .iter()
                        .filter(|(_, rev)| **rev > 1)
                        .map(|(u, _)| u),
                )
                .copied()
                .collect();
            let previous: Vec<String> = before
                .into_iter()
                .filter(|u| sch.students.get(u).is_some_and(in_clever))
                .map(id)
                .collect();
            out.push((
                g.stamp.updated_rev,
                g.uid,
                k,
                json!({"type": format!("sections.{k}"), "object": section_json(sch, g),
                    "previous": {"students": previous}}),
            ));
        }
    }
    out.sort_by_key(|(rev, uid, _, _)| (*rev, *uid));
    out.into_iter()
        .map(|(rev, uid, k, v)| {
            let eid = format!("5e{rev:010x}{uid:012x}");
            let at = v["object"]["last_modified"].clone();
            let mut event = json!({"id": eid, "created": at, "type": v["type"],
                "data": {"object": v["object"]}});
            if k == "updated" {
                event["previous_attributes"] = v["previous"].clone();
            }
            (eid, event)
        })
        .collect()
}
