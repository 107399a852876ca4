//! Command-line arguments (clap derive).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

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
    /// Options every subcommand accepts (quiet, verbosity, colour, timeouts).
    #[command(flatten)]
    pub global: super::global::GlobalArgs,
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
    /// List, verify, restore and prune table backups.
    Backup(BackupArgs),
    /// Roll back migrations, data included: one (--id), the latest
    /// (--last, of one DocType with --doctype) or a batch (--batch).
    /// Feasibility is checked first; exits 2 when refused (nothing written).
    Rollback(RollbackArgs),
    /// Online migrations for rolling deploys: start (expand and backfill),
    /// resume, complete (contract), abort, status. Two application
    /// versions share the tables meanwhile (docs/online.md).
    Online(OnlineArgs),
    /// Many databases (one per tenant), one set of DocTypes: plan (grouped
    /// by schema state), apply (canaries first, in parallel, resumable,
    /// shardable across machines), status. Exit 1 when any database
    /// failed or was unreadable, else 2 when any was refused.
    Fleet(FleetArgs),
    /// Serve an HTTP API for the database: status, history (more to
    /// come). Prints `listening on http://ADDR` first; stops on SIGTERM
    /// or Ctrl-C.
    #[cfg(feature = "server")]
    Serve(ServeArgs),
    /// Manage the API tokens `serve` accepts.
    #[cfg(feature = "server")]
    Token(TokenArgs),
}

/// `fleet` arguments.
#[derive(Debug, ClapArgs)]
pub struct FleetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// `fleet` subcommands.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Group the databases by schema state and show the plan of each
    /// state (a dry run of its first database). Writes nothing.
    Plan(FleetSelect),
    /// Apply the DocTypes to every database: canaries first, then the rest
    /// with --parallel workers. One JSON line per database with --json.
    Apply(FleetApplyArgs),
    /// Show whether each database is up to date, pending or unreadable.
    /// Writes nothing.
    Status(FleetSelect),
}

/// Which databases, which DocTypes, how many at once.
#[derive(Debug, Clone, ClapArgs)]
pub struct FleetSelect {
    /// The databases: glob patterns (quoted, expanded and sorted by path),
    /// `@FILE` list files (one path per line, order kept), or paths.
    #[arg(long, value_name = "GLOB|@FILE|PATH", num_args = 1.., required = true)]
    pub dbs: Vec<String>,
    /// DocType JSON files or directories, read once for every database.
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub doctypes: Vec<PathBuf>,
    /// Databases handled at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub parallel: Option<std::num::NonZeroUsize>,
    /// Take shard I of N (0-based): database number i of the list belongs
    /// to shard i mod N.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// One JSON line per database, then a summary line.
    #[arg(long)]
    pub json: bool,
}

/// `fleet apply` arguments.
#[derive(Debug, ClapArgs)]
pub struct FleetApplyArgs {
    /// Databases, DocTypes, parallelism, shard, output.
    #[command(flatten)]
    pub select: FleetSelect,
    /// The first K databases of the list are canaries: they run first, and
    /// unless each ends migrated or up to date, nothing else starts.
    #[arg(long, value_name = "K", conflicts_with = "canary_list")]
    pub canary: Option<usize>,
    /// The canaries, named in a list file (`@FILE`, one path per line).
    #[arg(long, value_name = "@FILE")]
    pub canary_list: Option<String>,
    /// After a database that failed, was unreadable or refused: halt (start
    /// no other; the rest are skipped) or continue.
    #[arg(long, value_enum, default_value = "halt")]
    pub on_error: OnErrorArg,
    /// Let changes that destroy or alter stored values through.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Refuse DocType quirks Frappe accepts.
    #[arg(long)]
    pub strict: bool,
    /// Drop columns the DocTypes no longer declare.
    #[arg(long)]
    pub drop_orphan_columns: bool,
    /// Copy the table for every change ALTER TABLE cannot add, rename or
    /// index: no native ALTER COLUMN ... NOT NULL, no edit of a CREATE text
    /// (default: those fast paths, where they are proved safe).
    #[arg(long)]
    pub always_rebuild: bool,
    /// Backups (each database's go beside it, `<db>.backups`).
    #[command(flatten)]
    pub backup: BackupHowOptions,
}

