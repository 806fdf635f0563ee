//! Atomic file writes (temp file + rename, fsync'd when durable) for `sweep.json` and
//! `summary.json`: readers and a killed runner see the old or the new content, never a mix.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// [`atomic_write_with`] of a value as pretty JSON, streamed through a small buffer: the plan and
/// the summary of a 10 000-job sweep are megabytes, and holding them as one string would double
/// the runner's footprint.
pub fn atomic_write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    atomic_write_with(path, Durable::Yes, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::other)
    })
}

/// Whether an atomic write must also survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durable {
    /// fsync the file and the directory (the plan, the final summary).
    Yes,
    /// Rename only: readers and a killed runner still see the old or the new content, never a
    /// mix; only a power loss may lose it. For the live summary, which the fsync'd journal
    /// rebuilds (`show`, `--resume`), and which a big sweep rewrites while jobs wait.
    No,
}

/// Write a file so readers see the old or the new content, never a mix, even across a crash:
/// `write` fills a temp file in the same directory, then (if durable) fsync, rename, fsync the
/// directory.
pub(super) fn atomic_write_with(
    path: &Path,
    durable: Durable,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut w = io::BufWriter::with_capacity(64 << 10, File::create(&tmp)?);
        write(&mut w)?;
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        if durable == Durable::No {
            return fs::rename(&tmp, path);
        }
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is only durable once the directory entry is.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
