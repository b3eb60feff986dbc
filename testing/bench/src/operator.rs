//! The operator's side of the bench, against the in-repo test API server (in this process; its request
//! log counts what the operator asks): reaction latencies, requests per reconcile, writes per no-op
//! reconcile, and resident memory and CPU at steady state as nodes and configs grow.

mod cluster;
mod process;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use test_apiserver::{Config, LogMark, RequestMatch, RequestRecord, TestApiServer, Verb};

use crate::agent::{self, BinarySize};
use crate::procfs::{self, Memory};
use crate::stats::Samples;
use process::Operator;

pub use report::{learned, method, rows, targets};

/// How long any one wait may last before the bench gives up.
const WAIT: Duration = Duration::from_secs(300);

/// Rounds of no-op reconciles at least in a steady-state window.
const MIN_ROUNDS: u64 = 5;

/// A period without requests that ends a burst of reconciles.
const SETTLED: Duration = Duration::from_millis(300);

/// What to run: cluster sizes and repetitions.
pub struct OperatorPlan {
    /// (nodes, configs) of each steady-state measurement.
    pub sizes: Vec<(usize, usize)>,
    /// The static musl build the operator image ships, measured at steady state beside the glibc build
    /// (at [`OperatorPlan::musl_sizes`]); `None` leaves it out.
    pub musl_binary: Option<PathBuf>,
    /// (nodes, configs) of the musl build's steady-state measurements.
    pub musl_sizes: Vec<(usize, usize)>,
    /// Node counts of the clusters the latencies are measured on.
    pub latency_nodes: Vec<usize>,
    pub warmup: usize,
    pub measured: usize,
    /// No-op reconciles at least in a steady-state window (and at least [`MIN_ROUNDS`] rounds).
    pub min_reconciles: u64,
    /// The quiet period over which idle CPU is measured.
    pub quiet: Duration,
    /// The operator's `--log-level`.
    pub log_level: String,
}

impl OperatorPlan {
    /// The full plan, or a seconds-long one for `--quick`.
    pub fn new(quick: bool) -> OperatorPlan {
        if quick {
            OperatorPlan {
                sizes: vec![(10, 1), (10, 3)],
                musl_binary: None,
                musl_sizes: vec![(10, 1)],
                latency_nodes: vec![10],
                warmup: 0,
                measured: 1,
                min_reconciles: 2,
                quiet: Duration::from_millis(500),
                log_level: "warn".to_owned(),
            }
        } else {
            OperatorPlan {
                sizes: vec![
                    (10, 1),
                    (1_000, 1),
                    (5_000, 1),
                    (20_000, 1),
                    (10, 50),
                    (1_000, 50),
                    (5_000, 50),
                ],
                musl_binary: None,
                musl_sizes: vec![(1_000, 1), (5_000, 1)],
                latency_nodes: vec![10, 1_000],
                warmup: 2,
                measured: 20,
                min_reconciles: 20,
                quiet: Duration::from_secs(5),
                log_level: "warn".to_owned(),
            }
        }
    }
}

/// The operator's numbers.
pub struct OperatorResults {
    pub size: BinarySize,
    /// By node count.
    pub latencies: Vec<Latencies>,
    /// By (configs, nodes).
    pub steady: Vec<Steady>,
    /// Bytes of one seeded Node as JSON.
    pub node_json_bytes: usize,
    /// No-op reconciles at least per steady-state window.
    pub min_reconciles: u64,
    /// The musl build's numbers, when the plan named one.
    pub musl: Option<MuslResults>,
}

/// The static musl build (the image's binary) at steady state.
pub struct MuslResults {
    pub size: BinarySize,
    /// By (configs, nodes).
    pub steady: Vec<Steady>,
}

/// The operator at rest with `nodes` GPU nodes and `configs` configs.
#[derive(Debug, Clone)]
pub struct Steady {
    pub nodes: usize,
    pub configs: usize,
    /// Operator start → every config's DaemonSet stored and status written.
    pub converged: Duration,
    /// CPU used while nothing happened (watches only), as % of one core.
    pub idle_cpu_percent: f64,
    /// No-op reconciles in the window.
    pub reconciles: u64,
    /// Requests other than watches in the window.
    pub requests: usize,
    pub lists: usize,
    pub writes: usize,
    pub cpu: Duration,
    pub memory: Memory,
}

