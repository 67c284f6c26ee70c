//! The OneRoster CSV connector, as a built component, reading the zips the
//! provider sandbox drops into a real folder mounted at `/drop`: a full read
//! is exactly the bulk drop, check names the school, a delta drop's changes
//! and removals come through a delta read, 1.2 drops (roles in
//! `roles.csv`, links from the contact's side, a byte order mark, an empty
//! optional file in 1.0's columns) read as 1.1 ones do, a trust's drop is
//! read for the school `school-ids` names, garbled drops fail the read
//! before any record, and nothing outside the folder is reachable.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rostersync_model::{
    EnrolmentStatus, EntityKind, MemberRole, Mode, Record, Role, SchoolInfo, Settings, SyncError,
};
use rostersync_runtime::{Limits, RunError, Sandbox};
use rostersync_sandbox::oneroster::{class_id, contact_id, is_class, student_id};
use rostersync_sandbox::{DropKind, DropSpec, Mutation, OneRosterVersion, expected};
use rostersync_tests::providers::{Bench, Connection, Read, assert_same_records, bench, key};

fn connection(folder: &Path) -> Connection {
    Connection::new(Settings::new()).with_drop_folder(folder)
}

fn drop(bench: &Bench, folder: &Path, kind: DropKind) -> PathBuf {
    bench
        .sandbox
        .write_oneroster_drop(folder, 0, kind)
        .expect("the sandbox writes a drop")
}

