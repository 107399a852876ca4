//! The start-up fast path: an up-to-date database is confirmed from
//! fingerprints alone, but a DocType edit or a table changed outside the
//! engine is never missed.

use crate::common::*;
use doctype_migrate::ChangeKind;

const NOTE: &str = r#"{"name": "Note", "fields": [
    {"fieldname": "title", "fieldtype": "Data", "search_index": 1},
    {"fieldname": "body", "fieldtype": "Text"}
]}"#;
const TAG: &str = r#"{"name": "Tag", "fields": [{"fieldname": "label", "fieldtype": "Data"}]}"#;

#[test]
fn up_to_date_is_confirmed_by_fingerprints() {
    let db = TestDb::new();
    let set = [doctype(NOTE), doctype(TAG)];
    let first = db.applier().sync_all(&set).unwrap();
    assert!(!first.fast_path);
    let again = db.applier().sync_all(&set).unwrap();
    assert!(
        again.fast_path,
        "nothing changed: confirmed without introspection"
    );
    assert!(again.migrations.is_empty());
}

#[test]
fn a_doctype_edit_is_not_missed() {
    let db = TestDb::new();
    db.applier()
        .sync_all(&[doctype(NOTE), doctype(TAG)])
        .unwrap();
    let edited = NOTE.replace(r#"{"fieldname": "body", "fieldtype": "Text"}"#, r#"{"fieldname": "body", "fieldtype": "Text"}, {"fieldname": "pinned", "fieldtype": "Check"}"#);
    let report = db
        .applier()
        .sync_all(&[doctype(&edited), doctype(TAG)])
        .unwrap();
    assert!(!report.fast_path);
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(report.migrations[0].changes[0].kind, ChangeKind::AddColumn);
    assert!(
        db.applier()
            .sync_all(&[doctype(&edited), doctype(TAG)])
            .unwrap()
            .fast_path
    );
}

#[test]
fn a_table_altered_outside_the_engine_is_not_missed() {
    let db = TestDb::new();
    let set = [doctype(NOTE), doctype(TAG)];
    db.applier().sync_all(&set).unwrap();
    // Someone drops the engine's index by hand: the next start puts it back.
    db.conn()
        .execute_batch("DROP INDEX \"dm_idx__tabNote__title\"")
        .unwrap();
    let report = db.applier().sync_all(&set).unwrap();
    assert!(!report.fast_path);
    assert_eq!(report.migrations.len(), 1);
    assert_eq!(report.migrations[0].changes[0].kind, ChangeKind::AddIndex);
    assert!(index_names(&db.conn(), "tabNote").contains(&"dm_idx__tabNote__title".to_string()));
    // A harmless outside change (a user index) is looked at, found fine, and
    // reported by dry runs as drift; nothing is migrated.
    db.conn()
        .execute_batch("CREATE INDEX mine ON \"tabTag\"(label)")
        .unwrap();
    let report = db.applier().sync_all(&set).unwrap();
    assert!(!report.fast_path && report.migrations.is_empty());
    let drift = db.applier().dry_run(&set).unwrap();
    assert!(
        drift
            .findings
            .iter()
            .any(|f| f.rule == doctype_migrate::Rule::Cf001)
    );
}

// --- start-up without parsing (`sync_paths`) -------------------------------

mod without_parsing {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use doctype_migrate::{MigrationApplier, RunEvent, RunObserver, WarningCode};

    use super::{NOTE, TAG};
    use crate::common::*;

    /// Whether a run planned (it sent a phase event): a run confirmed from
    /// the start-up record neither parses nor plans.
    #[derive(Default)]
    struct Planned(Mutex<bool>);

    impl RunObserver for Planned {
        fn on_event(&self, event: &RunEvent<'_>) {
            if matches!(event, RunEvent::Phase { .. }) {
                *self.0.lock().unwrap() = true;
            }
        }
    }

    fn inputs(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        let root = dir.join("doctypes");
        std::fs::create_dir_all(&root).unwrap();
        for (name, json) in files {
            std::fs::write(root.join(name), json).unwrap();
        }
        root
    }

    /// `sync_paths` with an observer: the report and whether it planned.
    fn run(db: &TestDb, root: &Path, drop_orphans: bool) -> (doctype_migrate::ApplyReport, bool) {
        let planned = Arc::new(Planned::default());
        let report = MigrationApplier::builder(&db.path)
            .create_if_missing(true)
            .drop_orphan_columns(drop_orphans)
            .observer(planned.clone())
            .build()
            .unwrap()
            .sync_paths(&[root.to_path_buf()])
            .unwrap();
        let planned = *planned.0.lock().unwrap();
        (report, planned)
    }

    /// NOTE with `title` defined twice (QK001): a warning at every parse.
    fn note_with_quirk() -> String {
        NOTE.replace(
            r#"{"fieldname": "body", "fieldtype": "Text"}"#,
            r#"{"fieldname": "body", "fieldtype": "Text"}, {"fieldname": "title", "fieldtype": "Data"}"#,
        )
    }

    #[test]
    fn an_unchanged_start_neither_parses_nor_writes_and_repeats_the_warnings() {
        let db = TestDb::new();
        let root = inputs(
            db.dir.path(),
            &[("note.json", &note_with_quirk()), ("tag.json", TAG)],
        );
        let (first, planned) = run(&db, &root, false);
        assert!(planned && !first.fast_path);
        assert_eq!(first.migrations.len(), 2);
        let quirks = |r: &doctype_migrate::ApplyReport| -> Vec<String> {
            r.warnings
                .iter()
                .filter(|w| w.code == WarningCode::DuplicateField)
                .map(|w| w.message.clone())
                .collect()
        };
        assert_eq!(quirks(&first).len(), 1, "{:?}", first.warnings);
        let bytes = db.bytes();

        let (again, planned) = run(&db, &root, false);
        assert!(again.fast_path && again.migrations.is_empty());
        assert!(!planned, "confirmed from the record: no parse, no plan");
        assert_eq!(
            quirks(&again),
            quirks(&first),
            "the warnings are reported again"
        );
        assert_eq!(db.bytes(), bytes, "an unchanged start writes nothing");
    }

    #[test]
    fn a_changed_file_option_or_schema_is_planned_in_full() {
        let db = TestDb::new();
        let root = inputs(db.dir.path(), &[("note.json", NOTE), ("tag.json", TAG)]);
        run(&db, &root, false);
        assert!(!run(&db, &root, false).1, "recorded");

        // One byte of one file (whitespace: the DocTypes are the same).
        std::fs::write(root.join("tag.json"), format!("{TAG} ")).unwrap();
        let (report, planned) = run(&db, &root, false);
        assert!(planned, "a changed file is parsed");
        assert!(report.migrations.is_empty(), "same DocTypes: up to date");
        assert!(!run(&db, &root, false).1, "and recorded again");

        // An option that shapes the plan.
        let (_, planned) = run(&db, &root, true);
        assert!(planned, "another option set is planned in full");

        // A new file.
        std::fs::write(
            root.join("label.json"),
            r#"{"name": "Label", "fields": [{"fieldname": "text", "fieldtype": "Data"}]}"#,
        )
        .unwrap();
        let (report, planned) = run(&db, &root, false);
        assert!(planned);
        assert_eq!(report.migrations.len(), 1, "the new DocType is created");

        // The schema changed outside the engine: the managed index is gone.
        assert!(!run(&db, &root, false).1);
        let index = index_names(&db.conn(), "tabNote")
            .into_iter()
            .find(|i| i.starts_with("dm_"))
            .expect("the engine's index on title");
        db.conn()
            .execute_batch(&format!("DROP INDEX \"{index}\""))
            .unwrap();
        let (report, planned) = run(&db, &root, false);
        assert!(planned, "a changed schema is planned in full");
        assert_eq!(report.migrations.len(), 1, "the index is created again");
        assert!(index_names(&db.conn(), "tabNote").contains(&index));
    }

    #[test]
    fn a_garbled_or_forged_record_is_planned_in_full() {
        let db = TestDb::new();
        let root = inputs(db.dir.path(), &[("note.json", NOTE)]);
        run(&db, &root, false);
        db.conn()
            .execute_batch(
                "UPDATE \"tabMigrationMeta\" SET value = '{not json' WHERE key = 'startup'",
            )
            .unwrap();
        let (report, planned) = run(&db, &root, false);
        assert!(planned && report.migrations.is_empty());
        // A record that claims another schema is not believed either.
        db.conn()
            .execute_batch(
                "UPDATE \"tabMigrationMeta\" SET value = json_set(value, '$.schema_sha256', \
                 'ffff') WHERE key = 'startup'",
            )
            .unwrap();
        assert!(run(&db, &root, false).1);
    }

    #[test]
    fn bad_input_on_an_existing_database_is_refused_before_any_write() {
        let db = TestDb::new();
        let root = inputs(db.dir.path(), &[("note.json", NOTE)]);
        run(&db, &root, false);
        let bytes = db.bytes();
        std::fs::write(root.join("note.json"), "{\"name\": \"Note\", \"fields\": [").unwrap();
        let err = MigrationApplier::builder(&db.path)
            .build()
            .unwrap()
            .sync_paths(std::slice::from_ref(&root))
            .unwrap_err();
        assert!(err.to_string().contains("note.json"), "{err}");
        assert_eq!(db.bytes(), bytes);
    }

    #[test]
    fn paths_without_doctypes_are_refused() {
        let db = TestDb::new();
        let root = inputs(db.dir.path(), &[("package.json", r#"{"name": "app"}"#)]);
        let err = MigrationApplier::builder(&db.path)
            .create_if_missing(true)
            .build()
            .unwrap()
            .sync_paths(std::slice::from_ref(&root))
            .unwrap_err();
        assert!(
            matches!(&err, doctype_migrate::Error::NoDocTypes { paths } if paths.as_slice() == std::slice::from_ref(&root)),
            "{err:?}"
        );
        assert!(err.to_string().contains("no DocType JSON found"), "{err}");
        assert_eq!(
            count(&db.conn(), "SELECT count(*) FROM sqlite_schema"),
            0,
            "nothing written"
        );
    }
}
