//! `fleet plan|apply|status`: one set of DocTypes over many databases. The
//! library's `Fleet` does the work; this turns the options into a fleet,
//! streams one line per database (JSON with `--json`), draws a progress
//! bar on a terminal, and maps the outcome to the exit code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use doctype_migrate::{DbOutcome, DbStatus, Fleet, FleetBuilder, FleetReport, OnError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::{FleetApplyArgs, FleetArgs, FleetCommand, FleetSelect, OnErrorArg};
use super::commands::load_doctypes;
use super::global::{ProgressMode, settings, with_timeouts};
use super::output::to_json;
use super::{CliError, EXIT_BLOCKED, EXIT_ERROR, Outcome, backup};

/// Runs one `fleet` subcommand.
pub fn run(args: &FleetArgs) -> Result<Outcome, CliError> {
    match &args.command {
        FleetCommand::Plan(a) => plan(a),
        FleetCommand::Apply(a) => apply(a),
        FleetCommand::Status(a) => {
            load_doctypes(&a.doctypes)?;
            let fleet = select(Fleet::builder(), a)?
                .applier(with_timeouts)
                .build()?;
            stream(&fleet, a.json, |f, on| f.status(&a.doctypes, on))
        }
    }
}

fn apply(args: &FleetApplyArgs) -> Result<Outcome, CliError> {
    let a = &args.select;
    // Bad input and a bad key are reported before any database is opened.
    load_doctypes(&a.doctypes)?;
    let backups = backup::fleet_settings(&args.backup)?;
    let (allow, strict, drop) = (args.allow_data_loss, args.strict, args.drop_orphan_columns);
    let always_rebuild = args.always_rebuild;
    let mut builder = select(Fleet::builder(), a)?
        .on_error(match args.on_error {
            OnErrorArg::Halt => OnError::Halt,
            OnErrorArg::Continue => OnError::Continue,
        })
        .applier(move |b| {
            with_timeouts(b)
                .allow_data_loss(allow)
                .strict(strict)
                .drop_orphan_columns(drop)
                .always_rebuild(always_rebuild)
                .backups(backups.clone())
        });
    if let Some(k) = args.canary {
        builder = builder.canary_first(k);
    }
    if let Some(list) = &args.canary_list {
        builder = builder.canary_list(read_list(list)?);
    }
    let fleet = builder.build()?;
    stream(&fleet, a.json, |f, on| f.apply(&a.doctypes, on))
}

fn plan(a: &FleetSelect) -> Result<Outcome, CliError> {
    load_doctypes(&a.doctypes)?;
    let fleet = select(Fleet::builder(), a)?
        .applier(with_timeouts)
        .build()?;
    let plan = fleet.plan(&a.doctypes)?;
    let blocked = plan.groups.iter().any(|g| g.blocked);
    let code = if !plan.unreadable.is_empty() {
        EXIT_ERROR
    } else if blocked {
        EXIT_BLOCKED
    } else {
        0
    };
    let stdout = if a.json {
        to_json(&plan)?
    } else {
        let mut text = String::new();
        for (n, g) in plan.groups.iter().enumerate() {
            let _ = write!(
                text,
                "{} database(s) at state {} ({}…): ",
                g.databases.len(),
                n + 1,
                &g.fingerprint[..12.min(g.fingerprint.len())]
            );
            if g.changes == 0 {
                text.push_str("up to date\n");
            } else {
                let _ = writeln!(
                    text,
                    "{} change(s) in {}{}{}",
                    g.changes,
                    g.doctypes.join(", "),
                    if g.rebuilds { "; rebuilds a table" } else { "" },
                    if g.blocked {
                        "; BLOCKED by validation"
                    } else {
                        ""
                    }
                );
            }
            for db in g.databases.iter().take(3) {
                let _ = writeln!(text, "    {}", db.display());
            }
            if g.databases.len() > 3 {
                let _ = writeln!(text, "    … and {} more", g.databases.len() - 3);
            }
        }
        let _ = writeln!(text, "{} unreadable", plan.unreadable.len());
        for o in &plan.unreadable {
            let _ = writeln!(
                text,
                "    {}: {}",
                o.db.display(),
                o.error.as_deref().unwrap_or_default()
            );
        }
        text
    };
    Ok(Outcome {
        stdout,
        error: (code != 0).then(|| match code {
            EXIT_ERROR => "some databases are unreadable".to_string(),
            _ => "the plan of some databases is blocked by validation".to_string(),
        }),
        code,
    })
}

