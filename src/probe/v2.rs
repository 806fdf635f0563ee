//! cgroup v2 memory files: names, plus the v2-only throttle (`memory.high`) and swap (`memory.swap.max`).
//!
//! v2 writes "max" for no limit, so any number is a limit, even one >= 2^62 (issue 2 gives the
//! sentinel rule for v1 only). The root cgroup has no memory.max or memory.current at all (a
//! missing file is "no limit at this level", never an error).

use super::memory::Files;
use super::values;

pub const FILES: Files = Files {
    limit: "memory.max",
    usage: "memory.current",
    inactive_keys: &["inactive_file"],
    peak: "memory.peak",
    events: "memory.events",
    pressure: "memory.pressure",
    parse_limit: values::limit_v2,
};

/// The throttle: above it the kernel reclaims hard and slows the group, but does not OOM-kill.
pub const HIGH: &str = "memory.high";

/// Swap alone (unlike v1's memsw, which is memory + swap).
pub const SWAP_MAX: &str = "memory.swap.max";
