//! The dashboard in headless Chromium, as a school's IT admin uses it:
//! sign in with the token, press Refresh now and watch the run finish,
//! confirm a held mass removal after reading its evidence, download a
//! run's issues as CSV; and a read-only token sees the buttons disabled.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them).

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
    let evidence = href(&client, "#evidence").await;
    let csv = fetch_in_page(&client, &evidence).await;
    assert!(
        csv.lines().count() > 20,
        "the evidence lists the removed records: {csv}"
    );

    click(&client, "#confirm").await;
    let answer = wait_for_text(&client, "#answer", |t| t.contains("confirmed")).await;
    assert!(answer.contains("by ops"), "{answer}");
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
