//! Progress on stderr while the library works: a [`RunObserver`] that
//! draws indicatif bars on a terminal and writes rate-limited plain lines
//! anywhere else (CI logs, pipes, files). Nothing here writes to stdout,
//! which carries the report and `--json`.
//!
//! The observer is called from the migrating thread between rowid ranges
//! of a copy, so each event does O(1) work: a clock read and a comparison
//! in plain mode; updating a bar's position in bar mode (indicatif redraws
//! at most 20 times a second on its own).

use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use doctype_migrate::{ApplierBuilder, Phase, RunEvent, RunObserver};
use indicatif::{
    HumanBytes, HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle,
};

use super::global::{ProgressMode, settings};

/// Plain mode writes at most one rows-copied line per table and one
/// per-DocType phase line per interval (first and final lines always).
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(1);

/// The bars currently on screen, so that log lines can be printed above
/// them instead of through them (see [`write_stderr`]).
static ON_SCREEN: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take progress (or logging) down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes `bytes` to stderr, above the progress bars when they are drawn.
/// Used by the log writer; write errors (a closed stderr) are ignored.
pub fn write_stderr(bytes: &[u8]) {
    let bars = lock(&ON_SCREEN).clone();
    let write = || {
        let _ = std::io::stderr().lock().write_all(bytes);
    };
    match bars {
        Some(multi) => multi.suspend(write),
        None => write(),
    }
}

/// The CLI's progress display for one run. Call [`CliProgress::finish`]
/// before printing the report so the bars are out of the way.
pub struct CliProgress {
    inner: Inner,
}

enum Inner {
    Plain(Mutex<PlainState>),
    Bars(Bars),
}

impl CliProgress {
    /// A display for `mode`, or `None` when progress is off.
    pub fn new(mode: ProgressMode) -> Option<Arc<CliProgress>> {
        let inner = match mode {
            ProgressMode::Off => return None,
            ProgressMode::Plain => Inner::Plain(Mutex::new(PlainState::default())),
            ProgressMode::Bars => Inner::Bars(Bars::new(settings().color_stderr)),
        };
        Some(Arc::new(CliProgress { inner }))
    }

    /// Clears the spinner (finished row bars stay on screen as a record).
    pub fn finish(&self) {
        if let Inner::Bars(bars) = &self.inner {
            bars.finish();
        }
    }
}

impl Drop for CliProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl RunObserver for CliProgress {
    fn on_event(&self, event: &RunEvent<'_>) {
        match &self.inner {
            Inner::Plain(state) => {
                let line = lock(state).line_for(event, Instant::now());
                if let Some(line) = line {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
            }
            Inner::Bars(bars) => bars.on_event(event),
        }
    }
}

/// Sends the builder's progress events to `shown`, when progress is on.
pub fn attach(builder: ApplierBuilder, shown: Option<&Arc<CliProgress>>) -> ApplierBuilder {
    match shown {
        Some(p) => builder.observer(p.clone()),
        None => builder,
    }
}

/// The lowercase name of a phase.
pub fn phase_name(phase: Phase) -> &'static str {
    phase.as_str()
}

// ---------------------------------------------------------------------------
// Plain lines.

/// What plain mode remembers to rate-limit its lines.
#[derive(Debug, Default)]
struct PlainState {
    /// When the last per-DocType phase line was written.
    last_phase: Option<Instant>,
    /// The table of the last rows-copied event, and when its last line was written.
    rows_table: String,
    last_rows: Option<Instant>,
}

fn due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= PLAIN_INTERVAL)
}

impl PlainState {
    /// Whether a per-table progress line (rows copied, backfill) is due:
    /// the first of a table, the last (`done`), and at most one per
    /// interval in between.
    fn table_progress(&mut self, table: &str, done: bool, now: Instant) -> bool {
        let new_table = self.rows_table != table;
        if new_table {
            self.rows_table.clear();
            self.rows_table.push_str(table);
        }
        let shown = new_table || done || due(self.last_rows, now);
        if shown {
            self.last_rows = Some(now);
        }
        shown
    }

