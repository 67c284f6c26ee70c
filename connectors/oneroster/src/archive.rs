//! One drop: a OneRoster CSV zip, its manifest and its tables.
//!
//! The manifest (1EdTech OneRoster 1.1 and 1.2 CSV bindings, "manifest.csv")
//! names the version in `oneroster.version` and how each file is delivered
//! in `file.{name}` (`bulk`, `delta` or `absent`).
//!
//! Tolerated, because real exports do it: files inside one nested folder
//! rather than at the root, a UTF-8 byte order mark before the header,
//! header names in another case, columns this connector does not know,
//! rows shorter than the header, a missing final newline, and a file with
//! a header but no rows whatever its columns (exports write OneRoster 1.0
//! headers for files they leave empty). An optional file that cannot be
//! read is left out with a warning rather than refusing the drop.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

use csv::StringRecord;
use rostersync_connector_sdk::{SyncError, log};
use zip::ZipArchive;

/// How the manifest says a file is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The whole truth: what it does not list is gone.
    Bulk,
    /// Changes, each row `active` or `tobedeleted`.
    Delta,
    Absent,
}

/// The OneRoster version a drop is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// 1.1 (and 1.0): a user's role is `users.csv`'s `role` column.
    V1_1,
    /// 1.2: roles are rows of `roles.csv`.
    V1_2,
}

pub(crate) struct Archive<R> {
    /// The drop's file name, which every error names.
    name: String,
    zip: ZipArchive<R>,
    manifest: BTreeMap<String, String>,
}

impl<R: Read + Seek> Archive<R> {
    pub(crate) fn open(name: &str, reader: R) -> Result<Archive<R>, SyncError> {
        let zip = ZipArchive::new(reader).map_err(|e| {
            SyncError::BadResponse(format!("{name}: not a readable zip file ({e})"))
        })?;
        let mut archive = Archive {
            name: name.to_string(),
            zip,
            manifest: BTreeMap::new(),
        };
        let manifest = archive
            .table("manifest.csv", &["propertyName", "value"])?
            .ok_or_else(|| {
                SyncError::BadResponse(format!(
                    "{name}: there is no manifest.csv, so this is not a OneRoster CSV drop"
                ))
            })?;
        archive.manifest = manifest
            .rows()
            .filter_map(|row| {
                Some((
                    row.get("propertyName")?.to_string(),
                    row.get("value")?.to_string(),
                ))
            })
            .collect();
        Ok(archive)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn property(&self, name: &str) -> Option<&str> {
        self.manifest.get(name).map(String::as_str)
    }

    /// How the manifest delivers `file` (e.g. `users` for `users.csv`).
    pub(crate) fn delivery(&self, file: &str) -> Result<Delivery, SyncError> {
        match self
            .property(&format!("file.{file}"))
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("bulk") => Ok(Delivery::Bulk),
            Some("delta") => Ok(Delivery::Delta),
            None | Some("absent") => Ok(Delivery::Absent),
            Some(other) => Err(SyncError::BadResponse(format!(
                "{}: manifest.csv says `file.{file}` is {other:?}, not bulk, delta or absent",
                self.name
            ))),
        }
    }

    /// The version `manifest.csv` names; a manifest without one is 1.1's
    /// predecessor, read as 1.1.
    pub(crate) fn version(&self) -> Result<Version, SyncError> {
        match self.property("oneroster.version").map(str::trim) {
            None | Some("1.0" | "1.1") => Ok(Version::V1_1),
            Some("1.2") => Ok(Version::V1_2),
            Some(other) => Err(SyncError::BadResponse(format!(
                "{}: manifest.csv says `oneroster.version` is {other:?}, not 1.1 or 1.2",
                self.name
            ))),
        }
    }

    /// An optional file's table, or `None` when it is absent or cannot be
    /// read: its loss costs only what it adds, so the drop is still read.
    pub(crate) fn optional(&mut self, file: &str, required: &[&str]) -> Option<(Delivery, Table)> {
        match self.delivered(file, required) {
            Ok(table) => table,
            Err(error) => {
                let reason = format!("{error:?}");
                log::warn(
                    "an optional file of the drop cannot be read and is left out",
                    &[("drop", &self.name), ("file", file), ("error", &reason)],
                );
                None
            }
        }
    }

    /// A delta drop delivers at least one file as changes.
    pub(crate) fn is_delta(&self) -> bool {
        self.manifest
            .iter()
            .any(|(key, value)| key.starts_with("file.") && value.eq_ignore_ascii_case("delta"))
    }

    /// `file`'s table as the manifest delivers it, or `None` when absent;
    /// a file the manifest lists but the zip lacks is an error.
    pub(crate) fn delivered(
        &mut self,
        file: &str,
        required: &[&str],
    ) -> Result<Option<(Delivery, Table)>, SyncError> {
        let delivery = self.delivery(file)?;
        if delivery == Delivery::Absent {
            return Ok(None);
        }
        let table = self
            .table(&format!("{file}.csv"), required)?
            .ok_or_else(|| {
                SyncError::BadResponse(format!(
                    "{}: manifest.csv lists {file}.csv, but the zip has no {file}.csv",
                    self.name
                ))
            })?;
        Ok(Some((delivery, table)))
    }

