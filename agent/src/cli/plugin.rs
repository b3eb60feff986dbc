//! `kubectl gpu-diag …`: kubectl runs a plugin named `kubectl-gpu_diag` found on `PATH` (the dash of
//! the command becomes an underscore in the file name). The same program, installed or linked under
//! that name, behaves as `k8s-mcp-agent fleet …`.

use std::ffi::OsString;
use std::path::Path;

/// The executable name kubectl looks for to run `kubectl gpu-diag`.
pub const KUBECTL_PLUGIN: &str = "kubectl-gpu_diag";

/// The command line to parse: under the plugin's name, `fleet` goes in front of the user's arguments
/// (`kubectl gpu-diag health` = `k8s-mcp-agent fleet health`); otherwise `args` unchanged.
pub fn command_line(mut args: Vec<OsString>) -> Vec<OsString> {
    let invoked_as_plugin = args
        .first()
        .and_then(|a| Path::new(a).file_stem())
        .is_some_and(|name| name == KUBECTL_PLUGIN);
    if invoked_as_plugin {
        args.insert(1, "fleet".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> Vec<String> {
        command_line(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn the_plugin_name_means_fleet() {
        assert_eq!(
            line(&["/usr/local/bin/kubectl-gpu_diag", "health", "-l", "pool=a"]),
            [
                "/usr/local/bin/kubectl-gpu_diag",
                "fleet",
                "health",
                "-l",
                "pool=a"
            ]
        );
        assert_eq!(line(&["kubectl-gpu_diag"]), ["kubectl-gpu_diag", "fleet"]);
        assert_eq!(line(&["/agent", "health"]), ["/agent", "health"]);
        assert_eq!(
            line(&["k8s-mcp-agent", "fleet", "nodes"]),
            ["k8s-mcp-agent", "fleet", "nodes"]
        );
    }
}
