//! A generated kernel log for the Xid throughput measurement: `dmesg --raw` lines, mostly ordinary
//! kernel chatter (network, storage, audit, NVIDIA driver lines that are not Xids), with realistic
//! NVRM Xid lines sprinkled over the eight GPUs of the healthy H100 fixture.

use std::fmt::Write as _;

/// PCI locations (as the driver prints them) of the healthy fixture's eight GPUs.
const GPU_PCI: [&str; 8] = [
    "0000:18:00",
    "0000:2a:00",
    "0000:3a:00",
    "0000:5d:00",
    "0000:9a:00",
    "0000:ab:00",
    "0000:ba:00",
    "0000:db:00",
];

/// Xid lines as drivers 535–570 print them, after `NVRM: Xid (PCI:…): `.
const XIDS: [&str; 10] = [
    "13, pid=4242, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address",
    "31, pid=4242, name=pt_main_thread, Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f12_34560000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
    "43, pid=4242, name=python3, Ch 00000010",
    "45, pid=4242, name=python3, Ch 00000010",
    "48, pid=4242, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0.",
    "63, pid=4242, name=python3, Row Remapper: New row (0x000000000001a2b3) was marked for remapping, reset gpu to activate.",
    "74, pid=0, name=, NVLink: fatal error detected on link 3(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
    "79, pid=0, name=, GPU has fallen off the bus.",
    "94, pid=4242, name=python3, Contained: SM (0x1). RST: No, D-RST: No",
    "119, pid=0, name=, Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20800a4c 0x4).",
];

/// Everyday kernel lines of a busy GPU node (priority, text).
const CHATTER: [(u8, &str); 12] = [
    (6, "cni0: port 3(veth1a2b3c4d) entered forwarding state"),
    (
        6,
        "IPv6: ADDRCONF(NETDEV_CHANGE): cali4b1e8d1d2f2: link becomes ready",
    ),
    (
        6,
        "mlx5_core 0000:0c:00.0: mlx5_pcie_event:301:(pid 1042): PCIe slot advertised sufficient power (75W).",
    ),
    (
        6,
        "EXT4-fs (nvme0n1p2): mounted filesystem r/w with ordered data mode. Quota mode: none.",
    ),
    (
        5,
        "audit: type=1400 audit(1732700000.123:456): apparmor=\"DENIED\" operation=\"open\" profile=\"cri-containerd.apparmor.d\" name=\"/proc/sys/kernel/random/boot_id\" pid=91234 comm=\"node_exporter\"",
    ),
    (
        4,
        "nvidia-peermem nv_get_p2p_free_callback:127 ERROR detected invalid context, skipping further processing",
    ),
    (
        6,
        "NVRM: GPU at PCI:0000:18:00: GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a50",
    ),
    (6, "NVRM: GPU Board Serial Number: 1654922001230"),
    (6, "device veth1a2b3c4d left promiscuous mode"),
    (
        4,
        "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies.  Check SNMP counters.",
    ),
    (6, "nvme nvme0: I/O 123 QID 7 timeout, completion polled"),
    (
        3,
        "Memory cgroup out of memory: Killed process 77121 (python3) total-vm:98765432kB, anon-rss:12345678kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:45678kB oom_score_adj:999",
    ),
];

/// A generated log and what a correct analysis must count in it.
pub struct KernelLog {
    pub text: String,
    pub lines: u64,
    pub xid_lines: u64,
}

/// `lines` lines one millisecond apart, every `xid_every`-th an Xid line (codes and GPUs rotating).
pub fn generate(lines: u64, xid_every: u64) -> KernelLog {
    let mut text = String::with_capacity(lines as usize * 120);
    let mut xid_lines = 0u64;
    for n in 0..lines {
        let (seconds, micros) = (n / 1000, (n % 1000) * 1000);
        if xid_every > 0 && n % xid_every == xid_every / 2 {
            let xid = XIDS[(xid_lines % XIDS.len() as u64) as usize];
            let pci = GPU_PCI[(xid_lines / XIDS.len() as u64 % GPU_PCI.len() as u64) as usize];
            xid_lines += 1;
            let _ = writeln!(
                text,
                "<4>[{seconds:5}.{micros:06}] NVRM: Xid (PCI:{pci}): {xid}"
            );
        } else {
            let (priority, line) = CHATTER[(n % CHATTER.len() as u64) as usize];
            let _ = writeln!(text, "<{priority}>[{seconds:5}.{micros:06}] {line}");
        }
    }
    KernelLog {
        text,
        lines,
        xid_lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_xids() {
        let log = generate(10_000, 1000);
        assert_eq!(log.text.lines().count(), 10_000);
        assert_eq!(log.xid_lines, 10);
        assert_eq!(
            log.text.lines().filter(|l| l.contains("NVRM: Xid")).count(),
            10
        );
        assert!(log.text.starts_with("<6>[    0.000000] cni0: port 3"));
    }
}
