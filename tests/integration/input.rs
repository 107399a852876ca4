//! DocType input, accepted and refused, from the library's loaders to the
//! command line:
//!
//! - Parsing and validation: Frappe and SODAF JSON from strings, files and
//!   directory trees, and every class of rejected input, named by file,
//!   DocType and field. Fixtures live in
//!   `tests/fixtures/doctype_input/<case>/`; cases that need unusual content
//!   (NUL bytes, symlinks) are written to temp dirs.
//! - Bad input to `sync_all`: an error naming the file and field, and the
//!   database byte-identical.
//! - Hostile input through the CLI: each class gives a non-zero exit, a
//!   message that names what is wrong, and a byte-identical database (and
//!   no stray file beside it). One test per class (fixtures in
//!   `tests/fixtures/hostile_doctypes/`), plus a proptest over DocType
//!   parsing and planning that must never panic.
//!
//! Decisions recorded here:
//! - Quotes, `;`, `--` and `/* */` in *defaults and options* are data, not
//!   errors: they are stored verbatim as SQL literals (and proven harmless
//!   below). In *identifiers* (DocType, field and index names) they are
//!   refused. NUL bytes are refused everywhere.
//! - Identifiers are ASCII (Frappe's fieldname rule); unicode in labels,
//!   defaults and options is fine.
//! - 5,000 fields: refused before the database is opened, naming the
//!   DocType and SQLite's 2000-column limit; exactly 2000 columns works.
//! - An empty DocType (no fields) is valid: a table of standard columns.

use std::error::Error as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use doctype_migrate::{
    Conflict, DocType, Error, Field, FieldType, MigrationApplier, conflicts, doctypes_from_json,
    load_path, load_paths, validate_doctypes,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{TestDb, column_names, count, doctype, fixture};

// ============================================================================
// Parsing and validation: the library's loaders
// ============================================================================

/// `tests/fixtures/doctype_input/<case>`.
fn input_fixture(case: &str) -> PathBuf {
    fixture("doctype_input").join(case)
}

fn names(dts: &[DocType]) -> Vec<&str> {
    dts.iter().map(|d| d.name.as_str()).collect()
}

fn field<'a>(dt: &'a DocType, name: &str) -> &'a Field {
    dt.fields
        .iter()
        .find(|f| f.fieldname == name)
        .unwrap_or_else(|| panic!("no field {name:?} in {}", dt.name))
}

/// Asserts `err` is `InvalidDocType` and that its text contains every needle.
fn assert_invalid(err: &Error, needles: &[&str]) {
    assert!(
        matches!(err, Error::InvalidDocType { .. }),
        "expected InvalidDocType, got {err:?}"
    );
    let text = err.to_string();
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
}

/// Writes `files` (relative path, content) under a fresh temp dir.
fn temp_tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (rel, content) in files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, content).expect("write");
    }
    dir
}

/// Parses `json` as `<string>` and validates it; returns the error.
fn rejection(json: &str) -> Error {
    let dts = match doctypes_from_json(json, "<string>") {
        Ok(dts) => dts,
        Err(e) => return e,
    };
    match validate_doctypes(&dts) {
        Ok(()) => panic!("accepted: {dts:?}"),
        Err(e) => e,
    }
}

// --- accepted input ---------------------------------------------------------

#[test]
fn frappe_file_is_read_with_its_flags() {
    let path = input_fixture("frappe/note.json");
    let dts = load_path(&path).expect("load");
    validate_doctypes(&dts).expect("valid");
    let [note] = dts.as_slice() else {
        panic!("one DocType expected, got {}", dts.len())
    };
    assert_eq!(note.name, "Note");
    assert_eq!(note.origin, path.display().to_string());
    assert_eq!(note.module.as_deref(), Some("Desk"));
    assert_eq!(note.autoname.as_deref(), Some("hash"));
    assert!(note.track_seen && !note.istable && note.has_table());
    // The Column Break without a fieldname is dropped; the named Section Break kept.
    let fieldnames: Vec<_> = note.fields.iter().map(|f| f.fieldname.as_str()).collect();
    assert_eq!(
        fieldnames,
        [
            "title",
            "public",
            "notify_on_login",
            "expire_notification_on",
            "section_break_5",
            "content",
            "seen_by"
        ]
    );
    let title = field(note, "title");
    assert!(title.reqd && title.search_index && !title.unique && !title.not_nullable);
    assert_eq!(field(note, "public").default.as_deref(), Some("0"));
    assert_eq!(field(note, "public").fieldtype, FieldType::Check);
    assert_eq!(
        field(note, "content").length,
        None,
        "empty string length means none"
    );
    let seen_by = field(note, "seen_by");
    assert_eq!(seen_by.options.as_deref(), Some("Note Seen By"));
    assert!(!seen_by.has_column());
}

#[test]
fn sodaf_file_is_read_with_booleans_aliases_and_indexes() {
    let dts = load_path(&input_fixture("sodaf/library.json")).expect("load");
    validate_doctypes(&dts).expect("valid");
    assert_eq!(names(&dts), ["Library Member", "Library Loan Item"]);
    let member = &dts[0];
    assert!(member.is_autoincrement());
    assert!(field(member, "full_name").reqd);
    assert_eq!(field(member, "full_name").length, Some(200));
    let email = field(member, "email");
    assert!(email.unique && email.search_index);
    assert_eq!(field(member, "active").default.as_deref(), Some("1"));
    assert!(field(member, "active").not_nullable);
    assert_eq!(field(member, "fee").default.as_deref(), Some("12.5"));
    assert_eq!(field(member, "fee").precision, Some(2));
    assert_eq!(
        field(member, "phone").renamed_from.as_deref(),
        Some("mobile_no")
    );
    assert!(field(member, "score").is_virtual && !field(member, "score").has_column());

    let ix = &member.indexes;
    assert_eq!(ix.len(), 4);
    assert_eq!(ix[0].name.as_deref(), Some("idx_member_name_since"));
    assert_eq!(ix[0].fields, ["full_name", "member_since"]);
    assert!(!ix[0].unique && ix[1].unique);
    assert_eq!(ix[1].fields, ["email", "active"]);
    assert_eq!(ix[2].fields, ["active", "fee"]);
    assert_eq!(ix[3].fields, ["member_since"]);

    let item = &dts[1];
    assert!(item.istable);
    assert!(field(item, "book").reqd);
    assert_eq!(field(item, "qty").default.as_deref(), Some("1"));
}

