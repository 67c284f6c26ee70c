//! The OpenAPI 3.1 description of the JSON API, served at
//! `/api/openapi.json`. A test walks every documented path against the
//! live router, so the document cannot drift from the routes.

use axum::Json;
use serde_json::{Value, json};

/// (method, path, summary, needs an admin token).
pub const OPERATIONS: &[(&str, &str, &str, bool)] = &[
    (
        "get",
        "/api/v1/connections",
        "Every connection: schedule, next run, last changed and checked, last run, active run, open hold.",
        false,
    ),
    (
        "get",
        "/api/v1/connections/{id}",
        "One connection's status.",
        false,
    ),
    (
        "get",
        "/api/v1/connections/{id}/runs",
        "A connection's sync history, newest first (`limit`, default 50).",
        false,
    ),
    (
        "post",
        "/api/v1/connections/{id}/runs",
        "Run now: body `{\"mode\": \"delta\" | \"full\"}`. Joins a run already queued or running.",
        true,
    ),
    (
        "get",
        "/api/v1/queue",
        "Runs queued or running, with live progress.",
        false,
    ),
    (
        "get",
        "/api/v1/queue/{id}",
        "One queued, running or ended run, with live progress.",
        false,
    ),
    (
        "get",
        "/api/v1/runs/{id}/issues",
        "The issues a run found.",
        false,
    ),
    (
        "get",
        "/api/v1/runs/{id}/issues.csv",
        "The issues a run found, as CSV.",
        false,
    ),
    (
        "get",
        "/api/v1/holds",
        "Open holds (`all=true` for answered ones too).",
        false,
    ),
    (
        "get",
        "/api/v1/holds/{id}",
        "One hold with its reasons in words and its current revision and digest.",
        false,
    ),
    (
        "get",
        "/api/v1/holds/{id}/export.csv",
        "The records the hold's current revision would change, as CSV evidence under a line naming its digest.",
        false,
    ),
    (
        "post",
        "/api/v1/holds/{id}/confirm",
        "Apply the held change set reviewed: body `{\"revision\": DIGEST}`; 409 if a later run replaced it.",
        true,
    ),
    (
        "post",
        "/api/v1/holds/{id}/reject",
        "Answer with the hold type's answer that applies nothing of what it is about (Reject, Don't create, I fixed it).",
        true,
    ),
    (
        "post",
        "/api/v1/holds/{id}/answer",
        "Answer a hold's waiting part with one of its type's answers: body `{\"answer\": \"confirm-removals\"|\"reject\"|\"create-accounts\"|\"dont-create\"|\"apply-changes\"|\"fixed-it\", \"revision\": DIGEST, \"comment\": TEXT, \"confirmed\": true}`; 428 without `confirmed`, 422 for an answer the type does not offer. `answered.outcome` is `next` while later parts wait. `fixed-it` queues a run.",
        true,
    ),
    (
        "post",
        "/api/v1/holds/{id}/reconsider",
        "Forget the contacts this hold's \"Don't create\" declined, so the next run asks about them again: `{\"forgotten\": N}`.",
        true,
    ),
    (
        "get",
        "/api/v1/accounts/{id}",
        "One provisioned account.",
        false,
    ),
    (
        "get",
        "/api/v1/accounts/{id}/timeline",
        "Why an account is or is not in each target: its source records and their standing issues, the account, and per target its ledger state, groups, pending changes and delivery log lines.",
        false,
    ),
    (
        "get",
        "/api/v1/connections/{id}/people/{source_id}/timeline",
        "A source person's timeline: their account's when one is linked; else the record, its standing issues and, per target, that nothing is delivered.",
        false,
    ),
    (
        "get",
        "/api/v1/targets",
        "Every provisioning target: kind, enabled (false: preview only), changes waiting and refused, last delivery, last unattended pass (with its failure), open hold. Never its settings.",
        false,
    ),
    (
        "get",
        "/api/v1/targets/{name}",
        "One target's status with its recent deliveries (newest first), pending changes with their last error, holds and renames.",
        false,
    ),
    (
        "post",
        "/api/v1/targets/{name}/renames/{account}",
        "Answer a proposed change of login: body `{\"to\": LOGIN, \"answer\": \"approve\"|\"reject\"}`; approved, the login changes on the next delivery; rejected, it stays and is not asked about again. 409 when no such rename waits.",
        true,
    ),
    (
        "post",
        "/api/v1/targets/{name}/holds/{id}/confirm",
        "Release a target's held mass suspension: body `{\"digest\": DIGEST}` as reviewed; 409 if the hold moved on. Audited.",
        true,
    ),
    (
        "post",
        "/api/v1/accounts/{id}/delete",
        "Delete an account: body `{\"connection\": ID}`. Audited; it stays deleted.",
        true,
    ),
    (
        "post",
        "/api/v1/accounts/{id}/unlink",
        "Unlink an account from its source person: body `{\"connection\": ID}`. Audited.",
        true,
    ),
    (
        "get",
        "/api/v1/plugins",
        "The connector plugins and their status.",
        false,
    ),
    (
        "post",
        "/api/v1/plugins/{name}/accept",
        "Accept the plugin file in service under this name as the build its connections run with: body `{\"sha256\": SHA}` naming the file reviewed; 409 if the file in service is another, 404 if none is in service.",
        true,
    ),
    (
        "get",
        "/api/v1/audit",
        "What operators did, oldest first.",
        false,
    ),
    (
        "get",
        "/api/v1/notifications",
        "The latest notification deliveries per channel: delivered, retrying (with the next attempt) or given up, with the last error.",
        false,
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics: runs by status, records by action, run durations, connector errors, holds open.",
        false,
    ),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, admin) in OPERATIONS {
        let mut parameters = Vec::new();
        for name in ["name", "id", "source_id"] {
            if path.contains(&format!("{{{name}}}")) {
                parameters.push(
                    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
                );
            }
        }
        let responses = json!({
            "200": {"description": "OK"},
            "401": {"description": "No token, or a token that is not valid.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "403": {"description": "A read-only token asked for a change.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "No such connection, run, hold, account or target."},
        });
        let operation = json!({
            "summary": summary,
            "parameters": parameters,
            "responses": responses,
            "x-scope": if *admin { "admin" } else { "read" },
        });
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(method.to_string(), operation);
    }
    paths.insert(
        "/healthz".into(),
        json!({"get": {"summary": "Up when the store answers. No token needed.", "security": [], "responses": {"200": {"description": "OK"}, "503": {"description": "The store does not answer."}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rostersync admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Everything the rostersync command line does. Send `Authorization: Bearer TOKEN`; read-only tokens may read, admin tokens may also run syncs, answer holds and act on accounts.",
        },
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}},
        },
        "security": [{"token": []}],
        "paths": paths,
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
