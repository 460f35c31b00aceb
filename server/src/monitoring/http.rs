//! The monitoring routes under `/api/v1`: charts and queries, alerts and silences, etcd, the
//! Grafana dashboards, and the dashboards Pangea draws. Thin adapters over [`Monitoring`].

use super::Monitoring;
use crate::http::{ApiResult, Json, Text};
use crate::http::{Path, Query};
use crate::http::{Route, route};
use app::access::Principal;
use app::error::AppError;
use app::monitoring::dashboards::{Choices, DashboardSummary, DashboardView, PanelAnswer};
use app::monitoring::ssr::MonitoringService;
use app::monitoring::{Alerts, Chart, Charts, EtcdHealth, GrafanaDashboard, Silence, SilenceInput};
use axum::Extension;
use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// The routes, under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/clusters/{name}/charts", cluster_charts),
        route(Method::GET, "/clusters/{name}/nodes/{node}/charts", node_charts),
        route(Method::GET, "/clusters/{name}/query", query),
        route(Method::GET, "/clusters/{name}/alerts", alerts),
        route(Method::GET, "/clusters/{name}/etcd", etcd),
        route(Method::GET, "/clusters/{name}/dashboards", dashboards),
        route(Method::GET, "/alerts/firing", firing),
        route(Method::GET, "/clusters/{name}/silences", silences),
        route(Method::POST, "/clusters/{name}/silences", silence),
        route(Method::DELETE, "/clusters/{name}/silences/{id}", expire),
        route(Method::GET, "/dashboards", list_dashboards),
        route(Method::POST, "/dashboards", import_dashboard),
        route(Method::DELETE, "/dashboards/{uid}", delete_dashboard),
        route(Method::GET, "/clusters/{name}/dashboards/{uid}", dashboard),
        route(Method::GET, "/clusters/{name}/dashboards/{uid}/panels/{panel}", dashboard_panel),
        route(Method::POST, "/clusters/{name}/grafana-dashboards/{uid}/import", import_grafana_dashboard),
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AlertParams {
    /// Only the alerts whose `node` label, or `instance` host, is this node.
    node: Option<String>,
}

/// Alerts firing (Alertmanager) and pending (Prometheus) in the cluster, or on one node.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/alerts", params(AlertParams),
    responses((status = 200, body = Alerts), (status = 404, body = AppError)))]
async fn alerts(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(params): Query<AlertParams>,
) -> ApiResult<Json<Alerts>> {
    Ok(Json(m.alerts(&who, &name, params.node).await?))
}

/// etcd's members (health, leader, database size against quota, failed proposals) and its
/// quorum in words.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/etcd",
    responses((status = 200, body = EtcdHealth), (status = 404, body = AppError)))]
async fn etcd(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<EtcdHealth>> {
    Ok(Json(m.etcd(&who, &name).await?))
}

/// The dashboards of the cluster's Grafana, as the caller sees them there.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/dashboards",
    responses((status = 200, body = Vec<GrafanaDashboard>), (status = 404, body = AppError), (status = 502, body = AppError)))]
async fn dashboards(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<GrafanaDashboard>>> {
    Ok(Json(m.dashboards(&who, &name).await?))
}

/// How many alerts fire in the clusters the caller may see.
#[utoipa::path(get, path = "/api/v1/alerts/firing", responses((status = 200, body = u32, content_type = "application/json")))]
async fn firing(State(m): State<Arc<Monitoring>>, Extension(who): Extension<Principal>) -> ApiResult<Json<u32>> {
    Ok(Json(m.firing_count(&who).await?))
}

/// The cluster's silences that have not expired.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/silences",
    responses((status = 200, body = Vec<Silence>), (status = 404, body = AppError), (status = 502, body = AppError)))]
async fn silences(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Silence>>> {
    Ok(Json(m.silences(&who, &name).await?))
}

/// Creates a silence in the caller's name (`createdBy`); operators. Audited.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/silences", request_body = SilenceInput,
    responses((status = 201, body = Silence), (status = 400, body = AppError), (status = 403, body = AppError)))]
async fn silence(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(input): Json<SilenceInput>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    Ok((StatusCode::CREATED, Json(m.silence(&who, &name, input).await?)))
}

/// Expires a silence now; operators. Audited.
#[utoipa::path(delete, path = "/api/v1/clusters/{name}/silences/{id}",
    responses((status = 204), (status = 403, body = AppError), (status = 502, body = AppError)))]