#[test]
fn directory_tree_is_walked_in_sorted_order_skipping_other_json() {
    let root = input_fixture("tree");
    let dts = load_path(&root).expect("load");
    // my_app/fixtures/*.json (records) and package.json are skipped; the .py is not JSON.
    assert_eq!(
        names(&dts),
        ["Sales Order", "Sales Order Item", "Author", "Book"]
    );
    let book = &dts[3];
    assert_eq!(
        book.origin,
        root.join("sodaf_defs/nested/book.json")
            .display()
            .to_string()
    );
    assert!(field(book, "isbn").search_index);
    // Deterministic: a second walk gives the same result.
    assert_eq!(load_path(&root).expect("again"), dts);
}

#[test]
fn load_paths_concatenates_in_order_and_validates() {
    let dts = load_paths(&[
        input_fixture("sodaf/library.json"),
        input_fixture("tree"),
        input_fixture("frappe"),
    ])
    .expect("load");
    assert_eq!(
        names(&dts),
        [
            "Library Member",
            "Library Loan Item",
            "Sales Order",
            "Sales Order Item",
            "Author",
            "Book",
            "Note"
        ]
    );
    // The same tree twice defines every DocType twice.
    let err = load_paths(&[input_fixture("tree"), input_fixture("tree")]).expect_err("duplicates");
    assert_invalid(&err, &["Sales Order", "defined twice", "sales_order.json"]);
}

