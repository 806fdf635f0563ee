//! A sweep simulator for the policy (tests only): the benchmark's workloads (bench/workloads),
//! run through [`Sched`] on a simulated clock with the engine's sampling, exit handling and
//! kernel memory events, a first run with no history and a second with what it learned, against
//! the clairvoyant peak-reserving reference the benchmark reports. Makespans here are simulated
//! seconds, deterministic: the policy's numbers, not the machine's.

use super::features;
use super::similar::Similar;
use super::*;

/// The workload program's own memory before it grows (bench/harness.py BASE_MIB).
const BASE: u64 = 3 * MIB / 2;
/// Faulting pages in: ~0.4 ms per MiB on the benchmark machine.
const FAULT_S_PER_MIB: f64 = 0.0004;
/// Process start (fork, exec, the program's own start) before it allocates.
const START_S: f64 = 0.01;
/// Memory in the container besides the jobs (memsweep itself).
const OTHER: u64 = 8 * MIB;
const TICK: f64 = 0.005;
/// The benchmark machine's cores.
const CORES: f64 = 2.0;

/// One job as bench/workload.c runs it: grow to `mem` over `ramp`, hold, and jump to `jump` at
/// `jump_at` of the hold.
#[derive(Debug, Clone)]
pub struct Spec {
    pub mem: u64,
    pub ramp: f64,
    pub hold: f64,
    pub jump: u64,
    pub jump_at: f64,
    pub line: String,
    pub params: Vec<(String, String)>,
}

impl Spec {
    fn life(&self) -> f64 {
        START_S
            + self
                .ramp
                .max(self.mem as f64 / MIB as f64 * FAULT_S_PER_MIB)
            + self.hold
    }

    fn peak(&self) -> u64 {
        self.mem.max(self.jump) + BASE
    }

    /// The share of a core it needs after `p` seconds of its own progress: faulting pages in
    /// while it grows (the whole ramp, if the ramp is no longer than the faulting takes), else
    /// nothing (it sleeps).
    fn cpu(&self, p: f64) -> f64 {
        let p = p - START_S;
        let mib = |b: u64| b as f64 / MIB as f64;
        let fault = mib(self.mem) * FAULT_S_PER_MIB;
        let ramp = self.ramp.max(fault);
        if (0.0..ramp).contains(&p) {
            return fault / ramp;
        }
        let at = ramp + self.jump_at * self.hold;
        let jump_fault = mib(self.jump.saturating_sub(self.mem)) * FAULT_S_PER_MIB;
        if self.jump > self.mem && (at..at + jump_fault).contains(&p) {
            return 1.0;
        }
        0.0
    }

    /// Usage after `p` seconds of its own progress.
    fn usage(&self, p: f64) -> u64 {
        if p < START_S {
            return BASE / 2;
        }
        let p = p - START_S;
        let ramp = self
            .ramp
            .max(self.mem as f64 / MIB as f64 * FAULT_S_PER_MIB);
        // bench/workload.c grows in 20 steps a second: each step's pages are touched as fast as
        // they fault in, then it sleeps to the next step (a sample right after a step sees a
        // growth rate twice the ramp's).
        let steps = (self.ramp * 20.0).round().max(1.0);
        let step_dt = ramp / steps;
        let chunk = self.mem as f64 / steps;
        let k = (p / step_dt).floor();
        let in_step = ((p - k * step_dt) / (chunk / MIB as f64 * FAULT_S_PER_MIB)).min(1.0);
        let grown = if p >= ramp {
            self.mem
        } else {
            (chunk * (k + in_step)) as u64
        };
        let at = ramp + self.jump_at * self.hold;
        let jumped = if self.jump > self.mem && p >= at {
            let fast = (self.jump - self.mem) as f64 / MIB as f64 * FAULT_S_PER_MIB;
            self.mem + ((self.jump - self.mem) as f64 * ((p - at) / fast).min(1.0)) as u64
        } else {
            0
        };
        BASE + grown.max(jumped)
    }
}

