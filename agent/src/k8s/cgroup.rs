//! Host PID → container: the pod UID and container id in `/proc/PID/cgroup` (cgroup v1 and v2; the
//! containerd, CRI-O and Docker names under the systemd and cgroupfs drivers). Parsing is pure; the
//! reader takes the `/proc` root as a parameter so tests can hand it a fake tree.

use std::path::Path;

/// The container a process runs in, as its cgroup path names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupContainer {
    /// The pod's UID with dashes (`1f0c…-…`).
    pub pod_uid: String,
    /// The container id (hex), without the runtime prefix.
    pub container_id: String,
}

/// The Kubernetes container named by a `/proc/PID/cgroup` file, if any line names one.
pub fn parse_proc_cgroup(text: &str) -> Option<CgroupContainer> {
    text.lines().find_map(|line| {
        // v2: `0::PATH`; v1: `N:controllers:PATH`.
        let path = line.splitn(3, ':').nth(2)?;
        parse_cgroup_path(path)
    })
}

/// The Kubernetes container named by one cgroup path.
pub fn parse_cgroup_path(path: &str) -> Option<CgroupContainer> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (pod_at, pod_uid) = segments
        .iter()
        .enumerate()
        .find_map(|(i, s)| pod_uid(s).map(|uid| (i, uid)))?;
    // containerd with the systemd driver under cgroupfs naming: `…pod<uid>.slice:cri-containerd:<id>`.
    if let Some((_, id)) = segments[pod_at].rsplit_once(':')
        && is_container_id(id)
    {
        return Some(CgroupContainer {
            pod_uid,
            container_id: id.to_string(),
        });
    }
    let container = segments.get(pod_at + 1)?;
    let id = container_id(container)?;
    Some(CgroupContainer {
        pod_uid,
        container_id: id.to_string(),
    })
}

