//! Tests over real HTTP on 127.0.0.1.

use std::io::Read;
use std::time::{Duration, Instant};

use rostersync_model::{EntityKind, GroupKind, Record};
use serde_json::Value;

use super::*;

fn small() -> SandboxConfig {
    SandboxConfig {
        seed: 7,
        size: Size {
            schools: 2,
            pupils_per_school: 60,
        },
        ..SandboxConfig::default()
    }
}

async fn get(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn get_json(url: &str, token: &str) -> Value {
    let r = get(url, token).await;
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

/// Applies a mutation to school 0, the school every test here changes.
fn mutate(sandbox: &SandboxHandle, mutation: Mutation) -> MutationOutcome {
    sandbox.mutate(0, mutation).unwrap()
}

/// One school on the Wonde API: its `…/schools/{id}` root and its token.
struct WondeSchool {
    root: String,
    token: String,
}

impl WondeSchool {
    /// The sandbox's school `school` as Wonde serves it.
    fn of(sandbox: &SandboxHandle, school: usize) -> Self {
        let c = sandbox.credentials(school);
        Self {
            root: format!(
                "{}/schools/{}",
                sandbox.base_url(Provider::Wonde, school),
                c.wonde_school_id
            ),
            token: c.wonde_token,
        }
    }

    /// The URL of `path` (with its query) under the school.
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.root)
    }

    /// Every record of a listing under the school, over all its pages.
    async fn list(&self, path: &str) -> Vec<Value> {
        wonde_all(&self.url(path), &self.token).await.0
    }
}

/// Follows Wonde's `meta.pagination.next` and returns every record.
async fn wonde_all(url: &str, token: &str) -> (Vec<Value>, usize) {
    let (mut out, mut pages, mut next) = (vec![], 0, Some(url.to_string()));
    while let Some(u) = next {
        let body = get_json(&u, token).await;
        pages += 1;
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        next = body["meta"]["pagination"]["next"]
            .as_str()
            .map(str::to_string);
    }
    (out, pages)
}

/// Follows Clever's `links` rel=next and returns every record's `data`.
async fn clever_all(sandbox: &SandboxHandle, path: &str, token: &str) -> (Vec<Value>, usize) {
    let root = format!("http://{}/clever", sandbox.addr());
    let (mut out, mut pages, mut next) = (vec![], 0, Some(format!("/v3.0{path}")));
    while let Some(u) = next {
        let body = get_json(&format!("{root}{u}"), token).await;
        pages += 1;
        out.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["data"].clone()),
        );
        next = body["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .map(|l| l["uri"].as_str().unwrap().to_string());
    }
    (out, pages)
}

/// GETs an Arbor URL with this school's HTTP basic credentials.
async fn arbor_get(url: &str, c: &Credentials) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .basic_auth(&c.arbor_user, Some(&c.arbor_password))
        .send()
        .await
        .unwrap()
}

/// The JSON body of [`arbor_get`].
async fn arbor_json(url: &str, c: &Credentials) -> Value {
    arbor_get(url, c).await.json().await.unwrap()
}

/// Asks Xporter's documented `oauth/GetToken` for a token for this
/// school's estab and relying party with `password`.
async fn xporter_get_token(base: &str, c: &Credentials, password: &str) -> reqwest::Response {
    xporter_token_from(&format!("{base}/oauth/GetToken"), c, password).await
}

/// Posts the token request to `url`.
async fn xporter_token_from(url: &str, c: &Credentials, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({"estab": c.xporter_estab, "relyingParty": c.xporter_relying_party, "password": password, "thirdpartyid": "XporterOnDemand"}))
        .send()
        .await
        .unwrap()
}

/// The `Authorization` value for this school's Xporter: `Idaas` and a token
/// exchanged for the right secret.
async fn xporter_auth(base: &str, c: &Credentials) -> String {
    let token: Value = xporter_get_token(base, c, &c.xporter_secret)
        .await
        .json()
        .await
        .unwrap();
    format!("Idaas {}", token["token"].as_str().unwrap())
}

/// GETs an Xporter URL with an `Authorization` value.
async fn xporter_get(url: &str, auth: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
}

/// The JSON body of [`xporter_get`].
async fn xporter_json(url: &str, auth: &str) -> Value {
    xporter_get(url, auth).await.json().await.unwrap()
}

