//! A lossless editor for SQLite `CREATE TABLE` statements.
//!
//! A table rebuild (sqlite.org/lang_altertable.html, section 7) creates the
//! new table from the old table's `sql` in `sqlite_schema`. To keep
//! everything the migration does not change (invariant "Rebuild preserves": PRIMARY KEY, NOT
//! NULL, DEFAULT, CHECK, COLLATE, UNIQUE, foreign keys, generated columns,
//! constraint names, conflict clauses, even comments and spacing), the engine
//! *edits the original text* instead of regenerating the statement:
//!
//! ```text
//! let mut t = CreateTable::parse(
//!     "CREATE TABLE \"tabNote\" (name TEXT PRIMARY KEY, qty INT /* pcs */ NOT NULL DEFAULT 0)",
//! )?;
//! t.set_not_null("QTY", false)?;
//! t.set_default("qty", Some("-1"))?;
//! t.rename_table("tabNote__new")?;
//! assert_eq!(
//!     t.to_sql(),
//!     "CREATE TABLE \"tabNote__new\" (name TEXT PRIMARY KEY, qty INT /* pcs */ DEFAULT -1)"
//! );
//! ```
//!
//! (This example runs as the unit test `module_doc_example`.)
//!
//! The text is the source of truth: [`CreateTable`] records where each part
//! is, every edit splices replacement text into the statement and then parses
//! the result again, so the structure always describes exactly what
//! [`CreateTable::to_sql`] returns, and an edit that would produce something
//! unparsable is refused and leaves the statement unchanged. Untouched bytes
//! are never rewritten; new names are quoted with [`crate::ident::quote`].
//!
//! Column names are matched case-insensitively (ASCII only, like SQLite).
//! References to columns inside constraints are found on tokens, never by
//! substring search, so a column `a` is not confused with `'a'`, `ab` or
//! `abs(...)`.
//!
//! # Limitations
//!
//! - The parser is meant for statements SQLite accepted (the `sql` column of
//!   `sqlite_schema`). It rejects malformed text, but is more lenient than
//!   SQLite in places (a reserved word as a bare column name, odd words in a
//!   type name); SQLite itself catches those when the edited statement runs.
//! - Column references in CHECK and generated-column expressions are found
//!   token by token, without a full expression parser: a column whose name
//!   is an expression keyword (`match`, `like`, ...) written *unquoted* in an
//!   expression is not recognised, and quoted identifiers and `TRUE`/`FALSE`
//!   count as references when they match a column name (as SQLite resolves
//!   them).
//! - Only this statement is edited. Indexes, triggers and views that use a
//!   renamed or dropped column live elsewhere in the schema; the caller
//!   handles them.
//! - Values given to [`CreateTable::set_default`], [`CreateTable::set_type`]
//!   and [`CreateTable::add_column`] are checked for shape (one value, one
//!   type, one column definition, balanced parentheses), not for meaning: a
//!   non-constant DEFAULT or a type STRICT does not allow is reported by
//!   SQLite when the statement runs.

mod parser;
mod token;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::ident::quote;
use token::Span;

/// Why a statement could not be parsed or an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateTableError {
    /// The text is not a `CREATE TABLE` statement this parser understands.
    Syntax {
        /// Byte offset in the text where parsing stopped.
        position: usize,
        /// What the parser expected there.
        expected: String,
        /// What it found (a quoted snippet, or `end of input`).
        found: String,
    },
    /// A valid statement of a form the editor does not handle.
    Unsupported {
        /// Byte offset of the unsupported construct.
        position: usize,
        /// What it is.
        what: String,
    },
    /// The edit names a column the table does not have.
    NoSuchColumn(String),
    /// The edit would give the table two columns of the same name.
    DuplicateColumn(String),
    /// The column cannot be dropped: other parts of the statement use it.
    ColumnReferenced {
        /// The column.
        column: String,
        /// The constraints and expressions that mention it (see
        /// [`CreateTable::references_column`]).
        by: Vec<String>,
    },
    /// The edit is not possible for another reason (explained).
    InvalidEdit(String),
}

