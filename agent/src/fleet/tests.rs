//! The fleet end to end in memory: a `Cluster` whose exec runs the real node MCP server (mock GPUs)
//! over in-process pipes, so sessions, deadlines, reopening and aggregation are tested without an
//! API server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gpu_fixture::Fixture;
use rmcp::ServiceExt;
use tokio::io::BufReader;

use super::*;
use crate::gpu::DataSource;
use crate::gpu::mock::MockBackend;
use crate::server::transport::{LineTransport, TransportLimits};
use crate::server::{GpuDiagServer, KernelLogSource, ServerOptions, ToolPermission};

/// What exec into one pod does.
#[derive(Clone)]
enum Behavior {
    /// Runs the node agent on this mock scenario.
    Agent(&'static str),
    /// Connects, then never answers.
    Hang,
    /// 403 from the API server.
    Forbidden,
}

#[derive(Default)]
struct FakeCluster {
    view: Mutex<ClusterView>,
    behavior: Mutex<BTreeMap<String, Behavior>>,
    execs: AtomicUsize,
    /// Node agents that exited (stdin closed).
    exited: std::sync::Arc<AtomicUsize>,
    /// Ends every running node agent at once, as a container restart would.
    kill: std::sync::Arc<tokio::sync::Notify>,
}

impl FakeCluster {
    fn add(&self, node: &str, pod: Option<(&str, bool, Behavior)>) {
        let mut view = self.view.lock().unwrap();
        view.nodes.push(NodeFacts {
            name: node.to_owned(),
            labels: BTreeMap::from([("nvidia.com/gpu.present".into(), "true".into())]),
            ready: Some(true),
            ..NodeFacts::default()
        });
        if let Some((name, ready, behavior)) = pod {
            view.pods.push(PodFacts {
                name: name.to_owned(),
                namespace: "gpu".into(),
                uid: format!("uid-{name}"),
                node: Some(node.to_owned()),
                config: Some("default".into()),
                ready,
                running: ready,
                not_ready_reason: (!ready).then(|| "ImagePullBackOff".to_owned()),
                terminating: false,
                created: "2026-01-01T00:00:00Z".into(),
            });
            self.behavior
                .lock()
                .unwrap()
                .insert(name.to_owned(), behavior);
        }
        view.namespaces = vec!["gpu".into()];
    }
}

fn agent_stream(
    node: &str,
    scenario: &str,
    exited: std::sync::Arc<AtomicUsize>,
    kill: std::sync::Arc<tokio::sync::Notify>,
) -> ExecStream {
    let fixture = Fixture::builtin(scenario).expect("built-in scenario");
    let mock = std::sync::Arc::new(MockBackend::new(
        fixture,
        DataSource::MockScenario(scenario.to_owned()),
    ));
    let server = GpuDiagServer::new(
        mock.clone(),
        ServerOptions {
            node_name: Some(node.to_owned()),
            mode: ToolPermission::ReadOnly,
            backend_timeout: Duration::from_secs(10),
            kernel_log: KernelLogSource::Simulated(mock),
            history_dir: None,
            kube: crate::k8s::KubeOptions {
                enabled: false,
                ..Default::default()
            },
        },
    );
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (their_read, their_write) = tokio::io::split(theirs);
    let (transport, writer) = LineTransport::new(
        BufReader::new(their_read),
        their_write,
        TransportLimits::default(),
    );
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let run = async {
            if let Ok(running) = server.serve(transport).await {
                let _ = running.waiting().await;
            }
            let _ = writer.task.await;
        };
        tokio::select! {
            _ = run => {}
            _ = kill.notified() => {}
        }
        exited.fetch_add(1, Ordering::SeqCst);
        let _ = done_tx.send("Success".to_owned());
    });
    let (read, write) = tokio::io::split(ours);
    ExecStream {
        stdin: Box::pin(write),
        stdout: Box::pin(BufReader::new(read)),
        finished: Box::pin(async move { done_rx.await.ok() }),
    }
}

impl Cluster for FakeCluster {
    async fn view(&self, _scope: &Scope) -> Result<ClusterView, ApiError> {
        Ok(self.view.lock().unwrap().clone())
    }

    async fn nodes_matching(&self, selector: &str) -> Result<BTreeSet<String>, ApiError> {
        // `name=NODE` selects one node, enough for these tests.
        let wanted = selector.strip_prefix("name=").unwrap_or("");
        Ok(BTreeSet::from([wanted.to_owned()]))
    }

