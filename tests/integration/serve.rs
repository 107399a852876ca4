//! `doctype-migrate serve` and `token`: a real server on an ephemeral
//! port, spoken to with a real HTTP client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doctype-migrate"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn example(version: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/doctypes")
        .join(version)
        .display()
        .to_string()
}

/// Adds a token and returns it (the one stdout line).
fn add_token(tokens: &Path, name: &str, role: &str) -> String {
    let out = run(&[
        "token",
        "add",
        "--tokens",
        tokens.to_str().unwrap(),
        "--name",
        name,
        "--role",
        role,
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "the token alone: {stdout:?}");
    stdout.trim().to_owned()
}

/// A database at v1 of the example DocTypes, served with v2 (so changes
/// are pending), and tokens for each role.
pub(crate) struct Served {
    _dir: tempfile::TempDir,
    pub db: PathBuf,
    tokens: PathBuf,
    child: Child,
    pub base: String,
    pub viewer: String,
    pub approver: String,
    pub operator: String,
    pub admin: String,
}

impl Served {
    pub fn start() -> Served {
        Served::start_with(&[])
    }

    /// Started with more `serve` arguments.
    fn start_with(extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let tokens = dir.path().join("tokens.json");
        let out = run(&[
            "apply",
            "--db",
            db.to_str().unwrap(),
            "--doctypes",
            &example("v1"),
            "--quiet",
        ]);
        assert!(out.status.success(), "{out:?}");
        let viewer = add_token(&tokens, "vera", "viewer");
        let approver = add_token(&tokens, "ann", "approver");
        let operator = add_token(&tokens, "otto", "operator");
        let admin = add_token(&tokens, "ada", "admin");
        let mut child = bin()
            .args([
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--doctypes",
                &example("v2"),
                "--tokens",
                tokens.to_str().unwrap(),
            ])
            .args(if extra.contains(&"--addr") {
                &[][..]
            } else {
                &["--addr", "127.0.0.1:0"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_owned();
        assert!(base.starts_with("http"), "{base}");
        assert!(!base.ends_with(":0"), "the real port: {base}");
        Served {
            _dir: dir,
            db,
            tokens,
            child,
            base,
            viewer,
            approver,
            operator,
            admin,
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// POST a raw body with a bearer token: status and JSON body.
    fn post(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        let (status, _, body) = self.post_full(path, token, body);
        (status, body)
    }

    /// POST: status, `Retry-After` and JSON body.
    fn post_full(&self, path: &str, token: &str, body: &str) -> (u16, Option<String>, Value) {
        let mut resp = Self::agent()
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            retry,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// A new plan by `token`; its id.
    fn plan(&self, token: &str) -> (String, Value) {
        let (code, body) = self.post("/api/migration/plans", token, "");
        assert_eq!(code, 201, "{body}");
        (body["id"].as_str().unwrap().to_owned(), body)
    }

    /// Applies plan `id` with `token` and waits for the run: it must
    /// start (202) and complete.
    fn apply_and_wait(&self, id: &str, token: &str) {
        let (code, started) = self.post(&format!("/api/migration/plans/{id}/apply"), token, "");
        assert_eq!(code, 202, "{started}");
        let run = self.wait_run(started["run_id"].as_str().unwrap());
        assert_eq!(run["state"], "completed", "{run}");
    }

    /// Waits for a run to end; its final state.
    fn wait_run(&self, run_id: &str) -> Value {
        for _ in 0..600 {
            let (code, run) =
                self.get(&format!("/api/migration/runs/{run_id}"), Some(&self.viewer));
            assert_eq!(code, 200, "{run}");
            if run["state"] != "running" {
                return run;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("run {run_id} did not end");
    }

    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    fn db_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.db).unwrap()
    }

    /// GET with an optional bearer token: status and JSON body.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = Self::agent().get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.body_mut().read_json().unwrap();
        (status, body)
    }

    /// SIGTERM, and the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn token_add_prints_the_token_once_and_stores_only_its_hash_in_a_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let t = add_token(&tokens, "ops@example", "operator");
    let stored = std::fs::read_to_string(&tokens).unwrap();
    assert!(!stored.contains(&t), "the token itself is not stored");
    let file: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(file["tokens"][0]["name"], "ops@example");
    assert_eq!(file["tokens"][0]["role"], "operator");
    assert_eq!(file["tokens"][0]["sha256"].as_str().unwrap().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = add_token(&tokens, "second", "viewer");
    assert_ne!(again, t);
    // Names are unique.
    let p = tokens.to_str().unwrap();
    let dup = run(&[
        "token", "add", "--tokens", p, "--name", "second", "--role", "admin",
    ]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists already"));
    // A role that does not exist is a usage error.
    let bad = run(&[
        "token", "add", "--tokens", p, "--name", "x", "--role", "root",
    ]);
    assert!(!bad.status.success());
    let list = run(&["token", "list", "--tokens", p, "--json"]);
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows[0].get("sha256").is_none(), "list shows no hashes");
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&t));
    let revoke = run(&["token", "revoke", "--tokens", p, "--name", "second"]);
    assert!(revoke.status.success(), "{revoke:?}");
    let list = run(&["token", "list", "--tokens", p]);
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("ops@example") && !text.contains("second"),
        "{text}"
    );
    let missing = run(&["token", "revoke", "--tokens", p, "--name", "second"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn health_needs_no_token_and_everything_else_does() {
    let s = Served::start();
    assert_eq!(
        s.get("/api/health", None),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (code, body) = s.get("/api/migration/status", None);
    assert_eq!(code, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (code, _) = s.get("/api/migration/history", Some("dmt_not-a-token"));
    assert_eq!(code, 401);
    let (code, body) = s.get("/api/no/such/thing", Some(&s.viewer));
    assert_eq!(code, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[test]
fn status_counts_the_pending_changes_and_names_the_last_batch() {
    let s = Served::start();
    let (code, body) = s.get("/api/migration/status", Some(&s.viewer));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["pending"]["doctypes"], 4);
    assert!(
        body["pending"]["changes"]["add_column"].as_u64().unwrap() >= 1,
        "{body}"
    );
    assert_eq!(body["last_batch"]["migrations"], 4);
    assert_eq!(body["drift"], serde_json::json!([]));
    // Once applied (outside the server), it says so.
    let out = run(&[
        "apply",
        "--db",
        s.db.to_str().unwrap(),
        "--doctypes",
        &example("v2"),
        "--quiet",
    ]);
    assert!(out.status.success(), "{out:?}");
    let (_, body) = s.get("/api/migration/status", Some(&s.viewer));
    assert_eq!(body["state"], "up_to_date", "{body}");
    assert_eq!(body["pending"]["doctypes"], 0);
}

#[test]
fn history_is_what_history_json_prints_and_limit_keeps_the_newest() {
    let s = Served::start();
    let (code, body) = s.get("/api/migration/history", Some(&s.viewer));
    assert_eq!(code, 200);
    let cli = run(&["history", "--db", s.db.to_str().unwrap(), "--json"]);
    let expected: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(body, expected);
    let (_, last) = s.get("/api/migration/history?limit=1", Some(&s.viewer));
    assert_eq!(last.as_array().unwrap().len(), 1);
    assert_eq!(
        last[0],
        expected.as_array().unwrap().last().unwrap().clone()
    );
    let (_, one) = s.get("/api/migration/history?doctype=Customer", Some(&s.viewer));
    assert!(
        one.as_array()
            .unwrap()
            .iter()
            .all(|r| r["doctype"] == "Customer")
    );
    assert_eq!(one.as_array().unwrap().len(), 1);
}

#[test]
fn a_revoked_token_stops_working_without_a_restart() {
    let s = Served::start();
    assert_eq!(s.get("/api/migration/status", Some(&s.viewer)).0, 200);
    let p = s.tokens.to_str().unwrap().to_owned();
    assert!(
        run(&["token", "revoke", "--tokens", &p, "--name", "vera"])
            .status
            .success()
    );
    assert_eq!(s.get("/api/migration/status", Some(&s.viewer)).0, 401);
    // A token added while it runs works at once.
    let new = add_token(&s.tokens, "nina", "viewer");
    assert_eq!(s.get("/api/migration/status", Some(&new)).0, 200);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut s = Served::start();
    assert_eq!(s.get("/api/health", None).0, 200);
    let status = s.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_non_loopback_address_without_tls_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    add_token(&tokens, "a", "viewer");
    let db = dir.path().join("app.db");
    let out = run(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--doctypes",
        &example("v1"),
        "--tokens",
        tokens.to_str().unwrap(),
        "--addr",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--insecure-bind"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // A missing tokens file is refused before anything listens.
    let out = run(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--doctypes",
        &example("v1"),
        "--tokens",
        dir.path().join("none.json").to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens file"));
}

#[test]
fn an_operator_plans_and_applies_and_the_run_reports_its_progress() {
    let s = Served::start();
    // Viewers and approvers may not plan.
    assert_eq!(s.post("/api/migration/plans", &s.viewer, "").0, 403);
    assert_eq!(s.post("/api/migration/plans", &s.approver, "").0, 403);
    let (id, plan) = s.plan(&s.operator);
    assert_eq!(plan["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(
        plan["needs_approval"], false,
        "no data, no findings: {plan}"
    );
    assert_eq!(plan["created_by"], "otto");
    // The same document as `plan --json`, plus the plan's own keys.
    let cli = run(&[
        "plan",
        "--db",
        s.db.to_str().unwrap(),
        "--doctypes",
        &example("v2"),
        "--json",
    ]);
    let mut expected: Value = serde_json::from_slice(&cli.stdout).unwrap();
    for k in [
        "id",
        "fingerprint",
        "needs_approval",
        "approved_by",
        "created_by",
        "created_at",
    ] {
        expected[k] = plan[k].clone();
    }
    assert_eq!(plan, expected);
    let (code, got) = s.get(&format!("/api/migration/plans/{id}"), Some(&s.viewer));
    assert_eq!((code, &got), (200, &plan));
    assert_eq!(
        s.get("/api/migration/plans/plan-999", Some(&s.viewer)).0,
        404
    );
    // A viewer may not apply.
    assert_eq!(
        s.post(&format!("/api/migration/plans/{id}/apply"), &s.viewer, "")
            .0,
        403
    );
    let (code, started) = s.post(&format!("/api/migration/plans/{id}/apply"), &s.operator, "");
    assert_eq!(code, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap();
    let run = s.wait_run(run_id);
    assert_eq!(run["state"], "completed", "{run}");
    assert_eq!(run["percent"], 100.0);
    assert_eq!(run["doctypes_done"], 4);
    assert_eq!(run["report"]["migrations"].as_array().unwrap().len(), 4);
    let (_, history) = s.get("/api/migration/history?limit=4", Some(&s.viewer));
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["applied_by"] == "otto"),
        "{history}"
    );
    let (_, status) = s.get("/api/migration/status", Some(&s.viewer));
    assert_eq!(status["state"], "up_to_date");
    // Every mutating call is in the audit log, under the token's name.
    let audit = std::fs::read_to_string(s.db.with_extension("db.audit.jsonl")).unwrap();
    let calls: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["action"] == "api_call")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|c| c["details"]["token"] == "otto"));
}

/// A lossy value in the column the plan retypes: DL003, which needs
/// approval.
pub(crate) fn add_lossy_item(s: &Served, name: &str) {
    s.conn()
        .execute(
            "INSERT INTO \"tabItem\" (name, item_code, shelf_life_in_days) VALUES (?1, ?1, 'about a year')",
            [name],
        )
        .unwrap();
}

#[test]
fn a_plan_with_data_loss_needs_an_approver_who_is_not_the_applier() {
    let s = Served::start();
    add_lossy_item(&s, "ITEM-1");
    let (id, plan) = s.plan(&s.admin);
    assert_eq!(plan["needs_approval"], true, "{plan}");
    let apply = format!("/api/migration/plans/{id}/apply");
    let (code, body) = s.post(&apply, &s.operator, "");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("approval_required"))
    );
    // Operators may not approve.
    assert_eq!(
        s.post(
            &format!("/api/migration/plans/{id}/approve"),
            &s.operator,
            ""
        )
        .0,
        403
    );
    // The admin approves, and so may not apply.
    let (code, approved) = s.post(&format!("/api/migration/plans/{id}/approve"), &s.admin, "");
    assert_eq!(code, 200);
    assert_eq!(approved["approved_by"], "ada");
    let (code, body) = s.post(&apply, &s.admin, "");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("separation_of_duties"))
    );
    s.apply_and_wait(&id, &s.operator);
}

#[test]
fn a_stale_plan_a_new_finding_and_a_held_lock_are_409_and_write_nothing() {
    let s = Served::start();
    // The schema changed since the plan.
    let (id, _) = s.plan(&s.operator);
    s.conn()
        .execute_batch("CREATE INDEX outside ON \"tabItem\" (item_name)")
        .unwrap();
    let before = s.db_bytes();
    let (code, body) = s.post(&format!("/api/migration/plans/{id}/apply"), &s.operator, "");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("stale_plan")),
        "{body}"
    );
    assert_eq!(s.db_bytes(), before);
    // A finding the approved plan did not show.
    let (id, plan) = s.plan(&s.operator);
    assert_eq!(plan["needs_approval"], false);
    add_lossy_item(&s, "ITEM-2");
    let before = s.db_bytes();
    let (code, body) = s.post(&format!("/api/migration/plans/{id}/apply"), &s.operator, "");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("reapproval_needed")),
        "{body}"
    );
    assert_eq!(s.db_bytes(), before);
    // Another process holds the write lock.
    let (id, _) = s.plan(&s.admin);
    assert_eq!(
        s.post(
            &format!("/api/migration/plans/{id}/approve"),
            &s.approver,
            ""
        )
        .0,
        200
    );
    let holder = s.conn();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (code, body) = s.post(&format!("/api/migration/plans/{id}/apply"), &s.operator, "");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("locked")),
        "{body}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    // Once the lock is free, the same plan applies.
    s.apply_and_wait(&id, &s.operator);
}

