//! The `memsweep mem` table: limit and where it comes from, usage, working set, cache, swap, pressure, CPUs, host.

use std::fmt::Write;

use crate::probe::MemStatus;
use crate::size::human;

/// The whole table, ending with the `free -h` line when the container's limit is below host RAM.
pub fn table(st: &MemStatus) -> String {
    let mut rows: Vec<(&str, String, String)> = vec![];
    rows.push(("limit", human(st.limit_bytes), limit_origin(st)));
    rows.push((
        "usage",
        human(st.usage_bytes),
        match st.source {
            "host" => "host RAM in use (MemTotal − MemAvailable)".into(),
            _ => "this cgroup, page cache included".into(),
        },
    ));
    rows.push((
        "working set",
        human(st.working_set_bytes),
        "usage minus reclaimable cache: what counts toward OOM".into(),
    ));
    if let Some(c) = st.inactive_file_bytes {
        rows.push((
            "cache",
            human(c),
            "inactive file pages the kernel can reclaim".into(),
        ));
    }
    rows.push((
        "available",
        human(st.available_bytes),
        match st.cgroup_limit_bytes {
            Some(_) => "limit minus working set at the tightest level, at most host MemAvailable",
            None => "host MemAvailable",
        }
        .into(),
    ));
    if let Some(h) = st.memory_high_bytes {
        rows.push((
            "memory.high",
            human(h),
            "throttle: above it the kernel slows this cgroup down".into(),
        ));
    }
    if let Some(p) = st.peak_bytes {
        rows.push((
            "peak",
            human(p),
            "highest usage since the cgroup was made".into(),
        ));
    }
    rows.push(("swap", swap_value(st), swap_detail(st)));
    if let Some(n) = st.oom_kills {
        rows.push((
            "OOM kills",
            n.to_string(),
            "by the kernel in this cgroup".into(),
        ));
    }
    if let Some(p) = st.pressure {
        rows.push((
            "pressure",
            format!("{:.2}%", p.some_avg10),
            format!(
                "of the last 10 s some task {} waited for memory ({:.2}% all did)",
                match st.pressure_from {
                    Some("cgroup") => "in this cgroup",
                    _ => "on the host",
                },
                p.full_avg10
            ),
        ));
    }
    if let Some(c) = st.cpus {
        rows.push((
            "CPUs",
            trim_cpus(c),
            "effective: CPU quota, cpuset and online CPUs".into(),
        ));
    }
    rows.push((
        "host RAM",
        human(st.host_total_bytes),
        format!(
            "{} available (what `free -h` shows)",
            human(st.host_available_bytes)
        ),
    ));

    let mut out = String::new();
    let _ = writeln!(out, "memory where this process runs: {}", heading(st));
    let _ = writeln!(out);
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (label, value, detail) in &rows {
        let _ = writeln!(out, "  {label:<12} {value:>width$}   {detail}");
    }
    if let Some(note) = free_note(st) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{note}");
    }
    out
}

/// The one line for people who trust `free -h`, when the container's limit is below host RAM.
pub fn free_note(st: &MemStatus) -> Option<String> {
    let limit = st.cgroup_limit_bytes?;
    (limit < st.host_total_bytes).then(|| {
        format!(
            "note: `free -h` shows the host's {}, but this container can use only {}.",
            human(st.host_total_bytes),
            human(limit)
        )
    })
}

/// Where the effective limit comes from, in words.
pub fn limit_origin(st: &MemStatus) -> String {
    let from = st.limit_from.as_deref().unwrap_or("?");
    match (st.source, st.cgroup_limit_bytes) {
        ("host", _) => "host RAM: no memory cgroup found".into(),
        (_, None) => "host RAM: the cgroup sets no memory limit".into(),
        (_, Some(l)) if l > st.host_total_bytes => format!(
            "host RAM: the cgroup limit ({}, {from}) is above it",
            human(l)
        ),
        (_, Some(_)) => match st.limit_level {
            Some(0) => format!("cgroup limit of this cgroup ({from})"),
            Some(1) => format!("cgroup limit of the parent cgroup ({from})"),
            Some(n) => format!("cgroup limit {n} levels up ({from})"),
            None => format!("{from}: set on a parent cgroup this container cannot see"),
        },
    }
}

fn heading(st: &MemStatus) -> String {
    match (st.source, &st.cgroup_path) {
        ("cgroup1", Some(p)) => format!("cgroup v1 {p}"),
        ("cgroup2", Some(p)) => format!("cgroup v2 {p}"),
        _ => "the host (no memory cgroup)".into(),
    }
}

fn swap_value(st: &MemStatus) -> String {
    match st.swap_limit_bytes {
        Some(s) => human(s.min(st.host_swap_total_bytes)),
        None => human(st.host_swap_total_bytes),
    }
}

fn swap_detail(st: &MemStatus) -> String {
    match (st.swap_limit_bytes, st.host_swap_total_bytes) {
        (_, 0) => "the host has no swap".into(),
        (Some(s), t) => format!("cgroup swap limit {} of the host's {}", human(s), human(t)),
        (None, _) if st.source == "host" => "host swap".into(),
        (None, _) => "host swap; the cgroup sets no swap limit".into(),
    }
}

fn trim_cpus(c: f64) -> String {
    let s = format!("{c:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited() -> MemStatus {
        MemStatus {
            source: "cgroup1",
            cgroup_path: Some("/x".into()),
            cgroup_limit_bytes: Some(314572800),
            limit_from: Some("/sys/fs/cgroup/memory/x".into()),
            limit_level: Some(0),
            limit_bytes: 314572800,
            usage_bytes: 10 << 20,
            working_set_bytes: 8 << 20,
            inactive_file_bytes: Some(2 << 20),
            available_bytes: 292 << 20,
            host_total_bytes: 24 << 30,
            host_available_bytes: 23 << 30,
            cpus: Some(1.5),
            ..Default::default()
        }
    }

    #[test]
    fn the_table_names_the_limit_and_its_origin() {
        let t = table(&limited());
        assert!(t.contains("300 MiB"), "{t}");
        assert!(
            t.contains("cgroup limit of this cgroup (/sys/fs/cgroup/memory/x)"),
            "{t}"
        );
        assert!(
            t.contains(
                "`free -h` shows the host's 24.0 GiB, but this container can use only 300 MiB"
            ),
            "{t}"
        );
        assert!(t.contains("CPUs") && t.contains("1.5 "), "{t}");
        // Values are right-aligned in one column.
        let cols: Vec<usize> = t
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(|l| l.find("   ").unwrap_or(0))
            .collect();
        assert!(cols.len() > 5);
    }

    #[test]
    fn no_free_note_without_a_limit_below_host_ram() {
        let mut st = limited();
        st.cgroup_limit_bytes = Some(48 << 30);
        st.limit_bytes = 24 << 30;
        assert_eq!(free_note(&st), None);
        assert!(limit_origin(&st).contains("is above it"));
        st.cgroup_limit_bytes = None;
        assert_eq!(free_note(&st), None);
        st.source = "host";
        assert!(table(&st).contains("no memory cgroup"));
    }

    #[test]
    fn invisible_parent_is_explained() {
        let mut st = limited();
        st.limit_level = None;
        st.limit_from = Some("hierarchical_memory_limit of /sys/fs/cgroup/memory".into());
        assert!(limit_origin(&st).contains("cannot see"));
    }
}
