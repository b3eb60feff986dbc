//! The handle a test holds: starts the server on its own thread and runtime (so it works from sync and
//! async tests alike), writes the kubeconfig, and gives direct access to state, faults and the request log.
//! Dropping the handle stops the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::catalog::{Catalog, DraVersion};
use crate::config::Config;
use crate::engine::{Settings, State};
use crate::error::Error;
use crate::exec::ExecRules;
use crate::faults::Faults;
use crate::http::watch::WatchRegistry;
use crate::kubeconfig;

mod objects;
mod observe;

use crate::request_log::RequestLog;
use objects::create_direct;

/// State shared by the HTTP tasks and the test's handle.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) log: Mutex<RequestLog>,
    pub(crate) watches: Mutex<WatchRegistry>,
    pub(crate) exec: Mutex<ExecRules>,
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

        config
            .exec
            .check()
            .map_err(|message| Error::ExecRules { message })?;
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
            exec: Mutex::new(config.exec.clone()),
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

    /// Replaces what `pods/exec` does from the next request on (sessions already open keep running).
    pub fn set_exec_rules(&self, rules: ExecRules) -> Result<(), Error> {
        rules
            .check()
            .map_err(|message| Error::ExecRules { message })?;
        *self.shared.exec.lock().expect("exec rules lock") = rules;
        Ok(())
    }

    /// The exec rules in force.
    pub fn exec_rules(&self) -> ExecRules {
        self.shared.exec.lock().expect("exec rules lock").clone()
    }

    /// Changes the `gitVersion` served at `/version`.
    pub fn set_kubernetes_version(&self, git_version: &str) {
        *self.shared.git_version.lock().expect("version lock") = git_version.to_string();
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
