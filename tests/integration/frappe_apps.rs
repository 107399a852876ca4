//! Real Frappe apps as they ship: the quirks Frappe accepts (each with its
//! warning code and text, and refused in strict mode), autoname changes on
//! tables with rows, Custom Field and Property Setter fixtures, the optional
//! columns every non-child table gets, and the real corpus in
//! `../shared/corpus` (skipped with a printed reason when absent).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{TestDb, column_names, fixture, schema_of};
use doctype_migrate::{
    ChangeKind, DocType, Error, MigrationApplier, RollbackOptions, Rule, Warning, WarningCode,
    load_paths,
};
use rusqlite::Connection;
use serde_json::Value;

fn quirks(case: &str) -> PathBuf {
    fixture("frappe_quirks").join(case)
}

fn load(paths: &[PathBuf]) -> Vec<DocType> {
    load_paths(paths).unwrap_or_else(|e| panic!("load {paths:?}: {e}"))
}

fn all_warnings(dts: &[DocType]) -> Vec<Warning> {
    doctype_migrate::warnings(dts)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
        .args(args)
        .output()
        .expect("run doctype-migrate")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `(name, type, notnull, default)` of every column, from pragma_table_info.
fn columns(conn: &Connection, table: &str) -> Vec<(String, String, bool, Option<String>)> {
    let mut stmt = conn
        .prepare(
            "SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info(?1) ORDER BY cid",
        )
        .unwrap();
    stmt.query_map([table], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn column<'a>(
    cols: &'a [(String, String, bool, Option<String>)],
    name: &str,
) -> &'a (String, String, bool, Option<String>) {
    cols.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no column {name} in {cols:?}"))
}

fn rows(conn: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

// --- point 2: the same fieldname twice ----------------------------------------

#[test]
fn a_fieldname_twice_builds_one_column_from_the_last_definition_and_warns() {
    let dts = load(&[quirks("duplicate_field")]);
    let warnings = all_warnings(&dts);
    let qk001: Vec<&Warning> = warnings
        .iter()
        .filter(|w| w.code == WarningCode::DuplicateField)
        .collect();
    assert_eq!(qk001.len(), 2, "{warnings:#?}");
    let refund = qk001
        .iter()
        .find(|w| w.doctype.as_deref() == Some("Loan Refund"))
        .unwrap();
    assert_eq!(refund.code.as_str(), "QK001");
    assert_eq!(refund.field.as_deref(), Some("amended_from"));
    assert!(
        refund
            .file
            .as_deref()
            .unwrap()
            .ends_with("loan_refund.json"),
        "{refund:?}"
    );
    assert_eq!(
        refund.message,
        "fieldname \"amended_from\" is defined 2 times, differently (length, search_index); one \
         column is built from the last definition, at the first one's position, as Frappe does"
    );
    let territory = qk001
        .iter()
        .find(|w| w.doctype.as_deref() == Some("CRM Territory"))
        .unwrap();
    assert!(
        territory.message.contains("defined 2 times, identically"),
        "{territory:?}"
    );

    let db = TestDb::new();
    let report = db.applier().sync_all(&dts).unwrap();
    assert_eq!(report.migrations.len(), 2);
    assert_eq!(
        report
            .warnings
            .iter()
            .filter(|w| w.code == WarningCode::DuplicateField)
            .count(),
        2
    );
    let conn = db.conn();
    let cols = columns(&conn, "tabLoan Refund");
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names[7..9], ["amended_from", "amount"], "first position");
    assert_eq!(
        column(&cols, "amended_from").1,
        "VARCHAR(180)",
        "last definition"
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list('tabLoan Refund')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        indexes.contains(&"dm_idx__tabLoan Refund__amended_from".to_string()),
        "the last definition's search_index: {indexes:?}"
    );
    assert_eq!(
        column_names(&conn, "tabCRM Territory")
            .iter()
            .filter(|c| *c == "is_group")
            .count(),
        1
    );
}

// --- point 3: a standard column redeclared ----------------------------------

#[test]
fn a_field_named_like_a_standard_column_keeps_the_standard_column_and_warns() {
    let dts = load(&[quirks("standard_column")]);
    let warnings = all_warnings(&dts);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(
        (w.code.as_str(), w.doctype.as_deref(), w.field.as_deref()),
        ("QK002", Some("HD Article"), Some("idx"))
    );
    assert_eq!(
        w.message,
        "declared as a Data field, but \"idx\" is a standard column (stored like Int); the \
         standard column is kept, as Frappe keeps it when it creates the table"
    );
    let db = TestDb::new();
    db.applier().sync_all(&dts).unwrap();
    let cols = columns(&db.conn(), "tabHD Article");
    assert_eq!(
        column(&cols, "idx"),
        &("idx".into(), "INTEGER".into(), true, Some("0".into()))
    );
    assert_eq!(cols.iter().filter(|c| c.0 == "idx").count(), 1);
    assert!(
        db.applier().sync_all(&dts).unwrap().migrations.is_empty(),
        "no retype on the next run"
    );
}

// --- point 4: non-numeric defaults on numeric fields ---------------------------

#[test]
fn non_numeric_defaults_get_frappes_value_and_warn_with_text_and_value() {
    let dts = load(&[quirks("numeric_default")]);
    let warnings = all_warnings(&dts);
    let by_field = |f: &str| {
        warnings
            .iter()
            .find(|w| w.field.as_deref() == Some(f))
            .unwrap_or_else(|| panic!("no warning for {f}: {warnings:#?}"))
    };
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    let w = by_field("raised_outside_working_hours");
    assert_eq!(w.code, WarningCode::NonNumericDefault);
    assert_eq!(
        w.message,
        "default \"False\" is not a number, but Check columns are numeric; the column default is 0 \
         (Frappe's cint(\"False\"))"
    );
    assert!(by_field("first_responded").message.contains("default is 0"));
    assert!(by_field("priority_level").message.contains("default is 1"));
    assert!(
        by_field("opening_amount")
            .message
            .contains("the column default is 1000 (Frappe's flt(\"1,000\"))")
    );
    let db = TestDb::new();
    db.applier().sync_all(&dts).unwrap();
    let cols = columns(&db.conn(), "tabHD Ticket");
    for (name, default) in [
        ("raised_outside_working_hours", "0"),
        ("first_responded", "0"),
        ("priority_level", "1"),
        ("opening_amount", "1000"),
    ] {
        assert_eq!(column(&cols, name).3.as_deref(), Some(default), "{name}");
    }
    // Point 1: "length": 0, "precision": "", "options": "" mean unset, silently.
    assert_eq!(column(&cols, "agreement_status").1, "VARCHAR(140)");
}

// --- strict mode -------------------------------------------------------------

#[test]
fn strict_mode_refuses_points_2_to_4_with_exit_2_and_writes_nothing() {
    for case in ["duplicate_field", "standard_column", "numeric_default"] {
        let dts = load(&[quirks(case)]);
        let db = TestDb::new();
        let strict = || {
            MigrationApplier::builder(&db.path)
                .create_if_missing(true)
                .strict(true)
                .build()
                .unwrap()
        };
        let preview = strict().dry_run(&dts).unwrap();
        assert!(preview.blocked, "{case}");
        assert!(
            preview
                .findings
                .iter()
                .all(|f| f.rule == Rule::St001 && f.blocking),
            "{case}: {:#?}",
            preview.findings
        );
        let before = db.bytes();
        match strict().sync_all(&dts) {
            Err(Error::Blocked { findings }) => {
                assert!(findings.iter().any(|f| f.rule == Rule::St001), "{case}")
            }
            other => panic!("{case}: expected Blocked, got {other:?}"),
        }
        assert_eq!(db.bytes(), before, "{case}: nothing written");

        let input = quirks(case);
        let out = run(&[
            "apply",
            "--db",
            s(&db.path),
            "--doctypes",
            s(&input),
            "--strict",
        ]);
        assert_eq!(out.status.code(), Some(2), "{case}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("ST001"), "{case}: {stdout}");
        assert_eq!(db.bytes(), before, "{case}: nothing written by the CLI");
        // Without --strict the same input applies, and says what it accepted.
        let out = run(&[
            "apply",
            "--db",
            s(&db.path),
            "--doctypes",
            s(&input),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{case}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let codes: Vec<&str> = json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap())
            .collect();
        assert!(
            !codes.is_empty() && codes.iter().all(|c| c.starts_with("QK")),
            "{case}: {json}"
        );
        let keys: Vec<&str> = json["warnings"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["code", "file", "doctype", "field", "message"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("warning: [QK00"), "{case}: {stderr}");
    }
}

#[test]
fn plan_json_carries_warnings_and_the_audit_log_records_them() {
    let db = TestDb::new();
    let input = quirks("numeric_default");
    let out = run(&[
        "plan",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&input),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 4, "{json}");
    assert_eq!(json["warnings"][0]["code"], "QK003");

    let dts = load(&[input]);
    let applier = db.applier();
    let mut applier = applier;
    applier.sync_all(&dts).unwrap();
    let audit = std::fs::read_to_string(db.dir.path().join("app.db.audit.jsonl")).unwrap();
    let warned: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "warning")
        .collect();
    assert_eq!(warned.len(), 4, "{audit}");
    assert_eq!(warned[0]["details"]["code"], "QK003");
    assert_eq!(warned[0]["doctype"], "HD Ticket");
}

// --- point 5: autoname changes with rows ---------------------------------------

fn ticket_rows(conn: &Connection) -> Vec<Vec<String>> {
    rows(
        conn,
        "SELECT name, typeof(name), subject FROM \"tabHD Ticket\" ORDER BY subject",
    )
}

fn sequence(conn: &Connection) -> Vec<Vec<String>> {
    rows(
        conn,
        "SELECT name, seq FROM sqlite_sequence WHERE name = 'tabHD Ticket'",
    )
}

#[test]
fn autoincrement_to_naming_series_keeps_every_name_and_rolls_back_exactly() {
    let db = TestDb::new();
    let mut applier = db.applier();
    applier.sync_all(&load(&[quirks("autoname/v1")])).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabHD Ticket\" (subject) VALUES ('a'), ('b'), ('c'), ('d');
             DELETE FROM \"tabHD Ticket\" WHERE subject = 'd';",
        )
        .unwrap();
    let (schema, data, seq) = (db.schema(), ticket_rows(&db.conn()), sequence(&db.conn()));
    assert_eq!(seq, [["Text(\"tabHD Ticket\")", "Integer(4)"]]);

    let report = applier.sync_all(&load(&[quirks("autoname/v2")])).unwrap();
    let changes = &report.migrations[0].changes;
    assert!(
        changes
            .iter()
            .any(|c| c.kind == ChangeKind::ChangeAutoincrement
                && c.from.as_deref() == Some("INTEGER AUTOINCREMENT")
                && c.to.as_deref() == Some("VARCHAR(140)")),
        "{changes:?}"
    );
    let conn = db.conn();
    assert_eq!(
        ticket_rows(&conn),
        [
            ["Text(\"1\")", "Text(\"text\")", "Text(\"a\")"],
            ["Text(\"2\")", "Text(\"text\")", "Text(\"b\")"],
            ["Text(\"3\")", "Text(\"text\")", "Text(\"c\")"],
        ]
    );
    assert!(sequence(&conn).is_empty(), "no counter for a text key");
    let name = column(&columns(&conn, "tabHD Ticket"), "name").clone();
    assert_eq!((name.1.as_str(), name.2), ("VARCHAR(140)", true));
    assert!(
        applier
            .sync_all(&load(&[quirks("autoname/v2")]))
            .unwrap()
            .migrations
            .is_empty()
    );

    let batch = report.batch_id.unwrap();
    applier
        .rollback_batch(&batch, &RollbackOptions::default())
        .unwrap();
    assert_eq!(db.schema(), schema);
    assert_eq!(ticket_rows(&db.conn()), data);
    assert_eq!(
        sequence(&db.conn()),
        seq,
        "the counter is back: no reuse of 4"
    );
}

#[test]
fn naming_series_to_autoincrement_needs_canonical_integer_names() {
    let v1 = load(&[quirks("autoname/v1")]);
    let v2 = load(&[quirks("autoname/v2")]);
    // Canonical integer text: applied, names become integers, and back.
    let db = TestDb::new();
    let mut applier = db.applier();
    applier.sync_all(&v2).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabHD Ticket\" (name, subject) VALUES ('12', 'a'), ('7', 'b'), ('-3', 'c')",
        )
        .unwrap();
    let (schema, data) = (db.schema(), ticket_rows(&db.conn()));
    let report = applier.sync_all(&v1).unwrap();
    assert_eq!(
        ticket_rows(&db.conn()),
        [
            ["Integer(12)", "Text(\"integer\")", "Text(\"a\")"],
            ["Integer(7)", "Text(\"integer\")", "Text(\"b\")"],
            ["Integer(-3)", "Text(\"integer\")", "Text(\"c\")"],
        ]
    );
    assert_eq!(
        sequence(&db.conn()),
        [["Text(\"tabHD Ticket\")", "Integer(12)"]]
    );
    db.conn()
        .execute_batch("INSERT INTO \"tabHD Ticket\" (subject) VALUES ('next')")
        .unwrap();
    let next: i64 = db
        .conn()
        .query_row(
            "SELECT name FROM \"tabHD Ticket\" WHERE subject = 'next'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(next, 13);
    db.conn()
        .execute_batch("DELETE FROM \"tabHD Ticket\" WHERE subject = 'next'")
        .unwrap();
    applier
        .rollback_batch(
            &report.batch_id.unwrap(),
            &RollbackOptions::default().with_allow_data_loss(true),
        )
        .unwrap();
    assert_eq!(db.schema(), schema);
    assert_eq!(ticket_rows(&db.conn()), data);

    // Names that are not canonical integers: refused (MF004) even with
    // allow_data_loss, and nothing is written.
    let db = TestDb::new();
    db.applier().sync_all(&v2).unwrap();
    db.conn()
        .execute_batch(
            "INSERT INTO \"tabHD Ticket\" (name, subject) VALUES ('HD-TKT-00001', 'a'), ('0012', 'b'), ('5', 'c')",
        )
        .unwrap();
    let before = db.bytes();
    let permissive = MigrationApplier::builder(&db.path)
        .allow_data_loss(true)
        .build()
        .unwrap();
    let preview = permissive.dry_run(&v1).unwrap();
    let mf004: Vec<_> = preview
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Mf004)
        .collect();
    assert_eq!(mf004.len(), 1, "{:#?}", preview.findings);
    assert!(mf004[0].blocking);
    assert_eq!(mf004[0].rows_affected, Some(2));
    assert!(
        mf004[0]
            .message
            .contains("2 \"name\" value(s) are not canonical integer text"),
        "{}",
        mf004[0].message
    );
    let mut permissive = permissive;
    assert!(matches!(
        permissive.sync_all(&v1),
        Err(Error::Blocked { .. })
    ));
    assert_eq!(db.bytes(), before);
}

// --- customization layers --------------------------------------------------------

#[test]
fn custom_fields_and_property_setters_merge_onto_their_doctype() {
    let inputs = [
        quirks("custom_fields/doctypes"),
        quirks("custom_fields/fixtures"),
    ];
    let dts = load(&inputs);
    let user = &dts[0];
    let names: Vec<&str> = user.fields.iter().map(|f| f.fieldname.as_str()).collect();
    assert_eq!(
        names,
        [
            "email",
            "first_name",
            "github",
            "hide_private",
            "details",
            "skills",
            "bio"
        ]
    );
    let db = TestDb::new();
    let preview = db.applier().dry_run(&dts).unwrap();
    let changes = &preview.plan.doctypes[0].changes;
    let bio_index = changes
        .iter()
        .find(|c| c.kind == ChangeKind::AddIndex)
        .unwrap();
    assert_eq!(bio_index.layers.len(), 1);
    assert!(
        bio_index.layers[0].starts_with("Property Setter \"User-bio-search_index\" ("),
        "{:?}",
        bio_index.layers
    );
    db.applier().sync_all(&dts).unwrap();
    let cols = columns(&db.conn(), "tabUser");
    let col_names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        col_names[7..12],
        ["email", "first_name", "github", "hide_private", "bio"]
    );
    assert_eq!(
        column(&cols, "github").1,
        "VARCHAR(200)",
        "property setter length"
    );

    // The plan text names the layer behind a change.
    let db2 = TestDb::new();
    let out = run(&[
        "plan",
        "--db",
        s(&db2.path),
        "--doctypes",
        s(&inputs[0]),
        s(&inputs[1]),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+ add_index dm_idx__tabUser__bio (bio)  [from Property Setter \"User-bio-search_index\""),
        "{text}"
    );
}

#[test]
fn a_layer_for_a_doctype_not_loaded_is_an_error_naming_file_and_record() {
    let inputs = [
        quirks("custom_fields/doctypes"),
        quirks("custom_fields/orphan_layer"),
    ];
    let err = load_paths(&inputs).unwrap_err().to_string();
    assert!(err.contains("orphan_layer/custom_field.json"), "{err}");
    assert!(err.contains("Custom Field \"Task-estimate\""), "{err}");
    assert!(err.contains("DocType \"Task\""), "{err}");
    let db = TestDb::new();
    let out = run(&[
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&inputs[0]),
        s(&inputs[1]),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Task-estimate"));
    assert!(!db.path.exists(), "no database created");
}

// --- the schema Frappe builds ------------------------------------------------------

#[test]
fn a_database_made_before_the_optional_columns_gains_them_on_its_next_apply() {
    // The table as the engine made it before: no optional columns.
    let db = TestDb::with_sql(
        "CREATE TABLE \"tabNote\" (
            \"name\" VARCHAR(140) NOT NULL PRIMARY KEY, \"creation\" TEXT, \"modified\" TEXT,
            \"modified_by\" VARCHAR(140), \"owner\" VARCHAR(140),
            \"docstatus\" INTEGER NOT NULL DEFAULT 0, \"idx\" INTEGER NOT NULL DEFAULT 0,
            \"title\" VARCHAR(140), \"_user_tags\" VARCHAR(140));
         INSERT INTO \"tabNote\" (name, title, _user_tags) VALUES ('n1', 'One', 'a,b');",
    );
    let note: Vec<DocType> = doctype_migrate::doctypes_from_json(
        r#"{"name": "Note", "fields": [{"fieldname": "title", "fieldtype": "Data"},
            {"fieldname": "_user_tags", "fieldtype": "Data"}]}"#,
        "<string>",
    )
    .unwrap();
    assert!(
        all_warnings(&note).is_empty(),
        "Frappe's own convention: no warning"
    );
    let report = db.applier().sync_all(&note).unwrap();
    let kinds: Vec<(ChangeKind, Option<&str>)> = report.migrations[0]
        .changes
        .iter()
        .map(|c| (c.kind, c.column.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::ChangeType, Some("_user_tags")),
            (ChangeKind::AddColumn, Some("_comments")),
            (ChangeKind::AddColumn, Some("_assign")),
            (ChangeKind::AddColumn, Some("_liked_by")),
        ]
    );
    let cols = columns(&db.conn(), "tabNote");
    assert_eq!(column(&cols, "_user_tags").1, "TEXT");
    assert_eq!(
        rows(
            &db.conn(),
            "SELECT name, title, _user_tags FROM \"tabNote\""
        ),
        [["Text(\"n1\")", "Text(\"One\")", "Text(\"a,b\")"]]
    );
}

