//! cgroup v1 memory files: names, the hierarchical limit from memory.stat, and the mem+swap limit.
//!
//! v1 reports "no limit" as LONG_MAX rounded to the page size (see [`super::values::UNLIMITED_AT`]).
//! `hierarchical_memory_limit` in the leaf's memory.stat is the minimum over the leaf and *all*
//! its ancestors, including those above the container's mount root that it cannot see (JDK-8370966,
//! otel-collector #4972), so it counts as one more limit level.

use super::memory::Files;
use super::values;

pub const FILES: Files = Files {
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
    // total_* is the hierarchical key (this cgroup and its children); plain inactive_file is
    // only the cgroup's own pages, the fallback for a memory.stat without total_ keys.
    inactive_keys: &["total_inactive_file", "inactive_file"],
    peak: "memory.max_usage_in_bytes",
    events: "memory.oom_control",
    pressure: "memory.pressure",
    parse_limit: values::limit,
};

/// memory+swap limit file; present only with swap accounting (`swapaccount=1`).
pub const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

pub const HIERARCHICAL_LIMIT_KEY: &str = "hierarchical_memory_limit";
pub const HIERARCHICAL_MEMSW_KEY: &str = "hierarchical_memsw_limit";
