//! `plan`, `apply` and `history`. Each loads and validates its inputs *before* it
//! opens the database, so bad input never creates or touches the file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use doctype_migrate::{DocType, Error, MigrationApplier, load_paths, warnings};

use super::args::{ApplyArgs, HistoryArgs, PlanArgs};
use super::backup;
use super::global::{settings, with_timeouts};
use super::output::{self, PlanView};
use super::progress::{self, CliProgress};
use super::style::Palette;
use super::{CliError, EXIT_BLOCKED, EXIT_ERROR, Outcome};

/// `plan`: a dry run on a read-only connection.
pub fn plan(args: &PlanArgs) -> Result<Outcome, CliError> {
    let doctypes = load_doctypes(&args.inputs.doctypes)?;
    let shown = CliProgress::new(settings().progress);
    let builder = MigrationApplier::builder(&args.inputs.db)
        .read_only(true)
        .allow_data_loss(args.allow_data_loss)
        .strict(args.strict)
        .drop_orphan_columns(args.drop_orphan_columns)
        .always_rebuild(args.always_rebuild);
    let builder = progress::attach(with_timeouts(builder), shown.as_ref());
    tracing::info!("opening {} read-only", args.inputs.db.display());
    let applier = backup::configure(builder, &args.inputs.db, &args.backup)?.build()?;
    let report = applier.dry_run(&doctypes)?;
    if let Some(shown) = &shown {
        shown.finish();
    }
    super::write_stderr(&output::warning_lines(&report.warnings));
    let view = PlanView::new(&report);
    tracing::info!(
        "plan: {} DocType(s) shown, {} up to date, blocked: {}",
        view.doctypes.len(),
        view.up_to_date,
        view.blocked
    );
    let stdout = if args.inputs.json {
        output::plan_json(&view)?
    } else {
        let planned = view.doctypes.iter().map(|d| d.backups.len()).sum();
        let palette = Palette::new(settings().color_stdout);
        output::plan_text_styled(&view, palette)
            + &backup::plan_note(&args.inputs.db, &args.backup, planned)
    };
    Ok(Outcome {
        stdout,
        error: None,
        code: if view.blocked { EXIT_BLOCKED } else { 0 },
    })
}

/// `apply`: creates the database if missing and syncs every DocType. On an
/// existing database the library confirms "up to date" without parsing
/// when nothing changed since the last run (`sync_paths`); it validates the
/// input before it writes anything either way. A database that does not
/// exist yet is created only after the input has been read and validated.
pub fn apply(args: &ApplyArgs) -> Result<Outcome, CliError> {
    let db = &args.inputs.db;
    let existed = db.exists();
    if !existed {
        load_doctypes(&args.inputs.doctypes)?;
    }
    let shown = CliProgress::new(settings().progress);
    let builder = MigrationApplier::builder(db)
        .create_if_missing(true)
        .continue_on_error(args.continue_on_error)
        .allow_data_loss(args.allow_data_loss)
        .strict(args.strict)
        .drop_orphan_columns(args.drop_orphan_columns)
        .always_rebuild(args.always_rebuild);
    let builder = progress::attach(with_timeouts(builder), shown.as_ref());
    tracing::info!(
        "opening {}{}",
        db.display(),
        if existed { "" } else { " (creating it)" }
    );
    // Backup options (key file, passphrase variable) are checked before the
    // database file is created or opened.
    let built = backup::configure(builder, db, &args.backup)?.build();
    // The applier (and its connection) is dropped at the end of this match,
    // before a file this run created may be removed below.
    let clock = Instant::now();
    let result = match built {
        Ok(mut applier) => applier.sync_paths(&args.inputs.doctypes),
        Err(e) => Err(e),
    };
    if let Some(shown) = &shown {
        shown.finish();
    }
    let json = args.inputs.json;
    match result {
        Ok(report) => {
            // Warnings (input accepted as Frappe accepts it, an interrupted
            // earlier run, an audit log that could not be written) go to
            // stderr even with --quiet.
            super::write_stderr(&output::warning_lines(&report.warnings));
            let failed: Vec<&str> = report.failed().map(|m| m.doctype.as_str()).collect();
            tracing::info!(
                "apply: {} migration(s), {} failed, {} finding(s), in {:.1} ms",
                report.migrations.len(),
                failed.len(),
                report.findings.len(),
                clock.elapsed().as_secs_f64() * 1000.0
            );
            let stdout = if json {
                output::apply_json(&report)?
            } else {
                output::apply_text(&report)
            };
            let (error, code) = if failed.is_empty() {
                (None, 0)
            } else {
                let msg = format!(
                    "{} DocType(s) failed and were rolled back: {}",
                    failed.len(),
                    failed.join(", ")
                );
                (Some(msg), EXIT_ERROR)
            };
            Ok(Outcome {
                stdout,
                error,
                code,
            })
        }
        Err(Error::Blocked { findings }) => {
            remove_if_created_empty(db, existed);
            // The input loaded and validated before validation blocked it.
            let accepted = warnings(&load_paths(&args.inputs.doctypes)?);
            super::write_stderr(&output::warning_lines(&accepted));
            let stdout = if json {
                output::blocked_json(&findings, &accepted)?
            } else {
                output::blocked_text(&findings)
            };
            let blocking = findings.iter().filter(|f| f.blocking).count();
            Ok(Outcome {
                stdout,
                error: Some(format!(
                    "migration refused: {blocking} blocking finding(s); nothing was written"
                )),
                code: EXIT_BLOCKED,
            })
        }
        Err(e) => {
            remove_if_created_empty(db, existed);
            Err(e.into())
        }
    }
}

/// `history`: reads tabMigrationHistory from an existing database.
pub fn history(args: &HistoryArgs) -> Result<Outcome, CliError> {
    if !args.db.exists() {
        return Err(CliError::Message(format!(
            "database {} does not exist",
            args.db.display()
        )));
    }
    tracing::info!("opening {} read-only", args.db.display());
    let applier = with_timeouts(MigrationApplier::builder(&args.db).read_only(true)).build()?;
    let rows = applier.history(args.doctype.as_deref())?;
    tracing::debug!("{} history row(s)", rows.len());
    let stdout = if args.json {
        output::history_json(&rows)?
    } else {
        output::history_text(&rows)
    };
    Ok(Outcome {
        stdout,
        error: None,
        code: 0,
    })
}

/// Loads and validates every DocType, and maps each to its table, so that
/// any problem in the input is reported before the database is opened.
pub(crate) fn load_doctypes(paths: &[PathBuf]) -> Result<Vec<DocType>, CliError> {
    let doctypes = load_paths(paths)?;
    tracing::info!(
        "loaded {} DocType(s) from {} path(s)",
        doctypes.len(),
        paths.len()
    );
    if doctypes.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Message(format!(
            "no DocType JSON found in {}",
            list.join(", ")
        )));
    }
    for dt in &doctypes {
        // validation already covers what target_table checks; mapping here
        // as well guarantees planning cannot fail on input later.
        match dt.target_table()? {
            Some(spec) => tracing::debug!(
                "DocType {:?} -> table {:?} ({} column(s))",
                dt.name,
                spec.name,
                spec.columns.len()
            ),
            None => tracing::debug!("DocType {:?} has no table", dt.name),
        }
    }
    Ok(doctypes)
}

/// After a failed apply, removes the database file if this run created it
/// and it is still empty, so a failure leaves no stray file behind.
fn remove_if_created_empty(db: &Path, existed: bool) {
    if !existed && std::fs::metadata(db).is_ok_and(|m| m.is_file() && m.len() == 0) {
        let _ = std::fs::remove_file(db);
    }
}
