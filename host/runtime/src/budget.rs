//! What the host accepts from a plugin, and how much of it: the checks on
//! every record a connector hands over (identifiers that only look valid,
//! control codes in text, dates, duplicates within one snapshot), the
//! running total of a snapshot's size, and the clipping of any text a
//! plugin controls before it reaches an error, a log, the store or a
//! notification. A target's answers are checked here too: one result per
//! change of its batch at most, ids the host can store, pages that move on.
//!
//! The characters refused in identifiers are those Unicode lists as
//! invisible or direction-changing: the bidirectional controls of UAX #9
//! (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), the zero-width
//! characters and word joiner (U+200B–U+200D, U+2060), the byte order mark
//! U+FEFF, and every `Cc` control (which covers NUL and the escape that
//! starts an ANSI sequence, U+001B, and the C1 CSI U+009B).

use std::collections::HashSet;

use rostersync_model::target::{ChangeItem, ChangeResult, HeldObject, HeldPage, Outcome};
use rostersync_model::{MalformedRecord, Record};

/// Bytes of an identifier (a person's, a group's, a membership's ends).
pub const MAX_ID_BYTES: usize = 1024;
/// Bytes of text a plugin controls that an error message or log keeps.
pub const MAX_QUOTED_BYTES: usize = 200;
/// What the host counts for one record beyond its text: its place in the
/// run's maps, hashes and rows.
pub const RECORD_OVERHEAD_BYTES: u64 = 256;

/// `text` cut to at most `max` bytes (on a character boundary), with the
/// cut marked and sized, so a reader knows it is not the whole.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [cut: {} of {} bytes shown]",
        &text[..end],
        end,
        text.len()
    )
}

/// Whether `c` hides itself or reorders what is around it.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Why an identifier is refused, if it is.
fn id_problem(value: &str) -> Option<String> {
    if value.len() > MAX_ID_BYTES {
        return Some(format!(
            "is {} bytes long, over the limit of {MAX_ID_BYTES}",
            value.len()
        ));
    }
    if value.trim().is_empty() {
        return Some("is empty".into());
    }
    if value.trim() != value {
        return Some("begins or ends with white space".into());
    }
    if let Some(c) = value.chars().find(|&c| c.is_control() || is_invisible(c)) {
        return Some(format!(
            "contains U+{:04X}, an invisible, direction-changing or control character",
            c as u32
        ));
    }
    None
}

/// The free-text fields of a record, by contract name.
fn texts(record: &Record) -> Vec<(&'static str, &str)> {
    fn present<'a>(
        fields: impl IntoIterator<Item = (&'static str, &'a Option<String>)>,
    ) -> impl Iterator<Item = (&'static str, &'a str)> {
        fields
            .into_iter()
            .filter_map(|(field, value)| Some((field, value.as_deref()?)))
    }
    match record {
        Record::Person(p) => {
            let admission = p.admission.as_ref();
            present([
                ("mis-id", &p.mis_id),
                ("salutation", &p.salutation),
                ("first-name", &p.first_name),
                ("preferred-first-name", &p.preferred_first_name),
                ("middle-names", &p.middle_names),
                ("last-name", &p.last_name),
                ("pronouns", &p.pronouns),
                ("email", &p.email),
                ("username", &p.username),
                ("year-group", &p.year_group),
                ("registration-group", &p.registration_group),
            ])
            .chain(admission.into_iter().flat_map(|a| {
                present([
                    ("admission-status", &a.admission_status),
                    ("intake-group", &a.intake_group),
                ])
            }))
            .chain(p.attributes.iter().flat_map(|a| {
                [
                    ("attributes", a.name.as_str()),
                    ("attributes", a.value.as_str()),
                ]
            }))
            .collect()
        }
        Record::Group(g) => present([
            ("name", &g.name),
            ("code", &g.code),
            ("subject", &g.subject),
            ("year-group", &g.year_group),
            ("parent", &g.parent),
        ])
        .collect(),
        Record::Relationship(r) => present([("relationship", &r.relationship)]).collect(),
        Record::Membership(_) | Record::Removed(_) => Vec::new(),
    }
}

