//! The backfill: the rows that existed when an online migration started
//! get each renamed column's value copied to its twin, in rowid ranges,
//! each range its own short write transaction that also records how far
//! the backfill got. A killed backfill goes on from the last committed
//! range; the rows written since start need none (the triggers keep them).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::db::lock::{TxGuard, begin_immediate};
use crate::error::{Error, Result};
use crate::events::{Observers, RunEvent};
use crate::ident::{quote, quote_literal};

use super::state::{OnlineTable, advance};

/// How the backfill paces itself.
///
/// The backfill holds the write lock for about `max_batch`, then leaves it
/// free for `pause`: with the defaults (25 ms and 25 ms) it takes about
/// half of the lock's time while it runs. An application writer waiting
/// with SQLite's busy timeout does not queue for the lock: it retries on
/// its own schedule (sleeps growing to 100 ms), so it gets in at one of
/// the next few pauses, not always at the first. A longer pause shortens
/// the writers' waits and lengthens the backfill;
/// `docs/performance.md` has the measured trade-off.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillSettings {
    /// Rows in the first range of each table. Default 2,000.
    pub batch_rows: u32,
    /// How long one range should hold the write lock: a target, not a
    /// cap. A range that took longer halves the next one, a range that
    /// took under a quarter of it doubles the next one. Default 25 ms.
    pub max_batch: Duration,
    /// The pause between ranges, in which other writers can take the
    /// lock. Default 25 ms.
    pub pause: Duration,
}

impl Default for BackfillSettings {
    fn default() -> Self {
        BackfillSettings {
            batch_rows: 2_000,
            max_batch: Duration::from_millis(25),
            pause: Duration::from_millis(25),
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BackfillStats {
    /// Ranges committed.
    pub batches: u64,
    /// Rows whose twin was written.
    pub rows_updated: u64,
    /// The longest time one range held the write lock, in milliseconds.
    pub longest_batch_ms: f64,
    /// The whole backfill, pauses included, in milliseconds.
    pub total_ms: f64,
}

const MIN_ROWS: i64 = 64;
const MAX_ROWS: i64 = 1_000_000;

/// How often a backfill waiting for the write lock tries again.
const POLL: Duration = Duration::from_micros(200);

/// The busy handler while backfilling: try again every [`POLL`], for
/// about five seconds (then [`begin_immediate`]'s own retry goes on, to
/// the lock timeout). SQLite's default handler sleeps longer and longer
/// between tries; against application writers that take the lock again
/// microseconds after they release it, it would hardly ever get its
/// turn, and the backfill would starve.
fn poll_quickly(tries: i32) -> bool {
    std::thread::sleep(POLL);
    tries < 25_000
}

/// Backfills every table of `tables` that is not done, range by range.
/// `busy_timeout` is the connection's, given back at the end.
pub fn backfill(
    conn: &mut Connection,
    path: &Path,
    (lock_timeout, busy_timeout): (Duration, Duration),
    tables: &[OnlineTable],
    settings: &BackfillSettings,
    events: &Observers,
) -> Result<BackfillStats> {
    conn.busy_handler(Some(poll_quickly))
        .map_err(|e| Error::sql("install the backfill's busy handler", e))?;
    let result = backfill_ranges(conn, path, lock_timeout, tables, settings, events);
    conn.busy_timeout(busy_timeout)
        .map_err(|e| Error::sql("PRAGMA busy_timeout", e))?;
    result
}

fn backfill_ranges(
    conn: &Connection,
    path: &Path,
    lock_timeout: Duration,
    tables: &[OnlineTable],
    settings: &BackfillSettings,
    events: &Observers,
) -> Result<BackfillStats> {
    let started = Instant::now();
    let mut stats = BackfillStats::default();
    for table in tables.iter().filter(|t| !t.backfill_done()) {
        let statements = range_sql(table);
        let mut rows = i64::from(settings.batch_rows.max(1));
        let mut at = table.backfilled_to;
        while at < table.max_rowid {
            let to = at.saturating_add(rows).min(table.max_rowid);
            begin_immediate(conn, path, lock_timeout)?;
            let held = Instant::now();
            let guard = TxGuard::new(conn);
            let mut updated = 0;
            for sql in &statements {
                updated += conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![at, to]))
                    .map_err(|e| Error::sql(sql, e))?;
            }
            advance(conn, &table.table, to)?;
            guard.commit(path, lock_timeout)?;
            let ms = held.elapsed().as_secs_f64() * 1000.0;
            stats.batches += 1;
            stats.rows_updated += updated as u64;
            stats.longest_batch_ms = stats.longest_batch_ms.max(ms);
            events.emit(RunEvent::Backfilled {
                doctype: &table.doctype,
                table: &table.table,
                rowid: to,
                max_rowid: table.max_rowid,
                rows: updated as u64,
                ms,
            });
            at = to;
            let limit = settings.max_batch.as_secs_f64() * 1000.0;
            if ms > limit {
                rows = (rows / 2).max(MIN_ROWS);
            } else if ms < limit / 4.0 {
                rows = (rows * 2).min(MAX_ROWS);
            }
            if at < table.max_rowid && !settings.pause.is_zero() {
                std::thread::sleep(settings.pause);
            }
        }
    }
    stats.total_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(stats)
}

/// The statements of one range of the backfill of `table`, rowids in
/// `(?1, ?2]`: the twins' copy, then for each NULL fill the rows recorded
/// (for abort) and filled.
fn range_sql(table: &OnlineTable) -> Vec<String> {
    let mut list = Vec::new();
    if !table.renames.is_empty() {
        list.push(copy_sql(table));
    }
    let t = quote(&table.table);
    for (column, value) in &table.fills {
        let c = quote(column);
        list.push(format!(
            "INSERT OR IGNORE INTO {} (table_name, column_name, row_id) SELECT {}, {}, rowid \
             FROM {t} WHERE rowid > ?1 AND rowid <= ?2 AND {c} IS NULL",
            quote(super::state::FILLED_TABLE),
            quote_literal(&table.table),
            quote_literal(column)
        ));
        list.push(format!(
            "UPDATE {t} SET {c} = ({value}) WHERE rowid > ?1 AND rowid <= ?2 AND {c} IS NULL"
        ));
    }
    list
}

/// The twins' copy: each twin gets its old column's value where they
/// differ.
fn copy_sql(table: &OnlineTable) -> String {
    let set: Vec<String> = table
        .renames
        .iter()
        .map(|(old, new)| format!("{} = {}", quote(new), quote(old)))
        .collect();
    let differ: Vec<String> = table
        .renames
        .iter()
        .map(|(old, new)| format!("{} IS NOT {}", quote(new), quote(old)))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE rowid > ?1 AND rowid <= ?2 AND ({})",
        quote(&table.table),
        set.join(", "),
        differ.join(" OR ")
    )
}
