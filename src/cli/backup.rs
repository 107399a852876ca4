//! The `backup` subcommands (`list`, `verify`, `restore`, `prune`) and the
//! backup options `plan` and `apply` share (`--backup-dir`, `--key-file`,
//! `--passphrase-env`, `--backup-policy`, `--backup-level`).
//!
//! The library does the work (its [`BackupManager`], and
//! [`MigrationApplier::restore_backup`] and
//! [`MigrationApplier::prune_backups`] where the database is involved);
//! this layer resolves the directory and key from the options and renders
//! results as text or JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use doctype_migrate::{
    ApplierBuilder, BackupErrorKind, BackupInfo, BackupKey, BackupManager, BackupManagerBuilder,
    BackupPolicy, BackupSettings, BackupStrategy, Error, MigrationApplier, PlannedBackup,
    PrunePolicy, PruneReport, RestoreTarget, default_dir_for,
};
use serde::Serialize;

use super::args::{
    BackupArgs, BackupCommand, BackupHowOptions, BackupListArgs, BackupOptions, BackupPruneArgs,
    BackupRestoreArgs, BackupVerifyArgs, KeyOptions, PolicyArg,
};
use super::global::with_timeouts;
use super::output::to_json;
use super::{CliError, EXIT_ERROR, Outcome};

/// Runs a `backup` subcommand.
pub fn run(args: &BackupArgs) -> Result<Outcome, CliError> {
    match &args.command {
        BackupCommand::List(a) => list(a),
        BackupCommand::Verify(a) => verify(a),
        BackupCommand::Restore(a) => restore(a),
        BackupCommand::Prune(a) => prune(a),
    }
}

// ---------------------------------------------------------------------------
// Options shared with `plan` and `apply`.

/// A backup key, resolved from [`KeyOptions`] (`None`: no key given).
type Key = Option<BackupKey>;

/// Reads the key options. The passphrase comes from the named environment
/// variable, which must be set and non-empty; its value is never printed.
fn resolve_key(opts: &KeyOptions) -> Result<Key, CliError> {
    if let Some(path) = &opts.key_file {
        return Ok(Some(BackupKey::KeyFile(path.clone())));
    }
    let Some(var) = &opts.passphrase_env else {
        return Ok(None);
    };
    if var.is_empty() || var.contains(['=', '\0']) {
        return Err(CliError::Message(format!(
            "--passphrase-env {var:?} is not a valid environment variable name"
        )));
    }
    match std::env::var_os(var) {
        None => Err(CliError::Message(format!(
            "environment variable {var} is not set (--passphrase-env names the variable \
             that holds the backup passphrase, not the passphrase itself)"
        ))),
        Some(v) if v.is_empty() => Err(CliError::Message(format!(
            "environment variable {var} is empty; it must hold the backup passphrase"
        ))),
        Some(v) => v
            .into_string()
            .map(|p| Some(BackupKey::Passphrase(p)))
            .map_err(|_| {
            CliError::Message(format!(
                "environment variable {var} does not hold valid UTF-8; the backup passphrase must be text"
            ))
        }),
    }
}

/// A manager builder for `dir` with `key`.
fn manager_builder(dir: &Path, key: &Key) -> BackupManagerBuilder {
    let b = BackupManager::builder().dir(dir);
    match key {
        None => b,
        Some(k) => b.backup_key(k),
    }
}

