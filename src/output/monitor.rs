//! What `memsweep monitor` shows and writes: one sample (the JSON line of `--log`), the live
//! terminal view, and the SVG timeline `memsweep show --svg` draws from a monitor log.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::size::human;

/// One process among those using the most memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopProc {
    pub pid: i32,
    pub rss_bytes: u64,
    pub command: String,
}

/// One sample: a line of the `--log` file. `t` is seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t: f64,
    pub working_set_bytes: u64,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub available_bytes: u64,
    pub psi_some_avg10: Option<f64>,
    pub psi_full_avg10: Option<f64>,
    pub oom_kills: Option<u64>,
    /// The working set at which the monitor warns.
    pub warn_bytes: u64,
    /// This sample crossed the warning line (a warning was printed, --on-warn ran).
    pub warned: bool,
    pub top: Vec<TopProc>,
}

/// The live view: limit, working set, PSI and the top processes with their RSS.
pub fn view(s: &Sample, scope: &str, interval: f64, rows: usize) -> String {
    let mut o = String::new();
    let pct = |b: u64| 100.0 * b as f64 / s.limit_bytes.max(1) as f64;
    let _ = writeln!(
        o,
        "memsweep monitor · {scope} · every {interval}s (Ctrl-C to stop)"
    );
    let _ = writeln!(
        o,
        "limit {}   working set {} ({:.0}%)   usage {}   available {}   warn at {}",
        human(s.limit_bytes),
        human(s.working_set_bytes),
        pct(s.working_set_bytes),
        human(s.usage_bytes),
        human(s.available_bytes),
        human(s.warn_bytes)
    );
    let width = 50usize;
    let filled = ((pct(s.working_set_bytes) / 100.0) * width as f64).round() as usize;
    let warn_at = ((pct(s.warn_bytes) / 100.0) * width as f64).round() as usize;
    let bar: String = (0..width)
        .map(|i| match (i < filled.min(width), i == warn_at) {
            (_, true) => '|',
            (true, _) => '#',
            _ => '.',
        })
        .collect();
    let _ = writeln!(o, "[{bar}]");
    let psi = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let _ = writeln!(
        o,
        "PSI memory some {}  full {} (avg10, %)   OOM kills {}",
        psi(s.psi_some_avg10),
        psi(s.psi_full_avg10),
        s.oom_kills.map_or("-".into(), |n| n.to_string())
    );
    let _ = writeln!(o, "\n{:>8}  {:>10}  COMMAND", "PID", "RSS");
    for p in s.top.iter().take(rows) {
        let cmd: String = p.command.chars().take(100).collect();
        let _ = writeln!(o, "{:>8}  {:>10}  {cmd}", p.pid, human(p.rss_bytes));
    }
    o
}

/// Parse a monitor log; an unparsable last line (a monitor killed mid-write) is dropped, any
/// other is an error naming FILE:LINE.
pub fn parse_log(text: &str, path: &str) -> Result<Vec<Sample>, String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str::<Sample>(l) {
            Ok(s) => out.push(s),
            Err(_) if i + 1 == lines.len() && i > 0 => {}
            Err(e) => return Err(format!("{path}:{}: not a monitor sample: {e}", i + 1)),
        }
    }
    Ok(out)
}

