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

#[test]
fn completions_and_man_page_are_generated_for_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ms(["completions", shell]).run();
        out.assert_code(0);
        for word in ["mem", "check", "run", "show", "fail-fast", "timeout"] {
            assert!(out.stdout.contains(word), "{shell}: no {word}");
        }
    }
    ms(["completions", "tcsh"]).run().assert_code(2);
    let man = ms(["man"]).run();
    man.assert_code(0);
    assert!(man.stdout.contains(".TH memsweep 1"), "{}", man.stdout);
    assert!(man.stdout.contains(".SH SUBCOMMANDS"), "{}", man.stdout);
}

#[test]
fn errors_share_one_prefix_and_negative_sizes_are_explained() {
    // Clap's own errors and memsweep's read alike.
    let out = ms(["run", "--bogus"]).run();
    out.assert_code(2);
    assert!(
        out.stderr
            .starts_with("memsweep: error: unexpected argument '--bogus'"),
        "{}",
        out.stderr
    );
    // A negative size is a size error, not "unexpected argument '-5'".
    let out = ms(["check", "--need", "-5G"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("'-5G' is negative"), "{}", out.stderr);
    // `show` reads a directory, not the machine: it has no --root.
    let out = ms(["show", "--help"]).run();
    assert!(!out.stdout.contains("--root"), "{}", out.stdout);
    assert!(ms(["mem", "--help"]).run().stdout.contains("--root"));
}

#[test]
fn color_follows_the_flag_and_the_environment() {
    // A finished sweep's table, with and without colour; stdout is a pipe here.
    let d = crate::harness::tempdir();
    ms(["run", "--no-history", "--out", "o", "--", "true"])
        .env("XDG_CACHE_HOME", d.path().join("cache"))
        .current_dir(d.path())
        .run()
        .assert_code(0);
    let show = |args: &[&str], env: &[(&str, &str)]| {
        let mut m = ms(args)
            .current_dir(d.path())
            .env("NO_COLOR", "")
            .env("CLICOLOR_FORCE", "");
        for (k, v) in env {
            m = m.env(k, v);
        }
        m.run().stdout.contains("\x1b[32m")
    };
    assert!(!show(&["show", "o"], &[]), "a pipe gets no colour");
    assert!(show(&["--color", "always", "show", "o"], &[]));
    assert!(show(&["show", "o", "--color=always"], &[("NO_COLOR", "1")]));
    assert!(show(&["show", "o"], &[("CLICOLOR_FORCE", "1")]));
    assert!(!show(
        &["show", "o"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(!show(
        &["--color", "never", "show", "o"],
        &[("CLICOLOR_FORCE", "1")]
    ));
}
