//! sweep.toml (`-f FILE`): the command, parameters and every `run` option in one reviewable
//! file, read strictly (unknown keys and wrong types are errors naming the file and line).
//! The format is documented in docs/sweep-toml.md; relative paths in it are relative to the file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use toml::Spanned;

use super::check;
use super::jobsfile::Ordered;
use super::params::{self, Param};
use crate::cli::{Backend, OutputMode};
use crate::sched::OnPressure;
use crate::size::{self, SizeSpec};

/// The command as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecCommand {
    /// `command = ["prog", "arg", ...]`: argv, placeholders inside elements.
    Argv(Vec<String>),
    /// `command = "..."`: run with `sh -c`.
    Shell(String),
}

/// A sweep.toml after parsing and checking; every value already validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// The file as named on the command line, for messages.
    pub path: PathBuf,
    pub name: Option<String>,
    pub command: Option<SpecCommand>,
    /// `sweep.toml:4: command`, for messages about the command.
    pub command_at: String,
    /// Resolved against the file's directory.
    pub jobs_file: Option<PathBuf>,
    pub shell: bool,
    pub jobs: Option<usize>,
    pub limit: Option<u64>,
    pub reserve: Option<SizeSpec>,
    pub mem_per_job: Option<SizeSpec>,
    pub job_mem_max: Option<SizeSpec>,
    pub no_history: bool,
    pub no_cgroups: bool,
    pub on_pressure: Option<OnPressure>,
    pub retries: Option<u32>,
    /// Resolved against the file's directory.
    pub out: Option<PathBuf>,
    pub json: bool,
    pub grace: Option<f64>,
    pub sample_interval: Option<f64>,
    pub best_effort: bool,
    pub timeout: Option<f64>,
    pub fail_fast: bool,
    pub output: Option<OutputMode>,
    /// `link = [["a", "b"], ...]`.
    pub links: Vec<params::Link>,
    /// In file order.
    pub params: Vec<Param>,
    pub backend: Option<Backend>,
    /// `[slurm] args = [...]`.
    pub slurm_args: Vec<String>,
}

/// The `[slurm]` table.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawSlurm {
    /// sbatch options for every job, as `--slurm-arg` takes them.
    args: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Raw {
    name: Option<Spanned<String>>,
    command: Option<Spanned<RawCommand>>,
    #[serde(alias = "jobs_file")]
    jobs_file: Option<Spanned<String>>,
    shell: Option<bool>,
    jobs: Option<Spanned<usize>>,
    limit: Option<Spanned<RawSize>>,
    reserve: Option<Spanned<RawSize>>,
    #[serde(alias = "mem_per_job")]
    mem_per_job: Option<Spanned<RawSize>>,
    #[serde(alias = "job_mem_max")]
    job_mem_max: Option<Spanned<RawSize>>,
    #[serde(alias = "no_history")]
    no_history: Option<bool>,
    #[serde(alias = "no_cgroups")]
    no_cgroups: Option<bool>,
    #[serde(alias = "on_pressure")]
    on_pressure: Option<OnPressure>,
    retries: Option<Spanned<u32>>,
    out: Option<String>,
    json: Option<bool>,
    grace: Option<Spanned<f64>>,
    #[serde(alias = "sample_interval")]
    sample_interval: Option<Spanned<f64>>,
    #[serde(alias = "best_effort")]
    best_effort: Option<bool>,
    timeout: Option<Spanned<RawTimeout>>,
    #[serde(alias = "fail_fast")]
    fail_fast: Option<bool>,
    output: Option<OutputMode>,
    link: Option<Spanned<Vec<Vec<String>>>>,
    params: Option<Ordered<Spanned<String>, Spanned<RawParam>>>,
    backend: Option<Backend>,
    slurm: Option<Spanned<RawSlurm>>,
}

