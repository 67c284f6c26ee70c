//! `serve` provisions with nobody asking: after each run the host's
//! delivery loop follows the outbox and delivers every enabled target, a
//! real SCIM service (`scim2-server` from PyPI) here. The initial passwords
//! of the accounts it makes go to a new owner-only file in the target's
//! `password_export` folder, once. A target whose server is not there is
//! noted in one sentence and holds up neither the runs nor the other
//! targets; a preview-only target is sent nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rostersync_deliver::{TargetConfig, TargetKind};
use rostersync_model::Settings;
use rostersync_sandbox::Mutation;
use rostersync_store::{RunMode, Store};
use rostersync_tests::active_accounts;
use rostersync_tests::host::{Host, HostSpec};
use rostersync_tests::scim::{ScimServer, installed};

fn scim_target(name: &str, base: &str, passwords: &Path) -> TargetConfig {
    let mut config = TargetConfig::new(name, TargetKind::Plugin);
    config.plugin = Some("scim".into());
    config.settings = Settings::new().with("base-url", base);
    config.policy.domain = "north.example.org".into();
    config.password_export = Some(passwords.join(name));
    config
}

/// The connection's active pupil and staff accounts that the target has
/// no change waiting for: those it should hold.
async fn owed(store: &Store, target: &str) -> BTreeSet<String> {
    let waiting: BTreeSet<String> = store
        .target_changes(target)
        .await
        .unwrap()
        .into_iter()
        .map(|change| change.item.external_id)
        .collect();
    active_accounts(store, "north")
        .await
        .into_keys()
        .filter(|id| !waiting.contains(id))
        .collect()
}

async fn held(server: &ScimServer) -> BTreeSet<String> {
    server
        .users()
        .await
        .into_iter()
        .filter_map(|u| Some(u["externalId"].as_str()?.to_string()))
        .collect()
}

/// Waits (up to 30 s) until the server holds at least `at_least` users and
/// every account owed to it, and the deliveries that made them have
/// written a password for each. (An account whose change is still going
/// out counts as waiting, so the floor keeps this from settling early.)
async fn provisioned(
    host: &Host,
    server: &ScimServer,
    passwords: &Path,
    at_least: usize,
) -> BTreeSet<String> {
    for _ in 0..150 {
        let owed = owed(&host.store, "apps").await;
        let held = held(server).await;
        let issued: usize = password_files(passwords).iter().map(Vec::len).sum();
        if held.len() >= at_least && owed == held && issued == held.len() {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the SCIM service holds {} users and {} passwords were issued, not the {} accounts owed to it",
        held(server).await.len(),
        password_files(passwords)
            .iter()
            .map(Vec::len)
            .sum::<usize>(),
        owed(&host.store, "apps").await.len()
    );
}

/// The password files in `folder`, each as its rows after the header.
fn password_files(folder: &Path) -> Vec<Vec<String>> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|file| {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(file).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{} is for its owner only", file.display());
            }
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn the_host_provisions_after_each_run_and_a_broken_target_holds_up_nothing() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let passwords = tempfile::tempdir().unwrap();
    let apps = scim_target("apps", &server.base, passwords.path());
    // Nothing listens on port 9 of 127.0.0.1.
    let broken = scim_target("broken", "http://127.0.0.1:9/v2", passwords.path());
    let mut preview = scim_target("preview", &server.base, passwords.path());
    preview.enabled = false;
    let host = Host::start(HostSpec {
        targets: vec![broken, apps, preview],
        ..HostSpec::default()
    })
    .await;

    host.service
        .request_run("north", RunMode::Full, "test")
        .await
        .unwrap();
    host.succeeded("north").await;
    let issued = passwords.path().join("apps");
    let first = provisioned(&host, &server, &issued, 1).await;
    let made: Vec<String> = password_files(&issued).concat();
    let named: BTreeSet<&str> = made
        .iter()
        .filter_map(|row| row.split(',').nth(1))
        .collect();
    assert_eq!(
        named,
        first.iter().map(String::as_str).collect(),
        "a password for each account made, once"
    );

    // The second run's new pupil arrives with nobody asking.
    host.sandbox.mutate(0, Mutation::AddPupil).unwrap();
    host.service
        .request_run("north", RunMode::Full, "test")
        .await
        .unwrap();
    host.succeeded("north").await;
    let second = provisioned(&host, &server, &issued, first.len() + 1).await;
    assert_eq!(second.len(), first.len() + 1);
    assert!(first.is_subset(&second));

    // The broken target is noted in one sentence, and was never a reason
    // for the others to wait.
    let pass = host.store.target_pass("broken").await.unwrap();
    let error = pass
        .and_then(|p| p.last_error)
        .expect("the failure is noted");
    assert!(error.contains("calls to the target failed"), "{error}");
    assert!(!error.contains('\n'), "{error}");
    let apps_pass = host.store.target_pass("apps").await.unwrap().unwrap();
    assert_eq!(apps_pass.last_error, None);
    assert_eq!(apps_pass.seen_id, host.store.outbox_head().await.unwrap());
    assert!(
        host.store.target_pass("preview").await.unwrap().is_none()
            && host
                .store
                .target_deliveries("preview", 1)
                .await
                .unwrap()
                .is_empty(),
        "a preview-only target is sent nothing"
    );
}

/// Two `serve` processes sharing one store: while another holds a target's
/// lease neither delivers it, and once it is free the two deliver side by
/// side without ever making an account twice.
#[tokio::test]
async fn hosts_sharing_a_store_take_turns_on_a_target_and_make_each_account_once() {
    use rostersync_service::{Pass, Service, ServiceOptions};
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let passwords = tempfile::tempdir().unwrap();
    let apps = scim_target("apps", &server.base, passwords.path());
    let host = Host::start(HostSpec {
        targets: vec![apps.clone()],
        ..HostSpec::default()
    })
    .await;
    let rival = Service::new(
        host.store.clone(),
        host.runtime.clone(),
        Vec::new(),
        ServiceOptions {
            targets: vec![apps],
            ..ServiceOptions::default()
        },
    )
    .unwrap();

    // A third process holds the lease: the roster runs, nothing goes out.
    // (The host's own loop may hold it for a moment first: its first pass
    // takes it even with nothing to send, and gives it up after.)
    let mut claimed = false;
    for _ in 0..150 {
        let now = chrono::Utc::now();
        claimed = host
            .store
            .claim_target(
                "apps",
                "a third host",
                now,
                now + chrono::Duration::minutes(5),
            )
            .await
            .unwrap();
        if claimed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(claimed, "the host's loop gave the lease up after its pass");
    host.service
        .request_run("north", RunMode::Full, "test")
        .await
        .unwrap();
    host.succeeded("north").await;
    let passes = rival.deliver_targets().await;
    assert!(matches!(passes[..], [(_, Pass::Busy)]), "{passes:?}");
    assert!(held(&server).await.is_empty(), "the lease holder's turn");

    // Free again: the host's loop and the rival deliver at once.
    host.store
        .release_target("apps", "a third host")
        .await
        .unwrap();
    let issued = passwords.path().join("apps");
    let (rival_pass, held_now) = tokio::join!(
        rival.deliver_targets(),
        provisioned(&host, &server, &issued, 1)
    );
    assert!(
        rival_pass
            .iter()
            .all(|(_, pass)| !matches!(pass, Pass::Failed(_))),
        "{rival_pass:?}"
    );
    let users = server.users().await;
    assert_eq!(
        users.len(),
        held_now.len(),
        "each account made once: {} users for {} accounts",
        users.len(),
        held_now.len()
    );
}
