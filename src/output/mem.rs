//! The `memsweep mem` table: limit and where it comes from, usage, working set, cache, swap, pressure, CPUs, host.
