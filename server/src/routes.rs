//! The composition root's routers: the only module besides `lib.rs` that names every area. It
//! gathers each area's route list into the console (pages, server functions, `/api/v1`, sign-in,
//! operations endpoints, Grafana) and the machine-facing boot listener, which never share
//! session or API state.

use crate::AppState;
use crate::access::http as auth;
use crate::http::{
    ApiResult, Listener, MAX_BODY_BYTES, REQUEST_TIMEOUT, Route, metrics, middleware, ops, route, route_any, router_of,
};
use app::access::Principal;
use app::error::AppError;
use app::machines::ssr::SharedMachineService;
use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;

fn ops_routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/healthz", ops::healthz),
        route(Method::GET, "/readyz", ops::readyz),
        route(Method::GET, "/metrics", ops::metrics),
    ]
}

/// The routes under `/api/v1`: every area's, and the API's description.
fn api_routes() -> Vec<Route> {
    let openapi: Vec<Route> = vec![route(Method::GET, "/openapi.json", openapi)];
    [
        crate::machines::http::routes(),
        crate::audit::http::routes(),
        crate::provisioner::http::routes(),
        crate::provisioner::boots::http::routes(),
        crate::clusters::http::routes(),
        crate::monitoring::http::routes(),
        crate::power::http::routes(),
        crate::creation::http::routes(),
        crate::rolling::http::routes(),
        crate::overview::http::routes(),
        openapi,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The API description, for anyone signed in.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "This document", content_type = "application/json"), (status = 401, body = AppError)))]
async fn openapi(Extension(who): Extension<Principal>) -> ApiResult<Response> {
    app::access::authorize(&who, app::access::Permission::ViewMachines)?;
    let mut doc = ApiDoc::openapi();
    doc.merge(<crate::machines::http::MachinesApi as OpenApi>::openapi());
    doc.merge(<crate::audit::http::AuditApi as OpenApi>::openapi());
    doc.merge(<crate::provisioner::http::ProvisioningApi as OpenApi>::openapi());
    doc.merge(<crate::provisioner::boots::http::BootsApi as OpenApi>::openapi());
    doc.merge(<crate::clusters::http::ClustersApi as OpenApi>::openapi());
    doc.merge(<crate::monitoring::http::MonitoringApi as OpenApi>::openapi());
    doc.merge(<crate::power::http::PowerApi as OpenApi>::openapi());
    doc.merge(<crate::creation::http::CreationApi as OpenApi>::openapi());
    doc.merge(<crate::rolling::http::RollingApi as OpenApi>::openapi());
    doc.merge(<crate::overview::http::OverviewApi as OpenApi>::openapi());
    document_the_kits_answers(&mut doc);
    Ok(axum::Json(doc).into_response())
}

/// Adds to every operation the answers the HTTP kit gives whatever the handler does, as the one
/// JSON error shape: 401 and 403 (the caller and their role), 500; 400 where the operation
/// takes parameters or a body (a malformed one is refused before the handler); 404 where the
/// path names something; 413 where it takes a body.
fn document_the_kits_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("AppError"))).build())
            .build()
    };
    let add = |operation: &mut Operation| {
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let in_path = parameters.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
        let body = operation.request_body.is_some();
        let answers = [
            ("400", !parameters.is_empty() || body, "The path, query or body was not accepted"),
            ("401", true, "No valid session or token"),
            ("403", true, "The caller's role does not allow this"),
            ("404", in_path, "Nothing by that name or id"),
            ("413", body, "The body is too large"),
            ("500", true, "An internal error, named by its request id"),
        ];
        for (status, applies, what) in answers {
            if applies {
                operation.responses.responses.entry(status.to_string()).or_insert_with(|| error(what).into());
            }
        }
    };
    for item in doc.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch] {
            if let Some(operation) = operation.as_mut() {
                add(operation);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pangea API",
        description = "Automation API of the Pangea console. Errors are JSON objects with a stable `code` and a human `message`."
    ),
    paths(openapi)
)]
struct ApiDoc;