/// Adds a pupil to school 0 and drops the 1.1 delta that carries them.
fn add_pupil_and_drop_delta(bench: &Bench, folder: &Path) {
    let since = bench.sandbox.world().revision;
    bench.sandbox.mutate(0, Mutation::AddPupil).unwrap();
    drop(
        bench,
        folder,
        DropKind::Delta {
            since_revision: since,
        },
    );
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The sandbox of a connection whose drop folder is `folder`.
fn mounted(bench: &Bench, folder: &Path) -> Sandbox {
    Sandbox::for_connection(&bench.plugin.info, &Settings::new(), &[], Limits::default())
        .unwrap()
        .with_drop_folder(folder)
}

fn connector_error(result: Result<Read, RunError>) -> SyncError {
    match result {
        Err(RunError::Connector { connector, error }) => {
            assert_eq!(connector, "oneroster");
            error
        }
        Err(other) => panic!("expected a connector error, got {other}"),
        Ok(read) => panic!("expected a failure, read {} records", read.records.len()),
    }
}

/// The error a full read of `folder` ends with, checking that it came
/// before the first batch: nothing of a bad drop reaches the host.
async fn refusal(bench: &Bench, folder: &Path) -> String {
    let connection = connection(folder);
    let mut snapshot = bench
        .plugin
        .snapshot(&mounted(bench, folder), &connection.settings, Mode::Full)
        .await
        .unwrap();
    let first = snapshot.next_batch().await;
    assert!(first.is_err(), "the first batch should already fail");
    match connector_error(bench.read(&connection, Mode::Full).await) {
        SyncError::BadResponse(message) => message,
        other => panic!("expected a bad response, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_read_is_exactly_the_bulk_drop() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let bulk = drop(&bench, folder.path(), DropKind::Bulk);
    let read = bench
        .read(&connection(folder.path()), Mode::Full)
        .await
        .expect("a full read");
    let world = bench.sandbox.world();
    let expected = expected::oneroster(&world, 0);

    let want = expected::counts(&expected);
    assert_eq!(read.counts(), want);
    for kind in EntityKind::ALL {
        assert!(want[&kind] > 0, "the drop has {kind} records");
    }
    assert_same_records(&read.records, &expected);
    assert!(read.removals().is_empty());
    let cursor = read.cursor.clone().expect("a cursor");
    assert!(
        cursor.ends_with(&format!(" {}", file_name(&bulk))),
        "the cursor names the drop read: {cursor}"
    );

    let school = &world.schools[0];
    let accented = school
        .live_students()
        .filter(|s| rostersync_sandbox::oneroster::exported(s))
        .find(|s| !s.forename.is_ascii() && !s.surname.is_ascii())
        .expect("a pupil with an accented name");
    let Some(Record::Person(person)) = read.find(EntityKind::Person, &student_id(accented.uid))
    else {
        panic!("the accented pupil is read");
    };
    assert_eq!(
        person.first_name.as_deref(),
        Some(accented.forename.as_str())
    );
    assert_eq!(person.last_name.as_deref(), Some(accented.surname.as_str()));
    assert_eq!(person.mis_id.as_deref(), Some(accented.upn.as_str()));
    assert_eq!(person.date_of_birth, Some(accented.date_of_birth));
}

#[tokio::test]
async fn check_names_the_school_from_the_newest_drop_with_orgs() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let empty = check(&bench, folder.path())
        .await
        .expect_err("an empty folder");
    assert!(
        matches!(
            &empty,
            RunError::Connector { error: SyncError::Unavailable(m), .. }
                if m == "the drop folder holds no OneRoster zip yet"
        ),
        "{empty}"
    );

    let bulk = drop(&bench, folder.path(), DropKind::Bulk);
    add_pupil_and_drop_delta(&bench, folder.path());
    let info = check(&bench, folder.path()).await.expect("check succeeds");
    let school = &bench.sandbox.world().schools[0];
    assert_eq!(info.name, school.name);
    assert_eq!(info.id, format!("org-{}", school.uid));
    let detail = |name: &str| {
        info.details
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.clone())
    };
    assert_eq!(detail("identifier"), Some(school.urn.clone()));
    assert_eq!(
        detail("drop"),
        Some(file_name(&bulk)),
        "delta drops carry no orgs"
    );
}

/// "Test connection" with `folder` mounted (`Bench::check` mounts none).
async fn check(bench: &Bench, folder: &Path) -> Result<SchoolInfo, RunError> {
    bench
        .plugin
        .check(&mounted(bench, folder), &Settings::new())
        .await
}

#[tokio::test]
async fn a_delta_drop_brings_changes_and_explicit_removals() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    drop(&bench, folder.path(), DropKind::Bulk);
    let full = bench
        .read(&connection(folder.path()), Mode::Full)
        .await
        .expect("a full read");
    let changes = bench.change_pupils(rostersync_sandbox::oneroster::exported, 3);
    let since = changes.before.revision;
    let delta_file = drop(
        &bench,
        folder.path(),
        DropKind::Delta {
            since_revision: since,
        },
    );

    let delta = bench
        .read(
            &connection(folder.path()),
            Mode::Delta(full.cursor.clone().expect("a cursor")),
        )
        .await
        .expect("a delta read");
    let now = expected::oneroster(&changes.after, 0);
    for record in delta
        .records
        .iter()
        .filter(|r| !matches!(r, Record::Removed(_)))
    {
        assert!(
            now.contains(record),
            "stale or wrong record in the delta: {record:?}"
        );
    }
    let people: BTreeSet<String> = delta
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Person(p) => Some(p.id.clone()),
            _ => None,
        })
        .collect();
    let mut want_people = BTreeSet::from([
        student_id(changes.added.pupil),
        student_id(changes.edited),
        student_id(changes.moved),
    ]);
    want_people.extend(
        changes.after.schools[0]
            .contacts_of(changes.added.pupil)
            .iter()
            .map(|(c, _)| contact_id(c.uid)),
    );
    assert_eq!(people, want_people, "only changed people are in the delta");

    let Some(Record::Person(new_pupil)) =
        delta.find(EntityKind::Person, &student_id(changes.added.pupil))
    else {
        panic!("the added pupil");
    };
    assert_eq!(new_pupil.role, Role::Student);
    assert_eq!(new_pupil.enrolment, Some(EnrolmentStatus::OnRoll));
    let (contact, _) = changes.after.schools[0].contacts_of(changes.added.pupil)[0];
    let Some(Record::Relationship(link)) = delta.find(
        EntityKind::Relationship,
        &key(&student_id(changes.added.pupil), &contact_id(contact.uid)),
    ) else {
        panic!("the added pupil's contact link");
    };
    assert_eq!(link.relationship.as_deref(), Some("parent"));
    assert_eq!(link.priority, Some(1));

    let renamed = &changes.after.schools[0].students[&changes.edited];
    let Some(Record::Person(got)) = delta.find(EntityKind::Person, &student_id(changes.edited))
    else {
        panic!("the edited pupil");
    };
    assert_eq!(got.last_name.as_deref(), Some(renamed.surname.as_str()));
    assert_eq!(got.email, renamed.email);

    let removals: BTreeSet<_> = delta.removals().into_iter().collect();
    let mut want_removals = BTreeSet::from([(EntityKind::Person, student_id(changes.removed))]);
    for group in changes
        .removal
        .groups
        .iter()
        .filter(|g| is_class(&changes.after.schools[0].groups[g]))
    {
        want_removals.insert((
            EntityKind::Membership,
            key(&class_id(*group), &student_id(changes.removed)),
        ));
    }
    for (contact, _) in changes.before.schools[0].contacts_of(changes.removed) {
        if changes.after.schools[0].contacts[&contact.uid].stamp.live() {
            want_removals.insert((
                EntityKind::Relationship,
                key(&student_id(changes.removed), &contact_id(contact.uid)),
            ));
        } else {
            want_removals.insert((EntityKind::Person, contact_id(contact.uid)));
        }
    }
    let (from, to) = (changes.move_.groups[0], changes.move_.groups[1]);
    want_removals.insert((
        EntityKind::Membership,
        key(&class_id(from), &student_id(changes.moved)),
    ));
    assert_eq!(removals, want_removals);
    let Some(Record::Membership(joined)) = delta.find(
        EntityKind::Membership,
        &key(&class_id(to), &student_id(changes.moved)),
    ) else {
        panic!("the moved pupil's new class");
    };
    assert_eq!(joined.role, MemberRole::Student);

    let cursor = delta.cursor.expect("a cursor");
    assert!(
        cursor.ends_with(&format!(" {}", file_name(&delta_file))),
        "{cursor}"
    );
    let again = bench
        .read(&connection(folder.path()), Mode::Delta(cursor.clone()))
        .await
        .expect("a delta with nothing new");
    assert!(again.records.is_empty());
    assert_eq!(again.cursor, Some(cursor.clone()), "the cursor stays");

    // A bulk drop after the cursor cannot say what was removed: a delta
    // read asks for a full read, which then reads it.
    let newer_bulk = drop(&bench, folder.path(), DropKind::Bulk);
    let SyncError::BadResponse(message) = connector_error(
        bench
            .read(&connection(folder.path()), Mode::Delta(cursor))
            .await,
    ) else {
        panic!("expected a bad response");
    };
    assert!(message.starts_with(&file_name(&newer_bulk)), "{message}");
    assert!(message.ends_with("run a full read"), "{message}");
    let full = bench
        .read(&connection(folder.path()), Mode::Full)
        .await
        .expect("a full read of the new bulk drop");
    assert_same_records(&full.records, &now);
}