/// The databases, shard and parallelism of `a`.
fn select(mut builder: FleetBuilder, a: &FleetSelect) -> Result<FleetBuilder, CliError> {
    for source in &a.dbs {
        builder = match source.strip_prefix('@') {
            Some(file) => builder.list_file(file),
            None if source.contains(['*', '?', '[']) => builder.glob(source.clone()),
            None => builder.database(source),
        };
    }
    if let Some(shard) = &a.shard {
        let parsed = shard
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        let Some((index, count)) = parsed else {
            return Err(CliError::Message(format!(
                "--shard {shard:?}: expected I/N, e.g. 0/3"
            )));
        };
        builder = builder.shard(index, count);
    }
    if let Some(n) = a.parallel {
        builder = builder.parallel(n.get());
    }
    Ok(builder)
}

/// The paths a `@FILE` list names (for `--canary-list`).
fn read_list(arg: &str) -> Result<Vec<PathBuf>, CliError> {
    let Some(file) = arg.strip_prefix('@') else {
        return Err(CliError::Message(format!(
            "--canary-list {arg:?}: expected @FILE"
        )));
    };
    let fleet = Fleet::builder().list_file(file).build()?;
    Ok(fleet.databases().to_vec())
}

/// Runs `work`, printing one line per database as it ends (JSON lines
/// with `json`, else a line for each database that did not end well) and
/// a progress bar on a terminal; then the summary.
fn stream(
    fleet: &Fleet,
    json: bool,
    work: impl FnOnce(&Fleet, &(dyn Fn(&DbOutcome) + Sync)) -> doctype_migrate::Result<FleetReport>,
) -> Result<Outcome, CliError> {
    let bar = (settings().progress == ProgressMode::Bars).then(|| {
        let bar = ProgressBar::with_draw_target(
            Some(fleet.databases().len() as u64),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {elapsed:>3} [{bar:30}] {human_pos}/{human_len} databases ({per_sec}, eta {eta}) {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let out = Mutex::new(std::io::stdout());
    let on_outcome = |o: &DbOutcome| {
        let line = if json {
            serde_json::to_string(o).ok().map(|l| l + "\n")
        } else if o.status.is_success() || o.status == DbStatus::Pending {
            None
        } else {
            Some(format!(
                "{}: {}{}\n",
                o.status,
                o.db.display(),
                o.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ))
        };
        if let Some(line) = line {
            let line = super::output::escape_controls(&line, true);
            match &bar {
                Some(bar) => bar.suspend(|| write_out(&out, &line)),
                None => write_out(&out, &line),
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    };
    let report = work(fleet, &on_outcome);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    let stdout = if json {
        serde_json::to_string(&report.summary())
            .map(|l| l + "\n")
            .map_err(|e| CliError::Message(format!("cannot render JSON: {e}")))?
    } else {
        let counts: Vec<String> = report
            .counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let mut text = format!(
            "{} database(s): {} in {:.1} s\n",
            report.outcomes.len(),
            counts.join(", "),
            report.total_ms as f64 / 1000.0
        );
        if let Some(why) = &report.stopped {
            let _ = writeln!(text, "stopped: {why}");
        }
        text
    };
    let code = report.exit_code();
    Ok(Outcome {
        stdout,
        error: match code {
            0 => None,
            EXIT_BLOCKED => Some("some databases were refused by validation".into()),
            _ => Some("some databases failed or are unreadable".into()),
        },
        code,
    })
}

fn write_out(out: &Mutex<std::io::Stdout>, line: &str) {
    let out = out.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = out.lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}
