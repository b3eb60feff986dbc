//! PCIe replay thresholds (DCGM's `GetExpectedPcieReplayRate`): the replays per minute a link of a
//! given generation and width may show at a bit error rate of 1e-12 before it counts as unhealthy.

/// Transfer rate per lane in units of 0.5 GT/s (Gen1 2.5 GT/s … Gen6 64 GT/s); `None` past Gen6.
fn lane_rate_half_gts(gen_: u32) -> Option<u64> {
    match gen_ {
        1 => Some(5),
        2 => Some(10),
        3 => Some(16),
        4 => Some(32),
        5 => Some(64),
        6 => Some(128),
        _ => None,
    }
}

/// Replays per minute a Gen `gen_` x`width` link may show: ceil(1e-12 × lane rate × 60 s × lanes).
/// `None` for a generation or width this table does not know (the rule then says it was not judged).
pub fn replay_threshold_per_minute(gen_: u32, width: u32) -> Option<u64> {
    let half_gts = lane_rate_half_gts(gen_)?;
    if !(1..=32).contains(&width) {
        return None;
    }
    // 1e-12 × (half_gts × 0.5e9) × 60 × width = half_gts × width × 3 / 100.
    Some((half_gts * u64::from(width) * 3).div_ceil(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_dcgms_table() {
        // Rows: Gen1..Gen6; columns: x1, x4, x8, x16 (gpu-health.md §2).
        let table: [[u64; 4]; 6] = [
            [1, 1, 2, 3],
            [1, 2, 3, 5],
            [1, 2, 4, 8],
            [1, 4, 8, 16],
            [2, 8, 16, 31],
            [4, 16, 31, 62],
        ];
        for (row, expected) in table.iter().enumerate() {
            for (col, width) in [1, 4, 8, 16].into_iter().enumerate() {
                let gen_ = row as u32 + 1;
                assert_eq!(
                    replay_threshold_per_minute(gen_, width),
                    Some(expected[col]),
                    "Gen{gen_} x{width}"
                );
            }
        }
    }

    #[test]
    fn unknown_links_have_no_threshold() {
        assert_eq!(replay_threshold_per_minute(0, 16), None);
        assert_eq!(replay_threshold_per_minute(7, 16), None);
        assert_eq!(replay_threshold_per_minute(5, 0), None);
        assert_eq!(replay_threshold_per_minute(5, 64), None);
        assert_eq!(replay_threshold_per_minute(4, 2), Some(2));
    }
}