    async fn exec_access(&self, namespace: &str) -> ExecAccess {
        ExecAccess {
            namespace: namespace.to_owned(),
            exec: AccessDecision::Allowed,
            detail: "test".into(),
        }
    }

    async fn exec(&self, pod: &PodRef) -> Result<ExecStream, NodeError> {
        self.execs.fetch_add(1, Ordering::SeqCst);
        let behavior = self.behavior.lock().unwrap().get(&pod.name).cloned();
        let node = {
            let view = self.view.lock().unwrap();
            view.pods
                .iter()
                .find(|p| p.name == pod.name)
                .and_then(|p| p.node.clone())
                .unwrap_or_default()
        };
        match behavior {
            Some(Behavior::Agent(scenario)) => Ok(agent_stream(
                &node,
                scenario,
                self.exited.clone(),
                self.kill.clone(),
            )),
            Some(Behavior::Hang) => {
                let (ours, theirs) = tokio::io::duplex(1024);
                let (read, write) = tokio::io::split(ours);
                Ok(ExecStream {
                    stdin: Box::pin(write),
                    stdout: Box::pin(BufReader::new(read)),
                    finished: Box::pin(async move {
                        let _keep = theirs;
                        std::future::pending::<Option<String>>().await
                    }),
                })
            }
            Some(Behavior::Forbidden) => Err(NodeError::ExecForbidden {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
            }),
            None => Err(NodeError::PodGone {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
            }),
        }
    }
}

fn options(node_timeout_ms: u64) -> FleetOptions {
    FleetOptions {
        node_timeout: Duration::from_millis(node_timeout_ms),
        ..FleetOptions::default()
    }
}

#[tokio::test]
async fn fleet_health_ranks_every_scenario_and_explains_unreachable_nodes() {
    let cluster = FakeCluster::default();
    cluster.add("n-healthy", Some(("p1", true, Behavior::Agent("healthy"))));
    cluster.add("n-dbe", Some(("p2", true, Behavior::Agent("ecc-dbe"))));
    cluster.add(
        "n-bus",
        Some(("p3", true, Behavior::Agent("fallen-off-bus"))),
    );
    cluster.add(
        "n-thermal",
        Some(("p4", true, Behavior::Agent("thermal-throttle"))),
    );
    cluster.add("n-forbidden", Some(("p5", true, Behavior::Forbidden)));
    cluster.add(
        "n-notready",
        Some(("p6", false, Behavior::Agent("healthy"))),
    );
    cluster.add("n-nopod", None);
    let fleet = Fleet::new(cluster, options(5_000));
    let health = fleet
        .fleet_health(FleetHealthArgs::default())
        .await
        .unwrap();
    assert_eq!(health.verdict, FleetVerdict::Fail);
    let by_node: BTreeMap<&str, (FleetVerdict, Option<&str>)> = health
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), (n.verdict, n.error.as_deref())))
        .collect();
    assert_eq!(by_node["n-healthy"], (FleetVerdict::Pass, None));
    assert_eq!(by_node["n-dbe"].0, FleetVerdict::Fail);
    assert_eq!(by_node["n-bus"].0, FleetVerdict::Fail);
    assert_eq!(by_node["n-thermal"].0, FleetVerdict::Warn);
    let forbidden = by_node["n-forbidden"].1.unwrap();
    assert!(forbidden.contains("`create pods/exec`") && forbidden.contains("namespace gpu"));
    assert!(
        by_node["n-notready"]
            .1
            .unwrap()
            .contains("not ready: ImagePullBackOff")
    );
    assert!(
        by_node["n-nopod"]
            .1
            .unwrap()
            .contains("no agent pod on node n-nopod")
    );
    assert_eq!(health.counts.unknown, 3);
    assert_eq!(health.counts.fail, 2);
    let first_pass = health
        .nodes
        .iter()
        .position(|n| n.verdict == FleetVerdict::Pass)
        .unwrap();
    assert_eq!(first_pass, health.nodes.len() - 1, "PASS nodes come last");
    assert!(
        health.nodes[0]
            .findings
            .iter()
            .any(|f| f.severity == "fail")
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_hung_node_times_out_without_delaying_the_others() {
    let cluster = FakeCluster::default();
    cluster.add("n-hang", Some(("p-hang", true, Behavior::Hang)));
    for i in 0..4 {
        let pod: &'static str = Box::leak(format!("p{i}").into_boxed_str());
        cluster.add(
            &format!("n{i}"),
            Some((pod, true, Behavior::Agent("healthy"))),
        );
    }
    let fleet = Fleet::new(cluster, options(700));
    let started = Instant::now();
    let health = fleet
        .fleet_health(FleetHealthArgs::default())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1_700), "took {elapsed:?}");
    assert_eq!(health.counts.pass, 4);
    assert_eq!(health.nodes[0].node, "n-hang");
    assert!(
        health.nodes[0]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 0.7 s")
    );
}