impl fmt::Display for CreateTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateTableError::Syntax {
                position,
                expected,
                found,
            } => write!(
                f,
                "CREATE TABLE syntax error at byte {position}: expected {expected}, found {found}"
            ),
            CreateTableError::Unsupported { position, what } => {
                write!(f, "unsupported CREATE TABLE at byte {position}: {what}")
            }
            CreateTableError::NoSuchColumn(c) => write!(f, "no such column: {}", quote(c)),
            CreateTableError::DuplicateColumn(c) => {
                write!(f, "the table already has a column named {}", quote(c))
            }
            CreateTableError::ColumnReferenced { column, by } => {
                write!(f, "column {} is used by {}", quote(column), by.join("; "))
            }
            CreateTableError::InvalidEdit(m) => write!(f, "invalid edit: {m}"),
        }
    }
}

impl std::error::Error for CreateTableError {}

/// A token inside a constraint that may name a column of this table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    span: Span,
    name: String,
}

/// A parsed `CREATE TABLE` statement that can be edited without losing
/// anything it does not edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTable {
    sql: String,
    /// The name self-referencing foreign keys use: the table's name as
    /// first parsed, kept across [`CreateTable::rename_table`].
    home: String,
    temporary: bool,
    if_not_exists: bool,
    schema: Option<String>,
    name: String,
    name_span: Span,
    columns: Vec<Column>,
    constraints: Vec<TableConstraint>,
    without_rowid: bool,
    strict: bool,
    /// Byte offset of the `)` that closes the column list.
    body_close: usize,
    /// Byte offset where each item (column or table constraint) starts.
    item_starts: Vec<usize>,
    /// Where [`CreateTable::add_column`] inserts (as SQLite's ADD COLUMN does).
    add_column_at: usize,
}

/// One column definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    name_span: Span,
    decl_type: String,
    type_span: Option<Span>,
    text: String,
    span: Span,
    constraints: Vec<ColumnConstraint>,
}

/// What a column constraint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnConstraintKind {
    /// `PRIMARY KEY [ASC|DESC] [ON CONFLICT ..] [AUTOINCREMENT]`.
    PrimaryKey,
    /// `NOT NULL [ON CONFLICT ..]`.
    NotNull,
    /// `NULL [ON CONFLICT ..]` (explicitly nullable; no effect in SQLite).
    Null,
    /// `UNIQUE [ON CONFLICT ..]`.
    Unique,
    /// `CHECK (expr)`.
    Check,
    /// `DEFAULT value`.
    Default,
    /// `COLLATE name`.
    Collate,
    /// `REFERENCES parent [(cols)] [ON DELETE ..] ...`.
    References,
    /// `[GENERATED ALWAYS] AS (expr) [STORED|VIRTUAL]`.
    Generated,
    /// A `CONSTRAINT name` followed by no constraint (SQLite accepts it).
    NameOnly,
}

/// One column constraint, with its `CONSTRAINT name` prefix if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnConstraint {
    kind: ColumnConstraintKind,
    name: Option<String>,
    text: String,
    span: Span,
    /// DEFAULT value, COLLATE name, or the `( ... )` of CHECK / GENERATED.
    arg: Option<Span>,
    autoincrement: bool,
    refs: Vec<Ref>,
    /// Table qualifiers of qualified column names in CHECK / GENERATED.
    quals: Vec<Ref>,
}

/// What a table constraint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableConstraintKind {
    /// `PRIMARY KEY (cols) [ON CONFLICT ..]`.
    PrimaryKey,
    /// `UNIQUE (cols) [ON CONFLICT ..]`.
    Unique,
    /// `CHECK (expr) [ON CONFLICT ..]`.
    Check,
    /// `FOREIGN KEY (cols) REFERENCES parent ...`.
    ForeignKey,
    /// A `CONSTRAINT name` followed by no constraint (SQLite accepts it).
    NameOnly,
}

/// One table constraint, with its `CONSTRAINT name` prefix if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConstraint {
    kind: TableConstraintKind,
    name: Option<String>,
    text: String,
    span: Span,
    columns: Vec<String>,
    foreign_table: Option<String>,
    autoincrement: bool,
    refs: Vec<Ref>,
    /// Table qualifiers of qualified column names in CHECK / GENERATED.
    quals: Vec<Ref>,
}

impl CreateTable {
    /// Parses a `CREATE [TEMP] TABLE [IF NOT EXISTS] [schema.]name (...)
    /// [WITHOUT ROWID][, STRICT]` statement (a trailing `;` is allowed).
    /// `CREATE TABLE ... AS SELECT` is refused.
    pub fn parse(sql: &str) -> Result<Self, CreateTableError> {
        parser::parse_statement(sql, None)
    }

