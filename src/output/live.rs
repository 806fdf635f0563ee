//! `--output live`: job output shown on the terminal as it is written, each line tagged with its
//! job (`[3] loss 0.12`, `[3!] ...` for stderr).
//!
//! Jobs always write to their own files (`DIR/N/stdout`, `DIR/N/stderr`), which stay the record;
//! live output follows those files from the runner's loop instead of giving jobs a pipe, so a job
//! can never block on a pipe the runner is slow to read, and the files hold exactly what the job
//! wrote either way. Lines show up within one loop turn (at most `--sample-interval`). A line is
//! shown once it is complete; what is left without a newline when the job ends is shown then.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// At most this much of one file is read per turn (a job printing gigabytes cannot stall the
/// loop; the rest is read next turn).
const READ_PER_TURN: u64 = 1 << 20;
/// A line longer than this is shown in pieces.
const MAX_LINE: usize = 64 << 10;

struct Followed {
    job: usize,
    stream: Stream,
    path: PathBuf,
    file: Option<File>,
    pos: u64,
    partial: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// The files of the running jobs, followed.
#[derive(Default)]
pub struct Live {
    files: Vec<Followed>,
}

impl Live {
    /// Follow a job's output files from their current end (output of earlier attempts, kept in
    /// the same files, is not shown again).
    pub fn follow(&mut self, job: usize, stdout: PathBuf, stderr: PathBuf) {
        for (stream, path) in [(Stream::Out, stdout), (Stream::Err, stderr)] {
            let pos = std::fs::metadata(&path).map_or(0, |m| m.len());
            self.files.push(Followed {
                job,
                stream,
                path,
                file: None,
                pos,
                partial: Vec::new(),
            });
        }
    }

    /// Whether anything is followed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Write the complete lines written since the last call, tagged, to `out`. Returns whether
    /// anything was written.
    pub fn poll(&mut self, out: &mut dyn Write) -> io::Result<bool> {
        let mut wrote = false;
        for f in &mut self.files {
            wrote |= f.pump(out, false)?;
        }
        Ok(wrote)
    }

    /// The job ended: show the rest of its output (a last line without a newline too) and stop
    /// following it.
    pub fn finish(&mut self, job: usize, out: &mut dyn Write) -> io::Result<bool> {
        let mut wrote = false;
        for f in self.files.iter_mut().filter(|f| f.job == job) {
            // Everything left, not just one turn's worth.
            while f.pump(out, true)? {
                wrote = true;
            }
        }
        self.files.retain(|f| f.job != job);
        Ok(wrote)
    }
}

impl Followed {
    fn pump(&mut self, out: &mut dyn Write, last: bool) -> io::Result<bool> {
        if self.file.is_none() {
            // The job's child creates the file after fork; it may not exist yet.
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        file.seek(SeekFrom::Start(self.pos))?;
        let mut buf = Vec::new();
        let n = file.take(READ_PER_TURN).read_to_end(&mut buf)?;
        self.pos += n as u64;
        self.partial.extend_from_slice(&buf);
        let tag = match self.stream {
            Stream::Out => format!("[{}] ", self.job),
            Stream::Err => format!("[{}!] ", self.job),
        };
        let mut wrote = false;
        let mut start = 0;
        while let Some(i) = self.partial[start..].iter().position(|&b| b == b'\n') {
            out.write_all(tag.as_bytes())?;
            out.write_all(&self.partial[start..start + i + 1])?;
            start += i + 1;
            wrote = true;
        }
        self.partial.drain(..start);
        let flush_partial = (last && n == 0) || self.partial.len() >= MAX_LINE;
        if flush_partial && !self.partial.is_empty() {
            out.write_all(tag.as_bytes())?;
            out.write_all(&self.partial)?;
            out.write_all(b"\n")?;
            self.partial.clear();
            wrote = true;
        }
        Ok(wrote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_lines_are_tagged_and_the_rest_waits_for_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (o, e) = (dir.path().join("o"), dir.path().join("e"));
        std::fs::write(&o, "earlier attempt\n").unwrap();
        let mut live = Live::default();
        live.follow(7, o.clone(), e.clone());
        let mut shown = Vec::new();
        // Neither new output nor the stderr file yet.
        assert!(!live.poll(&mut shown).unwrap());
        let mut f = std::fs::OpenOptions::new().append(true).open(&o).unwrap();
        f.write_all(b"step 1\nstep").unwrap();
        std::fs::write(&e, "warn\n").unwrap();
        assert!(live.poll(&mut shown).unwrap());
        assert_eq!(String::from_utf8_lossy(&shown), "[7] step 1\n[7!] warn\n");
        f.write_all(b" 2").unwrap();
        shown.clear();
        assert!(!live.poll(&mut shown).unwrap());
        assert!(live.finish(7, &mut shown).unwrap());
        assert_eq!(String::from_utf8_lossy(&shown), "[7] step 2\n");
        assert!(live.is_empty());
    }
}
