//! Wonde API v1.0: `/schools`, `/schools/{id}/{students|students-pre-admission|
//! students/leavers|employees|contacts|classes|groups|deletions}`.
//!
//! Auth is the school's token as the Basic user (empty password) or as a
//! Bearer token. Lists are `{data, meta:{pagination:{next, previous, more,
//! per_page (a string), current_page}, includes}}` with `page`/`per_page`
//! (default 50, at most 200), or cursor mode with `cursor=true`; dates
//! are PHP-style objects; includes are wrapped in `{data: …}`;
//! `updated_after=YYYY-MM-DD HH:MM:SS` filters;
//! `deletions?type=student|employee|contact|class` lists tombstones.
//! Leavers at `students/leavers` and the group record shape (`type` YEAR,
//! REGISTRATION, HOUSE, and `year_group` as on classes) are the likely
//! shapes, not confirmed ones.

use axum::Json;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rostersync_model::{EnrolmentStatus, GroupKind};
use serde_json::{Value, json};

use super::{not_found, page, url_with};
use crate::generator::{Contact, Group, School, Staff, Stamp, Student};
use crate::{Req, Shared};

pub fn school_id(school: &School) -> String {
    format!("A{}", 1_900_000_000 + school.uid)
}
/// Every Wonde record id: `A` and ten digits, like real ones.
pub fn id(uid: u64) -> String {
    format!("A{}", 1_000_000_000 + uid)
}

pub(crate) fn authenticate(shared: &Shared, req: &Req) -> Option<usize> {
    let token = match req.basic() {
        Some((user, _)) => user,
        None => req.bearer()?.to_string(),
    };
    shared.school_for(crate::Provider::Wonde, |c| c.wonde_token == token)
}

fn date_time(at: DateTime<Utc>) -> Value {
    json!({"date": at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(), "timezone_type": 3, "timezone": "UTC"})
}
fn date(d: NaiveDate) -> Value {
    json!({"date": format!("{} 00:00:00.000000", d.format("%Y-%m-%d")), "timezone_type": 3, "timezone": "Europe/London"})
}
fn opt_date(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, date)
}

fn initials(forename: &str, surname: &str) -> String {
    forename
        .chars()
        .take(1)
        .chain(surname.chars().take(1))
        .collect()
}

