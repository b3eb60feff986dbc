//! Decoders for the free text of specific Xids: NVLink link and register words (74, 144–150), the
//! recovery action of 154, the GPC/TPC of 13, the Xid 45 blames, and SRAM vs DRAM for 48.

use schemars::JsonSchema;
use serde::Serialize;

/// NVLink details decoded from an Xid 74 or 144–150 message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NvlinkDetail {
    /// The link number the driver names.
    pub link: u32,
    /// NVLink5 (144–150) unit subcode, e.g. `NETIR_LINK_EVT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subcode: Option<String>,
    /// NVLink5: the driver marked it `Fatal` (true) or `Nonfatal` (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<bool>,
    /// The hex register words in the parentheses, as printed (74: seven error registers; 144–150:
    /// intrInfo, errorStatus, then debug data).
    pub registers: Vec<String>,
    /// Xid 74: what NVIDIA's NVLink workflow says about the bits set in the first register.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub register_hints: Vec<String>,
}

/// Xid 74: `NVLink: fatal error detected on link 3(0x0, 0x0, 0x10000, …)`.
pub fn nvlink74(message: &str) -> Option<NvlinkDetail> {
    let lower = message.to_ascii_lowercase();
    let at = lower.match_indices("link ").map(|(at, _)| at).find(|at| {
        message
            .as_bytes()
            .get(at + 5)
            .is_some_and(u8::is_ascii_digit)
    })?;
    let after = &message[at + 5..];
    let digits_end = after
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(after.len());
    let link = after[..digits_end].parse().ok()?;
    let registers = parenthesised_words(&after[digits_end..]);
    let register_hints = registers
        .first()
        .and_then(|word| parse_hex(word))
        .map(nvlink74_register0_hints)
        .unwrap_or_default();
    Some(NvlinkDetail {
        link,
        subcode: None,
        fatal: None,
        registers,
        register_hints,
    })
}

/// Xid 144–150: `NETIR_LINK_EVT Fatal XC0 i0 Link 08 (0x004505c6 0x00000000 …)`.
pub fn nvlink5(message: &str) -> Option<NvlinkDetail> {
    let mut tokens = message.split_whitespace();
    let subcode = tokens.next()?.to_owned();
    let fatal = match tokens.next()? {
        "Fatal" => Some(true),
        "Nonfatal" => Some(false),
        _ => None,
    };
    let link_at = message.find(" Link ")?;
    let after = message[link_at + 6..].trim_start();
    let digits_end = after
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'-'))
        .unwrap_or(after.len());
    let link = after[..digits_end].parse().ok()?;
    Some(NvlinkDetail {
        link,
        subcode: Some(subcode),
        fatal,
        registers: parenthesised_words(&after[digits_end..]),
        register_hints: Vec::new(),
    })
}

fn parenthesised_words(text: &str) -> Vec<String> {
    let text = text.trim_start();
    let Some(inner) = text.strip_prefix('(').or_else(|| text.strip_prefix('[')) else {
        return Vec::new();
    };
    let end = inner.find([')', ']']).unwrap_or(inner.len());
    inner[..end]
        .split([',', ' '])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_hex(word: &str) -> Option<u64> {
    u64::from_str_radix(word.strip_prefix("0x").unwrap_or(word), 16).ok()
}

/// NVIDIA's NVLink workflow, first register: what each set bit suggests.
fn nvlink74_register0_hints(word: u64) -> Vec<String> {
    const GROUPS: [(&[u32], &str); 6] = [
        (&[0, 23, 30], "can be safely ignored"),
        (
            &[1, 20],
            "sympathetic/secondary error: follow the other Xids; report if alone",
        ),
        (
            &[4, 5],
            "likely ECC/parity hardware issue: report if seen more than twice on this link",
        ),
        (
            &[8, 9, 12, 16, 17, 24, 28],
            "possible hardware issue: check and reseat the link connections, run diagnostics if it persists",
        ),
        (
            &[21, 22],
            "marginal channel signal integrity: check link connections, run field diagnostics",
        ),
        (&[27, 29], "report a bug if seen repeatedly"),
    ];
    let mut hints = Vec::new();
    for (bits, hint) in GROUPS {
        let set: Vec<String> = bits
            .iter()
            .filter(|bit| word & (1 << **bit) != 0)
            .map(u32::to_string)
            .collect();
        if !set.is_empty() {
            let plural = if set.len() > 1 { "s" } else { "" };
            hints.push(format!("register 0 bit{plural} {}: {hint}", set.join(", ")));
        }
    }
    hints
}

/// The recovery action an Xid 154 moved to (`… to 0x1 (GPU Reset Required)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryChange {
    pub value: u32,
    pub name: String,
}

