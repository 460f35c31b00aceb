//! Cross-cutting request handling: request ids and cache headers.

use crate::error::REQUEST_ID;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Where the boot listener's secret links live: `/cluster-secrets/TOKEN/PATH`. Their token is
/// never logged.
pub const SECRET_LINKS: &str = "/cluster-secrets/";

/// `text` (a config) with every secret link's token masked, as people other than admins see
/// it: a link is used once, so whoever reads it first could take its file.
pub fn mask_secret_links(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(SECRET_LINKS) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(SECRET_LINKS) {
        let after = at + SECRET_LINKS.len();
        out.push_str(&rest[..after]);
        out.push('…');
        let token_end = rest[after..].find(|c: char| !c.is_ascii_alphanumeric()).map_or(rest.len(), |i| after + i);
        rest = &rest[token_end..];
    }
    out.push_str(rest);
    out.into()
}

/// `path` as logs show it: a secret link without its token.
pub fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix(SECRET_LINKS) {
        Some(rest) => format!("{SECRET_LINKS}…/{}", rest.split_once('/').map_or("", |(_, file)| file)).into(),
        None => path.into(),
    }
}

/// Gives each request an id (a sane incoming `x-request-id` is kept), logs the request within a
/// span carrying that id, and echoes the id in the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", rand::rng().random::<u64>()));
    if let Ok(value) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let span =
        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %logged_path(req.uri().path()));
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID.scope(id.clone(), next.run(req)).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Site files with a content hash in their name (`pangea.<hash>.wasm`) never change, so browsers
/// may keep them for a year; anything else is revalidated (cheaply, by Last-Modified).
///
/// One exception: cargo-leptos hashes the wasm-bindgen entry script (`pangea.<hash>.js`) before
/// it writes the name of wasm-split's loader into it, so a new build can keep the script's name
/// while changing what it imports. A browser holding the old script would ask for the old
/// loader and the old chunks, which a new server no longer has: the script is revalidated.
pub async fn static_cache_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let cache = if path.starts_with("/pkg/") {
        let file = path.rsplit('/').next().unwrap_or_default();
        let entry_script = file.starts_with("pangea.") && file.ends_with(".js");
        Some(if file.matches('.').count() >= 2 && !entry_script {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        })
    } else if path == "/favicon.svg" {
        Some("no-cache")
    } else {
        None
    };
    let mut response = next.run(req).await;
    if let Some(cache) = cache
        && response.status().is_success()
    {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_links_token_is_not_logged() {
        assert_eq!(super::logged_path("/cluster-secrets/0123abcd/pki/ca.key"), "/cluster-secrets/…/pki/ca.key");
        assert_eq!(super::logged_path("/cluster-secrets/0123abcd"), "/cluster-secrets/…/");
        assert_eq!(super::logged_path("/ipxe"), "/ipxe");
    }

    #[test]
    fn a_shown_config_masks_every_secret_links_token() {
        let config = "source: http://p:8080/cluster-secrets/0123abcd/pki/ca.key\nx: http://p/cluster-secrets/ff/a.conf";
        assert_eq!(
            super::mask_secret_links(config),
            "source: http://p:8080/cluster-secrets/…/pki/ca.key\nx: http://p/cluster-secrets/…/a.conf"
        );
        assert_eq!(super::mask_secret_links("/cluster-secrets/"), "/cluster-secrets/…");
        assert_eq!(super::mask_secret_links("plain"), "plain");
    }
}
