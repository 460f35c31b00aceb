//! Sign-in for the console: who each request is (session or API token), the cross-site request
//! guard, the redirect to the login page, and the `/auth/*` routes.

use crate::AppState;
use crate::access::Origin;
use crate::access::sessions::{SESSION_GROUPS, UserSession, delete_session, idp_token_place, refresh_token_place};
use crate::access::sso::{IdpTokenKind, OidcError, RefreshedGroups};
use crate::audit::{self, Event};
use crate::http::{Route, route};
use app::access::Principal;
use app::error::AppError;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/auth/login", login),
        route(Method::POST, "/auth/logout", logout),
        route(Method::POST, "/auth/logout-everywhere", logout_everywhere),
        route(Method::GET, "/auth/oidc/start", sso_start),
        route(Method::GET, "/auth/oidc/callback", sso_callback),
    ]
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    next: String,
}

/// The cookie that carries a sign-in on its way through the IdP (sealed, for the callback only).
fn pending_sso_cookie(state: &AppState) -> &'static str {
    if state.auth.secure_cookies { "__Secure-pangea_sso" } else { "pangea_sso" }
}

/// What the pending sign-in's sealing is bound to.
const PENDING_SSO_PLACE: &str = "browser pending_sso";

/// How long a sign-in may take at the IdP.
const PENDING_SSO_SECONDS: u32 = 600;

/// The `Set-Cookie` value that keeps `value` (or, empty, clears the cookie) for the callback.
fn pending_sso_set_cookie(state: &AppState, value: &str) -> String {
    let max_age = if value.is_empty() { 0 } else { PENDING_SSO_SECONDS };
    let secure = if state.auth.secure_cookies { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/auth/oidc/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        pending_sso_cookie(state)
    )
}

