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

/// A running test API server: on a loopback socket ([`TestApiServer::start`]) or in-process behind
/// `kube::Client` ([`TestApiServer::in_process`]). Both answer through the same handlers, log and faults.
pub struct TestApiServer {
    shared: Arc<Shared>,
    socket: Option<Socket>,
}

/// What a socket server adds: its URL, kubeconfig and serving thread.
struct Socket {
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
        let shared = shared_state(&config, address)?;

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
            socket: Some(Socket {
                url,
                kubeconfig_path,
                temp_dir,
                shutdown: Some(shutdown),
                thread: Some(thread),
            }),
        })
    }

    /// A server without a socket or thread: [`client`](Self::client) (or [`service`](Self::service))
    /// answers each request in the caller's runtime through the same handlers, faults and request log as
    /// the socket server. For tests of code that takes a `kube::Client`; processes (the operator binary,
    /// kubectl, helm) and `pods/exec` (a WebSocket upgrade) need [`start`](Self::start).
    pub fn in_process(config: Config) -> Result<Self, Error> {
        let address = SocketAddr::from(([127, 0, 0, 1], 0));
        Ok(Self {
            shared: shared_state(&config, address)?,
            socket: None,
        })
    }

    /// `http://127.0.0.1:<port>`. Panics for an in-process server, which has none.
    pub fn url(&self) -> &str {
        &self.socket().url
    }

    /// The listening address (`127.0.0.1:0` for an in-process server).
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// The kubeconfig file pointing at this server (`KUBECONFIG=…` for kubectl, helm, the operator).
    /// Panics for an in-process server, which has none.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.socket().kubeconfig_path
    }

    fn socket(&self) -> &Socket {
        self.socket.as_ref().expect(
            "an in-process TestApiServer has no URL or kubeconfig: start it with TestApiServer::start",
        )
    }

    /// A kube-rs client for this server (default namespace `default`): over HTTP for a socket server,
    /// through [`service`](Self::service) for an in-process one. Call it inside a Tokio runtime.
    pub fn client(&self) -> Result<kube::Client, Error> {
        let Some(socket) = &self.socket else {
            return Ok(kube::Client::new(self.service(), "default"));
        };
        let uri = socket.url.parse().map_err(|_| {
            Error::Api(crate::error::ApiError::internal(format!(
                "unparsable URL {}",
                socket.url
            )))
        })?;
        kube::Client::try_from(kube::Config::new(uri)).map_err(|e| {
            Error::Api(crate::error::ApiError::internal(format!(
                "cannot build a kube client: {e}"
            )))
        })
    }

    /// The server as a `tower::Service` over `http` requests, for `kube::Client::new(service, namespace)`:
    /// requests never touch a socket.
    pub fn service(&self) -> InProcess {
        InProcess {
            shared: self.shared.clone(),
        }
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
        self.state().settings.admin_access_label = crate::engine::admin_access_label(git_version);
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        if let Some(shutdown) = socket.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = socket.thread.take() {
            let _ = thread.join();
        }
        if let Some(dir) = socket.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The state a server starts with: the catalog, the system namespaces, the seed objects.
fn shared_state(config: &Config, address: SocketAddr) -> Result<Arc<Shared>, Error> {
    config
        .exec
        .check()
        .map_err(|message| Error::ExecRules { message })?;
    let settings = Settings {
        admin_access: config.admin_access,
        garbage_collection: config.garbage_collection,
        admin_access_label: crate::engine::admin_access_label(&config.kubernetes_version),
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
    Ok(Arc::new(Shared {
        state: Mutex::new(state),
        faults: Mutex::default(),
        log: Mutex::default(),
        watches: Mutex::default(),
        exec: Mutex::new(config.exec.clone()),
        git_version: Mutex::new(config.kubernetes_version.clone()),
        bookmark_interval: config.bookmark_interval,
        address,
    }))
}

/// The server as a `tower::Service`: each request runs through the HTTP handlers in the caller's
/// runtime (see [`TestApiServer::service`]).
#[derive(Clone)]
pub struct InProcess {
    shared: Arc<Shared>,
}

impl<B> tower::Service<http::Request<B>> for InProcess
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<crate::http::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Box::pin(crate::http::handle(self.shared.clone(), request))
    }
}
