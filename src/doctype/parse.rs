//! Reading DocType JSON (Frappe and SODAF dialects) into the model.
//!
//! The JSON is parsed to a [`serde_json::Value`] and walked by hand rather
//! than deserialised with serde derive, so that every error can name the
//! origin (file), the DocType and the field, and so that both dialects and
//! Frappe's loose typing (flags as `0`/`1`, `"1"`, `true`; lengths as `""`)
//! are accepted in one place.
//!
//! Parsing checks shape and types only. Names, duplicates and collisions are
//! checked by [`super::validate`]; [`load_paths`] does both.
//!
//! | Meaning          | Frappe          | SODAF                          |
//! |------------------|-----------------|--------------------------------|
//! | mandatory        | `reqd: 1`       | `required: true`               |
//! | single-col index | `search_index`  | `indexed`                      |
//! | composite index  | (none)          | DocType-level `indexes`        |
//!
//! Properties the engine does not use (labels, permissions, ...) are ignored.

// `Error` is large because its `Sql`/`Open` variants hold a `rusqlite::Error`
// inline; that is a crate-wide choice in `error.rs`, not something this
// module can fix (see the branch notes).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::fieldtype::FieldType;
use super::layer::{Record, apply_layers, looks_like_layer_file, records_from_value};
use super::model::{DocType, Field, IndexDef};
use super::validate::validate_set;
use crate::error::{Error, Result};

/// Parses a JSON document holding one DocType (an object) or several (an
/// array of objects). `origin` names the source in errors and is stored in
/// each DocType's `origin` (use `<string>` when there is no file).
///
/// An object with a `doctype` key must have `"doctype": "DocType"` (a Frappe
/// record of another type is refused). The result is not validated: call
/// [`super::validate_set`] before using it, or use [`load_paths`]. (The
/// applier validates what it is given.)
pub fn from_json_str(json: &str, origin: &str) -> Result<Vec<DocType>> {
    let value: Value = serde_json::from_str(json).map_err(|source| Error::Json {
        origin: origin.to_string(),
        source,
    })?;
    doctypes_from_value(&value, origin)
}

/// Loads DocTypes from a file, or from every DocType JSON file under a
/// directory, with the customization layers (Custom Field and Property
/// Setter fixtures) found there merged onto them.
///
/// A directory is walked recursively in sorted order (so the result is
/// deterministic), following symbolic links but visiting each directory
/// once. Only `*.json` files whose top level looks like a DocType are read
/// as DocTypes (an object with `"doctype": "DocType"`; an object without a
/// `doctype` key that has a string `name` and an array `fields`, as SODAF
/// writes them; or an array holding such objects); files holding Custom
/// Field or Property Setter records are read as layers; other JSON
/// (records of other types, `package.json`) is skipped. A `.json` file that
/// is not valid JSON is an error, since it may have been meant as a
/// DocType. A path given directly as a file is always parsed. A layer aimed
/// at a DocType that is not loaded is an error. Not validated; see
/// [`load_paths`].
pub fn load_path(path: &Path) -> Result<Vec<DocType>> {
    let mut input = Input::default();
    read_path(path, &mut input)?;
    input.merge()
}

/// Loads every path with [`load_path`], in the order given, merges every
/// layer onto its DocType (a fixture may sit in one path and its DocType in
/// another), and validates the whole set with [`super::validate_set`]
/// (names, fields, and two DocTypes claiming one table).
///
/// What real apps ship and Frappe accepts (a fieldname twice, `"length":
/// 0`, a `"False"` Check default, ...) loads; each DocType's
/// [`DocType::warnings`] says what was accepted and how.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<DocType>> {
    let mut input = Input::default();
    for path in paths {
        read_path(path, &mut input)?;
    }
    let out = input.merge()?;
    validate_set(&out)?;
    Ok(out)
}

