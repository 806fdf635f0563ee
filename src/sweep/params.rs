//! Parameter values as users write them — `a,b\,c`, Hydra's `range(start,stop[,step])` over
//! integers or exact decimals, `@file` with one value a line — and the ordered cartesian product.

use std::path::Path;

use super::template::valid_name;

/// At most this many values in one `range()`, and jobs in one sweep: far beyond any real sweep,
/// small enough that a typo such as `range(0,1e9)` fails at once instead of exhausting memory.
pub const MAX_JOBS: usize = 1_000_000;

/// One swept parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub values: Vec<String>,
    /// Where it was written, for messages: `-p 'lr=0.1'` or `sweep.toml:7: params.lr`.
    pub origin: String,
}

/// Parse one `-p NAME=VALUES` flag (an `@file` is relative to `base`, the current directory).
pub fn parse_flag(arg: &str, base: &Path) -> Result<Param, String> {
    let origin = format!("-p '{arg}'");
    let Some((name, spec)) = arg.split_once('=') else {
        return Err(format!(
            "{origin}: expected NAME=VALUES, e.g. -p lr=0.1,0.01 or -p seed=range(0,3)"
        ));
    };
    let name = name.trim();
    check_name(name).map_err(|e| format!("{origin}: {e}"))?;
    let values = parse_values(spec, base).map_err(|e| format!("{origin}: {e}"))?;
    Ok(Param {
        name: name.to_string(),
        values,
        origin,
    })
}

pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the parameter name is empty; write NAME=VALUES".into());
    }
    if !valid_name(name) {
        return Err(format!(
            "'{name}' is not a parameter name; use letters, digits, _ . - (starting with a letter \
             or _), as in the command's {{name}} placeholder"
        ));
    }
    Ok(())
}

/// Values from `-p` syntax: `range(...)`, `@file`, or a comma list with `\,` for a literal comma.
pub fn parse_values(spec: &str, base: &Path) -> Result<Vec<String>, String> {
    let s = spec.trim();
    if s.is_empty() {
        return Err("the value list is empty; give at least one value, e.g. NAME=1,2,3".into());
    }
    let values = if let Some(inner) = s.strip_prefix("range(") {
        let Some(inner) = inner.strip_suffix(')') else {
            return Err(format!(
                "'{s}' has no closing ')'; write range(start,stop[,step]) (a literal value that \
                 starts with range( can be given in sweep.toml's [params])"
            ));
        };
        range(inner)?
    } else if let Some(file) = s.strip_prefix('@') {
        values_file(file, base)?
    } else {
        list(s)?
    };
    if let Some(v) = values.iter().find(|v| v.contains('\0')) {
        return Err(format!(
            "the value {:?} contains a NUL byte, which no command argument can hold",
            v.replace('\0', "\\0")
        ));
    }
    Ok(values)
}

/// `a, b ,c\,d` → `["a", "b", "c,d"]`. `\,` is a comma, `\\` a backslash, a leading `\@` an `@`;
/// any other backslash is kept, so regexes and Windows paths pass through.
fn list(s: &str) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let push = |cur: &mut String, values: &mut Vec<String>| -> Result<(), String> {
        let v = cur.trim();
        if v.is_empty() {
            return Err(format!(
                "value {} of '{s}' is empty; remove the extra comma (an empty value can be \
                 given in sweep.toml as \"\")",
                values.len() + 1
            ));
        }
        values.push(v.to_string());
        cur.clear();
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ (',' | '\\')) => {
                    cur.push(n);
                    chars.next();
                }
                Some('@') if cur.trim().is_empty() => {
                    cur.push('@');
                    chars.next();
                }
                _ => cur.push('\\'),
            },
            ',' => push(&mut cur, &mut values)?,
            _ => cur.push(c),
        }
    }
    push(&mut cur, &mut values)?;
    Ok(values)
}

/// One value per line of `file` (relative to `base`); blank lines skipped, values trimmed.
fn values_file(file: &str, base: &Path) -> Result<Vec<String>, String> {
    let file = file.trim();
    if file.is_empty() {
        return Err("'@' needs a file name: NAME=@values.txt (one value a line)".into());
    }
    let path = base.join(file);
    let text = std::fs::File::open(&path)
        .map_err(|e| e.to_string())
        .and_then(|mut f| super::read_text(&mut f, super::check::MAX_VALUES_FILE))
        .map_err(|e| format!("cannot read the values file {}: {e}", path.display()))?;
    let values: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if values.is_empty() {
        return Err(format!(
            "the values file {} has no values (one a line; blank lines are skipped)",
            path.display()
        ));
    }
    Ok(values)
}

