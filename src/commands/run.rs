//! `memsweep run`: the engine loop wiring sweep → sched ↔ probe → exec → journal → output.

use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::probe::Fs;

pub fn run(fs: &Fs, args: RunArgs) -> anyhow::Result<Exit> {
    let _ = (fs, args);
    todo!("engine helper")
}