/// The files [`load_paths`] reads for `paths`, in the order it reads them:
/// a path given as a file, and every `*.json` file under a directory.
pub(crate) fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| io_error(path, source))?;
        if meta.is_dir() {
            let mut seen = HashSet::new();
            collect_json_files(path, &mut files, &mut seen)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// DocTypes and layer records read so far.
#[derive(Default)]
struct Input {
    doctypes: Vec<DocType>,
    layers: Vec<Record>,
}

impl Input {
    fn merge(mut self) -> Result<Vec<DocType>> {
        apply_layers(&mut self.doctypes, self.layers)?;
        Ok(self.doctypes)
    }
}

fn read_path(path: &Path, input: &mut Input) -> Result<()> {
    let meta = fs::metadata(path).map_err(|source| io_error(path, source))?;
    if !meta.is_dir() {
        return read_file(path, input, true);
    }
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    collect_json_files(path, &mut files, &mut seen)?;
    for file in files {
        read_file(&file, input, false)?;
    }
    Ok(())
}

/// Reads one file into `input`: layers if it holds Custom Field or Property
/// Setter records, DocTypes if it looks like DocType JSON (or always, when
/// `always` is set because the file was named directly).
fn read_file(path: &Path, input: &mut Input, always: bool) -> Result<()> {
    let text = fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    let origin = path.display().to_string();
    let value: Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        origin: origin.clone(),
        source,
    })?;
    if looks_like_layer_file(&value) {
        input.layers.extend(records_from_value(&value, &origin)?);
    } else if always || looks_like_doctype_file(&value) {
        input.doctypes.extend(doctypes_from_value(&value, &origin)?);
    }
    Ok(())
}

/// Whether a JSON value is DocType content as far as a directory walk is
/// concerned: an object with `"doctype": "DocType"`, an object without a
/// `doctype` key that has a string `name` and an array `fields` (SODAF), or
/// an array with at least one such object (its other items must then be
/// DocTypes too, or parsing fails, rather than silently dropping a typo).
fn looks_like_doctype_file(value: &Value) -> bool {
    match value {
        Value::Object(obj) => looks_like_doctype(obj),
        Value::Array(items) => items
            .iter()
            .any(|v| v.as_object().is_some_and(looks_like_doctype)),
        _ => false,
    }
}

