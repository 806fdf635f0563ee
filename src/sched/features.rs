//! A job's identity for learning: its parameters, not its exact command line. For `-p` sweeps
//! and Hydra jobs these are the parameter values as given; for a plain jobs file, the command's
//! words (`k=v`, `--flag value`, `--flag=value`, else positional) with the parts that vary from
//! run to run aligned: timestamps and dates become `<t>`, and in paths the directories that
//! every job of the sweep shares (`runs/r2/results/` of `runs/r2/results/a07.out`) are dropped,
//! so a regenerated jobs file in another run directory names the same jobs. Pure.

/// One job's features, `(name, value)`, in the order written.
pub type Features = Vec<(String, String)>;

/// A job as written: its parameters (empty for a plain jobs-file line) and its command words.
pub struct Written<'a> {
    pub params: Vec<(&'a str, &'a str)>,
    pub words: Vec<&'a str>,
}

/// The features of every job of one sweep (alignment looks at all of them together).
pub fn features(jobs: &[Written]) -> Vec<Features> {
    features_each(jobs.len(), |i, f| f(&jobs[i]))
}

/// [`features`] of `n` jobs that `job(i, f)` hands to `f` one at a time: a job's words need
/// live only while its features are read from them (for a 100 000-line jobs file, holding every
/// job's words at once was twice the features' own size).
pub fn features_each(
    n: usize,
    mut job: impl FnMut(usize, &mut dyn FnMut(&Written)),
) -> Vec<Features> {
    let mut out: Vec<Features> = Vec::with_capacity(n);
    for i in 0..n {
        job(i, &mut |j| {
            let raw = if j.params.is_empty() {
                from_words(&j.words)
            } else {
                j.params
                    .iter()
                    .map(|&(n, v)| (n.to_string(), v.to_string()))
                    .collect()
            };
            out.push(raw.into_iter().map(|(n, v)| (n, untimestamp(&v))).collect());
        });
    }
    align_paths(&mut out);
    out
}

/// The features of command lines written without parameters (a plain jobs file, or history
/// records of one), aligned together.
pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Vec<Features> {
    let words: Vec<Vec<String>> = lines.iter().map(|l| split_words(l.as_ref())).collect();
    let written: Vec<Written> = words
        .iter()
        .map(|w| Written {
            params: Vec::new(),
            words: w.iter().map(String::as_str).collect(),
        })
        .collect();
    features(&written)
}

/// The identity string of one job's features: equal for the same job in another run.
pub fn ident(f: &[(String, String)]) -> String {
    ident_of(pairs(f))
}

/// [`ident`] of features read in place (a plan's parameters).
pub fn ident_of<'a>(f: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::new();
    for (i, (n, v)) in f.enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(n);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Features as borrowed `(name, value)` pairs.
pub fn pairs(f: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    f.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}

/// Words of a command line, split on whitespace outside single or double quotes (quotes
/// removed). Good enough to find parameters; the command itself is never run from this.
pub fn split_words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn from_words(words: &[&str]) -> Features {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let bare = w.trim_start_matches('-');
        if let Some((k, v)) = bare.split_once('=')
            && is_name(k)
        {
            out.push((k.to_string(), v.to_string()));
        } else if w.starts_with("--") && is_name(bare) {
            match words.get(i + 1) {
                Some(next) if !next.starts_with('-') || next.parse::<f64>().is_ok() => {
                    out.push((bare.to_string(), next.to_string()));
                    i += 1;
                }
                _ => out.push((bare.to_string(), String::new())),
            }
        } else {
            out.push((format!("#{pos}"), w.to_string()));
            pos += 1;
        }
        i += 1;
    }
    out
}

/// Dates (`2026-12-07`, `20261207`), times (`01-13-42`, `01:13:42`) and epoch seconds or
/// milliseconds (10–13 digits) inside a value become `<t>`.
fn untimestamp(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            let ch = v[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        // A run of digits and separators: d+ ([-:_T.] d+)*
        let start = i;
        let mut groups: Vec<usize> = Vec::new();
        loop {
            let g = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(i - g);
            if i + 1 < b.len()
                && matches!(b[i], b'-' | b':' | b'_' | b'T')
                && b[i + 1].is_ascii_digit()
            {
                i += 1;
            } else {
                break;
            }
        }
        let run = &v[start..i];
        let date = groups.len() >= 3 && groups[0] == 4 && groups[1] == 2 && groups[2] == 2;
        let time = groups.len() >= 3 && groups[..3].iter().all(|&g| g == 2);
        let compact =
            groups.len() == 1 && (groups[0] == 8 || groups[0] == 14) && run.starts_with("20");
        let epoch = groups.len() == 1 && (10..=13).contains(&groups[0]);
        if date || time || compact || epoch {
            out.push_str("<t>");
        } else {
            out.push_str(run);
        }
    }
    out
}

