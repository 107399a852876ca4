//! Frappe fieldtypes and the one table that maps them to SQLite columns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a fieldtype is stored. This is the single fieldtype-to-column map of
/// the crate (documented in docs/reference/type-mapping.md); everything else derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `VARCHAR(n)`, `n` = the field's `length` or 140; nullable. TEXT affinity.
    Varchar,
    /// `TEXT`; nullable.
    Text,
    /// `INTEGER NOT NULL DEFAULT 0` (or the field's default).
    Integer,
    /// `REAL NOT NULL DEFAULT 0` (or the field's default).
    Real,
    /// `REAL`; nullable.
    NullableReal,
}

macro_rules! fieldtypes {
    ($( $variant:ident => $name:literal, $storage:expr; )*) => {
        /// A Frappe fieldtype.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum FieldType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl FieldType {
            /// Every known fieldtype.
            pub const ALL: &'static [FieldType] = &[$(FieldType::$variant),*];

            /// The fieldtype's name as written in DocType JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(FieldType::$variant => $name),* }
            }

            /// How the fieldtype is stored; `None` for layout and table fields,
            /// which get no column.
            pub fn storage(self) -> Option<Storage> {
                match self { $(FieldType::$variant => $storage),* }
            }
        }
    };
}

fieldtypes! {
    Autocomplete => "Autocomplete", Some(Storage::Varchar);
    Attach => "Attach", Some(Storage::Text);
    AttachImage => "Attach Image", Some(Storage::Text);
    Barcode => "Barcode", Some(Storage::Text);
    Button => "Button", None;
    Check => "Check", Some(Storage::Integer);
    Code => "Code", Some(Storage::Text);
    Color => "Color", Some(Storage::Varchar);
    ColumnBreak => "Column Break", None;
    Currency => "Currency", Some(Storage::Real);
    Data => "Data", Some(Storage::Varchar);
    Date => "Date", Some(Storage::Text);
    Datetime => "Datetime", Some(Storage::Text);
    Duration => "Duration", Some(Storage::NullableReal);
    DynamicLink => "Dynamic Link", Some(Storage::Varchar);
    Float => "Float", Some(Storage::Real);
    Fold => "Fold", None;
    Geolocation => "Geolocation", Some(Storage::Text);
    Heading => "Heading", None;
    Html => "HTML", None;
    HtmlEditor => "HTML Editor", Some(Storage::Text);
    Icon => "Icon", Some(Storage::Varchar);
    Image => "Image", None;
    Int => "Int", Some(Storage::Integer);
    Json => "JSON", Some(Storage::Text);
    Link => "Link", Some(Storage::Varchar);
    LongInt => "Long Int", Some(Storage::Integer);
    LongText => "Long Text", Some(Storage::Text);
    MarkdownEditor => "Markdown Editor", Some(Storage::Text);
    Password => "Password", Some(Storage::Text);
    Percent => "Percent", Some(Storage::Real);
    Phone => "Phone", Some(Storage::Varchar);
    Rating => "Rating", Some(Storage::NullableReal);
    ReadOnly => "Read Only", Some(Storage::Varchar);
    SectionBreak => "Section Break", None;
    Select => "Select", Some(Storage::Varchar);
    Signature => "Signature", Some(Storage::Text);
    SmallText => "Small Text", Some(Storage::Text);
    TabBreak => "Tab Break", None;
    Table => "Table", None;
    TableMultiSelect => "Table MultiSelect", None;
    Text => "Text", Some(Storage::Text);
    TextEditor => "Text Editor", Some(Storage::Text);
    Time => "Time", Some(Storage::Text);
}

impl FieldType {
    /// Whether fields of this type are stored in a column.
    pub fn has_column(self) -> bool {
        self.storage().is_some()
    }

    /// Whether `options` names another DocType (Link, Table, Table MultiSelect).
    pub fn links_doctype(self) -> bool {
        matches!(
            self,
            FieldType::Link | FieldType::Table | FieldType::TableMultiSelect
        )
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a fieldtype name that is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFieldType(pub String);

impl fmt::Display for UnknownFieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fieldtype {:?}", self.0)
    }
}

impl std::error::Error for UnknownFieldType {}

impl FromStr for FieldType {
    type Err = UnknownFieldType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownFieldType(s.to_string()))
    }
}

impl Serialize for FieldType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_rejected() {
        for t in FieldType::ALL {
            assert_eq!(t.as_str().parse::<FieldType>().unwrap(), *t);
        }
        assert_eq!(
            "Currency".parse::<FieldType>().unwrap(),
            FieldType::Currency
        );
        assert!("Varchar".parse::<FieldType>().is_err());
        assert!(
            "check".parse::<FieldType>().is_err(),
            "names are case-sensitive as in Frappe"
        );
    }

    #[test]
    fn layout_and_table_fields_have_no_column() {
        for t in [
            FieldType::SectionBreak,
            FieldType::ColumnBreak,
            FieldType::TabBreak,
            FieldType::Html,
            FieldType::Table,
            FieldType::TableMultiSelect,
            FieldType::Button,
            FieldType::Image,
            FieldType::Fold,
            FieldType::Heading,
        ] {
            assert!(!t.has_column(), "{t}");
        }
        assert_eq!(FieldType::Check.storage(), Some(Storage::Integer));
        assert_eq!(FieldType::Currency.storage(), Some(Storage::Real));
    }
}
