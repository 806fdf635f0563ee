//! The command line as a whole: help, version, unknown flags.

use crate::harness::ms;

#[test]
fn help_and_version_exit_zero() {
    let out = ms(["--help"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("run"), "{}", out.stdout);
    assert!(
        out.stdout.contains("2^30"),
        "help says what G means: {}",
        out.stdout
    );
    ms(["--version"]).run().assert_code(0);
}

#[test]
fn unknown_flags_are_usage_errors() {
    for args in [
        vec!["--bogus"],
        vec!["mem", "--bogus"],
        vec!["check"],
        vec!["nosuchcommand"],
    ] {
        let out = ms(&args).run();
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("error"), "{args:?}: {}", out.stderr);
    }
}
