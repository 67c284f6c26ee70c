//! The probe: a connector whose `behaviour` setting makes it misbehave in
//! one chosen way, so the host's tests can prove each sandbox rule holds.
//! It also serves as the well-behaved reference for the runtime benchmark
//! (`behaviour = records`).

use rostersync_connector_sdk::http::{Request, Retry};
use rostersync_connector_sdk::*;

struct Probe;

impl Connector for Probe {
    type Snapshot = ProbeSnapshot;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new("Probe", "1.0.0", "Misbehaves on request, to test the sandbox.")
            .setting(SettingSpec::text(
                "behaviour",
                "What to do: records, roster, fetch, trap, spin, hog, sleep, giant-batch, huge-record, malformed-date, empty-id, removal-in-full, environment, read-file, tcp; and against the host's own budget: large-records, endless-post, header-flood, endless-empty, huge-id, huge-cursor, huge-error, log-flood, duplicate, look-alike-id, escape-name, far-year.",
                false,
                Some("records"),
            ))
            .setting(SettingSpec::base_url("base-url", "The host the probe may call.", Some("http://127.0.0.1:9")))
            .setting(SettingSpec::text("url", "What `fetch` requests.", false, None))
            .setting(SettingSpec::text(
                "retry",
                "`yes` makes `fetch` retry 429s and 5xx with the SDK's default backoff.",
                false,
                Some("no"),
            ))
            .setting(SettingSpec::text("requests", "How many times `fetch` requests it.", false, Some("1")))
            .setting(SettingSpec::text("batches", "Batches `records` returns.", false, Some("1")))
            .setting(SettingSpec::text("batch-size", "Records per batch.", false, Some("3")))
            .setting(SettingSpec::text("path", "What `read-file` reads; `tcp` connects to it.", false, None))
            .setting(SettingSpec::text("token", "`bad` makes `check` answer unauthorized.", false, None))
            .capability(Capability::DeltaReads)
            .capability(Capability::DropFolder)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        if settings.get("token") == Some("bad") {
            return Err(SyncError::Unauthorized(
                "the probe was given a bad token".into(),
            ));
        }
        Ok(SchoolInfo {
            id: "probe-school".into(),
            name: "Probe Primary School".into(),
            details: Vec::new(),
        })
    }

    fn snapshot(settings: Settings, mode: Mode) -> ProbeSnapshot {
        ProbeSnapshot {
            settings,
            mode,
            batches_done: 0,
        }
    }
}

struct ProbeSnapshot {
    settings: Settings,
    mode: Mode,
    batches_done: u32,
}

const FIRST_NAMES: [&str; 6] = ["Zoë", "Siobhán", "Amir", "Oliver", "Nguyễn", "Aoife"];
const LAST_NAMES: [&str; 4] = ["O'Brien-Smith", "Okafor", "Kowalski", "Evans"];

fn student(n: u32) -> RosterRecord {
    let mut person = Person::new(format!("P{n}"), Role::Student);
    person.mis_id = Some(format!("UPN{n:06}"));
    person.first_name = Some(FIRST_NAMES[n as usize % FIRST_NAMES.len()].into());
    person.last_name = Some(LAST_NAMES[n as usize % LAST_NAMES.len()].into());
    person.email = Some(format!("pupil{n}@probe.example"));
    person.start_date = Some("2023-09-01".into());
    person.enrolment = Some(EnrolmentStatus::OnRoll);
    person.year_group = Some("Y7".into());
    person.registration_group = Some("7A".into());
    RosterRecord::Person(person)
}

/// A person whose attributes report what the probe observed.
fn observation(facts: Vec<(&str, String)>) -> RosterRecord {
    let mut person = Person::new("observation", Role::Staff);
    person.attributes = facts
        .into_iter()
        .map(|(name, value)| Attribute {
            name: name.into(),
            value,
        })
        .collect();
    RosterRecord::Person(person)
}

impl ProbeSnapshot {
    fn number(&self, name: &str) -> Result<u32, SyncError> {
        self.settings.number(name, 1)
    }

    fn records(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if self.batches_done >= self.number("batches")? {
            return Ok(None);
        }
        let size = self.number("batch-size")?;
        let first = self.batches_done * size;
        self.batches_done += 1;
        log::progress(
            self.batches_done,
            Some(self.number("batches")?),
            u64::from(first + size),
        );
        Ok(Some((first..first + size).map(student).collect()))
    }

    fn fetch(&self) -> Result<Vec<RosterRecord>, SyncError> {
        let url = self.settings.require("url")?;
        let retry = match self.settings.get("retry") {
            Some("yes") => Retry::default(),
            _ => Retry::NEVER,
        };
        let requests = self.number("requests")?;
        let mut bytes = 0;
        for _ in 0..requests {
            bytes = Request::get(url).send_with(retry)?.body.len();
        }
        Ok(vec![observation(vec![
            ("bytes", bytes.to_string()),
            ("requests", requests.to_string()),
        ])])
    }
}