enum RawCommand {
    Argv(Vec<String>),
    Shell(String),
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCommand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings (argv) or a string (run with sh -c)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawCommand, E> {
                Ok(RawCommand::Shell(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCommand, A::Error> {
                let mut argv = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    argv.push(s);
                }
                Ok(RawCommand::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size: a string for `size::parse_*`, or a whole number of bytes.
enum RawSize {
    Text(String),
    Bytes(u64),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a size such as \"2G\", \"512M\" or \"10%\", or a whole number of bytes",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(s.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawSize, E> {
                u64::try_from(n)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::custom(format!("{n} is negative; sizes must be zero or more")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<RawSize, E> {
                Err(E::custom(format!(
                    "{n}: a number here is a count of bytes and must be whole; write a string \
                     such as \"1.5G\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: a string for `check::timeout`, or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTimeout {
    Secs(f64),
    Text(String),
}

/// A parameter's values: a string in `-p` syntax, one scalar, or an array of scalars.
enum RawParam {
    Syntax(String),
    One(Scalar),
    List(Vec<Spanned<Scalar>>),
}

/// A literal value; a float keeps only its span, so that it is used as written (`1.0`, `1e-4`).
enum Scalar {
    Str(String),
    Int(i64),
    Float,
    Bool(bool),
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(s.to_string()))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar, E> {
        i64::try_from(n)
            .map(Scalar::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(b))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

impl<'de> Deserialize<'de> for RawParam {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawParam;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an array of values, or a string in -p syntax (\"a,b\", \"range(0,3)\", \
                     \"@file\"); quote a name with dots: \"model.lr\" = [...]",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawParam, E> {
                Ok(RawParam::Syntax(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawParam, E> {
                ScalarVisitor.visit_i64(n).map(RawParam::One)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawParam, E> {
                ScalarVisitor.visit_u64(n).map(RawParam::One)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<RawParam, E> {
                ScalarVisitor.visit_f64(n).map(RawParam::One)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<RawParam, E> {
                ScalarVisitor.visit_bool(b).map(RawParam::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawParam, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<Scalar>>()? {
                    items.push(s);
                }
                Ok(RawParam::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads one sweep.toml, remembering its text so that spans become line numbers.
struct Reader<'a> {
    path: &'a Path,
    src: &'a str,
}

impl Reader<'_> {
    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// `sweep.toml:7: key: msg`.
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        msg: impl fmt::Display,
    ) -> Result<T, String> {
        Err(format!(
            "{}:{}: {key}: {msg}",
            self.path.display(),
            self.line(span.start)
        ))
    }

    fn text(&self, span: std::ops::Range<usize>) -> String {
        let raw = self.src.get(span).unwrap_or("").trim();
        raw.strip_prefix('+').unwrap_or(raw).replace('_', "")
    }

    fn scalar(&self, s: &Scalar, span: std::ops::Range<usize>) -> String {
        match s {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float => self.text(span),
            Scalar::Bool(b) => b.to_string(),
        }
    }

    fn size(
        &self,
        key: &str,
        v: Option<Spanned<RawSize>>,
        pct: bool,
    ) -> Result<Option<SizeSpec>, String> {
        let Some(v) = v else { return Ok(None) };
        let span = v.span();
        match v.into_inner() {
            RawSize::Bytes(b) => Ok(SizeSpec::Bytes(b)),
            RawSize::Text(t) => {
                let parsed = if pct {
                    size::parse_spec(&t)
                } else {
                    size::parse_bytes(&t).map(SizeSpec::Bytes)
                };
                parsed.or_else(|e| self.err(span.clone(), key, e))
            }
        }
        .and_then(|s| {
            check::size(Some(s), key == "reserve").or_else(|e| self.err(span, key, e))?;
            Ok(Some(s))
        })
    }
}

impl Spec {
    /// The options this file gives, to lay under the command line's.
    pub fn options(&self) -> super::Options {
        super::Options {
            jobs: self.jobs,
            limit: self.limit,
            reserve: self.reserve,
            mem_per_job: self.mem_per_job,
            job_mem_max: self.job_mem_max,
            no_history: self.no_history,
            no_cgroups: self.no_cgroups,
            on_pressure: self.on_pressure,
            retries: self.retries,
            out: self.out.clone(),
            json: self.json,
            grace: self.grace,
            sample_interval: self.sample_interval,
            dry_run: false,
            best_effort: self.best_effort,
            timeout: self.timeout,
            fail_fast: self.fail_fast,
            output: self.output,
            backend: self.backend,
            slurm_args: (!self.slurm_args.is_empty()).then(|| self.slurm_args.clone()),
        }
    }
}

/// Read and check `path`. Relative paths inside it resolve against its directory.
pub fn load(path: &Path) -> Result<Spec, String> {
    let src = std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|mut f| super::read_text(&mut f, check::MAX_SWEEP_TOML))
        .map_err(|e| format!("-f {}: cannot read the sweep file: {e}", path.display()))?;
    parse(&src, path)
}

/// Parse sweep.toml text; `path` names it in messages and anchors its relative paths.
pub fn parse(src: &str, path: &Path) -> Result<Spec, String> {
    let r = Reader { path, src };
    let raw: Raw = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| r.line(s.start));
        let msg = e.message().trim_end().replace('\n', "; ");
        match line {
            Some(l) => format!("{}:{l}: {msg}", path.display()),
            None => format!("{}: {msg}", path.display()),
        }
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut spec = Spec {
        path: path.to_path_buf(),
        shell: raw.shell.unwrap_or(false),
        no_history: raw.no_history.unwrap_or(false),
        no_cgroups: raw.no_cgroups.unwrap_or(false),
        json: raw.json.unwrap_or(false),
        best_effort: raw.best_effort.unwrap_or(false),
        fail_fast: raw.fail_fast.unwrap_or(false),
        output: raw.output,
        on_pressure: raw.on_pressure,
        out: raw.out.map(|o| dir.join(o)),
        ..Spec::default()
    };
    if let Some(n) = raw.name {
        let span = n.span();
        let n = n.into_inner();
        check::name(&n).or_else(|e| r.err(span, "name", e))?;
        spec.name = Some(n);
    }
    if let (Some(c), Some(_)) = (&raw.command, &raw.jobs_file) {
        return r.err(
            c.span(),
            "command",
            "give either command (with [params]) or jobs-file, not both",
        );
    }
    if let Some(c) = raw.command {
        let span = c.span();
        spec.command_at = format!("{}:{}: command", path.display(), r.line(span.start));
        spec.command = Some(match c.into_inner() {
            RawCommand::Argv(a) if a.is_empty() => {
                return r.err(
                    span,
                    "command",
                    "the array is empty; write e.g. [\"python\", \"train.py\", \"--lr\", \"{lr}\"]",
                );
            }
            RawCommand::Argv(a) => SpecCommand::Argv(a),
            RawCommand::Shell(s) if s.trim().is_empty() => {
                return r.err(span, "command", "the command is empty");
            }
            RawCommand::Shell(s) => SpecCommand::Shell(s),
        });
    }
    if let Some(j) = raw.jobs_file {
        let span = j.span();
        let j = j.into_inner();
        if j.trim().is_empty() {
            return r.err(span, "jobs-file", "the path is empty");
        }
        // `-` (stdin) stays as is; anything else is relative to this file.
        spec.jobs_file = Some(if j == "-" {
            PathBuf::from("-")
        } else {
            dir.join(j)
        });
    }
    if let Some(j) = raw.jobs {
        let span = j.span();
        spec.jobs = Some(check::jobs(*j.get_ref()).or_else(|e| r.err(span, "jobs", e))?);
    }
    if let Some(v) = raw.retries {
        let span = v.span();
        spec.retries = Some(check::retries(*v.get_ref()).or_else(|e| r.err(span, "retries", e))?);
    }
    if let Some(v) = raw.grace {
        let span = v.span();
        spec.grace = Some(check::grace(*v.get_ref()).or_else(|e| r.err(span, "grace", e))?);
    }
    if let Some(v) = raw.sample_interval {
        let span = v.span();
        spec.sample_interval = Some(
            check::sample_interval(*v.get_ref()).or_else(|e| r.err(span, "sample-interval", e))?,
        );
    }
    if let Some(v) = raw.timeout {
        let span = v.span();
        let text = match v.into_inner() {
            RawTimeout::Secs(n) => n.to_string(),
            RawTimeout::Text(t) => t,
        };
        spec.timeout = Some(check::timeout(&text).or_else(|e| r.err(span, "timeout", e))?);
    }
    if let Some(v) = raw.link {
        let span = v.span();
        let origin = format!("{}:{}: link", path.display(), r.line(span.start));
        for names in v.into_inner() {
            spec.links.push(params::link_of(names, origin.clone())?);
        }
    }
    if let Some(v) = raw.limit {
        let span = v.span();
        let limit = r.size("limit", Some(v), false)?.map(|s| s.resolve(0));
        if let Some(l) = limit {
            spec.limit = Some(check::limit(l).or_else(|e| r.err(span, "limit", e))?);
        }
    }
    spec.backend = raw.backend;
    if let Some(t) = raw.slurm {
        let span = t.span();
        spec.slurm_args = t.into_inner().args.unwrap_or_default();
        check::slurm_args(spec.backend.unwrap_or_default(), &spec.slurm_args)
            .or_else(|e| r.err(span, "slurm.args", e.replace("--slurm-arg ", "")))?;
    }
    spec.reserve = r.size("reserve", raw.reserve, true)?;
    spec.mem_per_job = r.size("mem-per-job", raw.mem_per_job, true)?;
    spec.job_mem_max = r.size("job-mem-max", raw.job_mem_max, true)?;

    let mut params = raw.params.map(|p| p.0).unwrap_or_default();
    // toml hands tables over sorted by key; the spans restore the order they were written in.
    params.sort_by_key(|(k, _)| k.span().start);
    for (k, v) in params {
        let key_span = k.span();
        let name = k.into_inner();
        let key = format!("params.{name}");
        params::check_name(&name).or_else(|e| r.err(key_span.clone(), &key, e))?;
        let vspan = v.span();
        let values = match v.into_inner() {
            RawParam::Syntax(s) => {
                params::parse_values(&s, dir).or_else(|e| r.err(vspan.clone(), &key, e))?
            }
            RawParam::One(s) => vec![r.scalar(&s, vspan.clone())],
            RawParam::List(items) if items.is_empty() => {
                return r.err(vspan, &key, "the list is empty; give at least one value");
            }
            RawParam::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for it in items {
                    let span = it.span();
                    let v = r.scalar(it.get_ref(), span.clone());
                    if v.contains('\0') {
                        return r.err(span, &key, "a value contains a NUL byte");
                    }
                    values.push(v);
                }
                values
            }
        };
        spec.params.push(Param {
            name,
            values,
            origin: format!("{}:{}: {key}", path.display(), r.line(key_span.start)),
        });
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(src: &str) -> Result<Spec, String> {
        parse(src, Path::new("exp/sweep.toml"))
    }

    #[test]
    fn full_file_parses_with_kebab_or_snake_keys() {
        let s = parse_str(
            r#"
name = "lr-sweep"
command = ["python", "train.py", "--lr", "{lr}"]
jobs = 4
mem-per-job = "2G"
job_mem_max = 3221225472
reserve = "10%"
limit = "16G"
on_pressure = "requeue"
retries = 5
no-history = true
no_cgroups = true
out = "runs"
json = true
grace = 2
sample-interval = 0.5
[params]
seed = "range(0,3)"
lr = [0.1, 1e-4, 1.0, 3, "x,y", true, ""]
depth = 5
"#,
        )
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("lr-sweep"));
        assert_eq!(
            s.command,
            Some(SpecCommand::Argv(
                ["python", "train.py", "--lr", "{lr}"]
                    .map(String::from)
                    .to_vec()
            ))
        );
        assert_eq!(s.jobs, Some(4));
        assert_eq!(s.mem_per_job, Some(SizeSpec::Bytes(2 << 30)));
        assert_eq!(s.job_mem_max, Some(SizeSpec::Bytes(3 << 30)));
        assert_eq!(s.reserve, Some(SizeSpec::Percent(10.0)));
        assert_eq!(s.limit, Some(16 << 30));
        assert_eq!(s.on_pressure, Some(OnPressure::Requeue));
        assert_eq!(s.retries, Some(5));
        assert!(s.no_history && s.no_cgroups && s.json);
        assert_eq!(s.out, Some(PathBuf::from("exp/runs")));
        assert_eq!(s.grace, Some(2.0));
        assert_eq!(s.sample_interval, Some(0.5));
        // Written order, not alphabetical; floats as written; a list item is one literal value.
        let names: Vec<&str> = s.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["seed", "lr", "depth"]);
        assert_eq!(s.params[0].values, ["0", "1", "2"]);
        assert_eq!(
            s.params[1].values,
            ["0.1", "1e-4", "1.0", "3", "x,y", "true", ""]
        );
        assert_eq!(s.params[2].values, ["5"]);
        assert_eq!(s.params[1].origin, "exp/sweep.toml:19: params.lr");
        let s =
            parse_str("backend = \"slurm\"\n[slurm]\nargs = [\"--partition=debug\"]\n").unwrap();
        assert_eq!(s.backend, Some(Backend::Slurm));
        assert_eq!(s.slurm_args, ["--partition=debug"]);
    }

    #[test]
    fn string_command_means_shell_and_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.txt"), "a\nb\n").unwrap();
        let path = dir.path().join("sweep.toml");
        let s = parse(
            "command = \"echo {d} | wc -c\"\n[params]\nd = \"@data.txt\"\n",
            &path,
        )
        .unwrap();
        assert_eq!(
            s.command,
            Some(SpecCommand::Shell("echo {d} | wc -c".into()))
        );
        assert_eq!(s.params[0].values, ["a", "b"]);
        let s = parse("jobs-file = \"cmds.txt\"\n", &path).unwrap();
        assert_eq!(s.jobs_file, Some(dir.path().join("cmds.txt")));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        for (src, needle) in [
            (
                "jobs = 4\nfoo = 1\n",
                "exp/sweep.toml:2: unknown field `foo`",
            ),
            (
                "jobs = \"four\"\n",
                "exp/sweep.toml:1: invalid type: string \"four\"",
            ),
            ("jobs = -1\n", "exp/sweep.toml:1:"),
            ("\n\njobs = 100000\n", "exp/sweep.toml:3: jobs: 100000"),
            (
                "mem-per-job = \"2X\"\n",
                "exp/sweep.toml:1: mem-per-job: '2X' is not a size",
            ),
            (
                "mem-per-job = 1.5\n",
                "exp/sweep.toml:1: 1.5: a number here is a count of bytes",
            ),
            (
                "limit = \"50%\"\n",
                "limit: '50%': a percentage is not allowed",
            ),
            ("limit = 0\n", "limit: 0"),
            (
                "on-pressure = \"panic\"\n",
                "exp/sweep.toml:1: unknown variant `panic`",
            ),
            ("grace = -1\n", "grace: -1"),
            ("sample-interval = 0\n", "sample-interval: 0"),
            ("retries = 1000\n", "retries: 1000"),
            ("command = []\n", "command: the array is empty"),
            (
                "command = [\"a\", 1]\n",
                "exp/sweep.toml:1: invalid type: integer `1`",
            ),
            ("command = \"a\"\njobs-file = \"j\"\n", "not both"),
            (
                "[params]\nlr = []\n",
                "exp/sweep.toml:2: params.lr: the list is empty",
            ),
            (
                "[params]\nlr = \"range(3,0)\"\n",
                "exp/sweep.toml:2: params.lr: range(3,0) is empty",
            ),
            (
                "[params]\n\"a b\" = \"1\"\n",
                "exp/sweep.toml:2: params.a b: 'a b' is not a parameter name",
            ),
            (
                "[params]\nlr = [[1]]\n",
                "exp/sweep.toml:2: invalid type: sequence",
            ),
            (
                "[params]\nlr = \"@nope.txt\"\n",
                "params.lr: cannot read the values file exp/nope.txt",
            ),
            ("name = \"\"\n", "name: "),
            ("jobs = \n", "exp/sweep.toml:1:"),
            (
                "backend = \"pbs\"\n",
                "exp/sweep.toml:1: unknown variant `pbs`",
            ),
            (
                "[slurm]\nargs = [\"--time=5\"]\n",
                "exp/sweep.toml:1: slurm.args: --time=5: sbatch options need --backend slurm",
            ),
            (
                "backend = \"slurm\"\n[slurm]\nargs = [\"--mem=2G\"]\n",
                "exp/sweep.toml:2: slurm.args: --mem=2G: memsweep sets each job's --mem",
            ),
            ("[slurm]\npartition = \"x\"\n", "unknown field `partition`"),
        ] {
            let e = parse_str(src).unwrap_err();
            assert!(e.contains(needle), "{src:?}: {e}");
        }
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = load(Path::new("/nonexistent/sweep.toml")).unwrap_err();
        assert!(e.contains("-f /nonexistent/sweep.toml: cannot read"), "{e}");
    }
}
