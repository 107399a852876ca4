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
struct Served {
    _dir: tempfile::TempDir,
    db: PathBuf,
    tokens: PathBuf,
    child: Child,
    base: String,
    viewer: String,
}

impl Served {
    fn start() -> Served {
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
        let mut child = bin()
            .args([
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--doctypes",
                &example("v2"),
                "--tokens",
                tokens.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
            ])
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
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        assert!(!base.ends_with(":0"), "the real port: {base}");
        Served {
            _dir: dir,
            db,
            tokens,
            child,
            base,
            viewer,
        }
    }

    /// GET with an optional bearer token: status and JSON body.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.body_mut().read_json().unwrap();
        (status, body)
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
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
    let s = Served::start();
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
