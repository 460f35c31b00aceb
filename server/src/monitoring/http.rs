//! `/api/v1/clusters/{name}/charts`, `…/nodes/{node}/charts` and `…/query`: thin adapters over
//! [`Monitoring`].

use super::Monitoring;
use crate::http::api::{ApiError, Json};
use crate::http::{Route, route};
use app::access::Principal;
use app::error::AppError;
use app::monitoring::ssr::MonitoringService;
use app::monitoring::{Chart, Charts};
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use serde::Deserialize;
use std::sync::Arc;

type ApiResult<T> = Result<T, ApiError>;

/// The routes, under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/clusters/{name}/charts", cluster_charts),
        route(Method::GET, "/clusters/{name}/nodes/{node}/charts", node_charts),
        route(Method::GET, "/clusters/{name}/query", query),
    ]
}

fn default_range() -> String {
    "1h".into()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RangeParams {
    /// `15m`, `1h`, `6h`, `24h`, `7d`, or `START..END` in Unix seconds [default: 1h].
    #[serde(default = "default_range")]
    range: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QueryParams {
    /// PromQL (required; checked after the caller's role, like everything else).
    #[serde(default)]
    query: String,
    /// As for charts [default: 1h].
    #[serde(default = "default_range")]
    range: String,
}

/// The cluster's charts (CPU, memory, pods, API server, etcd) from its Prometheus.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/charts", params(RangeParams),
    responses((status = 200, body = Charts), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn cluster_charts(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(params): Query<RangeParams>,
) -> ApiResult<Json<Charts>> {
    Ok(Json(m.cluster_charts(&who, &name, &params.range).await?))
}

/// A node's charts (CPU, memory, filesystems, network) from node_exporter's series.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/nodes/{node}/charts", params(RangeParams),
    responses((status = 200, body = Charts), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn node_charts(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path((name, node)): Path<(String, String)>,
    Query(params): Query<RangeParams>,
) -> ApiResult<Json<Charts>> {
    Ok(Json(m.node_charts(&who, &name, &node, &params.range).await?))
}

/// A PromQL range query against the cluster's Prometheus, for the caller, with the step set
/// from the range (at most 300 points) and a 10 s timeout.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/query", params(QueryParams),
    responses((status = 200, body = Chart), (status = 400, body = AppError), (status = 502, body = AppError)))]
async fn query(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(params): Query<QueryParams>,
) -> ApiResult<Json<Chart>> {
    Ok(Json(m.query(&who, &name, &params.query, &params.range).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(cluster_charts, node_charts, query),
    components(schemas(Charts, Chart, app::monitoring::Series, app::monitoring::Unit))
)]
pub struct MonitoringApi;
