//! Engine SQL under guard. Every statement the engine runs from a plan, a
//! history row or a backup manifest goes through [`run`]: one statement at a
//! time (a second statement in the text is refused, never run), whose first
//! keyword is one the engine's own SQL uses, prepared under an SQLite
//! authorizer that allows only what the engine itself does on `main` and
//! `temp`.
//!
//! What is refused: ATTACH and DETACH (another file), VACUUM (`VACUUM INTO`
//! writes a new file anywhere), transaction control and savepoints (a
//! `COMMIT` inside the engine's transaction would break atomicity), pragmas
//! other than `legacy_alter_table`, virtual tables, `load_extension`, and
//! any database other than `main` and `temp`. Whoever can write the
//! database file can make the engine run SQL only inside that file.
//!
//! SQL the planner generated in this process (a plan's forward statements,
//! rollback statements derived again from history) runs through
//! [`run_planned`], which also allows `writable_schema`: a schema-text
//! edit rewrites a table's CREATE text in `sqlite_schema`. SQL read from a
//! file (a backup manifest) never does.
//!
//! The authorizer is installed when the applier opens its connection
//! ([`install`]) and is inert outside [`run`]: the engine's own
//! transaction statements (`BEGIN IMMEDIATE`, savepoints, the foreign-key
//! pragma) and reads run as before. SQLite consults the authorizer when a
//! statement is prepared, including the bodies of triggers the statement
//! fires, so turning it on around `prepare` covers everything the statement
//! runs.

use std::cell::Cell;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::error::{Error, Result};

thread_local! {
    /// Whether the statement being prepared on this thread is engine SQL
    /// under guard, and whether the planner generated it.
    static GUARDED: Cell<Guard> = const { Cell::new(Guard::Off) };
}

/// The guard's state on a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    Off,
    Engine,
    Planned,
}

/// First keywords of the statements the engine generates.
const ALLOWED_FIRST_WORDS: [&str; 7] = [
    "CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE", "PRAGMA",
];

/// Pragmas the engine's generated SQL uses (the rebuild's rename runs with
/// `legacy_alter_table` on; a schema-text edit with `writable_schema` on,
/// then `RESET`).
const ALLOWED_PRAGMAS: [&str; 1] = ["legacy_alter_table"];

/// Pragmas only planned SQL uses: a schema-text edit.
const PLANNED_PRAGMAS: [&str; 1] = ["writable_schema"];

fn pragma_allowed(name: &str, planned: bool) -> bool {
    let allowed = |list: &[&str]| list.iter().any(|p| p.eq_ignore_ascii_case(name));
    allowed(&ALLOWED_PRAGMAS) || (planned && allowed(&PLANNED_PRAGMAS))
}

/// Installs the guard's authorizer on a connection the engine opened.
pub(crate) fn install(conn: &mut Connection) -> Result<()> {
    conn.authorizer(Some(authorize))
        .map_err(|e| Error::sql("install the SQL authorizer", e))
}

/// Runs one engine statement under guard. `Error::UnsafeSql` when the text
/// holds more than one statement, starts with a keyword the engine never
/// generates, or asks for something the authorizer denies; nothing of it
/// has run then.
pub(crate) fn run(conn: &Connection, sql: &str) -> Result<()> {
    let mut stmt = prepare_as(conn, sql, Guard::Engine)?;
    stmt.raw_execute()
        .map(|_| ())
        .map_err(|e| Error::sql(sql, e))
}

/// [`run`] for SQL the planner generated in this process, which may also
/// edit the schema's text (`writable_schema`). Returns the rows changed.
pub(crate) fn run_planned(conn: &Connection, sql: &str) -> Result<usize> {
    let mut stmt = prepare_as(conn, sql, Guard::Planned)?;
    stmt.raw_execute().map_err(|e| Error::sql(sql, e))
}

/// The checks that need no database: the statement starts with a keyword
/// the engine generates, and has no second statement after a top-level
/// `;` (outside quotes, comments and trigger bodies). `Err` says why not.
/// [`run`] checks the rest with the authorizer when it prepares.
pub(crate) fn check_text(sql: &str) -> std::result::Result<(), String> {
    check_text_as(sql, false)
}

/// [`check_text`] for planned SQL (see [`run_planned`]).
pub(crate) fn check_planned_text(sql: &str) -> std::result::Result<(), String> {
    check_text_as(sql, true)
}