/// A workload file's jobs (`k=v` words as bench/workload.c reads them). `grid` lines (model,
/// seed) become a `-p` sweep's parameters.
pub fn workload(text: &str) -> Vec<Spec> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let kv: Vec<(&str, &str)> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let get = |k: &str| kv.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let num = |k: &str, d: f64| get(k).map_or(d, |v| v.parse().unwrap());
        let model = get("model");
        let mem = match model {
            Some("large") => 600.0,
            Some("medium") => 300.0,
            Some(_) => 100.0,
            None => num("mem", 0.0),
        };
        let seed = get("seed").map(|s| s.parse::<u32>().unwrap());
        let hold = match (get("hold"), seed) {
            (Some(h), _) => h.parse().unwrap(),
            (None, Some(s)) => 1.0 + 0.2 * f64::from(s % 4),
            _ => 0.0,
        };
        let params = match (model, seed) {
            (Some(m), Some(s)) => vec![
                ("seed".to_string(), s.to_string()),
                ("model".to_string(), m.to_string()),
            ],
            _ => Vec::new(),
        };
        out.push(Spec {
            mem: (mem * MIB as f64) as u64,
            ramp: num("ramp", 0.0),
            hold,
            jump: (num("jump", 0.0) * MIB as f64) as u64,
            jump_at: num("jump_at", 0.75),
            line: format!("/bench/build/workload {line}"),
            params,
        });
    }
    out
}

/// What a finished run left in history for each job: peak, wall time, profile.
pub type Learned = Vec<Option<(u64, f64, Option<Profile>)>>;

#[derive(Debug, Clone)]
pub struct Outcome {
    pub makespan: f64,
    pub pauses: u32,
    pub false_pauses: u32,
    pub paused_s: f64,
    pub job_s: f64,
    pub requeues: u32,
    pub requeued_out: u32,
    /// The most the container held, and whether it ever reached the limit (an OOM kill).
    pub max_ws: u64,
    pub oom: bool,
    pub learned: Learned,
}

impl Outcome {
    /// Paused job-seconds, % of job-seconds.
    pub fn paused_pct(&self) -> f64 {
        100.0 * self.paused_s / self.job_s
    }
}

/// The benchmark's cgroup: 1.5 GiB, the default reserve.
pub fn bench_config() -> Config {
    Config {
        budget: Budget::new(1536 * MIB, None).unwrap(),
        container: None,
        cap: None,
        on_pressure: OnPressure::Pause,
        retries: 3,
    }
}

/// The estimator and queue `memsweep run` builds (commands/run.rs), from a previous run's
/// records when given.
fn setup(specs: &[Spec], history: Option<&Learned>) -> (Estimator, Vec<usize>) {
    let feats: Vec<features::Features> = if specs.iter().all(|s| !s.params.is_empty()) {
        specs.iter().map(|s| s.params.clone()).collect()
    } else {
        features::from_lines(&specs.iter().map(|s| s.line.as_str()).collect::<Vec<_>>())
    };
    let mut similar = Similar::new(&feats);
    let n = specs.len();
    let own: Learned = history.cloned().unwrap_or_else(|| vec![None; n]);
    for (f, o) in feats.iter().zip(&own) {
        if let Some((peak, wall, profile)) = o {
            similar.learn_history(f, *peak, *profile, *wall as f32);
        }
    }
    let queue: Vec<usize> = (0..n).collect();
    let queue = if own.iter().all(Option::is_none) {
        queue
    } else {
        order_by_history(queue, |j| own[j].map(|(p, w, _)| (p, w)))
    };
    let peaks = own.iter().map(|o| o.map_or(0, |o| o.0)).collect();
    let walls = own.iter().map(|o| o.map_or(0.0, |o| o.1 as f32)).collect();
    let profiles = own.iter().map(|o| o.and_then(|o| o.2)).collect();
    let est = Estimator::new(None, peaks, &[])
        .with_walls(walls)
        .with_profiles(profiles)
        .with_similar(similar);
    (est, queue)
}

struct Live {
    job: usize,
    progress: f64,
    paused: bool,
    stopping: bool,
    peak: u64,
    started: f64,
}

