//! Data-aware measurements (`validation::data`) on real SQLite files.
//!
//! The DL003 rule is never trusted on its own: every case is also converted
//! for real (the engine's `INSERT ... SELECT CAST(col AS <type>)` copy into a
//! column of the new type) and judged in Rust from the typed values SQLite
//! hands back.

use super::{DuplicateReport, Question, duplicates, lost_value_sql, measure};
use crate::schema::Affinity;
use proptest::prelude::*;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, StatementStatus, params};
use tempfile::TempDir;

fn db() -> (TempDir, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(dir.path().join("data.db")).expect("open");
    // A real file, but no fsync per insert: these tests write many tiny tables.
    exec(&conn, "PRAGMA synchronous = OFF;");
    (dir, conn)
}

fn exec(conn: &Connection, sql: &str) {
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A stored value, owned, compared the way the DL003 rule means: same
/// storage class and same value (bytes for TEXT/BLOB).
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Null,
    Int(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Stored {
    fn from_ref(v: ValueRef<'_>) -> Stored {
        match v {
            ValueRef::Null => Stored::Null,
            ValueRef::Integer(i) => Stored::Int(i),
            ValueRef::Real(r) => Stored::Real(r),
            ValueRef::Text(t) => Stored::Text(t.to_vec()),
            ValueRef::Blob(b) => Stored::Blob(b.to_vec()),
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Stored::Null => "NULL",
            Stored::Int(_) => "INTEGER",
            Stored::Real(_) => "REAL",
            Stored::Text(_) => "TEXT",
            Stored::Blob(_) => "BLOB",
        }
    }
}

/// `r` is mathematically the integer `i` (no rounding on either side).
fn real_is_int(r: f64, i: i64) -> bool {
    r.is_finite()
        && r.fract() == 0.0
        && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&r)
        && r as i64 == i
}

/// The oracle: converts every value of `src.v` for real and says, per row
/// (ordered by id), whether the value was lost.
///
/// Lost = the new value cast back to the original's storage class (by
/// SQLite) is not identical to the original, or (numbers) the new number is
/// not exactly the original, or (text) the new text is not valid UTF-8 / has
/// a NUL.
fn oracle(conn: &Connection, to_decl: &str) -> Vec<(i64, Stored, Stored, bool)> {
    let from_decl: String = conn
        .query_row(
            "SELECT type FROM pragma_table_xinfo('src') WHERE name = 'v'",
            [],
            |r| r.get(0),
        )
        .expect("src.v");
    let (from, to) = (Affinity::of(&from_decl), Affinity::of(to_decl));
    let copy = match to.cast_type() {
        Some(t) if from != to => format!("CAST(v AS {t})"),
        _ => "v".to_string(),
    };
    exec(
        conn,
        &format!(
            "DROP TABLE IF EXISTS dst; CREATE TABLE dst(id INTEGER PRIMARY KEY, v {to_decl});
             INSERT INTO dst SELECT id, {copy} FROM src;"
        ),
    );
    let mut stmt = conn
        .prepare("SELECT src.id, src.v, dst.v FROM src JOIN dst USING (id) ORDER BY src.id")
        .expect("prepare");
    let pairs: Vec<(i64, Stored, Stored)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                Stored::from_ref(r.get_ref(1)?),
                Stored::from_ref(r.get_ref(2)?),
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    pairs
        .into_iter()
        .map(|(id, orig, new)| {
            let lost = match (&orig, &new) {
                (Stored::Null, _) => false,
                (Stored::Int(i), Stored::Real(r)) | (Stored::Real(r), Stored::Int(i)) => {
                    !real_is_int(*r, *i)
                }
                _ => {
                    let back: Stored = conn
                        .query_row(
                            &format!("SELECT CAST(v AS {}) FROM dst WHERE id = ?1", orig.class()),
                            [id],
                            |r| Ok(Stored::from_ref(r.get_ref(0)?)),
                        )
                        .expect("back");
                    // Text made by the conversion must be usable text.
                    let bad_text = match (&orig, &new) {
                        (Stored::Text(_), _) => false,
                        (_, Stored::Text(t)) => std::str::from_utf8(t).is_err() || t.contains(&0),
                        _ => false,
                    };
                    back != orig || bad_text
                }
            };
            (id, orig, new, lost)
        })
        .collect()
}

/// Per row of `src` (by id): what `lost_value_sql` says.
fn rule(conn: &Connection, to_decl: &str) -> Vec<bool> {
    let from_decl: String = conn
        .query_row(
            "SELECT type FROM pragma_table_xinfo('src') WHERE name = 'v'",
            [],
            |r| r.get(0),
        )
        .expect("src.v");
    let Some(expr) = lost_value_sql("v", Affinity::of(&from_decl), Affinity::of(to_decl)) else {
        return vec![false; count(conn, "SELECT count(*) FROM src") as usize];
    };
    let sql = format!("SELECT ({expr}) FROM src ORDER BY id");
    let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .expect("query")
        .map(|v| v.expect("row") != 0)
        .collect()
}

fn count(conn: &Connection, sql: &str) -> u64 {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql) as u64
}