/// Sends the browser to the IdP, with state, nonce and PKCE verifier sealed in a short-lived
/// cookie: an anonymous start writes nothing to the database (a stranger can start any number).
async fn sso_start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Extension(who): axum::Extension<Principal>,
    headers: HeaderMap,
    Query(query): Query<StartQuery>,
) -> Response {
    let started = std::time::Instant::now();
    let Some(oidc) = &state.oidc else { return Redirect::to("/login?error=sso_off").into_response() };
    match oidc.begin(local_path(&query.next).to_string()).await {
        Ok((url, pending)) => match serde_json::to_string(&pending) {
            Ok(json) => {
                let sealed = state.sealer.seal(&SecretString::from(json), PENDING_SSO_PLACE);
                let timing = format!("pangea;dur={:.3}", started.elapsed().as_secs_f64() * 1e3);
                let cookie = [(header::SET_COOKIE, pending_sso_set_cookie(&state, &sealed))];
                with_timing_for_admins(&who, timing, (cookie, Redirect::to(url.as_str())))
            }
            Err(e) => json_error(crate::error::internal(e)),
        },
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on could not start");
            state.access.sso_failed(&e, &origin_of(&state.auth, peer, &headers)).await;
            Redirect::to(&format!("/login?error={}", e.code())).into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Where the IdP sends the browser back: verifies everything, then signs the person in. The
/// pending sign-in's cookie is taken once: every answer clears it, so a replay finds none.
async fn sso_callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: UserSession,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let pending = cookie_value(&headers, pending_sso_cookie(&state))
        .and_then(|sealed| state.sealer.open(sealed, PENDING_SSO_PLACE).ok())
        .and_then(|json| serde_json::from_str::<crate::access::sso::PendingLogin>(json.expose_secret()).ok());
    let mut response = finish_sso(&state, peer, session, &headers, query, pending).await;
    if let Ok(clear) = axum::http::HeaderValue::from_str(&pending_sso_set_cookie(&state, "")) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// The value of cookie `name` in a request's `Cookie` headers.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

async fn finish_sso(
    state: &AppState,
    peer: SocketAddr,
    session: UserSession,
    headers: &HeaderMap,
    query: CallbackQuery,
    pending: Option<crate::access::sso::PendingLogin>,
) -> Response {
    let origin = origin_of(&state.auth, peer, headers);
    let started = std::time::Instant::now();
    let Some(oidc) = &state.oidc else { return Redirect::to("/login?error=sso_off").into_response() };
    let outcome = match (pending, query) {
        (_, CallbackQuery { error: Some(error), error_description, .. }) => Err(OidcError::Denied(format!(
            "{error}{}",
            error_description.map(|d| format!(" ({d})")).unwrap_or_default()
        ))),
        (Some(pending), CallbackQuery { code: Some(code), state: Some(returned), .. }) => {
            let next = pending.next.clone();
            oidc.finish(pending, &returned, code).await.map(|(identity, grant, idp)| (identity, grant, idp, next))
        }
        _ => Err(OidcError::State),
    };
    let (identity, grant, idp_time, next) = match outcome {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on failed");
            state.access.sso_failed(&e, &origin).await;
            return Redirect::to(&format!("/login?error={}", e.code())).into_response();
        }
    };
    let principal = match state.access.login_oidc(&identity, &origin).await {
        Ok(p) => p,
        Err(AppError::Forbidden { .. }) => return Redirect::to("/login?error=sso_refused").into_response(),
        Err(e) => return json_error(e),
    };
    let Some(user_id) = principal.user_id() else { return Redirect::to("/login?error=sso_refused").into_response() };
    match session.sign_in(user_id).await {
        Ok(id) => {
            let sealed = (grant.kind, state.sealer.seal(&grant.token, &idp_token_place(&id, grant.kind)));
            let sealed = Some(sealed);
            match state.access.remember_session(user_id, &id, &origin, sealed).await {
                Ok(()) => {
                    // Server-Timing splits the sign-in into the IdP's share and Pangea's own.
                    let own = started.elapsed().saturating_sub(idp_time);
                    let timing = format!(
                        "idp;dur={:.3}, pangea;dur={:.3}",
                        idp_time.as_secs_f64() * 1e3,
                        own.as_secs_f64() * 1e3
                    );
                    with_timing_for_admins(&principal, timing, Redirect::to(local_path(&next)))
                }
                Err(e) => json_error(e),
            }
        }
        Err(e) => json_error(crate::error::internal(e)),
    }
}

/// `Server-Timing` tells how long each step took, which helps an attacker time guesses: only
/// admins get it.
fn with_timing_for_admins(who: &Principal, timing: String, response: impl IntoResponse) -> Response {
    if who.role == Some(app::access::ConsoleRole::Admin) {
        ([("server-timing", timing)], response).into_response()
    } else {
        response.into_response()
    }
}

/// Who sent a request: the peer's address, or, when the peer is a trusted proxy, the address
/// its `X-Forwarded-For` names: the right-most entry that is not itself a trusted proxy.
pub fn origin_of(auth: &crate::access::AuthSettings, peer: SocketAddr, headers: &HeaderMap) -> Origin {
    let trusted = |ip: std::net::IpAddr| auth.trusted_proxies.iter().any(|range| range.contains(ip));
    let mut ip = peer.ip();
    if trusted(ip) {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        // From the nearest hop outwards; a hop that is not a plain address ends the walk there
        // (whatever lies beyond it came from the client, not from a proxy we trust).
        for hop in forwarded.iter().rev() {
            let Ok(hop) = hop.trim().parse::<std::net::IpAddr>() else { break };
            ip = hop;
            if !trusted(hop) {
                break;
            }
        }
    }
    Origin {
        ip: Some(ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn json_error(error: AppError) -> Response {
    crate::http::ApiError(error).into_response()
}

/// Resolves the [`Principal`] of every console request: an API token on `/api/v1`, else the
/// session. An unknown, revoked or expired token is refused here, and audited.
pub async fn resolve_principal(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: UserSession,
    mut req: Request,
    next: Next,
) -> Response {
    // Site files are the same for everyone: serving them needs no session or database.
    if is_site_file(req.uri().path()) {
        return next.run(req).await;
    }
    let origin = origin_of(&state.auth, peer, req.headers());
    // How a live stream opened by this request asks again who its caller is (see http::live).
    let mut reresolve: crate::http::live::Reresolve = Arc::new(|| Box::pin(async { None }));
    let mut ended = None;
    let principal = if let (true, Some(token)) = (req.uri().path().starts_with("/api/v1/"), bearer(req.headers())) {
        match state.access.principal_for_token(token, &origin).await {
            Ok(Some(p)) => {
                let (access, token, origin) = (state.access.clone(), token.to_string(), origin.clone());
                reresolve = Arc::new(move || {
                    let (access, token, origin) = (access.clone(), token.clone(), origin.clone());
                    Box::pin(async move { access.principal_for_token(&token, &origin).await.ok().flatten() })
                });
                p
            }
            Ok(None) => {
                let error = AppError::Unauthorized { message: "This API token is unknown, revoked or expired.".into() };
                let who = Principal::anonymous(origin.ip, origin.user_agent.clone());
                let event = Event::new("token.use", "token").summary(serde_json::json!({ "path": req.uri().path() }));
                audit::record_refusal(&state.db, &who, event.failed(&error)).await;
                return json_error(error);
            }
            Err(e) => return json_error(e),
        }
    } else {
        let user = match session.signed_in(state.auth.absolute_timeout, state.auth.idle_timeout).await {
            Some(signed_in) => {
                if signed_in.touched
                    && let Some(id) = session.id()
                    && let Err(e) = state.access.touch_session(&id).await
                {
                    tracing::warn!(error = %e, "could not note a session as in use");
                }
                // A session signed out elsewhere ("sign out everywhere", the IdP) is gone from the
                // sessions list even if a request in flight saved it again: it counts as ended.
                match session.id() {
                    Some(id) if state.access.session_listed(&id).await.unwrap_or(false) => {
                        let (access, from, user_id) = (state.access.clone(), origin.clone(), signed_in.user_id);
                        reresolve = Arc::new(move || {
                            let (access, origin, id) = (access.clone(), from.clone(), id.clone());
                            Box::pin(async move {
                                if !access.session_listed(&id).await.unwrap_or(false) {
                                    return None;
                                }
                                access.principal_for_user(user_id, &origin).await.ok().flatten()
                            })
                        });
                        state.access.principal_for_user(signed_in.user_id, &origin).await
                    }
                    other => {
                        // Ended by the IdP's answer: the next page says why (requests of the
                        // page's own data leave that to it).
                        let page = req.method() == Method::GET
                            && !["/api/", "/auth/"].iter().any(|p| req.uri().path().starts_with(p));
                        let keep_for_page = match other {
                            Some(id) if page => {
                                if let Ok(Some(why)) = state.access.take_ended_session(&id).await {
                                    ended = Some(SessionEnded(why));
                                }
                                false
                            }
                            Some(id) => state.access.session_ended(&id).await.unwrap_or(false),
                            None => false,
                        };
                        if !keep_for_page {
                            let _ = session.sign_out().await;
                        }
                        Ok(None)
                    }
                }
            }
            None => Ok(None),
        };
        match user {
            Ok(Some(p)) if p.auth_method() == "oidc" && !refresh_at_idp_in_background(&state, &session, &p).await => {
                let _ = session.sign_out().await;
                Principal::anonymous(origin.ip, origin.user_agent.clone())
            }
            Ok(Some(p)) => p,
            Ok(None) => Principal::anonymous(origin.ip, origin.user_agent.clone()),
            Err(e) => return json_error(e),
        }
    };
    let live = crate::http::live::LiveCheck::new(
        &principal,
        state.live_streams.clone(),
        reresolve,
        state.auth.live_recheck_every,
    );
    req.extensions_mut().insert(live);
    req.extensions_mut().insert(principal);
    if let Some(ended) = ended {
        req.extensions_mut().insert(ended);
    }
    next.run(req).await
}

/// Why this request's session ended (a login page error code), when the IdP's answer ended it.
#[derive(Debug, Clone)]
struct SessionEnded(String);

/// Asks the IdP, at most every refresh interval and never on the request's own time, whether a
/// single-sign-on session may go on, using the session's refresh token. One refresh runs per
/// session at a time. Returns `false` only when the session must end now: its sealed refresh
/// token cannot be opened (a replica with another secret key), which fails closed.
async fn refresh_at_idp_in_background(state: &AppState, session: &UserSession, who: &Principal) -> bool {
    let (Some(oidc), Some(session_id)) = (&state.oidc, session.id()) else { return true };
    if !state.refreshing.lock().unwrap_or_else(|p| p.into_inner()).insert(session_id.clone()) {
        return true;
    }
    let (kind, sealed) = match state.access.claim_refresh(&session_id, oidc.refresh_every()).await {
        Ok(Some(claimed)) => claimed,
        Ok(None) => {
            state.refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&session_id);
            return true;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not claim a session's IdP refresh");
            state.refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&session_id);
            return true;
        }
    };
    let token = match state.sealer.open(&sealed, &idp_token_place(&session_id, kind)) {
        Ok(token) => token,
        Err(problem) => {
            tracing::error!(
                user = %who.actor(),
                %problem,
                "a session's sealed IdP refresh token cannot be opened; ending the session"
            );
            state.access.revoked_by_idp(who, &session_id, "the sealed refresh token could not be opened").await;
            state.refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&session_id);
            return false;
        }
    };
    let (state, oidc, who) = (state.clone(), oidc.clone(), who.clone());
    state.background.clone().spawn(async move {
        // Whom the IdP's answers must be about; unknown now (a database error), the refresh is
        // left to the next interval rather than spending the token on answers nobody can check.
        let subject = match who.user_id() {
            Some(user_id) => state.access.sso_subject(user_id).await.ok().flatten(),
            None => None,
        };
        let answer = match (kind, &subject) {
            (_, None) => crate::access::sso::Refreshed::Unavailable("the person's IdP subject could not be read".into()),
            (IdpTokenKind::Refresh, Some(subject)) => oidc.refresh(&token, subject).await,
            (IdpTokenKind::Access, Some(subject)) => oidc.recheck(&token, subject).await,
        };
        let subject = subject.unwrap_or_default();
        match answer {
            crate::access::sso::Refreshed::Valid { rotated, groups } => {
                if let Some(rotated) = rotated
                    && let Err(e) = state
                        .access
                        .keep_refresh_token(
                            &session_id,
                            &state.sealer.seal(&rotated, &refresh_token_place(&session_id)),
                        )
                        .await
                {
                    tracing::error!(error = %e, "could not keep a rotated IdP refresh token");
                }
                match groups {
                    RefreshedGroups::Named(groups) => {
                        if let Some(user_id) = who.user_id()
                            && let Err(e) = state.access.update_groups(user_id, oidc.issuer_text(), &subject, &groups).await
                        {
                            tracing::warn!(error = %e, "could not keep the groups from an IdP refresh");
                        }
                    }
                    // Without groups to keep (its sign-in named none), nothing would outlive the IdP.
                    RefreshedGroups::Unnamed if oidc_groups(&who).is_empty() => {}
                    RefreshedGroups::Unnamed => {
                        let reason = "the identity provider's refresh named none of the person's groups (neither \
                                      the ID token nor userinfo had the groups claim)";
                        tracing::info!(user = %who.actor(), reason, "ending a session");
                        // Its store entry stays until its next request, which is told why.
                        state.access.ended_by_idp(&who, &session_id, SESSION_GROUPS, reason).await;
                    }
                    RefreshedGroups::Unknown(reason) => {
                        tracing::warn!(%reason, "could not learn a person's groups at an IdP refresh; keeping them and asking again later");
                    }
                }
            }
            crate::access::sso::Refreshed::Revoked(reason) => {
                tracing::info!(user = %who.actor(), %reason, "the IdP no longer accepts this session");
                // Recorded before the session ends: whoever sees it gone finds why in the audit log.
                state.access.revoked_by_idp(&who, &session_id, &reason).await;
                delete_session(&state.sessions, &session_id).await;
            }
            crate::access::sso::Refreshed::Unavailable(reason) => {
                tracing::warn!(%reason, "could not refresh a session at the IdP; keeping it and trying again later");
            }
        }
        state.refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&session_id);
    });
    true
}

