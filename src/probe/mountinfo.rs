//! Parsing /proc/self/mountinfo: which cgroup hierarchies are mounted where, and at which root.
//!
//! Format (proc(5)): `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
//! The pitfalls real machines produce, all handled here: any number of optional fields before the
//! lone `-`, an empty source (two spaces in a row), super options containing spaces (WSL 9p), and
//! the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash) in the
//! root and mount point.

/// One mount, with root and mount point unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the mounted filesystem that appears at `mount_point` (`/` or `/docker/abc`).
    pub root: String,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
    /// The super options, split on commas (for cgroup v1 these name the controllers).
    pub super_options: Vec<String>,
}

impl Mount {
    /// A cgroup v1 hierarchy carrying `controller` (controllers are matched whole: `cpu` is not `cpuacct`).
    pub fn is_v1_with(&self, controller: &str) -> bool {
        self.fstype == "cgroup" && self.super_options.iter().any(|o| o == controller)
    }

    pub fn is_v2(&self) -> bool {
        self.fstype == "cgroup2"
    }
}

/// Parse the whole file; lines that do not have the mountinfo shape are skipped, never fatal
/// (one odd line from an exotic filesystem must not hide the cgroup mounts).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// Parse one line, or None when it does not have the mountinfo shape.
pub fn parse_line(line: &str) -> Option<Mount> {
    // Split on single spaces, keeping empty tokens: an empty source shows up as "".
    let tokens: Vec<&str> = line.split(' ').collect();
    // Six mandatory fields, '-' and the fstype; the kernel always prints a source and super
    // options too, but a hand-written line without them still says where a cgroup2 is mounted.
    if tokens.len() < 8 {
        return None;
    }
    // The six mandatory fields come first and are never empty.
    if tokens[..6].iter().any(|t| t.is_empty()) {
        return None;
    }
    // The separator is the first lone "-" after the options; root and mount point cannot
    // contain a bare " - " because the kernel escapes spaces in them.
    let sep = tokens[6..].iter().position(|t| *t == "-")? + 6;
    let fstype = *tokens.get(sep + 1)?;
    let source = tokens.get(sep + 2).copied().unwrap_or("");
    if fstype.is_empty() {
        return None;
    }
    // Super options run to the end of the line and may themselves contain spaces.
    let super_opts = tokens
        .get(sep + 3..)
        .map(|t| t.join(" "))
        .unwrap_or_default();
    Some(Mount {
        root: unescape(tokens[3]),
        mount_point: unescape(tokens[4]),
        fstype: fstype.to_string(),
        source: source.to_string(),
        super_options: super_opts.split(',').map(str::to_string).collect(),
    })
}

