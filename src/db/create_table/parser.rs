//! Recursive-descent parser from tokens to the [`CreateTable`] structure.
//!
//! The grammar is SQLite's (`parse.y`: `create_table`, `columnlist`,
//! `ccons`, `conslist`, `tcons`, `refargs`, `table_option_set`), restricted to
//! what a `CREATE TABLE` can hold. The parser only records *where* things are;
//! the text itself stays in the statement, which is what makes lossless
//! editing possible. Column references inside constraints are recorded as
//! [`Ref`]s so that renames and dependency checks work on tokens, never on
//! substrings.

use super::token::{Span, Token, TokenKind, syntax, tokenize, unquote};
use super::{
    Column, ColumnConstraint, ColumnConstraintKind, CreateTable, CreateTableError, Ref,
    TableConstraint, TableConstraintKind,
};

/// Words that end a column's type and start a column constraint.
const COLUMN_CONSTRAINT_START: [&str; 11] = [
    "CONSTRAINT",
    "PRIMARY",
    "NOT",
    "NULL",
    "UNIQUE",
    "CHECK",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
    "AS",
];

/// Words that start a table constraint (an item that is not a column).
const TABLE_CONSTRAINT_START: [&str; 5] = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

/// Bare words with a keyword meaning inside an expression; never a column
/// reference when unquoted. (`TRUE`/`FALSE` are absent on purpose: SQLite
/// resolves them to a column of that name when one exists.)
const EXPR_KEYWORDS: [&str; 27] = [
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "LIKE",
    "GLOB",
    "MATCH",
    "REGEXP",
    "ESCAPE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "AS",
    "COLLATE",
    "EXISTS",
    "SELECT",
    "ISNULL",
    "NOTNULL",
    "CURRENT_TIME",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
];

const CONFLICT_ACTIONS: [&str; 5] = ["ROLLBACK", "ABORT", "FAIL", "IGNORE", "REPLACE"];