fn check_text_as(sql: &str, planned: bool) -> std::result::Result<(), String> {
    let word = first_word(sql);
    if !ALLOWED_FIRST_WORDS
        .iter()
        .any(|w| w.eq_ignore_ascii_case(&word))
    {
        return Err(format!(
            "statements starting with {word:?} are not engine SQL"
        ));
    }
    if word.eq_ignore_ascii_case("PRAGMA") {
        let rest = skip_comments(skip_comments(sql)[word.len()..].trim_start());
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !pragma_allowed(&name, planned) {
            return Err(format!("PRAGMA {name} is not one engine SQL uses"));
        }
    }
    if let Some(rest) = after_first_statement(sql) {
        if !only_comments(rest) {
            return Err("more than one statement in one text".into());
        }
    }
    Ok(())
}

/// Prepares one engine statement under guard (see [`run`]), for callers
/// that bind parameters or run it in parts.
pub(crate) fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<rusqlite::Statement<'c>> {
    prepare_as(conn, sql, Guard::Engine)
}

fn prepare_as<'c>(
    conn: &'c Connection,
    sql: &str,
    guard: Guard,
) -> Result<rusqlite::Statement<'c>> {
    check_text_as(sql, guard == Guard::Planned).map_err(|reason| unsafe_sql(sql, reason))?;
    let prepared = {
        let _on = On::new(guard);
        conn.prepare(sql)
    };
    match prepared {
        Ok(stmt) => Ok(stmt),
        Err(rusqlite::Error::MultipleStatement) => Err(unsafe_sql(
            sql,
            "more than one statement in one text".into(),
        )),
        Err(e) if is_auth_error(&e) => Err(unsafe_sql(
            sql,
            "it asks for something engine SQL never does (another database, a transaction \
             statement, a pragma, an extension)"
                .into(),
        )),
        Err(e) => Err(Error::sql(sql, e)),
    }
}

/// Turns the guard on for this thread until dropped.
struct On;

impl On {
    fn new(guard: Guard) -> Self {
        GUARDED.with(|g| g.set(guard));
        On
    }
}

