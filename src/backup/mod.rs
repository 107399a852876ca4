//! Backups of tables and columns taken before destructive steps.
