//! Timing, summary and output helpers shared by the benchmark examples.

#![allow(dead_code)] // each including example uses a part

use std::path::Path;
use std::time::Instant;

/// How long `f` takes, in milliseconds.
pub fn ms(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1000.0
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

/// Writes the figures, pretty-printed, to `path` (making its directory)
/// and says where.
pub fn write_json(path: &Path, figures: &serde_json::Value) {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(path, serde_json::to_string_pretty(figures).unwrap()).expect("write JSON");
    println!("\nfigures written to {}", path.display());
}
