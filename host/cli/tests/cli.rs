//! The command line as a user runs it: the real binary, real connector
//! builds (sharing `target/connectors` with the test suites, so each
//! connector compiles once per run), real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rostersync(plugin_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(args)
        .env("ROSTERSYNC_PLUGIN_DIR", plugin_dir)
        .current_dir(workspace())
        .output()
        .expect("running rostersync")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn shared_target() -> String {
    workspace().join("target/connectors").display().to_string()
}

fn build_into(plugin_dir: &Path, crate_dir: &str) {
    let output = rostersync(
        plugin_dir,
        &[
            "connector",
            "build",
            crate_dir,
            "--target-dir",
            &shared_target(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn build_then_list_shows_every_plugin_with_its_status() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    build_into(plugins.path(), "connectors/legacy-v0_1");
    std::fs::write(plugins.path().join("broken.wasm"), b"not wasm").unwrap();

    let output = rostersync(plugins.path(), &["plugins", "list"]);
    let listing = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a broken plugin makes list fail: {listing}"
    );
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {listing}"))
    };
    assert!(
        line("probe").contains("Probe")
            && line("probe").contains("0.2.0")
            && line("probe").ends_with("in service")
    );
    assert!(line("legacy-v0_1").contains("0.1.0"));
    assert!(
        line("broken").contains("failed:")
            && line("broken").contains("not a WebAssembly component")
    );

    let output = rostersync(plugins.path(), &["plugins", "list", "--json"]);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let probe = rows.iter().find(|r| r["name"] == "probe").unwrap();
    assert_eq!(probe["wit"], "0.2.0");
    assert_eq!(probe["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn check_describes_a_good_file_and_explains_a_bad_one() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/template");
    let good = plugins.path().join("template.wasm");
    let output = rostersync(
        plugins.path(),
        &["plugins", "check", good.to_str().unwrap()],
    );
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("provider      Example SIS")
            && report.contains("rostersync:connector@0.2.0")
    );
    assert!(report.contains("api-token [Secret, required]"), "{report}");

    let bad = plugins.path().join("core.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let output = rostersync(plugins.path(), &["plugins", "check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("core.wasm: this is a core WebAssembly module, not a component")
    );
}

#[test]
fn a_new_connector_from_the_template_passes_the_suite_out_of_the_box() {
    let plugins = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "new",
            "my-mis",
            "--dir",
            work.path().to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let crate_dir = work.path().join("my-mis");
    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "test",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("7 passed, 0 failed"), "{report}");

    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "build",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(plugins.path().join("my-mis.wasm").exists());
}

#[test]
fn a_new_target_from_the_template_passes_the_target_suite_out_of_the_box() {
    let plugins = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            "target",
            "new",
            "my-app",
            "--dir",
            work.path().to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("rostersync target test"));
    let crate_dir = work.path().join("my-app");
    let output = rostersync(
        plugins.path(),
        &[
            "target",
            "build",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let installed = plugins.path().join("my-app.wasm");
    assert!(installed.exists());

    // The crate (built again, unchanged) and the installed component.
    for tested in [crate_dir.as_path(), installed.as_path()] {
        let output = rostersync(
            plugins.path(),
            &[
                "target",
                "test",
                tested.to_str().unwrap(),
                "--target-dir",
                &shared_target(),
            ],
        );
        let report = text(&output);
        assert!(output.status.success(), "{report}");
        assert!(
            report.contains("against the Example App served on 127.0.0.1"),
            "{report}"
        );
        assert!(
            report.contains("PASS  check refuses bad credentials"),
            "{report}"
        );
        assert!(
            report.contains("PASS  every batch sent again under the same keys is harmless"),
            "{report}"
        );
        assert!(report.contains("10 passed, 0 failed"), "{report}");
    }

    // A target broken on purpose (its suspension enables the account)
    // fails the suite, naming the step and what the endpoint held.
    let source = crate_dir.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap();
    let suspend = "Change::SuspendUser(object) => set_active(api, &object, false)";
    assert!(code.contains(suspend), "the template suspends by `active`");
    std::fs::write(
        &source,
        code.replace(
            suspend,
            "Change::SuspendUser(object) => set_active(api, &object, true)",
        ),
    )
    .unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            "target",
            "test",
            crate_dir.to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  the endpoint holds what was sent: after `change` it held"),
        "{report}"
    );
    assert!(report.contains("9 passed, 1 failed"), "{report}");

    // A live endpoint needs its settings, and one that is not there fails
    // the suite.
    let live = ["target", "test", installed.to_str().unwrap()];
    let output = rostersync(
        plugins.path(),
        &[&live[..], &["--base-url", "http://127.0.0.1:9/v1"]].concat(),
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("`api-token` is required"),
        "{}",
        text(&output)
    );
    let settings = work.path().join("settings.toml");
    std::fs::write(&settings, "api-token = \"x\"\n").unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            &live[..],
            &["--base-url", "http://127.0.0.1:9/v1", "--settings"],
            &[settings.to_str().unwrap()],
        ]
        .concat(),
    );
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("live at http://127.0.0.1:9/v1"), "{report}");
    assert!(
        report.contains("FAIL  check succeeds with good settings"),
        "{report}"
    );
}

