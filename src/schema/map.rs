//! DocType → target [`TableSpec`]: the fieldtype map applied.

use crate::doctype::{DocType, FieldType, Storage, is_dynamic_default, standard_columns};
use crate::error::{Error, Result};
use crate::ident::quote_literal;

use super::spec::{ColumnSpec, IndexSpec, TableSpec};

/// Default length of VARCHAR columns (Frappe's).
pub const DEFAULT_VARCHAR_LENGTH: u32 = 140;

/// The table a DocType wants, or `None` for single and virtual DocTypes.
///
/// The DocType should have passed validation; a default that does not fit a
/// numeric column is still reported as an error rather than guessed at.
pub fn target_spec(doctype: &DocType) -> Result<Option<TableSpec>> {
    if !doctype.has_table() {
        return Ok(None);
    }
    let table = doctype.table_name();
    let autoincrement = doctype.is_autoincrement();
    let mut columns = Vec::new();
    for std_col in standard_columns(doctype) {
        let mut col = column_for(doctype, std_col.name, std_col.like, None, None, false)?;
        if std_col.name == "name" {
            col.primary_key = true;
            col.not_null = !autoincrement;
            col.default = None;
            if autoincrement {
                col.decl_type = "INTEGER".into();
            }
        }
        columns.push(col);
    }
    let mut indexes = Vec::new();
    for field in doctype.fields.iter().filter(|f| f.has_column()) {
        let redeclares_standard = columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&field.fieldname));
        if !redeclares_standard {
            columns.push(column_for(
                doctype,
                &field.fieldname,
                field.fieldtype,
                field.default.as_deref(),
                field.length,
                field.not_nullable,
            )?);
        }
        if field.unique {
            indexes.push(IndexSpec {
                name: managed_index_name(&table, true, &field.fieldname),
                columns: vec![field.fieldname.clone()],
                unique: true,
            });
        } else if field.search_index {
            indexes.push(IndexSpec {
                name: managed_index_name(&table, false, &field.fieldname),
                columns: vec![field.fieldname.clone()],
                unique: false,
            });
        }
    }
    if doctype.istable {
        indexes.push(IndexSpec {
            name: managed_index_name(&table, false, "parent"),
            columns: vec!["parent".into()],
            unique: false,
        });
    }
    for def in &doctype.indexes {
        let label = def.name.clone().unwrap_or_else(|| def.fields.join("__"));
        indexes.push(IndexSpec {
            name: managed_index_name(&table, def.unique, &label),
            columns: def.fields.clone(),
            unique: def.unique,
        });
    }
    indexes.sort_by(|a, b| a.name.cmp(&b.name));
    indexes.dedup_by(|a, b| a.name.eq_ignore_ascii_case(&b.name));
    Ok(Some(TableSpec {
        name: table,
        columns,
        indexes,
        autoincrement,
    }))
}

/// The name of an engine-managed index: `dm_idx__<table>__<label>` or
/// `dm_uq__<table>__<label>` for unique ones.
pub fn managed_index_name(table: &str, unique: bool, label: &str) -> String {
    format!("dm_{}__{table}__{label}", if unique { "uq" } else { "idx" })
}

fn column_for(
    doctype: &DocType,
    name: &str,
    fieldtype: FieldType,
    default: Option<&str>,
    length: Option<u32>,
    not_nullable: bool,
) -> Result<ColumnSpec> {
    let storage = fieldtype.storage().unwrap_or(Storage::Text);
    let static_default = default
        .map(str::trim)
        .filter(|d| !d.is_empty() && !is_dynamic_default(d));
    let bad_default = |d: &str| Error::InvalidDocType {
        origin: doctype.origin.clone(),
        doctype: doctype.name.clone(),
        field: Some(name.to_string()),
        message: format!("default {d:?} is not a number, but {fieldtype} columns are numeric"),
    };
    let (decl_type, not_null, default) = match storage {
        Storage::Varchar => (
            format!("VARCHAR({})", length.unwrap_or(DEFAULT_VARCHAR_LENGTH)),
            not_nullable,
            static_default.map(quote_literal),
        ),
        Storage::Text => (
            "TEXT".to_string(),
            not_nullable,
            static_default.map(quote_literal),
        ),
        Storage::Integer => {
            let value = match static_default {
                Some(d) => integer_literal(d).ok_or_else(|| bad_default(d))?,
                None => "0".to_string(),
            };
            ("INTEGER".to_string(), true, Some(value))
        }
        Storage::Real => {
            let value = match static_default {
                Some(d) => real_literal(d).ok_or_else(|| bad_default(d))?,
                None => "0".to_string(),
            };
            ("REAL".to_string(), true, Some(value))
        }
        Storage::NullableReal => {
            let value = static_default
                .map(|d| real_literal(d).ok_or_else(|| bad_default(d)))
                .transpose()?;
            ("REAL".to_string(), not_nullable, value)
        }
    };
    Ok(ColumnSpec {
        name: name.to_string(),
        decl_type,
        not_null,
        default,
        primary_key: false,
    })
}