// --- the real corpus ---------------------------------------------------------------

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} not found", p.display());
        None
    }
}

#[test]
fn every_non_child_table_of_the_frappe_corpus_has_the_optional_columns() {
    let Some(corpus) = shared("frappe-v16-doctypes") else {
        return;
    };
    let dts = load(&[corpus]);
    let db = TestDb::new();
    db.applier().sync_all(&dts).unwrap();
    let conn = db.conn();
    let mut checked = 0;
    for dt in dts.iter().filter(|d| d.has_table()) {
        let names = column_names(&conn, &dt.table_name());
        let optional = ["_user_tags", "_comments", "_assign", "_liked_by"];
        for c in optional {
            assert_eq!(
                names.iter().any(|n| n == c),
                !dt.istable,
                "{}: {c} (istable: {})",
                dt.name,
                dt.istable
            );
        }
        if !dt.istable {
            let cols = columns(&conn, &dt.table_name());
            assert!(
                optional.iter().all(|c| column(&cols, c).1 == "TEXT"),
                "{}",
                dt.name
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} non-child tables");
}

#[test]
fn lms_custom_fields_add_exactly_their_data_columns_to_user_and_roll_back() {
    let (Some(frappe), Some(lms), Some(fixtures)) = (
        shared("frappe-v16-doctypes"),
        shared("frappe-apps/lms-v2.61.0"),
        shared("frappe-apps/lms-v2.61.0-fixtures"),
    ) else {
        return;
    };
    let db = TestDb::new();
    let mut applier = db.applier();
    // Frappe's own schema first: the state the rollback must give back.
    applier
        .sync_all(&load(std::slice::from_ref(&frappe)))
        .unwrap();
    let conn = db.conn();
    let before_schema = schema_of(&conn);
    let before_user = column_names(&conn, "tabUser");

    let records: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("custom_field.json")).unwrap())
            .unwrap();
    let no_column = [
        "Section Break",
        "Column Break",
        "Tab Break",
        "Table",
        "Table MultiSelect",
        "HTML",
        "Button",
        "Image",
        "Fold",
        "Heading",
    ];
    let stored: Vec<&str> = records
        .iter()
        .filter(|r| !no_column.contains(&r["fieldtype"].as_str().unwrap()))
        .map(|r| r["fieldname"].as_str().unwrap())
        .collect();
    assert_eq!(records.len(), 38);
    assert_eq!(stored.len(), 23, "the fixture's data-storing Custom Fields");

    let report = applier.sync_all(&load(&[frappe, lms, fixtures])).unwrap();
    let after_user = column_names(&db.conn(), "tabUser");
    let added: Vec<&String> = after_user
        .iter()
        .filter(|c| !before_user.contains(c))
        .collect();
    assert_eq!(added.len(), 23, "{added:?}");
    for name in &stored {
        assert!(after_user.iter().any(|c| c == name), "{name} missing");
    }
    let user = report
        .migrations
        .iter()
        .find(|m| m.doctype == "User")
        .unwrap();
    assert!(
        user.changes.iter().all(|c| c
            .layers
            .iter()
            .any(|l| l.starts_with("Custom Field \"User-"))),
        "every change on User comes from a Custom Field: {:?}",
        user.changes
    );

    applier
        .rollback_batch(
            &report.batch_id.unwrap(),
            &RollbackOptions::default().with_allow_data_loss(true),
        )
        .unwrap();
    assert_eq!(
        schema_of(&db.conn()),
        before_schema,
        "Frappe's schema exactly"
    );
}
