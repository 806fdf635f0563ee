//! The `memsweep` binary: parse, run, print the error once, exit with a typed code.

fn main() -> std::process::ExitCode {
    memsweep::commands::main()
}
