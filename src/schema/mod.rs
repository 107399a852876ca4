//! Table specifications: the target a DocType wants ([`target_spec`]) and the
//! live table read from the database ([`introspect_table`]), and the one
//! comparison of the two (`compare`).

pub(crate) mod compare;
mod introspect;
mod map;
mod spec;

pub(crate) use introspect::hex;
pub use introspect::{
    LiveTable, SchemaObject, SchemaSnapshot, foreign_keys_enabled, introspect_table,
    referencing_tables, table_spec,
};
pub use map::target_spec;
pub use spec::{Affinity, ColumnSpec, IndexSpec, TableSpec, is_managed_index};
