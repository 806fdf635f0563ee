//! Reading a journal back: whole lines become events, a torn last line is dropped, corruption
//! anywhere else is a usage error naming FILE:LINE.

use std::path::Path;

use super::Event;
use crate::exit::usage;

/// Parse a journal. Returns the events and the byte length of the good prefix. An unparsable
/// *last* line is a write torn by a killed runner and is dropped; corruption anywhere else is an
/// error naming FILE:LINE.
pub fn parse_journal(bytes: &[u8], path: &Path) -> anyhow::Result<(Vec<Event>, u64)> {
    let mut events = Vec::new();
    let mut good_len = 0usize;
    let mut start = 0usize;
    let mut lineno = 0usize;
    while start < bytes.len() {
        lineno += 1;
        let (end, next) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1),
            None => (bytes.len(), bytes.len()),
        };
        let line = &bytes[start..end];
        let is_last = next >= bytes.len();
        let complete = end < bytes.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                good_len = next;
            }
            start = next;
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(ev) if complete => {
                events.push(ev);
                good_len = next;
            }
            // A last line without its newline was cut short by a crash; even if what is left
            // parses, treat it as torn (at worst, that job runs again).
            Ok(_) => {}
            Err(_) if is_last => {}
            Err(e) => {
                return Err(usage(format!(
                    "{}:{lineno}: corrupt journal line ({e}); only the last line may be torn by a crash. Remove or repair that line to resume",
                    path.display()
                )));
            }
        }
        start = next;
    }
    Ok((events, good_len as u64))
}