/// The values of `fleet apply --on-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnErrorArg {
    /// Start no other database; those running finish.
    Halt,
    /// Go on with every other database.
    Continue,
}

/// How backups are taken: the key, the policy, the gzip level. All of
/// `apply`'s backup options but the directory; `fleet apply` takes only
/// these (each database's backups go beside it, where its history finds
/// them).
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct BackupHowOptions {
    /// Backup encryption key.
    #[command(flatten)]
    pub key: KeyOptions,
    /// When to back up a table before migrating it (default: destructive).
    #[arg(long, value_enum, value_name = "POLICY")]
    pub backup_policy: Option<PolicyArg>,
    /// gzip level of backups, 0-9 (default: 1, fast).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub backup_level: Option<u32>,
}

/// `online` arguments.
#[derive(Debug, ClapArgs)]
pub struct OnlineArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OnlineCommand,
}

/// `online` subcommands.
#[derive(Debug, Subcommand)]
pub enum OnlineCommand {
    /// Expand the tables for the new DocTypes (new columns, indexes, a
    /// twin of each renamed column kept equal by triggers) in one
    /// transaction, then backfill the twins; returns when the backfill is
    /// done. Exits 2 when refused by validation (nothing written).
    Start(OnlineStartArgs),
    /// Go on with a killed backfill from its last committed range.
    Resume(OnlineRunArgs),
    /// Once the old application version is retired: check the twins,
    /// drop them and the triggers, and finish as a plain `apply` of the
    /// same DocTypes would, in one transaction.
    Complete(OnlineCompleteArgs),
    /// Undo the start: drop what it added; the schema is again exactly the
    /// one from before, with every row written meanwhile kept.
    Abort(OnlineDbArgs),
    /// Show the online migration in progress (reads only). Exits 0 with
    /// "no online migration" when none is.
    Status(OnlineDbArgs),
}

/// `online start` arguments.
#[derive(Debug, ClapArgs)]
pub struct OnlineStartArgs {
    /// Database, DocTypes and output format.
    #[command(flatten)]
    pub inputs: Inputs,
    /// Let changes that destroy or alter stored values through; complete
    /// applies with the same consent.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Refuse DocType quirks Frappe accepts: exit 2.
    #[arg(long)]
    pub strict: bool,
    /// At complete, drop the columns the DocTypes no longer declare.
    #[arg(long)]
    pub drop_orphan_columns: bool,
    /// Switch the database to WAL mode first (persistent), so that readers
    /// are never blocked by the backfill.
    #[arg(long)]
    pub wal: bool,
    /// How the backfill paces itself.
    #[command(flatten)]
    pub pace: BackfillOptions,
}

/// How an online migration's backfill paces itself.
#[derive(Debug, Clone, ClapArgs)]
pub struct BackfillOptions {
    /// Rows in the first backfill range of each table.
    #[arg(long, value_name = "N", default_value = "2000")]
    pub batch_rows: std::num::NonZeroU32,
    /// How long one range should hold the write lock, in milliseconds
    /// (a target: the range size adapts to it).
    #[arg(long, value_name = "MS", default_value = "25")]
    pub max_batch_ms: std::num::NonZeroU64,
    /// Pause between ranges, in milliseconds: when other writers can take
    /// the lock.
    #[arg(long, value_name = "MS", default_value = "25")]
    pub pause_ms: u64,
}

/// `online resume` arguments.
#[derive(Debug, ClapArgs)]
pub struct OnlineRunArgs {
    /// Database and output format.
    #[command(flatten)]
    pub db: OnlineDbArgs,
    /// How the backfill paces itself.
    #[command(flatten)]
    pub pace: BackfillOptions,
}

