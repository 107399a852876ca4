//! The standard columns every DocType table has, and which defaults are
//! dynamic (applied by the application, not by the column).

use super::fieldtype::FieldType;
use super::model::DocType;

/// A standard column: its name and the fieldtype whose storage it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardColumn {
    /// Column name.
    pub name: &'static str,
    /// The fieldtype it is stored like (`name` is special: it is the primary key).
    pub like: FieldType,
}

/// Columns of every DocType table, in table order.
pub const STANDARD_COLUMNS: [StandardColumn; 7] = [
    StandardColumn {
        name: "name",
        like: FieldType::Data,
    },
    StandardColumn {
        name: "creation",
        like: FieldType::Datetime,
    },
    StandardColumn {
        name: "modified",
        like: FieldType::Datetime,
    },
    StandardColumn {
        name: "modified_by",
        like: FieldType::Data,
    },
    StandardColumn {
        name: "owner",
        like: FieldType::Data,
    },
    StandardColumn {
        name: "docstatus",
        like: FieldType::Int,
    },
    StandardColumn {
        name: "idx",
        like: FieldType::Int,
    },
];

/// Columns child tables (`istable`) add after the standard ones.
pub const CHILD_COLUMNS: [StandardColumn; 3] = [
    StandardColumn {
        name: "parent",
        like: FieldType::Data,
    },
    StandardColumn {
        name: "parentfield",
        like: FieldType::Data,
    },
    StandardColumn {
        name: "parenttype",
        like: FieldType::Data,
    },
];

/// The optional columns Frappe appends to every table that is not a child
/// table, after the declared fields (`frappe.db.OPTIONAL_COLUMNS`): tags,
/// comments, assignments and likes, kept as JSON text by the application.
pub const OPTIONAL_COLUMNS: [StandardColumn; 4] = [
    StandardColumn {
        name: "_user_tags",
        like: FieldType::Text,
    },
    StandardColumn {
        name: "_comments",
        like: FieldType::Text,
    },
    StandardColumn {
        name: "_assign",
        like: FieldType::Text,
    },
    StandardColumn {
        name: "_liked_by",
        like: FieldType::Text,
    },
];

/// The column `track_seen` adds, after the optional columns.
pub const SEEN_COLUMN: StandardColumn = StandardColumn {
    name: "_seen",
    like: FieldType::Text,
};

/// The standard columns that lead this DocType's table, in table order:
/// `name` to `idx`, then `parent`, `parentfield`, `parenttype` for child
/// tables. A field of the same name cannot replace them.
pub fn standard_columns(doctype: &DocType) -> Vec<StandardColumn> {
    let mut cols = STANDARD_COLUMNS.to_vec();
    if doctype.istable {
        cols.extend(CHILD_COLUMNS);
    }
    cols
}

/// The columns Frappe appends after the declared fields, in table order:
/// [`OPTIONAL_COLUMNS`] for tables that are not child tables, then `_seen`
/// with `track_seen`. A field declaring one of them keeps its position and
/// takes this definition (Frappe's own convention: Communication declares
/// `_user_tags` as Data and gets a Text column).
pub fn trailing_columns(doctype: &DocType) -> Vec<StandardColumn> {
    let mut cols = Vec::new();
    if !doctype.istable {
        cols.extend(OPTIONAL_COLUMNS);
    }
    if doctype.track_seen {
        cols.push(SEEN_COLUMN);
    }
    cols
}

/// Whether a default is computed by the application when a document is
/// created (`Today`, `Now`, `__user`, `:Fieldname`, `eval:...`, ...) and so
/// gives the column no SQL default.
pub fn is_dynamic_default(default: &str) -> bool {
    let d = default.trim();
    const SHORTCUTS: [&str; 7] = [
        "Today",
        "__today",
        "Now",
        "now",
        "__user",
        "user",
        "__default",
    ];
    SHORTCUTS.contains(&d) || d.starts_with(':') || d.starts_with("eval:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_optional_and_seen_columns_are_added() {
        let mut dt = DocType::new("Sales Order Item").child_table();
        let names: Vec<_> = standard_columns(&dt).iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 10);
        assert!(names.contains(&"parenttype"));
        assert!(trailing_columns(&dt).is_empty(), "child tables get none");
        dt.istable = false;
        dt.track_seen = true;
        let names: Vec<_> = standard_columns(&dt).iter().map(|c| c.name).collect();
        assert!(!names.contains(&"parent"));
        let trailing: Vec<_> = trailing_columns(&dt).iter().map(|c| c.name).collect();
        assert_eq!(
            trailing,
            ["_user_tags", "_comments", "_assign", "_liked_by", "_seen"]
        );
    }

    #[test]
    fn dynamic_defaults_are_recognised() {
        for d in ["Today", "Now", "__user", ":Company", "eval:doc.x"] {
            assert!(is_dynamic_default(d), "{d}");
        }
        for d in ["0", "Draft", "today's"] {
            assert!(!is_dynamic_default(d), "{d}");
        }
    }
}
