//! The handle a test holds: starts the server on its own thread and runtime (so it works from sync and
//! async tests alike), writes the kubeconfig, and gives direct access to state, faults and the request log.
//! Dropping the handle stops the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::catalog::{Catalog, DraVersion};
use crate::config::Config;
use crate::engine::{DeleteOptions, ListQuery, Settings, State, Target, WriteOptions};
use crate::error::Error;
use crate::faults::{Fault, Faults};
use crate::http::watch::WatchRegistry;
use crate::kubeconfig;
use crate::request::RequestMatch;
use crate::request_log::{LogMark, RequestLog, RequestRecord};

/// State shared by the HTTP tasks and the test's handle.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) log: Mutex<RequestLog>,
    pub(crate) watches: Mutex<WatchRegistry>,
    git_version: Mutex<String>,
    pub(crate) bookmark_interval: Duration,
    pub(crate) address: SocketAddr,
}

impl Shared {
    pub(crate) fn git_version(&self) -> String {
        self.git_version.lock().expect("version lock").clone()
    }
}

/// Field manager of objects a test writes directly.
pub const DIRECT_MANAGER: &str = "test-apiserver";

/// A running test API server.
pub struct TestApiServer {
    shared: Arc<Shared>,
    url: String,
    kubeconfig_path: PathBuf,
    temp_dir: Option<PathBuf>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApiServer {
    /// Starts a server (usable from any async runtime; it runs on its own thread).
    pub async fn start(config: Config) -> Result<Self, Error> {
        Self::start_blocking(config)
    }

    /// Starts a server from synchronous code.
    pub fn start_blocking(config: Config) -> Result<Self, Error> {
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", config.port)).map_err(|source| {
                Error::Bind {
                    port: config.port,
                    source,
                }
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| Error::Bind {
                port: config.port,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| Error::Bind {
            port: config.port,
            source,
        })?;
        let url = format!("http://{address}");

        let settings = Settings {
            admin_access: config.admin_access,
            garbage_collection: config.garbage_collection,
        };
        let mut state = State::new(
            Catalog::new(&config.dra_versions),
            settings,
            config.watch_history,
        );
        for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            create_direct(
                &mut state,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            )?;
        }
        for object in &config.objects {
            create_direct(&mut state, object.clone())?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults: Mutex::default(),
            log: Mutex::default(),
            watches: Mutex::default(),
            git_version: Mutex::new(config.kubernetes_version.clone()),
            bookmark_interval: config.bookmark_interval,
            address,
        });

