//! Memory rules: ECC counters, page retirement (before Ampere) and row remapping (Ampere and later).
//! Each generation's mechanism is judged only where it exists: NOT_SUPPORTED from the other one is
//! normal and produces nothing.

use crate::gpu::{Architecture, DeviceSnapshot, NvmlReturn, Reading};

use super::{Out, gpu_label};
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// SBE + DBE retired pages at which DCGM fails the GPU (hardware maximum 64).
pub(in crate::health) const RETIRED_PAGES_LIMIT: u32 = 63;
/// DBE retired pages above which DCGM looks at how recent the retirements are.
pub(in crate::health) const RETIRED_DBE_PAGES_LIMIT: u32 = 15;

/// `ecc.disabled`, `ecc.volatile_dbe`, `ecc.aggregate_dbe`, `ecc.sbe`.
pub(in crate::health) fn check_ecc(dev: &DeviceSnapshot, out: &mut Out) {
    let label = gpu_label(dev);
    let i = dev.index;
    match &dev.ecc_enabled {
        Ok(true) => {}
        Ok(false) => {
            out.push(
                Finding::new(
                    Rule::EccDisabled,
                    Severity::Warn,
                    format!("ECC is disabled on {label}: memory errors are neither corrected nor counted."),
                )
                .with("ecc_enabled", false)
                .action(format!(
                    "Unless it was disabled on purpose, enable ECC (`nvidia-smi -e 1 -i {i}`) and reset \
                     the GPU or reboot the node for it to take effect."
                )),
            );
            for rule in [Rule::EccVolatileDbe, Rule::EccAggregateDbe, Rule::EccSbe] {
                out.skip(rule, "ECC is disabled, so the GPU counts no ECC errors");
            }
            return;
        }
        Err(e) => out.skip(Rule::EccDisabled, format!("ECC mode: {e}")),
    }
    let aggregate_dbe = dev.ecc_aggregate_uncorrected.as_ref().ok().copied();
    match out.need(
        Rule::EccVolatileDbe,
        "volatile uncorrectable ECC count",
        &dev.ecc_volatile_uncorrected,
    ) {
        Some(&volatile) if volatile > 0 => {
            let remap_pending = dev.remap_pending == Ok(true);
            let mut f = Finding::new(
                Rule::EccVolatileDbe,
                Severity::Fail,
                format!(
                    "{label} had {volatile} uncorrectable (double-bit) ECC error(s) since the driver \
                     loaded: data on it may be corrupt."
                ),
            )
            .with("ecc_volatile_uncorrected", volatile)
            .action(if remap_pending {
                format!(
                    "Drain GPU {i}'s workloads, then reset it (`nvidia-smi -r -i {i}`) so the pending \
                     row remap takes effect; replace the GPU if uncorrectable errors recur."
                )
            } else {
                format!(
                    "Drain GPU {i}'s workloads and reset it (`nvidia-smi -r -i {i}`); replace the GPU \
                     if uncorrectable errors recur."
                )
            });
            if let Some(a) = aggregate_dbe {
                f = f.with("ecc_aggregate_uncorrected", a);
            }
            out.push(f.with("remap_pending", remap_pending));
        }
        volatile => {
            if let Some(aggregate) = out.need(
                Rule::EccAggregateDbe,
                "aggregate uncorrectable ECC count",
                &dev.ecc_aggregate_uncorrected,
            ) && *aggregate > 0
            {
                let mut f = Finding::new(
                    Rule::EccAggregateDbe,
                    Severity::Warn,
                    format!(
                        "{label} has {aggregate} uncorrectable ECC error(s) in its lifetime (none \
                         counted since the driver loaded)."
                    ),
                )
                .with("ecc_aggregate_uncorrected", *aggregate)
                .action(format!(
                    "Watch GPU {i} for new errors and check its row remapping (`nvidia-smi -q -d \
                     ROW_REMAPPER -i {i}`); a GPU whose errors keep coming back is an RMA candidate."
                ));
                if let Some(v) = volatile {
                    f = f.with("ecc_volatile_uncorrected", *v);
                }
                out.push(f);
            }
        }
    }
    if let Some(&volatile) = out.need(
        Rule::EccSbe,
        "volatile corrected ECC count",
        &dev.ecc_volatile_corrected,
    ) {
        let aggregate = dev.ecc_aggregate_corrected.as_ref().ok().copied();
        if volatile > 0 || aggregate.unwrap_or(0) > 0 {
            let mut f = Finding::new(
                Rule::EccSbe,
                Severity::Info,
                format!(
                    "{label} corrected {volatile} single-bit ECC error(s) since the driver loaded{}.",
                    aggregate.map_or(String::new(), |a| format!(" ({a} in its lifetime)"))
                ),
            )
            .with("ecc_volatile_corrected", volatile);
            if let Some(a) = aggregate {
                f = f.with("ecc_aggregate_corrected", a);
            }
            out.push(f);
        }
    }
}

/// Whether NVML said the feature does not exist on this GPU.
fn unsupported<T>(r: &Reading<T>) -> bool {
    matches!(r, Err(e) if e.code == NvmlReturn::NotSupported)
}

