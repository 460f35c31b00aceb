//! `/api/v1`: the JSON API for automation. Handlers are adapters over the same
//! [`MachineService`] the GUI uses; errors are `{"code": ..., "message": ...}` JSON.

use super::{Route, route};
use crate::AppState;
use crate::audit::{self, Event};
use crate::error::OrInternal;
use app::access::Principal;
use app::audit::ssr::AuditService;
use app::audit::{AuditEntry, AuditPage, AuditQuery};
use app::error::{AppError, FieldError};
use app::machines::ssr::MachineService;
use app::machines::{ImportFormat, ImportReport, Machine, MachineInput, MachinePage, MachineQuery, SortKey};
use axum::Extension;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::OpenApi;

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

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError(AppError::TooLarge {
                message: format!(
                    "The request body is larger than {} MiB; split it.",
                    super::MAX_BODY_BYTES / 1024 / 1024
                ),
            });
        }
        ApiError(AppError::invalid(format!("The request body was not accepted: {}", rejection.body_text())))
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

type ApiResult<T> = Result<T, ApiError>;

/// The routes under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/machines", list_machines),
        route(Method::POST, "/machines", create_machine),
        route(Method::GET, "/machines/export.csv", export_machines_csv),
        route(Method::POST, "/machines/import", import_machines),
        route(Method::GET, "/machines/{id}", get_machine),
        route(Method::PUT, "/machines/{id}", update_machine),
        route(Method::DELETE, "/machines/{id}", delete_machine),
        route(Method::GET, "/audit", audit_log),
        route(Method::GET, "/openapi.json", openapi),
    ]
    .into_iter()
    .chain(crate::provisioner::http::routes())
    .chain(crate::provisioner::boots::http::routes())
    .chain(crate::clusters::http::routes())
    .chain(crate::monitoring::http::routes())
    .collect()
}

/// What `/api/v1` answers for a path it does not serve.
pub async fn not_found() -> ApiError {
    ApiError(AppError::not_found("There is no such API endpoint; see /api/v1/openapi.json."))
}

/// The list filters, as query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Substring of MAC, host name or labels, or one exact label as `key=value`.
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
        })
    }
}

#[utoipa::path(get, path = "/api/v1/machines", params(ListParams),
    responses((status = 200, body = MachinePage), (status = 400, body = AppError)))]
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
    responses((status = 200, content_type = "text/csv", body = String)))]
async fn export_machines_csv(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let mut query = params.into_query()?;
    query.limit = Some(MachineQuery::MAX_LIMIT);
    query.after = None;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>, record: &[&str]| {
        w.write_record(record.iter().map(|cell| spreadsheet_safe(cell))).map_err(crate::error::internal)
    };
    let mut rows = 0usize;
    write(&mut writer, &["mac", "hostname", "role", "labels", "cluster", "uuid", "serial"])?;
    loop {
        let page = state.machines.list(&who, query.clone()).await?;
        for m in &page.items {
            let labels = m.labels_text();
            write(
                &mut writer,
                &[
                    &m.mac,
                    m.hostname.as_deref().unwrap_or_default(),
                    m.role.as_str(),
                    &labels,
                    m.cluster.as_deref().unwrap_or_default(),
                    m.uuid.as_deref().unwrap_or_default(),
                    m.serial.as_deref().unwrap_or_default(),
                ],
            )?;
            rows += 1;
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let body = writer.into_inner().map_err(crate::error::internal)?;
    let event = Event::new("machine.export", "machine")
        .summary(serde_json::json!({ "format": "csv", "search": params_summary(&query), "rows": rows }));
    audit::record(&state.db, &who, event).await.or_internal()?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"machines.csv\""),
        ],
        body,
    )
        .into_response())
}

/// Audit filters and the export format, as query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
    /// `json` (one page, the default), or `csv` / `ndjson`: every matching record, streamed.
    format: Option<String>,
}

const AUDIT_CSV_HEADER: &str = "id,at,actor,auth_method,roles,action,target_kind,target_id,target_name,outcome,summary,ip,user_agent,request_id,prev_hash,hash\n";

/// A cell a spreadsheet will not run as a formula: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'` (OWASP's advice). The machines import drops it again.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, [u8]> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into_bytes().into()
    } else {
        cell.as_bytes().into()
    }
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