/// Fills `src(id, v <from_col>)` with `values`.
fn fill_src(conn: &Connection, from_col: &str, values: &[Value]) {
    exec(
        conn,
        &format!(
            "DROP TABLE IF EXISTS src; CREATE TABLE src(id INTEGER PRIMARY KEY, v {from_col});"
        ),
    );
    let mut ins = conn
        .prepare("INSERT INTO src(v) VALUES (?1)")
        .expect("insert");
    for v in values {
        ins.execute([v]).expect("insert value");
    }
}

/// Non-ASCII but valid UTF-8 blobs: the rule counts them as lost on purpose
/// (it cannot validate UTF-8 in SQL); the oracle knows they survive.
fn conservative_case(orig: &Stored, from_col: &str, to_decl: &str) -> bool {
    let converted = Affinity::of(from_col) != Affinity::Text;
    matches!(orig, Stored::Blob(b) if converted && Affinity::of(to_decl) == Affinity::Text
        && std::str::from_utf8(b).is_ok() && !b.is_ascii() && !b.contains(&0))
}

/// Checks rule == oracle for every value, and measure() == the oracle's total.
fn check_against_oracle(conn: &Connection, from_col: &str, to_decl: &str, values: &[Value]) {
    fill_src(conn, from_col, values);
    let truth = oracle(conn, to_decl);
    let said = rule(conn, to_decl);
    assert_eq!(truth.len(), said.len());
    let mut expected_total = 0;
    for ((id, orig, new, lost), rule_lost) in truth.iter().zip(&said) {
        if conservative_case(orig, from_col, to_decl) {
            assert!(!lost && *rule_lost, "blob {orig:?} -> {to_decl}");
        } else {
            assert_eq!(
                *rule_lost, *lost,
                "{from_col} -> {to_decl}: row {id} {orig:?} became {new:?}; oracle says lost={lost}"
            );
        }
        expected_total += u64::from(*rule_lost);
    }
    let answers = measure(conn, "src", &[Question::lossy("v", to_decl)]).expect("measure");
    assert_eq!(
        answers.get(&Question::lossy("v", to_decl)),
        Some(expected_total)
    );
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

const TWO_53: i64 = 1 << 53;

fn edge_values() -> Vec<Value> {
    let mut v = vec![Value::Null];
    v.extend(
        [
            0,
            1,
            -1,
            12,
            i64::MAX,
            i64::MIN,
            TWO_53,
            TWO_53 + 1,
            -(TWO_53 + 1),
            TWO_53 + 2,
        ]
        .map(Value::Integer),
    );
    v.extend(
        [
            0.0,
            -0.0,
            3.0,
            2.5,
            0.1,
            0.1 + 0.2,
            1.5,
            1e15,
            1e16,
            1e30,
            -1e30,
            9_223_372_036_854_775_808.0,
            -9_223_372_036_854_775_808.0,
            1e-300,
            f64::MAX,
            123_456_789.123,
        ]
        .map(Value::Real),
    );
    v.extend(
        [
            "12",
            "0012",
            " 12",
            "12 ",
            "12.0",
            "1e2",
            "abc",
            "",
            "-0",
            "+12",
            "-12",
            "1.5",
            "1.50",
            "1",
            "1.0",
            "3.0",
            "0.1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "12abc",
            "٣",
            "ＡＢＣ",
            "NaN",
            "inf",
            "0x1A",
            "1,000",
            "ABC",
            "abc\0def",
            "1e400",
        ]
        .map(text),
    );
    v.extend(
        [
            &b""[..],
            b"12",
            b"abc",
            b"\0",
            b"\xff",
            b"\xc3\xa9",
            b"12\0",
            b"\x80",
        ]
        .map(|b| Value::Blob(b.to_vec())),
    );
    v
}

// ---------------------------------------------------------------- DL003 ---

/// The truth table from the issue, each case pinned to an expected verdict
/// AND proven by a real conversion.
#[test]
fn dl003_truth_table_matches_real_conversions() {
    let (_dir, conn) = db();
    // (source column, target type, value, lost?)
    let cases: Vec<(&str, &str, Value, bool)> = vec![
        // TEXT/VARCHAR -> INTEGER. A VARCHAR column cannot hold a REAL (TEXT
        // affinity turns it into text), so the REAL cases use a NUMERIC one.
        ("DECIMAL(21,9)", "INTEGER", Value::Real(3.0), false),
        ("DECIMAL(21,9)", "INTEGER", Value::Real(2.5), true),
        ("", "INTEGER", Value::Real(3.0), false),
        ("", "INTEGER", Value::Real(2.5), true),
        ("VARCHAR(140)", "INTEGER", text("12"), false),
        ("VARCHAR(140)", "INTEGER", text("0012"), true),
        ("VARCHAR(140)", "INTEGER", text(" 12"), true),
        ("VARCHAR(140)", "INTEGER", text("12.0"), true),
        ("VARCHAR(140)", "INTEGER", text("1e2"), true),
        ("VARCHAR(140)", "INTEGER", text("abc"), true),
        ("VARCHAR(140)", "INTEGER", text(""), true),
        ("VARCHAR(140)", "INTEGER", Value::Null, false),
        ("TEXT", "BIGINT", text("-12"), false),
        ("TEXT", "INTEGER", text("+12"), true),
        ("TEXT", "INTEGER", text("9223372036854775808"), true),
        // RTRIM collation must not make '12 ' equal to '12'.
        ("VARCHAR(140) COLLATE RTRIM", "INTEGER", text("12 "), true),
        ("TEXT COLLATE NOCASE", "REAL", text("1.5"), false),
        // INTEGER -> REAL: exact unless the double cannot hold it.
        ("INTEGER", "REAL", Value::Integer(12), false),
        ("INTEGER", "DOUBLE", Value::Integer(TWO_53), false),
        ("INTEGER", "REAL", Value::Integer(TWO_53 + 1), true),
        ("INTEGER", "REAL", Value::Integer(-(TWO_53 + 1)), true),
        ("INTEGER", "REAL", Value::Integer(TWO_53 + 2), false),
        ("INTEGER", "REAL", Value::Integer(i64::MAX), true),
        ("INTEGER", "REAL", Value::Integer(i64::MIN), false),
        // REAL -> INTEGER, including clamping at the i64 range.
        ("REAL", "INTEGER", Value::Real(3.0), false),
        ("REAL", "INTEGER", Value::Real(-2.5), true),
        ("REAL", "INTEGER", Value::Real(1e30), true),
        (
            "REAL",
            "INTEGER",
            Value::Real(9_223_372_036_854_775_808.0),
            true,
        ),
        (
            "REAL",
            "INTEGER",
            Value::Real(-9_223_372_036_854_775_808.0),
            false,
        ),
        // anything -> TEXT
        ("INTEGER", "TEXT", Value::Integer(12), false),
        ("INTEGER", "VARCHAR(140)", Value::Integer(i64::MIN), false),
        ("REAL", "TEXT", Value::Real(0.1), false),
        ("REAL", "TEXT", Value::Real(3.0), false),
        ("REAL", "TEXT", Value::Real(1e30), false),
        ("", "TEXT", Value::Blob(b"abc".to_vec()), false),
        ("", "TEXT", Value::Blob(b"\xff".to_vec()), true),
        ("", "TEXT", Value::Blob(b"a\0b".to_vec()), true),
        // TEXT -> REAL
        ("VARCHAR(140)", "REAL", text("1.5"), false),
        ("VARCHAR(140)", "REAL", text("1.50"), true),
        ("VARCHAR(140)", "REAL", text("abc"), true),
        ("VARCHAR(140)", "REAL", text("1"), true),
        // -> NUMERIC
        ("VARCHAR(140)", "DECIMAL(21,9)", text("12"), false),
        ("VARCHAR(140)", "DECIMAL(21,9)", text("1.5"), false),
        ("VARCHAR(140)", "DECIMAL(21,9)", text("12.0"), true),
        ("REAL", "DECIMAL(21,9)", Value::Real(3.0), false),
        // Same affinity: nothing is converted, nothing lost, whatever is stored.
        ("VARCHAR(140)", "TEXT", text("0012"), false),
        ("INTEGER", "BIGINT", text("abc"), false),
        ("REAL", "DOUBLE", Value::Real(2.5), false),
        // BLOB target: copied without a cast.
        ("VARCHAR(140)", "BLOB", text("0012"), false),
    ];
    for (from_col, to_decl, value, expected) in cases {
        fill_src(&conn, from_col, std::slice::from_ref(&value));
        let truth = oracle(&conn, to_decl);
        assert_eq!(
            truth[0].3, expected,
            "oracle: {from_col} -> {to_decl}: {value:?} stored as {:?} became {:?}",
            truth[0].1, truth[0].2
        );
        let n = measure(&conn, "src", &[Question::lossy("v", to_decl)])
            .expect("measure")
            .get(&Question::lossy("v", to_decl));
        assert_eq!(
            n,
            Some(u64::from(expected)),
            "rule: {from_col} -> {to_decl}: {value:?}"
        );
    }
}

/// Every edge value, every source affinity, every target: rule == oracle.
#[test]
fn dl003_rule_agrees_with_real_cast_on_edge_values() {
    let (_dir, conn) = db();
    let values = edge_values();
    for from_col in [
        "",
        "VARCHAR(140)",
        "INTEGER",
        "REAL",
        "DECIMAL(21,9)",
        "TEXT COLLATE NOCASE",
    ] {
        for to_decl in [
            "INTEGER",
            "BIGINT",
            "REAL",
            "DOUBLE",
            "TEXT",
            "VARCHAR(140)",
            "DECIMAL(21,9)",
            "BLOB",
            "",
        ] {
            check_against_oracle(&conn, from_col, to_decl, &values);
        }
    }
}

/// The one deliberate disagreement: valid non-ASCII UTF-8 in a BLOB is
/// counted as lost when converted to TEXT (conservative).
#[test]
fn dl003_non_ascii_blob_to_text_is_counted_conservatively() {
    let (_dir, conn) = db();
    fill_src(&conn, "", &[Value::Blob("é".as_bytes().to_vec())]);
    let truth = oracle(&conn, "TEXT");
    assert!(!truth[0].3, "really survives");
    assert_eq!(
        measure(&conn, "src", &[Question::lossy("v", "TEXT")])
            .expect("measure")
            .get(&Question::lossy("v", "TEXT")),
        Some(1)
    );
}

fn stored_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        (-(1i64 << 60)..(1i64 << 60)).prop_map(Value::Integer),
        any::<f64>()
            .prop_filter("SQLite stores NaN as NULL", |f| !f.is_nan())
            .prop_map(Value::Real),
        (-1.0e6f64..1.0e6).prop_map(Value::Real),
        (-1000i32..1000).prop_map(|i| Value::Real(f64::from(i) / 4.0)),
        "[ +-]?[0-9]{0,4}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?[ a]?".prop_map(Value::Text),
        "\\PC{0,6}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Value::Blob),
        "[0-9a-z.]{0,5}".prop_map(|s| Value::Blob(s.into_bytes())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random values of every storage class: the rule never disagrees with
    /// the real conversion (except the documented conservative BLOB case).
    #[test]
    fn dl003_rule_agrees_with_real_cast_on_random_values(
        values in proptest::collection::vec(stored_value(), 1..40),
        from_col in prop::sample::select(vec!["", "VARCHAR(140)", "INTEGER", "REAL", "DECIMAL(21,9)"]),
        to_decl in prop::sample::select(vec!["INTEGER", "REAL", "TEXT", "DECIMAL(21,9)"]),
    ) {
        let (_dir, conn) = db();
        check_against_oracle(&conn, from_col, to_decl, &values);
    }
}

// ------------------------------------------------------------ measure() ---

#[test]
fn measure_counts_every_question_exactly() {
    let (_dir, conn) = db();
    exec(
        &conn,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a VARCHAR(140), b REAL, c INTEGER);
         INSERT INTO t(a, b, c) VALUES
           ('12', 3.0, 1), ('0012', 2.5, NULL), (NULL, NULL, NULL), ('abc', 1.0, 4),
           ('7', NULL, 5), (NULL, 0.5, 6), ('', 9.0, NULL);",
    );
    let questions = vec![
        Question::RowCount,
        Question::non_null("a"),
        Question::nulls("a"),
        Question::non_null("b"),
        Question::nulls("c"),
        Question::lossy("a", "INTEGER"),
        Question::lossy("b", "INTEGER"),
        Question::lossy("c", "VARCHAR(10)"),
        Question::lossy("a", "TEXT"),
        // Asked twice: same answer, one aggregate.
        Question::nulls("a"),
        // Column names match the way SQLite matches them.
        Question::non_null("A"),
    ];
    let answers = measure(&conn, "t", &questions).expect("measure");
    let got: Vec<u64> = answers.iter().map(|(_, n)| n).collect();
    // a: '12','0012',NULL,'abc','7',NULL,''  -> 5 non-NULL, 2 NULL, lost to INTEGER: '0012','abc','' = 3
    // b: 3.0,2.5,NULL,1.0,NULL,0.5,9.0       -> 5 non-NULL, lost to INTEGER: 2.5, 0.5 = 2
    // c: 1,NULL,NULL,4,5,6,NULL              -> 3 NULL, nothing lost to text
    assert_eq!(got, vec![7, 5, 2, 5, 3, 3, 2, 0, 0, 2, 5]);
    assert_eq!(answers.get(&Question::lossy("a", "INTEGER")), Some(3));
    assert_eq!(answers.get(&Question::lossy("zz", "INTEGER")), None);
    assert_eq!(answers.statements().len(), 1);
    // count(*), count(a), count(b), count(c), lossy a, b and c: the
    // same-affinity question costs nothing and repeats are shared.
    assert_eq!(answers.statements()[0].matches("count(").count(), 7);
}

