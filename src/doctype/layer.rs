//! Customization layers: Frappe's Custom Field and Property Setter records,
//! read from fixture files (a JSON list of records, as `bench
//! export-fixtures` writes them) and merged onto their DocType before
//! anything is diffed, in Frappe's order: every Custom Field first (placed
//! by `insert_after`), then every Property Setter (its value cast by its
//! `property_type`).
//!
//! Only properties that shape the table are applied; the rest (labels,
//! permissions, layout) are read past, as the engine reads past them in
//! DocTypes. A layer aimed at a DocType that is not loaded is an error.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::coerce::{cint, flt};
use super::model::{DocType, Field};
use super::parse::{field_from_record, record_error, record_string};
use super::warning::{Warning, WarningCode};
use crate::error::{Error, Result};

/// What kind of customization record a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayerKind {
    /// A `Custom Field` record: adds a field to a DocType.
    CustomField,
    /// A `Property Setter` record: changes one property of a DocType or field.
    PropertySetter,
}

impl LayerKind {
    /// The record's `doctype`, as Frappe names it.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::CustomField => "Custom Field",
            LayerKind::PropertySetter => "Property Setter",
        }
    }
}

impl Serialize for LayerKind {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One customization record that shaped a DocType or field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Layer {
    /// Custom Field or Property Setter.
    pub kind: LayerKind,
    /// The record's `name` (e.g. `User-linkedin`), or its position in the
    /// file when it has none.
    pub record: String,
    /// The fixture file it was read from.
    pub file: String,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} ({})",
            self.kind.as_str(),
            self.record,
            self.file
        )
    }
}

/// A record read from a fixture file, not yet merged.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Custom(CustomField),
    Setter(PropertySetter),
}

#[derive(Debug, Clone)]
pub(crate) struct CustomField {
    layer: Layer,
    dt: String,
    insert_after: Option<String>,
    field: Field,
}

#[derive(Debug, Clone)]
pub(crate) struct PropertySetter {
    layer: Layer,
    doc_type: String,
    field_name: Option<String>,
    property: String,
    value: Value,
    property_type: String,
    on_field: bool,
}

/// Whether a JSON value is a fixture of layers: a Custom Field or Property
/// Setter record, or an array holding at least one.
pub(crate) fn looks_like_layer_file(value: &Value) -> bool {
    let is_layer = |v: &Value| {
        v.get("doctype")
            .and_then(Value::as_str)
            .is_some_and(|d| d == "Custom Field" || d == "Property Setter")
    };
    match value {
        Value::Array(items) => items.iter().any(is_layer),
        other => is_layer(other),
    }
}

/// Reads the layer records of a fixture file. Records of other types in
/// the same file (roles, workspaces, ...) are not schema and are skipped.
pub(crate) fn records_from_value(value: &Value, origin: &str) -> Result<Vec<Record>> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(obj) = item.as_object() else {
            return Err(record_error(
                origin,
                "",
                None,
                format!("item {i} of the fixture is not a record object"),
            ));
        };
        match obj.get("doctype").and_then(Value::as_str) {
            Some("Custom Field") => out.push(Record::Custom(custom_field(obj, origin, i)?)),
            Some("Property Setter") => {
                if let Some(s) = property_setter(obj, origin, i)? {
                    out.push(Record::Setter(s));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn record_name(obj: &Map<String, Value>, origin: &str, i: usize) -> Result<String> {
    Ok(
        record_string(obj, "name", origin, "", &format!("record {i}"))?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("record {i}")),
    )
}

fn custom_field(obj: &Map<String, Value>, origin: &str, i: usize) -> Result<CustomField> {
    let record = record_name(obj, origin, i)?;
    let dt = record_string(obj, "dt", origin, "", &record)?
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            record_error(
                origin,
                "",
                Some(&record),
                "Custom Field without \"dt\" (the DocType it adds a field to)",
            )
        })?;
    let label = format!("Custom Field {record:?}");
    let field = field_from_record(obj, origin, &dt, &label)?;
    let insert_after =
        record_string(obj, "insert_after", origin, &dt, &label)?.filter(|s| !s.is_empty());
    Ok(CustomField {
        layer: Layer {
            kind: LayerKind::CustomField,
            record,
            file: origin.to_string(),
        },
        dt,
        insert_after,
        field,
    })
}

