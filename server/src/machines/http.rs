//! The machines part of `/api/v1`: adapters over the same [`MachineService`] the GUI uses.

use crate::AppState;
use crate::audit::{self, Event};
use crate::error::OrInternal;
use crate::http::{ApiResult, Json, Path, Query, Route, route, spreadsheet_safe};
use app::access::Principal;
use app::error::{AppError, FieldError};
use app::machines::ssr::MachineService;
use app::machines::{
    ImportFormat, ImportReport, Machine, MachineClass, MachineClassInput, MachineInput, MachinePage, MachineQuery,
    SortKey,
};
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::OpenApi;

/// The machines routes under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/machines", list_machines),
        route(Method::POST, "/machines", create_machine),
        route(Method::GET, "/machines/export.csv", export_machines_csv),
        route(Method::POST, "/machines/import", import_machines),
        route(Method::GET, "/machines/{id}", get_machine),
        route(Method::PUT, "/machines/{id}", update_machine),
        route(Method::DELETE, "/machines/{id}", delete_machine),
        route(Method::GET, "/machine-classes", list_classes),
        route(Method::PUT, "/machine-classes/{name}", save_class),
        route(Method::DELETE, "/machine-classes/{name}", delete_class),
    ]
}

/// The list filters, as query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Substring of MAC, host name or labels, one exact label as `key=value`, or a hardware term
    /// (`memory_gib>=256`, `model~R650`); terms joined by ` and `.
    search: Option<String>,
    /// mac (default), hostname, role, cluster, created_at or updated_at.
    sort: Option<String>,
    /// `true` for descending order.
    #[serde(default)]
    descending: bool,
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<u32>,
    /// Only machines in this boot state: never_seen, pxe, script, assets, ignition, installed,
    /// joined, ready or failed.
    state: Option<String>,
    /// Only machines of this class (see `/api/v1/machine-classes`).
    class: Option<String>,
}

impl ListParams {
    fn into_query(self) -> Result<MachineQuery, AppError> {
        let sort = match self.sort.as_deref() {
            None | Some("") => SortKey::default(),
            Some(s) => SortKey::parse(s).ok_or_else(|| {
                AppError::invalid(format!(
                    "\"{s}\" is not a sort key; use mac, hostname, role, cluster, created_at or updated_at."
                ))
            })?,
        };
        let state = match self.state.as_deref() {
            None | Some("") => None,
            Some(s) => Some(app::provisioning::boots::BootState::parse(s).ok_or_else(|| {
                AppError::invalid(format!(
                    "\"{s}\" is not a boot state; use never_seen, pxe, script, assets, ignition, installed, joined, ready or failed."
                ))
            })?),
        };
        Ok(MachineQuery {
            state,
            search: self.search,
            sort,
            descending: self.descending,
            after: self.after,
            limit: self.limit,
            class: self.class.filter(|c| !c.is_empty()),
        })
    }
}

#[utoipa::path(get, path = "/api/v1/machines", params(ListParams),
    responses((status = 200, body = MachinePage), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn list_machines(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<MachinePage>> {
    Ok(Json(state.machines.list(&who, params.into_query()?).await?))
}

#[utoipa::path(get, path = "/api/v1/machines/{id}",
    responses((status = 200, body = Machine), (status = 404, body = AppError)))]
async fn get_machine(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Machine>> {
    Ok(Json(state.machines.get(&who, id).await?))
}

#[utoipa::path(post, path = "/api/v1/machines", request_body = MachineInput,
    responses((status = 201, body = Machine), (status = 400, body = AppError), (status = 409, body = AppError)))]
async fn create_machine(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(input): Json<MachineInput>,
) -> ApiResult<(StatusCode, Json<Machine>)> {
    Ok((StatusCode::CREATED, Json(state.machines.create(&who, input).await?)))
}

