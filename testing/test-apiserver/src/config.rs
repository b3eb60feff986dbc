//! How a test wants its server: Kubernetes version, DRA versions served, feature gates, seed objects.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::catalog::DraVersion;
use crate::exec::{ExecRule, ExecRules};

/// Server configuration; `Config::default()` is a Kubernetes v1.35.0 cluster with **no**
/// `resource.k8s.io` served, DRA admin access on, garbage collection on, a random port and a kubeconfig
/// in a temporary folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) kubernetes_version: String,
    pub(crate) dra_versions: Vec<DraVersion>,
    pub(crate) admin_access: bool,
    pub(crate) garbage_collection: bool,
    pub(crate) port: u16,
    pub(crate) kubeconfig_path: Option<PathBuf>,
    pub(crate) bookmark_interval: Duration,
    pub(crate) watch_history: usize,
    pub(crate) objects: Vec<Value>,
    pub(crate) exec: ExecRules,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            kubernetes_version: "v1.35.0".into(),
            dra_versions: Vec::new(),
            admin_access: true,
            garbage_collection: true,
            port: 0,
            kubeconfig_path: None,
            bookmark_interval: Duration::from_secs(5),
            watch_history: 10_000,
            objects: Vec::new(),
            exec: ExecRules::default(),
        }
    }
}

impl Config {
    /// `gitVersion` served at `/version` (`v1.34.2`).
    pub fn kubernetes_version(mut self, git_version: &str) -> Self {
        self.kubernetes_version = git_version.to_string();
        self
    }

    /// Serves `resource.k8s.io` at these versions (empty: the group is not served at all).
    pub fn dra_versions(mut self, versions: &[DraVersion]) -> Self {
        self.dra_versions = versions.to_vec();
        self
    }

    /// The `DRAAdminAccess` feature gate: off drops `adminAccess` from claims and claim templates on write,
    /// silently, as a real API server does.
    pub fn admin_access(mut self, enabled: bool) -> Self {
        self.admin_access = enabled;
        self
    }

    /// Owner-reference garbage collection (on by default).
    pub fn garbage_collection(mut self, enabled: bool) -> Self {
        self.garbage_collection = enabled;
        self
    }

    /// Listen on this port of 127.0.0.1 (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Write the kubeconfig here instead of a temporary folder (the file is left in place on stop).
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig_path = Some(path.into());
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 5 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// How many changes are kept for watches resuming from a resourceVersion (default 10 000); older
    /// resourceVersions get 410 Gone.
    pub fn watch_history(mut self, changes: usize) -> Self {
        self.watch_history = changes.max(1);
        self
    }

    /// An object to create before the server answers its first request (kept as given, `status` included).
    /// Namespaces `default`, `kube-system`, `kube-public` and `kube-node-lease` always exist.
    pub fn object(mut self, object: Value) -> Self {
        self.objects.push(object);
        self
    }

    /// Several seed objects, in order (create a namespace before its contents, a CRD before its resources).
    pub fn objects(mut self, objects: impl IntoIterator<Item = Value>) -> Self {
        self.objects.extend(objects);
        self
    }

    /// What `pods/exec` runs: rules in order, first match wins (see [`ExecRules`]). Replaces earlier
    /// rules and user.
    pub fn exec_rules(mut self, rules: ExecRules) -> Self {
        self.exec = rules;
        self
    }

    /// Appends one exec rule.
    pub fn exec_rule(mut self, rule: ExecRule) -> Self {
        self.exec.rules.push(rule);
        self
    }

    /// The user named in `pods/exec` 403 messages (default `system:anonymous`).
    pub fn exec_user(mut self, user: &str) -> Self {
        self.exec.user = user.to_string();
        self
    }
}
