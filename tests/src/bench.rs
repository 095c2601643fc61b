//! A small benchmark harness: medians of repeated timed runs, reported as
//! throughput and as a ratio to a baseline measured in the same run, so that
//! figures from a shared, noisy machine stay comparable.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// One measured row.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// Operations per second (median sample).
    pub ops_per_sec: f64,
    /// Bytes per second (median sample).
    pub bytes_per_sec: f64,
}

/// Settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Timed samples per measurement; the median is reported.
    pub samples: usize,
    /// Target duration of one sample.
    pub sample_time: Duration,
}

impl Settings {
    /// From the command line: `--quick` gives a short smoke run (used in CI
    /// to prove the benchmark works, not for figures).
    #[must_use]
    pub fn from_args() -> Self {
        if std::env::args().any(|a| a == "--quick") {
            Self { samples: 3, sample_time: Duration::from_millis(5) }
        } else {
            Self { samples: 21, sample_time: Duration::from_millis(100) }
        }
    }
}

/// Times `op`, which performs `ops` operations over `bytes` bytes per call,
/// and returns the median of `settings.samples` samples.
pub fn measure(name: &str, settings: Settings, ops: u64, bytes: u64, mut op: impl FnMut()) -> Measurement {
    // Calibrate: how many calls fill one sample.
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < settings.sample_time / 4 || calls == 0 {
        op();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let calls = ((settings.sample_time.as_secs_f64() / per_call).ceil() as u64).max(1);
    let mut rates: Vec<f64> = (0..settings.samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                op();
            }
            calls as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let calls_per_sec = rates[rates.len() / 2];
    black_box(&mut op);
    Measurement {
        name: name.to_string(),
        ops_per_sec: calls_per_sec * ops as f64,
        bytes_per_sec: calls_per_sec * bytes as f64,
    }
}

/// Prints rows as a Markdown table with ratios to `baseline`.
pub fn print_table(title: &str, baseline: &Measurement, rows: &[Measurement]) {
    println!("\n### {title}\n");
    println!("| what | ops/s | GB/s | vs {} |", baseline.name);
    println!("|---|---:|---:|---:|");
    for row in std::iter::once(baseline).chain(rows) {
        println!(
            "| {} | {:.3e} | {:.2} | {:.2}x |",
            row.name,
            row.ops_per_sec,
            row.bytes_per_sec / 1e9,
            row.bytes_per_sec / baseline.bytes_per_sec
        );
    }
}