#[test]
fn string_input_may_be_an_object_or_an_array() {
    let one = doctypes_from_json(r#"{"name": "Task", "fields": []}"#, "<string>").expect("object");
    assert_eq!(names(&one), ["Task"]);
    assert_eq!(one[0].origin, "<string>");
    let two = doctypes_from_json(
        r#"[{"name": "A"}, {"doctype": "DocType", "name": "B"}]"#,
        "inline",
    )
    .expect("array");
    assert_eq!(names(&two), ["A", "B"]);
    assert!(two.iter().all(|d| d.origin == "inline"));
}

#[test]
fn doctypes_built_in_code_validate() {
    let dt = DocType::new("Project Task")
        .field(Field::new("subject", FieldType::Data).indexed())
        .field(Field::new("progress", FieldType::Percent).default_value("0"))
        .field(Field::new("idx", FieldType::Int)); // reuses the standard column, as Web Page does
    dt.validate().expect("valid");
    // A child table's `parent` declared as Int keeps the standard column
    // (QK002); only a spelling that differs in case is refused.
    let child = DocType::new("Project Task Item")
        .child_table()
        .field(Field::new("parent", FieldType::Int));
    child.validate().expect("accepted, with a warning");
    assert_eq!(child.warnings()[0].code.as_str(), "QK002");
    let child = DocType::new("Project Task Item")
        .child_table()
        .field(Field::new("Parent", FieldType::Data));
    let err = child
        .validate()
        .expect_err("Parent differs from parent only in case");
    assert_invalid(
        &err,
        &[
            "<code>",
            "Project Task Item",
            "\"Parent\"",
            "collides with standard column",
        ],
    );
}

#[test]
fn symlink_loops_are_walked_once() {
    let dir = temp_tree(&[("defs/a.json", r#"{"name": "A", "fields": []}"#)]);
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path(), dir.path().join("defs/loop")).expect("symlink");
    let dts = load_path(dir.path()).expect("load");
    assert_eq!(names(&dts), ["A"]);
}

// --- rejected input ---------------------------------------------------------

#[test]
fn malformed_json_names_the_file_and_the_position() {
    let path = input_fixture("malformed/broken.json");
    for result in [load_path(&path), load_path(&input_fixture("malformed"))] {
        let err = result.expect_err("malformed");
        let Error::Json { origin, source } = &err else {
            panic!("expected Error::Json, got {err:?}");
        };
        assert_eq!(origin, &path.display().to_string());
        assert!(err.to_string().contains("broken.json"), "{err}");
        assert_eq!(source.line(), 5, "{source}");
        let chain = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(chain.contains("line 5"), "{chain}");
    }
}

#[test]
fn malformed_json_inside_a_tree_stops_the_walk() {
    let dir = temp_tree(&[
        ("a.json", r#"{"name": "A", "fields": []}"#),
        ("sub/notes.json", "{ not json"),
    ]);
    let err = load_path(dir.path()).expect_err("malformed");
    assert!(
        matches!(&err, Error::Json { origin, .. } if origin.ends_with("notes.json")),
        "{err:?}"
    );
}

#[test]
fn missing_path_is_an_io_error_naming_it() {
    let missing = input_fixture("does_not_exist");
    for result in [
        load_path(&missing),
        load_path(&missing),
        load_paths(std::slice::from_ref(&missing)),
    ] {
        match result {
            Err(Error::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }
}

#[test]
fn wrong_json_types_name_the_file_doctype_and_property() {
    let err = load_path(&input_fixture("wrong_types/fields_not_array.json")).expect_err("fields");
    assert_invalid(
        &err,
        &[
            "fields_not_array.json",
            "Wrong Fields",
            "\"fields\" is an object",
        ],
    );

    let err = load_path(&input_fixture("wrong_types/reqd_yes.json")).expect_err("reqd");
    assert_invalid(
        &err,
        &[
            "reqd_yes.json",
            "Wrong Flag",
            "field \"customer_name\"",
            "\"reqd\" is \"yes\"",
        ],
    );
    match err {
        Error::InvalidDocType { field, doctype, .. } => {
            assert_eq!(field.as_deref(), Some("customer_name"));
            assert_eq!(doctype, "Wrong Flag");
        }
        other => panic!("{other:?}"),
    }

    for (json, needle) in [
        (r#"{"name": 5}"#, "\"name\" is 5"),
        (
            r#"{"name": "T", "fields": [{"fieldname": "a", "fieldtype": "Data", "length": -3}]}"#,
            "\"length\" is -3",
        ),
        (
            r#"{"name": "T", "fields": [{"fieldname": "a", "fieldtype": "Data", "default": {}}]}"#,
            "\"default\" is an object",
        ),
        (r#"{"name": "T", "fields": ["a"]}"#, "fields[0]"),
        (
            r#"{"name": "T", "indexes": {"a": 1}}"#,
            "\"indexes\" is an object",
        ),
    ] {
        assert_invalid(&rejection(json), &["<string>", needle]);
    }
}

#[test]
fn unknown_fieldtype_names_field_and_type() {
    let err =
        rejection(r#"{"name": "T", "fields": [{"fieldname": "amount", "fieldtype": "Money"}]}"#);
    assert_invalid(
        &err,
        &[
            "<string>",
            "DocType \"T\"",
            "field \"amount\"",
            "unknown fieldtype \"Money\"",
        ],
    );
}

#[test]
fn injected_identifiers_are_refused() {
    let evil = r#"x\"; DROP TABLE y; --"#;
    let err = rejection(&format!(
        r#"{{"name": "T", "fields": [{{"fieldname": "{evil}", "fieldtype": "Data"}}]}}"#
    ));
    assert_invalid(
        &err,
        &[
            "DocType \"T\"",
            "DROP TABLE",
            "only letters, digits and underscores",
        ],
    );
    let err = rejection(&format!(r#"{{"name": "{evil}", "fields": []}}"#));
    assert_invalid(&err, &["DROP TABLE", "only letters, digits, spaces"]);
    let err = rejection(&format!(
        r#"{{"name": "T", "fields": [{{"fieldname": "a", "fieldtype": "Data"}}], "indexes": [{{"name": "{evil}", "fields": ["a"]}}]}}"#
    ));
    assert_invalid(&err, &["index name"]);
}

#[test]
fn nul_bytes_are_refused_in_files() {
    let dir = temp_tree(&[(
        "nul.json",
        r#"{"name": "T", "fields": [{"fieldname": "a", "fieldtype": "Select", "options": "A\u0000B"}]}"#,
    )]);
    let err = load_path(dir.path()).expect_err("NUL");
    assert_invalid(&err, &["nul.json", "field \"a\"", "NUL"]);
    let err = rejection(r#"{"name": "T\u0000x"}"#);
    assert_invalid(&err, &["NUL"]);
}

#[test]
fn very_long_names_are_refused() {
    let long_field = "f".repeat(65);
    let err = rejection(&format!(
        r#"{{"name": "T", "fields": [{{"fieldname": "{long_field}", "fieldtype": "Data"}}]}}"#
    ));
    assert_invalid(&err, &["65 characters", "at most 64"]);
    let long_doctype = "D".repeat(62);
    let err = rejection(&format!(r#"{{"name": "{long_doctype}"}}"#));
    assert_invalid(&err, &["62 characters", "at most 61"]);
}

#[test]
fn duplicate_fieldnames_differing_in_case_are_refused() {
    // The same name exactly is accepted (QK001, see frappe_apps.rs).
    let dts = doctypes_from_json(
        r#"{"name": "T", "fields": [{"fieldname": "code", "fieldtype": "Data"}, {"fieldname": "code", "fieldtype": "Int"}]}"#,
        "<string>",
    )
    .expect("parse");
    validate_doctypes(&dts).expect("accepted as Frappe accepts it");
    let err = rejection(
        r#"{"name": "T", "fields": [{"fieldname": "code", "fieldtype": "Data"}, {"fieldname": "Code", "fieldtype": "Data"}]}"#,
    );
    assert_invalid(&err, &["\"code\"", "\"Code\"", "differ only in case"]);
}

#[test]
fn standard_column_collisions_in_another_case_and_name_are_refused() {
    for (fieldname, fieldtype) in [("Owner", "Int"), ("Modified", "Datetime"), ("name", "Data")] {
        let err = rejection(&format!(
            r#"{{"name": "T", "fields": [{{"fieldname": "{fieldname}", "fieldtype": "{fieldtype}"}}]}}"#
        ));
        assert_invalid(&err, &[&format!("field \"{fieldname}\"")]);
    }
    // `owner` spelled exactly keeps the standard column (QK002), and a
    // field declaring `_seen` takes Frappe's appended Text definition.
    for json in [
        r#"{"name": "T", "fields": [{"fieldname": "owner", "fieldtype": "Int"}]}"#,
        r#"{"name": "T", "track_seen": 1, "fields": [{"fieldname": "_seen", "fieldtype": "Int"}]}"#,
    ] {
        let dts = doctypes_from_json(json, "<string>").expect("parse");
        validate_doctypes(&dts).expect(json);
    }
}

#[test]
fn two_doctypes_for_one_table_name_both_origins() {
    let dir = temp_tree(&[
        (
            "a/sales_order.json",
            r#"{"name": "Sales Order", "fields": []}"#,
        ),
        (
            "b/sales_order.json",
            r#"{"name": "sales order", "fields": []}"#,
        ),
    ]);
    let err = load_paths(&[dir.path().to_path_buf()]).expect_err("same table");
    assert_invalid(
        &err,
        &[
            "b/sales_order.json",
            "a/sales_order.json",
            "\"sales order\"",
            "same table",
        ],
    );
}

#[test]
fn conflicts_lists_every_problem() {
    let a = DocType::new("Sales Order").field(Field::new("a b", FieldType::Data));
    let b = DocType::new("SALES ORDER")
        .field(Field::new("x", FieldType::Int).default_value("many"))
        .field(Field::new("X", FieldType::Data));
    let found: Vec<Conflict> = conflicts(&[a, b]);
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    // A non-numeric Int default is accepted as Frappe casts it (QK003).
    assert_eq!(found.len(), 3, "{text:#?}");
    assert_eq!(found[0].field.as_deref(), Some("a b"));
    assert!(
        found[1].message.contains("differ only in case"),
        "{text:#?}"
    );
    assert_eq!(
        (found[2].doctype.as_str(), found[2].field.as_deref()),
        ("SALES ORDER", None)
    );
    // validate_set reports the first of them as an error.
    let first: Error = found[0].clone().into();
    assert_eq!(first.to_string(), text[0]);
}

// --- the Frappe v16 corpus --------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/frappe-v16-doctypes")
}

fn truthy(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|v| v != 0.0),
        Some(serde_json::Value::String(s)) => !s.is_empty() && s != "0",
        _ => false,
    }
}

#[test]
fn frappe_v16_corpus_loads_and_validates() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        eprintln!("note: {} is absent; corpus test skipped", dir.display());
        return;
    }
    let dts = load_paths(std::slice::from_ref(&dir)).expect("corpus loads and validates");
    let mut json_files = 0;
    let mut tables = 0;
    for entry in fs::read_dir(&dir).expect("read corpus") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        json_files += 1;
        let value: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        if !truthy(value.get("issingle")) && !truthy(value.get("is_virtual")) {
            tables += 1;
        }
    }
    assert_eq!(json_files, 265);
    assert_eq!(dts.len(), 265);
    assert_eq!(dts.iter().filter(|d| d.has_table()).count(), tables);
    assert!(conflicts(&dts).is_empty());
    // Spot checks against known corpus content.
    let web_page = dts.iter().find(|d| d.name == "Web Page").expect("Web Page");
    assert_eq!(field(web_page, "idx").fieldtype, FieldType::Int);
}

// ============================================================================
// Bad input to sync_all: the error names the file, the database is untouched
// ============================================================================

fn write(db: &TestDb, name: &str, json: &str) -> std::path::PathBuf {
    let p = db.dir.path().join(name);
    std::fs::write(&p, json).unwrap();
    p
}

fn assert_rejected(json: &str, must_mention: &[&str]) {
    let db = TestDb::new();
    db.applier()
        .sync_all(&[doctype(r#"{"name": "Keep", "fields": []}"#)])
        .unwrap();
    let before = db.bytes();
    let file = write(&db, "bad.json", json);
    let err = load_path(&file)
        .and_then(|dts| db.applier().sync_all(&dts))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bad.json"),
        "error must name the file: {text}"
    );
    for m in must_mention {
        assert!(text.contains(m), "error must mention {m:?}: {text}");
    }
    assert!(
        // Loading reports parse errors; definition conflicts in a parsed set
        // are refused by sync_all as blocking CF003 findings.
        matches!(
            err,
            Error::Json { .. } | Error::InvalidDocType { .. } | Error::Blocked { .. }
        ),
        "{err:?}"
    );
    assert_eq!(db.bytes(), before, "database untouched");
}

#[test]
fn malformed_json() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [ {"fieldname": "a",, } ]}"#,
        &[],
    );
}

#[test]
fn unknown_fieldtype() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [{"fieldname": "a", "fieldtype": "Varchar"}]}"#,
        &["\"a\"", "Varchar"],
    );
}

#[test]
fn injected_fieldname() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [{"fieldname": "x\"; DROP TABLE y; --", "fieldtype": "Data"}]}"#,
        &["DROP TABLE y"],
    );
}

#[test]
fn injected_doctype_name() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "Keep\"; DROP TABLE \"tabKeep", "fields": []}"#,
        &["DROP TABLE"],
    );
}

