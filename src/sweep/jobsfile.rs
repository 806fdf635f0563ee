//! Jobs files (`--jobs-file FILE`, `-` for stdin): one shell command a line, or a JSON object
//! `{"cmd": "..." | ["argv", ...], "key": "...", "params": {...}}` for programs such as the Hydra
//! launcher that need a stable history key per job and its overrides as params.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::JobCommand;

/// One job as a jobs file line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub command: JobCommand,
    pub key: Option<String>,
    pub params: Vec<(String, String)>,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// A map read in document order (serde_json and toml sort their own maps by key).
#[derive(Debug)]
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Ordered<K, V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for V2<K, V> {
            type Value = Ordered<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of name = value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = map.next_entry()? {
                    out.push(kv);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonJob {
    cmd: serde_json::Value,
    key: Option<String>,
    params: Option<Ordered<String, serde_json::Value>>,
}

/// Parse a jobs file's text, handing each entry to `f` as its line is read; `label` names the
/// file in messages (`jobs.txt`, `<stdin>`).
pub fn parse_each(text: &str, label: &str, mut f: impl FnMut(Entry)) -> Result<(), String> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |msg: String| format!("{label}:{}: {msg}", i + 1);
        if line.contains('\0') {
            return Err(at("the line contains a NUL byte".into()));
        }
        let entry = if line.starts_with('{') {
            json_line(line).map_err(at)?
        } else {
            Entry {
                command: JobCommand::Shell(line.to_string()),
                key: None,
                params: Vec::new(),
                line: 0,
            }
        };
        super::check::command(&entry.command).map_err(at)?;
        f(Entry {
            line: i + 1,
            ..entry
        });
    }
    Ok(())
}

const JSON_SHAPE: &str = r#"write {"cmd": "shell command" or ["prog", "arg", ...], "key": "...", "params": {"name": "value"}} (key and params optional)"#;

fn json_line(line: &str) -> Result<Entry, String> {
    let job: JsonJob =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON job ({e}); {JSON_SHAPE}"))?;
    let command = match job.cmd {
        serde_json::Value::String(s) if !s.trim().is_empty() => JobCommand::Shell(s),
        serde_json::Value::Array(items) if !items.is_empty() => {
            let argv: Option<Vec<String>> = items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                })
                .collect();
            match argv {
                Some(argv) if !argv[0].is_empty() => JobCommand::Argv(argv),
                Some(_) => return Err("\"cmd\": the program (first element) is empty".into()),
                None => {
                    return Err(format!(
                        "\"cmd\": every argv element must be a string; {JSON_SHAPE}"
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "\"cmd\" must be a non-empty string or array of strings, not {other}; {JSON_SHAPE}"
            ));
        }
    };
    if job.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err("\"key\" is empty; omit it to key the job by its command".into());
    }
    let mut params = Vec::new();
    for (name, v) in job.params.map(|p| p.0).unwrap_or_default() {
        let value = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "\"params\".\"{name}\" must be a string, number or boolean, not {other}"
                ));
            }
        };
        if params.iter().any(|(n, _)| *n == name) {
            return Err(format!("\"params\" has \"{name}\" twice"));
        }
        params.push((name, value));
    }
    Ok(Entry {
        command,
        key: job.key,
        params,
        line: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, label: &str) -> Result<Vec<Entry>, String> {
        let mut entries = Vec::new();
        parse_each(text, label, |e| entries.push(e))?;
        Ok(entries)
    }

    #[test]
    fn shell_lines_comments_and_blanks() {
        let text = "# header\n\necho 1\n   \n  # indented comment\n  python t.py --x 'a b'  \r\necho '#not a comment'\n";
        let e = parse(text, "jobs.txt").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].command, JobCommand::Shell("echo 1".into()));
        assert_eq!(e[0].line, 3);
        assert_eq!(
            e[1].command,
            JobCommand::Shell("python t.py --x 'a b'".into())
        );
        assert_eq!(
            e[2].command,
            JobCommand::Shell("echo '#not a comment'".into())
        );
        assert!(e.iter().all(|e| e.key.is_none() && e.params.is_empty()));
        assert!(parse("# only\n\n", "x").unwrap().is_empty());
    }

    #[test]
    fn json_lines_carry_key_and_ordered_params() {
        let text = r#"{"cmd": ["python", "-m", "w", "in 0.pkl"], "key": "app:x=1", "params": {"z": "1", "a": 2, "m": true}}
{"cmd": "echo hi"}"#;
        let e = parse(text, "j").unwrap();
        assert_eq!(
            e[0].command,
            JobCommand::Argv(vec![
                "python".into(),
                "-m".into(),
                "w".into(),
                "in 0.pkl".into()
            ])
        );
        assert_eq!(e[0].key.as_deref(), Some("app:x=1"));
        // Document order, not sorted: these are the job's overrides as written.
        assert_eq!(
            e[0].params,
            [
                ("z".into(), "1".into()),
                ("a".into(), "2".into()),
                ("m".into(), "true".into())
            ]
        );
        assert_eq!(e[1].command, JobCommand::Shell("echo hi".into()));
        assert_eq!(e[1].key, None);
    }

    #[test]
    fn invalid_lines_name_file_and_line() {
        for (text, needle) in [
            ("echo ok\n{\"cmd\": ", "jobs.txt:2: invalid JSON job"),
            (
                "{\"cmd\": 3}",
                "jobs.txt:1: \"cmd\" must be a non-empty string",
            ),
            ("{\"cmd\": []}", "jobs.txt:1: \"cmd\" must be"),
            ("{\"cmd\": \"\"}", "jobs.txt:1: \"cmd\" must be"),
            (
                "{\"cmd\": [\"a\", 1]}",
                "every argv element must be a string",
            ),
            ("{\"cmd\": [\"\"]}", "program (first element) is empty"),
            ("{\"cmd\": \"x\", \"kye\": \"k\"}", "unknown field `kye`"),
            ("{\"cmd\": \"x\", \"key\": \" \"}", "\"key\" is empty"),
            (
                "{\"cmd\": \"x\", \"params\": {\"a\": [1]}}",
                "\"params\".\"a\" must be a string",
            ),
            (
                "{\"cmd\": \"x\", \"params\": {\"a\": 1, \"a\": 2}}",
                "\"a\" twice",
            ),
            ("\n\necho a\0b", "jobs.txt:3: the line contains a NUL byte"),
        ] {
            let e = parse(text, "jobs.txt").unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
