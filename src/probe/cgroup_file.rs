//! Parsing /proc/self/cgroup: which cgroup this process is in, per hierarchy.
//!
//! Each line is `hierarchy-ID:controller-list:cgroup-path`. The path may itself contain `:`
//! (containerd CRI paths such as `...slice:cri-containerd:<id>`) and spaces, so a line is split
//! into at most three fields and the path is kept literally (this file is not octal-escaped).

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: u32,
    /// The comma-separated controllers (`["cpu", "cpuacct"]`); empty for the v2 line.
    pub controllers: Vec<String>,
    pub path: String,
}

impl CgroupLine {
    /// The unified (v2) hierarchy's line: `0::/path`.
    pub fn is_v2(&self) -> bool {
        self.hierarchy == 0 && self.controllers.is_empty()
    }

    /// A v1 line carrying `controller`, matched as a whole name (`cpu` is not `cpuacct`).
    pub fn has(&self, controller: &str) -> bool {
        !self.is_v2() && self.controllers.iter().any(|c| c == controller)
    }
}

/// Parse the whole file; lines without the three fields or with a non-numeric ID are skipped.
pub fn parse(text: &str) -> Vec<CgroupLine> {
    text.lines().filter_map(parse_line).collect()
}

pub fn parse_line(line: &str) -> Option<CgroupLine> {
    let mut parts = line.splitn(3, ':');
    let hierarchy = parts.next()?.trim().parse().ok()?;
    let controllers = parts.next()?;
    let path = parts.next()?;
    if !path.starts_with('/') {
        return None;
    }
    Some(CgroupLine {
        hierarchy,
        controllers: controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        path: path.to_string(),
    })
}

/// The v1 line for `controller`, if any.
pub fn v1_line<'a>(lines: &'a [CgroupLine], controller: &str) -> Option<&'a CgroupLine> {
    lines.iter().find(|l| l.has(controller))
}

/// The v2 line, if any.
pub fn v2_line(lines: &[CgroupLine]) -> Option<&CgroupLine> {
    lines.iter().find(|l| l.is_v2())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_v2_and_joined_lines() {
        let lines = parse(
            "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/x\n0::/user.slice\n",
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(v1_line(&lines, "memory").unwrap().path, "/docker/abc");
        assert_eq!(v1_line(&lines, "cpu").unwrap().hierarchy, 12);
        assert!(v1_line(&lines, "cpuset").is_none());
        assert_eq!(v2_line(&lines).unwrap().path, "/user.slice");
        assert!(
            !lines[2].has("systemd"),
            "name=systemd is not a controller called systemd"
        );
    }

    #[test]
    fn colons_in_the_path_are_kept() {
        let l = parse_line(
            "11:memory:/system.slice/containerd.service/kubepods-burstable-pod1.slice:cri-containerd:0123abcd",
        )
        .unwrap();
        assert_eq!(
            l.path,
            "/system.slice/containerd.service/kubepods-burstable-pod1.slice:cri-containerd:0123abcd"
        );
        let v2 = parse_line("0::/a:b:c").unwrap();
        assert!(v2.is_v2());
        assert_eq!(v2.path, "/a:b:c");
    }

    #[test]
    fn spaces_and_escapes_are_literal() {
        let l = parse_line(r"0::/my group/x\040y ").unwrap();
        assert_eq!(l.path, r"/my group/x\040y ");
    }

    #[test]
    fn a_v1_line_with_an_empty_controller_list_is_not_v2() {
        let l = parse_line("3::/x").unwrap();
        assert!(!l.is_v2());
        assert!(!l.has("memory"));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        for bad in [
            "",
            "memory:/x",
            "x:memory:/x",
            "4:memory",
            "4:memory:relative",
            ":::",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
        let lines = parse("junk\n\n4:memory:/ok\n");
        assert_eq!(lines.len(), 1);
    }
}