#[test]
fn duplicate_fieldnames_case_insensitive() {
    assert_rejected(
        r#"{"doctype": "DocType", "name": "X", "fields": [
            {"fieldname": "amount", "fieldtype": "Data"}, {"fieldname": "Amount", "fieldtype": "Int"}]}"#,
        &["mount"],
    );
}

#[test]
fn injected_default_is_escaped_not_executed() {
    let db = TestDb::new();
    let dt = doctype(
        r#"{"name": "Note", "fields": [{"fieldname": "title", "fieldtype": "Data", "default": "x'); DROP TABLE \"tabNote\"; --"}]}"#,
    );
    db.applier().sync_all(&[dt]).unwrap();
    let conn = db.conn();
    conn.execute("INSERT INTO \"tabNote\" (name) VALUES ('n1')", [])
        .unwrap();
    let title: String = conn
        .query_row("SELECT title FROM \"tabNote\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(title, "x'); DROP TABLE \"tabNote\"; --");
}

// ============================================================================
// Hostile input through the CLI
// ============================================================================

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
}

fn example(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/doctypes")
        .join(version)
}

fn apply(db: &Path, doctypes: &Path) -> Output {
    bin()
        .arg("apply")
        .arg("--db")
        .arg(db)
        .arg("--doctypes")
        .arg(doctypes)
        .output()
        .expect("run doctype-migrate")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A database with the v1 example DocTypes applied and one row, in a
/// directory of its own.
fn existing_db() -> TestDb {
    let db = TestDb::new();
    let v1 = doctype_migrate::load_path(&example("v1")).unwrap();
    db.applier().sync_all(&v1).unwrap();
    db.conn()
        .execute_batch("INSERT INTO \"tabItem\" (name, item_code) VALUES ('I-1', 'I-1')")
        .unwrap();
    db
}

/// Names of the files in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A DocType file outside the database's directory.
struct Input {
    dir: tempfile::TempDir,
}

impl Input {
    fn new() -> Self {
        Input {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn json(&self, name: &str, value: &Value) -> PathBuf {
        self.file(name, serde_json::to_vec_pretty(value).unwrap())
    }
}

/// `apply` of `doctypes` on an existing database is refused: exit 1, every
/// `mentions` in stderr, database bytes and directory unchanged.
fn assert_refused(doctypes: &Path, mentions: &[&str]) -> String {
    let db = existing_db();
    let (bytes, files) = (db.bytes(), listing(db.dir.path()));
    let out = apply(&db.path, doctypes);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", doctypes.display());
    for m in mentions {
        assert!(err.contains(m), "stderr must mention {m:?}:\n{err}");
    }
    assert_eq!(db.bytes(), bytes, "database not byte-identical: {err}");
    assert_eq!(listing(db.dir.path()), files, "stray files: {err}");
    err
}

#[test]
fn malformed_json_is_refused_with_file_and_position() {
    assert_refused(
        &fixture("hostile_doctypes/malformed.json"),
        &["malformed.json", "malformed DocType JSON", "line 4"],
    );
    let input = Input::new();
    assert_refused(
        &input.file("empty.json", ""),
        &["empty.json", "malformed", "EOF"],
    );
    assert_refused(
        &input.file("binary.json", [0xff, 0xfe, 0x00, 0x7b]),
        &["binary.json", "valid UTF-8"],
    );
    assert_refused(
        &input.file("top.json", "\"just a string\""),
        &["top.json", "top level is"],
    );
}

#[test]
fn wrong_json_types_are_refused_naming_the_key() {
    let input = Input::new();
    let cases: [(&str, Value, &[&str]); 6] = [
        (
            "fields_string.json",
            json!({"name": "A", "fields": "title"}),
            &["\"fields\"", "array"],
        ),
        (
            "name_number.json",
            json!({"name": 42, "fields": []}),
            &["\"name\""],
        ),
        (
            "field_not_object.json",
            json!({"name": "A", "fields": ["title"]}),
            &["fields[0]", "field object"],
        ),
        (
            "reqd_object.json",
            json!({"name": "A", "fields": [{"fieldname": "t", "fieldtype": "Data", "reqd": {"x": 1}}]}),
            &["\"reqd\""],
        ),
        (
            "length_text.json",
            json!({"name": "A", "fields": [{"fieldname": "t", "fieldtype": "Data", "length": "long"}]}),
            &["\"length\""],
        ),
        (
            "fieldtype_array.json",
            json!({"name": "A", "fields": [{"fieldname": "t", "fieldtype": ["Data"]}]}),
            &["\"fieldtype\""],
        ),
    ];
    for (file, value, mentions) in cases {
        let mut all = vec![file];
        all.extend_from_slice(mentions);
        assert_refused(&input.json(file, &value), &all);
    }
}

#[test]
fn unknown_fieldtypes_are_refused_naming_the_type_and_field() {
    assert_refused(
        &fixture("hostile_doctypes/unknown_fieldtype.json"),
        &["unknown_fieldtype.json", "Gadget", "Data2", "size"],
    );
}

#[test]
fn injected_identifiers_are_refused_by_the_cli() {
    let input = Input::new();
    let field = |name: &str| json!({"name": "Victim", "fields": [{"fieldname": name, "fieldtype": "Data"}]});
    let cases: Vec<(Value, &str)> = vec![
        (
            field("x\"; DROP TABLE \"tabItem\"; --"),
            "only letters, digits and underscores",
        ),
        (field("a--b"), "'-'"),
        (field("a/*b*/"), "'/'"),
        (field("a;b"), "';'"),
        (field("a'b"), "'\\''"),
        (field("ROWID"), "reserved by SQLite"),
        (field("sqlite_master"), "sqlite_"),
        (
            json!({"name": "Item\"; DROP TABLE \"tabItem\"; --", "fields": []}),
            "only letters, digits, spaces",
        ),
        (json!({"name": "Item' --", "fields": []}), "'\\''"),
        (
            json!({"name": "MigrationHistory", "fields": []}),
            "reserved",
        ),
        (
            json!({"name": "Victim", "fields": [{"fieldname": "a", "fieldtype": "Data"}],
                   "indexes": [{"name": "i; DROP TABLE x", "fields": ["a"]}]}),
            "index name",
        ),
    ];
    for (i, (value, mention)) in cases.into_iter().enumerate() {
        assert_refused(&input.json(&format!("inj{i}.json"), &value), &[mention]);
    }
}

#[test]
fn injected_defaults_and_options_are_stored_verbatim_and_harmless() {
    let db = existing_db();
    let tables_before: Vec<String> = db.schema().into_iter().map(|(_, n, _)| n).collect();
    let out = apply(
        &db.path,
        &fixture("hostile_doctypes/injected_defaults.json"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let conn = db.conn();
    conn.execute_batch("INSERT INTO \"tabTrap\" (name) VALUES ('t1')")
        .unwrap();
    let row: (String, String, String, String, String) = conn
        .query_row(
            "SELECT quote, comment, dquote, semi, greeting FROM \"tabTrap\"",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "x'); DROP TABLE \"tabItem\"; --".to_string(),
            "*/ DELETE FROM \"tabItem\"; /*".to_string(),
            "\"; DROP TABLE \"tabCustomer\"; --".to_string(),
            "a;b".to_string(),
            "Grüße 🎉 ünïcödé".to_string(),
        )
    );
    let tables_after: Vec<String> = db.schema().into_iter().map(|(_, n, _)| n).collect();
    for t in &tables_before {
        assert!(tables_after.contains(t), "{t} vanished");
    }
    assert_eq!(count(&conn, "SELECT count(*) FROM \"tabItem\""), 1);
}

#[test]
fn nul_bytes_are_refused_everywhere() {
    let input = Input::new();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "Nul\u{0}x", "fields": []}), "NUL"),
        (
            json!({"name": "Nul", "fields": [{"fieldname": "a\u{0}b", "fieldtype": "Data"}]}),
            "NUL",
        ),
        (
            json!({"name": "Nul", "fields": [{"fieldname": "a", "fieldtype": "Data", "default": "x\u{0}y"}]}),
            "\"default\" contains a NUL byte",
        ),
        (
            json!({"name": "Nul", "fields": [{"fieldname": "a", "fieldtype": "Select", "options": "x\n\u{0}"}]}),
            "\"options\" contains a NUL byte",
        ),
        (
            json!({"name": "Nul", "fields": [{"fieldname": "a", "fieldtype": "Data\u{0}"}]}),
            "fieldtype",
        ),
    ];
    for (i, (value, mention)) in cases.into_iter().enumerate() {
        let file = format!("nul{i}.json");
        assert_refused(&input.json(&file, &value), &[&file, mention]);
    }
}