/// `pod<UID>` (cgroupfs) or `kubepods-<qos>-pod<UID_with_underscores>.slice` (systemd).
fn pod_uid(segment: &str) -> Option<String> {
    let segment = segment.split(':').next()?;
    let raw = if let Some(rest) = segment.strip_prefix("pod") {
        rest
    } else if segment.starts_with("kubepods") {
        let slice = segment.strip_suffix(".slice")?;
        slice.rsplit_once("-pod")?.1
    } else {
        return None;
    };
    let uid = raw.replace('_', "-");
    (uid.len() >= 32 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')).then_some(uid)
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` or a bare `<id>`. CRI-O's
/// `crio-conmon-<id>.scope` is the monitor process, not the container: no match.
fn container_id(segment: &str) -> Option<&str> {
    let s = segment.strip_suffix(".scope").unwrap_or(segment);
    let id = ["cri-containerd-", "crio-", "docker-", "containerd-"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    is_container_id(id).then_some(id)
}

fn is_container_id(s: &str) -> bool {
    s.len() >= 12 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether the `/proc` the agent reads is the host's PID namespace: there PID 1 (systemd or init)
/// is in no pod's cgroup; in a pod without `hostPID`, PID 1 is a container's own process.
pub fn is_host_pid_namespace(pid1_cgroup: &str) -> bool {
    parse_proc_cgroup(pid1_cgroup).is_none()
}

/// Why processes cannot be tied to containers, or `None` when they can: reads `PROC/1/cgroup`.
pub fn host_pid_problem(proc_root: &Path) -> Option<String> {
    let path = proc_root.join("1/cgroup");
    match std::fs::read_to_string(&path) {
        Ok(text) if is_host_pid_namespace(&text) => None,
        Ok(_) => Some(
            "the agent pod does not share the host's PID namespace, so NVML's host PIDs cannot be \
             tied to containers: set `agent.hostPID: true` in the GpuDiagnosticsConfig"
                .to_string(),
        ),
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
    }
}

/// The container of host PID `pid`, read from `PROC/PID/cgroup`.
pub fn container_of(proc_root: &Path, pid: u32) -> Result<CgroupContainer, String> {
    let path = proc_root.join(pid.to_string()).join("cgroup");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_proc_cgroup(&text).ok_or_else(|| {
        format!(
            "process {pid} is not in a Kubernetes container (cgroup {})",
            text.lines().next().unwrap_or("").trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "1f0cbe2a-3b4c-4d5e-8f90-0123456789ab";

    #[test]
    fn cgroup_files_name_their_container() {
        let uid_ = UID.replace('-', "_");
        let cases = [
            // cgroup v2, systemd driver, containerd.
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
            ),
            // cgroup v2, systemd driver, CRI-O, Guaranteed QoS (no QoS slice).
            format!("0::/kubepods.slice/kubepods-pod{uid_}.slice/crio-{ID}.scope"),
            // cgroup v1, cgroupfs driver, several controllers.
            format!(
                "12:pids:/kubepods/besteffort/pod{UID}/{ID}\n11:memory:/kubepods/besteffort/pod{UID}/{ID}"
            ),
            // cgroup v1, cgroupfs driver, Guaranteed.
            format!("4:cpu,cpuacct:/kubepods/pod{UID}/{ID}"),
            // cgroup v1 with a non-container line first (named hierarchy).
            format!("1:name=systemd:/system.slice/containerd.service\n0::/kubepods/pod{UID}/{ID}"),
            // containerd's systemd cgroup naming inside the runtime's own slice.
            format!(
                "0::/system.slice/containerd.service/kubepods-besteffort-pod{uid_}.slice:cri-containerd:{ID}"
            ),
            // Docker (cri-dockerd), systemd driver.
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{ID}.scope"
            ),
        ];
        for text in cases {
            assert_eq!(
                parse_proc_cgroup(&text),
                Some(CgroupContainer {
                    pod_uid: UID.to_string(),
                    container_id: ID.to_string()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn other_cgroups_name_no_container() {
        let uid_ = UID.replace('-', "_");
        let cases = [
            "0::/init.scope".to_string(),
            "0::/".to_string(),
            "0::/system.slice/nvidia-persistenced.service".to_string(),
            "0::/user.slice/user-0.slice/session-1.scope".to_string(),
            // The pod's own slice (a process in no container yet).
            format!("0::/kubepods.slice/kubepods-pod{uid_}.slice"),
            // CRI-O's monitor process.
            format!("0::/kubepods.slice/kubepods-pod{uid_}.slice/crio-conmon-{ID}.scope"),
            "garbage".to_string(),
            String::new(),
        ];
        for text in cases {
            assert_eq!(parse_proc_cgroup(&text), None, "{text}");
        }
    }

    #[test]
    fn host_pid_namespace_is_told_by_pid_1() {
        assert!(is_host_pid_namespace("0::/init.scope\n"));
        assert!(is_host_pid_namespace("0::/\n"));
        assert!(!is_host_pid_namespace(&format!(
            "0::/kubepods/pod{UID}/{ID}\n"
        )));
    }

    #[test]
    fn reads_a_proc_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("1")).unwrap();
        std::fs::write(dir.path().join("1/cgroup"), "0::/init.scope\n").unwrap();
        std::fs::create_dir_all(dir.path().join("4242")).unwrap();
        std::fs::write(
            dir.path().join("4242/cgroup"),
            format!("0::/kubepods/pod{UID}/{ID}\n"),
        )
        .unwrap();
        assert_eq!(host_pid_problem(dir.path()), None);
        assert_eq!(container_of(dir.path(), 4242).unwrap().container_id, ID);
        let err = container_of(dir.path(), 7).unwrap_err();
        assert!(err.starts_with("cannot read"), "{err}");
        std::fs::write(
            dir.path().join("1/cgroup"),
            format!("0::/kubepods/pod{UID}/{ID}\n"),
        )
        .unwrap();
        let problem = host_pid_problem(dir.path()).unwrap();
        assert!(problem.contains("agent.hostPID: true"), "{problem}");
    }
}