    /// The statement text, with all edits applied.
    pub fn to_sql(&self) -> String {
        self.sql.clone()
    }

    /// The statement text, borrowed.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.sql
    }

    /// The table name, unquoted.
    #[cfg(test)]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema qualifier (`main`, `temp`, ...), unquoted, if written.
    #[cfg(test)]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// True for `CREATE TEMP TABLE` / `CREATE TEMPORARY TABLE`.
    #[cfg(test)]
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// True when the statement says `IF NOT EXISTS`.
    #[cfg(test)]
    pub fn if_not_exists(&self) -> bool {
        self.if_not_exists
    }

    /// The columns, in declaration order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column named `name` (ASCII case-insensitive).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The table constraints, in order.
    #[cfg(test)]
    pub fn table_constraints(&self) -> &[TableConstraint] {
        &self.constraints
    }

    /// True when the table uses `AUTOINCREMENT` (it then has a row in
    /// `sqlite_sequence` that a rebuild must carry over).
    #[cfg(test)]
    pub fn is_autoincrement(&self) -> bool {
        self.columns
            .iter()
            .flat_map(|c| &c.constraints)
            .any(|k| k.autoincrement)
            || self.constraints.iter().any(|k| k.autoincrement)
    }

    /// True for `WITHOUT ROWID` tables.
    pub fn without_rowid(&self) -> bool {
        self.without_rowid
    }

    /// True for `STRICT` tables.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// What in this statement, apart from `column`'s own definition, mentions
    /// `column`: table constraints (PRIMARY KEY, UNIQUE, FOREIGN KEY, CHECK)
    /// by their text, and CHECK / generated-column expressions and
    /// self-referencing REFERENCES of other columns as `"col" <constraint>`.
    /// Matching is on identifier tokens, ASCII case-insensitive. Empty if the
    /// column is used nowhere else (or does not exist).
    pub fn references_column(&self, column: &str) -> Vec<String> {
        let hit = |refs: &[Ref]| refs.iter().any(|r| r.name.eq_ignore_ascii_case(column));
        let mut out = Vec::new();
        for c in &self.columns {
            if c.name.eq_ignore_ascii_case(column) {
                continue;
            }
            for k in &c.constraints {
                if hit(&k.refs) {
                    out.push(format!("{} {}", quote(&c.name), k.text));
                }
            }
        }
        for k in &self.constraints {
            if hit(&k.refs) {
                out.push(k.text.clone());
            }
        }
        out
    }

    /// Renames the table (the rebuild creates the new table under a temporary
    /// name), including table qualifiers in its CHECK and generated-column
    /// expressions (`CHECK (t.a > 0)`). The schema qualifier stays.
    /// Self-referencing foreign keys keep naming the original table, so that
    /// after the final `ALTER TABLE RENAME` of the rebuild they point at the
    /// table itself again.
    pub fn rename_table(&mut self, new_name: &str) -> Result<(), CreateTableError> {
        if new_name.is_empty() {
            return Err(CreateTableError::InvalidEdit(
                "the new table name is empty".into(),
            ));
        }
        let quoted = quote(new_name);
        let mut edits = vec![(self.name_span, quoted.clone())];
        let quals = self
            .columns
            .iter()
            .flat_map(|c| c.constraints.iter().flat_map(|k| &k.quals))
            .chain(self.constraints.iter().flat_map(|k| &k.quals));
        for q in quals {
            if q.name.eq_ignore_ascii_case(&self.name) {
                edits.push((q.span, quoted.clone()));
            }
        }
        self.apply(edits)
    }

    /// Renames a column and every reference to it in this statement: table
    /// constraint column lists, CHECK and generated-column expressions, and
    /// parent columns of self-referencing foreign keys (as SQLite's own
    /// `ALTER TABLE RENAME COLUMN` does).
    pub fn rename_column(&mut self, old: &str, new: &str) -> Result<(), CreateTableError> {
        let col = self.find(old)?;
        if new.is_empty() {
            return Err(CreateTableError::InvalidEdit(
                "the new column name is empty".into(),
            ));
        }
        if let Some(other) = self.column(new)
            && !other.name.eq_ignore_ascii_case(&col.name)
        {
            return Err(CreateTableError::DuplicateColumn(new.to_string()));
        }
        let quoted = quote(new);
        let mut edits = vec![(col.name_span, quoted.clone())];
        let refs = self
            .columns
            .iter()
            .flat_map(|c| c.constraints.iter().flat_map(|k| &k.refs))
            .chain(self.constraints.iter().flat_map(|k| &k.refs));
        for r in refs {
            if r.name.eq_ignore_ascii_case(old) {
                edits.push((r.span, quoted.clone()));
            }
        }
        self.apply(edits)
    }

    /// Removes a column definition. Refused when it is the only column, or
    /// when anything else in the statement uses it (the error lists what, see
    /// [`CreateTable::references_column`]); the caller must change those first.
    pub fn drop_column(&mut self, name: &str) -> Result<(), CreateTableError> {
        let col = self.find(name)?;
        let by = self.references_column(&col.name);
        if !by.is_empty() {
            return Err(CreateTableError::ColumnReferenced {
                column: col.name.clone(),
                by,
            });
        }
        if self.columns.len() == 1 {
            return Err(CreateTableError::InvalidEdit(format!(
                "cannot drop {}: a table needs at least one column",
                quote(&col.name)
            )));
        }
        let i = self
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&col.name))
            .unwrap_or(0);
        let edits = match self.item_starts.get(i + 1) {
            // Something follows: remove the column, its comma, and the rest of
            // its line if that is only spaces and a `--` comment (which then
            // is about this column), so the next item keeps its own indentation.
            Some(&next) => {
                let end = self.after_separator(col.span.end, next);
                vec![(Span::new(col.span.start, end), String::new())]
            }
            // The last item: remove the comma before it and the column with
            // the whitespace before it; comments stay.
            None => {
                let Some(prev_end) = i
                    .checked_sub(1)
                    .and_then(|p| self.columns.get(p))
                    .map(|c| c.span.end)
                else {
                    return Err(CreateTableError::InvalidEdit(format!(
                        "cannot drop {}: a table needs at least one column",
                        quote(&col.name)
                    )));
                };
                let comma = self
                    .sql
                    .get(prev_end..col.span.start)
                    .and_then(|gap| token::tokenize(gap).ok().map(|t| (gap, t)))
                    .and_then(|(gap, toks)| {
                        toks.into_iter()
                            .find(|t| t.kind == token::TokenKind::Punct && t.span.of(gap) == ",")
                    })
                    .map(|t| Span::new(prev_end + t.span.start, prev_end + t.span.end));
                let Some(comma) = comma else {
                    return Err(CreateTableError::InvalidEdit(
                        "no comma before the column (internal error)".into(),
                    ));
                };
                vec![
                    (comma, String::new()),
                    (self.with_leading_space(col.span), String::new()),
                ]
            }
        };
        self.apply(edits)
    }

    /// End of the removal of an item ending at `end` when the next item
    /// starts at `next`: past the comma, spaces, an optional `--` comment and
    /// one line break with the next line's indentation; stops before any
    /// `/* */` comment (it may be about the next item).
    fn after_separator(&self, end: usize, next: usize) -> usize {
        let b = self.sql.as_bytes();
        let mut i = end;
        while i < next && b[i] != b',' {
            i += 1;
        }
        i += 1;
        let skip_blank = |mut i: usize| {
            while i < next && matches!(b[i], b' ' | b'\t') {
                i += 1;
            }
            i
        };
        i = skip_blank(i);
        if i + 1 < next && b[i] == b'-' && b[i + 1] == b'-' {
            while i < next && b[i] != b'\n' {
                i += 1;
            }
        }
        if i < next && b[i] == b'\r' {
            i += 1;
        }
        if i < next && b[i] == b'\n' {
            i = skip_blank(i + 1);
        }
        if i > next { next } else { i }
    }

    /// Adds a column definition (`name type constraints...`, as raw SQL from
    /// the planner) after the last column, before any table constraint, at
    /// the same place and in the same form (`, definition`) as SQLite's
    /// `ALTER TABLE ADD COLUMN`. The definition must parse
    /// as exactly one column and must not reuse an existing name.
    pub fn add_column(&mut self, definition_sql: &str) -> Result<(), CreateTableError> {
        let def = definition_sql.trim_matches(|c: char| c.is_ascii_whitespace());
        let col = parser::parse_column_definition(def, &self.home)?;
        if self.column(&col.name).is_some() {
            return Err(CreateTableError::DuplicateColumn(col.name));
        }
        let at = self.add_column_at;
        let before = self.clone();
        self.apply(vec![(Span::new(at, at), format!(", {def}"))])?;
        if self.columns.len() != before.columns.len() + 1 {
            *self = before;
            return Err(CreateTableError::InvalidEdit(format!(
                "{def:?} is not a single column definition"
            )));
        }
        Ok(())
    }

    /// Replaces the declared type (only the type tokens; constraints stay).
    /// An empty `new_type` removes the type. The text must be a type name
    /// such as `TEXT`, `VARCHAR(140)` or `DECIMAL(21, 9)`.
    pub fn set_type(&mut self, name: &str, new_type: &str) -> Result<(), CreateTableError> {
        let col = self.find(name)?;
        let new_type = new_type.trim_matches(|c: char| c.is_ascii_whitespace());
        if !new_type.is_empty() {
            parser::check_type_name(new_type)?;
        }
        let edit = match (col.type_span, new_type.is_empty()) {
            (Some(span), false) => (span, new_type.to_string()),
            (Some(span), true) => (self.with_leading_space(span), String::new()),
            (None, false) => (
                Span::new(col.name_span.end, col.name_span.end),
                format!(" {new_type}"),
            ),
            (None, true) => return Ok(()),
        };
        self.apply(vec![edit])
    }

    /// Makes the column `NOT NULL` (appending ` NOT NULL` and removing any
    /// explicit `NULL` constraint) or nullable (removing every `NOT NULL`
    /// with its `ON CONFLICT` clause and `CONSTRAINT name` prefix). A no-op
    /// when the column already is as asked. (A PRIMARY KEY column of a
    /// WITHOUT ROWID table stays NOT NULL regardless.)
    pub fn set_not_null(&mut self, name: &str, not_null: bool) -> Result<(), CreateTableError> {
        let col = self.find(name)?;
        let has = col.has_constraint(ColumnConstraintKind::NotNull);
        let mut edits = Vec::new();
        if not_null {
            for k in &col.constraints {
                if k.kind == ColumnConstraintKind::Null {
                    edits.push((self.with_leading_space(k.span), String::new()));
                }
            }
            if !has {
                edits.push((
                    Span::new(col.span.end, col.span.end),
                    " NOT NULL".to_string(),
                ));
            }
        } else {
            for k in &col.constraints {
                if k.kind == ColumnConstraintKind::NotNull {
                    edits.push((self.with_leading_space(k.span), String::new()));
                }
            }
        }
        if edits.is_empty() {
            return Ok(());
        }
        self.apply(edits)
    }

    /// Sets the DEFAULT (`Some(value)`: replaces the value of an existing
    /// DEFAULT, keeping its `CONSTRAINT name`, or appends ` DEFAULT value`) or
    /// removes it (`None`). The value is SQL: a literal (`'it''s'`, `-1.5`,
    /// `X'00'`, `NULL`, `TRUE`, `CURRENT_TIMESTAMP`) or a parenthesized
    /// expression; use [`crate::ident::quote_literal`] for text.
    pub fn set_default(&mut self, name: &str, value: Option<&str>) -> Result<(), CreateTableError> {
        let col = self.find(name)?;
        let existing: Vec<&ColumnConstraint> = col
            .constraints
            .iter()
            .filter(|k| k.kind == ColumnConstraintKind::Default)
            .collect();
        let mut edits = Vec::new();
        match value {
            Some(v) => {
                let v = v.trim_matches(|c: char| c.is_ascii_whitespace());
                if col.has_constraint(ColumnConstraintKind::Generated) {
                    return Err(CreateTableError::InvalidEdit(format!(
                        "generated column {} cannot have a DEFAULT",
                        quote(&col.name)
                    )));
                }
                parser::check_default_value(v)?;
                match existing.split_first() {
                    Some((first, rest)) => {
                        let arg = first.arg.unwrap_or(first.span);
                        edits.push((arg, v.to_string()));
                        for k in rest {
                            edits.push((self.with_leading_space(k.span), String::new()));
                        }
                    }
                    None => edits.push((
                        Span::new(col.span.end, col.span.end),
                        format!(" DEFAULT {v}"),
                    )),
                }
            }
            None => {
                for k in existing {
                    edits.push((self.with_leading_space(k.span), String::new()));
                }
            }
        }
        if edits.is_empty() {
            return Ok(());
        }
        self.apply(edits)
    }

    /// Adds `AUTOINCREMENT` to the column's `PRIMARY KEY` constraint or
    /// removes it. The column must have a column-level PRIMARY KEY (SQLite
    /// accepts AUTOINCREMENT only on an INTEGER PRIMARY KEY; set the type
    /// first). A no-op when the column already is as asked.
    pub fn set_autoincrement(&mut self, name: &str, on: bool) -> Result<(), CreateTableError> {
        const KEYWORD: &str = "AUTOINCREMENT";
        let col = self.find(name)?;
        let Some(pk) = col
            .constraints
            .iter()
            .find(|k| k.kind == ColumnConstraintKind::PrimaryKey)
        else {
            return Err(CreateTableError::InvalidEdit(format!(
                "column {} has no PRIMARY KEY constraint to carry AUTOINCREMENT",
                quote(&col.name)
            )));
        };
        let edit = match (pk.autoincrement, on) {
            (true, true) | (false, false) => return Ok(()),
            (false, true) => (Span::new(pk.span.end, pk.span.end), format!(" {KEYWORD}")),
            (true, false) => {
                // AUTOINCREMENT is the constraint's last token.
                let start = pk.span.end.saturating_sub(KEYWORD.len());
                let word = Span::new(start, pk.span.end);
                if !word.of(&self.sql).eq_ignore_ascii_case(KEYWORD) {
                    return Err(CreateTableError::InvalidEdit(format!(
                        "cannot find AUTOINCREMENT at the end of {:?}",
                        pk.text
                    )));
                }
                (self.with_leading_space(word), String::new())
            }
        };
        self.apply(vec![edit])
    }

    /// Sets the column's collation (`COLLATE "name"`, replacing an existing
    /// one) or removes it (`None`).
    #[cfg(test)]
    pub fn set_collation(
        &mut self,
        name: &str,
        collation: Option<&str>,
    ) -> Result<(), CreateTableError> {
        let col = self.find(name)?;
        let existing: Vec<&ColumnConstraint> = col
            .constraints
            .iter()
            .filter(|k| k.kind == ColumnConstraintKind::Collate)
            .collect();
        let mut edits = Vec::new();
        match collation {
            Some("") => {
                return Err(CreateTableError::InvalidEdit(
                    "the collation name is empty".into(),
                ));
            }
            Some(c) => match existing.split_first() {
                Some((first, rest)) => {
                    edits.push((first.arg.unwrap_or(first.span), quote(c)));
                    for k in rest {
                        edits.push((self.with_leading_space(k.span), String::new()));
                    }
                }
                None => edits.push((
                    Span::new(col.span.end, col.span.end),
                    format!(" COLLATE {}", quote(c)),
                )),
            },
            None => {
                for k in existing {
                    edits.push((self.with_leading_space(k.span), String::new()));
                }
            }
        }
        if edits.is_empty() {
            return Ok(());
        }
        self.apply(edits)
    }

    fn find(&self, name: &str) -> Result<Column, CreateTableError> {
        self.column(name)
            .cloned()
            .ok_or_else(|| CreateTableError::NoSuchColumn(name.to_string()))
    }

    /// Extends `span` backwards over the whitespace (not comments) before it,
    /// so that removing a constraint does not leave a double space.
    fn with_leading_space(&self, span: Span) -> Span {
        let b = self.sql.as_bytes();
        let mut start = span.start.min(b.len());
        while start > 0 && matches!(b[start - 1], b' ' | b'\t' | b'\n' | b'\x0c' | b'\r') {
            start -= 1;
        }
        Span::new(start, span.end)
    }

    /// Splices the replacements into the text and parses the result. On
    /// failure nothing changes.
    fn apply(&mut self, mut edits: Vec<(Span, String)>) -> Result<(), CreateTableError> {
        edits.sort_by_key(|(s, _)| (s.start, s.end));
        let mut out = String::with_capacity(self.sql.len() + 32);
        let mut cursor = 0;
        for (span, text) in &edits {
            let piece = self.sql.get(cursor..span.start);
            match piece {
                Some(p) if span.start <= span.end && span.end <= self.sql.len() => out.push_str(p),
                _ => {
                    return Err(CreateTableError::InvalidEdit(
                        "overlapping or out-of-range edits (internal error)".into(),
                    ));
                }
            }
            out.push_str(text);
            cursor = span.end;
        }
        out.push_str(self.sql.get(cursor..).unwrap_or(""));
        let parsed = parser::parse_statement(&out, Some(&self.home)).map_err(|e| {
            CreateTableError::InvalidEdit(format!(
                "the edited statement does not parse ({e}); statement: {out}"
            ))
        })?;
        *self = parsed;
        Ok(())
    }
}

