//! How far a run has got while it goes: what the running-jobs view and the
//! command line's progress bar show.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    #[default]
    Starting,
    /// Pulling batches from the connector.
    Reading,
    /// The read is complete: working out changes, holds and accounts.
    Checking,
    /// Writing the run in one transaction.
    Applying,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Reading => "reading",
            Self::Checking => "checking",
            Self::Applying => "applying",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: Phase,
    /// Batches pulled; a connector sends one per provider page, or several
    /// for a page too big for one.
    pub batches: u64,
    pub records_read: u64,
    /// Provider pages read, as the connector reports them.
    #[serde(default)]
    pub pages_done: u32,
    /// Provider pages in all, when the provider says (Wonde's and
    /// Scholarpack's page counts, a OneRoster drop's files).
    #[serde(default)]
    pub pages_total: Option<u32>,
    /// For a full read: how many records the last full read of the
    /// connection found. Providers do not say up front, so this is the best
    /// estimate there is.
    pub estimated_total: Option<u64>,
}

impl Progress {
    /// "reading: page 4 of 10, 12400 of about 25000 records".
    pub fn describe(&self) -> String {
        let pages = match (self.pages_done, self.pages_total) {
            (0, None) => String::new(),
            (done, Some(total)) => format!("page {done} of {total}, "),
            (done, None) => format!("page {done}, "),
        };
        let records = match self.estimated_total {
            Some(total) => format!("{} of about {total} records", self.records_read),
            None => format!("{} records", self.records_read),
        };
        format!("{}: {pages}{records}", self.phase.as_str())
    }

    /// The share done, from the provider's page count where it gives
    /// one, else from the last full read's size.
    pub fn fraction(&self) -> Option<f64> {
        match (self.pages_total, self.estimated_total) {
            (Some(total), _) if total > 0 => {
                Some(f64::from(self.pages_done.min(total)) / f64::from(total))
            }
            (_, Some(total)) if total > 0 => {
                Some(self.records_read.min(total) as f64 / total as f64)
            }
            _ => None,
        }
    }
}

/// Told each time a run's progress changes; must be cheap, as it is called
/// once per batch.
pub type Observer<'a> = &'a (dyn Fn(&Progress) + Sync);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_pages_and_records_and_prefers_the_providers_page_count() {
        let mut progress = Progress {
            phase: Phase::Reading,
            batches: 5,
            records_read: 1200,
            ..Progress::default()
        };
        assert_eq!(progress.describe(), "reading: 1200 records");
        assert_eq!(progress.fraction(), None);
        progress.estimated_total = Some(4800);
        assert_eq!(progress.describe(), "reading: 1200 of about 4800 records");
        assert_eq!(progress.fraction(), Some(0.25));
        progress.pages_done = 3;
        assert_eq!(
            progress.describe(),
            "reading: page 3, 1200 of about 4800 records"
        );
        progress.pages_total = Some(4);
        assert_eq!(
            progress.describe(),
            "reading: page 3 of 4, 1200 of about 4800 records"
        );
        assert_eq!(progress.fraction(), Some(0.75));
    }
}
