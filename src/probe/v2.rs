//! cgroup v2 memory files: names, plus the v2-only throttle (`memory.high`) and swap (`memory.swap.max`).
//!
//! v2 writes "max" for no limit; the root cgroup has no memory.max or memory.current at all
//! (a missing file is "no limit at this level", never an error).

use super::memory::Files;

pub const FILES: Files = Files {
    limit: "memory.max",
    usage: "memory.current",
    inactive_keys: &["inactive_file"],
    peak: "memory.peak",
    events: "memory.events",
    pressure: "memory.pressure",
};

/// The throttle: above it the kernel reclaims hard and slows the group, but does not OOM-kill.
pub const HIGH: &str = "memory.high";

/// Swap alone (unlike v1's memsw, which is memory + swap).
pub const SWAP_MAX: &str = "memory.swap.max";
