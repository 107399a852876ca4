//! Column lookup shared by the measurements.
//!
//! Every column a measurement names is checked against the live table first:
//! SQLite treats a double-quoted identifier that matches no column as a
//! string literal, so `count("missing")` would silently count every row.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::ident::quote;

const COLUMNS_SQL: &str = "SELECT name, type FROM pragma_table_xinfo(?1)";

/// One live column: its name as declared and its declared type.
pub(super) struct Column {
    pub name: String,
    pub decl_type: String,
}

/// The live columns of `table`, in a form that finds names the way SQLite
/// does (ASCII case-insensitively).
pub(super) struct Columns {
    table: String,
    columns: Vec<Column>,
}

impl Columns {
    /// Reads the columns of `table`; a missing table is an error carrying
    /// SQLite's own message.
    pub(super) fn read(conn: &Connection, table: &str) -> Result<Columns> {
        let mut stmt = conn
            .prepare(COLUMNS_SQL)
            .map_err(|e| Error::sql(COLUMNS_SQL, e))?;
        let columns = stmt
            .query_map([table], |row| {
                Ok(Column {
                    name: row.get(0)?,
                    decl_type: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::sql(COLUMNS_SQL, e))?;
        if columns.is_empty() {
            // No such table (or view): let SQLite say so in its own words.
            let probe = format!("SELECT 1 FROM {}", quote(table));
            conn.prepare(&probe).map_err(|e| Error::sql(&probe, e))?;
        }
        Ok(Columns {
            table: table.to_string(),
            columns,
        })
    }

    /// The live column called `name` (ASCII case-insensitive), or an error
    /// naming the table and the column.
    pub(super) fn get(&self, name: &str) -> Result<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::sql(
                    COLUMNS_SQL,
                    rusqlite::Error::InvalidColumnName(format!(
                        "no column {name:?} in table {:?}",
                        self.table
                    )),
                )
            })
    }
}
