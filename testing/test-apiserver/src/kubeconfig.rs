//! The kubeconfig that points kubectl, helm, kube-rs and the operator binary at the test server.

use std::path::Path;

use crate::error::Error;

/// Name of the cluster, user and context in the kubeconfig.
pub const CONTEXT: &str = "test-apiserver";

/// Kubeconfig YAML for a server at `url` (plain HTTP, no credentials), default namespace `default`.
pub fn render(url: &str) -> String {
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: {CONTEXT}\n  cluster:\n    server: {url}\n\
         users:\n\
         - name: {CONTEXT}\n  user: {{}}\n\
         contexts:\n\
         - name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\n\
         current-context: {CONTEXT}\n"
    )
}

/// Writes the kubeconfig for `url` to `path`.
pub fn write(path: &Path, url: &str) -> Result<(), Error> {
    std::fs::write(path, render(url)).map_err(|source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_is_valid_yaml_pointing_at_the_server() {
        let parsed: serde_yaml::Value =
            serde_yaml::from_str(&render("http://127.0.0.1:4321")).unwrap();
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"].as_str(),
            Some("http://127.0.0.1:4321")
        );
        assert_eq!(parsed["current-context"].as_str(), Some(CONTEXT));
        assert_eq!(
            parsed["contexts"][0]["context"]["namespace"].as_str(),
            Some("default")
        );
    }
}