impl fmt::Display for CreateTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

impl std::str::FromStr for CreateTable {
    type Err = CreateTableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreateTable::parse(s)
    }
}

/// Parses a `CREATE TABLE` statement; same as [`CreateTable::parse`].
pub fn parse(sql: &str) -> Result<CreateTable, CreateTableError> {
    CreateTable::parse(sql)
}

impl Column {
    /// The column name, unquoted.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared type exactly as written (`VARCHAR(140)`); empty if none.
    #[cfg(test)]
    pub fn decl_type(&self) -> &str {
        &self.decl_type
    }

    /// The column constraints, in order.
    #[cfg(test)]
    pub fn constraints(&self) -> &[ColumnConstraint] {
        &self.constraints
    }

    /// True if the column has a constraint of this kind.
    pub fn has_constraint(&self, kind: ColumnConstraintKind) -> bool {
        self.constraints.iter().any(|k| k.kind == kind)
    }

    /// True if the column is declared NOT NULL.
    #[cfg(test)]
    pub fn is_not_null(&self) -> bool {
        self.has_constraint(ColumnConstraintKind::NotNull)
    }

    /// True for generated (`AS (...)`) columns.
    #[cfg(test)]
    pub fn is_generated(&self) -> bool {
        self.has_constraint(ColumnConstraintKind::Generated)
    }

