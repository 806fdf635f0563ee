//! POSIX `sh` quoting: how values are written into shell commands and how argv is shown to users,
//! so that what memsweep prints can be pasted back into a shell and runs the same command.

/// Characters that never need quoting in a POSIX shell word.
pub fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-')
}

/// Words `sh` treats specially in command position; a bare value there would change the syntax.
const RESERVED: &[&str] = &[
    "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until",
    "while", "function", "select", "time",
];

/// Quote `s` as one shell word, leaving it bare when that is unambiguous (`0.1`, `data/a.txt`).
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(is_safe) {
        return s.to_string();
    }
    single_quote(s)
}

/// Quote a value substituted into an unquoted part of a `--shell` template. Stricter than
/// [`quote`]: a bare `A=1` at the start of a command is an assignment and a bare `if` a keyword,
/// so such values are quoted too.
pub fn quote_value(s: &str) -> String {
    if !s.is_empty() && !s.contains('=') && !RESERVED.contains(&s) && s.chars().all(is_safe) {
        return s.to_string();
    }
    single_quote(s)
}

/// `'...'` with each `'` written as `'\''`: inside single quotes nothing else is special.
pub fn single_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    out.push_str(&in_single_quotes(s));
    out.push('\'');
    out
}

/// The text to put between an existing pair of single quotes so that it reads back as `s`.
pub fn in_single_quotes(s: &str) -> String {
    s.replace('\'', r"'\''")
}

/// The text to put between an existing pair of double quotes so that it reads back as `s`:
/// only `$`, `` ` ``, `"` and `\` are special there.
pub fn in_double_quotes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '$' | '`' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An argv as one line a user can paste into a shell. The first word is in command position,
/// where a bare `A=1` would be an assignment and a bare `if` a keyword: it is quoted as
/// strictly as a value ([`quote_value`]).
pub fn join_argv<S: AsRef<str>>(argv: &[S]) -> String {
    let mut out = String::new();
    for (i, a) in argv.iter().map(AsRef::as_ref).enumerate() {
        if i > 0 {
            out.push(' ');
            out.push_str(&quote(a));
        } else {
            out.push_str(&quote_value(a));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` makes of `script`: the words it passes to `printf`, NUL-separated so that
    /// newlines inside a word survive.
    pub(crate) fn sh_words(script: &str) -> Vec<String> {
        let _children = crate::testutil::children();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {script}"))
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "sh failed on {script:?}");
        let mut words: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split('\0')
            .map(str::to_string)
            .collect();
        words.pop(); // after the last NUL
        words
    }

    #[test]
    fn safe_words_stay_bare_others_are_quoted() {
        assert_eq!(quote("0.1"), "0.1");
        assert_eq!(quote("data/a-b_c.txt"), "data/a-b_c.txt");
        assert_eq!(quote("--lr=0.1"), "--lr=0.1");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("{lr}"), "'{lr}'");
        assert_eq!(quote_value("A=1"), "'A=1'");
        assert_eq!(quote_value("if"), "'if'");
        assert_eq!(quote_value("0.01"), "0.01");
    }

    #[test]
    fn quoted_words_read_back_exactly_in_sh() {
        let nasty = [
            "'; rm -rf x'",
            "a b",
            "it's",
            "$(touch /tmp/memsweep-pwned)",
            "`id`",
            "\"\\$HOME\"",
            "*",
            "new\nline",
            "",
            "ünï cödé",
        ];
        for v in nasty {
            assert_eq!(sh_words(&quote(v)), vec![v.to_string()], "quote({v:?})");
            assert_eq!(sh_words(&quote_value(v)), vec![v.to_string()]);
            assert_eq!(
                sh_words(&format!("\"x{}y\"", in_double_quotes(v))),
                vec![format!("x{v}y")]
            );
            assert_eq!(
                sh_words(&format!("'x{}y'", in_single_quotes(v))),
                vec![format!("x{v}y")]
            );
        }
    }

    #[test]
    fn argv_lines_paste_back_into_sh() {
        let argv: Vec<String> = ["python", "train.py", "--name", "'; rm -rf x'", ""]
            .map(String::from)
            .to_vec();
        let line = join_argv(&argv);
        assert_eq!(line, r"python train.py --name ''\''; rm -rf x'\''' ''");
        assert_eq!(sh_words(&line), argv);
    }
}
