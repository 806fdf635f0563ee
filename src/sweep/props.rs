//! Property tests of the sweep layer (proptest): quoting reads back in `sh`, `range()` agrees
//! with a plain loop, and the sweep.toml loader never panics on any input (10 000 cases, the
//! stand-in for coverage-guided fuzzing; see docs/reliability.md).

use std::path::Path;

use proptest::prelude::*;

use super::quote::{join_argv, tests::sh_words};
use super::{params, spec};

/// Words with what makes quoting hard: quotes, `$`, backslashes, spaces, newlines, `=`, `~`,
/// globs, non-ASCII, and the empty word.
fn word() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[a-zA-Z0-9_./-]",
            1 => prop::sample::select(vec![
                "'", "\"", "$", "\\", " ", "\n", "\t", "=", "~", "*", "?", "[", "{", "}", "!",
                "#", "&", ";", "|", "<", ">", "(", ")", "`", "é", "if", "A=1",
            ])
            .prop_map(str::to_string),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// What memsweep shows as a job's command reads back in `sh` as the same argv.
    #[test]
    fn shown_argv_reads_back_in_sh(argv in prop::collection::vec(word(), 1..5)) {
        prop_assert_eq!(sh_words(&join_argv(&argv)), argv);
    }

    /// Pasted into `sh`, the shown command runs its first word as the program: never an
    /// assignment (`A=1 echo hi`) or a keyword (`if`). With an empty PATH that is exit 127.
    #[test]
    fn the_first_shown_word_is_the_program(
        first in prop_oneof![
            prop::sample::select(vec![
                "if", "then", "while", "for", "case", "do", "time", "!", "{", "A=1", "X=", "a=b=c",
            ]).prop_map(str::to_string),
            "zz[a-z0-9=_.-]{0,6}",
        ],
        rest in prop::collection::vec(word(), 0..3),
    ) {
        let mut argv = vec![first];
        argv.extend(rest);
        let _children = crate::testutil::children();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("PATH=/nonexistent; {}", join_argv(&argv)))
            .stderr(std::process::Stdio::null())
            .output()
            .unwrap();
        prop_assert_eq!(out.status.code(), Some(127), "{:?} ran as {}", argv, join_argv(&argv));
    }

    /// `range(a,b,d)` is the loop `v = a; while v < b (v > b for d < 0): v += d`, and an empty
    /// loop is an error, never an empty sweep.
    #[test]
    fn integer_ranges_match_a_loop(a in -50i64..50, b in -50i64..50, d in -7i64..7) {
        prop_assume!(d != 0);
        let mut want = Vec::new();
        let mut v = a;
        while (d > 0 && v < b) || (d < 0 && v > b) {
            want.push(v.to_string());
            v += d;
        }
        let got = params::parse_values(&format!("range({a},{b},{d})"), Path::new(""));
        if want.is_empty() {
            prop_assert!(got.is_err());
        } else {
            prop_assert_eq!(got.unwrap(), want);
        }
    }

    /// Decimal ranges are exact: the values are the integer loop at the decimal's scale.
    #[test]
    fn decimal_ranges_are_exact(a in -500i64..500, b in -500i64..500, d in 1i64..40) {
        let dec = |n: i64| format!("{}{}.{}", if n < 0 { "-" } else { "" }, n.abs() / 10, n.abs() % 10);
        let mut want = Vec::new();
        let mut v = a;
        while v < b {
            want.push(v);
            v += d;
        }
        let got = params::parse_values(&format!("range({},{},{})", dec(a), dec(b), dec(d)), Path::new(""));
        if want.is_empty() {
            prop_assert!(got.is_err());
        } else {
            let got: Vec<String> = got.unwrap();
            let want: Vec<String> = want.into_iter().map(dec).collect();
            let norm = |s: &String| s.parse::<f64>().unwrap();
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((norm(g) - norm(w)).abs() < 1e-9, "{} vs {}", g, w);
            }
        }
    }
}

/// sweep.toml-like text: real keys with values of every type, sections, and junk.
fn toml_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "command",
        "jobs-file",
        "shell",
        "jobs",
        "limit",
        "reserve",
        "mem-per-job",
        "job-mem-max",
        "no-history",
        "no-cgroups",
        "on-pressure",
        "retries",
        "out",
        "json",
        "grace",
        "sample-interval",
        "best-effort",
        "bogus",
        "\"model.lr\"",
        "lr",
    ]);
    let value = prop::sample::select(vec![
        "1",
        "0",
        "-1",
        "20000",
        "1.5",
        "1e400",
        "nan",
        "true",
        "\"\"",
        "\"2G\"",
        "\"0.5\"",
        "\"10%\"",
        "\"200%\"",
        "\"range(0,3)\"",
        "\"range(0,3\"",
        "\"@/dev/null\"",
        "\"@/dev/zero\"",
        "[]",
        "[\"echo\", \"{lr}\"]",
        "[1, 2.5, \"x\"]",
        "\"a\\u0000b\"",
        "{ a = 1 }",
        "\"pause\"",
        "\"bogus\"",
        "18446744073709551615",
        "[[1]]",
    ]);
    let line = prop_oneof![
        6 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => Just("[params]".to_string()),
        1 => "[ -~]{0,20}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Any text: an answer (a Spec, or an error naming the file), never a panic.
    #[test]
    fn the_sweep_toml_loader_never_panics(src in prop_oneof![toml_text(), ".{0,200}"]) {
        let path = Path::new("/nonexistent/sweep.toml");
        if let Err(e) = spec::parse(&src, path) {
            prop_assert!(e.starts_with("/nonexistent/sweep.toml"), "{}", e);
        }
    }
}
