//! `generator`: writes every file derived from the Rust types (`write`), or checks
//! GpuDiagnosticsConfig documents offline (`check-config`). Run through
//! `hack/update-generated.sh` / `hack/verify-generated.sh`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Files derived from the GpuDiagnosticsConfig types and the operator's RBAC table.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the CRD YAML, the chart's generated files and the README sections.
    Write {
        /// Repository root to read the hand-written inputs (READMEs, example config) from.
        #[arg(long, default_value = ".")]
        from: PathBuf,
        /// Root to write under (a temporary folder to compare against the committed files).
        #[arg(long, default_value = ".")]
        to: PathBuf,
    },
    /// Check GpuDiagnosticsConfig documents (YAML files, or `-` for stdin) as the API server and
    /// the operator would: pruned fields, CEL rules, parsing. Other kinds are skipped.
    CheckConfig {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print every API call the operator makes (`operator::rbac::RBAC_RULES`) as a JSON list of
    /// RBAC PolicyRules: what the chart's ClusterRole and Role must grant together.
    RbacRules,
    /// Print what `agent fleet` users are granted (`operator::rbac::FLEET_RULES` and
    /// `FLEET_EXEC_RULES`) as JSON: `{"cluster": [PolicyRule…], "exec": [PolicyRule…]}`.
    FleetRbacRules,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("generator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Write { from, to } => {
            for file in generator::generate(&from)? {
                let path = to.join(&file.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                std::fs::write(&path, file.contents)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RbacRules => {
            let rules = operator::rbac::policy_rules(operator::rbac::RBAC_RULES);
            println!("{}", serde_json::to_string_pretty(&rules)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::FleetRbacRules => {
            let rules = serde_json::json!({
                "cluster": operator::rbac::policy_rules(operator::rbac::FLEET_RULES),
                "exec": operator::rbac::policy_rules(operator::rbac::FLEET_EXEC_RULES),
            });
            println!("{}", serde_json::to_string_pretty(&rules)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { files } => {
            let mut failed = false;
            for file in files {
                let text = if file.as_os_str() == "-" {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text
                } else {
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?
                };
                let report = generator::check::check_documents(&text)
                    .with_context(|| format!("in {}", file.display()))?;
                for finding in &report.findings {
                    eprintln!(
                        "{}: GpuDiagnosticsConfig {}: {}",
                        file.display(),
                        finding.config,
                        finding.problem
                    );
                }
                println!(
                    "{}: {} GpuDiagnosticsConfig(s) checked, {} problem(s)",
                    file.display(),
                    report.checked,
                    report.findings.len()
                );
                failed |= !report.findings.is_empty();
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