/// Drop, from path values, the directories every job shares for that feature. The last
/// component always stays (it names the job's file).
fn align_paths(jobs: &mut [Features]) {
    use std::collections::HashMap;
    // Per feature name: the shared leading directories of its path values.
    let mut shared: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for f in jobs.iter() {
        for (n, v) in f {
            if !v.contains('/') {
                continue;
            }
            let dirs: Vec<&str> = v
                .rsplit_once('/')
                .map_or(Vec::new(), |(d, _)| d.split('/').collect());
            *seen.entry(n.clone()).or_default() += 1;
            match shared.get_mut(n) {
                None => {
                    shared.insert(n.clone(), dirs.iter().map(|s| s.to_string()).collect());
                }
                Some(prefix) => {
                    let k = prefix
                        .iter()
                        .zip(&dirs)
                        .take_while(|(a, b)| a.as_str() == **b)
                        .count();
                    prefix.truncate(k);
                }
            }
        }
    }
    for f in jobs.iter_mut() {
        for (n, v) in f.iter_mut() {
            let Some(prefix) = shared.get(n.as_str()) else {
                continue;
            };
            if !v.contains('/') {
                continue;
            }
            let comps: Vec<&str> = v.split('/').collect();
            let keep = prefix.len().min(comps.len().saturating_sub(1));
            *v = comps[keep..].join("/");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_features(lines: &[&str]) -> Vec<Features> {
        from_lines(lines)
    }

    #[test]
    fn a_regenerated_jobs_file_in_another_run_directory_names_the_same_jobs() {
        let r2 = line_features(&[
            "job runs/r2/results/a07.out 300:1",
            "job runs/r2/results/a08.out 600:2",
        ]);
        let r3 = line_features(&[
            "job runs/r3/results/a08.out 600:2",
            "job runs/r3/results/a07.out 300:1",
        ]);
        assert_eq!(ident(&r2[0]), "#0=job #1=a07.out #2=300:1");
        assert_eq!(ident(&r2[0]), ident(&r3[1]));
        assert_eq!(ident(&r2[1]), ident(&r3[0]));
        // A directory that differs between jobs is identity, not run noise.
        let d = line_features(&["t data/a/x.csv", "t data/b/x.csv"]);
        assert_eq!(
            (d[0][1].1.as_str(), d[1][1].1.as_str()),
            ("a/x.csv", "b/x.csv")
        );
    }

    #[test]
    fn key_value_words_and_flags_are_named_parameters() {
        let f = line_features(&[
            "python train.py --lr 0.1 --seed=3 model=large out=/tmp/2026-12-07/01-13-42/o.txt -v",
        ]);
        assert_eq!(
            ident(&f[0]),
            "#0=python #1=train.py lr=0.1 seed=3 model=large out=o.txt #2=-v"
        );
        // A negative number is a flag's value, not a flag.
        let f = line_features(&["x --shift -2"]);
        assert_eq!(f[0][1], ("shift".to_string(), "-2".to_string()));
    }

    #[test]
    fn timestamps_and_dates_are_aligned_other_numbers_are_not() {
        assert_eq!(untimestamp("run-2026-12-07T01:13:42.log"), "run-<t>.log");
        assert_eq!(untimestamp("ckpt_1765069000.pt"), "ckpt_<t>.pt");
        assert_eq!(untimestamp("20261207"), "<t>");
        assert_eq!(untimestamp("lr0.001_bs128_600:2"), "lr0.001_bs128_600:2");
        assert_eq!(untimestamp("12345678"), "12345678");
    }

    #[test]
    fn parameters_are_the_identity_when_given() {
        let f = features(&[Written {
            params: vec![("model", "large")],
            words: vec!["python", "x.py", "/out/2026-12-07/a"],
        }]);
        assert_eq!(ident(&f[0]), "model=large");
    }

    #[test]
    fn quoted_words_stay_whole() {
        assert_eq!(
            split_words(r#"sh -c 'echo a b' "x y" ''"#),
            vec!["sh", "-c", "echo a b", "x y", ""]
        );
    }
}