/// `online complete` arguments.
#[derive(Debug, ClapArgs)]
pub struct OnlineCompleteArgs {
    /// Database and output format.
    #[command(flatten)]
    pub db: OnlineDbArgs,
    /// Backups of what complete changes destructively, as for `apply`.
    #[command(flatten)]
    pub backup: BackupOptions,
}

/// The database of an online command, and the output format.
#[derive(Debug, ClapArgs)]
pub struct OnlineDbArgs {
    /// SQLite database file (must exist).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `serve` arguments.
#[cfg(feature = "server")]
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// SQLite database file.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// DocType JSON files or directories (searched recursively), parsed once at start.
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub doctypes: Vec<PathBuf>,
    /// Tokens file (`doctype-migrate token add`).
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// Address to listen on; port 0 picks a free port (the first stdout line tells which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Listen on a non-loopback address without TLS (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure_bind: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Mutating calls allowed per minute, per token and per client address.
    #[arg(long, value_name = "N", default_value = "20")]
    pub rate_limit_per_minute: std::num::NonZeroU32,
    /// Mutating calls allowed at once (the burst) before the per-minute rate applies.
    #[arg(long, value_name = "N", default_value = "10")]
    pub rate_limit_burst: std::num::NonZeroU32,
    /// Backups taken by applies and restored by rollbacks, as for `apply`.
    #[command(flatten)]
    pub backup: BackupOptions,
}

/// `token` arguments.
#[cfg(feature = "server")]
#[derive(Debug, ClapArgs)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// `token` subcommands.
#[cfg(feature = "server")]
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Add a token; prints the new token alone on one line, once (only its SHA-256 is stored).
    Add {
        /// Tokens file (created with mode 0600 if missing).
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// Unique name, recorded as `applied_by` and in the audit log.
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_enum)]
        role: super::serve::tokens::Role,
    },
    /// List the tokens' names, roles and creation times.
    List {
        /// Tokens file.
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a token by name.
    Revoke {
        /// Tokens file.
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// The token's name.
        #[arg(long)]
        name: String,
    },
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
    /// Print JSON (contract: docs/reference/json.md) instead of text.
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
    /// Refuse DocType quirks Frappe accepts (a fieldname twice, a field named
    /// like a standard column, a non-numeric numeric default): exit 2.
    #[arg(long)]
    pub strict: bool,
    /// Copy the table for every change ALTER TABLE cannot add, rename or
    /// index: no native ALTER COLUMN ... NOT NULL, no edit of a CREATE text
    /// (default: those fast paths, where they are proved safe).
    #[arg(long)]
    pub always_rebuild: bool,
    /// Backup options, as `apply` would use them (for the planned backups preview).
    #[command(flatten)]
    pub backup: BackupOptions,
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
    /// Refuse DocType quirks Frappe accepts (a fieldname twice, a field named
    /// like a standard column, a non-numeric numeric default): exit 2.
    #[arg(long)]
    pub strict: bool,
    /// Drop columns the DocTypes no longer declare (default: keep them as orphans).
    #[arg(long)]
    pub drop_orphan_columns: bool,
    /// Copy the table for every change ALTER TABLE cannot add, rename or
    /// index: no native ALTER COLUMN ... NOT NULL, no edit of a CREATE text
    /// (default: those fast paths, where they are proved safe).
    #[arg(long)]
    pub always_rebuild: bool,
    /// Where backups go, how they are encrypted and when they are taken.
    #[command(flatten)]
    pub backup: BackupOptions,
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

/// The key that encrypts new backups or opens encrypted ones: a key file or
/// a passphrase read from an environment variable (never from the command
/// line, where other users could see it).
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct KeyOptions {
    /// Backup key file: 32 raw bytes or 64 hex digits.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_env")]
    pub key_file: Option<PathBuf>,
    /// Name of the environment variable holding the backup passphrase
    /// (stretched with argon2id). The variable must be set and non-empty.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
}

/// When backups are taken by `apply`, the values of `--backup-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Before destructive steps and rebuilds (the default).
    Destructive,
    /// Before every change to an existing table.
    Always,
    /// Never (destructive changes then carry an RB001 finding).
    Never,
    /// As destructive, but a full backup of a table that has one already
    /// is written as an increment against it (only the rows changed since).
    Incremental,
}

