//! `rollback`: feasibility first, then (unless `--dry-run`) the rollback in
//! one transaction. Exit 0 when rolled back (or a feasible dry run), 2 when
//! refused by feasibility (nothing written), 1 on errors.

use std::fmt::Write as _;

use doctype_migrate::{
    Error, MigrationApplier, MigrationId, RollbackOptions, RollbackPlan, RollbackTarget, RolledBack,
};
use serde::Serialize;

use super::args::{BackupOptions, RollbackArgs};
use super::backup::configure;
use super::{CliError, EXIT_BLOCKED, Outcome};

/// The JSON document `rollback --json` prints, in every outcome except an
/// error (which prints nothing on stdout and exits 1).
/// The server's rollback endpoint answers with the same document.
#[derive(Debug, Serialize)]
pub(crate) struct RollbackJson<'a> {
    pub dry_run: bool,
    /// False when refused (exit 2).
    pub feasible: bool,
    /// Whether anything was written.
    pub rolled_back_any: bool,
    pub plan: &'a RollbackPlan,
    pub rolled_back: &'a [RolledBack],
}

/// `rollback`.
pub fn rollback(args: &RollbackArgs) -> Result<Outcome, CliError> {
    if !args.db.exists() {
        return Err(CliError::Message(format!(
            "database {} does not exist",
            args.db.display()
        )));
    }
    let target = if let Some(id) = args.id {
        RollbackTarget::Migration {
            id: MigrationId(id),
        }
    } else if let Some(batch_id) = &args.batch {
        RollbackTarget::Batch {
            batch_id: batch_id.clone(),
        }
    } else {
        RollbackTarget::Last {
            doctype: args.doctype.clone(),
        }
    };
    let mut options = RollbackOptions::default();
    options.cascade = args.cascade;
    options.allow_data_loss = args.allow_data_loss;
    if let Some(t) = crate::cli::global::settings().lock_timeout {
        options.lock_timeout = t;
    }
    // The applier's backup manager (directory and key, as for `apply`)
    // verifies and restores the backups.
    let backups = BackupOptions {
        backup_dir: args.backup_dir.clone(),
        how: crate::cli::args::BackupHowOptions {
            key: args.key.clone(),
            ..Default::default()
        },
    };
    if args.dry_run {
        let builder =
            crate::cli::global::with_timeouts(MigrationApplier::builder(&args.db).read_only(true));
        let applier = configure(builder, &args.db, &backups)?.build()?;
        let plan = applier.rollback_plan(&target, &options)?;
        return render(args, &plan, &[], true);
    }
    let builder = crate::cli::global::with_timeouts(MigrationApplier::builder(&args.db));
    let mut applier = configure(builder, &args.db, &backups)?.build()?;
    match applier.rollback(&target, &options) {
        Ok(report) => render(args, &report.plan, &report.rolled_back, false),
        Err(Error::RollbackRefused { plan }) => render(args, &plan, &[], false),
        Err(e) => Err(e.into()),
    }
}

fn render(
    args: &RollbackArgs,
    plan: &RollbackPlan,
    done: &[RolledBack],
    dry_run: bool,
) -> Result<Outcome, CliError> {
    let stdout = if args.json {
        super::output::to_json(&RollbackJson {
            dry_run,
            feasible: plan.feasible,
            rolled_back_any: !done.is_empty(),
            plan,
            rolled_back: done,
        })?
    } else {
        text(plan, done, dry_run)
    };
    let (error, code) = if plan.feasible {
        (None, 0)
    } else {
        (
            Some(format!(
                "rollback refused: {} reason(s); nothing was written",
                plan.refusals.len()
            )),
            EXIT_BLOCKED,
        )
    };
    Ok(Outcome {
        stdout,
        error,
        code,
    })
}

fn text(plan: &RollbackPlan, done: &[RolledBack], dry_run: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Rollback of {}{}: {}",
        plan.target,
        if plan.cascade { " (cascade)" } else { "" },
        match (plan.feasible, dry_run) {
            (false, _) => "REFUSED",
            (true, true) => "feasible (dry run, nothing written)",
            (true, false) => "done",
        }
    );
    for r in &plan.refusals {
        let _ = writeln!(out, "  refused [{}]: {r}", r.code());
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "  warning [{}]: {w}", w.code());
    }
    for s in &plan.steps {
        let _ = writeln!(
            out,
            "  #{} {} v{} (table {}){}",
            s.id,
            s.doctype,
            s.version,
            s.table,
            if s.cascaded { " [cascade]" } else { "" }
        );
        for sql in &s.statements {
            let _ = writeln!(out, "      {sql}");
        }
        for r in &s.restores {
            let cols = if r.columns.is_empty() {
                String::new()
            } else {
                format!(" columns {}", r.columns.join(", "))
            };
            let _ = writeln!(
                out,
                "      restore {:?}{cols} from {} ({} rows in backup)",
                r.mode,
                r.path.display(),
                r.backup_rows
            );
        }
    }
    for d in done {
        let rows: u64 = d.restores.iter().map(|r| r.rows).sum();
        let _ = writeln!(
            out,
            "Rolled back #{} {}: {} statement(s), {rows} row(s) restored, {:.1} ms",
            d.id,
            d.doctype,
            d.statements.len(),
            d.execution_time_ms
        );
    }
    out
}
