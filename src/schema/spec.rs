//! Table specifications: the shape of a table, target or live, in a form the
//! diff can compare.

use serde::{Deserialize, Serialize};

use crate::ident::quote;

/// Prefix of every index the engine creates and manages. Indexes without it
/// were created by someone else and are never dropped.
pub const MANAGED_INDEX_PREFIX: &str = "dm_";

/// The shape of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Columns in table order.
    pub columns: Vec<ColumnSpec>,
    /// Indexes (for a target spec: the managed indexes it wants).
    pub indexes: Vec<IndexSpec>,
    /// Whether the primary key is `INTEGER PRIMARY KEY AUTOINCREMENT`.
    pub autoincrement: bool,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// Declared type, normalized: upper case, single spaces, none inside
    /// parentheses (`varchar ( 140 )` → `VARCHAR(140)`).
    pub decl_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// The DEFAULT expression as SQL text (`0`, `'Draft'`), if any.
    pub default: Option<String>,
    /// Part of the primary key.
    pub primary_key: bool,
}

/// One index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// A UNIQUE index.
    pub unique: bool,
}

impl IndexSpec {
    /// Whether the engine manages this index (created it and may drop it).
    pub fn is_managed(&self) -> bool {
        is_managed_index(&self.name)
    }

    /// The `CREATE INDEX` statement for this index on `table`.
    pub fn create_sql(&self, table: &str) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote(c)).collect();
        format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote(&self.name),
            quote(table),
            cols.join(", ")
        )
    }

    /// The `DROP INDEX` statement for this index.
    pub fn drop_sql(&self) -> String {
        format!("DROP INDEX {}", quote(&self.name))
    }
}

/// Whether an index name marks an engine-managed index.
pub fn is_managed_index(name: &str) -> bool {
    name.starts_with(MANAGED_INDEX_PREFIX)
}

impl ColumnSpec {
    /// The column definition as used in CREATE TABLE and ADD COLUMN.
    pub fn definition_sql(&self, autoincrement: bool) -> String {
        let mut sql = format!("{} {}", quote(&self.name), self.decl_type);
        if self.primary_key {
            if autoincrement {
                sql.push_str(" PRIMARY KEY AUTOINCREMENT");
                return sql;
            }
            sql.push_str(" NOT NULL PRIMARY KEY");
            return sql;
        }
        if self.not_null {
            sql.push_str(" NOT NULL");
        }
        if let Some(d) = &self.default {
            sql.push_str(" DEFAULT ");
            sql.push_str(d);
        }
        sql
    }

    /// Whether `ALTER TABLE ADD COLUMN` can add this column to a table with rows.
    pub fn addable_natively(&self) -> bool {
        !self.primary_key && (!self.not_null || self.default.is_some())
    }
}

impl TableSpec {
    /// The column with this name (SQLite names are case-insensitive).
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The index with this name (case-insensitive).
    pub fn index(&self, name: &str) -> Option<&IndexSpec> {
        self.indexes
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name))
    }

    /// SHA-256 over every field of the spec in a fixed order, each value
    /// followed by a separator byte: equal specs, equal fingerprints. Hashed
    /// directly (no JSON in between) because the start-up fast path computes
    /// one per DocType on every start.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut put = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        put(b"table-spec-v1");
        put(self.name.as_bytes());
        put(&[self.autoincrement as u8]);
        for c in &self.columns {
            put(b"c");
            put(c.name.as_bytes());
            put(c.decl_type.as_bytes());
            put(&[
                c.not_null as u8,
                c.primary_key as u8,
                c.default.is_some() as u8,
            ]);
            put(c.default.as_deref().unwrap_or_default().as_bytes());
        }
        for i in &self.indexes {
            put(b"i");
            put(i.name.as_bytes());
            put(&[i.unique as u8]);
            for col in &i.columns {
                put(col.as_bytes());
            }
            put(b"/");
        }
        super::hex(&h.finalize())
    }

    /// The `CREATE TABLE` statement for this spec (indexes not included).
    pub fn create_sql(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("  {}", c.definition_sql(self.autoincrement)))
            .collect();
        format!(
            "CREATE TABLE {} (\n{}\n)",
            quote(&self.name),
            cols.join(",\n")
        )
    }
}

/// Normalizes a declared type for comparison: uppercase, single spaces, no
/// spaces inside parentheses (`varchar ( 140 )` → `VARCHAR(140)`).
pub fn normalize_type(decl: &str) -> String {
    let upper = decl.trim().to_ascii_uppercase();
    let mut out = String::with_capacity(upper.len());
    let mut last_space = false;
    for c in upper.chars() {
        if c.is_whitespace() {
            last_space = true;
            continue;
        }
        if last_space
            && !out.is_empty()
            && !matches!(c, '(' | ')' | ',')
            && !out.ends_with(['(', ','])
        {
            out.push(' ');
        }
        last_space = false;
        out.push(c);
    }
    out
}

