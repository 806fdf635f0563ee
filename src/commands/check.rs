//! `memsweep check --need SIZE`: exit 0 when that much memory is available, 1 with a warning when not.

use crate::cli::CheckArgs;
use crate::exit::Exit;
use crate::probe::Fs;

pub fn run(fs: &Fs, args: &CheckArgs) -> anyhow::Result<Exit> {
    let _ = (fs, args);
    todo!("probe helper")
}
