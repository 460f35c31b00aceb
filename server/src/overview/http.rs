//! The overview under `/api/v1`: the fleet at a glance, as the home page shows it.

use super::Overview;
use crate::http::{ApiResult, Json, Route, route};
use app::access::Principal;
use app::error::AppError;
use app::overview::ssr::OverviewService;
use app::overview::{ClusterGlance, Failure, Fleet, RunningJob, StateCount};
use axum::Extension;
use axum::extract::State;
use axum::http::Method;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![route(Method::GET, "/overview", fleet)]
}

/// Machines by boot and power state, clusters with their health and firing alerts, running
/// jobs and the last failures, as the caller may see them.
#[utoipa::path(get, path = "/api/v1/overview", operation_id = "fleet_overview",
    responses((status = 200, body = Fleet), (status = 403, body = AppError)))]
async fn fleet(State(overview): State<Arc<Overview>>, Extension(who): Extension<Principal>) -> ApiResult<Json<Fleet>> {
    Ok(Json(overview.fleet(&who).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(fleet), components(schemas(Fleet, StateCount, ClusterGlance, RunningJob, Failure, AppError)))]
pub struct OverviewApi;
