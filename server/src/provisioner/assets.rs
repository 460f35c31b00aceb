//! `/assets/…`: files under `--assets-dir`, served as Matchbox's Go `http.FileServer` serves
//! them: HEAD, single byte ranges, `Last-Modified`, directory listings, and its redirects (a
//! path with `..` is cleaned and redirected, never followed out of the folder).

use super::Provisioner;
use super::boot::not_found;
use super::gotemplate::html_escape;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::SystemTime;

/// Go's `path.Clean`: `.` and `..` resolved, repeated slashes joined; the result starts with `/`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

fn redirect(status: StatusCode, location: &str, with_body: bool) -> Response {
    let mut res = if with_body {
        let body =
            format!("<a href=\"{}\">{}</a>.\n\n", html_escape(location), status.canonical_reason().unwrap_or(""));
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    } else {
        Response::new(Body::empty())
    };
    *res.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// Go's `url.PathEscape` for a file name in a listing link.
fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Content types by extension for what network boot serves; others are sniffed as Go does
/// (text when the start is valid UTF-8 without control bytes, else octet-stream).
fn content_type(name: &str, head: &[u8]) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("img") => "application/x-raw-disk-image",
        Some("iso") => "application/x-iso9660-image",
        Some("bin" | "efi" | "kpxe" | "pxe" | "gz" | "xz" | "zst") => "application/octet-stream",
        Some("json" | "ign") => "application/json",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "ipxe" | "cfg" | "sh" | "yaml" | "yml") => "text/plain; charset=utf-8",
        Some("sig" | "asc") => "application/pgp-signature",
        _ => {
            let text = std::str::from_utf8(head)
                .map(|s| s.bytes().all(|b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)))
                .unwrap_or(false);
            if text { "text/plain; charset=utf-8" } else { "application/octet-stream" }
        }
    }
}

fn http_date(time: SystemTime) -> Option<HeaderValue> {
    let t = time::OffsetDateTime::from(time).to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&format).ok().and_then(|s| HeaderValue::from_str(&s).ok())
}

/// One `bytes=a-b` range of `len` bytes; `Err` when it cannot be satisfied.
fn byte_range(spec: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = spec.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: served whole, a permitted simplification
    }
    let (start, end) = spec.split_once('-')?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 || len == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len - 1)
        }
        (start, end) => {
            let start: u64 = start.parse().ok()?;
            let end: u64 = if end.is_empty() {
                len.saturating_sub(1)
            } else {
                end.parse::<u64>().ok()?.min(len.saturating_sub(1))
            };
            if start >= len || end < start {
                return Some(Err(()));
            }
            (start, end)
        }
    };
    Some(Ok(range))
}

/// Serves `body` with ranges and HEAD, as Go's `http.ServeContent` does.
pub fn serve_bytes(
    content_type: &'static str,
    body: Vec<u8>,
    method: &Method,
    range: Option<&HeaderValue>,
    modified: Option<SystemTime>,
) -> Response {
    let len = body.len() as u64;
    let mut headers = vec![(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"))];
    headers.push((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
    if let Some(date) = modified.and_then(http_date) {
        headers.push((header::LAST_MODIFIED, date));
    }
    let (status, body) = match range.and_then(|r| r.to_str().ok()).and_then(|r| byte_range(r, len)) {
        Some(Ok((start, end))) => {
            headers.push((
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).unwrap_or(HeaderValue::from_static("")),
            ));
            (StatusCode::PARTIAL_CONTENT, body[start as usize..=end as usize].to_vec())
        }
        Some(Err(())) => {
            let mut res = (StatusCode::RANGE_NOT_SATISFIABLE, "invalid range: failed to overlap\n").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return res;
        }
        None => (StatusCode::OK, body),
    };
    let length = body.len();
    let mut res = Response::new(if method == Method::HEAD { Body::empty() } else { Body::from(body) });
    *res.status_mut() = status;
    for (k, v) in headers {
        res.headers_mut().insert(k, v);
    }
    res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    res
}

/// The listing of a directory, as Go's `FileServer` writes it.
fn listing(dir: &Path, modified: Option<SystemTime>) -> Response {
    let Ok(entries) = std::fs::read_dir(dir) else { return not_found() };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) { format!("{name}/") } else { name }
        })
        .collect();
    names.sort();
    let mut body = String::from("<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n");
    for name in names {
        let href = match name.strip_suffix('/') {
            Some(dir) => format!("{}/", path_escape(dir)),
            None => path_escape(&name),
        };
        body.push_str(&format!("<a href=\"{href}\">{}</a>\n", html_escape(&name)));
    }
    body.push_str("</pre>\n");
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    if let Some(date) = modified.and_then(http_date) {
        res.headers_mut().insert(header::LAST_MODIFIED, date);
    }
    res
}

