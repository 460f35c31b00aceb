//! Puts the built site (wasm, JS, CSS, public files, their precompressed variants and the hash
//! file) inside a release `pangea`, so the binary alone serves the whole console.
//!
//! `cargo leptos build --release` builds the site first, then this crate with `LEPTOS_SITE_ROOT`
//! set; only then is there a site to embed. Every other build (debug, tests, clippy, a plain
//! `cargo build`) embeds nothing and serves `--site-root`.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-env-changed=LEPTOS_SITE_ROOT");
    println!("cargo:rerun-if-env-changed=LEPTOS_HASH_FILE_NAME");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR")?);
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let site = std::env::var_os("LEPTOS_SITE_ROOT").filter(|_| release).map(|root| {
        let root = PathBuf::from(root);
        if root.is_absolute() { Ok(root) } else { workspace_root().map(|w| w.join(root)) }
    });
    let mut files = Vec::new();
    if let Some(root) = site.transpose()?.filter(|root| root.join("pkg").is_dir()) {
        println!("cargo:rerun-if-changed={}", root.display());
        collect(&root, &root, &mut files)?;
        // cargo-leptos writes the hash file beside the server binary: OUT_DIR is
        // <target>/release/build/server-<hash>/out.
        let hash_name = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".into());
        if let Some(hash_file) = out.ancestors().nth(3).map(|release_dir| release_dir.join(&hash_name)) {
            println!("cargo:rerun-if-changed={}", hash_file.display());
            if hash_file.is_file() {
                files.push(("hash.txt".to_string(), hash_file));
            }
        }
        files.sort();
    }
    let mut id: u64 = 0xcbf2_9ce4_8422_2325;
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for byte in name.bytes().chain([0]).chain(bytes) {
            id = (id ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        writeln!(code, "    ({name:?}, include_bytes!({:?})),", path.display().to_string())?;
    }
    code.push_str("];\n");
    writeln!(code, "pub const ID: &str = \"{id:016x}\";")?;
    std::fs::write(out.join("site.rs"), code)?;
    Ok(())
}

fn workspace_root() -> Result<PathBuf, Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("cargo sets CARGO_MANIFEST_DIR")?);
    Ok(manifest.parent().ok_or("the server crate sits in the workspace")?.to_path_buf())
}

/// Every file below `dir`, named by its path relative to `root` with `/` separators. Symbolic
/// links to folders are not followed (a loop would never end).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root)?;
            let name = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            files.push((name, path));
        }
    }
    Ok(())
}
