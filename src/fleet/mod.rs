//! Fleets: one set of DocTypes applied to many databases (one per tenant),
//! canaries first, in parallel, resumable, and split across machines by
//! shard with no coordinator.
//!
//! Each database keeps every guarantee of a single-database apply (lock,
//! atomicity, validation, backups in its own backup directory, history,
//! audit log); what happens to one database (corrupt, locked, refused) is
//! that database's outcome, never the run's. The DocTypes are read once
//! per run; a database already up to date is confirmed by the start-up
//! fast path, so a run after an interrupted one does only what is left.

mod list;
mod run;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{ErrorCode, OpenFlags};
use serde::Serialize;

use crate::applier::{ApplierBuilder, MigrationApplier};
use crate::doctype::{DocType, load_paths};
use crate::error::{Error, Result, error_chain, error_sources};
use crate::outcome::Finding;
use crate::schema::SchemaSnapshot;

use list::Source;

/// What a fleet run does after a database that failed, was unreadable or
/// was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnError {
    /// Start no other database; those running finish (each commits or
    /// rolls back as a whole); the rest are `skipped`. The default.
    #[default]
    Halt,
    /// Go on with every other database.
    Continue,
}

/// How one database of a fleet ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DbStatus {
    /// Nothing to do.
    UpToDate,
    /// Changes committed.
    Migrated,
    /// Changes to make (`status` only: nothing was written).
    Pending,
    /// The migration failed and was rolled back, or the database could not
    /// be locked or written.
    Failed,
    /// Validation refused the plan (or an online migration is in
    /// progress): nothing was written.
    Refused,
    /// Not a database, corrupt, or missing.
    Unreadable,
    /// Not run: the run stopped first (a canary, or `halt`).
    Skipped,
}

impl DbStatus {
    /// Every status, in report order.
    pub const ALL: [DbStatus; 7] = [
        DbStatus::UpToDate,
        DbStatus::Migrated,
        DbStatus::Pending,
        DbStatus::Failed,
        DbStatus::Refused,
        DbStatus::Unreadable,
        DbStatus::Skipped,
    ];

    /// The name in reports (`up_to_date`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DbStatus::UpToDate => "up_to_date",
            DbStatus::Migrated => "migrated",
            DbStatus::Pending => "pending",
            DbStatus::Failed => "failed",
            DbStatus::Refused => "refused",
            DbStatus::Unreadable => "unreadable",
            DbStatus::Skipped => "skipped",
        }
    }

    /// `migrated` or `up_to_date`: what a canary must end as.
    pub fn is_success(self) -> bool {
        matches!(self, DbStatus::UpToDate | DbStatus::Migrated)
    }

    /// `failed`, `unreadable` or `refused`: what stops a `halt` run.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            DbStatus::Failed | DbStatus::Unreadable | DbStatus::Refused
        )
    }
}

impl fmt::Display for DbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One database's outcome: one JSON line of `fleet apply --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DbOutcome {
    /// The database file.
    pub db: PathBuf,
    /// How it ended.
    pub status: DbStatus,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Changes applied (`migrated`) or to apply (`pending`, `refused`).
    pub changes: usize,
    /// The error, with its causes, when it did not end well.
    pub error: Option<String>,
}

impl DbOutcome {
    pub(crate) fn new(db: &Path, status: DbStatus, started: Instant) -> DbOutcome {
        DbOutcome {
            db: db.to_path_buf(),
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            changes: 0,
            error: None,
        }
    }

    fn failed(db: &Path, error: &Error, started: Instant) -> DbOutcome {
        let mut o = DbOutcome::new(db, classify(error), started);
        o.error = Some(error_chain(error));
        if let Error::Blocked { findings } = error {
            o.changes = findings.len();
        }
        o
    }
}

/// What a fleet run did: every database's outcome, in list order.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FleetReport {
    /// One per database of the list (of this shard), in list order.
    pub outcomes: Vec<DbOutcome>,
    /// Why the run stopped before the end (a canary, `halt`), if it did.
    pub stopped: Option<String>,
    /// The whole run, in milliseconds.
    pub total_ms: u64,
}