    /// The line to write for `event` at `now`, if any:
    ///
    /// - batch phases (plan, lock, validate, commit): always;
    /// - per-DocType phases: at most one line per [`PLAIN_INTERVAL`];
    /// - rows copied: the first and the final event of each table
    ///   (`copied == total`, the exact count), and at most one line per
    ///   interval in between;
    /// - backups written: always, with size and path.
    fn line_for(&mut self, event: &RunEvent<'_>, now: Instant) -> Option<String> {
        match event {
            RunEvent::Phase {
                doctype: None,
                phase,
            } => Some(format!("progress: {}\n", phase_name(*phase))),
            RunEvent::Phase {
                doctype: Some(doctype),
                phase,
            } => due(self.last_phase, now).then(|| {
                self.last_phase = Some(now);
                format!("progress: {doctype}: {}\n", phase_name(*phase))
            }),
            RunEvent::RowsCopied {
                table,
                copied,
                total,
                ..
            } => self.table_progress(table, copied >= total, now).then(|| {
                let state = if copied >= total { ", done" } else { "" };
                format!("progress: {table}: {copied}/{total} rows copied{state}\n")
            }),
            RunEvent::BackupWritten {
                table, bytes, path, ..
            } => Some(format!(
                "progress: backup of {table} written ({}): {}\n",
                HumanBytes(*bytes),
                path.display()
            )),
            RunEvent::Backfilled {
                table,
                rowid,
                max_rowid,
                ..
            } => self
                .table_progress(table, rowid >= max_rowid, now)
                .then(|| {
                    let state = if rowid >= max_rowid { ", done" } else { "" };
                    format!("progress: {table}: backfilled to rowid {rowid}/{max_rowid}{state}\n")
                }),
            // Events added to the library later: not shown until the CLI knows them.
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Bars.

/// A spinner for the current phase and a bar for the table being copied;
/// a finished copy leaves a summary line.
struct Bars {
    multi: MultiProgress,
    spinner: ProgressBar,
    rows_style: Option<ProgressStyle>,
    rows: Mutex<Option<(String, ProgressBar)>>,
}

/// Templates with colour, and the same without (`--color never`, `NO_COLOR`).
const SPINNER_TEMPLATE: [&str; 2] = [
    "{spinner} {elapsed:>3} {msg}",
    "{spinner:.cyan} {elapsed:>3} {msg}",
];
const ROWS_TEMPLATE: [&str; 2] = [
    "  {prefix} [{bar:30}] {human_pos}/{human_len} rows ({elapsed}, eta {eta})",
    "  {prefix} [{bar:30.cyan/blue}] {human_pos}/{human_len} rows ({elapsed}, eta {eta})",
];

impl Bars {
    fn new(color: bool) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let spinner = multi.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template(SPINNER_TEMPLATE[usize::from(color)]) {
            spinner.set_style(style);
        }
        let rows_style = ProgressStyle::with_template(ROWS_TEMPLATE[usize::from(color)])
            .ok()
            .map(|s| s.progress_chars("=> "));
        spinner.enable_steady_tick(Duration::from_millis(100));
        *lock(&ON_SCREEN) = Some(multi.clone());
        Bars {
            multi,
            spinner,
            rows_style,
            rows: Mutex::new(None),
        }
    }

    fn on_event(&self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Phase { doctype, phase } => {
                let name = phase_name(*phase);
                match doctype {
                    Some(d) => self.spinner.set_message(format!("{d}: {name}")),
                    None => self.spinner.set_message(name),
                }
            }
            RunEvent::RowsCopied {
                table,
                copied,
                total,
                ..
            } => {
                let mut rows = lock(&self.rows);
                let bar = match &*rows {
                    Some((t, bar)) if t == table => bar.clone(),
                    _ => {
                        if let Some((_, old)) = rows.take() {
                            old.finish_and_clear();
                        }
                        let bar = self
                            .multi
                            .insert_before(&self.spinner, ProgressBar::new(*total));
                        if let Some(style) = &self.rows_style {
                            bar.set_style(style.clone());
                        }
                        bar.set_prefix(table.to_string());
                        *rows = Some((table.to_string(), bar.clone()));
                        bar
                    }
                };
                bar.set_length(*total);
                bar.set_position(*copied);
                if copied >= total {
                    bar.finish_and_clear();
                    *rows = None;
                    let _ = self.multi.println(format!(
                        "{table}: {} rows copied in {:.1}s",
                        HumanCount(*copied),
                        bar.elapsed().as_secs_f64()
                    ));
                }
            }
            RunEvent::Backfilled {
                table,
                rowid,
                max_rowid,
                ..
            } => self.spinner.set_message(format!(
                "{table}: backfilled to rowid {}/{}",
                HumanCount(u64::try_from(*rowid).unwrap_or(0)),
                HumanCount(u64::try_from(*max_rowid).unwrap_or(0))
            )),
            RunEvent::BackupWritten {
                table, bytes, path, ..
            } => {
                let _ = self.multi.println(format!(
                    "backup of {table} written ({}): {}",
                    HumanBytes(*bytes),
                    path.display()
                ));
            }
            _ => {}
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = lock(&self.rows).take() {
            bar.finish_and_clear();
        }
        self.spinner.finish_and_clear();
        *lock(&ON_SCREEN) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rows(table: &str, copied: u64, total: u64) -> RunEvent<'_> {
        RunEvent::RowsCopied {
            doctype: "Reading",
            table,
            copied,
            total,
        }
    }

    #[test]
    fn plain_rows_lines_are_rate_limited_but_first_and_final_always_print() {
        let mut s = PlainState::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let first = s.line_for(&rows("tabR", 65_536, 200_000), ms(0));
        assert_eq!(
            first.as_deref(),
            Some("progress: tabR: 65536/200000 rows copied\n")
        );
        assert_eq!(s.line_for(&rows("tabR", 131_072, 200_000), ms(300)), None);
        assert!(
            s.line_for(&rows("tabR", 196_608, 200_000), ms(1_001))
                .is_some()
        );
        assert_eq!(
            s.line_for(&rows("tabR", 200_000, 200_000), ms(1_002))
                .as_deref(),
            Some("progress: tabR: 200000/200000 rows copied, done\n")
        );
        // A new table prints at once.
        assert!(s.line_for(&rows("tabS", 1, 10), ms(1_003)).is_some());
    }

    #[test]
    fn plain_phase_and_backup_lines() {
        let mut s = PlainState::default();
        let now = Instant::now();
        let batch = RunEvent::Phase {
            doctype: None,
            phase: Phase::Lock,
        };
        assert_eq!(s.line_for(&batch, now).as_deref(), Some("progress: lock\n"));
        assert_eq!(s.line_for(&batch, now).as_deref(), Some("progress: lock\n"));
        let dt = RunEvent::Phase {
            doctype: Some("Item"),
            phase: Phase::Execute,
        };
        assert_eq!(
            s.line_for(&dt, now).as_deref(),
            Some("progress: Item: execute\n")
        );
        assert_eq!(s.line_for(&dt, now), None, "rate-limited");
        let backup = RunEvent::BackupWritten {
            migration: doctype_migrate::MigrationId(1),
            doctype: "Item",
            table: "tabItem",
            path: Path::new("/b/x.dmbak"),
            rows: 10,
            bytes: 2048,
            sha256: "00",
            verified: true,
        };
        assert_eq!(
            s.line_for(&backup, now).as_deref(),
            Some("progress: backup of tabItem written (2.00 KiB): /b/x.dmbak\n")
        );
    }
}