fn looks_like_doctype(obj: &Map<String, Value>) -> bool {
    match obj.get("doctype") {
        Some(d) => d.as_str() == Some("DocType"),
        None => {
            obj.get("name").is_some_and(Value::is_string)
                && obj.get("fields").is_some_and(Value::is_array)
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends the `*.json` files under `dir` to `files`, depth first, entries
/// sorted by name. `seen` holds canonical directories already visited, so a
/// symlink loop is walked once.
fn collect_json_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
) -> Result<()> {
    let canonical = fs::canonicalize(dir).map_err(|e| io_error(dir, e))?;
    if !seen.insert(canonical) {
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        entries.push(entry.map_err(|e| io_error(dir, e))?.path());
    }
    entries.sort();
    for path in entries {
        let meta = fs::metadata(&path).map_err(|e| io_error(&path, e))?;
        if meta.is_dir() {
            collect_json_files(&path, files, seen)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}

fn doctypes_from_value(value: &Value, origin: &str) -> Result<Vec<DocType>> {
    let top = Ctx::new(origin);
    match value {
        Value::Object(obj) => Ok(vec![doctype_from_object(obj, origin)?]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(obj) => doctype_from_object(obj, origin),
                other => Err(top.err(format!(
                    "item {i} of the top-level array is {}; expected a DocType object",
                    kind(other)
                ))),
            })
            .collect(),
        other => Err(top.err(format!(
            "top level is {}; expected a DocType object or an array of them",
            kind(other)
        ))),
    }
}

/// Where a property is being read, for error messages.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    origin: &'a str,
    doctype: &'a str,
    field: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    fn new(origin: &'a str) -> Self {
        Ctx {
            origin,
            doctype: "",
            field: None,
        }
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::InvalidDocType {
            origin: self.origin.to_string(),
            doctype: self.doctype.to_string(),
            field: self.field.map(str::to_string),
            message: message.into(),
        }
    }
}

fn doctype_from_object(obj: &Map<String, Value>, origin: &str) -> Result<DocType> {
    let mut ctx = Ctx::new(origin);
    check_doctype_key(obj, &ctx)?;
    let name = opt_string(obj, "name", &ctx)?
        .ok_or_else(|| ctx.err("missing \"name\" (the DocType name)"))?;
    ctx.doctype = &name;
    let mut dt = DocType::new(name.clone());
    dt.origin = origin.to_string();
    dt.module = non_empty(opt_string(obj, "module", &ctx)?);
    dt.istable = flag(obj, "istable", &ctx)?;
    dt.issingle = flag(obj, "issingle", &ctx)?;
    dt.is_virtual = flag(obj, "is_virtual", &ctx)?;
    dt.autoname = non_empty(opt_string(obj, "autoname", &ctx)?);
    dt.track_seen = flag(obj, "track_seen", &ctx)?;
    dt.fields = fields(obj, &ctx)?;
    dt.indexes = indexes(obj, &ctx)?;
    Ok(dt)
}

fn check_doctype_key(obj: &Map<String, Value>, ctx: &Ctx) -> Result<()> {
    match obj.get("doctype") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == "DocType" => Ok(()),
        Some(other) => Err(ctx.err(format!(
            "\"doctype\" is {}; a DocType definition has \"doctype\": \"DocType\" (this looks like a record of another type)",
            short(other)
        ))),
    }
}

fn fields(obj: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<Field>> {
    let items = match obj.get("fields") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ctx.err(format!(
                "\"fields\" is {}; expected an array of field objects",
                kind(other)
            )));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(field) = field_from_value(item, i, ctx)? {
            out.push(field);
        }
    }
    Ok(out)
}

/// Parses `fields[i]`. Returns `None` for a layout field (no column) without
/// a fieldname, which carries nothing the engine needs.
fn field_from_value(item: &Value, i: usize, dt_ctx: &Ctx) -> Result<Option<Field>> {
    let position = format!("fields[{i}]");
    let ctx = Ctx {
        field: Some(&position),
        ..*dt_ctx
    };
    let Value::Object(obj) = item else {
        return Err(ctx.err(format!("is {}; expected a field object", kind(item))));
    };
    let fieldname = non_empty(opt_string(obj, "fieldname", &ctx)?);
    let label = fieldname.clone().unwrap_or_else(|| position.clone());
    let ctx = Ctx {
        field: Some(&label),
        ..ctx
    };
    let fieldtype = fieldtype(obj, &ctx)?;
    let Some(fieldname) = fieldname else {
        if fieldtype.has_column() {
            return Err(ctx.err(format!(
                "missing \"fieldname\" on a {fieldtype} field (it needs a column)"
            )));
        }
        return Ok(None);
    };
    let mut field = Field::new(fieldname.clone(), fieldtype);
    field_properties(&mut field, obj, &ctx)?;
    Ok(Some(field))
}

fn field_properties(field: &mut Field, obj: &Map<String, Value>, ctx: &Ctx) -> Result<()> {
    field.reqd = aliased_flag(obj, "reqd", "required", ctx)?;
    field.not_nullable = flag(obj, "not_nullable", ctx)?;
    field.unique = flag(obj, "unique", ctx)?;
    field.search_index = aliased_flag(obj, "search_index", "indexed", ctx)?;
    field.default = default_value(obj, ctx)?;
    // Frappe writes `"length": 0` for "not set" (167 releases of real apps
    // do); it means the default length, as in Frappe's own schema code.
    field.length = size(obj, "length", ctx)?.filter(|&n| n != 0);
    field.precision = size(obj, "precision", ctx)?;
    field.options = non_empty(opt_string(obj, "options", ctx)?);
    field.is_virtual = flag(obj, "is_virtual", ctx)?;
    field.renamed_from = non_empty(opt_string(obj, "renamed_from", ctx)?);
    Ok(())
}

