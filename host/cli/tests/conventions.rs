//! The command line behaves as Unix tools do, and the packaging files that
//! ship it (the Dockerfile and the systemd unit) name only what the binary
//! really accepts. There is no container engine on the build machines, so
//! the Dockerfile is checked by parsing it and asking the built binary
//! about every command and flag it uses.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rostersync(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rostersync"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ROSTERSYNC_LOG_FORMAT");
    command
}

/// A plugin folder holding one file that is not a component, so that a
/// listing both prints to standard output and logs a warning.
fn folder_with_a_broken_plugin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"not a component").unwrap();
    dir
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let plugins = folder_with_a_broken_plugin();
    // A pipe whose reading end is closed before the process starts: its
    // first line of output meets a broken pipe, deterministically.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just opened and are owned only here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let output = rostersync(&["plugins", "list"])
        .env("ROSTERSYNC_PLUGIN_DIR", plugins.path())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGPIPE),
        "ended by the broken pipe, as `ls | head` would be: {:?}",
        output.status
    );
}

fn listing_logs(format: Option<&str>) -> Output {
    let plugins = folder_with_a_broken_plugin();
    let mut args = vec!["plugins", "list"];
    if let Some(format) = format {
        args.extend(["--log-format", format]);
    }
    rostersync(&args)
        .env("ROSTERSYNC_PLUGIN_DIR", plugins.path())
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn logs_are_plain_text_off_a_terminal_and_json_lines_on_request() {
    let text = listing_logs(None);
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains("broken.wasm"),
        "the broken plugin is logged: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes when standard error is not a terminal: {stderr:?}"
    );

    let json = listing_logs(Some("json"));
    let stderr = String::from_utf8_lossy(&json.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "something is logged");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
    }
    assert!(stderr.contains("broken.wasm"), "{stderr}");

    let refused = rostersync(&["--log-format", "xml", "plugins", "list"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("xml"));
}

/// The instructions of a Dockerfile, continuation lines joined, comments
/// dropped: `(INSTRUCTION, arguments)`.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|line| {
            let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
            (word.to_uppercase(), rest.trim().to_string())
        })
        .collect()
}

/// `--help` of a subcommand of the built binary.
fn help(args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.push("--help");
    let output = rostersync(&args).output().unwrap();
    assert!(output.status.success(), "{args:?} --help");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_dockerfile_builds_in_stages_runs_unprivileged_and_names_real_commands() {
    let root = workspace();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let steps = instructions(&dockerfile);
    let stages: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, (word, _))| word == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    let last = &steps[*stages.last().unwrap()..];

    // The build stage's toolchain is the workspace's `rust-version`.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        steps[stages[0]]
            .1
            .starts_with(&format!("rust:{rust_version}")),
        "{:?}",
        steps[stages[0]]
    );

    // The runtime stage runs as a named user that is not root.
    let user = last
        .iter()
        .rev()
        .find(|(word, _)| word == "USER")
        .map(|(_, user)| user.as_str())
        .expect("the runtime stage sets USER");
    assert!(!matches!(user, "root" | "0" | "0:0"), "USER {user}");

    // It carries the binary and the connectors from the build stage.
    let copied: Vec<&String> = last
        .iter()
        .filter(|(word, args)| word == "COPY" && args.contains("--from=build"))
        .map(|(_, args)| args)
        .collect();
    assert!(copied.iter().any(|a| a.contains("/out/rostersync ")));
    assert!(copied.iter().any(|a| a.contains("/out/plugins ")));

    // Every connector it builds is a crate of this workspace, and the
    // binary accepts the flags the file gives it.
    let build = steps
        .iter()
        .find(|(word, args)| word == "RUN" && args.contains("connector build"))
        .map(|(_, args)| args.as_str())
        .unwrap();
    for path in build
        .split_whitespace()
        .filter(|w| w.starts_with("connectors/"))
    {
        assert!(root.join(path).join("Cargo.toml").exists(), "{path}");
    }
    assert!(help(&[]).contains("--plugin-dir"));
    assert!(help(&["connector", "build"]).contains("<PATHS>..."));
    let (_, cmd) = last.iter().rev().find(|(word, _)| word == "CMD").unwrap();
    assert!(cmd.contains("\"serve\""), "{cmd}");
    assert!(help(&["serve"]).contains("--listen"));

    // The environment it sets is what the binary reads.
    let env = last
        .iter()
        .filter(|(word, _)| word == "ENV")
        .map(|(_, args)| args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let top = help(&[]);
    for name in ["ROSTERSYNC_CONFIG", "ROSTERSYNC_PLUGIN_DIR"] {
        assert!(env.contains(&format!("{name}=")), "ENV sets {name}");
        assert!(top.contains(name), "the binary reads {name}");
    }
}

#[test]
fn the_systemd_unit_starts_serve_unprivileged_with_the_variables_the_binary_reads() {
    let unit = std::fs::read_to_string(workspace().join("packaging/rostersync.service")).unwrap();
    let value = |key: &str| -> Vec<&str> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .collect()
    };
    assert_eq!(value("ExecStart"), ["/usr/local/bin/rostersync serve"]);
    assert_eq!(value("DynamicUser"), ["yes"], "never as root");
    assert_eq!(value("NoNewPrivileges"), ["yes"]);
    let top = help(&[]);
    for setting in value("Environment") {
        let name = setting.split('=').next().unwrap();
        assert!(top.contains(name), "the binary reads {name}");
    }
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(unit.contains(section), "{section}");
    }
}
