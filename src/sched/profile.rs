//! Memory over time: a job's usage in each eighth of its life (the k-segments of KS+), recorded
//! while it runs in bounded space and kept in history, so admission can plan with when a job
//! holds what instead of its peak from second 0. Pure.

use serde::{Deserialize, Serialize};

/// Segments of a job's life in a profile.
pub const SEGMENTS: usize = 8;
/// Buckets the recorder keeps; when time outgrows them, neighbours merge and the width doubles.
const BUCKETS: usize = 64;
/// The recorder's first bucket width in seconds.
const FIRST_WIDTH_S: f64 = 0.02;

/// A finished job's memory over its life.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Seconds the job ran on its own clock (pauses excluded): what the eighths divide.
    #[serde(default)]
    pub run_s: f32,
    /// Seconds from the start until usage first came within 5% of the peak.
    pub t_peak_s: f32,
    /// The largest usage in each eighth of its life, in thousandths of the peak.
    pub seg: [u16; SEGMENTS],
}

impl Profile {
    /// The largest fraction of the peak held in life fractions `[from, to]` (clamped to 0..1).
    pub fn max_between(&self, from: f64, to: f64) -> f64 {
        let k = |f: f64| ((f.clamp(0.0, 1.0) * SEGMENTS as f64) as usize).min(SEGMENTS - 1);
        let (a, b) = (k(from), k(to.max(from)));
        self.seg[a..=b].iter().copied().max().unwrap_or(1000) as f64 / 1000.0
    }

    /// The most the job holds before a late jump (its whole peak, 1.0, if it never jumps late).
    /// Planning counts at least this at any point of its life: a recorded ramp may have been
    /// slow (a busy machine) and come fast next time, but a late jump is what the profile is
    /// for.
    pub fn before_jump(&self) -> f64 {
        let mut before = 0u16;
        for (i, &s) in self.seg.iter().enumerate() {
            if i >= 2 && s >= before + 333 {
                return f64::from(before) / 1000.0;
            }
            before = before.max(s);
        }
        1.0
    }

    /// What planning counts the job holds within life fractions `[from, to]`.
    pub fn level_between(&self, from: f64, to: f64) -> f64 {
        self.max_between(from, to).max(self.before_jump())
    }

    /// Whether the job grows late: some later eighth holds clearly more (by a third of the peak)
    /// than everything before it — a plateau that is not the end of growth.
    pub fn jumps_late(&self) -> bool {
        let mut before = 0u16;
        for (i, &s) in self.seg.iter().enumerate() {
            if i >= 2 && s >= before + 333 {
                return true;
            }
            before = before.max(s);
        }
        false
    }
}

/// Records a running job's usage over time in [`BUCKETS`] maxima whose width doubles as the
/// job runs on (bounded memory for any run time).
#[derive(Debug, Clone)]
pub struct Recorder {
    width: f64,
    max: [u64; BUCKETS],
    seen: u32,
    level: u64,
    t_level: f64,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            width: FIRST_WIDTH_S,
            max: [0; BUCKETS],
            seen: 0,
            level: 0,
            t_level: 0.0,
        }
    }
}

impl Recorder {
    /// Usage `bytes` at `age` seconds of the job's own running time.
    pub fn record(&mut self, age: f64, bytes: u64) {
        let age = age.max(0.0);
        while age >= self.width * BUCKETS as f64 {
            for i in 0..BUCKETS / 2 {
                self.max[i] = self.max[2 * i].max(self.max[2 * i + 1]);
            }
            self.max[BUCKETS / 2..].fill(0);
            self.seen = self.seen.div_ceil(2);
            self.width *= 2.0;
        }
        let i = ((age / self.width) as usize).min(BUCKETS - 1);
        self.max[i] = self.max[i].max(bytes);
        self.seen = self.seen.max(i as u32 + 1);
        if bytes as f64 > self.level as f64 * 1.05 {
            self.level = bytes;
            self.t_level = age;
        }
    }