#[tokio::test]
async fn a_truncated_zip_fails_the_read_naming_it() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let bulk = drop(&bench, folder.path(), DropKind::Bulk);
    let bytes = std::fs::read(&bulk).unwrap();
    std::fs::write(&bulk, &bytes[..bytes.len() / 2]).unwrap();
    let message = refusal(&bench, folder.path()).await;
    assert!(
        message.starts_with(&format!("{}: not a readable zip file", file_name(&bulk))),
        "{message}"
    );
}

#[tokio::test]
async fn a_corrupt_file_inside_the_zip_fails_the_read_naming_it() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let bulk = drop(&bench, folder.path(), DropKind::Bulk);
    let mut bytes = std::fs::read(&bulk).unwrap();
    // Garble compressed data just after users.csv's local header.
    let at = find(&bytes, b"users.csv") + b"users.csv".len() + 40;
    for byte in &mut bytes[at..at + 64] {
        *byte ^= 0x5a;
    }
    std::fs::write(&bulk, &bytes).unwrap();
    let message = refusal(&bench, folder.path()).await;
    assert!(
        message.starts_with(&format!(
            "{}/users.csv: cannot be unpacked",
            file_name(&bulk)
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_file_the_manifest_lists_but_the_zip_lacks_fails_the_read() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let bulk = drop(&bench, folder.path(), DropKind::Bulk);
    // Renaming the entry (same length, so the zip stays valid) hides it.
    let bytes = replace_all(
        &std::fs::read(&bulk).unwrap(),
        b"classes.csv",
        b"classex.csv",
    );
    std::fs::write(&bulk, bytes).unwrap();
    let message = refusal(&bench, folder.path()).await;
    assert_eq!(
        message,
        format!(
            "{}: manifest.csv lists classes.csv, but the zip has no classes.csv",
            file_name(&bulk)
        )
    );
}

#[tokio::test]
async fn a_csv_without_a_required_column_fails_the_read_naming_it() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let manifest = "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\nfile.classes,bulk\nfile.enrollments,bulk\nfile.orgs,absent\n";
    let classes = "sourcedId,status,dateLastModified,title,classType\ncls-1,,,7A,homeroom\n";
    let users =
        "sourcedId,status,dateLastModified,role,givenName,surname\nstu-1,,,student,Zoë,Smith\n";
    let enrollments = "sourcedId,classSourcedId,userSourcedId,role\nenr-1,cls-1,stu-1,student\n";
    std::fs::write(
        folder.path().join("handmade.zip"),
        stored_zip(&[
            ("manifest.csv", manifest),
            ("classes.csv", classes),
            ("users.csv", users),
            ("enrollments.csv", enrollments),
        ]),
    )
    .unwrap();
    let message = refusal(&bench, folder.path()).await;
    assert_eq!(
        message,
        "handmade.zip/users.csv: the header has no `familyName` column"
    );

    // The same drop with the column is read, which shows the zip is sound.
    std::fs::write(
        folder.path().join("handmade.zip"),
        stored_zip(&[
            ("manifest.csv", manifest),
            ("classes.csv", classes),
            ("users.csv", &users.replace("surname", "familyName")),
            ("enrollments.csv", enrollments),
        ]),
    )
    .unwrap();
    let read = bench
        .read(&connection(folder.path()), Mode::Full)
        .await
        .expect("the mended drop is read");
    let Some(Record::Person(person)) = read.find(EntityKind::Person, "stu-1") else {
        panic!("the pupil");
    };
    assert_eq!(person.last_name.as_deref(), Some("Smith"));
    assert_eq!(read.records.len(), 3);
}

#[tokio::test]
async fn without_a_drop_folder_the_read_says_so() {
    let bench = bench("oneroster").await;
    let error = connector_error(
        bench
            .read(&Connection::new(Settings::new()), Mode::Full)
            .await,
    );
    let SyncError::BadSettings(message) = &error else {
        panic!("expected bad settings, got {error:?}");
    };
    assert!(
        message.starts_with("the drop folder /drop cannot be read"),
        "{message}"
    );
    assert!(message.contains("needs a drop folder"), "{message}");
}

#[tokio::test]
async fn a_link_out_of_the_drop_folder_is_not_followed() {
    let bench = bench("oneroster").await;
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = drop(&bench, elsewhere.path(), DropKind::Bulk);
    let folder = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&outside, folder.path().join("outside.zip")).unwrap();
    assert!(
        std::fs::metadata(folder.path().join("outside.zip")).is_ok(),
        "the link works outside the sandbox"
    );
    let message = refusal(&bench, folder.path()).await;
    assert!(
        message.starts_with("outside.zip: the drop cannot be read"),
        "{message}"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are there")
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut start = 0;
    while let Some(at) = out[start..].windows(from.len()).position(|w| w == from) {
        out[start + at..start + at + to.len()].copy_from_slice(to);
        start += at + to.len();
    }
    out
}

/// A zip of uncompressed files, so a test can drop any CSV it likes.
fn stored_zip(files: &[(&str, &str)]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, text) in files {
        let (name, data) = (name.as_bytes(), text.as_bytes());
        let offset = out.len() as u32;
        // Version 2.0, no flags, stored, 1980-01-01 00:00.
        let common = [20u16, 0, 0, 0, 0x21]
            .iter()
            .flat_map(|n| n.to_le_bytes())
            .chain(crc32(data).to_le_bytes())
            .chain((data.len() as u32).to_le_bytes())
            .chain((data.len() as u32).to_le_bytes())
            .chain((name.len() as u16).to_le_bytes())
            .chain(0u16.to_le_bytes())
            .collect::<Vec<u8>>();
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(&common);
        out.extend(name);
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(&common);
        // Comment length, disk, internal and external attributes.
        central.extend([0u8; 10]);
        central.extend(offset.to_le_bytes());
        central.extend(name);
    }
    let central_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// Writes the drop `spec` describes into `folder`.
fn drop_spec(bench: &Bench, folder: &Path, spec: &DropSpec) -> PathBuf {
    bench
        .sandbox
        .write_oneroster(folder, spec)
        .expect("the sandbox writes a drop")
}

#[tokio::test]
async fn a_1_2_drop_reads_roles_and_links_named_only_by_the_contacts() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    let spec = |kind| DropSpec {
        schools: vec![0],
        kind,
        version: OneRosterVersion::V1_2,
    };
    drop_spec(&bench, folder.path(), &spec(DropKind::Bulk));
    let read = bench
        .read(&connection(folder.path()), Mode::Full)
        .await
        .expect("a full read of a 1.2 drop");
    let world = bench.sandbox.world();
    assert_same_records(&read.records, &expected::oneroster_1_2(&world, 0));

    // A 1.2 delta, with a header-only orgs.csv in 1.0's columns.
    let since = world.revision;
    let added = bench.sandbox.mutate(0, Mutation::AddPupil).unwrap();
    drop_spec(
        &bench,
        folder.path(),
        &spec(DropKind::Delta {
            since_revision: since,
        }),
    );
    let delta = bench
        .read(
            &connection(folder.path()),
            Mode::Delta(read.cursor.expect("a cursor")),
        )
        .await
        .expect("a delta read of a 1.2 drop");
    let Some(Record::Person(pupil)) = delta.find(EntityKind::Person, &student_id(added.pupil))
    else {
        panic!("the new pupil is read");
    };
    assert_eq!(pupil.role, Role::Student);
    let after = bench.sandbox.world();
    let (contact, _) = after.schools[0].contacts_of(added.pupil)[0];
    assert!(
        delta
            .find(
                EntityKind::Relationship,
                &key(&student_id(added.pupil), &contact_id(contact.uid))
            )
            .is_some(),
        "the new pupil's contact link, from the contact's row"
    );
}

