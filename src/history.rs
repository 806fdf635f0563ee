//! Memory history of earlier sweeps (`$XDG_CACHE_HOME/memsweep`, else `~/.cache/memsweep`):
//! each finished job's peak and wall time, keyed by its exact command and grouped by template,
//! so a rerun predicts each job's own peak and a new job of a known sweep starts from its siblings.
//!
//! One JSON line per record in `history.jsonl`. Writers append under an exclusive `flock`
//! (one `write` per batch), so concurrent sweeps never interleave lines. Readers take no lock:
//! they may see a line being written, which lacks its newline and is ignored. The file is
//! compacted (most recent records per key kept) once it grows past [`COMPACT_LINES`].

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Compact the file when it holds more lines than this.
pub const COMPACT_LINES: usize = 50_000;
/// Records kept per (template, key) by compaction, the most recent ones.
pub const KEEP_PER_KEY: usize = 5;
/// Lines kept in total by compaction (most recent first), so a history of many distinct jobs
/// does not compact again at every append.
pub const KEEP_TOTAL: usize = COMPACT_LINES / 2;

/// One finished job as remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub template: String,
    pub key: String,
    pub peak_bytes: u64,
    pub wall_s: f64,
    /// Seconds since the epoch.
    pub t: f64,
    /// The job's parameters (its learning identity, run-varying parts aligned). Absent in
    /// records written before they were kept: those are read from `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<(String, String)>>,
    /// Its memory over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::sched::Profile>,
}

/// The history store.
pub struct History {
    path: PathBuf,
}

impl History {
    /// Open the default store (None if no cache directory can be found or created).
    pub fn open_default() -> Option<History> {
        let path = default_path(
            std::env::var_os("XDG_CACHE_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        )?;
        fs::create_dir_all(path.parent()?).ok()?;
        Some(History { path })
    }

    pub fn open(path: PathBuf) -> History {
        History { path }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Records of this template, in file order (most recent last). A missing file is an empty
    /// history; corrupt lines are skipped with one warning on stderr.
    pub fn load(&self, template: &str) -> anyhow::Result<Vec<Record>> {
        self.load_with(template, |_| false)
    }

    /// Records of `template`, and of every other template for which `also` says yes (e.g. the
    /// same jobs file under another name), in file order.
    pub fn load_with(
        &self,
        template: &str,
        also: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<Record>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("reading {}", self.path.display()))
                );
            }
        };
        let (records, corrupt) = parse_for_template(&bytes, template, also);
        if let Some((first, n)) = corrupt {
            crate::errln!(
                "memsweep: warning: {}:{first}: skipped {n} corrupt history line(s); delete the file to start a fresh history",
                self.path.display()
            );
        }
        Ok(records)
    }

    /// Append finished jobs (one locked append; safe with concurrent sweeps).
    pub fn append(&self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        for r in records {
            serde_json::to_writer(&mut batch, r).context("serializing a history record")?;
            batch.push(b'\n');
        }
        let ctx = || format!("appending to the history {}", self.path.display());
        let mut file = self.open_locked().with_context(ctx)?;
        // A writer killed mid-line left a line without its newline: start ours on a fresh line.
        let len = file.metadata().with_context(ctx)?.len();
        if len > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(len - 1)).with_context(ctx)?;
            file.read_exact(&mut last).with_context(ctx)?;
            if last[0] != b'\n' {
                batch.insert(0, b'\n');
            }
        }
        file.write_all(&batch).with_context(ctx)?;
        // Cheap test first: lines are at least ~60 bytes, so a smaller file cannot need compacting.
        if len + batch.len() as u64 > (COMPACT_LINES as u64) * 60 {
            self.compact_locked(&mut file)
                .with_context(|| format!("compacting the history {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Open for append and take the exclusive lock, making sure the locked file is still the one
    /// at `path` (a compaction by another process may have renamed a new file over it while we
    /// waited; appending to the old one would lose the records).
    fn open_locked(&self) -> std::io::Result<File> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&self.path)?;
            file.lock()?;
            let locked = file.metadata()?;
            match fs::metadata(&self.path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                    return Ok(file);
                }
                _ => continue,
            }
        }
    }

    /// Rewrite the file keeping the most recent records per key; called with the lock held.
    fn compact_locked(&self, file: &mut File) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        if lines <= COMPACT_LINES {
            return Ok(());
        }
        let kept = compact(&bytes);
        let tmp = self
            .path
            .with_extension(format!("jsonl.tmp.{}", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            let mut out = File::create(&tmp)?;
            out.write_all(&kept)?;
            out.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Ok(result?)
    }
}

