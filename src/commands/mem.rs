//! `memsweep mem`: the memory table (or JSON), optionally refreshed with `--watch`.

use crate::cli::MemArgs;
use crate::exit::Exit;
use crate::probe::Fs;

pub fn run(fs: &Fs, args: &MemArgs) -> anyhow::Result<Exit> {
    let _ = (fs, args);
    todo!("probe helper")
}
