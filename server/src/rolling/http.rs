//! Rolling operations' handlers under `/api/v1`: a plan, its start, and the operation as it
//! goes, paused, resumed, cancelled or rolled back.

use super::{Rolling, Steer};
use crate::http::{ApiResult, Json, Route, route};
use app::access::Principal;
use app::clusters::rolling::{
    Gate, PlannedStep, RollingChange, RollingInput, RollingNode, RollingOperation, RollingPlan,
};
use app::error::{AppError, FieldError};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/clusters/{name}/rolling-operations/plan", plan),
        route(Method::POST, "/clusters/{name}/rolling-operations", start),
        route(Method::GET, "/clusters/{name}/rolling-operations", list),
        route(Method::GET, "/rolling-operations/{job}", get),
        route(Method::POST, "/rolling-operations/{job}/pause", pause),
        route(Method::POST, "/rolling-operations/{job}/resume", resume),
        route(Method::POST, "/rolling-operations/{job}/cancel", cancel),
        route(Method::POST, "/rolling-operations/{job}/rollback", roll_back),
    ]
}

/// What a rolling operation would do: its order, gates and estimate, and what stands in the way.
/// Nothing is asked of any node or machine.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/rolling-operations/plan", operation_id = "plan_rolling_operation", request_body = RollingInput,
    responses((status = 200, body = RollingPlan), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn plan(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(input): Json<RollingInput>,
) -> ApiResult<Json<RollingPlan>> {
    Ok(Json(rolling.plan(&who, &name, &input).await?))
}

/// Starts a rolling operation (201), for operators of the cluster; 409 while its plan has
/// problems (said in words) or another operation runs on the cluster.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/rolling-operations", operation_id = "start_rolling_operation", request_body = RollingInput,
    responses((status = 201, body = RollingOperation), (status = 400, body = AppError), (status = 403, body = AppError), (status = 409, body = AppError)))]
async fn start(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(input): Json<RollingInput>,
) -> ApiResult<(StatusCode, Json<RollingOperation>)> {
    Ok((StatusCode::CREATED, Json(rolling.start(&who, &name, input).await?)))
}

/// The cluster's newest rolling operations, newest first.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/rolling-operations", operation_id = "list_rolling_operations",
    responses((status = 200, body = Vec<RollingOperation>), (status = 404, body = AppError)))]
async fn list(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<RollingOperation>>> {
    Ok(Json(rolling.operations(&who, &name).await?))
}

/// A rolling operation as it stands: its step, each node's, and why it is paused.
#[utoipa::path(get, path = "/api/v1/rolling-operations/{job}", operation_id = "get_rolling_operation",
    responses((status = 200, body = RollingOperation), (status = 404, body = AppError)))]
async fn get(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<RollingOperation>> {
    Ok(Json(rolling.operation(&who, &job).await?))
}

async fn steer(rolling: &Rolling, who: &Principal, job: &str, steer: Steer) -> ApiResult<Json<RollingOperation>> {
    Ok(Json(rolling.steer(who, job, steer).await?))
}

/// Pauses a running operation before its next move.
#[utoipa::path(post, path = "/api/v1/rolling-operations/{job}/pause", operation_id = "pause_rolling_operation",
    responses((status = 200, body = RollingOperation), (status = 403, body = AppError), (status = 409, body = AppError)))]
async fn pause(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<RollingOperation>> {
    steer(&rolling, &who, &job, Steer::Pause).await
}

/// Resumes a paused operation (an approval awaited is given; the gates are checked again).
#[utoipa::path(post, path = "/api/v1/rolling-operations/{job}/resume", operation_id = "resume_rolling_operation",
    responses((status = 200, body = RollingOperation), (status = 403, body = AppError), (status = 409, body = AppError)))]
async fn resume(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<RollingOperation>> {
    steer(&rolling, &who, &job, Steer::Resume).await
}

/// Cancels a running operation: it stops before its next move; nodes it has out stay as they are.
#[utoipa::path(post, path = "/api/v1/rolling-operations/{job}/cancel", operation_id = "cancel_rolling_operation",
    responses((status = 200, body = RollingOperation), (status = 403, body = AppError), (status = 409, body = AppError)))]
async fn cancel(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<RollingOperation>> {
    steer(&rolling, &who, &job, Steer::Cancel).await
}

/// Rolls back a reprovision that has ended (201): a new operation installing the nodes it
/// installed with the template each had before; 409 for any other operation.
#[utoipa::path(post, path = "/api/v1/rolling-operations/{job}/rollback", operation_id = "roll_back_rolling_operation",
    responses((status = 201, body = RollingOperation), (status = 403, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn roll_back(
    State(rolling): State<Arc<Rolling>>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<(StatusCode, Json<RollingOperation>)> {
    Ok((StatusCode::CREATED, Json(rolling.roll_back(&who, &job).await?)))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(plan, start, list, get, pause, resume, cancel, roll_back),
    components(schemas(
        RollingInput,
        RollingChange,
        RollingPlan,
        PlannedStep,
        Gate,
        RollingOperation,
        RollingNode,
        AppError,
        FieldError
    ))
)]
pub struct RollingApi;
