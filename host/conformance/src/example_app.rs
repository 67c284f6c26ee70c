//! The "Example App" API of `connectors/target-template`'s README, served
//! on 127.0.0.1 for one conformance run, so a target made from the template
//! is tested against a real HTTP endpoint without any account anywhere.
//!
//! It keeps the API's rules: a bearer token (401 otherwise), objects
//! addressed by the host's external id (so a repeat is harmless), a taken
//! username answered 409, a deletion of something gone answered 404.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rostersync_model::Settings;
use serde::Deserialize;
use serde_json::json;

/// A user as the Example App holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUser {
    pub id: String,
    pub username: String,
    pub active: bool,
}

/// A group as the Example App holds it; members by external id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGroup {
    pub id: String,
    pub name: String,
    pub members: BTreeSet<String>,
}

#[derive(Default)]
struct Held {
    users: BTreeMap<String, AppUser>,
    groups: BTreeMap<String, AppGroup>,
    next_id: u64,
}

impl Held {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }
}

#[derive(Clone)]
struct App {
    token: String,
    held: Arc<Mutex<Held>>,
}

/// The Example App on an ephemeral 127.0.0.1 port; stops when dropped.
pub struct ExampleApp {
    /// `http://127.0.0.1:PORT/v1`, the target's `base-url`.
    pub base: String,
    /// The only bearer token it accepts, the target's `api-token`.
    pub token: String,
    held: Arc<Mutex<Held>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ExampleApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ExampleApp {
    pub async fn serve() -> std::io::Result<ExampleApp> {
        let token = format!("conformance-{:x}", crate::target::run_tag_seed());
        let held: Arc<Mutex<Held>> = Arc::default();
        let app = App {
            token: token.clone(),
            held: held.clone(),
        };
        let router = axum::Router::new()
            .route("/v1/organisation", get(organisation))
            .route(
                "/v1/users/{id}",
                put(put_user).patch(patch_user).delete(delete_user),
            )
            .route("/v1/groups/{id}", put(put_group).delete(delete_group))
            .route("/v1/groups/{id}/members", post(change_members))
            .layer(axum::middleware::from_fn_with_state(
                app.clone(),
                authorised,
            ))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(ExampleApp {
            base: format!("http://{addr}/v1"),
            token,
            held,
            server,
        })
    }

    /// The settings of a target made from the template, pointed here.
    pub fn settings(&self) -> Settings {
        Settings::new()
            .with("base-url", &self.base)
            .with("api-token", &self.token)
    }

    /// Every user, by external id.
    pub fn users(&self) -> BTreeMap<String, AppUser> {
        self.held.lock().unwrap().users.clone()
    }

    /// Every group, by external id.
    pub fn groups(&self) -> BTreeMap<String, AppGroup> {
        self.held.lock().unwrap().groups.clone()
    }
}

/// Every request needs the token: 401 without it.
async fn authorised(State(app): State<App>, request: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", app.token);
    let authorised = request
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if authorised {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "a valid bearer token is required").into_response()
    }
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no such {what}")).into_response()
}

fn answer(id: &str) -> Response {
    Json(json!({ "id": id })).into_response()
}

async fn organisation() -> Response {
    Json(json!({ "name": "Conformance Academy" })).into_response()
}

#[derive(Deserialize)]
struct UserBody {
    username: String,
    active: bool,
}

async fn put_user(
    State(app): State<App>,
    Path(external_id): Path<String>,
    Json(body): Json<UserBody>,
) -> Response {
    let mut held = app.held.lock().unwrap();
    let taken = held
        .users
        .iter()
        .any(|(other, u)| *other != external_id && u.username == body.username);
    if taken {
        return (StatusCode::CONFLICT, "the username is taken").into_response();
    }
    let id = match held.users.get(&external_id) {
        Some(user) => user.id.clone(),
        None => held.new_id("user"),
    };
    held.users.insert(
        external_id,
        AppUser {
            id: id.clone(),
            username: body.username,
            active: body.active,
        },
    );
    answer(&id)
}

#[derive(Deserialize)]
struct ActiveBody {
    active: bool,
}

async fn patch_user(
    State(app): State<App>,
    Path(external_id): Path<String>,
    Json(body): Json<ActiveBody>,
) -> Response {
    match app.held.lock().unwrap().users.get_mut(&external_id) {
        Some(user) => {
            user.active = body.active;
            answer(&user.id)
        }
        None => not_found("user"),
    }
}

async fn delete_user(State(app): State<App>, Path(external_id): Path<String>) -> Response {
    let mut held = app.held.lock().unwrap();
    if held.users.remove(&external_id).is_none() {
        return not_found("user");
    }
    for group in held.groups.values_mut() {
        group.members.remove(&external_id);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct GroupBody {
    name: String,
    members: Vec<String>,
}

async fn put_group(
    State(app): State<App>,
    Path(external_id): Path<String>,
    Json(body): Json<GroupBody>,
) -> Response {
    let mut held = app.held.lock().unwrap();
    let id = match held.groups.get(&external_id) {
        Some(group) => group.id.clone(),
        None => held.new_id("group"),
    };
    held.groups.insert(
        external_id,
        AppGroup {
            id: id.clone(),
            name: body.name,
            members: body.members.into_iter().collect(),
        },
    );
    answer(&id)
}

#[derive(Deserialize)]
struct MembersBody {
    add: Vec<String>,
    remove: Vec<String>,
}

async fn change_members(
    State(app): State<App>,
    Path(external_id): Path<String>,
    Json(body): Json<MembersBody>,
) -> Response {
    match app.held.lock().unwrap().groups.get_mut(&external_id) {
        Some(group) => {
            group.members.extend(body.add);
            for gone in &body.remove {
                group.members.remove(gone);
            }
            answer(&group.id)
        }
        None => not_found("group"),
    }
}

async fn delete_group(State(app): State<App>, Path(external_id): Path<String>) -> Response {
    match app.held.lock().unwrap().groups.remove(&external_id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found("group"),
    }
}