#[utoipa::path(put, path = "/api/v1/machines/{id}", request_body = MachineInput,
    responses((status = 200, body = Machine), (status = 400, body = AppError), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn update_machine(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    Json(input): Json<MachineInput>,
) -> ApiResult<Json<Machine>> {
    Ok(Json(state.machines.update(&who, id, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/machines/{id}",
    responses((status = 204), (status = 404, body = AppError)))]
async fn delete_machine(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.machines.delete(&who, vec![id]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/machine-classes",
    responses((status = 200, body = Vec<MachineClass>)))]
async fn list_classes(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<MachineClass>>> {
    Ok(Json(state.machines.classes(&who).await?))
}

/// Creates or replaces a class; its search is checked as the machine list takes it.
#[utoipa::path(put, path = "/api/v1/machine-classes/{name}", request_body = MachineClassInput,
    responses((status = 200, body = MachineClass), (status = 400, body = AppError)))]
async fn save_class(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(input): Json<MachineClassInput>,
) -> ApiResult<Json<MachineClass>> {
    Ok(Json(state.machines.save_class(&who, name, input).await?))
}

#[utoipa::path(delete, path = "/api/v1/machine-classes/{name}",
    responses((status = 204), (status = 404, body = AppError)))]
async fn delete_class(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.machines.delete_class(&who, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An import request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    #[serde(default)]
    format: ImportFormat,
    /// The CSV or tfvars text.
    text: String,
    /// Only check: report every line, write nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Checks every line; without `dry_run`, writes all machines in one transaction, or none when
/// any line has an error (answered 422 with the report).
#[utoipa::path(post, path = "/api/v1/machines/import", request_body = ImportRequest,
    responses((status = 200, body = ImportReport), (status = 422, body = ImportReport), (status = 400, body = AppError)))]
async fn import_machines(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Json(request): Json<ImportRequest>,
) -> ApiResult<Response> {
    let report = state.machines.import(&who, request.format, request.text, request.dry_run).await?;
    let status = if report.errors > 0 { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(report)).into_response())
}

/// Every machine matching `search`, as CSV that the import reads back.
#[utoipa::path(get, path = "/api/v1/machines/export.csv", params(ListParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = AppError), (status = 404, body = AppError)))]
async fn export_machines_csv(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let (query, machines) = every_match(&state, &who, params).await?;
    let rows = machines.iter().map(|m| {
        vec![
            m.mac.clone(),
            m.hostname.clone().unwrap_or_default(),
            m.role.as_str().to_string(),
            m.labels_text(),
            m.cluster.clone().unwrap_or_default(),
            m.uuid.clone().unwrap_or_default(),
            m.serial.clone().unwrap_or_default(),
        ]
    });
    let header = ["mac", "hostname", "role", "labels", "cluster", "uuid", "serial"];
    csv_export(&state, &who, &query, &header, rows, ("machine.export", "machines.csv")).await
}

/// Every machine matching `params`, for an export, and the query that found them.
pub async fn every_match(
    state: &AppState,
    who: &Principal,
    params: ListParams,
) -> Result<(MachineQuery, Vec<Machine>), AppError> {
    let mut query = params.into_query()?;
    query.limit = Some(MachineQuery::MAX_LIMIT);
    query.after = None;
    let mut machines = Vec::new();
    loop {
        let page = state.machines.list(who, query.clone()).await?;
        machines.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok((query, machines)),
        }
    }
}

/// `rows` under `header` as a CSV download named `file` (cells a spreadsheet does not run),
/// audited as `action` with what `query` searched for.
pub async fn csv_export(
    state: &AppState,
    who: &Principal,
    query: &MachineQuery,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    (action, file): (&'static str, &str),
) -> ApiResult<Response> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut write = |record: Vec<&str>| {
        writer.write_record(record.into_iter().map(spreadsheet_safe)).map_err(crate::error::internal)
    };
    write(header.to_vec())?;
    let mut count = 0usize;
    for row in rows {
        write(row.iter().map(String::as_str).collect())?;
        count += 1;
    }
    let body = writer.into_inner().map_err(crate::error::internal)?;
    let event = Event::new(action, "machine")
        .summary(serde_json::json!({ "format": "csv", "search": params_summary(query), "rows": count }));
    audit::record(&state.db, who, event).await.or_internal()?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        body,
    )
        .into_response())
}

/// What a machines export searched for, for its audit record.
fn params_summary(query: &MachineQuery) -> serde_json::Value {
    serde_json::to_value(query)
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("limit");
                o.remove("after");
            }
            v
        })
        .unwrap_or_default()
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_machines,
        get_machine,
        create_machine,
        update_machine,
        delete_machine,
        import_machines,
        export_machines_csv,
        list_classes,
        save_class,
        delete_class
    ),
    components(schemas(
        Machine,
        MachineClass,
        MachineClassInput,
        MachineInput,
        MachinePage,
        ImportReport,
        ImportRequest,
        AppError,
        FieldError
    ))
)]
pub struct MachinesApi;