#[test]
fn very_long_names_are_refused_with_the_limit() {
    let input = Input::new();
    let long_field = "f".repeat(65);
    assert_refused(
        &input.json(
            "field.json",
            &json!({"name": "Long", "fields": [{"fieldname": long_field, "fieldtype": "Data"}]}),
        ),
        &["65 characters long", "at most 64"],
    );
    assert_refused(
        &input.json(
            "doctype.json",
            &json!({"name": "D".repeat(62), "fields": []}),
        ),
        &["62 characters long", "at most 61"],
    );
    let huge = "N".repeat(10_000);
    assert_refused(
        &input.json("huge.json", &json!({"name": huge, "fields": []})),
        &["10000 characters long"],
    );
    let max = ("D".repeat(61), "f".repeat(64));
    let ok = input.json(
        "max.json",
        &json!({"name": max.0, "fields": [{"fieldname": max.1, "fieldtype": "Data"}]}),
    );
    let db = existing_db();
    let out = apply(&db.path, &ok);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the limits themselves are accepted: {}",
        stderr(&out)
    );
}

#[test]
fn unicode_identifiers_are_refused_and_unicode_values_accepted() {
    let input = Input::new();
    for (i, name) in ["naïve", "名前", "emoji_🎉", "Kelvin_\u{212A}"]
        .iter()
        .enumerate()
    {
        let first_non_ascii = name.chars().find(|c| !c.is_ascii()).unwrap();
        assert_refused(
            &input.json(
                &format!("field{i}.json"),
                &json!({"name": "Uni", "fields": [{"fieldname": name, "fieldtype": "Data"}]}),
            ),
            &[&format!("{first_non_ascii:?}")],
        );
    }
    assert_refused(
        &input.json("doctype.json", &json!({"name": "Kunde Ü", "fields": []})),
        &["'Ü'"],
    );
    assert_refused(
        &input.json(
            "doctype_first.json",
            &json!({"name": "Überweisung", "fields": []}),
        ),
        &["Überweisung", "contains 'Ü'"],
    );
    // Unicode in labels, defaults and options is data.
    let ok = input.json(
        "values.json",
        &json!({"name": "Uni", "fields": [
            {"fieldname": "title", "fieldtype": "Data", "label": "Überschrift 見出し", "default": "«défaut» 🎉"},
            {"fieldname": "kind", "fieldtype": "Select", "options": "α\nβ\nγ", "default": "β"}
        ]}),
    );
    let db = existing_db();
    let out = apply(&db.path, &ok);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let conn = db.conn();
    conn.execute_batch("INSERT INTO \"tabUni\" (name) VALUES ('u')")
        .unwrap();
    let (title, kind): (String, String) = conn
        .query_row("SELECT title, kind FROM \"tabUni\"", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((title.as_str(), kind.as_str()), ("«défaut» 🎉", "β"));
}

fn wide(n: usize) -> Value {
    let fields: Vec<Value> = (0..n)
        .map(|i| json!({"fieldname": format!("f{i}"), "fieldtype": "Data"}))
        .collect();
    json!({"name": "Wide", "fields": fields})
}

#[test]
fn five_thousand_fields_are_refused_naming_the_limit_and_2000_columns_work() {
    let input = Input::new();
    let err = assert_refused(
        &input.json("wide.json", &wide(5000)),
        &[
            "wide.json",
            "DocType \"Wide\"",
            "5011 columns",
            "at most 2000",
            "SQLITE_MAX_COLUMN",
        ],
    );
    assert!(err.len() < 1000, "a short message, not a dump: {err}");

    // 1989 fields + 7 standard + 4 optional columns = SQLite's limit exactly.
    let db = existing_db();
    let out = apply(&db.path, &input.json("widest.json", &wide(1989)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(column_names(&db.conn(), "tabWide").len(), 2000);
}

#[test]
fn empty_doctypes_work_and_empty_inputs_are_refused() {
    let input = Input::new();
    let db = existing_db();
    let out = apply(
        &db.path,
        &input.json("empty_dt.json", &json!({"name": "Empty", "fields": []})),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        column_names(&db.conn(), "tabEmpty"),
        [
            "name",
            "creation",
            "modified",
            "modified_by",
            "owner",
            "docstatus",
            "idx",
            "_user_tags",
            "_comments",
            "_assign",
            "_liked_by"
        ]
    );

    assert_refused(
        &input.json("no_name.json", &json!({})),
        &["no_name.json", "missing \"name\""],
    );
    assert_refused(&input.file("array.json", "[]"), &["no DocType JSON found"]);
    let empty_dir = input.dir.path().join("nothing_here");
    std::fs::create_dir(&empty_dir).unwrap();
    assert_refused(&empty_dir, &["no DocType JSON found", "nothing_here"]);
}

#[test]
fn a_read_only_database_is_refused_and_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let db = existing_db();
    let v2 = example("v2");
    let (bytes, files) = (db.bytes(), listing(db.dir.path()));
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let writable_anyway = std::fs::OpenOptions::new()
        .write(true)
        .open(&db.path)
        .is_ok();
    let out = if writable_anyway {
        // root (CAP_DAC_OVERRIDE) ignores file modes; SQLite's own
        // read-only open (a URI with mode=ro, which the CLI accepts as
        // --db) is the read-only file it sees instead.
        eprintln!(
            "running with CAP_DAC_OVERRIDE: chmod 0444 does not stop writes; using --db file:...?mode=ro"
        );
        let uri = format!("file:{}?mode=ro", db.path.display());
        apply(Path::new(&uri), &v2)
    } else {
        apply(&db.path, &v2)
    };
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Refused before any work (Error::ReadOnly), not at the first write.
    assert!(err.contains("is read-only"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!err.contains("progress: lock"), "{err}");
    assert_eq!(db.bytes(), bytes);
    assert_eq!(listing(db.dir.path()), files);
}

#[test]
fn a_database_locked_by_another_writer_is_waited_for_then_times_out_clearly() {
    let db = existing_db();
    let v2 = doctype_migrate::load_path(&example("v2")).unwrap();
    let bytes = db.bytes();

    // Beyond the bound: the lock-wait error, naming the file and the wait.
    let holder = db.conn();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut applier = MigrationApplier::builder(&db.path)
        .lock_timeout(Duration::from_millis(300))
        .busy_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let err = applier.sync_all(&v2).unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("could not take the write lock"), "{text}");
    assert!(text.contains(&db.path.display().to_string()), "{text}");
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(db.bytes(), bytes);

    // Within the bound (the CLI waits up to 60 s): the run waits, then succeeds.
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        holder.execute_batch("ROLLBACK").unwrap();
    });
    let out = apply(&db.path, &example("v2"));
    release.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("locked"));
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("junk.db");
    // Seeded bytes: random-looking, reproducible, longer than a header.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let junk: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&db, &junk).unwrap();
    let text_db = dir.path().join("notes.db");
    std::fs::write(&text_db, "these are my notes, not a database\n").unwrap();
    for path in [&db, &text_db] {
        let before = std::fs::read(path).unwrap();
        let out = apply(path, &example("v1"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot open database"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("not a database"), "{err}");
        let plan = bin()
            .args(["plan", "--db"])
            .arg(path)
            .arg("--doctypes")
            .arg(example("v1"))
            .output()
            .unwrap();
        assert_eq!(plan.status.code(), Some(1));
        assert!(stderr(&plan).contains("not a database"));
        assert_eq!(std::fs::read(path).unwrap(), before);
    }
    let mut names = listing(dir.path());
    names.sort();
    assert_eq!(names, ["junk.db", "notes.db"]);
}

#[test]
fn a_directory_as_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let as_db = dir.path().join("app.db");
    std::fs::create_dir(&as_db).unwrap();
    std::fs::write(as_db.join("keep.txt"), "x").unwrap();
    for cmd in ["apply", "plan", "history"] {
        let mut c = bin();
        c.arg(cmd).arg("--db").arg(&as_db);
        if cmd != "history" {
            c.arg("--doctypes").arg(example("v1"));
        }
        let out = c.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("is a directory"), "{cmd}: {err}");
        assert!(err.contains("app.db"), "{cmd}: {err}");
    }
    assert_eq!(listing(&as_db), ["keep.txt"]);
    assert_eq!(listing(dir.path()), ["app.db"]);
}

