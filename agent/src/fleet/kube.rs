//! The fleet's `Cluster` over kube-rs: kubeconfig loading exactly as kube-rs does it (the same
//! resolution as kubectl, exec credential plugins included), paged reads, SelfSubjectAccessReview,
//! and `pods/exec` over WebSocket (`exec.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use crds::GpuDiagnosticsConfig;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use operator::names::{APP_NAME, CONTAINER_NAME, LABEL_INSTANCE, LABEL_NAME};

use super::cluster::{Cluster, ExecStream, Scope};
use super::discover::{node_facts, pod_facts};
use super::errors::{ApiError, NodeError, context_flag};
use super::exec::ExecFailure;
use super::model::{AccessDecision, ClusterView, ConfigFacts, ExecAccess, NodeProblemInfo, PodRef};

/// Where the kubeconfig comes from (`--kubeconfig`, `--context`).
#[derive(Clone, Debug, Default)]
pub struct KubeSettings {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl KubeSettings {
    /// Which kubeconfig and context, in words, for error messages.
    pub fn describe(&self) -> String {
        let file = match (&self.kubeconfig, std::env::var_os("KUBECONFIG")) {
            (Some(path), _) => format!("kubeconfig {}", path.display()),
            (None, Some(env)) if !env.is_empty() => {
                format!("kubeconfig $KUBECONFIG={}", env.to_string_lossy())
            }
            (None, _) => "kubeconfig ~/.kube/config or the in-cluster service account".to_owned(),
        };
        match &self.context {
            Some(c) => format!("{file}, context {c}"),
            None => format!("{file}, its current context"),
        }
    }
}

/// The Kubernetes API server the fleet talks to, or why it has none.
pub struct KubeCluster {
    client: Result<Client, ApiError>,
    describe: String,
    context_flag: String,
    /// The `resource.k8s.io` version ResourceSlices are listed with (`None`: DRA not served).
    dra_version: OnceLock<Option<&'static str>>,
}

impl KubeCluster {
    /// Loads the kubeconfig as kubectl would. A failure is kept and reported by every call, so an
    /// MCP host sees it in the tool result.
    pub async fn connect(settings: &KubeSettings) -> KubeCluster {
        let describe = settings.describe();
        let context_flag = context_flag(settings.context.as_deref());
        let client = load(settings).await.map_err(|detail| ApiError::Config {
            detail: format!("{describe}: {detail}"),
            context_flag: context_flag.clone(),
        });
        if let Err(e) = &client {
            tracing::error!("{e}");
        }
        KubeCluster {
            client,
            describe,
            context_flag,
            dra_version: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<Client, ApiError> {
        self.client.clone()
    }

    fn api_error(&self, action: &str, e: kube::Error) -> ApiError {
        match e {
            kube::Error::Api(s) if s.code == 403 => ApiError::Forbidden {
                action: action.to_owned(),
                source_desc: self.describe.clone(),
                detail: s.message.clone(),
            },
            kube::Error::Api(s) if s.code == 401 => ApiError::Unreachable {
                source_desc: self.describe.clone(),
                detail: format!(
                    "the API server rejected the credentials (401 {}); log in again or refresh the \
                     kubeconfig's token",
                    s.message
                ),
                context_flag: self.context_flag.clone(),
            },
            kube::Error::Api(s) => ApiError::Unreachable {
                source_desc: self.describe.clone(),
                detail: format!("{action}: HTTP {} {}", s.code, s.message),
                context_flag: self.context_flag.clone(),
            },
            other => ApiError::Unreachable {
                source_desc: self.describe.clone(),
                detail: format!("{action}: {other}"),
                context_flag: self.context_flag.clone(),
            },
        }
    }

    async fn configs(&self, client: &Client, scope: &Scope) -> Result<Vec<ConfigFacts>, ApiError> {
        let api: Api<GpuDiagnosticsConfig> = Api::all(client.clone());
        let configs = match &scope.config {
            Some(name) => match api.get_opt(name).await {
                Ok(Some(c)) => vec![c],
                Ok(None) => {
                    return Err(ApiError::BadInput {
                        what: "--config".to_owned(),
                        detail: format!(
                            "no GpuDiagnosticsConfig named {name:?}; `kubectl get \
                             gpudiagnosticsconfigs` lists them"
                        ),
                    });
                }
                Err(e) => return Err(self.api_error("get gpudiagnosticsconfigs", e)),
            },
            None => match api.list(&ListParams::default()).await {
                Ok(list) => list.items,
                // The CRD is not installed: only --namespace can say where agent pods are.
                Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
                Err(e) => return Err(self.api_error("list gpudiagnosticsconfigs", e)),
            },
        };
        Ok(configs
            .into_iter()
            .map(|c| config_facts(&c, scope.namespace.as_deref()))
            .collect())
    }

    async fn nodes(&self, client: &Client) -> Result<Vec<Node>, ApiError> {
        let api: Api<Node> = Api::all(client.clone());
        let mut params = ListParams::default().limit(500);
        let mut nodes = Vec::new();
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|e| self.api_error("list nodes", e))?;
            nodes.extend(page.items);
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(nodes),
            }
        }
    }