/// The timeline of a monitor log: working set and usage over time, with the limit and the
/// warning line, and a mark at each warning.
pub fn timeline_svg(samples: &[Sample], title: &str) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 360.0;
    const L: f64 = 80.0;
    const R: f64 = 20.0;
    const T: f64 = 50.0;
    const B: f64 = 40.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{L}" y="20" font-size="15">{}</text>"#,
        esc(title)
    );
    let Some(first) = samples.first() else {
        let _ = writeln!(o, r#"<text x="{L}" y="80">no samples</text></svg>"#);
        return o;
    };
    let t0 = first.t;
    let t1 = samples.last().map_or(t0, |s| s.t).max(t0 + 1.0);
    let ymax = samples
        .iter()
        .map(|s| s.limit_bytes.max(s.usage_bytes).max(s.working_set_bytes))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.05;
    let x = |t: f64| L + (t - t0) / (t1 - t0) * (W - L - R);
    let y = |b: u64| T + (1.0 - b as f64 / ymax) * (H - T - B);
    let _ = writeln!(
        o,
        r##"<text x="{L}" y="38" fill="#555">{} samples over {:.0} s; peak working set {}</text>"##,
        samples.len(),
        t1 - t0,
        human(
            samples
                .iter()
                .map(|s| s.working_set_bytes)
                .max()
                .unwrap_or(0)
        )
    );
    for i in 0..=4 {
        let b = (ymax / 1.05 * i as f64 / 4.0) as u64;
        let _ = writeln!(
            o,
            r##"<line x1="{L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            W - R,
            L - 6.0,
            y(b) + 4.0,
            human(b),
            yy = y(b)
        );
    }
    let path = |f: &dyn Fn(&Sample) -> u64| -> String {
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { " L" },
                    x(s.t),
                    y(f(s))
                )
            })
            .collect()
    };
    type Line<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(&Sample) -> u64);
    let lines: [Line; 4] = [
        ("limit", "#c0392b", "6 3", &|s| s.limit_bytes),
        ("warn", "#e67e22", "3 3", &|s| s.warn_bytes),
        ("usage", "#95a5a6", "", &|s| s.usage_bytes),
        ("working set", "#222", "", &|s| s.working_set_bytes),
    ];
    for (i, (name, color, dash, f)) in lines.iter().enumerate() {
        let _ = writeln!(
            o,
            r#"<path d="{}" fill="none" stroke="{color}" stroke-width="1.6" stroke-dasharray="{dash}"/>"#,
            path(*f)
        );
        let lx = W - R - 110.0 * (4 - i) as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{lx}" x2="{}" y1="{H}" y2="{H}" transform="translate(0,-12)" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{name}</text>"#,
            lx + 20.0,
            lx + 24.0,
            H - 8.0
        );
    }
    for s in samples.iter().filter(|s| s.warned) {
        let _ = writeln!(
            o,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#e67e22"><title>warning: {}</title></circle>"##,
            x(s.t),
            y(s.working_set_bytes),
            human(s.working_set_bytes)
        );
    }
    let _ = writeln!(
        o,
        r##"<text x="{L}" y="{}" fill="#555">0 s</text><text x="{}" y="{}" text-anchor="end" fill="#555">{:.0} s</text>"##,
        H - B + 16.0,
        W - R,
        H - B + 16.0,
        t1 - t0
    );
    o.push_str("</svg>\n");
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, ws: u64, warned: bool) -> Sample {
        Sample {
            t,
            working_set_bytes: ws,
            usage_bytes: ws + 10,
            limit_bytes: 1000,
            available_bytes: 1000 - ws,
            psi_some_avg10: Some(0.5),
            psi_full_avg10: None,
            oom_kills: Some(0),
            warn_bytes: 800,
            warned,
            top: vec![TopProc {
                pid: 7,
                rss_bytes: 300 << 20,
                command: "python train.py".into(),
            }],
        }
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_other_garbage_named() {
        let a = serde_json::to_string(&sample(1.0, 100, false)).unwrap();
        let text = format!("{a}\n{a}\n{{\"t\":3");
        assert_eq!(parse_log(&text, "m.jsonl").unwrap().len(), 2);
        let err = parse_log(&format!("{a}\nnope\n{a}\n"), "m.jsonl").unwrap_err();
        assert!(err.starts_with("m.jsonl:2:"), "{err}");
    }

    #[test]
    fn the_view_and_the_plot_show_what_was_measured() {
        let v = view(&sample(1.0, 850, true), "container", 2.0, 5);
        assert!(v.contains("85%"), "{v}");
        assert!(v.contains("300.0 MiB") || v.contains("300 MiB"), "{v}");
        assert!(v.contains("python train.py"), "{v}");
        let svg = timeline_svg(&[sample(0.0, 100, false), sample(4.0, 850, true)], "m");
        assert!(svg.contains("<circle"), "a warning mark");
        assert!(svg.contains("2 samples over 4 s"), "{svg}");
    }
}