#[test]
fn measure_on_an_empty_table_gives_zeros() {
    let (_dir, conn) = db();
    exec(&conn, "CREATE TABLE t(a TEXT, b REAL);");
    let questions = vec![
        Question::RowCount,
        Question::non_null("a"),
        Question::nulls("a"),
        Question::lossy("a", "INTEGER"),
        Question::lossy("b", "INTEGER"),
    ];
    let answers = measure(&conn, "t", &questions).expect("measure");
    for q in &questions {
        assert_eq!(answers.get(q), Some(0), "{q:?}");
    }
}

#[test]
fn no_questions_read_nothing() {
    let (_dir, conn) = db();
    // The table does not even exist: with nothing to ask, nothing is read.
    let answers = measure(&conn, "missing", &[]).expect("measure");
    assert!(answers.statements().is_empty());
    assert_eq!(answers.iter().count(), 0);
}

#[test]
fn odd_table_and_column_names_are_quoted() {
    let (_dir, conn) = db();
    exec(
        &conn,
        r#"CREATE TABLE "tab""x" ("order" VARCHAR(140), "we""ird col" REAL, "select" INTEGER);
           INSERT INTO "tab""x" VALUES ('0012', 2.5, 1), ('5', NULL, NULL), (NULL, 3.0, 2);"#,
    );
    let questions = vec![
        Question::RowCount,
        Question::non_null("order"),
        Question::nulls("we\"ird col"),
        Question::lossy("order", "INTEGER"),
        Question::lossy("we\"ird col", "INTEGER"),
        Question::nulls("select"),
    ];
    let answers = measure(&conn, "tab\"x", &questions).expect("measure");
    let got: Vec<u64> = answers.iter().map(|(_, n)| n).collect();
    assert_eq!(got, vec![3, 2, 1, 1, 1, 1]);

    let report = duplicates(&conn, "tab\"x", &["order".to_string()], 3).expect("dups");
    assert_eq!(report, DuplicateReport::default());
}

