//! Data-aware measurements: the exact numbers behind the data-loss (`DL*`)
//! and migration-failure (`MF*`) findings.
//!
//! [`measure`] answers every question a plan has about one table with a
//! single `SELECT` of aggregate expressions, so SQLite reads the table once
//! however many risky changes touch it, and nothing but the final counts
//! leaves SQLite. [`duplicates`] answers the one question that needs a
//! `GROUP BY` (MF001). Turning the numbers into findings is the validator's
//! job; this module only counts.
//!
//! Because each measurement is one statement, its counts come from one
//! consistent snapshot of the table even without an enclosing transaction.

mod duplicates;
mod lossy;
mod table;
#[cfg(test)]
mod tests;

use rusqlite::{Connection, StatementStatus};

use crate::error::{Error, Result};
use crate::ident::quote;
use crate::schema::Affinity;

#[cfg(test)]
pub(crate) use duplicates::DuplicateReport;
pub use duplicates::duplicates;
pub use lossy::lost_value_sql;

/// Most aggregate expressions put in one statement. SQLite allows 2,000
/// result columns by default; a table with more distinct questions than this
/// is measured in several statements (one scan each).
const MAX_AGGREGATES_PER_STATEMENT: usize = 1000;

/// One thing to count in a table. Column names are raw (unquoted) and are
/// matched against the live table the way SQLite matches them (ASCII
/// case-insensitively); an unknown column is an error, never a silent zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Question {
    /// Rows in the table (DL001: dropping a table that holds rows).
    RowCount,
    /// Non-NULL values in `column` (DL002: dropping a column with values).
    NonNull {
        /// The column.
        column: String,
    },
    /// NULL values in `column` (MF002/MF003: NOT NULL on a column holding
    /// NULLs).
    Nulls {
        /// The column.
        column: String,
    },
    /// Non-NULL values of `column` that a change of its declared type to
    /// `to_decl_type` would not preserve (DL003). The current type is read
    /// from the live table; see [`lost_value_sql`] for the rule.
    LossyConversion {
        /// The column.
        column: String,
        /// The new declared type, e.g. `INTEGER` or `DECIMAL(21,9)`.
        to_decl_type: String,
    },
}

impl Question {
    /// [`Question::NonNull`] for `column`.
    pub fn non_null(column: impl Into<String>) -> Question {
        Question::NonNull {
            column: column.into(),
        }
    }

    /// [`Question::Nulls`] for `column`.
    pub fn nulls(column: impl Into<String>) -> Question {
        Question::Nulls {
            column: column.into(),
        }
    }

    /// [`Question::LossyConversion`] of `column` to `to_decl_type`.
    pub fn lossy(column: impl Into<String>, to_decl_type: impl Into<String>) -> Question {
        Question::LossyConversion {
            column: column.into(),
            to_decl_type: to_decl_type.into(),
        }
    }
}

/// The answers [`measure`] found: one exact count per question asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    answers: Vec<(Question, u64)>,
    statements: Vec<String>,
    fullscan_steps: u64,
}

impl Answers {
    /// The count for `question`, or `None` if it was not asked.
    pub fn get(&self, question: &Question) -> Option<u64> {
        self.answers
            .iter()
            .find(|(q, _)| q == question)
            .map(|(_, n)| *n)
    }

    /// Every question asked, in the order given, with its count.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&Question, u64)> + '_ {
        self.answers.iter().map(|(q, n)| (q, *n))
    }

    /// The statements that were run: one for up to 1,000 distinct
    /// aggregates, none when no question was asked. Shown for transparency
    /// (dry-run output, `EXPLAIN QUERY PLAN`).
    #[cfg(test)]
    pub fn statements(&self) -> &[String] {
        &self.statements
    }

    /// Rows SQLite stepped through in full-table scans while answering
    /// (`SQLITE_STMTSTATUS_FULLSCAN_STEP`, summed over [`Self::statements`]).
    /// One pass over an `n`-row table is about `n`; a second scan would
    /// double it. Zero when SQLite could count without scanning.
    #[cfg(test)]
    pub fn fullscan_steps(&self) -> u64 {
        self.fullscan_steps
    }
}

/// How one question's count is obtained from the aggregate results.
enum Slot {
    /// Nothing can be counted (a type change that cannot lose values).
    Zero,
    /// The value of aggregate `i`.
    Agg(usize),
    /// Row count minus aggregate `i` (NULLs = rows − non-NULL values).
    RowsMinus(usize),
}