#[tokio::test]
async fn sessions_are_reused_and_reopened_when_the_pod_is_replaced() {
    let cluster = FakeCluster::default();
    cluster.add("n1", Some(("old", true, Behavior::Agent("healthy"))));
    cluster.add("n2", Some(("other", true, Behavior::Agent("ecc-dbe"))));
    let fleet = Fleet::new(cluster, options(5_000));
    fleet
        .fleet_health(FleetHealthArgs::default())
        .await
        .unwrap();
    fleet.fleet_xid(FleetXidArgs::default()).await.unwrap();
    assert_eq!(
        fleet.cluster.execs.load(Ordering::SeqCst),
        2,
        "one exec per node"
    );
    assert_eq!(fleet.open_sessions(), 2);
    {
        let mut view = fleet.cluster.view.lock().unwrap();
        let pod = view.pods.iter_mut().find(|p| p.name == "old").unwrap();
        pod.name = "new".into();
        pod.uid = "uid-new".into();
        fleet
            .cluster
            .behavior
            .lock()
            .unwrap()
            .insert("new".into(), Behavior::Agent("healthy"));
    }
    let health = fleet
        .fleet_health(FleetHealthArgs::default())
        .await
        .unwrap();
    assert_eq!(health.counts.pass, 1);
    assert_eq!(fleet.cluster.execs.load(Ordering::SeqCst), 3);
    // The old pod's agent saw EOF on stdin and exited.
    for _ in 0..50 {
        if fleet.cluster.exited.load(Ordering::SeqCst) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fleet.cluster.exited.load(Ordering::SeqCst), 1);
    fleet.shutdown().await;
    assert_eq!(fleet.cluster.exited.load(Ordering::SeqCst), 3);
    assert_eq!(fleet.open_sessions(), 0);
}

#[tokio::test]
async fn a_broken_session_is_reopened_once_within_the_call() {
    let cluster = FakeCluster::default();
    cluster.add("n1", Some(("p1", true, Behavior::Agent("healthy"))));
    let fleet = Fleet::new(cluster, options(5_000));
    fleet
        .fleet_health(FleetHealthArgs::default())
        .await
        .unwrap();
    // The agent process goes away under the open session (the exec stream ends).
    fleet.cluster.kill.notify_waiters();
    for _ in 0..50 {
        if fleet.cluster.exited.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fleet.open_sessions(), 1, "the pool has not noticed yet");
    let health = fleet
        .fleet_health(FleetHealthArgs::default())
        .await
        .unwrap();
    assert_eq!(health.counts.pass, 1, "{:?}", health.nodes[0].error);
    assert_eq!(fleet.cluster.execs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn forwarded_tools_answer_for_one_node_and_name_it() {
    let cluster = FakeCluster::default();
    cluster.add("n1", Some(("p1", true, Behavior::Agent("ecc-dbe"))));
    let fleet = Fleet::new(cluster, options(5_000));
    let inventory = fleet
        .forward("n1", "get_gpu_inventory", serde_json::json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inventory["node_name"], "n1");
    assert_eq!(inventory["data_source"], "mock:ecc-dbe");
    let missing = fleet
        .forward("n9", "get_gpu_health", serde_json::json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(missing.to_string().contains("no node named \"n9\""));
    let bad = fleet
        .forward("n1", "get_gpu_health", serde_json::json!({"gpu": 1}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(bad.to_string().contains("unknown field `gpu`"), "{bad}");
}

#[tokio::test]
async fn list_gpu_nodes_reports_exec_access_and_honours_the_selector() {
    let cluster = FakeCluster::default();
    cluster.add("n1", Some(("p1", true, Behavior::Agent("healthy"))));
    cluster.add("n2", None);
    let fleet = Fleet::new(cluster, options(5_000));
    let all = fleet
        .list_gpu_nodes(ListNodesArgs::default())
        .await
        .unwrap();
    assert_eq!(all.nodes.len(), 2);
    assert_eq!(all.exec_access[0].exec, AccessDecision::Allowed);
    let one = fleet
        .list_gpu_nodes(ListNodesArgs {
            selector: Some("name=n2".into()),
        })
        .await
        .unwrap();
    let names: Vec<&str> = one.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, vec!["n2"]);
    assert_eq!(fleet.cluster.execs.load(Ordering::SeqCst), 0, "no exec");
}
