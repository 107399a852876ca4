//! DocType definitions: the model, the JSON parser (Frappe and SODAF
//! dialects) and validation of names and fields before anything touches the
//! database.

mod fieldtype;
mod model;

pub use fieldtype::{FieldType, Storage, UnknownFieldType};
pub use model::{DocType, Field, IndexDef};
