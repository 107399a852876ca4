//! Comparing a table's `sqlite_schema` objects with the ones recorded in
//! history (`schema_before` / `schema_after`).
//!
//! Objects are matched by type and name (case-insensitively) and compared by
//! their SQL. Order is ignored: a rebuild or a restore recreates indexes and
//! triggers, which moves them in `sqlite_schema` without changing them. The
//! one rewrite allowed is the table name in a `CREATE TABLE` statement:
//! SQLite's `ALTER TABLE ... RENAME TO` (the last step of every rebuild)
//! writes the new name quoted, so `CREATE TABLE tabX (` can come back as
//! `CREATE TABLE "tabX" (`. Everything else must be byte-identical.

use serde::Serialize;

use crate::db::create_table;
use crate::schema::SchemaObject;

/// How one object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DifferenceKind {
    /// Recorded but not in the live schema.
    Missing,
    /// In the live schema but not recorded.
    Unexpected,
    /// In both, with different SQL.
    Changed,
}

/// One object that differs between the recorded and the live schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SchemaDifference {
    /// `table`, `index`, `trigger` or `view`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Object name.
    pub name: String,
    /// How it differs.
    pub difference: DifferenceKind,
    /// Its recorded SQL (None: not recorded, or an automatic index).
    pub recorded_sql: Option<String>,
    /// Its live SQL (None: not live, or an automatic index).
    pub live_sql: Option<String>,
}

impl std::fmt::Display for SchemaDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.difference {
            DifferenceKind::Missing => "is missing",
            DifferenceKind::Unexpected => "was not there",
            DifferenceKind::Changed => "has different SQL",
        };
        write!(f, "{} {:?} {what}", self.kind, self.name)?;
        if self.difference == DifferenceKind::Changed {
            write!(
                f,
                " (recorded: {}; live: {})",
                self.recorded_sql.as_deref().unwrap_or("-"),
                self.live_sql.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

/// Parses a recorded `schema_before` / `schema_after` value: a JSON array of
/// `sqlite_schema` rows; JSON `null` (nothing recorded, or no table) is empty.
pub fn objects_from_json(value: &serde_json::Value) -> Result<Vec<SchemaObject>, String> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    serde_json::from_value(value.clone()).map_err(|e| format!("recorded schema is unreadable: {e}"))
}

/// The differences between `recorded` and `live`; empty when they match.
pub fn differences(recorded: &[SchemaObject], live: &[SchemaObject]) -> Vec<SchemaDifference> {
    let mut out = Vec::new();
    for r in recorded {
        match live.iter().find(|l| same_object(l, r)) {
            None => out.push(SchemaDifference {
                kind: r.kind.clone(),
                name: r.name.clone(),
                difference: DifferenceKind::Missing,
                recorded_sql: r.sql.clone(),
                live_sql: None,
            }),
            Some(l)
                if normalized(l) != normalized(r)
                    || !l.tbl_name.eq_ignore_ascii_case(&r.tbl_name) =>
            {
                out.push(SchemaDifference {
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    difference: DifferenceKind::Changed,
                    recorded_sql: r.sql.clone(),
                    live_sql: l.sql.clone(),
                })
            }
            Some(_) => {}
        }
    }
    for l in live {
        if !recorded.iter().any(|r| same_object(l, r)) {
            out.push(SchemaDifference {
                kind: l.kind.clone(),
                name: l.name.clone(),
                difference: DifferenceKind::Unexpected,
                recorded_sql: None,
                live_sql: l.sql.clone(),
            });
        }
    }
    out.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    out
}

fn same_object(a: &SchemaObject, b: &SchemaObject) -> bool {
    a.kind == b.kind && a.name.eq_ignore_ascii_case(&b.name)
}

/// The object's SQL with the table name of a `CREATE TABLE` written the way
/// the engine writes it (quoted), so that only the rename's rewrite is
/// forgiven.
fn normalized(o: &SchemaObject) -> Option<String> {
    let sql = o.sql.as_ref()?;
    if o.kind != "table" {
        return Some(sql.clone());
    }
    let Ok(mut ct) = create_table::parse(sql) else {
        return Some(sql.clone());
    };
    if ct.rename_table(&o.name).is_err() {
        return Some(sql.clone());
    }
    Some(ct.to_sql())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, sql: Option<&str>) -> SchemaObject {
        SchemaObject {
            kind: kind.into(),
            name: name.into(),
            tbl_name: "tabX".into(),
            sql: sql.map(str::to_string),
        }
    }

    #[test]
    fn forgives_only_the_quoting_of_the_table_name() {
        let recorded = [obj("table", "tabX", Some("CREATE TABLE tabX (a INTEGER)"))];
        let live = [obj(
            "table",
            "tabX",
            Some("CREATE TABLE \"tabX\" (a INTEGER)"),
        )];
        assert!(differences(&recorded, &live).is_empty());
        let live = [obj(
            "table",
            "tabX",
            Some("CREATE TABLE \"tabX\" (a  INTEGER)"),
        )];
        let d = differences(&recorded, &live);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].difference, DifferenceKind::Changed);
    }

    #[test]
    fn reports_missing_and_unexpected_objects_ignoring_order() {
        let a = obj("index", "i1", Some("CREATE INDEX i1 ON tabX (a)"));
        let b = obj("index", "i2", Some("CREATE INDEX i2 ON tabX (b)"));
        let c = obj("trigger", "t", Some("CREATE TRIGGER t ..."));
        assert!(differences(&[a.clone(), b.clone()], &[b.clone(), a.clone()]).is_empty());
        let d = differences(&[a.clone(), b.clone()], &[a, c]);
        let kinds: Vec<_> = d.iter().map(|x| (x.name.as_str(), x.difference)).collect();
        assert_eq!(
            kinds,
            [
                ("i2", DifferenceKind::Missing),
                ("t", DifferenceKind::Unexpected)
            ]
        );
    }

    #[test]
    fn null_json_is_no_objects() {
        assert!(
            objects_from_json(&serde_json::Value::Null)
                .unwrap()
                .is_empty()
        );
        assert!(objects_from_json(&serde_json::json!({"x": 1})).is_err());
    }
}