/// Runs a sweep to its end. `slow`: how much slower than planned jobs run (a busy machine);
/// `jitter`: a seed for each job's own speed, ±10% around it (0: none).
pub fn run(specs: &[Spec], history: Option<&Learned>, slow: f64, cfg: Config) -> Outcome {
    run_jittered(specs, history, slow, 0, cfg)
}

/// How much slower than planned job `job` runs in a run with this jitter seed.
fn speed(slow: f64, jitter: u64, job: usize) -> f64 {
    if jitter == 0 {
        return slow;
    }
    let mut h = (jitter.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ job as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 31;
    slow * (0.9 + 0.2 * (h % 1000) as f64 / 1000.0)
}

/// A job's usage in a run with this jitter seed: its planned usage, and once it has allocated,
/// 0–0.5% more, as a real job's peak differs from run to run by a few MiB (allocators, the page
/// cache of the files it writes): an estimate learned from other jobs is their peak to the
/// byte, and rules that took "past it" literally were blind here.
fn usage_of(spec: &Spec, progress: f64, jitter: u64, job: usize) -> u64 {
    let u = spec.usage(progress);
    if jitter == 0 {
        return u;
    }
    let h = (jitter ^ 0x5851_F42D_4C95_7F2D)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ job as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let more = (h >> 20) % 1000;
    u + (u.saturating_sub(BASE) as f64 * 0.005 * more as f64 / 1000.0) as u64
}

pub fn run_jittered(
    specs: &[Spec],
    history: Option<&Learned>,
    slow: f64,
    jitter: u64,
    cfg: Config,
) -> Outcome {
    let n = specs.len();
    let (est, queue) = setup(specs, history);
    let budget = cfg.budget;
    let mut s = Sched::new(cfg, est, queue, n);
    let mut live: Vec<Live> = Vec::new();
    let mut out = Outcome {
        makespan: 0.0,
        pauses: 0,
        false_pauses: 0,
        paused_s: 0.0,
        job_s: 0.0,
        requeues: 0,
        requeued_out: 0,
        max_ws: 0,
        oom: false,
        learned: vec![None; n],
    };
    let mut now = 0.0;
    let mut last_sample = f64::NEG_INFINITY;
    let mut threshold = u64::MAX;
    let mut exited = false;
    let ws_of = |live: &[Live]| {
        OTHER
            + live
                .iter()
                .map(|l| usage_of(&specs[l.job], l.progress, jitter, l.job))
                .sum::<u64>()
    };
    let sample = |s: &mut Sched, live: &mut [Live], now: f64| -> u64 {
        let usage: Vec<Usage> = live
            .iter_mut()
            .map(|l| {
                let u = usage_of(&specs[l.job], l.progress, jitter, l.job);
                l.peak = l.peak.max(u);
                Usage {
                    job: l.job,
                    current: u,
                    peak: l.peak,
                }
            })
            .collect();
        let ws = OTHER + usage.iter().map(|u| u.current).sum::<u64>();
        s.observe(&Observation {
            now,
            working_set: ws,
            psi_some_avg10: None,
            jobs: &usage,
        });
        ws
    };
    let trace = std::env::var_os("SIM_TRACE").is_some();
    let mut wake = true;
    loop {
        assert!(now < 600.0, "no end after {now} s");
        if wake {
            let before = if trace { s.debug_runs() } else { Vec::new() };
            let acts = s.decide();
            if trace && acts.iter().any(|a| matches!(a, Action::Pause { .. })) {
                println!("        (job, cur, soon, rate, est) {before:?}");
            }
            if trace && !acts.is_empty() {
                println!("        queue {:?}", s.queue);
            }
            for a in acts {
                if trace {
                    let held: Vec<String> = live
                        .iter()
                        .map(|l| {
                            let u = usage_of(&specs[l.job], l.progress, jitter, l.job) / MIB;
                            format!("{}:{u}{}", l.job, if l.paused { "p" } else { "" })
                        })
                        .collect();
                    println!(
                        "{now:6.3} ws={:4} [{}] {a:?}",
                        ws_of(&live) / MIB,
                        held.join(" ")
                    );
                }
                match a {
                    Action::Start { job, .. } => live.push(Live {
                        job,
                        progress: 0.0,
                        paused: false,
                        stopping: false,
                        peak: 0,
                        started: now,
                    }),
                    Action::Pause { job, .. } => {
                        live.iter_mut().find(|l| l.job == job).unwrap().paused = true;
                    }
                    Action::Resume { job } => {
                        live.iter_mut().find(|l| l.job == job).unwrap().paused = false;
                    }
                    Action::Requeue { job, .. } => {
                        live.iter_mut().find(|l| l.job == job).unwrap().stopping = true;
                    }
                }
            }
            if s.is_done() && live.is_empty() {
                break;
            }
        }
        now += TICK;
        exited = exited && now - last_sample < 0.02;
        let mut any_exit = false;
        // Jobs faulting pages in share the cores: past CORES of demand, each grows slower.
        let demand: f64 = live
            .iter()
            .filter(|l| !l.paused && !l.stopping)
            .map(|l| specs[l.job].cpu(l.progress))
            .sum();
        let contention = if demand > CORES { CORES / demand } else { 1.0 };
        let mut i = 0;
        while i < live.len() {
            let l = &mut live[i];
            let spec = &specs[l.job];
            if l.stopping {
                let p = l.peak.max(usage_of(spec, l.progress, jitter, l.job));
                out.job_s += now - l.started;
                match s.exited(l.job, Some(p), true) {
                    Ended::Requeued { .. } => out.requeues += 1,
                    Ended::RequeuedOut => out.requeued_out += 1,
                    Ended::Done => {}
                }
                live.remove(i);
                any_exit = true;
                continue;
            }
            if l.paused {
                out.paused_s += TICK;
            } else {
                let share = if spec.cpu(l.progress) > 0.0 {
                    contention
                } else {
                    1.0
                };
                l.progress += TICK * share / speed(slow, jitter, l.job);
            }
            l.peak = l.peak.max(usage_of(spec, l.progress, jitter, l.job));
            if l.progress >= spec.life() {
                let (job, peak) = (l.job, l.peak);
                out.job_s += now - l.started;
                assert_eq!(s.exited(job, Some(peak), false), Ended::Done);
                out.learned[job] = Some((
                    peak,
                    spec.life() * speed(slow, jitter, job),
                    s.last_profile(),
                ));
                live.remove(i);
                any_exit = true;
                continue;
            }
            i += 1;
        }
        let ws = ws_of(&live);
        out.max_ws = out.max_ws.max(ws);
        out.oom |= ws >= budget.limit;
        let interval = s.sample_interval(0.2);
        let event = ws >= threshold;
        let due = now - last_sample >= interval - 1e-9;
        wake = any_exit;
        if any_exit {
            exited = true;
        }
        if due || event || (exited && now - last_sample >= 0.02) {
            let ws = sample(&mut s, &mut live, now);
            last_sample = now;
            exited = false;
            // The kernel's usage threshold, re-armed after each sample at half the room left.
            threshold = ws + budget.budget.saturating_sub(ws).max(16 * MIB) / 2;
            wake = true;
        }
    }
    out.makespan = now;
    let (pauses, false_pauses) = s.pause_counts();
    out.pauses = pauses;
    out.false_pauses = false_pauses;
    out
}

/// The benchmark's reference: every job's peak reserved for its whole life in the budget,
/// largest peak first, first-fit (bench/harness.py `clairvoyant`).
pub fn reference(specs: &[Spec], budget: u64) -> f64 {
    let mut queue: Vec<&Spec> = specs.iter().collect();
    queue.sort_by_key(|s| std::cmp::Reverse(s.peak()));
    let mut t = 0.0;
    let mut running: Vec<(f64, u64)> = Vec::new();
    while !queue.is_empty() || !running.is_empty() {
        let mut used: u64 = running.iter().map(|r| r.1).sum();
        let mut i = 0;
        while i < queue.len() {
            if used + queue[i].peak() <= budget || running.is_empty() {
                running.push((t + queue[i].life(), queue[i].peak()));
                used += queue[i].peak();
                queue.remove(i);
            } else {
                i += 1;
            }
        }
        t = running.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        running.retain(|r| r.0 > t);
    }
    t
}

/// A sweep of a shape nobody tuned for, from a seed: 12–40 jobs whose memory is set by a
/// `model` (2–5 sizes, 40–900 MiB) times a `batch` factor, hold time by `seed`, ramps of
/// 0–1.5 s, and in some sweeps an `eval` that jumps late by a per-model amount. Half are `-p` sweeps, half
/// jobs files.
pub fn generated(seed: u64) -> Vec<Spec> {
    let mut g = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        g ^= g << 13;
        g ^= g >> 7;
        g ^= g << 17;
        g % n
    };
    let n = 12 + next(29) as usize;
    let models: Vec<f64> = (0..2 + next(4))
        .map(|_| 40.0 * (22.5f64).powf(next(1000) as f64 / 1000.0))
        .collect();
    let batches = [1.0, 1.0 + next(100) as f64 / 100.0, 0.5];
    let n_batches = 1 + next(3) as usize;
    let ramp_max = next(16) as f64 / 10.0;
    let jumpy = next(3) == 0;
    let jump_by: Vec<f64> = models.iter().map(|_| 200.0 + next(400) as f64).collect();
    let as_params = next(2) == 0;
    (0..n)
        .map(|i| {
            let m = next(models.len() as u64) as usize;
            let b = next(n_batches as u64) as usize;
            let sd = next(6);
            let mem = (models[m] * batches[b]).min(1100.0);
            // An evaluation at the end that jumps by a per-model amount (as a bigger model's
            // evaluation set is bigger), in a quarter of the jobs of a jumpy sweep.
            let eval = jumpy && next(4) == 0;
            let jump = if eval {
                (mem + jump_by[m]).min(1150.0)
            } else {
                0.0
            };
            let params = vec![
                ("model".to_string(), format!("m{m}")),
                ("batch".to_string(), format!("{}", 16 << b)),
                ("seed".to_string(), sd.to_string()),
                ("eval".to_string(), u8::from(eval).to_string()),
            ];
            let line = format!(
                "/opt/train.py --model m{m} --batch {} --seed {sd} --eval {} --out /runs/{seed}/r{i}",
                16 << b,
                u8::from(eval)
            );
            Spec {
                mem: (mem * MIB as f64) as u64,
                ramp: ramp_max * next(100) as f64 / 100.0,
                hold: 0.5 + sd as f64 * 0.3 + next(100) as f64 / 50.0,
                jump: (jump * MIB as f64) as u64,
                jump_at: 0.3 + next(60) as f64 / 100.0,
                line,
                params: if as_params { params } else { Vec::new() },
            }
        })
        .collect()
}

