//! Any bytes as a journal: `parse_journal` must answer (events or FILE:LINE), never panic, and
//! its good prefix must reparse to the same events (what `--resume` truncates to).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("journal.jsonl");
    if let Ok((events, good)) = memsweep::journal::parse_journal(data, path) {
        let (again, good2) = memsweep::journal::parse_journal(&data[..good as usize], path)
            .expect("the good prefix parses");
        assert_eq!(good, good2);
        assert_eq!(again.len(), events.len());
    }
});
