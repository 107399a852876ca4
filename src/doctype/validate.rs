//! Validation of DocTypes before anything touches the database: identifiers
//! (invariant "No injection"), duplicate and colliding names, index definitions, rename
//! hints, lengths and numeric defaults, and DocTypes that claim the same
//! table.
//!
//! [`conflicts`] reports every problem (for validation findings);
//! [`validate_set`] and [`validate_doctype`] stop at the first one and return
//! it as [`Error::InvalidDocType`].
//!
//! SQLite compares identifiers case-insensitively (ASCII), so names that
//! differ only in case are treated as the same column, table or index.

// `Error` is large because its `Sql`/`Open` variants hold a `rusqlite::Error`
// inline; that is a crate-wide choice in `error.rs`, not something this
// module can fix (see the branch notes).

use std::collections::HashMap;
use std::fmt;

use super::model::{DocType, Field, IndexDef};
use super::quirks::{ColumnSource, table_columns};
use super::standard::{StandardColumn, standard_columns};
use crate::error::{Error, Result};
use crate::ident;

/// DocType names whose table the engine itself uses (`tab` + name).
pub const RESERVED_DOCTYPE_NAMES: [&str; 1] = ["MigrationHistory"];

/// Longest accepted `length` of a field.
pub const MAX_LENGTH: u32 = 65535;

/// Longest accepted `default`, in bytes.
pub const MAX_DEFAULT_BYTES: usize = 64 * 1024;

/// Most columns a table may have: SQLite's default `SQLITE_MAX_COLUMN`
/// (the bundled SQLite keeps it). Standard columns count.
pub const MAX_COLUMNS: usize = 2000;

