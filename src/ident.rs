//! Identifier validation and quoting, and literal escaping (invariant "No injection": no
//! injection). Every name that reaches SQL goes through [`quote`]; every text
//! literal through [`quote_literal`].

/// Longest accepted fieldname (MariaDB's column-name limit, kept for portability).
pub const MAX_FIELDNAME_LEN: usize = 64;
/// Longest accepted DocType name (table name `tab` + name stays within 64).
pub const MAX_DOCTYPE_LEN: usize = 61;

/// Column names SQLite reserves for the rowid; a column with one of these
/// names would hide the rowid the engine relies on.
pub const ROWID_ALIASES: [&str; 3] = ["rowid", "oid", "_rowid_"];

/// Quotes an identifier for SQL: `"name"`, with embedded quotes doubled.
pub fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a text literal for SQL: `'text'`, with embedded quotes doubled.
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Checks a fieldname: ASCII letter or underscore first, then letters,
/// digits and underscores, at most [`MAX_FIELDNAME_LEN`] characters, not a
/// rowid alias and not starting with `sqlite_`. SQL keywords are allowed
/// (real DocTypes use `order`, `group`, `key`): every identifier is quoted.
pub fn check_fieldname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("fieldname is empty".into());
    }
    if name.len() > MAX_FIELDNAME_LEN {
        return Err(format!(
            "fieldname is {} characters long; at most {MAX_FIELDNAME_LEN} are allowed",
            name.len()
        ));
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('_');
    // A non-ASCII first character ('名', 'Ü') is a letter to the reader:
    // the charset check below names it instead.
    if first.is_ascii() && !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!(
            "fieldname {name:?} must start with a letter or underscore"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "fieldname {name:?} contains {bad:?}; only letters, digits and underscores are allowed"
        ));
    }
    check_reserved(name)
}

/// Checks a DocType name: a letter first, then letters, digits, spaces,
/// hyphens and underscores, at most [`MAX_DOCTYPE_LEN`] characters, no
/// leading or trailing space.
pub fn check_doctype_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("DocType name is empty".into());
    }
    if name.len() > MAX_DOCTYPE_LEN {
        return Err(format!(
            "DocType name is {} characters long; at most {MAX_DOCTYPE_LEN} are allowed",
            name.len()
        ));
    }
    if name.starts_with(|c: char| c.is_ascii() && !c.is_ascii_alphabetic()) {
        return Err(format!("DocType name {name:?} must start with a letter"));
    }
    if name.ends_with(' ') {
        return Err(format!("DocType name {name:?} ends with a space"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_')))
    {
        return Err(format!(
            "DocType name {name:?} contains {bad:?}; only letters, digits, spaces, '-' and '_' are allowed"
        ));
    }
    Ok(())
}

/// Checks an index name given in a DocType (same charset as fieldnames).
pub fn check_index_name(name: &str) -> Result<(), String> {
    check_fieldname(name).map_err(|e| e.replacen("fieldname", "index name", 1))
}

fn check_reserved(name: &str) -> Result<(), String> {
    if ROWID_ALIASES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!("{name:?} is reserved by SQLite for the rowid"));
    }
    if name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_") {
        return Err(format!(
            "{name:?} starts with sqlite_, which SQLite reserves"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote("tabSales Order"), "\"tabSales Order\"");
        assert_eq!(
            quote("x\"; DROP TABLE y; --"),
            "\"x\"\"; DROP TABLE y; --\""
        );
        assert_eq!(quote_literal("O'Brien"), "'O''Brien'");
    }

    #[test]
    fn fieldnames_are_checked() {
        assert!(check_fieldname("customer_name").is_ok());
        assert!(
            check_fieldname("order").is_ok(),
            "keywords are quoted, so allowed"
        );
        assert!(check_fieldname("_seen").is_ok());
        assert!(check_fieldname("").is_err());
        assert!(check_fieldname("1abc").is_err());
        assert!(check_fieldname("x\"; DROP TABLE y; --").is_err());
        assert!(check_fieldname("a b").is_err());
        assert!(check_fieldname("naïve").is_err());
        assert!(check_fieldname("ROWID").is_err());
        assert!(check_fieldname("sqlite_x").is_err());
        assert!(check_fieldname(&"a".repeat(65)).is_err());
        assert!(check_fieldname(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn doctype_names_are_checked() {
        assert!(check_doctype_name("Sales Order Item").is_ok());
        assert!(check_doctype_name("Item-Attribute_2").is_ok());
        assert!(check_doctype_name(" Sales").is_err());
        assert!(check_doctype_name("Sales ").is_err());
        assert!(check_doctype_name("Sales;Order").is_err());
        assert!(check_doctype_name("x\"").is_err());
        let err = check_doctype_name("Überweisung").unwrap_err();
        assert!(err.contains("contains 'Ü'"), "{err}");
        let err = check_fieldname("名前").unwrap_err();
        assert!(err.contains("contains '名'"), "{err}");
        assert!(check_doctype_name(&"A".repeat(62)).is_err());
    }
}
