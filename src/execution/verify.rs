//! Verification (invariant "Verified"): after executing, the live table must match
//! the target spec, plus the orphan columns that were kept. The comparison
//! is `schema::compare`'s, the one the diff and the shadow check use.

use crate::plan::DocTypePlan;
use crate::schema::TableSpec;
use crate::schema::compare::check_table;

/// What is wrong with the table after a DocType's plan ran (`None`: the
/// table does not exist); empty when the result is what the plan promised.
pub fn check_result(plan: &DocTypePlan, live: Option<&TableSpec>) -> Vec<String> {
    check_table(&plan.target, &plan.orphans, plan.drops_table(), live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{ChangeKind, DiffOptions, diff_table};
    use crate::schema::ColumnSpec;

    /// A one-column target: the primary key `name`.
    fn pk_target(decl_type: &str, not_null: bool, autoincrement: bool) -> TableSpec {
        TableSpec {
            name: "tabX".into(),
            columns: vec![ColumnSpec {
                name: "name".into(),
                decl_type: decl_type.into(),
                not_null,
                default: None,
                primary_key: true,
            }],
            indexes: Vec::new(),
            autoincrement,
        }
    }

    /// The table `tabX` created with `column` in a fresh in-memory
    /// database, read back as the diff reads it (`introspect_table`) and as
    /// verification reads it (`table_spec`).
    fn live_table(column: &str) -> (crate::schema::LiveTable, TableSpec) {
        use crate::schema::{SchemaSnapshot, introspect_table, table_spec};
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("CREATE TABLE \"tabX\" ({column})"))
            .unwrap();
        let snapshot = SchemaSnapshot::read_table(&conn, "tabX").unwrap();
        let live = introspect_table(&conn, &snapshot, "tabX").unwrap().unwrap();
        (live, table_spec(&conn, "tabX").unwrap().unwrap())
    }

    /// Diff and verification apply one NOT NULL rule: a rowid alias
    /// (`INTEGER PRIMARY KEY`) never holds NULL whatever it declares, so its
    /// flag is never a difference; any other column's flag always is.
    #[test]
    fn diff_and_verify_agree_on_not_null_of_primary_keys() {
        // (target type, NOT NULL, AUTOINCREMENT; live column; difference expected)
        let cases = [
            (
                ("INTEGER", false, true),
                "name INTEGER PRIMARY KEY AUTOINCREMENT",
                false,
            ),
            (
                ("INTEGER", false, true),
                "name INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
                false,
            ),
            (
                ("INTEGER", true, true),
                "name INTEGER PRIMARY KEY AUTOINCREMENT",
                false,
            ),
            (
                ("INTEGER", true, true),
                "name INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
                false,
            ),
            (("INTEGER", false, false), "name INTEGER PRIMARY KEY", false),
            (
                ("INTEGER", false, false),
                "name INTEGER PRIMARY KEY NOT NULL",
                false,
            ),
            (("INTEGER", true, false), "name INTEGER PRIMARY KEY", false),
            (
                ("INTEGER", true, false),
                "name INTEGER PRIMARY KEY NOT NULL",
                false,
            ),
            (
                ("VARCHAR(140)", true, false),
                "name VARCHAR(140) PRIMARY KEY NOT NULL",
                false,
            ),
            (
                ("VARCHAR(140)", true, false),
                "name VARCHAR(140) PRIMARY KEY",
                true,
            ),
            (
                ("VARCHAR(140)", false, false),
                "name VARCHAR(140) PRIMARY KEY",
                false,
            ),
            (
                ("VARCHAR(140)", false, false),
                "name VARCHAR(140) PRIMARY KEY NOT NULL",
                true,
            ),
            // Not rowid aliases: INT is not INTEGER; NULL is stored.
            (("INT", true, false), "name INT PRIMARY KEY", true),
            (("INT", false, false), "name INT PRIMARY KEY NOT NULL", true),
        ];
        let mut wrong = Vec::new();
        for ((decl_type, not_null, autoincrement), column, expected) in cases {
            let target = pk_target(decl_type, not_null, autoincrement);
            let (live, verified) = live_table(column);
            let diff = diff_table("X", &target, Some(&live), &[], &DiffOptions::default()).unwrap();
            let in_diff = diff.has(ChangeKind::ChangeNullability);
            let plan = DocTypePlan::up_to_date("X", target.clone(), None);
            let in_verify = check_result(&plan, Some(&verified))
                .iter()
                .any(|d| d.contains("NOT NULL"));
            let others = diff.changes.len() - usize::from(in_diff);
            if (in_diff, in_verify, others) != (expected, expected, 0) {
                wrong.push(format!(
                    "target {decl_type} not_null={not_null} autoincrement={autoincrement} \
                     vs live `{column}`: expected {expected}, diff {in_diff}, verify {in_verify}, \
                     other changes {others}"
                ));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }
}