    /// The DEFAULT value as written (`0`, `-1`, `'x'`, `(expr)`), if any.
    #[cfg(test)]
    pub fn default_value(&self) -> Option<&str> {
        self.constraints
            .iter()
            .find(|k| k.kind == ColumnConstraintKind::Default)
            .and_then(ColumnConstraint::argument)
    }

    /// The collation name, unquoted, if the column declares one.
    #[cfg(test)]
    pub fn collation(&self) -> Option<String> {
        self.constraints
            .iter()
            .find(|k| k.kind == ColumnConstraintKind::Collate)
            .and_then(ColumnConstraint::argument)
            .map(token::unquote)
    }
}

impl ColumnConstraint {
    /// What the constraint is.
    #[cfg(test)]
    pub fn kind(&self) -> ColumnConstraintKind {
        self.kind
    }

    /// The name from a `CONSTRAINT name` prefix, unquoted.
    #[cfg(test)]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The constraint as written, including its `CONSTRAINT name` prefix.
    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The DEFAULT value, the COLLATE name, or the parenthesized expression
    /// of CHECK / GENERATED, as written.
    #[cfg(test)]
    pub fn argument(&self) -> Option<&str> {
        let arg = self.arg?;
        let offset = arg.start.checked_sub(self.span.start)?;
        self.text
            .get(offset..offset + arg.end.saturating_sub(arg.start))
    }

    /// True for `PRIMARY KEY ... AUTOINCREMENT`.
    #[cfg(test)]
    pub fn is_autoincrement(&self) -> bool {
        self.autoincrement
    }
}

impl TableConstraint {
    /// What the constraint is.
    #[cfg(test)]
    pub fn kind(&self) -> TableConstraintKind {
        self.kind
    }

    /// The name from a `CONSTRAINT name` prefix, unquoted.
    #[cfg(test)]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The columns of a PRIMARY KEY, UNIQUE, or (child side of a) FOREIGN
    /// KEY, unquoted; empty for CHECK.
    #[cfg(test)]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The parent table of a FOREIGN KEY, unquoted.
    #[cfg(test)]
    pub fn foreign_table(&self) -> Option<&str> {
        self.foreign_table.as_deref()
    }
}
