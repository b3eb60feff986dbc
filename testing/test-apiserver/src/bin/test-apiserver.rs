//! `test-apiserver`: runs the test Kubernetes API server for shell-based tests (kubectl, helm,
//! benchmarks). Prints the URL on the first stdout line, writes a kubeconfig, serves until SIGINT/SIGTERM
//! or until stdin closes (with `--exit-on-stdin-close`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use serde::Deserialize as _;
use test_apiserver::{Config, DraVersion, ExecRules, TestApiServer};

/// Command line of the test API server.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Stateful Kubernetes API server for tests (plain HTTP on 127.0.0.1)"
)]
struct Cli {
    /// Port on 127.0.0.1 (0 = a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "kubeconfig.yaml")]
    kubeconfig: PathBuf,
    /// Served resource.k8s.io versions, comma separated (v1, v1beta2, v1beta1); empty = none.
    #[arg(long, value_delimiter = ',', value_parser = parse_dra)]
    dra: Vec<DraVersion>,
    /// gitVersion served at /version.
    #[arg(long, default_value = "v1.35.0")]
    kubernetes_version: String,
    /// Simulate the DRAAdminAccess feature gate being off (adminAccess silently dropped).
    #[arg(long)]
    no_admin_access: bool,
    /// Multi-document YAML files of objects to create at start (in order).
    #[arg(long)]
    seed: Vec<PathBuf>,
    /// YAML or JSON file of pods/exec rules: which local command a pod's exec runs, which pods hang or
    /// are forbidden (see testing/test-apiserver/README.md). Re-read when it changes.
    #[arg(long)]
    exec_config: Option<PathBuf>,
    /// Exit when stdin reaches end of file (lets a parent process stop the server by closing a pipe).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

fn parse_dra(text: &str) -> Result<DraVersion, String> {
    text.trim().parse()
}

fn load_seed(path: &PathBuf) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read seed file {}", path.display()))?;
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        let json: serde_json::Value = serde_json::to_value(value)?;
        if !json.is_null() {
            objects.push(json);
        }
    }
    Ok(objects)
}

/// Applies every change of the exec rule file (a test changes what a pod's exec does between calls);
/// a file that does not parse keeps the rules in force and says why on stderr.
async fn follow_exec_config(server: &TestApiServer, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        return std::future::pending().await;
    };
    let mut applied = std::fs::read_to_string(path).unwrap_or_default();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if text == applied {
            continue;
        }
        match ExecRules::from_file(path)
            .and_then(|rules| server.set_exec_rules(rules).map_err(|e| e.to_string()))
        {
            Ok(()) => tracing::info!(path = %path.display(), "exec rules reloaded"),
            Err(error) => tracing::error!(%error, "exec rules not reloaded"),
        }
        applied = text;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = Config::default()
        .port(cli.port)
        .kubeconfig_path(&cli.kubeconfig)
        .dra_versions(&cli.dra)
        .kubernetes_version(&cli.kubernetes_version)
        .admin_access(!cli.no_admin_access);
    if let Some(path) = &cli.exec_config {
        config = config.exec_rules(ExecRules::from_file(path).map_err(anyhow::Error::msg)?);
    }
    for path in &cli.seed {
        config = config.objects(load_seed(path)?);
    }
    let server = TestApiServer::start(config)
        .await
        .context("cannot start the test API server")?;
    println!("{}", server.url());
    use std::io::Write as _;
    std::io::stdout().flush()?;

    let stdin_closed = async {
        if cli.exit_on_stdin_close {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = stdin_closed => {}
        _ = follow_exec_config(&server, cli.exec_config.as_deref()) => {}
    }
    drop(server);
    Ok(())
}
