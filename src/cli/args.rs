//! Command-line arguments (clap derive).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Parser, Subcommand};

use super::EXIT_ERROR;

/// Plans and applies DocType schemas to an SQLite database.
///
/// Exit status: 0 success, 1 error, 2 refused by validation (blocking findings).
#[derive(Debug, Parser)]
#[command(name = "doctype-migrate", version, about, long_about = None)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dry run: show what `apply` would do. Never writes the database
    /// (a missing file is planned against as an empty database).
    /// Exits 2 when the plan is blocked.
    Plan(PlanArgs),
    /// Apply the DocTypes (creates the database file if missing).
    /// Exits 2 when refused by validation, 1 when any DocType failed.
    Apply(ApplyArgs),
    /// Show tabMigrationHistory, oldest first.
    History(HistoryArgs),
    /// Roll back migrations, data included: one (--id), the latest
    /// (--last, of one DocType with --doctype) or a batch (--batch).
    /// Feasibility is checked first; exits 2 when refused (nothing written).
    Rollback(RollbackArgs),
}

/// Options shared by `plan` and `apply`.
#[derive(Debug, ClapArgs)]
pub struct Inputs {
    /// SQLite database file.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// DocType JSON files or directories (searched recursively).
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub doctypes: Vec<PathBuf>,
    /// Print JSON (see the README for the contract) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `plan` arguments.
#[derive(Debug, ClapArgs)]
pub struct PlanArgs {
    /// Database, DocTypes and output format.
    #[command(flatten)]
    pub inputs: Inputs,
    /// Plan dropping columns the DocTypes no longer declare (default: keep them as orphans).
    #[arg(long)]
    pub drop_orphan_columns: bool,
    /// Plan as if data-loss findings were allowed (as `apply --allow-data-loss`).
    #[arg(long)]
    pub allow_data_loss: bool,
}

/// `apply` arguments.
#[derive(Debug, ClapArgs)]
pub struct ApplyArgs {
    /// Database, DocTypes and output format.
    #[command(flatten)]
    pub inputs: Inputs,
    /// Run each DocType in its own savepoint: a failed one is rolled back and
    /// recorded as `failed`, the others commit (default: all-or-nothing).
    #[arg(long)]
    pub continue_on_error: bool,
    /// Let changes that destroy or alter stored values through (data-loss findings do not block).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Drop columns the DocTypes no longer declare (default: keep them as orphans).
    #[arg(long)]
    pub drop_orphan_columns: bool,
}

/// `history` arguments.
#[derive(Debug, ClapArgs)]
pub struct HistoryArgs {
    /// SQLite database file (must exist).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Only this DocType's migrations.
    #[arg(long, value_name = "NAME")]
    pub doctype: Option<String>,
    /// Print a JSON array of tabMigrationHistory rows instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `rollback` arguments.
#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["id", "last", "batch"])))]
pub struct RollbackArgs {
    /// SQLite database file (must exist).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Roll back this migration (its history id).
    #[arg(long, value_name = "ID")]
    pub id: Option<i64>,
    /// Roll back the newest completed migration (of --doctype, if given).
    #[arg(long)]
    pub last: bool,
    /// With --last: only this DocType's migrations.
    #[arg(long, value_name = "NAME", requires = "last")]
    pub doctype: Option<String>,
    /// Roll back every completed migration of this batch (one apply run).
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    /// Roll back later migrations of the same DocTypes first, newest first.
    #[arg(long)]
    pub cascade: bool,
    /// Print the rollback plan and its feasibility without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Proceed even though rows or values written since (in a table or
    /// column the migration created) are dropped, or destroyed values have
    /// no backup.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Print JSON (see the README) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Backup directory (default: <db>.backups beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Key for encrypted backups: a file with 32 raw bytes or 64 hex digits.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_env")]
    pub key_file: Option<PathBuf>,
    /// Passphrase for encrypted backups, read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
}

impl Args {
    /// Parses the process arguments. `--help` and `--version` print and give
    /// exit code 0; a usage error prints clap's message and gives 1 (clap's
    /// own 2 is reserved here for "refused by validation").
    pub fn parse_args() -> Result<Args, ExitCode> {
        Self::try_parse_from_iter(std::env::args_os())
    }

    /// [`Args::parse_args`] over explicit arguments (first one = program name).
    pub fn try_parse_from_iter<I, T>(iter: I) -> Result<Args, ExitCode>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Args::try_parse_from(iter).map_err(|e| {
            // Printing only fails when stdout/stderr is closed; nothing to do then.
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            }
        })
    }
}