/// Every route the two listeners serve, as `(listener, method, path)`: operations endpoints,
/// `/auth/*`, `/api/v1/*`, every registered server function, every page, and the boot
/// listener's. The route-coverage test walks this list; the routers are built from the same
/// lists, so a route cannot be served without appearing here.
pub fn console_routes() -> Vec<(Listener, Method, String)> {
    let mut all: Vec<(Listener, Method, String)> = Vec::new();
    let mut add = |listener, routes: Vec<Route>, prefix: &str| {
        all.extend(routes.into_iter().map(|r| (listener, r.method, format!("{prefix}{}", r.path))));
    };
    add(Listener::Console, ops_routes(), "");
    add(Listener::Console, auth::routes(), "");
    add(Listener::Console, api_routes(), "/api/v1");
    add(Listener::Console, crate::monitoring::grafana::routes(), "");
    add(Listener::Boot, boot_routes(), "");
    add(Listener::Grafana, crate::monitoring::grafana::own_origin_routes(), "");
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        if path.starts_with(SERVER_FN_PREFIX) {
            all.push((
                Listener::Console,
                Method::from_bytes(method.as_str().as_bytes()).unwrap_or(Method::POST),
                path.to_string(),
            ));
        }
    }
    for page in generate_route_list(app::App) {
        all.push((Listener::Console, Method::GET, page.path().to_string()));
    }
    all
}

/// Where the GUI's server functions are served.
const SERVER_FN_PREFIX: &str = "/api/gui/";

/// The console: pages, server functions, `/api/v1`, and `/healthz`, `/readyz`, `/metrics`.
pub fn console_router(state: AppState) -> Router {
    let leptos_options = state.leptos.clone();
    let routes = generate_route_list(app::App);
    let service: SharedMachineService = state.machines.clone();
    let methods = app::account::LoginOptions {
        single_sign_on: state.oidc.is_some(),
        local_password: state.access.local_login_enabled(),
        idp_origin: state.oidc.as_ref().map(|o| o.issuer().origin().ascii_serialization()),
    };
    let audit: app::audit::ssr::SharedAuditService = state.audit.clone();
    let access: app::access::ssr::SharedAccessService = state.access.clone();
    let provisioning: app::provisioning::ssr::SharedProvisioningService = state.provisioner.clone();
    let clusters: app::clusters::ssr::SharedClusterService = state.clusters.clone();
    let monitoring: app::monitoring::ssr::SharedMonitoringService = state.monitoring.clone();
    let grafana_frames = app::monitoring::GrafanaFrames(state.auth.grafana.own_origin());
    let power: app::power::ssr::SharedPowerService = std::sync::Arc::new(state.power.clone());
    let creation: app::clusters::ssr::SharedCreationService = state.creation.clone();
    let rolling: app::clusters::ssr::SharedRollingService = state.rolling.clone();
    let overview: app::overview::ssr::SharedOverviewService = state.overview.clone();
    let context = move || {
        leptos::prelude::provide_context(overview.clone());
        leptos::prelude::provide_context(power.clone());
        leptos::prelude::provide_context(creation.clone());
        leptos::prelude::provide_context(rolling.clone());
        leptos::prelude::provide_context(grafana_frames.clone());
        leptos::prelude::provide_context(clusters.clone());
        leptos::prelude::provide_context(monitoring.clone());
        leptos::prelude::provide_context(provisioning.clone());
        leptos::prelude::provide_context(service.clone());
        leptos::prelude::provide_context(audit.clone());
        leptos::prelude::provide_context(access.clone());
        leptos::prelude::provide_context(methods.clone());
        leptos::nonce::provide_nonce();
    };
    let server_fn_context = context.clone();
    // Site files are served as files; any other unknown path gets the console's "not found" page.
    let not_found = leptos_axum::file_and_error_handler::<AppState, _>(app::shell);
    let fallback = move |uri: axum::http::Uri, state: axum::extract::State<AppState>, req: axum::extract::Request| {
        let not_found = not_found.clone();
        async move {
            if auth::is_site_file(uri.path()) {
                crate::site::serve_file(&state.leptos.site_root, req).await
            } else {
                not_found(uri, state, req).await
            }
        }
    };
    let gui = Router::<AppState>::new()
        .leptos_routes_with_context(&state, routes, context, {
            let options = leptos_options.clone();
            move || app::shell(options.clone())
        })
        .route(
            "/api/gui/{*fn_name}",
            axum::routing::post(move |req: axum::extract::Request| {
                leptos_axum::handle_server_fns_with_context(server_fn_context.clone(), req)
            }),
        )
        .nest("/api/v1", router_of(api_routes()).fallback(crate::http::api_not_found))
        .merge(router_of(auth::routes()))
        .fallback(fallback)
        .layer(axum::middleware::from_fn(middleware::static_cache_headers))
        .layer(axum::middleware::from_fn(auth::require_sign_in_for_pages));
    let gui = with_sessions(gui, &state);
    // Grafana on the console's origin, or the hand-over to its own: the same sessions, its own
    // security headers (the console may frame it).
    let grafana = crate::monitoring::grafana::with_headers(
        with_sessions(
            router_of(crate::monitoring::grafana::routes())
                .layer(axum::middleware::from_fn(auth::require_sign_in_for_pages)),
            &state,
        ),
        None,
    );

    let hsts = state.auth.secure_cookies.then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        )
    });
    router_of(ops_routes())
        .with_state(state.clone())
        .merge(gui)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A request whose answer has not started within a minute gets 408; streamed bodies
        // (exports) may take longer once they have started.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(tower::util::option_layer(hsts.clone()))
        .layer(CompressionLayer::new().br(true).gzip(true))
        // Every console response carries these; a page's own CSP (with its nonce) is kept.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .merge(grafana.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).layer(tower::util::option_layer(hsts)))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(axum::middleware::from_fn(middleware::request_id))
}

