//! The request log: every request the server answered, so a test can count writes per resource since a
//! mark (idempotence), or see that a client backed off under failure.

use std::time::SystemTime;

use crate::patch::PatchType;
use crate::request::{RequestInfo, RequestMatch, Verb};

/// One answered request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// Position in the log (starts at 0).
    pub sequence: u64,
    /// When the request arrived.
    pub at: SystemTime,
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// URL query (without `?`).
    pub query: String,
    /// Kubernetes meaning of the request.
    pub info: RequestInfo,
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// HTTP status code answered (200 for a watch that started; 0 while the request is in flight).
    pub status: u16,
    /// Whether the request changed stored state.
    pub changed: bool,
    /// Whether an injected fault answered it.
    pub injected: bool,
}

impl RequestRecord {
    /// The verb, if it was a resource request.
    pub fn verb(&self) -> Option<Verb> {
        self.info.verb
    }

    /// The plural resource, if any.
    pub fn resource(&self) -> Option<&str> {
        self.info.resource.as_deref()
    }

    /// The patch type of a PATCH.
    pub fn patch_type(&self) -> Option<PatchType> {
        self.info.patch_type
    }

    /// Whether it could change stored state: a write verb and not a dry run (whether it did is
    /// [`changed`](Self::changed)).
    pub fn is_write(&self) -> bool {
        self.info.is_write()
    }

    /// Whether it was a dry run (`dryRun=All`).
    pub fn dry_run(&self) -> bool {
        self.info.dry_run
    }

    /// `METHOD resource[/subresource] [namespace/]name [(dry run)]` (`in NAMESPACE` for a namespaced
    /// collection; the path for requests that address no resource), for readable assertions.
    pub fn summary(&self) -> String {
        let Some(resource) = self.resource() else {
            return format!("{} {}", self.method, self.path);
        };
        let resource = match &self.info.subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        let target = match (&self.info.namespace, &self.info.name) {
            (Some(ns), Some(name)) => format!(" {ns}/{name}"),
            (None, Some(name)) => format!(" {name}"),
            (Some(ns), None) => format!(" in {ns}"),
            (None, None) => String::new(),
        };
        let dry = if self.dry_run() { " (dry run)" } else { "" };
        format!("{} {resource}{target}{dry}", self.method)
    }
}

/// A position in the log; counts "since a mark" start after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark(pub u64);

/// All answered requests in arrival order.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Vec<RequestRecord>,
}

impl RequestLog {
    /// Appends a record, numbering it; returns its sequence number. Requests are recorded when they
    /// arrive, so a mark taken after a write became visible always comes after that write's record.
    pub fn push(&mut self, mut record: RequestRecord) -> u64 {
        let sequence = self.records.len() as u64;
        record.sequence = sequence;
        self.records.push(record);
        sequence
    }

    /// Fills in how a recorded request ended.
    pub fn finish(&mut self, sequence: u64, status: u16, changed: bool) {
        if let Some(record) = self.records.get_mut(sequence as usize) {
            record.status = status;
            record.changed = changed;
        }
    }

    /// The position after the last record.
    pub fn mark(&self) -> LogMark {
        LogMark(self.records.len() as u64)
    }

    /// Records from `mark` on.
    pub fn since(&self, mark: LogMark) -> &[RequestRecord] {
        let start = (mark.0 as usize).min(self.records.len());
        &self.records[start..]
    }

    /// Records from `mark` on that the matcher selects.
    pub fn matching(&self, mark: LogMark, matcher: &RequestMatch) -> Vec<RequestRecord> {
        self.since(mark)
            .iter()
            .filter(|r| matcher.matches(&r.info))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verb: Verb, resource: &str) -> RequestRecord {
        RequestRecord {
            sequence: 0,
            at: SystemTime::now(),
            method: "PATCH".into(),
            path: format!("/apis/apps/v1/namespaces/gpu/{resource}/x"),
            query: String::new(),
            info: RequestInfo {
                verb: Some(verb),
                resource: Some(resource.into()),
                ..RequestInfo::default()
            },
            field_manager: None,
            user_agent: "test".into(),
            status: 200,
            changed: true,
            injected: false,
        }
    }

    #[test]
    fn summaries_read_like_the_request() {
        let mut apply = record(Verb::Patch, "daemonsets");
        apply.info.namespace = Some("gpu".into());
        apply.info.name = Some("agent".into());
        assert_eq!(apply.summary(), "PATCH daemonsets gpu/agent");
        apply.info.dry_run = true;
        assert_eq!(apply.summary(), "PATCH daemonsets gpu/agent (dry run)");
        assert!(!apply.is_write());
        let mut status = record(Verb::Patch, "configs");
        status.info.subresource = Some("status".into());
        status.info.name = Some("default".into());
        assert_eq!(status.summary(), "PATCH configs/status default");
        let mut list = record(Verb::List, "pods");
        list.method = "GET".into();
        list.info.namespace = Some("gpu".into());
        assert_eq!(list.summary(), "GET pods in gpu");
        let discovery = RequestRecord {
            info: RequestInfo::default(),
            path: "/apis/resource.k8s.io".into(),
            method: "GET".into(),
            ..record(Verb::Get, "x")
        };
        assert_eq!(discovery.summary(), "GET /apis/resource.k8s.io");
    }

    #[test]
    fn counts_since_a_mark() {
        let mut log = RequestLog::default();
        log.push(record(Verb::Patch, "daemonsets"));
        let mark = log.mark();
        log.push(record(Verb::Get, "daemonsets"));
        log.push(record(Verb::Patch, "daemonsets"));
        log.push(record(Verb::Patch, "pods"));
        assert_eq!(log.since(mark).len(), 3);
        assert_eq!(log.since(mark)[0].sequence, 1);
        assert_eq!(
            log.matching(mark, &RequestMatch::resource("daemonsets").writes())
                .len(),
            1
        );
        assert_eq!(
            log.matching(LogMark(0), &RequestMatch::any().writes())
                .len(),
            3
        );
        assert!(log.since(LogMark(99)).is_empty());
    }
}