fn fieldtype(obj: &Map<String, Value>, ctx: &Ctx) -> Result<FieldType> {
    let name =
        opt_string(obj, "fieldtype", ctx)?.ok_or_else(|| ctx.err("missing \"fieldtype\""))?;
    name.parse::<FieldType>()
        .map_err(|e| ctx.err(e.to_string()))
}

/// DocType-level `indexes` (SODAF): a list of `{"name"?, "fields"|"columns",
/// "unique"?}` objects, of arrays of fieldnames, or of single fieldnames.
fn indexes(obj: &Map<String, Value>, ctx: &Ctx) -> Result<Vec<IndexDef>> {
    let items = match obj.get("indexes") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ctx.err(format!("\"indexes\" is {}; expected an array", kind(other))));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| index_from_value(item, &format!("indexes[{i}]"), ctx))
        .collect()
}

fn index_from_value(item: &Value, at: &str, ctx: &Ctx) -> Result<IndexDef> {
    match item {
        Value::String(_) => Ok(IndexDef {
            name: None,
            fields: vec![index_column(item, at, ctx)?],
            unique: false,
        }),
        Value::Array(cols) => Ok(IndexDef {
            name: None,
            fields: index_columns(cols, at, ctx)?,
            unique: false,
        }),
        Value::Object(obj) => index_from_object(obj, at, ctx),
        other => Err(ctx.err(format!(
            "{at} is {}; expected an index object, an array of fieldnames or a fieldname",
            kind(other)
        ))),
    }
}

fn index_from_object(obj: &Map<String, Value>, at: &str, ctx: &Ctx) -> Result<IndexDef> {
    let cols = match (obj.get("fields"), obj.get("columns")) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(format!(
                "{at} has both \"fields\" and \"columns\"; give one"
            )));
        }
        (Some(Value::Array(cols)), None) | (None, Some(Value::Array(cols))) => cols,
        (None, None) => return Err(ctx.err(format!("{at} has no \"fields\" (or \"columns\")"))),
        (Some(other), None) | (None, Some(other)) => {
            return Err(ctx.err(format!(
                "{at}: the column list is {}; expected an array of fieldnames",
                kind(other)
            )));
        }
    };
    let name = non_empty(opt_string(obj, "name", ctx).map_err(|e| prefix(e, at))?);
    let unique = flag(obj, "unique", ctx).map_err(|e| prefix(e, at))?;
    Ok(IndexDef {
        name,
        fields: index_columns(cols, at, ctx)?,
        unique,
    })
}

fn index_columns(cols: &[Value], at: &str, ctx: &Ctx) -> Result<Vec<String>> {
    cols.iter().map(|c| index_column(c, at, ctx)).collect()
}

fn index_column(col: &Value, at: &str, ctx: &Ctx) -> Result<String> {
    match col {
        Value::String(s) => no_nul(s, &format!("{at} column"), ctx).map(|()| s.clone()),
        other => Err(ctx.err(format!(
            "{at}: column {} is not a fieldname string",
            short(other)
        ))),
    }
}

/// Adds the index position to an error message built by a generic reader.
fn prefix(err: Error, at: &str) -> Error {
    match err {
        Error::InvalidDocType {
            origin,
            doctype,
            field,
            message,
        } => Error::InvalidDocType {
            origin,
            doctype,
            field,
            message: format!("{at}: {message}"),
        },
        other => other,
    }
}

