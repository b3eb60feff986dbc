//! Summaries of repeated measurements: medians and nearest-rank percentiles over plain samples, so the
//! report never rests on one run.

use std::time::Duration;

/// Repeated measurements of one quantity, in the order they were taken.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<f64>,
}

impl Samples {
    /// Samples from plain values.
    #[cfg(test)]
    pub fn from_values(values: Vec<f64>) -> Samples {
        Samples { values }
    }

    /// Adds one duration, kept in milliseconds.
    pub fn push_duration(&mut self, d: Duration) {
        self.values.push(d.as_secs_f64() * 1e3);
    }

    /// Adds one plain value.
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The median (the mean of the two middle values for an even count); `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let sorted = self.sorted();
        let n = sorted.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(sorted[n / 2]),
            _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
        }
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100): the smallest sample with at least p% of the
    /// samples at or below it; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let sorted = self.sorted();
        if sorted.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(
            Samples::from_values(vec![3.0, 1.0, 2.0]).median(),
            Some(2.0)
        );
        assert_eq!(
            Samples::from_values(vec![4.0, 1.0, 3.0, 2.0]).median(),
            Some(2.5)
        );
        assert_eq!(Samples::default().median(), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::from_values((1..=100).rev().map(f64::from).collect());
        assert_eq!(s.percentile(50.0), Some(50.0));
        assert_eq!(s.percentile(99.0), Some(99.0));
        assert_eq!(s.percentile(100.0), Some(100.0));
        assert_eq!(s.percentile(0.1), Some(1.0));
        let few = Samples::from_values(vec![5.0, 1.0]);
        assert_eq!(few.percentile(99.0), Some(5.0));
        assert_eq!(Samples::default().percentile(50.0), None);
    }

    #[test]
    fn durations_are_kept_in_milliseconds() {
        let mut s = Samples::default();
        s.push_duration(Duration::from_micros(1500));
        assert_eq!(s.median(), Some(1.5));
        assert_eq!(s.len(), 1);
    }
}
