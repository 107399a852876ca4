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
pub(crate) use parse::input_files;
pub use parse::{from_json_str as doctypes_from_json, load_path, load_paths};
pub(crate) use quirks::{ColumnSource, index_fields, table_columns};
pub use standard::is_dynamic_default;
pub use validate::{Conflict, conflicts, validate_set, validate_set as validate_doctypes};
pub use warning::{Warning, WarningCode, warnings};