/// An exact decimal `m × 10^-scale`, so that `range(0,1,0.1)` yields `0.3`, not `0.30000000000000004`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dec {
    m: i128,
    scale: u32,
    /// Written with a `.` or an exponent: the range's values are then floats (`1.0`), as in Hydra.
    float: bool,
}

/// Digits we accept in one range bound; keeps every product below i128's 38 digits.
const MAX_DIGITS: usize = 18;

impl Dec {
    fn parse(s: &str) -> Option<Dec> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (mant, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        if int.is_empty() && frac.is_empty()
            || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        let max = MAX_DIGITS as i32;
        if digits.len() > MAX_DIGITS || !(-max..=max).contains(&exp) || frac.len() > MAX_DIGITS {
            return None;
        }
        let mut m: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let mut scale = frac.len() as i32 - exp;
        if scale < 0 {
            m *= 10i128.pow((-scale) as u32);
            scale = 0;
        }
        Some(Dec {
            m: if neg { -m } else { m },
            scale: scale as u32,
            float: body.contains(['.', 'e', 'E']),
        })
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        self.m.checked_mul(10i128.checked_pow(scale - self.scale)?)
    }
}

/// Hydra's `range(start, stop[, step])`: `start + step*i` while below `stop` (above, for a
/// negative step). Integers stay integers; if any bound is written as a float, every value is
/// printed as one (`0.0, 0.5`), computed exactly in decimal.
fn range(inner: &str) -> Result<Vec<String>, String> {
    let shown = format!("range({inner})");
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    if !(2..=3).contains(&args.len()) {
        return Err(format!(
            "{shown}: expected range(start,stop) or range(start,stop,step), e.g. range(0,10,2)"
        ));
    }
    let mut nums = Vec::with_capacity(3);
    for (what, a) in ["start", "stop", "step"].iter().zip(&args) {
        nums.push(Dec::parse(a).ok_or_else(|| {
            format!(
                "{shown}: {what} '{a}' is not a number (integers or decimals such as 0.25, \
                 at most {MAX_DIGITS} digits)"
            )
        })?);
    }
    let step = nums.get(2).copied().unwrap_or(Dec {
        m: 1,
        scale: 0,
        float: false,
    });
    let (start, stop) = (nums[0], nums[1]);
    let float = start.float || stop.float || step.float;
    let scale = start.scale.max(stop.scale).max(step.scale);
    // |a|, |b|, |d| < 10^37 keeps b - a and every a + i*d (which lies between a and b) in i128.
    let limit = 10i128.pow(37);
    let (Some(a), Some(b), Some(d)) = (
        start.rescale(scale).filter(|v| v.abs() < limit),
        stop.rescale(scale).filter(|v| v.abs() < limit),
        step.rescale(scale).filter(|v| v.abs() < limit),
    ) else {
        return Err(format!(
            "{shown}: the numbers have too many digits for an exact range"
        ));
    };
    if d == 0 {
        return Err(format!(
            "{shown}: the step is 0; use a positive or negative step"
        ));
    }
    let span = if d > 0 { b - a } else { a - b };
    if a == b {
        // Any step gives nothing here: suggest a range that has values.
        let stop = format_dec(a + 5 * d.abs(), scale, float);
        let example = match args.get(2) {
            Some(_) => format!(
                "range({},{stop},{})",
                args[0],
                format_dec(d.abs(), scale, float)
            ),
            None => format!("range({},{stop})", args[0]),
        };
        return Err(format!(
            "{shown} is empty: start equals stop (stop is excluded); e.g. {example} gives 5 values"
        ));
    }
    if span <= 0 {
        let hint = if d > 0 {
            format!(
                "start must be below stop; for a countdown write range({},{},-1)",
                args[0], args[1]
            )
        } else {
            "with a negative step, start must be above stop".to_string()
        };
        return Err(format!("{shown} is empty: {hint}"));
    }
    let count = (span + d.abs() - 1) / d.abs();
    if count > MAX_JOBS as i128 {
        return Err(format!(
            "{shown} has {count} values; at most {MAX_JOBS} are allowed (check the step)"
        ));
    }
    Ok((0..count)
        .map(|i| format_dec(a + i * d, scale, float))
        .collect())
}