// ---------------------------------------------------------------------------
// Property: no DocType-shaped input makes parsing, validation or planning
// panic. Errors are fine; a panic is a bug.

const FIELDTYPES: &[&str] = &[
    "Data",
    "Int",
    "Long Int",
    "Float",
    "Currency",
    "Percent",
    "Check",
    "Select",
    "Link",
    "Dynamic Link",
    "Date",
    "Datetime",
    "Time",
    "Text",
    "Small Text",
    "Long Text",
    "Code",
    "JSON",
    "Duration",
    "Rating",
    "Section Break",
    "Column Break",
    "Table",
    "HTML",
    "Read Only",
    "Table MultiSelect",
    "Password",
];

/// Spellings that are not fieldtypes.
const NOT_FIELDTYPES: &[&str] = &["data", "Int ", "", "Attach", "Data\u{0}"];

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,12}",
        2 => "[A-Z][A-Za-z0-9 _-]{0,20}",
        1 => Just("name".to_string()),
        1 => Just("idx".to_string()),
        1 => Just("parent".to_string()),
        1 => Just("order".to_string()),
        1 => Just("ROWID".to_string()),
        1 => any::<String>(),
        1 => "[\"';\\-/*\\x00 ]{1,6}",
        1 => "[a-z]{60,70}",
    ]
}

