//! The layering ARCHITECTURE.md promises, checked on the source: library
//! modules import only modules in lower layers, and the command line is a
//! client of the root API only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Module name → layer, read from the "Import direction" table.
fn layers() -> BTreeMap<String, u32> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("| Layer | Modules | May import |")
        .expect("the layer table");
    let mut out = BTreeMap::new();
    for line in text[start..].lines().skip(2) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            break;
        }
        let layer: u32 = cells[1].parse().expect("a layer number");
        for name in cells[2].split(',') {
            let name = name.trim().trim_start_matches('`');
            let name = name.split('`').next().unwrap_or_default();
            if !name.is_empty() {
                out.insert(name.to_string(), layer);
            }
        }
    }
    assert!(out.len() >= 15, "the table lists every module: {out:?}");
    out
}

/// Every `.rs` file of a module: `src/<m>.rs` and `src/<m>/**`, without
/// unit-test files.
fn files_of(module: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = root().join("src").join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![root().join("src").join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tests") {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs")
                && p.file_name().is_some_and(|n| n != "tests.rs")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The text without its `#[cfg(test)] mod tests { ... }` block (unit tests
/// may use whatever they test against).
fn without_unit_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The crate modules a text names with `crate::<module>`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

#[test]
fn modules_import_only_downward() {
    let layers = layers();
    let mut violations = Vec::new();
    for (module, &layer) in layers.iter().filter(|(m, _)| *m != "cli") {
        let files = files_of(module);
        assert!(!files.is_empty(), "module {module} has no files");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for other in crate_paths(without_unit_tests(&text)) {
                if other == *module {
                    continue;
                }
                if let Some(&other_layer) = layers.get(&other) {
                    if other_layer >= layer {
                        violations.push(format!(
                            "{} (layer {layer}) imports {other} (layer {other_layer})",
                            file.strip_prefix(root()).unwrap().display()
                        ));
                    }
                }
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "{violations:#?}");
    // Every module the crate declares is in the table.
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
            assert!(
                layers.contains_key(name),
                "module {name} is not in the layer table"
            );
        }
        assert!(
            !line.trim_start().starts_with("pub mod"),
            "lib.rs declares a public module: {line}"
        );
    }
}

#[test]
fn the_cli_uses_only_the_root_api() {
    let mut files = vec![root().join("src/main.rs")];
    files.extend(files_of("cli"));
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("doctype_migrate::") {
            rest = &rest[i + "doctype_migrate::".len()..];
            // A lowercase segment followed by `::` is a module path.
            let segment: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if rest[segment.len()..].starts_with("::")
                && segment.starts_with(|c: char| c.is_ascii_lowercase())
            {
                problems.push(format!("{name}: doctype_migrate::{segment}::"));
            }
        }
        // Code, not comments: the CLI opens no transaction of its own.
        let code: String = without_unit_tests(&text)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for opens in ["BEGIN", "begin_immediate", "TxGuard", "COMMIT", "SAVEPOINT"] {
            if code.contains(opens) {
                problems.push(format!("{name}: {opens}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The names `src/lib.rs` re-exports at the root (after `as`, when renamed).
fn root_exports() -> std::collections::BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut out = std::collections::BTreeSet::new();
    let mut rest = lib.as_str();
    while let Some(i) = rest.find("\npub use ") {
        rest = &rest[i + "\npub use ".len()..];
        let end = rest.find(';').unwrap();
        let item = &rest[..end];
        let list = match (item.find('{'), item.rfind('}')) {
            (Some(a), Some(b)) => &item[a + 1..b],
            _ => item.rsplit("::").next().unwrap(),
        };
        for name in list.split(',') {
            let name = name.split(" as ").last().unwrap().trim();
            if !name.is_empty() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

#[test]
fn architecture_lists_exactly_the_public_api() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text.find("| Area | Items |").expect("the public API table");
    let mut listed = std::collections::BTreeSet::new();
    for line in text[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let items = line.split('|').nth(2).unwrap_or_default();
        // Methods are named in parentheses after their type.
        let mut depth = 0;
        let outside: String = items
            .chars()
            .filter(|c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => return depth == 0,
                }
                false
            })
            .collect();
        for (i, part) in outside.split('`').enumerate() {
            if i % 2 == 1 {
                listed.insert(part.to_string());
            }
        }
    }
    let exported = root_exports();
    assert!(exported.len() > 50, "{exported:?}");
    let missing: Vec<_> = exported.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&exported).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "exported but not in ARCHITECTURE.md: {missing:?}; listed but not exported: {extra:?}"
    );
}
