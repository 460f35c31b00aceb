//! The power part of `/api/v1`: a machine's BMC, its power and its hardware.

use crate::AppState;
use crate::http::{ApiResult, Json, Path, Query, Route, route};
use crate::machines::http::{ListParams, csv_export, every_match};
use app::access::Principal;
use app::error::{AppError, FieldError};
use app::machines::ImportReport;
use app::power::ssr::PowerService;
use app::power::{
    Bmc, BmcInput, Discovery, DiscoveryInput, DiscoveryMiss, Disk, FoundSystem, Hardware, HardwareChange,
    HardwareRecord, ListenerLoad, MemoryModule, Nic, Pacing, PlannedMachine, PowerAction, PowerRequest, PowerRun,
    PowerRunInput, PowerRunPlan, PowerState, PowerStatus, Processor, RunMachine, RunStep,
};
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use utoipa::OpenApi;

/// The power routes under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/machines/{id}/bmc", get_bmc),
        route(Method::PUT, "/machines/{id}/bmc", set_bmc),
        route(Method::DELETE, "/machines/{id}/bmc", remove_bmc),
        route(Method::POST, "/machines/{id}/power", act),
        route(Method::GET, "/machines/{id}/hardware", get_hardware),
        route(Method::GET, "/machines/hardware.csv", export_hardware_csv),
        route(Method::POST, "/power-runs/plan", plan_run),
        route(Method::POST, "/power-runs", start_run),
        route(Method::GET, "/power-runs/{job}", get_run),
        route(Method::POST, "/power-runs/{job}/pause", pause_run),
        route(Method::POST, "/power-runs/{job}/resume", resume_run),
        route(Method::POST, "/power-runs/{job}/cancel", cancel_run),
        route(Method::POST, "/machines/{id}/hardware/acknowledge", acknowledge_hardware),
        route(Method::POST, "/bmc-discoveries", start_discovery),
        route(Method::GET, "/bmc-discoveries/{job}", get_discovery),
        route(Method::POST, "/bmc-discoveries/{job}/import", import_discovered),
    ]
}