    /// Nodes with a GPU ResourceSlice, through the first `resource.k8s.io` version served.
    async fn dra_nodes(&self, client: &Client, notes: &mut Vec<String>) -> BTreeSet<String> {
        let versions: &[&'static str] = match self.dra_version.get() {
            Some(Some(v)) => &[*v][..],
            Some(None) => &[],
            None => &["v1", "v1beta2", "v1beta1"],
        };
        let versions: Vec<&'static str> = versions.to_vec();
        for version in versions {
            let gvk = GroupVersionKind::gvk("resource.k8s.io", version, "ResourceSlice");
            let resource = ApiResource::from_gvk_with_plural(&gvk, "resourceslices");
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    let _ = self.dra_version.set(Some(version));
                    return list
                        .items
                        .iter()
                        .filter(|s| {
                            s.data["spec"]["driver"]
                                .as_str()
                                .is_some_and(|d| d.contains("nvidia"))
                        })
                        .filter_map(|s| s.data["spec"]["nodeName"].as_str().map(str::to_owned))
                        .collect();
                }
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => {
                    notes.push(format!(
                        "GPU ResourceSlices (DRA) were not read, so DRA-only GPU nodes without an \
                         agent pod are not listed: {}",
                        self.api_error("list resourceslices", e)
                    ));
                    return BTreeSet::new();
                }
            }
        }
        let _ = self.dra_version.set(None);
        BTreeSet::new()
    }
}

async fn load(settings: &KubeSettings) -> Result<Client, String> {
    let options = KubeConfigOptions {
        context: settings.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&settings.kubeconfig, &settings.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| e.to_string())?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| e.to_string())?,
        (None, None) => kube::Config::infer().await.map_err(|e| e.to_string())?,
    };
    Client::try_from(config).map_err(|e| e.to_string())
}

