//! DocType definitions: the model, the JSON parser (Frappe and SODAF
//! dialects) and validation of names and fields before anything touches the
//! database.

mod fieldtype;
mod model;
mod parse;
mod standard;
mod validate;

pub use fieldtype::{FieldType, Storage, UnknownFieldType};
pub use model::{DocType, Field, IndexDef};
pub use parse::{from_json_str, load_file, load_path, load_paths};
pub use standard::{
    CHILD_COLUMNS, SEEN_COLUMN, STANDARD_COLUMNS, StandardColumn, is_dynamic_default,
    standard_columns,
};
pub use validate::{
    Conflict, MAX_COLUMNS, MAX_LENGTH, RESERVED_DOCTYPE_NAMES, conflicts, doctype_conflicts,
    validate_doctype, validate_set,
};
