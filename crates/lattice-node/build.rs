//! Embeds the built dashboard (`ui/dist`, or `LATTICE_EMBED_UI_DIR`) into the binary, so
//! `lattice node` serves it wherever it is installed. Without a build there, the binary
//! embeds nothing and says so when asked for the dashboard.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LATTICE_EMBED_UI_DIR");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let ui = manifest.join("../../ui");
    let dist = env::var_os("LATTICE_EMBED_UI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ui.join("dist"));
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", dist.display());
        collect(&dist, &dist, &mut files);
        files.sort();
    } else if ui.is_dir() {
        // A missing path would rerun this script on every build; the folder the build
        // will appear in does not.
        println!("cargo:rerun-if-changed={}", ui.display());
    }
    let mut out = String::from("/// The dashboard's files: path below the root, contents.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        writeln!(out, "    ({rel:?}, include_bytes!({abs:?})),").expect("writing to a string");
    }
    out.push_str("];\n");
    let target = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("dashboard.rs");
    fs::write(target, out).expect("writing the embedded dashboard's table");
}

/// Every file below `dir`, as (path relative to `root` with `/` separators, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.is_file() {
            let rel = path.strip_prefix(root).expect("below the root");
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let abs = fs::canonicalize(&path).expect("an existing file");
            files.push((rel.join("/"), abs.to_string_lossy().into_owned()));
        }
    }
}
