//! The one definition of "the live table is what the target asks for",
//! shared by the diff (which turns differences into changes), verification
//! after execution (invariant "Verified") and the shadow check (SQL001).
//!
//! A column is compared on its type (after [`super::spec::normalize_type`]), NOT NULL,
//! DEFAULT and primary key. NOT NULL is not compared on a rowid alias: an
//! `INTEGER PRIMARY KEY` never holds NULL (inserting NULL assigns the next
//! rowid) whether or not it declares NOT NULL, and `PRAGMA table_info`
//! reports the flag as declared (`id INTEGER PRIMARY KEY` 0,
//! `id INTEGER PRIMARY KEY NOT NULL` 1), so the flag says nothing about the
//! table. On every other column, a primary key that is not an
//! `INTEGER PRIMARY KEY` included (SQLite stores NULL in one unless it
//! declares NOT NULL), the flag is compared both ways.

use super::spec::{ColumnSpec, IndexSpec, TableSpec, normalize_type};

/// How a live column differs from its target; `live` is what the table has,
/// `target` what the target asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnDifference {
    /// The declared types differ after [`normalize_type`] (the values are
    /// the declared types as the specs hold them).
    Type { live: String, target: String },
    /// NOT NULL differs on a column that is not a rowid alias.
    NotNull { live: bool, target: bool },
    /// The DEFAULT expressions differ (as SQL text).
    Default {
        live: Option<String>,
        target: Option<String>,
    },
    /// The column is in the primary key on one side only.
    PrimaryKey { live: bool, target: bool },
}

impl ColumnDifference {
    /// The verification message for this difference on `column` (the target
    /// column's name).
    pub(crate) fn message(&self, column: &str) -> String {
        match self {
            ColumnDifference::Type { live, target } => {
                format!("column {column:?} has type {live} instead of {target}")
            }
            ColumnDifference::NotNull { live, target } => {
                format!("column {column:?} NOT NULL is {live} instead of {target}")
            }
            ColumnDifference::Default { live, target } => {
                format!("column {column:?} has default {live:?} instead of {target:?}")
            }
            ColumnDifference::PrimaryKey { live, .. } => {
                format!("column {column:?} primary key is {live}")
            }
        }
    }
}

/// Whether `column` of `table` is a rowid alias: the table's only primary
/// key column, declared `INTEGER` (exactly; `INT PRIMARY KEY` is not one).
///
/// A spec cannot show the two exceptions SQLite makes, `INTEGER PRIMARY KEY
/// DESC` and WITHOUT ROWID tables; the engine creates neither. (In a
/// WITHOUT ROWID table the primary key is NOT NULL anyway.)
pub(crate) fn is_rowid_alias(table: &TableSpec, column: &ColumnSpec) -> bool {
    column.primary_key
        && normalize_type(&column.decl_type) == "INTEGER"
        && table.columns.iter().filter(|c| c.primary_key).count() == 1
}

/// How the live column `live` of `live_table` differs from the target column
/// `target` of `target_table` (names are not compared: the caller paired
/// them, renames included), in the order type, NOT NULL, default, primary
/// key; empty when it is what the target asks for.
pub(crate) fn compare_column(
    target_table: &TableSpec,
    target: &ColumnSpec,
    live_table: &TableSpec,
    live: &ColumnSpec,
) -> Vec<ColumnDifference> {
    let mut out = Vec::new();
    if normalize_type(&live.decl_type) != normalize_type(&target.decl_type) {
        out.push(ColumnDifference::Type {
            live: live.decl_type.clone(),
            target: target.decl_type.clone(),
        });
    }
    let rowid_alias = is_rowid_alias(target_table, target) && is_rowid_alias(live_table, live);
    if !rowid_alias && live.not_null != target.not_null {
        out.push(ColumnDifference::NotNull {
            live: live.not_null,
            target: target.not_null,
        });
    }
    if live.default != target.default {
        out.push(ColumnDifference::Default {
            live: live.default.clone(),
            target: target.default.clone(),
        });
    }
    if live.primary_key != target.primary_key {
        out.push(ColumnDifference::PrimaryKey {
            live: live.primary_key,
            target: target.primary_key,
        });
    }
    out
}