impl Steady {
    /// CPU per no-op reconcile.
    pub fn cpu_per_reconcile(&self) -> Duration {
        self.cpu.div_f64(self.reconciles.max(1) as f64)
    }

    /// Average CPU (% of one core) at the default 60 s resync: every config reconciled once a
    /// minute, plus the idle cost.
    pub fn cpu_percent_at_default_resync(&self) -> f64 {
        self.cpu_per_reconcile().as_secs_f64() * self.configs as f64 / 60.0 * 100.0
            + self.idle_cpu_percent
    }

    /// `n` per no-op reconcile.
    pub fn per_reconcile(&self, n: usize) -> f64 {
        n as f64 / self.reconciles.max(1) as f64
    }
}

/// Measures the operator built in `bin_dir`; `Err` says why it could not (shown as a skipped row).
pub fn measure(bin_dir: &Path, plan: &OperatorPlan) -> Result<OperatorResults, String> {
    let binary = bin_dir.join("operator");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p operator` (hack/bench does)",
            binary.display()
        ));
    }
    if let Some(musl) = plan.musl_binary.as_deref().filter(|b| !b.is_file()) {
        return Err(format!(
            "{} is missing: build it with `hack/image-binary.sh build operator DIR` (hack/bench does \
             when the musl target is installed)",
            musl.display()
        ));
    }
    run(&binary, plan).map_err(|e| format!("{e:#}"))
}

fn run(binary: &Path, plan: &OperatorPlan) -> anyhow::Result<OperatorResults> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let musl_sizes: &[(usize, usize)] = match plan.musl_binary {
        Some(_) => &plan.musl_sizes,
        None => &[],
    };
    let mut node_counts: Vec<usize> = plan.sizes.iter().map(|&(nodes, _)| nodes).collect();
    node_counts.extend(musl_sizes.iter().map(|&(nodes, _)| nodes));
    node_counts.extend(&plan.latency_nodes);
    node_counts.sort_unstable();
    node_counts.dedup();

    let mut latencies_by_nodes = Vec::new();
    let mut steady = Vec::new();
    let mut musl_steady = Vec::new();
    for nodes in node_counts {
        // One seeded cluster per node count (seeding thousands of nodes takes the harness a while);
        // each measurement starts its own operator and removes its configs afterwards.
        eprintln!("bench: seeding a cluster of {nodes} GPU nodes");
        let dir = tempfile::tempdir()?;
        let server = TestApiServer::start_blocking(
            Config::default()
                .kubeconfig_path(dir.path().join("kubeconfig"))
                .objects(cluster::base(nodes)),
        )?;
        if plan.latency_nodes.contains(&nodes) {
            eprintln!("bench: operator latencies on {nodes} nodes");
            latencies_by_nodes.push(runtime.block_on(latencies(
                binary,
                plan,
                &server,
                dir.path(),
                nodes,
            ))?);
        }
        for &(_, configs) in plan.sizes.iter().filter(|&&(n, _)| n == nodes) {
            eprintln!("bench: operator at steady state, {nodes} nodes, {configs} configs");
            let measured = runtime.block_on(steady_state(
                binary,
                plan,
                &server,
                dir.path(),
                nodes,
                configs,
            ))?;
            steady.push(measured);
        }
        // The musl build right after the glibc one, on the same cluster.
        for (musl, &(_, configs)) in plan
            .musl_binary
            .iter()
            .flat_map(|b| musl_sizes.iter().map(move |size| (b, size)))
            .filter(|(_, (n, _))| *n == nodes)
        {
            eprintln!("bench: musl operator at steady state, {nodes} nodes, {configs} configs");
            musl_steady.push(runtime.block_on(steady_state(
                musl,
                plan,
                &server,
                dir.path(),
                nodes,
                configs,
            ))?);
        }
    }
    steady.sort_by_key(|s| (s.configs, s.nodes));
    musl_steady.sort_by_key(|s| (s.configs, s.nodes));
    let musl = match &plan.musl_binary {
        Some(binary) => Some(MuslResults {
            size: agent::binary_size(binary)?,
            steady: musl_steady,
        }),
        None => None,
    };
    Ok(OperatorResults {
        size: agent::binary_size(binary)?,
        latencies: latencies_by_nodes,
        steady,
        node_json_bytes: serde_json::to_vec(&cluster::node(0)).map_or(0, |v| v.len()),
        min_reconciles: plan.min_reconciles,
        musl,
    })
}

/// How fast the operator reacts, on a cluster of `nodes` GPU nodes.
pub struct Latencies {
    pub nodes: usize,
    /// `GpuDiagnosticsConfig` created → its DaemonSet stored (ms).
    pub create: Samples,
    /// RuntimeClass deleted → DaemonSet re-rendered without it (ms).
    pub rc_deleted: Samples,
    /// RuntimeClass created again → DaemonSet back in RuntimeClass mode (ms).
    pub rc_created: Samples,
    /// Requests (not watches) and writes of a new config until its status is written and all is quiet.
    pub requests: Samples,
    pub writes: Samples,
}

/// The operator's requests other than watches since `mark`.
fn non_watch(server: &TestApiServer, mark: LogMark) -> Vec<RequestRecord> {
    server
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.verb().is_some_and(|v| v != Verb::Watch))
        .collect()
}

/// Waits until no request but watches arrives for [`SETTLED`].
async fn settle(server: &TestApiServer) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let mark = server.mark();
        tokio::time::sleep(SETTLED).await;
        if non_watch(server, mark).is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < WAIT,
            "the operator never went quiet (it keeps sending requests)"
        );
    }
}

async fn wait<T>(
    server: &TestApiServer,
    operator: &Operator,
    what: &str,
    probe: impl FnMut(&TestApiServer) -> Option<T>,
) -> anyhow::Result<T> {
    server
        .wait_for(what, WAIT, probe)
        .await
        .map_err(|e| anyhow::anyhow!("{}", operator.explain(&e.to_string())))
}

async fn latencies(
    binary: &Path,
    plan: &OperatorPlan,
    server: &TestApiServer,
    dir: &Path,
    nodes: usize,
) -> anyhow::Result<Latencies> {
    let operator = Operator::start(binary, server, &plan.log_level, dir)?;
    operator.wait_ready(WAIT).await?;
    settle(server).await?;
    let mut result = Latencies {
        nodes,
        create: Samples::default(),
        rc_deleted: Samples::default(),
        rc_created: Samples::default(),
        requests: Samples::default(),
        writes: Samples::default(),
    };
    for n in 0..plan.warmup + plan.measured {
        let name = format!("latency-{n}");
        let mark = server.mark();
        let started = Instant::now();
        server.create_object(cluster::config(&name, None))?;
        wait(server, &operator, "the new config's DaemonSet", |s| {
            cluster::daemon_set(s, &name)
        })
        .await?;
        let created = started.elapsed();
        wait(server, &operator, "the new config's status", |s| {
            cluster::status_written(s, &name).then_some(())
        })
        .await?;
        settle(server).await?;
        let requests = non_watch(server, mark);
        let writes = requests
            .iter()
            .filter(|r| r.verb().is_some_and(Verb::is_write))
            .count();

        let started = Instant::now();
        server.delete_object(
            "node.k8s.io/v1",
            "RuntimeClass",
            None,
            cluster::RUNTIME_CLASS,
        )?;
        wait(
            server,
            &operator,
            "the DaemonSet without the RuntimeClass",
            |s| cluster::daemon_set(s, &name).filter(|ds| !cluster::uses_runtime_class(ds)),
        )
        .await?;
        let deleted = started.elapsed();
        settle(server).await?;

        let started = Instant::now();
        server.create_object(cluster::runtime_class())?;
        wait(
            server,
            &operator,
            "the DaemonSet back on the RuntimeClass",
            |s| cluster::daemon_set(s, &name).filter(cluster::uses_runtime_class),
        )
        .await?;
        let recreated = started.elapsed();
        settle(server).await?;

        server.delete_object(cluster::CONFIG_API, cluster::CONFIG_KIND, None, &name)?;
        settle(server).await?;
        if n >= plan.warmup {
            result.create.push_duration(created);
            result.rc_deleted.push_duration(deleted);
            result.rc_created.push_duration(recreated);
            result.requests.push(requests.len() as f64);
            result.writes.push(writes as f64);
        }
    }
    Ok(result)
}

async fn steady_state(
    binary: &Path,
    plan: &OperatorPlan,
    server: &TestApiServer,
    dir: &Path,
    nodes: usize,
    configs: usize,
) -> anyhow::Result<Steady> {
    let names = cluster::config_names(configs);
    for (j, name) in names.iter().enumerate() {
        server.create_object(cluster::config(name, (configs > 1).then_some(j)))?;
    }
    let started = Instant::now();
    let operator = Operator::start(binary, server, &plan.log_level, dir)?;
    // Polled, not re-checked on every change: reading configs back costs the server a copy of their
    // CRD each time, which would slow down the cluster under test.
    while !cluster::converged(server, &names) {
        anyhow::ensure!(
            started.elapsed() < WAIT,
            "{}",
            operator.explain(&format!(
                "{configs} configs did not converge on {nodes} nodes"
            ))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = started.elapsed();
    operator
        .wait_reconciles(operator.reconciliations()?, WAIT)
        .await?;
    settle(server).await?;

    let idle_cpu_percent = idle_cpu_percent(&operator, plan.quiet).await?;

    // Rounds of no-op reconciles: touching the RuntimeClass makes every config reconcile, and
    // nothing it reads has changed.
    let rounds = MIN_ROUNDS.max(plan.min_reconciles.div_ceil(configs as u64));
    let mark = server.mark();
    let reconciles_before = operator.reconciliations()?;
    let cpu_before = procfs::cpu_time(operator.pid())?;
    for round in 0..rounds {
        let target = operator.reconciliations()? + configs as u64;
        cluster::touch_runtime_class(server, round)?;
        operator.wait_reconciles(target, WAIT).await?;
    }
    let cpu = procfs::cpu_time(operator.pid())? - cpu_before;
    let reconciles = operator.reconciliations()? - reconciles_before;
    let memory = procfs::memory(operator.pid())?;
    let requests = non_watch(server, mark);
    let steady = Steady {
        nodes,
        configs,
        converged,
        idle_cpu_percent,
        reconciles,
        lists: requests
            .iter()
            .filter(|r| r.verb() == Some(Verb::List))
            .count(),
        writes: server.count(mark, &RequestMatch::any().writes()),
        requests: requests.len(),
        cpu,
        memory,
    };
    drop(operator);
    for name in &names {
        server.delete_object(cluster::CONFIG_API, cluster::CONFIG_KIND, None, name)?;
    }
    Ok(steady)
}

/// CPU (% of one core) over a `quiet` period in which no reconcile started or finished; a period a
/// reconcile touched is measured again.
async fn idle_cpu_percent(operator: &Operator, quiet: Duration) -> anyhow::Result<f64> {
    for _ in 0..10 {
        let counts = operator.reconcile_counts()?;
        let cpu_before = procfs::cpu_time(operator.pid())?;
        tokio::time::sleep(quiet).await;
        let cpu = procfs::cpu_time(operator.pid())? - cpu_before;
        if counts.0 == counts.1 && operator.reconcile_counts()? == counts {
            return Ok(cpu.as_secs_f64() / quiet.as_secs_f64() * 100.0);
        }
    }
    anyhow::bail!(
        "{}",
        operator.explain("the operator never stayed idle for the quiet period")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_at_the_default_resync_scales_with_configs() {
        let s = Steady {
            nodes: 10,
            configs: 50,
            converged: Duration::ZERO,
            idle_cpu_percent: 0.1,
            reconciles: 100,
            requests: 800,
            lists: 300,
            writes: 0,
            cpu: Duration::from_millis(600),
            memory: Memory {
                rss_bytes: 0,
                hwm_bytes: 0,
            },
        };
        assert_eq!(s.cpu_per_reconcile(), Duration::from_millis(6));
        assert!((s.cpu_percent_at_default_resync() - 0.6).abs() < 1e-9);
        assert_eq!(s.per_reconcile(s.requests), 8.0);
    }
}