#[tokio::test]
async fn a_trust_drop_is_read_for_the_school_named_and_refused_without_one() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    drop_spec(
        &bench,
        folder.path(),
        &DropSpec {
            schools: vec![0, 1],
            kind: DropKind::Bulk,
            version: OneRosterVersion::V1_1,
        },
    );
    let SyncError::BadSettings(message) =
        connector_error(bench.read(&connection(folder.path()), Mode::Full).await)
    else {
        panic!("expected bad settings");
    };
    assert!(
        message.ends_with("set `school-ids` to the ones this connection reads"),
        "{message}"
    );

    let world = bench.sandbox.world();
    let mut chosen = connection(folder.path());
    chosen.settings.set(
        "school-ids",
        rostersync_sandbox::oneroster::org_id(&world.schools[1]),
    );
    let read = bench
        .read(&chosen, Mode::Full)
        .await
        .expect("a full read of school 2");
    assert_same_records(&read.records, &expected::oneroster(&world, 1));
}

#[tokio::test]
async fn delta_drops_without_a_bulk_drop_are_bad_settings_not_an_outage() {
    let bench = bench("oneroster").await;
    let folder = tempfile::tempdir().unwrap();
    add_pupil_and_drop_delta(&bench, folder.path());
    let error = connector_error(bench.read(&connection(folder.path()), Mode::Full).await);
    assert!(
        matches!(&error, SyncError::BadSettings(m) if m.contains("only delta drops")),
        "{error:?}"
    );
}
