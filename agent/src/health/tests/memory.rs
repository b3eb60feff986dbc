//! ECC, page retirement and row remapping.

use super::*;
use crate::gpu::Architecture;

#[test]
fn volatile_dbe_fails_from_one() {
    assert_eq!(gpu0(|d| d.ecc_volatile_uncorrected = Ok(0)), vec![]);
    let r = eval(&edited(|d| {
        d.ecc_volatile_uncorrected = Ok(1);
        d.ecc_aggregate_uncorrected = Ok(1);
    }));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::EccVolatileDbe, Severity::Fail)]
    );
    let f = finding(&r, 0, Rule::EccVolatileDbe);
    assert_eq!(ev(f, "ecc_aggregate_uncorrected"), 1);
    assert_eq!(ev(f, "remap_pending"), false);
    assert_eq!(
        f.action.as_deref(),
        Some(
            "Drain GPU 0's workloads and reset it (`nvidia-smi -r -i 0`); replace the GPU if uncorrectable errors recur."
        )
    );
}

#[test]
fn aggregate_only_dbe_history_warns() {
    let r = eval(&edited(|d| d.ecc_aggregate_uncorrected = Ok(3)));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::EccAggregateDbe, Severity::Warn)]
    );
    assert_eq!(
        ev(
            finding(&r, 0, Rule::EccAggregateDbe),
            "ecc_volatile_uncorrected"
        ),
        0
    );
    // Volatile unreadable: the aggregate still speaks, and the volatile rule says it did not run.
    let r = eval(&edited(|d| {
        d.ecc_aggregate_uncorrected = Ok(3);
        d.ecc_volatile_uncorrected = err(NvmlReturn::Unknown);
    }));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::EccAggregateDbe, Severity::Warn)]
    );
    assert!(skipped(&r, 0, Rule::EccVolatileDbe).starts_with("volatile uncorrectable ECC count"));
}

#[test]
fn corrected_errors_are_information() {
    let r = eval(&edited(|d| {
        d.ecc_volatile_corrected = Ok(0);
        d.ecc_aggregate_corrected = Ok(12);
    }));
    let f = finding(&r, 0, Rule::EccSbe);
    assert_eq!(f.severity, Severity::Info);
    assert!(f.message.ends_with(
        "corrected 0 single-bit ECC error(s) since the driver loaded (12 in its lifetime)."
    ));
}

#[test]
fn ecc_disabled_warns_and_its_counters_are_not_evaluated() {
    let r = eval(&edited(|d| {
        d.ecc_enabled = Ok(false);
        d.ecc_volatile_uncorrected = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(rules_of(&r, 0), vec![(Rule::EccDisabled, Severity::Warn)]);
    assert!(
        finding(&r, 0, Rule::EccDisabled)
            .action
            .as_deref()
            .unwrap()
            .contains("nvidia-smi -e 1 -i 0")
    );
    assert!(skipped(&r, 0, Rule::EccVolatileDbe).contains("ECC is disabled"));
}

#[test]
fn ecc_not_supported_is_never_counted_as_zero_errors() {
    let r = eval(&edited(|d| {
        d.ecc_enabled = err(NvmlReturn::NotSupported);
        d.ecc_volatile_uncorrected = err(NvmlReturn::NotSupported);
        d.ecc_aggregate_uncorrected = err(NvmlReturn::NotSupported);
        d.ecc_volatile_corrected = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    for rule in [
        Rule::EccDisabled,
        Rule::EccVolatileDbe,
        Rule::EccAggregateDbe,
        Rule::EccSbe,
    ] {
        assert!(
            skipped(&r, 0, rule).contains("NVML_ERROR_NOT_SUPPORTED"),
            "{rule}"
        );
    }
}

/// A Volta GPU: page retirement instead of row remapping.
fn volta(sbe: u32, dbe: u32, pending: bool) -> NodeSnapshot {
    edited(|d| {
        d.architecture = Ok(Architecture::Volta);
        d.retired_pages_sbe = Ok(sbe);
        d.retired_pages_dbe = Ok(dbe);
        d.retired_pages_pending = Ok(pending);
        d.remap_pending = err(NvmlReturn::NotSupported);
        d.remap_failure = err(NvmlReturn::NotSupported);
        d.remapped_rows_correctable = err(NvmlReturn::NotSupported);
        d.remapped_rows_uncorrectable = err(NvmlReturn::NotSupported);
    })
}

#[test]
fn retired_pages_fail_at_63() {
    let r = eval(&volta(50, 12, false));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(
        r.gpus[0].not_evaluated.is_empty(),
        "{:#?}",
        r.gpus[0].not_evaluated
    );
    let r = eval(&volta(50, 13, false));
    assert_eq!(rules_of(&r, 0), vec![(Rule::RetiredPages, Severity::Fail)]);
    assert_eq!(ev(finding(&r, 0, Rule::RetiredPages), "limit_pages"), 63);
}

#[test]
fn dbe_retired_pages_above_15_warn_and_say_what_decides_failure() {
    assert_eq!(rules_of(&eval(&volta(0, 15, false)), 0), vec![]);
    let r = eval(&volta(0, 16, false));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::RetiredPagesDbe, Severity::Warn)]
    );
    assert!(
        finding(&r, 0, Rule::RetiredPagesDbe)
            .message
            .contains("past 7 days")
    );
}

#[test]
fn pending_retirement_warns() {
    let r = eval(&volta(1, 0, true));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::RetiredPagesPending, Severity::Warn)]
    );
}

