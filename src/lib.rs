//! memsweep: memory-aware experiment sweeps. The binary is a thin shell over these modules;
//! see docs/architecture.md for how they fit together.

pub mod cli;
pub mod commands;
pub mod exec;
pub mod exit;
pub mod history;
pub mod journal;
pub mod output;
pub mod probe;
pub mod sched;
pub mod size;
pub mod slurm;
pub mod sweep;
#[cfg(test)]
pub(crate) mod testutil;
