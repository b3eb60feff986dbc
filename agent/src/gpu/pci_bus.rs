//! NVIDIA GPUs on the PCI bus, read from sysfs: the count NVML is compared with to notice a GPU it no
//! longer enumerates. A pure filter over (address, vendor, class) triples, and a small sysfs reader.

use std::io;
use std::path::Path;

use crate::gpu::{NvmlReturn, PciAddress, ReadError, Reading};

/// Where the kernel lists PCI functions.
pub const DEFAULT_PCI_DEVICES_DIR: &str = "/sys/bus/pci/devices";

/// NVIDIA's PCI vendor id.
const NVIDIA_VENDOR: u32 = 0x10de;
/// PCI classes of GPUs (`class >> 8`): VGA controller 0x0300 and 3D controller 0x0302. NVSwitch and
/// bridges use other classes.
const GPU_CLASSES: [u32; 2] = [0x0300, 0x0302];

/// One sysfs PCI function entry: directory name, `vendor` and `class` file contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    pub name: String,
    pub vendor: String,
    pub class: String,
}

/// The NVIDIA GPU functions among `functions`, sorted; entries that are not GPUs, or whose files do not
/// parse, are skipped (sysfs also lists bridges and other vendors' devices).
pub fn nvidia_gpus(functions: &[PciFunction]) -> Vec<PciAddress> {
    let mut gpus: Vec<PciAddress> = functions
        .iter()
        .filter(|f| hex(&f.vendor) == Some(NVIDIA_VENDOR))
        .filter(|f| hex(&f.class).is_some_and(|c| GPU_CLASSES.contains(&(c >> 8))))
        .filter_map(|f| f.name.parse().ok())
        .collect();
    gpus.sort();
    gpus
}

fn hex(text: &str) -> Option<u32> {
    let t = text.trim();
    u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

/// Reads `dir` (normally [`DEFAULT_PCI_DEVICES_DIR`]) and returns its NVIDIA GPU functions.
pub fn scan(dir: &Path) -> Reading<Vec<PciAddress>> {
    let unreadable = |e: io::Error| {
        let code = match e.kind() {
            io::ErrorKind::NotFound => NvmlReturn::NotFound,
            io::ErrorKind::PermissionDenied => NvmlReturn::NoPermission,
            _ => NvmlReturn::OperatingSystem,
        };
        ReadError::with_detail(code, format!("cannot list {}: {e}", dir.display()))
    };
    let mut functions = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let path = entry.path();
        // A function whose files vanish (hot unplug) or cannot be read is not counted as a GPU.
        let (Ok(vendor), Ok(class)) = (
            std::fs::read_to_string(path.join("vendor")),
            std::fs::read_to_string(path.join("class")),
        ) else {
            continue;
        };
        functions.push(PciFunction {
            name: entry.file_name().to_string_lossy().into_owned(),
            vendor,
            class,
        });
    }
    Ok(nvidia_gpus(&functions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, vendor: &str, class: &str) -> PciFunction {
        PciFunction {
            name: name.into(),
            vendor: vendor.into(),
            class: class.into(),
        }
    }

    #[test]
    fn only_nvidia_display_and_3d_controllers_count() {
        let functions = [
            f("0000:db:00.0", "0x10de\n", "0x030200\n"),
            f("0000:18:00.0", "0x10de\n", "0x030200\n"),
            f("0000:03:00.0", "0x10de\n", "0x030000\n"),
            // NVSwitch (bridge class) and an NVIDIA audio function.
            f("0000:05:00.0", "0x10de\n", "0x068000\n"),
            f("0000:03:00.1", "0x10de\n", "0x040300\n"),
            // Another vendor's GPU, a malformed entry, a non-address name.
            f("0000:04:00.0", "0x1002\n", "0x030000\n"),
            f("0000:06:00.0", "garbage", "0x030200"),
            f("not-an-address", "0x10de", "0x030200"),
        ];
        let gpus: Vec<String> = nvidia_gpus(&functions)
            .iter()
            .map(|a| a.nvml_bus_id())
            .collect();
        assert_eq!(
            gpus,
            ["00000000:03:00.0", "00000000:18:00.0", "00000000:DB:00.0"]
        );
    }

    #[test]
    fn scans_a_sysfs_tree_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("pci-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, vendor, class) in [
            ("0000:18:00.0", "0x10de", "0x030200"),
            ("0000:00:1f.0", "0x8086", "0x060100"),
        ] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("vendor"), format!("{vendor}\n")).unwrap();
            std::fs::write(dir.join(name).join("class"), format!("{class}\n")).unwrap();
        }
        std::fs::create_dir_all(dir.join("0000:19:00.0")).unwrap();
        let gpus = scan(&dir).unwrap();
        assert_eq!(gpus, vec!["0000:18:00.0".parse().unwrap()]);
        std::fs::remove_dir_all(&dir).unwrap();

        let e = scan(&dir).unwrap_err();
        assert_eq!(e.code, NvmlReturn::NotFound);
        assert!(e.detail.unwrap().contains("cannot list"));
    }
}