/// Writes a OneRoster drop of school 0 into `dir` and reads it back, file
/// name to content.
fn read_drop(
    sandbox: &SandboxHandle,
    dir: &std::path::Path,
    kind: DropKind,
) -> std::collections::BTreeMap<String, String> {
    read_zip(&sandbox.write_oneroster_drop(dir, 0, kind).unwrap())
}

fn count_kind(records: &[Record], pred: impl Fn(&Record) -> bool) -> usize {
    records.iter().filter(|r| pred(r)).count()
}

#[test]
fn same_seed_gives_identical_data_and_drops() {
    let size = Size {
        schools: 2,
        pupils_per_school: 80,
    };
    let a = World::generate(3, size);
    let b = World::generate(3, size);
    assert_eq!(a, b);
    assert_eq!(
        oneroster::build_zip(&a, 0, DropKind::Bulk),
        oneroster::build_zip(&b, 0, DropKind::Bulk)
    );
    assert_ne!(a, World::generate(4, size));
}

#[test]
fn generated_data_has_the_mess_schools_have() {
    let w = World::generate(
        11,
        Size {
            schools: 1,
            pupils_per_school: 200,
        },
    );
    let s = &w.schools[0];
    assert!(
        s.students.values().any(|p| p.email.is_none()),
        "missing emails"
    );
    let mut emails: Vec<_> = s
        .students
        .values()
        .filter_map(|p| p.email.clone())
        .collect();
    let n = emails.len();
    emails.sort();
    emails.dedup();
    assert!(emails.len() < n, "duplicate emails");
    assert!(
        s.groups
            .values()
            .any(|g| g.kind == GroupKind::Class && g.name.is_none()),
        "unnamed class"
    );
    assert!(
        s.students.keys().any(|&u| s.contacts_of(u).len() == 7),
        "seven contacts"
    );
    assert!(
        s.students
            .values()
            .any(|p| !p.surname.is_ascii() || !p.forename.is_ascii())
    );
    assert!(s.students.values().any(|p| p.status
        == rostersync_model::EnrolmentStatus::Prospective
        && p.admission.is_some()));
    assert!(s.students.values().any(|p| p.leaving_date.is_some()));
}

