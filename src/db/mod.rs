//! The lowest layer: working with one SQLite connection, independent of
//! DocTypes. Transactions and the write lock ([`lock`]), engine SQL run
//! under guard ([`sqlguard`]), and the lossless `CREATE TABLE` editor
//! ([`create_table`]) that rebuilds, rollbacks and restores share.
//! Everything above may import it; it imports nothing above it but the
//! error type and identifier quoting (`ident`).

pub mod create_table;
pub(crate) mod lock;
pub(crate) mod sqlguard;
