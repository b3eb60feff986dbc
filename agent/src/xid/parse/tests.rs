//! Tests of `parse.rs`.

use super::*;

fn xid(text: &str) -> XidLine<'_> {
    match parse_nvrm(text) {
        NvrmLine::Xid(line) => line,
        other => panic!("{text}: {other:?}"),
    }
}

fn pci(domain: u32, bus: u8, device: u8) -> PciLocation {
    PciLocation {
        domain,
        bus,
        device,
    }
}

#[test]
fn pci_locations_match_numerically_across_kernel_and_nvml_forms() {
    let kernel = PciLocation::parse("0000:3b:00").expect("kernel form");
    assert_eq!(kernel, pci(0, 0x3b, 0));
    assert_eq!(PciLocation::parse("00000000:3B:00.0"), Some(kernel));
    assert_eq!(PciLocation::parse("PCI:0000:3B:00"), Some(kernel));
    assert_eq!(PciLocation::parse("0000:3b:00.0"), Some(kernel));
    assert_ne!(PciLocation::parse("0000:b3:00"), Some(kernel));
    assert_eq!(PciLocation::parse("10000:01:00"), Some(pci(0x10000, 1, 0)));
    assert_eq!(
        PciLocation::parse("0018:01:00").map(|p| p.to_string()),
        Some("0018:01:00".into())
    );
    assert_eq!(
        PciLocation::from_numeric(0, 0xb3, 0).map(|p| p.to_string()),
        Some("0000:b3:00".into())
    );
    for bad in [
        "",
        "3b:00",
        "0000:3b",
        "0000:3g:00",
        "0000:3b:00.9",
        "0000:3b:20",
        "0:0:0:0",
        "000000000:3b:00",
    ] {
        assert_eq!(PciLocation::parse(bad), None, "{bad}");
    }
}

#[test]
fn line_prefixes_of_every_format_split_off() {
    let cases: &[(&str, RecordTime, Option<u64>, &str)] = &[
        (
            "4,1234,5678901234,-;NVRM: Xid",
            RecordTime::SinceBoot(5_678_901_234),
            Some(1234),
            "NVRM: Xid",
        ),
        (
            "6,17,95000,-,caller=T42;NVRM: x",
            RecordTime::SinceBoot(95_000),
            Some(17),
            "NVRM: x",
        ),
        (
            "<4>[  123.456789] NVRM: x",
            RecordTime::SinceBoot(123_456_789),
            None,
            "NVRM: x",
        ),
        (
            "<3>[ 5.5] [T123] NVRM: x",
            RecordTime::SinceBoot(5_500_000),
            None,
            "NVRM: x",
        ),
        (
            "[ 1234.567890] NVRM: x\n",
            RecordTime::SinceBoot(1_234_567_890),
            None,
            "NVRM: x",
        ),
        (
            "[1843.308145] NVRM: x\r\n",
            RecordTime::SinceBoot(1_843_308_145),
            None,
            "NVRM: x",
        ),
        (
            "2026-11-27T10:00:00,123456+00:00 NVRM: x",
            RecordTime::Wall(1_795_773_600_123_456),
            None,
            "NVRM: x",
        ),
        (
            "Nov 27 10:00:00 host kernel: NVRM: x",
            RecordTime::Unknown,
            None,
            "Nov 27 10:00:00 host kernel: NVRM: x",
        ),
        (
            "[Sat Jul 11 05:52:47 2026] NVRM: x",
            RecordTime::Unknown,
            None,
            "[Sat Jul 11 05:52:47 2026] NVRM: x",
        ),
        (
            "<not-a-prio> text",
            RecordTime::Unknown,
            None,
            "<not-a-prio> text",
        ),
        (
            "12345 plain text",
            RecordTime::Unknown,
            None,
            "12345 plain text",
        ),
        ("", RecordTime::Unknown, None, ""),
    ];
    for (input, time, sequence, text) in cases {
        let line = parse_line(input.as_bytes());
        assert_eq!(line.time, *time, "{input}");
        assert_eq!(line.sequence, *sequence, "{input}");
        assert_eq!(line.text, text.as_bytes(), "{input}");
    }
}

#[test]
fn kmsg_records_drop_their_continuation_lines() {
    let record = b"3,889,1843308145,-;NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus.\n SUBSYSTEM=pci\n DEVICE=+pci:0000:b3:00.0\n";
    let line = parse_kmsg_record(record).expect("kmsg record");
    assert_eq!(line.sequence, Some(889));
    assert_eq!(
        line.text,
        &b"NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus."[..]
    );
    assert!(parse_kmsg_record(b"[ 1.0] not kmsg").is_none());
}