/// How a record is named in an error, its identifiers clipped.
fn name(record: &Record) -> String {
    clip(&record.describe(), MAX_QUOTED_BYTES * 2)
}

/// Checks one record's identifiers and text: what a well-formed record of
/// the contract may carry.
pub fn check_record(record: &Record) -> Result<(), MalformedRecord> {
    for (field, value) in record.keys() {
        if let Some(reason) = id_problem(value) {
            return Err(MalformedRecord {
                record: name(record),
                field,
                reason,
            });
        }
    }
    for (field, value) in texts(record) {
        if let Some(c) = value
            .chars()
            .find(|&c| matches!(c, '\0' | '\u{1B}' | '\u{9B}'))
        {
            return Err(MalformedRecord {
                record: name(record),
                field,
                reason: format!("contains U+{:04X}, a NUL or terminal escape code", c as u32),
            });
        }
    }
    Ok(())
}

/// The records of one snapshot seen so far: their identities, so a second
/// record with the same one is refused instead of silently winning, and
/// the bytes they carry, against the snapshot's budget.
#[derive(Default)]
pub struct SnapshotLedger {
    seen: HashSet<String>,
    bytes: u64,
}

/// What a record did to a snapshot's ledger that ends the read.
pub enum LedgerError {
    Duplicate(MalformedRecord),
    OverBudget { bytes: u64 },
}

impl SnapshotLedger {
    /// Counts `record`; refuses a second record with the same identity,
    /// and a record that takes the snapshot over `max_bytes`.
    pub fn admit(&mut self, record: &Record, max_bytes: u64) -> Result<(), LedgerError> {
        self.bytes += record.text_size() as u64 + RECORD_OVERHEAD_BYTES;
        if self.bytes > max_bytes {
            return Err(LedgerError::OverBudget { bytes: self.bytes });
        }
        // Removals name what goes; naming it twice removes it once.
        if matches!(record, Record::Removed(_)) {
            return Ok(());
        }
        let identity = record.describe();
        if self.seen.contains(&identity) {
            return Err(LedgerError::Duplicate(MalformedRecord {
                record: name(record),
                field: record.keys().first().map_or("id", |(field, _)| field),
                reason: "appears twice in one snapshot; each record must be sent once".into(),
            }));
        }
        self.seen.insert(identity);
        Ok(())
    }
}

/// Checks a target's answer to `batch`: each result answers a change of
/// the batch, no change is answered twice, and every id it hands back is
/// one the host can store and show.
pub fn check_results(
    batch: &[ChangeItem],
    results: &[ChangeResult],
) -> Result<(), MalformedRecord> {
    let keys: HashSet<&str> = batch.iter().map(|c| c.key.as_str()).collect();
    let mut answered = HashSet::new();
    for result in results {
        let record = || {
            format!(
                "the result for change {:?}",
                clip(&result.key, MAX_QUOTED_BYTES)
            )
        };
        let problem = if !keys.contains(result.key.as_str()) {
            Some(("key", "answers no change of the batch".to_string()))
        } else if !answered.insert(result.key.as_str()) {
            Some((
                "key",
                "answers a change that was already answered".to_string(),
            ))
        } else {
            match &result.outcome {
                Outcome::Done(id) | Outcome::Matched(id) => {
                    id_problem(id).map(|reason| ("target-id", reason))
                }
                _ => None,
            }
        };
        if let Some((field, reason)) = problem {
            return Err(MalformedRecord {
                record: record(),
                field,
                reason,
            });
        }
    }
    Ok(())
}

