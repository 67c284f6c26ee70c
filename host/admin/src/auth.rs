//! Who may use the admin API and the dashboard: named tokens with a scope
//! (read-only or admin), presented as a bearer token by scripts or traded
//! for a session cookie at the dashboard's login. No token, no access.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;

/// The session cookie the dashboard's login sets.
pub const SESSION_COOKIE: &str = "rostersync_session";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Sees everything, changes nothing.
    Read,
    /// Also runs syncs, answers holds and acts on accounts.
    Admin,
}

/// A token as the configuration declares it: its value is read from an
/// environment variable, never from the file.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who the token is: recorded in the audit log for what it does.
    pub name: String,
    pub scope: Scope,
    /// The environment variable holding the token.
    pub token_env: String,
    #[serde(skip)]
    token: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("token_env", &self.token_env)
            .finish_non_exhaustive()
    }
}

/// Tokens shorter than this are refused at start: they can be guessed.
const SHORTEST_TOKEN: usize = 16;

impl TokenConfig {
    pub fn new(name: &str, scope: Scope, token: &str) -> Self {
        Self {
            name: name.into(),
            scope,
            token_env: String::new(),
            token: token.into(),
        }
    }

    /// Reads the token from its variable; the error names the token and
    /// the variable, never a value.
    pub fn resolve(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let token = env(&self.token_env).ok_or_else(|| {
            format!(
                "admin token {:?} reads the environment variable {}, which is not set",
                self.name, self.token_env
            )
        })?;
        if token.len() < SHORTEST_TOKEN {
            return Err(format!(
                "admin token {:?} (from {}) is shorter than {SHORTEST_TOKEN} characters; use a long random value",
                self.name, self.token_env
            ));
        }
        self.token = token;
        Ok(())
    }
}

/// Who is asking, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.scope == Scope::Admin
    }
}

pub(crate) struct Tokens {
    /// (SHA-256 of the token, who it is). Hashing first makes every
    /// comparison the same length, so it is constant-time in full.
    known: Vec<([u8; 32], Caller)>,
    sessions: Mutex<HashMap<String, Caller>>,
}

impl Tokens {
    pub(crate) fn new(tokens: &[TokenConfig]) -> Self {
        Self {
            known: tokens
                .iter()
                .map(|t| {
                    (
                        Sha256::digest(t.token.as_bytes()).into(),
                        Caller {
                            name: t.name.clone(),
                            scope: t.scope,
                        },
                    )
                })
                .collect(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The caller a presented token belongs to. Every known token is
    /// compared, so the time taken does not say which one nearly matched.
    pub(crate) fn caller(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (known, caller) in &self.known {
            if bool::from(known.ct_eq(&digest)) {
                found = Some(caller.clone());
            }
        }
        found
    }

    /// Starts a dashboard session for a valid token.
    pub(crate) fn log_in(&self, presented: &str) -> Option<String> {
        let caller = self.caller(presented)?;
        let session = hex::encode(rand::random::<[u8; 32]>());
        self.lock().insert(session.clone(), caller);
        Some(session)
    }

    pub(crate) fn log_out(&self, session: &str) {
        self.lock().remove(session);
    }

    fn session(&self, session: &str) -> Option<Caller> {
        self.lock().get(session).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Caller>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

fn caller_of(parts: &Parts, state: &AppState) -> Option<Caller> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match bearer {
        Some(token) => state.tokens.caller(token.trim()),
        None => session_cookie(parts).and_then(|s| state.tokens.session(s)),
    }
}

/// A caller of the JSON API: anything else gets 401 with a sentence.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        caller_of(parts, state).map(ApiCaller).ok_or_else(|| {
            crate::api::error(
                StatusCode::UNAUTHORIZED,
                "send a valid token as `Authorization: Bearer TOKEN`",
            )
        })
    }
}

/// A dashboard visitor: anyone else is sent to the login page.
pub struct PageCaller(pub Caller);

impl FromRequestParts<AppState> for PageCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        caller_of(parts, state)
            .map(PageCaller)
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_finds_its_caller_and_nothing_else_does() {
        let tokens = Tokens::new(&[
            TokenConfig::new("ops", Scope::Admin, "admin-token-0123456789"),
            TokenConfig::new("viewer", Scope::Read, "read-token-0123456789"),
        ]);
        assert_eq!(
            tokens.caller("read-token-0123456789").unwrap().scope,
            Scope::Read
        );
        assert_eq!(tokens.caller("admin-token-0123456789").unwrap().name, "ops");
        assert!(tokens.caller("admin-token-012345678").is_none());
        assert!(tokens.caller("").is_none());
    }

    #[test]
    fn a_short_or_missing_token_is_refused_naming_the_variable_not_the_value() {
        let mut config = TokenConfig {
            name: "ops".into(),
            scope: Scope::Admin,
            token_env: "OPS_TOKEN".into(),
            token: String::new(),
        };
        let missing = config.resolve(|_| None).unwrap_err();
        assert!(
            missing.contains("OPS_TOKEN") && missing.contains("not set"),
            "{missing}"
        );
        let short = config.resolve(|_| Some("abc123".into())).unwrap_err();
        assert!(
            short.contains("shorter") && !short.contains("abc123"),
            "{short}"
        );
        config
            .resolve(|_| Some("a-long-enough-secret-value".into()))
            .unwrap();
        assert!(!format!("{config:?}").contains("a-long-enough-secret-value"));
    }

    #[test]
    fn sessions_outlive_nothing_but_logout() {
        let tokens = Tokens::new(&[TokenConfig::new(
            "ops",
            Scope::Admin,
            "admin-token-0123456789",
        )]);
        assert!(tokens.log_in("wrong-token-0123456789").is_none());
        let session = tokens.log_in("admin-token-0123456789").unwrap();
        assert_eq!(tokens.session(&session).unwrap().name, "ops");
        tokens.log_out(&session);
        assert!(tokens.session(&session).is_none());
    }
}
