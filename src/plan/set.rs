//! Planning a whole set of DocTypes against a database: one read of
//! `sqlite_schema`, each DocType's target diffed against its live table
//! (or confirmed up to date from fingerprints, the start-up fast path),
//! planned, attributed to its customization layers, and given the backups
//! the policy asks for.

use rusqlite::Connection;

use super::backups::{BackupPolicy, planned_backups};
use super::fastpath::{FastPaths, StoredColumns, schema_edits_allowed, stored_columns};
use super::planner::{plan_drop_table, plan_table};
use super::types::{DocTypePlan, MigrationPlan};
use crate::diff::{ChangeKind, DiffOptions, diff_table};
use crate::doctype::DocType;
use crate::error::Result;
use crate::history::store;
use crate::schema::{SchemaSnapshot, introspect_table, target_spec};

/// A rename hint given to the applier: in `doctype`, column `from` is now `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenameHint {
    /// The DocType.
    pub doctype: String,
    /// The old column name.
    pub from: String,
    /// The new column name.
    pub to: String,
}

/// Fill NULLs in `doctype.column` with `value` when the column becomes NOT NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NullFill {
    /// The DocType.
    pub doctype: String,
    /// The column.
    pub column: String,
    /// The value, as text (stored with the column's affinity).
    pub value: String,
}

/// What shapes a set's plan beyond the DocTypes themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetOptions<'a> {
    /// Drop columns a DocType no longer declares.
    pub drop_orphan_columns: bool,
    /// Drop the table of a DocType that no longer has one.
    pub drop_orphan_tables: bool,
    /// Rename hints on top of the fields' `renamed_from`.
    pub renames: &'a [RenameHint],
    /// NULL fills for columns becoming NOT NULL.
    pub null_fills: &'a [NullFill],
    /// When to plan backups.
    pub backup_policy: BackupPolicy,
    /// Take the fast paths where they are proved safe (otherwise the
    /// rebuild for anything ALTER TABLE cannot do).
    pub fast_paths: bool,
}

/// Whether to try the start-up fast path (fingerprints instead of introspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Introspect every table.
    Full,
    /// Confirm tables from fingerprints where the history allows it.
    Fast,
}

/// Plans the DocTypes. In [`Mode::Fast`], a DocType whose target spec and
/// live table both have the fingerprints its last completed migration
/// recorded is confirmed up to date without introspecting its table. Options
/// that change a plan without changing the target spec (dropping orphans,
/// rename hints, NULL fills) turn the fast path off.
pub(crate) fn plan_set(
    conn: &Connection,
    doctypes: &[DocType],
    options: &SetOptions<'_>,
    mode: Mode,
) -> Result<MigrationPlan> {
    let snapshot = SchemaSnapshot::read(conn)?;
    let fast = mode == Mode::Fast
        && !options.drop_orphan_columns
        && !options.drop_orphan_tables
        && options.renames.is_empty()
        && options.null_fills.is_empty();
    let (recorded, live_fps) = if fast {
        (
            store::latest_fingerprints(conn)?,
            snapshot.table_fingerprints(),
        )
    } else {
        Default::default()
    };
    let schema_edits = schema_edits_allowed(conn);
    let mut sorted: Vec<&DocType> = doctypes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let diff_options = DiffOptions {
        drop_orphan_columns: options.drop_orphan_columns,
        renames: Vec::new(),
    };
    let mut plan = MigrationPlan::default();
    for dt in sorted {
        let Some(target) = target_spec(dt)? else {
            if options.drop_orphan_tables {
                if let Some(live) = introspect_table(conn, &snapshot, &dt.table_name())? {
                    let fingerprint = snapshot.table_fingerprint(&live.spec.name);
                    let mut dt_plan = plan_drop_table(&dt.name, &live, fingerprint);
                    dt_plan.backups = planned_backups(&dt_plan, options.backup_policy);
                    plan.doctypes.push(dt_plan);
                }
            }
            continue;
        };
        if fast {
            let live_fp = live_fps.get(&target.name.to_ascii_lowercase());
            if let (Some((Some(t), Some(a))), Some(l)) = (recorded.get(&dt.name), live_fp) {
                if *t == target.fingerprint() && a == l {
                    plan.confirmed_by_fingerprint += 1;
                    plan.doctypes
                        .push(DocTypePlan::up_to_date(&dt.name, target, Some(l.clone())));
                    continue;
                }
            }
        }
        let live = introspect_table(conn, &snapshot, &target.name)?;
        let mut hints: Vec<(String, String)> = dt
            .fields
            .iter()
            .filter_map(|f| f.renamed_from.clone().map(|old| (old, f.fieldname.clone())))
            .collect();
        hints.extend(
            options
                .renames
                .iter()
                .filter(|h| h.doctype == dt.name)
                .map(|h| (h.from.clone(), h.to.clone())),
        );
        let diff = diff_table(&dt.name, &target, live.as_ref(), &hints, &diff_options)?;
        let fingerprint = snapshot.table_fingerprint(&target.name);
        let fills: Vec<(String, String)> = options
            .null_fills
            .iter()
            .filter(|f| f.doctype == dt.name)
            .map(|f| (f.column.clone(), crate::ident::quote_literal(&f.value)))
            .collect();
        let facts = match &live {
            _ if !options.fast_paths => {
                FastPaths::off("fast paths are off (always rebuild): the table is copied")
            }
            // Only a DEFAULT change needs to know which columns every row
            // stores (a read of the table's history).
            Some(live) if diff.has(ChangeKind::ChangeDefault) => {
                FastPaths::on(schema_edits.clone(), stored_columns(conn, &dt.name, live)?)
            }
            _ => FastPaths::on(schema_edits.clone(), StoredColumns::default()),
        };
        let mut dt_plan = plan_table(&diff, &target, live.as_ref(), fingerprint, &fills, &facts)?;
        attribute_layers(dt, &mut dt_plan);
        dt_plan.backups = planned_backups(&dt_plan, options.backup_policy);
        plan.doctypes.push(dt_plan);
    }
    Ok(plan)
}

/// Names, on each change, the customization layers (Custom Fields,
/// Property Setters) that caused it: those of the field behind a column
/// change, of the fields an index covers, of the DocType for its `name`
/// column, and all of them for a new table.
fn attribute_layers(dt: &DocType, plan: &mut DocTypePlan) {
    let fields = crate::doctype::index_fields(dt);
    let of_column = |column: &str| -> Vec<String> {
        let mut out: Vec<String> = fields
            .iter()
            .filter(|f| f.fieldname.eq_ignore_ascii_case(column))
            .flat_map(|f| f.layers.iter().map(ToString::to_string))
            .collect();
        if column.eq_ignore_ascii_case("name") {
            out.extend(dt.layers.iter().map(ToString::to_string));
        }
        out
    };
    let attribute = |change: &mut crate::diff::Change| {
        let mut layers: Vec<String> = match (change.kind, &change.column) {
            (crate::diff::ChangeKind::CreateTable, _) => dt
                .layers
                .iter()
                .chain(fields.iter().flat_map(|f| f.layers.iter()))
                .map(ToString::to_string)
                .collect(),
            (_, Some(column)) => of_column(column),
            (_, None) => change.columns.iter().flat_map(|c| of_column(c)).collect(),
        };
        layers.dedup();
        change.layers = layers;
    };
    if dt.layers.is_empty() && fields.iter().all(|f| f.layers.is_empty()) {
        return;
    }
    plan.changes.iter_mut().for_each(attribute);
    for step in &mut plan.steps {
        step.changes.iter_mut().for_each(attribute);
    }
}
