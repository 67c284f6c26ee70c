//! The dashboard in headless Chromium, as a school's IT admin uses it:
//! sign in with the token, press Refresh now and watch the run finish,
//! confirm a held mass removal after reading its evidence, download a
//! run's issues as CSV; and a read-only token sees the buttons disabled.
//! And what a hostile page on another port of the same machine can do to
//! that signed-in browser: nothing (no forged form or `no-cors` fetch
//! confirms a hold or queues a run, the session cookie alone opens no
//! door of the JSON API, and the hold page will not show inside a frame).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use rostersync_sandbox::Mutation;
use rostersync_tests::host::{ADMIN_TOKEN, Host, HostSpec, READ_TOKEN};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> (Client, Driver) {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: install Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"],
        },
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let mut last_error = None;
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return (client, driver),
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cannot start headless Chromium through chromedriver: {last_error:?}");
}

/// The text of the first element `css` matches once it satisfies `done`,
/// waiting up to a minute (the page polls and reloads itself).
async fn wait_for_text(client: &Client, css: &str, done: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    for _ in 0..600 {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if done(&text) {
                return text;
            }
            seen = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed what was expected; it last read {seen:?}");
}

async fn sign_in(client: &Client, host: &Host, token: &str) {
    client.goto(&host.url("/")).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/login")
    );
    client
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(client, "button[type=submit]").await;
    client
        .wait()
        .for_element(Locator::Css("table#connections"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_admin_refreshes_confirms_a_held_removal_and_downloads_the_issues() {
    let host = Host::start(HostSpec::default()).await;
    let (client, _driver) = browser().await;
    sign_in(&client, &host, ADMIN_TOKEN).await;
    let row = "tr[data-connection=north] td.status";
    assert_eq!(wait_for_text(&client, row, |_| true).await, "not run yet");

    click(&client, "button[data-connection=north]").await;
    let status = wait_for_text(&client, row, |t| t.starts_with("succeeded")).await;
    assert!(status.starts_with("succeeded"), "{status}");

    // The school loses a fifth of its pupils at once: the next run is held.
    for _ in 0..20 {
        host.sandbox
            .mutate(0, Mutation::RemovePupil { pupil: None })
            .unwrap();
    }
    click(&client, "button[data-connection=north]").await;
    wait_for_text(&client, row, |t| t.contains("waits for you")).await;
    click(&client, "td.status a").await;
    let reasons = wait_for_text(&client, "#reasons", |_| true).await;
    assert!(reasons.contains("would remove"), "{reasons}");
    let kind = wait_for_text(&client, "#kind", |_| true).await;
    assert_eq!(kind, "Removals held");
    let held = wait_for_text(&client, "#held", |_| true).await;
    assert!(
        held.contains("removals held: 20 students"),
        "grouped, students first: {held}"
    );
    let evidence = href(&client, "#evidence").await;
    let csv = fetch_in_page(&client, &evidence).await;
    assert!(
        csv.lines().count() > 20,
        "the evidence lists the removed records: {csv}"
    );
    assert!(
        csv.lines().skip(2).all(|row| row.starts_with("remove,")),
        "and only them: {csv}"
    );
    assert!(client.find(Locator::Css("#answer-reject")).await.is_ok());

    // Confirming takes a second step, with a comment for the audit.
    click(&client, "#answer-confirm-removals").await;
    let consequence = wait_for_text(&client, "#consequence", |_| true).await;
    assert!(consequence.contains("removals included"), "{consequence}");
    client
        .find(Locator::Css("#comment"))
        .await
        .unwrap()
        .send_keys("twenty leavers confirmed by the office")
        .await
        .unwrap();
    click(&client, "#confirm").await;
    let answer = wait_for_text(&client, "#answer", |t| t.contains("confirmed")).await;
    assert!(
        answer.contains("Confirm removals") && answer.contains("by ops"),
        "{answer}"
    );
    let comment = wait_for_text(&client, "#comment", |_| true).await;
    assert_eq!(comment, "twenty leavers confirmed by the office");
    let audit = host.store.audit_log().await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(last.action, "hold.confirm");
    assert!(
        last.detail
            .contains("twenty leavers confirmed by the office"),
        "{}",
        last.detail
    );
    assert!(host.store.open_hold("north").await.unwrap().is_none());

    // The first run's issues, downloaded as CSV with the browser's session.
    client.goto(&host.url("/connections/north")).await.unwrap();
    let links = client.find_all(Locator::LinkText("Issues")).await.unwrap();
    links.last().unwrap().click().await.unwrap();
    let href = href(&client, "#issues-csv").await;
    let csv = fetch_in_page(&client, &href).await;
    assert!(
        csv.starts_with("Integration source id,Entity type"),
        "{csv}"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_read_only_token_sees_everything_and_can_press_nothing() {
    let host = Host::start(HostSpec::default()).await;
    let (client, _driver) = browser().await;
    sign_in(&client, &host, READ_TOKEN).await;
    let who = wait_for_text(&client, "header .who", |_| true).await;
    assert!(who.contains("viewer") && who.contains("read-only"), "{who}");
    let refresh = client
        .find(Locator::Css("button[data-connection=north]"))
        .await
        .unwrap();
    assert!(
        refresh.attr("disabled").await.unwrap().is_some(),
        "Refresh now is disabled"
    );
    assert!(host.store.active_runs().await.unwrap().is_empty());
    client.close().await.unwrap();
}

/// A connection whose second run was held for removing a third of its
/// pupils, asked for over the API; the hold's id.
async fn held_removal(host: &Host) -> i64 {
    host.held_removal("north").await
}

/// A hostile site on another port of 127.0.0.1: one page per attack on
/// the dashboard at `target`, against hold `hold`.
async fn hostile_site(target: SocketAddr, hold: i64) -> SocketAddr {
    let target = format!("http://{target}");
    let pages = [
        (
            "/confirm-form",
            format!(
                "<form id=f method=post action='{target}/holds/{hold}/answer'>\
                 <input type=hidden name=answer value=confirm-removals>\
                 <input type=hidden name=revision value=x>\
                 <input type=hidden name=confirmed value=true></form>\
                 <script>document.getElementById('f').submit()</script>"
            ),
        ),
        (
            "/resync-form",
            format!(
                "<form id=f method=post action='{target}/connections/north/refresh'>\
                 <input type=hidden name=mode value=full></form>\
                 <script>document.getElementById('f').submit()</script>"
            ),
        ),
        (
            "/fetch",
            format!(
                "<script>\
                 const send = (path, body) => fetch('{target}' + path, {{ method: 'POST', mode: 'no-cors', credentials: 'include', \
                   headers: {{ 'Content-Type': 'application/x-www-form-urlencoded' }}, body }}).catch(() => null);\
                 Promise.all([\
                   send('/api/v1/holds/{hold}/confirm', ''),\
                   send('/api/v1/holds/{hold}/answer', JSON.stringify({{ answer: 'confirm-removals', revision: 'x', confirmed: true }})),\
                   send('/holds/{hold}/answer', 'answer=confirm-removals&revision=x&confirmed=true'),\
                   send('/connections/north/refresh', 'mode=full'),\
                 ]).then(() => {{ document.title = 'sent'; }});\
                 </script>"
            ),
        ),
        (
            "/frame",
            format!("<iframe src='{target}/holds/{hold}' width=800 height=600></iframe>"),
        ),
    ];
    let mut site = axum::Router::new();
    for (path, body) in pages {
        let html = format!(
            "<!doctype html><html><head><title>prize draw</title></head><body>{body}</body></html>"
        );
        site = site.route(
            path,
            axum::routing::get(move || {
                let html = html.clone();
                async move { axum::response::Html(html) }
            }),
        );
    }
    rostersync_tests::serve(site).await
}

/// Waits until the browser shows a page of `addr` (a form submitted there).
async fn landed_on(client: &Client, addr: SocketAddr) -> String {
    for _ in 0..300 {
        if client.current_url().await.unwrap().port() == Some(addr.port()) {
            return client
                .find(Locator::Css("body"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {addr}");
}

#[tokio::test]
async fn a_page_on_another_port_cannot_confirm_a_hold_or_queue_a_run() {
    let host = Host::start(HostSpec::default()).await;
    let hold = held_removal(&host).await;
    let (client, _driver) = browser().await;
    sign_in(&client, &host, ADMIN_TOKEN).await;
    let site = hostile_site(host.addr, hold).await;

    for attack in ["/confirm-form", "/resync-form"] {
        client
            .goto(&format!("http://{site}{attack}"))
            .await
            .unwrap();
        let answer = landed_on(&client, host.addr).await;
        assert!(
            answer.contains("not sent from a rostersync page"),
            "{attack}: {answer}"
        );
    }
    client.goto(&format!("http://{site}/fetch")).await.unwrap();
    for _ in 0..300 {
        if client.title().await.unwrap() == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(client.title().await.unwrap(), "sent");

    assert_eq!(
        host.store.open_hold("north").await.unwrap().map(|h| h.id),
        Some(hold),
        "the hold is still open"
    );
    assert!(
        host.store.active_runs().await.unwrap().is_empty(),
        "no run was queued"
    );

    // The framed hold page never renders its Confirm button.
    client.goto(&format!("http://{site}/frame")).await.unwrap();
    let framed = loop_until_loaded_frame(&client).await;
    assert!(
        !framed.contains(&format!("/holds/{hold}")),
        "the hold page loaded inside the frame: {framed}"
    );
    client.enter_frame(0).await.unwrap();
    assert!(
        client
            .find(Locator::Css("#answer-confirm-removals"))
            .await
            .is_err()
    );
    client.enter_parent_frame().await.unwrap();

    // The same browser, on the dashboard itself, still can.
    client
        .goto(&host.url(&format!("/holds/{hold}")))
        .await
        .unwrap();
    click(&client, "#answer-confirm-removals").await;
    click(&client, "#confirm").await;
    let answer = wait_for_text(&client, "#answer", |t| t.contains("confirmed")).await;
    assert!(answer.contains("by ops"), "{answer}");
    client.close().await.unwrap();
}

/// The address the first frame of the page settled on.
async fn loop_until_loaded_frame(client: &Client) -> String {
    for _ in 0..300 {
        client.enter_frame(0).await.unwrap();
        let href = client
            .execute("return document.readyState + ' ' + location.href", vec![])
            .await
            .unwrap();
        client.enter_parent_frame().await.unwrap();
        let href = href.as_str().unwrap_or_default().to_string();
        if href.starts_with("complete ") && !href.ends_with("about:blank") {
            return href;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the frame never loaded");
}

#[tokio::test]
async fn the_session_cookie_alone_opens_nothing_in_the_json_api() {
    let host = Host::start(HostSpec::default()).await;
    let hold = held_removal(&host).await;
    let (client, _driver) = browser().await;
    sign_in(&client, &host, ADMIN_TOKEN).await;
    let cookie = client.get_named_cookie("rostersync_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/"));

    // From the dashboard's own page, with the browser's cookie.
    let status = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch('/api/v1/holds', { credentials: 'include' }).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(401));

    // A cookie captured by another local service, replayed.
    let replayed = reqwest::Client::new()
        .post(host.url(&format!("/api/v1/holds/{hold}/confirm")))
        .header("cookie", format!("rostersync_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(host.store.open_hold("north").await.unwrap().is_some());
    client.close().await.unwrap();
}

async fn click(client: &Client, css: &str) {
    let element = client.find(Locator::Css(css)).await;
    element
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap();
}

async fn href(client: &Client, css: &str) -> String {
    let element = client.find(Locator::Css(css)).await;
    let element = element.unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    element
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{css} has no href"))
}

/// GETs `path` from inside the page, with its session cookie, as a
/// download link would.
async fn fetch_in_page(client: &Client, path: &str) -> String {
    let text = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);",
            vec![json!(path)],
        )
        .await
        .unwrap();
    text.as_str().unwrap_or_default().to_string()
}

/// Elements matching `css` that stick out of the viewport, by their text.
async fn off_screen(client: &Client, css: &str) -> Vec<String> {
    let found = client
        .execute(
            "const width = document.documentElement.clientWidth;\
             return [...document.querySelectorAll(arguments[0])]\
               .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < 0 || r.right > width + 0.5); })\
               .map(e => e.textContent.trim());",
            vec![json!(css)],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

/// Asserts that no control of the page sticks out of the viewport and
/// that the page does not scroll sideways.
async fn assert_fits(client: &Client, path: &str, width: u32) {
    let clipped = off_screen(
        client,
        "header a, header button, main button, main a.button",
    )
    .await;
    assert!(
        clipped.is_empty(),
        "{path} at {width} px: off screen: {clipped:?}"
    );
    let scrolls = client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        scrolls.as_f64().unwrap() <= 0.5,
        "{path} at {width} px scrolls sideways by {scrolls}"
    );
}

/// Saves a screenshot of the page to /tmp/shots/, for a person to look at.
async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::create_dir_all("/tmp/shots").unwrap();
    std::fs::write(format!("/tmp/shots/{name}.png"), png).unwrap();
}

#[tokio::test]
async fn at_400_px_nothing_is_clipped_and_a_screen_reader_hears_names_and_jobs() {
    let host = Host::start(HostSpec {
        connections: vec![("north".into(), "wonde", 0), ("south".into(), "wonde", 0)],
        ..HostSpec::default()
    })
    .await;
    let hold = held_removal(&host).await;
    let (client, _driver) = browser().await;
    sign_in(&client, &host, ADMIN_TOKEN).await;

    // Every repeated button says which connection it is for.
    let labels = client
        .execute(
            "return [...document.querySelectorAll('button[data-connection]')].map(b => b.getAttribute('aria-label'));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(labels, json!(["Refresh north now", "Refresh south now"]));
    let jobs = client.find(Locator::Css("#jobs")).await.unwrap();
    assert_eq!(
        jobs.attr("aria-live").await.unwrap().as_deref(),
        Some("polite")
    );

    let pages = [
        ("overview", "/".to_string()),
        ("held-run", "/connections/north".to_string()),
        ("hold", format!("/holds/{hold}")),
    ];
    for (width, height) in [(1400, 1000), (400, 900)] {
        client.set_window_size(width, height).await.unwrap();
        for (name, path) in &pages {
            client.goto(&host.url(path)).await.unwrap();
            client
                .wait()
                .for_element(Locator::Css("main h1"))
                .await
                .unwrap();
            shot(&client, &format!("{name}-{width}")).await;
            assert_fits(&client, path, width).await;
        }
    }
    // At 400 px the Refresh button is on screen, and pressing it works.
    client.goto(&host.url("/")).await.unwrap();
    click(&client, "button[data-connection=south]").await;
    let row = "tr[data-connection=south] td.status";
    wait_for_text(&client, row, |t| t.starts_with("succeeded")).await;
    client.close().await.unwrap();
}

/// A target's page and a pupil's timeline at 400 px: nothing clipped, no
/// sideways scroll, and the held mass suspension confirmed by its button.
#[tokio::test]
async fn at_400_px_a_target_page_and_a_timeline_fit_and_its_hold_is_confirmed() {
    use rostersync_core::targets::{MassHold, Rename, RenameStatus};
    use rostersync_deliver::{TargetConfig, TargetKind};
    use rostersync_store::HoldStatus;

    let mut apps = TargetConfig::new("apps", TargetKind::Plugin);
    apps.plugin = Some("scim".into());
    apps.enabled = false;
    let host = Host::synced(vec![apps]).await;
    let pupil = host
        .store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.role == "student")
        .expect("the run made pupils' accounts");
    let digest = "fedcba9876543210fedcba9876543210";
    let hold = host
        .store
        .open_target_hold(
            "apps",
            &MassHold {
                digest: digest.into(),
                population: 60,
                suspend: vec![format!("a.very.long.login.for.a.pupil ({})", pupil.id)],
                delete: Vec::new(),
            },
        )
        .await
        .unwrap();
    // A change of login the templates proposed, waiting for an operator.
    host.store
        .propose_target_renames(
            "apps",
            &[Rename {
                external_id: pupil.id.clone(),
                from: "ana.smith".into(),
                to: "ana.smith-jones".into(),
                to_email: None,
                status: RenameStatus::Pending,
            }],
        )
        .await
        .unwrap();
    let (client, _driver) = browser().await;
    sign_in(&client, &host, ADMIN_TOKEN).await;
    client.set_window_size(400, 900).await.unwrap();
    for (name, path) in [
        ("targets", "/targets".to_string()),
        ("target", "/targets/apps".to_string()),
        ("timeline", format!("/accounts/{}", pupil.id)),
    ] {
        client.goto(&host.url(&path)).await.unwrap();
        client
            .wait()
            .for_element(Locator::Css("main h1"))
            .await
            .unwrap();
        shot(&client, &format!("{name}-400")).await;
        assert_fits(&client, &path, 400).await;
    }
    let verdict = wait_for_text(&client, "div.trace[data-target=apps] p.verdict", |_| true).await;
    assert!(!verdict.is_empty());

    client.goto(&host.url("/")).await.unwrap();
    let told = wait_for_text(&client, "#held-targets", |_| true).await;
    assert!(told.contains("apps"), "{told}");
    client.goto(&host.url("/targets/apps")).await.unwrap();
    click(&client, "#confirm-target-hold").await;
    client
        .wait()
        .for_element(Locator::Css("table#target-holds"))
        .await
        .unwrap();
    let status = host
        .store
        .target_holds("apps")
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.id == hold)
        .unwrap()
        .status;
    assert_eq!(status, HoldStatus::Confirmed);

    // The rename is approved by its own button, and audited.
    click(&client, &format!("#approve-rename-{}", pupil.id)).await;
    client
        .wait()
        .for_element(Locator::Css("table#renames"))
        .await
        .unwrap();
    let renames = host.store.target_renames("apps").await.unwrap();
    assert_eq!(renames[0].status, RenameStatus::Approved, "{renames:?}");
    let audit = host.store.audit_log().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "target-rename.approved" && a.actor != "first use"),
        "{audit:?}"
    );
    client.close().await.unwrap();
}
