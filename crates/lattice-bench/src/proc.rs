//! Readings about this process: CPU time, and from `/proc` resident memory and bytes
//! written to storage (Linux only, as the machines these figures come from; elsewhere
//! those read as zero).

use std::fs;

/// CPU time of the whole process (every thread, the store's writers included), in
/// nanoseconds, from `CLOCK_PROCESS_CPUTIME_ID`: exact to the call, unlike `/proc`'s
/// per-thread figures, which lag a running thread by up to a scheduler tick.
pub fn cpu_ns() -> u64 {
    cpu_time::ProcessTime::now()
        .as_duration()
        .as_nanos()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// Resident set size in bytes (`VmRSS`).
pub fn rss_bytes() -> u64 {
    status_kb("VmRSS:") * 1024
}

/// Peak resident set size in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> u64 {
    status_kb("VmHWM:") * 1024
}

fn status_kb(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes this process caused to be written to storage (`write_bytes` of `/proc/self/io`).
pub fn write_bytes() -> u64 {
    fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Milliseconds from nanoseconds, for reports.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}
