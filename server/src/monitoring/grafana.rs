//! `/grafana/{cluster}/…`: the cluster's Grafana, embedded in the console and signed in as the
//! console's person through Grafana's auth proxy. Whatever `X-WEBAUTH-*` headers,
//! `Authorization` or Pangea cookie the browser sends are removed, and Pangea sets the user,
//! name, email, groups and role (viewer → Viewer, operator → Editor, admin → Admin, for that
//! cluster). WebSockets (Grafana Live) pass through.
//!
//! Where it is served ([`GrafanaPlacement`]):
//! - on a listener of its own (`--grafana-listen`, advised): the console's `/grafana/{cluster}/…`
//!   hands the person's sign-in over with a one-time code (`access::handover`) and sends the
//!   browser there; that origin signs in with its own cookie, a pass for that cluster only, and
//!   the console's cookie never goes there. Scripts in Grafana cannot call the console as the
//!   person: the console is another origin, and refuses their writes as cross-site;
//! - on the console's origin (`--grafana-same-origin`, not advised): the console's session signs in;
//! - nowhere (the default): the console lists a Grafana's dashboards but does not embed them.
//!
//! Grafana serves itself under the same path (`root_url = https://GRAFANA-ORIGIN/grafana/CLUSTER/`,
//! `serve_from_sub_path = true`), so links and assets need no rewriting. Its router sets its own
//! security headers: the console may frame it; nothing else may.

use crate::AppState;
use crate::access::sessions::UserSession;
use crate::config::GrafanaPlacement;
use crate::error::cause;
use crate::http::live::LiveCheck;
use crate::http::{Route, route, route_any};
use app::access::{ConsoleRole, Identity, Permission, Principal, authorize_in};
use app::clusters::ClusterName;
use app::error::AppError;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Router};
use std::net::SocketAddr;
use std::sync::Arc;

/// The headers Grafana's `[auth.proxy]` reads (`header_name` and `headers = …`).
pub const USER: &str = "x-webauth-user";
pub const NAME: &str = "x-webauth-name";
pub const EMAIL: &str = "x-webauth-email";
pub const GROUPS: &str = "x-webauth-groups";
pub const ROLE: &str = "x-webauth-role";

/// The pass of Grafana's own origin: its cookie's name there over http, and over https.
const PASS_COOKIE: &str = "pangea_grafana";
const SECURE_PASS_COOKIE: &str = "__Secure-pangea_grafana";

/// Pangea's cookies (the console's session, Grafana's pass): never sent on to Grafana, nor set by it.
const PANGEA_COOKIES: [&str; 4] = ["pangea_session", "__Host-pangea_session", PASS_COOKIE, SECURE_PASS_COOKIE];

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

/// The console's: every method, listed as GET.
pub fn routes() -> Vec<Route> {
    vec![route_any("/grafana/{cluster}/", enter), route_any("/grafana/{cluster}/{*rest}", enter)]
}

/// Grafana's own listener's: the hand-over, and the proxy (every method, listed as GET).
pub fn own_origin_routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/pangea-handover/{cluster}", redeem),
        route_any("/grafana/{cluster}/", proxy_on_own_origin),
        route_any("/grafana/{cluster}/{*rest}", proxy_on_own_origin),
    ]
}

/// Grafana's role for a console role.
pub fn grafana_role(role: ConsoleRole) -> &'static str {
    match role {
        ConsoleRole::Viewer => "Viewer",
        ConsoleRole::Operator => "Editor",
        ConsoleRole::Admin => "Admin",
    }
}

/// The security headers of Grafana's router: framed by the console only (`console_origin`, or
/// `None` on the console's own origin). The framing policy is a header of its own, beside any
/// Grafana sends: browsers enforce every policy they get.
pub fn with_headers(router: Router, console_origin: Option<&str>) -> Router {
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = match console_origin {
        None => router
            .layer(SetResponseHeaderLayer::appending(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'self'"),
            ))
            .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"))),
        // X-Frame-Options cannot name another origin: the policy says who may frame.
        Some(console) => router.layer(SetResponseHeaderLayer::appending(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&format!("frame-ancestors {console}"))
                .unwrap_or(HeaderValue::from_static("frame-ancestors 'none'")),
        )),
    };
    router
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
    // Grafana's own cookies stay; Pangea's never reach Grafana.
    let kept: Vec<&str> =
        cookies(incoming).filter(|c| !PANGEA_COOKIES.iter().any(|n| c.split('=').next() == Some(*n))).collect();
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

/// The cluster a `/grafana/{cluster}/…` path is about, when it names one.
fn cluster_of(path: &str) -> Result<String, AppError> {
    let name = path.trim_start_matches("/grafana/").split('/').next().unwrap_or_default();
    name.parse::<ClusterName>().map(String::from).map_err(|e| AppError::invalid(e.to_string()))
}