/// The IdP groups a single-sign-on person has now.
fn oidc_groups(who: &Principal) -> &[String] {
    match &who.identity {
        app::access::Identity::Oidc { groups, .. } => groups,
        _ => &[],
    }
}

/// The wasm, scripts, styles and icons under the site root.
pub fn is_site_file(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg"
}

/// Pages need a signed-in person: anyone else is sent to the login page, and back afterwards.
pub async fn require_sign_in_for_pages(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = is_site_file(path) || ["/login", "/auth/", "/api/"].iter().any(|p| path.starts_with(p));
    let anonymous = req.extensions().get::<Principal>().is_none_or(|p| p.identity == app::access::Identity::Anonymous);
    if req.method() == Method::GET && !open && anonymous {
        let next_url = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let why = req.extensions().get::<SessionEnded>().map(|e| format!("&error={}", urlencode(&e.0)));
        return Redirect::to(&format!("/login?next={}{}", urlencode(next_url), why.unwrap_or_default()))
            .into_response();
    }
    // A page the person may not open still renders (it says why), but with the status that
    // says so, decided here by the page's permission rather than by what its data loading hit.
    let refused =
        match (req.method() == Method::GET, app::pages::permission_for_page(path), req.extensions().get::<Principal>())
        {
            (true, Some(permission), Some(who)) => app::access::authorize(who, permission).err(),
            _ => None,
        };
    let mut response = next.run(req).await;
    if let Some(refusal) = refused {
        *response.status_mut() = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    }
    response
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Refuses state-changing requests that a browser may have sent from another site (CSRF).
/// Browsers mark their requests with `Sec-Fetch-Site` or `Origin`. Only `/api/v1` accepts a
/// `Bearer` token instead of a cookie, so only there does a token skip the check; everywhere
/// else (`/api/gui`, `/auth`, pages) a state-changing request must show that it came from this
/// site, and one with neither header is refused.
pub async fn reject_cross_site(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let token_route = req.uri().path().starts_with("/api/v1/") && bearer(req.headers()).is_some();
    // The API answers only the console's own pages (or a token): a script on another origin,
    // such as a Grafana's on its own listener, is refused even a read with the person's cookie.
    let site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let api_from_elsewhere = req.uri().path().starts_with("/api/")
        && !token_route
        && site.is_some_and(|site| !matches!(site, "same-origin" | "none"));
    if api_from_elsewhere || (!safe && !token_route && !came_from(req.headers(), &state.auth.public_origin)) {
        return json_error(AppError::Forbidden {
            message: "This request did not show that it came from this console (no matching Origin or \
                      Sec-Fetch-Site header), so it was refused as a possible cross-site request. Scripts: \
                      use /api/v1 with an API token."
                .into(),
        });
    }
    next.run(req).await
}

/// Whether a browser's request says it came from `origin`'s own pages: `Sec-Fetch-Site`, or
/// where a browser sends none, `Origin`.
pub fn came_from(headers: &HeaderMap, origin: &str) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match (site, headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())) {
        (Some(site), _) => matches!(site, "same-origin" | "none"),
        (None, Some(sent)) => sent == origin,
        (None, None) => false,
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: SecretString,
    #[serde(default)]
    next: String,
}