/// `$XDG_CACHE_HOME/memsweep/history.jsonl` if that is an absolute path (the XDG spec says to
/// ignore relative ones), else `$HOME/.cache/memsweep/history.jsonl`.
pub fn default_path(
    xdg_cache_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let base = match xdg_cache_home.map(Path::new) {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        _ => Path::new(home.filter(|h| !h.is_empty())?).join(".cache"),
    };
    Some(base.join("memsweep").join("history.jsonl"))
}

/// The records of `template`, and (first corrupt line number, count) if any line was corrupt.
///
/// Fast path: every line we write starts with `{"template":<template as JSON>,` (serde writes
/// fields in declaration order), so lines of other templates are skipped without parsing. That
/// keeps loading a full file (50 000+ lines) in milliseconds.
fn parse_for_template(
    bytes: &[u8],
    template: &str,
    also: impl Fn(&str) -> bool,
) -> (Vec<Record>, Option<(usize, usize)>) {
    const LEAD: &[u8] = b"{\"template\":";
    let mut prefix = LEAD.to_vec();
    prefix.extend_from_slice(
        serde_json::to_string(template)
            .unwrap_or_default()
            .as_bytes(),
    );
    prefix.push(b',');
    let mut records = Vec::new();
    let mut corrupt: Option<(usize, usize)> = None;
    let mut note = |lineno: usize| match &mut corrupt {
        Some((_, n)) => *n += 1,
        None => corrupt = Some((lineno, 1)),
    };
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let Some(line) = line.strip_suffix(b"\n") else {
            // Being written by a concurrent append (or torn by a crash): not ours to judge.
            continue;
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.starts_with(&prefix) {
            match serde_json::from_slice::<Record>(line) {
                Ok(r) => records.push(r),
                Err(_) => note(i + 1),
            }
        } else if line.starts_with(LEAD) {
            // Another template: parsed only when the caller may want it.
            let other = line[LEAD.len()..]
                .strip_prefix(b"\"")
                .and_then(|rest| rest.iter().position(|&b| b == b'"').map(|e| &rest[..e]))
                .and_then(|t| std::str::from_utf8(t).ok());
            if other.is_some_and(&also)
                && let Ok(r) = serde_json::from_slice::<Record>(line)
            {
                records.push(r);
            }
        } else {
            note(i + 1);
        }
    }
    (records, corrupt)
}