impl FleetReport {
    /// Databases per status, every status listed (zero included).
    pub fn counts(&self) -> BTreeMap<DbStatus, usize> {
        let mut counts: BTreeMap<DbStatus, usize> = DbStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for o in &self.outcomes {
            *counts.entry(o.status).or_default() += 1;
        }
        counts
    }

    /// The summary line of `--json`: `{"summary": {<status>: n, ...,
    /// "total_ms": t}}` (and `"stopped"` when the run stopped early).
    pub fn summary(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (status, n) in self.counts() {
            map.insert(status.as_str().into(), n.into());
        }
        map.insert("total_ms".into(), self.total_ms.into());
        if let Some(why) = &self.stopped {
            map.insert("stopped".into(), why.clone().into());
        }
        serde_json::json!({ "summary": map })
    }

    /// The command line's exit code: 1 when any database failed or was
    /// unreadable, else 2 when any was refused, else 0.
    pub fn exit_code(&self) -> u8 {
        let any = |s: DbStatus| self.outcomes.iter().any(|o| o.status == s);
        if any(DbStatus::Failed) || any(DbStatus::Unreadable) {
            1
        } else if any(DbStatus::Refused) {
            2
        } else {
            0
        }
    }
}

/// The databases of a fleet grouped by schema state: one plan per state.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FleetPlan {
    /// One group per schema state, largest first.
    pub groups: Vec<PlanGroup>,
    /// The databases that could not be read.
    pub unreadable: Vec<DbOutcome>,
}

/// The databases at one schema state and what applying the DocTypes does
/// to them, as the dry run of the first of them shows (the SQL is the same
/// for every database of the group; data-aware findings are that
/// database's).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PlanGroup {
    /// Fingerprint (SHA-256, hex) of the schema.
    pub fingerprint: String,
    /// The databases at this state, in list order.
    pub databases: Vec<PathBuf>,
    /// DocTypes with changes.
    pub doctypes: Vec<String>,
    /// Changes in all.
    pub changes: usize,
    /// Whether a table is rebuilt.
    pub rebuilds: bool,
    /// Whether the first database's plan is refused by validation.
    pub blocked: bool,
    /// The first database's findings.
    pub findings: Vec<Finding>,
}

type Configure = Arc<dyn Fn(ApplierBuilder) -> ApplierBuilder + Send + Sync>;

