//! `/grafana/{cluster}/…`: the cluster's Grafana, embedded in the console and signed in as the
//! console's person through Grafana's auth proxy. Only the console's session authenticates:
//! whatever `X-WEBAUTH-*` headers, `Authorization` or console cookie the browser sends are
//! removed, and Pangea sets the user, name, email, groups and role (viewer → Viewer, operator →
//! Editor, admin → Admin, for that cluster). WebSockets (Grafana Live) pass through.
//!
//! Grafana serves itself under the same path (`root_url = https://CONSOLE/grafana/CLUSTER/`,
//! `serve_from_sub_path = true`), so links and assets need no rewriting. This router sets its own
//! security headers: the console may frame it; nothing else may.

use crate::AppState;
use crate::error::cause;
use crate::http::{Route, route_any};
use app::access::{ConsoleRole, Identity, Permission, Principal, authorize_in};
use app::error::AppError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};

/// The headers Grafana's `[auth.proxy]` reads (`header_name` and `headers = …`).
pub const USER: &str = "x-webauth-user";
pub const NAME: &str = "x-webauth-name";
pub const EMAIL: &str = "x-webauth-email";
pub const GROUPS: &str = "x-webauth-groups";
pub const ROLE: &str = "x-webauth-role";

/// The console's session cookies: never sent on to Grafana.
const CONSOLE_COOKIES: [&str; 2] = ["pangea_session", "__Host-pangea_session"];

/// Headers about one connection, never forwarded as they are (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Every method, listed as GET.
pub fn routes() -> Vec<Route> {
    vec![route_any("/grafana/{cluster}/", proxy), route_any("/grafana/{cluster}/{*rest}", proxy)]
}

/// Grafana's role for a console role.
pub fn grafana_role(role: ConsoleRole) -> &'static str {
    match role {
        ConsoleRole::Viewer => "Viewer",
        ConsoleRole::Operator => "Editor",
        ConsoleRole::Admin => "Admin",
    }
}

/// The security headers of this router: framed by the console only.
pub fn with_headers(router: Router) -> Router {
    use tower_http::set_header::SetResponseHeaderLayer;
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'self'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
}

fn refuse(error: AppError) -> Response {
    crate::http::ApiError(error).into_response()
}

/// Refuses a path that could leave `/grafana/{cluster}/` once the upstream resolves it: dot
/// segments, encoded dots or slashes, and backslashes.
pub fn contained(path: &str) -> Result<(), AppError> {
    let lower = path.to_ascii_lowercase();
    let escapes = ["%2e", "%2f", "%5c", "\\"].iter().any(|e| lower.contains(e))
        || path.split('/').any(|segment| segment == "." || segment == "..");
    if escapes {
        return Err(AppError::invalid(
            "This path leaves the cluster's Grafana: dot segments and encoded slashes are refused.",
        ));
    }
    Ok(())
}

