//! SVG helpers: escaping, axis labels and steps, the x scale, time axes.

use std::fmt::Write as _;

use super::LEFT;
use crate::size;

/// Escape text for SVG content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A size for an axis: `256 MiB`, `1.5 GiB` (binary units, trailing zeros dropped).
pub(super) fn axis_bytes(b: u64) -> String {
    if b == 0 {
        return "0".into();
    }
    let h = size::human(b);
    match h.split_once(' ') {
        Some((num, unit)) if num.contains('.') => {
            format!("{} {unit}", num.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => h,
    }
}

/// A time for an axis: `0`, `0.5s`, `30s`, `2m`, `1m30s`, `1h`, `1h30m`.
pub(super) fn axis_secs(s: f64) -> String {
    if s == 0.0 {
        return "0".into();
    }
    if s < 1.0 {
        return format!("{s:.1}s");
    }
    let t = s.round() as u64;
    match (t / 3600, (t % 3600) / 60, t % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// A tick step for a time axis of `span` seconds: about 5 to 10 ticks at round values.
pub(super) fn time_step(span: f64) -> f64 {
    const STEPS: [f64; 20] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0, 14400.0, 21600.0, 43200.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|&s| span / s <= 10.0)
        .unwrap_or(86400.0)
}

/// A power-of-two tick step for a byte axis up to `max`: 3 to 8 ticks.
pub(super) fn bytes_step(max: u64) -> u64 {
    let mut step = 1u64;
    while max / step > 6 {
        step *= 2;
    }
    step
}

pub(super) struct Scale {
    pub(super) x_span: f64,
    pub(super) plot_w: f64,
}

impl Scale {
    pub(super) fn x(&self, secs: f64) -> f64 {
        LEFT + secs / self.x_span * self.plot_w
    }
}

/// Vertical grid lines at the time ticks.
pub(super) fn time_axis_grid(s: &mut String, sc: &Scale, top: f64, bottom: f64) {
    let step = time_step(sc.x_span);
    let mut t = 0.0;
    while t <= sc.x_span + 1e-9 {
        let x = sc.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#f0f0f0"/>"##
        );
        t += step;
    }
}

/// Tick labels under a chart; `title` adds the axis title (`Some(resumed)`).
pub(super) fn time_axis(s: &mut String, sc: &Scale, bottom: f64, title: Option<bool>) {
    let step = time_step(sc.x_span);
    let mut t = 0.0;
    while t <= sc.x_span + 1e-9 {
        let x = sc.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{}</text>"##,
            bottom + 4.0,
            bottom + 17.0,
            axis_secs(t)
        );
        t += step;
    }
    if let Some(resumed) = title {
        let text = if resumed {
            "time since the sweep started (runner time: the gaps before each resume are cut out)"
        } else {
            "time since the sweep started"
        };
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{text}</text>"##,
            LEFT + sc.plot_w / 2.0,
            bottom + 34.0
        );
    }
}

pub(super) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}