/// A numeric default rendered from its parsed value, never from the input text.
fn integer_literal(d: &str) -> Option<String> {
    if let Ok(i) = d.parse::<i64>() {
        return Some(i.to_string());
    }
    // Frappe writes Check defaults like "1.0" now and then.
    let f: f64 = d.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then(|| (f as i64).to_string())
}

fn real_literal(d: &str) -> Option<String> {
    let f: f64 = d.parse().ok()?;
    f.is_finite()
        .then(|| format!("{f:?}").trim_end_matches(".0").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctype::Field;

    #[test]
    fn numeric_columns_are_not_null_with_default() {
        let dt = DocType::new("Item")
            .field(Field::new("qty", FieldType::Int))
            .field(Field::new("rate", FieldType::Currency).default_value("2.5"))
            .field(Field::new("ok", FieldType::Check).default_value("1"))
            .field(Field::new("posting_date", FieldType::Date).default_value("Today"));
        let spec = target_spec(&dt).unwrap().unwrap();
        let qty = spec.column("qty").unwrap();
        assert_eq!(
            (qty.decl_type.as_str(), qty.not_null, qty.default.as_deref()),
            ("INTEGER", true, Some("0"))
        );
        assert_eq!(spec.column("rate").unwrap().default.as_deref(), Some("2.5"));
        assert_eq!(spec.column("ok").unwrap().default.as_deref(), Some("1"));
        assert_eq!(
            spec.column("posting_date").unwrap().default,
            None,
            "Today is dynamic"
        );
        assert_eq!(spec.columns.len(), 7 + 4);
        assert!(spec.column("name").unwrap().primary_key);
    }

    #[test]
    fn text_defaults_are_escaped_and_numbers_rendered_from_values() {
        let dt = DocType::new("Note")
            .field(Field::new("title", FieldType::Data).default_value("it's"))
            .field(Field::new("n", FieldType::Int).default_value("1; DROP TABLE x"));
        assert!(target_spec(&dt).is_err());
        let dt =
            DocType::new("Note").field(Field::new("title", FieldType::Data).default_value("it's"));
        let spec = target_spec(&dt).unwrap().unwrap();
        assert_eq!(
            spec.column("title").unwrap().default.as_deref(),
            Some("'it''s'")
        );
    }

    #[test]
    fn child_tables_get_parent_columns_and_index_singles_get_nothing() {
        let dt = DocType::new("Sales Order Item").child_table();
        let spec = target_spec(&dt).unwrap().unwrap();
        assert!(spec.column("parenttype").is_some());
        assert_eq!(spec.indexes[0].name, "dm_idx__tabSales Order Item__parent");
        let mut single = DocType::new("Settings");
        single.issingle = true;
        assert!(target_spec(&single).unwrap().is_none());
    }

    #[test]
    fn autoincrement_name_is_integer() {
        let mut dt = DocType::new("Log");
        dt.autoname = Some("autoincrement".into());
        let spec = target_spec(&dt).unwrap().unwrap();
        assert!(spec.autoincrement);
        assert!(
            spec.create_sql()
                .contains("\"name\" INTEGER PRIMARY KEY AUTOINCREMENT")
        );
    }
}