#[test]
fn unsupported_retirement_is_normal_on_ampere_and_later_but_unchecked_before() {
    // Healthy Hopper: NOT_SUPPORTED, no finding, nothing unchecked (see the healthy scenario test).
    let r = eval(&edited(|d| d.architecture = Ok(Architecture::Ampere)));
    assert!(r.gpus[0].not_evaluated.is_empty());
    // Architecture unreadable, but row remapping answers: still Ampere or later.
    let r = eval(&edited(|d| d.architecture = err(NvmlReturn::Unknown)));
    assert!(
        r.gpus[0].not_evaluated.is_empty(),
        "{:#?}",
        r.gpus[0].not_evaluated
    );
    // A Volta that cannot report retirement: not checked, said so.
    let r = eval(&edited(|d| {
        d.architecture = Ok(Architecture::Volta);
        d.remap_pending = err(NvmlReturn::NotSupported);
        d.remap_failure = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::RetiredPages).contains("NVML_ERROR_NOT_SUPPORTED"));
    assert!(skipped(&r, 0, Rule::RetiredPagesPending).contains("NVML_ERROR_NOT_SUPPORTED"));
    // …and its row remapping is not expected at all.
    assert!(
        r.gpus[0]
            .not_evaluated
            .iter()
            .all(|n| n.check != Rule::RowRemapPending)
    );
}

#[test]
fn row_remap_pending_warns_and_failure_fails() {
    assert_eq!(
        gpu0(|d| d.remap_pending = Ok(true)),
        vec![(Rule::RowRemapPending, Severity::Warn)]
    );
    assert_eq!(
        gpu0(|d| d.remap_failure = Ok(true)),
        vec![(Rule::RowRemapFailure, Severity::Fail)]
    );
    assert_eq!(
        gpu0(|d| {
            d.remap_failure = Ok(true);
            d.remap_pending = Ok(true);
        }),
        vec![
            (Rule::RowRemapFailure, Severity::Fail),
            (Rule::RowRemapPending, Severity::Warn)
        ]
    );
}

#[test]
fn row_remap_unreadable_on_ampere_and_later_is_not_evaluated() {
    // E.g. MIG enabled with active instances.
    let r = eval(&edited(|d| {
        d.remap_pending = err(NvmlReturn::NotSupported);
        d.remap_failure = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::RowRemapPending).starts_with("row remap pending: not supported"));
    assert!(skipped(&r, 0, Rule::RowRemapFailure).starts_with("row remap failure: "));
}