#[test]
fn bodies_over_one_mib_get_413_and_bad_bodies_400() {
    let s = Served::start();
    let big = format!(
        "{{\"drop_orphan_columns\": false, \"pad\": \"{}\"}}",
        "x".repeat(1 << 20)
    );
    assert_eq!(s.post("/api/migration/plans", &s.operator, &big).0, 413);
    let (code, body) = s.post(
        "/api/migration/plans",
        &s.operator,
        "{\"drop_orphan_columns\": 3}",
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (code, _) = s.post(
        "/api/migration/plans",
        &s.operator,
        "{\"drop_orphan_columns\": true}",
    );
    assert_eq!(code, 201);
}

/// 200,000 items whose `shelf_life_in_days` all convert: the v2 plan
/// rebuilds `tabItem` with no finding.
pub(crate) fn add_items(s: &Served, n: u64) {
    s.conn()
        .execute_batch(&format!(
            "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < {n})
             INSERT INTO \"tabItem\" (name, item_code, item_name, shelf_life_in_days)
             SELECT printf('ITEM-%07d', n), printf('CODE-%07d', n), 'item ' || n, CAST(n % 400 AS TEXT) FROM i"
        ))
        .unwrap();
}

#[test]
fn status_answers_from_memory_while_a_rebuild_holds_the_lock() {
    let s = Served::start();
    add_items(&s, 200_000);
    let (id, plan) = s.plan(&s.operator);
    assert_eq!(plan["needs_approval"], false, "{plan}");
    let (code, started) = s.post(&format!("/api/migration/plans/{id}/apply"), &s.operator, "");
    assert_eq!(code, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let mut running_answers = 0;
    let mut slowest = std::time::Duration::ZERO;
    loop {
        let t = std::time::Instant::now();
        let (code, status) = s.get("/api/migration/status", Some(&s.viewer));
        slowest = slowest.max(t.elapsed());
        assert_eq!(code, 200, "{status}");
        if status["state"] != "running" {
            break;
        }
        running_answers += 1;
        assert_eq!(status["running"]["id"], run_id.as_str());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        running_answers > 0,
        "status was asked while the run held the lock"
    );
    // The acceptance bound: answered from the run's event state, not by
    // waiting on the database.
    assert!(
        slowest < std::time::Duration::from_millis(100),
        "slowest: {slowest:?}"
    );
    let run = s.wait_run(&run_id);
    assert_eq!(run["state"], "completed", "{run}");
}

#[test]
fn sigterm_during_a_rebuild_lets_it_finish_and_keeps_every_row() {
    let mut s = Served::start();
    add_items(&s, 200_000);
    let (id, _) = s.plan(&s.operator);
    let (code, started) = s.post(&format!("/api/migration/plans/{id}/apply"), &s.operator, "");
    assert_eq!(code, 202, "{started}");
    // SIGTERM while it runs (past validation: it holds the lock).
    let db = s.db.clone();
    let status = s.stop();
    assert!(status.success(), "{status:?}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM \"tabItem\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 200_000);
    let ty: String = conn
        .query_row(
            "SELECT type FROM pragma_table_info('tabItem') WHERE name = 'shelf_life_in_days'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ty, "INTEGER", "the run finished before the server stopped");
}

/// Applies the served DocTypes through the API (operator `otto`).
fn apply_through_api(s: &Served) {
    let (id, _) = s.plan(&s.operator);
    s.apply_and_wait(&id, &s.operator);
}

#[test]
fn rollback_over_http_is_the_cli_rollback_and_refuses_as_it_does() {
    let s = Served::start();
    apply_through_api(&s);
    let rb = "/api/migration/rollback";
    assert_eq!(s.post(rb, &s.viewer, r#"{"last": true}"#).0, 403);
    assert_eq!(s.post(rb, &s.approver, r#"{"last": true}"#).0, 403);
    let (code, body) = s.post(rb, &s.operator, r#"{"last": true, "id": 3}"#);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    // A dry run writes nothing and shows the plan.
    let before = s.db_bytes();
    let (code, dry) = s.post(
        rb,
        &s.operator,
        r#"{"last": true, "doctype": "Customer", "dry_run": true}"#,
    );
    assert_eq!(code, 200, "{dry}");
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["feasible"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(dry["plan"]["steps"][0]["doctype"], "Customer");
    assert_eq!(s.db_bytes(), before);
    // Drift on the table: refused with the CLI's reasons, nothing written.
    s.conn()
        .execute_batch("ALTER TABLE \"tabCustomer\" ADD COLUMN extra TEXT")
        .unwrap();
    let before = s.db_bytes();
    let (code, body) = s.post(rb, &s.operator, r#"{"last": true, "doctype": "Customer"}"#);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("rollback_refused")),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["plan"]["refusals"][0]["code"],
        "drift"
    );
    assert_eq!(s.db_bytes(), before);
    // Another DocType rolls back, and status shows it pending again.
    let (code, done) = s.post(rb, &s.operator, r#"{"last": true, "doctype": "Item"}"#);
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["rolled_back_any"], true);
    assert_eq!(done["rolled_back"][0]["doctype"], "Item");
    let (_, status) = s.get("/api/migration/status", Some(&s.viewer));
    assert_eq!(status["state"], "pending");
    assert!(
        status["pending"]["changes"]["change_type"]
            .as_u64()
            .unwrap()
            >= 1,
        "{status}"
    );
}

#[test]
fn mutating_calls_over_the_rate_limit_get_429_with_retry_after() {
    let s = Served::start_with(&["--rate-limit-per-minute", "1", "--rate-limit-burst", "2"]);
    let plans = "/api/migration/plans";
    assert_eq!(s.post(plans, &s.operator, "").0, 201);
    assert_eq!(s.post(plans, &s.operator, "").0, 201);
    let (code, retry, body) = s.post_full(plans, &s.operator, "");
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    // The same client address with another token: limited too.
    let (code, _, _) = s.post_full(plans, &s.admin, "");
    assert_eq!(code, 429);
    // Reading is not limited.
    for _ in 0..5 {
        assert_eq!(
            s.get("/api/migration/history?limit=1", Some(&s.viewer)).0,
            200
        );
    }
}

#[test]
fn the_event_stream_carries_a_run_from_its_phases_to_its_end() {
    let s = Served::start();
    let url = format!("{}/api/migration/events", s.base);
    let no_token = Served::agent().get(&url).call().unwrap();
    assert_eq!(no_token.status().as_u16(), 401);
    let resp = Served::agent()
        .get(&url)
        .header("Authorization", format!("Bearer {}", s.viewer))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        resp.headers()
    );
    let reader = BufReader::new(resp.into_body().into_reader());
    let listener = std::thread::spawn(move || {
        let mut events = Vec::new();
        let mut ended = false;
        for line in reader.lines() {
            let line = line.unwrap();
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            let v: Value = serde_json::from_str(data).unwrap();
            // The run's end, then its final state.
            let last = ended && v["type"] == "progress";
            ended |= v["event"]["kind"] == "run_ended";
            events.push(v);
            if last {
                break;
            }
        }
        events
    });
    // Subscribed before the run starts: the handler has answered.
    apply_through_api(&s);
    let events = listener.join().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "event")
        .map(|e| e["event"]["kind"].as_str().unwrap())
        .collect();
    for k in [
        "planned",
        "lock_taken",
        "validated",
        "phase",
        "verified",
        "committed",
        "run_ended",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "verified").count(), 4);
    let last_progress = events
        .iter()
        .rev()
        .find(|e| e["type"] == "progress")
        .unwrap();
    assert_eq!(last_progress["state"]["state"], "completed");
    assert_eq!(last_progress["state"]["percent"], 100.0);
}

#[test]
fn backups_are_listed_and_verified_and_the_audit_log_is_read_back() {
    let s = Served::start();
    // An approved lossy change: the retyped column is backed up first.
    add_lossy_item(&s, "ITEM-1");
    let (id, _) = s.plan(&s.operator);
    assert_eq!(
        s.post(
            &format!("/api/migration/plans/{id}/approve"),
            &s.approver,
            ""
        )
        .0,
        200
    );
    s.apply_and_wait(&id, &s.operator);
    let (code, listed) = s.get("/api/migration/backups", Some(&s.viewer));
    assert_eq!(code, 200, "{listed}");
    let backups = listed["backups"].as_array().unwrap();
    assert!(!backups.is_empty(), "{listed}");
    assert_eq!(listed["unreadable"], serde_json::json!([]));
    let (code, verified) = s.post("/api/migration/backups/verify", &s.viewer, "");
    assert_eq!(code, 200, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");
    // Names only: no path reaches the file system.
    let (code, _) = s.post(
        "/api/migration/backups/verify",
        &s.viewer,
        r#"{"files": ["../app.db"]}"#,
    );
    assert_eq!(code, 400);
    // A damaged backup fails verification.
    let path = PathBuf::from(backups[0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let (code, verified) = s.post(
        "/api/migration/backups/verify",
        &s.viewer,
        &format!(r#"{{"files": ["{name}"]}}"#),
    );
    assert_eq!(code, 200);
    assert_eq!(
        (verified["ok"].as_bool(), verified["failed"].as_u64()),
        (Some(false), Some(1))
    );
    // The audit log: the run's actions and the API calls.
    let (code, entries) = s.get("/api/migration/audit", Some(&s.viewer));
    assert_eq!(code, 200);
    let entries = entries.as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["api_call", "backup_written", "commit"] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    let (_, last_two) = s.get("/api/migration/audit?limit=2", Some(&s.viewer));
    assert_eq!(last_two.as_array().unwrap().len(), 2);
    let (_, none) = s.get(
        "/api/migration/audit?since=2999-01-01T00:00:00Z",
        Some(&s.viewer),
    );
    assert_eq!(none, serde_json::json!([]));
    assert_eq!(
        s.get("/api/migration/audit?since=yesterday", Some(&s.viewer))
            .0,
        400
    );
}

#[test]
fn https_with_a_certificate_and_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    // With TLS, a non-loopback address needs no --insecure-bind.
    let s = Served::start_with(&[
        "--addr",
        "0.0.0.0:0",
        "--tls-cert",
        cert_file.to_str().unwrap(),
        "--tls-key",
        key_file.to_str().unwrap(),
    ]);
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    assert!(s.base.starts_with("https://0.0.0.0:"), "{}", s.base);
    let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
        ureq::tls::Certificate::from_der(cert.der()).to_owned(),
    ]));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("https://localhost:{port}/api/migration/status");
    let mut resp = agent
        .get(&url)
        .header("Authorization", format!("Bearer {}", s.viewer))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.body_mut().read_json().unwrap();
    assert_eq!(body["state"], "pending");
    // Plain HTTP on the TLS port gets no answer.
    let plain = Served::agent()
        .get(format!("http://127.0.0.1:{port}/api/health"))
        .call();
    assert!(plain.is_err() || plain.unwrap().status().as_u16() >= 400);
    // Half a TLS configuration is refused before anything listens.
    let out = run(&[
        "serve",
        "--db",
        s.db.to_str().unwrap(),
        "--doctypes",
        &example("v2"),
        "--tokens",
        s.tokens.to_str().unwrap(),
        "--tls-cert",
        cert_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("go together"));
}

#[test]
fn the_openapi_document_is_served_and_every_path_in_it_is_routed() {
    let s = Served::start();
    let (code, doc) = s.get("/api/openapi.json", None);
    assert_eq!(code, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/health",
        "/api/whoami",
        "/api/migration/status",
        "/api/migration/history",
        "/api/migration/events",
        "/api/migration/plans",
        "/api/migration/plans/{id}",
        "/api/migration/plans/{id}/approve",
        "/api/migration/plans/{id}/apply",
        "/api/migration/runs/{id}",
        "/api/migration/rollback",
        "/api/migration/backups",
        "/api/migration/backups/verify",
        "/api/migration/audit",
        "/api/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the document");
    }
    // Every documented path and method reaches a handler (a handler's own
    // 404 names what is missing; the router's says "no such endpoint").
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let url = format!("{}{}", s.base, path.replace("{id}", "nope"));
            let req = Served::agent();
            let resp = match method.as_str() {
                "get" => req
                    .get(&url)
                    .header("Authorization", format!("Bearer {}", s.admin))
                    .call()
                    .unwrap(),
                "post" => req
                    .post(&url)
                    .header("Authorization", format!("Bearer {}", s.admin))
                    .send("{}")
                    .unwrap(),
                other => panic!("unexpected method {other} for {path}"),
            };
            let status = resp.status().as_u16();
            assert_ne!(status, 405, "{method} {path}");
            if path.ends_with("/events") {
                continue; // a stream: the status line is enough
            }
            let body = resp.into_body().read_to_string().unwrap();
            assert!(
                !body.contains("no such endpoint"),
                "{method} {path}: {status} {body}"
            );
        }
    }
    // Error answers are described with their shape.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["RunState"].is_object());
}

#[test]
fn a_second_apply_while_one_runs_is_409_locked() {
    let s = Served::start();
    add_items(&s, 200_000);
    let (first, _) = s.plan(&s.operator);
    let (second, _) = s.plan(&s.admin);
    let (code, started) = s.post(
        &format!("/api/migration/plans/{first}/apply"),
        &s.operator,
        "",
    );
    assert_eq!(code, 202, "{started}");
    let (code, body) = s.post(
        &format!("/api/migration/plans/{second}/apply"),
        &s.operator,
        "",
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("locked")),
        "{body}"
    );
    let (code, body) = s.post("/api/migration/rollback", &s.operator, r#"{"last": true}"#);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("locked")),
        "{body}"
    );
    assert_eq!(
        s.wait_run(started["run_id"].as_str().unwrap())["state"],
        "completed"
    );
}

#[test]
fn every_role_boundary_is_401_or_403_before_anything_else() {
    let s = Served::start();
    let roles = [
        ("none", None),
        ("viewer", Some(s.viewer.as_str())),
        ("approver", Some(s.approver.as_str())),
        ("operator", Some(s.operator.as_str())),
        ("admin", Some(s.admin.as_str())),
    ];
    // (method, path, body, who may: viewer, approver, operator, admin).
    // A missing plan is 404 only for a role that may make the call.
    let calls: [(&str, &str, &str, [bool; 4]); 12] = [
        ("GET", "/api/whoami", "", [true; 4]),
        ("GET", "/api/migration/status", "", [true; 4]),
        ("GET", "/api/migration/history", "", [true; 4]),
        ("GET", "/api/migration/plans", "", [true; 4]),
        ("GET", "/api/migration/plans/nope", "", [true; 4]),
        ("GET", "/api/migration/runs/nope", "", [true; 4]),
        ("GET", "/api/migration/backups", "", [true; 4]),
        ("GET", "/api/migration/audit", "", [true; 4]),
        (
            "POST",
            "/api/migration/plans/nope/approve",
            "",
            [false, true, false, true],
        ),
        (
            "POST",
            "/api/migration/plans/nope/apply",
            "",
            [false, false, true, true],
        ),
        (
            "POST",
            "/api/migration/rollback",
            r#"{"last": true, "dry_run": true}"#,
            [false, false, true, true],
        ),
        (
            "POST",
            "/api/migration/plans",
            "",
            [false, false, true, true],
        ),
    ];
    for (method, path, body, may) in calls {
        for (i, (role, token)) in roles.iter().enumerate() {
            let url = format!("{}{path}", s.base);
            let agent = Served::agent();
            let resp = match (method, token) {
                ("GET", Some(t)) => agent
                    .get(&url)
                    .header("Authorization", format!("Bearer {t}"))
                    .call(),
                ("GET", None) => agent.get(&url).call(),
                (_, Some(t)) => agent
                    .post(&url)
                    .header("Authorization", format!("Bearer {t}"))
                    .header("Content-Type", "application/json")
                    .send(body),
                (_, None) => agent.post(&url).send(body),
            }
            .unwrap();
            let code = resp.status().as_u16();
            let expected = match i {
                0 => Some(401),
                n if !may[n - 1] => Some(403),
                _ => None,
            };
            match expected {
                Some(e) => assert_eq!(code, e, "{role} {method} {path}"),
                None => assert!(
                    ![401, 403].contains(&code),
                    "{role} {method} {path}: {code}"
                ),
            }
        }
    }
}

#[test]
fn a_long_running_server_keeps_the_newest_hundred_plans() {
    let s = Served::start_with(&[
        "--rate-limit-per-minute",
        "1000",
        "--rate-limit-burst",
        "1000",
    ]);
    for _ in 0..102 {
        s.plan(&s.operator);
    }
    let (_, plans) = s.get("/api/migration/plans", Some(&s.viewer));
    let ids: Vec<&str> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 100);
    assert_eq!((ids[0], ids[99]), ("plan-102", "plan-3"));
    assert_eq!(s.get("/api/migration/plans/plan-2", Some(&s.viewer)).0, 404);
    assert_eq!(s.get("/api/migration/plans/plan-3", Some(&s.viewer)).0, 200);
}
