//! Matching what the kubelet says a container holds (device-plugin ids, DRA devices) to the GPUs NVML
//! enumerates. Pure functions over plain data.

use std::collections::BTreeMap;

/// One GPU as NVML sees it, reduced to what matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmlGpu {
    pub index: u32,
    /// Absent when NVML could not read it.
    pub uuid: Option<String>,
    /// MIG mode is currently enabled on the GPU.
    pub mig_enabled: bool,
}

/// A device-plugin device id, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceId {
    /// `GPU-…`, or `GPU-…::N` (a time-slicing / MPS replica).
    Gpu { uuid: String, replica: Option<u32> },
    /// `MIG-…`, or `MIG-…::N`.
    Mig { uuid: String, replica: Option<u32> },
    /// A bare index (the NVIDIA device plugin's `--device-id-strategy=index`).
    Index { index: u32, replica: Option<u32> },
    /// Anything else (another vendor's id, a MIG index form such as `0:1`).
    Other(String),
}

/// Parses one device-plugin device id.
pub fn parse_device_id(id: &str) -> DeviceId {
    let (base, replica) = match id.split_once("::") {
        Some((base, n)) => match n.parse::<u32>() {
            Ok(n) => (base, Some(n)),
            Err(_) => return DeviceId::Other(id.to_string()),
        },
        None => (id, None),
    };
    if base.starts_with("GPU-") {
        DeviceId::Gpu {
            uuid: base.to_string(),
            replica,
        }
    } else if base.starts_with("MIG-") {
        DeviceId::Mig {
            uuid: base.to_string(),
            replica,
        }
    } else if let Ok(index) = base.parse::<u32>() {
        DeviceId::Index { index, replica }
    } else {
        DeviceId::Other(id.to_string())
    }
}

/// How a kubelet device was tied to an NVML GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The device id or DRA `uuid` attribute is the GPU's UUID.
    Uuid,
    /// The device id is the GPU's NVML index (`--device-id-strategy=index`).
    Index,
    /// A MIG device whose DRA `parentUUID` attribute is the GPU's UUID.
    ParentUuid,
    /// A MIG UUID, given to the only GPU with MIG mode enabled (NVML's MIG instances are not listed).
    OnlyMigGpu,
    /// The only GPU UUID the kubelet knows that NVML does not, given to the only GPU whose UUID NVML
    /// cannot read (a lost GPU).
    OnlyUnreadableGpu,
}

/// The UUID the kubelet knows and the index of the GPU NVML cannot read, when each is the only one:
/// a GPU that fell off the bus keeps its kubelet UUID but NVML cannot read it any more.
pub fn lost_gpu_uuid(kubelet_uuids: &[String], gpus: &[NvmlGpu]) -> Option<(String, u32)> {
    let unreadable: Vec<u32> = gpus
        .iter()
        .filter(|g| g.uuid.is_none())
        .map(|g| g.index)
        .collect();
    let mut unknown: Vec<&String> = kubelet_uuids
        .iter()
        .filter(|u| u.starts_with("GPU-") && !gpus.iter().any(|g| g.uuid.as_ref() == Some(*u)))
        .collect();
    unknown.sort();
    unknown.dedup();
    match (unknown.as_slice(), unreadable.as_slice()) {
        ([uuid], [index]) => Some(((*uuid).clone(), *index)),
        _ => None,
    }
}

/// A kubelet device tied to an NVML GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedDevice {
    pub gpu_index: u32,
    /// The MIG instance's UUID, for MIG devices.
    pub mig_uuid: Option<String>,
    /// The replica number of a shared (time-sliced / MPS) GPU.
    pub replica: Option<u32>,
    pub matched_by: MatchedBy,
}