/// Only paths on this site, so the login cannot be used to bounce people elsewhere. Browsers
/// drop tabs and line breaks from URLs and read `\\` as `/`, so `/\t/evil.example` and
/// `/\\evil.example` would both become `//evil.example`: any control character or backslash
/// is refused.
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.chars().any(|c| c.is_control() || c == '\\');
    if local { next } else { "/" }
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: UserSession,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let origin = origin_of(&state.auth, peer, &headers);
    let back = |code: &str| {
        Redirect::to(&format!("/login?error={code}&next={}", urlencode(local_path(&form.next)))).into_response()
    };
    match state.access.login_local(form.username.trim(), &form.password, &origin).await {
        Ok(principal) => {
            let Some(user_id) = principal.user_id() else { return back("invalid") };
            match session.sign_in(user_id).await {
                Ok(id) => {
                    if let Err(e) = state.access.remember_session(user_id, &id, &origin, None).await {
                        return json_error(e);
                    }
                    Redirect::to(local_path(&form.next)).into_response()
                }
                Err(e) => json_error(crate::error::internal(e)),
            }
        }
        Err(AppError::RateLimited { .. }) => back("throttled"),
        Err(e) if e.status() == 400 => back("too_long"),
        Err(AppError::Forbidden { .. }) => back("disabled"),
        Err(AppError::Unauthorized { .. }) => back("invalid"),
        Err(e) => json_error(e),
    }
}

