//! DocType definitions: the model, the JSON parser (Frappe and SODAF
//! dialects) and validation of names and fields before anything touches the
//! database.

mod coerce;
mod fieldtype;
mod layer;
mod model;
mod parse;
mod quirks;
mod standard;
mod validate;
mod warning;

pub(crate) use coerce::{integer_default, real_default};
pub use fieldtype::{FieldType, Storage, UnknownFieldType};
pub use layer::{Layer, LayerKind};
pub use model::{DocType, Field, IndexDef};
pub use parse::{from_json_str, load_file, load_path, load_paths};
pub(crate) use quirks::{ColumnSource, index_fields, table_columns};
pub use standard::{
    CHILD_COLUMNS, OPTIONAL_COLUMNS, SEEN_COLUMN, STANDARD_COLUMNS, StandardColumn,
    is_dynamic_default, standard_columns, trailing_columns,
};
pub use validate::{
    Conflict, MAX_COLUMNS, MAX_LENGTH, RESERVED_DOCTYPE_NAMES, conflicts, doctype_conflicts,
    validate_doctype, validate_set,
};
pub use warning::{Warning, WarningCode, warnings};