/// A Property Setter record; `None` for one aimed at something that is not
/// a DocType or a field (links, actions, states).
fn property_setter(
    obj: &Map<String, Value>,
    origin: &str,
    i: usize,
) -> Result<Option<PropertySetter>> {
    let record = record_name(obj, origin, i)?;
    let label = format!("Property Setter {record:?}");
    let text = |key: &str| record_string(obj, key, origin, "", &label);
    let doc_type = text("doc_type")?.filter(|d| !d.is_empty()).ok_or_else(|| {
        record_error(
            origin,
            "",
            Some(&label),
            "Property Setter without \"doc_type\"",
        )
    })?;
    let field_name = text("field_name")?.filter(|f| !f.is_empty());
    let on_field = match text("doctype_or_field")?.as_deref() {
        Some("DocField") => true,
        Some("DocType") => false,
        None | Some("") => field_name.is_some(),
        Some(_) => return Ok(None),
    };
    if on_field && field_name.is_none() {
        return Err(record_error(
            origin,
            &doc_type,
            Some(&label),
            "Property Setter on a DocField without \"field_name\"",
        ));
    }
    let property = text("property")?.filter(|p| !p.is_empty()).ok_or_else(|| {
        record_error(
            origin,
            &doc_type,
            Some(&label),
            "Property Setter without \"property\"",
        )
    })?;
    Ok(Some(PropertySetter {
        layer: Layer {
            kind: LayerKind::PropertySetter,
            record,
            file: origin.to_string(),
        },
        doc_type,
        field_name,
        property,
        value: obj.get("value").cloned().unwrap_or(Value::Null),
        property_type: text("property_type")?.unwrap_or_default(),
        on_field,
    }))
}

/// Merges layer records onto the DocTypes: every Custom Field first, in
/// file order, placed as Frappe's `Meta.sort_fields` places them; then
/// every Property Setter. A record aimed at a DocType not in `doctypes` is
/// an error naming its file and record.
pub(crate) fn apply_layers(doctypes: &mut [DocType], records: Vec<Record>) -> Result<()> {
    let mut customs: Vec<CustomField> = Vec::new();
    let mut setters: Vec<PropertySetter> = Vec::new();
    for r in records {
        match r {
            Record::Custom(c) => customs.push(c),
            Record::Setter(s) => setters.push(s),
        }
    }
    let find = |doctypes: &[DocType], name: &str| doctypes.iter().position(|d| d.name == name);
    // Custom fields, grouped by DocType in first-seen order.
    let mut order: Vec<String> = Vec::new();
    for c in &customs {
        if find(doctypes, &c.dt).is_none() {
            return Err(missing_target(&c.layer, &c.dt, Some(&c.field.fieldname)));
        }
        if !order.contains(&c.dt) {
            order.push(c.dt.clone());
        }
    }
    for dt_name in order {
        let i = find(doctypes, &dt_name).unwrap_or_default();
        let mine: Vec<CustomField> = customs
            .iter()
            .filter(|c| c.dt == dt_name)
            .cloned()
            .collect();
        insert_custom_fields(&mut doctypes[i], mine);
    }
    for s in setters {
        let Some(i) = find(doctypes, &s.doc_type) else {
            return Err(missing_target(
                &s.layer,
                &s.doc_type,
                s.field_name.as_deref(),
            ));
        };
        apply_setter(&mut doctypes[i], &s)?;
    }
    Ok(())
}

fn missing_target(layer: &Layer, doctype: &str, field: Option<&str>) -> Error {
    Error::InvalidDocType {
        origin: layer.file.clone(),
        doctype: doctype.to_string(),
        field: field.map(str::to_string),
        message: format!(
            "{} {:?} is aimed at DocType {doctype:?}, which is not among the DocTypes loaded \
             (give its DocType JSON too)",
            layer.kind.as_str(),
            layer.record
        ),
    }
}