/// Undo the kernel's `mangle_path`: `\` followed by three octal digits is that byte.
/// A backslash not followed by three octal digits is kept as is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..=i + 3].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..=i + 3]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if v <= 0xff {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cgroup_v1_line() {
        let m = parse_line(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory",
        )
        .unwrap();
        assert_eq!(m.root, "/");
        assert_eq!(m.mount_point, "/sys/fs/cgroup/memory");
        assert_eq!(m.fstype, "cgroup");
        assert_eq!(m.source, "cgroup");
        assert!(m.is_v1_with("memory"));
        assert!(!m.is_v1_with("cpu"));
        assert!(!m.is_v2());
    }

    #[test]
    fn joined_controllers_match_whole_names() {
        let m =
            parse_line("32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct")
                .unwrap();
        assert!(m.is_v1_with("cpu"));
        assert!(m.is_v1_with("cpuacct"));
        assert!(!m.is_v1_with("cpuset"));
        assert!(!m.is_v1_with("memory"));
    }

    #[test]
    fn zero_or_many_optional_fields() {
        let none =
            parse_line("41 31 0:38 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate")
                .unwrap();
        assert!(none.is_v2());
        let many = parse_line(
            "41 31 0:38 /a /sys/fs/cgroup rw shared:1 master:2 propagate_from:3 unbindable - cgroup2 cgroup2 rw",
        )
        .unwrap();
        assert_eq!(many.root, "/a");
        assert!(many.is_v2());
    }

    #[test]
    fn empty_source_field() {
        // pasta/passt mounts print an empty source: two spaces in a row (procfs #333).
        let m = parse_line("99 31 0:50 / /run/user/1000/netns rw - tmpfs  rw,size=1024k").unwrap();
        assert_eq!(m.fstype, "tmpfs");
        assert_eq!(m.source, "");
        assert_eq!(m.super_options, vec!["rw", "size=1024k"]);
        let cg = parse_line("41 31 0:38 / /sys/fs/cgroup rw - cgroup2  rw").unwrap();
        assert!(cg.is_v2());
        assert_eq!(cg.mount_point, "/sys/fs/cgroup");
    }

    #[test]
    fn missing_source_and_super_options() {
        let m = parse_line("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2").unwrap();
        assert!(m.is_v2());
        assert_eq!(m.mount_point, "/sys/fs/cgroup");
        let m = parse_line("30 25 0:26 / /sys/fs/cgroup rw shared:9 - cgroup2").unwrap();
        assert!(m.is_v2());
        assert_eq!(m.source, "");
        // v1 controllers live in the super options: none means no controller.
        let v1 = parse_line("34 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup").unwrap();
        assert!(!v1.is_v1_with("memory"));
    }

    #[test]
    fn super_options_with_spaces() {
        let m = parse_line(
            r"80 70 0:60 / /mnt/c rw,noatime - 9p drvfs rw,dirsync,aname=drvfs;path=C:\;symlinkroot=/mnt/,path=C:\Program Files\x",
        )
        .unwrap();
        assert_eq!(m.fstype, "9p");
        assert!(
            m.super_options
                .last()
                .unwrap()
                .ends_with(r"Program Files\x")
        );
    }

    #[test]
    fn escapes_in_root_and_mount_point() {
        let m = parse_line(
            r"50 31 0:40 /my\040group/a\011b /sys/fs/cgroup/mem\040ory\134x\012y rw - cgroup cgroup rw,memory",
        )
        .unwrap();
        assert_eq!(m.root, "/my group/a\tb");
        assert_eq!(m.mount_point, "/sys/fs/cgroup/mem ory\\x\ny");
    }

    #[test]
    fn unescape_keeps_what_is_not_an_escape() {
        assert_eq!(unescape(r"a\040b"), "a b");
        assert_eq!(unescape(r"a\134b"), "a\\b");
        assert_eq!(unescape(r"a\b"), r"a\b");
        assert_eq!(unescape(r"a\04"), r"a\04");
        assert_eq!(unescape(r"a\0409"), "a 9");
        assert_eq!(unescape(r"\"), r"\");
        assert_eq!(unescape(r"\999"), r"\999");
        assert_eq!(unescape(""), "");
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        for bad in [
            "",
            "garbage",
            "1 2 3 4 5 6 7 8 9",
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:15 cgroup cgroup rw,memory",
            "35 31 0:32 / /x rw -",
            "35 31 0:32 / /x rw - ",
            "\u{0}\u{1} - - - - - - - - -",
        ] {
            let _ = parse_line(bad);
        }
        let text = "garbage\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\n";
        let mounts = parse(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, "/sys/fs/cgroup/memory");
    }

    /// The kernel's `mangle_path` for mountinfo: space, tab, newline and backslash as `\ooo`.
    fn mangle(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Unescaping undoes the kernel's escaping, for any path.
        #[test]
        fn unescape_undoes_mangle(s in "[ \t\n\\a-z0-9/_.\u{e9}-]{0,30}") {
            proptest::prop_assert_eq!(unescape(&mangle(&s)), s);
        }

        /// And a mountinfo line whose mount point has such characters parses back to it.
        #[test]
        fn mount_points_round_trip(s in "/[ \t\na-z0-9_\\-]{0,20}") {
            let line = format!("30 25 0:26 / {} rw,relatime shared:5 - cgroup cgroup rw,memory", mangle(&s));
            let m = parse_line(&line).unwrap();
            proptest::prop_assert_eq!(m.mount_point, s);
        }
    }
}