fn config_facts(config: &GpuDiagnosticsConfig, namespace: Option<&str>) -> ConfigFacts {
    let status = config.status.as_ref();
    ConfigFacts {
        name: config.metadata.name.clone().unwrap_or_default(),
        namespace: namespace
            .map(str::to_owned)
            .unwrap_or_else(|| config.spec.namespace.name.clone()),
        daemon_set: status
            .and_then(|s| s.daemon_set.as_ref())
            .map(|d| d.name.clone()),
        access_mode: status.and_then(|s| s.mode).map(|m| m.as_str().to_owned()),
        node_problems: status
            .map(|s| {
                s.node_problems
                    .iter()
                    .map(|p| {
                        (
                            p.node.clone(),
                            NodeProblemInfo {
                                reason: format!("{:?}", p.reason),
                                message: p.message.clone(),
                                fix: p.fix.clone(),
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
    }
}

impl Cluster for KubeCluster {
    async fn view(&self, scope: &Scope) -> Result<ClusterView, ApiError> {
        let client = self.client()?;
        let configs = self.configs(&client, scope).await?;
        let mut namespaces: Vec<String> = match &scope.namespace {
            Some(ns) => vec![ns.clone()],
            None => configs.iter().map(|c| c.namespace.clone()).collect(),
        };
        namespaces.sort();
        namespaces.dedup();
        let nodes = self.nodes(&client).await?;
        let mut pods = Vec::new();
        let selector = format!("{LABEL_NAME}={APP_NAME}");
        for ns in &namespaces {
            let api: Api<Pod> = Api::namespaced(client.clone(), ns);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| self.api_error(&format!("list pods in namespace {ns}"), e))?;
            pods.extend(
                list.items
                    .iter()
                    .map(|p| pod_facts(p, LABEL_INSTANCE))
                    .filter(|p| {
                        configs.is_empty()
                            || p.config
                                .as_ref()
                                .is_some_and(|c| configs.iter().any(|k| &k.name == c))
                    }),
            );
        }
        let mut notes = Vec::new();
        if configs.is_empty() && scope.namespace.is_none() {
            notes.push(
                "no GpuDiagnosticsConfig found (or its CRD is not installed): pass --namespace with \
                 the agent pods' namespace"
                    .to_owned(),
            );
        }
        let dra_nodes = self.dra_nodes(&client, &mut notes).await;
        Ok(ClusterView {
            configs,
            nodes: nodes.iter().map(node_facts).collect(),
            pods,
            dra_nodes,
            namespaces,
            notes,
        })
    }

    async fn nodes_matching(&self, selector: &str) -> Result<BTreeSet<String>, ApiError> {
        let client = self.client()?;
        let api: Api<Node> = Api::all(client);
        match api
            .list_metadata(&ListParams::default().labels(selector))
            .await
        {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect()),
            Err(kube::Error::Api(s)) if s.code == 400 => Err(ApiError::BadInput {
                what: format!("selector {selector:?}"),
                detail: s.message.clone(),
            }),
            Err(e) => Err(self.api_error("list nodes", e)),
        }
    }

    async fn exec_access(&self, namespace: &str) -> ExecAccess {
        let unknown = |detail: String| ExecAccess {
            namespace: namespace.to_owned(),
            exec: AccessDecision::Unknown,
            detail,
        };
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return unknown(e.to_string()),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_owned()),
                    verb: Some("create".to_owned()),
                    resource: Some("pods".to_owned()),
                    subresource: Some("exec".to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(client);
        match api.create(&PostParams::default(), &review).await {
            Ok(answer) => {
                let status = answer.status.unwrap_or_default();
                let reason = status.reason.filter(|r| !r.is_empty());
                if status.allowed {
                    ExecAccess {
                        namespace: namespace.to_owned(),
                        exec: AccessDecision::Allowed,
                        detail: reason.unwrap_or_else(|| "create pods/exec is allowed".to_owned()),
                    }
                } else {
                    ExecAccess {
                        namespace: namespace.to_owned(),
                        exec: AccessDecision::Denied,
                        detail: format!(
                            "create pods/exec is not allowed in namespace {namespace}{}: ask a \
                             cluster admin to run `{}`",
                            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                            super::errors::exec_grant(namespace),
                        ),
                    }
                }
            }
            Err(e) => unknown(format!(
                "the access review failed, so exec may or may not work: {}",
                self.api_error("create selfsubjectaccessreviews", e)
            )),
        }
    }

    async fn exec(&self, pod: &PodRef) -> Result<ExecStream, NodeError> {
        let failed = |message: String| NodeError::Exec {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            message,
        };
        let client = self.client().map_err(|e| failed(e.to_string()))?;
        super::exec::open(
            &client,
            &pod.namespace,
            &pod.name,
            CONTAINER_NAME,
            &["/agent"],
        )
        .await
        .map_err(|e| match e {
            ExecFailure::Refused { code: 403, .. } => NodeError::ExecForbidden {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
            },
            ExecFailure::Refused { code: 404, .. } => NodeError::PodGone {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
            },
            other => failed(other.to_string()),
        })
    }
}
