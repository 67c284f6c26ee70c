//! Initial passwords: generated to the target's policy (a length, and how
//! many character classes must appear, as Active Directory's complexity
//! rule asks for three of four: "Password must meet complexity
//! requirements", Microsoft Learn), sent only on the create that makes an
//! account, and handed to the operator once. They are never written to the
//! store, a log or the delivery log; [`Password`] does not print. They
//! leave the process once, as a CSV: shown by the command line, or written
//! to a new owner-only file ([`write_passwords`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::seq::SliceRandom;
use rostersync_store::CsvExport;
use serde::Deserialize;

use crate::IssuedPassword;

/// Letters and digits that cannot be misread (no `l`, `1`, `O`, `0`), and
/// symbols that need no quoting in a CSV or a shell.
const CLASSES: [&[u8]; 4] = [
    b"abcdefghijkmnopqrstuvwxyz",
    b"ABCDEFGHJKLMNPQRSTUVWXYZ",
    b"23456789",
    b"!#%*+-=?@^_",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    pub length: usize,
    /// Lower case, upper case, digits and symbols, in that order: the
    /// first `classes` of them each appear at least once.
    pub classes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            length: 14,
            classes: 3,
        }
    }
}

impl PasswordPolicy {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.classes) {
            return Err(format!(
                "passwords.classes is {}; it counts lower case, upper case, digits and symbols, so 1 to 4",
                self.classes
            ));
        }
        if self.length < 8.max(self.classes) {
            return Err(format!(
                "passwords.length is {}; an initial password needs at least 8 characters",
                self.length
            ));
        }
        Ok(())
    }

    /// A new password to this policy.
    pub fn generate(&self) -> Password {
        let mut rng = rand::rng();
        let classes = &CLASSES[..self.classes.clamp(1, 4)];
        let pick =
            |rng: &mut rand::rngs::ThreadRng, set: &[u8]| set[rng.random_range(0..set.len())];
        let mut bytes: Vec<u8> = classes.iter().map(|set| pick(&mut rng, set)).collect();
        let all: Vec<u8> = classes.concat();
        while bytes.len() < self.length {
            bytes.push(pick(&mut rng, &all));
        }
        bytes.shuffle(&mut rng);
        Password(String::from_utf8(bytes).expect("the classes are ASCII"))
    }
}

/// A password in memory only: `Debug` hides it; [`Password::reveal`] is
/// the one way out, for the create that sends it and the operator's file.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

/// Initial passwords as a CSV an operator can open in a spreadsheet.
pub fn passwords_csv(passwords: &[IssuedPassword]) -> String {
    let mut csv = CsvExport::new(&["Username", "External id", "Initial password"]);
    for issued in passwords {
        csv.row(&[
            &issued.username,
            &issued.external_id,
            issued.password.reveal(),
        ]);
    }
    csv.finish()
}

/// Writes initial passwords to a new file only its owner can read (never
/// over an existing one): the one time they leave the process.
pub fn write_passwords(passwords: &[IssuedPassword], path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(passwords_csv(passwords).as_bytes()))
}

/// Where an unattended delivery's passwords go: a new file in `folder`
/// named after the target and the moment, e.g.
/// `apps-passwords-20261203T081500.123Z.csv`.
pub fn export_file(folder: &Path, target: &str) -> PathBuf {
    let at = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    folder.join(format!("{target}-passwords-{at}.csv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_the_length_and_every_class_asked_for() {
        for classes in 1..=4 {
            let policy = PasswordPolicy {
                length: 12,
                classes,
            };
            for _ in 0..50 {
                let password = policy.generate();
                let text = password.reveal();
                assert_eq!(text.len(), 12);
                for set in &CLASSES[..classes] {
                    assert!(text.bytes().any(|b| set.contains(&b)), "{classes}: {text}");
                }
                for set in &CLASSES[classes..] {
                    assert!(!text.bytes().any(|b| set.contains(&b)), "{classes}: {text}");
                }
            }
        }
        assert_ne!(
            PasswordPolicy::default().generate(),
            PasswordPolicy::default().generate()
        );
        assert_eq!(
            format!("{:?}", PasswordPolicy::default().generate()),
            "Password(<hidden>)"
        );
    }

    #[test]
    fn a_weak_policy_is_refused_by_field() {
        let error = PasswordPolicy {
            length: 6,
            classes: 3,
        }
        .check()
        .unwrap_err();
        assert!(error.starts_with("passwords.length"), "{error}");
        assert!(
            PasswordPolicy {
                length: 12,
                classes: 5
            }
            .check()
            .is_err()
        );
    }
}
