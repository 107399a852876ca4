//! What real DocTypes contain that a strict reading would refuse, and what
//! Frappe's schema code makes of it. The engine builds the same columns and
//! says what it did in a [`Warning`]:
//!
//! | code  | input                                             | column built                                   |
//! |-------|---------------------------------------------------|------------------------------------------------|
//! | QK001 | a fieldname defined twice                          | one, from the last definition, at the first one's position |
//! | QK002 | a field named like a standard column, stored otherwise | the standard column, unchanged             |
//! | QK003 | a non-numeric default on a numeric field          | the default Frappe's `cint`/`flt` give (`"False"` → 0) |
//!
//! [`table_columns`] is the one place that decides which definition gives
//! each column; the schema mapping and the warnings both read it.

use std::collections::HashMap;

use super::coerce::{integer_default, real_default};
use super::fieldtype::Storage;
use super::model::{DocType, Field};
use super::standard::{
    CHILD_COLUMNS, STANDARD_COLUMNS, StandardColumn, is_dynamic_default, standard_columns,
    trailing_columns,
};
use super::warning::{Warning, WarningCode};

/// Where one column of a DocType's table comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ColumnSource<'a> {
    /// A standard or appended column (`name` ... `idx`, child columns,
    /// `_user_tags` ..., `_seen`).
    Standard(StandardColumn),
    /// A field's (last) definition.
    Field(&'a Field),
}

impl ColumnSource<'_> {
    /// The column name.
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        match self {
            ColumnSource::Standard(c) => c.name,
            ColumnSource::Field(f) => &f.fieldname,
        }
    }
}

/// The columns of a DocType's table, in Frappe's order: `name` to `idx`,
/// the fields (one column per fieldname: the last definition, at the first
/// one's position; fields named like a standard column leave it as it is),
/// then `parent`, `parentfield`, `parenttype` for child tables, or the
/// optional columns otherwise, then `_seen`. A field declaring an appended
/// column keeps its position and takes the appended definition.
pub(crate) fn table_columns(dt: &DocType) -> Vec<ColumnSource<'_>> {
    let fixed = standard_columns(dt);
    let mut out: Vec<ColumnSource> = STANDARD_COLUMNS
        .iter()
        .copied()
        .map(ColumnSource::Standard)
        .collect();
    // Position of each name in `out`, by exact name (fields) and by lower
    // case (appended columns), so a DocType of any width maps in linear time.
    let mut at: HashMap<String, usize> = HashMap::new();
    for field in dt.fields.iter().filter(|f| f.has_column()) {
        if fixed
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&field.fieldname))
        {
            continue;
        }
        match at.get(&field.fieldname) {
            Some(&i) => out[i] = ColumnSource::Field(field),
            None => {
                at.insert(field.fieldname.clone(), out.len());
                out.push(ColumnSource::Field(field));
            }
        }
    }
    let mut appended: Vec<StandardColumn> = Vec::new();
    if dt.istable {
        appended.extend(CHILD_COLUMNS);
    }
    appended.extend(trailing_columns(dt));
    for col in appended {
        let slot = at
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(col.name))
            .map(|(_, &i)| i);
        match slot {
            Some(i) => out[i] = ColumnSource::Standard(col),
            None => out.push(ColumnSource::Standard(col)),
        }
    }
    out
}

/// The definitions a DocType's indexes come from: the last definition of
/// each fieldname that has a column (standard-column names included, as
/// Frappe indexes `idx` when a field asks for it), in first-position order.
pub(crate) fn index_fields(dt: &DocType) -> Vec<&Field> {
    let mut out: Vec<&Field> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for field in dt.fields.iter().filter(|f| f.has_column()) {
        match at.get(field.fieldname.as_str()) {
            Some(&i) => out[i] = field,
            None => {
                at.insert(&field.fieldname, out.len());
                out.push(field);
            }
        }
    }
    out
}

/// The definition quirks of one DocType (QK001-QK003), in field order.
pub(crate) fn quirk_warnings(dt: &DocType) -> Vec<Warning> {
    let mut out = Vec::new();
    duplicate_warnings(dt, &mut out);
    let fixed = standard_columns(dt);
    for field in dt.fields.iter().filter(|f| f.has_column()) {
        if let Some(col) = fixed.iter().find(|c| c.name == field.fieldname) {
            if field.fieldtype.storage() != col.like.storage() {
                out.push(warn(
                    dt,
                    field,
                    WarningCode::StandardColumnRedeclared,
                    format!(
                        "declared as a {} field, but {:?} is a standard column (stored like {}); \
                         the standard column is kept, as Frappe keeps it when it creates the table",
                        field.fieldtype, col.name, col.like
                    ),
                ));
            }
        }
    }
    for source in table_columns(dt) {
        let ColumnSource::Field(field) = source else {
            continue;
        };
        if let Some(message) = default_quirk(field) {
            out.push(warn(dt, field, WarningCode::NonNumericDefault, message));
        }
    }
    out
}

fn warn(dt: &DocType, field: &Field, code: WarningCode, message: String) -> Warning {
    let file = field.layer().unwrap_or(&dt.origin);
    Warning::about(code, file, &dt.name, Some(&field.fieldname), message)
}

