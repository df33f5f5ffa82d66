//! Summaries of repeated measurements.

use std::time::Duration;

/// min / median / max of `v` in seconds, as "a / b / c s".
pub fn summary(v: &[Duration]) -> String {
    if v.is_empty() {
        return "no runs".into();
    }
    let mut s: Vec<f64> = v.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    format!(
        "{:.2} / {:.2} / {:.2} s (min / median / max of {})",
        s[0],
        median,
        s[s.len() - 1],
        s.len()
    )
}

/// All values, for the record.
pub fn list(v: &[Duration]) -> String {
    v.iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command line that reproduces this run.
pub fn command() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("target/release/ha-bench {}", args.join(" "))
}
