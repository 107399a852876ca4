//! Online migrations: expand, backfill, contract, so that two versions of
//! an application share one database during a rolling deploy.
//!
//! Both versions keep using the table by its own name; during an online
//! migration the table holds the union of the old and the new shape:
//!
//! - **expand** (`state::start` records it, [`expand`] plans it): what
//!   the new version needs and the old one ignores is added at once, in one
//!   transaction: new tables, new columns (those `ADD COLUMN` can add),
//!   new indexes, for each renamed column a twin under the new name with
//!   triggers that keep the two equal whatever either version writes, and
//!   for each column becoming NOT NULL triggers that fill the NULLs the old
//!   version writes;
//! - **backfill** ([`backfill`]): the rows that existed at start get the
//!   twin's value copied and their NULLs filled, in short write
//!   transactions of bounded rowid ranges, resumable from the last
//!   committed range;
//! - **contract** ([`contract`]): once the old version is retired, the
//!   twins are checked equal and dropped with their triggers, and a plain
//!   apply of the same DocTypes finishes the job (renames, type, default
//!   and nullability changes, dropped fields), so the result is the one a
//!   plain apply gives;
//! - **abort** ([`contract::abort`]): what expand added is dropped again,
//!   the filled NULLs come back, and the table is exactly what it was
//!   before, with every row written meanwhile (through either name) under
//!   the old names.
//!
//! The state lives in the database (`tabMigrationOnline`, one row per
//! DocType), written in the same transactions as the changes it records.

mod backfill;
pub(crate) mod contract;
mod expand;
mod state;

pub(crate) use backfill::backfill;
pub use backfill::{BackfillSettings, BackfillStats};
pub(crate) use expand::{Expansion, expand, fill_triggers, twin_triggers};
pub(crate) use state::{NewOnlineTable, ensure_tables, in_progress, read, record};
pub use state::{OnlineStatus, OnlineTable};
