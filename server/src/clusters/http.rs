//! `/api/v1/clusters/…` and `/api/v1/nodes`: thin adapters over [`Clusters`], and the live
//! stream pages use to hear that a cluster changed.

use super::Clusters;
use crate::http::live::LiveCheck;
use crate::http::{ApiResult, Json};
use crate::http::{Path, Query};
use crate::http::{Route, route};
use app::access::{Permission, Principal, authorize_in};
use app::clusters::ssr::ClusterService;
use app::clusters::{
    Cluster, ClusterInput, DrainOptions, DrainProgress, KubeconfigImport, NodeAction, NodeDetail, NodeQuery, NodeRow,
    NodeSort, Page, PodQuery, PodRow,
};
use app::error::AppError;
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The routes, under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/clusters", list),
        route(Method::POST, "/clusters", add),
        route(Method::POST, "/clusters/kubeconfig", add_from_kubeconfig),
        route(Method::GET, "/clusters/{name}", get),
        route(Method::PUT, "/clusters/{name}", update),
        route(Method::DELETE, "/clusters/{name}", remove),
        route(Method::GET, "/clusters/{name}/live", live),
        route(Method::GET, "/clusters/{name}/kubeconfig", kubeconfig),
        route(Method::GET, "/clusters/{name}/nodes/{node}", node),
        route(Method::POST, "/clusters/{name}/nodes/{node}/actions", act),
        route(Method::POST, "/clusters/{name}/nodes/{node}/drain", drain),
        route(Method::GET, "/drains/{job}", drain_progress),
        route(Method::POST, "/drains/{job}/cancel", cancel_drain),
        route(Method::GET, "/clusters/{name}/pods", pods),
        route(Method::GET, "/nodes", nodes),
    ]
}

#[utoipa::path(get, path = "/api/v1/clusters", responses((status = 200, body = Vec<Cluster>)))]
async fn list(State(c): State<Arc<Clusters>>, Extension(who): Extension<Principal>) -> ApiResult<Json<Vec<Cluster>>> {
    Ok(Json(c.clusters(&who).await?))
}

/// Registers a cluster after checking that its API server answers, that the credentials work
/// and that they may impersonate.
#[utoipa::path(post, path = "/api/v1/clusters", operation_id = "register_cluster", request_body = ClusterInput,
    responses((status = 201, body = Cluster), (status = 400, body = AppError), (status = 409, body = AppError)))]
async fn add(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Json(input): Json<ClusterInput>,
) -> ApiResult<(StatusCode, Json<Cluster>)> {
    Ok((StatusCode::CREATED, Json(c.add(&who, input).await?)))
}

/// Registers a cluster from a kubeconfig's context (the current one when none is named).
#[utoipa::path(post, path = "/api/v1/clusters/kubeconfig", operation_id = "register_cluster_from_kubeconfig", request_body = KubeconfigImport,
    responses((status = 201, body = Cluster), (status = 400, body = AppError)))]
async fn add_from_kubeconfig(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Json(import): Json<KubeconfigImport>,
) -> ApiResult<(StatusCode, Json<Cluster>)> {
    Ok((StatusCode::CREATED, Json(c.add_from_kubeconfig(&who, import).await?)))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}", responses((status = 200, body = Cluster), (status = 404, body = AppError)))]
