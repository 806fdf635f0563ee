//! Command templates: `{name}` placeholders inside argv elements or a `sh -c` string, `{{`/`}}`
//! for literal braces, and rendering one job's command from its parameter values.
//!
//! In argv mode a value lands inside exactly one argument and no shell ever sees it. In shell mode
//! each placeholder is quoted for the quoting context it sits in (bare, '...' or "..."), found by
//! a small scan of the template; contexts that cannot be quoted reliably without a full shell
//! parser (after `$(`, `${`, a backquote or a here-document, inside a comment) are refused.

use super::quote;

/// A piece of a template: literal text (braces already unescaped) or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    /// Index into [`Template::names`].
    Slot(usize),
}

/// Where a placeholder sits in a `--shell` command, which decides how its value is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellCtx {
    Bare,
    Single,
    Double,
    /// Right after `$NAME`: the value must not extend the variable's name.
    BareAfterVar,
    DoubleAfterVar,
}

#[derive(Debug, Clone)]
enum Body {
    Argv(Vec<Vec<Piece>>),
    /// The pieces, and the quoting context of each `Slot` in order of appearance.
    Shell(Vec<Piece>, Vec<ShellCtx>),
}

/// A parsed command template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Distinct placeholder names, in order of first appearance.
    names: Vec<String>,
    body: Body,
}