/// Xid 154: `GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)`.
pub fn recovery_change(message: &str) -> Option<RecoveryChange> {
    let at = message.rfind(" to 0x")?;
    let after = &message[at + 6..];
    let hex_end = after
        .bytes()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(after.len());
    let value = u32::from_str_radix(&after[..hex_end], 16).ok()?;
    let rest = after[hex_end..].trim_start();
    let name = rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(name, _)| name.trim().to_owned())
        .unwrap_or_default();
    Some(RecoveryChange { value, name })
}

/// Xid 13: the graphics unit location `(GPC 7, TPC 7[, SM 0])`, as (gpc, tpc).
pub fn gpc_tpc(message: &str) -> Option<(u32, u32)> {
    let at = message.find("GPC ")?;
    let after = &message[at + 4..];
    let gpc_end = after
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(after.len());
    let gpc = after[..gpc_end].parse().ok()?;
    let tpc_at = after.find("TPC ")?;
    let tpc_text = &after[tpc_at + 4..];
    let tpc_end = tpc_text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(tpc_text.len());
    Some((gpc, tpc_text[..tpc_end].parse().ok()?))
}

/// Xid 45 in newer drivers: `… caused by previous Xid 149`.
pub fn blamed_xid(message: &str) -> Option<u32> {
    let at = message.find("previous Xid ")?;
    let after = &message[at + 13..];
    let end = after
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(after.len());
    after[..end].parse().ok()
}

/// Xid 48/172: does the message name an SRAM (not framebuffer/DRAM) error?
pub fn is_sram_error(message: &str) -> bool {
    message.contains("SRAM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid74_link_registers_and_hints_decode() {
        let detail = nvlink74(
            "NVLink: fatal error detected on link 3(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
        )
        .expect("decodes");
        assert_eq!(detail.link, 3);
        assert_eq!(
            detail.registers,
            ["0x0", "0x0", "0x10000", "0x0", "0x0", "0x0", "0x0"]
        );
        assert!(detail.register_hints.is_empty());
        let detail = nvlink74(
            "NVLink: fatal error detected on link 14(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)",
        )
        .expect("decodes");
        assert_eq!(detail.link, 14);
        assert_eq!(
            detail.register_hints,
            [
                "register 0 bit 16: possible hardware issue: check and reseat the link connections, run diagnostics if it persists"
            ]
        );
        let detail = nvlink74("NVLink: fatal error detected on link 2").expect("no registers");
        assert_eq!((detail.link, detail.registers.len()), (2, 0));
        assert!(nvlink74("Channel 0x23, MMU Fault: ENGINE GRAPHICS").is_none());
    }

    #[test]
    fn nvlink5_subcode_link_and_words_decode() {
        let detail =
            nvlink5("NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000 0x00000000)")
                .expect("decodes");
        assert_eq!(detail.link, 9);
        assert_eq!(detail.subcode.as_deref(), Some("NETIR_LINK_EVT"));
        assert_eq!(detail.fatal, Some(true));
        assert_eq!(detail.registers, ["0x025525c6", "0x00000000", "0x00000000"]);
        let detail = nvlink5("NETIR_MFDE_EVENT Nonfatal XC0 i0 Link 00 (0x00000014 0x00000003)")
            .expect("decodes");
        assert_eq!((detail.link, detail.fatal), (0, Some(false)));
        let detail =
            nvlink5("NETIR_LINK_EVT Fatal XC 1 i 2 Link 01 [0x0000000a]").expect("pre-R575 form");
        assert_eq!(
            (detail.link, detail.registers.clone()),
            (1, vec!["0x0000000a".to_owned()])
        );
        assert!(nvlink5("something else entirely").is_none());
    }

    #[test]
    fn xid154_recovery_action_decodes() {
        assert_eq!(
            recovery_change(
                "GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)"
            ),
            Some(RecoveryChange {
                value: 2,
                name: "Node Reboot Required".into()
            })
        );
        assert_eq!(
            recovery_change(
                "GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)"
            ),
            Some(RecoveryChange {
                value: 0,
                name: "None".into()
            })
        );
        assert_eq!(
            recovery_change("GPU recovery action changed from 0x0 to 0x7"),
            Some(RecoveryChange {
                value: 7,
                name: String::new()
            })
        );
        assert_eq!(recovery_change("GPU recovery action changed"), None);
    }

    #[test]
    fn small_decoders() {
        assert_eq!(
            gpc_tpc("Graphics SM Warp Exception on (GPC 7, TPC 3, SM 0): Illegal"),
            Some((7, 3))
        );
        assert_eq!(gpc_tpc("Graphics Exception: ChID 000c"), None);
        assert_eq!(
            blamed_xid("Ch 00000001 caused by previous Xid 149"),
            Some(149)
        );
        assert_eq!(blamed_xid("Ch 00000001"), None);
        assert!(is_sram_error("An uncorrectable SRAM error was detected"));
        assert!(!is_sram_error(
            "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer"
        ));
    }
}
