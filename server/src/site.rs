//! The console's site (wasm, JS, CSS, public files) carried inside a release binary.
//!
//! `build.rs` embeds what `cargo leptos build --release` built. On start, `pangea serve` without
//! `--site-root` unpacks it once into `<data dir>/site/<content id>/` and serves it from there,
//! with the precompressed variants, content-hashed names and cache headers of a site on disk:
//! leptos reads the hash file and wasm-split's manifest from disk, so the site must be there.
//! Earlier versions' folders are removed, so upgrades do not pile up.

use std::io;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/site.rs"));
}

/// Whether this binary carries a site (release builds made by cargo-leptos do).
pub fn is_embedded() -> bool {
    !embedded::FILES.is_empty()
}

/// Where [`unpack`] puts the embedded site under the data directory.
pub fn unpacked_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("site").join(embedded::ID)
}

/// Writes the embedded site into `dir` unless a complete copy is already there. It is written
/// beside `dir` first and renamed into place, so a crash never leaves half a site to serve.
pub fn unpack(dir: &Path) -> io::Result<()> {
    if dir.join(COMPLETE).is_file() {
        return Ok(());
    }
    let parent = dir.parent().ok_or_else(|| io::Error::other("the site folder has no parent"))?;
    std::fs::create_dir_all(parent)?;
    // A name of its own: processes sharing a data folder (containers are all PID 1) never
    // write into each other's copy.
    let staging = parent.join(format!(".unpacking-{:016x}", rand::random::<u64>()));
    for (name, bytes) in embedded::FILES {
        let path = staging.join(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(path, bytes)?;
    }
    std::fs::write(staging.join(COMPLETE), embedded::ID)?;
    // An unfinished copy from a crash goes; a finished one another process just renamed stays.
    if dir.is_dir() && !dir.join(COMPLETE).is_file() {
        std::fs::remove_dir_all(dir)?;
    }
    if let Err(e) = std::fs::rename(&staging, dir) {
        let _ = std::fs::remove_dir_all(&staging);
        if !dir.join(COMPLETE).is_file() {
            return Err(e);
        }
    }
    remove_other_versions(parent, dir);
    Ok(())
}

/// Written last: a folder without it is an unpacking that did not finish.
const COMPLETE: &str = ".complete";

fn remove_other_versions(parent: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let ours = path == keep || path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".unpacking-"));
        if !ours
            && path.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&path)
        {
            tracing::warn!(folder = %path.display(), error = %e, "cannot remove an earlier version's site");
        }
    }
}
