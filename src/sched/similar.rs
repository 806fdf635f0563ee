//! Estimates for jobs never measured, from finished jobs (this sweep and history) that share
//! their parameter values. Each parameter is weighted by how well it explains peaks, measured
//! leave-one-out (predict each finished job by the mean of the others with the same value;
//! compare with the mean of all others): a seed that does not move memory gets weight 0, a model
//! size that sets it gets ~1. An unseen job is estimated by its nearest finished neighbours: those
//! sharing the heaviest set of its values (the sum of their parameters' weights); the largest
//! peak among them is the estimate. A mean of per-parameter votes did worse: in a jobs file where
//! 6 of 24 lines carry `jump=600 jump_at=0.7`, the jumpers' `mem=100` voted with the small jobs
//! that share it, and three jumpers started at once on 300 MiB each. Pure.
//!
//! Only grouping parameters are kept: one that takes a single value in this sweep says nothing
//! about differences, and one unique to every job (an id, an output path) never groups — a rerun
//! of that very job is own history, not a neighbour. A parameter only some jobs have takes
//! "absent" as one more value. So a sweep of 100 000 `true {i}` jobs stores nothing here.
//!
//! Finished jobs with the same grouping values share one cell; the neighbour search reads, per
//! value of the job, at most the [`SCAN`] latest cells that have it (an inverted index), so its
//! cost is bounded however many jobs finish.

use std::collections::HashMap;

use super::features::Features;
use super::profile::Profile;

/// The value of a parameter a job does not have (a flag only some lines of a jobs file carry):
/// NUL, which no command word or parameter value can hold.
const ABSENT: &str = "\0";
/// Weight a grouping parameter has before any evidence for or against it.
pub const PRIOR_WEIGHT: f64 = 0.5;
/// Cells read per value of a job when looking for its neighbours (the latest first).
const SCAN: usize = 256;
/// Leave-one-out predictions needed before a parameter's weight replaces the prior.
const MIN_EVIDENCE: u32 = 2;

type Feat = (u32, u32);

fn weight_of(weights: &[f64], k: &Feat) -> f64 {
    weights.get(k.0 as usize).copied().unwrap_or(0.0)
}

/// Finished jobs with one value of one parameter: the leave-one-out weights read these.
#[derive(Debug, Clone, Default)]
struct Group {
    n: u32,
    sum: f64,
}

/// Finished jobs with the same grouping values: the largest peak among them, with its profile
/// and wall time.
#[derive(Debug, Clone)]
struct Cell {
    feats: Box<[Feat]>,
    max: u64,
    profile: Option<Profile>,
    wall: f32,
}

#[derive(Debug, Clone)]
struct Obs {
    peak: u64,
    /// The cell of its features.
    cell: u32,
}

/// What the neighbours say about one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbours {
    pub bytes: u64,
    /// The best weight among the parameters shared with the neighbour (0..1).
    pub weight: f64,
    /// Profile and wall time of the largest neighbour, if recorded.
    pub profile: Option<Profile>,
    pub wall: f32,
}

/// The per-value model.
#[derive(Debug, Clone, Default)]
pub struct Similar {
    names: HashMap<String, u32>,
    values: HashMap<String, u32>,
    /// Features of each job of this sweep (grouping parameters only).
    jobs: Vec<Box<[Feat]>>,
    prior: Vec<f64>,
    groups: HashMap<Feat, Group>,
    obs: Vec<Obs>,
    cells: Vec<Cell>,
    cell_of: HashMap<Box<[Feat]>, u32>,
    /// The cells that have each value, oldest first.
    cells_with: HashMap<Feat, Vec<u32>>,
    weights: Vec<f64>,
    weights_at: usize,
    /// `(name, ABSENT)` of each name some of this sweep's jobs lack: absent is one of its values.
    optional: Vec<Feat>,
}

impl Similar {
    /// The model for a sweep whose jobs have these features.
    pub fn new<F: AsRef<[(String, String)]>>(jobs: &[F]) -> Similar {
        Similar::from_pairs(jobs.len(), |i| super::features::pairs(jobs[i].as_ref()))
    }

