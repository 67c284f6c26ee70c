//! Dashboard sessions, held server-side: a random id in the cookie, the
//! rest here. A session ends when it has been idle too long, when it
//! reaches its absolute age, or when its owner signs out (here or
//! everywhere). Sessions live in this process only: a restart, which is
//! how a token leaves the configuration, ends them all. Each session
//! carries the CSRF token its forms must echo.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::Caller;

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ends a session nobody used for this long.
    pub idle: Duration,
    /// Ends every session this long after sign-in, however busy.
    pub absolute: Duration,
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) caller: Caller,
    /// The SHA-256 of the token the session was started with.
    pub(crate) token: [u8; 32],
    /// What every form of this session must send back as `csrf`.
    pub(crate) csrf: String,
    started: Instant,
    last_seen: Instant,
}

pub(crate) struct Sessions {
    limits: SessionLimits,
    /// Keyed by the SHA-256 of the cookie value, so the table holds no
    /// usable cookie.
    live: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            live: Mutex::default(),
        }
    }

    pub(crate) fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Starts a session for `caller` (signed in with the token whose
    /// digest is `token`) at `now`; returns the cookie value.
    pub(crate) fn start(&self, caller: Caller, token: [u8; 32], now: Instant) -> String {
        let cookie = random_hex();
        let session = Session {
            caller,
            token,
            csrf: random_hex(),
            started: now,
            last_seen: now,
        };
        let mut live = self.lock();
        live.retain(|_, s| self.alive(s, now));
        live.insert(key(&cookie), session);
        cookie
    }

    /// The live session the cookie names, if it has not expired; using it
    /// keeps it from idling out.
    pub(crate) fn get(&self, cookie: &str, now: Instant) -> Option<Session> {
        let mut live = self.lock();
        let id = key(cookie);
        let session = live.get_mut(&id)?;
        if !self.alive(session, now) {
            live.remove(&id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    fn alive(&self, session: &Session, now: Instant) -> bool {
        now.saturating_duration_since(session.last_seen) < self.limits.idle
            && now.saturating_duration_since(session.started) < self.limits.absolute
    }

    /// Ends the session the cookie names.
    pub(crate) fn end(&self, cookie: &str) {
        self.lock().remove(&key(cookie));
    }

    /// Ends every session started with the token whose digest is `token`
    /// ("sign out everywhere").
    pub(crate) fn end_all_of(&self, token: &[u8; 32]) {
        self.lock().retain(|_, s| &s.token != token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    const MINUTE: Duration = Duration::from_secs(60);

    fn sessions() -> Sessions {
        Sessions::new(SessionLimits {
            idle: 30 * MINUTE,
            absolute: 8 * 60 * MINUTE,
        })
    }

    fn ops() -> Caller {
        Caller {
            name: "ops".into(),
            scope: Scope::Admin,
            csrf: None,
        }
    }

    #[test]
    fn an_idle_session_expires_and_a_used_one_lives_to_its_absolute_age() {
        let sessions = sessions();
        let start = Instant::now();
        let idle = sessions.start(ops(), [1; 32], start);
        let busy = sessions.start(ops(), [1; 32], start);
        // The busy one is used every 20 minutes; the idle one never.
        for step in 1..24 {
            let now = start + step * 20 * MINUTE;
            assert!(sessions.get(&busy, now).is_some(), "used at {step}");
        }
        assert!(sessions.get(&idle, start + 31 * MINUTE).is_none());
        assert!(sessions.get(&busy, start + 8 * 60 * MINUTE).is_none());
    }

    #[test]
    fn signing_out_everywhere_ends_every_session_of_that_token_only() {
        let sessions = sessions();
        let now = Instant::now();
        let laptop = sessions.start(ops(), [1; 32], now);
        let phone = sessions.start(ops(), [1; 32], now);
        let other = sessions.start(ops(), [2; 32], now);
        sessions.end(&laptop);
        assert!(sessions.get(&laptop, now).is_none());
        assert!(sessions.get(&phone, now).is_some());
        sessions.end_all_of(&[1; 32]);
        assert!(sessions.get(&phone, now).is_none());
        assert!(sessions.get(&other, now).is_some());
    }

    #[test]
    fn every_session_has_its_own_csrf_token() {
        let sessions = sessions();
        let now = Instant::now();
        let a = sessions.start(ops(), [1; 32], now);
        let b = sessions.start(ops(), [1; 32], now);
        let (a, b) = (
            sessions.get(&a, now).unwrap(),
            sessions.get(&b, now).unwrap(),
        );
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(a.csrf.len(), 64);
    }
}
