//! File work of the conventions: finding files by Octopus-style globs, copying a directory
//! tree, and purging a directory except what exclusion globs keep.
//!
//! Globs are relative to a base directory, use `/` or `\` as separators, `*` and `?` within a
//! path segment and `**` across segments; a glob without a separator also matches the file
//! name at any depth when it starts with `**/`, as written. Symbolic links are not followed
//! while walking (a link inside a package must not lead the conventions outside it); they are
//! copied as links.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::ExecError;

/// Compiles Octopus-style globs; an invalid one is an error naming it.
pub(crate) fn compile_globs(patterns: &[String]) -> Result<GlobSet, ExecError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(compile_glob(pattern)?);
    }
    builder
        .build()
        .map_err(|error| ExecError::InvalidRequest(format!("invalid file patterns: {error}")))
}

fn compile_glob(pattern: &str) -> Result<Glob, ExecError> {
    let normalized = pattern.trim().replace('\\', "/");
    let normalized = normalized.trim_start_matches("./");
    GlobBuilder::new(normalized)
        .literal_separator(true)
        .build()
        .map_err(|error| {
            ExecError::InvalidRequest(format!("invalid file pattern {pattern:?}: {error}"))
        })
}

/// Every regular file under `base` (not following links), as paths relative to `base`, sorted.
pub(crate) fn relative_files(base: &Path) -> Result<Vec<PathBuf>, ExecError> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let directory = base.join(&relative);
        let entries = std::fs::read_dir(&directory).map_err(ExecError::io("list", &directory))?;
        for entry in entries {
            let entry = entry.map_err(ExecError::io("list", &directory))?;
            let file_type = entry
                .file_type()
                .map_err(ExecError::io("inspect", entry.path()))?;
            let child = relative.join(entry.file_name());
            if file_type.is_dir() {
                pending.push(child);
            } else if file_type.is_file() {
                files.push(child);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The files under `base` that one of `patterns` matches, relative to `base`, sorted.
pub(crate) fn matching_files(base: &Path, patterns: &GlobSet) -> Result<Vec<PathBuf>, ExecError> {
    Ok(relative_files(base)?
        .into_iter()
        .filter(|relative| patterns.is_match(slash_path(relative)))
        .collect())
}

/// The path with `/` separators, as globs are written.
fn slash_path(relative: &Path) -> String {
    relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Copies the contents of `source` into `destination` (created if missing), replacing files
/// of the same name; links are copied as links.
pub(crate) fn copy_tree(source: &Path, destination: &Path) -> Result<u64, ExecError> {
    std::fs::create_dir_all(destination).map_err(ExecError::io("create", destination))?;
    let mut copied = 0;
    let entries = std::fs::read_dir(source).map_err(ExecError::io("list", source))?;
    for entry in entries {
        let entry = entry.map_err(ExecError::io("list", source))?;
        let from = entry.path();
        let to = destination.join(entry.file_name());
        let file_type = entry.file_type().map_err(ExecError::io("inspect", &from))?;
        if file_type.is_dir() {
            copied += copy_tree(&from, &to)?;
        } else if file_type.is_symlink() {
            let target =
                std::fs::read_link(&from).map_err(ExecError::io("read the link", &from))?;
            remove_if_present(&to)?;
            #[cfg(unix)]
            std::os::unix::fs::symlink(&target, &to)
                .map_err(ExecError::io("create the link", &to))?;
            #[cfg(not(unix))]
            let _ = target;
        } else {
            std::fs::copy(&from, &to).map_err(ExecError::io("copy", &from))?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn remove_if_present(path: &Path) -> Result<(), ExecError> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            std::fs::remove_dir_all(path).map_err(ExecError::io("remove", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(ExecError::io("remove", path)),
        Err(_) => Ok(()),
    }
}

/// Deletes everything in `directory` except entries whose relative path one of `exclusions`
/// matches (an excluded directory is kept whole; a directory holding an excluded entry is
/// kept, emptied of the rest). Returns how many entries were deleted.
pub(crate) fn purge(directory: &Path, exclusions: &GlobSet) -> Result<u64, ExecError> {
    purge_below(directory, Path::new(""), exclusions).map(|(deleted, _)| deleted)
}

/// Returns (entries deleted, whether anything was kept).
fn purge_below(
    base: &Path,
    relative: &Path,
    exclusions: &GlobSet,
) -> Result<(u64, bool), ExecError> {
    let directory = base.join(relative);
    let mut deleted = 0;
    let mut kept_any = false;
    let entries = std::fs::read_dir(&directory).map_err(ExecError::io("list", &directory))?;
    for entry in entries {
        let entry = entry.map_err(ExecError::io("list", &directory))?;
        let child = relative.join(entry.file_name());
        let path = entry.path();
        if exclusions.is_match(slash_path(&child)) {
            kept_any = true;
            continue;
        }
        let file_type = entry.file_type().map_err(ExecError::io("inspect", &path))?;
        if file_type.is_dir() {
            let (below, kept_below) = purge_below(base, &child, exclusions)?;
            deleted += below;
            if kept_below {
                kept_any = true;
            } else {
                std::fs::remove_dir(&path).map_err(ExecError::io("remove", &path))?;
                deleted += 1;
            }
        } else {
            std::fs::remove_file(&path).map_err(ExecError::io("remove", &path))?;
            deleted += 1;
        }
    }
    Ok((deleted, kept_any))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(patterns: &[&str]) -> GlobSet {
        compile_globs(
            &patterns
                .iter()
                .map(|pattern| (*pattern).to_owned())
                .collect::<Vec<_>>(),
        )
        .expect("globs")
    }

    #[test]
    fn globs_match_like_octopus_writes_them() {
        let set = globs(&["*.config", "Config\\*.json", "**/*.yaml"]);
        assert!(set.is_match("web.config"));
        assert!(!set.is_match("sub/web.config"));
        assert!(set.is_match("Config/app.json"));
        assert!(set.is_match("a/b/c.yaml"));
        assert!(set.is_match("c.yaml"));
        assert!(compile_globs(&["a[".to_owned()]).is_err());
    }

    #[test]
    fn purge_keeps_exclusions_and_their_parents() {
        let directory = tempfile::tempdir().expect("tempdir");
        let root = directory.path();
        for file in [
            "old.txt",
            "logs/today.log",
            "data/keep/a.db",
            "data/drop.db",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, file).expect("write");
        }
        purge(root, &globs(&["logs", "data/keep/**"])).expect("purge");
        let left: Vec<String> = relative_files(root)
            .expect("files")
            .iter()
            .map(|path| slash_path(path))
            .collect();
        assert_eq!(left, ["data/keep/a.db", "logs/today.log"]);
    }
}