/// The request's headers as Grafana gets them: no hop-by-hop headers (but the upgrade of a
/// WebSocket), nothing that could claim an identity, and the person's identity from the session.
pub fn upstream_headers(
    incoming: &HeaderMap,
    who: &Principal,
    cluster: &str,
    websocket: bool,
) -> Result<HeaderMap, AppError> {
    let (user, groups) = match &who.identity {
        Identity::Oidc { username, groups, .. } => app::access::acting_identity(username, groups)?,
        Identity::Local { username, .. } => (username.clone(), Vec::new()),
        _ => {
            return Err(AppError::Unauthorized {
                message: "Grafana is opened from the console, signed in: sign in to the console first.".into(),
            });
        }
    };
    let role = who
        .cluster_roles
        .get(cluster)
        .copied()
        .max(who.role)
        .ok_or_else(|| AppError::Forbidden { message: format!("You have no role on cluster {cluster}.") })?;
    let mut headers = HeaderMap::new();
    for (name, value) in incoming {
        let lower = name.as_str();
        // Identity and client-address claims are the proxy's to make (`x_webauth_user` too).
        let claim = lower.replace('_', "-").contains("webauth")
            || matches!(lower, "authorization" | "forwarded" | "x-real-ip")
            || lower.starts_with("x-forwarded-");
        if claim || HOP_BY_HOP.contains(&lower) || lower == "host" || lower == "cookie" {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    // Grafana's own cookies stay; the console's session never leaves the console.
    let kept: Vec<&str> = incoming
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !CONSOLE_COOKIES.iter().any(|n| c.split('=').next() == Some(*n)))
        .collect();
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
    let mut set = |name: &'static str, value: &str| {
        // Header values are visible ASCII; a name that is not is sent percent-encoded.
        let value = HeaderValue::from_str(value).unwrap_or_else(|_| {
            HeaderValue::from_str(&url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>())
                .unwrap_or(HeaderValue::from_static(""))
        });
        headers.insert(HeaderName::from_static(name), value);
    };
    set(USER, &user);
    set(NAME, &user);
    if user.contains('@') {
        set(EMAIL, &user);
    }
    // Groups are comma-separated: a group with a comma in its name would read as two.
    let groups: Vec<&str> = groups.iter().map(String::as_str).filter(|g| !g.contains(',')).collect();
    if !groups.is_empty() {
        set(GROUPS, &groups.join(","));
    }
    set(ROLE, grafana_role(role));
    Ok(headers)
}

#[derive(serde::Deserialize)]
struct Hit {
    uid: String,
    title: String,
    #[serde(default, rename = "folderTitle")]
    folder_title: String,
}

/// The Grafana's dashboards (`/api/search?type=dash-db`), asked with `headers` (the person's).
/// A GET of Grafana's HTTP API, through its sub-path for `cluster`, with `headers`.
async fn api_get(
    http: &reqwest::Client,
    base: &str,
    cluster: &str,
    path: &str,
    headers: HeaderMap,
) -> Result<reqwest::Response, String> {
    let origin = url::Url::parse(base).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    http.get(format!("{origin}/grafana/{cluster}{path}"))
        .headers(headers)
        .timeout(super::prometheus::QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("Grafana at {base} is unreachable: {}.", cause(&e)))
}

pub async fn dashboards(
    http: &reqwest::Client,
    base: &str,
    cluster: &str,
    headers: HeaderMap,
) -> Result<Vec<app::monitoring::GrafanaDashboard>, String> {
    let response = api_get(http, base, cluster, "/api/search?type=dash-db", headers).await?;
    let status = response.status();
    let body = super::body_within(response).await.map_err(|e| e.say("Grafana", base))?;
    let hits: Vec<Hit> = match serde_json::from_slice(&body) {
        Ok(hits) if status.is_success() => hits,
        _ => {
            return Err(format!(
                "Grafana at {base} answered its dashboard search with HTTP {}; check its [auth.proxy] settings \
                 (docs/monitoring.md).",
                status.as_u16()
            ));
        }
    };
    Ok(hits
        .into_iter()
        .map(|h| app::monitoring::GrafanaDashboard {
            embed_path: format!("/grafana/{cluster}/d/{}?orgId=1&kiosk", h.uid),
            uid: h.uid,
            title: h.title,
            folder: h.folder_title,
        })
        .collect())
}

/// One dashboard's JSON model, as Grafana's API answers it (`{"dashboard": …, "meta": …}`).
/// `uid` must be a valid uid (it goes into the path).
pub async fn dashboard_json(
    http: &reqwest::Client,
    base: &str,
    cluster: &str,
    uid: &str,
    headers: HeaderMap,
) -> Result<String, AppError> {
    let upstream = |message: String| AppError::Upstream { message };
    let response =
        api_get(http, base, cluster, &format!("/api/dashboards/uid/{uid}"), headers).await.map_err(upstream)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
        return Err(AppError::not_found(format!("Grafana at {base} has no dashboard {uid} that you may see.")));
    }
    if !status.is_success() {
        return Err(upstream(format!("Grafana at {base} answered for dashboard {uid} with HTTP {}.", status.as_u16())));
    }
    let body = super::body_within(response).await.map_err(|e| upstream(e.say("Grafana", base)))?;
    String::from_utf8(body.to_vec())
        .map_err(|_| upstream(format!("Grafana at {base} answered with text that is not UTF-8.")))
}