#[test]
fn xid_lines_of_current_drivers_parse() {
    let line =
        xid("NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.");
    assert_eq!(
        line,
        XidLine {
            pci: pci(0, 0x3b, 0),
            gpu_instance_id: None,
            compute_instance_id: None,
            code: 79,
            pid: Some(1234),
            process_name: Some("python3"),
            message: "GPU has fallen off the bus.",
        }
    );
    let line = xid(
        "NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter",
    );
    assert_eq!((line.code, line.pid, line.process_name), (13, None, None));
    assert_eq!(
        line.message,
        "Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter"
    );
    let line = xid(
        "NVRM: Xid (PCI:0002:00:00): 119, pid=1582259, name=nvc:[driver], Timeout after 6s of waiting for RPC response from GPU1 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20802a02 0x8).",
    );
    assert_eq!(
        (line.pci, line.code, line.pid, line.process_name),
        (pci(2, 0, 0), 119, Some(1_582_259), Some("nvc:[driver]"))
    );
}

#[test]
fn xid_lines_of_older_drivers_and_variants_parse() {
    let line = xid(
        "NVRM: Xid (0000:3b:00): 48, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
    );
    assert_eq!(
        (line.pci, line.code, line.pid, line.process_name),
        (pci(0, 0x3b, 0), 48, None, None)
    );
    assert!(
        line.message
            .starts_with("An uncorrectable double bit error")
    );
    let line = xid(
        "NVRM: Xid (PCI:0000:2a:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)",
    );
    assert_eq!(
        (line.code, line.message),
        (
            154,
            "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"
        )
    );
    let line = xid(
        "NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). RST: No, D-RST: No",
    );
    assert_eq!(
        (
            line.gpu_instance_id,
            line.compute_instance_id,
            line.pid,
            line.process_name
        ),
        (Some(5), None, Some(7194), None)
    );
    assert_eq!(
        line.message,
        "Contained: CE User Channel (0x9). RST: No, D-RST: No"
    );
    let line = xid(
        "NVRM: Xid (PCI:0000:01:00 GPU-I:02 GPU-CI:01): 43, pid=3188489, name=trigger_xid, channel 0x0b00000a",
    );
    assert_eq!(
        (line.gpu_instance_id, line.compute_instance_id),
        (Some(2), Some(1))
    );
    let line = xid(
        "NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)",
    );
    assert_eq!(
        (line.pci, line.code, line.pid),
        (pci(0x18, 1, 0), 149, None)
    );
    let line = xid(
        "NVRM: Xid (PCI:0000:65:00): 74, pid=<n/a>, name=<unknown>, NVLink: fatal error detected on link 2",
    );
    assert_eq!(
        (line.pid, line.process_name, line.message),
        (None, None, "NVLink: fatal error detected on link 2")
    );
    let line = xid("NVRM: Xid (PCI:0000:3b:00): 38, pid=1659,");
    assert_eq!((line.code, line.pid, line.message), (38, Some(1659), ""));
}

#[test]
fn malformed_xid_lines_say_why() {
    for (text, reason) in [
        (
            "NVRM: Xid (PCI:0000:66:00): abc, pid=1",
            "no Xid code after the PCI location",
        ),
        (
            "NVRM: Xid (PCI:zz:66:00): 13, x",
            "PCI location is not domain:bus:device",
        ),
        ("NVRM: Xid 13, something", "no `(` after `Xid`"),
        (
            "NVRM: Xid (PCI:0000:66:00 13, x",
            "no `)` closing the PCI location",
        ),
        (
            "NVRM: Xid (PCI:0000:66:00) 13, x",
            "no `:` after the PCI location",
        ),
    ] {
        assert_eq!(parse_nvrm(text), NvrmLine::MalformedXid(reason), "{text}");
    }
}

#[test]
fn gpu_uuid_lines_map_pci_to_uuid() {
    assert_eq!(
        parse_nvrm("NVRM: GPU at PCI:0000:01:00: GPU-aeab3757-56a6-7e30-3f7c-1f322454bde2"),
        NvrmLine::GpuUuid {
            pci: pci(0, 1, 0),
            uuid: "GPU-aeab3757-56a6-7e30-3f7c-1f322454bde2"
        }
    );
    assert_eq!(
        parse_nvrm("NVRM: GPU Board Serial Number: 0322518027985"),
        NvrmLine::Other
    );
    assert_eq!(
        parse_nvrm("NVRM: loading NVIDIA UNIX Open Kernel Module"),
        NvrmLine::Other
    );
}

#[test]
fn the_filter_finds_nvrm_anywhere() {
    let filter = NvrmFilter::new();
    assert_eq!(filter.find(b"Nov 27 host kernel: NVRM: Xid"), Some(20));
    assert_eq!(filter.find(b"usb 1-1: new device"), None);
}