#[utoipa::path(get, path = "/api/v1/machines/{id}/bmc",
    responses((status = 200, body = Bmc), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn get_bmc(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Bmc>> {
    match state.power.bmc(&who, id).await? {
        Some(bmc) => Ok(Json(bmc)),
        None => Err(AppError::not_found(format!("Machine {id} has no BMC.")).into()),
    }
}

/// Sets a machine's BMC once it checks out (reachable, the credentials accepted, one system);
/// operators, or a role bound for the machine's cluster.
#[utoipa::path(put, path = "/api/v1/machines/{id}/bmc", operation_id = "set_machine_bmc", request_body = BmcInput,
    responses((status = 200, body = Bmc), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn set_bmc(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Json(input): Json<BmcInput>,
) -> ApiResult<Json<Bmc>> {
    Ok(Json(state.power.set_bmc(&who, id, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/machines/{id}/bmc",
    responses((status = 204), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn remove_bmc(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.power.remove_bmc(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the machine's BMC for a power action; the answer is the power as the request left it
/// (powering on or off). Its outcome follows on the machine's boot timeline.
#[utoipa::path(post, path = "/api/v1/machines/{id}/power", request_body = PowerRequest,
    responses((status = 202, body = PowerStatus), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError), (status = 502, body = AppError)))]
async fn act(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Json(request): Json<PowerRequest>,
) -> ApiResult<(StatusCode, Json<PowerStatus>)> {
    Ok((StatusCode::ACCEPTED, Json(state.power.act(&who, id, request.action).await?)))
}

/// A machine's hardware as its BMC told it at the last read (and why the last read failed, if it
/// did), with the changes seen since a person last acknowledged them.
#[utoipa::path(get, path = "/api/v1/machines/{id}/hardware",
    responses((status = 200, body = HardwareRecord), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn get_hardware(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<HardwareRecord>> {
    match state.power.hardware(&who, id).await? {
        Some(record) => Ok(Json(record)),
        None => Err(AppError::not_found(format!("Machine {id}'s hardware has not been read: give it a BMC.")).into()),
    }
}

/// How many hardware changes were acknowledged.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    pub changes: usize,
}

/// Acknowledges a machine's hardware changes (its "changed" badge goes); operators, or a role
/// bound for the machine's cluster.
#[utoipa::path(post, path = "/api/v1/machines/{id}/hardware/acknowledge",
    responses((status = 200, body = Acknowledged), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn acknowledge_hardware(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Acknowledged>> {
    Ok(Json(Acknowledged { changes: state.power.acknowledge_hardware(&who, id).await? }))
}

/// The hardware of every machine matching the search (as the machine list filters), as CSV: what
/// its BMC told at the last read ('' where it did not tell).
#[utoipa::path(get, path = "/api/v1/machines/hardware.csv", params(ListParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn export_hardware_csv(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let header = [
        "mac",
        "hostname",
        "manufacturer",
        "model",
        "serial",
        "bios_version",
        "bmc_firmware",
        "cpus",
        "memory_gib",
        "disks",
        "ssds",
        "nics",
        "read_at",
        "changes",
    ];
    let (query, machines) = every_match(&state, &who, params).await?;
    let ids: Vec<i64> = machines.iter().map(|m| m.id).collect();
    let mut hardware = std::collections::HashMap::new();
    for some in ids.chunks(500) {
        hardware.extend(state.power.hardware_of(&who, some).await?);
    }
    let number = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
    let rows = machines.iter().map(|m| {
        let record = hardware.remove(&m.id);
        let h = record.as_ref().map(|r| r.hardware.clone()).unwrap_or_default();
        vec![
            m.mac.clone(),
            m.hostname.clone().unwrap_or_default(),
            h.manufacturer,
            h.model,
            h.serial,
            h.bios_version,
            h.bmc_firmware,
            number(h.cpus.map(|n| n as usize)),
            number(h.memory_gib.map(|n| n as usize)),
            number(h.disks.as_ref().map(Vec::len)),
            number(h.disks.as_ref().map(|d| d.iter().filter(|d| d.media == "SSD").count())),
            number(h.nics.as_ref().map(Vec::len)),
            record.as_ref().map(|r| r.read_at.clone()).unwrap_or_default(),
            number(record.as_ref().map(|r| r.changes.len())),
        ]
    });
    csv_export(&state, &who, &query, &header, rows, ("machine.hardware.export", "hardware.csv")).await
}

/// A power run's plan (its order, each machine's expected start, the whole run's expected
/// time, and which budget sets the pace), asking nothing of any BMC.
#[utoipa::path(post, path = "/api/v1/power-runs/plan", request_body = PowerRunInput,
    responses((status = 200, body = PowerRunPlan), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn plan_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(input): Json<PowerRunInput>,
) -> ApiResult<Json<PowerRunPlan>> {
    Ok(Json(state.power.plan_run(&who, input).await?))
}

/// A started power run.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct StartedRun {
    pub job: String,
}

/// Starts a power run: one action for many machines, paced by a power budget per group and a
/// boot-network budget, as a durable job another replica resumes.
#[utoipa::path(post, path = "/api/v1/power-runs", request_body = PowerRunInput,
    responses((status = 202, body = StartedRun), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn start_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(input): Json<PowerRunInput>,
) -> ApiResult<(StatusCode, Json<StartedRun>)> {
    Ok((StatusCode::ACCEPTED, Json(StartedRun { job: state.power.start_run(&who, input).await? })))
}

/// Where a power run stands: each machine's step and why it waits or failed.
#[utoipa::path(get, path = "/api/v1/power-runs/{job}",
    responses((status = 200, body = PowerRun), (status = 404, body = AppError)))]
async fn get_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<PowerRun>> {
    Ok(Json(state.power.power_run(&who, &job).await?))
}

/// Pauses a power run: what is under way goes on, nothing new starts.
#[utoipa::path(post, path = "/api/v1/power-runs/{job}/pause",
    responses((status = 204), (status = 403, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn pause_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<StatusCode> {
    state.power.pause_run(&who, &job, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/power-runs/{job}/resume",
    responses((status = 204), (status = 403, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn resume_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<StatusCode> {
    state.power.pause_run(&who, &job, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancels a power run: machines not yet asked are skipped.
#[utoipa::path(post, path = "/api/v1/power-runs/{job}/cancel",
    responses((status = 204), (status = 403, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn cancel_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<StatusCode> {
    state.power.cancel_run(&who, &job).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a discovery by BMC: each BMC address is asked for its systems and their NICs' MACs,
/// as a durable job (its password kept sealed).
#[utoipa::path(post, path = "/api/v1/bmc-discoveries", request_body = DiscoveryInput,
    responses((status = 202, body = StartedRun), (status = 400, body = AppError), (status = 403, body = AppError)))]
async fn start_discovery(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(input): Json<DiscoveryInput>,
) -> ApiResult<(StatusCode, Json<StartedRun>)> {
    Ok((StatusCode::ACCEPTED, Json(StartedRun { job: state.power.start_discovery(&who, input).await? })))
}

/// Where a discovery stands: the systems found so far, and the addresses that gave none, and why.
#[utoipa::path(get, path = "/api/v1/bmc-discoveries/{job}",
    responses((status = 200, body = Discovery), (status = 404, body = AppError)))]
async fn get_discovery(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
) -> ApiResult<Json<Discovery>> {
    Ok(Json(state.power.discovery(&who, &job).await?))
}

/// Whether to write, or only check.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct ImportDiscovered {
    #[serde(default)]
    dry_run: bool,
}

/// Imports the systems a finished discovery found that are no machines yet, with their BMCs, as
/// the machines import does: every line checked, all written or none (422 with the report).
#[utoipa::path(post, path = "/api/v1/bmc-discoveries/{job}/import", request_body = ImportDiscovered,
    responses((status = 200, body = ImportReport), (status = 422, body = ImportReport), (status = 400, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn import_discovered(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(job): Path<String>,
    Json(request): Json<ImportDiscovered>,
) -> ApiResult<Response> {
    use axum::response::IntoResponse;
    let report = state.power.import_discovered(&who, &job, request.dry_run).await?;
    let status = if report.errors > 0 { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(report)).into_response())
}

#[derive(OpenApi)]
#[openapi(
    paths(
        get_bmc,
        set_bmc,
        remove_bmc,
        act,
        get_hardware,
        acknowledge_hardware,
        export_hardware_csv,
        plan_run,
        start_run,
        get_run,
        pause_run,
        resume_run,
        cancel_run,
        start_discovery,
        get_discovery,
        import_discovered
    ),
    components(schemas(
        Bmc,
        BmcInput,
        PowerStatus,
        PowerState,
        PowerAction,
        PowerRequest,
        Hardware,
        HardwareRecord,
        HardwareChange,
        Processor,
        MemoryModule,
        Disk,
        Nic,
        Acknowledged,
        PowerRunInput,
        Pacing,
        PowerRunPlan,
        ListenerLoad,
        PlannedMachine,
        PowerRun,
        RunMachine,
        RunStep,
        StartedRun,
        DiscoveryInput,
        Discovery,
        FoundSystem,
        DiscoveryMiss,
        ImportDiscovered,
        ImportReport,
        AppError,
        FieldError
    ))
)]
pub struct PowerApi;