/// One problem in a DocType definition or between DocTypes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conflict {
    /// Where the DocType came from (file path, `<string>`, `<code>`).
    pub origin: String,
    /// The DocType concerned (as written, even when the name is the problem).
    pub doctype: String,
    /// The field concerned, when the problem is in a field.
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl Conflict {
    fn new(dt: &DocType, field: Option<&str>, message: impl Into<String>) -> Self {
        Conflict {
            origin: dt.origin.clone(),
            doctype: dt.name.clone(),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl From<Conflict> for Error {
    fn from(c: Conflict) -> Self {
        Error::InvalidDocType {
            origin: c.origin,
            doctype: c.doctype,
            field: c.field,
            message: c.message,
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: DocType {:?}", self.origin, self.doctype)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Checks one DocType; the first problem found is returned as
/// [`Error::InvalidDocType`]. Single and virtual DocTypes are checked too.
pub fn validate_doctype(dt: &DocType) -> Result<()> {
    first_error(doctype_conflicts(dt))
}

impl DocType {
    /// Checks this DocType on its own (names, field types, lengths,
    /// defaults, indexes, width); the first problem is returned as
    /// [`Error::InvalidDocType`]. A set of DocTypes is checked with
    /// [`validate_set`], which also finds problems between them.
    pub fn validate(&self) -> Result<()> {
        validate_doctype(self)
    }

    /// Every problem in this DocType on its own, in a stable order; empty
    /// when it is valid.
    pub fn conflicts(&self) -> Vec<Conflict> {
        doctype_conflicts(self)
    }
}

/// Checks a set of DocTypes: each one, plus DocTypes that share a name or a
/// table (names equal ignoring case), or index names used twice in the
/// database. The first problem is returned as [`Error::InvalidDocType`].
pub fn validate_set(dts: &[DocType]) -> Result<()> {
    first_error(conflicts(dts))
}

/// Every problem in a set of DocTypes: each DocType's own problems, in input
/// order, then the problems between DocTypes. Empty when the set is valid.
pub fn conflicts(dts: &[DocType]) -> Vec<Conflict> {
    let mut out: Vec<Conflict> = dts.iter().flat_map(doctype_conflicts).collect();
    out.extend(table_conflicts(dts));
    out.extend(index_name_conflicts(dts));
    out
}

/// Every problem in one DocType, in a stable order: the name, then each
/// field in order, then the indexes.
pub fn doctype_conflicts(dt: &DocType) -> Vec<Conflict> {
    let mut out = Vec::new();
    check_name(dt, &mut out);
    // Width first: a DocType far past SQLite's limit is refused without
    // running the per-field checks over all of it.
    if check_width(dt, &mut out) {
        return out;
    }
    let std_cols = standard_columns(dt);
    for (i, field) in dt.fields.iter().enumerate() {
        check_field(dt, field, &std_cols, &mut out);
        check_rename(dt, i, &std_cols, &mut out);
    }
    check_duplicates(dt, &mut out);
    for (i, index) in dt.indexes.iter().enumerate() {
        check_index(dt, i, index, &std_cols, &mut out);
    }
    out
}

/// A table wider than SQLite allows would fail deep in planning with a raw
/// "too many columns"; say so up front, with the numbers.
/// Returns whether the DocType is too wide.
fn check_width(dt: &DocType, out: &mut Vec<Conflict>) -> bool {
    if !dt.has_table() {
        return false;
    }
    let columns = table_columns(dt);
    let total = columns.len();
    let own = columns
        .iter()
        .filter(|c| matches!(c, ColumnSource::Field(_)))
        .count();
    if total > MAX_COLUMNS {
        out.push(Conflict::new(
            dt,
            None,
            format!(
                "table {:?} would have {total} columns ({own} fields + {} standard columns); \
                 SQLite allows at most {MAX_COLUMNS} columns per table (SQLITE_MAX_COLUMN)",
                dt.table_name(),
                total - own
            ),
        ));
        return true;
    }
    false
}

fn first_error(conflicts: Vec<Conflict>) -> Result<()> {
    match conflicts.into_iter().next() {
        Some(c) => Err(c.into()),
        None => Ok(()),
    }
}

fn check_name(dt: &DocType, out: &mut Vec<Conflict>) {
    if let Err(message) = ident::check_doctype_name(&dt.name) {
        out.push(Conflict::new(dt, None, message));
    }
    if RESERVED_DOCTYPE_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&dt.name))
    {
        out.push(Conflict::new(
            dt,
            None,
            format!(
                "table {:?} is reserved for the engine's own use",
                dt.table_name()
            ),
        ));
    }
}

/// Checks that concern a field alone (plus the standard columns).
fn check_field(dt: &DocType, field: &Field, std_cols: &[StandardColumn], out: &mut Vec<Conflict>) {
    let name = field.fieldname.as_str();
    let mut push = |message: String| out.push(Conflict::new(dt, Some(name), message));
    for (what, value) in [("default", &field.default), ("options", &field.options)] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            push(format!("{what} contains a NUL byte"));
        }
    }
    if let Some(len) = field.default.as_deref().map(str::len) {
        if len > MAX_DEFAULT_BYTES {
            push(format!(
                "default is {len} bytes; at most {MAX_DEFAULT_BYTES} are accepted (it is written \
                 into the table's CREATE statement, which SQLite parses on every open)"
            ));
        }
    }
    if name.eq_ignore_ascii_case("name") {
        push("a field may not be called \"name\": it is the primary key column".into());
        return;
    }
    if !field.has_column() {
        return;
    }
    if let Err(message) = ident::check_fieldname(name) {
        push(message);
        return;
    }
    if let Some(message) = standard_collision(field, std_cols) {
        push(message);
    }
    if let Some(message) = length_problem(field) {
        push(message);
    }
}

/// A field named like a standard column keeps the standard column (QK002
/// when stored otherwise; see [`super::quirks`]). Only a spelling that
/// differs in case is refused: Frappe would create a second column of that
/// name, which the database refuses.
fn standard_collision(field: &Field, std_cols: &[StandardColumn]) -> Option<String> {
    let col = std_cols
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(&field.fieldname))?;
    if col.name == field.fieldname {
        return None;
    }
    Some(format!(
        "collides with standard column {:?}: column names are case-insensitive, so a field may \
         reuse it only spelled exactly {:?}",
        col.name, col.name
    ))
}

fn length_problem(field: &Field) -> Option<String> {
    let length = field.length?;
    if length <= MAX_LENGTH {
        return None;
    }
    Some(format!(
        "length {length} is out of range 0..={MAX_LENGTH} (0 means the default length)"
    ))
}

/// Reports fields whose name equals an earlier field's but for case. The
/// same name exactly is accepted as Frappe accepts it (QK001: one column,
/// from the last definition); names that differ only in case would be two
/// columns to Frappe, which the database refuses.
fn check_duplicates(dt: &DocType, out: &mut Vec<Conflict>) {
    let mut first: HashMap<String, &str> = HashMap::new();
    for field in dt.fields.iter().filter(|f| !f.fieldname.is_empty()) {
        let key = field.fieldname.to_ascii_lowercase();
        match first.get(&key) {
            None => {
                first.insert(key, &field.fieldname);
            }
            Some(earlier) if *earlier != field.fieldname => out.push(Conflict::new(
                dt,
                Some(&field.fieldname),
                format!(
                    "fieldname {earlier:?} and fieldname {:?} differ only in case; SQLite column names are case-insensitive",
                    field.fieldname
                ),
            )),
            Some(_) => {}
        }
    }
}

/// Checks field `i`'s rename hint (`renamed_from`). Ignored on fields
/// without a column.
fn check_rename(dt: &DocType, i: usize, std_cols: &[StandardColumn], out: &mut Vec<Conflict>) {
    let field = &dt.fields[i];
    let Some(old) = field.renamed_from.as_deref() else {
        return;
    };
    if !field.has_column() {
        return;
    }
    if let Some(message) = rename_problem(dt, i, old, std_cols) {
        out.push(Conflict::new(dt, Some(&field.fieldname), message));
    }
}

fn rename_problem(
    dt: &DocType,
    i: usize,
    old: &str,
    std_cols: &[StandardColumn],
) -> Option<String> {
    let field = &dt.fields[i];
    if let Err(message) = ident::check_fieldname(old) {
        return Some(format!("renamed_from: {message}"));
    }
    if old == field.fieldname {
        return Some(format!("renamed_from {old:?} is the field's own name"));
    }
    if let Some(other) = dt
        .fields
        .iter()
        .enumerate()
        .find(|(j, f)| *j != i && f.fieldname.eq_ignore_ascii_case(old))
    {
        return Some(format!(
            "renamed_from {old:?} is the name of field {:?}, which still exists",
            other.1.fieldname
        ));
    }
    if std_cols.iter().any(|c| c.name.eq_ignore_ascii_case(old)) {
        return Some(format!("renamed_from {old:?} is a standard column"));
    }
    let earlier = dt.fields[..i].iter().find(|f| {
        f.has_column()
            && f.renamed_from
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(old))
    })?;
    Some(format!(
        "renamed_from {old:?} is also claimed by field {:?}",
        earlier.fieldname
    ))
}

