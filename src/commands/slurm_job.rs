//! `memsweep slurm-job DIR --batch FILE` (hidden): what each Slurm array task runs; see
//! [`crate::slurm::wrapper`]. It exits with the job's own exit code (128 + signal).

use crate::cli::SlurmJobArgs;
use crate::exit::Exit;

pub fn run(args: &SlurmJobArgs) -> anyhow::Result<Exit> {
    let code = crate::slurm::wrapper::run(&args.dir, &args.batch)?;
    // The job's own code is the task's: Slurm reports it (and FAILED for non-zero).
    std::process::exit(code);
}