        let (kubeconfig_path, temp_dir) = match &config.kubeconfig_path {
            Some(path) => (path.clone(), None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "test-apiserver-{}-{}",
                    std::process::id(),
                    address.port()
                ));
                std::fs::create_dir_all(&dir).map_err(|source| Error::Kubeconfig {
                    path: dir.clone(),
                    source,
                })?;
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        kubeconfig::write(&kubeconfig_path, &url)?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-apiserver-{}", address.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => crate::http::serve(listener, serving, shutdown_rx).await,
                        Err(error) => {
                            tracing::error!(%error, "test API server cannot use its listener")
                        }
                    }
                });
            })
            .map_err(Error::Runtime)?;
        tracing::info!(%url, kubeconfig = %kubeconfig_path.display(), "test API server started");
        Ok(Self {
            shared,
            url,
            kubeconfig_path,
            temp_dir,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// The kubeconfig file pointing at this server (`KUBECONFIG=…` for kubectl, helm, the operator).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// A kube-rs client for this server (default namespace `default`).
    pub fn client(&self) -> Result<kube::Client, Error> {
        let uri = self.url.parse().map_err(|_| {
            Error::Api(crate::error::ApiError::internal(format!(
                "unparsable URL {}",
                self.url
            )))
        })?;
        kube::Client::try_from(kube::Config::new(uri)).map_err(|e| {
            Error::Api(crate::error::ApiError::internal(format!(
                "cannot build a kube client: {e}"
            )))
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("state lock")
    }

    // --- What is served -------------------------------------------------------------------------

    /// Serves `resource.k8s.io` at these versions from now on (stored DRA objects stay).
    pub fn set_dra_versions(&self, versions: &[DraVersion]) {
        self.state().catalog.set_dra_versions(versions);
    }

    /// Switches the `DRAAdminAccess` feature gate.
    pub fn set_admin_access(&self, enabled: bool) {
        self.state().settings.admin_access = enabled;
    }

    /// Switches owner-reference garbage collection.
    pub fn set_garbage_collection(&self, enabled: bool) {
        self.state().settings.garbage_collection = enabled;
    }

    /// Changes the `gitVersion` served at `/version`.
    pub fn set_kubernetes_version(&self, git_version: &str) {
        *self.shared.git_version.lock().expect("version lock") = git_version.to_string();
    }

    // --- Objects, as JSON -------------------------------------------------------------------------

    /// Creates an object as a controller or kubelet would: `status` is kept, metadata is filled
    /// (uid, resourceVersion, creationTimestamp, generation), watches see it. The namespace must exist.
    pub fn create_object(&self, object: Value) -> Result<Value, Error> {
        create_direct(&mut self.state(), object)
    }

    /// One object as served at `api_version`, if it exists.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let state = self.state();
        let target = state
            .target_for_kind(api_version, kind, namespace, Some(name))
            .ok()?;
        state.get(&target).ok()
    }

    /// Objects of a kind (in one namespace, or all), ordered by namespace and name.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let state = self.state();
        let Ok(mut target) = state.target_for_kind(api_version, kind, namespace, None) else {
            return Vec::new();
        };
        target.namespace = namespace.map(String::from);
        state.select(&target, &ListQuery::default())
    }

    /// Changes an object in place — spec, metadata and `status` alike, in one write (generation bumps only
    /// when something outside metadata and status changed). Returns the stored result.
    pub fn modify_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value, Error> {
        let mut state = self.state();
        let target = state.target_for_kind(api_version, kind, namespace, Some(name))?;
        let mut object = state.get(&target)?;
        change(&mut object);
        Ok(state.update(&target, object, &direct_options())?.object)
    }

    /// Deletes an object like `kubectl delete` (background propagation: dependents are garbage collected;
    /// finalizers keep it terminating until removed).
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), Error> {
        let mut state = self.state();
        let target = state.target_for_kind(api_version, kind, namespace, Some(name))?;
        state.delete(&target, &DeleteOptions::default())?;
        Ok(())
    }

    // --- Objects, typed ---------------------------------------------------------------------------

    /// [`create_object`](Self::create_object) for a typed object (k8s-openapi or kube-derive types).
    pub fn create<K>(&self, object: &K) -> Result<K, Error>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let mut value = to_json(object)?;
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        from_json(self.create_object(value)?)
    }

    /// [`get_object`](Self::get_object) for a typed object.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.get_object(&K::api_version(&()), &K::kind(&()), namespace, name)
            .and_then(|v| from_json(v).ok())
    }

    /// [`list_objects`](Self::list_objects) for a typed object.
    pub fn list<K>(&self, namespace: Option<&str>) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.list_objects(&K::api_version(&()), &K::kind(&()), namespace)
            .into_iter()
            .filter_map(|v| from_json(v).ok())
            .collect()
    }

    /// [`modify_object`](Self::modify_object) for a typed object (e.g. set a DaemonSet's status as its
    /// controller would).
    pub fn modify<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut K),
    ) -> Result<K, Error>
    where
        K: kube::Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let mut failure = None;
        let stored = self.modify_object(
            &K::api_version(&()),
            &K::kind(&()),
            namespace,
            name,
            |value| match from_json::<K>(value.clone()) {
                Ok(mut typed) => {
                    change(&mut typed);
                    match to_json(&typed) {
                        Ok(mut new) => {
                            new["apiVersion"] = value["apiVersion"].clone();
                            new["kind"] = value["kind"].clone();
                            *value = new;
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Err(e) => failure = Some(e),
            },
        );
        if let Some(error) = failure {
            return Err(error);
        }
        from_json(stored?)
    }

    /// [`delete_object`](Self::delete_object) for a typed object.
    pub fn delete<K>(&self, namespace: Option<&str>, name: &str) -> Result<(), Error>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        self.delete_object(&K::api_version(&()), &K::kind(&()), namespace, name)
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().store.resource_version()
    }

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

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn direct_options() -> WriteOptions {
    WriteOptions {
        field_manager: Some(DIRECT_MANAGER.into()),
        default_manager: DIRECT_MANAGER.into(),
        direct: true,
        ..WriteOptions::default()
    }
}

fn create_direct(state: &mut State, object: Value) -> Result<Value, Error> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    let target: Target = state.target_for_kind(&api_version, &kind, namespace.as_deref(), None)?;
    Ok(state.create(&target, object, &direct_options())?.object)
}

fn to_json<K: Serialize>(object: &K) -> Result<Value, Error> {
    serde_json::to_value(object).map_err(|source| Error::Json {
        what: std::any::type_name::<K>().to_string(),
        source,
    })
}

fn from_json<K: DeserializeOwned>(value: Value) -> Result<K, Error> {
    serde_json::from_value(value).map_err(|source| Error::Json {
        what: std::any::type_name::<K>().to_string(),
        source,
    })
}
