//! The dashboard in headless Chromium, driven through WebDriver
//! (chromedriver): sign in, history, a plan approved by one token and
//! applied by another, the progress bar to 100 %, roll back. Screenshots
//! go to `target/dashboard-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them the test says so and passes, unless
//! `DM_REQUIRE_BROWSER=1` (as in `.ci/run`), where it fails.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::serve::{Served, add_items, add_lossy_item};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver() -> Option<(Driver, u16)> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("DM_REQUIRE_BROWSER").is_err(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("dashboard test skipped: {CHROMEDRIVER} or {CHROMIUM} is missing");
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((driver, port))
}

async fn browser(port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1000", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

/// Waits until `cond` holds on the page (polling), or fails with `what`.
async fn wait_for(c: &Client, what: &str, js_cond: &str) {
    let start = Instant::now();
    loop {
        let v = c
            .execute(&format!("return Boolean({js_cond});"), vec![])
            .await
            .unwrap();
        if v == json!(true) {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let text = c
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap();
            panic!(
                "timed out waiting for {what}; page:\n{}",
                text.as_str().unwrap_or("")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(base).await.unwrap();
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    c.find(Locator::Css("#sign-in button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "signed in", "!document.getElementById('app').hidden").await;
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("dashboard-{name}.png")), png).unwrap();
}

#[test]
fn approve_with_one_token_apply_with_another_watch_it_finish_and_roll_back() {
    let Some((_driver, port)) = start_driver() else {
        return;
    };
    let s = Served::start();
    add_items(&s, 50_000);
    add_lossy_item(&s, "ITEM-LOSSY");
    let profiles = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ops = browser(port, &profiles.path().join("ops")).await;
        let approver = browser(port, &profiles.path().join("approver")).await;

        // The operator signs in and sees the status and the history.
        sign_in(&ops, &s.base, &s.operator).await;
        wait_for(&ops, "pending status", "document.getElementById('status').textContent.includes('pending')").await;
        wait_for(&ops, "history rows", "document.querySelectorAll('#history tbody tr').length === 4").await;
        assert_eq!(
            ops.find(Locator::Id("who-role")).await.unwrap().text().await.unwrap(),
            "operator"
        );
        screenshot(&ops, "1-history").await;

        // A plan: its diff, SQL and the finding that needs approval.
        click(&ops, "make-plan").await;
        wait_for(&ops, "the plan", "!document.getElementById('plan').hidden && document.querySelectorAll('.doctype').length === 4").await;
        wait_for(&ops, "the DL003 finding", "document.querySelector('.finding.blocking') && document.querySelector('.finding.blocking').textContent.includes('DL003')").await;
        wait_for(&ops, "Apply hidden until approved", "document.getElementById('apply').hidden").await;
        assert!(ops.find(Locator::Css(".change.add")).await.is_ok());
        screenshot(&ops, "2-plan").await;

        // The approver opens it from the list and approves.
        sign_in(&approver, &s.base, &s.approver).await;
        wait_for(&approver, "the plan list", "document.querySelector('#plans a')").await;
        approver.find(Locator::Css("#plans a")).await.unwrap().click().await.unwrap();
        wait_for(&approver, "Approve", "!document.getElementById('approve').hidden").await;
        wait_for(&approver, "no Apply for an approver", "document.getElementById('apply').hidden").await;
        click(&approver, "approve").await;
        wait_for(&approver, "approved", "document.getElementById('plan-meta').textContent.includes('approved by ann')").await;
        screenshot(&approver, "3-approved").await;

        // The operator reopens the plan and applies it; the progress bar
        // reaches 100 %.
        ops.find(Locator::Css("#plans a")).await.unwrap().click().await.unwrap();
        wait_for(&ops, "Apply", "!document.getElementById('apply').hidden").await;
        click(&ops, "apply").await;
        wait_for(&ops, "the run section", "!document.getElementById('run-section').hidden").await;
        wait_for(&ops, "100 %", "document.getElementById('run-progress').value === 100 && document.getElementById('run-text').textContent.includes('completed')").await;
        wait_for(&ops, "up to date", "document.getElementById('status').textContent === 'Up to date'").await;
        wait_for(&ops, "8 history rows", "document.querySelectorAll('#history tbody tr').length === 8").await;
        screenshot(&ops, "4-applied").await;

        // Roll back the batch from the page, with a confirmation.
        click(&ops, "rollback").await;
        wait_for(&ops, "confirm", "!document.getElementById('rollback-confirm').hidden").await;
        click(&ops, "rollback-confirm").await;
        wait_for(&ops, "rolled back", "document.getElementById('rollback-result').textContent.includes('Rolled back 4 migration(s)')").await;
        wait_for(&ops, "pending again", "document.getElementById('status').textContent.includes('pending')").await;
        screenshot(&ops, "5-rolled-back").await;

        ops.close().await.unwrap();
        approver.close().await.unwrap();
    });
    // The database is back at v1, every row kept.
    let conn = s.conn();
    let ty: String = conn
        .query_row(
            "SELECT type FROM pragma_table_info('tabItem') WHERE name = 'shelf_life_in_days'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ty, "VARCHAR(140)");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM \"tabItem\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 50_001);
    let lossy: String = conn
        .query_row(
            "SELECT shelf_life_in_days FROM \"tabItem\" WHERE name = 'ITEM-LOSSY'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        lossy, "about a year",
        "the converted value came back from the backup"
    );
}
