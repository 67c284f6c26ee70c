//! Recorded HTTP fixtures: one file per suite phase, captured from a live
//! provider with `--record` and replayed offline by default. Replay fails a
//! request no fixture covers and a fixture no request used (Airbyte's rule
//! for HTTP mocks). Secret setting values never reach a fixture: they are
//! replaced by a placeholder, and replay runs with the placeholder as the
//! secret.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use rostersync_runtime::{CannedResponse, Intercept, Interceptor, OutboundRequest};
use serde::{Deserialize, Serialize};

/// One request and the answer it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_body: String,
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The interactions of one phase, in the order they happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseFixture {
    pub interactions: Vec<Interaction>,
}

/// Secret values and the placeholders that stand for them in fixtures.
#[derive(Debug, Clone, Default)]
pub struct Redactions(Vec<(String, String)>);

impl Redactions {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(
            pairs
                .into_iter()
                .filter(|(secret, _)| !secret.is_empty())
                .collect(),
        )
    }

    pub fn apply(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_string(), |text, (secret, placeholder)| {
                text.replace(secret, placeholder)
            })
    }
}

/// The placeholder a secret setting gets in recorded fixtures.
pub fn placeholder(setting: &str) -> String {
    format!("redacted-{setting}")
}

pub fn phase_path(dir: &Path, phase: &str) -> PathBuf {
    dir.join(format!("{phase}.json"))
}

/// Forwards every request and keeps what came back.
pub struct Recorder {
    redactions: Redactions,
    seen: Mutex<Vec<Interaction>>,
}

impl Recorder {
    pub fn new(redactions: Redactions) -> Self {
        Self {
            redactions,
            seen: Mutex::default(),
        }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let fixture = PhaseFixture {
            interactions: self.seen.lock().expect("recorder lock").clone(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&fixture)? + "\n")?;
        Ok(())
    }
}

/// Only headers that shape how a connector reads a response are kept.
const KEPT_HEADERS: [&str; 3] = ["content-type", "retry-after", "link"];

impl Interceptor for Recorder {
    fn intercept(&self, _request: &OutboundRequest) -> Intercept {
        Intercept::Continue
    }

    fn wants_responses(&self) -> bool {
        true
    }

    fn observe(&self, request: &OutboundRequest, response: &CannedResponse) {
        let interaction = Interaction {
            method: request.method.clone(),
            url: self.redactions.apply(&request.url),
            request_body: self
                .redactions
                .apply(&String::from_utf8_lossy(&request.body)),
            status: response.status,
            headers: response
                .headers
                .iter()
                .filter(|(k, _)| KEPT_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
                .cloned()
                .collect(),
            body: String::from_utf8_lossy(&response.body).into_owned(),
        };
        self.seen.lock().expect("recorder lock").push(interaction);
    }
}

/// Answers requests from a phase's fixture.
pub struct Replayer {
    interactions: Mutex<Vec<(Interaction, bool)>>,
}

impl Replayer {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot read the fixture ({e}); record fixtures with --record",
                path.display()
            )
        })?;
        let fixture: PhaseFixture = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a fixture file: {e}", path.display()))?;
        Ok(Self {
            interactions: Mutex::new(
                fixture
                    .interactions
                    .into_iter()
                    .map(|i| (i, false))
                    .collect(),
            ),
        })
    }

    /// Fixtures no request asked for.
    pub fn unused(&self) -> Vec<String> {
        self.interactions
            .lock()
            .expect("replayer lock")
            .iter()
            .filter(|(_, used)| !used)
            .map(|(i, _)| format!("{} {}", i.method, i.url))
            .collect()
    }
}

impl Interceptor for Replayer {
    fn intercept(&self, request: &OutboundRequest) -> Intercept {
        let mut interactions = self.interactions.lock().expect("replayer lock");
        let found = interactions
            .iter_mut()
            .find(|(i, used)| !used && i.method == request.method && i.url == request.url);
        match found {
            Some((interaction, used)) => {
                *used = true;
                Intercept::Respond(CannedResponse {
                    status: interaction.status,
                    headers: interaction.headers.clone(),
                    body: Bytes::from(interaction.body.clone()),
                })
            }
            None => Intercept::Refuse(format!("{} {}", request.method, request.url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> OutboundRequest {
        OutboundRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    #[test]
    fn replay_answers_each_fixture_once_and_reports_the_unused() {
        let dir = tempfile::tempdir().unwrap();
        let path = phase_path(dir.path(), "check");
        let fixture = PhaseFixture {
            interactions: ["http://a/1", "http://a/2"]
                .into_iter()
                .map(|url| Interaction {
                    method: "GET".into(),
                    url: url.into(),
                    request_body: String::new(),
                    status: 200,
                    headers: Vec::new(),
                    body: "{}".into(),
                })
                .collect(),
        };
        std::fs::write(&path, serde_json::to_string(&fixture).unwrap()).unwrap();
        let replayer = Replayer::load(&path).unwrap();
        assert!(matches!(
            replayer.intercept(&request("http://a/1")),
            Intercept::Respond(_)
        ));
        assert!(matches!(
            replayer.intercept(&request("http://a/1")),
            Intercept::Refuse(_)
        ));
        assert!(
            matches!(replayer.intercept(&request("http://b/")), Intercept::Refuse(m) if m == "GET http://b/")
        );
        assert_eq!(replayer.unused(), vec!["GET http://a/2".to_string()]);
    }

    #[test]
    fn recording_keeps_secrets_out() {
        let recorder = Recorder::new(Redactions::new(vec![(
            "s3cret".into(),
            placeholder("api-token"),
        )]));
        recorder.observe(
            &request("http://a/people?token=s3cret"),
            &CannedResponse {
                status: 200,
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("Set-Cookie".into(), "x".into()),
                ],
                body: Bytes::from_static(b"[]"),
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let path = phase_path(dir.path(), "full-1");
        recorder.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret") && text.contains("redacted-api-token"));
        assert!(text.contains("Content-Type") && !text.contains("Set-Cookie"));
    }
}
