//! The process's own resources, read from `/proc` at scrape time under the standard
//! `process_*` names.

use prometheus_client::registry::Registry;

/// Seconds since the Unix epoch at boot, from `/proc/stat`.
fn boot_time_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn sysconf(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf takes a constant and has no other effect.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as f64)
}

/// Registers CPU seconds, resident memory, open descriptors and the start time.
pub(super) fn register(r: &mut Registry) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let (Some(ticks), Some(page)) = (sysconf(libc::_SC_CLK_TCK), sysconf(libc::_SC_PAGESIZE))
    else {
        return;
    };
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        super::float_counter(
            r,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            (utime + stime) / ticks,
        );
    }
    if let Some(rss) = field(24) {
        super::float_gauge(
            r,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            rss * page,
        );
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time_s()) {
        super::float_gauge(
            r,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            boot + start / ticks,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        super::float_gauge(
            r,
            "process_open_fds",
            "Number of open file descriptors",
            fds.count() as f64,
        );
    }
}
