//! Property tests of journal parsing (proptest, 10 000 cases each: the stand-in for
//! coverage-guided fuzzing, see docs/reliability.md). `--resume` and `show` read journals
//! that a killed runner, a full disk or a person's editor may have left in any state.

use std::path::Path;

use proptest::prelude::*;

use super::fixtures::{end, sample, start, sweep_start};
use super::{Event, JobStatus, parse_journal};

fn event() -> impl Strategy<Value = Event> {
    let t = 1.0e9..2.0e9f64;
    prop_oneof![
        (t.clone(), any::<bool>()).prop_map(|(t, r)| sweep_start(t, r)),
        (t.clone(), 0usize..50, 1u32..5).prop_map(|(t, j, a)| start(t, j, a)),
        (t.clone(), 0usize..50, 1u32..5, 0usize..4, any::<u64>()).prop_map(|(t, j, a, s, p)| {
            let status = [
                JobStatus::Succeeded,
                JobStatus::Failed,
                JobStatus::Killed,
                JobStatus::Oom,
            ][s];
            end(t, j, a, status, p)
        }),
        (t, 0u64..(1 << 30)).prop_map(|(t, ws)| sample(t, ws)),
    ]
}

/// A journal as the runner writes it: one JSON event a line.
fn journal() -> impl Strategy<Value = (Vec<Event>, Vec<u8>)> {
    prop::collection::vec(event(), 0..12).prop_map(|evs| {
        let mut bytes = Vec::new();
        for e in &evs {
            serde_json::to_writer(&mut bytes, e).unwrap();
            bytes.push(b'\n');
        }
        (evs, bytes)
    })
}

/// A journal damaged the ways files get damaged: cut short, bytes changed, inserted, removed.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    (
        journal(),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|((_, mut b), edits, cut, do_cut)| {
            for (at, kind, byte) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let i = at.index(b.len());
                match kind {
                    0 => b[i] = byte,
                    1 => b.insert(i, byte),
                    2 => {
                        b.remove(i);
                    }
                    _ => b[i] = b'\n',
                }
            }
            if do_cut && !b.is_empty() {
                b.truncate(cut.index(b.len()));
            }
            b
        })
}

const PATH: &str = "/sweeps/x/journal.jsonl";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any bytes: events or an error naming FILE:LINE, never a panic; and the good prefix it
    /// reports (what `--resume` truncates to before appending) parses to the same events.
    #[test]
    fn any_journal_parses_or_names_the_line(bytes in prop_oneof![
        3 => damaged(),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]) {
        match parse_journal(&bytes, Path::new(PATH)) {
            Ok((events, good)) => {
                let good = good as usize;
                prop_assert!(good <= bytes.len());
                prop_assert!(good == 0 || bytes[good - 1] == b'\n');
                let (again, good2) = parse_journal(&bytes[..good], Path::new(PATH)).unwrap();
                prop_assert_eq!(again, events);
                prop_assert_eq!(good2 as usize, good);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with(&format!("{PATH}:")), "{}", msg);
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// A journal cut anywhere (a runner killed mid-write) loses at most the torn last line.
    #[test]
    fn a_cut_journal_keeps_every_whole_line((_, bytes) in journal(), cut in any::<prop::sample::Index>()) {
        let k = if bytes.is_empty() { 0 } else { cut.index(bytes.len() + 1) };
        let (events, good) = parse_journal(&bytes[..k], Path::new(PATH)).unwrap();
        // Each whole line read alone (serde_json reads floats back to within an ulp).
        let whole: Vec<Event> = bytes[..k]
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| l.ends_with(b"\n"))
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        prop_assert_eq!(events, whole);
        let want = bytes[..k].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        prop_assert_eq!(good as usize, want);
    }
}