async fn logout(State(state): State<AppState>, req: Request) -> Response {
    sign_out(&state, req, false).await
}

async fn logout_everywhere(State(state): State<AppState>, req: Request) -> Response {
    sign_out(&state, req, true).await
}

async fn sign_out(state: &AppState, req: Request, everywhere: bool) -> Response {
    let (mut parts, _) = req.into_parts();
    let who = parts.extensions.get::<Principal>().cloned();
    let who_was_oidc = who.as_ref().is_some_and(|p| p.auth_method() == "oidc");
    let Ok(session) =
        <UserSession as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await
    else {
        return Redirect::to("/login").into_response();
    };
    if let Some(who) = who.filter(|p| p.user_id().is_some()) {
        let user_id = who.user_id().unwrap_or_default();
        let ended: Vec<String> = if everywhere {
            state
                .access
                .sessions_of(user_id)
                .await
                .map(|s| s.into_iter().map(|(id, ..)| id).collect())
                .unwrap_or_default()
        } else {
            session.id().into_iter().collect()
        };
        for id in &ended {
            delete_session(&state.sessions, id).await;
            let _ = state.access.forget_session(id).await;
        }
        let action = if everywhere { "session.logout_everywhere" } else { "session.logout" };
        let event = Event::new(action, "user")
            .target(user_id, who.actor())
            .summary(serde_json::json!({ "sessions": ended.len() }));
        let _ = audit::record(&state.db, &who, event).await;
    }
    let _ = session.sign_out().await;
    // People who came through the IdP leave it too, when it offers a way.
    let via_idp = who_was_oidc;
    match (via_idp, &state.oidc) {
        (true, Some(oidc)) => match oidc.logout_url().await {
            Some(url) => Redirect::to(url.as_str()).into_response(),
            None => Redirect::to("/login?signed_out=1").into_response(),
        },
        _ => Redirect::to("/login?signed_out=1").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_path("/machines?q=a"), "/machines?q=a");
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("/\t/evil.example"), "/");
        assert_eq!(local_path("/\n/evil.example"), "/");
        assert_eq!(local_path("/machines\\x"), "/");
        assert_eq!(local_path("/machines/52:54:00:00:00:01"), "/machines/52:54:00:00:00:01");
    }
}