/// Reads a Custom Field record's field properties, as a DocType field's.
/// `label` names the record in errors.
pub(super) fn field_from_record(
    obj: &Map<String, Value>,
    origin: &str,
    doctype: &str,
    label: &str,
) -> Result<Field> {
    let ctx = Ctx {
        origin,
        doctype,
        field: Some(label),
    };
    let fieldtype = fieldtype(obj, &ctx)?;
    let fieldname = non_empty(opt_string(obj, "fieldname", &ctx)?)
        .ok_or_else(|| ctx.err("missing \"fieldname\""))?;
    let mut field = Field::new(fieldname, fieldtype);
    field_properties(&mut field, obj, &ctx)?;
    Ok(field)
}

/// A string property of a layer record (see [`opt_string`]).
pub(super) fn record_string(
    obj: &Map<String, Value>,
    key: &str,
    origin: &str,
    doctype: &str,
    label: &str,
) -> Result<Option<String>> {
    let ctx = Ctx {
        origin,
        doctype,
        field: Some(label),
    };
    opt_string(obj, key, &ctx)
}

/// The error for a bad layer record.
pub(super) fn record_error(
    origin: &str,
    doctype: &str,
    label: Option<&str>,
    message: impl Into<String>,
) -> Error {
    Ctx {
        origin,
        doctype,
        field: label,
    }
    .err(message)
}

/// A string property; `null` or absent is `None`. NUL bytes are refused.
fn opt_string(obj: &Map<String, Value>, key: &str, ctx: &Ctx) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            no_nul(s, &format!("\"{key}\""), ctx)?;
            Ok(Some(s.clone()))
        }
        Some(other) => Err(ctx.err(format!("\"{key}\" is {}; expected a string", short(other)))),
    }
}

fn no_nul(s: &str, what: &str, ctx: &Ctx) -> Result<()> {
    if s.contains('\0') {
        return Err(ctx.err(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// A flag: `0`/`1`, `true`/`false` or `"0"`/`"1"`; absent or `null` is false.
fn flag(obj: &Map<String, Value>, key: &str, ctx: &Ctx) -> Result<bool> {
    Ok(opt_flag(obj, key, ctx)?.unwrap_or(false))
}

fn opt_flag(obj: &Map<String, Value>, key: &str, ctx: &Ctx) -> Result<Option<bool>> {
    let value = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) if s == "0" => Some(false),
        Value::String(s) if s == "1" => Some(true),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        ctx.err(format!(
            "\"{key}\" is {}; expected 0/1, true/false or \"0\"/\"1\"",
            short(value)
        ))
    })
}

/// A flag with a SODAF alias (`reqd`/`required`, `search_index`/`indexed`).
/// Both may be given only if they agree.
fn aliased_flag(obj: &Map<String, Value>, key: &str, alias: &str, ctx: &Ctx) -> Result<bool> {
    match (opt_flag(obj, key, ctx)?, opt_flag(obj, alias, ctx)?) {
        (Some(a), Some(b)) if a != b => Err(ctx.err(format!(
            "\"{key}\" and \"{alias}\" disagree ({a} vs {b}); give one"
        ))),
        (a, b) => Ok(a.or(b).unwrap_or(false)),
    }
}

/// `length`/`precision`: a non-negative integer or numeric string; `null`
/// and `""` mean none.
fn size(obj: &Map<String, Value>, key: &str, ctx: &Ctx) -> Result<Option<u32>> {
    let value = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(v) => v,
    };
    let parsed = match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse::<u32>().ok(),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        ctx.err(format!(
            "\"{key}\" is {}; expected a non-negative integer",
            short(value)
        ))
    })
}

/// `default`: a string, number or boolean (`"1"`/`"0"`); `null` and `""`
/// mean none.
fn default_value(obj: &Map<String, Value>, ctx: &Ctx) -> Result<Option<String>> {
    match obj.get("default") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            no_nul(s, "\"default\"", ctx)?;
            Ok(non_empty(Some(s.clone())))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(if *b { "1" } else { "0" }.to_string())),
        Some(other) => Err(ctx.err(format!(
            "\"default\" is {}; expected a string, number or boolean",
            kind(other)
        ))),
    }
}

