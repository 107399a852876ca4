//! The `doctype-migrate` command line: argument parsing ([`args`]), the
//! commands (`plan`, `apply`, `history` in [`commands`], `rollback` in
//! [`rollback`], the `backup` subcommands in [`backup`]) and their text and
//! JSON rendering ([`output`]). The library does all the work; this layer loads inputs,
//! chooses how to open the database, renders results and maps outcomes to
//! exit codes.
//!
//! Global options ([`global`]) decide colour ([`style`]), progress on
//! stderr ([`progress`]) and log lines ([`logging`]).

pub(crate) mod args;
pub(crate) mod backup;
pub(crate) mod commands;
mod fleet;
mod global;
mod logging;
mod online;
pub(crate) mod output;
mod progress;
pub(crate) mod rollback;
#[cfg(feature = "server")]
mod serve;
mod style;

use std::io::Write;
use std::process::ExitCode;

pub use args::Args;
use args::Command;

/// Exit code of a failure (bad input, I/O, SQL, a DocType that failed).
pub const EXIT_ERROR: u8 = 1;
/// Exit code when validation refuses the plan (blocking findings).
pub const EXIT_BLOCKED: u8 = 2;

/// What a command produced: text for stdout, an optional message for
/// stderr, and the exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Printed to stdout as is.
    pub stdout: String,
    /// Printed to stderr as `error: <message>` when present.
    pub error: Option<String>,
    /// Process exit code.
    pub code: u8,
}

/// A command's failure: the library's error (printed with its sources) or
/// a message of the CLI's own.
#[derive(Debug)]
pub enum CliError {
    /// An error from the library (boxed: the library's error is large).
    Lib(Box<doctype_migrate::Error>),
    /// A problem the CLI itself detected.
    Message(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Lib(e) => e.fmt(f),
            CliError::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Lib(e) => std::error::Error::source(e.as_ref()),
            CliError::Message(_) => None,
        }
    }
}

impl From<doctype_migrate::Error> for CliError {
    fn from(e: doctype_migrate::Error) -> Self {
        CliError::Lib(Box::new(e))
    }
}

/// Runs the parsed command and returns the process exit code. Never panics
/// on input; output that cannot be written (a closed pipe) is dropped.
pub fn run(args: Args) -> ExitCode {
    let settings = global::Settings::from_env(&args.global);
    logging::init(&settings);
    global::init(settings);
    let result = match args.command {
        Command::Plan(a) => commands::plan(&a),
        Command::Apply(a) => commands::apply(&a),
        Command::History(a) => commands::history(&a),
        Command::Backup(a) => backup::run(&a),
        Command::Rollback(a) => rollback::rollback(&a),
        Command::Online(a) => online::run(&a),
        Command::Fleet(a) => fleet::run(&a),
        #[cfg(feature = "server")]
        Command::Serve(a) => serve::serve(&a),
        #[cfg(feature = "server")]
        Command::Token(a) => serve::tokens::run(&a),
    };
    match result {
        Ok(outcome) => {
            write_stdout(&outcome.stdout);
            if let Some(message) = &outcome.error {
                write_stderr(&format!(
                    "error: {}\n",
                    output::escape_controls(message, true)
                ));
            }
            ExitCode::from(outcome.code)
        }
        Err(e) => {
            write_stderr(&error_report(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `error: <Display>` and one `  caused by: <source>` line per source.
/// Control characters (other than line breaks) escaped: error messages
/// quote names and SQL read from the database, which must not reach the
/// terminal as escape sequences.
pub fn error_report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for (i, e) in doctype_migrate::error_sources(error).enumerate() {
        let lead = if i == 0 { "error: " } else { "  caused by: " };
        text.push_str(&format!(
            "{lead}{}\n",
            output::escape_controls(&e.to_string(), true)
        ));
    }
    text
}

pub(crate) fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

pub(crate) fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