/// SQLite's column affinity for a declared type (sqlite.org/datatype3.html 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Affinity {
    /// INTEGER affinity.
    Integer,
    /// TEXT affinity.
    Text,
    /// BLOB affinity (no type).
    Blob,
    /// REAL affinity.
    Real,
    /// NUMERIC affinity.
    Numeric,
}

impl Affinity {
    /// The affinity SQLite gives a declared type.
    pub fn of(decl_type: &str) -> Affinity {
        let t = decl_type.to_ascii_uppercase();
        if t.contains("INT") {
            Affinity::Integer
        } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
            Affinity::Text
        } else if t.contains("BLOB") || t.trim().is_empty() {
            Affinity::Blob
        } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
            Affinity::Real
        } else {
            Affinity::Numeric
        }
    }

    /// The type name to CAST a value to so it takes this affinity, if any.
    pub fn cast_type(self) -> Option<&'static str> {
        match self {
            Affinity::Integer => Some("INTEGER"),
            Affinity::Text => Some("TEXT"),
            Affinity::Real => Some("REAL"),
            Affinity::Numeric => Some("NUMERIC"),
            Affinity::Blob => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_every_field() {
        let col = |name: &str, default: Option<&str>| ColumnSpec {
            name: name.into(),
            decl_type: "TEXT".into(),
            not_null: false,
            default: default.map(Into::into),
            primary_key: false,
        };
        let spec = TableSpec {
            name: "tabX".into(),
            columns: vec![col("a", None), col("b", Some("''"))],
            indexes: vec![IndexSpec {
                name: "dm_idx__tabX__a".into(),
                columns: vec!["a".into()],
                unique: false,
            }],
            autoincrement: false,
        };
        let fp = spec.fingerprint();
        assert_eq!(fp, spec.clone().fingerprint());
        let mut changed = spec.clone();
        changed.columns[1].default = None;
        assert_ne!(
            changed.fingerprint(),
            fp,
            "a default of '' differs from none"
        );
        let mut changed = spec.clone();
        changed.indexes[0].unique = true;
        assert_ne!(changed.fingerprint(), fp);
        let mut changed = spec.clone();
        changed.columns.swap(0, 1);
        assert_ne!(changed.fingerprint(), fp, "column order counts");
        let mut changed = spec;
        changed.columns[0].name = "ab".into();
        changed.columns[1].name = String::new();
        assert_ne!(changed.fingerprint(), fp, "lengths separate the values");
    }

    #[test]
    fn types_normalize() {
        assert_eq!(normalize_type("varchar ( 140 )"), "VARCHAR(140)");
        assert_eq!(normalize_type("  unsigned   big int "), "UNSIGNED BIG INT");
        assert_eq!(normalize_type("DECIMAL(21, 9)"), "DECIMAL(21,9)");
        assert_eq!(normalize_type("Text"), "TEXT");
    }

    #[test]
    fn affinity_follows_sqlite_rules() {
        assert_eq!(Affinity::of("VARCHAR(140)"), Affinity::Text);
        assert_eq!(Affinity::of("BIGINT"), Affinity::Integer);
        assert_eq!(Affinity::of("DECIMAL(21,9)"), Affinity::Numeric);
        assert_eq!(Affinity::of("POINT"), Affinity::Integer, "contains INT");
        assert_eq!(Affinity::of("DOUBLE PRECISION"), Affinity::Real);
        assert_eq!(Affinity::of(""), Affinity::Blob);
        assert_eq!(
            Affinity::of("FLOATING POINT"),
            Affinity::Integer,
            "INT wins, as in SQLite"
        );
    }

    #[test]
    fn column_definitions_render() {
        let c = ColumnSpec {
            name: "status".into(),
            decl_type: "VARCHAR(140)".into(),
            not_null: false,
            default: Some("'Draft'".into()),
            primary_key: false,
        };
        assert_eq!(
            c.definition_sql(false),
            "\"status\" VARCHAR(140) DEFAULT 'Draft'"
        );
        assert!(c.addable_natively());
        let pk = ColumnSpec {
            name: "name".into(),
            decl_type: "INTEGER".into(),
            not_null: false,
            default: None,
            primary_key: true,
        };
        assert_eq!(
            pk.definition_sql(true),
            "\"name\" INTEGER PRIMARY KEY AUTOINCREMENT"
        );
        assert!(!pk.addable_natively());
    }
}
