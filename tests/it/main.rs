//! memsweep's one integration test binary: a small harness, then one module per feature.
//! Tests run the real binary and assert what a user would notice: exit codes, output, files, memory.

mod harness;

mod chaos;
mod cli;
mod controls;
mod guard;
mod kernel;
mod probe;
mod reliability;
mod run;
mod show;
mod slurm;
mod snapshots;