/// Answers all `questions` about `table` in one pass over it.
///
/// Builds one `SELECT count(*), count("c"), count(*) FILTER (WHERE <lost>),
/// ... FROM "table"` (identical questions share one aggregate; NULLs are
/// derived from the row count and `count("c")`) and runs it. No rows are
/// brought into Rust. `table` is an unqualified table or view name, found the
/// way SQLite finds it.
///
/// With no questions, the table is not read at all.
///
/// # Errors
///
/// [`Error::Sql`] if the table does not exist, a column does not exist
/// (source [`rusqlite::Error::InvalidColumnName`]), or SQLite fails.
pub fn measure(conn: &Connection, table: &str, questions: &[Question]) -> Result<Answers> {
    if questions.is_empty() {
        return Ok(Answers::default());
    }
    let columns = table::Columns::read(conn, table)?;

    // Aggregate 0 is always the row count.
    let mut aggregates: Vec<String> = vec!["count(*)".to_string()];
    let mut slots = Vec::with_capacity(questions.len());
    for question in questions {
        let slot = match question {
            Question::RowCount => Slot::Agg(0),
            Question::NonNull { column } => {
                let col = columns.get(column)?;
                Slot::Agg(intern(
                    format!("count({})", quote(&col.name)),
                    &mut aggregates,
                ))
            }
            Question::Nulls { column } => {
                let col = columns.get(column)?;
                Slot::RowsMinus(intern(
                    format!("count({})", quote(&col.name)),
                    &mut aggregates,
                ))
            }
            Question::LossyConversion {
                column,
                to_decl_type,
            } => {
                let col = columns.get(column)?;
                let from = Affinity::of(&col.decl_type);
                let to = Affinity::of(to_decl_type);
                match lost_value_sql(&col.name, from, to) {
                    None => Slot::Zero,
                    Some(lost) => Slot::Agg(intern(
                        format!("count(*) FILTER (WHERE {lost})"),
                        &mut aggregates,
                    )),
                }
            }
        };
        slots.push(slot);
    }

    let from = quote(table);
    let mut values: Vec<u64> = Vec::with_capacity(aggregates.len());
    let mut statements = Vec::new();
    let mut fullscan_steps = 0u64;
    for chunk in aggregates.chunks(MAX_AGGREGATES_PER_STATEMENT) {
        let sql = format!("SELECT {} FROM {from}", chunk.join(", "));
        let (counts, steps) = run_counts(conn, &sql, chunk.len())?;
        values.extend(counts);
        fullscan_steps = fullscan_steps.saturating_add(steps);
        statements.push(sql);
    }

    let value = |i: usize| values.get(i).copied().unwrap_or(0);
    let answers = questions
        .iter()
        .zip(slots)
        .map(|(q, slot)| {
            let n = match slot {
                Slot::Zero => 0,
                Slot::Agg(i) => value(i),
                Slot::RowsMinus(i) => value(0).saturating_sub(value(i)),
            };
            (q.clone(), n)
        })
        .collect();
    Ok(Answers {
        answers,
        statements,
        fullscan_steps,
    })
}

/// The index of `expr` in `aggregates`, added if new (identical questions
/// share one aggregate).
fn intern(expr: String, aggregates: &mut Vec<String>) -> usize {
    match aggregates.iter().position(|a| *a == expr) {
        Some(i) => i,
        None => {
            aggregates.push(expr);
            aggregates.len() - 1
        }
    }
}

/// Runs a one-row aggregate query and returns its `width` integer columns
/// and the statement's full-scan step count.
fn run_counts(conn: &Connection, sql: &str, width: usize) -> Result<(Vec<u64>, u64)> {
    let mut stmt = conn.prepare(sql).map_err(|e| Error::sql(sql, e))?;
    let counts = {
        let mut rows = stmt.query([]).map_err(|e| Error::sql(sql, e))?;
        let row = rows
            .next()
            .map_err(|e| Error::sql(sql, e))?
            .ok_or_else(|| Error::sql(sql, rusqlite::Error::QueryReturnedNoRows))?;
        (0..width)
            .map(|i| {
                row.get::<_, Option<i64>>(i)
                    .map(|n| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
            })
            .collect::<rusqlite::Result<Vec<u64>>>()
            .map_err(|e| Error::sql(sql, e))?
    };
    let steps = u64::try_from(stmt.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
    Ok((counts, steps))
}