#[test]
fn unknown_columns_and_tables_are_errors_not_zeros() {
    let (_dir, conn) = db();
    exec(&conn, "CREATE TABLE t(a TEXT); INSERT INTO t VALUES ('x');");
    // SQLite would read "missing" as the string 'missing' and count 1.
    let err = measure(&conn, "t", &[Question::non_null("missing")]).expect_err("unknown column");
    assert!(format!("{err:?}").contains("missing"), "{err:?}");
    assert!(measure(&conn, "t", &[Question::lossy("missing", "INTEGER")]).is_err());
    assert!(duplicates(&conn, "t", &["missing".to_string()], 1).is_err());
    let err = measure(&conn, "nope", &[Question::RowCount]).expect_err("unknown table");
    let chain = format!("{err} / {:?}", std::error::Error::source(&err));
    assert!(chain.contains("no such table"), "{chain}");
    assert!(duplicates(&conn, "t", &[], 1).is_err());
}

/// One pass: the statement SQLite runs scans the table once. Checked two
/// ways that a second scan would break: the query plan has exactly one SCAN,
/// and SQLite's own full-scan step counter equals the row count (a control
/// statement with two scans shows it would double).
#[test]
fn measure_reads_the_table_once() {
    let (_dir, conn) = db();
    let n: u64 = 5000;
    exec(
        &conn,
        &format!(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, a VARCHAR(140), b REAL, c TEXT);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
             INSERT INTO t(a, b, c) SELECT printf('%04d', i % 50), i / 4.0,
               CASE WHEN i % 3 = 0 THEN NULL ELSE 'x' END FROM s;"
        ),
    );
    let questions = vec![
        Question::RowCount,
        Question::non_null("a"),
        Question::nulls("c"),
        Question::lossy("a", "INTEGER"),
        Question::lossy("b", "INTEGER"),
    ];
    let answers = measure(&conn, "t", &questions).expect("measure");
    assert_eq!(answers.get(&Question::RowCount), Some(n));
    assert_eq!(answers.get(&Question::nulls("c")), Some(n / 3));
    // '0001'..'0049' keep leading zeros (lost); '0000' becomes '0' (lost too).
    assert_eq!(answers.get(&Question::lossy("a", "INTEGER")), Some(n));
    assert_eq!(
        answers.get(&Question::lossy("b", "INTEGER")),
        Some(n - n / 4)
    );

    assert_eq!(answers.statements().len(), 1, "one statement");
    let sql = &answers.statements()[0];
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("eqp")
        .query_map([], |r| r.get::<_, String>(3))
        .expect("eqp rows")
        .collect::<Result<_, _>>()
        .expect("eqp rows");
    assert_eq!(plan, vec!["SCAN t".to_string()], "{sql}");
    assert!(
        answers.fullscan_steps() >= n - 1 && answers.fullscan_steps() <= n,
        "one pass over {n} rows stepped {} rows",
        answers.fullscan_steps()
    );

    // Control: the counter does see a second scan.
    let mut two = conn
        .prepare(
            "SELECT (SELECT count(*) FROM t WHERE a IS NOT NULL),
                    (SELECT count(*) FROM t WHERE c IS NULL)",
        )
        .expect("control");
    two.query_row([], |_| Ok(())).expect("control row");
    assert!(two.get_status(StatementStatus::FullscanStep) as u64 >= 2 * (n - 1));
}