    /// [`Self::new`] for `n` jobs whose features `job(i)` reads in place (a plan's parameters,
    /// which are not kept as strings per job).
    pub fn from_pairs<'a, I>(n: usize, job: impl Fn(usize) -> I) -> Similar
    where
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        let mut s = Similar::default();
        // Distinct values per parameter name, to keep grouping parameters only. A parameter with
        // more than max(16, n/4) values makes groups too small to learn from (an id, a path, a
        // fine-grained value); counting stops there, so `i=range(0,100000)` costs little.
        let cap = (n / 4).max(16);
        let mut distinct: HashMap<&str, Option<std::collections::HashSet<&str>>> = HashMap::new();
        // Jobs that have each name: one absent from some jobs (`jump_at=0.7` on 6 of 24 lines)
        // has absence as one more value.
        let mut having: HashMap<&str, (usize, usize)> = HashMap::new();
        for i in 0..n {
            for (name, v) in job(i) {
                let h = having.entry(name).or_insert((usize::MAX, 0));
                if h.0 != i {
                    *h = (i, h.1 + 1);
                }
                let e = distinct
                    .entry(name)
                    .or_insert_with(|| Some(Default::default()));
                if let Some(set) = e {
                    set.insert(v);
                    if set.len() > cap {
                        *e = None;
                    }
                }
            }
        }
        let grouping: HashMap<&str, bool> = distinct
            .iter()
            .map(|(name, vs)| {
                let absent = usize::from(having[name].1 < n);
                let g = vs.as_ref().is_some_and(|vs| {
                    let values = vs.len() + absent;
                    values > 1 && values < n && values <= cap
                });
                (*name, g)
            })
            .collect();
        if !grouping.values().any(|&g| g) {
            return s;
        }
        // Sorted, so that interned ids do not depend on hash order.
        let mut optional: Vec<&str> = grouping
            .iter()
            .filter(|&(name, &g)| g && having[name].1 < n)
            .map(|(name, _)| *name)
            .collect();
        optional.sort_unstable();
        s.optional = optional.iter().map(|name| s.intern(name, ABSENT)).collect();
        s.jobs = (0..n)
            .map(|i| {
                let f = job(i)
                    .filter(|(name, _)| grouping.get(name).copied().unwrap_or(false))
                    .map(|(name, v)| s.intern(name, v))
                    .collect();
                s.cell_key(f)
            })
            .collect();
        s
    }

    /// A job's features as a cell's key: an optional parameter it lacks is absent; sorted, so
    /// that equal values make equal cells.
    fn cell_key(&self, mut f: Vec<Feat>) -> Box<[Feat]> {
        for &(name, absent) in &self.optional {
            if !f.iter().any(|k| k.0 == name) {
                f.push((name, absent));
            }
        }
        f.sort_unstable();
        f.dedup();
        f.into_boxed_slice()
    }

    fn intern(&mut self, name: &str, value: &str) -> Feat {
        let n = self.names.len() as u32;
        let name = *self.names.entry(name.to_string()).or_insert(n);
        if name as usize >= self.prior.len() {
            self.prior.resize(name as usize + 1, PRIOR_WEIGHT);
        }
        let v = self.values.len() as u32;
        let value = *self.values.entry(value.to_string()).or_insert(v);
        (name, value)
    }

    /// Features of an earlier job (history) in this sweep's terms: only names this sweep groups
    /// by count; values this sweep never has are kept (they still teach the weights).
    fn known(&mut self, f: &Features) -> Box<[Feat]> {
        let mut out = Vec::new();
        for (n, v) in f {
            if self.names.contains_key(n.as_str()) {
                out.push(self.intern(n, v));
            }
        }
        // A name it lacks that some of this sweep's jobs lack too is absent, as for them.
        self.cell_key(out)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Changes whenever the weights were recomputed (after [`Self::estimate`]): estimates may
    /// have moved.
    pub fn version(&self) -> usize {
        self.weights_at
    }

    /// A job of this sweep finished.
    pub fn learn_job(&mut self, job: usize, peak: u64, profile: Option<Profile>, wall: f32) {
        if let Some(f) = self.jobs.get(job).cloned() {
            self.add(f, peak, profile, wall);
        }
    }

    /// A job of an earlier sweep, from history.
    pub fn learn_history(&mut self, f: &Features, peak: u64, profile: Option<Profile>, wall: f32) {
        if self.is_empty() {
            return;
        }
        let f = self.known(f);
        self.add(f, peak, profile, wall);
    }

    fn add(&mut self, f: Box<[Feat]>, peak: u64, profile: Option<Profile>, wall: f32) {
        if f.is_empty() || peak == 0 {
            return;
        }
        for &k in f.iter() {
            let g = self.groups.entry(k).or_default();
            g.n += 1;
            g.sum += peak as f64;
        }
        let cell = match self.cell_of.get(&f) {
            Some(&c) => {
                let cell = &mut self.cells[c as usize];
                if peak >= cell.max {
                    (cell.max, cell.profile, cell.wall) = (peak, profile, wall);
                }
                c
            }
            None => {
                let c = self.cells.len() as u32;
                for &k in f.iter() {
                    self.cells_with.entry(k).or_default().push(c);
                }
                self.cell_of.insert(f.clone(), c);
                self.cells.push(Cell {
                    feats: f,
                    max: peak,
                    profile,
                    wall,
                });
                c
            }
        };
        self.obs.push(Obs { peak, cell });
    }

    /// Recompute the weights when the observations grew by an eighth (amortised: a long sweep
    /// does not pay O(n) per finished job).
    fn refresh(&mut self) {
        let n = self.obs.len();
        if n == self.weights_at
            || (self.weights_at >= 16 && n < self.weights_at + self.weights_at / 8)
        {
            return;
        }
        self.weights_at = n;
        let names = self.prior.len();
        let total: f64 = self.obs.iter().map(|o| o.peak as f64).sum();
        let mut err = vec![0.0f64; names];
        let mut base = vec![0.0f64; names];
        let mut count = vec![0u32; names];
        for o in &self.obs {
            let p = o.peak as f64;
            let global = if n > 1 {
                (total - p) / (n - 1) as f64
            } else {
                p
            };
            for &(name, v) in self.cells[o.cell as usize].feats.iter() {
                let g = &self.groups[&(name, v)];
                if g.n < 2 {
                    continue;
                }
                let pred = (g.sum - p) / (g.n - 1) as f64;
                err[name as usize] += (pred - p).abs() / p;
                base[name as usize] += (global - p).abs() / p;
                count[name as usize] += 1;
            }
        }
        self.weights = (0..names)
            .map(|i| {
                if count[i] < MIN_EVIDENCE {
                    self.prior[i]
                } else if base[i] <= 1e-9 {
                    // Every job the same size: any shared value predicts it.
                    1.0
                } else {
                    (1.0 - err[i] / base[i]).clamp(0.0, 1.0)
                }
            })
            .collect();
    }

    /// The weight of a parameter now (for tests and the dry run).
    pub fn weight(&mut self, name: &str) -> Option<f64> {
        self.refresh();
        let i = *self.names.get(name)? as usize;
        Some(self.weights.get(i).copied().unwrap_or(self.prior[i]))
    }

    /// What this job's nearest finished neighbours say, if any shares a value of a parameter
    /// that explains peaks: the largest peak among those sharing the heaviest set of its values.
    pub fn estimate(&mut self, job: usize) -> Option<Neighbours> {
        if self.obs.is_empty() {
            return None;
        }
        self.refresh();
        let feats = self.jobs.get(job)?;
        let weights = &self.weights;
        // Candidate cells: the latest that share each weighted value; score each once.
        let mut seen: Vec<u32> = Vec::new();
        for k in feats.iter().filter(|k| weight_of(weights, k) > 0.0) {
            if let Some(cells) = self.cells_with.get(k) {
                seen.extend(cells.iter().rev().take(SCAN));
            }
        }
        seen.sort_unstable();
        seen.dedup();
        // (score, firmness): the sum of the shared values' weights, and the best of them.
        let shared = |c: &Cell| {
            let mut s = (0.0, 0.0f64);
            for k in feats.iter().filter(|k| c.feats.binary_search(k).is_ok()) {
                let w = weight_of(weights, k);
                s = (s.0 + w, s.1.max(w));
            }
            s
        };
        let mut best: Option<((f64, f64), &Cell)> = None;
        for &c in &seen {
            let cell = &self.cells[c as usize];
            let s = shared(cell);
            if s.0 <= 0.0 {
                continue;
            }
            best = match best {
                Some((b, top))
                    if s.0 < b.0 - 1e-9 || (s.0 <= b.0 + 1e-9 && cell.max <= top.max) =>
                {
                    Some((b, top))
                }
                _ => Some((s, cell)),
            };
        }
        let ((_, firm), top) = best?;
        Some(Neighbours {
            bytes: top.max,
            weight: firm,
            profile: top.profile,
            wall: top.wall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIB: u64 = 1 << 20;

    fn grid() -> Vec<Features> {
        // -p seed=range(0,6) -p model=large,small,medium: the first parameter slowest.
        let mut v = Vec::new();
        for seed in 0..6 {
            for model in ["large", "small", "medium"] {
                v.push(vec![
                    ("seed".to_string(), seed.to_string()),
                    ("model".to_string(), model.to_string()),
                ]);
            }
        }
        v
    }

    fn size(model: &str) -> u64 {
        match model {
            "large" => 600 * MIB,
            "medium" => 300 * MIB,
            _ => 100 * MIB,
        }
    }

    #[test]
    fn the_parameter_that_sets_memory_gets_the_weight_and_the_estimate() {
        let jobs = grid();
        let mut s = Similar::new(&jobs);
        assert_eq!(s.estimate(3), None, "nothing finished");
        // Seed 0 finished (large 600, small 100, medium 300), seed 1's large too (610).
        for (j, extra) in [(0, 0), (1, 0), (2, 0), (3, 10 * MIB)] {
            s.learn_job(j, size(&jobs[j][1].1) + extra, None, 1.0);
        }
        // Seed explains little (jobs of seed 0 are 100–600), model nearly everything.
        assert!(s.weight("seed").unwrap() < 0.2, "{:?}", s.weight("seed"));
        assert!(s.weight("model").unwrap() > 0.9, "{:?}", s.weight("model"));
        // Seed 1's medium: the largest medium seen, 300; seed 5's large: the largest large, 610.
        assert_eq!(s.estimate(5).unwrap().bytes, 300 * MIB);
        assert_eq!(s.estimate(15).unwrap().bytes, 610 * MIB);
    }

    #[test]
    fn before_evidence_a_shared_value_votes_with_the_prior_weight() {
        let jobs = grid();
        let mut s = Similar::new(&jobs);
        s.learn_job(0, 600 * MIB, None, 1.0);
        // Seed 0's small shares seed=0 with the large one, seed 1's large shares model=large:
        // both are estimated at 600 on the prior (no evidence either way yet).
        let e = s.estimate(3).unwrap();
        assert_eq!((e.bytes, e.weight), (600 * MIB, PRIOR_WEIGHT));
    }

    #[test]
    fn history_of_the_same_parameters_estimates_a_reordered_sweep() {
        let mut jobs = grid();
        jobs.reverse();
        let mut s = Similar::new(&jobs);
        for f in grid().iter().take(6) {
            s.learn_history(f, size(&f[1].1), None, 2.0);
        }
        // Job 2 is now seed 5, large: never run, but large jobs were.
        assert_eq!(jobs[2][1].1, "large");
        assert_eq!(s.estimate(2).unwrap().bytes, 600 * MIB);
    }

    /// Spiky jobs-file lines: `mem=` for everyone, `jump=… jump_at=0.7` on some.
    fn spiky() -> Vec<(Features, u64)> {
        let line = |mem: u64, jump: Option<u64>| {
            let mut f = vec![("mem".to_string(), mem.to_string())];
            if let Some(j) = jump {
                f.push(("jump".to_string(), j.to_string()));
                f.push(("jump_at".to_string(), "0.7".to_string()));
            }
            (f, jump.unwrap_or(mem).max(mem) * MIB)
        };
        vec![
            line(150, Some(500)),
            line(80, None),
            line(80, None),
            line(100, None),
            line(100, None),
            line(80, Some(700)),
            line(100, Some(600)),
            line(80, None),
        ]
    }

    #[test]
    fn a_parameter_only_some_lines_have_groups_by_its_absence_too() {
        let jobs = spiky();
        let feats: Vec<Features> = jobs.iter().map(|j| j.0.clone()).collect();
        let mut s = Similar::new(&feats);
        // `jump_at` has one value, but five of eight lines lack it: absent is its other value.
        for j in [0, 1, 2, 3, 4, 6] {
            s.learn_job(j, jobs[j].1, None, 1.0);
        }
        let (w_mem, w_at) = (s.weight("mem").unwrap(), s.weight("jump_at").unwrap());
        assert!(w_at > 0.8 && w_mem < w_at, "mem {w_mem}, jump_at {w_at}");
        // Job 5 (mem=80 jump=700) shares mem=80 with two 80 MiB jobs and jump_at with the
        // jumpers: they are its nearest neighbours, and the largest of them is the estimate.
        let e = s.estimate(5).unwrap();
        assert_eq!((e.bytes, e.weight), (600 * MIB, w_at));
        // Job 7 (mem=80, no jump): the 80 MiB jobs, not the jumper.
        assert_eq!(s.estimate(7).unwrap().bytes, 80 * MIB);
    }

    #[test]
    fn a_history_record_lacking_a_parameter_every_job_has_is_not_absent_there() {
        // Records from another sweep that had no `seed`: what they say about `model` counts, but
        // they say nothing about seeds (as "absent" they made a group of their own and
        // weighed `seed` with evidence it never had).
        let mut s = Similar::new(&grid());
        for (model, mb) in [("large", 600), ("small", 100)] {
            s.learn_history(
                &vec![("model".to_string(), model.to_string())],
                mb * MIB,
                None,
                1.0,
            );
        }
        assert_eq!(s.weight("seed"), Some(PRIOR_WEIGHT));
        assert_eq!(s.estimate(3).unwrap().bytes, 600 * MIB);
    }

    #[test]
    fn ids_and_constants_are_not_parameters() {
        let jobs: Vec<Features> = (0..5)
            .map(|i| {
                vec![
                    ("#0".to_string(), "workload".to_string()),
                    ("id".to_string(), format!("j{i}")),
                ]
            })
            .collect();
        let mut s = Similar::new(&jobs);
        assert!(s.is_empty());
        s.learn_job(0, 100 * MIB, None, 1.0);
        assert_eq!(s.estimate(1), None);
    }
}