/// Whether `name` can be a parameter (and placeholder) name: `lr`, `model.depth`, `data_dir`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Template {
    /// Parse an argv template; errors name the argument at fault.
    pub fn argv(words: &[String]) -> Result<Template, String> {
        let mut names = Vec::new();
        let mut body = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let pieces = parse_braces(w, &mut names)
                .map_err(|e| format!("argument {} '{w}' of the command: {e}", i + 1))?;
            body.push(pieces);
        }
        match body.first() {
            None => return Err("the command is empty".into()),
            Some(first) if first.is_empty() => {
                return Err("the command's first argument (the program) is empty".into());
            }
            _ => {}
        }
        Ok(Template {
            names,
            body: Body::Argv(body),
        })
    }

    /// Parse a command for `sh -c`; errors name the placeholder at fault.
    pub fn shell(script: &str) -> Result<Template, String> {
        if script.trim().is_empty() {
            return Err("the command is empty".into());
        }
        let mut names = Vec::new();
        let pieces = parse_braces(script, &mut names).map_err(|e| format!("'{script}': {e}"))?;
        let mut scan = ShellScan::default();
        let mut ctxs = Vec::new();
        for p in &pieces {
            match p {
                Piece::Lit(s) => s.chars().for_each(|c| scan.feed(c)),
                Piece::Slot(i) => {
                    let ctx = scan.placeholder().map_err(|why| {
                        format!(
                            "placeholder {{{}}} in the --shell command '{script}' {why}",
                            names[*i]
                        )
                    })?;
                    ctxs.push(ctx);
                }
            }
        }
        if scan.state != ShellCtx::Bare {
            return Err(format!(
                "the --shell command '{script}' has an unterminated quote; close it"
            ));
        }
        Ok(Template {
            names,
            body: Body::Shell(pieces, ctxs),
        })
    }

    /// Placeholder names in order of first appearance.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn is_shell(&self) -> bool {
        matches!(self.body, Body::Shell(..))
    }

    /// The argv for one job; `values[i]` fills placeholder `names()[i]`.
    pub fn render_argv(&self, values: &[&str]) -> Vec<String> {
        let Body::Argv(words) = &self.body else {
            panic!("render_argv on a shell template")
        };
        words
            .iter()
            .map(|pieces| {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Lit(s) => out.push_str(s),
                        Piece::Slot(i) => out.push_str(values[*i]),
                    }
                }
                out
            })
            .collect()
    }

    /// The `sh -c` script for one job, each value quoted for its context.
    pub fn render_shell(&self, values: &[&str]) -> String {
        let Body::Shell(pieces, ctxs) = &self.body else {
            panic!("render_shell on an argv template")
        };
        let mut out = String::new();
        let mut ctx = ctxs.iter();
        for p in pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Slot(i) => {
                    let v = values[*i];
                    match ctx.next().expect("one context per slot") {
                        ShellCtx::Bare => out.push_str(&quote::quote_value(v)),
                        ShellCtx::Single => out.push_str(&quote::in_single_quotes(v)),
                        ShellCtx::Double => out.push_str(&quote::in_double_quotes(v)),
                        ShellCtx::BareAfterVar => out.push_str(&quote::single_quote(v)),
                        ShellCtx::DoubleAfterVar => {
                            // `""` ends the name: "$HOME""v" is $HOME followed by v.
                            out.push_str("\"\"");
                            out.push_str(&quote::in_double_quotes(v));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Split `s` into literals and placeholders, registering new names in `names`.
fn parse_braces(s: &str, names: &mut Vec<String>) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find(['{', '}']) {
        lit.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            lit.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err("a lone '}'; write '}}' for a literal brace".into());
        }
        let Some(end) = tail.find('}') else {
            return Err("a '{' without its '}'; write '{{' for a literal brace".into());
        };
        let name = &tail[1..end];
        if !valid_name(name) {
            return Err(format!(
                "'{{{name}}}' is not a placeholder (names are letters, digits, _ . -, starting \
                 with a letter or _); write '{{{{' and '}}}}' for literal braces"
            ));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        let idx = match names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                names.push(name.to_string());
                names.len() - 1
            }
        };
        pieces.push(Piece::Slot(idx));
        rest = &tail[end + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// Whether a `$NAME` expansion is being read, which a following value would extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    None,
    /// After `$` and a name character: more name characters would join the name.
    Name,
    /// Inside `${`, which memsweep follows only for the plain `${NAME}` form.
    Brace,
}

/// Just enough of POSIX `sh` lexing to know the quoting context at each placeholder.
#[derive(Debug)]
struct ShellScan {
    state: ShellCtx,
    escaped: bool,
    comment: bool,
    var: Var,
    /// Set once the template enters a construct we do not track (`$(`, backquote, `<<`).
    untracked: Option<&'static str>,
    prev: char,
}

impl Default for ShellScan {
    fn default() -> Self {
        // A newline as "previous character" makes the start of the script a word start.
        ShellScan {
            state: ShellCtx::Bare,
            escaped: false,
            comment: false,
            var: Var::None,
            untracked: None,
            prev: '\n',
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl ShellScan {
    fn feed(&mut self, c: char) {
        let prev = self.prev;
        self.prev = c;
        if self.comment {
            self.comment = c != '\n';
            return;
        }
        if self.escaped {
            self.escaped = false;
            // An escaped character is plain text: it neither starts `$(` nor a comment.
            self.prev = 'a';
            return;
        }
        match self.var {
            Var::Brace => {
                if c == '}' {
                    self.var = Var::None;
                } else if !is_name_char(c) {
                    self.untrack("a '${' other than ${NAME}");
                }
                return;
            }
            Var::Name if !is_name_char(c) => self.var = Var::None,
            _ => {}
        }
        match (self.state, c) {
            (ShellCtx::Single, '\'') => self.state = ShellCtx::Bare,
            (ShellCtx::Single, _) => {}
            (_, '\\') => self.escaped = true,
            (ShellCtx::Bare, '\'') => self.state = ShellCtx::Single,
            (ShellCtx::Bare, '"') => self.state = ShellCtx::Double,
            (ShellCtx::Double, '"') => self.state = ShellCtx::Bare,
            (ShellCtx::Bare, '#') if prev.is_whitespace() || ";&|()<>".contains(prev) => {
                self.comment = true
            }
            (_, '`') => self.untrack("a backquote"),
            (_, '(') if prev == '$' => self.untrack("'$('"),
            (_, '{') if prev == '$' => self.var = Var::Brace,
            (_, c) if prev == '$' && (c.is_ascii_alphabetic() || c == '_') => self.var = Var::Name,
            (ShellCtx::Bare, '<') if prev == '<' => self.untrack("a here-document '<<'"),
            _ => {}
        }
    }

    fn untrack(&mut self, what: &'static str) {
        self.untracked.get_or_insert(what);
    }

    /// The context for a placeholder here, or why one cannot be quoted here.
    fn placeholder(&mut self) -> Result<ShellCtx, String> {
        if self.comment {
            return Err("is inside a shell comment ('#'); move it out of the comment".into());
        }
        if self.escaped {
            return Err("follows a backslash; remove the backslash".into());
        }
        if self.prev == '$' && self.state != ShellCtx::Single {
            return Err("follows a '$'; remove the '$' (the value is substituted directly)".into());
        }
        if let Some(what) = self.untracked {
            return Err(format!(
                "comes after {what}, where memsweep cannot tell how to quote it; put placeholders \
                 before any $(...), ${{...}}, backquote or here-document, or use a script file"
            ));
        }
        if self.var == Var::Brace {
            return Err("is inside '${...}'; memsweep cannot quote it there".into());
        }
        let ctx = match (self.state, self.var) {
            (ShellCtx::Bare, Var::Name) => ShellCtx::BareAfterVar,
            (ShellCtx::Double, Var::Name) => ShellCtx::DoubleAfterVar,
            (state, _) => state,
        };
        // The substituted value leaves the quoting state as it was, and ends a word.
        self.var = Var::None;
        self.prev = 'a';
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::quote::tests::sh_words;

    fn argv(words: &[&str]) -> Result<Template, String> {
        Template::argv(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn placeholders_fill_inside_single_arguments() {
        let t = argv(&[
            "python",
            "train.py",
            "--lr",
            "{lr}",
            "--seed={seed}",
            "{lr}_{seed}.log",
        ])
        .unwrap();
        assert_eq!(t.names(), ["lr", "seed"]);
        assert_eq!(
            t.render_argv(&["0.1", "2"]),
            ["python", "train.py", "--lr", "0.1", "--seed=2", "0.1_2.log"]
        );
        // A hostile value stays one argument, byte for byte.
        let evil = "'; rm -rf x'";
        let out = t.render_argv(&[evil, "a b"]);
        assert_eq!(out[3], evil);
        assert_eq!(out[4], "--seed=a b");
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn double_braces_are_literal() {
        let t = argv(&["python", "-c", "print({{'lr': {lr}}})"]).unwrap();
        assert_eq!(t.names(), ["lr"]);
        assert_eq!(t.render_argv(&["0.1"])[2], "print({'lr': 0.1})");
        let t = argv(&["echo", "{{lr}}"]).unwrap();
        assert!(t.names().is_empty());
        assert_eq!(t.render_argv(&[])[1], "{lr}");
    }

    #[test]
    fn malformed_braces_are_errors_naming_the_argument() {
        for (words, needle) in [
            (&["echo", "{lr"][..], "argument 2 '{lr'"),
            (&["echo", "x}"][..], "lone '}'"),
            (&["echo", "{1:2}"][..], "'{1:2}' is not a placeholder"),
            (&["echo", "{}"][..], "'{}' is not a placeholder"),
            (&["echo", "{ lr}"][..], "write '{{'"),
        ] {
            let err = argv(words).unwrap_err();
            assert!(err.contains(needle), "{words:?}: {err}");
        }
        assert!(argv(&[]).unwrap_err().contains("empty"));
        assert!(argv(&["", "x"]).unwrap_err().contains("program"));
    }

    #[test]
    fn valid_names() {
        for ok in ["lr", "model.depth", "data_dir", "_x", "a-b", "X1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a b", "a=b", "-a", ".a", "a{"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn shell_values_are_quoted_for_their_context() {
        let t = Template::shell(
            "echo {v} '{v}' \"{v}\" x{v}y \"a$HOME{v}\" | cat # {{not a placeholder}}",
        )
        .unwrap();
        for v in [
            "'; rm -rf x'",
            "$(id)",
            "`id`",
            "a\"b\\c",
            "*",
            "if",
            "A=1",
            "0.1",
        ] {
            let script = t.render_shell(&[v]);
            let words = sh_words(&script.replacen("echo ", "", 1).replace(" | cat", ""));
            let home = std::env::var("HOME").unwrap_or_default();
            assert_eq!(
                words,
                [
                    v.to_string(),
                    v.into(),
                    v.into(),
                    format!("x{v}y"),
                    format!("a{home}{v}")
                ],
                "{v:?} rendered as {script}"
            );
        }
        assert_eq!(
            t.render_shell(&["0.1"]),
            "echo 0.1 '0.1' \"0.1\" x0.1y \"a$HOME\"\"0.1\" | cat # {not a placeholder}"
        );
    }

    #[test]
    fn shell_contexts_we_cannot_quote_are_refused() {
        for (script, needle) in [
            ("echo $(echo {v})", "after '$('"),
            ("echo \"$(cat {v})\"", "after '$('"),
            ("echo `echo {v}`", "after a backquote"),
            ("echo ${{X:-{v}}}", "'${' other than ${NAME}"),
            ("echo ${{{v}}}", "inside '${...}'"),
            ("cat <<EOF\n{v}\nEOF", "here-document"),
            ("echo hi # {v}", "comment"),
            ("echo \\{v}", "backslash"),
            ("echo ${v}", "'$'"),
            ("echo '{v}", "unterminated quote"),
        ] {
            let err = Template::shell(script).unwrap_err();
            assert!(err.contains(needle), "{script:?}: {err}");
        }
        // `$NAME` and `${NAME}` right before a value do not swallow it.
        let t = Template::shell("echo $HOME{v} \"$HOME{v}\" ${{HOME}}{v}").unwrap();
        let home = std::env::var("HOME").unwrap_or_default();
        let script = t.render_shell(&["x1"]);
        assert_eq!(
            sh_words(&script.replacen("echo ", "", 1)),
            vec![format!("{home}x1"); 3],
            "{script}"
        );
        // Placeholders before such constructs, or on a later line after a comment, are fine.
        let t = Template::shell("echo {v} > out_$(date +%s).log").unwrap();
        assert_eq!(t.render_shell(&["a b"]), "echo 'a b' > out_$(date +%s).log");
        let t = Template::shell("# note\necho {v}").unwrap();
        assert_eq!(t.render_shell(&["x"]), "# note\necho x");
        // `#` inside a word does not start a comment.
        let t = Template::shell("echo a#{v}").unwrap();
        assert_eq!(t.render_shell(&["x y"]), "echo a#'x y'");
    }
}
