//! Migration identifiers and the status lifecycle.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifier of one migration: the `id` column of `tabMigrationHistory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MigrationId(pub i64);

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for MigrationId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(MigrationId)
    }
}

/// Status of a migration in `tabMigrationHistory`.
///
/// The lifecycle is `planned → in_progress → completed | failed`,
/// `completed → rolled_back`, and for the expand step of an online
/// migration `in_progress → expanded → completed | rolled_back` (completed
/// when the online migration completes, rolled back when it is aborted);
/// [`MigrationStatus::can_become`] enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MigrationStatus {
    /// Recorded but not started.
    Planned,
    /// Being executed.
    InProgress,
    /// Applied and committed.
    Completed,
    /// Failed; its changes were rolled back.
    Failed,
    /// Applied, then undone by a rollback.
    RolledBack,
    /// The expand step of an online migration: committed, with both the
    /// old and the new shape in the table, until the online migration is
    /// completed or aborted.
    Expanded,
}

impl MigrationStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [MigrationStatus; 6] = [
        MigrationStatus::Planned,
        MigrationStatus::InProgress,
        MigrationStatus::Expanded,
        MigrationStatus::Completed,
        MigrationStatus::Failed,
        MigrationStatus::RolledBack,
    ];

    /// The value stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::Planned => "planned",
            MigrationStatus::InProgress => "in_progress",
            MigrationStatus::Completed => "completed",
            MigrationStatus::Failed => "failed",
            MigrationStatus::RolledBack => "rolled_back",
            MigrationStatus::Expanded => "expanded",
        }
    }

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_become(self, next: MigrationStatus) -> bool {
        use MigrationStatus::*;
        matches!(
            (self, next),
            (Planned, InProgress)
                | (InProgress, Completed)
                | (InProgress, Failed)
                | (InProgress, Expanded)
                | (Expanded, Completed)
                | (Expanded, RolledBack)
                | (Completed, RolledBack)
        )
    }
}

impl fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MigrationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MigrationStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown migration status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_documented_transitions() {
        use MigrationStatus::*;
        let allowed: Vec<_> = MigrationStatus::ALL
            .iter()
            .flat_map(|a| MigrationStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Planned, InProgress),
                (InProgress, Expanded),
                (InProgress, Completed),
                (InProgress, Failed),
                (Expanded, Completed),
                (Expanded, RolledBack),
                (Completed, RolledBack)
            ]
        );
    }

    #[test]
    fn status_round_trips_through_text() {
        for st in MigrationStatus::ALL {
            assert_eq!(st.as_str().parse::<MigrationStatus>().unwrap(), st);
        }
        assert!("done".parse::<MigrationStatus>().is_err());
    }
}
