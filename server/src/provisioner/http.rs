//! `/api/v1/provisioning/…`: profiles, groups and templates for automation, "what will this
//! machine get?", and Matchbox data directories in and out. Thin adapters over [`Provisioner`].

use super::Provisioner;
use crate::http::Path;
use crate::http::{ApiError, ApiResult, Json, Query};
use crate::http::{Route, route};
use app::access::{Permission, Principal};
use app::error::AppError;
use app::provisioning::ssr::ProvisioningService;
use app::provisioning::{
    DefaultProfile, Explanation, Group, ImportOutcome, MachineProfile, Profile, TemplateFile, TemplateKind,
};
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The routes, under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/provisioning/profiles", list_profiles),
        route(Method::GET, "/provisioning/profiles/{id}", get_profile),
        route(Method::PUT, "/provisioning/profiles/{id}", put_profile),
        route(Method::DELETE, "/provisioning/profiles/{id}", delete_profile),
        route(Method::GET, "/provisioning/groups", list_groups),
        route(Method::GET, "/provisioning/groups/{id}", get_group),
        route(Method::PUT, "/provisioning/groups/{id}", put_group),
        route(Method::DELETE, "/provisioning/groups/{id}", delete_group),
        route(Method::GET, "/provisioning/templates", list_templates),
        route(Method::GET, "/provisioning/templates/{kind}/{id}", get_template),
        route(Method::PUT, "/provisioning/templates/{kind}/{id}", put_template),
        route(Method::DELETE, "/provisioning/templates/{kind}/{id}", delete_template),
        route(Method::PUT, "/provisioning/machines/{mac}", set_machine_profile),
        route(Method::PUT, "/provisioning/defaults", set_default),
        route(Method::GET, "/provisioning/explain", explain),
        route(Method::POST, "/provisioning/import", import),
        route(Method::GET, "/provisioning/export", export),
    ]
}

/// The kind in a path; read after the caller is authorized, so a refusal says nothing of it.
fn kind(text: &str) -> Result<TemplateKind, ApiError> {
    TemplateKind::parse(text)
        .ok_or_else(|| AppError::invalid(format!("\"{text}\" is not a template kind: use ignition or generic.")).into())
}