/// Grafana's own origin (`--grafana-listen`): the hand-over and the proxy, framed by the console
/// only. The console's routes and sessions are not here.
pub fn grafana_router(state: AppState) -> Router {
    let hsts = state.auth.grafana.own_origin().is_some_and(|o| o.starts_with("https:")).then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000"),
        )
    });
    crate::monitoring::grafana::with_headers(
        router_of(crate::monitoring::grafana::own_origin_routes()).with_state(state.clone()),
        Some(&state.auth.public_origin),
    )
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    .layer(tower::util::option_layer(hsts))
    .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
    .layer(axum::middleware::from_fn(middleware::request_id))
}

/// `router` with the console's sessions: the signed-in person (or an API token's, on `/api/v1`)
/// as a [`Principal`](app::access::Principal) extension, and cross-site writes refused.
fn with_sessions(router: Router<AppState>, state: &AppState) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::resolve_principal))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::reject_cross_site))
        .layer(
            tower_sessions::SessionManagerLayer::new(state.sessions.clone())
                // On https the `__Host-` prefix makes browsers keep the cookie for this host
                // only, sent over https only, for every path.
                .with_name(if state.auth.secure_cookies { "__Host-pangea_session" } else { "pangea_session" })
                .with_path("/")
                .with_http_only(true)
                .with_same_site(tower_sessions::cookie::SameSite::Lax)
                .with_secure(state.auth.secure_cookies)
                .with_expiry(tower_sessions::Expiry::OnInactivity(
                    tower_sessions::cookie::time::Duration::try_from(state.auth.idle_timeout)
                        .unwrap_or(tower_sessions::cookie::time::Duration::hours(8)),
                )),
        )
        .with_state(state.clone())
}

fn boot_routes() -> Vec<Route> {
    use crate::provisioner::{assets, boot};
    vec![
        route_any("/", boot::root),
        route_any("/boot.ipxe", boot::boot_ipxe),
        route_any("/boot.ipxe.0", boot::boot_ipxe),
        route_any("/ipxe", boot::ipxe),
        route_any("/grub", boot::grub),
        route_any("/ignition", boot::ignition),
        route_any("/generic", boot::generic),
        route_any("/metadata", boot::metadata),
        route_any("/assets", assets::assets_root),
        route_any("/assets/", assets::assets),
        route_any("/assets/{*path}", assets::assets),
        // GET only: another method must not use up a link.
        route(Method::GET, "/cluster-secrets/{token}/{*path}", crate::creation::http::secret),
    ]
}

/// The machine-facing listener: Matchbox's endpoints, answered from the in-memory boot index.
/// It has no session, no token and nothing to change, and answers anything else with
/// Matchbox's terse 404, so it can never list machines.
pub fn boot_router(state: AppState) -> Router {
    router_of(boot_routes())
        .fallback(|| async { crate::provisioner::boot::not_found() })
        .layer(axum::middleware::from_fn_with_state(state.provisioner.clone(), crate::provisioner::boots::observe))
        .layer(axum::middleware::from_fn_with_state(state.provisioner.clone(), crate::provisioner::boots::guard))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, metrics::record))
        .layer(axum::middleware::from_fn(middleware::request_id))
}
