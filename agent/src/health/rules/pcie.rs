//! PCIe rules: a link narrower than it can be (a classic silent fault), a generation below the
//! maximum while busy (idle GPUs drop it to save power), and the replay rate against DCGM's table.

use crate::gpu::DeviceSnapshot;

use super::{Out, Window, exceeds_per_minute, gpu_label, seconds};
use crate::health::EvaluateOptions;
use crate::health::pcie::replay_threshold_per_minute;
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// `pcie.link_width`, `pcie.link_gen`, `pcie.replay_rate`.
pub(in crate::health) fn check(
    dev: &DeviceSnapshot,
    window: Window<'_>,
    opts: &EvaluateOptions,
    out: &mut Out,
) {
    let label = gpu_label(dev);
    let i = dev.index;
    let reseat = format!(
        "Drain the node and check GPU {i}'s PCIe path: reseat the GPU or its riser/retimer, check the \
         slot; compare with `nvidia-smi -q -d PCIE -i {i}` and `lspci -vv` (LnkSta vs LnkCap)."
    );
    let width = out.need(
        Rule::PcieLinkWidth,
        "current PCIe link width",
        &dev.pcie_width_current,
    );
    let max_width = width.and(out.need(
        Rule::PcieLinkWidth,
        "maximum PCIe link width",
        &dev.pcie_width_max,
    ));
    if let (Some(&width), Some(&max_width)) = (width, max_width)
        && width < max_width
    {
        out.push(
            Finding::new(
                Rule::PcieLinkWidth,
                Severity::Warn,
                format!("{label}'s PCIe link is downtrained: x{width} of x{max_width} lanes."),
            )
            .with("pcie_width_current", width)
            .with("pcie_width_max", max_width)
            .action(reseat.clone()),
        );
    }
    check_gen(dev, opts, &reseat, out);
    check_replays(dev, window, out);
}

fn check_gen(dev: &DeviceSnapshot, opts: &EvaluateOptions, reseat: &str, out: &mut Out) {
    let Some(&gen_) = out.need(
        Rule::PcieLinkGen,
        "current PCIe generation",
        &dev.pcie_gen_current,
    ) else {
        return;
    };
    let Some(&max_gen) = out.need(
        Rule::PcieLinkGen,
        "maximum PCIe generation",
        &dev.pcie_gen_max,
    ) else {
        return;
    };
    if gen_ >= max_gen {
        return;
    }
    let Some(util) = out.need(
        Rule::PcieLinkGen,
        "GPU utilization (the generation is judged only under load)",
        &dev.utilization,
    ) else {
        return;
    };
    let label = gpu_label(dev);
    let busy = util.gpu_percent >= opts.busy_utilization_percent;
    let finding = if busy {
        Finding::new(
            Rule::PcieLinkGen,
            Severity::Warn,
            format!(
                "{label}'s PCIe link runs at Gen{gen_} of Gen{max_gen} while the GPU is {}% busy.",
                util.gpu_percent
            ),
        )
        .action(reseat)
    } else {
        Finding::new(
            Rule::PcieLinkGen,
            Severity::Info,
            format!(
                "{label}'s PCIe link runs at Gen{gen_} of Gen{max_gen} while the GPU is {}% busy: \
                 idle GPUs lower the generation to save power, so this is judged only under load.",
                util.gpu_percent
            ),
        )
    };
    out.push(
        finding
            .with("pcie_gen_current", gen_)
            .with("pcie_gen_max", max_gen)
            .with("gpu_utilization_percent", util.gpu_percent)
            .with("busy_threshold_percent", opts.busy_utilization_percent),
    );
}

fn check_replays(dev: &DeviceSnapshot, window: Window<'_>, out: &mut Out) {
    let rule = Rule::PcieReplayRate;
    if matches!(window, Window::Missing) {
        return;
    }
    let (Ok(gen_), Ok(width)) = (&dev.pcie_gen_current, &dev.pcie_width_current) else {
        let e = [&dev.pcie_gen_current, &dev.pcie_width_current]
            .into_iter()
            .find_map(|r| r.as_ref().err());
        if let Some(e) = e {
            out.skip(
                rule,
                format!("PCIe link generation/width (needed for the threshold): {e}"),
            );
        }
        return;
    };
    let (gen_, width) = (*gen_, *width);
    let Some(per_minute) = replay_threshold_per_minute(gen_, width) else {
        out.skip(
            rule,
            format!("no replay threshold is known for a Gen{gen_} x{width} link"),
        );
        return;
    };
    let Some((growth, millis)) = out.growth_firing(
        rule,
        "PCIe replay counter",
        window,
        |d| &d.pcie_replay_counter,
        dev,
        |count, millis| exceeds_per_minute(count, per_minute, millis),
    ) else {
        return;
    };
    let secs = seconds(millis);
    let allowed = per_minute as f64 * secs / 60.0;
    let i = dev.index;
    out.push(
        Finding::new(
            rule,
            Severity::Warn,
            format!(
                "{} logged {}{} PCIe replays in {secs:.1} s, above the {allowed:.1} a Gen{gen_} \
                 x{width} link may show in that time ({per_minute} per minute).",
                gpu_label(dev),
                if growth.reset.is_some() {
                    "at least "
                } else {
                    ""
                },
                growth.count,
            ),
        )
        .with("pcie_replays_delta", growth.count)
        .with("window_seconds", secs)
        .with("threshold_replays_per_minute", per_minute)
        .with("threshold_replays_in_window", allowed)
        .with("pcie_gen_current", gen_)
        .with("pcie_width_current", width)
        .with("counter_reset", growth.reset.is_some())
        .action(format!(
            "The PCIe link of GPU {i} is corrupting packets: drain the node and reseat the GPU and \
             its riser/retimer, check the slot; replace the part if replays continue \
             (`nvidia-smi -q -d PCIE -i {i}`)."
        )),
    );
}
