//! Embeds every file of `template/` (the cargo-generate template, inside this package so
//! that the published crate carries it) in the binary:
//! writes `$OUT_DIR/template_files.rs`, a sorted list of `(path, include_str!(..))`.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        } else {
            return Err(format!("{}: only files and directories", entry.path().display()).into());
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("template").canonicalize()?;
    println!("cargo::rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files)?;
    let mut entries = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root)?;
        let parts: Vec<&str> = rel
            .components()
            .map(|c| c.as_os_str().to_str().ok_or("a template path is not UTF-8"))
            .collect::<Result<_, _>>()?;
        let abs = file
            .to_str()
            .ok_or("a template path is not UTF-8")?
            .to_owned();
        entries.push((parts.join("/"), abs));
    }
    entries.sort();
    let mut code = String::from("&[\n");
    for (rel, abs) in &entries {
        writeln!(code, "    ({rel:?}, include_str!({abs:?})),")?;
    }
    code.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("template_files.rs");
    std::fs::write(out, code)?;
    Ok(())
}
