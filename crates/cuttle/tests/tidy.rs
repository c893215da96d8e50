//! Tidy checks over the source tree: rules of the house style that a test can hold.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cuttle sits two levels below the workspace root")
        .to_owned()
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// Every module says what it owns, in a `//!` comment at its top.
#[test]
fn every_module_starts_with_a_doc_comment() {
    let mut files = Vec::new();
    for crate_directory in std::fs::read_dir(workspace_root().join("crates"))
        .expect("read crates/")
        .flatten()
    {
        rust_files(&crate_directory.path().join("src"), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let undocumented: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "modules without a //! doc: {undocumented:#?}"
    );
}

/// The functional core does no IO: its crates depend on no runtime, database or HTTP crate.
#[test]
fn pure_crates_depend_on_no_io_crates() {
    const PURE_CRATES: &[&str] = &[
        "cuttle-domain",
        "cuttle-template",
        "cuttle-vars",
        "cuttle-structured",
        "cuttle-pipeline",
    ];
    const IO_CRATES: &[&str] = &[
        "tokio",
        "sqlx",
        "axum",
        "reqwest",
        "hyper",
        "rusqlite",
        "async-trait",
    ];
    for crate_name in PURE_CRATES {
        let manifest_path = workspace_root()
            .join("crates")
            .join(crate_name)
            .join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest_path)
            .unwrap_or_else(|error| panic!("read {}: {error}", manifest_path.display()));
        for io_crate in IO_CRATES {
            let uses_it = manifest.lines().any(|line| {
                line.trim_start().starts_with(&format!("{io_crate} "))
                    || line.trim_start().starts_with(&format!("{io_crate}."))
            });
            assert!(
                !uses_it,
                "{crate_name} must stay pure but depends on {io_crate}"
            );
        }
    }
}