/// Frappe's `Meta.sort_fields`: custom fields without `insert_after` go
/// first; the others are inserted after their anchor in two passes (so an
/// anchor that is itself a custom field may come later in the file); any
/// left over are appended.
fn insert_custom_fields(dt: &mut DocType, customs: Vec<CustomField>) {
    let mut pending: Vec<Field> = Vec::new();
    let mut anchors: Vec<Option<String>> = Vec::new();
    let mut top: Vec<Field> = Vec::new();
    for c in customs {
        let mut field = c.field;
        field.layers.push(c.layer);
        match c.insert_after {
            None => top.push(field),
            Some(after) => {
                pending.push(field);
                anchors.push(Some(after));
            }
        }
    }
    let mut fields: Vec<Field> = top;
    fields.append(&mut dt.fields);
    for _pass in 0..2 {
        let mut k = 0;
        while k < pending.len() {
            let anchor = anchors[k].as_deref().unwrap_or_default();
            match fields.iter().position(|f| f.fieldname == anchor) {
                Some(at) => {
                    fields.insert(at + 1, pending.remove(k));
                    anchors.remove(k);
                }
                None => k += 1,
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    fields.append(&mut pending);
    dt.fields = fields;
}

/// A Property Setter's value cast by its `property_type`, as Frappe casts it.
enum Cast {
    Int(i64),
    Float(f64),
    Text(Option<String>),
}

fn cast(value: &Value, property_type: &str) -> Cast {
    let text = match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        other => Some(other.to_string()),
    };
    match property_type {
        // Frappe casts these with cint(sbool(value)): "True" is 1 here,
        // unlike in a column default, where cint("True") is 0.
        "Check" | "Int" => {
            Cast::Int(
                text.as_deref()
                    .map_or(0, |t| match t.trim().to_ascii_lowercase().as_str() {
                        "true" => 1,
                        "false" => 0,
                        _ => cint(t),
                    }),
            )
        }
        "Float" | "Currency" | "Percent" => Cast::Float(text.as_deref().map(flt).unwrap_or(0.0)),
        _ => Cast::Text(text.filter(|t| !t.is_empty())),
    }
}

impl Cast {
    fn flag(&self) -> bool {
        match self {
            Cast::Int(i) => *i != 0,
            Cast::Float(f) => *f != 0.0,
            Cast::Text(t) => t.as_deref().is_some_and(|t| cint(t) != 0),
        }
    }

    fn size(&self) -> Option<u32> {
        let n = match self {
            Cast::Int(i) => *i,
            Cast::Float(f) => *f as i64,
            Cast::Text(t) => t.as_deref().map(cint).unwrap_or(0),
        };
        u32::try_from(n).ok().filter(|&n| n != 0)
    }

    fn text(&self) -> Option<String> {
        match self {
            Cast::Int(i) => Some(i.to_string()),
            Cast::Float(f) => Some(f.to_string()),
            Cast::Text(t) => t.clone(),
        }
    }
}

fn apply_setter(dt: &mut DocType, s: &PropertySetter) -> Result<()> {
    let value = cast(&s.value, &s.property_type);
    if !s.on_field {
        let touched = match s.property.as_str() {
            "autoname" => {
                dt.autoname = value.text();
                true
            }
            "track_seen" => {
                dt.track_seen = value.flag();
                true
            }
            "istable" => {
                dt.istable = value.flag();
                true
            }
            "issingle" => {
                dt.issingle = value.flag();
                true
            }
            "is_virtual" => {
                dt.is_virtual = value.flag();
                true
            }
            _ => false,
        };
        if touched {
            dt.layers.push(s.layer.clone());
        }
        return Ok(());
    }
    let field_name = s.field_name.as_deref().unwrap_or_default();
    let (origin, name) = (dt.origin.clone(), dt.name.clone());
    // Frappe sets the property on every definition of the field.
    let mut found = false;
    for field in dt.fields.iter_mut().filter(|f| f.fieldname == field_name) {
        found = true;
        if set_field_property(field, &s.property, &value, s, &name)? {
            field.layers.push(s.layer.clone());
        }
    }
    if !found {
        dt.load_warnings.push(Warning::about(
            WarningCode::PropertySetterMissingField,
            &s.layer.file,
            &name,
            Some(field_name),
            format!(
                "Property Setter {:?} sets {:?} on field {field_name:?}, which DocType {name:?} \
                 (from {origin}) does not have; skipped, as Frappe skips it",
                s.layer.record, s.property
            ),
        ));
    }
    Ok(())
}

/// Sets one schema property; `false` for properties that do not shape the
/// table (labels, permissions, ...), which are left alone.
fn set_field_property(
    field: &mut Field,
    property: &str,
    value: &Cast,
    s: &PropertySetter,
    doctype: &str,
) -> Result<bool> {
    match property {
        "fieldtype" => {
            let text = value.text().unwrap_or_default();
            field.fieldtype = text.parse().map_err(|e: super::UnknownFieldType| {
                record_error(
                    &s.layer.file,
                    doctype,
                    Some(&field.fieldname),
                    format!("Property Setter {:?}: {e}", s.layer.record),
                )
            })?;
        }
        "length" => field.length = value.size(),
        "precision" => field.precision = value.size(),
        "default" => field.default = value.text(),
        "options" => field.options = value.text(),
        "unique" => field.unique = value.flag(),
        "search_index" => field.search_index = value.flag(),
        "reqd" => field.reqd = value.flag(),
        "not_nullable" => field.not_nullable = value.flag(),
        "is_virtual" => field.is_virtual = value.flag(),
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctype::FieldType;

    fn records(json: &str) -> Vec<Record> {
        records_from_value(&serde_json::from_str(json).unwrap(), "fx.json").unwrap()
    }

    fn names(dt: &DocType) -> Vec<&str> {
        dt.fields.iter().map(|f| f.fieldname.as_str()).collect()
    }

    #[test]
    fn custom_fields_are_placed_as_frappe_sorts_them() {
        let mut dts = vec![
            DocType::new("User")
                .field(Field::new("email", FieldType::Data))
                .field(Field::new("bio", FieldType::Text)),
        ];
        let recs = records(
            r#"[
            {"doctype":"Custom Field","name":"User-b","dt":"User","fieldname":"b","fieldtype":"Data","insert_after":"a"},
            {"doctype":"Custom Field","name":"User-a","dt":"User","fieldname":"a","fieldtype":"Check","insert_after":"email"},
            {"doctype":"Custom Field","name":"User-top","dt":"User","fieldname":"top","fieldtype":"Data"},
            {"doctype":"Custom Field","name":"User-lost","dt":"User","fieldname":"lost","fieldtype":"Int","insert_after":"nowhere"},
            {"doctype":"Role","name":"x"}
        ]"#,
        );
        assert_eq!(recs.len(), 4);
        apply_layers(&mut dts, recs).unwrap();
        assert_eq!(names(&dts[0]), ["top", "email", "a", "b", "bio", "lost"]);
        assert_eq!(dts[0].fields[2].layers[0].record, "User-a");
    }

    #[test]
    fn property_setters_cast_by_property_type() {
        let mut dts = vec![
            DocType::new("Note")
                .field(Field::new("title", FieldType::Data))
                .field(Field::new("n", FieldType::Int)),
        ];
        let recs = records(
            r#"[
            {"doctype":"Property Setter","name":"Note-title-length","doc_type":"Note","field_name":"title","doctype_or_field":"DocField","property":"length","property_type":"Int","value":"200"},
            {"doctype":"Property Setter","name":"Note-title-unique","doc_type":"Note","field_name":"title","doctype_or_field":"DocField","property":"unique","property_type":"Check","value":"1"},
            {"doctype":"Property Setter","name":"Note-n-default","doc_type":"Note","field_name":"n","doctype_or_field":"DocField","property":"default","property_type":"Text","value":"5"},
            {"doctype":"Property Setter","name":"Note-title-label","doc_type":"Note","field_name":"title","doctype_or_field":"DocField","property":"label","property_type":"Data","value":"Heading"},
            {"doctype":"Property Setter","name":"Note-track","doc_type":"Note","doctype_or_field":"DocType","property":"track_seen","property_type":"Check","value":"1"},
            {"doctype":"Property Setter","name":"Note-gone","doc_type":"Note","field_name":"gone","doctype_or_field":"DocField","property":"length","property_type":"Int","value":"9"}
        ]"#,
        );
        apply_layers(&mut dts, recs).unwrap();
        let dt = &dts[0];
        assert_eq!(dt.fields[0].length, Some(200));
        assert!(dt.fields[0].unique);
        assert_eq!(
            dt.fields[0].layers.len(),
            2,
            "label is not a schema property"
        );
        assert_eq!(dt.fields[1].default.as_deref(), Some("5"));
        assert!(dt.track_seen);
        assert_eq!(dt.load_warnings.len(), 1);
        assert_eq!(
            dt.load_warnings[0].code,
            WarningCode::PropertySetterMissingField
        );
    }

    #[test]
    fn a_layer_for_a_missing_doctype_is_an_error_naming_file_and_record() {
        let mut dts = vec![DocType::new("Note")];
        let recs = records(
            r#"[{"doctype":"Custom Field","name":"Task-x","dt":"Task","fieldname":"x","fieldtype":"Data"}]"#,
        );
        let e = apply_layers(&mut dts, recs).unwrap_err().to_string();
        assert!(e.contains("fx.json"), "{e}");
        assert!(e.contains("\"Task-x\"") && e.contains("\"Task\""), "{e}");
    }
}
