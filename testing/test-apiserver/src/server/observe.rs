//! What a test uses to observe and disturb the server: waiting on state, injected faults, closing
//! watches, compacting history, and the request log.

use std::time::{Duration, Instant};

use super::TestApiServer;
use crate::error::Error;
use crate::faults::Fault;
use crate::request::RequestMatch;
use crate::request_log::{LogMark, RequestRecord};

impl TestApiServer {
    // --- Waiting ----------------------------------------------------------------------------------

    /// Waits until `probe` returns `Some`, re-checking on every stored change (and every 50 ms for
    /// probes that look at the request log). `what` names the condition in the timeout error.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        let mut revisions = self.state().store.revisions();
        loop {
            if let Some(found) = probe(self) {
                return Ok(found);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    timeout,
                });
            }
            let _ = tokio::time::timeout(
                (deadline - now).min(Duration::from_millis(50)),
                revisions.changed(),
            )
            .await;
        }
    }

    /// [`wait_for`](Self::wait_for) from synchronous code (polls every 20 ms).
    pub fn wait_for_blocking<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = probe(self) {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // --- Faults -----------------------------------------------------------------------------------

    /// Adds a fault (see [`Fault`]); faults apply in injection order until used up or cleared.
    pub fn inject(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .expect("faults lock")
            .inject(fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().expect("faults lock").clear();
    }

    /// Ends the open watch streams the matcher selects (`RequestMatch::any()`: all); returns how many.
    /// Clients see the stream end cleanly, as when an API server restarts.
    pub fn close_watches(&self, matcher: &RequestMatch) -> usize {
        self.shared
            .watches
            .lock()
            .expect("watches lock")
            .close(matcher)
    }

    /// How many watch streams the matcher selects are open.
    pub fn open_watches(&self, matcher: &RequestMatch) -> usize {
        self.shared
            .watches
            .lock()
            .expect("watches lock")
            .count(matcher)
    }

    /// Forgets the change history: watches resuming from an earlier resourceVersion get 410 Gone and
    /// must re-list.
    pub fn compact_history(&self) {
        self.state().store.compact();
    }

    // --- Request log ------------------------------------------------------------------------------

    /// A mark to count requests from.
    pub fn mark(&self) -> LogMark {
        self.shared.log.lock().expect("log lock").mark()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.requests_since(LogMark(0))
    }

    /// Requests answered since `mark`.
    pub fn requests_since(&self, mark: LogMark) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .expect("log lock")
            .since(mark)
            .to_vec()
    }

    /// Requests since `mark` that the matcher selects.
    pub fn matching_requests(&self, mark: LogMark, matcher: &RequestMatch) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .expect("log lock")
            .matching(mark, matcher)
    }

    /// How many requests since `mark` the matcher selects (e.g. `RequestMatch::resource("daemonsets").writes()`).
    pub fn count(&self, mark: LogMark, matcher: &RequestMatch) -> usize {
        self.matching_requests(mark, matcher).len()
    }

    /// How many requests since `mark` the matcher selects that changed stored state (no-op applies excluded).
    pub fn count_changes(&self, mark: LogMark, matcher: &RequestMatch) -> usize {
        self.matching_requests(mark, matcher)
            .iter()
            .filter(|r| r.changed)
            .count()
    }
}
