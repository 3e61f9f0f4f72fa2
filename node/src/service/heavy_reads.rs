//! [`HeavyReads`]: how many expensive reads (`Search`, and `Scan`s of more than
//! [`LARGE_SCAN_LIMIT`] items) run at once on a node.
//!
//! A search reads every embedding and a large scan materialises thousands of records, so
//! a few callers sending many of them could take every core and starve the writes and
//! the Raft traffic of the same process. Past the limit a call is refused at once with
//! RESOURCE_EXHAUSTED naming the limit, rather than queued: a queue would only move the
//! backlog into memory and past the callers' deadlines. Clients retry with back-off.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::status::ServiceError;

/// A `Scan` asking for more items than this counts as a heavy read.
pub const LARGE_SCAN_LIMIT: u32 = 1000;

/// Places for heavy reads; cheap to clone (the places are shared).
#[derive(Debug, Clone)]
pub struct HeavyReads {
    places: Arc<Semaphore>,
    max: usize,
}

impl HeavyReads {
    /// At most `max` heavy reads at once (`max-concurrent-searches`).
    pub fn new(max: usize) -> Self {
        Self {
            places: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A place for one heavy read, held until the permit is dropped; RESOURCE_EXHAUSTED
    /// when every place is taken.
    pub fn start(&self, what: &str) -> Result<OwnedSemaphorePermit, ServiceError> {
        self.places.clone().try_acquire_owned().map_err(|_| {
            ServiceError::ResourceExhausted(format!(
                "{what}: this node already runs {} searches and large scans (max-concurrent-searches); retry later",
                self.max
            ))
        })
    }
}

/// Whether a scan for `limit` items (0 = the default page) is a heavy read.
pub fn is_large_scan(limit: u32) -> bool {
    limit > LARGE_SCAN_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_refused_with_the_limit_named_and_given_back() {
        let heavy = HeavyReads::new(2);
        let a = heavy.start("search").unwrap();
        let _b = heavy.start("scan").unwrap();
        let e = heavy.start("search").unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.to_string().contains("max-concurrent-searches"), "{e}");
        assert!(e.to_string().contains(" 2 "), "{e}");
        drop(a);
        assert!(
            heavy.start("search").is_ok(),
            "a finished read gives its place back"
        );
    }

    #[test]
    fn only_scans_above_the_threshold_are_heavy() {
        assert!(!is_large_scan(0), "0 is the default page of 100");
        assert!(!is_large_scan(LARGE_SCAN_LIMIT));
        assert!(is_large_scan(LARGE_SCAN_LIMIT + 1));
    }
}