async fn proxy(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(live): Extension<crate::http::live::LiveCheck>,
    mut req: Request,
) -> Response {
    let path = req.uri().path().to_string();
    let cluster = path.trim_start_matches("/grafana/").split('/').next().unwrap_or_default().to_string();
    if let Err(refusal) = authorize_in(&who, Permission::ViewClusters, &cluster).and_then(|()| contained(&path)) {
        return refuse(refusal);
    }
    let (base, http) = match state.clusters.grafana(&cluster) {
        Ok(linked) if !linked.url.is_empty() => (linked.url, linked.http),
        Ok(_) => {
            return refuse(AppError::not_found(format!(
                "No Grafana is linked to cluster {cluster}: an admin can add its URL on the cluster's page."
            )));
        }
        Err(e) => return refuse(e),
    };
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    // A WebSocket is a GET, which the cross-site check lets by: it must come from the console.
    let from_console =
        req.headers().get(header::ORIGIN).is_some_and(|o| o.as_bytes() == state.auth.public_origin.as_bytes());
    if websocket && !from_console {
        return refuse(AppError::Forbidden {
            message: "A WebSocket to Grafana must come from the console's own pages.".into(),
        });
    }
    let headers = match upstream_headers(req.headers(), &who, &cluster, websocket) {
        Ok(headers) => headers,
        Err(e) => return refuse(e),
    };
    let origin = base.trim_end_matches('/');
    let origin = url::Url::parse(origin).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let target = format!("{origin}{}", req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(&path));
    if !url::Url::parse(&target).is_ok_and(|t| t.path().starts_with(&format!("/grafana/{cluster}/"))) {
        return refuse(AppError::invalid("This path leaves the cluster's Grafana."));
    }
    let method = req.method().clone();
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let upstream = http.request(method, &target).headers(headers).body(body).send().await;
    let upstream = match upstream {
        Ok(response) => response,
        Err(e) => {
            return refuse(AppError::Upstream { message: format!("Grafana at {base} is unreachable: {}.", cause(&e)) });
        }
    };
    let status = upstream.status();
    let mut response_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        let lower = name.as_str();
        let upgrade = websocket && matches!(lower, "connection" | "upgrade");
        // Grafana may not set the console's session cookie, widen service workers, or clear
        // the console's storage; framing is this router's to say.
        let console_cookie = lower == "set-cookie"
            && value
                .to_str()
                .map_or(true, |v| CONSOLE_COOKIES.iter().any(|n| v.trim_start().starts_with(&format!("{n}="))));
        let refused =
            matches!(lower, "x-frame-options" | "service-worker-allowed" | "clear-site-data") || console_cookie;
        if (!HOP_BY_HOP.contains(&lower) || upgrade) && !refused {
            response_headers.append(name.clone(), value.clone());
        }
    }
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) = (status, client_upgrade) {
        // The WebSocket ends when the person's console session ends or they lose the cluster.
        let ended = match live.watch(move |who| authorize_in(who, Permission::ViewClusters, &cluster).is_ok()) {
            Ok(ended) => ended,
            Err(e) => return refuse(e),
        };
        tokio::spawn(async move {
            let (Ok(client), Ok(mut grafana)) = (client_upgrade.await, upstream.upgrade().await) else { return };
            let mut client = hyper_util::rt::TokioIo::new(client);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut grafana) => {}
                () = ended => {}
            }
        });
        return (status, response_headers).into_response();
    }
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(role: Option<ConsoleRole>, cluster_role: Option<ConsoleRole>) -> Principal {
        Principal {
            identity: Identity::Oidc {
                user_id: 1,
                username: "alice@example.com".into(),
                groups: vec!["sre".into(), "oncall".into()],
                groups_note: None,
            },
            role,
            cluster_roles: cluster_role.map(|r| ("edge-1".to_string(), r)).into_iter().collect(),
            ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn grafana_gets_the_person_from_the_session_and_nothing_the_browser_claims() {
        let mut incoming = HeaderMap::new();
        incoming.insert("X-WEBAUTH-USER", HeaderValue::from_static("mallory"));
        incoming.insert("x-webauth-role", HeaderValue::from_static("Admin"));
        incoming.insert("X-Webauth-Groups", HeaderValue::from_static("admins"));
        incoming.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer stolen"));
        incoming.insert(header::COOKIE, HeaderValue::from_static("pangea_session=secret; grafana_session=g1"));
        incoming.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        incoming.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        incoming.insert("x_webauth_user", HeaderValue::from_static("mallory"));
        incoming.insert("x-forwarded-for", HeaderValue::from_static("10.6.6.6"));
        let sent = upstream_headers(&incoming, &person(Some(ConsoleRole::Operator), None), "edge-1", false).unwrap();
        assert_eq!(sent[USER], "alice@example.com");
        assert_eq!(sent[NAME], "alice@example.com");
        assert_eq!(sent[EMAIL], "alice@example.com");
        assert_eq!(sent[GROUPS], "sre,oncall");
        assert_eq!(sent[ROLE], "Editor");
        assert_eq!(sent.get_all(USER).iter().count(), 1, "the browser's claim is gone, not added to");
        assert!(sent.get(header::AUTHORIZATION).is_none());
        assert_eq!(sent[header::COOKIE], "grafana_session=g1");
        assert!(sent.get(header::CONNECTION).is_none());
        assert_eq!(sent[header::ACCEPT], "application/json");
        assert!(sent.get("x_webauth_user").is_none() && sent.get("x-forwarded-for").is_none());
    }

    #[test]
    fn paths_stay_inside_the_clusters_grafana() {
        assert!(contained("/grafana/a/d/abc/node").is_ok());
        for escape in [
            "/grafana/a/../b/api",
            "/grafana/a/%2e%2e/%2E%2E/x",
            "/grafana/a/x%2Fy",
            "/grafana/a/.\\..",
            "/grafana/a/./x",
        ] {
            assert_eq!(contained(escape).unwrap_err().status(), 400, "{escape}");
        }
    }

    #[test]
    fn the_role_is_the_persons_on_that_cluster() {
        let role = |global, on_cluster| {
            upstream_headers(&HeaderMap::new(), &person(global, on_cluster), "edge-1", false).map(|h| h[ROLE].clone())
        };
        assert_eq!(role(Some(ConsoleRole::Viewer), None).unwrap(), "Viewer");
        assert_eq!(role(Some(ConsoleRole::Admin), None).unwrap(), "Admin");
        assert_eq!(role(Some(ConsoleRole::Viewer), Some(ConsoleRole::Operator)).unwrap(), "Editor");
        assert_eq!(role(None, Some(ConsoleRole::Viewer)).unwrap(), "Viewer");
        assert_eq!(role(None, None).unwrap_err().status(), 403);
    }

    #[test]
    fn a_websocket_keeps_its_upgrade_and_only_people_are_signed_in() {
        let mut incoming = HeaderMap::new();
        incoming.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        incoming.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let sent = upstream_headers(&incoming, &person(Some(ConsoleRole::Viewer), None), "edge-1", true).unwrap();
        assert_eq!(
            (sent[header::CONNECTION].to_str().unwrap(), sent[header::UPGRADE].to_str().unwrap()),
            ("Upgrade", "websocket")
        );
        let token = Principal {
            identity: Identity::Token { token_id: 1, name: "ci".into(), cluster_as: None },
            ..person(Some(ConsoleRole::Admin), None)
        };
        assert_eq!(upstream_headers(&HeaderMap::new(), &token, "edge-1", false).unwrap_err().status(), 401);
    }
}
