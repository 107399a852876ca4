//! Release-history replay: the DocTypes of consecutive releases of a real
//! Frappe app applied in order to one database holding data, then every
//! batch rolled back, newest first, to exactly the state before it (see
//! replay_support.rs for the checks). The corpus tests skip when
//! `../shared/corpus/frappe-apps` is absent; the fixture tests always run.
//! `scripts/replay.sh DIR...` replays any folders through `replay_from_env`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::replay_support::{diff_states, fill_empty_tables, normalize_sql, replay, state};
use rusqlite::Connection;

fn corpus_releases(folders: &[&str]) -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/frappe-apps");
    if !root.is_dir() {
        eprintln!("skipped: ../shared/corpus/frappe-apps not found");
        return None;
    }
    let dirs: Vec<PathBuf> = folders.iter().map(|f| root.join(f)).collect();
    if let Some(missing) = dirs.iter().find(|d| !d.is_dir()) {
        eprintln!(
            "skipped: {} not found in ../shared/corpus/frappe-apps",
            missing.display()
        );
        return None;
    }
    Some(dirs)
}

#[test]
fn lms_history_replays_forward_and_back() {
    let Some(dirs) = corpus_releases(&["lms-v1.0.0", "lms-v2.20.0", "lms-v2.61.0"]) else {
        return;
    };
    let summary = replay(&dirs);
    assert!(
        summary.steps.iter().all(|s| s.batch_id.is_some()),
        "every LMS release changes the schema"
    );
    assert_eq!(summary.rolled_back.len(), 3);
}

#[test]
fn education_history_replays_forward_and_back() {
    let Some(dirs) = corpus_releases(&["education-v15.0.0", "education-v15.5.2"]) else {
        return;
    };
    let summary = replay(&dirs);
    assert!(summary.steps[0].batch_id.is_some());
    assert!(!summary.rolled_back.is_empty());
}

/// `DM_REPLAY_DIRS=dir1:dir2:...` (what scripts/replay.sh sets): replays
/// those folders in order. Without the variable, does nothing.
#[test]
fn replay_from_env() {
    let Some(value) = std::env::var_os("DM_REPLAY_DIRS") else {
        return;
    };
    let value = value.to_string_lossy().into_owned();
    let dirs: Vec<PathBuf> = value
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    assert!(
        !dirs.is_empty(),
        "DM_REPLAY_DIRS is set but names no folder"
    );
    for d in &dirs {
        assert!(
            d.is_dir(),
            "DM_REPLAY_DIRS: {} is not a directory",
            d.display()
        );
    }
    let summary = replay(&dirs);
    eprintln!(
        "replay: {} release(s) applied and {} batch(es) rolled back",
        summary.steps.len(),
        summary.rolled_back.len()
    );
}

// ---------------------------------------------------------------------------
// Self-made releases: the harness works without the corpus.
// ---------------------------------------------------------------------------

fn doctype_json(name: &str, istable: bool, fields: &str) -> String {
    format!(
        r#"{{
 "doctype": "DocType",
 "name": "{name}",
 "module": "Replay Test",
 "istable": {},
 "autoname": "hash",
 "fields": [{fields}]
}}"#,
        i32::from(istable)
    )
}

fn write(dir: &Path, file: &str, json: String) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), json).unwrap();
}

/// Three releases of a tiny app:
/// 1. Note (title Data, qty Int);
/// 2. Note gains a Check and a child table, qty becomes Float; Note Item
///    (istable) appears;
/// 3. title's length changes and it gets a search index, Note Item's `item`
///    becomes unique, and a new DocType Tag appears.
fn fixture_releases(root: &Path) -> Vec<PathBuf> {
    let r1 = root.join("app-v1");
    write(
        &r1,
        "note.json",
        doctype_json(
            "Note",
            false,
            r#"{"fieldname": "title", "fieldtype": "Data", "label": "Title"},
               {"fieldname": "qty", "fieldtype": "Int", "label": "Qty"}"#,
        ),
    );

    let r2 = root.join("app-v2");
    write(
        &r2,
        "note.json",
        doctype_json(
            "Note",
            false,
            r#"{"fieldname": "title", "fieldtype": "Data", "label": "Title"},
               {"fieldname": "qty", "fieldtype": "Float", "label": "Qty"},
               {"fieldname": "done", "fieldtype": "Check", "default": "0", "label": "Done"},
               {"fieldname": "items", "fieldtype": "Table", "options": "Note Item", "label": "Items"}"#,
        ),
    );
    write(
        &r2,
        "note_item.json",
        doctype_json(
            "Note Item",
            true,
            r#"{"fieldname": "item", "fieldtype": "Data", "label": "Item"},
               {"fieldname": "amount", "fieldtype": "Currency", "label": "Amount"}"#,
        ),
    );

    let r3 = root.join("app-v3");
    write(
        &r3,
        "note.json",
        doctype_json(
            "Note",
            false,
            r#"{"fieldname": "title", "fieldtype": "Data", "length": 80, "search_index": 1, "label": "Title"},
               {"fieldname": "qty", "fieldtype": "Float", "label": "Qty"},
               {"fieldname": "done", "fieldtype": "Check", "default": "0", "label": "Done"},
               {"fieldname": "items", "fieldtype": "Table", "options": "Note Item", "label": "Items"},
               {"fieldname": "tag", "fieldtype": "Link", "options": "Tag", "label": "Tag"}"#,
        ),
    );
    write(
        &r3,
        "note_item.json",
        doctype_json(
            "Note Item",
            true,
            r#"{"fieldname": "item", "fieldtype": "Data", "unique": 1, "label": "Item"},
               {"fieldname": "amount", "fieldtype": "Currency", "label": "Amount"}"#,
        ),
    );
    write(
        &r3,
        "tag.json",
        doctype_json(
            "Tag",
            false,
            r#"{"fieldname": "label", "fieldtype": "Data", "unique": 1, "label": "Label"},
               {"fieldname": "weight", "fieldtype": "Int", "label": "Weight"}"#,
        ),
    );
    vec![r1, r2, r3]
}

