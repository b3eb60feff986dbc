//! Deterministic synthetic kernel logs for the large-log test and the parse benchmark: mostly
//! ordinary kernel chatter in `/dev/kmsg` record format with NVRM Xid lines interleaved.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// PCI locations of the synthetic node's eight GPUs, then one no GPU matches.
pub const PCI: [&str; 9] = [
    "0000:18:00",
    "0000:2a:00",
    "0000:3a:00",
    "0000:5d:00",
    "0000:9a:00",
    "0000:ab:00",
    "0000:ba:00",
    "0000:db:00",
    "0000:3b:00",
];

const CODES: [u32; 13] = [13, 31, 43, 45, 48, 63, 74, 79, 94, 95, 119, 154, 999];

const NOISE: [&str; 8] = [
    "cni0: port 3(veth1a2b3c4d) entered forwarding state",
    "IPv6: ADDRCONF(NETDEV_CHANGE): veth1a2b3c4d: link becomes ready",
    "mlx5_core 0000:0c:00.0: mlx5_pcie_event:301:(pid 1042): PCIe slot advertised sufficient power (75W).",
    "EXT4-fs (nvme0n1p2): mounted filesystem r/w with ordered data mode. Quota mode: none.",
    "audit: type=1400 audit(1732700000.123:456): apparmor=\"DENIED\" operation=\"open\" profile=\"cri-containerd.apparmor.d\"",
    "nvidia-peermem nv_get_p2p_free_callback:127 ERROR detected invalid context, skipping further processing",
    "NVRM: GPU Board Serial Number: 1654922006185",
    "device veth1a2b3c4d left promiscuous mode",
];

/// A synthetic log and what a correct parser must find in it.
pub struct Synthetic {
    pub text: String,
    /// Records (not continuation lines).
    pub records: u64,
    /// Xid lines per (PCI location, code).
    pub expected: BTreeMap<(String, u32), u64>,
}

impl Synthetic {
    pub fn xids(&self) -> u64 {
        self.expected.values().sum()
    }
}

/// `records` kmsg records, one Xid line every `xid_every` records, a dictionary continuation line
/// after every 50th record; timestamps 10 ms apart.
pub fn kmsg_log(records: u64, xid_every: u64) -> Synthetic {
    let mut text = String::with_capacity(records as usize * 110);
    let mut expected: BTreeMap<(String, u32), u64> = BTreeMap::new();
    let mut xid_count = 0usize;
    for seq in 0..records {
        let usec = seq * 10_000;
        if seq % xid_every == xid_every / 2 {
            let code = CODES[xid_count % CODES.len()];
            let pci = PCI[(xid_count / CODES.len() + xid_count) % PCI.len()];
            xid_count += 1;
            *expected.entry((pci.to_owned(), code)).or_default() += 1;
            let _ = writeln!(
                text,
                "4,{seq},{usec},-;NVRM: Xid (PCI:{pci}): {code}, pid={}, name=python3, synthetic event {xid_count}",
                1000 + seq % 5000
            );
        } else {
            let _ = writeln!(
                text,
                "6,{seq},{usec},-;{}",
                NOISE[(seq % NOISE.len() as u64) as usize]
            );
        }
        if seq % 50 == 49 {
            text.push_str(" SUBSYSTEM=pci\n DEVICE=+pci:0000:0c:00.0\n");
        }
    }
    Synthetic {
        text,
        records,
        expected,
    }
}