/// Backup options of `plan` and `apply`.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct BackupOptions {
    /// Backup directory (default: `<database file name>.backups` beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// The key, the policy, the gzip level.
    #[command(flatten)]
    pub how: BackupHowOptions,
}

/// `backup` arguments.
#[derive(Debug, ClapArgs)]
pub struct BackupArgs {
    /// What to do with the backups.
    #[command(subcommand)]
    pub command: BackupCommand,
}

/// The `backup` subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List every backup in the backup directory (unreadable files as warnings).
    List(BackupListArgs),
    /// Verify backups (decrypt, decompress, checksum, row count) without
    /// restoring. Exits 0 only when every backup passes.
    Verify(BackupVerifyArgs),
    /// Restore a backup into its original table or a new one, in one transaction.
    Restore(BackupRestoreArgs),
    /// Delete old backups, keeping those a completed migration still names
    /// (unless --force).
    Prune(BackupPruneArgs),
}

/// `backup list` arguments.
#[derive(Debug, ClapArgs)]
pub struct BackupListArgs {
    /// SQLite database file (locates the default backup directory).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Backup directory (default: `<database file name>.backups` beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print a JSON array of backups instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `backup verify` arguments.
#[derive(Debug, ClapArgs)]
pub struct BackupVerifyArgs {
    /// SQLite database file (locates the default backup directory).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Backup directory (default: `<database file name>.backups` beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Key for encrypted backups.
    #[command(flatten)]
    pub key: KeyOptions,
    /// Backup files to verify (default: every backup in the directory).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print a JSON array of results instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `backup restore` arguments.
#[derive(Debug, ClapArgs)]
pub struct BackupRestoreArgs {
    /// SQLite database file (must exist).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// The backup file to restore; it must be in the backup directory.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Backup directory the file must be in (default: `<database file
    /// name>.backups` beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Restore into this new table (which must not exist) instead of the
    /// table the backup was taken from.
    #[arg(long, value_name = "NEW_TABLE")]
    pub into: Option<String>,
    /// Key for an encrypted backup.
    #[command(flatten)]
    pub key: KeyOptions,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `backup prune` arguments.
#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("rule").required(true).args(["keep", "older_than"])))]
pub struct BackupPruneArgs {
    /// SQLite database file (must exist: its history says which backups are protected).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Backup directory (default: `<database file name>.backups` beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Keep the newest N backups of each table (N >= 1), delete older ones.
    #[arg(long, value_name = "N", value_parser = parse_keep)]
    pub keep: Option<u64>,
    /// Delete backups older than this: a number and a unit, s, m, h, d or w
    /// (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: Option<chrono::Duration>,
    /// Also delete backups that completed (still rollbackable) migrations name.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--keep N`: a whole number of at least 1, so that the newest
/// backup of each table (perhaps one a running migration just wrote)
/// always stays.
pub fn parse_keep(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1: the newest backup of each table is always kept".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// Parses an age such as `30d`, `12h`, `90m`, `45s` or `2w`.
pub fn parse_age(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit; use s, m, h, d or w (e.g. 30d)"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number (e.g. 30d)"))?;
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use s, m, h, d or w"
            ));
        }
    };
    n.checked_mul(seconds_per)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| format!("{text:?} is too long"))
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
    /// Print JSON (contract: docs/reference/json.md) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Backup directory (default: `<database file name>.backups` beside the database).
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Key that opens encrypted backups.
    #[command(flatten)]
    pub key: KeyOptions,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_a_number_and_a_unit() {
        assert_eq!(parse_age("30d"), Ok(chrono::Duration::days(30)));
        assert_eq!(parse_age("12h"), Ok(chrono::Duration::hours(12)));
        assert_eq!(parse_age("0s"), Ok(chrono::Duration::zero()));
        assert_eq!(parse_age("2w"), Ok(chrono::Duration::weeks(2)));
        for bad in ["", "30", "d", "-1d", "1.5d", "3y", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
