//! Keeps the layering honest: each outside system's crate is used in one module only,
//! SQL lives in the store, and every module says what it is for in a `//!` header.

use std::path::{Path, PathBuf};

fn source_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 10, "found the sources");
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .display()
        .to_string()
}

/// Files outside `allowed` (a folder prefix like `src/docker/`) that mention `needle`.
fn offenders(needle: &str, allowed: &str) -> Vec<String> {
    source_files()
        .into_iter()
        .map(|p| relative(&p))
        .filter(|p| !p.starts_with(allowed))
        .filter(|p| {
            let text =
                std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
            text.contains(needle)
        })
        .collect()
}

#[test]
fn bollard_is_used_only_in_the_docker_module() {
    assert_eq!(offenders("bollard::", "src/docker/"), Vec::<String>::new());
}

#[test]
fn sql_lives_only_in_the_store() {
    assert_eq!(offenders("rusqlite", "src/store/"), Vec::<String>::new());
    for keyword in ["SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"] {
        let found: Vec<String> = offenders(keyword, "src/store/")
            .into_iter()
            .filter(|p| {
                // Words like "UPDATE " in prose are fine; SQL sits in string literals.
                let text =
                    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
                text.lines().any(|l| l.contains(&format!("\"{keyword}")))
            })
            .collect();
        assert_eq!(
            found,
            Vec::<String>::new(),
            "SQL `{keyword}` outside src/store"
        );
    }
}

#[test]
fn every_module_has_a_header() {
    let missing: Vec<String> = source_files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| relative(&p))
        .collect();
    assert_eq!(missing, Vec::<String>::new(), "files without a //! header");
}