impl Sched {
    /// Each running job's (job, current, expected soon, rate in MiB/s, estimate) in MiB.
    pub fn debug_runs(&self) -> Vec<(usize, u64, u64, u64, u64)> {
        self.runs
            .iter()
            .map(|r| {
                (
                    r.job,
                    r.current / MIB,
                    self.expected_soon(r) / MIB,
                    (r.rate / MIB as f64) as u64,
                    r.estimate.bytes / MIB,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKLOADS: [(&str, &str); 7] = [
        (
            "heterogeneous",
            include_str!("../../bench/workloads/heterogeneous.txt"),
        ),
        ("spiky", include_str!("../../bench/workloads/spiky.txt")),
        ("grid", include_str!("../../bench/workloads/grid.txt")),
        ("burst", include_str!("../../bench/workloads/burst.txt")),
        ("untuned", include_str!("../../bench/workloads/untuned.txt")),
        (
            "llm-eval",
            include_str!("../../bench/workloads/llm-eval.txt"),
        ),
        (
            "spiky-untuned",
            include_str!("../../bench/workloads/spiky-untuned.txt"),
        ),
    ];

    /// Prints the table (`cargo test --lib sim::tests::table -- --ignored --nocapture`).
    /// × the reference with history (the first run's), the median of five runs whose jobs'
    /// speeds vary ±10%.
    fn ratio_with_history(name: &str, slow: f64) -> (f64, Outcome) {
        let (_, text) = WORKLOADS.iter().find(|w| w.0 == name).unwrap();
        let specs = workload(text);
        let first = run_jittered(&specs, None, 1.0, 99, bench_config());
        let mut runs: Vec<Outcome> = (1..=5)
            .map(|seed| run_jittered(&specs, Some(&first.learned), slow, seed, bench_config()))
            .collect();
        runs.sort_by(|a, b| a.makespan.total_cmp(&b.makespan));
        let r = reference(&specs, bench_config().budget.budget) * slow;
        let median = runs.swap_remove(2);
        (median.makespan / r, median)
    }

    #[test]
    fn with_history_the_benchmark_shapes_beat_peak_reservation_without_pausing() {
        // The first run's peaks and profiles, replayed: jobs reaching their recorded peaks at
        // full speed are no surprise (they paused for their neighbours' lives: 1.14× and
        // 1.21× with 8–18% of job time paused before).
        for (name, at_most) in [("heterogeneous", 1.05), ("untuned", 1.02), ("grid", 0.97)] {
            let (ratio, o) = ratio_with_history(name, 1.0);
            assert!(ratio <= at_most, "{name}: {ratio:.3}× the reference");
            assert!(o.paused_s <= 0.01 * o.job_s && !o.oom, "{name}: {o:?}");
        }
        // Profiles beat peak reservation where jobs spike late, also 30% slower than recorded.
        for slow in [1.0, 1.3] {
            let (ratio, o) = ratio_with_history("spiky", slow);
            assert!(ratio <= 0.88, "spiky at {slow}: {ratio:.3}×");
            assert!(!o.oom && o.requeued_out == 0);
        }
    }

    #[test]
    fn with_history_sweeps_nobody_tuned_for_run_at_the_reference() {
        let cfg = bench_config();
        let mut ratios: Vec<f64> = (0..40)
            .map(|seed| {
                let specs = generated(seed);
                let first = run(&specs, None, 1.0, cfg.clone());
                let second = run(&specs, Some(&first.learned), 1.0, cfg.clone());
                assert!(!first.oom && !second.oom, "seed {seed}");
                second.makespan / reference(&specs, cfg.budget.budget)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        assert!(ratios[20] <= 1.02, "median {:.3}", ratios[20]);
        assert!(ratios[36] <= 1.2, "p90 {:.3}", ratios[36]);
    }

    /// One workload's actions (`SIM=spiky SIM_TRACE=1 cargo test --lib sim::tests::trace --
    /// --ignored --nocapture`; `SIM_HIST=1`: the run with history).
    #[test]
    #[ignore]
    fn trace() {
        let name = std::env::var("SIM").unwrap_or_else(|_| "heterogeneous".into());
        let slow: f64 = std::env::var("SIM_SLOW").map_or(1.0, |s| s.parse().unwrap());
        let specs = match name.strip_prefix("gen:") {
            Some(seed) => generated(seed.parse().unwrap()),
            None => workload(WORKLOADS.iter().find(|w| w.0 == name).unwrap().1),
        };
        if std::env::var_os("SIM_SPECS").is_some() {
            for (i, s) in specs.iter().enumerate() {
                println!(
                    "{i:3} mem={} ramp={:.2} hold={:.2} jump={} at={:.2} {:?}",
                    s.mem / MIB,
                    s.ramp,
                    s.hold,
                    s.jump / MIB,
                    s.jump_at,
                    s.params
                );
            }
            println!(
                "reference {:.2}",
                reference(&specs, bench_config().budget.budget)
            );
        }
        let first_seed: u64 = std::env::var("SIM_FIRST").map_or(99, |s| s.parse().unwrap());
        let first = run_jittered(&specs, None, 1.0, first_seed, bench_config());
        if std::env::var_os("SIM_HIST").is_some() {
            println!("---- with history");
            let jitter: u64 = std::env::var("SIM_JITTER").map_or(0, |s| s.parse().unwrap());
            let o = run_jittered(&specs, Some(&first.learned), slow, jitter, bench_config());
            println!("makespan {:.2}", o.makespan);
        } else {
            println!("makespan {:.2}", first.makespan);
        }
    }

    #[test]
    #[ignore]
    fn table() {
        let cfg = bench_config();
        println!(
            "{:<14} {:>6} | {:>6} {:>5} {:>6} | {:>6} {:>5} {:>6} | slow 1.3 hist",
            "workload", "ref", "nohint", "pause", "paus%", "hist", "pause", "paus%"
        );
        let seeds: usize = std::env::var("SIM_SEEDS").map_or(5, |s| s.parse().unwrap());
        let mid = seeds / 2;
        for (name, text) in WORKLOADS {
            let specs = workload(text);
            let r = reference(&specs, cfg.budget.budget);
            // Each job's speed varies ±10% from run to run: medians over five runs (or
            // SIM_SEEDS, an odd number, to compare two policies beyond the jitter).
            let runs = |hist: Option<&Learned>, slow: f64| -> Vec<Outcome> {
                let mut v: Vec<Outcome> = (1..=seeds as u64)
                    .map(|seed| run_jittered(&specs, hist, slow, seed, cfg.clone()))
                    .collect();
                v.sort_by(|a, b| a.makespan.total_cmp(&b.makespan));
                v
            };
            let first = run_jittered(&specs, None, 1.0, 99, cfg.clone());
            let all_a = runs(None, 1.0);
            let rq_all = all_a.iter().map(|o| o.requeues).sum::<u32>();
            let worst_paused = all_a.iter().map(Outcome::paused_pct).fold(0.0, f64::max);
            let mean_a = all_a.iter().map(|o| o.makespan / r).sum::<f64>() / all_a.len() as f64;
            let a = &all_a[mid];
            let bs = runs(Some(&first.learned), 1.0);
            let c = runs(Some(&first.learned), 1.3).swap_remove(mid);
            let b = &bs[mid];
            println!(
                "{name:<14} {r:6.2} | {:6.2} {:5} {:5.1}% | {:6.2} {:5} {:5.1}% | {:5.2} hist {:.2}–{:.2} max={}/{}/{} rq={}/{}/{} nh: mean {mean_a:.3} rq all {rq_all} worst paused {worst_paused:.1}%",
                a.makespan / r,
                a.pauses,
                a.paused_pct(),
                b.makespan / r,
                b.pauses,
                b.paused_pct(),
                c.makespan / (r * 1.3),
                bs[0].makespan / r,
                bs[seeds - 1].makespan / r,
                a.max_ws / MIB,
                b.max_ws / MIB,
                c.max_ws / MIB,
                a.requeues,
                b.requeues,
                c.requeues,
            );
        }
        // Shapes nobody tuned for: medians and worst cases over 40 generated sweeps.
        let mut rows: Vec<(f64, f64, f64, f64, f64)> = Vec::new();
        let mut oom = 0;
        for seed in 0..40 {
            let specs = generated(seed);
            let r = reference(&specs, cfg.budget.budget);
            let a = run(&specs, None, 1.0, cfg.clone());
            let b = run(&specs, Some(&a.learned), 1.0, cfg.clone());
            let c = run(&specs, Some(&a.learned), 1.3, cfg.clone());
            oom += u32::from(a.oom) + u32::from(b.oom) + u32::from(c.oom);
            if std::env::var_os("SIM_SEEDS").is_some() {
                println!(
                    "seed {seed:2}: n={:2} nohint {:.2} ({:.1}% paused) hist {:.2}",
                    specs.len(),
                    a.makespan / r,
                    a.paused_pct(),
                    b.makespan / r
                );
            }
            rows.push((
                a.makespan / r,
                b.makespan / r,
                c.makespan / (1.3 * r),
                a.paused_pct(),
                b.paused_pct(),
            ));
        }
        let col = |f: fn(&(f64, f64, f64, f64, f64)) -> f64| {
            let mut v: Vec<f64> = rows.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[v.len() * 9 / 10], v[v.len() - 1])
        };
        for (name, (m, p90, w)) in [
            ("no hints", col(|r| r.0)),
            ("history", col(|r| r.1)),
            ("hist slow", col(|r| r.2)),
            ("paused% nh", col(|r| r.3)),
            ("paused% hist", col(|r| r.4)),
        ] {
            println!("generated {name:<13} median {m:6.2} p90 {p90:6.2} worst {w:6.2}");
        }
        println!("generated: {oom} runs reached the limit");
    }
}
