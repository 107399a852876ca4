//! What the binary prints around the report: progress on stderr (plain
//! lines when stderr is not a terminal, bars when it is), `--quiet`, `-v`
//! log lines, `--color`, the metrics columns of `history`, and the
//! `--lock-timeout` / `--busy-timeout` flags. Stdout must stay the report
//! alone (pure JSON with `--json`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{HISTORY_COLUMNS, TestDb};
use serde_json::Value;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_doctype-migrate"));
    // The tests decide colour themselves; an inherited NO_COLOR or TERM must not.
    cmd.env_remove("NO_COLOR").env_remove("TERM");
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run doctype-migrate")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn example(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/doctypes")
        .join(version)
}

/// Rows in the rebuilt table: more than one copy range (65,536 rows), so
/// progress is reported while copying, not only at the end.
const ROWS: u64 = 120_000;

const READING_V1: &str =
    r#"{"name": "Reading", "fields": [{"fieldname": "value", "fieldtype": "Data"}]}"#;

/// A database with `tabReading` holding [`ROWS`] rows, and a DocType
/// directory whose next version changes `value` from Data to Int (a
/// rebuild). Returns the directory; write v2 with [`reading_v2`].
fn reading_db(db: &TestDb) -> PathBuf {
    let dir = db.dir.path().join("reading");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("reading.json"), READING_V1).unwrap();
    let out = run(&["-q", "apply", "--db", s(&db.path), "--doctypes", s(&dir)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    db.conn()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
             INSERT INTO \"tabReading\" (name, value) SELECT 'R' || i, i * 3 FROM n;"
        ))
        .unwrap();
    dir
}