/// Any JSON scalar, including ones no key accepts.
fn scalar_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        "[0-9.eE+-]{0,8}".prop_map(Value::from),
    ]
}

/// Mostly values a real DocType has for `key`, sometimes anything.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match key {
        "default" => prop_oneof![
            Just(json!("0")),
            Just(json!("1")),
            Just(json!("2.5")),
            Just(json!("Today")),
            Just(json!("now")),
            "[ -~]{0,12}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ]
        .boxed(),
        "length" | "precision" => prop_oneof![
            (-5i64..70000).prop_map(Value::from),
            "[0-9]{1,6}".prop_map(Value::from),
        ]
        .boxed(),
        "options" | "label" | "renamed_from" => prop_oneof![
            name_strategy().prop_map(Value::from),
            "[a-z]{1,5}(\\n[a-z]{1,5}){0,3}".prop_map(Value::from),
        ]
        .boxed(),
        "autoname" => prop_oneof![
            Just(json!("autoincrement")),
            Just(json!("hash")),
            Just(json!(""))
        ]
        .boxed(),
        "doctype" => Just(json!("DocType")).boxed(),
        _ => prop_oneof![
            Just(json!(0)),
            Just(json!(1)),
            any::<bool>().prop_map(Value::from)
        ]
        .boxed(),
    };
    prop_oneof![9 => plausible, 1 => scalar_strategy()].boxed()
}