#[test]
fn missing_fixtures_are_an_error_naming_the_file() {
    let plugins = tempfile::tempdir().unwrap();
    let fixtures = tempfile::tempdir().unwrap();
    std::fs::write(
        fixtures.path().join("settings.toml"),
        "api-token = \"x\"\nbase-url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let output = rostersync(
        plugins.path(),
        &[
            "connector",
            "test",
            "connectors/template",
            "--fixtures",
            fixtures.path().to_str().unwrap(),
            "--target-dir",
            &shared_target(),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("check.json: cannot read the fixture"),
        "{}",
        text(&output)
    );
}

/// Runs `rostersync` with a configuration file and a store from the
/// environment.
fn with_store(plugin_dir: &Path, config: &Path, store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(args)
        .env("ROSTERSYNC_PLUGIN_DIR", plugin_dir)
        .env("ROSTERSYNC_CONFIG", config)
        .env("ROSTERSYNC_STORE", store)
        .current_dir(workspace())
        .output()
        .expect("running rostersync")
}

fn probe_config(dir: &Path, pupils: u32) -> PathBuf {
    let config = dir.join("rostersync.toml");
    let never_used = dir.join("from-the-file.db");
    std::fs::write(
        &config,
        format!(
            "store = \"sqlite://{}\"\n\n[[connections]]\nid = \"probe-school\"\nconnector = \"probe\"\n\
             settings = {{ behaviour = \"roster\", batch-size = \"{pupils}\" }}\n",
            never_used.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn sync_holds_and_history_work_from_the_command_line_on_the_store_the_environment_names() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("from-the-env.db").display());
    let run = |pupils: u32, args: &[&str]| {
        let config = probe_config(dir.path(), pupils);
        with_store(plugins.path(), &config, &store, args)
    };

    // Reading commands never create the store they would read.
    let before = run(40, &["history", "probe-school"]);
    assert_eq!(before.status.code(), Some(2), "{}", text(&before));
    assert!(
        text(&before).contains("there is no store at sqlite://"),
        "{}",
        text(&before)
    );
    assert!(!dir.path().join("from-the-env.db").exists());

    let dry = run(40, &["sync", "probe-school", "--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(4),
        "changes pending: {}",
        text(&dry)
    );
    let first = run(40, &["sync", "probe-school"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(text(&first).contains("created 42"), "{}", text(&first));
    assert_eq!(
        run(40, &["sync", "probe-school", "--dry-run"])
            .status
            .code(),
        Some(0),
        "clean"
    );

    // The export shrinks to 10 pupils: a delta removes nothing (absence
    // is no removal), a full run's 30 removals are held.
    assert_eq!(
        run(10, &["sync", "probe-school", "--dry-run"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(10, &["sync", "probe-school", "--full", "--dry-run"])
            .status
            .code(),
        Some(3)
    );
    let held = run(10, &["sync", "probe-school", "--full", "--json"]);
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    let report: serde_json::Value = serde_json::from_slice(&held.stdout).unwrap();
    assert_eq!(report["status"], "held");
    assert!(
        report["holds"][0]
            .as_str()
            .unwrap()
            .contains("remove 30 of 40 students")
    );

    assert!(
        report["held"][0]
            .as_str()
            .unwrap()
            .starts_with("30 removals held: 30 students"),
        "one grouped line: {report}"
    );
    let list = text(&run(10, &["holds", "list"]));
    assert!(list.contains("hold    1  probe-school  open"), "{list}");
    assert!(
        list.contains("30 removals held: 30 students")
            && list.contains("see rostersync holds show 1"),
        "{list}"
    );
    let csv = run(10, &["holds", "export", "1"]);
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    assert_eq!(
        csv.lines().count(),
        32,
        "the revision line, header, 30 rows: {csv}"
    );
    let show = text(&run(10, &["holds", "show", "1"]));
    let digest = show
        .split("digest ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("holds show names the digest: {show}"));
    assert!(csv.lines().next().unwrap().ends_with(digest), "{csv}");
    assert!(
        show.contains("Confirm removals") && show.contains("holds answer 1 reject --revision"),
        "{show}"
    );
    // Answering asks first; without a terminal it needs --yes.
    let unasked = run(
        10,
        &[
            "holds",
            "answer",
            "1",
            "confirm-removals",
            "--revision",
            digest,
        ],
    );
    assert_eq!(unasked.status.code(), Some(2));
    assert!(
        text(&unasked).contains("needs confirmation"),
        "{}",
        text(&unasked)
    );
    let wrong = run(
        10,
        &[
            "holds",
            "answer",
            "1",
            "create-accounts",
            "--revision",
            digest,
            "--yes",
        ],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong).contains("hold 1 is a removals hold; answer confirm-removals or reject"),
        "{}",
        text(&wrong)
    );
    let confirm = run(
        10,
        &[
            "holds",
            "confirm",
            "1",
            "--revision",
            digest,
            "--by",
            "tester",
        ],
    );
    assert!(confirm.status.success(), "{}", text(&confirm));
    let again = run(10, &["holds", "confirm", "1", "--revision", digest]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).contains("hold 1 was already answered"),
        "{}",
        text(&again)
    );

    let reconsidered = run(10, &["holds", "reconsider", "1"]);
    assert!(
        text(&reconsidered).contains("hold 1: 0 declined contact answers forgotten"),
        "a removals hold declined no contacts: {}",
        text(&reconsidered)
    );

    let history = text(&run(10, &["history", "probe-school"]));
    assert!(history.contains("last changed"), "{history}");
    assert_eq!(history.matches("full  held ").count(), 1, "{history}");
    assert!(history.contains("30 person held-delete"), "{history}");
    assert!(history.contains("applied held run"), "{history}");
    let issues = run(10, &["issues", "probe-school", "--csv"]);
    assert!(
        String::from_utf8_lossy(&issues.stdout)
            .starts_with("Integration source id,Entity type,Entity name,MIS id,Error message"),
        "{}",
        text(&issues)
    );

    // Every listing has a --json form that parses.
    let json = |args: &[&str]| -> serde_json::Value {
        let output = run(10, args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?} prints JSON: {e}: {}", text(&output)))
    };
    let history = json(&["history", "probe-school", "--json"]);
    assert_eq!(history["connection"], "probe-school");
    assert!(history["last_changed"].is_string(), "{history}");
    assert!(
        history["runs"]
            .as_array()
            .is_some_and(|runs| runs.len() >= 3),
        "{history}"
    );
    assert!(json(&["issues", "probe-school", "--json"]).is_array());
    let holds = json(&["holds", "list", "--all", "--json"]);
    assert_eq!(holds[0]["id"], 1, "{holds}");
    assert_eq!(json(&["holds", "show", "1", "--json"])["hold"]["id"], 1);
    assert_eq!(json(&["targets", "list", "--json"]), serde_json::json!([]));
    let unknown = run(10, &["history", "no-such-school"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("has no connection named \"no-such-school\""),
        "{}",
        text(&unknown)
    );

    assert!(dir.path().join("from-the-env.db").exists());
    assert!(
        !dir.path().join("from-the-file.db").exists(),
        "ROSTERSYNC_STORE wins over the file"
    );
}

#[test]
fn an_unknown_connection_and_a_bad_config_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = probe_config(dir.path(), 1);
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let unknown = with_store(dir.path(), &config, &store, &["sync", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown).contains("has no connection named \"nope\"; it has: probe-school"),
        "{}",
        text(&unknown)
    );
    std::fs::write(
        &config,
        "[[connections]]\nid = \"a\"\nconnector = \"probe\"\nshedule = \"x\"\n",
    )
    .unwrap();
    let bad = with_store(dir.path(), &config, &store, &["history", "a"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("rostersync.toml") && text(&bad).contains("shedule"),
        "{}",
        text(&bad)
    );
}

#[test]
fn config_check_passes_a_good_file_and_names_the_line_and_field_of_a_bad_one() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/wonde");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rostersync.toml");
    let check = |toml: &str| {
        std::fs::write(&config, toml).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_rostersync"))
            .args(["config", "check", "--config"])
            .arg(&config)
            .env("ROSTERSYNC_PLUGIN_DIR", plugins.path())
            .env("NORTH_TOKEN", "t")
            .env(
                "OPS_TOKEN",
                "a-long-random-admin-token-for-the-tests-0f3a9c",
            )
            .env_remove("ROSTERSYNC_STORE")
            .output()
            .unwrap();
        (output.status.code(), text(&output))
    };
    let good = "concurrency = 3\n[admin]\nlisten = \"127.0.0.1:9000\"\ntokens = [{ name = \"ops\", scope = \"admin\", token_env = \"OPS_TOKEN\" }]\n\n\
                [[connections]]\nid = \"north\"\nconnector = \"wonde\"\n\
                schedule = { timezone = \"Europe/London\", runs = [{ cron = \"0 7-17 * * MON-FRI\" }] }\n\
                settings = { school-id = \"A1930499544\" }\nsecrets = { api-token = \"NORTH_TOKEN\" }\n";
    let (code, out) = check(good);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("is valid: 1 connection(s)") && out.contains("concurrency 3"),
        "{out}"
    );

    let (code, out) = check(&good.replace("0 7-17 * * MON-FRI", "0 25 * * *"));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("rostersync.toml: line 7: connection \"north\": schedule.runs[0].cron"),
        "{out}"
    );

    let (code, out) = check(&good.replace("OPS_TOKEN", "MISSING_TOKEN"));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("line 2: [admin]") && out.contains("MISSING_TOKEN"),
        "{out}"
    );

    let (code, out) = check(&good.replace("Europe/London", "Europe/Lundon"));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("line 9") && out.contains("Europe/Lundon"),
        "{out}"
    );

    // The three mistakes a new operator made, all reported in one pass.
    let mistaken = good
        .replace("connector = \"wonde\"", "connector = \"wondee\"")
        .replace("id = \"north\"", "id = \"typo\"")
        + "\n[[connections]]\nid = \"south\"\nconnector = \"wonde\"\n\
           settings = { school_id = \"A1\", api-token = \"in-the-file\" }\n";
    let (code, out) = check(&mistaken);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "connection \"typo\": there is no connector \"wondee\" in the plugin folder; did you mean \"wonde\"?",
        "connection \"south\": \"school_id\" is not a setting of connector wonde; did you mean \"school-id\"?",
        "connection \"south\": \"api-token\" is a secret: name the environment variable that holds it under secrets",
        "connection \"south\": connector wonde needs the setting \"school-id\"",
        "4 problem(s)",
    ] {
        assert!(out.contains(expected), "{expected}\n in {out}");
    }
    assert!(!out.contains("in-the-file"), "no secret echoed: {out}");
    std::fs::write(&config, &mistaken).unwrap();
    let json = Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(["config", "check", "--json", "--config"])
        .arg(&config)
        .env("ROSTERSYNC_PLUGIN_DIR", plugins.path())
        .env("NORTH_TOKEN", "t")
        .env(
            "OPS_TOKEN",
            "a-long-random-admin-token-for-the-tests-0f3a9c",
        )
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let fields: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "connector",
            "settings.api-token",
            "settings.school_id",
            "settings.school-id"
        ]
    );

    std::fs::remove_file(&config).unwrap();
    let missing = Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("cannot read the configuration file"));
}