    /// A CSV file at the root of the zip or in one folder inside it.
    fn table(&mut self, file: &str, required: &[&str]) -> Result<Option<Table>, SyncError> {
        let nested = format!("/{file}");
        let Some(path) = self
            .zip
            .file_names()
            .filter(|path| *path == file || path.ends_with(&nested))
            .min_by_key(|path| path.matches('/').count())
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let source = format!("{}/{file}", self.name);
        let mut text = String::new();
        self.zip
            .by_name(&path)
            .map_err(|e| e.to_string())
            .and_then(|mut entry| entry.read_to_string(&mut text).map_err(|e| e.to_string()))
            .map_err(|e| SyncError::BadResponse(format!("{source}: cannot be unpacked ({e})")))?;
        Table::parse(source, &text, required).map(Some)
    }
}

/// A parsed CSV file.
pub(crate) struct Table {
    /// `{drop}/{file}`, which every error names.
    source: String,
    /// Column index by lower-case header name.
    columns: HashMap<String, usize>,
    rows: Vec<(u64, StringRecord)>,
}

impl Table {
    pub(crate) fn parse(source: String, text: &str, required: &[&str]) -> Result<Table, SyncError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let bad = |line: u64, e: csv::Error| {
            SyncError::BadResponse(format!("{source}: line {line}: {e}"))
        };
        let columns: HashMap<String, usize> = reader
            .headers()
            .map_err(|e| bad(1, e))?
            .iter()
            .enumerate()
            .map(|(index, name)| (name.trim().to_ascii_lowercase(), index))
            .collect();
        let mut rows = Vec::new();
        let mut record = StringRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(true) => {
                    let line = record.position().map_or(line, |p| p.line());
                    rows.push((line, record.clone()));
                }
                Ok(false) => break,
                Err(e) => return Err(bad(line, e)),
            }
        }
        // A file without rows says nothing, whatever its header.
        if let Some(missing) = required
            .iter()
            .find(|column| !rows.is_empty() && !columns.contains_key(&column.to_ascii_lowercase()))
        {
            return Err(SyncError::BadResponse(format!(
                "{source}: the header has no `{missing}` column"
            )));
        }
        Ok(Table {
            source,
            columns,
            rows,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = TableRow<'_>> {
        self.rows.iter().map(|(line, record)| TableRow {
            table: self,
            line: *line,
            record,
        })
    }
}

/// One data row.
pub(crate) struct TableRow<'a> {
    table: &'a Table,
    line: u64,
    record: &'a StringRecord,
}

impl<'a> TableRow<'a> {
    /// The value, trimmed; blank or absent is `None`.
    pub(crate) fn get(&self, column: &str) -> Option<&'a str> {
        let index = *self.table.columns.get(&column.to_ascii_lowercase())?;
        Some(self.record.get(index)?.trim()).filter(|value| !value.is_empty())
    }

    pub(crate) fn required(&self, column: &str) -> Result<&'a str, SyncError> {
        self.get(column).ok_or_else(|| self.bad(column, "is empty"))
    }

    /// The values of a comma-separated list column.
    pub(crate) fn list(&self, column: &str) -> Vec<&'a str> {
        self.get(column)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn bad(&self, column: &str, problem: &str) -> SyncError {
        SyncError::BadResponse(format!(
            "{}: line {}: `{column}` {problem}",
            self.table.source, self.line
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, required: &[&str]) -> Result<Table, SyncError> {
        Table::parse("drop.zip/users.csv".into(), text, required)
    }

    #[test]
    fn headers_tolerate_a_byte_order_mark_case_and_unknown_columns() {
        let table = parse(
            "\u{feff}SourcedId,givenName,futureColumn,grades\nstu-1, Zoë ,x,\"06,07\"\nstu-2,Léa",
            &["sourcedId", "givenName"],
        )
        .unwrap();
        let rows: Vec<_> = table.rows().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("sourcedId"), Some("stu-1"));
        assert_eq!(rows[0].get("givenName"), Some("Zoë"));
        assert_eq!(rows[0].list("grades"), ["06", "07"]);
        assert_eq!(rows[1].get("grades"), None, "a short row has blanks");
        assert_eq!(rows[1].get("noSuchColumn"), None);
        let Err(SyncError::BadResponse(message)) = rows[1].required("grades") else {
            panic!("expected a bad response");
        };
        assert_eq!(message, "drop.zip/users.csv: line 3: `grades` is empty");
    }

    #[test]
    fn a_missing_required_column_names_the_file_and_column() {
        assert!(
            parse("sourcedId,givenName\n", &["sourcedId", "familyName"]).is_ok(),
            "a file without rows is not checked"
        );
        let Err(SyncError::BadResponse(message)) = parse(
            "sourcedId,givenName\nstu-1,Zoë\n",
            &["sourcedId", "familyName"],
        ) else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "drop.zip/users.csv: the header has no `familyName` column"
        );
    }
}
