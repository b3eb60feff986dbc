//! Build script: turns `data/xid-catalog.csv` into a static table so a malformed row fails the build,
//! and compiles the kubelet's pod-resources API (`proto/podresources/v1/api.proto`) into a gRPC client.

fn main() {
    xid_catalog();
    pod_resources_api();
}

/// Compiles the vendored pod-resources proto with protox (a protobuf compiler in Rust), so building
/// needs no system `protoc`; writes the client (and messages) to `$OUT_DIR/v1.rs`.
fn pod_resources_api() {
    let proto = "proto/podresources/v1/api.proto";
    println!("cargo::rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto/podresources/v1"])
        .unwrap_or_else(|e| panic!("{proto} does not compile: {e}"));
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("cannot generate the pod-resources client: {e}"));
}

/// Validates the Xid catalog CSV and writes `$OUT_DIR/xid_catalog.rs`.
fn xid_catalog() {
    let csv_path = "data/xid-catalog.csv";
    println!("cargo::rerun-if-changed={csv_path}");
    let text =
        std::fs::read_to_string(csv_path).unwrap_or_else(|e| panic!("cannot read {csv_path}: {e}"));
    let rows =
        xid_catalog::parse_catalog(&text).unwrap_or_else(|e| panic!("{csv_path} is invalid: {e}"));
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let out = std::path::Path::new(&out_dir).join("xid_catalog.rs");
    std::fs::write(&out, xid_catalog::render_rust(&rows))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