async fn expire(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    m.expire_silence(&who, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The dashboards Pangea draws itself: shipped, then imported.
#[utoipa::path(get, path = "/api/v1/dashboards", responses((status = 200, body = Vec<DashboardSummary>)))]
async fn list_dashboards(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<DashboardSummary>>> {
    Ok(Json(m.list_dashboards(&who).await?))
}

/// Imports a dashboard in Grafana's JSON model (the dashboard, or Grafana's export of it);
/// operators. One with the same uid is replaced. Audited.
#[utoipa::path(post, path = "/api/v1/dashboards", request_body = Object,
    responses((status = 201, body = DashboardSummary), (status = 400, body = AppError), (status = 409, body = AppError)))]
async fn import_dashboard(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Text(model): Text,
) -> ApiResult<(StatusCode, Json<DashboardSummary>)> {
    // The body is read as text: the service checks the caller's role before the JSON.
    Ok((StatusCode::CREATED, Json(m.import_dashboard(&who, &model).await?)))
}

/// Removes an imported dashboard; operators. Audited.
#[utoipa::path(delete, path = "/api/v1/dashboards/{uid}",
    responses((status = 204), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn delete_dashboard(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path(uid): Path<String>,
) -> ApiResult<StatusCode> {
    m.delete_dashboard(&who, &uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The range, and each variable's values as Grafana's URLs give them: `var-NAME=VALUE`,
/// repeated for several.
fn range_and_choices(params: Vec<(String, String)>) -> (String, Choices) {
    let mut range = default_range();
    let mut choices = Choices::new();
    for (key, value) in params {
        match key.strip_prefix("var-") {
            Some(name) => choices.entry(name.to_string()).or_default().push(value),
            None if key == "range" => range = value,
            None => {}
        }
    }
    (range, choices)
}

/// A dashboard for the cluster: its variables' options and chosen values, and its panels.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/dashboards/{uid}",
    params(("range" = Option<String>, Query, description = "As for charts [default: 1h]"),
        ("var-NAME" = Option<String>, Query, description = "A variable's value; repeat for several")),
    responses((status = 200, body = DashboardView), (status = 404, body = AppError)))]
async fn dashboard(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path((name, uid)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<DashboardView>> {
    let (range, choices) = range_and_choices(params);
    Ok(Json(m.dashboard(&who, &name, &uid, &range, choices).await?))
}

/// One panel's data: lines, values or table rows, from the cluster's Prometheus.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/dashboards/{uid}/panels/{panel}",
    params(("range" = Option<String>, Query, description = "As for charts [default: 1h]"),
        ("var-NAME" = Option<String>, Query, description = "A variable's value; repeat for several")),
    responses((status = 200, body = PanelAnswer), (status = 404, body = AppError)))]
async fn dashboard_panel(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path((name, uid, panel)): Path<(String, String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<PanelAnswer>> {
    let (range, choices) = range_and_choices(params);
    Ok(Json(m.dashboard_panel(&who, &name, &uid, &panel, &range, choices).await?))
}

/// Imports a dashboard of the cluster's Grafana, asked as the caller; operators. Audited.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/grafana-dashboards/{uid}/import",
    responses((status = 201, body = DashboardSummary), (status = 404, body = AppError), (status = 502, body = AppError)))]
async fn import_grafana_dashboard(
    State(m): State<Arc<Monitoring>>,
    Extension(who): Extension<Principal>,
    Path((name, uid)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<DashboardSummary>)> {
    Ok((StatusCode::CREATED, Json(m.import_grafana_dashboard(&who, &name, &uid).await?)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        cluster_charts,
        node_charts,
        query,
        alerts,
        etcd,
        dashboards,
        firing,
        silences,
        silence,
        expire,
        list_dashboards,
        import_dashboard,
        delete_dashboard,
        dashboard,
        dashboard_panel,
        import_grafana_dashboard
    ),
    components(schemas(
        DashboardSummary,
        DashboardView,
        PanelAnswer,
        app::monitoring::dashboards::PanelView,
        app::monitoring::dashboards::PanelKind,
        app::monitoring::dashboards::PanelData,
        app::monitoring::dashboards::Threshold,
        app::monitoring::dashboards::VariableView,
        Charts,
        Chart,
        app::monitoring::Series,
        app::monitoring::Unit,
        Alerts,
        app::monitoring::Alert,
        app::monitoring::AlertState,
        Silence,
        SilenceInput,
        app::monitoring::Matcher,
        EtcdHealth,
        app::monitoring::EtcdMember,
        GrafanaDashboard
    ))
)]
pub struct MonitoringApi;
