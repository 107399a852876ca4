//! Changes that touch no stored value, made without copying the table:
//! nullability through SQLite's native `ALTER COLUMN … NOT NULL`, and
//! declared types keeping their affinity and DEFAULTs every row stores as
//! an edit of the CREATE text. The property test runs each generated case
//! once through the fast paths and once through the rebuild
//! (`always_rebuild`) and requires the same schema, rows and storage
//! classes; the other tests pin the cases where the engine must choose the
//! rebuild, and what other connections see.

use std::cell::Cell;
use std::path::Path;

use doctype_migrate::{
    Approach, DocType, Error, MigrationApplier, RollbackOptions, Rule, StepKind,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::common::{TestDb, count, doctype};
use crate::rollback_support::{Snapshot, Val, snapshot};

// ---------------------------------------------------------------------
// Helpers

fn applier(path: &Path, always_rebuild: bool) -> MigrationApplier {
    MigrationApplier::builder(path)
        .create_if_missing(true)
        .always_rebuild(always_rebuild)
        .build()
        .unwrap()
}

/// The one DocType's plan approach and why, from a dry run.
fn approach(path: &Path, dt: &DocType, always_rebuild: bool) -> (Option<Approach>, String) {
    let report = applier(path, always_rebuild)
        .dry_run(std::slice::from_ref(dt))
        .unwrap();
    let plan = report
        .plan
        .doctypes
        .iter()
        .find(|p| p.doctype == dt.name)
        .unwrap();
    (plan.approach, plan.why.clone())
}

/// Whitespace-insensitive CREATE text (outside quotes), as the engine's
/// own comparison: `a TEXT ,` and `a TEXT,` are the same statement.
fn normalized(sql: &str) -> String {
    let mut out = String::new();
    let (mut space, mut quote) = (false, None::<char>);
    for ch in sql.chars() {
        if let Some(end) = quote {
            out.push(ch);
            if ch == end {
                quote = None;
            }
            continue;
        }
        if ch.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() && !"(),".contains(ch) && !out.ends_with('(') {
            out.push(' ');
        }
        space = false;
        quote = match ch {
            '\'' | '"' | '`' => Some(ch),
            '[' => Some(']'),
            _ => None,
        };
        out.push(ch);
    }
    out
}

/// `(type, name, normalized SQL)` of a table's objects, and its rows.
type TableState = (Vec<(String, String, String)>, Vec<Vec<Val>>);

/// The table's `sqlite_schema` rows (normalized SQL) and every row with
/// its rowid, values with their storage classes.
fn table_state(conn: &Connection, table: &str) -> TableState {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ?1 ORDER BY type, name",
        )
        .unwrap();
    let schema = stmt
        .query_map([table], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                normalized(&r.get::<_, Option<String>>(2)?.unwrap_or_default()),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut stmt = conn
        .prepare(&format!("SELECT rowid, * FROM \"{table}\" ORDER BY rowid"))
        .unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            Ok((0..n).map(|i| Val::from(r.get_ref(i).unwrap())).collect())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (schema, rows)
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn rollback_last(path: &Path) {
    let backups = std::sync::Arc::new(
        doctype_migrate::BackupManager::builder()
            .dir(doctype_migrate::default_dir_for(path))
            .build()
            .unwrap(),
    );
    applier(path, false)
        .rollback_last(None, &RollbackOptions::default().with_backups(backups))
        .unwrap();
}

fn copy_db(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

// ---------------------------------------------------------------------
// The property test

/// A field's storage: `Data` is VARCHAR(length), `Text` TEXT (both TEXT
/// affinity), `Int` INTEGER NOT NULL DEFAULT (Frappe's numeric columns).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Data,
    Text,
    Int,
}

#[derive(Debug, Clone, PartialEq)]
struct Col {
    kind: Kind,
    /// VARCHAR length of a Data field (None: Frappe's 140).
    length: Option<u32>,
    default: Option<&'static str>,
    not_nullable: bool,
    /// `unique` and `search_index`: the fast paths run between the index
    /// drops and adds, and NULL fills meet unique keys.
    unique: bool,
    indexed: bool,
}

impl Col {
    fn json(&self, name: &str) -> String {
        let fieldtype = match self.kind {
            Kind::Data => "Data",
            Kind::Text => "Small Text",
            Kind::Int => "Int",
        };
        let mut out = format!(r#"{{"fieldname": "{name}", "fieldtype": "{fieldtype}""#);
        if let (Kind::Data, Some(n)) = (self.kind, self.length) {
            out.push_str(&format!(r#", "length": {n}"#));
        }
        if let Some(d) = self.default {
            out.push_str(&format!(r#", "default": "{d}""#));
        }
        if self.not_nullable && self.kind != Kind::Int {
            out.push_str(r#", "not_nullable": 1"#);
        }
        if self.unique {
            out.push_str(r#", "unique": 1"#);
        }
        if self.indexed {
            out.push_str(r#", "search_index": 1"#);
        }
        out.push('}');
        out
    }
}

fn doctype_of(cols: &[(String, Col)]) -> DocType {
    let fields: Vec<String> = cols.iter().map(|(n, c)| c.json(n)).collect();
    doctype(&format!(
        r#"{{"name": "Prop", "fields": [{}]}}"#,
        fields.join(", ")
    ))
}

fn text_default() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::weighted(0.5, prop::sample::select(vec!["a", "n/a", "12", "x y"]))
}

/// `(unique, indexed)`, each now and then.
fn index_flags() -> impl Strategy<Value = (bool, bool)> {
    (prop::bool::weighted(0.1), prop::bool::weighted(0.15))
}

fn col() -> impl Strategy<Value = Col> {
    (plain_col(), index_flags()).prop_map(|(mut c, (unique, indexed))| {
        (c.unique, c.indexed) = (unique, indexed);
        c
    })
}

fn plain_col() -> impl Strategy<Value = Col> {
    prop_oneof![
        (
            prop::option::weighted(0.3, prop::sample::select(vec![100u32, 255])),
            text_default(),
            prop::bool::weighted(0.3)
        )
            .prop_map(|(length, default, not_nullable)| Col {
                kind: Kind::Data,
                length,
                default,
                not_nullable,
                unique: false,
                indexed: false,
            }),
        (text_default(), prop::bool::weighted(0.3)).prop_map(|(default, not_nullable)| Col {
            kind: Kind::Text,
            length: None,
            default,
            not_nullable,
            unique: false,
            indexed: false,
        }),
        prop::option::weighted(0.5, prop::sample::select(vec!["5", "-1"])).prop_map(|default| {
            Col {
                kind: Kind::Int,
                length: None,
                default,
                not_nullable: true,
                unique: false,
                indexed: false,
            }
        }),
    ]
}

/// What v2 does to one column: only changes that touch no stored value.
#[derive(Debug, Clone)]
enum Action {
    Keep,
    /// A new DEFAULT (or none).
    Default(Option<&'static str>),
    /// Data <-> Small Text, or another VARCHAR length.
    Retype(Option<u32>),
    /// NOT NULL on or off (on with a default to fill NULLs, sometimes).
    Nullability(Option<&'static str>),
    /// All three.
    All(Option<&'static str>, Option<u32>),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => Just(Action::Keep),
        3 => text_default().prop_map(Action::Default),
        2 => prop::option::of(prop::sample::select(vec![100u32, 255, 140])).prop_map(Action::Retype),
        3 => text_default().prop_map(Action::Nullability),
        2 => (text_default(), prop::option::of(prop::sample::select(vec![100u32, 255])))
            .prop_map(|(d, l)| Action::All(d, l)),
    ]
}

fn apply_action(c: &Col, a: &Action) -> Col {
    let mut c = c.clone();
    let retype = |c: &mut Col, length: Option<u32>| match (c.kind, length) {
        (Kind::Data, None) => c.kind = Kind::Text,
        (Kind::Text, l) => {
            c.kind = Kind::Data;
            c.length = l;
        }
        (Kind::Data, l) => c.length = l,
        (Kind::Int, _) => {}
    };
    match a {
        Action::Keep => {}
        Action::Default(d) => {
            c.default = if c.kind == Kind::Int {
                d.map(|_| "9")
            } else {
                *d
            };
        }
        Action::Retype(l) => retype(&mut c, *l),
        Action::Nullability(d) => {
            if c.kind != Kind::Int {
                c.not_nullable = !c.not_nullable;
                if c.not_nullable && d.is_some() {
                    c.default = *d;
                }
            }
        }
        Action::All(d, l) => {
            retype(&mut c, *l);
            if c.kind != Kind::Int {
                c.default = *d;
                c.not_nullable = !c.not_nullable;
            }
        }
    }
    c
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(Value::Null),
        2 => prop::sample::select(vec![0i64, 7, -12]).prop_map(Value::Integer),
        1 => Just(Value::Real(1.5)),
        3 => prop::sample::select(vec!["", "abc", "12", "n/a", "Ünï"]).prop_map(|s| Value::Text(s.into())),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// Columns created with the table.
    base: Vec<Col>,
    /// Columns added later by the engine (ALTER TABLE ADD COLUMN), after
    /// `early` rows were written: those rows keep short records.
    added: Vec<Col>,
    /// Whether a rebuild ran after the columns were added (every row is
    /// then written in full).
    rebuilt_since: bool,
    early: Vec<Vec<Value>>,
    late: Vec<Vec<Value>>,
    actions: Vec<Action>,
    /// Per column, whether v2 also toggles `unique` and `search_index`.
    toggles: Vec<(bool, bool)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(col(), 1..=3),
        prop::collection::vec(col(), 0..=2),
        prop::bool::weighted(0.3),
    )
        .prop_flat_map(|(base, added, rebuilt_since)| {
            let (nb, n) = (base.len(), base.len() + added.len());
            (
                Just(base),
                Just(added),
                Just(rebuilt_since),
                prop::collection::vec(prop::collection::vec(value(), nb), 0..=8),
                prop::collection::vec(prop::collection::vec(value(), n), 0..=8),
                prop::collection::vec(action(), n),
                prop::collection::vec(index_flags(), n),
            )
        })
        .prop_map(
            |(base, mut added, rebuilt_since, early, late, actions, toggles)| {
                for c in added.iter_mut() {
                    // ADD COLUMN cannot add NOT NULL without a default to rows.
                    if c.not_nullable && c.default.is_none() {
                        c.default = Some("a");
                    }
                    // A new unique column would hold one default in every
                    // early row (MF001): v2 may make it unique instead.
                    c.unique = false;
                }
                Case {
                    base,
                    added,
                    rebuilt_since,
                    early,
                    late,
                    actions,
                    toggles,
                }
            },
        )
}

#[derive(Default)]
struct Counts {
    fast: Cell<u32>,
    trap: Cell<u32>,
    other_rebuild: Cell<u32>,
    blocked: Cell<u32>,
    noop: Cell<u32>,
}

fn insert(conn: &Connection, cols: &[(String, Col)], rows: &[Vec<Value>], prefix: &str) {
    for (i, row) in rows.iter().enumerate() {
        // NOT NULL columns get their default (or the row is not written).
        let mut names = vec!["name".to_string()];
        let mut values = vec![Value::Text(format!("{prefix}{i:02}"))];
        for ((name, c), v) in cols.iter().zip(row) {
            if c.not_nullable && *v == Value::Null {
                continue;
            }
            names.push(format!("\"{name}\""));
            values.push(v.clone());
        }
        let marks: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
        let _ = conn.execute(
            &format!(
                "INSERT INTO \"tabProp\" ({}) VALUES ({})",
                names.join(", "),
                marks.join(", ")
            ),
            rusqlite::params_from_iter(values),
        );
    }
}

fn run_case(c: &Case, counts: &Counts) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let base_db = dir.path().join("base.db");
    let named = |cols: &[Col], from: usize| -> Vec<(String, Col)> {
        cols.iter()
            .enumerate()
            .map(|(i, c)| (format!("f{}", i + from), c.clone()))
            .collect()
    };
    let v1 = named(&c.base, 0);
    let mut v1b = v1.clone();
    v1b.extend(named(&c.added, c.base.len()));

    applier(&base_db, false)
        .sync_all(&[doctype_of(&v1)])
        .unwrap();
    insert(&Connection::open(&base_db).unwrap(), &v1, &c.early, "e");
    applier(&base_db, false)
        .sync_all(&[doctype_of(&v1b)])
        .unwrap();
    let mut start = v1b.clone();
    if c.rebuilt_since {
        // A DEFAULT change through the rebuild: every row written in full.
        start[0].1.default = Some("rebuilt");
        if start[0].1.kind == Kind::Int {
            start[0].1.default = Some("3");
        }
        applier(&base_db, true)
            .sync_all(&[doctype_of(&start)])
            .unwrap();
    }
    insert(&Connection::open(&base_db).unwrap(), &start, &c.late, "l");

    let v2: Vec<(String, Col)> = start
        .iter()
        .zip(&c.actions)
        .zip(&c.toggles)
        .map(|(((n, col), a), (unique, indexed))| {
            let mut col = apply_action(col, a);
            col.unique ^= unique;
            col.indexed ^= indexed;
            (n.clone(), col)
        })
        .collect();
    let v2 = doctype_of(&v2);
    let fast_db = dir.path().join("fast.db");
    let slow_db = dir.path().join("rebuild.db");
    copy_db(&base_db, &fast_db);
    copy_db(&base_db, &slow_db);
    let before = snapshot(&Connection::open(&fast_db).unwrap());

    let (approach_fast, why) = approach(&fast_db, &v2, false);
    let fast = applier(&fast_db, false).sync_all(std::slice::from_ref(&v2));
    let slow = applier(&slow_db, true).sync_all(std::slice::from_ref(&v2));
    match (&fast, &slow) {
        (Ok(_), Ok(_)) => {}
        (Err(Error::Blocked { findings: a }), Err(Error::Blocked { findings: b })) => {
            prop_assert!(
                a.iter()
                    .chain(b)
                    .filter(|f| f.blocking)
                    .all(|f| matches!(f.rule, Rule::Mf001 | Rule::Mf002)),
                "unexpected blocking findings: {a:?} / {b:?}"
            );
            counts.blocked.set(counts.blocked.get() + 1);
            prop_assert_eq!(snapshot(&Connection::open(&fast_db).unwrap()), before);
            return Ok(());
        }
        _ => {
            return Err(TestCaseError::fail(format!(
                "fast {fast:?}, rebuild {slow:?}"
            )));
        }
    }
    let fast = fast.unwrap();
    let Some(record) = fast.migrations.first() else {
        counts.noop.set(counts.noop.get() + 1);
        return Ok(());
    };

    // The engine's choice: the rebuild exactly when a DEFAULT changes on a
    // column rows may not store (added by ADD COLUMN, no rebuild since).
    let short_default = !c.rebuilt_since
        && record.changes.iter().any(|ch| {
            ch.kind == doctype_migrate::ChangeKind::ChangeDefault
                && c.added.iter().enumerate().any(|(i, _)| {
                    ch.column.as_deref() == Some(format!("f{}", i + c.base.len()).as_str())
                })
        });
    if short_default {
        prop_assert_eq!(approach_fast, Some(Approach::Rebuild), "{}", why);
        prop_assert!(why.contains("ADD COLUMN"), "{}", why);
        counts.trap.set(counts.trap.get() + 1);
    } else if approach_fast == Some(Approach::Rebuild) {
        counts.other_rebuild.set(counts.other_rebuild.get() + 1);
        return Err(TestCaseError::fail(format!(
            "a rebuild for changes the fast paths make: {why}; {:?}",
            record.changes
        )));
    } else {
        counts.fast.set(counts.fast.get() + 1);
        prop_assert!(
            matches!(approach_fast, Some(Approach::InPlace | Approach::Native)),
            "{:?}",
            approach_fast
        );
        prop_assert_eq!(
            record.metrics.rows_copied,
            count_nulls_filled(&before, &fast_db)
        );
    }

    let (fast_conn, slow_conn) = (
        Connection::open(&fast_db).unwrap(),
        Connection::open(&slow_db).unwrap(),
    );
    prop_assert_eq!(integrity(&fast_conn), "ok");
    prop_assert_eq!(integrity(&slow_conn), "ok");
    prop_assert_eq!(
        table_state(&fast_conn, "tabProp"),
        table_state(&slow_conn, "tabProp"),
        "fast path and rebuild differ"
    );
    let leftover = count(
        &fast_conn,
        "SELECT count(*) FROM sqlite_schema WHERE name = '_dm_schema_edit'",
    );
    prop_assert_eq!(leftover, 0);
    drop(fast_conn);

    // The rollback gives back the exact start.
    rollback_last(&fast_db);
    let fast_conn = Connection::open(&fast_db).unwrap();
    prop_assert_eq!(integrity(&fast_conn), "ok");
    prop_assert_eq!(snapshot(&fast_conn), before, "rollback");
    Ok(())
}

/// Rows the fill changed: NULLs before in columns that hold none after.
fn count_nulls_filled(before: &Snapshot, db: &Path) -> u64 {
    let after = snapshot(&Connection::open(db).unwrap());
    let (Some(b), Some(a)) = (before.rows.get("tabProp"), after.rows.get("tabProp")) else {
        return 0;
    };
    let mut n = 0;
    for (rb, ra) in b.iter().zip(a) {
        for (vb, va) in rb.iter().zip(ra) {
            if *vb == Val::Null && *va != Val::Null {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn fast_paths_give_what_the_rebuild_gives() {
    let cases = std::env::var("DM_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let counts = Counts::default();
    runner.run(&case(), |c| run_case(&c, &counts)).unwrap();
    eprintln!(
        "no_copy: {} fast, {} short-record traps (rebuilt), {} blocked (MF001, MF002), {} no-op",
        counts.fast.get(),
        counts.trap.get(),
        counts.blocked.get(),
        counts.noop.get()
    );
    assert_eq!(counts.other_rebuild.get(), 0);
    assert!(counts.fast.get() >= cases / 3, "too few fast-path cases");
    assert!(counts.trap.get() > 0, "the short-record trap never came up");
}

// ---------------------------------------------------------------------
// Cases pinned one by one

/// `V1` with its `title` field given as `title` (the field's JSON).
fn v1_with_title(title: &str) -> DocType {
    doctype(&V1.replace(r#"{"fieldname": "title", "fieldtype": "Data"}"#, title))
}

/// `title` NOT NULL, its NULLs filled with the default `'untitled'`.
const TITLE_FILLED: &str =
    r#"{"fieldname": "title", "fieldtype": "Data", "not_nullable": 1, "default": "untitled"}"#;

/// A database at `v1` holding notes `a` and `b` with NULL titles and `c`
/// titled `'x'`.
fn two_null_titles(v1: &DocType) -> TestDb {
    let db = TestDb::new();
    db.applier().sync_all(std::slice::from_ref(v1)).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabNote\" (name, title) VALUES ('a', NULL), ('b', NULL), ('c', 'x')",
        )
        .unwrap();
    db
}

const V1: &str = r#"{"name": "Note", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "status", "fieldtype": "Data", "default": "Open"}
]}"#;
const V2_ADDS: &str = r#"{"name": "Note", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "status", "fieldtype": "Data", "default": "Open"},
    {"fieldname": "stage", "fieldtype": "Data", "default": "new"}
]}"#;
const V3_STAGE_DEFAULT: &str = r#"{"name": "Note", "fields": [
    {"fieldname": "title", "fieldtype": "Data"},
    {"fieldname": "status", "fieldtype": "Data", "default": "Open"},
    {"fieldname": "stage", "fieldtype": "Data", "default": "draft"}
]}"#;

fn stages(conn: &Connection) -> Vec<(String, Option<String>)> {
    conn.prepare("SELECT name, stage FROM \"tabNote\" ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The trap the engine avoids, shown for real: rows written before ADD
/// COLUMN read the column from the schema's DEFAULT, so an in-place edit
/// of that DEFAULT changes their values while integrity_check says ok.
/// The engine rebuilds instead, and every value stays.
#[test]
fn a_default_of_a_column_added_by_add_column_is_changed_by_a_rebuild() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabNote\" (name, title) VALUES ('old', 'written before')")
        .unwrap();
    db.applier().sync_all(&[doctype(V2_ADDS)]).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabNote\" (name, title) VALUES ('new', 'written after')")
        .unwrap();
    let want = vec![
        ("new".to_string(), Some("new".to_string())),
        ("old".to_string(), Some("new".to_string())),
    ];
    assert_eq!(stages(&db.conn()), want);

    // What an in-place edit would do (on a copy): the old row changes.
    let copy = db.dir.path().join("copy.db");
    copy_db(&db.path, &copy);
    let c = Connection::open(&copy).unwrap();
    let sql: String = c
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'tabNote'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute_batch("PRAGMA writable_schema = ON").unwrap();
    c.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE name = 'tabNote'",
        [sql.replace("DEFAULT 'new'", "DEFAULT 'draft'")],
    )
    .unwrap();
    c.execute_batch("PRAGMA writable_schema = RESET").unwrap();
    assert_eq!(integrity(&c), "ok");
    assert_eq!(
        stages(&c),
        vec![
            ("new".to_string(), Some("new".to_string())),
            ("old".to_string(), Some("draft".to_string()))
        ],
        "the short record reads the edited default"
    );

    // The engine: the rebuild, saying why; values kept.
    let v3 = doctype(V3_STAGE_DEFAULT);
    let (how, why) = approach(&db.path, &v3, false);
    assert_eq!(how, Some(Approach::Rebuild));
    assert!(why.contains("ADD COLUMN") && why.contains("stage"), "{why}");
    db.applier().sync_all(&[v3]).unwrap();
    assert_eq!(stages(&db.conn()), want);

    // After that rebuild every row stores the column: the next DEFAULT
    // change is made in place.
    let v4 = doctype(&V3_STAGE_DEFAULT.replace("draft", "final"));
    assert_eq!(approach(&db.path, &v4, false).0, Some(Approach::InPlace));
    let report = db.applier().sync_all(&[v4]).unwrap();
    assert_eq!(report.migrations[0].metrics.rows_copied, 0);
    assert_eq!(stages(&db.conn()), want);
}

#[test]
fn a_table_changed_outside_the_engine_is_rebuilt_for_a_default_change() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    db.conn()
        .execute_batch("ALTER TABLE \"tabNote\" ADD COLUMN \"extra\" TEXT DEFAULT 'x'")
        .unwrap();
    let v2 = doctype(&V1.replace("\"Open\"", "\"Closed\""));
    let (how, why) = approach(&db.path, &v2, false);
    assert_eq!(how, Some(Approach::Rebuild));
    assert!(why.contains("outside the engine"), "{why}");
}

#[test]
fn always_rebuild_copies_the_table_and_says_so() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    let v2 = doctype(&V1.replace("\"Open\"", "\"Closed\""));
    assert_eq!(approach(&db.path, &v2, false).0, Some(Approach::InPlace));
    let (how, why) = approach(&db.path, &v2, true);
    assert_eq!(how, Some(Approach::Rebuild));
    assert!(why.contains("fast paths are off"), "{why}");
}

#[test]
fn defensive_mode_rebuilds_what_needs_a_text_edit_and_keeps_native_nullability() {
    use rusqlite::config::DbConfig;
    let db = TestDb::new();
    let v1 = r#"{"name": "Note", "fields": [
        {"fieldname": "title", "fieldtype": "Data", "not_nullable": 1},
        {"fieldname": "status", "fieldtype": "Data", "default": "Open"}
    ]}"#;
    db.applier().sync_all(&[doctype(v1)]).unwrap();
    let plan_with_defensive = |dt: DocType| {
        let mut conn = db.conn();
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .unwrap();
        MigrationApplier::lend(&mut conn, |b| b, |a| a.dry_run(&[dt])).unwrap()
    };
    // A DEFAULT change needs the text edit: the rebuild.
    let report = plan_with_defensive(doctype(&v1.replace("\"Open\"", "\"Closed\"")));
    assert_eq!(report.plan.doctypes[0].approach, Some(Approach::Rebuild));
    assert!(report.plan.doctypes[0].why.contains("defensive"));
    // Dropping a plain NOT NULL is native, and SET NOT NULL gives the
    // text back exactly: no text edit at all.
    let report = plan_with_defensive(doctype(&v1.replace(", \"not_nullable\": 1", "")));
    let plan = &report.plan.doctypes[0];
    assert_eq!(plan.approach, Some(Approach::Native), "{}", plan.why);
    assert!(
        plan.forward_sql()
            .iter()
            .chain(&plan.rollback_sql())
            .all(|s| !s.contains("writable_schema")),
        "{:?}",
        plan.steps
    );
    assert!(plan.steps.iter().all(|s| s.kind == StepKind::Native));
}

/// Another connection that had the schema cached sees the new DEFAULT
/// on its next statement: the edit moves the schema cookie.
#[test]
fn other_connections_see_an_edited_default() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    let other = db.conn();
    other
        .execute_batch("INSERT INTO \"tabNote\" (name) VALUES ('a')")
        .unwrap();
    let cookie = |c: &Connection| -> i64 {
        c.query_row("PRAGMA schema_version", [], |r| r.get(0))
            .unwrap()
    };
    let before = cookie(&other);
    let report = db
        .applier()
        .sync_all(&[doctype(&V1.replace("\"Open\"", "\"Closed\""))])
        .unwrap();
    assert_eq!(report.migrations[0].metrics.rows_copied, 0);
    assert!(cookie(&other) > before);
    other
        .execute_batch("INSERT INTO \"tabNote\" (name) VALUES ('b')")
        .unwrap();
    let statuses: Vec<String> = other
        .prepare("SELECT status FROM \"tabNote\" ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, ["Open", "Closed"]);
}

/// A column becoming NOT NULL with its NULLs filled from the new default:
/// native SET NOT NULL after the fill, the column backed up, and the
/// rollback gives every NULL back and the exact CREATE text.
#[test]
fn set_not_null_fills_then_rolls_back_exactly() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabNote\" (name, title) VALUES ('a', NULL), ('b', 'kept'), ('c', NULL)",
        )
        .unwrap();
    let before = snapshot(&db.conn());
    let v2 = v1_with_title(TITLE_FILLED);
    let report = db.applier().sync_all(&[v2]).unwrap();
    let m = &report.migrations[0];
    assert_eq!(m.metrics.rows_copied, 2, "the two NULLs filled");
    assert_eq!(m.backups.len(), 1, "a column backup of title");
    let plan_sql: String = db
        .conn()
        .query_row(
            "SELECT sql FROM \"tabMigrationHistory\" ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(plan_sql.contains("SET NOT NULL"), "{plan_sql}");
    assert!(!plan_sql.contains("_dm_new_"), "no rebuild: {plan_sql}");
    assert_eq!(
        count(
            &db.conn(),
            "SELECT count(*) FROM \"tabNote\" WHERE title = 'untitled'"
        ),
        2
    );
    let err = db
        .conn()
        .execute_batch("INSERT INTO \"tabNote\" (name, title) VALUES ('d', NULL)")
        .unwrap_err();
    assert!(err.to_string().contains("NOT NULL"), "{err}");
    rollback_last(&db.path);
    assert_eq!(snapshot(&db.conn()), before);
}

/// Regression (found by `proptest_roundtrip`): NULLs filled with one value
/// before a new unique index is built collide, on the fast path as in the
/// rebuild. MF001 counted NULLs as distinct when the plan made no rebuild,
/// so the apply failed at `CREATE UNIQUE INDEX` instead of being refused
/// before it began. Both approaches refuse it now, with the file untouched;
/// so does a fill under a unique index the column already has.
#[test]
fn nulls_filled_into_a_unique_column_are_refused_before_the_apply() {
    let v2 = v1_with_title(
        r#"{"fieldname": "title", "fieldtype": "Data", "unique": 1, "not_nullable": 1, "default": "untitled"}"#,
    );
    for always_rebuild in [false, true] {
        for already_unique in [false, true] {
            let db = two_null_titles(&if already_unique {
                v1_with_title(r#"{"fieldname": "title", "fieldtype": "Data", "unique": 1}"#)
            } else {
                doctype(V1)
            });
            let before = db.bytes();
            let case = format!("always_rebuild={always_rebuild}, already_unique={already_unique}");
            match applier(&db.path, always_rebuild).sync_all(std::slice::from_ref(&v2)) {
                Err(Error::Blocked { findings }) => {
                    let f = findings.iter().find(|f| f.blocking).unwrap();
                    assert_eq!(f.rule, Rule::Mf001, "{case}: {f}");
                    assert_eq!(f.rows_affected, Some(2), "{case}: {f}");
                    let says = if already_unique && !always_rebuild {
                        "would be violated by the NULL fill"
                    } else {
                        "cannot be created"
                    };
                    assert!(f.message.contains(says), "{case}: {f}");
                }
                other => panic!("{case}: expected MF001, got {other:?}"),
            }
            assert_eq!(db.bytes(), before, "{case}: the file is untouched");
        }
    }
}

/// Regression (found by `proptest_roundtrip`): a column that drops
/// `unique` and becomes NOT NULL in one change. The fill ran before the
/// unique index was dropped, so the filled NULLs collided and the apply
/// failed. The index drop comes first now; the fill and the rollback work
/// as in the rebuild.
#[test]
fn a_fill_runs_after_the_unique_index_it_would_violate_is_dropped() {
    let v1 = v1_with_title(r#"{"fieldname": "title", "fieldtype": "Data", "unique": 1}"#);
    let v2 = v1_with_title(TITLE_FILLED);
    let mut results = Vec::new();
    for always_rebuild in [false, true] {
        let db = two_null_titles(&v1);
        let before = snapshot(&db.conn());
        let (how, why) = approach(&db.path, &v2, always_rebuild);
        let want = if always_rebuild {
            Approach::Rebuild
        } else {
            Approach::InPlace // the DEFAULT is a text edit, the rest native
        };
        assert_eq!(how, Some(want), "{why}");
        applier(&db.path, always_rebuild)
            .sync_all(std::slice::from_ref(&v2))
            .unwrap();
        assert_eq!(
            count(
                &db.conn(),
                "SELECT count(*) FROM \"tabNote\" WHERE title = 'untitled'"
            ),
            2
        );
        assert_eq!(integrity(&db.conn()), "ok");
        results.push(table_state(&db.conn(), "tabNote"));
        rollback_last(&db.path);
        assert_eq!(
            snapshot(&db.conn()),
            before,
            "always_rebuild={always_rebuild}"
        );
    }
    assert_eq!(results[0], results[1], "fast path and rebuild agree");
}

/// A NULL fill on a table with triggers would fire them: the rebuild.
#[test]
fn a_fill_on_a_table_with_triggers_takes_the_rebuild() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    db.conn()
        .execute_batch(
            "CREATE TABLE log (n TEXT);
             CREATE TRIGGER note_log AFTER UPDATE ON \"tabNote\" BEGIN INSERT INTO log VALUES (new.name); END;",
        )
        .unwrap();
    let v2 = v1_with_title(TITLE_FILLED);
    let (how, why) = approach(&db.path, &v2, false);
    assert_eq!(how, Some(Approach::Rebuild));
    assert!(why.contains("triggers"), "{why}");
}

/// `plan` says per table how and why, in text and JSON.
#[test]
fn plan_shows_the_approach_and_why() {
    let db = TestDb::new();
    db.applier().sync_all(&[doctype(V1)]).unwrap();
    let dir = db.dir.path().join("v2");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("note.json"),
        V1.replace("\"Open\"", "\"Closed\"").replace(
            r#""fieldname": "title", "fieldtype": "Data""#,
            r#""fieldname": "title", "fieldtype": "Data", "length": 255"#,
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_doctype-migrate");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(["plan", "--db"])
            .arg(&db.path)
            .arg("--doctypes")
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    assert!(
        text.contains("approach: in place (only the CREATE text changes"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert_eq!(json["doctypes"][0]["approach"], "in_place");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--json", "--always-rebuild"])).unwrap();
    assert_eq!(json["doctypes"][0]["approach"], "rebuild");
    assert!(
        json["doctypes"][0]["why"]
            .as_str()
            .unwrap()
            .contains("fast paths are off")
    );
}
