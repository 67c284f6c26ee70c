//! Groupcall Xporter on Demand: a token from `POST /xporter/api/oauth/GetToken`
//! (Groupcall's documented endpoint) or `POST /xporter/idaas/sts/STS/GetToken`
//! (the older STS), then `GET /xporter/api/v1/School/{estab}/{Students|Staff|Contacts|Groups}`
//! and `GET /xporter/api/v1/TokenDetails` with `Authorization: Idaas {token}`.
//!
//! Sources, and what each settles:
//!
//! - TeamSatchel/xod_client (MIT), `spec/fixtures/vcr_cassettes/*.yml`,
//!   real responses recorded from a SIMS .net school in 2018:
//!   `valid_token.yml` (the STS request `{relyingParty, thirdPartyId, estab,
//!   password}` and its answer `{Message, ExceptionMessage, token,
//!   expires}`); `token_details.yml` (`Estab`, `RelyingParty`, singular
//!   `Scopes`: `Student`, `Staff`, `Contact`, `School`, …);
//!   `students.yml`, `staff.yml`, `groups.yml` (every field name served
//!   below for those tables, the `meta` list, `"__pagination__":[{PageSize,
//!   PageNumber, PageCount, RowCount, NextPage}]`, the changeset answer with
//!   `{Table}_deleted` rows `{"Id": …}` and `"__changedRows__":[{SnapshotDate,
//!   SnapshotRP, PreviousChangedRows, RequestedChangedRows, NextChangedRows,
//!   NextUrl}]`, and SIMS's `"Year  4"` with two spaces). Ids are text.
//!   `concerns/data_endpoints.rb` lists the group types (`YearGrp`,
//!   `HouseGrp`, `RegGrp`, `TeachingGrp`) and the `includeMembersIds`
//!   option.
//! - Groupcall's documentation (xporterdocs.groupcall.com, "Authentication",
//!   "Changesets"): the `oauth/GetToken` endpoint and its answer (which adds
//!   `ExceptionType`), a refusal as `token: null` with an
//!   `ExceptionMessage`, and `changedRows=*` opening a changeset.
//! - genplus's Open edX integration (a public Python client): a group read
//!   with `options=includeMembersIds` carries `StudentIds` as `"id1,id2"`.
//!
//! Where the sources are silent, this fake says so rather than borrowing
//! the connector's guess: the HTTP status of a refused token (401 here);
//! the `StudentStatus` of leavers and applicants (`Leaver`, `Applicant`
//! here) and the `studentStatus` filter values beyond `OnRoll`; an
//! applicant's admission fields (`ApplicationActive`, `AdmissionDate`,
//! `AdmissionStatus`, `IntakeGroup`); a group's staff beyond
//! `PrimaryStaffId` (`StaffIds` here, by analogy with `StudentIds`); and
//! the whole `Contacts` row, for which no recording exists (its
//! `Students` links with `StudentId`, `Relationship`, `Priority`,
//! `ParentalResponsibility` and `ContactType` are a likely shape only).
//! A group's subject and year are not served: no recording shows them.

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
    let sts = req.path.ends_with("/STS/GetToken");
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
    if sts {
        Json(json!({"Message": null, "ExceptionMessage": null, "token": token, "expires": expires}))
            .into_response()
    } else {
        Json(json!({"token": token, "expires": expires, "Message": null, "ExceptionType": null, "ExceptionMessage": null})).into_response()
    }
}

fn date(d: chrono::NaiveDate) -> String {
    d.to_string()
}

pub fn group_type(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Class => "TeachingGrp",
        GroupKind::Registration => "RegGrp",
        GroupKind::Year => "YearGrp",
        GroupKind::House => "HouseGrp",
        _ => "Other",
    }
}

/// A year group's name as SIMS spells it, with two spaces.
fn year_name(year: u8) -> String {
    format!("Year  {year}")
}

