//! The provider sandbox's own speed: every Wonde feed the connector reads
//! (with its includes), page by page, for one school of 5,000 pupils
//! (`SANDBOX_PUPILS` for another size). The first walk renders each page;
//! the walks after serve what the first rendered, as every read does until
//! the data changes; a walk after a mutation renders again. Prints pages
//! per second for each, so a benchmark through the sandbox can tell
//! whether it measured rostersync or the fake.
//!
//! `cargo bench -p rostersync-tests --bench sandbox`

use std::time::Instant;

use rostersync_sandbox::{Mutation, Provider, Sandbox, SandboxConfig, SandboxHandle, Size};
use serde::Deserialize;

/// What the Wonde connector asks for: each feed with its includes.
const FEEDS: [&str; 7] = [
    "students?include=education_details,contact_details,year,registration,contacts",
    "students-pre-admission?include=education_details,contact_details,year,registration,contacts",
    "students/leavers?include=education_details,contact_details,year,registration,contacts",
    "employees?include=contact_details",
    "contacts?include=contact_details",
    "classes?include=students,employees,subject",
    "groups?include=students,employees",
];

/// Of a page, only where the next one is: the records are skipped, not
/// built, so the walk measures the sandbox more than its own parsing.
#[derive(Deserialize)]
struct Page {
    meta: Meta,
}

#[derive(Deserialize)]
struct Meta {
    pagination: Pagination,
}

#[derive(Deserialize)]
struct Pagination {
    next: Option<String>,
}

/// Follows every feed to its last page; returns pages and bytes read.
async fn walk(client: &reqwest::Client, sandbox: &SandboxHandle) -> (usize, usize) {
    let school = format!(
        "{}/schools/{}",
        sandbox.base_url(Provider::Wonde, 0),
        sandbox.credentials(0).wonde_school_id
    );
    let token = sandbox.credentials(0).wonde_token;
    let (mut pages, mut bytes) = (0, 0);
    for feed in FEEDS {
        let mut next = Some(format!("{school}/{feed}&per_page=200"));
        while let Some(url) = next {
            let body = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("the sandbox serves the page")
                .bytes()
                .await
                .expect("the page arrives");
            pages += 1;
            bytes += body.len();
            let page: Page = serde_json::from_slice(&body).expect("a Wonde page");
            next = page.meta.pagination.next;
        }
    }
    (pages, bytes)
}

async fn timed(label: &str, client: &reqwest::Client, sandbox: &SandboxHandle) -> f64 {
    let started = Instant::now();
    let (pages, bytes) = walk(client, sandbox).await;
    let seconds = started.elapsed().as_secs_f64();
    let rate = pages as f64 / seconds;
    println!(
        "  {label:<28} {pages:>5} pages  {:>6.1} MiB  {seconds:>7.3} s  {rate:>8.0} pages/s",
        bytes as f64 / f64::from(1 << 20)
    );
    rate
}

#[tokio::main]
async fn main() {
    let pupils = std::env::var("SANDBOX_PUPILS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let sandbox = Sandbox::start(SandboxConfig {
        size: Size {
            schools: 1,
            pupils_per_school: pupils,
        },
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox starts");
    let client = reqwest::Client::new();
    println!("Wonde, one school of {pupils} pupils, 200 a page, every feed the connector reads");
    let rendered = timed("rendering each page", &client, &sandbox).await;
    let mut served = 0.0;
    for walk in 1..=3 {
        served = timed(&format!("served again ({walk})"), &client, &sandbox).await;
    }
    sandbox
        .mutate(0, Mutation::AddPupil)
        .expect("a pupil joins");
    timed("rendering after a mutation", &client, &sandbox).await;
    println!(
        "  pages served from a version already rendered: {:.1}× the rate of rendering them",
        served / rendered
    );
    sandbox.shutdown().await;
}
