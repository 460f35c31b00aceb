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
    std::fs::create_dir_all(&staging)?;
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

/// Answers a request for a site file (`/pkg/…`, `/favicon.svg`) from the site root, with the
/// precompressed variants and conditional requests (`304`) of a static file server. A file that
/// cannot be read for any other reason than its absence is a logged `500`, never a `404`: a
/// `404` says the page asked for a file of another build.
pub async fn serve_file(root: &str, req: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    let path = req.uri().path().to_owned();
    match tower_http::services::ServeDir::new(root).precompressed_br().precompressed_gzip().oneshot(req).await {
        Ok(response) => {
            if response.status() == axum::http::StatusCode::NOT_FOUND {
                tracing::warn!(%path, "a page asked for a site file this build does not have");
            }
            response.map(axum::body::Body::new)
        }
        Err(error) => {
            tracing::error!(%path, %error, "cannot read a site file");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Written last: a folder without it is an unpacking that did not finish.
const COMPLETE: &str = ".complete";

/// Removes earlier versions' sites, and copies whose unpacking stopped over an hour ago (one
/// unpacking now may be another process's).
fn remove_other_versions(parent: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let recent = |path: &Path| {
        let age = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        age.is_none_or(|age| age < std::time::Duration::from_secs(3600))
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let unpacking = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".unpacking-"));
        let ours = path == keep || (unpacking && recent(&path));
        if !ours
            && path.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&path)
        {
            tracing::warn!(folder = %path.display(), error = %e, "cannot remove an earlier version's site");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacking_is_whole_once_and_clears_older_versions() {
        let data = tempfile::tempdir().unwrap();
        let site = data.path().join("site");
        let older_version = site.join("0123456789abcdef");
        let (stale, busy) = (site.join(".unpacking-dead"), site.join(".unpacking-busy"));
        for folder in [&older_version, &stale, &busy] {
            std::fs::create_dir_all(folder).unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::open(&stale).unwrap().set_modified(two_hours_ago).unwrap();

        let dir = unpacked_dir(data.path());
        unpack(&dir).unwrap();
        assert!(dir.join(COMPLETE).is_file());
        assert!(!older_version.exists() && !stale.exists(), "earlier versions and dead unpackings go");
        assert!(busy.exists(), "an unpacking of the last hour may be another process's");

        // A complete copy is served as it is, not written again.
        std::fs::write(dir.join("kept"), "").unwrap();
        unpack(&dir).unwrap();
        assert!(dir.join("kept").exists());
    }
}
