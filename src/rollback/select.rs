//! Which migrations a rollback undoes, in which order: one migration, the
//! latest of a DocType (or of all), or a whole batch; with `cascade`, the
//! later completed migrations of the same DocTypes as well. Always newest
//! first, so every migration is undone from the state it left behind.
//!
//! Only `completed` migrations count: `failed` ones changed nothing and
//! `rolled_back` ones are already undone, so they are never "later" ones.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::history::{HistoryRow, MigrationStatus, store};

use super::RollbackTarget;
use super::feasibility::Reason;

/// A migration selected for rollback.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Its history row.
    pub row: HistoryRow,
    /// Included only because `cascade` asked for later migrations.
    pub cascaded: bool,
}

/// The migrations to undo, newest first, and the reasons to refuse that
/// selection (wrong status, nothing to roll back, later migrations without
/// `cascade`). An unknown migration id is an error, not a refusal.
pub fn select(
    conn: &Connection,
    target: &RollbackTarget,
    cascade: bool,
) -> Result<(Vec<Selected>, Vec<Reason>)> {
    let all = store::list(conn, None)?;
    let completed = |r: &&HistoryRow| r.status == MigrationStatus::Completed;
    let mut reasons = Vec::new();
    let initial: Vec<HistoryRow> = match target {
        RollbackTarget::Migration { id } => {
            let row = all
                .iter()
                .find(|r| r.id == *id)
                .cloned()
                .ok_or(Error::MigrationNotFound(*id))?;
            if row.status != MigrationStatus::Completed {
                reasons.push(Reason::WrongStatus {
                    id: row.id,
                    status: row.status,
                });
                return Ok((Vec::new(), reasons));
            }
            vec![row]
        }
        RollbackTarget::Last { doctype } => all
            .iter()
            .rev()
            .filter(completed)
            .find(|r| doctype.as_ref().is_none_or(|d| &r.doctype == d))
            .cloned()
            .into_iter()
            .collect(),
        RollbackTarget::Batch { batch_id } => all
            .iter()
            .filter(completed)
            .filter(|r| r.batch_id.as_deref() == Some(batch_id.as_str()))
            .cloned()
            .collect(),
    };
    if initial.is_empty() {
        reasons.push(Reason::NothingToRollBack {
            target: target.to_string(),
        });
        return Ok((Vec::new(), reasons));
    }

    let mut selected: Vec<Selected> = initial
        .into_iter()
        .map(|row| Selected {
            row,
            cascaded: false,
        })
        .collect();
    let chosen: Vec<_> = selected.iter().map(|s| s.row.id).collect();
    let mut extra: Vec<HistoryRow> = Vec::new();
    for s in &selected {
        let later: Vec<&HistoryRow> = all
            .iter()
            .filter(completed)
            .filter(|r| r.doctype == s.row.doctype && r.id > s.row.id && !chosen.contains(&r.id))
            .collect();
        if later.is_empty() {
            continue;
        }
        if cascade {
            for r in later {
                if !extra.iter().any(|e| e.id == r.id) {
                    extra.push(r.clone());
                }
            }
        } else {
            reasons.push(Reason::NotLatest {
                id: s.row.id,
                doctype: s.row.doctype.clone(),
                later: later.iter().map(|r| r.id).collect(),
            });
        }
    }
    selected.extend(extra.into_iter().map(|row| Selected {
        row,
        cascaded: true,
    }));
    selected.sort_by_key(|s| std::cmp::Reverse(s.row.id));
    Ok((selected, reasons))
}
