//! The audit part of `/api/v1`: a filtered page, or the whole filtered set streamed as CSV or
//! NDJSON.

use crate::AppState;
use crate::http::{ApiResult, Json, Query, Route, route, spreadsheet_safe};
use app::access::Principal;
use app::audit::ssr::AuditService;
use app::audit::{AuditEntry, AuditPage, AuditQuery};
use app::error::AppError;
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::OpenApi;

/// The audit routes under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![route(Method::GET, "/audit", audit_log)]
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
    let query = AuditQuery {
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
    let pages = state.audit.export(&who, query, &format).await?;
    let header = csv.then(|| Ok::<_, std::io::Error>(axum::body::Bytes::from_static(AUDIT_CSV_HEADER.as_bytes())));
    let chunks = futures::StreamExt::map(pages, move |page| match page {
        Ok(page) => {
            let mut chunk = Vec::new();
            for entry in &page.items {
                let line = if csv {
                    audit_csv_line(entry).map_err(std::io::Error::other)?
                } else {
                    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
                    line.push(b'\n');
                    line
                };
                chunk.extend(line);
            }
            Ok(axum::body::Bytes::from(chunk))
        }
        Err(e) => Err(std::io::Error::other(e.to_string())),
    });
    // Fused: a body may be polled once more after its end.
    let body = axum::body::Body::from_stream(futures::StreamExt::fuse(futures::StreamExt::chain(
        futures::stream::iter(header),
        chunks,
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

#[derive(OpenApi)]
#[openapi(paths(audit_log), components(schemas(AuditPage, AuditEntry, AppError)))]
pub struct AuditApi;
