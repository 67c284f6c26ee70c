//! Paginated endpoints, read one page per batch.

use std::collections::VecDeque;

use crate::{RosterRecord, SyncError, log};

/// The most records a batch carries: well under the host's default limit.
pub const MAX_BATCH: usize = 5_000;

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
    /// The rest of a page too big for one batch.
    overflow: VecDeque<Vec<RosterRecord>>,
    pages_done: u32,
    pages_total: Option<u32>,
    records_done: u64,
}

impl<E> Pager<E> {
    pub fn new(endpoints: impl IntoIterator<Item = (E, String)>) -> Self {
        Self {
            pending: endpoints.into_iter().collect(),
            overflow: VecDeque::new(),
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
    ///
    /// A page bigger than [`MAX_BATCH`] records (a page of classes with
    /// every member included, say) goes out over several batches, so no
    /// batch breaks the host's per-batch limit.
    pub fn next_batch(
        &mut self,
        mut read_page: impl FnMut(&E, &str) -> Result<Page, SyncError>,
    ) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if let Some(rest) = self.overflow.pop_front() {
            return Ok(Some(rest));
        }
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
        let mut records = page.records;
        while records.len() > MAX_BATCH {
            let rest = records.split_off(records.len() - (records.len() - 1) % MAX_BATCH - 1);
            self.overflow.push_front(rest);
        }
        Ok(Some(records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Person, Role};

    #[test]
    fn a_huge_page_goes_out_in_order_over_several_batches() {
        let people = |range: std::ops::Range<usize>| {
            range
                .map(|n| RosterRecord::Person(Person::new(n.to_string(), Role::Student)))
                .collect::<Vec<_>>()
        };
        let mut pager = Pager::new([((), "https://x/1".to_string())]);
        let total = 2 * MAX_BATCH + 7;
        let mut read = |_: &(), _: &str| {
            Ok(Page {
                records: people(0..total),
                next: None,
                total_pages: Some(1),
            })
        };
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        while let Some(batch) = pager.next_batch(&mut read).unwrap() {
            sizes.push(batch.len());
            ids.extend(batch.into_iter().map(|r| match r {
                RosterRecord::Person(p) => p.id,
                _ => unreachable!(),
            }));
        }
        assert_eq!(sizes, [MAX_BATCH, MAX_BATCH, 7]);
        assert_eq!(ids, (0..total).map(|n| n.to_string()).collect::<Vec<_>>());
    }
}