/// Checks one page a target read back from `cursor`: every object has an
/// id the host can store, and the page moves on (a page that points back
/// at itself would be read for ever).
pub fn check_page(page: &HeldPage, cursor: Option<&str>) -> Result<(), MalformedRecord> {
    for object in &page.objects {
        let (kind, id, members) = match object {
            HeldObject::User(u) => ("user", &u.target_id, &[][..]),
            HeldObject::Group(g) => ("group", &g.target_id, &g.members[..]),
        };
        let record = || format!("held {kind} {:?}", clip(id, MAX_QUOTED_BYTES));
        if let Some(reason) = id_problem(id) {
            return Err(MalformedRecord {
                record: record(),
                field: "target-id",
                reason,
            });
        }
        if let Some(reason) = members.iter().find_map(|m| id_problem(m)) {
            return Err(MalformedRecord {
                record: record(),
                field: "members",
                reason,
            });
        }
    }
    if page.next.is_some() && page.next.as_deref() == cursor {
        return Err(MalformedRecord {
            record: "a page read back".into(),
            field: "next",
            reason: "points at the page it came from, so the read would never end".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_model::{Person, Role};

    fn person(id: &str) -> Record {
        Record::Person(Person::new(id, Role::Student))
    }

    #[test]
    fn look_alike_ids_are_refused_and_named() {
        for (id, shown) in [
            ("S1\u{202E}", "U+202E"),
            ("S\u{200B}1", "U+200B"),
            ("\u{FEFF}S1", "U+FEFF"),
            ("S1\0", "U+0000"),
            ("S1\u{1B}[31m", "U+001B"),
        ] {
            let error = check_record(&person(id)).unwrap_err();
            assert!(error.to_string().contains(shown), "{error}");
        }
        let error = check_record(&person("S1 ")).unwrap_err();
        assert!(error.reason.contains("white space"), "{error}");
        assert!(check_record(&person("S1")).is_ok());
    }

    #[test]
    fn a_huge_id_is_refused_with_a_short_message() {
        let error = check_record(&person(&"x".repeat(10 << 20))).unwrap_err();
        assert!(
            error.to_string().len() < 1024,
            "{}",
            error.to_string().len()
        );
        assert!(error.reason.contains("10485760 bytes"), "{error}");
    }

    #[test]
    fn clipping_marks_the_cut_on_a_character_boundary() {
        assert_eq!(clip("Zoë", 10), "Zoë");
        assert_eq!(clip("Zoë", 3), "Zo… [cut: 2 of 4 bytes shown]");
    }

    #[test]
    fn a_target_answer_is_held_to_its_batch() {
        use rostersync_model::target::{ObjectRef, TargetChange};
        let item = |key: &str| ChangeItem {
            key: key.into(),
            change: TargetChange::DeleteGroup {
                object: ObjectRef {
                    external_id: "G1".into(),
                    target_id: Some("g1".into()),
                },
            },
        };
        let result = |key: &str, outcome| ChangeResult {
            key: key.into(),
            outcome,
        };
        let batch = [item("k1"), item("k2")];
        assert!(check_results(&batch, &[result("k2", Outcome::Done("g1".into()))]).is_ok());
        let stranger = check_results(&batch, &[result("k9", Outcome::Done("x".into()))]);
        assert!(stranger.unwrap_err().reason.contains("no change"));
        let twice = [
            result("k1", Outcome::Refused("no".into())),
            result("k1", Outcome::Done("x".into())),
        ];
        assert!(
            check_results(&batch, &twice)
                .unwrap_err()
                .reason
                .contains("already")
        );
        let blank = check_results(&batch, &[result("k1", Outcome::Matched(" ".into()))]);
        assert_eq!(blank.unwrap_err().field, "target-id");
    }

    #[test]
    fn a_page_that_points_at_itself_is_refused() {
        let page = HeldPage {
            objects: Vec::new(),
            next: Some("p2".into()),
        };
        assert!(check_page(&page, Some("p1")).is_ok());
        assert!(check_page(&page, Some("p2")).is_err());
    }
}
