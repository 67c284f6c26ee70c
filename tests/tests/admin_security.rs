//! The admin server's defences over real HTTP on 127.0.0.1: sessions that
//! can be ended everywhere, forms that need their session's CSRF token and
//! this origin, the security headers, a throttle on wrong tokens, a crowd
//! of half-sent requests that cannot keep `/healthz` from answering, and
//! TLS with the `__Host-` cookie. (What a hostile page on another port can
//! do to a signed-in browser is in the Chromium suite, `dashboard.rs`.)

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use rostersync_admin::AdminConfig;
use rostersync_tests::host::{ADMIN_TOKEN, Host, HostSpec, READ_TOKEN};
use rostersync_tests::workspace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `token` as a browser on the dashboard's own page would;
/// the session cookie (`name=value`).
async fn sign_in(host: &Host, token: &str) -> String {
    let response = client()
        .post(host.url("/login"))
        .header(header::ORIGIN, host.url(""))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    cookie_of(response.headers())
}

fn cookie_of(headers: &HeaderMap) -> String {
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// The page at `path` as the signed-in browser sees it: its status and body.
async fn page(host: &Host, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = client()
        .get(host.url(path))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The CSRF token the session's forms carry.
fn csrf_of(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a CSRF token")
        + "name=\"csrf\" value=\"".len();
    body[at..at + 64].to_string()
}

/// POSTs a dashboard form from this origin with the session's cookie.
async fn submit(host: &Host, cookie: &str, path: &str, form: &[(&str, &str)]) -> StatusCode {
    client()
        .post(host.url(path))
        .header(header::COOKIE, cookie)
        .header(header::ORIGIN, host.url(""))
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_token() {
    let host = Host::start(HostSpec::default()).await;
    let laptop = sign_in(&host, ADMIN_TOKEN).await;
    let phone = sign_in(&host, ADMIN_TOKEN).await;
    assert_ne!(laptop, phone);
    for cookie in [&laptop, &phone] {
        assert_eq!(page(&host, cookie, "/").await.0, StatusCode::OK);
    }
    let csrf = csrf_of(&page(&host, &laptop, "/").await.1);
    assert_eq!(
        submit(&host, &laptop, "/logout/everywhere", &[("csrf", &csrf)]).await,
        StatusCode::SEE_OTHER
    );
    for cookie in [&laptop, &phone] {
        assert_eq!(
            page(&host, cookie, "/").await.0,
            StatusCode::SEE_OTHER,
            "sent back to the login"
        );
    }
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_expires() {
    let host = Host::start(HostSpec::default()).await;
    let response = client()
        .post(host.url("/login"))
        .header(header::ORIGIN, host.url(""))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("rostersync_session="), "{set}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
}

#[tokio::test]
async fn a_form_without_its_session_token_or_from_elsewhere_changes_nothing() {
    let host = Host::start(HostSpec::default()).await;
    let cookie = sign_in(&host, ADMIN_TOKEN).await;
    let csrf = csrf_of(&page(&host, &cookie, "/").await.1);
    let refresh = "/connections/north/refresh";
    assert_eq!(
        submit(&host, &cookie, refresh, &[("mode", "full")]).await,
        StatusCode::FORBIDDEN,
        "no token"
    );
    let other = "0".repeat(64);
    assert_eq!(
        submit(
            &host,
            &cookie,
            refresh,
            &[("mode", "full"), ("csrf", &other)]
        )
        .await,
        StatusCode::FORBIDDEN,
        "another token"
    );
    let from_elsewhere = client()
        .post(host.url(refresh))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "http://127.0.0.1:1")
        .form(&[("mode", "full"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        from_elsewhere.status(),
        StatusCode::FORBIDDEN,
        "another port"
    );
    assert!(host.store.active_runs().await.unwrap().is_empty());
    assert_eq!(
        submit(
            &host,
            &cookie,
            refresh,
            &[("mode", "full"), ("csrf", &csrf)]
        )
        .await,
        StatusCode::SEE_OTHER,
        "the real form works"
    );
    host.succeeded("north").await;
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_no_inline_script() {
    let host = Host::start(HostSpec::default()).await;
    let cookie = sign_in(&host, ADMIN_TOKEN).await;
    for path in ["/", "/holds", "/plugins", "/login", "/api/openapi.json"] {
        let response = client()
            .get(host.url(path))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in ["script-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("<script>"), "{path} has an inline script");
        assert!(!body.contains("<style>"), "{path} has an inline style");
    }
    let script = client()
        .get(host.url("/static/dashboard.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(
        script.text().await.unwrap().contains("/fragments/jobs"),
        "the polling script is served as a file"
    );
}

#[tokio::test]
async fn an_address_guessing_tokens_is_refused_after_ten_wrong_ones() {
    let host = Host::start(HostSpec::default()).await;
    let api = |token: &'static str| {
        client()
            .get(host.url("/api/v1/connections"))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..5 {
        let wrong = api("guess-0000000000000000000000000000").await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        let wrong = client()
            .post(host.url("/login"))
            .header(header::ORIGIN, host.url(""))
            .form(&[("token", "guess-1111111111111111111111111111")])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = api("guess-2222222222222222222222222222").await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key(header::RETRY_AFTER));
    let even_right = api(ADMIN_TOKEN).await.unwrap();
    assert_eq!(
        even_right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a guesser cannot learn a right token while refused"
    );
    // Health needs no token, so it is not throttled.
    let health = client().get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// Opens a connection that sends half a request's headers and waits.
async fn half_open(host: &Host) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn three_hundred_half_sent_requests_do_not_keep_healthz_from_answering() {
    let host = Host::start(HostSpec::default()).await;
    let mut crowd = Vec::new();
    for _ in 0..300 {
        crowd.push(half_open(&host).await);
    }
    for _ in 0..3 {
        let health = client().get(host.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
    // The server keeps at most its limit (256) open: the 44 oldest, idle,
    // were closed to make room.
    for (index, stream) in crowd[..44].iter_mut().enumerate() {
        assert!(hung_up(stream).await, "connection {index} is still open");
    }
}

/// Whether the server closes `stream`: reads until it does (the bound
/// only keeps a broken server from hanging the suite).
async fn hung_up(stream: &mut tokio::net::TcpStream) -> bool {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest)).await;
    matches!(read, Ok(Ok(_) | Err(_)))
}

#[tokio::test]
async fn a_request_whose_headers_never_finish_is_closed() {
    let host = Host::start(HostSpec {
        admin: AdminConfig {
            header_timeout_seconds: 1,
            ..AdminConfig::default()
        },
        ..HostSpec::default()
    })
    .await;
    let mut stream = half_open(&host).await;
    assert!(
        hung_up(&mut stream).await,
        "the server never closed the connection"
    );
    let health = client().get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_tls_the_server_speaks_https_and_the_cookie_is_host_bound_and_secure() {
    let fixtures = workspace().join("tests/fixtures/tls");
    let host = Host::start(HostSpec {
        admin: AdminConfig {
            tls_cert: Some(fixtures.join("cert.pem")),
            tls_key: Some(fixtures.join("key.pem")),
            ..AdminConfig::default()
        },
        ..HostSpec::default()
    })
    .await;
    let certificate =
        reqwest::Certificate::from_pem(&std::fs::read(fixtures.join("cert.pem")).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(certificate)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = format!("https://{}", host.addr);
    let health = https.get(format!("{origin}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let login = https
        .post(format!("{origin}/login"))
        .header(header::ORIGIN, &origin)
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let set = login.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-rostersync_session="), "{set}");
    assert!(set.contains("; Secure") && set.contains("Path=/"), "{set}");
    assert!(
        client().get(host.url("/healthz")).send().await.is_err(),
        "plain HTTP gets no answer"
    );
}

#[test]
fn listening_beyond_loopback_without_tls_is_warned_about() {
    let config = AdminConfig::default();
    assert_eq!(
        config.exposure_warning("127.0.0.1:8080".parse().unwrap()),
        None
    );
    let warning = config
        .exposure_warning("0.0.0.0:8080".parse().unwrap())
        .unwrap();
    assert!(warning.contains("without TLS"), "{warning}");
    let with_tls = AdminConfig {
        tls_cert: Some("cert.pem".into()),
        tls_key: Some("key.pem".into()),
        ..AdminConfig::default()
    };
    assert_eq!(
        with_tls.exposure_warning("0.0.0.0:8080".parse().unwrap()),
        None
    );
}

#[tokio::test]
async fn a_hold_is_answered_over_the_api_only_with_a_bearer_token_its_types_answer_and_the_confirmation()
 {
    let host = Host::start(HostSpec::default()).await;
    let hold = host.held_removal("north").await;
    let digest = host.store.open_hold("north").await.unwrap().unwrap().digest;
    let answer = |body: serde_json::Value| {
        client()
            .post(host.url(&format!("/api/v1/holds/{hold}/answer")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let shown: serde_json::Value = client()
        .get(host.url(&format!("/api/v1/holds/{hold}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["kind"], "removals");
    assert_eq!(shown["answers"][0]["label"], "Confirm removals");
    assert!(
        shown["held"][0]
            .as_str()
            .unwrap()
            .contains("removals held: 20 students"),
        "{shown}"
    );

    let unconfirmed = answer(serde_json::json!({"answer": "reject", "revision": digest}))
        .await
        .unwrap();
    assert_eq!(unconfirmed.status(), StatusCode::PRECONDITION_REQUIRED);
    let wrong =
        answer(serde_json::json!({"answer": "fixed-it", "revision": digest, "confirmed": true}))
            .await
            .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = wrong.text().await.unwrap();
    assert!(text.contains("offers confirm-removals or reject"), "{text}");
    // A session cookie without the bearer token opens nothing.
    let cookie = sign_in(&host, ADMIN_TOKEN).await;
    let cookie_only = client()
        .post(host.url(&format!("/api/v1/holds/{hold}/answer")))
        .header(header::COOKIE, &cookie)
        .json(&serde_json::json!({"answer": "reject", "revision": digest, "confirmed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie_only.status(), StatusCode::UNAUTHORIZED);
    // The dashboard's form without its CSRF token changes nothing either.
    let forged = submit(
        &host,
        &cookie,
        &format!("/holds/{hold}/answer"),
        &[
            ("answer", "reject"),
            ("revision", &digest),
            ("confirmed", "true"),
        ],
    )
    .await;
    assert_eq!(forged, StatusCode::FORBIDDEN);
    assert!(host.store.open_hold("north").await.unwrap().is_some());

    let rejected = answer(serde_json::json!({
        "answer": "reject", "revision": digest, "confirmed": true, "comment": "half an export"
    }))
    .await
    .unwrap();
    assert_eq!(rejected.status(), StatusCode::OK);
    let body: serde_json::Value = rejected.json().await.unwrap();
    assert_eq!(
        (body["answer"].as_str(), body["outcome"].as_str()),
        (Some("reject"), Some("closed"))
    );
    let row = host.store.hold(hold).await.unwrap().unwrap();
    assert_eq!(row.comment.as_deref(), Some("half an export"));
    let audit = host.store.audit_log().await.unwrap();
    assert!(
        audit.last().unwrap().detail.contains("half an export"),
        "{:?}",
        audit.last()
    );
}

/// GETs a JSON endpoint with `token`.
async fn api_json(host: &Host, token: &str, path: &str) -> serde_json::Value {
    let response = client()
        .get(host.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// A school provisioned into a real SCIM service, as the targets pages and
/// their JSON show it: the counts, a pupil's timeline from source record
/// to the target's ledger and delivery log, and a target's held mass
/// suspension, which only a form carrying its session's token confirms.
#[tokio::test]
async fn the_targets_pages_show_what_was_delivered_and_a_pupils_timeline() {
    use rostersync_core::targets::MassHold;
    use rostersync_deliver::{TargetConfig, TargetKind};
    use rostersync_model::Settings;
    use rostersync_model::target::ObjectKind;
    use rostersync_store::HoldStatus;
    use rostersync_tests::scim::{ScimServer, installed};

    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let passwords = tempfile::tempdir().unwrap();
    let mut apps = TargetConfig::new("apps", TargetKind::Plugin);
    apps.plugin = Some("scim".into());
    apps.settings = Settings::new().with("base-url", &server.base);
    apps.policy.domain = "north.example.org".into();
    apps.password_export = Some(passwords.path().join("apps"));
    let host = Host::synced(vec![apps]).await;
    // Once the host has delivered after the run, the list's counts are
    // the store's.
    let mut listed = serde_json::Value::Null;
    let mut status = None;
    for _ in 0..150 {
        let before = host.store.target_status("apps").await.unwrap();
        listed = api_json(&host, READ_TOKEN, "/api/v1/targets").await;
        let after = host.store.target_status("apps").await.unwrap();
        let head = host.store.outbox_head().await.unwrap();
        let delivered = after
            .last_pass
            .as_ref()
            .is_some_and(|p| p.last_error.is_none() && p.seen_id == head)
            && after.last_delivery.is_some();
        if delivered && before == after {
            status = Some(after);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = status.expect("the host delivered the school after the run");
    let users = server.users().await.len();
    assert!(users > 0);
    let apps = &listed[0];
    assert_eq!(apps["name"], "apps");
    assert_eq!(apps["kind"], "plugin");
    assert_eq!(apps["enabled"], true);
    assert_eq!(apps["waiting"], status.waiting);
    assert_eq!(apps["refused"], status.refused);
    assert_eq!(
        apps["last_delivery"]["outcome"],
        status.last_delivery.unwrap().outcome.as_str()
    );
    assert_eq!(apps["last_pass"]["last_error"], serde_json::Value::Null);
    assert_eq!(apps["open_hold"], serde_json::Value::Null);
    assert!(!listed.to_string().contains(&server.base), "{listed}");
    let detail = api_json(&host, READ_TOKEN, "/api/v1/targets/apps").await;
    assert!(!detail["deliveries"].as_array().unwrap().is_empty());
    assert_eq!(
        detail["pending"].as_array().unwrap().len() as i64,
        status.waiting + status.refused
    );
    assert!(!detail.to_string().contains(&server.base));
    // JSON needs the bearer token; a session cookie is not enough.
    let cookie = sign_in(&host, ADMIN_TOKEN).await;
    let by_cookie = client()
        .get(host.url("/api/v1/targets"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::UNAUTHORIZED);

    let (status, list) = page(&host, &cookie, "/targets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("data-target=\"apps\""), "{list}");
    assert!(!list.contains(&server.base));

    // A pupil's timeline names their account, the target's ledger state
    // and the delivery line that made them.
    let made = host
        .store
        .target_deliveries("apps", 100)
        .await
        .unwrap()
        .into_iter()
        .find(|d| {
            d.kind == ObjectKind::User
                && d.action.as_str() == "create-user"
                && d.outcome.as_str() == "done"
        })
        .expect("a recent delivery made a user");
    let user = host
        .store
        .target_object("apps", ObjectKind::User, &made.external_id)
        .await
        .unwrap()
        .expect("the ledger holds the user made");
    let timeline = api_json(
        &host,
        READ_TOKEN,
        &format!("/api/v1/accounts/{}/timeline", user.external_id),
    )
    .await;
    assert_eq!(timeline["account"]["id"], user.external_id.as_str());
    assert_eq!(timeline["sources"][0]["connection"], "north");
    assert_eq!(timeline["sources"][0]["in_roster"], true);
    let trace = &timeline["targets"][0];
    assert_eq!(trace["target"], "apps");
    assert_eq!(trace["ledger"]["state"], "active");
    assert_eq!(
        trace["ledger"]["target_id"],
        user.target_id.as_deref().unwrap()
    );
    let lines = trace["deliveries"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "create-user" && l["outcome"] == "done"),
        "{trace}"
    );
    assert!(
        trace["verdict"]
            .as_str()
            .unwrap()
            .starts_with("Delivered as")
    );
    // The same answer from the source person's side; a person the roster
    // has but no account is linked to is told so, per target.
    let source_id = timeline["sources"][0]["source_id"].as_str().unwrap();
    let by_person = api_json(
        &host,
        READ_TOKEN,
        &format!("/api/v1/connections/north/people/{source_id}/timeline"),
    )
    .await;
    assert_eq!(by_person, timeline);
    let redirect = client()
        .get(host.url(&format!("/connections/north/people/{source_id}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    let links = host.store.links("north").await.unwrap();
    let unlinked = host
        .store
        .standing_issues("north")
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.issue.entity_type == "Student" && !links.contains_key(&s.issue.source_id));
    if let Some(standing) = unlinked {
        let nobody = api_json(
            &host,
            READ_TOKEN,
            &format!(
                "/api/v1/connections/north/people/{}/timeline",
                standing.issue.source_id
            ),
        )
        .await;
        assert_eq!(nobody["account"], serde_json::Value::Null);
        assert_eq!(
            nobody["sources"][0]["issues"][0]["message"],
            standing.issue.message.as_str()
        );
        assert!(
            nobody["targets"][0]["verdict"]
                .as_str()
                .unwrap()
                .starts_with("No account is linked"),
            "{nobody}"
        );
    }
    let (status, _) = page(&host, &cookie, "/connections/north/people/nobody-at-all").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, target_page) = page(&host, &cookie, "/targets/apps").await;
    assert!(
        target_page.contains(&format!("href=\"/accounts/{}\"", user.external_id)),
        "the deliveries link to each person's timeline"
    );
    let (status, person) = page(&host, &cookie, &format!("/accounts/{}", user.external_id)).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        user.username.as_deref().unwrap(),
        user.target_id.as_deref().unwrap(),
        "create-user",
    ] {
        assert!(person.contains(shown), "{shown} on the timeline");
    }

    // A held mass suspension: confirmed only by a form with its token.
    let held = MassHold {
        digest: "0123456789abcdef0123456789abcdef".into(),
        population: users,
        suspend: vec![format!(
            "{} ({})",
            user.username.as_deref().unwrap(),
            user.external_id
        )],
        delete: Vec::new(),
    };
    let hold = host.store.open_target_hold("apps", &held).await.unwrap();
    let listed = api_json(&host, READ_TOKEN, "/api/v1/targets").await;
    assert_eq!(listed[0]["open_hold"]["id"], hold);
    let (_, target_page) = page(&host, &cookie, "/targets/apps").await;
    assert!(target_page.contains(&held.digest));
    let action = format!("/targets/apps/holds/{hold}/confirm");
    assert_eq!(
        submit(&host, &cookie, &action, &[("digest", &held.digest)]).await,
        StatusCode::FORBIDDEN
    );
    let read_only = client()
        .post(host.url(&format!("/api/v1/targets/apps/holds/{hold}/confirm")))
        .bearer_auth(READ_TOKEN)
        .json(&serde_json::json!({"digest": held.digest}))
        .send()
        .await
        .unwrap();
    assert_eq!(read_only.status(), StatusCode::FORBIDDEN);
    let stale = client()
        .post(host.url(&format!("/api/v1/targets/apps/holds/{hold}/confirm")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"digest": "not-the-one-reviewed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let open = |holds: Vec<rostersync_store::TargetHoldRow>| {
        holds.into_iter().find(|h| h.id == hold).unwrap().status
    };
    assert_eq!(
        open(host.store.target_holds("apps").await.unwrap()),
        HoldStatus::Open
    );
    let csrf = csrf_of(&target_page);
    assert_eq!(
        submit(
            &host,
            &cookie,
            &action,
            &[("digest", &held.digest), ("csrf", &csrf)]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        open(host.store.target_holds("apps").await.unwrap()),
        HoldStatus::Confirmed
    );
    let audit = host.store.audit_log().await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "target-hold.confirmed"
            && e.subject == format!("target apps hold {hold}")
            && e.detail.contains(&held.digest)),
        "{audit:?}"
    );
}
