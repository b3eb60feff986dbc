//! One test cluster: the test API server, the real `operator` binary running against it as a
//! process, and `kubectl`. Waits poll the server's state (never fixed sleeps) and fail fast when the
//! operator process exits; any failure prints the operator's log, the configs, the agent objects and
//! the last API requests, so the reader sees what the operator did, not just what was missing.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_apiserver::{Config, DraVersion, TestApiServer};

use crate::fixtures::{GDC_API_VERSION, GDC_KIND, NAMESPACE, agent_name, dra_version};

/// How long a scenario waits for the operator to converge after a change (generous: CI has 2 cores
/// shared by two tests at a time).
pub const CONVERGE: Duration = Duration::from_secs(20);

/// A test API server with the operator running against it.
pub struct Cluster {
    /// The API server: state, faults and the request log.
    pub server: TestApiServer,
    operator: Mutex<Child>,
    args: Vec<String>,
    dir: PathBuf,
    metrics_port: u16,
}

impl Cluster {
    /// Starts the server as `config` describes, then the operator with `--resync-interval=1s` (unless
    /// `operator_args` sets it) and a metrics port of its own, plus `operator_args`.
    pub fn start(config: Config, operator_args: &[&str]) -> Self {
        Self::start_with(config, operator_args, |_| {})
    }

    /// [`Cluster::start`], running `prepare` on the server before the operator starts (to inject
    /// faults its very first requests meet).
    pub fn start_with(
        config: Config,
        operator_args: &[&str],
        prepare: impl FnOnce(&TestApiServer),
    ) -> Self {
        let server = TestApiServer::start_blocking(config).expect("the test API server starts");
        prepare(&server);
        let dir = unique_dir();
        let metrics_port = free_port();
        let mut args = vec![format!("--metrics-addr=127.0.0.1:{metrics_port}")];
        if !operator_args
            .iter()
            .any(|a| a.starts_with("--resync-interval"))
        {
            args.push("--resync-interval=1s".into());
        }
        args.extend(operator_args.iter().map(|a| (*a).to_owned()));
        let operator = spawn_operator(&args, server.kubeconfig_path(), &dir);
        Self {
            server,
            operator: Mutex::new(operator),
            args,
            dir,
            metrics_port,
        }
    }

    /// Stops the operator as [`Cluster::stop_operator`] does and starts a new process with the same
    /// flags (an upgrade or a rescheduled pod).
    pub fn restart_operator(&self) {
        self.stop_operator();
        let mut operator = self.operator.lock().unwrap_or_else(|p| p.into_inner());
        *operator = spawn_operator(&self.args, self.server.kubeconfig_path(), &self.dir);
    }

    // --- Waiting ---------------------------------------------------------------------------------

