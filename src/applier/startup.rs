//! Start-up without parsing: a run given DocType paths hashes the files it
//! would read (their paths and bytes), the options that shape the plan and
//! the engine version. When that hash and the live schema's fingerprint are
//! what the last up-to-date run recorded (`tabMigrationMeta`, key
//! `startup`), the database is up to date and the JSON is not parsed; the
//! warnings that parse gave are reported again. Otherwise the files are
//! loaded and applied as `sync_all` does, and the record is written once the
//! database is up to date.
//!
//! The record is checked against the live schema, so a schema changed by
//! anyone since is planned in full. Whoever can write the database could
//! forge the record and make a run skip planning; such a writer can change
//! the schema itself anyway (see SECURITY.md).

use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{ApplyReport, MigrationApplier};
use crate::doctype::{DocType, Warning, input_files, load_paths, warnings};
use crate::error::{Error, Result};
use crate::events::{RunEvent, RunOutcome};
use crate::history::store::{self, StartupRecord};
use crate::schema::SchemaSnapshot;

impl MigrationApplier {
    /// Applies the DocTypes under `paths` (files or directory trees, as
    /// [`crate::load_paths`] reads them), without parsing them when
    /// nothing changed since the last run: the start-up path of
    /// [`crate::migrate_on_start`] and `doctype-migrate apply`.
    ///
    /// When the input files (paths and bytes), the options that shape the
    /// plan and the engine version hash to what the last up-to-date run
    /// recorded, and the live schema is the one it left, the result is
    /// "up to date" (`fast_path` set) with the warnings that run's parse
    /// gave. Otherwise the files are loaded, validated and applied as
    /// [`sync_all`](Self::sync_all) does ([`Error::NoDocTypes`] when the
    /// paths hold none); once the database is up to date
    /// (nothing to do, or everything committed), the record is written in
    /// a short transaction of its own.
    pub fn sync_paths(&mut self, paths: &[PathBuf]) -> Result<ApplyReport> {
        // As sync_all: a database this applier can only read is refused
        // before anything else, up to date or not.
        self.refuse_read_only()?;
        let input = input_sha256(&self.options, paths)?;
        if let Some(report) = self.up_to_date_from_record(&input)? {
            return Ok(report);
        }
        let doctypes = load_paths(paths)?;
        if doctypes.is_empty() {
            return Err(Error::NoDocTypes {
                paths: paths.to_vec(),
            });
        }
        self.sync_and_record(input, &doctypes)
    }

    /// [`sync_paths`](Self::sync_paths) with the files already hashed
    /// ([`input_sha256`], `input`) and loaded (`doctypes`): a fleet reads
    /// its input once for all its databases.
    pub(crate) fn sync_prepared(
        &mut self,
        input: &str,
        doctypes: &[DocType],
    ) -> Result<ApplyReport> {
        self.refuse_read_only()?;
        if let Some(report) = self.up_to_date_from_record(input)? {
            return Ok(report);
        }
        self.sync_and_record(input.to_string(), doctypes)
    }

    /// Applies `doctypes` and, once the database is up to date, records
    /// `input` for the next start.
    fn sync_and_record(&mut self, input: String, doctypes: &[DocType]) -> Result<ApplyReport> {
        let report = self.sync_all(doctypes)?;
        if report.failed().count() == 0 {
            self.write_record(input, doctypes)?;
        }
        Ok(report)
    }

    /// Whether the start-up record says the database is up to date with
    /// `input` (see [`input_sha256`]): reads only, for `fleet status`.
    pub(crate) fn recorded_up_to_date(&self, input: &str) -> Result<bool> {
        self.matching_record(input).map(|r| r.is_some())
    }

    /// The start-up record, when it matches `input` and the live schema.
    fn matching_record(&self, input: &str) -> Result<Option<StartupRecord>> {
        self.read(|| {
            let Some(record) = store::startup_record(&self.conn)? else {
                return Ok(None);
            };
            let schema = SchemaSnapshot::read(&self.conn)?.fingerprint();
            Ok((record.input_sha256 == input && record.schema_sha256 == schema).then_some(record))
        })
    }

    /// The report of an up-to-date run when the record matches `input` and
    /// the live schema; `None` when the files must be parsed.
    fn up_to_date_from_record(&self, input: &str) -> Result<Option<ApplyReport>> {
        let started = Instant::now();
        let Some(record) = self.matching_record(input)? else {
            return Ok(None);
        };
        // Recorded warnings that no longer read back are dropped, not fatal:
        // they are a report, and the files they came from are unchanged.
        let recorded: Vec<Warning> = serde_json::from_value(record.warnings).unwrap_or_default();
        self.events.emit(RunEvent::RunStarted {
            doctypes: record.doctypes,
        });
        let mut report = ApplyReport::empty();
        report.fast_path = true;
        report.warnings = self.notice_interrupted_runs();
        for w in &recorded {
            self.events.emit(RunEvent::InputAccepted { warning: w });
        }
        report.warnings.extend(recorded);
        self.events.emit(RunEvent::RunFinished {
            outcome: RunOutcome::UpToDate { fast_path: true },
            ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        Ok(Some(report))
    }

    /// Records `input` with the schema as it is now, unless that is what
    /// the record already says. Its own short transaction, after the run's
    /// commit: a crash in between only costs the next start a parse.
    fn write_record(&self, input: String, doctypes: &[DocType]) -> Result<()> {
        self.write_locked(|conn| {
            store::check_engine_tables(conn)?;
            let record = StartupRecord {
                input_sha256: input,
                schema_sha256: SchemaSnapshot::read(conn)?.fingerprint(),
                doctypes: doctypes.len(),
                warnings: serde_json::to_value(warnings(doctypes)).unwrap_or_default(),
            };
            if store::startup_record(conn)?.as_ref() == Some(&record) {
                return Ok(((), false));
            }
            store::write_startup_record(conn, &record)?;
            Ok(((), true))
        })
    }
}

/// SHA-256 of the engine version, the options that shape the plan and
/// every input file's path and bytes, hex: the key of the start-up record.
pub(crate) fn input_sha256(o: &super::ApplierOptions, paths: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    let shaping = format!(
        "doctype-migrate {}\0drop_orphan_columns={}\0drop_orphan_tables={}\0strict={}\0\
         renames={:?}\0null_fills={:?}\0",
        env!("CARGO_PKG_VERSION"),
        o.drop_orphan_columns,
        o.drop_orphan_tables,
        o.strict,
        o.renames,
        o.null_fills,
    );
    h.update(shaping.as_bytes());
    for file in input_files(paths)? {
        let bytes = std::fs::read(&file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let name = file.display().to_string();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(crate::schema::hex(&h.finalize()))
}