fn check_index(
    dt: &DocType,
    i: usize,
    index: &IndexDef,
    std_cols: &[StandardColumn],
    out: &mut Vec<Conflict>,
) {
    let at = match &index.name {
        Some(name) => format!("index {name:?}"),
        None => format!("indexes[{i}]"),
    };
    let mut push = |message: String| out.push(Conflict::new(dt, None, format!("{at}: {message}")));
    if let Some(name) = &index.name {
        if let Err(message) = ident::check_index_name(name) {
            push(message);
        }
        let twice = dt.indexes[..i]
            .iter()
            .filter_map(|ix| ix.name.as_deref())
            .any(|n| n.eq_ignore_ascii_case(name));
        if twice {
            push("index name used twice (names are compared ignoring case)".into());
        }
    }
    if index.fields.is_empty() {
        push("lists no columns".into());
    }
    for (j, column) in index.fields.iter().enumerate() {
        if let Some(message) = index_column_problem(dt, column, std_cols) {
            push(message);
        }
        if index.fields[..j]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(column))
        {
            push(format!("lists column {column:?} twice"));
        }
    }
}

/// An index column must be a column field or a standard column of the
/// DocType, spelled exactly as defined.
fn index_column_problem(dt: &DocType, column: &str, std_cols: &[StandardColumn]) -> Option<String> {
    let columns = dt
        .fields
        .iter()
        .filter(|f| f.has_column())
        .map(|f| f.fieldname.as_str())
        .chain(std_cols.iter().map(|c| c.name));
    let mut near = None;
    for name in columns {
        if name == column {
            return None;
        }
        if name.eq_ignore_ascii_case(column) {
            near = Some(name);
        }
    }
    Some(match near {
        Some(name) => format!("column {column:?} is spelled {name:?} in the DocType"),
        None => format!("column {column:?} is not a column field of this DocType"),
    })
}

