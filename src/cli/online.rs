//! `online start|resume|complete|abort|status`: online migrations for
//! rolling deploys. The library does the work; this loads the DocTypes
//! (before the database is opened), builds the applier and renders.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use doctype_migrate::{ApplierBuilder, Error, MigrationApplier, OnlineReport, OnlineStatus};

use super::args::{BackfillOptions, OnlineArgs, OnlineCommand, OnlineStartArgs};
use super::commands::load_doctypes;
use super::global::{settings, with_timeouts};
use super::output;
use super::progress::{self, CliProgress};
use super::{CliError, EXIT_BLOCKED, Outcome, backup};

/// Runs one `online` subcommand.
pub fn run(args: &OnlineArgs) -> Result<Outcome, CliError> {
    match &args.command {
        OnlineCommand::Start(a) => start(a),
        OnlineCommand::Resume(a) => {
            let db = existing(&a.db.db)?;
            let r = with_progress(paced(builder(db), &a.pace), |applier| {
                applier.online_resume()
            })?;
            report(&r, a.db.json)
        }
        OnlineCommand::Complete(a) => {
            let db = existing(&a.db.db)?;
            let built = backup::configure(builder(db), db, &a.backup)?;
            match with_progress(built, |applier| applier.online_complete()) {
                Ok(r) => Ok(Outcome {
                    stdout: if a.db.json {
                        output::apply_json(&r)?
                    } else {
                        format!("online migration completed\n{}", output::apply_text(&r))
                    },
                    ..Outcome::default()
                }),
                Err(Error::Blocked { findings }) => blocked(&findings, a.db.json),
                Err(e) => Err(e.into()),
            }
        }
        OnlineCommand::Abort(a) => {
            let db = existing(&a.db)?;
            let status = with_timeouts(builder(db)).build()?.online_abort()?;
            Ok(Outcome {
                stdout: if a.json {
                    json(&serde_json::json!({ "aborted": status }))?
                } else {
                    format!(
                        "online migration {} aborted: {} DocType(s) back to their schema from \
                         before the start\n",
                        status.batch_id,
                        status.tables.len()
                    )
                },
                ..Outcome::default()
            })
        }
        OnlineCommand::Status(a) => {
            let db = existing(&a.db)?;
            let applier = with_timeouts(MigrationApplier::builder(db).read_only(true)).build()?;
            let status = applier.online_status()?;
            Ok(Outcome {
                stdout: if a.json {
                    json(&serde_json::json!({ "online": status }))?
                } else {
                    match &status {
                        None => "no online migration in progress\n".to_string(),
                        Some(s) => status_text(s),
                    }
                },
                ..Outcome::default()
            })
        }
    }
}

/// `online start`: the DocTypes are loaded and validated before the
/// database is opened.
fn start(args: &OnlineStartArgs) -> Result<Outcome, CliError> {
    let doctypes = load_doctypes(&args.inputs.doctypes)?;
    let db = existing(&args.inputs.db)?;
    let built = paced(builder(db), &args.pace)
        .allow_data_loss(args.allow_data_loss)
        .strict(args.strict)
        .drop_orphan_columns(args.drop_orphan_columns);
    let wal = args.wal;
    let result = with_progress(built, |applier| {
        if wal {
            applier.switch_to_wal()?;
        }
        applier.online_start(&doctypes)
    });
    match result {
        Ok(r) => report(&r, args.inputs.json),
        Err(Error::Blocked { findings }) => blocked(&findings, args.inputs.json),
        Err(e) => Err(e.into()),
    }
}

fn builder(db: &Path) -> ApplierBuilder {
    MigrationApplier::builder(db)
}

fn paced(builder: ApplierBuilder, pace: &BackfillOptions) -> ApplierBuilder {
    builder
        .backfill_batch_rows(pace.batch_rows.get())
        .backfill_max_batch(Duration::from_millis(pace.max_batch_ms.get()))
        .backfill_pause(Duration::from_millis(pace.pause_ms))
}

/// Builds the applier with timeouts and progress, runs `work` on it.
fn with_progress<T>(
    builder: ApplierBuilder,
    work: impl FnOnce(&mut MigrationApplier) -> doctype_migrate::Result<T>,
) -> doctype_migrate::Result<T> {
    let shown = CliProgress::new(settings().progress);
    let builder = progress::attach(with_timeouts(builder), shown.as_ref());
    let result = builder.build().and_then(|mut applier| work(&mut applier));
    if let Some(shown) = &shown {
        shown.finish();
    }
    result
}

fn existing(db: &Path) -> Result<&Path, CliError> {
    if db.is_file() {
        Ok(db)
    } else {
        Err(CliError::Message(format!(
            "database {} does not exist",
            db.display()
        )))
    }
}

fn report(r: &OnlineReport, as_json: bool) -> Result<Outcome, CliError> {
    super::write_stderr(&output::warning_lines(&r.warnings));
    let stdout = if as_json {
        json(r)?
    } else {
        let mut text = format!(
            "online migration {} {}; backfill done in {} range(s), {} row(s), longest lock \
             hold {:.1} ms\n",
            r.status.batch_id,
            if r.resumed { "resumed" } else { "started" },
            r.backfill.batches,
            r.backfill.rows_updated,
            r.backfill.longest_batch_ms
        );
        text.push_str(&status_text(&r.status));
        text.push_str(
            "next: deploy the new version, retire the old one, then `online complete` \
             (or `online abort`)\n",
        );
        text
    };
    Ok(Outcome {
        stdout,
        ..Outcome::default()
    })
}

fn status_text(s: &OnlineStatus) -> String {
    let mut text = format!(
        "online migration {} started {}{}\n",
        s.batch_id,
        s.started_at,
        if s.backfill_done() {
            ", backfill done: ready to complete"
        } else {
            ", backfill not done: run `online resume`"
        }
    );
    for t in &s.tables {
        let _ = write!(
            text,
            "  {} ({}), migration {}",
            t.doctype, t.table, t.migration
        );
        for (old, new) in &t.renames {
            let _ = write!(text, "; {old} -> {new} dual-written");
        }
        if !t.renames.is_empty() {
            let _ = write!(
                text,
                "; backfilled to rowid {}/{}",
                t.backfilled_to, t.max_rowid
            );
        }
        let added: Vec<String> = t.added.iter().map(ToString::to_string).collect();
        if !added.is_empty() {
            let _ = write!(text, "; added: {}", added.join(", "));
        }
        text.push('\n');
    }
    text
}

fn blocked(findings: &[doctype_migrate::Finding], as_json: bool) -> Result<Outcome, CliError> {
    let blocking = findings.iter().filter(|f| f.blocking).count();
    Ok(Outcome {
        stdout: if as_json {
            output::blocked_json(findings, &[])?
        } else {
            output::blocked_text(findings)
        },
        error: Some(format!(
            "online migration refused: {blocking} blocking finding(s); nothing was written"
        )),
        code: EXIT_BLOCKED,
    })
}

fn json(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Message(format!("cannot render JSON: {e}")))
}
