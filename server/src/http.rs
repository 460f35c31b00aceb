//! The HTTP kit every area builds its handlers with: route lists (the routers are built from
//! them, so a list is exactly what is served), the JSON extractors whose rejections answer the
//! one JSON error shape, [`ApiError`] (the one `AppError` to response conversion), and the
//! middleware and metrics both listeners share. It imports no area; `crate::routes` composes
//! the areas' routes into the two listeners' routers.

pub mod body;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod ops;

use crate::AppState;
use app::error::AppError;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection, StringRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};

/// Largest request body accepted anywhere on the console (an import of 50,000 lines fits).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long the console may take to start answering a request.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One route: its method and path, and the handler the router serves there. Routers are built
/// from lists of these, so the list is exactly what is served (see [`console_routes`]).
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

/// A [`Route`]: `handler` answers `method` requests to `path`.
pub fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    Route { method, path, handler: axum::routing::on(filter, handler) }
}

/// The router serving `routes` (several methods on one path share it).
pub fn router_of(routes: Vec<Route>) -> Router<AppState> {
    routes.into_iter().fold(Router::new(), |router, r| router.route(r.path, r.handler))
}

/// Where a route is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Console,
    Boot,
    /// The clusters' Grafanas on an origin of their own (`--grafana-listen`).
    Grafana,
}

/// A route that answers every method, as Matchbox's boot endpoints do (listed as GET).
pub fn route_any<H, T>(path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Route { method: Method::GET, path, handler: axum::routing::any(handler) }
}

/// An [`AppError`] answered as JSON with its status.
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

/// A body refused by its extractor: too large, or not what the operation reads.
fn body_refused(status: StatusCode, why: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError(AppError::TooLarge {
            message: format!("The request body is larger than {} MiB; split it.", MAX_BODY_BYTES / 1024 / 1024),
        });
    }
    ApiError(AppError::invalid(format!("The request body was not accepted: {why}")))
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        body_refused(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError(AppError::invalid(format!("The query string was not accepted: {}", rejection.body_text())))
    }
}

/// JSON body extractor whose rejections are API errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query extractor whose rejections are API errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            // A route whose handler reads a parameter its path lacks: Pangea's bug, not the caller's.
            PathRejection::MissingPathParams(e) => ApiError(crate::error::internal(e)),
            other => ApiError(AppError::invalid(format!("The path was not accepted: {}", other.body_text()))),
        }
    }
}

/// Path extractor whose rejections are API errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<StringRejection> for ApiError {
    fn from(rejection: StringRejection) -> Self {
        body_refused(rejection.status(), rejection.body_text())
    }
}

/// A text body whose rejections (not UTF-8, too large) are API errors.
pub struct Text(pub String);

impl<S: Send + Sync> FromRequest<S> for Text {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Text(String::from_request(req, state).await?))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What `/api/v1` answers for a path it does not serve.
pub async fn api_not_found() -> ApiError {
    ApiError(AppError::not_found("There is no such API endpoint; see /api/v1/openapi.json."))
}

/// A cell a spreadsheet will not run as a formula: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'` (OWASP's advice). The machines import drops it again.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, [u8]> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into_bytes().into()
    } else {
        cell.as_bytes().into()
    }
}