/// The person may see the cluster, and the path stays inside its Grafana.
fn admitted(who: &Principal, path: &str) -> Result<String, AppError> {
    let cluster = cluster_of(path)?;
    authorize_in(who, Permission::ViewClusters, &cluster).and_then(|()| contained(path))?;
    Ok(cluster)
}

/// The cluster's linked Grafana: its URL, and the client that reaches it.
fn linked(state: &AppState, cluster: &str) -> Result<(String, reqwest::Client), AppError> {
    match state.clusters.grafana(cluster)? {
        linked if !linked.url.is_empty() => Ok((linked.url, linked.http)),
        _ => Err(AppError::not_found(format!(
            "No Grafana is linked to cluster {cluster}: an admin can add its URL on the cluster's page."
        ))),
    }
}

/// A response that no cache keeps (it carries a one-time code or a pass).
fn uncached(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The console's `/grafana/{cluster}/…`: the proxy on the console's origin, or the hand-over to
/// Grafana's own, or a refusal where Grafana is served nowhere.
async fn enter(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(live): Extension<LiveCheck>,
    session: UserSession,
    req: Request,
) -> Response {
    let admitted = admitted(&who, req.uri().path()).and_then(|cluster| Ok((linked(&state, &cluster)?, cluster)));
    let ((base, http), cluster) = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(refusal),
    };
    match &state.auth.grafana {
        GrafanaPlacement::SameOrigin => {
            let origin = state.auth.public_origin.clone();
            proxy(who, live, &origin, (&base, &http), &cluster, req).await
        }
        GrafanaPlacement::OwnOrigin { public_url, .. } => {
            let next = req.uri().path_and_query().map_or(req.uri().path(), |p| p.as_str()).to_string();
            let handed = match opened_from_console(&req, &cluster) {
                Ok(()) => hand_over(&state, &who, &session, &cluster).await,
                Err(refusal) => Err(refusal),
            };
            match handed {
                Ok(code) => {
                    let mut to = public_url.clone();
                    to.set_path(&format!("/pangea-handover/{cluster}"));
                    to.query_pairs_mut().clear().append_pair("code", &code).append_pair("next", &next);
                    uncached(Redirect::to(to.as_str()).into_response())
                }
                Err(refusal) => refuse(refusal),
            }
        }
        GrafanaPlacement::Off => refuse(AppError::not_found(
            "This Pangea serves no Grafana: an admin can start it with --grafana-listen (docs/monitoring.md).",
        )),
    }
}

/// Grafana is handed over to a GET from the console's own pages (a frame or a link there),
/// never to a script or frame on another origin: Grafana's included, so that one cluster's
/// Grafana cannot open another's.
fn opened_from_console(req: &Request, cluster: &str) -> Result<(), AppError> {
    if req.method() != Method::GET {
        return Err(AppError::invalid("Grafana is opened by following its link from the console (a GET)."));
    }
    let site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return Err(AppError::Forbidden {
            message: format!("Open cluster {cluster}'s Grafana from the console's own pages."),
        });
    }
    Ok(())
}

/// A one-time code to Grafana's origin for `cluster`, for the person signed in to this session.
async fn hand_over(
    state: &AppState,
    who: &Principal,
    session: &UserSession,
    cluster: &str,
) -> Result<String, AppError> {
    let (Some(user_id), Some(session_key)) = (who.user_id(), session.id()) else {
        return Err(AppError::Unauthorized { message: "Grafana is opened from the console, signed in.".into() });
    };
    state.access.hand_over(user_id, &session_key, cluster).await
}

#[derive(serde::Deserialize)]
struct Handover {
    code: String,
    next: String,
}

