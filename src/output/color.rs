//! Whether to colour output: `--color auto|always|never`, chosen once at startup, with the
//! conventions of <https://no-color.org> and <https://bixense.com/clicolors/>: under `auto`,
//! `NO_COLOR` (non-empty) turns colour off, `CLICOLOR_FORCE` (non-empty, not `0`) turns it on
//! even without a terminal, and `TERM=dumb` turns it off.

use std::sync::OnceLock;

use crate::cli::ColorWhen;

static CHOICE: OnceLock<ColorWhen> = OnceLock::new();

/// Record `--color` (first call wins; later calls are ignored).
pub fn set(when: ColorWhen) {
    let _ = CHOICE.set(when);
}

/// Whether a stream that is (`tty`) or is not a terminal gets colour.
pub fn enabled(tty: bool) -> bool {
    decide(
        CHOICE.get().copied().unwrap_or(ColorWhen::Auto),
        tty,
        &|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()),
    )
}

/// The rule, with the environment passed in (so it can be tested without touching the process's).
pub fn decide(when: ColorWhen, tty: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto if set("NO_COLOR") => false,
        ColorWhen::Auto if env("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") => true,
        ColorWhen::Auto => tty && env("TERM").as_deref() != Some("dumb"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn auto_follows_the_terminal_and_the_conventions() {
        use ColorWhen::*;
        assert!(decide(Auto, true, &with(&[("TERM", "xterm")])));
        assert!(!decide(Auto, false, &with(&[])));
        assert!(!decide(Auto, true, &with(&[("NO_COLOR", "1")])));
        assert!(decide(Auto, true, &with(&[("NO_COLOR", "")])));
        assert!(!decide(Auto, true, &with(&[("TERM", "dumb")])));
        assert!(decide(Auto, false, &with(&[("CLICOLOR_FORCE", "1")])));
        assert!(!decide(Auto, false, &with(&[("CLICOLOR_FORCE", "0")])));
        // NO_COLOR wins over CLICOLOR_FORCE.
        assert!(!decide(
            Auto,
            false,
            &with(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])
        ));
        assert!(decide(Always, false, &with(&[("NO_COLOR", "1")])));
        assert!(!decide(Never, true, &with(&[("CLICOLOR_FORCE", "1")])));
    }
}