/// Whether the live index is the target index: same uniqueness and the same
/// columns in order (case-insensitive), after the `(old, new)` column
/// `renames` still to be applied to the live table.
pub(crate) fn same_index(
    target: &IndexSpec,
    live: &IndexSpec,
    renames: &[(String, String)],
) -> bool {
    let renamed = |c: &String| {
        renames
            .iter()
            .find(|(old, _)| old.eq_ignore_ascii_case(c))
            .map(|(_, new)| new.clone())
            .unwrap_or_else(|| c.clone())
    };
    target.unique == live.unique
        && target.columns.len() == live.columns.len()
        && target
            .columns
            .iter()
            .zip(live.columns.iter().map(renamed))
            .all(|(a, b)| a.eq_ignore_ascii_case(&b))
}

/// Differences between the live table and the target, plus the `orphans`
/// kept, as verification messages; empty when they match. Unmanaged indexes
/// are not compared; AUTOINCREMENT is not either (the live spec verification
/// reads does not carry it).
pub fn differences(target: &TableSpec, orphans: &[String], live: &TableSpec) -> Vec<String> {
    let mut out = Vec::new();
    for t in &target.columns {
        let Some(l) = live.column(&t.name) else {
            out.push(format!("column {:?} is missing", t.name));
            continue;
        };
        out.extend(
            compare_column(target, t, live, l)
                .iter()
                .map(|d| d.message(&t.name)),
        );
    }
    for l in &live.columns {
        let expected = target.column(&l.name).is_some()
            || orphans.iter().any(|o| o.eq_ignore_ascii_case(&l.name));
        if !expected {
            out.push(format!("unexpected column {:?}", l.name));
        }
    }
    for t in &target.indexes {
        match live.index(&t.name) {
            Some(l) if same_index(t, l, &[]) => {}
            Some(_) => out.push(format!("index {:?} differs from its definition", t.name)),
            None => out.push(format!("index {:?} is missing", t.name)),
        }
    }
    for l in live.indexes.iter().filter(|i| i.is_managed()) {
        if target.index(&l.name).is_none() {
            out.push(format!(
                "managed index {:?} should have been dropped",
                l.name
            ));
        }
    }
    out
}

