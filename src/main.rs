//! The `doctype-migrate` command-line tool: a thin layer over the library.
//! Everything lives in [`cli`]; see docs/reference/cli.md for the commands
//! and exit codes and docs/reference/json.md for the JSON contract.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::Args::parse_args() {
        Ok(args) => cli::run(args),
        Err(code) => code,
    }
}