/// A stable GUID-like `ExternalId` for a row.
fn external_id(school: u64, uid: u64) -> String {
    format!("{school:08x}-0000-4000-8000-{uid:012x}")
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
                    let forename = s.preferred_forename.as_deref().unwrap_or(&s.forename);
                    let registration = sch.group(s.registration);
                    let year = (s.status != EnrolmentStatus::Prospective)
                        .then(|| sch.groups.values().find(|g| g.kind == GroupKind::Year && g.year == Some(s.year)))
                        .flatten();
                    let house = sch.group(s.house);
                    let v = json!({"Id": s.uid.to_string(), "XID": format!("x{:06X}", s.uid),
                        "ExternalId": external_id(sch.uid, s.uid), "IdaasId": format!("PL-{}", s.uid),
                        "Forename": forename, "Surname": s.surname, "DisplayName": format!("{forename} {}", s.surname),
                        "AdmissionNo": s.mis_id, "Gender": s.gender,
                        "RegGroupId": registration.map(|g| g.uid.to_string()), "RegGroup": registration.and_then(|g| g.name.clone()),
                        "YearGroupId": year.map(|g| g.uid.to_string()),
                        "YearGroup": (s.status != EnrolmentStatus::Prospective).then(|| year_name(s.year)),
                        "HouseGroupId": house.map(|g| g.uid.to_string()), "HouseGroup": house.and_then(|g| g.name.clone()),
                        "WorkEmail": s.email, "IdaasEmail": null, "DateofBirth": date(s.date_of_birth),
                        "UniqueLearnerNumber": null, "MiddleName": s.middle_names, "EnrolmentStatus": "C",
                        "LegalForename": s.forename, "LegalSurname": s.surname, "EntryDate": date(s.start_date),
                        "LeavingDate": s.leaving_date.map(date), "StudentStatus": status_name(s.status),
                        "ApplicationActive": s.admission.as_ref().map(|a| a.application_active),
                        "AdmissionDate": s.admission.as_ref().map(|a| date(a.admission_date)),
                        "AdmissionStatus": s.admission.as_ref().map(|a| a.admission_status.clone()),
                        "IntakeGroup": s.admission.as_ref().map(|a| a.intake.clone()),
                        "LastUpdated": s.stamp.updated_at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()});
                    (s.uid, s.stamp, v)
                })
                .collect()
        }
        "Staff" => sch
            .staff
            .values()
            .map(|s| {
                (s.uid, s.stamp, json!({"Id": s.uid.to_string(), "XID": format!("x{:06X}", s.uid),
                    "IdaasId": format!("PWT-{}", s.uid), "ExternalId": external_id(sch.uid, s.uid),
                    "Title": s.title, "Suffix": null, "StaffCode": s.mis_id, "StaffStatus": "Current",
                    "Forename": s.forename, "Surname": s.surname, "DisplayName": format!("{} {} {}", s.title, &s.forename[..1], s.surname),
                    "WorkEmail": s.email, "IdaasEmail": null, "MiddleName": null, "LegalForename": s.forename,
                    "LegalSurname": s.surname, "DateOfBirth": date(s.date_of_birth), "EmploymentStart": null,
                    "EmploymentEnd": null, "IsTeacher": 1, "IsSupport": 0,
                    "LastUpdated": s.stamp.updated_at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()}))
            })
            .collect(),
        "Contacts" => sch
            .contacts
            .values()
            .map(|c| {
                let pupils: Vec<Value> = sch
                    .students_of(c.uid)
                    .into_iter()
                    .map(|(s, l)| json!({"StudentId": s.uid.to_string(), "Relationship": l.relationship, "Priority": l.priority,
                        "ParentalResponsibility": l.parental_responsibility,
                        "ContactType": match l.priority { 1 => "Primary", 2 => "Secondary", _ => "Emergency" }}))
                    .collect();
                (c.uid, c.stamp, json!({"Id": c.uid.to_string(), "ExternalId": c.mis_id, "Title": c.title, "Forename": c.forename,
                    "Surname": c.surname, "Email": c.email, "MobilePhone": c.phone, "Students": pupils}))
            })
            .collect(),
        "Group" => {
            let want = req.param("Type").or(req.param("type"));
            let live_staff = |u: &&u64| sch.staff.get(u).is_some_and(|s| s.stamp.live());
            sch.groups
                .values()
                .filter(|g| want.is_none_or(|t| t.eq_ignore_ascii_case(group_type(g.kind))))
                .map(|g| {
                    let mut v = json!({"Id": g.uid.to_string(), "XID": format!("x{:06X}", g.uid),
                        "ExternalId": external_id(sch.uid, g.uid), "IdaasId": format!("GY-{}", g.uid),
                        "Type": group_type(g.kind), "Code": g.code, "Name": g.name,
                        "PrimaryStaffId": g.teachers.iter().find(live_staff).map(u64::to_string),
                        "Staff": null, "NumStudents": g.students.len(),
                        "LastUpdated": g.stamp.updated_at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()});
                    if members {
                        let ids = |set: &std::collections::BTreeSet<u64>, live: &dyn Fn(u64) -> bool| {
                            set.iter().filter(|u| live(**u)).map(u64::to_string).collect::<Vec<_>>().join(",")
                        };
                        v["StudentIds"] = json!(ids(&g.students, &|u| sch.students.get(&u).is_some_and(|s| s.stamp.live())));
                        v["StaffIds"] = json!(ids(&g.teachers, &|u| live_staff(&&u)));
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
            return Json(json!({"Estab": sch.estab, "Name": sch.name, "RelyingParty": "rostersync.example.dev",
                "Scopes": ["Contact", "EndpointInfo", "School", "Staff", "Student", "StudentFamily"],
                "Message": null, "ExceptionType": null, "ExceptionMessage": null, "InnerException": null}))
            .into_response();
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
    let pages = live.len().div_ceil(size).max(1);
    let mut out = serde_json::Map::new();
    out.insert(table.into(), Value::Array(data));
    for empty in companions(table) {
        out.insert((*empty).into(), json!([]));
    }
    let meta = json!([{"Id": 1, "MIS": "simsnet", "Version": "4",
        "DateTime": shared.world.now.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()}]);
    out.insert("meta".into(), if number == 1 { meta } else { json!([]) });
    // A table that fits one page comes without `__pagination__`, as the
    // recorded single-pupil answer does.
    if pages > 1 {
        out.insert(
            "__pagination__".into(),
            json!([{"PageSize": size, "PageNumber": number, "PageCount": pages, "RowCount": live.len(),
                "NextPage": format!("?page={}&pageSize={size}", number + 1)}]),
        );
    }
    if let Some(requested) = req.param("changedRows") {
        let deleted: Vec<Value> = all
            .iter()
            .filter(|(_, s, _)| {
                s.deleted
                    .is_some_and(|(rev, _)| since.is_some_and(|r| rev > r))
            })
            .map(|(id, _, _)| json!({"Id": id.to_string()}))
            .collect();
        out.insert(format!("{table}_deleted"), Value::Array(deleted));
        for empty in companions(table) {
            out.insert(format!("{empty}_deleted"), json!([]));
        }
        let next = changeset_token(shared.world.revision);
        out.insert(
            "__changedRows__".into(),
            json!([{"SnapshotDate": shared.world.now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                "SnapshotRP": "rostersync.example.dev",
                "RequestedChangedRows": requested, "NextChangedRows": next,
                "NextUrl": format!("?changedRows={next}&page=1&pageSize={size}")}]),
        );
    }
    Json(Value::Object(out)).into_response()
}

/// The other result tables a recorded answer carries beside the main one,
/// empty unless their options are asked for.
fn companions(table: &str) -> &'static [&'static str] {
    match table {
        "Students" => &["StudentSiblings"],
        "Group" => &["StaffMembers", "StudentMembers", "GroupTypes"],
        _ => &[],
    }
}