/// The JSON type of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A scalar's JSON text (cut short), or the kind of a container, for messages.
fn short(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) => kind(value).to_string(),
        scalar => {
            let text = scalar.to_string();
            if text.chars().count() > 60 {
                let cut: String = text.chars().take(60).collect();
                format!("{cut}...")
            } else {
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> DocType {
        let mut dts = from_json_str(json, "<string>").unwrap();
        assert_eq!(dts.len(), 1);
        dts.remove(0)
    }

    fn message(json: &str) -> String {
        match from_json_str(json, "<t>") {
            Err(e @ Error::InvalidDocType { .. }) => e.to_string(),
            other => panic!("expected InvalidDocType, got {other:?}"),
        }
    }

    #[test]
    fn flags_accept_ints_bools_and_digit_strings() {
        let dt = one(r#"{"name":"T","istable":"1","track_seen":true,"fields":[
                {"fieldname":"a","fieldtype":"Data","reqd":1,"unique":"0","search_index":true},
                {"fieldname":"b","fieldtype":"Int","required":true,"indexed":1,"not_nullable":false}]}"#);
        assert!(dt.istable && dt.track_seen && !dt.issingle);
        let (a, b) = (&dt.fields[0], &dt.fields[1]);
        assert!(a.reqd && !a.unique && a.search_index);
        assert!(b.reqd && b.search_index && !b.not_nullable);
        assert_eq!(dt.origin, "<string>");
    }

    #[test]
    fn bad_flags_name_the_property() {
        let m = message(r#"{"name":"T","fields":[{"fieldname":"a","fieldtype":"Data","reqd":2}]}"#);
        assert!(m.contains("\"reqd\" is 2"), "{m}");
        assert!(m.contains("field \"a\""), "{m}");
        let m = message(r#"{"name":"T","issingle":"true"}"#);
        assert!(m.contains("\"issingle\""), "{m}");
        let m = message(
            r#"{"name":"T","fields":[{"fieldname":"a","fieldtype":"Data","reqd":1,"required":false}]}"#,
        );
        assert!(m.contains("disagree"), "{m}");
    }

    #[test]
    fn length_precision_and_default_are_normalised() {
        let dt = one(r#"{"name":"T","fields":[
                {"fieldname":"a","fieldtype":"Data","length":"20","precision":"","default":""},
                {"fieldname":"b","fieldtype":"Float","length":null,"precision":3,"default":1.5},
                {"fieldname":"c","fieldtype":"Check","default":true},
                {"fieldname":"d","fieldtype":"Int","default":-7},
                {"fieldname":"e","fieldtype":"Data","length":0,"options":"","default":null}]}"#);
        let f = &dt.fields;
        assert_eq!(
            (f[0].length, f[0].precision, f[0].default.as_deref()),
            (Some(20), None, None)
        );
        assert_eq!(
            (f[1].length, f[1].precision, f[1].default.as_deref()),
            (None, Some(3), Some("1.5"))
        );
        assert_eq!(f[2].default.as_deref(), Some("1"));
        assert_eq!(f[3].default.as_deref(), Some("-7"));
        assert_eq!(
            (
                f[4].length,
                f[4].options.as_deref(),
                f[4].default.as_deref()
            ),
            (None, None, None),
            "falsy means unset"
        );
        for bad in [
            r#""length":-1"#,
            r#""length":"ten""#,
            r#""precision":2.5"#,
            r#""default":[1]"#,
        ] {
            let json = format!(
                r#"{{"name":"T","fields":[{{"fieldname":"a","fieldtype":"Data",{bad}}}]}}"#
            );
            let m = message(&json);
            assert!(m.contains("field \"a\""), "{m}");
        }
    }

    #[test]
    fn layout_fields_without_fieldname_are_dropped_columns_are_not() {
        let dt = one(
            r#"{"name":"T","fields":[{"fieldtype":"Section Break"},{"fieldname":"sb","fieldtype":"Column Break"},
                {"fieldname":"a","fieldtype":"Data"}]}"#,
        );
        let names: Vec<_> = dt.fields.iter().map(|f| f.fieldname.as_str()).collect();
        assert_eq!(names, ["sb", "a"]);
        let m = message(r#"{"name":"T","fields":[{"fieldtype":"Data"}]}"#);
        assert!(
            m.contains("fields[0]") && m.contains("missing \"fieldname\""),
            "{m}"
        );
    }

    #[test]
    fn indexes_accept_three_shapes() {
        let dt = one(
            r#"{"name":"T","indexes":[{"name":"ix_ab","fields":["a","b"],"unique":true},
                {"columns":["b"]},["a","b"],"a"]}"#,
        );
        let ix = &dt.indexes;
        assert_eq!(ix.len(), 4);
        assert_eq!(ix[0].name.as_deref(), Some("ix_ab"));
        assert!(ix[0].unique);
        assert_eq!(ix[1].fields, ["b"]);
        assert_eq!(ix[2].fields, ["a", "b"]);
        assert_eq!(ix[3].fields, ["a"]);
        let m = message(r#"{"name":"T","indexes":[{"fields":["a"],"columns":["a"]}]}"#);
        assert!(m.contains("indexes[0]"), "{m}");
        let m = message(r#"{"name":"T","indexes":[{"fields":["a"],"unique":"yes"}]}"#);
        assert!(m.contains("indexes[0]") && m.contains("\"unique\""), "{m}");
        let m = message(r#"{"name":"T","indexes":[[1]]}"#);
        assert!(m.contains("indexes[0]"), "{m}");
    }

    #[test]
    fn records_of_other_doctypes_and_wrong_shapes_are_refused() {
        assert!(message(r#"{"doctype":"User","name":"admin"}"#).contains("\"User\""));
        assert!(message("42").contains("top level is a number"));
        assert!(message(r#"[{"name":"A"}, 3]"#).contains("item 1"));
        assert!(message(r#"{"fields":[]}"#).contains("missing \"name\""));
        let m = message(r#"{"name":"T","fields":[{"fieldname":"a","fieldtype":"Varchar"}]}"#);
        assert!(m.contains("Varchar") && m.contains("field \"a\""), "{m}");
    }

    #[test]
    fn nul_bytes_are_refused() {
        for json in [
            r#"{"name":"T\u0000"}"#,
            r#"{"name":"T","fields":[{"fieldname":"a\u0000","fieldtype":"Data"}]}"#,
            r#"{"name":"T","fields":[{"fieldname":"a","fieldtype":"Data","default":"x\u0000"}]}"#,
            r#"{"name":"T","fields":[{"fieldname":"a","fieldtype":"Link","options":"x\u0000"}]}"#,
            r#"{"name":"T","indexes":["a\u0000"]}"#,
        ] {
            assert!(message(json).contains("NUL"), "{json}");
        }
    }

    #[test]
    fn doctype_file_detection() {
        let yes = [
            r#"{"doctype":"DocType","name":"A"}"#,
            r#"{"name":"A","fields":[]}"#,
            r#"[{"name":"A","fields":[]}]"#,
        ];
        let no = [
            r#"{"doctype":"Custom Field","name":"A","fields":[]}"#,
            r#"{"name":"pkg","version":"1.0.0"}"#,
            r#"[{"doctype":"Role","name":"x"}]"#,
            r#"[]"#,
            r#""DocType""#,
        ];
        for j in yes {
            assert!(
                looks_like_doctype_file(&serde_json::from_str(j).unwrap()),
                "{j}"
            );
        }
        for j in no {
            assert!(
                !looks_like_doctype_file(&serde_json::from_str(j).unwrap()),
                "{j}"
            );
        }
    }
}