const FIELD_KEYS: &[&str] = &[
    "reqd",
    "required",
    "unique",
    "search_index",
    "indexed",
    "not_nullable",
    "default",
    "length",
    "precision",
    "options",
    "is_virtual",
    "renamed_from",
    "label",
];

fn field_strategy() -> impl Strategy<Value = Value> {
    (
        name_strategy(),
        prop_oneof![
            30 => prop::sample::select(FIELDTYPES),
            1 => prop::sample::select(NOT_FIELDTYPES),
        ],
        prop::collection::vec(
            prop::sample::select(FIELD_KEYS).prop_flat_map(|k| (Just(k), value_for(k))),
            0..4,
        ),
    )
        .prop_map(|(name, fieldtype, extra)| {
            let mut obj = serde_json::Map::new();
            obj.insert("fieldname".into(), json!(name));
            obj.insert("fieldtype".into(), json!(fieldtype));
            for (k, v) in extra {
                obj.insert(k.to_string(), v);
            }
            Value::Object(obj)
        })
}

const DOCTYPE_KEYS: &[&str] = &[
    "istable",
    "issingle",
    "is_virtual",
    "autoname",
    "track_seen",
    "doctype",
];

fn doctype_strategy() -> impl Strategy<Value = Value> {
    (
        name_strategy(),
        prop::collection::vec(field_strategy(), 0..8),
        prop::collection::vec(
            prop::sample::select(DOCTYPE_KEYS).prop_flat_map(|k| (Just(k), value_for(k))),
            0..3,
        ),
        prop::option::weighted(
            0.3,
            prop::collection::vec(prop::collection::vec(name_strategy(), 0..3), 0..3),
        ),
    )
        .prop_map(|(name, fields, extra, indexes)| {
            let mut obj = serde_json::Map::new();
            obj.insert("name".into(), json!(name));
            obj.insert("fields".into(), Value::Array(fields));
            for (k, v) in extra {
                obj.insert(k.to_string(), v);
            }
            if let Some(ix) = indexes {
                obj.insert("indexes".into(), json!(ix));
            }
            Value::Object(obj)
        })
}

/// A database the plans are made against: the v1 examples plus a table the
/// generated DocTypes may collide with. Opened read-only: never written.
fn planning_db() -> &'static Path {
    static DB: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, path) = DB.get_or_init(|| {
        let db = TestDb::new();
        let v1 = doctype_migrate::load_path(&example("v1")).unwrap();
        db.applier().sync_all(&v1).unwrap();
        db.conn()
            .execute_batch(
                "CREATE TABLE \"taba\" (name TEXT PRIMARY KEY, a INTEGER, b TEXT UNIQUE);
                 INSERT INTO \"taba\" VALUES ('x', 1, 'y'), ('z', NULL, '0012');
                 INSERT INTO \"tabItem\" (name, item_code, shelf_life_in_days) VALUES ('i', 'i', ' 12');",
            )
            .unwrap();
        let path = db.path.clone();
        (db.dir, path)
    });
    path
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn parsing_validating_and_planning_never_panic(
        doc in prop_oneof![
            3 => doctype_strategy(),
            1 => prop::collection::vec(doctype_strategy(), 0..3).prop_map(Value::Array),
        ],
        garble in prop::option::weighted(0.1, (0usize..400, any::<u8>())),
    ) {
        let mut text = serde_json::to_vec(&doc).unwrap();
        // Sometimes corrupt one byte: parsing must fail cleanly, not panic.
        if let Some((pos, byte)) = garble {
            if !text.is_empty() {
                let at = pos % text.len();
                text[at] = byte;
            }
        }
        let text = String::from_utf8_lossy(&text);
        let Ok(doctypes) = doctypes_from_json(&text, "<proptest>") else {
            return Ok(());
        };
        if validate_doctypes(&doctypes).is_err() {
            return Ok(());
        }
        let applier = MigrationApplier::builder(planning_db()).read_only(true).build().unwrap();
        // Errors are allowed (a plan may be refused); panics are not.
        let _ = applier.dry_run(&doctypes);
    }
}
