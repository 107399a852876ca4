//! The list of a fleet's databases: glob patterns expanded and sorted by
//! path, list files read in their order, plain paths kept; then the shard
//! this machine takes.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a fleet's databases come from, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A glob pattern (`sites/*/site.db`): its matches, sorted by path.
    Glob(String),
    /// A file naming one database per line (blank lines and lines starting
    /// with `#` skipped; relative paths are relative to the file's
    /// directory): in the file's order.
    ListFile(PathBuf),
    /// One database.
    Path(PathBuf),
}

/// Expands `sources` into one list, in order. A database named twice is
/// kept once, at its first place.
pub(crate) fn expand(sources: &[Source]) -> Result<Vec<PathBuf>> {
    let mut list: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |p: PathBuf, list: &mut Vec<PathBuf>| {
        if seen.insert(p.clone()) {
            list.push(p);
        }
    };
    for source in sources {
        match source {
            Source::Path(p) => push(p.clone(), &mut list),
            Source::Glob(pattern) => {
                let paths = glob::glob(pattern).map_err(|e| {
                    Error::config("databases", format!("glob pattern {pattern:?}: {e}"))
                })?;
                let mut found: Vec<PathBuf> = paths
                    .filter_map(std::result::Result::ok)
                    .filter(|p| p.is_file())
                    .collect();
                found.sort();
                for p in found {
                    push(p, &mut list);
                }
            }
            Source::ListFile(file) => {
                for p in read_list(file)? {
                    push(p, &mut list);
                }
            }
        }
    }
    Ok(list)
}

fn read_list(file: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let p = PathBuf::from(l);
            if p.is_absolute() { p } else { base.join(p) }
        })
        .collect())
}

/// The databases of shard `index` of `count` (0-based): number `i` of the
/// list belongs to shard `i mod count`.
pub(crate) fn shard(list: Vec<PathBuf>, index: usize, count: usize) -> Vec<PathBuf> {
    list.into_iter()
        .enumerate()
        .filter(|(i, _)| i % count == index)
        .map(|(_, p)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_list_exactly_once_in_order() {
        let list: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("{i}.db"))).collect();
        let mut all: Vec<PathBuf> = (0..3).flat_map(|s| shard(list.clone(), s, 3)).collect();
        assert_eq!(
            shard(list.clone(), 1, 3),
            ["1.db", "4.db", "7.db"].map(PathBuf::from)
        );
        all.sort_by_key(|p| {
            p.to_string_lossy()
                .trim_end_matches(".db")
                .parse::<u32>()
                .unwrap()
        });
        assert_eq!(all, list);
    }

    #[test]
    fn globs_sort_list_files_keep_their_order_and_names_count_once() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.db", "a.db", "c.db"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let list = dir.path().join("list.txt");
        std::fs::write(&list, "# order kept\nc.db\n\na.db\n").unwrap();
        let pattern = format!("{}/*.db", dir.path().display());
        let got = expand(&[Source::ListFile(list), Source::Glob(pattern)]).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c.db", "a.db", "b.db"]);
    }
}