    /// Polls `probe` until it returns `Some` (every 20 ms). Fails when `timeout` passes or the
    /// operator process exits first.
    pub fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&TestApiServer) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            if let Some(found) = probe(&self.server) {
                return found;
            }
            if let Some(status) = self.exit_status() {
                panic!("the operator exited ({status}) while the test waited for {what}");
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails if `holds` turns false at any point during `duration` (a negative check: something
    /// must not happen). Also fails if the operator exits.
    pub fn assert_stays(
        &self,
        what: &str,
        duration: Duration,
        mut holds: impl FnMut(&TestApiServer) -> bool,
    ) {
        let started = Instant::now();
        while started.elapsed() < duration {
            assert!(
                holds(&self.server),
                "{what} stopped holding after {:?}",
                started.elapsed()
            );
            self.assert_operator_running();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The config's status once the operator has written one for its current generation and
    /// `accept` agrees with it.
    pub fn wait_status(&self, config: &str, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        self.wait(
            &format!("GpuDiagnosticsConfig {config}: {what}"),
            CONVERGE,
            |s| {
                let object = s.get_object(GDC_API_VERSION, GDC_KIND, None, config)?;
                let status = &object["status"];
                (status["observedGeneration"] == object["metadata"]["generation"] && accept(status))
                    .then(|| status.clone())
            },
        )
    }

    /// The config's agent DaemonSet once `accept` agrees with it.
    pub fn wait_daemon_set(
        &self,
        config: &str,
        what: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait(
            &format!("DaemonSet {NAMESPACE}/{}: {what}", agent_name(config)),
            CONVERGE,
            |s| {
                s.get_object("apps/v1", "DaemonSet", Some(NAMESPACE), &agent_name(config))
                    .filter(|ds| accept(ds))
            },
        )
    }

    // --- Reading state ---------------------------------------------------------------------------

    /// The config as stored.
    pub fn config(&self, name: &str) -> Option<Value> {
        self.server
            .get_object(GDC_API_VERSION, GDC_KIND, None, name)
    }

    /// The config's agent DaemonSet.
    pub fn daemon_set(&self, config: &str) -> Option<Value> {
        self.server
            .get_object("apps/v1", "DaemonSet", Some(NAMESPACE), &agent_name(config))
    }

    /// The config's generated ResourceClaimTemplate, as served at `version`.
    pub fn claim_template(&self, version: DraVersion, config: &str) -> Option<Value> {
        self.server.get_object(
            &format!("resource.k8s.io/{}", dra_version(version)),
            "ResourceClaimTemplate",
            Some(NAMESPACE),
            &agent_name(config),
        )
    }

    /// Plays the DaemonSet controller: records that the current DaemonSet spec is scheduled on
    /// `desired` nodes and ready on `ready` of them (the test server runs no controllers).
    pub fn daemon_set_rolled_out(&self, config: &str, desired: i64, ready: i64) {
        self.server
            .modify_object(
                "apps/v1",
                "DaemonSet",
                Some(NAMESPACE),
                &agent_name(config),
                |ds| {
                    ds["status"] = serde_json::json!({
                        "observedGeneration": ds["metadata"]["generation"],
                        "currentNumberScheduled": desired, "desiredNumberScheduled": desired,
                        "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
                        "updatedNumberScheduled": desired,
                    });
                },
            )
            .expect("the DaemonSet exists to roll out");
    }

    // --- kubectl ---------------------------------------------------------------------------------

    /// Runs `kubectl` (from `.tools/`, or `$KUBECTL`) against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let output = Command::new(kubectl_path())
            .args(args)
            .env("KUBECONFIG", self.server.kubeconfig_path())
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs");
        self.kubectl_log(args, &output);
        output
    }

    /// Runs `kubectl` and returns its stdout; fails the test on a non-zero exit.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "`kubectl {}` failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn kubectl_log(&self, args: &[&str], output: &Output) {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kubectl.log"))
        {
            let _ = writeln!(
                file,
                "$ kubectl {} → {}\n{}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// A folder private to this test (kubectl's HOME, logs, files to apply).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    // --- The operator process --------------------------------------------------------------------

    fn exit_status(&self) -> Option<ExitStatus> {
        self.operator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_wait()
            .expect("the operator process can be polled")
    }

    /// Fails if the operator process has exited.
    pub fn assert_operator_running(&self) {
        if let Some(status) = self.exit_status() {
            panic!("the operator exited ({status}); it must keep running through every scenario");
        }
    }

    /// Reconciles the operator has run (its `reconciliations_total` metric): what the tests count
    /// instead of requests, since a reconcile with nothing to do reads most objects from caches.
    /// Zero while a (re)started operator does not serve its metrics yet.
    pub fn reconciliations(&self) -> u64 {
        if std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).is_err() {
            return 0;
        }
        self.metrics()
            .lines()
            .find_map(|line| line.strip_prefix("k8s_mcp_agent_operator_reconciliations_total "))
            .and_then(|n| n.trim().parse().ok())
            .expect("the operator exposes k8s_mcp_agent_operator_reconciliations_total")
    }

    /// `GET` on the operator's metrics endpoint; returns the body of a 200 answer.
    pub fn metrics(&self) -> String {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .expect("the operator serves --metrics-addr");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("request sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// Fails if the operator made a request the chart's ClusterRole (generated from
    /// `operator::rbac::RBAC_RULES`) would forbid: a real cluster would have answered 403.
    pub fn assert_rbac_covers_operator_requests(&self) {
        for request in self.server.requests() {
            let (Some(verb), Some(resource)) = (request.verb(), request.resource()) else {
                continue; // discovery: allowed to every authenticated user
            };
            if request.user_agent.starts_with("kubectl") {
                continue;
            }
            let resource = match &request.info.subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource.to_owned(),
            };
            let group = request.info.group.as_deref().unwrap_or_default();
            assert!(
                operator::rbac::allows(
                    operator::rbac::RBAC_RULES,
                    group,
                    &resource,
                    verb.as_str(),
                    request.info.name.as_deref()
                ),
                "RBAC_RULES do not allow {verb} {group}/{resource} {:?} ({} {})",
                request.info.name,
                request.method,
                request.path
            );
        }
    }

    /// Checks the operator's requests against its RBAC rules, then stops it with SIGTERM, as
    /// Kubernetes does, and checks it exits 0 within 15 s.
    pub fn stop_operator(&self) {
        self.assert_operator_running();
        self.assert_rbac_covers_operator_requests();
        let pid = self.operator.lock().unwrap_or_else(|p| p.into_inner()).id();
        let pid = libc::pid_t::try_from(pid).expect("pids fit pid_t");
        // SAFETY: kill(2) on the child this harness spawned and has not reaped; no memory involved.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGTERM) },
            0,
            "SIGTERM delivered"
        );
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.exit_status() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the operator did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "the operator exited with {status} on SIGTERM"
        );
    }

    /// The operator's log so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("operator.log")).unwrap_or_default()
    }

    /// Everything a reader needs to judge a failure.
    fn diagnostics(&self) -> String {
        let mut out = String::new();
        let state = match self.exit_status() {
            Some(status) => format!("exited: {status}"),
            None => "running".into(),
        };
        let _ = writeln!(
            out,
            "\n===== operator ({state}); files kept in {}",
            self.dir.display()
        );
        let log = self.operator_log();
        let lines: Vec<&str> = log.lines().collect();
        let _ = writeln!(out, "----- operator log (last 80 of {} lines)", lines.len());
        for line in &lines[lines.len().saturating_sub(80)..] {
            let _ = writeln!(out, "{line}");
        }
        let mut objects: Vec<Value> = self.server.list_objects(GDC_API_VERSION, GDC_KIND, None);
        objects.extend(self.server.list_objects("apps/v1", "DaemonSet", None));
        for version in ["v1", "v1beta2", "v1beta1"] {
            let templates = self.server.list_objects(
                &format!("resource.k8s.io/{version}"),
                "ResourceClaimTemplate",
                None,
            );
            if !templates.is_empty() {
                objects.extend(templates);
                break;
            }
        }
        objects.extend(self.server.get_object("v1", "Namespace", None, NAMESPACE));
        for object in objects {
            let title = format!(
                "{} {}",
                object["kind"].as_str().unwrap_or("?"),
                object["metadata"]["name"].as_str().unwrap_or("?")
            );
            let yaml = serde_yaml::to_string(&without_managed_fields(object)).unwrap_or_default();
            let _ = writeln!(out, "----- {title}\n{yaml}");
        }
        let requests = self.server.requests();
        let _ = writeln!(out, "----- last 40 of {} API requests", requests.len());
        for r in &requests[requests.len().saturating_sub(40)..] {
            let query = if r.query.is_empty() {
                String::new()
            } else {
                format!("?{}", r.query)
            };
            let injected = if r.injected { " (injected fault)" } else { "" };
            let changed = if r.changed { " changed" } else { "" };
            let _ = writeln!(
                out,
                "{} {}{} → {}{}{}",
                r.method, r.path, query, r.status, changed, injected
            );
        }
        if let Ok(kubectl) = std::fs::read_to_string(self.dir.join("kubectl.log")) {
            let _ = writeln!(out, "----- kubectl runs\n{kubectl}");
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("{}", self.diagnostics());
        }
        let mut child = self.operator.lock().unwrap_or_else(|p| p.into_inner());
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !failed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The condition of `type_` in a status (`Null` when absent).
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// Whether a status has condition `type_` with this status and reason.
pub fn has_condition(status: &Value, type_: &str, state: &str, reason: &str) -> bool {
    let c = condition(status, type_);
    c["status"] == state && c["reason"] == reason
}

/// The agent container of a DaemonSet.
pub fn agent_container(daemon_set: &Value) -> &Value {
    daemon_set["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "agent"))
        .unwrap_or(&Value::Null)
}

/// The value of an environment variable of a container (`None` when it is not set).
pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// Objects with `metadata.managedFields` removed, for readable dumps.
pub fn without_managed_fields(mut object: Value) -> Value {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
    }
    object
}

/// `kubectl` from `.tools/` (installed by `hack/install-test-tools.sh`), or `$KUBECTL`.
pub fn kubectl_path() -> PathBuf {
    let path = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/kubectl"));
    assert!(
        path.exists(),
        "kubectl not found at {}: run hack/install-test-tools.sh (it installs .tools/kubectl; CI always runs it) \
         or set KUBECTL",
        path.display()
    );
    path
}

/// Starts the operator binary; its stdout and stderr go to `operator.log` in `dir` (appended, so a
/// restart keeps the earlier process's lines).
fn spawn_operator(args: &[String], kubeconfig: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("operator.log"))
        .expect("operator log file");
    Command::new(env!("CARGO_BIN_EXE_operator"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir)
        .env("RUST_LOG", "info,operator=debug")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("operator log file"))
        .stderr(log)
        .spawn()
        .expect("the operator binary starts")
}

fn unique_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let test = std::thread::current()
        .name()
        .unwrap_or("test")
        .replace("::", "-");
    let dir = std::env::temp_dir().join(format!(
        "operator-e2e-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder for the test");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// `kubectl get` table output as rows of cells (header first), cut at the header's column starts,
/// so an empty cell stays an empty string.
pub fn table(output: &str) -> Vec<Vec<String>> {
    let mut lines = output.lines().filter(|line| !line.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let mut starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    starts.push(usize::MAX);
    let cut = |line: &str| -> Vec<String> {
        starts
            .windows(2)
            .map(|w| {
                let end = w[1].min(line.len());
                line.get(w[0].min(end)..end)
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect()
    };
    std::iter::once(cut(header)).chain(lines.map(cut)).collect()
}

/// Events recorded about the config `config` (the operator's, through events.k8s.io), as
/// `(type, reason, note)`.
pub fn config_events(server: &TestApiServer, config: &str) -> Vec<(String, String, String)> {
    server
        .list_objects("events.k8s.io/v1", "Event", None)
        .into_iter()
        .filter(|e| e["regarding"]["kind"] == GDC_KIND && e["regarding"]["name"] == config)
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or_default().to_owned();
            (text("type"), text("reason"), text("note"))
        })
        .collect()
}