/// Keep the [`KEEP_PER_KEY`] most recent records of each (template, key), then at most
/// [`KEEP_TOTAL`] lines, the most recent; file order is kept. Corrupt and torn lines are dropped.
fn compact(bytes: &[u8]) -> Vec<u8> {
    let lines: Vec<(&[u8], Record)> = bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Record>(l).ok().map(|r| (l, r)))
        .collect();
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut keep = vec![false; lines.len()];
    let mut total = 0;
    for (i, (_, r)) in lines.iter().enumerate().rev() {
        let n = seen.entry((&r.template, &r.key)).or_default();
        if *n < KEEP_PER_KEY && total < KEEP_TOTAL {
            *n += 1;
            total += 1;
            keep[i] = true;
        }
    }
    let mut out = Vec::new();
    for ((line, _), k) in lines.iter().zip(keep) {
        if k {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn rec(template: &str, key: &str, peak: u64, t: f64) -> Record {
        Record {
            template: template.into(),
            key: key.into(),
            peak_bytes: peak,
            wall_s: 1.5,
            t,
            params: None,
            profile: None,
        }
    }

    #[test]
    fn the_store_lives_in_the_xdg_cache_else_under_home() {
        let p =
            |x: Option<&str>, h: Option<&str>| default_path(x.map(OsStr::new), h.map(OsStr::new));
        assert_eq!(
            p(Some("/c"), Some("/home/u")),
            Some(PathBuf::from("/c/memsweep/history.jsonl"))
        );
        assert_eq!(
            p(Some("relative"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/memsweep/history.jsonl")),
            "a relative XDG_CACHE_HOME is ignored, as the spec says"
        );
        assert_eq!(
            p(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/memsweep/history.jsonl"))
        );
        assert_eq!(p(None, None), None);
        assert_eq!(p(Some(""), Some("")), None);
    }

    #[test]
    fn records_round_trip_grouped_by_template() {
        let tmp = tempfile::tempdir().unwrap();
        let h = History::open(tmp.path().join("h.jsonl"));
        assert_eq!(h.load("a").unwrap(), vec![], "no file yet: empty history");
        let a1 = rec("python t.py {x}", "python t.py 1", 100, 1.0);
        let b1 = rec("other \"quoted\" {y}", "other 2", 200, 2.0);
        let a2 = rec("python t.py {x}", "python t.py 2", 300, 3.0);
        h.append(&[a1.clone(), b1.clone()]).unwrap();
        h.append(std::slice::from_ref(&a2)).unwrap();
        assert_eq!(h.load("python t.py {x}").unwrap(), vec![a1, a2]);
        assert_eq!(h.load("other \"quoted\" {y}").unwrap(), vec![b1]);
        assert_eq!(
            h.load("python t.py").unwrap(),
            vec![],
            "a prefix is another template"
        );
    }

    #[test]
    fn concurrent_appends_never_interleave() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("h.jsonl");
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each thread opens its own handle, as separate sweeps would.
                    let h = History::open(path);
                    for i in 0..50 {
                        let key = format!("job {n} {i} {}", "x".repeat(500));
                        h.append(&[rec("t", &key, i, 0.0), rec("t", &key, i + 1, 0.0)])
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 8 * 50 * 2);
        for line in text.lines() {
            serde_json::from_str::<Record>(line).expect("every line is one whole record");
        }
        assert_eq!(History::open(path).load("t").unwrap().len(), 800);
    }

    #[test]
    fn corrupt_and_torn_lines_are_skipped_not_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("h.jsonl");
        let good = serde_json::to_string(&rec("t", "k", 5, 1.0)).unwrap();
        fs::write(
            &path,
            format!("{good}\ngarbage\n{{\"template\":\"t\",\"key\":3}}\n{good}\n{{\"template\":\"t\",\"ke"),
        )
        .unwrap();
        let h = History::open(path.clone());
        assert_eq!(h.load("t").unwrap().len(), 2);
        assert_eq!(
            parse_for_template(&fs::read(&path).unwrap(), "t", |_| false).1,
            Some((2, 2))
        );
        // The next append starts on a fresh line despite the torn tail.
        h.append(&[rec("t", "k", 6, 2.0)]).unwrap();
        let loaded = h.load("t").unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded[2].peak_bytes, 6);
    }

    #[test]
    fn a_large_history_loads_and_compacts_keeping_recent_records_per_key() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("h.jsonl");
        // 100 000 records: 1 000 keys of the template we load, 10 000 of another, in time order.
        let mut text = String::new();
        for i in 0..100_000u64 {
            let (template, key) = if i % 2 == 0 {
                (
                    "python train.py --lr {lr}",
                    format!("python train.py --lr {}", i % 1000),
                )
            } else {
                ("other {x}", format!("other {}", i % 10_000))
            };
            text.push_str(&serde_json::to_string(&rec(template, &key, i, i as f64)).unwrap());
            text.push('\n');
        }
        fs::write(&path, &text).unwrap();
        let h = History::open(path.clone());
        // How fast it loads is a benchmark's business, not a timed assertion (it failed at 5 s
        // on a loaded machine while correct).
        let loaded = h.load("python train.py --lr {lr}").unwrap();
        assert_eq!(loaded.len(), 50_000);

        h.append(&[rec("python train.py --lr {lr}", "new", 1, 1e6)])
            .unwrap();
        let after = fs::read_to_string(&path).unwrap();
        let lines = after.lines().count();
        assert!(lines <= KEEP_TOTAL, "{lines} lines after compaction");
        let loaded = h.load("python train.py --lr {lr}").unwrap();
        assert_eq!(
            loaded.last().unwrap().key,
            "new",
            "the newest record survives"
        );
        // Every key of the loaded template keeps its most recent records, newest last.
        let k8: Vec<u64> = loaded
            .iter()
            .filter(|r| r.key == "python train.py --lr 8")
            .map(|r| r.peak_bytes)
            .collect();
        assert_eq!(k8, [95_008, 96_008, 97_008, 98_008, 99_008]);
    }
}