/// The backup directory: `--backup-dir` or the default beside the
/// database, made absolute so that history rows name files that can be
/// found from any working directory.
pub(crate) fn backup_dir_for(db: &Path, given: Option<&Path>) -> PathBuf {
    let dir = given.map_or_else(|| default_dir_for(db), Path::to_path_buf);
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The backup settings `--backup-dir`, the key options, `--backup-policy`
/// and `--backup-level` describe, given to an applier builder as one
/// value. The key is checked now (the key file read, the passphrase
/// variable looked up), before the database is opened, so a bad key never
/// leaves a half-done run behind.
pub fn configure(
    builder: ApplierBuilder,
    db: &Path,
    opts: &BackupOptions,
) -> Result<ApplierBuilder, CliError> {
    let dir = backup_dir_for(db, opts.backup_dir.as_deref());
    Ok(builder.backups(settings(Some(dir), &opts.how)?))
}

/// The backup settings of `fleet apply`: no directory (each database's
/// backups go beside it), the key checked once for all.
pub fn fleet_settings(opts: &BackupHowOptions) -> Result<BackupSettings, CliError> {
    settings(None, opts)
}

fn settings(dir: Option<PathBuf>, how: &BackupHowOptions) -> Result<BackupSettings, CliError> {
    let key = resolve_key(&how.key)?;
    // Building a manager writes nothing; it reads and checks the key file.
    let check_dir = dir.clone().unwrap_or_else(std::env::temp_dir);
    manager_builder(&check_dir, &key).build()?;
    let mut settings = BackupSettings::default();
    if let Some(dir) = dir {
        settings = settings.with_dir(dir);
    }
    if let Some(k) = key {
        settings = settings.with_key(k);
    }
    if let Some(policy) = how.backup_policy {
        settings = settings.with_policy(match policy {
            PolicyArg::Destructive => BackupPolicy::DestructiveAndRebuild,
            PolicyArg::Always => BackupPolicy::Always,
            PolicyArg::Never => BackupPolicy::Never,
            PolicyArg::Incremental => BackupPolicy::Incremental,
        });
    }
    if let Some(level) = how.backup_level {
        settings = settings.with_compression_level(level);
    }
    Ok(settings)
}

/// The line `plan` prints after its summary when the plan takes backups:
/// where they would go and whether they would be encrypted.
pub fn plan_note(db: &Path, opts: &BackupOptions, planned: usize) -> String {
    if planned == 0 {
        return String::new();
    }
    let how = if opts.how.key.key_file.is_some() {
        "encrypted with the key file"
    } else if opts.how.key.passphrase_env.is_some() {
        "encrypted with the passphrase"
    } else {
        "not encrypted"
    };
    format!(
        "Backups: {planned} would be taken into {} ({how}).\n",
        backup_dir_for(db, opts.backup_dir.as_deref()).display()
    )
}

/// `columns(a, b)` or `full`.
pub fn strategy_text(s: &BackupStrategy) -> String {
    s.to_string()
}

/// One planned backup as a text line item.
pub fn planned_text(b: &PlannedBackup) -> String {
    format!("{} {}", b.table, strategy_text(&b.strategy))
}

// ---------------------------------------------------------------------------
// Helpers.

/// The library error's reason without the path it already names (the CLI
/// prints the path next to it).
fn reason(e: &Error) -> String {
    match e {
        Error::Backup { message, .. } => message.clone(),
        Error::Io { source, .. } => source.to_string(),
        other => doctype_migrate::error_chain(other),
    }
}

fn warn(text: &str) {
    super::write_stderr(&format!("warning: {text}\n"));
}

fn require_db(db: &Path) -> Result<(), CliError> {
    if db.is_file() {
        Ok(())
    } else {
        Err(CliError::Message(format!(
            "database {} does not exist",
            db.display()
        )))
    }
}

fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The strategy column of `list`: `full`, `columns(a)`, plus `+incr` for
/// an incremental backup.
fn kind_text(info: &BackupInfo) -> String {
    let mut s = strategy_text(&info.strategy);
    if info.base.is_some() {
        s.push_str(" +incr");
    }
    s
}

fn created_text(info: &BackupInfo) -> String {
    info.created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A left-aligned text table (numbers right-aligned where `numeric`).
fn table(header: &[&str], rows: &[Vec<String>], numeric: &[bool]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[String]| {
        let parts: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
                if numeric.get(i).copied().unwrap_or(false) {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}

// ---------------------------------------------------------------------------
// list

/// `backup list`: every readable backup; unreadable files as warnings.
fn list(args: &BackupListArgs) -> Result<Outcome, CliError> {
    let (dir, infos, unreadable) = list_backups(&args.db, args.backup_dir.as_deref())?;
    for (path, why) in unreadable {
        warn(&format!("unreadable backup {}: {why}", path.display()));
    }
    let stdout = if args.json {
        to_json(&infos)?
    } else {
        list_text(&dir, &infos)
    };
    Ok(Outcome {
        stdout,
        error: None,
        code: 0,
    })
}

fn list_text(dir: &Path, infos: &[BackupInfo]) -> String {
    if infos.is_empty() {
        return format!("No backups in {}.\n", dir.display());
    }
    let rows: Vec<Vec<String>> = infos
        .iter()
        .map(|i| {
            let mut flags = Vec::new();
            if i.compressed {
                flags.push("gzip");
            }
            if i.encrypted {
                flags.push("encrypted");
            }
            vec![
                i.table.clone(),
                kind_text(i),
                i.row_count.to_string(),
                created_text(i),
                i.migration_id
                    .map_or_else(|| "-".into(), |m| format!("#{}", m.0)),
                if flags.is_empty() {
                    "-".into()
                } else {
                    flags.join(",")
                },
                size_text(i.bytes),
                i.path.display().to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "table",
            "strategy",
            "rows",
            "created_at",
            "migration",
            "flags",
            "size",
            "path",
        ],
        &rows,
        &[false, false, true, false, false, false, true, false],
    );
    let _ = writeln!(out, "{} backup(s) in {}.", infos.len(), dir.display());
    out
}

// ---------------------------------------------------------------------------
// verify

/// One result of `backup verify --json`.
#[derive(Debug, Serialize)]
pub(crate) struct VerifyResult {
    /// The file.
    pub(crate) path: PathBuf,
    /// Whether it passed.
    pub(crate) ok: bool,
    /// Why it failed (wrong key, corrupted, truncated, ...), or null.
    pub(crate) error: Option<String>,
    /// The failure's category (`wrong_key`, `corrupted`, ...), or null on
    /// success or for an error that is not a backup error (I/O).
    kind: Option<BackupErrorKind>,
    /// The backup's manifest, when it passed.
    backup: Option<BackupInfo>,
}

/// `backup verify`: named files, or every backup in the directory.
/// Verifies `files`, or every backup in the directory (unreadable files
/// included, as failures), with the backup options' directory and key.
/// `backup verify` and the server's verify endpoint.
pub(crate) fn verify_results(
    db: &Path,
    backup_dir: Option<&Path>,
    key: &KeyOptions,
    files: &[PathBuf],
) -> Result<Vec<VerifyResult>, CliError> {
    let key = resolve_key(key)?;
    let dir = backup_dir_for(db, backup_dir);
    let manager = manager_builder(&dir, &key).build()?;
    let mut results: Vec<VerifyResult> = Vec::new();
    let check = |path: PathBuf| -> VerifyResult {
        match manager.verify(&path) {
            Ok(info) => VerifyResult {
                path,
                ok: true,
                error: None,
                kind: None,
                backup: Some(info),
            },
            Err(e) => VerifyResult {
                path,
                ok: false,
                error: Some(reason(&e)),
                kind: e.backup_kind(),
                backup: None,
            },
        }
    };
    if files.is_empty() {
        for info in manager.list()? {
            results.push(check(info.path));
        }
        for (path, e) in manager.list_unreadable()? {
            results.push(VerifyResult {
                path,
                ok: false,
                error: Some(reason(&e)),
                kind: e.backup_kind(),
                backup: None,
            });
        }
    } else {
        for f in files {
            results.push(check(f.clone()));
        }
    }
    Ok(results)
}

/// The backup directory, its backups, and the files there that could not
/// be read as backups (with why).
pub(crate) type Listing = (PathBuf, Vec<BackupInfo>, Vec<(PathBuf, String)>);

/// The backups in the directory, and the files there that could not be
/// read as backups (with why). `backup list` and the server.
pub(crate) fn list_backups(db: &Path, backup_dir: Option<&Path>) -> Result<Listing, CliError> {
    let dir = backup_dir_for(db, backup_dir);
    let manager = BackupManager::builder().dir(&dir).build()?;
    let infos = manager.list()?;
    let unreadable = manager
        .list_unreadable()?
        .into_iter()
        .map(|(p, e)| (p, reason(&e)))
        .collect();
    Ok((dir, infos, unreadable))
}

fn verify(args: &BackupVerifyArgs) -> Result<Outcome, CliError> {
    let dir = backup_dir_for(&args.db, args.backup_dir.as_deref());
    let results = verify_results(&args.db, args.backup_dir.as_deref(), &args.key, &args.files)?;
    let failed: Vec<&VerifyResult> = results.iter().filter(|r| !r.ok).collect();
    let stdout = if args.json {
        to_json(&results)?
    } else {
        verify_text(&dir, args.files.is_empty(), &results)
    };
    let error = (!failed.is_empty()).then(|| {
        let names: Vec<String> = failed
            .iter()
            .map(|r| {
                r.path.file_name().map_or_else(
                    || r.path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                )
            })
            .collect();
        format!(
            "{} of {} backup(s) failed verification: {}",
            failed.len(),
            results.len(),
            names.join(", ")
        )
    });
    Ok(Outcome {
        stdout,
        code: if error.is_some() { EXIT_ERROR } else { 0 },
        error,
    })
}

fn verify_text(dir: &Path, whole_dir: bool, results: &[VerifyResult]) -> String {
    if results.is_empty() && whole_dir {
        return format!("No backups in {}; nothing to verify.\n", dir.display());
    }
    let mut out = String::new();
    for r in results {
        match (&r.backup, &r.error) {
            (Some(i), _) => {
                let enc = if i.encrypted { ", encrypted" } else { "" };
                let _ = writeln!(
                    out,
                    "ok      {} ({} {}, {} row(s){enc})",
                    r.path.display(),
                    i.table,
                    kind_text(i),
                    i.row_count
                );
            }
            (None, e) => {
                let _ = writeln!(
                    out,
                    "FAILED  {}: {}",
                    r.path.display(),
                    e.as_deref().unwrap_or("failed")
                );
            }
        }
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    let _ = writeln!(
        out,
        "{} backup(s) checked: {} ok, {failed} failed.",
        results.len(),
        results.len() - failed
    );
    out
}

// ---------------------------------------------------------------------------
// restore

/// `backup restore`: the library restores in one transaction taken with
/// `BEGIN IMMEDIATE`, from a file in the backup directory only, verifying
/// the whole backup (and its chain) before it touches the target.
fn restore(args: &BackupRestoreArgs) -> Result<Outcome, CliError> {
    if args.into.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(CliError::Message("--into needs a table name".into()));
    }
    require_db(&args.db)?;
    let target = match &args.into {
        Some(t) => RestoreTarget::NewTable(t.clone()),
        None => RestoreTarget::Original,
    };
    let backups = BackupOptions {
        backup_dir: args.backup_dir.clone(),
        how: BackupHowOptions {
            key: args.key.clone(),
            ..BackupHowOptions::default()
        },
    };
    let builder = with_timeouts(MigrationApplier::builder(&args.db));
    let applier = configure(builder, &args.db, &backups)?.build()?;
    let done = applier.restore_backup(&args.file, target)?;
    let stdout = if args.json {
        to_json(&done)?
    } else {
        let what = match &done.strategy {
            BackupStrategy::FullTable => "row(s) inserted",
            BackupStrategy::Columns(_) => "row(s) updated",
            _ => "row(s) restored",
        };
        format!(
            "Restored {} ({} backup of {}) into {}: {} {what}.\n",
            done.path.display(),
            strategy_text(&done.strategy),
            done.table,
            done.target,
            done.rows
        )
    };
    Ok(Outcome {
        stdout,
        error: None,
        code: 0,
    })
}

// ---------------------------------------------------------------------------
// prune

/// `backup prune`: deletes by age or keeps the newest N per table, never
/// deleting a backup a `completed` history row names unless `--force`.
fn prune(args: &BackupPruneArgs) -> Result<Outcome, CliError> {
    let policy = match (args.keep, args.older_than) {
        (Some(n), None) => PrunePolicy::KeepNewest(usize::try_from(n).unwrap_or(usize::MAX)),
        (None, Some(age)) => PrunePolicy::OlderThan(age),
        _ => {
            return Err(CliError::Message(
                "give exactly one of --keep N and --older-than DURATION".into(),
            ));
        }
    };
    require_db(&args.db)?;
    let dir = backup_dir_for(&args.db, args.backup_dir.as_deref());
    // Not read-only: pruning takes the write lock (it writes nothing) so
    // that it cannot delete the backup of an apply still running.
    let applier = with_timeouts(MigrationApplier::builder(&args.db))
        .backup_dir(&dir)
        .build()?;
    for (path, e) in applier.backup_manager()?.list_unreadable()? {
        warn(&format!(
            "unreadable backup {} is never pruned: {}",
            path.display(),
            reason(&e)
        ));
    }
    let report = applier.prune_backups(policy, args.force)?;
    let stdout = if args.json {
        to_json(&report)?
    } else {
        prune_text(&dir, &report)
    };
    Ok(Outcome {
        stdout,
        error: None,
        code: 0,
    })
}

fn prune_text(dir: &Path, r: &PruneReport) -> String {
    let mut out = String::new();
    let mut section = |title: &str, paths: &[PathBuf]| {
        if !paths.is_empty() {
            let _ = writeln!(out, "{title}:");
            for p in paths {
                let _ = writeln!(out, "  {}", p.display());
            }
        }
    };
    section("Deleted", &r.deleted);
    section(
        "Deleted although a completed migration names them (--force)",
        &r.deleted_protected,
    );
    section(
        "Kept: named by a completed migration (rollback needs them; --force deletes them)",
        &r.kept_protected,
    );
    section(
        "Kept: the base of a kept incremental backup",
        &r.kept_as_base,
    );
    let _ = writeln!(
        out,
        "Pruned {}: {} deleted, {} kept because protected.",
        dir.display(),
        r.deleted.len(),
        r.kept_protected.len() + r.kept_as_base.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(size_text(0), "0 B");
        assert_eq!(size_text(1023), "1023 B");
        assert_eq!(size_text(1536), "1.5 KiB");
        assert_eq!(size_text(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn a_missing_or_empty_passphrase_variable_is_an_error_that_names_it() {
        let opts = |v: &str| KeyOptions {
            key_file: None,
            passphrase_env: Some(v.into()),
        };
        let unset = "DM_TEST_SURELY_UNSET_PASSPHRASE_VAR";
        let Err(CliError::Message(m)) = resolve_key(&opts(unset)) else {
            panic!("an unset variable must be an error");
        };
        assert!(m.contains(unset) && m.contains("not set"), "{m}");
        for bad in ["", "A=B"] {
            assert!(resolve_key(&opts(bad)).is_err(), "{bad:?}");
        }
        assert!(matches!(resolve_key(&KeyOptions::default()), Ok(None)));
    }
}
