//! Delivery throughput into a real SCIM service: a school of 10,000 users
//! (pupils and staff) with their classes and registration groups, in a
//! store as a run leaves it, delivered by the delivery engine through the
//! SCIM target plugin into a fresh `scim2-server`. Prints users/s and
//! groups/s, and what bounds them:
//!
//! - the time inside the target's `apply` calls (plugin and service
//!   together) against the engine's own time (planning, the store, the
//!   delivery log);
//! - the CPU the service's process spent, against the CPU this process
//!   (engine, runtime, plugin) spent;
//! - the floor: a plain HTTP client posting the same users and groups
//!   straight to another fresh server, in the same run.
//!
//! `cargo bench -p rostersync-tests --bench delivery` (DELIVERY_USERS
//! overrides the size). Skips, saying so, when scim2-server is missing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rostersync_core::targets::Template;
use rostersync_deliver::{Backoff, DeliveryReport, Engine, TargetConfig, TargetKind};
use rostersync_model::target::{
    ChangeItem, ChangeResult, HeldPage, ObjectKind, Target, TargetFuture, TargetInfo,
};
use rostersync_model::{Group, GroupKind, MemberRole, Membership, Person, Role, Settings};
use rostersync_runtime::{Limits, Sandbox, TargetPlugin};
use rostersync_store::Store;
use rostersync_store::testing::roster_writes;
use rostersync_tests::runtime_with;
use rostersync_tests::scim::{ScimServer, installed};
use serde_json::{Value, json};

const CONNECTION: &str = "bench";
const FIRST: [&str; 50] = [
    "Ada", "Ben", "Cleo", "Dev", "Ella", "Finn", "Gita", "Hugo", "Isla", "Jack", "Kemi", "Leo",
    "Maya", "Nico", "Orla", "Piet", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wren",
    "Xena", "Yusuf", "Zara", "Amir", "Bea", "Cyril", "Dina", "Emil", "Faye", "Gus", "Hana", "Ivo",
    "Jade", "Kai", "Lola", "Milo", "Nell", "Otto", "Pia", "Rafe", "Sian", "Theo", "Una", "Vik",
    "Wanda", "Yara", "Zeke",
];
const STEM: [&str; 20] = [
    "Ash", "Birch", "Clay", "Dale", "Elm", "Fern", "Glen", "Heath", "Ivy", "Kings", "Lang",
    "Marsh", "North", "Oak", "Pen", "Rye", "Stone", "Thorn", "West", "York",
];
const END: [&str; 10] = [
    "ford", "ley", "wood", "field", "ton", "by", "well", "more", "ham", "croft",
];
/// Pupils per class and per registration group.
const GROUP_SIZE: usize = 30;

fn size() -> usize {
    std::env::var("DELIVERY_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// A school of `users` people, every name different: one in 25 is staff;
/// pupils in classes (each with a teacher) and registration groups.
struct School {
    people: Vec<Person>,
    groups: Vec<Group>,
    memberships: Vec<Membership>,
}

impl School {
    fn new(users: usize) -> School {
        let people: Vec<Person> = (0..users)
            .map(|i| {
                let role = if i % 25 == 0 {
                    Role::Staff
                } else {
                    Role::Student
                };
                let mut person = Person::new(format!("P{i:05}"), role);
                person.first_name = Some(FIRST[i % 50].into());
                person.last_name = Some(format!(
                    "{}{}{}",
                    STEM[(i / 50) % 20],
                    END[(i / 1000) % 10],
                    // Beyond 10,000 people, a suffix keeps names apart.
                    if i >= 10_000 {
                        format!("-{}", i / 10_000)
                    } else {
                        String::new()
                    }
                ));
                person.mis_id = Some(format!("M{i:05}"));
                person
            })
            .collect();
        let pupils: Vec<&Person> = people.iter().filter(|p| p.role == Role::Student).collect();
        let staff: Vec<&Person> = people.iter().filter(|p| p.role == Role::Staff).collect();
        let count = pupils.len().div_ceil(GROUP_SIZE);
        let mut groups = Vec::new();
        let mut memberships = Vec::new();
        let member = |group: &str, person: &str, role| Membership {
            group: group.into(),
            person: person.into(),
            role,
            start_date: None,
            end_date: None,
        };
        for n in 0..count {
            for (kind, id, name) in [
                (GroupKind::Class, format!("C{n:04}"), format!("Class {n}")),
                (
                    GroupKind::Registration,
                    format!("R{n:04}"),
                    format!("Form {n}"),
                ),
            ] {
                groups.push(Group {
                    id: id.clone(),
                    kind,
                    name: Some(name),
                    code: Some(id.clone()),
                    subject: None,
                    year_group: None,
                    active: true,
                    parent: None,
                });
                let teacher = staff[n % staff.len()];
                memberships.push(member(&id, &teacher.id, MemberRole::Teacher));
            }
        }
        for (i, pupil) in pupils.iter().enumerate() {
            let class = i / GROUP_SIZE;
            // Forms mix the classes.
            let form = (i * 7 + i / GROUP_SIZE) % count;
            memberships.push(member(
                &format!("C{class:04}"),
                &pupil.id,
                MemberRole::Student,
            ));
            memberships.push(member(
                &format!("R{form:04}"),
                &pupil.id,
                MemberRole::Student,
            ));
        }
        School {
            people,
            groups,
            memberships,
        }
    }

    /// Writes the school as a run would: records, accounts, links.
    async fn store(&self, store: &Store) {
        store.ensure_connection(CONNECTION, "wonde").await.unwrap();
        let writes = roster_writes(CONNECTION, &self.people, &self.groups, &self.memberships);
        store.apply(CONNECTION, &writes).await.unwrap();
    }
}

fn display_name(person: &Person) -> String {
    format!(
        "{} {}",
        person.first_name.as_deref().unwrap_or_default(),
        person.last_name.as_deref().unwrap_or_default()
    )
}

/// The target, timing its `apply` calls.
struct Timed {
    inner: TargetPlugin,
    applying: Mutex<Duration>,
}

impl Target for Timed {
    fn info(&self) -> &TargetInfo {
        self.inner.info()
    }

    fn check(&self) -> TargetFuture<'_, String> {
        self.inner.check()
    }

    fn apply(&self, batch: Vec<ChangeItem>) -> TargetFuture<'_, Vec<ChangeResult>> {
        Box::pin(async move {
            let started = Instant::now();
            let results = self.inner.apply(batch).await;
            *self.applying.lock().unwrap() += started.elapsed();
            results
        })
    }

    fn read(&self, kind: ObjectKind, cursor: Option<String>) -> TargetFuture<'_, HeldPage> {
        self.inner.read(kind, cursor)
    }
}

