//! Scholarpack REST API v1: `/scholarpack/api/v1/{students|staff|contacts|groups}/`.
//!
//! OAuth 2.0 bearer token per school (the authorization-code exchange is
//! out of scope: the sandbox hands out the token directly). Lists are
//! `{has_next, has_prev, next_num, page, pages, per_page, prev_num,
//! next_uri, prev_uri, data}` with `page` and `per_page` (default 50, at
//! most 100). Sources: Scholarpack's support articles "About the
//! ScholarPack API" (360030539152; default `per_page` 50) and "For Data
//! Integrators – About the ScholarPack API" (6173665308189; default 100),
//! which settle the URI form, the bearer token and the page envelope. They
//! are silent on every record's fields and name no resource but
//! `students`: the staff, contacts and groups resources and all field names
//! here are likely shapes, not confirmed ones. Scholarpack is a
//! primary-school MIS with no change feed: connectors read in full.

use axum::Json;
use axum::response::{IntoResponse, Response};
use rostersync_model::{EnrolmentStatus, GroupKind};
use serde_json::{Value, json};

use super::{not_found, page, url_with};
use crate::generator::School;
use crate::{Req, Shared};

pub fn group_type(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Class => "teaching",
        GroupKind::Registration => "class",
        GroupKind::Year => "year",
        GroupKind::House => "house",
        _ => "other",
    }
}

fn items(sch: &School, resource: &str) -> Option<Vec<Value>> {
    Some(match resource {
        "students" => sch
            .live_students()
            .map(|s| {
                json!({"id": s.uid, "upn": s.upn, "admission_number": s.mis_id, "forename": s.forename,
                    "preferred_forename": s.preferred_forename, "middle_names": s.middle_names, "surname": s.surname,
                    "date_of_birth": s.date_of_birth.to_string(), "gender": s.gender, "email": s.email,
                    "year_group": (s.status != EnrolmentStatus::Prospective).then(|| format!("Year {}", s.year)),
                    "class": sch.group(s.registration).and_then(|g| g.name.clone()),
                    "admission_date": s.start_date.to_string(), "leaving_date": s.leaving_date.map(|d| d.to_string()),
                    "enrolment_status": match s.status { EnrolmentStatus::OnRoll => "current", EnrolmentStatus::Left => "leaver", EnrolmentStatus::Prospective => "applicant" },
                    "contacts": sch.contacts_of(s.uid).into_iter().map(|(c, l)| json!({"contact_id": c.uid, "relationship": l.relationship, "priority": l.priority, "parental_responsibility": l.parental_responsibility})).collect::<Vec<_>>()})
            })
            .collect(),
        "staff" => sch
            .live_staff()
            .map(|s| json!({"id": s.uid, "staff_code": s.mis_id, "title": s.title, "forename": s.forename, "surname": s.surname, "email": s.email, "date_of_birth": s.date_of_birth.to_string()}))
            .collect(),
        "contacts" => sch
            .live_contacts()
            .map(|c| json!({"id": c.uid, "contact_code": c.mis_id, "title": c.title, "forename": c.forename, "surname": c.surname, "email": c.email, "mobile": c.phone}))
            .collect(),
        "groups" => sch
            .live_groups()
            .map(|g| {
                json!({"id": g.uid, "name": g.name, "code": g.code, "type": group_type(g.kind), "subject": g.subject,
                    "year_group": g.year.map(|y| format!("Year {y}")),
                    "student_ids": g.students.iter().filter(|u| sch.students.get(u).is_some_and(|s| s.stamp.live())).collect::<Vec<_>>(),
                    "staff_ids": g.teachers.iter().filter(|u| sch.staff.get(u).is_some_and(|s| s.stamp.live())).collect::<Vec<_>>()})
            })
            .collect(),
        _ => return None,
    })
}

pub(crate) fn route(shared: &Shared, school: usize, req: &Req) -> Response {
    let sch = &shared.world.schools[school];
    let Some(resource) = req
        .path
        .strip_prefix("/api/v1/")
        .map(|r| r.trim_end_matches('/'))
    else {
        return not_found();
    };
    let Some(all) = items(sch, resource) else {
        return not_found();
    };
    let per_page = req
        .param("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50usize)
        .clamp(1, 100);
    let number = req
        .param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let pages = all.len().div_ceil(per_page).max(1);
    let (data, has_next) = page(&all, number, per_page);
    let base = format!("{}/scholarpack", shared.base);
    let link = |p: usize| url_with(&base, &req.path, &req.query, &[("page", p.to_string())]);
    Json(json!({"has_next": has_next, "has_prev": number > 1, "next_num": has_next.then_some(number + 1),
        "page": number, "pages": pages, "per_page": per_page, "prev_num": (number > 1).then(|| number - 1),
        "next_uri": has_next.then(|| link(number + 1)), "prev_uri": (number > 1).then(|| link(number - 1)), "data": data}))
    .into_response()
}
