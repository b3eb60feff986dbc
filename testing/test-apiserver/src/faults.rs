//! Fault injection: make chosen requests fail (500, 409, 429 with Retry-After, any code) or wait, so a
//! test can prove the operator converges and does not hot-loop under failure; or flip a feature gate
//! when a chosen request arrives (API server instances with skewed gates behind one load balancer).

use std::time::Duration;

use crate::error::{ApiError, StatusReason};
use crate::request::{RequestInfo, RequestMatch};

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this error instead of handling the request.
    Fail(ApiError),
    /// Handle the request after this delay.
    Delay(Duration),
    /// Set the `DRAAdminAccess` feature gate, then handle the request.
    AdminAccess(bool),
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    matcher: RequestMatch,
    action: FaultAction,
    remaining: Option<u32>,
}

impl Fault {
    /// Fails matching requests with `code` (500, 409, 503, …) and a Status body saying it was injected.
    /// Applies to every matching request until [`Fault::times`] limits it.
    pub fn fail(matcher: RequestMatch, code: u16) -> Self {
        let reason = StatusReason::from_code(code);
        let mut error = ApiError::new(
            reason,
            format!("injected fault: {} {}", code, reason.as_str()),
        );
        error.code = code;
        Self {
            matcher,
            action: FaultAction::Fail(error),
            remaining: None,
        }
    }

    /// Fails matching requests with 429 TooManyRequests and `Retry-After: seconds`.
    pub fn throttle(matcher: RequestMatch, retry_after_seconds: u32) -> Self {
        let mut error = ApiError::new(
            StatusReason::TooManyRequests,
            "injected fault: too many requests, please try again later",
        );
        error.retry_after_seconds = Some(retry_after_seconds);
        Self {
            matcher,
            action: FaultAction::Fail(error),
            remaining: None,
        }
    }

    /// Fails matching requests with exactly this error.
    pub fn error(matcher: RequestMatch, error: ApiError) -> Self {
        Self {
            matcher,
            action: FaultAction::Fail(error),
            remaining: None,
        }
    }

    /// Delays matching requests (they then run normally).
    pub fn delay(matcher: RequestMatch, delay: Duration) -> Self {
        Self {
            matcher,
            action: FaultAction::Delay(delay),
            remaining: None,
        }
    }

    /// From the first matching request on (that request included), the `DRAAdminAccess` feature gate is
    /// `enabled`: what a client sees when the next request reaches an API server instance whose gate differs
    /// (HA skew, a rollout). `.dry_run(false)` on the matcher makes a dry run and its real write disagree.
    pub fn admin_access(matcher: RequestMatch, enabled: bool) -> Self {
        Self {
            matcher,
            action: FaultAction::AdminAccess(enabled),
            remaining: Some(1),
        }
    }

    /// Applies only to the next `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.remaining = Some(count);
        self
    }
}

/// What the faults decide for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Total delay before answering.
    pub delay: Duration,
    /// The injected error, if the request fails.
    pub failure: Option<ApiError>,
    /// The `DRAAdminAccess` gate to set before the request is handled.
    pub admin_access: Option<bool>,
}

/// The active faults, consulted in injection order.
#[derive(Debug, Default)]
pub struct Faults {
    active: Vec<Fault>,
}

impl Faults {
    /// Adds a fault.
    pub fn inject(&mut self, fault: Fault) {
        self.active.push(fault);
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// Decides for one request: all matching delays add up; the first matching failure wins. Counted
    /// faults are used up as they match.
    pub fn decide(&mut self, info: &RequestInfo) -> Verdict {
        let mut verdict = Verdict::default();
        for fault in self.active.iter_mut().filter(|f| f.matcher.matches(info)) {
            match &fault.action {
                FaultAction::Delay(delay) => verdict.delay += *delay,
                FaultAction::AdminAccess(enabled) => verdict.admin_access = Some(*enabled),
                FaultAction::Fail(error) if verdict.failure.is_none() => {
                    verdict.failure = Some(error.clone())
                }
                FaultAction::Fail(_) => continue,
            }
            if let Some(remaining) = fault.remaining.as_mut() {
                *remaining = remaining.saturating_sub(1);
            }
        }
        self.active.retain(|f| f.remaining != Some(0));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Verb;

    fn patch(resource: &str) -> RequestInfo {
        RequestInfo {
            verb: Some(Verb::Patch),
            resource: Some(resource.into()),
            ..RequestInfo::default()
        }
    }

    #[test]
    fn counted_failures_run_out() {
        let mut faults = Faults::default();
        faults.inject(
            Fault::fail(RequestMatch::resource("daemonsets").verb(Verb::Patch), 500).times(2),
        );
        assert_eq!(faults.decide(&patch("pods")).failure, None);
        assert_eq!(
            faults.decide(&patch("daemonsets")).failure.unwrap().code,
            500
        );
        assert_eq!(
            faults.decide(&patch("daemonsets")).failure.unwrap().reason,
            StatusReason::InternalError
        );
        assert_eq!(faults.decide(&patch("daemonsets")).failure, None);
    }

    #[test]
    fn throttling_carries_retry_after_and_delays_add_up() {
        let mut faults = Faults::default();
        faults.inject(Fault::delay(RequestMatch::any(), Duration::from_millis(10)));
        faults.inject(Fault::delay(
            RequestMatch::resource("pods"),
            Duration::from_millis(5),
        ));
        faults.inject(Fault::throttle(RequestMatch::resource("pods"), 3).times(1));
        let verdict = faults.decide(&patch("pods"));
        assert_eq!(verdict.delay, Duration::from_millis(15));
        let error = verdict.failure.unwrap();
        assert_eq!((error.code, error.retry_after_seconds), (429, Some(3)));
        assert_eq!(faults.decide(&patch("pods")).failure, None);
        faults.clear();
        assert_eq!(faults.decide(&patch("pods")), Verdict::default());
    }

    #[test]
    fn a_gate_switch_fires_once_on_its_request() {
        let mut faults = Faults::default();
        faults.inject(Fault::admin_access(
            RequestMatch::resource("resourceclaimtemplates").dry_run(false),
            false,
        ));
        let dry = RequestInfo {
            dry_run: true,
            ..patch("resourceclaimtemplates")
        };
        assert_eq!(faults.decide(&dry).admin_access, None);
        assert_eq!(
            faults.decide(&patch("resourceclaimtemplates")).admin_access,
            Some(false)
        );
        assert_eq!(
            faults.decide(&patch("resourceclaimtemplates")),
            Verdict::default()
        );
    }

    #[test]
    fn a_409_fault_reads_as_a_conflict() {
        let mut faults = Faults::default();
        faults.inject(Fault::fail(RequestMatch::any().status(), 409));
        let status = RequestInfo {
            subresource: Some("status".into()),
            ..patch("configs")
        };
        assert_eq!(
            faults.decide(&status).failure.unwrap().reason,
            StatusReason::Conflict
        );
    }
}
