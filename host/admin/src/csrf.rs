//! Cross-site request forgery: every state-changing dashboard request must
//! come from a page of this origin (its `Origin`, or failing that its
//! `Referer`, names this scheme, host and port: `SameSite` cookies do not
//! tell ports apart) and, once signed in, carry its session's token as the
//! `csrf` form field. One layer over every dashboard route applies it, so
//! a form rendered with [`crate::pages::post_form`] is covered without more
//! code; the JSON API needs none, as it takes bearer tokens only.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;

/// The form field that carries the session's CSRF token.
pub const FIELD: &str = "csrf";

/// The sign-in form, the one form posted before there is a session.
const SIGN_IN: &str = "/login";

/// The largest dashboard form read (they hold a token and a word or two).
const FORM_LIMIT: usize = 64 * 1024;

pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if !same_origin(&parts, state.gate.tls) {
        return refuse(
            "This form was not sent from a rostersync page; reload the page and try again.",
        );
    }
    let session = match state.gate.session(&parts) {
        // Signing in needs no session (its origin is checked above).
        Some(session) if parts.uri.path() != SIGN_IN => session,
        // No live session: the handler sends the browser to sign in.
        _ => return next.run(Request::from_parts(parts, body)).await,
    };
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return refuse("This form is too large.");
    };
    let presented = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())) {
        return refuse(
            "This form has expired or did not come from this session; reload the page and try again.",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(message: &'static str) -> Response {
    (StatusCode::FORBIDDEN, message).into_response()
}

/// Whether the request names this server (the `Host` it was sent to) as
/// where it came from.
fn same_origin(parts: &Parts, tls: bool) -> bool {
    let header_text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = header_text(header::HOST) else {
        return false;
    };
    let ours = format!("{}://{host}", if tls { "https" } else { "http" });
    match (header_text(header::ORIGIN), header_text(header::REFERER)) {
        (Some(origin), _) => origin == ours,
        (None, Some(referer)) => referer
            .strip_prefix(&ours)
            .is_some_and(|rest| rest.starts_with('/')),
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().method("POST").uri("/holds/1/confirm");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_this_scheme_host_and_port_count_as_this_origin() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(
            &parts(&[host, ("origin", "http://127.0.0.1:8080")]),
            false
        ));
        assert!(same_origin(
            &parts(&[host, ("referer", "http://127.0.0.1:8080/holds/1")]),
            false
        ));
        for foreign in [
            ("origin", "http://127.0.0.1:8081"),
            ("origin", "https://127.0.0.1:8080"),
            ("origin", "null"),
            ("referer", "http://127.0.0.1:8080.evil.example/"),
            ("referer", "http://127.0.0.1:9090/holds/1"),
        ] {
            assert!(!same_origin(&parts(&[host, foreign]), false), "{foreign:?}");
        }
        assert!(!same_origin(&parts(&[host]), false), "no origin at all");
        assert!(same_origin(
            &parts(&[host, ("origin", "https://127.0.0.1:8080")]),
            true
        ));
    }
}
