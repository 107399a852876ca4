//! The `doctype-migrate` command-line tool: a thin layer over the library.
//! Everything lives in [`cli`]; see the README for the commands, exit codes
//! and the JSON contract.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::Args::parse_args() {
        Ok(args) => cli::run(args),
        Err(code) => code,
    }
}