impl Drop for On {
    fn drop(&mut self) {
        GUARDED.with(|g| g.set(Guard::Off));
    }
}

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    let guard = GUARDED.with(Cell::get);
    if guard == Guard::Off {
        return Authorization::Allow;
    }
    let outside = |db: &str| !db.eq_ignore_ascii_case("main") && !db.eq_ignore_ascii_case("temp");
    // For ALTER TABLE ... DROP COLUMN, SQLite passes the column name in
    // the slot that usually holds the database name; the action carries
    // the database itself.
    let database = match ctx.action {
        AuthAction::AlterTable { database_name, .. } => Some(database_name),
        _ => ctx.database_name,
    };
    if database.is_some_and(outside) {
        return Authorization::Deny;
    }
    match ctx.action {
        AuthAction::Attach { .. }
        | AuthAction::Detach { .. }
        | AuthAction::Transaction { .. }
        | AuthAction::Savepoint { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::Unknown { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. } => {
            if pragma_allowed(pragma_name, guard == Guard::Planned) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Whether preparing failed because the authorizer said no (SQLITE_AUTH,
/// or "not authorized" on the statement's text, as a denied function
/// reports it).
fn is_auth_error(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            f.code == rusqlite::ErrorCode::AuthorizationForStatementDenied
                || msg
                    .as_deref()
                    .is_some_and(|m| m.starts_with("not authorized"))
        }
        rusqlite::Error::SqlInputError { msg, .. } => msg.starts_with("not authorized"),
        _ => false,
    }
}

fn unsafe_sql(sql: &str, reason: String) -> Error {
    Error::UnsafeSql {
        sql: printable(sql),
        reason,
    }
}

/// The text after the first top-level `;`, if there is one. Quotes
/// (`'`, `"`, `` ` ``, `[...]`) and comments are skipped, and a `;` between
/// `BEGIN` and `END` of a trigger body does not end the statement. A text
/// this scanner misreads is still run through `prepare`, which refuses a
/// second statement itself.
fn after_first_statement(sql: &str) -> Option<&str> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut depth = 0usize; // BEGIN ... END nesting (trigger bodies, CASE ... END)
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' | b'`' => {
                let close = c;
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == close {
                        if bytes.get(i + 1) == Some(&close) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'[' => {
                while i < bytes.len() && bytes[i] != b']' {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' if depth == 0 => return Some(&sql[i + 1..]),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &sql[start..i];
                if word.eq_ignore_ascii_case("BEGIN") || word.eq_ignore_ascii_case("CASE") {
                    depth += 1;
                } else if word.eq_ignore_ascii_case("END") {
                    depth = depth.saturating_sub(1);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether a text holds nothing but white space and comments.
fn only_comments(text: &str) -> bool {
    skip_comments(text).is_empty()
}

/// A statement found in the database, for messages: control characters
/// escaped, cut at 200 characters.
pub(crate) fn printable(sql: &str) -> String {
    let escaped: String = sql
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    if escaped.chars().count() > 200 {
        let cut: String = escaped.chars().take(200).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// The text after leading white space and comments.
fn skip_comments(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest;
        }
    }
}

/// The first keyword of a statement, after white space and comments.
fn first_word(sql: &str) -> String {
    skip_comments(sql)
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("a.db")).unwrap();
        install(&mut conn).unwrap();
        conn.execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1)")
            .unwrap();
        (dir, conn)
    }

    fn refused(conn: &Connection, sql: &str) -> String {
        match run(conn, sql) {
            Err(e @ Error::UnsafeSql { .. }) => e.to_string(),
            other => panic!("{sql}: expected UnsafeSql, got {other:?}"),
        }
    }

    #[test]
    fn engine_statements_run() {
        let (_dir, conn) = guarded();
        for sql in [
            "CREATE TABLE \"u\" (b TEXT)",
            "INSERT INTO \"u\" (b) SELECT CAST(a AS TEXT) FROM t",
            "PRAGMA legacy_alter_table = ON",
            "ALTER TABLE \"u\" RENAME TO \"v\"",
            "PRAGMA legacy_alter_table = OFF",
            "CREATE INDEX \"ix\" ON \"v\" (b)",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO v VALUES (new.a); END",
            "ALTER TABLE \"t\" ADD COLUMN \"z\" TEXT",
            "ALTER TABLE \"t\" DROP COLUMN \"z\"",
            "  /* c */ -- d\n DROP TABLE \"v\"",
        ] {
            run(&conn, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn what_engine_sql_never_does_is_refused_and_does_not_run() {
        let (dir, conn) = guarded();
        let other = dir.path().join("other.db");
        let out = dir.path().join("copy.db");
        for sql in [
            format!("ATTACH '{}' AS x", other.display()),
            format!("VACUUM INTO '{}'", out.display()),
            "COMMIT".to_string(),
            "DROP TABLE t; DROP TABLE t".to_string(),
            format!("DROP TABLE t; ATTACH '{}' AS x", other.display()),
            "PRAGMA writable_schema = ON".to_string(),
            "PRAGMA foreign_keys = OFF".to_string(),
            "CREATE VIRTUAL TABLE f USING fts5(x)".to_string(),
            "INSERT INTO t SELECT load_extension('x')".to_string(),
        ] {
            let e = refused(&conn, &sql);
            assert!(e.contains("refused"), "{e}");
        }
        assert!(!other.exists() && !out.exists(), "no file written");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "the first of two statements did not run");
        // Outside the guard the connection is the caller's as before.
        conn.execute_batch("PRAGMA foreign_keys = ON; BEGIN; COMMIT")
            .unwrap();
    }

    #[test]
    fn second_statements_are_found_without_a_database() {
        for ok in [
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO v VALUES (';'); DELETE FROM v; END",
            "INSERT INTO t VALUES ('a;b', \"c;d\", CASE WHEN 1 THEN 2 END)",
            "DROP TABLE t; -- trailing comment",
            "DROP TABLE t;",
        ] {
            assert_eq!(check_text(ok), Ok(()), "{ok}");
        }
        for bad in [
            "DROP TABLE t; ATTACH 'x' AS y",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM v; END; VACUUM",
            "COMMIT",
            "vacuum into '/tmp/x'",
        ] {
            assert!(check_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_word_skips_comments() {
        assert_eq!(first_word("  -- x\n/* y */ vacuum"), "vacuum");
        assert_eq!(first_word("CREATE TABLE"), "CREATE");
        assert_eq!(first_word(""), "");
    }
}