#[test]
fn more_questions_than_one_statement_holds_still_answer_exactly() {
    let (_dir, conn) = db();
    let cols: Vec<String> = (0..600).map(|i| format!("c{i} VARCHAR(20)")).collect();
    exec(&conn, &format!("CREATE TABLE wide({});", cols.join(", ")));
    let vals: Vec<String> = (0..600)
        .map(|i| if i % 2 == 0 { "'0012'" } else { "NULL" }.to_string())
        .collect();
    exec(
        &conn,
        &format!(
            "INSERT INTO wide VALUES ({}); INSERT INTO wide VALUES ({});",
            vals.join(", "),
            vals.join(", ")
        ),
    );
    let mut questions = vec![Question::RowCount];
    for i in 0..600 {
        questions.push(Question::non_null(format!("c{i}")));
        questions.push(Question::lossy(format!("c{i}"), "INTEGER"));
    }
    let answers = measure(&conn, "wide", &questions).expect("measure");
    assert_eq!(answers.statements().len(), 2);
    assert_eq!(answers.get(&Question::RowCount), Some(2));
    for i in 0..600 {
        let expect = if i % 2 == 0 { 2 } else { 0 };
        assert_eq!(
            answers.get(&Question::non_null(format!("c{i}"))),
            Some(expect)
        );
        assert_eq!(
            answers.get(&Question::lossy(format!("c{i}"), "INTEGER")),
            Some(expect)
        );
    }
}

