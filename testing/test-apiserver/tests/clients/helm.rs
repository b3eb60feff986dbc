//! The real helm 3.17 and 4.1 install, upgrade and uninstall a chart with a CRD against the server.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::Value;
use test_apiserver::{Config, RequestMatch, TestApiServer};

use crate::common::{Scratch, ok, run, tool};

fn chart() -> String {
    format!("{}/tests/fixtures/tiny-chart", env!("CARGO_MANIFEST_DIR"))
}

fn install_upgrade_uninstall(helm_name: &str, env_override: &str) {
    let Some(helm) = tool(helm_name, env_override) else {
        return;
    };
    let scratch = Scratch::new(helm_name);
    let server = TestApiServer::start_blocking(Config::default()).unwrap();
    let kubeconfig = server.kubeconfig_path();
    let helm_ok = |args: &[&str]| ok(&helm, kubeconfig, &scratch.0, args);

    helm_ok(&[
        "install",
        "demo",
        &chart(),
        "--namespace",
        "apps",
        "--create-namespace",
    ]);
    let crd = server
        .get_object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "widgets.example.com",
        )
        .expect("CRD installed from crds/");
    let conditions = crd["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );
    let config: ConfigMap = server
        .get(Some("apps"), "demo-config")
        .expect("ConfigMap installed");
    assert_eq!(config.data.unwrap()["message"], "hello");
    let widget = server
        .get_object("example.com/v1", "Widget", Some("apps"), "demo-widget")
        .expect("custom resource installed");
    assert_eq!(widget["spec"]["size"], 3);
    let releases = server.list::<Secret>(Some("apps"));
    assert!(releases.iter().any(|s| {
        s.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get("owner").map(String::as_str) == Some("helm"))
    }));

    let listed = helm_ok(&["list", "--namespace", "apps", "--output", "json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "demo");
    assert_eq!(listed[0]["status"], "deployed");

    helm_ok(&[
        "upgrade",
        "demo",
        &chart(),
        "--namespace",
        "apps",
        "--set",
        "message=bye",
        "--set",
        "size=5",
    ]);
    let config: ConfigMap = server.get(Some("apps"), "demo-config").unwrap();
    assert_eq!(config.data.unwrap()["message"], "bye");
    let deployment: Deployment = server.get(Some("apps"), "demo-app").unwrap();
    assert_eq!(
        deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("example/app:bye")
    );
    assert_eq!(
        deployment.metadata.generation,
        Some(2),
        "the upgrade changed the pod template"
    );
    assert_eq!(
        server
            .get_object("example.com/v1", "Widget", Some("apps"), "demo-widget")
            .unwrap()["spec"]["size"],
        5
    );
    let listed: Value = serde_json::from_str(&helm_ok(&[
        "list",
        "--namespace",
        "apps",
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(listed[0]["revision"], "2");

    helm_ok(&["uninstall", "demo", "--namespace", "apps"]);
    assert!(
        server
            .get::<ConfigMap>(Some("apps"), "demo-config")
            .is_none()
    );
    assert!(server.get::<Deployment>(Some("apps"), "demo-app").is_none());
    assert!(
        server
            .get_object("example.com/v1", "Widget", Some("apps"), "demo-widget")
            .is_none()
    );
    assert!(
        server.list::<Secret>(Some("apps")).is_empty(),
        "release records removed"
    );
    assert!(
        server
            .get_object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com"
            )
            .is_some(),
        "helm never deletes CRDs"
    );

    let failed = run(
        &helm,
        kubeconfig,
        &scratch.0,
        &["status", "demo", "--namespace", "apps"],
    );
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(
        server.count(
            test_apiserver::LogMark(0),
            &RequestMatch::any().writes().group("apiextensions.k8s.io")
        ),
        1,
        "CRD created once"
    );
}

#[test]
fn helm3_installs_upgrades_and_uninstalls() {
    install_upgrade_uninstall("helm3", "TEST_HELM3");
}

#[test]
fn helm4_installs_upgrades_and_uninstalls() {
    install_upgrade_uninstall("helm4", "TEST_HELM4");
}
