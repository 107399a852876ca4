//! DocType input: parsing Frappe and SODAF JSON from strings, files and
//! directory trees, validation, and every class of rejected input.
//!
//! Fixtures live in `tests/fixtures/doctype_input/<case>/`; cases that need
//! unusual content (NUL bytes, symlinks) are written to temp dirs.

use std::error::Error as _;
use std::fs;
use std::path::{Path, PathBuf};

use doctype_migrate::doctype::{
    Conflict, conflicts, from_json_str, load_file, load_path, load_paths, validate_doctype,
    validate_set,
};
use doctype_migrate::{DocType, Error, Field, FieldType};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/doctype_input")
        .join(case)
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
    let dts = match from_json_str(json, "<string>") {
        Ok(dts) => dts,
        Err(e) => return e,
    };
    match validate_set(&dts) {
        Ok(()) => panic!("accepted: {dts:?}"),
        Err(e) => e,
    }
}

// --- accepted input ---------------------------------------------------------

#[test]
fn frappe_file_is_read_with_its_flags() {
    let path = fixture("frappe/note.json");
    let dts = load_file(&path).expect("load");
    validate_set(&dts).expect("valid");
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
    let dts = load_path(&fixture("sodaf/library.json")).expect("load");
    validate_set(&dts).expect("valid");
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
    let root = fixture("tree");
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
        fixture("sodaf/library.json"),
        fixture("tree"),
        fixture("frappe"),
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
    let err = load_paths(&[fixture("tree"), fixture("tree")]).expect_err("duplicates");
    assert_invalid(&err, &["Sales Order", "defined twice", "sales_order.json"]);
}

#[test]
fn string_input_may_be_an_object_or_an_array() {
    let one = from_json_str(r#"{"name": "Task", "fields": []}"#, "<string>").expect("object");
    assert_eq!(names(&one), ["Task"]);
    assert_eq!(one[0].origin, "<string>");
    let two = from_json_str(
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
    validate_doctype(&dt).expect("valid");
    // A child table's `parent` declared as Int keeps the standard column
    // (QK002); only a spelling that differs in case is refused.
    let child = DocType::new("Project Task Item")
        .child_table()
        .field(Field::new("parent", FieldType::Int));
    validate_doctype(&child).expect("accepted, with a warning");
    assert_eq!(child.warnings()[0].code.as_str(), "QK002");
    let child = DocType::new("Project Task Item")
        .child_table()
        .field(Field::new("Parent", FieldType::Data));
    let err = validate_doctype(&child).expect_err("Parent differs from parent only in case");
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
    let path = fixture("malformed/broken.json");
    for result in [load_file(&path), load_path(&fixture("malformed"))] {
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
    let missing = fixture("does_not_exist");
    for result in [
        load_path(&missing),
        load_file(&missing),
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
    let err = load_file(&fixture("wrong_types/fields_not_array.json")).expect_err("fields");
    assert_invalid(
        &err,
        &[
            "fields_not_array.json",
            "Wrong Fields",
            "\"fields\" is an object",
        ],
    );

    let err = load_file(&fixture("wrong_types/reqd_yes.json")).expect_err("reqd");
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
    // The same name exactly is accepted (QK001, see tests/frappe_quirks.rs).
    let dts = from_json_str(
        r#"{"name": "T", "fields": [{"fieldname": "code", "fieldtype": "Data"}, {"fieldname": "code", "fieldtype": "Int"}]}"#,
        "<string>",
    )
    .expect("parse");
    validate_set(&dts).expect("accepted as Frappe accepts it");
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
        let dts = from_json_str(json, "<string>").expect("parse");
        validate_set(&dts).expect(json);
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
