//! The "Example SIS" API the template connector reads (see
//! `connectors/template/README.md`), served on 127.0.0.1 so the template
//! can be tested and its fixtures recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub const TOKEN: &str = "example-token";
const PAGE_SIZE: usize = 2;

#[derive(Clone)]
struct Sis {
    base: Arc<Mutex<String>>,
    people: Arc<Vec<Value>>,
}

#[derive(Deserialize)]
struct PeopleQuery {
    page: Option<usize>,
    since: Option<String>,
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

async fn school(headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    if !authorised(&headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    Ok(Json(
        json!({"id": "EX-1", "name": "Example Community School"}),
    ))
}

async fn list_people(
    State(sis): State<Sis>,
    headers: HeaderMap,
    Query(query): Query<PeopleQuery>,
) -> Result<Json<Value>, StatusCode> {
    if !authorised(&headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    if query.since.is_some() {
        return Ok(Json(json!({
            "data": [sis.people[0]],
            "removed": ["S3"],
            "next": null,
            "pages": 1,
            "cursor": "rev-2",
        })));
    }
    let page = query.page.unwrap_or(1);
    let pages = sis.people.len().div_ceil(PAGE_SIZE);
    let data: Vec<Value> = sis
        .people
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .cloned()
        .collect();
    let base = sis.base.lock().unwrap().clone();
    let next = (page < pages).then(|| format!("{base}/people?page={}", page + 1));
    Ok(Json(
        json!({"data": data, "next": next, "pages": pages, "cursor": "rev-1"}),
    ))
}

/// Serves the API; returns its base URL.
pub async fn start() -> (SocketAddr, String) {
    let people = vec![
        json!({"id": "S1", "role": "student", "first_name": "Zoë", "last_name": "O'Brien-Smith", "email": "zoe@example.sch.uk"}),
        json!({"id": "S2", "role": "student", "first_name": "Siobhán", "last_name": "Nguyễn", "email": null}),
        json!({"id": "S3", "role": "student", "first_name": "Amir", "last_name": "Okafor", "email": "amir@example.sch.uk"}),
        json!({"id": "T1", "role": "staff", "first_name": "Grace", "last_name": "Hopper", "email": "g.hopper@example.sch.uk"}),
        json!({"id": "T2", "role": "staff", "first_name": "Alan", "last_name": "Turing"}),
    ];
    let sis = Sis {
        base: Arc::default(),
        people: Arc::new(people),
    };
    let router = Router::new()
        .route("/v1/school", get(school))
        .route("/v1/people", get(list_people))
        .with_state(sis.clone());
    let addr = crate::serve(router).await;
    let base = format!("http://{addr}/v1");
    *sis.base.lock().unwrap() = base.clone();
    (addr, base)
}
