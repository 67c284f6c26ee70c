//! Groupcall Xporter on Demand: `POST /xporter/api/oauth/GetToken`, then
//! `GET /xporter/api/v1/School/{estab}/{Students|Staff|Contacts|Groups}`
//! with `Authorization: Idaas {token}`.
//!
//! The token body is `{estab, relyingParty, password, thirdpartyid}`; a
//! bad one answers 401 with `token: null` and an `ExceptionMessage`.
//! Results are keyed by table (`Students`, `Staff`, `Contacts`, `Group`)
//! with `Pagination: {PageNumber, PageCount, PageSize, RecordCount}`,
//! paged by `page` and `pageSize` (default 25). `changedRows=*` starts a
//! changeset and `changedRows={token}` returns only the rows changed since
//! that token, plus `{Table}_deleted` ids and `__changedRows__` with the
//! next token. `studentStatus` is `OnRoll` (default), `Leavers`,
//! `Applicants` or `All`; `Groups?Type=` filters by `Class`, `RegGroup`,
//! `YearGroup` or `House`; `options=includeMembersIds` adds `StudentIds`
//! and `StaffIds` (comma-separated). Field names beyond those in public
//! examples are likely shapes, not confirmed ones.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rostersync_model::{EnrolmentStatus, GroupKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{not_found, page};
use crate::generator::{School, Stamp};
use crate::{Provider, Req, Shared};

pub(crate) fn authenticate(shared: &Shared, req: &Req) -> Option<usize> {
    let token = req.auth_scheme("Idaas")?;
    let school = shared.xporter_tokens.iter().find(|(t, _)| t == token)?.1;
    (!shared.revoked.contains(&(Provider::Xporter, school))).then_some(school)
}

pub(crate) fn get_token(shared: &mut Shared, req: &Req) -> Response {
    if req.method != axum::http::Method::POST {
        return not_found();
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (estab, rp, password) = (field("estab"), field("relyingParty"), field("password"));
    let school = shared.school_for(Provider::Xporter, |c| {
        c.xporter_estab == estab && c.xporter_relying_party == rp && c.xporter_secret == password
    });
    let Some(school) = school else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"token": null, "expires": null, "Message": "Authorization has been denied for this request.",
                "ExceptionType": "AuthenticationException", "ExceptionMessage": "Relying Party not found for estab or secret not correct"})),
        )
            .into_response();
    };
    let n = shared.xporter_tokens.len();
    let token = hex::encode(Sha256::digest(
        format!("{}/{estab}/{n}", shared.world.seed).as_bytes(),
    ));
    shared.xporter_tokens.push((token.clone(), school));
    let expires = (shared.world.now + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    Json(json!({"token": token, "expires": expires, "Message": null, "ExceptionType": null, "ExceptionMessage": null})).into_response()
}

fn date(d: chrono::NaiveDate) -> String {
    format!("{d}T00:00:00")
}

pub fn group_type(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Class => "Class",
        GroupKind::Registration => "RegGroup",
        GroupKind::Year => "YearGroup",
        GroupKind::House => "House",
        _ => "Other",
    }
}

fn status_name(s: EnrolmentStatus) -> &'static str {
    match s {
        EnrolmentStatus::OnRoll => "OnRoll",
        EnrolmentStatus::Left => "Leaver",
        EnrolmentStatus::Prospective => "Applicant",
    }
}