fn reading_v2(dir: &Path) {
    std::fs::write(
        dir.join("reading.json"),
        READING_V1.replace(r#""fieldtype": "Data""#, r#""fieldtype": "Int""#),
    )
    .unwrap();
}

#[test]
fn plain_progress_goes_to_stderr_ends_with_the_row_count_and_json_stays_pure() {
    let db = TestDb::new();
    let dir = reading_db(&db);
    reading_v2(&dir);
    let out = run(&[
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&dir),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Stdout is the JSON report and nothing else.
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not pure JSON ({e}):\n{}", stdout(&out)));
    assert_eq!(json["migrations"][0]["affected_rows"], ROWS);
    assert!(!stdout(&out).contains("progress:"));

    let err = stderr(&out);
    assert!(
        !err.contains('\x1b'),
        "no escapes when not a terminal: {err}"
    );
    for phase in ["progress: plan\n", "progress: lock\n", "progress: commit\n"] {
        assert!(err.contains(phase), "{phase:?} missing from:\n{err}");
    }
    assert!(
        err.contains("progress: backup of tabReading written ("),
        "{err}"
    );
    let rows: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: tabReading: "))
        .collect();
    assert!(
        rows.len() >= 2,
        "a line while copying and a final one: {err}"
    );
    assert_eq!(
        *rows.last().unwrap(),
        format!("progress: tabReading: {ROWS}/{ROWS} rows copied, done")
    );
    // (Rate limiting between the first and the final line is unit-tested
    // in src/cli/progress.rs, with a controlled clock.)

    // history shows the metrics of the rebuild.
    let out = run(&["history", "--db", s(&db.path), "--doctype", "Reading"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, HISTORY_COLUMNS);
    let last: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(last.len(), header.len(), "{text}");
    let cell = |name: &str| last[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(cell("copied"), ROWS.to_string(), "{text}");
    for ms in ["val_ms", "bak_ms", "exe_ms", "ver_ms"] {
        assert!(cell(ms).parse::<f64>().is_ok(), "{ms} in {text}");
    }
    assert!(
        cell("backup").ends_with(['K', 'M']),
        "backup bytes, compact: {text}"
    );
    assert!(cell("exe_ms").parse::<f64>().unwrap() > 0.0, "{text}");
}

#[test]
fn quiet_apply_prints_nothing_on_stderr() {
    let db = TestDb::new();
    let dir = reading_db(&db);
    reading_v2(&dir);
    let out = run(&[
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&dir),
        "--quiet",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "--quiet: nothing on stderr");
    assert!(
        stdout(&out).contains("Applied: 1 completed"),
        "{}",
        stdout(&out)
    );

    // Global flags work after the subcommand too, and errors still print.
    let db2 = TestDb::new();
    let out = run(&["history", "--db", s(&db2.path), "-q"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with("error: database "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verbose_emits_log_lines_and_the_default_does_not() {
    let db = TestDb::new();
    let v1 = example("v1");
    let out = run(&["apply", "--db", s(&db.path), "--doctypes", s(&v1)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains(" INFO "), "{}", stderr(&out));

    let out = run(&["-v", "plan", "--db", s(&db.path), "--doctypes", s(&v1)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(" INFO "), "{err}");
    assert!(err.contains("loaded 4 DocType(s) from 1 path(s)"), "{err}");
    assert!(err.contains("opening "), "{err}");
    assert!(!err.contains("DEBUG"), "-v is info, not debug: {err}");

    let out = run(&["-vv", "history", "--db", s(&db.path), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("DEBUG"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4 history row(s)"),
        "{}",
        stderr(&out)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).expect("stdout stays pure JSON");
    assert!(rows[0]["metrics"].is_object(), "{rows}");

    let out = run(&["-q", "-v", "history", "--db", s(&db.path)]);
    assert_eq!(code(&out), 1, "--quiet and -v conflict");
}

/// Removes ANSI SGR escapes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn color_always_colours_plan_and_never_or_a_pipe_does_not() {
    let db = TestDb::new();
    assert_eq!(
        code(&run(&[
            "-q",
            "apply",
            "--db",
            s(&db.path),
            "--doctypes",
            s(&example("v1"))
        ])),
        0
    );
    let v2 = example("v2");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--db", s(&db.path), "--doctypes", s(&v2)];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
    };
    let always = plan(&["--color", "always"]);
    let never = plan(&["--color", "never"]);
    let piped = plan(&[]);
    assert!(
        always.contains("\x1b[32m+ add_column email_id VARCHAR(140)\x1b[0m"),
        "{always}"
    );
    assert!(
        always.contains("\x1b[33m~ change_type shelf_life_in_days VARCHAR(140) -> INTEGER\x1b[0m"),
        "{always}"
    );
    assert!(always.contains("\x1b[2m"), "SQL dimmed: {always}");
    assert!(!never.contains('\x1b'), "{never}");
    assert_eq!(piped, never, "auto is plain when stdout is not a terminal");
    assert_eq!(
        strip_ansi(&always),
        never,
        "colour adds escapes, nothing else"
    );
    assert!(
        never.contains("    ~ rename_column mobile_no -> mobile_number\n"),
        "{never}"
    );

    // --color always wins over NO_COLOR.
    let out = bin()
        .args([
            "plan",
            "--db",
            s(&db.path),
            "--doctypes",
            s(&v2),
            "--color",
            "always",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(stdout(&out).contains('\x1b'));
    // JSON is never coloured.
    let json = plan(&["--color", "always", "--json"]);
    assert!(!json.contains('\x1b'));
    serde_json::from_str::<Value>(&json).expect("pure JSON");
}

#[test]
fn lock_timeout_gives_up_when_another_writer_holds_the_lock() {
    let db = TestDb::new();
    let v1 = example("v1");
    assert_eq!(
        code(&run(&[
            "-q",
            "apply",
            "--db",
            s(&db.path),
            "--doctypes",
            s(&v1)
        ])),
        0
    );
    let holder = db.conn();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let out = run(&[
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&example("v2")),
        "--lock-timeout",
        "0.5",
        "--busy-timeout",
        "50",
    ]);
    let took = started.elapsed();
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: could not take the write lock"),
        "{}",
        stderr(&out)
    );
    assert!(
        took < Duration::from_secs(20),
        "gave up after {took:?}, not the default 60 s"
    );
    // The lock is free again: the same apply goes through.
    let out = run(&[
        "-q",
        "apply",
        "--db",
        s(&db.path),
        "--doctypes",
        s(&example("v2")),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    for bad in ["0", "-1", "soon"] {
        let flag = format!("--lock-timeout={bad}");
        let out = run(&["history", "--db", s(&db.path), &flag]);
        assert_eq!(code(&out), 1, "--lock-timeout {bad}");
        assert!(stderr(&out).contains("--lock-timeout"), "{}", stderr(&out));
    }
}

/// `script` runs the command on a pseudo-terminal, so stderr is a TTY.
/// Skipped (with a note) where util-linux `script` is not installed.
#[test]
fn on_a_terminal_progress_is_drawn_as_bars() {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: /usr/bin/script (util-linux) is not installed");
        return;
    }
    let db = TestDb::new();
    let dir = reading_db(&db);
    reading_v2(&dir);
    let quote = |p: &Path| format!("'{}'", s(p).replace('\'', r"'\''"));
    let command = format!(
        "{} apply --db {} --doctypes {}",
        quote(Path::new(env!("CARGO_BIN_EXE_doctype-migrate"))),
        quote(&db.path),
        quote(&dir)
    );
    let out = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .output()
        .expect("run script");
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains(&format!("tabReading: {} rows copied in ", "120,000")),
        "{text:?}"
    );
    assert!(text.contains("backup of tabReading written ("), "{text:?}");
    assert!(
        !text.contains("progress: "),
        "bars, not plain lines: {text:?}"
    );
    assert!(text.contains("Applied: 1 completed"), "{text:?}");
}