fn audit_csv_line(e: &AuditEntry) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(
        [
            e.id.to_string().as_str(),
            &e.at,
            &e.actor,
            &e.auth_method,
            &e.roles,
            &e.action,
            &e.target_kind,
            &e.target_id,
            &e.target_name,
            &e.outcome,
            &e.summary,
            &e.ip,
            &e.user_agent,
            &e.request_id,
            &e.prev_hash,
            &e.hash,
        ]
        .map(spreadsheet_safe),
    )?;
    w.into_inner().map_err(|e| e.into_error().into())
}

/// The audit log, filtered: one JSON page, or the whole filtered set streamed as CSV or NDJSON
/// a thousand records at a time, so any size exports in constant memory.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = AppError), (status = 403, body = AppError)))]
async fn audit_log(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    let format = params.format.clone().unwrap_or_else(|| "json".into());
    let mut query = AuditQuery {
        actor: params.actor,
        action: params.action,
        target: params.target,
        outcome: params.outcome,
        from: params.from,
        to: params.to,
        before: params.before,
        limit: params.limit,
    };
    if format == "json" {
        return Ok(Json(state.audit.search(&who, query).await?).into_response());
    }
    let (content_type, csv) = match format.as_str() {
        "csv" => ("text/csv; charset=utf-8", true),
        "ndjson" => ("application/x-ndjson", false),
        other => {
            return Err(
                AppError::invalid(format!("\"{other}\" is not an export format: use json, csv or ndjson.")).into()
            );
        }
    };
    // Checks permission and filters once, before the first byte goes out, and records who
    // exported what.
    query.limit = Some(1);
    state.audit.search(&who, query.clone()).await?;
    let filter = serde_json::json!({
        "actor": query.actor, "action": query.action, "target": query.target, "outcome": query.outcome,
        "from": query.from, "to": query.to, "before": query.before,
    });
    let event = Event::new("audit.export", "audit").summary(serde_json::json!({ "format": format, "filter": filter }));
    audit::record(&state.db, &who, event).await.or_internal()?;
    query.limit = Some(500);
    let db = state.db.clone();
    let header = csv.then(|| Ok::<_, std::io::Error>(axum::body::Bytes::from_static(AUDIT_CSV_HEADER.as_bytes())));
    let pages = futures::stream::unfold(Some(query), move |next| {
        let db = db.clone();
        async move {
            let query = next?;
            match crate::audit::query::page(&db, &query).await {
                Ok(page) => {
                    let mut chunk = Vec::new();
                    for entry in &page.items {
                        let line = if csv {
                            audit_csv_line(entry).map_err(std::io::Error::other)
                        } else {
                            serde_json::to_vec(entry)
                                .map(|mut v| {
                                    v.push(b'\n');
                                    v
                                })
                                .map_err(std::io::Error::other)
                        };
                        match line {
                            Ok(line) => chunk.extend(line),
                            Err(e) => return Some((Err(e), None)),
                        }
                    }
                    let rest = page.next.map(|before| AuditQuery { before: Some(before), ..query });
                    Some((Ok(axum::body::Bytes::from(chunk)), rest))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    // Fused: a body may be polled once more after its end.
    let body = axum::body::Body::from_stream(futures::StreamExt::fuse(futures::StreamExt::chain(
        futures::stream::iter(header),
        pages,
    )));
    let filename = if csv { "audit.csv" } else { "audit.ndjson" };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response())
}

/// The API description, for anyone signed in.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "This document", content_type = "application/json"), (status = 401, body = AppError)))]
async fn openapi(Extension(who): Extension<Principal>) -> ApiResult<Response> {
    app::access::authorize(&who, app::access::Permission::ViewMachines)?;
    let mut doc = ApiDoc::openapi();
    doc.merge(<crate::provisioner::http::ProvisioningApi as OpenApi>::openapi());
    doc.merge(<crate::provisioner::boots::http::BootsApi as OpenApi>::openapi());
    doc.merge(<crate::clusters::http::ClustersApi as OpenApi>::openapi());
    doc.merge(<crate::monitoring::http::MonitoringApi as OpenApi>::openapi());
    Ok(axum::Json(doc).into_response())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pangea API",
        description = "Automation API of the Pangea console. Errors are JSON objects with a stable `code` and a human `message`."
    ),
    paths(
        list_machines,
        get_machine,
        create_machine,
        update_machine,
        delete_machine,
        import_machines,
        export_machines_csv,
        audit_log,
        openapi
    ),
    components(schemas(
        Machine,
        MachineInput,
        MachinePage,
        ImportReport,
        ImportRequest,
        AuditPage,
        AuditEntry,
        AppError,
        FieldError
    ))
)]
pub struct ApiDoc;