fn format_dec(m: i128, scale: u32, float: bool) -> String {
    let sign = if m < 0 { "-" } else { "" };
    let abs = m.unsigned_abs();
    let pow = 10u128.pow(scale);
    let (int, frac) = (abs / pow, abs % pow);
    let mut frac = if scale == 0 {
        String::new()
    } else {
        format!("{frac:0width$}", width = scale as usize)
    };
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac.is_empty() && float {
        frac.push('0');
    }
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// How many jobs the product of `groups` of `params` has, or why it is too many.
pub fn product_len(params: &[Param], groups: &[Vec<usize>]) -> Result<usize, String> {
    let mut n: usize = 1;
    for g in groups {
        n = n
            .checked_mul(params[g[0]].values.len())
            .filter(|&n| n <= MAX_JOBS)
            .ok_or_else(|| {
                let sizes: Vec<String> = params
                    .iter()
                    .map(|p| format!("{}: {}", p.name, p.values.len()))
                    .collect();
                format!(
                    "the parameters make more than {MAX_JOBS} jobs ({}); sweep fewer values",
                    sizes.join(", ")
                )
            })?;
    }
    Ok(n)
}

/// Parameters that vary together (`--link a,b`, like GNU parallel's `:::+`): their values are
/// paired by position instead of crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub names: Vec<String>,
    /// Where it was written, for messages: `--link 'a,b'` or `sweep.toml:5: link`.
    pub origin: String,
}

/// Parse `--link a,b[,c...]`.
pub fn parse_link(arg: &str, origin: String) -> Result<Link, String> {
    let names: Vec<String> = arg.split(',').map(|n| n.trim().to_string()).collect();
    link_of(names, origin)
}

/// A link from its names, checked on its own (at least two distinct, valid names).
pub fn link_of(names: Vec<String>, origin: String) -> Result<Link, String> {
    for n in &names {
        check_name(n).map_err(|e| format!("{origin}: {e}"))?;
    }
    if names.len() < 2 {
        return Err(format!(
            "{origin}: a link pairs two or more parameters, e.g. --link lr,warmup"
        ));
    }
    if let Some(d) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        return Err(format!("{origin}: {d} is named twice"));
    }
    Ok(Link { names, origin })
}

