//! Cluster creation's handlers: under `/api/v1`, templates applied and the creations they start;
//! on the boot listener, the machines' secret links.

use super::{Creation, SecretAnswer};
use crate::http::{ApiResult, Json, Route, route};
use crate::provisioner::boot::{Outcome, not_found};
use app::access::Principal;
use app::clusters::creation::{
    ClusterCreation, CreationMachine, CreationPreview, DestroyInput, PlannedNode, TemplateChange, TemplateInput,
};
use app::error::{AppError, FieldError};
use axum::Extension;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;

/// The creation routes under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/cluster-creations/preview", preview),
        route(Method::POST, "/cluster-creations", create),
        route(Method::GET, "/cluster-creations", list),
        route(Method::GET, "/cluster-creations/{name}", get),
        route(Method::GET, "/cluster-creations/{name}/template", template),
        route(Method::POST, "/cluster-creations/{name}/destroy", destroy),
    ]
}

/// What applying a template would do: the machines it takes, what stands in the way, and what it
/// would change of a cluster created from it before. Nothing is written.
#[utoipa::path(post, path = "/api/v1/cluster-creations/preview", operation_id = "preview_cluster_template", request_body = TemplateInput,
    responses((status = 200, body = CreationPreview), (status = 400, body = AppError), (status = 403, body = AppError)))]
async fn preview(
    State(creation): State<Arc<Creation>>,
    Extension(who): Extension<Principal>,
    Json(input): Json<TemplateInput>,
) -> ApiResult<Json<CreationPreview>> {
    Ok(Json(creation.preview(&who, &input.template).await?))
}

/// Applies a cluster template: writes the machines' configs and starts the creation job (201);
/// the same template again answers the creation as it stands (200).
#[utoipa::path(post, path = "/api/v1/cluster-creations", operation_id = "apply_cluster_template", request_body = TemplateInput,
    responses((status = 201, body = ClusterCreation), (status = 200, body = ClusterCreation), (status = 400, body = AppError), (status = 403, body = AppError), (status = 409, body = AppError)))]
async fn create(
    State(creation): State<Arc<Creation>>,
    Extension(who): Extension<Principal>,
    Json(input): Json<TemplateInput>,
) -> ApiResult<(StatusCode, Json<ClusterCreation>)> {
    let (created, state) = creation.create(&who, &input.template).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(state)))
}

#[utoipa::path(get, path = "/api/v1/cluster-creations", operation_id = "list_cluster_creations", responses((status = 200, body = Vec<ClusterCreation>)))]
async fn list(
    State(creation): State<Arc<Creation>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<ClusterCreation>>> {
    Ok(Json(creation.creations(&who).await?))
}

/// A creation as it stands: its step, and each machine's state with what it waits for.
#[utoipa::path(get, path = "/api/v1/cluster-creations/{name}", operation_id = "get_cluster_creation",
    responses((status = 200, body = ClusterCreation), (status = 404, body = AppError)))]
async fn get(
    State(creation): State<Arc<Creation>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Json<ClusterCreation>> {
    Ok(Json(creation.creation(&who, &name).await?))
}

/// The template a cluster was created from (YAML), to edit and apply again.
#[utoipa::path(get, path = "/api/v1/cluster-creations/{name}/template", operation_id = "export_cluster_template",
    responses((status = 200, description = "the cluster template (YAML)", content_type = "application/yaml"), (status = 404, body = AppError)))]
async fn template(
    State(creation): State<Arc<Creation>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let text = creation.template(&who, &name).await?;
    let disposition = format!("attachment; filename=\"{name}.yaml\"");
    Ok(([(header::CONTENT_TYPE, "application/yaml".to_string()), (header::CONTENT_DISPOSITION, disposition)], text)
        .into_response())
}

/// Destroys a cluster Pangea created (its name typed again in `confirm`): unregisters it, removes
/// its machines' configs and secrets, frees and powers off its machines. The audit trail stays.
#[utoipa::path(post, path = "/api/v1/cluster-creations/{name}/destroy", operation_id = "destroy_created_cluster", request_body = DestroyInput,
    responses((status = 204), (status = 400, body = AppError), (status = 403, body = AppError), (status = 404, body = AppError)))]
async fn destroy(
    State(creation): State<Arc<Creation>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Json(input): Json<DestroyInput>,
) -> ApiResult<StatusCode> {
    creation.destroy(&who, &name, &input.confirm).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(preview, create, list, get, template, destroy),
    components(schemas(
        TemplateInput,
        CreationPreview,
        PlannedNode,
        TemplateChange,
        ClusterCreation,
        CreationMachine,
        DestroyInput,
        AppError,
        FieldError
    ))
)]
pub struct CreationApi;

/// `GET /cluster-secrets/{token}/{*path}`: the file once, then Matchbox's 404, as for any path
/// that is not there. The boot event names the machine, and shows the path without its token
/// (as the request log does).
pub async fn secret(
    State(creation): State<Arc<Creation>>,
    Path((token, path)): Path<(String, String)>,
    request: Request,
) -> Response {
    let from = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let shown_path = Some(crate::http::middleware::logged_path(request.uri().path()).into_owned());
    // axum answers HEAD with a GET route: a HEAD must not use up the link either.
    if request.method() != Method::GET {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response.extensions_mut().insert(Outcome { shown_path, ..Default::default() });
        return response;
    }
    let (mut response, outcome) = match creation.fetch_secret(&token, &path, from).await {
        Ok(SecretAnswer::Served { mac, text }) => (
            (
                [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")],
                text.expose_secret().to_string(),
            )
                .into_response(),
            Outcome { mac: Some(mac), shown_path, ..Default::default() },
        ),
        Ok(SecretAnswer::Refused { mac, reason }) => {
            (not_found(), Outcome { mac, shown_path, reason: Some(reason), ..Default::default() })
        }
        Err(_) => {
            let busy = (StatusCode::SERVICE_UNAVAILABLE, "the file could not be read; try again\n").into_response();
            (busy, Outcome { shown_path, reason: Some("the file could not be read".into()), ..Default::default() })
        }
    };
    response.extensions_mut().insert(outcome);
    response
}
