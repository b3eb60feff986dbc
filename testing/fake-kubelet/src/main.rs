//! `fake-kubelet --socket PATH --fixture FILE`: serves the pod-resources API from a fixture until
//! killed (for the Python MCP suite and manual runs).

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .ok_or_else(|| {
                anyhow::anyhow!("usage: fake-kubelet --socket PATH --fixture FILE (missing {flag})")
            })
    };
    let socket = std::path::PathBuf::from(value("--socket")?);
    let fixture =
        fake_kubelet::KubeletFixture::from_path(std::path::Path::new(value("--fixture")?))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fake_kubelet::serve(&socket, fixture))
}