/// Ties a device-plugin id to an NVML GPU, or says why it cannot; `lost` is [`lost_gpu_uuid`]'s
/// answer.
pub fn match_device_id(
    id: &str,
    gpus: &[NvmlGpu],
    lost: Option<&(String, u32)>,
) -> Result<MatchedDevice, String> {
    let by_uuid = |uuid: &str| gpus.iter().find(|g| g.uuid.as_deref() == Some(uuid));
    match parse_device_id(id) {
        DeviceId::Gpu { uuid, replica } => match by_uuid(&uuid) {
            Some(g) => Ok(MatchedDevice {
                gpu_index: g.index,
                mig_uuid: None,
                replica,
                matched_by: MatchedBy::Uuid,
            }),
            None => match lost {
                Some((lost_uuid, index)) if *lost_uuid == uuid => Ok(MatchedDevice {
                    gpu_index: *index,
                    mig_uuid: None,
                    replica,
                    matched_by: MatchedBy::OnlyUnreadableGpu,
                }),
                _ => Err(not_visible(&uuid, gpus)),
            },
        },
        DeviceId::Mig { uuid, replica } => {
            let mig: Vec<&NvmlGpu> = gpus.iter().filter(|g| g.mig_enabled).collect();
            match mig.as_slice() {
                [only] => Ok(MatchedDevice {
                    gpu_index: only.index,
                    mig_uuid: Some(uuid),
                    replica,
                    matched_by: MatchedBy::OnlyMigGpu,
                }),
                [] => Err(format!(
                    "MIG device {uuid}: NVML shows no GPU with MIG mode enabled in this pod"
                )),
                many => Err(format!(
                    "MIG device {uuid}: {} GPUs have MIG mode enabled and the agent does not list MIG \
                     instances, so its parent GPU is ambiguous (DRA ResourceSlices name it through \
                     `parentUUID`)",
                    many.len()
                )),
            }
        }
        DeviceId::Index { index, replica } => match gpus.iter().find(|g| g.index == index) {
            Some(g) => Ok(MatchedDevice {
                gpu_index: g.index,
                mig_uuid: None,
                replica,
                matched_by: MatchedBy::Index,
            }),
            None => Err(format!(
                "device index {index}: NVML in this pod sees {} GPU(s)",
                gpus.len()
            )),
        },
        DeviceId::Other(id) => Err(format!(
            "device id {id:?} is neither a GPU UUID (GPU-…), a MIG UUID (MIG-…) nor an index"
        )),
    }
}

fn not_visible(uuid: &str, gpus: &[NvmlGpu]) -> String {
    format!(
        "GPU {uuid} is not among the {} GPU(s) NVML sees in this pod (with device-plugin or one-device \
         DRA access the agent sees only its own GPU; RuntimeClass or DRA admin access shows them all)",
        gpus.len()
    )
}

/// A device published in one of the node's ResourceSlices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceDevice {
    pub driver: String,
    pub pool: String,
    pub name: String,
    /// Attributes as text (`uuid`, `parentUUID`, `type`, `productName`, `index`, …), by name without
    /// the driver's domain prefix.
    pub attributes: BTreeMap<String, String>,
}

/// A device the kubelet reports as allocated through a DRA claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraDevice {
    pub driver: String,
    pub pool: String,
    pub device: String,
}

