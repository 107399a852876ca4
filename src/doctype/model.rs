//! The DocType model: what the engine reads from DocType JSON.

use serde::{Deserialize, Serialize};

use super::fieldtype::FieldType;
use super::layer::Layer;
use super::quirks::quirk_warnings;
use super::warning::Warning;

/// A document type: the definition of one kind of document and its fields.
///
/// Only the schema-relevant properties of a Frappe DocType are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocType {
    /// The DocType name, e.g. `Sales Order`. The table is `tab` + name.
    pub name: String,
    /// The module it belongs to (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// A child table (rows belong to a parent document): adds `parent`,
    /// `parentfield` and `parenttype` columns.
    #[serde(default)]
    pub istable: bool,
    /// A single DocType keeps its values elsewhere and gets no table.
    #[serde(default)]
    pub issingle: bool,
    /// A virtual DocType is not stored and gets no table.
    #[serde(default)]
    pub is_virtual: bool,
    /// The naming rule; `autoincrement` makes `name` an INTEGER PRIMARY KEY AUTOINCREMENT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoname: Option<String>,
    /// Adds the `_seen` column.
    #[serde(default)]
    pub track_seen: bool,
    /// The fields, in order.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// DocType-level indexes (SODAF dialect).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// Where this DocType was loaded from: a file path, `<string>` or `<code>`.
    #[serde(skip)]
    pub origin: String,
    /// The Property Setters that changed DocType-level properties, in the
    /// order applied.
    #[serde(skip)]
    pub layers: Vec<Layer>,
    /// What loading noted about this DocType (a Property Setter skipped, ...);
    /// see [`DocType::warnings`] for all of its warnings.
    #[serde(skip)]
    pub load_warnings: Vec<Warning>,
}

/// One field of a DocType.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The column name.
    pub fieldname: String,
    /// The Frappe fieldtype.
    pub fieldtype: FieldType,
    /// Mandatory in the application (`reqd` or SODAF `required`). Does not make
    /// the column NOT NULL; Frappe checks it in the application.
    #[serde(default)]
    pub reqd: bool,
    /// Makes the column NOT NULL.
    #[serde(default)]
    pub not_nullable: bool,
    /// A unique index on the column.
    #[serde(default)]
    pub unique: bool,
    /// An index on the column (`search_index` or SODAF `indexed`).
    #[serde(default)]
    pub search_index: bool,
    /// The default value, as text. Dynamic defaults (`Today`, `Now`,
    /// `__user`, `:Fieldname`, `eval:...`) are applied by the application and
    /// give no column default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Length of text columns (informational in SQLite; part of the declared type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    /// Precision of numeric columns (informational in SQLite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Options: the linked DocType for Link/Table fields, choices for Select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    /// A virtual field is computed by the application and gets no column.
    #[serde(default)]
    pub is_virtual: bool,
    /// Rename hint: the column this field used to be called. The engine
    /// renames instead of dropping and adding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// The customization layers behind this field: the Custom Field that
    /// added it, the Property Setters that changed it, in the order applied.
    /// Empty for a field as its DocType declares it.
    #[serde(skip)]
    pub layers: Vec<Layer>,
}

/// A DocType-level index (SODAF dialect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// The index name, if given; otherwise one is derived from the columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The indexed columns, in order.
    pub fields: Vec<String>,
    /// A unique index.
    #[serde(default)]
    pub unique: bool,
}

impl DocType {
    /// A new DocType with no fields, for building definitions in code.
    pub fn new(name: impl Into<String>) -> Self {
        DocType {
            name: name.into(),
            module: None,
            istable: false,
            issingle: false,
            is_virtual: false,
            autoname: None,
            track_seen: false,
            fields: Vec::new(),
            indexes: Vec::new(),
            origin: "<code>".to_string(),
            layers: Vec::new(),
            load_warnings: Vec::new(),
        }
    }

    /// Every warning about this DocType: what loading it noted, then the
    /// definition quirks the engine accepts as Frappe does (a fieldname
    /// defined twice, a field named like a standard column, a non-numeric
    /// default on a numeric field). Empty for a clean definition.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = self.load_warnings.clone();
        out.extend(quirk_warnings(self));
        out
    }

    /// Adds a field (builder style).
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Marks the DocType as a child table (builder style).
    pub fn child_table(mut self) -> Self {
        self.istable = true;
        self
    }

    /// The SQLite table name: `tab` + name.
    pub fn table_name(&self) -> String {
        format!("tab{}", self.name)
    }

    /// Whether this DocType is stored in a table of its own.
    pub fn has_table(&self) -> bool {
        !self.issingle && !self.is_virtual
    }

    /// Whether `name` is an autoincrementing integer.
    pub fn is_autoincrement(&self) -> bool {
        self.autoname
            .as_deref()
            .is_some_and(|a| a.trim().eq_ignore_ascii_case("autoincrement"))
    }
}

impl Field {
    /// A new field with every flag off.
    pub fn new(fieldname: impl Into<String>, fieldtype: FieldType) -> Self {
        Field {
            fieldname: fieldname.into(),
            fieldtype,
            reqd: false,
            not_nullable: false,
            unique: false,
            search_index: false,
            default: None,
            length: None,
            precision: None,
            options: None,
            is_virtual: false,
            renamed_from: None,
            layers: Vec::new(),
        }
    }

    /// The file this field's definition came from: the Custom Field
    /// fixture that added it, if one did.
    pub(crate) fn layer(&self) -> Option<&str> {
        self.layers
            .iter()
            .find(|l| l.kind == super::layer::LayerKind::CustomField)
            .map(|l| l.file.as_str())
    }

    /// Sets the default (builder style).
    pub fn default_value(mut self, value: impl Into<String>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Sets `unique` (builder style).
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Sets `search_index` (builder style).
    pub fn indexed(mut self) -> Self {
        self.search_index = true;
        self
    }

    /// Sets `not_nullable` (builder style).
    pub fn not_nullable(mut self) -> Self {
        self.not_nullable = true;
        self
    }

    /// Sets `options` (builder style).
    pub fn options(mut self, options: impl Into<String>) -> Self {
        self.options = Some(options.into());
        self
    }

    /// Sets the rename hint (builder style).
    pub fn renamed_from(mut self, old: impl Into<String>) -> Self {
        self.renamed_from = Some(old.into());
        self
    }

    /// Whether this field is stored in a column.
    pub fn has_column(&self) -> bool {
        !self.is_virtual && self.fieldtype.has_column()
    }
}