/// CPU seconds a process has spent (user and system, every thread).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds of this process and of the server, and the server's
/// requests, from now on.
struct Cpu {
    server: String,
    start: (f64, f64),
    requests: usize,
}

impl Cpu {
    fn start(server: &ScimServer) -> Cpu {
        let requests = server.requests_answered();
        let server = server.pid().to_string();
        let start = (cpu_seconds("self"), cpu_seconds(&server));
        Cpu {
            server,
            start,
            requests,
        }
    }

    /// Requests the server answered since the start.
    fn requests(&self, server: &ScimServer) -> usize {
        server.requests_answered() - self.requests
    }

    fn spent(&self) -> (f64, f64) {
        (
            cpu_seconds("self") - self.start.0,
            cpu_seconds(&self.server) - self.start.1,
        )
    }
}

struct Delivered {
    wall: Duration,
    applying: Duration,
    host_cpu: f64,
    server_cpu: f64,
    users: usize,
    groups: usize,
    /// Deliveries that sent something.
    passes: usize,
    /// Requests the service answered.
    requests: usize,
}

async fn through_the_engine(school: &School) -> Delivered {
    let server = ScimServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await
    .unwrap();
    school.store(&store).await;
    let (_plugins, runtime) = runtime_with(&["scim"]).await;
    let component = runtime.target("scim").expect("the SCIM target loads");
    let settings = Settings::new().with("base-url", &server.base);
    let sandbox = Sandbox::for_target(&component.info, &settings, &[], Limits::default()).unwrap();
    let timed = Arc::new(Timed {
        inner: TargetPlugin::new(component, &settings, sandbox).unwrap(),
        applying: Mutex::default(),
    });
    let mut config = TargetConfig::new("scim", TargetKind::Plugin);
    config.plugin = Some("scim".into());
    config.settings = settings;
    config.policy.domain = "bench.example.org".into();
    config.policy.templates.email = Some(Template::fixed("{first}.{last}{n}@{domain}"));
    let target: Arc<dyn Target> = timed.clone();
    let engine = Engine::new(&store, &config, target).with_pacing(
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        Duration::from_secs(10),
    );

    let cpu = Cpu::start(&server);
    let started = Instant::now();
    let mut reports: Vec<DeliveryReport> = Vec::new();
    // A second pass takes what the first planned after a conflict.
    for _ in 0..3 {
        let report = engine.deliver().await.expect("the delivery runs");
        let sent: usize = report.done.values().sum::<usize>() + report.matched;
        if sent == 0 {
            break;
        }
        reports.push(report);
    }
    let wall = started.elapsed();
    let (host_cpu, server_cpu) = cpu.spent();
    let requests = cpu.requests(&server);
    let done = |action: &str| {
        reports
            .iter()
            .map(|r| r.done.get(action).copied().unwrap_or_default())
            .sum::<usize>()
    };
    for report in &reports {
        assert_eq!(report.refused, 0, "{report:?}");
    }
    let held = server.users().await.len();
    assert_eq!(held, school.people.len(), "every user is in the service");
    let applying = *timed.applying.lock().unwrap();
    Delivered {
        wall,
        applying,
        host_cpu,
        server_cpu,
        users: done("create-user"),
        groups: done("create-group"),
        passes: reports.len(),
        requests,
    }
}

