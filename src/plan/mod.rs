//! Migration planning: turning schema differences into SQL steps.
//!
//! [`create_table`] edits the original `CREATE TABLE` text of a table so a
//! rebuild keeps everything it does not change.

pub mod create_table;