/// DocTypes that share a name or a table name (ignoring case).
fn table_conflicts(dts: &[DocType]) -> Vec<Conflict> {
    let mut first: HashMap<String, &DocType> = HashMap::new();
    let mut out = Vec::new();
    for dt in dts {
        let key = dt.name.to_ascii_lowercase();
        let Some(earlier) = first.get(&key) else {
            first.insert(key, dt);
            continue;
        };
        let message = if earlier.name == dt.name {
            format!("DocType is defined twice: also in {}", earlier.origin)
        } else {
            format!(
                "maps to the same table as DocType {:?} from {} (SQLite table names are case-insensitive)",
                earlier.name, earlier.origin
            )
        };
        out.push(Conflict::new(dt, None, message));
    }
    out
}

/// Index names are global in a SQLite database: the same explicit name on
/// two DocTypes would clash.
fn index_name_conflicts(dts: &[DocType]) -> Vec<Conflict> {
    let mut first: HashMap<String, &DocType> = HashMap::new();
    let mut out = Vec::new();
    for dt in dts {
        for name in dt.indexes.iter().filter_map(|ix| ix.name.as_deref()) {
            let key = name.to_ascii_lowercase();
            match first.get(&key) {
                None => {
                    first.insert(key, dt);
                }
                Some(earlier) if !std::ptr::eq(*earlier, dt) => out.push(Conflict::new(
                    dt,
                    None,
                    format!(
                        "index {name:?}: the name is also used by DocType {:?} from {}; index names are shared by the whole database",
                        earlier.name, earlier.origin
                    ),
                )),
                Some(_) => {} // same DocType: reported by check_index
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctype::FieldType;

    fn messages(dt: &DocType) -> Vec<String> {
        doctype_conflicts(dt)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    fn only(dt: &DocType, needle: &str) {
        let m = messages(dt);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains(needle), "{m:?}");
    }

    fn data(name: &str) -> Field {
        Field::new(name, FieldType::Data)
    }

    #[test]
    fn tables_wider_than_sqlite_allows_are_refused_with_the_numbers() {
        // name..idx plus the four optional columns Frappe appends.
        let std = table_columns(&DocType::new("Wide")).len();
        assert_eq!(std, 11);
        let wide = |n: usize| {
            (0..n).fold(DocType::new("Wide"), |dt, i| {
                dt.field(data(&format!("f{i}")))
            })
        };
        assert!(messages(&wide(MAX_COLUMNS - std)).is_empty());
        only(
            &wide(MAX_COLUMNS - std + 1),
            &format!(
                "would have 2001 columns ({} fields + {std} standard columns); SQLite allows at most 2000",
                2001 - std
            ),
        );
        // Fields without a column do not count.
        let breaks = (0..3000).fold(wide(10), |dt, i| {
            dt.field(Field::new(format!("sb{i}"), FieldType::SectionBreak))
        });
        assert!(messages(&breaks).is_empty());
    }

    #[test]
    fn a_plain_doctype_is_valid() {
        let dt = DocType::new("Sales Order")
            .field(data("customer").indexed())
            .field(Field::new("qty", FieldType::Int).default_value("1"))
            .field(Field::new("rate", FieldType::Currency).default_value("2.5"))
            .field(Field::new("posting_date", FieldType::Date).default_value("Today"))
            .field(
                Field::new("items", FieldType::Table)
                    .options("Sales Order Item")
                    .unique(),
            );
        assert_eq!(messages(&dt), Vec::<String>::new());
        assert!(validate_doctype(&dt).is_ok());
    }

    #[test]
    fn standard_column_reuse_needs_the_same_spelling() {
        let ok = DocType::new("T").field(Field::new("idx", FieldType::Int));
        assert!(validate_doctype(&ok).is_ok());
        // Another storage is accepted (QK002: the standard column is kept).
        assert!(validate_doctype(&DocType::new("T").field(data("idx"))).is_ok());
        only(
            &DocType::new("T").field(Field::new("IDX", FieldType::Int)),
            "collides",
        );
        only(&DocType::new("T").field(data("Name")), "primary key");
        // parent is a standard column only in child tables.
        assert!(
            validate_doctype(&DocType::new("T").field(Field::new("parent", FieldType::Int)))
                .is_ok()
        );
        only(
            &DocType::new("T")
                .child_table()
                .field(Field::new("Parent", FieldType::Data)),
            "collides",
        );
    }

    #[test]
    fn numeric_defaults_are_accepted_as_frappe_casts_them_nul_is_not() {
        for d in ["1.5", "inf", "Yes", "eval:1"] {
            let dt = DocType::new("T").field(Field::new("a", FieldType::Check).default_value(d));
            assert!(validate_doctype(&dt).is_ok(), "{d}");
        }
        only(
            &DocType::new("T").field(data("a").default_value("x\0")),
            "NUL",
        );
        only(
            &DocType::new("T").field(Field::new("t", FieldType::Table).options("\0")),
            "NUL",
        );
    }

    #[test]
    fn length_is_bounded() {
        let mut f = data("a");
        f.length = Some(65536);
        only(&DocType::new("T").field(f.clone()), "out of range");
        f.length = Some(65535);
        assert!(validate_doctype(&DocType::new("T").field(f)).is_ok());
    }

    #[test]
    fn exact_duplicates_are_accepted_case_only_ones_are_not() {
        let dt = DocType::new("T")
            .field(data("a"))
            .field(data("a"))
            .field(data("A"));
        let m = messages(&dt);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("\"a\" and fieldname \"A\" differ only in case"));
    }

    #[test]
    fn layout_fields_are_not_identifier_checked_but_name_is_refused() {
        let dt = DocType::new("T").field(Field::new("sb 1", FieldType::SectionBreak));
        assert!(validate_doctype(&dt).is_ok());
        only(
            &DocType::new("T").field(Field::new("name", FieldType::Table)),
            "primary key",
        );
        let mut virt = data("x\"y");
        virt.is_virtual = true;
        assert!(validate_doctype(&DocType::new("T").field(virt)).is_ok());
    }

    #[test]
    fn rename_hints_are_checked() {
        let dt = |fields: Vec<Field>| fields.into_iter().fold(DocType::new("T"), DocType::field);
        assert!(validate_doctype(&dt(vec![data("b").renamed_from("a")])).is_ok());
        assert!(
            validate_doctype(&dt(vec![data("b").renamed_from("B")])).is_ok(),
            "case-only rename"
        );
        only(&dt(vec![data("b").renamed_from("b")]), "own name");
        only(&dt(vec![data("b").renamed_from("a;")]), "renamed_from");
        only(
            &dt(vec![data("a"), data("b").renamed_from("A")]),
            "still exists",
        );
        only(
            &dt(vec![data("b").renamed_from("owner")]),
            "standard column",
        );
        only(
            &dt(vec![
                data("b").renamed_from("a"),
                data("c").renamed_from("a"),
            ]),
            "also claimed by field \"b\"",
        );
    }

    #[test]
    fn indexes_are_checked() {
        let ix = |name: Option<&str>, fields: &[&str]| IndexDef {
            name: name.map(str::to_string),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            unique: false,
        };
        let mut dt = DocType::new("T")
            .field(data("a"))
            .field(Field::new("t", FieldType::Table));
        dt.indexes = vec![ix(Some("ix_a"), &["a", "modified"]), ix(None, &["a"])];
        assert_eq!(messages(&dt), Vec::<String>::new());
        for (bad, needle) in [
            (ix(None, &[]), "no columns"),
            (ix(None, &["b"]), "not a column field"),
            (ix(None, &["t"]), "not a column field"),
            (ix(None, &["A"]), "spelled \"a\""),
            (ix(None, &["a", "a"]), "twice"),
            (ix(Some("1x"), &["a"]), "index name"),
            (ix(Some("IX_A"), &["a"]), "used twice"),
        ] {
            let mut d = dt.clone();
            d.indexes.push(bad);
            only(&d, needle);
        }
    }

    #[test]
    fn set_conflicts_name_both_origins() {
        let mut a = DocType::new("Sales Order");
        a.origin = "a.json".into();
        let mut b = DocType::new("sales order");
        b.origin = "b.json".into();
        let c = conflicts(&[a.clone(), b]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].origin, "b.json");
        assert!(c[0].message.contains("a.json") && c[0].message.contains("same table"));
        assert!(validate_set(&[a.clone(), a.clone()]).is_err());
        assert!(validate_set(&[a]).is_ok());
        assert!(validate_set(&[DocType::new("migrationhistory")]).is_err());
    }

    #[test]
    fn index_names_are_global() {
        let ix = IndexDef {
            name: Some("ix".into()),
            fields: vec!["a".into()],
            unique: false,
        };
        let mut a = DocType::new("A").field(data("a"));
        a.indexes = vec![ix.clone()];
        let mut b = DocType::new("B").field(data("a"));
        b.indexes = vec![ix];
        let c = conflicts(&[a, b]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].doctype, "B");
    }
}