    /// The age (seconds of the job's own time) at which its usage first reached `bytes`: the
    /// middle of the first bucket holding that much, or None if it never did.
    pub fn first_reached(&self, bytes: u64) -> Option<f64> {
        self.max[..self.seen as usize]
            .iter()
            .position(|&m| m >= bytes)
            .map(|i| (i as f64 + 0.5) * self.width)
    }

    /// The profile of a job that ran `wall` seconds (of its own time) and peaked at `peak`.
    pub fn finish(&self, wall: f64, peak: u64) -> Option<Profile> {
        if self.seen == 0 || peak == 0 || wall <= 0.0 {
            return None;
        }
        let mut seg = [0u16; SEGMENTS];
        let mut last = 0u64;
        for (s, out) in seg.iter_mut().enumerate() {
            let (a, b) = (
                wall * s as f64 / SEGMENTS as f64,
                wall * (s + 1) as f64 / SEGMENTS as f64,
            );
            // The buckets whose middle lies in this eighth (at least the one holding its start).
            let first = ((a / self.width - 0.5).ceil().max(0.0) as usize).min(BUCKETS - 1);
            let end = ((b / self.width - 0.5).ceil().max(0.0) as usize).min(self.seen as usize);
            let m = (first..end.max(first + 1))
                .filter(|&i| i < BUCKETS)
                .map(|i| self.max[i])
                .max()
                .unwrap_or(0);
            // No sample in this eighth: it held what it held before.
            let m = if m == 0 { last } else { m };
            last = m;
            *out = ((m.min(peak) as f64 / peak as f64) * 1000.0).round() as u16;
        }
        // The last eighth may end between samples, as the job exits: it holds at least its
        // peak's share if the peak came there.
        Some(Profile {
            run_s: wall as f32,
            t_peak_s: self.t_level.min(wall) as f32,
            seg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIB: u64 = 1 << 20;

    #[test]
    fn a_late_jump_is_recorded_in_its_eighth() {
        // 150 MiB from 0.1 s, 450 MiB from 3.0 s, ends at 4.0 s; sampled every 25 ms.
        let mut r = Recorder::default();
        let mut t = 0.0;
        while t < 4.0 {
            let u = if t < 0.1 {
                (t / 0.1 * 150.0) as u64 * MIB
            } else if t < 3.0 {
                150 * MIB
            } else {
                450 * MIB
            };
            r.record(t, u);
            t += 0.025;
        }
        let p = r.finish(4.0, 450 * MIB).unwrap();
        assert_eq!(p.seg, [333, 333, 333, 333, 333, 333, 1000, 1000]);
        assert!((p.t_peak_s - 3.0).abs() < 0.03, "{}", p.t_peak_s);
        assert!(p.jumps_late());
        // The jump, at 3.0 of 4.0 s, is in the seventh eighth (0.75–0.875).
        assert_eq!(p.max_between(0.0, 0.8), 1.0);
        assert!((p.max_between(0.1, 0.7) - 0.333).abs() < 1e-9);
        // When the running job first held each level (to a bucket, 80 ms by now).
        assert!((r.first_reached(450 * MIB).unwrap() - 3.0).abs() <= 0.04);
        assert!((r.first_reached(150 * MIB).unwrap() - 0.1).abs() <= 0.04);
        assert_eq!(r.first_reached(451 * MIB), None);
    }

    #[test]
    fn a_long_job_fits_in_the_same_buckets_and_a_flat_one_does_not_jump() {
        let mut r = Recorder::default();
        for i in 0..36_000 {
            let t = i as f64 * 0.1;
            r.record(
                t,
                if t < 60.0 {
                    (t / 60.0 * 1000.0) as u64 * MIB
                } else {
                    1000 * MIB
                },
            );
        }
        let p = r.finish(3600.0, 1000 * MIB).unwrap();
        assert_eq!(p.seg, [1000; 8]);
        assert!(!p.jumps_late());
        assert!(p.t_peak_s < 60.0);
        assert_eq!(Recorder::default().finish(1.0, 5), None);
    }
}