// --------------------------------------------------------- duplicates() ---

/// Whether SQLite itself can build a UNIQUE index on `cols` of `table`.
fn unique_index_builds(conn: &Connection, table: &str, cols: &str) -> bool {
    let ok = conn
        .execute_batch(&format!("CREATE UNIQUE INDEX probe ON {table}({cols})"))
        .is_ok();
    if ok {
        exec(conn, "DROP INDEX probe");
    }
    ok
}

/// The acceptance case: 1,000 rows, 37 of them in 12 duplicate groups
/// (eleven values held by 3 rows each, one by 4), 963 unique rows.
#[test]
fn mf001_counts_37_rows_in_12_groups() {
    let (_dir, conn) = db();
    exec(
        &conn,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, email VARCHAR(140));",
    );
    let mut ins = conn
        .prepare("INSERT INTO t(email) VALUES (?1)")
        .expect("insert");
    for i in 0..963 {
        ins.execute([format!("user{i}@example.com")])
            .expect("unique row");
    }
    for g in 0..12 {
        let copies = if g == 0 { 4 } else { 3 };
        for _ in 0..copies {
            ins.execute([format!("dup{g:02}@example.com")])
                .expect("dup row");
        }
    }
    drop(ins);
    // NULLs are never duplicates, however many.
    exec(&conn, "INSERT INTO t(email) VALUES (NULL), (NULL), (NULL);");
    exec(&conn, "DELETE FROM t WHERE email IS NULL;");
    assert_eq!(count(&conn, "SELECT count(*) FROM t"), 1000);

    let report = duplicates(&conn, "t", &["email".to_string()], 3).expect("dups");
    assert_eq!(report.rows_in_duplicate_groups, 37);
    assert_eq!(report.groups, 12);
    assert_eq!(report.excess_rows(), 25);
    let shown: Vec<String> = report.examples.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "'dup00@example.com' (4 rows)",
            "'dup01@example.com' (3 rows)",
            "'dup02@example.com' (3 rows)"
        ]
    );
    assert!(!unique_index_builds(&conn, "t", "email"));

    // Zero examples asked: totals still exact.
    let report = duplicates(&conn, "t", &["email".to_string()], 0).expect("dups");
    assert_eq!((report.rows_in_duplicate_groups, report.groups), (37, 12));
    assert!(report.examples.is_empty());

    // Resolve the duplicates: the report and SQLite agree again.
    exec(
        &conn,
        "DELETE FROM t WHERE id NOT IN (SELECT min(id) FROM t GROUP BY email);",
    );
    let report = duplicates(&conn, "t", &["email".to_string()], 3).expect("dups");
    assert_eq!(report, DuplicateReport::default());
    assert!(unique_index_builds(&conn, "t", "email"));
}