/// The id in the path names the object; a body that names another is refused.
fn same_id(path: &str, body: &mut String) -> Result<(), ApiError> {
    if body.is_empty() {
        *body = path.to_string();
    }
    if body != path {
        return Err(AppError::invalid(format!("The body's id \"{body}\" differs from the path's \"{path}\".")).into());
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/provisioning/profiles", responses((status = 200, body = Vec<Profile>)))]
async fn list_profiles(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Profile>>> {
    Ok(Json(p.catalog(&who).await?.profiles))
}

#[utoipa::path(get, path = "/api/v1/provisioning/profiles/{id}", responses((status = 200, body = Profile), (status = 404, body = AppError)))]
async fn get_profile(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(p.profile(&who, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/provisioning/profiles/{id}", request_body = Profile,
    responses((status = 200, body = Profile), (status = 400, body = AppError)))]
async fn put_profile(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Json(mut profile): Json<Profile>,
) -> ApiResult<Json<Profile>> {
    same_id(&id, &mut profile.id)?;
    Ok(Json(p.put_profile(&who, profile).await?))
}

#[utoipa::path(delete, path = "/api/v1/provisioning/profiles/{id}",
    responses((status = 204), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn delete_profile(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.delete_profile(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/provisioning/groups", responses((status = 200, body = Vec<Group>)))]
async fn list_groups(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(p.catalog(&who).await?.groups))
}

#[utoipa::path(get, path = "/api/v1/provisioning/groups/{id}", responses((status = 200, body = Group), (status = 404, body = AppError)))]
async fn get_group(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Group>> {
    Ok(Json(p.group(&who, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/provisioning/groups/{id}", request_body = Group,
    responses((status = 200, body = Group), (status = 400, body = AppError)))]
async fn put_group(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Json(mut group): Json<Group>,
) -> ApiResult<Json<Group>> {
    same_id(&id, &mut group.id)?;
    Ok(Json(p.put_group(&who, group).await?))
}

#[utoipa::path(delete, path = "/api/v1/provisioning/groups/{id}", responses((status = 204), (status = 404, body = AppError)))]
async fn delete_group(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.delete_group(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/provisioning/templates", responses((status = 200, body = Vec<TemplateFile>)))]
async fn list_templates(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<TemplateFile>>> {
    Ok(Json(p.catalog(&who).await?.templates))
}

#[utoipa::path(get, path = "/api/v1/provisioning/templates/{kind}/{id}",
    responses((status = 200, body = TemplateFile), (status = 404, body = AppError)))]
async fn get_template(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path((kind_text, id)): Path<(String, String)>,
) -> ApiResult<Json<TemplateFile>> {
    p.allow(&who, Permission::ViewProvisioning, "provisioning.view").await?;
    Ok(Json(p.template(&who, kind(&kind_text)?, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TemplateBody {
    /// The template text: Ignition JSON, a Butane template, or any text for generic.
    content: String,
}

#[utoipa::path(put, path = "/api/v1/provisioning/templates/{kind}/{id}", request_body = TemplateBody,
    responses((status = 200, body = TemplateFile), (status = 400, body = AppError)))]
async fn put_template(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path((kind_text, id)): Path<(String, String)>,
    Json(body): Json<TemplateBody>,
) -> ApiResult<Json<TemplateFile>> {
    p.allow(&who, Permission::ChangeProvisioning, "provisioning.template.put").await?;
    let template = TemplateFile { kind: kind(&kind_text)?, id, content: body.content };
    Ok(Json(p.put_template(&who, template).await?))
}

#[utoipa::path(delete, path = "/api/v1/provisioning/templates/{kind}/{id}",
    responses((status = 204), (status = 404, body = AppError), (status = 409, body = AppError)))]
async fn delete_template(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path((kind_text, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    p.allow(&who, Permission::ChangeProvisioning, "provisioning.template.delete").await?;
    p.delete_template(&who, kind(&kind_text)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MachineProfileBody {
    /// A profile id; `""` takes the machine's own profile away.
    profile: String,
}

#[utoipa::path(put, path = "/api/v1/provisioning/machines/{mac}", request_body = MachineProfileBody,
    responses((status = 200, body = MachineProfile), (status = 400, body = AppError)))]
async fn set_machine_profile(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(mac): Path<String>,
    Json(body): Json<MachineProfileBody>,
) -> ApiResult<Json<MachineProfile>> {
    Ok(Json(p.set_machine_profile(&who, &mac, &body.profile).await?))
}

#[utoipa::path(put, path = "/api/v1/provisioning/defaults", request_body = DefaultProfile,
    responses((status = 200, body = DefaultProfile), (status = 400, body = AppError)))]
async fn set_default(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Json(default): Json<DefaultProfile>,
) -> ApiResult<Json<DefaultProfile>> {
    Ok(Json(p.set_default(&who, default).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExplainParams {
    /// The machine's query as it would send it, e.g. `mac=52:54:00:00:00:01&os=installed`
    /// (none: what a machine that sends no labels gets).
    #[serde(default)]
    query: String,
}

#[utoipa::path(get, path = "/api/v1/provisioning/explain", params(ExplainParams),
    responses((status = 200, body = Explanation)))]
async fn explain(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Query(params): Query<ExplainParams>,
) -> ApiResult<Json<Explanation>> {
    Ok(Json(p.explain(&who, &params.query).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    /// The files of a Matchbox data directory by relative path, e.g. `groups/node-0001.json`.
    files: BTreeMap<String, String>,
    /// Only check.
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/api/v1/provisioning/import", request_body = ImportRequest,
    responses((status = 200, body = ImportOutcome), (status = 422, body = ImportOutcome)))]
async fn import(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Json(request): Json<ImportRequest>,
) -> ApiResult<(StatusCode, Json<ImportOutcome>)> {
    let outcome = p.import_files(&who, request.files, request.dry_run).await?;
    let status = if outcome.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(outcome)))
}

#[utoipa::path(get, path = "/api/v1/provisioning/export",
    responses((status = 200, description = "The files of a Matchbox data directory by relative path", body = BTreeMap<String, String>)))]
async fn export(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let catalog = p.catalog(&who).await?;
    Ok(Json(super::import::files_of(&catalog).map_err(crate::error::internal)?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_profiles,
        get_profile,
        put_profile,
        delete_profile,
        list_groups,
        get_group,
        put_group,
        delete_group,
        list_templates,
        get_template,
        put_template,
        delete_template,
        set_machine_profile,
        set_default,
        explain,
        import,
        export
    ),
    components(schemas(
        Profile,
        app::provisioning::NetBoot,
        Group,
        TemplateFile,
        TemplateKind,
        TemplateBody,
        Explanation,
        app::provisioning::Candidate,
        app::provisioning::Served,
        ImportRequest,
        ImportOutcome,
        app::provisioning::Finding,
        MachineProfileBody,
        MachineProfile,
        DefaultProfile
    ))
)]
pub struct ProvisioningApi;