fn is_one_of(word: &str, set: &[&str]) -> bool {
    set.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Parses a whole statement. `home` is the name self-referencing foreign keys
/// use (the table's name before any [`CreateTable::rename_table`]); `None`
/// means the statement's own table name.
pub(super) fn parse_statement(
    sql: &str,
    home: Option<&str>,
) -> Result<CreateTable, CreateTableError> {
    let all = tokenize(sql)?;
    let toks: Vec<Token> = all.into_iter().filter(|t| !t.is_trivia()).collect();
    let mut p = Parser::new(sql, &toks, toks.len());

    p.expect_word("CREATE")?;
    let temporary = p.eat_word("TEMP") || p.eat_word("TEMPORARY");
    p.expect_word("TABLE")?;
    let mut if_not_exists = false;
    if p.eat_word("IF") {
        p.expect_word("NOT")?;
        p.expect_word("EXISTS")?;
        if_not_exists = true;
    }
    let (mut name, mut name_span) = p.name("a table name")?;
    let mut schema = None;
    if p.eat_punct(".") {
        schema = Some(name);
        (name, name_span) = p.name("a table name after the schema name")?;
    }
    if p.at_word("AS") {
        return Err(CreateTableError::Unsupported {
            position: p.position(),
            what: "CREATE TABLE ... AS SELECT (the statement has no column definitions to edit)"
                .into(),
        });
    }
    let home = home.map(str::to_string).unwrap_or_else(|| name.clone());
    p.expect_punct("(", "'(' to open the column list")?;

    // Find the items: runs of tokens between top-level commas, up to the
    // closing parenthesis of the column list.
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut item_start = p.pos;
    let close = loop {
        let Some(t) = toks.get(p.pos) else {
            return Err(syntax(sql, sql.len(), "')' to close the column list"));
        };
        if t.kind == TokenKind::Punct {
            match t.span.of(sql) {
                "(" => depth += 1,
                ")" if depth == 0 => {
                    items.push((item_start, p.pos));
                    break p.pos;
                }
                ")" => depth -= 1,
                "," if depth == 0 => {
                    items.push((item_start, p.pos));
                    item_start = p.pos + 1;
                }
                _ => {}
            }
        }
        p.pos += 1;
    };

    let mut columns: Vec<Column> = Vec::new();
    let mut constraints: Vec<TableConstraint> = Vec::new();
    for &(start, end) in &items {
        let mut ip = Parser::new(sql, &toks, end);
        ip.pos = start;
        let Some(first) = ip.peek() else {
            return Err(ip.err("a column definition or table constraint"));
        };
        let starts_constraint =
            first.kind == TokenKind::Word && is_one_of(first.span.of(sql), &TABLE_CONSTRAINT_START);
        if starts_constraint {
            ip.table_constraints(&home, &mut constraints)?;
        } else if !constraints.is_empty() {
            return Err(ip.err(
                "a table constraint (column definitions must come before table constraints)",
            ));
        } else {
            columns.push(ip.column(&home)?);
        }
    }

    // Table options and the end of the statement.
    p.pos = close + 1;
    let (mut without_rowid, mut strict) = (false, false);
    if p.peek().is_some() && !p.at_punct(";") {
        loop {
            if p.eat_word("WITHOUT") {
                p.expect_word("ROWID")?;
                without_rowid = true;
            } else if p.eat_word("STRICT") {
                strict = true;
            } else {
                return Err(p.err("a table option (WITHOUT ROWID or STRICT)"));
            }
            if !p.eat_punct(",") {
                break;
            }
        }
    }
    p.eat_punct(";");
    if p.peek().is_some() {
        return Err(p.err("the end of the statement"));
    }

    let body_close = toks[close].span.start;
    let item_starts: Vec<usize> = items
        .iter()
        .filter_map(|&(start, _)| toks.get(start).map(|t| t.span.start))
        .collect();
    // Where SQLite's ADD COLUMN inserts: at the comma before the first table
    // constraint, or at the closing parenthesis.
    let add_column_at = items
        .get(columns.len())
        .and_then(|&(start, _)| start.checked_sub(1))
        .and_then(|i| toks.get(i))
        .map(|t| t.span.start)
        .unwrap_or(body_close);
    Ok(CreateTable {
        sql: sql.to_string(),
        home,
        temporary,
        if_not_exists,
        schema,
        name,
        name_span,
        columns,
        constraints,
        without_rowid,
        strict,
        body_close,
        item_starts,
        add_column_at,
    })
}

/// Parses `text` as exactly one column definition (for `add_column`).
pub(super) fn parse_column_definition(text: &str, home: &str) -> Result<Column, CreateTableError> {
    let toks = significant(text)?;
    check_balanced(text, &toks, "a single column definition")?;
    let mut p = Parser::new(text, &toks, toks.len());
    if let Some(first) = p.peek()
        && first.kind == TokenKind::Word
        && is_one_of(first.span.of(text), &TABLE_CONSTRAINT_START)
    {
        return Err(p.err("a column definition (this is a table constraint)"));
    }
    p.column(home)
}

/// Checks that `text` is exactly one DEFAULT value (for `set_default`).
pub(super) fn check_default_value(text: &str) -> Result<(), CreateTableError> {
    let toks = significant(text)?;
    check_balanced(text, &toks, "a single DEFAULT value")?;
    let mut p = Parser::new(text, &toks, toks.len());
    p.default_value()?;
    p.expect_end("the end of the DEFAULT value (wrap expressions in parentheses)")
}

/// Checks that `text` is exactly a type name (for `set_type`).
pub(super) fn check_type_name(text: &str) -> Result<(), CreateTableError> {
    let toks = significant(text)?;
    check_balanced(text, &toks, "a type name")?;
    let mut p = Parser::new(text, &toks, toks.len());
    if p.type_name()?.is_none() {
        return Err(p.err("a type name"));
    }
    p.expect_end("the end of the type name")
}

fn significant(text: &str) -> Result<Vec<Token>, CreateTableError> {
    Ok(tokenize(text)?
        .into_iter()
        .filter(|t| !t.is_trivia())
        .collect())
}

/// Rejects fragments with unbalanced parentheses, top-level commas or `;`,
/// which could otherwise escape the item they are inserted into.
fn check_balanced(text: &str, toks: &[Token], what: &str) -> Result<(), CreateTableError> {
    let mut depth = 0usize;
    for t in toks {
        if t.kind != TokenKind::Punct {
            continue;
        }
        match t.span.of(text) {
            "(" => depth += 1,
            ")" if depth == 0 => return Err(syntax(text, t.span.start, what)),
            ")" => depth -= 1,
            "," if depth == 0 => return Err(syntax(text, t.span.start, what)),
            ";" => return Err(syntax(text, t.span.start, what)),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(syntax(text, text.len(), "')' (unbalanced parentheses)"));
    }
    Ok(())
}

struct Parser<'a> {
    src: &'a str,
    toks: &'a [Token],
    pos: usize,
    /// Tokens at or after `end` are out of reach (the rest of the statement).
    end: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, toks: &'a [Token], end: usize) -> Self {
        Parser {
            src,
            toks,
            pos: 0,
            end: end.min(toks.len()),
        }
    }

    fn peek(&self) -> Option<Token> {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> Option<Token> {
        let i = self.pos + n;
        if i < self.end {
            self.toks.get(i).copied()
        } else {
            None
        }
    }

    fn text(&self, t: Token) -> &'a str {
        t.span.of(self.src)
    }

    fn is_word(&self, t: Option<Token>, kw: &str) -> bool {
        t.is_some_and(|t| t.kind == TokenKind::Word && self.text(t).eq_ignore_ascii_case(kw))
    }

    fn at_word(&self, kw: &str) -> bool {
        self.is_word(self.peek(), kw)
    }

    fn at_punct(&self, p: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.kind == TokenKind::Punct && self.text(t) == p)
    }

    /// Byte offset of the next token, or of the token that ends the current
    /// range, or the end of the text.
    fn position(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.span.start)
            .unwrap_or(self.src.len())
    }

    /// End of the last consumed token.
    fn last_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map(|t| t.span.end)
            .unwrap_or(0)
    }

    fn err(&self, expected: &str) -> CreateTableError {
        syntax(self.src, self.position(), expected)
    }

    fn eat_word(&mut self, kw: &str) -> bool {
        if self.at_word(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, kw: &str) -> Result<(), CreateTableError> {
        if self.eat_word(kw) {
            Ok(())
        } else {
            Err(self.err(kw))
        }
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.at_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str, what: &str) -> Result<(), CreateTableError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn expect_end(&self, what: &str) -> Result<(), CreateTableError> {
        if self.peek().is_some() {
            Err(self.err(what))
        } else {
            Ok(())
        }
    }

    /// A name: bare word, quoted identifier or string literal.
    fn name(&mut self, what: &str) -> Result<(String, Span), CreateTableError> {
        match self.peek() {
            Some(t) if t.is_name() => {
                self.pos += 1;
                Ok((unquote(self.text(t)), t.span))
            }
            _ => Err(self.err(what)),
        }
    }

    fn eat_one_of(&mut self, set: &[&str]) -> bool {
        if let Some(t) = self.peek()
            && t.kind == TokenKind::Word
            && is_one_of(self.text(t), set)
        {
            self.pos += 1;
            return true;
        }
        false
    }

    /// A parenthesized group with balanced parentheses. Returns the token
    /// index range strictly inside the parentheses.
    fn group(&mut self, what: &str) -> Result<(usize, usize), CreateTableError> {
        self.expect_punct("(", what)?;
        let inner = self.pos;
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            self.pos += 1;
            if t.kind != TokenKind::Punct {
                continue;
            }
            match self.text(t) {
                "(" => depth += 1,
                ")" if depth == 0 => return Ok((inner, self.pos - 1)),
                ")" => depth -= 1,
                _ => {}
            }
        }
        Err(self.err("')' to close the parenthesized group"))
    }

    /// `ON CONFLICT action`, if present.
    fn conflict_clause(&mut self) -> Result<(), CreateTableError> {
        if self.at_word("ON") && self.is_word(self.peek_at(1), "CONFLICT") {
            self.pos += 2;
            if !self.eat_one_of(&CONFLICT_ACTIONS) {
                return Err(self.err("ROLLBACK, ABORT, FAIL, IGNORE or REPLACE after ON CONFLICT"));
            }
        }
        Ok(())
    }

    /// Type name words and an optional `(n)` / `(n, m)`. Returns its span, or
    /// `None` when no type is declared.
    fn type_name(&mut self) -> Result<Option<Span>, CreateTableError> {
        let start = self.pos;
        while let Some(t) = self.peek() {
            let is_type_word = match t.kind {
                TokenKind::Word => {
                    let w = self.text(t);
                    !is_one_of(w, &COLUMN_CONSTRAINT_START) && !w.eq_ignore_ascii_case("ON")
                }
                TokenKind::QuotedIdent | TokenKind::String => true,
                _ => false,
            };
            if !is_type_word {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        if self.at_punct("(") {
            self.group("'('")?;
        }
        Ok(Some(Span::new(
            self.toks[start].span.start,
            self.last_end(),
        )))
    }

    fn column(&mut self, home: &str) -> Result<Column, CreateTableError> {
        let item_start = self.position();
        let (name, name_span) = self.name("a column name")?;
        let type_span = self.type_name()?;
        let mut constraints = Vec::new();
        while self.peek().is_some() {
            constraints.push(self.column_constraint(home)?);
        }
        let span = Span::new(item_start, self.last_end());
        Ok(Column {
            name,
            name_span,
            decl_type: type_span
                .map(|s| s.of(self.src).to_string())
                .unwrap_or_default(),
            type_span,
            text: span.of(self.src).to_string(),
            span,
            constraints,
        })
    }

    /// `CONSTRAINT name`, if present.
    fn constraint_name(&mut self) -> Result<Option<String>, CreateTableError> {
        if self.eat_word("CONSTRAINT") {
            Ok(Some(self.name("a constraint name after CONSTRAINT")?.0))
        } else {
            Ok(None)
        }
    }

    fn column_constraint(&mut self, home: &str) -> Result<ColumnConstraint, CreateTableError> {
        use ColumnConstraintKind as K;
        let start = self.position();
        let name = self.constraint_name()?;
        let mut arg = None;
        let mut refs = Vec::new();
        let mut quals = Vec::new();
        let mut autoincrement = false;
        let kind = if name.is_some() && (self.peek().is_none() || self.at_word("CONSTRAINT")) {
            // SQLite accepts a lone `CONSTRAINT name`; it names nothing.
            K::NameOnly
        } else if self.eat_word("PRIMARY") {
            self.expect_word("KEY")?;
            self.eat_one_of(&["ASC", "DESC"]);
            self.conflict_clause()?;
            autoincrement = self.eat_word("AUTOINCREMENT");
            K::PrimaryKey
        } else if self.eat_word("NOT") {
            self.expect_word("NULL")?;
            self.conflict_clause()?;
            K::NotNull
        } else if self.eat_word("NULL") {
            self.conflict_clause()?;
            K::Null
        } else if self.eat_word("UNIQUE") {
            self.conflict_clause()?;
            K::Unique
        } else if self.eat_word("CHECK") {
            let (a, b) = self.group("'(' after CHECK")?;
            arg = Some(self.span_of(a.saturating_sub(1), b));
            (refs, quals) = expression_refs(self.src, &self.toks[a..b]);
            K::Check
        } else if self.eat_word("DEFAULT") {
            arg = Some(self.default_value()?);
            K::Default
        } else if self.eat_word("COLLATE") {
            arg = Some(self.name("a collation name after COLLATE")?.1);
            K::Collate
        } else if self.eat_word("REFERENCES") {
            self.foreign_key_clause(home, &mut refs)?;
            K::References
        } else if self.at_word("GENERATED") || self.at_word("AS") {
            if self.eat_word("GENERATED") {
                self.expect_word("ALWAYS")?;
            }
            self.expect_word("AS")?;
            let (a, b) = self.group("'(' after AS")?;
            arg = Some(self.span_of(a.saturating_sub(1), b));
            (refs, quals) = expression_refs(self.src, &self.toks[a..b]);
            if self.peek().is_some_and(|t| t.kind == TokenKind::Word)
                && !self
                    .peek()
                    .is_some_and(|t| is_one_of(self.text(t), &COLUMN_CONSTRAINT_START))
                && !self.eat_one_of(&["STORED", "VIRTUAL"])
            {
                return Err(self.err("STORED or VIRTUAL"));
            }
            K::Generated
        } else {
            return Err(self.err(
                "a column constraint (PRIMARY KEY, NOT NULL, NULL, UNIQUE, CHECK, DEFAULT, \
                 COLLATE, REFERENCES, GENERATED ALWAYS AS, AS, CONSTRAINT)",
            ));
        };
        let span = Span::new(start, self.last_end());
        Ok(ColumnConstraint {
            kind,
            name,
            text: span.of(self.src).to_string(),
            span,
            arg,
            autoincrement,
            refs,
            quals,
        })
    }

    /// Span from the start of token `a` to the end of token `b` (inclusive).
    fn span_of(&self, a: usize, b: usize) -> Span {
        let start = self.toks.get(a).map(|t| t.span.start).unwrap_or(0);
        let end = self.toks.get(b).map(|t| t.span.end).unwrap_or(start);
        Span::new(start, end)
    }

    /// The value after DEFAULT: `(expr)`, an optionally signed literal, or a
    /// single name-like token (`NULL`, `TRUE`, `CURRENT_TIMESTAMP`, `abc`).
    fn default_value(&mut self) -> Result<Span, CreateTableError> {
        let start = self.position();
        let what = "a DEFAULT value: a literal, a signed number or a parenthesized expression";
        if self.at_punct("(") {
            self.group(what)?;
        } else if self.eat_punct("+") || self.eat_punct("-") {
            match self.peek() {
                Some(t)
                    if matches!(
                        t.kind,
                        TokenKind::Number | TokenKind::String | TokenKind::Blob
                    ) || (t.kind == TokenKind::Word
                        && is_one_of(
                            self.text(t),
                            &["NULL", "CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"],
                        )) =>
                {
                    self.pos += 1
                }
                _ => return Err(self.err("a number after the sign of a DEFAULT value")),
            }
        } else {
            match self.peek() {
                Some(t) if matches!(t.kind, TokenKind::Number | TokenKind::Blob) || t.is_name() => {
                    if t.kind == TokenKind::Word
                        && is_one_of(self.text(t), &COLUMN_CONSTRAINT_START)
                        && !self.text(t).eq_ignore_ascii_case("NULL")
                    {
                        return Err(self.err(what));
                    }
                    self.pos += 1
                }
                _ => return Err(self.err(what)),
            }
        }
        Ok(Span::new(start, self.last_end()))
    }

    /// After `REFERENCES`: `table [(cols)] [ON ...|MATCH ...]* [[NOT] DEFERRABLE ...]`.
    /// Parent columns count as references only when the parent is `home`.
    fn foreign_key_clause(
        &mut self,
        home: &str,
        refs: &mut Vec<Ref>,
    ) -> Result<String, CreateTableError> {
        let (table, _) = self.name("the referenced table name after REFERENCES")?;
        if self.at_punct("(") {
            let cols = self.column_list(false)?;
            if table.eq_ignore_ascii_case(home) {
                refs.extend(cols);
            }
        }
        loop {
            if self.at_word("ON")
                && self.is_word_in(self.peek_at(1), &["DELETE", "UPDATE", "INSERT"])
            {
                self.pos += 2;
                if self.eat_word("SET") {
                    if !self.eat_one_of(&["NULL", "DEFAULT"]) {
                        return Err(self.err("NULL or DEFAULT after SET"));
                    }
                } else if self.eat_word("NO") {
                    self.expect_word("ACTION")?;
                } else if !self.eat_one_of(&["CASCADE", "RESTRICT"]) {
                    return Err(self.err("SET NULL, SET DEFAULT, CASCADE, RESTRICT or NO ACTION"));
                }
            } else if self.eat_word("MATCH") {
                self.name("a name after MATCH")?;
            } else if self.at_word("DEFERRABLE")
                || (self.at_word("NOT") && self.is_word(self.peek_at(1), "DEFERRABLE"))
            {
                self.eat_word("NOT");
                self.pos += 1;
                if self.eat_word("INITIALLY") && !self.eat_one_of(&["DEFERRED", "IMMEDIATE"]) {
                    return Err(self.err("DEFERRED or IMMEDIATE after INITIALLY"));
                }
            } else {
                break;
            }
        }
        Ok(table)
    }

    fn is_word_in(&self, t: Option<Token>, set: &[&str]) -> bool {
        t.is_some_and(|t| t.kind == TokenKind::Word && is_one_of(self.text(t), set))
    }

    /// `( name [COLLATE c] [ASC|DESC], ... [AUTOINCREMENT] )`; returns the names.
    fn column_list(&mut self, allow_autoincrement: bool) -> Result<Vec<Ref>, CreateTableError> {
        self.expect_punct("(", "'(' before a column list")?;
        let mut out = Vec::new();
        loop {
            let (name, span) = self.name("a column name")?;
            out.push(Ref { span, name });
            if self.eat_word("COLLATE") {
                self.name("a collation name after COLLATE")?;
            }
            self.eat_one_of(&["ASC", "DESC"]);
            if !self.eat_punct(",") {
                break;
            }
        }
        if allow_autoincrement {
            self.eat_word("AUTOINCREMENT");
        }
        self.expect_punct(")", "',' or ')' in the column list")?;
        Ok(out)
    }

    /// One or more table constraints (SQLite allows them without commas).
    fn table_constraints(
        &mut self,
        home: &str,
        out: &mut Vec<TableConstraint>,
    ) -> Result<(), CreateTableError> {
        use TableConstraintKind as K;
        while self.peek().is_some() {
            let start = self.position();
            let name = self.constraint_name()?;
            let mut refs = Vec::new();
            let mut quals = Vec::new();
            let mut columns = Vec::new();
            let mut foreign_table = None;
            let mut autoincrement = false;
            let kind = if name.is_some() && (self.peek().is_none() || self.at_word("CONSTRAINT")) {
                K::NameOnly
            } else if self.eat_word("PRIMARY") {
                self.expect_word("KEY")?;
                let before = self.pos;
                columns = self.column_list(true)?;
                autoincrement = self
                    .toks
                    .get(before..self.pos)
                    .is_some_and(|ts| ts.iter().any(|&t| self.is_word(Some(t), "AUTOINCREMENT")));
                self.conflict_clause()?;
                K::PrimaryKey
            } else if self.eat_word("UNIQUE") {
                columns = self.column_list(false)?;
                self.conflict_clause()?;
                K::Unique
            } else if self.eat_word("CHECK") {
                let (a, b) = self.group("'(' after CHECK")?;
                (refs, quals) = expression_refs(self.src, &self.toks[a..b]);
                self.conflict_clause()?;
                K::Check
            } else if self.eat_word("FOREIGN") {
                self.expect_word("KEY")?;
                columns = self.column_list(false)?;
                self.expect_word("REFERENCES")?;
                foreign_table = Some(self.foreign_key_clause(home, &mut refs)?);
                K::ForeignKey
            } else {
                return Err(self.err(
                    "a table constraint (PRIMARY KEY, UNIQUE, CHECK, FOREIGN KEY, CONSTRAINT)",
                ));
            };
            refs.extend(columns.iter().cloned());
            let span = Span::new(start, self.last_end());
            out.push(TableConstraint {
                kind,
                name,
                text: span.of(self.src).to_string(),
                span,
                columns: columns.into_iter().map(|r| r.name).collect(),
                foreign_table,
                autoincrement,
                refs,
                quals,
            });
        }
        Ok(())
    }
}

/// Identifiers in an expression that may name a column of the table (not a
/// function name, not a qualifier, not a collation, not a type in
/// `CAST(x AS type)`, not an unquoted keyword), and the table qualifiers of
/// qualified column names (`t` in `t.c` and `s.t.c`).
fn expression_refs(src: &str, toks: &[Token]) -> (Vec<Ref>, Vec<Ref>) {
    let mut out = Vec::new();
    let mut quals = Vec::new();
    let punct = |i: usize, p: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == TokenKind::Punct && t.span.of(src) == p)
    };
    let word = |i: usize, w: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == TokenKind::Word && t.span.of(src).eq_ignore_ascii_case(w))
    };
    let mut in_cast_type = false;
    for (i, t) in toks.iter().enumerate() {
        let is_ident = matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent);
        if !is_ident {
            if t.kind != TokenKind::String {
                in_cast_type = false;
            }
            continue;
        }
        if word(i, "AS") {
            in_cast_type = true;
            continue;
        }
        if in_cast_type {
            continue;
        }
        let text = t.span.of(src);
        if punct(i + 1, ".") && !punct(i + 3, ".") {
            quals.push(Ref {
                span: t.span,
                name: unquote(text),
            });
        }
        let skip = punct(i + 1, ".")
            || punct(i + 1, "(")
            || (i > 0 && word(i - 1, "COLLATE"))
            || (t.kind == TokenKind::Word && is_one_of(text, &EXPR_KEYWORDS));
        if !skip {
            out.push(Ref {
                span: t.span,
                name: unquote(text),
            });
        }
    }
    (out, quals)
}