/// Builds a [`Fleet`]: where its databases are, which of them this run
/// takes (its shard), how many at once, the canaries, what to do on error,
/// and the options of each database's applier.
///
/// ```
/// use doctype_migrate::{Fleet, OnError};
///
/// let dir = tempfile::tempdir().unwrap();
/// for site in ["a", "b"] {
///     std::fs::create_dir_all(dir.path().join("sites").join(site)).unwrap();
///     std::fs::write(dir.path().join("sites").join(site).join("site.db"), b"").unwrap();
/// }
/// let fleet = Fleet::builder()
///     .glob(format!("{}/sites/*/site.db", dir.path().display()))
///     .shard(0, 3)
///     .parallel(4)
///     .canary_first(5)
///     .on_error(OnError::Continue)
///     .applier(|b| b.allow_data_loss(false))
///     .build()
///     .unwrap();
/// // Shard 0 of 3 takes database 0 (and 3, 6, ...) of the sorted list.
/// assert_eq!(fleet.databases().len(), 1);
/// assert!(Fleet::builder().glob("/nowhere/*.db").build().is_err());
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct FleetBuilder {
    sources: Vec<Source>,
    shard: Option<(usize, usize)>,
    parallel: Option<usize>,
    canary_first: usize,
    canary_list: Vec<PathBuf>,
    on_error: OnError,
    configure: Option<Configure>,
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("sources", &self.sources)
            .field("shard", &self.shard)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

impl FleetBuilder {
    /// Adds the files a glob pattern matches (`sites/*/site.db`), sorted
    /// by path.
    pub fn glob(mut self, pattern: impl Into<String>) -> Self {
        self.sources.push(Source::Glob(pattern.into()));
        self
    }

    /// Adds the databases a list file names, one per line, in its order
    /// (blank lines and `#` lines skipped; relative paths are relative to
    /// the file's directory).
    pub fn list_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(Source::ListFile(path.into()));
        self
    }

    /// Adds one database.
    pub fn database(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(Source::Path(path.into()));
        self
    }

    /// Takes shard `index` of `count` (0-based): database number `i` of
    /// the list belongs to shard `i mod count`. N machines (or N jobs of a
    /// scheduler) each given one shard split a fleet with no coordinator.
    pub fn shard(mut self, index: usize, count: usize) -> Self {
        self.shard = Some((index, count));
        self
    }

    /// Databases migrated at once (default: the number of cores).
    pub fn parallel(mut self, workers: usize) -> Self {
        self.parallel = Some(workers);
        self
    }

    /// The first `k` databases of the list (of this shard) are canaries:
    /// they run first, and unless each ends `migrated` or `up_to_date`,
    /// nothing else starts.
    pub fn canary_first(mut self, k: usize) -> Self {
        self.canary_first = k;
        self
    }

    /// These databases are canaries (those of this shard run first). Each
    /// must be in the list.
    pub fn canary_list(mut self, databases: Vec<PathBuf>) -> Self {
        self.canary_list = databases;
        self
    }

    /// What to do after a database that failed, was unreadable or refused.
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// Options of every database's applier (data loss, backups, timeouts,
    /// ...), applied to `MigrationApplier::builder(db)`.
    pub fn applier(
        mut self,
        configure: impl Fn(ApplierBuilder) -> ApplierBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// Expands the list and takes the shard. [`Error::Config`] for a list
    /// with no database at all (a shard may be empty), a shard index not
    /// below its count, zero workers, a canary not in the list, an
    /// unreadable list file or a bad glob pattern.
    pub fn build(self) -> Result<Fleet> {
        let full = list::expand(&self.sources)?;
        // A pattern with a typo must not look like a fleet with nothing to do.
        if full.is_empty() {
            return Err(Error::config(
                "databases",
                format!(
                    "no database found in {}",
                    if self.sources.is_empty() {
                        "(nothing given)".to_string()
                    } else {
                        format!("{:?}", self.sources)
                    }
                ),
            ));
        }
        for c in &self.canary_list {
            if !full.iter().any(|p| same_file(p, c)) {
                return Err(Error::config(
                    "canary_list",
                    format!("canary {} is not in the list of databases", c.display()),
                ));
            }
        }
        let databases = match self.shard {
            Some((index, count)) if count == 0 || index >= count => {
                return Err(Error::config(
                    "shard",
                    format!("shard {index}/{count}: the index must be below the count (0-based)"),
                ));
            }
            Some((index, count)) => list::shard(full, index, count),
            None => full,
        };
        let parallel = self.parallel.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        });
        if parallel == 0 {
            return Err(Error::config("parallel", "parallel must be at least 1"));
        }
        let mut canaries: Vec<usize> = (0..self.canary_first.min(databases.len())).collect();
        for (i, db) in databases.iter().enumerate() {
            if self.canary_list.iter().any(|c| same_file(db, c)) && !canaries.contains(&i) {
                canaries.push(i);
            }
        }
        Ok(Fleet {
            databases,
            canaries,
            parallel,
            on_error: self.on_error,
            configure: self.configure.unwrap_or_else(|| Arc::new(|b| b)),
        })
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Many databases, one set of DocTypes. See [`FleetBuilder`].
#[derive(Clone)]
pub struct Fleet {
    databases: Vec<PathBuf>,
    canaries: Vec<usize>,
    parallel: usize,
    on_error: OnError,
    configure: Configure,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("databases", &self.databases.len())
            .field("canaries", &self.canaries)
            .field("parallel", &self.parallel)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// A builder.
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    /// The databases this run takes (its shard), in list order.
    pub fn databases(&self) -> &[PathBuf] {
        &self.databases
    }

    /// The canaries among them, in the order they run.
    pub fn canaries(&self) -> Vec<&Path> {
        self.canaries
            .iter()
            .map(|&i| self.databases[i].as_path())
            .collect()
    }

    /// Applies the DocTypes under `doctype_paths` to every database: the
    /// files are read and validated once (an error there stops the run
    /// before any database is opened), the canaries run first, then the
    /// rest with `parallel` workers. Each outcome goes to `on_outcome` as
    /// it comes (from the worker threads); databases not started are
    /// reported `skipped` at the end. Databases are never created.
    pub fn apply(
        &self,
        doctype_paths: &[PathBuf],
        on_outcome: &(dyn Fn(&DbOutcome) + Sync),
    ) -> Result<FleetReport> {
        let started = Instant::now();
        let (doctypes, input) = self.load(doctype_paths)?;
        let job = |db: &Path| {
            let started = Instant::now();
            let result = (self.configure)(MigrationApplier::builder(db))
                .build()
                .and_then(|mut a| a.sync_prepared(&input, &doctypes));
            match result {
                Ok(report) => {
                    let changes = report.migrations.iter().map(|m| m.changes.len()).sum();
                    let failed = report.failed().next().and_then(|m| m.error.clone());
                    let status = match (&failed, report.migrations.is_empty()) {
                        (Some(_), _) => DbStatus::Failed,
                        (None, true) => DbStatus::UpToDate,
                        (None, false) => DbStatus::Migrated,
                    };
                    let mut o = DbOutcome::new(db, status, started);
                    o.changes = changes;
                    o.error = failed;
                    o
                }
                Err(e) => DbOutcome::failed(db, &e, started),
            }
        };
        Ok(self.run(&job, on_outcome, started))
    }

    /// What applying the DocTypes would do to each database, without
    /// writing: `up_to_date`, `pending` (with the number of changes) or
    /// `unreadable`. Never stops early.
    pub fn status(
        &self,
        doctype_paths: &[PathBuf],
        on_outcome: &(dyn Fn(&DbOutcome) + Sync),
    ) -> Result<FleetReport> {
        let started = Instant::now();
        let (doctypes, input) = self.load(doctype_paths)?;
        let job = |db: &Path| {
            let started = Instant::now();
            // Up to date by the start-up record, as apply would find it;
            // else planned.
            let result = self.read_only(db).and_then(|a| {
                if a.recorded_up_to_date(&input)? {
                    return Ok(0);
                }
                Ok(a.plan(&doctypes)?.pending().map(|p| p.changes.len()).sum())
            });
            match result {
                Ok(changes) => {
                    let status = if changes == 0 {
                        DbStatus::UpToDate
                    } else {
                        DbStatus::Pending
                    };
                    let mut o = DbOutcome::new(db, status, started);
                    o.changes = changes;
                    o
                }
                Err(e) => DbOutcome::failed(db, &e, started),
            }
        };
        Ok(self.reading().run(&job, on_outcome, started))
    }

    /// Groups the databases by schema state and plans each state once (a
    /// dry run of its first database). Writes nothing.
    pub fn plan(&self, doctype_paths: &[PathBuf]) -> Result<FleetPlan> {
        let (doctypes, _) = self.load(doctype_paths)?;
        let fingerprints = std::sync::Mutex::new(Vec::new());
        let job = |db: &Path| {
            let started = Instant::now();
            match fingerprint(db) {
                Ok(f) => {
                    fingerprints
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((db.to_path_buf(), f));
                    DbOutcome::new(db, DbStatus::UpToDate, started)
                }
                Err(e) => DbOutcome::failed(db, &e, started),
            }
        };
        let report = self.reading().run(&job, &|_| {}, Instant::now());
        let found: BTreeMap<PathBuf, String> = fingerprints
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .collect();
        let mut groups: Vec<PlanGroup> = Vec::new();
        for db in &self.databases {
            let Some(f) = found.get(db) else { continue };
            match groups.iter_mut().find(|g| &g.fingerprint == f) {
                Some(g) => g.databases.push(db.clone()),
                None => {
                    let dry = self.read_only(db).and_then(|a| a.dry_run(&doctypes))?;
                    groups.push(PlanGroup {
                        fingerprint: f.clone(),
                        databases: vec![db.clone()],
                        doctypes: dry.plan.pending().map(|p| p.doctype.clone()).collect(),
                        changes: dry.plan.pending().map(|p| p.changes.len()).sum(),
                        rebuilds: dry.plan.rebuilds(),
                        blocked: dry.blocked,
                        findings: dry.findings,
                    });
                }
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.databases.len()));
        Ok(FleetPlan {
            groups,
            unreadable: report
                .outcomes
                .into_iter()
                .filter(|o| o.status != DbStatus::UpToDate)
                .collect(),
        })
    }

    /// The DocTypes under `paths`, read and validated once for every
    /// database, and the start-up record's key for them under the fleet's
    /// options (the fast path's record is keyed on the input files and the
    /// options: hashed once, for every database).
    fn load(&self, paths: &[PathBuf]) -> Result<(Vec<DocType>, String)> {
        let doctypes = load_paths(paths)?;
        if doctypes.is_empty() {
            return Err(Error::NoDocTypes {
                paths: paths.to_vec(),
            });
        }
        let input = (self.configure)(MigrationApplier::builder("")).startup_input(paths)?;
        Ok((doctypes, input))
    }

    /// This fleet with no canaries and `continue`: for the passes that
    /// only read, which never stop early.
    fn reading(&self) -> Fleet {
        Fleet {
            canaries: Vec::new(),
            on_error: OnError::Continue,
            ..self.clone()
        }
    }

    fn read_only(&self, db: &Path) -> Result<MigrationApplier> {
        (self.configure)(MigrationApplier::builder(db))
            .read_only(true)
            .build()
    }

    fn run(
        &self,
        job: &(dyn Fn(&Path) -> DbOutcome + Sync),
        on_outcome: &(dyn Fn(&DbOutcome) + Sync),
        started: Instant,
    ) -> FleetReport {
        let (outcomes, stopped) = run::run_all(
            &self.databases,
            &self.canaries,
            self.parallel,
            self.on_error,
            job,
            on_outcome,
        );
        FleetReport {
            outcomes,
            stopped,
            total_ms: started.elapsed().as_millis() as u64,
        }
    }
}

/// The schema fingerprint of the database at `path`, read-only.
fn fingerprint(path: &Path) -> Result<String> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::open(path, e))?;
    // Opening is lazy: a file that is not a database fails here, named.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| Error::open(path, e))?;
    Ok(SchemaSnapshot::read(&conn)?.fingerprint())
}

/// `unreadable` for a file that is not a database, is corrupt or cannot
/// be opened; `refused` for a refusal that wrote nothing; `failed` else.
fn classify(error: &Error) -> DbStatus {
    match error {
        Error::Blocked { .. } | Error::NewFindings { .. } | Error::OnlineInProgress { .. } => {
            DbStatus::Refused
        }
        Error::CorruptTable { .. } => DbStatus::Unreadable,
        e if error_sources(e).any(|s| {
            let sqlite = s
                .downcast_ref::<rusqlite::Error>()
                .or_else(|| s.downcast_ref::<Box<rusqlite::Error>>().map(|b| &**b));
            sqlite
                .and_then(rusqlite::Error::sqlite_error_code)
                .is_some_and(|c| {
                    matches!(
                        c,
                        ErrorCode::NotADatabase
                            | ErrorCode::DatabaseCorrupt
                            | ErrorCode::CannotOpen
                    )
                })
        }) =>
        {
            DbStatus::Unreadable
        }
        _ => DbStatus::Failed,
    }
}
