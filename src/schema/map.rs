//! DocType → target [`TableSpec`]: the fieldtype map applied.

use crate::doctype::{
    ColumnSource, DocType, FieldType, Storage, index_fields, integer_default, is_dynamic_default,
    real_default, table_columns,
};
use crate::error::Result;
use crate::ident::quote_literal;

use super::spec::{ColumnSpec, IndexSpec, TableSpec};

/// Default length of VARCHAR columns (Frappe's).
pub const DEFAULT_VARCHAR_LENGTH: u32 = 140;

/// The table a DocType wants, or `None` for single and virtual DocTypes.
///
/// The columns are those Frappe's schema code builds (see
/// docs/reference/type-mapping.md): `name` to `idx`, one column per fieldname (the
/// last definition, at the first one's position; a field named like a
/// standard column leaves it as it is), then the child columns or the
/// optional `_user_tags`, `_comments`, `_assign`, `_liked_by`, then `_seen`.
/// Numeric defaults are written as Frappe's `cint`/`flt` read them.
pub fn target_spec(doctype: &DocType) -> Result<Option<TableSpec>> {
    doctype.target_table()
}

impl DocType {
    /// The table this DocType wants in the database, or `None` for single
    /// and virtual DocTypes: its columns in Frappe's order (`name` to
    /// `idx`, one per fieldname, then the child or optional columns, then
    /// `_seen`), declared types from docs/reference/type-mapping.md, and
    /// its indexes. Fails on what validation refuses.
    pub fn target_table(&self) -> Result<Option<TableSpec>> {
        target_table(self)
    }
}

fn target_table(doctype: &DocType) -> Result<Option<TableSpec>> {
    if !doctype.has_table() {
        return Ok(None);
    }
    let table = doctype.table_name();
    let autoincrement = doctype.is_autoincrement();
    let mut columns = Vec::new();
    for source in table_columns(doctype) {
        let col = match source {
            ColumnSource::Standard(std_col) if std_col.name == "name" => {
                let mut col = column_for(std_col.name, std_col.like, None, None, false);
                col.primary_key = true;
                col.not_null = !autoincrement;
                col.default = None;
                if autoincrement {
                    col.decl_type = "INTEGER".into();
                }
                col
            }
            ColumnSource::Standard(std_col) => {
                column_for(std_col.name, std_col.like, None, None, false)
            }
            ColumnSource::Field(field) => column_for(
                &field.fieldname,
                field.fieldtype,
                field.default.as_deref(),
                field.length,
                field.not_nullable,
            ),
        };
        columns.push(col);
    }
    let mut indexes = Vec::new();
    for field in index_fields(doctype) {
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
    name: &str,
    fieldtype: FieldType,
    default: Option<&str>,
    length: Option<u32>,
    not_nullable: bool,
) -> ColumnSpec {
    let storage = fieldtype.storage().unwrap_or(Storage::Text);
    let static_default = default
        .map(str::trim)
        .filter(|d| !d.is_empty() && !is_dynamic_default(d));
    let (decl_type, not_null, default) = match storage {
        Storage::Varchar => (
            format!(
                "VARCHAR({})",
                length.filter(|&n| n != 0).unwrap_or(DEFAULT_VARCHAR_LENGTH)
            ),
            not_nullable,
            static_default.map(quote_literal),
        ),
        Storage::Text => (
            "TEXT".to_string(),
            not_nullable,
            static_default.map(quote_literal),
        ),
        Storage::Integer => {
            let value =
                static_default.map_or_else(|| "0".to_string(), |d| integer_default(d).literal);
            ("INTEGER".to_string(), true, Some(value))
        }
        Storage::Real => {
            let value = static_default.map_or_else(|| "0".to_string(), |d| real_default(d).literal);
            ("REAL".to_string(), true, Some(value))
        }
        Storage::NullableReal => (
            "REAL".to_string(),
            not_nullable,
            static_default.map(|d| real_default(d).literal),
        ),
    };
    ColumnSpec {
        name: name.to_string(),
        decl_type,
        not_null,
        default,
        primary_key: false,
    }
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
        assert_eq!(spec.columns.len(), 7 + 4 + 4, "optional columns appended");
        assert!(spec.column("name").unwrap().primary_key);
    }

    #[test]
    fn text_defaults_are_escaped_and_numbers_rendered_from_values() {
        let dt = DocType::new("Note")
            .field(Field::new("title", FieldType::Data).default_value("it's"))
            .field(Field::new("n", FieldType::Int).default_value("1; DROP TABLE x"));
        let spec = target_spec(&dt).unwrap().unwrap();
        assert_eq!(
            spec.column("n").unwrap().default.as_deref(),
            Some("0"),
            "cint of a non-number is 0; the text never reaches SQL"
        );
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