/// Grafana's origin: redeems the console's one-time code for this origin's pass (a cookie for
/// this cluster's Grafana only), and goes on to the page asked for.
async fn redeem(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    Query(handover): Query<Handover>,
) -> Response {
    let GrafanaPlacement::OwnOrigin { public_url, .. } = &state.auth.grafana else {
        return refuse(AppError::not_found("This Pangea serves no Grafana on an origin of its own."));
    };
    let inside = cluster.parse::<ClusterName>().is_ok()
        && handover.next.starts_with(&format!("/grafana/{cluster}/"))
        && !handover.next.chars().any(|c| c.is_control())
        && contained(&handover.next).is_ok();
    if !inside {
        return refuse(AppError::invalid("This hand-over goes outside the cluster's Grafana."));
    }
    let pass = match state.access.redeem_handover(&handover.code, &cluster).await {
        Ok(Some(pass)) => pass,
        Ok(None) => {
            return refuse(AppError::Unauthorized {
                message: "This link to Grafana was used already or has expired: open Grafana again from the console."
                    .into(),
            });
        }
        Err(e) => return refuse(e),
    };
    let secure = public_url.scheme() == "https";
    // A cluster name is a DNS label, and a pass is digits, dots and letters: a valid header.
    let cookie = format!(
        "{}={pass}; Path=/grafana/{cluster}/; HttpOnly; SameSite=Lax{}",
        if secure { SECURE_PASS_COOKIE } else { PASS_COOKIE },
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(&handover.next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    uncached(response)
}

/// The request's cookies, as `name=value`.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// This origin's pass, from the request's cookies.
fn pass_of(headers: &HeaderMap) -> Option<String> {
    cookies(headers)
        .filter_map(|c| c.split_once('='))
        .find(|(name, _)| *name == PASS_COOKIE || *name == SECURE_PASS_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Grafana's origin: the proxy, for whom this cluster's pass signs in. Its writes must come
/// from this origin's own pages.
async fn proxy_on_own_origin(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let Some(own_origin) = state.auth.grafana.own_origin() else {
        return refuse(AppError::not_found("This Pangea serves no Grafana on an origin of its own."));
    };
    let cluster = match cluster_of(req.uri().path()) {
        Ok(cluster) => cluster,
        Err(refusal) => return refuse(refusal),
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !crate::access::http::came_from(req.headers(), &own_origin) {
        return refuse(AppError::Forbidden {
            message: "This request did not come from Grafana's own pages, so it was refused as a possible \
                      cross-site request."
                .into(),
        });
    }
    let origin = crate::access::http::origin_of(&state.auth, peer, req.headers());
    let timeouts = (state.auth.idle_timeout, state.auth.absolute_timeout);
    let (access, pass) = (state.access.clone(), pass_of(req.headers()).unwrap_or_default());
    let scope = cluster.clone();
    let resolve = move || {
        let (access, pass, scope, origin) = (access.clone(), pass.clone(), scope.clone(), origin.clone());
        Box::pin(async move { access.principal_for_pass(&pass, &scope, timeouts, &origin).await })
    };
    let who = match resolve().await {
        Ok(Some(who)) => who,
        Ok(None) => {
            return refuse(AppError::Unauthorized {
                message: format!(
                    "Open cluster {cluster}'s Grafana from the console: this origin signs in only with its hand-over."
                ),
            });
        }
        Err(e) => return refuse(e),
    };
    let reresolve: crate::http::live::Reresolve = Arc::new(move || {
        let resolve = resolve.clone();
        Box::pin(async move { resolve().await.ok().flatten() })
    });
    let live = LiveCheck::new(&who, state.live_streams.clone(), reresolve, state.auth.live_recheck_every);
    let admitted = admitted(&who, req.uri().path()).and_then(|_| linked(&state, &cluster));
    match admitted {
        Ok((base, http)) => proxy(who, live, &own_origin, (&base, &http), &cluster, req).await,
        Err(refusal) => refuse(refusal),
    }
}

/// Forwards an admitted request to the cluster's Grafana (`base`, reached with `http`) as `who`.
/// `page_origin` is where Grafana's pages are served, which its WebSockets must come from.
async fn proxy(
    who: Principal,
    live: LiveCheck,
    page_origin: &str,
    (base, http): (&str, &reqwest::Client),
    cluster: &str,
    mut req: Request,
) -> Response {
    let path = req.uri().path().to_string();
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    // A WebSocket is a GET, which the cross-site check lets by: it must come from Grafana's pages.
    let from_pages = req.headers().get(header::ORIGIN).is_some_and(|o| o.as_bytes() == page_origin.as_bytes());
    if websocket && !from_pages {
        return refuse(AppError::Forbidden {
            message: "A WebSocket to Grafana must come from Grafana's own pages.".into(),
        });
    }
    let headers = match upstream_headers(req.headers(), &who, cluster, websocket) {
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
        // Grafana may not set Pangea's cookies, widen service workers, or clear
        // the console's storage; framing is this router's to say.
        let console_cookie = lower == "set-cookie"
            && value
                .to_str()
                .map_or(true, |v| PANGEA_COOKIES.iter().any(|n| v.trim_start().starts_with(&format!("{n}="))));
        let refused =
            matches!(lower, "x-frame-options" | "service-worker-allowed" | "clear-site-data") || console_cookie;
        if (!HOP_BY_HOP.contains(&lower) || upgrade) && !refused {
            response_headers.append(name.clone(), value.clone());
        }
    }
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) = (status, client_upgrade) {
        // The WebSocket ends when the person's console session ends or they lose the cluster.
        let cluster = cluster.to_string();
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
