//! Process CPU time and peak memory from /proc (Linux), for benchmarks.

/// User + system CPU seconds recorded in a `/proc/.../stat` file (10 ms ticks).
fn stat_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Some((ticks(11) + ticks(12)) / 100.0)
}

/// CPU seconds of the calling thread (falls back to the whole process).
pub fn thread_cpu_seconds() -> f64 {
    stat_seconds("/proc/thread-self/stat")
        .or_else(|| stat_seconds("/proc/self/stat"))
        .unwrap_or(0.0)
}

/// Peak resident set size in MiB (VmHWM).
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Current resident set size in MiB (VmRSS).
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(key: &str) -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