#[test]
fn mf001_multi_column_keys_with_nulls() {
    let (_dir, conn) = db();
    exec(
        &conn,
        "CREATE TABLE t(a INTEGER, b TEXT);
         INSERT INTO t VALUES
           (1, 'x'), (1, 'x'),              -- a duplicate group of 2
           (1, NULL), (1, NULL), (1, NULL), -- NULL in the key: never duplicates
           (NULL, NULL), (NULL, NULL),
           (NULL, 'x'), (NULL, 'x'),
           (2, 'x'), (1, 'y'),              -- unique
           (3, 'it''s'), (3, 'it''s'), (3, 'it''s');",
    );
    let key = vec!["a".to_string(), "b".to_string()];
    let report = duplicates(&conn, "t", &key, 5).expect("dups");
    assert_eq!(report.rows_in_duplicate_groups, 5);
    assert_eq!(report.groups, 2);
    let shown: Vec<String> = report.examples.iter().map(ToString::to_string).collect();
    assert_eq!(shown, vec!["(3, 'it''s') (3 rows)", "(1, 'x') (2 rows)"]);
    assert!(!unique_index_builds(&conn, "t", "a, b"));
    exec(
        &conn,
        "DELETE FROM t WHERE a IN (1, 3) AND b IN ('x', 'it''s');",
    );
    assert_eq!(duplicates(&conn, "t", &key, 5).expect("dups").groups, 0);
    assert!(unique_index_builds(&conn, "t", "a, b"));
}

