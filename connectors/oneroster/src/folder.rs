//! The drop folder: the zips a school has dropped, in the order they
//! arrived, and the cursor that says how far a read got.
//!
//! Drops are ordered by modification time, then by name: schools name
//! their files in every way (`oneroster.zip` overwritten nightly,
//! timestamps, sequence numbers that do not sort as text), but every
//! upload gets a fresh modification time. Only `*.zip` files directly in
//! the folder count; hidden files (an upload still in progress is often
//! `.name.zip.part` or `.name.zip`) are left alone.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rostersync_connector_sdk::SyncError;

/// One zip in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DropFile {
    pub path: PathBuf,
    pub mark: Mark,
}

impl DropFile {
    pub(crate) fn name(&self) -> &str {
        &self.mark.name
    }
}

/// Where a drop stands among the others.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mark {
    modified_nanos: u128,
    name: String,
}

const CURSOR_PREFIX: &str = "oneroster-drop ";

impl Mark {
    /// The cursor naming this drop as the last one read.
    pub(crate) fn cursor(&self) -> String {
        format!("{CURSOR_PREFIX}{} {}", self.modified_nanos, self.name)
    }

    pub(crate) fn from_cursor(cursor: &str) -> Result<Mark, SyncError> {
        cursor
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(nanos, name)| {
                Some(Mark {
                    modified_nanos: nanos.parse().ok()?,
                    name: name.to_string(),
                })
            })
            .ok_or_else(|| {
                SyncError::BadSettings(format!(
                    "the delta cursor {cursor:?} was not written by this connector; run a full read"
                ))
            })
    }
}

/// The zips in `folder`, oldest first.
pub(crate) fn drops(folder: &Path) -> Result<Vec<DropFile>, SyncError> {
    let entries = std::fs::read_dir(folder).map_err(|e| {
        SyncError::BadSettings(format!(
            "the drop folder {} cannot be read ({e}); the connection needs a drop folder the school's OneRoster zips arrive in",
            folder.display()
        ))
    })?;
    let mut drops = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            SyncError::BadSettings(format!(
                "the drop folder {} cannot be listed: {e}",
                folder.display()
            ))
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.to_ascii_lowercase().ends_with(".zip") {
            continue;
        }
        let path = entry.path();
        let unreadable = |e: std::io::Error| {
            SyncError::BadResponse(format!("{name}: the drop cannot be read: {e}"))
        };
        let metadata = std::fs::metadata(&path).map_err(unreadable)?;
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified().map_err(unreadable)?;
        let modified_nanos = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        drops.push(DropFile {
            path,
            mark: Mark {
                modified_nanos,
                name,
            },
        });
    }
    drops.sort_by(|a, b| a.mark.cmp(&b.mark));
    Ok(drops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_the_drop_and_parses_back() {
        let mark = Mark {
            modified_nanos: 1_788_000_000_123_456_789,
            name: "oneroster school 1.zip".into(),
        };
        assert_eq!(
            mark.cursor(),
            "oneroster-drop 1788000000123456789 oneroster school 1.zip"
        );
        assert_eq!(Mark::from_cursor(&mark.cursor()).unwrap(), mark);
        assert!(matches!(
            Mark::from_cursor("oneroster-drop yesterday x.zip"),
            Err(SyncError::BadSettings(_))
        ));
    }

    #[test]
    fn drops_are_zips_in_the_order_they_arrived() {
        let folder = std::env::temp_dir().join(format!("oneroster-folder-{}", std::process::id()));
        std::fs::create_dir_all(folder.join("nested.zip")).unwrap();
        for name in ["b-first.zip", "a-second.ZIP", "notes.txt", ".upload.zip"] {
            std::fs::write(folder.join(name), name).unwrap();
            // Distinct modification times, whatever the clock's resolution.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let names: Vec<String> = drops(&folder)
            .unwrap()
            .iter()
            .map(|d| d.name().to_string())
            .collect();
        std::fs::remove_dir_all(&folder).unwrap();
        assert_eq!(names, ["b-first.zip", "a-second.ZIP"]);
    }

    #[test]
    fn a_missing_folder_is_a_settings_error() {
        let Err(SyncError::BadSettings(message)) = drops(Path::new("/no/such/drop")) else {
            panic!("expected bad settings");
        };
        assert!(
            message.starts_with("the drop folder /no/such/drop cannot be read"),
            "{message}"
        );
    }
}