#[test]
fn fixture_history_replays_forward_and_back() {
    let root = tempfile::tempdir().unwrap();
    let dirs = fixture_releases(root.path());
    let summary = replay(&dirs);

    let labels: Vec<&str> = summary.steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["app-v1", "app-v2", "app-v3"]);
    assert!(
        summary.steps.iter().all(|s| s.batch_id.is_some()),
        "every release changes the schema: {summary:#?}"
    );
    assert_eq!(summary.steps[0].migrations, ["Note"]);
    assert_eq!(summary.steps[0].filled, ["tabNote"]);
    assert_eq!(summary.steps[1].filled, ["tabNote Item"]);
    assert_eq!(summary.steps[2].filled, ["tabTag"]);
    // The rows filled after v1 were carried through v2 and v3.
    assert_eq!(summary.steps[1].counts_after["tabNote"], 3);
    assert_eq!(summary.steps[2].counts_after["tabNote"], 3);
    assert_eq!(summary.final_counts["tabNote Item"], 3);
    assert_eq!(summary.final_counts["tabTag"], 3);
    assert_eq!(summary.rolled_back.len(), 3);
    let newest_first: Vec<&String> = summary
        .steps
        .iter()
        .rev()
        .map(|s| s.batch_id.as_ref().unwrap())
        .collect();
    assert_eq!(summary.rolled_back.iter().collect::<Vec<_>>(), newest_first);
}

/// The state comparison cannot silently pass: a changed value, a changed
/// storage class, a changed schema object, a lost row, a changed sequence
/// are all reported, with the table named. Whitespace in SQL is not.
#[test]
fn state_comparison_catches_differences() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE \"tabNote\" (\"name\" VARCHAR(140) NOT NULL PRIMARY KEY,
             \"title\" VARCHAR(140), \"qty\" INTEGER NOT NULL DEFAULT 0, \"rate\" REAL);
         CREATE TABLE \"tabSeq\" (\"name\" INTEGER PRIMARY KEY AUTOINCREMENT, \"x\" TEXT);",
    )
    .unwrap();
    assert_eq!(fill_empty_tables(&conn), ["tabNote", "tabSeq"]);
    assert!(
        fill_empty_tables(&conn).is_empty(),
        "filled tables are left alone"
    );
    let base = state(&conn);
    assert_eq!(base.data["tabNote"].rows.len(), 3);
    assert_eq!(
        base.data["tabNote"].columns,
        ["rowid", "name", "title", "qty", "rate"]
    );
    let first: Vec<String> = base.data["tabNote"].rows[0]
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        first,
        [
            "1:integer",
            "'1001':text",
            "'1001':text",
            "1:integer",
            "2.0:real"
        ],
        "the documented fill values"
    );
    assert_eq!(diff_states(&base, &state(&conn)), Vec::<String>::new());

    let differs = |sql: &str, undo: &str, needle: &str| {
        conn.execute_batch(sql).unwrap();
        let changed = state(&conn);
        assert_ne!(base, changed, "after {sql}");
        let diffs = diff_states(&base, &changed);
        assert!(
            diffs.iter().any(|d| d.contains(needle)),
            "after {sql}: {needle:?} not in {diffs:#?}"
        );
        conn.execute_batch(undo).unwrap();
        assert_eq!(
            diff_states(&base, &state(&conn)),
            Vec::<String>::new(),
            "after {undo}"
        );
    };
    // A value.
    differs(
        "UPDATE \"tabNote\" SET qty = 5 WHERE name = '1002'",
        "UPDATE \"tabNote\" SET qty = 2 WHERE name = '1002'",
        "data: table \"tabNote\": row #1 differs",
    );
    // The storage class only (a blob with the same bytes as the text).
    differs(
        "UPDATE \"tabNote\" SET title = X'31303031' WHERE name = '1001'",
        "UPDATE \"tabNote\" SET title = '1001' WHERE name = '1001'",
        "title=X'31303031':blob",
    );
    // A real that is not the integral value stored.
    differs(
        "UPDATE \"tabNote\" SET rate = 2.0000000001 WHERE name = '1001'",
        "UPDATE \"tabNote\" SET rate = 2.0 WHERE name = '1001'",
        "rate=2.0000000001:real",
    );
    // A lost row.
    differs(
        "DELETE FROM \"tabNote\" WHERE name = '1003'",
        "INSERT INTO \"tabNote\" VALUES ('1003', '1003', 3, 4.0)",
        "expected 3 row(s), found 2",
    );
    // A new index.
    differs(
        "CREATE INDEX \"ix\" ON \"tabNote\" (title)",
        "DROP INDEX \"ix\"",
        "schema: unexpected index \"ix\"",
    );
    // An AUTOINCREMENT high-water mark.
    differs(
        "UPDATE sqlite_sequence SET seq = 99 WHERE name = 'tabSeq'",
        "UPDATE sqlite_sequence SET seq = 3 WHERE name = 'tabSeq'",
        "sqlite_sequence: table \"tabSeq\"",
    );
    // A dropped table.
    differs(
        "ALTER TABLE \"tabNote\" RENAME TO \"tabNote2\"",
        "ALTER TABLE \"tabNote2\" RENAME TO \"tabNote\"",
        "data: table \"tabNote\" is missing",
    );

    assert_eq!(
        normalize_sql("CREATE TABLE  x (\n  a INT,\tb TEXT )\n"),
        "CREATE TABLE x ( a INT, b TEXT )"
    );
}
