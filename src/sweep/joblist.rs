//! The jobs of a plan, stored compactly: every job's id, command, parameter values and own
//! history key packed one after another in one byte arena, parameter names interned. A job is
//! built as a [`Job`] only when it is spawned, shown or written out; the scheduler reads its
//! parameters as borrowed strings ([`JobRef::params`]).
//!
//! Why: a plan of owned strings (each job's argv elements, parameter names and values) took
//! ~330 bytes a job, a third of the runner's footprint with 100 000 jobs queued; packed, a
//! `true {i}` job is ~30 bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Job, JobCommand};

const ARGV: u8 = 0;
const SHELL: u8 = 1;

/// The jobs of a sweep, in plan order. See the module comment for the layout.
#[derive(Debug, Clone, Default)]
pub struct JobList {
    /// Records, one per job: `id`, kind, the command's strings, `(name index, value)` pairs and
    /// the optional own key; numbers are LEB128 varints, strings a length then UTF-8 bytes.
    bytes: Vec<u8>,
    /// Where each job's record starts in `bytes`.
    starts: Vec<usize>,
    /// Parameter names, each once.
    names: Vec<Box<str>>,
    name_index: HashMap<Box<str>, u32>,
}

impl JobList {
    pub fn new() -> JobList {
        JobList::default()
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Append a job (its key kept only when it is not its rendered command, as [`Job::new`]).
    pub fn push(&mut self, job: &Job) {
        self.push_parts(
            job.id,
            &job.command,
            job.params.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            job.own_key.as_deref(),
        );
    }

    /// Append a job from borrowed parts: nothing of it is held but its record. `key` is the
    /// job's own history key when it differs from its rendered command (see [`Job::own_key`]).
    pub fn push_parts<'a>(
        &mut self,
        id: usize,
        command: &JobCommand,
        params: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
        key: Option<&str>,
    ) {
        self.starts.push(self.bytes.len());
        put_varint(&mut self.bytes, id as u64);
        match command {
            JobCommand::Argv(argv) => {
                self.bytes.push(ARGV);
                put_varint(&mut self.bytes, argv.len() as u64);
                for a in argv {
                    put_str(&mut self.bytes, a);
                }
            }
            JobCommand::Shell(s) => {
                self.bytes.push(SHELL);
                put_str(&mut self.bytes, s);
            }
        }
        put_varint(&mut self.bytes, params.len() as u64);
        for (n, v) in params {
            let i = self.intern(n);
            put_varint(&mut self.bytes, u64::from(i));
            put_str(&mut self.bytes, v);
        }
        match key {
            Some(k) => {
                self.bytes.push(1);
                put_str(&mut self.bytes, k);
            }
            None => self.bytes.push(0),
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.name_index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        self.name_index.insert(name.into(), i);
        i
    }

    /// Give back what growing left unused (the arena doubles as it fills).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.starts.shrink_to_fit();
    }

    /// The job at position `i` (which must exist), borrowed.
    pub fn at(&self, i: usize) -> JobRef<'_> {
        self.get(i).expect("a job of the plan")
    }

    /// The job at position `i`, borrowed, if there is one.
    pub fn get(&self, i: usize) -> Option<JobRef<'_>> {
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.bytes.len());
        Some(JobRef {
            list: self,
            rec: &self.bytes[start..end],
        })
    }

    /// Every job, borrowed, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = JobRef<'_>> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| self.at(i))
    }

    /// Every job built, in order (for callers that keep or reorder them).
    pub fn to_vec(&self) -> Vec<Job> {
        self.iter().map(|j| j.to_job()).collect()
    }
}

impl From<Vec<Job>> for JobList {
    fn from(jobs: Vec<Job>) -> JobList {
        jobs.into_iter().collect()
    }
}

impl FromIterator<Job> for JobList {
    fn from_iter<I: IntoIterator<Item = Job>>(it: I) -> JobList {
        let mut l = JobList::new();
        for j in it {
            l.push(&j);
        }
        l.shrink_to_fit();
        l
    }
}

impl PartialEq for JobList {
    fn eq(&self, other: &JobList) -> bool {
        // Name indices depend on insertion order: compare what the jobs are.
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for JobList {}

/// `sweep.json`'s `jobs`: a list of job objects, written and read one job at a time.
impl Serialize for JobList {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.iter().map(|j| j.to_job()))
    }
}

impl<'de> Deserialize<'de> for JobList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JobList, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JobList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of jobs")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<JobList, A::Error> {
                let mut l = JobList::new();
                while let Some(j) = seq.next_element::<Job>()? {
                    l.push(&j);
                }
                l.shrink_to_fit();
                Ok(l)
            }
        }
        d.deserialize_seq(V)
    }
}