pub(crate) fn route(shared: &Shared, school: usize, req: &Req) -> Response {
    let sch = &shared.world.schools[school];
    let Some(path) = req.path.strip_prefix("/v1.0/") else {
        return not_found();
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let sid = school_id(sch);
    match segments.as_slice() {
        ["schools"] => list(shared, req, vec![sch], |s| school_json(s), &[]),
        ["schools", req_id] if *req_id == sid => {
            Json(json!({"data": school_json(sch)})).into_response()
        }
        ["schools", req_id, rest @ ..] if *req_id == sid => {
            let since = req
                .param("updated_after")
                .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok())
                .map(|t| t.and_utc());
            let fresh = |stamp: &Stamp| since.is_none_or(|t| stamp.updated_at > t);
            let includes: Vec<String> = req
                .param("include")
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default();
            let inc = |name: &str| includes.iter().any(|i| i == name);
            match rest {
                ["students"] | ["students-pre-admission"] | ["students", "leavers"] => {
                    let status = match rest {
                        ["students"] => EnrolmentStatus::OnRoll,
                        ["students", "leavers"] => EnrolmentStatus::Left,
                        _ => EnrolmentStatus::Prospective,
                    };
                    let items = sch
                        .live_students()
                        .filter(|s| s.status == status && fresh(&s.stamp))
                        .collect();
                    let render = |s: &&Student| student_json(sch, s, &inc);
                    list(shared, req, items, render, STUDENT_INCLUDES)
                }
                ["students", student] => sch
                    .live_students()
                    .find(|s| id(s.uid) == *student)
                    .map_or_else(not_found, |s| {
                        Json(json!({"data": student_json(sch, s, &inc)})).into_response()
                    }),
                ["employees"] => {
                    let items = sch.live_staff().filter(|s| fresh(&s.stamp)).collect();
                    list(
                        shared,
                        req,
                        items,
                        |s| employee_json(sch, s, &inc),
                        &["contact_details", "employment_details", "classes"],
                    )
                }
                ["contacts"] => {
                    let items = sch.live_contacts().filter(|c| fresh(&c.stamp)).collect();
                    let render = |c: &&Contact| contact_json(c, &inc);
                    list(shared, req, items, render, &["contact_details", "students"])
                }
                ["classes"] | ["groups"] => {
                    let want_classes = rest == ["classes"];
                    let items = sch
                        .live_groups()
                        .filter(|g| (g.kind == GroupKind::Class) == want_classes && fresh(&g.stamp))
                        .collect();
                    let render = |g: &&Group| group_json(sch, g, &inc);
                    list(
                        shared,
                        req,
                        items,
                        render,
                        &["students", "employees", "subject"],
                    )
                }
                ["deletions"] => {
                    let kind = req.param("type").unwrap_or("student");
                    let gone = |uid: u64, mis_id: &str, stamp: &Stamp| {
                        let (_, at) = stamp.deleted?;
                        since.is_none_or(|t| at > t).then(|| {
                            json!({"id": id(uid), "mis_id": mis_id, "type": kind, "deleted_at": date_time(at), "restored_at": null})
                        })
                    };
                    let items: Vec<Value> = match kind {
                        "student" => sch
                            .students
                            .values()
                            .filter_map(|s| gone(s.uid, &s.mis_id, &s.stamp))
                            .collect(),
                        "employee" => sch
                            .staff
                            .values()
                            .filter_map(|s| gone(s.uid, &s.mis_id, &s.stamp))
                            .collect(),
                        "contact" => sch
                            .contacts
                            .values()
                            .filter_map(|s| gone(s.uid, &s.mis_id, &s.stamp))
                            .collect(),
                        "class" => sch
                            .groups
                            .values()
                            .filter(|g| g.kind == GroupKind::Class)
                            .filter_map(|g| gone(g.uid, &g.code, &g.stamp))
                            .collect(),
                        _ => {
                            return crate::json_error(
                                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                                "The selected type is invalid.",
                            );
                        }
                    };
                    list(shared, req, items, Value::clone, &[])
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

use axum::response::IntoResponse;

const STUDENT_INCLUDES: &[&str] = &[
    "classes",
    "classes.subject",
    "education_details",
    "contact_details",
    "extended_details",
    "contacts",
    "contacts.contact_details",
    "year",
    "house",
    "registration",
    "groups",
];

/// Renders only the requested page, so large schools page in linear time.
fn list<T: Clone>(
    shared: &Shared,
    req: &Req,
    items: Vec<T>,
    render: impl Fn(&T) -> Value,
    includes: &[&str],
) -> Response {
    let per_page = req
        .param("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 200);
    // Cursor mode (`cursor=true`): the cursor names the next page, and
    // `per_page`/`current_page` come back null.
    let cursor = req.param("cursor");
    let current = match cursor {
        Some(c) => c
            .strip_prefix('c')
            .and_then(|p| p.parse().ok())
            .unwrap_or(1usize),
        None => req
            .param("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1),
    }
    .max(1);
    let (data, more) = page(&items, current, per_page);
    let data: Vec<Value> = data.iter().map(render).collect();
    let base = format!("{}/wonde", shared.base);
    let link = |p: usize| {
        let set = match cursor {
            Some(_) => ("cursor", format!("c{p}")),
            None => ("page", p.to_string()),
        };
        Value::String(url_with(&base, &req.path, &req.query, &[set]))
    };
    let (per_page_field, current_field) = match cursor {
        Some(_) => (Value::Null, Value::Null),
        None => (json!(per_page.to_string()), json!(current)),
    };
    Json(json!({
        "data": data,
        "meta": {
            "pagination": {
                "next": if more { link(current + 1) } else { Value::Null },
                "previous": if current > 1 && cursor.is_none() { link(current - 1) } else { Value::Null },
                "more": more,
                "per_page": per_page_field,
                "current_page": current_field,
            },
            "includes": includes,
        }
    }))
    .into_response()
}

fn school_json(sch: &School) -> Value {
    json!({
        "id": school_id(sch), "name": sch.name, "establishment_number": &sch.estab[3..],
        "urn": sch.urn.parse::<u64>().unwrap_or(0), "la_code": &sch.estab[..3], "mis": "SIMS",
        "timezone": "Europe/London",
        "region": {"code": "GB", "domain": "api.wonde.com", "school_url": "", "identifiers": {"la_code": &sch.estab[..3], "establishment_number": &sch.estab[3..], "urn": sch.urn}},
    })
}

fn details(email: Option<&str>, phone: Option<&str>) -> Value {
    json!({"data": {
        "phones": {"phone": phone, "primary": phone, "home": null, "work": null, "mobile": phone},
        "emails": {"email": email, "primary": email, "home": email, "work": null},
        "addresses": {"home": null, "work": null},
    }})
}

fn short_group(g: Option<&Group>) -> Value {
    g.map_or(Value::Null, |g| {
        json!({"data": {"id": id(g.uid), "mis_id": g.code, "name": g.name, "code": g.code, "description": g.name, "type": group_type(g.kind)}})
    })
}

fn group_type(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Year => "YEAR",
        GroupKind::Registration => "REGISTRATION",
        GroupKind::House => "HOUSE",
        _ => "OTHER",
    }
}

fn student_json(sch: &School, s: &Student, inc: &dyn Fn(&str) -> bool) -> Value {
    let mut v = json!({
        "id": id(s.uid), "upi": format!("{:032x}", s.uid * 2_654_435_761), "mis_id": s.mis_id,
        "initials": initials(&s.forename, &s.surname), "title": null,
        "surname": s.surname, "forename": s.preferred_forename.as_deref().unwrap_or(&s.forename),
        "middle_names": s.middle_names, "legal_surname": s.surname, "legal_forename": s.forename,
        "gender": if s.gender == "F" { "FEMALE" } else { "MALE" }, "gender_identity": null,
        "date_of_birth": date(s.date_of_birth), "restored_at": null,
        "created_at": date_time(super::super::generator::epoch()), "updated_at": date_time(s.stamp.updated_at),
    });
    let o = v.as_object_mut().unwrap();
    if inc("education_details") {
        o.insert("education_details".into(), json!({"data": {
            "upn": s.upn, "former_upn": null, "admission_number": s.mis_id,
            "admission_date": date(s.start_date), "leaving_date": opt_date(s.leaving_date),
            "current_nc_year": s.year.to_string(), "enrolment_status": if s.status == EnrolmentStatus::Prospective { "APPLICANT" } else { "C" },
            "application": s.admission.as_ref().map(|a| json!({"active": a.application_active, "admission_date": date(a.admission_date), "status": a.admission_status, "intake_group": a.intake})),
        }}));
    }
    if inc("contact_details") {
        o.insert("contact_details".into(), details(s.email.as_deref(), None));
    }
    if inc("extended_details") {
        o.insert(
            "extended_details".into(),
            json!({"data": {"sen_status": null, "ever_in_care": false, "fsm": false}}),
        );
    }
    if inc("year") {
        o.insert(
            "year".into(),
            short_group(
                sch.year_group(s.year)
                    .filter(|_| s.status != EnrolmentStatus::Prospective),
            ),
        );
    }
    if inc("registration") {
        o.insert(
            "registration".into(),
            short_group(sch.group(s.registration)),
        );
    }
    if inc("house") {
        o.insert("house".into(), short_group(sch.group(s.house)));
    }
    if inc("classes") {
        let classes: Vec<Value> = sch
            .groups_of(s.uid)
            .filter(|g| g.kind == GroupKind::Class)
            .map(|g| {
                let mut c = class_core(g);
                if inc("classes.subject") {
                    c["subject"] = json!({"data": {"id": format!("S{}", g.code.get(1..3).unwrap_or("")), "name": g.subject}});
                }
                c
            })
            .collect();
        o.insert("classes".into(), json!({"data": classes}));
    }
    if inc("groups") {
        let groups: Vec<Value> = sch
            .groups_of(s.uid)
            .filter(|g| g.kind != GroupKind::Class)
            .map(|g| short_group(Some(g))["data"].clone())
            .collect();
        o.insert("groups".into(), json!({"data": groups}));
    }
    if inc("contacts") {
        let contacts: Vec<Value> = sch
            .contacts_of(s.uid)
            .into_iter()
            .map(|(c, link)| {
                let mut cj = contact_json(c, &|name| name == "contact_details" && inc("contacts.contact_details"));
                cj["relationship"] = json!({
                    "bill_payer": link.priority == 1, "lives_with_pupil": link.priority <= 2, "email_bills": false,
                    "copy_bills": false, "court_order": false, "pupil_report": link.parental_responsibility,
                    "parental_responsibility": link.parental_responsibility, "correspondence": link.priority <= 2,
                    "priority": link.priority, "relationship": link.relationship,
                });
                cj
            })
            .collect();
        o.insert("contacts".into(), json!({"data": contacts}));
    }
    v
}

fn employee_json(sch: &School, s: &Staff, inc: &dyn Fn(&str) -> bool) -> Value {
    let mut v = json!({
        "id": id(s.uid), "upi": format!("{:032x}", s.uid * 2_654_435_761), "mis_id": s.mis_id,
        "initials": initials(&s.forename, &s.surname), "title": s.title, "surname": s.surname,
        "forename": s.forename, "middle_names": null, "legal_surname": s.surname, "legal_forename": s.forename,
        "gender": null, "date_of_birth": date(s.date_of_birth), "restored_at": null,
        "created_at": date_time(super::super::generator::epoch()), "updated_at": date_time(s.stamp.updated_at),
    });
    let o = v.as_object_mut().unwrap();
    if inc("contact_details") {
        o.insert("contact_details".into(), details(s.email.as_deref(), None));
    }
    if inc("employment_details") {
        o.insert("employment_details".into(), json!({"data": {"current": true, "teaching_staff": true, "staff_code": s.mis_id, "payroll_number": s.mis_id}}));
    }
    if inc("classes") {
        let classes: Vec<Value> = sch
            .live_groups()
            .filter(|g| g.kind == GroupKind::Class && g.teachers.contains(&s.uid))
            .map(class_core)
            .collect();
        o.insert("classes".into(), json!({"data": classes}));
    }
    v
}

fn contact_json(c: &Contact, inc: &dyn Fn(&str) -> bool) -> Value {
    let mut v = json!({
        "id": id(c.uid), "upi": format!("{:032x}", c.uid * 2_654_435_761), "mis_id": c.mis_id,
        "initials": initials(&c.forename, &c.surname), "title": c.title, "surname": c.surname,
        "forename": c.forename, "middle_names": null, "gender": null, "date_of_birth": null,
        "restored_at": null,
        "created_at": date_time(super::super::generator::epoch()), "updated_at": date_time(c.stamp.updated_at),
    });
    if inc("contact_details") {
        v["contact_details"] = details(c.email.as_deref(), Some(&c.phone));
    }
    v
}

fn class_core(g: &Group) -> Value {
    json!({
        "id": id(g.uid), "mis_id": g.code, "type": null, "name": g.name, "code": g.code,
        "description": g.subject.as_ref().map(|s| format!("{s} {}", g.code)),
        "subject": format!("S{}", g.code.get(1..3).unwrap_or("")), "alternative": false, "priority": null,
        "academic_year": null, "year_group": g.year.map(|y| y.to_string()), "restored_at": null,
        "created_at": date_time(super::super::generator::epoch()), "updated_at": date_time(g.stamp.updated_at),
    })
}

fn group_json(sch: &School, g: &Group, inc: &dyn Fn(&str) -> bool) -> Value {
    let mut v = if g.kind == GroupKind::Class {
        class_core(g)
    } else {
        let mut v = short_group(Some(g))["data"].clone();
        // The NC year, as classes carry it: a registration group's year is
        // otherwise nowhere in the API.
        v["year_group"] = json!(g.year.map(|y| y.to_string()));
        v["created_at"] = date_time(super::super::generator::epoch());
        v["updated_at"] = date_time(g.stamp.updated_at);
        v
    };
    if inc("subject") && g.kind == GroupKind::Class {
        v["subject"] = json!({"data": {"id": format!("S{}", g.code.get(1..3).unwrap_or("")), "code": g.code.get(1..3), "name": g.subject}});
    }
    if inc("students") {
        let students: Vec<Value> = g
            .students
            .iter()
            .filter_map(|u| sch.students.get(u).filter(|s| s.stamp.live()))
            .map(|s| student_json(sch, s, &|_| false))
            .collect();
        v["students"] = json!({"data": students});
    }
    if inc("employees") {
        let staff: Vec<Value> = g
            .teachers
            .iter()
            .filter_map(|u| sch.staff.get(u).filter(|s| s.stamp.live()))
            .map(|s| employee_json(sch, s, &|_| false))
            .collect();
        v["employees"] = json!({"data": staff});
    }
    v
}
