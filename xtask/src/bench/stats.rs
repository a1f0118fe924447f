//! Samples summed up: medians of wall times, percentiles of latencies.

use serde_json::{Value, json};

pub(super) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

pub(super) fn percentiles(v: &mut [u64]) -> Value {
    v.sort_unstable();
    let pct = |p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    json!({"p50_us": pct(0.50), "p99_us": pct(0.99), "max_us": v.last().copied().unwrap_or(0), "n": v.len()})
}