/// One job of a [`JobList`], read in place.
#[derive(Clone, Copy)]
pub struct JobRef<'a> {
    list: &'a JobList,
    rec: &'a [u8],
}

impl std::fmt::Debug for JobRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_job().fmt(f)
    }
}

impl PartialEq for JobRef<'_> {
    fn eq(&self, other: &JobRef<'_>) -> bool {
        self.to_job() == other.to_job()
    }
}

impl<'a> JobRef<'a> {
    pub fn id(&self) -> usize {
        Reader(self.rec).varint() as usize
    }

    /// A reader past the id, at the command's kind.
    fn at_command(&self) -> Reader<'a> {
        let mut r = Reader(self.rec);
        r.varint();
        r
    }

    /// A reader at the parameter count.
    fn at_params(&self) -> Reader<'a> {
        let mut r = self.at_command();
        match r.byte() {
            ARGV => {
                for _ in 0..r.varint() {
                    r.str();
                }
            }
            _ => {
                r.str();
            }
        }
        r
    }

    /// The command's strings: its argv, or the one shell line.
    pub fn words(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = self.at_command();
        let n = match r.byte() {
            ARGV => r.varint() as usize,
            _ => 1,
        };
        (0..n).map(move |_| r.str())
    }

    pub fn is_shell(&self) -> bool {
        self.at_command().byte() == SHELL
    }

    pub fn command(&self) -> JobCommand {
        if self.is_shell() {
            JobCommand::Shell(self.words().next().unwrap_or_default().to_string())
        } else {
            JobCommand::Argv(self.words().map(String::from).collect())
        }
    }

    /// The command as one line ([`JobCommand::display`]).
    pub fn display(&self) -> String {
        if self.is_shell() {
            self.words().next().unwrap_or_default().to_string()
        } else {
            let argv: Vec<&str> = self.words().collect();
            super::quote::join_argv(&argv)
        }
    }

    /// The parameter values, in `-p` order.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut r = self.at_params();
        let n = r.varint() as usize;
        let names = &self.list.names;
        (0..n).map(move |_| {
            let name = &*names[r.varint() as usize];
            (name, r.str())
        })
    }

    pub fn has_params(&self) -> bool {
        self.at_params().varint() > 0
    }

    fn own_key(&self) -> Option<&'a str> {
        let mut r = self.at_params();
        for _ in 0..r.varint() {
            r.varint();
            r.str();
        }
        (r.byte() == 1).then(|| r.str())
    }

    /// [`Job::key`].
    pub fn key(&self) -> Cow<'a, str> {
        match self.own_key() {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(self.display()),
        }
    }

    pub fn to_job(&self) -> Job {
        Job {
            id: self.id(),
            command: self.command(),
            params: self
                .params()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            own_key: self.own_key().map(Box::from),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a record written by [`JobList::push_parts`] (so never past its end).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let b = self.0[0];
        self.0 = &self.0[1..];
        b
    }

    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }

    fn str(&mut self) -> &'a str {
        let n = self.varint() as usize;
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        // Written from a &str by `put_str`.
        std::str::from_utf8(s).expect("a job record holds UTF-8 strings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: usize, command: JobCommand, params: &[(&str, &str)], key: Option<&str>) -> Job {
        Job::new(
            id,
            command,
            params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            key.map(String::from),
        )
    }

    #[test]
    fn jobs_come_back_as_they_went_in() {
        let jobs = vec![
            job(
                0,
                JobCommand::Argv(vec!["python".into(), "t.py".into(), "a b".into()]),
                &[("lr", "0.1"), ("seed", "")],
                None,
            ),
            job(
                1,
                JobCommand::Shell("echo é | cat".into()),
                &[],
                Some("k-1"),
            ),
            job(
                7,
                JobCommand::Argv(vec!["x".into(), String::new()]),
                &[("seed", "3"), ("lr", "0.01")],
                Some("x ''"),
            ),
            job(
                300,
                JobCommand::Shell(String::new()),
                &[("w", &"z".repeat(300))],
                None,
            ),
        ];
        let l = JobList::from(jobs.clone());
        assert_eq!(l.len(), 4);
        assert_eq!(l.to_vec(), jobs);
        for (i, j) in jobs.iter().enumerate() {
            let r = l.at(i);
            assert_eq!(r.id(), j.id);
            assert_eq!(r.display(), j.command.display());
            assert_eq!(r.key(), j.key());
            assert_eq!(r.has_params(), !j.params.is_empty());
            let params: Vec<(&str, &str)> = r.params().collect();
            let want: Vec<(&str, &str)> = j
                .params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!(params, want);
        }
        // sweep.json's form is the jobs' own.
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, serde_json::to_string(&jobs).unwrap());
        let back: JobList = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
    }
}
