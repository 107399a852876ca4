//! Verification (invariant 9): after executing, the live table must match
//! the target spec, plus the orphan columns that were kept.

use crate::diff::ChangeKind;
use crate::plan::DocTypePlan;
use crate::schema::{TableSpec, normalize_type};

/// What is wrong with the table after a DocType's plan ran (`None`: the
/// table does not exist); empty when the result is what the plan promised.
pub fn check_result(plan: &DocTypePlan, live: Option<&TableSpec>) -> Vec<String> {
    let drops = plan.changes.iter().any(|c| c.kind == ChangeKind::DropTable);
    match (live, drops) {
        (None, true) => Vec::new(),
        (Some(_), true) => vec!["the table still exists".into()],
        (None, false) => vec!["the table does not exist".into()],
        (Some(live), false) => differences(&plan.target, &plan.orphans, live),
    }
}

/// Differences between the live table and what the plan promised; empty
/// when they match.
pub fn differences(target: &TableSpec, orphans: &[String], live: &TableSpec) -> Vec<String> {
    let mut out = Vec::new();
    for t in &target.columns {
        let Some(l) = live.column(&t.name) else {
            out.push(format!("column {:?} is missing", t.name));
            continue;
        };
        if normalize_type(&l.decl_type) != normalize_type(&t.decl_type) {
            out.push(format!(
                "column {:?} has type {} instead of {}",
                t.name, l.decl_type, t.decl_type
            ));
        }
        let integer_pk = t.primary_key && target.autoincrement;
        if l.not_null != t.not_null && !integer_pk {
            out.push(format!(
                "column {:?} NOT NULL is {} instead of {}",
                t.name, l.not_null, t.not_null
            ));
        }
        if l.default != t.default {
            out.push(format!(
                "column {:?} has default {:?} instead of {:?}",
                t.name, l.default, t.default
            ));
        }
        if l.primary_key != t.primary_key {
            out.push(format!(
                "column {:?} primary key is {}",
                t.name, l.primary_key
            ));
        }
    }
    for l in &live.columns {
        let expected = target.column(&l.name).is_some()
            || orphans.iter().any(|o| o.eq_ignore_ascii_case(&l.name));
        if !expected {
            out.push(format!("unexpected column {:?}", l.name));
        }
    }
    for t in &target.indexes {
        match live.index(&t.name) {
            Some(l)
                if l.unique == t.unique
                    && l.columns.len() == t.columns.len()
                    && l.columns
                        .iter()
                        .zip(&t.columns)
                        .all(|(a, b)| a.eq_ignore_ascii_case(b)) => {}
            Some(_) => out.push(format!("index {:?} differs from its definition", t.name)),
            None => out.push(format!("index {:?} is missing", t.name)),
        }
    }
    for l in live.indexes.iter().filter(|i| i.is_managed()) {
        if target.index(&l.name).is_none() {
            out.push(format!(
                "managed index {:?} should have been dropped",
                l.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnSpec, IndexSpec};

    fn col(name: &str, ty: &str) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            decl_type: ty.into(),
            not_null: false,
            default: None,
            primary_key: false,
        }
    }

    fn spec(columns: Vec<ColumnSpec>, indexes: Vec<IndexSpec>) -> TableSpec {
        TableSpec {
            name: "tabX".into(),
            columns,
            indexes,
            autoincrement: false,
        }
    }

    fn idx(name: &str, unique: bool) -> IndexSpec {
        IndexSpec {
            name: name.into(),
            columns: vec!["a".into()],
            unique,
        }
    }

    #[test]
    fn matching_tables_and_kept_orphans_pass() {
        let target = spec(vec![col("a", "TEXT")], vec![idx("dm_idx__tabX__a", false)]);
        let live = spec(
            vec![col("A", "text"), col("old", "TEXT")],
            vec![idx("dm_idx__tabX__a", false), idx("user_idx", true)],
        );
        assert!(differences(&target, &["old".into()], &live).is_empty());
    }

    #[test]
    fn every_kind_of_mismatch_is_reported() {
        let mut wanted = col("a", "INTEGER");
        wanted.not_null = true;
        wanted.default = Some("0".into());
        let target = spec(
            vec![wanted, col("b", "TEXT")],
            vec![idx("dm_uq__tabX__a", true)],
        );
        let live = spec(
            vec![col("a", "TEXT"), col("stray", "TEXT")],
            vec![
                idx("dm_uq__tabX__a", false),
                idx("dm_idx__tabX__gone", false),
            ],
        );
        let found = differences(&target, &[], &live).join("\n");
        for expected in [
            "column \"a\" has type TEXT instead of INTEGER",
            "column \"a\" NOT NULL is false instead of true",
            "column \"a\" has default None instead of Some(\"0\")",
            "column \"b\" is missing",
            "unexpected column \"stray\"",
            "index \"dm_uq__tabX__a\" differs from its definition",
            "managed index \"dm_idx__tabX__gone\" should have been dropped",
        ] {
            assert!(
                found.contains(expected),
                "missing {expected:?} in:\n{found}"
            );
        }
    }
}