/// QK001, once per fieldname defined more than once with a column.
fn duplicate_warnings(dt: &DocType, out: &mut Vec<Warning>) {
    // Every definition of each fieldname, in first-position order.
    let mut groups: Vec<Vec<&Field>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for field in dt.fields.iter().filter(|f| f.has_column()) {
        match at.get(field.fieldname.as_str()) {
            Some(&i) => groups[i].push(field),
            None => {
                at.insert(&field.fieldname, groups.len());
                groups.push(vec![field]);
            }
        }
    }
    for all in groups.iter().filter(|g| g.len() > 1) {
        let last = all[all.len() - 1];
        let differing = differing_properties(all.iter().copied());
        let how = if differing.is_empty() {
            "identically".to_string()
        } else {
            format!("differently ({})", differing.join(", "))
        };
        out.push(warn(
            dt,
            last,
            WarningCode::DuplicateField,
            format!(
                "fieldname {:?} is defined {} times, {how}; one column is built from the last \
                 definition, at the first one's position, as Frappe does",
                last.fieldname,
                all.len()
            ),
        ));
    }
}

/// The schema-relevant properties on which some definitions disagree.
fn differing_properties<'a>(defs: impl Iterator<Item = &'a Field> + Clone) -> Vec<&'static str> {
    type Get = fn(&Field) -> String;
    let props: [(&str, Get); 8] = [
        ("fieldtype", |f| f.fieldtype.to_string()),
        ("default", |f| format!("{:?}", f.default)),
        ("length", |f| format!("{:?}", f.length)),
        ("precision", |f| format!("{:?}", f.precision)),
        ("unique", |f| f.unique.to_string()),
        ("search_index", |f| f.search_index.to_string()),
        ("not_nullable", |f| f.not_nullable.to_string()),
        ("options", |f| format!("{:?}", f.options)),
    ];
    let mut out = Vec::new();
    for (name, get) in props {
        let mut values = defs.clone().map(get);
        let first = values.next();
        if values.any(|v| Some(&v) != first.as_ref()) {
            out.push(name);
        }
    }
    out
}

/// QK003's message for a field whose default is not a plain number of its
/// numeric storage, or `None`.
fn default_quirk(field: &Field) -> Option<String> {
    let text = field.default.as_deref()?;
    if text.trim().is_empty() || is_dynamic_default(text) {
        return None;
    }
    let (written, how) = match field.fieldtype.storage()? {
        Storage::Integer => (integer_default(text), "cint"),
        Storage::Real | Storage::NullableReal => (real_default(text), "flt"),
        Storage::Varchar | Storage::Text => return None,
    };
    if written.exact {
        return None;
    }
    Some(format!(
        "default {text:?} is not a number, but {} columns are numeric; the column default is {} \
         (Frappe's {how}({text:?}))",
        field.fieldtype, written.literal
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctype::FieldType;

    fn names(dt: &DocType) -> Vec<String> {
        table_columns(dt)
            .iter()
            .map(|s| s.name().to_string())
            .collect()
    }

    #[test]
    fn columns_follow_frappes_order() {
        let dt = DocType::new("T")
            .field(Field::new("a", FieldType::Data))
            .field(Field::new("_user_tags", FieldType::Data))
            .field(Field::new("b", FieldType::Int));
        assert_eq!(
            names(&dt),
            [
                "name",
                "creation",
                "modified",
                "modified_by",
                "owner",
                "docstatus",
                "idx",
                "a",
                "_user_tags",
                "b",
                "_comments",
                "_assign",
                "_liked_by"
            ]
        );
        assert!(matches!(table_columns(&dt)[8], ColumnSource::Standard(_)));
        let child = DocType::new("C")
            .child_table()
            .field(Field::new("a", FieldType::Data));
        assert_eq!(
            names(&child)[7..],
            ["a", "parent", "parentfield", "parenttype"]
        );
    }

    #[test]
    fn the_last_definition_wins_at_the_first_position() {
        let dt = DocType::new("T")
            .field(Field::new("a", FieldType::Data))
            .field(Field::new("b", FieldType::Data))
            .field(Field::new("a", FieldType::Int).default_value("3"));
        let cols = table_columns(&dt);
        assert_eq!(cols[7].name(), "a");
        let ColumnSource::Field(a) = cols[7] else {
            panic!("a is a field")
        };
        assert_eq!(a.fieldtype, FieldType::Int);
        let w = quirk_warnings(&dt);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].code, WarningCode::DuplicateField);
        assert!(
            w[0].message
                .contains("defined 2 times, differently (fieldtype, default)"),
            "{}",
            w[0].message
        );
    }

    #[test]
    fn numeric_defaults_and_standard_columns_are_reported() {
        let dt = DocType::new("T")
            .field(Field::new("idx", FieldType::Data).default_value("-1"))
            .field(Field::new("flag", FieldType::Check).default_value("False"))
            .field(Field::new("n", FieldType::Int).default_value("1.0"))
            .field(Field::new("when", FieldType::Int).default_value("Today"));
        let w = quirk_warnings(&dt);
        let codes: Vec<_> = w.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["QK002", "QK003"], "{w:?}");
        assert!(w[1].message.contains("the column default is 0"), "{w:?}");
        assert_eq!(
            names(&dt)[6..8],
            ["idx", "flag"],
            "standard idx kept in place"
        );
    }
}