/// `/assets`: Go's mux sends it to `/assets/`.
pub async fn assets_root() -> Response {
    redirect(StatusCode::TEMPORARY_REDIRECT, "/assets/", true)
}

/// `/assets/…`.
pub async fn assets(State(p): State<Arc<Provisioner>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    let path = parts.uri.path();
    let with_body = matches!(parts.method, Method::GET | Method::HEAD);
    let cleaned = clean(path);
    if cleaned != path {
        let mut location = cleaned;
        if let Some(q) = parts.uri.query() {
            location = format!("{location}?{q}");
        }
        return redirect(StatusCode::TEMPORARY_REDIRECT, &location, with_body);
    }
    let Some(relative) = path.strip_prefix("/assets/") else { return not_found() };
    if relative == "index.html" || relative.ends_with("/index.html") {
        return redirect(StatusCode::MOVED_PERMANENTLY, "./", false);
    }
    let relative = Path::new(relative.trim_end_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return not_found();
    }
    let root = &p.assets_dir;
    let full = root.join(relative);
    // Symbolic links may point anywhere inside the assets folder, never out of it.
    let (Ok(real_root), Ok(real)) = (std::fs::canonicalize(root), std::fs::canonicalize(&full)) else {
        return not_found();
    };
    if !real.starts_with(&real_root) {
        return not_found();
    }
    let Ok(meta) = std::fs::metadata(&real) else { return not_found() };
    let modified = meta.modified().ok();
    if meta.is_dir() {
        if !path.ends_with('/') {
            let last = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            return redirect(StatusCode::MOVED_PERMANENTLY, &format!("{}/", path_escape(&last)), false);
        }
        let index = real.join("index.html");
        if index.is_file() {
            return serve_file(&index, "index.html", &parts, modified).await;
        }
        return listing(&real, modified);
    }
    if path.ends_with('/') {
        return redirect(StatusCode::MOVED_PERMANENTLY, "../", false);
    }
    let name = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    serve_file(&real, &name, &parts, modified).await
}

/// A file, streamed (boot images are large): whole, or one byte range.
async fn serve_file(
    path: &Path,
    name: &str,
    req: &axum::http::request::Parts,
    modified: Option<SystemTime>,
) -> Response {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut file) = tokio::fs::File::open(path).await else { return not_found() };
    let Ok(meta) = file.metadata().await else { return not_found() };
    let len = meta.len();
    let mut head = vec![0u8; len.min(512) as usize];
    if file.read_exact(&mut head).await.is_err() {
        return not_found();
    }
    let content_type = content_type(name, &head);
    let range = req.headers.get(header::RANGE).and_then(|r| r.to_str().ok()).and_then(|r| byte_range(r, len));
    let (status, start, count) = match range {
        Some(Ok((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Some(Err(())) => {
            let mut res = (StatusCode::RANGE_NOT_SATISFIABLE, "invalid range: failed to overlap\n").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return res;
        }
        None => (StatusCode::OK, 0, len),
    };
    let body = if req.method == Method::HEAD || file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        Body::empty()
    } else {
        Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)))
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    if let Some(date) = modified.and_then(http_date) {
        headers.insert(header::LAST_MODIFIED, date);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        assert_eq!(clean("/assets/../groups/default.json"), "/groups/default.json");
        assert_eq!(clean("/assets//a/./b/"), "/assets/a/b/");
        assert_eq!(clean("/../../etc/passwd"), "/etc/passwd");
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range("bytes=5-10", 32), Some(Ok((5, 10))));
        assert_eq!(byte_range("bytes=-4", 32), Some(Ok((28, 31))));
        assert_eq!(byte_range("bytes=30-", 32), Some(Ok((30, 31))));
        assert_eq!(byte_range("bytes=40-50", 32), Some(Err(())));
        assert_eq!(byte_range("lines=1-2", 32), None);
    }
}