#[tokio::test]
async fn wonde_pages_with_string_per_page_and_accepts_basic_or_bearer() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let wonde = WondeSchool::of(&sandbox, 0);
    let url = wonde
        .url("students?per_page=10&include=contacts,contacts.contact_details,year,registration");
    let first = get_json(&url, &wonde.token).await;
    let p = &first["meta"]["pagination"];
    assert_eq!(p["per_page"], "10");
    assert_eq!(p["current_page"], 1);
    assert_eq!(p["more"], true);
    assert!(p["next"].as_str().unwrap().contains("page=2"));
    assert!(
        first["data"][0]["date_of_birth"]["date"]
            .as_str()
            .unwrap()
            .ends_with(".000000")
    );
    assert!(first["data"][0]["contacts"]["data"][0]["relationship"]["relationship"].is_string());

    let (all, pages) = wonde_all(&url, &wonde.token).await;
    let world = sandbox.world();
    let on_roll = world.schools[0]
        .live_students()
        .filter(|s| s.status == rostersync_model::EnrolmentStatus::OnRoll)
        .count();
    assert_eq!(all.len(), on_roll);
    assert_eq!(pages, on_roll.div_ceil(10));

    // Basic with the token as user and an empty password works too.
    let r = reqwest::Client::new()
        .get(&url)
        .basic_auth(&wonde.token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Bad token, and another school's token on this school.
    assert_eq!(get(&url, "nope").await.status(), 401);
    assert_eq!(
        get(&url, &sandbox.credentials(1).wonde_token)
            .await
            .status(),
        404
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn wonde_reads_match_the_expected_records() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let wonde = WondeSchool::of(&sandbox, 0);
    let expected = expected::wonde(&sandbox.world(), 0);
    let mut people = 0;
    for path in [
        "students",
        "students-pre-admission",
        "students/leavers",
        "employees",
        "contacts",
    ] {
        people += wonde.list(&format!("{path}?per_page=200")).await.len();
    }
    let classes = wonde.list("classes?include=students,employees").await;
    let groups = wonde.list("groups?include=students,employees").await;
    let counts = expected::counts(&expected);
    assert_eq!(counts[&EntityKind::Person], people);
    assert_eq!(counts[&EntityKind::Group], classes.len() + groups.len());
    let members: usize = classes
        .iter()
        .chain(&groups)
        .map(|g| {
            g["students"]["data"].as_array().unwrap().len()
                + g["employees"]["data"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(counts[&EntityKind::Membership], members);
    // A sample record, field by field.
    let Some(Record::Person(p)) = expected.first() else {
        panic!()
    };
    let api = get_json(
        &wonde.url(&format!("students/{}?include=contact_details", p.id)),
        &wonde.token,
    )
    .await;
    assert_eq!(
        api["data"]["legal_forename"].as_str(),
        p.first_name.as_deref()
    );
    assert_eq!(api["data"]["surname"].as_str(), p.last_name.as_deref());
    assert_eq!(
        api["data"]["contact_details"]["data"]["emails"]["email"].as_str(),
        p.email.as_deref()
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn wonde_change_feed_shows_mutations_and_deletions() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let wonde = WondeSchool::of(&sandbox, 0);
    let since = sandbox.world().now.format("%Y-%m-%d %H:%M:%S").to_string();
    let q = provider_encode(&since);
    let students_since = format!("students?updated_after={q}");
    assert!(wonde.list(&students_since).await.is_empty());

    let added = mutate(&sandbox, Mutation::AddPupil);
    let edited = mutate(&sandbox, Mutation::EditPupil { pupil: None });
    let removed = mutate(&sandbox, Mutation::RemovePupil { pupil: None });
    let moved = mutate(&sandbox, Mutation::MovePupil { pupil: None });

    let changed = wonde.list(&students_since).await;
    let ids: Vec<&str> = changed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    for uid in [added.pupil, edited.pupil, moved.pupil] {
        assert!(ids.contains(&providers::wonde::id(uid).as_str()));
    }
    assert!(!ids.contains(&providers::wonde::id(removed.pupil).as_str()));
    let deletions = wonde
        .list(&format!("deletions?type=student&updated_after={q}"))
        .await;
    assert_eq!(deletions.len(), 1);
    assert_eq!(deletions[0]["id"], providers::wonde::id(removed.pupil));
    assert!(deletions[0]["deleted_at"]["date"].is_string());
    let classes = wonde.list(&format!("classes?updated_after={q}")).await;
    assert!(classes.len() >= 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_removed_pupil_returns_as_the_same_person_in_the_same_groups() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let before = sandbox.world();
    let removed = mutate(&sandbox, Mutation::RemovePupil { pupil: None });
    let uid = removed.pupil;
    let groups_of = |world: &World| -> Vec<u64> {
        world.schools[0]
            .groups
            .values()
            .filter(|g| g.students.contains(&uid))
            .map(|g| g.uid)
            .collect()
    };
    assert!(groups_of(&sandbox.world()).is_empty());
    let returned = mutate(&sandbox, Mutation::ReturnPupil { pupil: uid });
    let after = sandbox.world();
    let student = &after.schools[0].students[&uid];
    assert!(student.stamp.live());
    assert_eq!(student.mis_id, before.schools[0].students[&uid].mis_id);
    assert_eq!(groups_of(&after), groups_of(&before));
    assert_eq!(returned.groups, groups_of(&before));
    let contacts_live = |world: &World| -> usize {
        world.schools[0]
            .links
            .range((uid, 0)..=(uid, u64::MAX))
            .filter(|((_, c), _)| world.schools[0].contacts[c].stamp.live())
            .count()
    };
    assert_eq!(contacts_live(&after), contacts_live(&before));
    assert_eq!(
        sandbox
            .mutate(0, Mutation::ReturnPupil { pupil: uid })
            .unwrap_err(),
        MutationError::NotRemoved(uid)
    );
    sandbox.shutdown().await;
}

fn provider_encode(s: &str) -> String {
    providers::encode(s)
}

#[tokio::test]
async fn clever_pages_with_starting_after_and_refuses_bad_tokens() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let token = sandbox.credentials(0).clever_token;
    let (students, pages) = clever_all(&sandbox, "/users?role=student&limit=7", &token).await;
    let world = sandbox.world();
    let expected = expected::clever(&world, 0);
    let expected_students = count_kind(
        &expected,
        |r| matches!(r, Record::Person(p) if p.role == rostersync_model::Role::Student),
    );
    assert_eq!(students.len(), expected_students);
    assert_eq!(pages, expected_students.div_ceil(7));
    assert!(
        students
            .windows(2)
            .all(|w| w[0]["id"].as_str() < w[1]["id"].as_str())
    );
    assert!(
        students[0]["roles"]["student"]["dob"]
            .as_str()
            .unwrap()
            .contains('/')
    );

    let (contacts, _) = clever_all(&sandbox, "/users?role=contact&limit=50", &token).await;
    let rel = &contacts[0]["roles"]["contact"]["student_relationships"][0];
    assert!(
        ["Parent", "Grandparent", "Aunt/Uncle", "Other"]
            .contains(&rel["relationship"].as_str().unwrap())
    );
    assert!(contacts[0]["name"]["first"].is_null());
    let (sections, _) = clever_all(&sandbox, "/sections", &token).await;
    assert!(sections.iter().any(|s| s["subject"] == "homeroom/advisory"));
    let (teachers, _) = clever_all(&sandbox, "/users?role=teacher", &token).await;
    let (staff, _) = clever_all(&sandbox, "/users?role=staff", &token).await;
    let counts = expected::counts(&expected);
    assert_eq!(
        counts[&EntityKind::Person],
        students.len() + contacts.len() + teachers.len() + staff.len()
    );
    assert_eq!(counts[&EntityKind::Group], sections.len());
    let rels: usize = contacts
        .iter()
        .map(|c| {
            c["roles"]["contact"]["student_relationships"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(counts[&EntityKind::Relationship], rels);

    let url = format!("{}/users", sandbox.base_url(Provider::Clever, 0));
    assert_eq!(get(&url, "wrong").await.status(), 401);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 401);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn clever_events_follow_mutations() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let token = sandbox.credentials(0).clever_token;
    assert!(clever_all(&sandbox, "/events", &token).await.0.is_empty());
    let added = mutate(&sandbox, Mutation::AddPupil);
    let removed = mutate(&sandbox, Mutation::RemovePupil { pupil: None });
    let (events, _) = clever_all(&sandbox, "/events?limit=2", &token).await;
    let find = |ty: &str, uid: u64| {
        events
            .iter()
            .any(|e| e["type"] == ty && e["data"]["object"]["id"] == providers::clever::id(uid))
    };
    assert!(find("users.created", added.pupil));
    assert!(find("users.deleted", removed.pupil));
    assert!(events.iter().any(|e| e["type"] == "sections.updated"));
    // A connector resumes after the last event it saw.
    let last = events.last().unwrap()["id"].as_str().unwrap().to_string();
    mutate(&sandbox, Mutation::EditPupil { pupil: None });
    let (later, _) = clever_all(&sandbox, &format!("/events?starting_after={last}"), &token).await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0]["type"], "users.updated");
    sandbox.shutdown().await;
}

fn read_zip(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        out.insert(f.name().to_string(), s);
    }
    out
}

#[tokio::test]
async fn oneroster_bulk_and_delta_drops() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bulk = read_drop(&sandbox, dir.path(), DropKind::Bulk);
    assert!(bulk["manifest.csv"].contains("file.users,bulk"));
    assert!(bulk["manifest.csv"].contains("oneroster.version,1.1"));
    let expected = expected::counts(&expected::oneroster(&sandbox.world(), 0));
    assert_eq!(
        bulk["users.csv"].lines().count() - 1,
        expected[&EntityKind::Person]
    );
    assert_eq!(
        bulk["classes.csv"].lines().count() - 1,
        expected[&EntityKind::Group]
    );
    assert_eq!(
        bulk["enrollments.csv"].lines().count() - 1,
        expected[&EntityKind::Membership]
    );

    let since = sandbox.world().revision;
    let removed = mutate(&sandbox, Mutation::RemovePupil { pupil: None });
    let moved = mutate(&sandbox, Mutation::MovePupil { pupil: None });
    let delta = read_drop(
        &sandbox,
        dir.path(),
        DropKind::Delta {
            since_revision: since,
        },
    );
    assert!(delta["manifest.csv"].contains("file.users,delta"));
    assert!(delta["manifest.csv"].contains("file.orgs,absent"));
    assert!(delta["users.csv"].contains(&format!(
        "{},tobedeleted,",
        oneroster::student_id(removed.pupil)
    )));
    assert!(
        delta["users.csv"].contains(&format!("{},active,", oneroster::student_id(moved.pupil)))
    );
    let gone = format!(
        "enr-{}-{},tobedeleted",
        moved.groups[0],
        oneroster::student_id(moved.pupil)
    );
    assert!(
        delta["enrollments.csv"].contains(&gone),
        "{}",
        delta["enrollments.csv"]
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn faults_fire_per_endpoint_and_can_be_counted() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let c = sandbox.credentials(0);
    let wonde = WondeSchool::of(&sandbox, 0);
    let (url, other) = (wonde.url("students"), wonde.url("employees"));
    let clever_users = format!("{}/users", sandbox.base_url(Provider::Clever, 0));

    sandbox.inject_fault(
        Fault::new(
            Provider::Wonde,
            "/students",
            FaultKind::ServerError { status: 503 },
        )
        .times(1),
    );
    assert_eq!(get(&url, &c.wonde_token).await.status(), 503);
    assert_eq!(get(&url, &c.wonde_token).await.status(), 200);

    sandbox.inject_fault(
        Fault::new(
            Provider::Wonde,
            "/students",
            FaultKind::RateLimited {
                retry_after_secs: 7,
            },
        )
        .times(1),
    );
    let r = get(&url, &c.wonde_token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(get(&other, &c.wonde_token).await.status(), 200);

    sandbox.inject_fault(
        Fault::new(
            Provider::Wonde,
            "/students",
            FaultKind::Slow { millis: 300 },
        )
        .times(1),
    );
    let t = Instant::now();
    assert_eq!(get(&url, &c.wonde_token).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    sandbox
        .inject_fault(Fault::new(Provider::Wonde, "/students", FaultKind::TruncatedBody).times(1));
    let body = get(&url, &c.wonde_token).await.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert!(!body.is_empty());

    sandbox.inject_fault(Fault::new(Provider::Wonde, "/students", FaultKind::WrongJson).times(1));
    let v = get_json(&url, &c.wonde_token).await;
    assert!(v.get("data").is_none());

    sandbox.inject_fault(
        Fault::new(Provider::Wonde, "/employees", FaultKind::RevokeCredentials).times(1),
    );
    assert_eq!(get(&other, &c.wonde_token).await.status(), 401);
    assert_eq!(
        get(&url, &c.wonde_token).await.status(),
        401,
        "stays revoked"
    );
    sandbox.restore_credentials(Provider::Wonde, 0);
    assert_eq!(get(&url, &c.wonde_token).await.status(), 200);

    // Faults for one provider leave the others alone.
    sandbox.inject_fault(Fault::new(
        Provider::Clever,
        "",
        FaultKind::ServerError { status: 500 },
    ));
    assert_eq!(get(&url, &c.wonde_token).await.status(), 200);
    assert_eq!(get(&clever_users, &c.clever_token).await.status(), 500);
    sandbox.clear_faults();
    assert_eq!(get(&clever_users, &c.clever_token).await.status(), 200);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn admin_path_sets_faults_and_mutates() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let c = sandbox.credentials(0);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", sandbox.admin_url()))
            .json(&body)
            .send()
    };
    let fault = serde_json::json!({"provider": "clever", "path_contains": "/sections", "kind": {"kind": "rate_limited", "retry_after_secs": 2}, "times": 1});
    let r = post("/faults", fault).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        get(
            &format!("{}/sections", sandbox.base_url(Provider::Clever, 0)),
            &c.clever_token
        )
        .await
        .status(),
        429
    );
    let add_pupil = serde_json::json!({"op": "add_pupil"});
    let r = post("/mutate/0", add_pupil.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sandbox.world().revision, 2);
    let r = post("/mutate/9", add_pupil).await.unwrap();
    assert_eq!(r.status(), 422);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn arbor_lists_references_pages_filters_and_logs_changes() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let c = sandbox.credentials(0);
    let base = sandbox.base_url(Provider::Arbor, 0);
    let mut students = vec![];
    for n in 1.. {
        let page = arbor_json(&format!("{base}/Students?page={n}&page-size=20"), &c).await;
        let rows = page["students"].as_array().unwrap().clone();
        let last = rows.len() < 20;
        students.extend(rows);
        if last {
            break;
        }
    }
    let world = sandbox.world();
    assert_eq!(
        students.len(),
        world.schools[0]
            .live_students()
            .filter(|s| providers::arbor::in_arbor(s))
            .count()
    );
    // A list names each record by reference only.
    let first = students[0].as_object().unwrap();
    assert_eq!(first["entityType"], "Student");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["displayName", "entityType", "href"]);
    let href = first["href"].as_str().unwrap();
    let root = base.trim_end_matches("/rest-v2");
    let one = arbor_json(&format!("{root}{href}"), &c).await;
    assert_eq!(one["student"]["href"], href);
    let person = one["student"]["person"]["href"].as_str().unwrap();
    let person = arbor_json(&format!("{root}{person}"), &c).await;
    assert!(person["person"]["legalFirstName"].is_string(), "{person}");
    // The dashed list path is the same list; a filter on a record is by href.
    let dashed = arbor_json(
        &format!("{base}/school-enrolments?filters.student.equals={href}"),
        &c,
    )
    .await;
    assert_eq!(
        dashed["schoolEnrolments"].as_array().unwrap().len(),
        1,
        "{dashed}"
    );

    // Wrong password, and this school's credentials on another school's host.
    let r = reqwest::Client::new()
        .get(format!("{base}/Students"))
        .basic_auth(&c.arbor_user, Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let other = sandbox.base_url(Provider::Arbor, 1);
    assert_eq!(
        arbor_get(&format!("{other}/Students"), &c).await.status(),
        401
    );

    let from = world.revision;
    let moved = mutate(&sandbox, Mutation::MovePupil { pupil: None });
    let removed = mutate(&sandbox, Mutation::RemovePupil { pupil: None });
    let logs_deletion =
        |log: &Value, href: String| {
            log["changes"].as_array().unwrap().iter().any(|ch| {
                ch["changeType"] == "delete" && ch["changedObject"]["href"] == href.as_str()
            })
        };
    let log = arbor_json(
        &format!("{base}/academic-unit-enrolments/changelog?from-revision={from}"),
        &c,
    )
    .await;
    let gone = providers::arbor::membership_id(moved.groups[0], moved.pupil);
    assert!(logs_deletion(
        &log,
        format!("/rest-v2/academic-unit-enrolments/{gone}")
    ));
    let log = arbor_json(
        &format!("{base}/students/changelog?from-revision={from}"),
        &c,
    )
    .await;
    assert!(logs_deletion(
        &log,
        format!("/rest-v2/students/{}", removed.pupil)
    ));
    let highest = log["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ch| ch["toRevision"].as_u64())
        .max();
    assert_eq!(highest, Some(sandbox.world().revision));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn xporter_exchanges_a_token_and_serves_changesets() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let c = sandbox.credentials(0);
    let base = sandbox.base_url(Provider::Xporter, 0);
    let bad = xporter_get_token(&base, &c, "wrong").await;
    assert_eq!(bad.status(), 401);
    assert!(bad.json::<Value>().await.unwrap()["token"].is_null());
    let auth = xporter_auth(&base, &c).await;
    let students = format!("{base}/v1/School/{}/Students", c.xporter_estab);
    let first = xporter_json(&format!("{students}?changedRows=*&pageSize=10"), &auth).await;
    assert!(first.get("Students").is_some(), "{first}");
    assert_eq!(first["Students"].as_array().unwrap().len(), 10);
    assert_eq!(first["__pagination__"][0]["PageNumber"], 1);
    assert!(first["Students"][0]["DateofBirth"].is_string());
    assert_eq!(first["Students"][0]["StudentStatus"], "OnRoll");
    assert!(first["Students_deleted"].as_array().unwrap().is_empty());
    let next = first["__changedRows__"][0]["NextChangedRows"]
        .as_str()
        .unwrap()
        .to_string();

    let added = mutate(&sandbox, Mutation::AddPupil);
    let removed = mutate(&sandbox, Mutation::RemovePupil { pupil: None });
    let delta = xporter_json(&format!("{students}?changedRows={next}&pageSize=10"), &auth).await;
    let rows = delta["Students"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Id"], added.pupil.to_string());
    assert_eq!(
        delta["Students_deleted"],
        serde_json::json!([{"Id": removed.pupil.to_string()}])
    );
    assert!(
        delta.get("__pagination__").is_none(),
        "one page needs no paging"
    );

    // The STS answers the same credentials with its own shape.
    let sts: Value = xporter_token_from(&sandbox.xporter_sts_url(), &c, &c.xporter_secret)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        sts["token"].is_string() && sts.get("ExceptionType").is_none(),
        "{sts}"
    );
    let details = xporter_json(&format!("{base}/v1/TokenDetails"), &auth).await;
    assert!(
        details["Scopes"]
            .as_array()
            .unwrap()
            .contains(&"Student".into())
    );

    let groups = xporter_json(
        &format!(
            "{base}/v1/School/{}/Groups?Type=TeachingGrp&options=includeMembersIds",
            c.xporter_estab
        ),
        &auth,
    )
    .await;
    assert!(groups["Group"][0]["StudentIds"].is_string());
    assert_eq!(
        xporter_get(&format!("{students}?x=1"), &auth)
            .await
            .status(),
        200
    );
    assert_eq!(xporter_get(&students, "Idaas nope").await.status(), 401);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn scholarpack_pages_with_has_next_and_next_uri() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let token = sandbox.credentials(1).scholarpack_token;
    let students = format!("{}/students/", sandbox.base_url(Provider::Scholarpack, 1));
    let mut url = Some(format!("{students}?per_page=25"));
    let mut count = 0;
    while let Some(u) = url {
        let page = get_json(&u, &token).await;
        count += page["data"].as_array().unwrap().len();
        url = page["next_uri"].as_str().map(str::to_string);
        assert_eq!(page["has_next"], url.is_some());
    }
    assert_eq!(count, sandbox.world().schools[1].live_students().count());
    assert_eq!(get(&students, "bad").await.status(), 401);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn expected_counts_match_arbor_xporter_and_scholarpack() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let c = sandbox.credentials(0);
    let world = sandbox.world();

    // Arbor: one big page per resource.
    let arbor = sandbox.base_url(Provider::Arbor, 0);
    let mut n = std::collections::BTreeMap::new();
    use providers::arbor::Resource as R;
    for resource in R::ALL {
        let v = arbor_json(&format!("{arbor}/{}?page-size=1000", resource.plural()), &c).await;
        n.insert(
            resource.entity_type(),
            v[resource.list_key()].as_array().unwrap().len(),
        );
    }
    let e = expected::counts(&expected::arbor(&world, 0));
    assert_eq!(
        e[&EntityKind::Person],
        n["Student"] + n["Staff"] + n["Guardian"]
    );
    assert_eq!(n["Person"], n["Student"] + n["Staff"] + n["Guardian"]);
    assert_eq!(
        e[&EntityKind::Group],
        n["RegistrationForm"] + n["AcademicUnit"]
    );
    assert_eq!(
        e[&EntityKind::Membership],
        n["RegistrationFormMembership"] + n["AcademicUnitEnrolment"] + n["AcademicUnitLead"]
    );
    assert_eq!(
        e[&EntityKind::Relationship],
        n["StudentGuardianRelationship"]
    );

    // Xporter.
    let base = sandbox.base_url(Provider::Xporter, 0);
    let auth = xporter_auth(&base, &c).await;
    let school = format!("{base}/v1/School/{}", c.xporter_estab);
    let mut tables = std::collections::BTreeMap::new();
    for (endpoint, table, extra) in [
        ("Students", "Students", "&studentStatus=All"),
        ("Staff", "Staff", ""),
        ("Contacts", "Contacts", ""),
        ("Groups", "Group", "&options=includeMembersIds"),
    ] {
        let v = xporter_json(&format!("{school}/{endpoint}?pageSize=1000{extra}"), &auth).await;
        tables.insert(table, v[table].as_array().unwrap().clone());
    }
    let e = expected::counts(&expected::xporter(&world, 0));
    assert_eq!(
        e[&EntityKind::Person],
        tables["Students"].len() + tables["Staff"].len() + tables["Contacts"].len()
    );
    assert_eq!(e[&EntityKind::Group], tables["Group"].len());
    let ids = |v: &Value| {
        v.as_str()
            .unwrap()
            .split(',')
            .filter(|s| !s.is_empty())
            .count()
    };
    let members: usize = tables["Group"]
        .iter()
        .map(|g| ids(&g["StudentIds"]) + ids(&g["StaffIds"]))
        .sum();
    assert_eq!(e[&EntityKind::Membership], members);
    let rels: usize = tables["Contacts"]
        .iter()
        .map(|c| c["Students"].as_array().unwrap().len())
        .sum();
    assert_eq!(e[&EntityKind::Relationship], rels);

    // Scholarpack.
    let sp = sandbox.base_url(Provider::Scholarpack, 0);
    let mut lists = std::collections::BTreeMap::new();
    for resource in ["students", "staff", "contacts", "groups"] {
        let mut all = vec![];
        let mut url = Some(format!("{sp}/{resource}/?per_page=100"));
        while let Some(u) = url {
            let page = get_json(&u, &c.scholarpack_token).await;
            all.extend(page["data"].as_array().unwrap().iter().cloned());
            url = page["next_uri"].as_str().map(str::to_string);
        }
        lists.insert(resource, all);
    }
    let e = expected::counts(&expected::scholarpack(&world, 0));
    assert_eq!(
        e[&EntityKind::Person],
        lists["students"].len() + lists["staff"].len() + lists["contacts"].len()
    );
    assert_eq!(e[&EntityKind::Group], lists["groups"].len());
    let members: usize = lists["groups"]
        .iter()
        .map(|g| {
            g["student_ids"].as_array().unwrap().len() + g["staff_ids"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(e[&EntityKind::Membership], members);
    let rels: usize = lists["students"]
        .iter()
        .map(|s| s["contacts"].as_array().unwrap().len())
        .sum();
    assert_eq!(e[&EntityKind::Relationship], rels);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn same_seed_serves_byte_identical_responses() {
    let a = Sandbox::start(small()).await.unwrap();
    let b = Sandbox::start(small()).await.unwrap();
    assert_eq!(a.credentials(0), b.credentials(0));
    let c = a.credentials(0);
    let body = |s: &SandboxHandle, path: String| {
        let url = format!("{}{path}", s.base_url(Provider::Clever, 0));
        let token = c.clever_token.clone();
        async move { get(&url, &token).await.bytes().await.unwrap() }
    };
    assert_eq!(
        body(&a, "/users?limit=500".into()).await,
        body(&b, "/users?limit=500".into()).await
    );
    let wonde = |s: &SandboxHandle| {
        let url = format!(
            "{}/schools/{}/students?include=contacts,classes,education_details&per_page=200",
            s.base_url(Provider::Wonde, 0),
            c.wonde_school_id
        );
        let token = c.wonde_token.clone();
        let port = s.addr().port().to_string();
        async move {
            String::from_utf8(get(&url, &token).await.bytes().await.unwrap().to_vec())
                .unwrap()
                .replace(&port, "PORT")
        }
    };
    assert_eq!(wonde(&a).await, wonde(&b).await);
    let described = a.describe();
    assert_eq!(described.len(), 2);
    assert!(
        described[1].base_urls[&Provider::Arbor].contains("/arbor/school2.uk.arbor.sc/rest-v2")
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn wonde_cursor_mode_nulls_page_fields() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let wonde = WondeSchool::of(&sandbox, 0);
    let url = wonde.url("contacts?cursor=true&per_page=25");
    let first = get_json(&url, &wonde.token).await;
    assert!(first["meta"]["pagination"]["per_page"].is_null());
    assert!(first["meta"]["pagination"]["current_page"].is_null());
    let (all, _) = wonde_all(&url, &wonde.token).await;
    assert_eq!(
        all.len(),
        sandbox.world().schools[0].live_contacts().count()
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn clever_sample_records_match_field_by_field() {
    let sandbox = Sandbox::start(small()).await.unwrap();
    let token = sandbox.credentials(0).clever_token;
    let clever = sandbox.base_url(Provider::Clever, 0);
    let expected = expected::clever(&sandbox.world(), 0);
    let contact = expected
        .iter()
        .find_map(|r| match r {
            Record::Person(p) if p.role == rostersync_model::Role::Contact => Some(p),
            _ => None,
        })
        .unwrap();
    let api = get_json(&format!("{clever}/users/{}", contact.id), &token).await;
    assert_eq!(
        api["data"]["name"]["last"].as_str(),
        contact.last_name.as_deref()
    );
    assert_eq!(api["data"]["email"].as_str(), contact.email.as_deref());
    assert_eq!(
        api["data"]["roles"]["contact"]["sis_id"].as_str(),
        contact.mis_id.as_deref()
    );
    let group = expected
        .iter()
        .find_map(|r| match r {
            Record::Group(g) => Some(g),
            _ => None,
        })
        .unwrap();
    let api = get_json(&format!("{clever}/sections/{}", group.id), &token).await;
    assert_eq!(api["data"]["subject"].as_str(), group.subject.as_deref());
    assert_eq!(
        api["data"]["section_number"].as_str(),
        group.code.as_deref()
    );
    sandbox.shutdown().await;
}