async fn get(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Cluster>> {
    Ok(Json(c.cluster(&who, &name).await?))
}

/// Changes a cluster; a `credential` rotates Pangea's credential, none keeps it.
#[utoipa::path(put, path = "/api/v1/clusters/{name}", operation_id = "update_cluster", request_body = ClusterInput,
    responses((status = 200, body = Cluster), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn update(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(input): Json<ClusterInput>,
) -> ApiResult<Json<Cluster>> {
    Ok(Json(c.update(&who, &name, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/clusters/{name}", responses((status = 204), (status = 404, body = AppError)))]
async fn remove(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    c.remove(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A kubeconfig that signs in through Pangea's IdP with `kubectl oidc-login`.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/kubeconfig",
    responses((status = 200, description = "the kubeconfig (YAML)", content_type = "application/yaml"), (status = 409, body = AppError)))]
async fn kubeconfig(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let text = c.kubeconfig(&who, &name).await?;
    let disposition = format!("attachment; filename=\"{name}.kubeconfig\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/yaml".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

/// The nodes filters, as query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NodeParams {
    /// Only this cluster's nodes.
    cluster: Option<String>,
    /// A substring of the node's name.
    search: Option<String>,
    /// A label selector: `key=value`, `key!=value`, `key`, `!key`, comma-separated.
    selector: Option<String>,
    /// Only the node that is this inventory machine (by its id).
    machine: Option<i64>,
    /// name (default), status, age or pods.
    sort: Option<String>,
    #[serde(default)]
    descending: bool,
    #[serde(default)]
    offset: u32,
    /// 1 to 500 (default 50).
    limit: Option<u32>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[utoipa::path(get, path = "/api/v1/nodes", params(NodeParams),
    responses((status = 200, body = Page<NodeRow>), (status = 400, body = AppError), (status = 404, description = "The cluster named in the query is not registered", body = AppError)))]
async fn nodes(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Query(p): Query<NodeParams>,
) -> ApiResult<Json<Page<NodeRow>>> {
    let sort = match p.sort.as_deref() {
        None | Some("") => NodeSort::default(),
        Some(s) => NodeSort::parse(s)
            .ok_or_else(|| AppError::invalid(format!("\"{s}\" is not a sort key; use name, status, age or pods.")))?,
    };
    let query = NodeQuery {
        cluster: nonempty(p.cluster),
        search: nonempty(p.search),
        selector: nonempty(p.selector),
        machine: p.machine,
        sort,
        descending: p.descending,
        offset: p.offset,
        limit: p.limit,
    };
    Ok(Json(c.nodes(&who, query).await?))
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/nodes/{node}",
    responses((status = 200, body = NodeDetail), (status = 404, body = AppError)))]
async fn node(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path((name, node)): Path<(String, String)>,
) -> ApiResult<Json<NodeDetail>> {
    Ok(Json(c.node(&who, &name, &node).await?))
}

/// Cordons, uncordons, labels or taints a node as the caller: the cluster's RBAC decides and
/// its audit log names them.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes/{node}/actions", request_body = NodeAction,
    responses((status = 200, body = NodeRow), (status = 400, body = AppError), (status = 403, body = AppError)))]
async fn act(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path((name, node)): Path<(String, String)>,
    Json(action): Json<NodeAction>,
) -> ApiResult<Json<NodeRow>> {
    Ok(Json(c.act(&who, &name, &node, action).await?))
}

/// The id of a job just started.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Started {
    pub job: String,
}

/// Drains a node as the caller, as a durable job: cordon, evict every pod through the Eviction
/// API (budgets respected; DaemonSet and mirror pods left), wait for them to go.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes/{node}/drain", request_body = DrainOptions,
    responses((status = 202, body = Started), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn drain(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path((name, node)): Path<(String, String)>,
    Json(options): Json<DrainOptions>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    Ok((StatusCode::ACCEPTED, Json(Started { job: c.drain(&who, &name, &node, options).await? })))
}

#[utoipa::path(get, path = "/api/v1/drains/{job}", responses((status = 200, body = DrainProgress), (status = 404, body = AppError)))]
async fn drain_progress(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<DrainProgress>> {
    Ok(Json(c.drain_progress(&who, &job).await?))
}

/// Stops a running drain after the pod it is at; the node stays cordoned.
#[utoipa::path(post, path = "/api/v1/drains/{job}/cancel", responses((status = 204), (status = 409, body = AppError)))]
async fn cancel_drain(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<StatusCode> {
    c.cancel_drain(&who, &job).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The pods filters, as query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PodParams {
    namespace: Option<String>,
    /// Pending, Running, Succeeded, Failed or Unknown.
    phase: Option<String>,
    node: Option<String>,
    selector: Option<String>,
    #[serde(default)]
    offset: u32,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/clusters/{name}/pods", params(PodParams),
    responses((status = 200, body = Page<PodRow>), (status = 400, body = AppError)))]
async fn pods(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Query(p): Query<PodParams>,
) -> ApiResult<Json<Page<PodRow>>> {
    let query = PodQuery {
        cluster: name,
        namespace: nonempty(p.namespace),
        phase: nonempty(p.phase),
        node: nonempty(p.node),
        selector: nonempty(p.selector),
        offset: p.offset,
        limit: p.limit,
    };
    Ok(Json(c.pods(&who, query).await?))
}

/// Changes that arrive together are announced once.
const SETTLE: Duration = Duration::from_millis(100);

/// `event: changed` at once, then whenever the cluster's nodes, pods, events or
/// health change (at most every 100 ms), so an open page fetches what it shows again. It ends when the page
/// closes it, when the cluster is removed, or when the caller's session or token ends or loses the role.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/live",
    responses((status = 200, description = "text/event-stream of `changed` events"), (status = 404, body = AppError)))]
async fn live(
    State(c): State<Arc<Clusters>>,
    Extension(who): Extension<Principal>,
    Extension(live): Extension<LiveCheck>,
    Path(name): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    authorize_in(&who, Permission::ViewClusters, &name)?;
    let changes = c.cache(&name)?.subscribe();
    // The first event goes out at once: what changed between the page's first fetch and this
    // stream's start is then fetched too.
    let stream = futures::stream::unfold((changes, true), |(mut changes, first)| async move {
        if !first {
            changes.changed().await.ok()?;
            tokio::time::sleep(SETTLE).await;
        }
        let version = *changes.borrow_and_update();
        Some((Ok(Event::default().event("changed").data(version.to_string())), (changes, false)))
    });
    let stream = live.guard(stream, move |who| authorize_in(who, Permission::ViewClusters, &name).is_ok())?;
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(crate::http::live::KEEP_ALIVE)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        add,
        add_from_kubeconfig,
        get,
        update,
        remove,
        kubeconfig,
        nodes,
        node,
        act,
        drain,
        drain_progress,
        cancel_drain,
        pods,
        live
    ),
    components(schemas(
        Cluster,
        ClusterInput,
        KubeconfigImport,
        app::clusters::Credential,
        app::clusters::ClusterHealth,
        app::clusters::Connection,
        app::clusters::ReadyCheck,
        NodeRow,
        NodeDetail,
        NodeAction,
        app::clusters::Taint,
        PodRow,
        DrainOptions,
        DrainProgress,
        app::clusters::DrainBlocker,
        Started
    ))
)]
pub struct ClustersApi;