impl Snapshot for ProbeSnapshot {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        let behaviour = self
            .settings
            .get("behaviour")
            .unwrap_or("records")
            .to_string();
        // `huge-cursor` reads like `records`, then hands back a huge cursor.
        if behaviour == "records" || behaviour == "huge-cursor" {
            return self.records();
        }
        // Records just under the size one may carry, batch after batch.
        if behaviour == "large-records" {
            return Ok(self.records()?.map(|batch| {
                batch
                    .into_iter()
                    .map(|record| match record {
                        RosterRecord::Person(mut person) => {
                            person.middle_names = Some("m".repeat(200 << 10));
                            RosterRecord::Person(person)
                        }
                        other => other,
                    })
                    .collect()
            }));
        }
        if behaviour == "endless-empty" {
            // Answers at once, forever: only the snapshot's deadline ends it.
            return Ok(Some(Vec::new()));
        }
        if self.batches_done > 0 {
            return Ok(None);
        }
        self.batches_done += 1;
        let batch = match behaviour.as_str() {
            "fetch" => self.fetch()?,
            "trap" => panic!("the probe was asked to crash"),
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Vec::new()
            }
            "giant-batch" => (0..self.number("batch-size")?).map(student).collect(),
            // A roster that passes the default validation: the groups the
            // pupils' registration group needs, then `batch-size` pupils.
            "roster" => {
                let group = |id: &str, kind, year_group: Option<&str>| {
                    RosterRecord::Group(Group {
                        id: id.into(),
                        kind,
                        name: Some(id.into()),
                        code: None,
                        subject: None,
                        year_group: year_group.map(Into::into),
                        active: true,
                        parent: None,
                    })
                };
                let mut batch = vec![
                    group("Y7", GroupKind::Year, None),
                    group("7A", GroupKind::Registration, Some("Y7")),
                ];
                batch.extend((0..self.number("batch-size")?).map(student));
                batch
            }
            "huge-record" => {
                let mut person = Person::new("huge", Role::Student);
                person.first_name = Some("x".repeat(4 << 20));
                vec![RosterRecord::Person(person)]
            }
            "malformed-date" => {
                let mut person = Person::new("P1", Role::Student);
                person.date_of_birth = Some("31/02/2012".into());
                vec![RosterRecord::Person(person)]
            }
            "empty-id" => vec![RosterRecord::Person(Person::new("", Role::Student))],
            "removal-in-full" => vec![RosterRecord::Removed(Removal::Person("P1".into()))],
            "environment" => vec![observation(vec![
                ("env", std::env::vars().count().to_string()),
                ("args", std::env::args().count().to_string()),
            ])],
            "read-file" => {
                let path = self.settings.require("path")?;
                let read = std::fs::read_to_string(path).map_err(|e| e.to_string());
                let write =
                    std::fs::write(format!("{path}.written"), b"x").map_err(|e| e.to_string());
                vec![observation(vec![
                    ("read", format!("{read:?}")),
                    ("write", format!("{write:?}")),
                ])]
            }
            "tcp" => {
                let target = self.settings.require("path")?;
                let outcome = std::net::TcpStream::connect(target)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                vec![observation(vec![("tcp", format!("{outcome:?}"))])]
            }
            "endless-post" => vec![observation(vec![(
                "post",
                endless_post(self.settings.require("url")?),
            )])],
            "header-flood" => vec![observation(vec![("headers", header_flood())])],
            "huge-id" => vec![student_with_id("x".repeat(8 << 20))],
            "huge-error" => return Err(SyncError::BadResponse("e".repeat(64 << 20))),
            "log-flood" => {
                let value = "v".repeat(1 << 20);
                for _ in 0..200 {
                    log::info("flooding", &[("field", value.as_str())]);
                }
                vec![student(1)]
            }
            "duplicate" => vec![student(1), student(2), student(1)],
            "look-alike-id" => vec![student_with_id("P1\u{202E}".into())],
            "escape-name" => {
                let RosterRecord::Person(mut person) = student(1) else {
                    unreachable!("a student is a person")
                };
                person.last_name = Some("Evans\u{1B}[2J".into());
                vec![RosterRecord::Person(person)]
            }
            "far-year" => {
                let RosterRecord::Person(mut person) = student(1) else {
                    unreachable!("a student is a person")
                };
                person.date_of_birth = Some("+12345-01-01".into());
                vec![RosterRecord::Person(person)]
            }
            other => {
                return Err(SyncError::BadSettings(format!(
                    "unknown behaviour {other:?}"
                )));
            }
        };
        Ok(Some(batch))
    }

    fn cursor(&self) -> Option<String> {
        if self.settings.get("behaviour") == Some("huge-cursor") {
            return Some("c".repeat(32 << 20));
        }
        Some(match &self.mode {
            Mode::Full => "probe-cursor-1".into(),
            Mode::Delta(since) => format!("{since}+1"),
        })
    }
}

fn student_with_id(id: String) -> RosterRecord {
    let RosterRecord::Person(mut person) = student(1) else {
        unreachable!("a student is a person")
    };
    person.id = id;
    RosterRecord::Person(person)
}

/// POSTs a body that never ends to `url`, raw over wasi:http; says how
/// far it got before the host cut it off.
fn endless_post(url: &str) -> String {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Post);
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some("/upload"));
    let body = request.body().expect("a new request's body is available");
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return format!("refused at once: {code:?}"),
    };
    let stream = body.write().expect("one body stream");
    let chunk = vec![b'x'; 4096];
    let mut sent: u64 = 0;
    let stopped = loop {
        match stream.blocking_write_and_flush(&chunk) {
            Ok(()) => sent += chunk.len() as u64,
            Err(error) => break format!("{error:?}"),
        }
    };
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
    drop(future);
    format!("sent {sent} bytes, then {stopped}")
}

/// Builds header maps of 30 KB each until the host refuses one; says how
/// many it got.
fn header_flood() -> String {
    use wasip2::http::types::Fields;
    let value = vec![b'h'; 30 << 10];
    let mut kept = Vec::new();
    for n in 0..30_000 {
        let fields = Fields::new();
        if let Err(error) = fields.append("x-flood", &value) {
            return format!("refused the map {n}: {error:?}");
        }
        kept.push(fields);
    }
    format!("kept {} maps", kept.len())
}

export_connector!(Probe);