/// Rows of a table, with stamps, for the given request's filters.
fn rows(sch: &School, table: &str, req: &Req) -> Vec<(u64, Stamp, Value)> {
    let members = req
        .param("options")
        .is_some_and(|o| o.split(',').any(|x| x == "includeMembersIds"));
    match table {
        "Students" => {
            let wanted = req.param("studentStatus").unwrap_or("OnRoll");
            sch.students
                .values()
                .filter(|s| match wanted {
                    "All" => true,
                    "Leavers" => s.status == EnrolmentStatus::Left,
                    "Applicants" => s.status == EnrolmentStatus::Prospective,
                    _ => s.status == EnrolmentStatus::OnRoll,
                })
                .map(|s| {
                    let v = json!({"Id": s.uid, "ExternalId": s.mis_id, "UPN": s.upn, "AdmissionNumber": s.mis_id,
                        "Title": null, "Forename": s.preferred_forename.as_deref().unwrap_or(&s.forename), "LegalForename": s.forename,
                        "PreferredForename": s.preferred_forename.as_deref().unwrap_or(&s.forename), "MiddleNames": s.middle_names,
                        "Surname": s.surname, "LegalSurname": s.surname, "Gender": s.gender, "DateOfBirth": date(s.date_of_birth),
                        "Email": s.email, "YearGroup": (s.status != EnrolmentStatus::Prospective).then(|| format!("Year {}", s.year)),
                        "RegGroup": sch.group(s.registration).and_then(|g| g.name.clone()),
                        "House": sch.group(s.house).and_then(|g| g.name.clone()), "EntryDate": date(s.start_date),
                        "LeavingDate": s.leaving_date.map(date), "Status": status_name(s.status),
                        "ApplicationActive": s.admission.as_ref().map(|a| a.application_active),
                        "AdmissionDate": s.admission.as_ref().map(|a| date(a.admission_date)),
                        "AdmissionStatus": s.admission.as_ref().map(|a| a.admission_status.clone()),
                        "IntakeGroup": s.admission.as_ref().map(|a| a.intake.clone())});
                    (s.uid, s.stamp, v)
                })
                .collect()
        }
        "Staff" => sch
            .staff
            .values()
            .map(|s| {
                (s.uid, s.stamp, json!({"Id": s.uid, "ExternalId": s.mis_id, "StaffCode": s.mis_id, "PayrollNumber": s.mis_id,
                    "Title": s.title, "Forename": s.forename, "Surname": s.surname, "Email": s.email, "DateOfBirth": date(s.date_of_birth)}))
            })
            .collect(),
        "Contacts" => sch
            .contacts
            .values()
            .map(|c| {
                let pupils: Vec<Value> = sch
                    .students_of(c.uid)
                    .into_iter()
                    .map(|(s, l)| json!({"StudentId": s.uid, "Relationship": l.relationship, "Priority": l.priority,
                        "ParentalResponsibility": l.parental_responsibility,
                        "ContactType": match l.priority { 1 => "Primary", 2 => "Secondary", _ => "Emergency" }}))
                    .collect();
                (c.uid, c.stamp, json!({"Id": c.uid, "ExternalId": c.mis_id, "Title": c.title, "Forename": c.forename,
                    "Surname": c.surname, "Email": c.email, "MobilePhone": c.phone, "Students": pupils}))
            })
            .collect(),
        "Group" => {
            let want = req.param("Type").or(req.param("type"));
            sch.groups
                .values()
                .filter(|g| want.is_none_or(|t| t.eq_ignore_ascii_case(group_type(g.kind))))
                .map(|g| {
                    let mut v = json!({"Id": g.uid, "XID": format!("{:08x}-0000-4000-8000-{:012x}", sch.uid, g.uid), "ExternalId": g.code,
                        "Name": g.name, "Code": g.code, "Type": group_type(g.kind), "Subject": g.subject,
                        "YearGroup": g.year.map(|y| format!("Year {y}"))});
                    if members {
                        let ids = |set: &std::collections::BTreeSet<u64>, live: &dyn Fn(u64) -> bool| {
                            set.iter().filter(|u| live(**u)).map(u64::to_string).collect::<Vec<_>>().join(",")
                        };
                        v["StudentIds"] = json!(ids(&g.students, &|u| sch.students.get(&u).is_some_and(|s| s.stamp.live())));
                        v["StaffIds"] = json!(ids(&g.teachers, &|u| sch.staff.get(&u).is_some_and(|s| s.stamp.live())));
                    }
                    (g.uid, g.stamp, v)
                })
                .collect()
        }
        _ => vec![],
    }
}

/// A changeset token names the revision it was taken at.
fn changeset_token(revision: u64) -> String {
    format!("{revision:016x}{}", "c0ffee")
}
fn parse_changeset(token: &str) -> Option<u64> {
    u64::from_str_radix(token.get(..16)?, 16).ok()
}

pub(crate) fn route(shared: &Shared, school: usize, req: &Req) -> Response {
    let sch = &shared.world.schools[school];
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let table = match segments.as_slice() {
        ["api", "v1", "School", estab, endpoint] if *estab == sch.estab => match *endpoint {
            "Students" => "Students",
            "Staff" => "Staff",
            "Contacts" => "Contacts",
            "Groups" => "Group",
            _ => return not_found(),
        },
        ["api", "v1", "TokenDetails"] => {
            return Json(json!({"Estab": sch.estab, "RelyingParty": "rostersync.example.dev", "Scopes": ["Students", "Staff", "Contacts", "Groups"]})).into_response();
        }
        _ => return not_found(),
    };
    let since = match req.param("changedRows") {
        None | Some("*") => None,
        Some(token) => match parse_changeset(token) {
            Some(rev) => Some(rev),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"Message": "Invalid changedRows token"})),
                )
                    .into_response();
            }
        },
    };
    let all = rows(sch, table, req);
    let live: Vec<Value> = all
        .iter()
        .filter(|(_, s, _)| s.live() && since.is_none_or(|r| s.updated_rev > r))
        .map(|(_, _, v)| v.clone())
        .collect();
    let size = req
        .param("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25usize)
        .clamp(1, 1000);
    let number = req
        .param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let (data, _) = page(&live, number, size);
    let mut out = serde_json::Map::new();
    out.insert(table.into(), Value::Array(data));
    out.insert("Pagination".into(), json!({"PageNumber": number, "PageCount": live.len().div_ceil(size).max(1), "PageSize": size, "RecordCount": live.len()}));
    out.insert(
        "DbStatus".into(),
        json!({"LastUpdated": shared.world.now.format("%Y-%m-%dT%H:%M:%S").to_string()}),
    );
    out.insert("Meta".into(), json!({}));
    if let Some(requested) = req.param("changedRows") {
        let deleted: Vec<Value> = all
            .iter()
            .filter(|(_, s, _)| {
                s.deleted
                    .is_some_and(|(rev, _)| since.is_some_and(|r| rev > r))
            })
            .map(|(id, _, _)| json!(id))
            .collect();
        out.insert(format!("{table}_deleted"), Value::Array(deleted));
        let next = changeset_token(shared.world.revision);
        out.insert(
            "__changedRows__".into(),
            json!([{"RequestedChangedRows": requested, "NextChangedRows": next,
            "NextUrl": format!("?changedRows={next}&page=1&pageSize={size}")}]),
        );
    }
    Json(Value::Object(out)).into_response()
}