/// The parameters as groups that vary together: each group lists indexes into `params`, in
/// order of the group's first parameter (so the first parameter still varies slowest). An
/// unlinked parameter is a group of one. Errors name the link at fault.
pub fn groups(params: &[Param], links: &[Link]) -> Result<Vec<Vec<usize>>, String> {
    let mut group_of: Vec<Option<usize>> = vec![None; params.len()];
    for (li, link) in links.iter().enumerate() {
        let mut len: Option<(usize, &Param)> = None;
        for name in &link.names {
            let Some(pi) = params.iter().position(|p| &p.name == name) else {
                let known: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "{}: there is no parameter {name} (parameters given: {}); link parameters \
                     given with -p or under [params]",
                    link.origin,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            if let Some(other) = group_of[pi] {
                return Err(format!(
                    "{}: {name} is already linked by {}; put all parameters that vary together \
                     in one link, e.g. --link {}",
                    link.origin,
                    links[other].origin,
                    links[other]
                        .names
                        .iter()
                        .chain(
                            link.names
                                .iter()
                                .filter(|n| !links[other].names.contains(n))
                        )
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            group_of[pi] = Some(li);
            let p = &params[pi];
            match len {
                None => len = Some((p.values.len(), p)),
                Some((n, first)) if n != p.values.len() => {
                    return Err(format!(
                        "{}: linked parameters need the same number of values, but {} has {n} \
                         ({}) and {} has {} ({})",
                        link.origin,
                        first.name,
                        first.origin,
                        p.name,
                        p.values.len(),
                        p.origin
                    ));
                }
                Some(_) => {}
            }
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut seen_link: Vec<Option<usize>> = vec![None; links.len()];
    for (pi, g) in group_of.iter().enumerate() {
        match g {
            None => out.push(vec![pi]),
            Some(li) => match seen_link[*li] {
                Some(gi) => out[gi].push(pi),
                None => {
                    seen_link[*li] = Some(out.len());
                    out.push(vec![pi]);
                }
            },
        }
    }
    Ok(out)
}

/// The cartesian product as index tuples: the first parameter varies slowest, like nested loops
/// (Hydra's basic sweeper order).
pub fn product(lens: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    let total: usize = lens.iter().product();
    let mut idx = vec![0usize; lens.len()];
    (0..total).map(move |k| {
        if k > 0 {
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < lens[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        idx.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(spec: &str) -> Vec<String> {
        parse_values(spec, Path::new(".")).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> String {
        parse_values(spec, Path::new(".")).unwrap_err()
    }

    #[test]
    fn comma_lists_with_escapes() {
        assert_eq!(vals("0.1,0.01"), ["0.1", "0.01"]);
        assert_eq!(vals(" a , b "), ["a", "b"]);
        assert_eq!(vals(r"a\,b,c"), ["a,b", "c"]);
        assert_eq!(vals(r"a\\,b"), [r"a\", "b"]);
        assert_eq!(vals(r"\d+,C:\tmp"), [r"\d+", r"C:\tmp"]);
        assert_eq!(vals(r"\@home,x"), ["@home", "x"]);
        assert_eq!(vals("'; rm -rf x'"), ["'; rm -rf x'"]);
        assert_eq!(vals("single"), ["single"]);
    }

    #[test]
    fn empty_lists_and_values_are_errors() {
        assert!(err("").contains("empty"));
        assert!(err("  ").contains("empty"));
        assert!(err("1,,2").contains("value 2 of '1,,2' is empty"));
        assert!(err("1,2,").contains("value 3"));
    }

    #[test]
    fn integer_ranges_like_hydra() {
        assert_eq!(vals("range(0,3)"), ["0", "1", "2"]);
        assert_eq!(vals("range(0,5,2)"), ["0", "2", "4"]);
        assert_eq!(vals("range(5, 0, -2)"), ["5", "3", "1"]);
        assert_eq!(vals("range(-2,1)"), ["-2", "-1", "0"]);
        assert_eq!(vals("range(0,1)"), ["0"]);
    }

    #[test]
    fn float_ranges_are_exact() {
        assert_eq!(vals("range(0,10,3.3)"), ["0.0", "3.3", "6.6", "9.9"]);
        assert_eq!(vals("range(0,1,0.1)").len(), 10);
        assert_eq!(vals("range(0,1,0.1)")[3], "0.3");
        assert_eq!(vals("range(0.5,2)"), ["0.5", "1.5"]);
        assert_eq!(vals("range(1,0,-0.25)"), ["1.0", "0.75", "0.5", "0.25"]);
        assert_eq!(vals("range(0,3e-3,1e-3)"), ["0.0", "0.001", "0.002"]);
        assert_eq!(vals("range(-0.5,0.5,0.5)"), ["-0.5", "0.0"]);
    }

    #[test]
    fn bad_ranges_say_why() {
        assert!(err("range(0,3,0)").contains("step is 0"));
        assert!(err("range(3,0)").contains("is empty"));
        assert!(err("range(3,0)").contains("range(3,0,-1)"));
        assert!(err("range(0,3,-1)").contains("negative step"));
        assert!(err("range(0,0)").contains("empty"));
        // The suggestion for an empty range must itself have values (it once said
        // range(0,0,-1), which is empty too).
        for bad in ["range(0,0)", "range(2,2,-1)", "range(1.5,1.5,0.5)"] {
            let e = err(bad);
            let suggested = e.split("e.g. ").nth(1).and_then(|t| t.split(' ').next());
            let suggested = suggested.unwrap_or_else(|| panic!("{bad}: no example in {e}"));
            assert_eq!(vals(suggested).len(), 5, "{bad}: {e}");
        }
        assert!(err("range(3)").contains("expected range(start,stop)"));
        assert!(err("range(0,x)").contains("stop 'x' is not a number"));
        assert!(err("range(0,1,nan)").contains("step 'nan'"));
        assert!(err("range(0,100000000)").contains("at most 1000000"));
        assert!(err("range(0,1e30)").contains("not a number"));
    }

    #[test]
    fn values_files_are_read_relative_to_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("v.txt"), "a b\n\n  c  \r\n\n#d\n").unwrap();
        assert_eq!(
            parse_values("@v.txt", dir.path()).unwrap(),
            ["a b", "c", "#d"]
        );
        std::fs::write(dir.path().join("blank.txt"), "\n \n").unwrap();
        let e = parse_values("@blank.txt", dir.path()).unwrap_err();
        assert!(e.contains("blank.txt has no values"), "{e}");
        let e = parse_values("@missing.txt", dir.path()).unwrap_err();
        assert!(
            e.contains("cannot read the values file") && e.contains("missing.txt"),
            "{e}"
        );
        std::fs::write(dir.path().join("nul.txt"), "a\0b\n").unwrap();
        assert!(
            parse_values("@nul.txt", dir.path())
                .unwrap_err()
                .contains("NUL")
        );
        assert!(err("@").contains("needs a file name"));
    }

    #[test]
    fn flags_name_the_flag_and_value() {
        let p = parse_flag("lr=0.1,0.01", Path::new(".")).unwrap();
        assert_eq!((p.name.as_str(), p.values.len()), ("lr", 2));
        for (arg, needle) in [
            ("lr", "-p 'lr': expected NAME=VALUES"),
            ("=1,2", "-p '=1,2': the parameter name is empty"),
            ("l r=1", "'l r' is not a parameter name"),
            ("lr=", "-p 'lr=': the value list is empty"),
            ("s=range(2,1)", "-p 's=range(2,1)': range(2,1) is empty"),
        ] {
            let e = parse_flag(arg, Path::new(".")).unwrap_err();
            assert!(e.contains(needle), "{arg}: {e}");
        }
        // Only the first '=' splits: values may contain '='.
        assert_eq!(
            parse_flag("opt=a=b", Path::new(".")).unwrap().values,
            ["a=b"]
        );
    }

    #[test]
    fn product_first_param_varies_slowest() {
        let all: Vec<Vec<usize>> = product(&[2, 3]).collect();
        assert_eq!(
            all,
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]].map(|a| a.to_vec())
        );
        assert_eq!(product(&[]).collect::<Vec<_>>(), [Vec::<usize>::new()]);
        let p = |n: usize| Param {
            name: format!("p{n}"),
            values: vec!["x".into(); n],
            origin: String::new(),
        };
        let g = |n: usize| (0..n).map(|i| vec![i]).collect::<Vec<_>>();
        assert_eq!(product_len(&[p(3), p(4)], &g(2)).unwrap(), 12);
        let e = product_len(&[p(1000), p(1000), p(2)], &g(3)).unwrap_err();
        assert!(
            e.contains("more than 1000000 jobs") && e.contains("p1000: 1000"),
            "{e}"
        );
    }

    fn named(name: &str, n: usize) -> Param {
        Param {
            name: name.into(),
            values: (0..n).map(|i| i.to_string()).collect(),
            origin: format!("-p '{name}=...'"),
        }
    }

    fn link(names: &str) -> Link {
        parse_link(names, format!("--link '{names}'")).unwrap()
    }

    #[test]
    fn links_group_parameters_in_first_member_order() {
        let ps = [named("a", 2), named("b", 3), named("c", 3), named("d", 2)];
        let g = groups(&ps, &[link("c,b")]).unwrap();
        assert_eq!(g, [vec![0], vec![1, 2], vec![3]]);
        assert_eq!(product_len(&ps, &g).unwrap(), 12);
        let g = groups(&ps, &[link("a,d"), link("b,c")]).unwrap();
        assert_eq!(g, [vec![0, 3], vec![1, 2]]);
        assert_eq!(product_len(&ps, &g).unwrap(), 6);
    }

    #[test]
    fn bad_links_name_the_link_and_the_fix() {
        let ps = [named("a", 2), named("b", 3), named("c", 3)];
        let e = groups(&ps, &[link("a,b")]).unwrap_err();
        assert!(
            e.starts_with("--link 'a,b': linked parameters need the same number"),
            "{e}"
        );
        assert!(e.contains("a has 2") && e.contains("b has 3"), "{e}");
        let e = groups(&ps, &[link("b,x")]).unwrap_err();
        assert!(e.contains("no parameter x") && e.contains("a, b, c"), "{e}");
        let e = groups(&ps, &[link("b,c"), link("c,a")]).unwrap_err();
        assert!(e.contains("c is already linked by --link 'b,c'"), "{e}");
        for (arg, needle) in [
            ("a", "two or more"),
            ("a,a", "a is named twice"),
            ("a,", "empty"),
        ] {
            let e = parse_link(arg, "--link".into()).unwrap_err();
            assert!(e.contains(needle), "{arg}: {e}");
        }
    }
}
