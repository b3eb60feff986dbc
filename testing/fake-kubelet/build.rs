//! Compiles the agent's vendored pod-resources proto (server side) with protox: no system `protoc`.

fn main() {
    let dir = "../../agent/proto/podresources/v1";
    let proto = format!("{dir}/api.proto");
    println!("cargo::rerun-if-changed={proto}");
    let fds = protox::compile([&proto], [dir]).unwrap_or_else(|e| panic!("{proto}: {e}"));
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("cannot generate the pod-resources server: {e}"));
}