/// Ampere or later, judged by the architecture or, when unreadable, by row remapping answering.
fn remaps_rows(dev: &DeviceSnapshot) -> bool {
    match dev.architecture {
        Ok(a) => a >= Architecture::Ampere && a != Architecture::Unknown,
        Err(_) => dev.remap_pending.is_ok() || dev.remap_failure.is_ok(),
    }
}

/// `memory.retired_pages`, `memory.retired_pages_dbe`, `memory.retired_pages_pending` (pre-Ampere).
pub(in crate::health) fn check_retired_pages(dev: &DeviceSnapshot, out: &mut Out) {
    let all_unsupported = unsupported(&dev.retired_pages_sbe)
        && unsupported(&dev.retired_pages_dbe)
        && unsupported(&dev.retired_pages_pending);
    if all_unsupported && remaps_rows(dev) {
        return; // Row remapping replaced page retirement.
    }
    let label = gpu_label(dev);
    let i = dev.index;
    let sbe = out.need(
        Rule::RetiredPages,
        "retired pages (SBE)",
        &dev.retired_pages_sbe,
    );
    let dbe = dev.retired_pages_dbe.as_ref();
    match (sbe, dbe) {
        (Some(&sbe), Ok(&dbe)) if sbe.saturating_add(dbe) >= RETIRED_PAGES_LIMIT => out.push(
            Finding::new(
                Rule::RetiredPages,
                Severity::Fail,
                format!(
                    "{label} has retired {} memory pages ({sbe} for single-bit, {dbe} for double-bit \
                     errors), at the limit of {RETIRED_PAGES_LIMIT}: it has no spare pages left.",
                    sbe + dbe
                ),
            )
            .with("retired_pages_sbe", sbe)
            .with("retired_pages_dbe", dbe)
            .with("limit_pages", RETIRED_PAGES_LIMIT)
            .action(format!("Drain GPU {i} and replace it (RMA).")),
        ),
        (Some(_), Err(e)) => out.skip(Rule::RetiredPages, format!("retired pages (DBE): {e}")),
        _ => {}
    }
    if let Some(&dbe) = out.need(
        Rule::RetiredPagesDbe,
        "retired pages (DBE)",
        &dev.retired_pages_dbe,
    ) && dbe > RETIRED_DBE_PAGES_LIMIT
    {
        out.push(
            Finding::new(
                Rule::RetiredPagesDbe,
                Severity::Warn,
                format!(
                    "{label} has retired {dbe} pages for double-bit errors (more than \
                     {RETIRED_DBE_PAGES_LIMIT}); it fails if more than one of them is from the past \
                     7 days, which needs the retirement timestamps to tell."
                ),
            )
            .with("retired_pages_dbe", dbe)
            .with("limit_pages", RETIRED_DBE_PAGES_LIMIT)
            .action(format!(
                "Check the retirement dates (`nvidia-smi -q -d PAGE_RETIREMENT -i {i}`); if more than \
                 one is from the past week, drain and replace GPU {i}."
            )),
        );
    }
    if let Some(true) = out.need(
        Rule::RetiredPagesPending,
        "pending page retirement",
        &dev.retired_pages_pending,
    ) {
        out.push(
            Finding::new(
                Rule::RetiredPagesPending,
                Severity::Warn,
                format!(
                    "{label} has a page retirement pending: it takes effect at the next reset."
                ),
            )
            .with("retired_pages_pending", true)
            .action(format!(
                "Drain GPU {i}'s workloads and reset it (`nvidia-smi -r -i {i}`) or reload the \
                 driver so the retirement takes effect."
            )),
        );
    }
}

/// `memory.row_remap_failure`, `memory.row_remap_pending` (Ampere+).
pub(in crate::health) fn check_row_remap(dev: &DeviceSnapshot, out: &mut Out) {
    if unsupported(&dev.remap_pending) && unsupported(&dev.remap_failure) && !remaps_rows(dev) {
        return; // Pre-Ampere: page retirement instead.
    }
    let label = gpu_label(dev);
    let i = dev.index;
    let rows = |mut f: Finding| {
        if let Ok(n) = dev.remapped_rows_correctable {
            f = f.with("remapped_rows_correctable", n);
        }
        if let Ok(n) = dev.remapped_rows_uncorrectable {
            f = f.with("remapped_rows_uncorrectable", n);
        }
        f
    };
    if let Some(true) = out.need(
        Rule::RowRemapFailure,
        "row remap failure",
        &dev.remap_failure,
    ) {
        out.push(rows(
            Finding::new(
                Rule::RowRemapFailure,
                Severity::Fail,
                format!(
                    "{label} failed to remap a memory row: a bank has no spare rows left, so the \
                     faulty memory stays in use."
                ),
            )
            .with("remap_failure", true)
            .action(format!(
                "Drain GPU {i} and replace it (RMA candidate); keep workloads off it until then."
            )),
        ));
    }
    if let Some(true) = out.need(
        Rule::RowRemapPending,
        "row remap pending",
        &dev.remap_pending,
    ) {
        out.push(rows(
            Finding::new(
                Rule::RowRemapPending,
                Severity::Warn,
                format!(
                    "{label} has a row remap pending: reset required before trusting it for new \
                     tenants."
                ),
            )
            .with("remap_pending", true)
            .action(format!(
                "Drain GPU {i}'s workloads and reset it (`nvidia-smi -r -i {i}`) so the pending row \
                 remap takes effect; running jobs may finish first."
            )),
        ));
    }
}