/// Keys compare the way a UNIQUE index compares them: by the column's
/// collation, and 1 = 1.0 but 1 <> '1'. The report and a real index agree.
#[test]
fn mf001_agrees_with_a_real_unique_index() {
    let (_dir, conn) = db();
    exec(
        &conn,
        "CREATE TABLE n(v TEXT COLLATE NOCASE); INSERT INTO n VALUES ('Acme'), ('ACME'), ('acme ');
         CREATE TABLE r(v);                    INSERT INTO r VALUES (1), (1.0), ('1'), (x'31');
         CREATE TABLE s(v TEXT);               INSERT INTO s VALUES ('Acme'), ('ACME');",
    );
    for (table, rows, groups) in [("n", 2, 1), ("r", 2, 1), ("s", 0, 0)] {
        let report = duplicates(&conn, table, &["v".to_string()], 1).expect("dups");
        assert_eq!(
            (report.rows_in_duplicate_groups, report.groups),
            (rows, groups),
            "{table}"
        );
        assert_eq!(
            unique_index_builds(&conn, table, "v"),
            groups == 0,
            "{table}"
        );
    }
}

#[test]
fn mf001_examples_are_rendered_safely_and_cut() {
    let (_dir, conn) = db();
    let long = format!("{}\n'; DROP TABLE t; --", "x".repeat(30));
    exec(&conn, "CREATE TABLE t(v);");
    for v in [
        Value::Text(long.clone()),
        Value::Text(long),
        Value::Blob(vec![0xde; 64]),
        Value::Blob(vec![0xde; 64]),
        Value::Real(2.5),
        Value::Real(2.5),
    ] {
        conn.execute("INSERT INTO t VALUES (?1)", params![v])
            .expect("insert");
    }
    let report = duplicates(&conn, "t", &["v".to_string()], 10).expect("dups");
    let values: Vec<&str> = report.examples.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(
        values,
        vec![
            "2.5",
            "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n''; DROP T…'",
            &format!("x'{}…'", "de".repeat(20)),
        ]
    );
}