/// The same users and groups posted straight to a fresh server by a plain
/// client, one request each: the floor.
async fn straight_to_the_server(school: &School) -> Delivered {
    let server = ScimServer::start().await;
    let http = reqwest::Client::new();
    let post = |endpoint: &'static str, body: Value| {
        let request = http
            .post(format!("{}/{endpoint}", server.base))
            .header("content-type", "application/scim+json")
            .body(body.to_string());
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            let created: Value = response.json().await.unwrap();
            created["id"].as_str().unwrap().to_string()
        }
    };
    let cpu = Cpu::start(&server);
    let started = Instant::now();
    let mut ids = std::collections::HashMap::new();
    for person in &school.people {
        let first = person.first_name.as_deref().unwrap_or_default();
        let last = person.last_name.as_deref().unwrap_or_default();
        let username = format!("{first}.{last}").to_lowercase();
        let id = post(
            "Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "externalId": format!("acc-{}", person.id),
                "userName": username,
                "name": {"givenName": first, "familyName": last},
                "displayName": display_name(person),
                "emails": [{"value": format!("{username}@bench.example.org"), "primary": true}],
                "active": true,
            }),
        )
        .await;
        ids.insert(person.id.clone(), id);
    }
    for group in &school.groups {
        let members: Vec<Value> = school
            .memberships
            .iter()
            .filter(|m| m.group == group.id)
            .map(|m| json!({"value": ids[&m.person]}))
            .collect();
        post(
            "Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "externalId": group.id,
                "displayName": group.name,
                "members": members,
            }),
        )
        .await;
    }
    let wall = started.elapsed();
    let (host_cpu, server_cpu) = cpu.spent();
    Delivered {
        wall,
        applying: wall,
        host_cpu,
        server_cpu,
        users: school.people.len(),
        groups: school.groups.len(),
        passes: 1,
        requests: cpu.requests(&server),
    }
}

fn print(label: &str, run: &Delivered) {
    let seconds = run.wall.as_secs_f64();
    println!(
        "{label}: {} users and {} groups in {seconds:.1} s ({} pass(es)): {:.0} users/s, {:.0} groups/s, {:.0} objects/s",
        run.users,
        run.groups,
        run.passes,
        run.users as f64 / seconds,
        run.groups as f64 / seconds,
        (run.users + run.groups) as f64 / seconds,
    );
    println!(
        "    {} requests to the service ({:.1} per object, {:.2} ms of its CPU each)",
        run.requests,
        run.requests as f64 / (run.users + run.groups) as f64,
        1000.0 * run.server_cpu / run.requests.max(1) as f64,
    );
    println!(
        "    inside apply (plugin and service) {:.1} s ({:.0} % of the time); CPU: scim2-server {:.1} s ({:.0} % of the time), this process {:.1} s ({:.0} %)",
        run.applying.as_secs_f64(),
        100.0 * run.applying.as_secs_f64() / seconds,
        run.server_cpu,
        100.0 * run.server_cpu / seconds,
        run.host_cpu,
        100.0 * run.host_cpu / seconds,
    );
}

#[tokio::main]
async fn main() {
    if !installed() {
        println!("delivery bench skipped: scim2-server is not installed");
        return;
    }
    let users = size();
    let school = School::new(users);
    println!(
        "Delivering {} users ({} staff), {} groups and {} memberships into scim2-server:",
        school.people.len(),
        school
            .people
            .iter()
            .filter(|p| p.role == Role::Staff)
            .count(),
        school.groups.len(),
        school.memberships.len()
    );
    let engine = through_the_engine(&school).await;
    print("engine + SCIM plugin", &engine);
    let floor = straight_to_the_server(&school).await;
    print("plain client (floor)", &floor);
    let engine_own = engine.wall.saturating_sub(engine.applying);
    println!(
        "The engine took {:.1}x the floor's time, sending {:.1}x its requests. Outside apply (planning, store, delivery log): {:.1} s. The service was busy (CPU) {:.0} % of the engine's time and {:.0} % of the floor's: {}.",
        engine.wall.as_secs_f64() / floor.wall.as_secs_f64(),
        engine.requests as f64 / floor.requests.max(1) as f64,
        engine_own.as_secs_f64(),
        100.0 * engine.server_cpu / engine.wall.as_secs_f64(),
        100.0 * floor.server_cpu / floor.wall.as_secs_f64(),
        if engine.server_cpu > engine.host_cpu {
            "the service bounds the delivery"
        } else {
            "rostersync's side (engine, runtime, plugin) bounds the delivery"
        }
    );
}
