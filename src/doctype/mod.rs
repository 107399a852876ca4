//! DocType definitions: the model, the JSON parser (Frappe and SODAF
//! dialects) and validation of names and fields before anything touches the
//! database.

mod fieldtype;
mod model;
mod standard;

pub use fieldtype::{FieldType, Storage, UnknownFieldType};
pub use model::{DocType, Field, IndexDef};
pub use standard::{
    CHILD_COLUMNS, SEEN_COLUMN, STANDARD_COLUMNS, StandardColumn, is_dynamic_default,
    standard_columns,
};