#[test]
fn serve_runs_what_the_api_asks_and_status_reports_it() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("serve.db").display());
    let config = probe_config(dir.path(), 25);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml = toml.replacen(
        "\n[[connections]]",
        "\n[admin]\ntokens = [{ name = \"ops\", scope = \"admin\", token_env = \"OPS_TOKEN\" }]\n\n[[connections]]",
        1,
    );
    // The admin token comes from a secrets file beside the configuration,
    // so every command (serve, status) finds it without the environment.
    let token = "a-long-random-admin-token-for-the-tests-0f3a9c";
    std::fs::write(&config, format!("secrets_file = \"secrets\"\n{toml}")).unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, format!("OPS_TOKEN={token}\n")).unwrap();
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ROSTERSYNC_PLUGIN_DIR", plugins.path())
        .env("ROSTERSYNC_CONFIG", &config)
        .env("ROSTERSYNC_STORE", &store)
        .env_remove("OPS_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut banner,
    )
    .unwrap();
    let address = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("serve prints its address: {banner:?}"))
        .to_string();
    let client = reqwest::blocking::Client::new();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .unwrap();
    assert!(health.status().is_success());
    let asked = client
        .post(format!(
            "http://{address}/api/v1/connections/probe-school/runs"
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({"mode": "full"}))
        .send()
        .unwrap();
    assert_eq!(asked.status().as_u16(), 202);
    let queue_id = asked.json::<serde_json::Value>().unwrap()["run"]["id"]
        .as_i64()
        .unwrap();
    let mut state = String::new();
    for _ in 0..300 {
        let run: serde_json::Value = client
            .get(format!("http://{address}/api/v1/queue/{queue_id}"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        state = run["state"].as_str().unwrap_or_default().to_string();
        if state == "finished" || state == "failed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(state, "finished");

    // SIGHUP rereads the file: a new connection goes into service...
    let kill = |signal: &str| {
        Command::new("kill")
            .args([signal, &serve.id().to_string()])
            .status()
            .unwrap()
    };
    let configured = || -> Vec<String> {
        let views: serde_json::Value = client
            .get(format!("http://{address}/api/v1/connections"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut ids: Vec<String> = views
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v["id"]
                    .as_str()
                    .or(v["connection"].as_str())
                    .unwrap()
                    .to_string()
            })
            .collect();
        ids.sort();
        ids
    };
    let served = std::fs::read_to_string(&config).unwrap();
    let second = "\n[[connections]]\nid = \"acme\"\nconnector = \"probe\"\nsettings = { behaviour = \"roster\" }\n";
    std::fs::write(&config, format!("{served}{second}")).unwrap();
    kill("-HUP");
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids = configured();
        if ids.len() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ids, ["acme", "probe-school"]);
    // ...and a broken file is reported while the running one stays.
    std::fs::write(&config, format!("{served}{second}shedule = 1\n")).unwrap();
    kill("-HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(configured(), ["acme", "probe-school"]);

    // SIGTERM stops it cleanly, as Ctrl-C does.
    kill("-TERM");
    let stopped = serve.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&stopped.stderr);
    assert!(stopped.status.success(), "{log}");
    assert!(log.contains("added: acme"), "{log}");
    assert!(
        log.contains("Not reloaded")
            && log.contains("shedule")
            && log.contains("running configuration stays"),
        "{log}"
    );
    assert!(
        log.contains("Stopping: runs in progress finish first"),
        "{log}"
    );
    std::fs::write(&config, &served).unwrap();

    let status = with_store(plugins.path(), &config, &store, &["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let line: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(line["connection"], "probe-school");
    assert_eq!(line["last_status"], "succeeded");
    let plain = text(&with_store(plugins.path(), &config, &store, &["status"]));
    assert!(
        plain.contains("probe-school") && plain.contains("last succeeded"),
        "{plain}"
    );
}

#[test]
fn accounts_are_listed_shown_unlinked_and_deleted_from_the_command_line() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let config = probe_config(dir.path(), 12);
    let run = |args: &[&str]| with_store(plugins.path(), &config, &store, args);
    assert_eq!(run(&["sync", "probe-school"]).status.code(), Some(0));

    let listed = run(&["accounts", "list", "--connection", "probe-school", "--json"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed));
    let accounts: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(accounts.len() >= 12, "one account per person: {accounts:?}");
    assert!(
        accounts
            .iter()
            .all(|a| a["status"] == "active" && a["source_id"].is_string())
    );
    let (first, second) = (
        accounts[0]["id"].as_str().unwrap(),
        accounts[1]["id"].as_str().unwrap(),
    );

    let shown_json = run(&["accounts", "show", first, "--json"]);
    let shown_json: serde_json::Value =
        serde_json::from_slice(&shown_json.stdout).unwrap_or_else(|e| {
            panic!(
                "accounts show --json prints JSON: {e}: {}",
                text(&shown_json)
            )
        });
    assert_eq!(shown_json["id"], first);
    assert_eq!(
        shown_json["links"]["probe-school"],
        accounts[0]["source_id"]
    );
    let shown = text(&run(&["accounts", "show", first]));
    assert!(
        shown.contains(first)
            && shown.contains("active")
            && shown.contains("provisioned by probe-school"),
        "{shown}"
    );

    let unlinked = run(&[
        "accounts",
        "unlink",
        first,
        "--connection",
        "probe-school",
        "--by",
        "it@school",
    ]);
    assert_eq!(unlinked.status.code(), Some(0), "{}", text(&unlinked));
    let deleted = run(&[
        "accounts",
        "delete",
        second,
        "--connection",
        "probe-school",
        "--by",
        "it@school",
    ]);
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted));
    assert!(text(&run(&["accounts", "show", second])).contains("deleted"));
    let still_linked = text(&run(&["accounts", "list", "--connection", "probe-school"]));
    assert!(
        !still_linked.contains(first) && !still_linked.contains(second),
        "{still_linked}"
    );
    assert_eq!(still_linked.lines().count(), accounts.len() - 2);

    // An ordinary run leaves the operator's decisions alone.
    assert_eq!(run(&["sync", "probe-school"]).status.code(), Some(0));
    assert!(text(&run(&["accounts", "show", second])).contains("deleted"));

    let missing = run(&["accounts", "show", "acc_nobody"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("there is no account acc_nobody"),
        "{}",
        text(&missing)
    );
    let wrong = run(&["accounts", "list", "--connection", "no-such-school"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong).contains("no-such-school"), "{}", text(&wrong));
}

#[test]
fn sandbox_serves_schools_whose_printed_credentials_work() {
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(["sandbox", "--port", "0", "--schools", "1", "--pupils", "10"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(sandbox.stdout.take().unwrap()));
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("Serving until interrupted");
        printed.push(line);
        if done {
            break;
        }
    }
    let find = |prefix: &str| {
        printed
            .iter()
            .find_map(|line| line.trim().strip_prefix(prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("the sandbox prints {prefix:?}: {printed:?}"))
    };
    let wonde = find("Wonde: ");
    let credentials = find("Wonde school id ");
    let (school, token) = credentials.split_once(", token ").unwrap();
    let client = reqwest::blocking::Client::new();
    let answer = |token: &str| {
        client
            .get(format!("{wonde}/schools/{school}/students"))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let students: serde_json::Value = answer(token).json().unwrap();
    assert!(
        !students["data"].as_array().unwrap().is_empty(),
        "{students}"
    );
    assert_eq!(answer("not-the-token").status().as_u16(), 401);
    Command::new("kill")
        .args(["-INT", &sandbox.id().to_string()])
        .status()
        .unwrap();
    assert!(sandbox.wait().unwrap().success());
}

#[test]
fn the_demo_syncs_all_six_providers_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rostersync"))
        .args(["demo", "--no-serve"])
        .env("ROSTERSYNC_PLUGIN_DIR", dir.path().join("plugins"))
        .env_remove("ROSTERSYNC_STORE")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    for provider in [
        "wonde",
        "clever",
        "arbor",
        "xporter",
        "scholarpack",
        "oneroster",
    ] {
        let rows: Vec<&str> = out
            .lines()
            .filter(|line| {
                let mut words = line.split_whitespace();
                words.next() == Some(&format!("demo-{provider}"))
                    && matches!(words.next(), Some("full" | "delta"))
            })
            .collect();
        assert_eq!(
            rows.len(),
            2,
            "a full and a delta row for {provider}: {out}"
        );
    }
    assert!(!out.contains(" failed"), "{out}");
    assert!(
        dir.path().join("rostersync-demo.db").exists(),
        "the demo's store is in the working folder"
    );
}

#[test]
fn a_killed_sync_leaves_its_connection_runnable_by_the_next_sync_within_the_lease() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let config = probe_config(dir.path(), 20);
    let sync = |config: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rostersync"));
        command
            .args(["sync", "probe-school"])
            .env("ROSTERSYNC_PLUGIN_DIR", plugins.path())
            .env("ROSTERSYNC_CONFIG", config)
            .env("ROSTERSYNC_STORE", &store)
            .env("ROSTERSYNC_RUN_LEASE_SECONDS", "3")
            .current_dir(workspace());
        command
    };
    // A sync whose connector never answers, killed mid-run.
    let stuck_config = dir.path().join("stuck.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&stuck_config, toml.replace("\"roster\"", "\"sleep\"")).unwrap();
    let mut stuck = sync(&stuck_config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let status = with_store(plugins.path(), &config, &store, &["status", "--json"]);
        text(&status).contains(r#""state":"running""#)
    });
    assert!(running, "the first sync never started its run");
    stuck.kill().unwrap();
    stuck.wait().unwrap();

    // The next sync finds the dead run, waits out its lease, settles it,
    // says so, and runs.
    let next = sync(&config).output().unwrap();
    let said = text(&next);
    assert_eq!(next.status.code(), Some(0), "{said}");
    assert!(said.contains("the process running it stopped"), "{said}");
    assert!(said.contains("created 22"), "{said}");
    let status = with_store(plugins.path(), &config, &store, &["status", "--json"]);
    assert!(
        text(&status).contains(r#""active_run":null"#),
        "{}",
        text(&status)
    );
}

#[test]
fn a_replaced_plugin_is_listed_refused_and_runs_once_accepted_by_its_sha256() {
    let plugins = tempfile::tempdir().unwrap();
    build_into(plugins.path(), "connectors/probe");
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let config = probe_config(dir.path(), 5);
    let run = |args: &[&str]| with_store(plugins.path(), &config, &store, args);
    let first = run(&["sync", "probe-school"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // Another build under the same name: a custom section appended.
    let path = plugins.path().join("probe.wasm");
    let mut wasm = std::fs::read(&path).unwrap();
    wasm.extend_from_slice(&[0, 9, 4, b'n', b'o', b't', b'e', b'n', b'e', b'w', b'!']);
    std::fs::write(&path, &wasm).unwrap();

    let list = run(&["plugins", "list"]);
    assert_eq!(list.status.code(), Some(1), "{}", text(&list));
    let listed = text(&list);
    assert!(listed.contains("replaced since version"), "{listed}");
    let sha256 = listed
        .split("--sha256 ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("the list names the new file's sha256: {listed}"))
        .to_string();

    let refused = run(&["sync", "probe-school"]);
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(
        text(&refused).contains("rostersync plugins accept probe"),
        "{}",
        text(&refused)
    );
    let stale = run(&["plugins", "accept", "probe", "--sha256", "0123abcd"]);
    assert_eq!(stale.status.code(), Some(2), "{}", text(&stale));
    let accepted = run(&[
        "plugins", "accept", "probe", "--sha256", &sha256, "--by", "ops",
    ]);
    assert!(accepted.status.success(), "{}", text(&accepted));
    assert!(
        text(&accepted).contains("replacing version"),
        "{}",
        text(&accepted)
    );
    let again = run(&["sync", "probe-school"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}
