//! Paginated endpoints, read one page per batch.

use std::collections::VecDeque;

use crate::{RosterRecord, SyncError, log};

/// One page of an endpoint: its records and where the next page is.
pub struct Page {
    pub records: Vec<RosterRecord>,
    /// The next page's URL; `None` on the last page.
    pub next: Option<String>,
    /// How many pages the endpoint has, when the provider says.
    pub total_pages: Option<u32>,
}

/// Reads a queue of endpoints in order, following each one's pages, one
/// page per batch, and reports progress to the host. `E` says which
/// endpoint a URL belongs to, so the page reader knows how to parse it.
pub struct Pager<E> {
    pending: VecDeque<(E, String)>,
    pages_done: u32,
    pages_total: Option<u32>,
    records_done: u64,
}

impl<E> Pager<E> {
    pub fn new(endpoints: impl IntoIterator<Item = (E, String)>) -> Self {
        Self {
            pending: endpoints.into_iter().collect(),
            pages_done: 0,
            pages_total: None,
            records_done: 0,
        }
    }

    /// Adds an endpoint to read after the queued ones.
    pub fn push(&mut self, endpoint: E, url: String) {
        self.pending.push_back((endpoint, url));
    }

    /// Reads the next page with `read_page`; `None` when every endpoint is
    /// exhausted. A page that points at itself is a provider bug, reported
    /// rather than looped on forever.
    pub fn next_batch(
        &mut self,
        mut read_page: impl FnMut(&E, &str) -> Result<Page, SyncError>,
    ) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        let Some((endpoint, url)) = self.pending.pop_front() else {
            return Ok(None);
        };
        let page = read_page(&endpoint, &url)?;
        if let Some(next) = page.next {
            if next == url {
                return Err(SyncError::BadResponse(format!(
                    "{url}: the next page link points back at the same page"
                )));
            }
            self.pending.push_front((endpoint, next));
        }
        self.pages_done += 1;
        self.pages_total = page.total_pages.or(self.pages_total);
        self.records_done += page.records.len() as u64;
        log::progress(self.pages_done, self.pages_total, self.records_done);
        Ok(Some(page.records))
    }
}
