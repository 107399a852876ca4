//! Per-migration metrics, stored with the history row.

use serde::{Deserialize, Serialize};

/// Where one migration spent its time, and how much it moved. Stored with
/// the history row (`metrics`, JSON) and shown by `history`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Validating the batch this migration belongs to, in milliseconds.
    pub validate_ms: f64,
    /// Writing and verifying backups.
    pub backup_ms: f64,
    /// Running the steps.
    pub execute_ms: f64,
    /// Foreign-key check and verification.
    pub verify_ms: f64,
    /// Rows copied by rebuilds.
    pub rows_copied: u64,
    /// Bytes of backup files written.
    pub bytes_backed_up: u64,
}
