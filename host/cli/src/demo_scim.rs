//! The demo's provisioning target: a real SCIM 2.0 server (`scim2-server`,
//! from PyPI) started on a free 127.0.0.1 port when it is installed, and
//! the `[[targets]]` entry that provisions the demo's Wonde connection
//! into it through the SCIM target plugin. Without it the demo says how to
//! install it and provisions nowhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rostersync_deliver::{TargetConfig, TargetKind};
use rostersync_model::Settings;

/// The Python module the server runs as.
const MODULE: &str = "scim2_server.testserver.cli";

/// A running `scim2-server`, stopped when dropped.
pub struct DemoScim {
    child: Child,
    /// `http://127.0.0.1:PORT/v2`.
    pub base: String,
}

impl Drop for DemoScim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DemoScim {
    /// Starts the server, or says why not: `Ok(None)` when it is not
    /// installed.
    pub async fn start() -> anyhow::Result<Option<DemoScim>> {
        let installed = Command::new("python3")
            .args(["-c", &format!("import {MODULE}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            return Ok(None);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("python3")
            .args(["-m", MODULE, "--hostname", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = DemoScim {
            child,
            base: format!("http://127.0.0.1:{port}/v2"),
        };
        // The server listens once it is ready to serve.
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!(
                    "scim2-server exited ({status}) before listening on {}",
                    server.base
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Some(server));
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = server.child.kill();
                anyhow::bail!("scim2-server did not listen on {} within 30 s", server.base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The target provisioning `connection` into this server: pupils and
    /// staff as users, classes and registration groups as groups, initial
    /// passwords written to `passwords` (a folder) once.
    pub fn target(&self, connection: &str, passwords: &Path) -> TargetConfig {
        let mut config = TargetConfig::new("demo-scim", TargetKind::Plugin);
        config.plugin = Some("scim".into());
        config.settings = Settings::new().with("base-url", self.base.clone());
        config.policy.connections = vec![connection.to_string()];
        config.policy.domain = "demo.example.org".into();
        config.password_export = Some(PathBuf::from(passwords));
        config
    }
}