/// What is wrong with the table after a plan ran, as verification messages;
/// empty when it is what the plan promised. `live` is the table read back
/// (`None`: it does not exist); `drops_table` whether the plan drops it.
pub(crate) fn check_table(
    target: &TableSpec,
    orphans: &[String],
    drops_table: bool,
    live: Option<&TableSpec>,
) -> Vec<String> {
    match (live, drops_table) {
        (None, true) => Vec::new(),
        (Some(_), true) => vec!["the table still exists".into()],
        (None, false) => vec!["the table does not exist".into()],
        (Some(live), false) => differences(target, orphans, live),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctype::DocType;
    use crate::schema::{SchemaSnapshot, introspect_table, table_spec, target_spec};
    use rusqlite::Connection;

    fn col(name: &str, ty: &str) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            decl_type: ty.into(),
            not_null: false,
            default: None,
            primary_key: false,
        }
    }

    fn spec(columns: Vec<ColumnSpec>, indexes: Vec<IndexSpec>) -> TableSpec {
        TableSpec {
            name: "tabX".into(),
            columns,
            indexes,
            autoincrement: false,
        }
    }

    fn idx(name: &str, unique: bool) -> IndexSpec {
        IndexSpec {
            name: name.into(),
            columns: vec!["a".into()],
            unique,
        }
    }

    /// `tabX` created with `columns` in a fresh in-memory database, read
    /// back by the crate's introspection, and the connection.
    fn live_table(columns: &str) -> (Connection, TableSpec) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("CREATE TABLE \"tabX\" ({columns})"))
            .unwrap();
        let snapshot = SchemaSnapshot::read_table(&conn, "tabX").unwrap();
        let live = introspect_table(&conn, &snapshot, "tabX").unwrap().unwrap();
        (conn, live.spec)
    }

    #[test]
    fn matching_tables_and_kept_orphans_pass() {
        let target = spec(vec![col("a", "TEXT")], vec![idx("dm_idx__tabX__a", false)]);
        let live = spec(
            vec![col("A", "text"), col("old", "TEXT")],
            vec![idx("dm_idx__tabX__a", false), idx("user_idx", true)],
        );
        assert!(differences(&target, &["old".into()], &live).is_empty());
    }

    #[test]
    fn every_kind_of_mismatch_is_reported() {
        let mut wanted = col("a", "INTEGER");
        wanted.not_null = true;
        wanted.default = Some("0".into());
        let target = spec(
            vec![wanted, col("b", "TEXT")],
            vec![idx("dm_uq__tabX__a", true)],
        );
        let live = spec(
            vec![col("a", "TEXT"), col("stray", "TEXT")],
            vec![
                idx("dm_uq__tabX__a", false),
                idx("dm_idx__tabX__gone", false),
            ],
        );
        let found = differences(&target, &[], &live).join("\n");
        for expected in [
            "column \"a\" has type TEXT instead of INTEGER",
            "column \"a\" NOT NULL is false instead of true",
            "column \"a\" has default None instead of Some(\"0\")",
            "column \"b\" is missing",
            "unexpected column \"stray\"",
            "index \"dm_uq__tabX__a\" differs from its definition",
            "managed index \"dm_idx__tabX__gone\" should have been dropped",
        ] {
            assert!(
                found.contains(expected),
                "missing {expected:?} in:\n{found}"
            );
        }
        let mut key = col("b", "TEXT");
        key.primary_key = true;
        let target = spec(vec![key], Vec::new());
        assert_eq!(
            differences(&target, &[], &spec(vec![col("b", "TEXT")], Vec::new())),
            ["column \"b\" primary key is false"]
        );
    }

    #[test]
    fn a_dropped_table_must_be_gone_and_any_other_must_exist() {
        let target = spec(vec![col("a", "TEXT")], Vec::new());
        assert!(check_table(&target, &[], true, None).is_empty());
        assert_eq!(
            check_table(&target, &[], true, Some(&target)),
            ["the table still exists"]
        );
        assert_eq!(
            check_table(&target, &[], false, None),
            ["the table does not exist"]
        );
        assert!(check_table(&target, &[], false, Some(&target)).is_empty());
    }

    /// What SQLite reports and stores, through the crate's introspection:
    /// NOT NULL as declared, and NULL never stored in a rowid alias.
    #[test]
    fn sqlite_reports_not_null_as_declared_and_stores_null_only_outside_rowid_aliases() {
        // (column, reported NOT NULL, a NULL inserted is stored as NULL)
        for (column, not_null, stores_null) in [
            ("id INTEGER PRIMARY KEY", false, false),
            ("id INTEGER PRIMARY KEY NOT NULL", true, false),
            ("id INTEGER PRIMARY KEY AUTOINCREMENT", false, false),
            ("id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT", true, false),
            ("id VARCHAR(140) PRIMARY KEY", false, true),
            ("id VARCHAR(140) PRIMARY KEY NOT NULL", true, false),
            ("id INT PRIMARY KEY", false, true),
        ] {
            let (conn, live) = live_table(column);
            let id = &live.columns[0];
            assert!(id.primary_key, "{column}");
            assert_eq!(id.not_null, not_null, "{column}: introspected NOT NULL");
            let verified = table_spec(&conn, "tabX").unwrap().unwrap();
            assert_eq!(
                verified.columns[0].not_null, not_null,
                "{column}: table_spec"
            );
            // NOT NULL refuses the row; a rowid alias takes the next rowid.
            let _ = conn.execute("INSERT INTO \"tabX\" (id) VALUES (NULL)", []);
            let nulls: i64 = conn
                .query_row("SELECT count(*) FROM \"tabX\" WHERE id IS NULL", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(nulls == 1, stores_null, "{column}: NULL stored");
        }
    }

    #[test]
    fn not_null_is_ignored_only_on_a_rowid_alias_on_both_sides() {
        let not_null = |target_decl: &str, target_nn: bool, live_columns: &str| {
            let mut id = col("id", target_decl);
            id.primary_key = true;
            id.not_null = target_nn;
            let target = spec(vec![id, col("b", "TEXT")], Vec::new());
            let (_conn, live) = live_table(live_columns);
            compare_column(&target, &target.columns[0], &live, &live.columns[0])
        };
        let differs = |live: bool, target: bool| vec![ColumnDifference::NotNull { live, target }];
        // A rowid alias on both sides: the flag says nothing.
        assert!(not_null("INTEGER", false, "id INTEGER PRIMARY KEY NOT NULL, b TEXT").is_empty());
        assert!(not_null("INTEGER", true, "id INTEGER PRIMARY KEY, b TEXT").is_empty());
        assert!(not_null("integer", true, "id integer PRIMARY KEY, b TEXT").is_empty());
        // Not an alias: INT, or a composite primary key, or a text key.
        assert_eq!(
            not_null("INT", true, "id INT PRIMARY KEY, b TEXT"),
            differs(false, true)
        );
        assert_eq!(
            not_null("INTEGER", true, "id INTEGER, b TEXT, PRIMARY KEY (id, b)"),
            differs(false, true),
            "the live id is part of a composite key, not an alias"
        );
        assert_eq!(
            not_null(
                "VARCHAR(140)",
                false,
                "id VARCHAR(140) PRIMARY KEY NOT NULL, b TEXT"
            ),
            differs(true, false)
        );
        assert_eq!(
            not_null("VARCHAR(140)", true, "id VARCHAR(140) PRIMARY KEY, b TEXT"),
            differs(false, true)
        );
        // An alias in the target but not in the table: the types differ,
        // and so does the flag.
        assert_eq!(
            not_null("INTEGER", true, "id INT PRIMARY KEY, b TEXT"),
            [
                ColumnDifference::Type {
                    live: "INT".into(),
                    target: "INTEGER".into()
                },
                ColumnDifference::NotNull {
                    live: false,
                    target: true
                }
            ]
        );
    }

    /// The specs `target_spec` builds describe the tables their own CREATE
    /// TABLE makes, and the same tables with the NOT NULL a hand-made
    /// autoincrement table may declare.
    #[test]
    fn target_specs_match_the_tables_they_create() {
        let mut log = DocType::new("Log");
        log.autoname = Some("autoincrement".into());
        let note = DocType::new("Note");
        for (dt, name, not_null) in [(&log, "INTEGER", false), (&note, "VARCHAR(140)", true)] {
            let target = target_spec(dt).unwrap().unwrap();
            let key = &target.columns[0];
            assert_eq!((key.name.as_str(), key.decl_type.as_str()), ("name", name));
            assert_eq!((key.primary_key, key.not_null), (true, not_null));
            assert_eq!(target.autoincrement, !not_null);
            let conn = Connection::open_in_memory().unwrap();
            conn.execute_batch(&target.create_sql()).unwrap();
            let live = table_spec(&conn, &target.name).unwrap().unwrap();
            assert_eq!(differences(&target, &[], &live), Vec::<String>::new());
        }
        let target = target_spec(&log).unwrap().unwrap();
        let declared = target.create_sql().replace(
            "\"name\" INTEGER PRIMARY KEY AUTOINCREMENT",
            "\"name\" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
        );
        assert_ne!(declared, target.create_sql());
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&declared).unwrap();
        let live = table_spec(&conn, &target.name).unwrap().unwrap();
        assert!(live.columns[0].not_null);
        assert_eq!(differences(&target, &[], &live), Vec::<String>::new());
    }

    #[test]
    fn indexes_match_after_renames_and_ignoring_case() {
        let target = IndexSpec {
            name: "dm_idx__tabX__b".into(),
            columns: vec!["b".into(), "c".into()],
            unique: false,
        };
        let live = IndexSpec {
            columns: vec!["a".into(), "C".into()],
            ..target.clone()
        };
        assert!(!same_index(&target, &live, &[]));
        assert!(same_index(&target, &live, &[("A".into(), "b".into())]));
        let unique = IndexSpec {
            unique: true,
            ..target.clone()
        };
        assert!(!same_index(&unique, &target, &[]));
        let shorter = IndexSpec {
            columns: vec!["b".into()],
            ..target.clone()
        };
        assert!(!same_index(&shorter, &target, &[]));
    }
}