/// Ties a DRA device to an NVML GPU through the ResourceSlice that publishes it.
pub fn match_dra_device(
    dev: &DraDevice,
    slices: &[SliceDevice],
    gpus: &[NvmlGpu],
) -> Result<MatchedDevice, String> {
    let Some(published) = slices
        .iter()
        .find(|s| s.driver == dev.driver && s.pool == dev.pool && s.name == dev.device)
    else {
        return Err(format!(
            "DRA device {}/{}/{} is in no ResourceSlice of this node that the agent could read",
            dev.driver, dev.pool, dev.device
        ));
    };
    let uuid = published.attributes.get("uuid");
    let parent = published.attributes.get("parentUUID");
    let find = |u: &str| gpus.iter().find(|g| g.uuid.as_deref() == Some(u));
    match (parent, uuid) {
        (Some(parent), mig) => match find(parent) {
            Some(g) => Ok(MatchedDevice {
                gpu_index: g.index,
                mig_uuid: mig.cloned(),
                replica: None,
                matched_by: MatchedBy::ParentUuid,
            }),
            None => Err(not_visible(parent, gpus)),
        },
        (None, Some(uuid)) => match find(uuid) {
            Some(g) => Ok(MatchedDevice {
                gpu_index: g.index,
                mig_uuid: None,
                replica: None,
                matched_by: MatchedBy::Uuid,
            }),
            None => Err(not_visible(uuid, gpus)),
        },
        (None, None) => Err(format!(
            "DRA device {}/{}/{} has no `uuid` attribute in its ResourceSlice",
            dev.driver, dev.pool, dev.device
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus() -> Vec<NvmlGpu> {
        vec![
            NvmlGpu {
                index: 0,
                uuid: Some("GPU-aaaa".into()),
                mig_enabled: false,
            },
            NvmlGpu {
                index: 1,
                uuid: Some("GPU-bbbb".into()),
                mig_enabled: true,
            },
        ]
    }

    fn match_device_id_(id: &str, gpus: &[NvmlGpu]) -> Result<MatchedDevice, String> {
        match_device_id(id, gpus, None)
    }

    #[test]
    fn a_lost_gpu_keeps_its_kubelet_uuid() {
        let mut g = gpus();
        g[1].uuid = None;
        let kubelet = vec![
            "GPU-aaaa".to_string(),
            "GPU-bbbb".to_string(),
            "GPU-bbbb".to_string(),
        ];
        let lost = lost_gpu_uuid(&kubelet, &g);
        assert_eq!(lost, Some(("GPU-bbbb".to_string(), 1)));
        let m = match_device_id("GPU-bbbb::1", &g, lost.as_ref()).unwrap();
        assert_eq!(
            (m.gpu_index, m.matched_by),
            (1, MatchedBy::OnlyUnreadableGpu)
        );
        // Two candidates: no guess.
        let kubelet = vec!["GPU-bbbb".to_string(), "GPU-cccc".to_string()];
        assert_eq!(lost_gpu_uuid(&kubelet, &g), None);
    }

    #[test]
    fn device_ids_parse() {
        let cases = [
            (
                "GPU-aaaa",
                DeviceId::Gpu {
                    uuid: "GPU-aaaa".into(),
                    replica: None,
                },
            ),
            (
                "GPU-aaaa::3",
                DeviceId::Gpu {
                    uuid: "GPU-aaaa".into(),
                    replica: Some(3),
                },
            ),
            (
                "MIG-cccc",
                DeviceId::Mig {
                    uuid: "MIG-cccc".into(),
                    replica: None,
                },
            ),
            (
                "MIG-cccc::0",
                DeviceId::Mig {
                    uuid: "MIG-cccc".into(),
                    replica: Some(0),
                },
            ),
            (
                "2",
                DeviceId::Index {
                    index: 2,
                    replica: None,
                },
            ),
            ("GPU-aaaa::x", DeviceId::Other("GPU-aaaa::x".into())),
            ("0:1", DeviceId::Other("0:1".into())),
        ];
        for (id, want) in cases {
            assert_eq!(parse_device_id(id), want, "{id}");
        }
    }

    #[test]
    fn device_ids_match_nvml_gpus() {
        let g = gpus();
        let ok = |gpu_index, mig: Option<&str>, replica, by| {
            Ok(MatchedDevice {
                gpu_index,
                mig_uuid: mig.map(str::to_string),
                replica,
                matched_by: by,
            })
        };
        assert_eq!(
            match_device_id_("GPU-bbbb", &g),
            ok(1, None, None, MatchedBy::Uuid)
        );
        assert_eq!(
            match_device_id_("GPU-aaaa::2", &g),
            ok(0, None, Some(2), MatchedBy::Uuid)
        );
        assert_eq!(
            match_device_id_("1", &g),
            ok(1, None, None, MatchedBy::Index)
        );
        assert_eq!(
            match_device_id_("MIG-cccc", &g),
            ok(1, Some("MIG-cccc"), None, MatchedBy::OnlyMigGpu)
        );
        let err = match_device_id_("GPU-zzzz", &g).unwrap_err();
        assert!(err.contains("not among the 2 GPU(s)"), "{err}");
        let err = match_device_id_("7", &g).unwrap_err();
        assert!(err.contains("sees 2 GPU(s)"), "{err}");
        let err = match_device_id_("vendor.com/x", &g).unwrap_err();
        assert!(err.contains("neither a GPU UUID"), "{err}");
    }

    #[test]
    fn mig_ids_need_one_mig_gpu() {
        let mut g = gpus();
        g[0].mig_enabled = true;
        let err = match_device_id_("MIG-cccc", &g).unwrap_err();
        assert!(err.contains("2 GPUs have MIG mode enabled"), "{err}");
        let none: Vec<NvmlGpu> = gpus().into_iter().filter(|g| !g.mig_enabled).collect();
        let err = match_device_id_("MIG-cccc", &none).unwrap_err();
        assert!(err.contains("no GPU with MIG mode enabled"), "{err}");
    }

    #[test]
    fn dra_devices_match_through_resource_slices() {
        let slice = |name: &str, attrs: &[(&str, &str)]| SliceDevice {
            driver: "gpu.nvidia.com".into(),
            pool: "node-a".into(),
            name: name.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let slices = vec![
            slice("gpu-0", &[("uuid", "GPU-aaaa"), ("type", "gpu")]),
            slice(
                "gpu-1-mig-1g",
                &[("uuid", "MIG-dddd"), ("parentUUID", "GPU-bbbb")],
            ),
            slice("gpu-9", &[("uuid", "GPU-9999")]),
            slice("odd", &[("type", "gpu")]),
        ];
        let dev = |d: &str| DraDevice {
            driver: "gpu.nvidia.com".into(),
            pool: "node-a".into(),
            device: d.into(),
        };
        let g = gpus();
        let m = match_dra_device(&dev("gpu-0"), &slices, &g).unwrap();
        assert_eq!((m.gpu_index, m.matched_by), (0, MatchedBy::Uuid));
        let m = match_dra_device(&dev("gpu-1-mig-1g"), &slices, &g).unwrap();
        assert_eq!(
            (m.gpu_index, m.mig_uuid.as_deref(), m.matched_by),
            (1, Some("MIG-dddd"), MatchedBy::ParentUuid)
        );
        let cases = [
            ("gpu-9", "not among the 2 GPU(s)"),
            ("odd", "no `uuid` attribute"),
            ("gone", "in no ResourceSlice"),
        ];
        for (d, want) in cases {
            let err = match_dra_device(&dev(d), &slices, &g).unwrap_err();
            assert!(err.contains(want), "{d}: {err}");
        }
    }
}
