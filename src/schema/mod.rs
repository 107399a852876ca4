//! Table specifications: the target a DocType wants ([`target_spec`]) and the
//! live table read from the database ([`introspect_table`]), and the one
//! comparison of the two (`compare`).

pub(crate) mod compare;
mod introspect;
mod map;
mod spec;

pub(crate) use introspect::hex;
pub use introspect::{
    ForeignKey, LiveColumn, LiveIndex, LiveTable, SchemaObject, SchemaSnapshot,
    foreign_keys_enabled, introspect_table, referencing_tables, table_spec,
};
pub use map::{DEFAULT_VARCHAR_LENGTH, managed_index_name, target_spec};
pub use spec::{
    Affinity, ColumnSpec, IndexSpec, MANAGED_INDEX_PREFIX, TableSpec, is_managed_index,
    normalize_type,
};
