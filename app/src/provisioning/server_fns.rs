//! The pages' server functions: each is one call of the provisioning service for the caller.

use super::boots::AdoptDiscovered;
use super::{
    BootProfileChoice, Catalog, DefaultProfile, Group, ImportOutcome, Profile, TemplateFile, TemplateKind,
    TemplatePreview,
};
use crate::drawn::Html;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use std::collections::BTreeMap;

#[cfg(feature = "ssr")]
use super::drawn;
#[cfg(feature = "ssr")]
use super::ssr::SharedProvisioningService as Svc;

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "provisioning_catalog")]
pub async fn provisioning_catalog() -> Result<Catalog, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.catalog(&who).await }).await
}

/// The overview of what the boot listener serves, its groups filtered by `groups`.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "provisioning_overview")]
pub async fn provisioning_overview(groups: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let may_change = crate::access::authorize(&who, crate::access::Permission::ChangeProvisioning).is_ok();
        svc.catalog(&who).await.map(|catalog| drawn::catalog(catalog, &groups, may_change))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "put_profile")]
pub async fn put_profile(profile: Profile) -> Result<Profile, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.put_profile(&who, profile).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "put_group")]
pub async fn put_group(group: Group) -> Result<Group, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.put_group(&who, group).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "put_template")]
pub async fn put_template(template: TemplateFile) -> Result<TemplateFile, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.put_template(&who, template).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_profile")]
pub async fn delete_profile(id: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.delete_profile(&who, &id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_group")]
pub async fn delete_group(id: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.delete_group(&who, &id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_template")]
pub async fn delete_template(kind: TemplateKind, id: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.delete_template(&who, kind, &id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "explain_boot")]
pub async fn explain_boot(query: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.explain(&who, &query).await.map(drawn::explanation) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "import_provisioning")]
pub async fn import_provisioning(files: BTreeMap<String, String>, dry_run: bool) -> Result<ImportOutcome, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.import_files(&who, files, dry_run).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "preview_template")]
pub async fn preview_template(template: TemplateFile, query: String) -> Result<TemplatePreview, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.preview_template(&who, template, &query).await }).await
}

/// Gives a machine a profile of its own (`""` takes it away); the profile it now has.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "set_machine_profile")]
pub async fn set_machine_profile(mac: String, profile: String) -> Result<String, AppError> {
    crate::ssr::call(
        |svc: Svc, who| async move { svc.set_machine_profile(&who, &mac, &profile).await.map(|m| m.profile) },
    )
    .await
}

/// A machine's page asks only for its own choice, not the whole catalog: that keeps the catalog's
/// reader out of the machine pages' wasm.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "machine_boot_profile")]
pub async fn machine_boot_profile(mac: String, cluster: String, role: String) -> Result<BootProfileChoice, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        Ok(BootProfileChoice::of(&svc.catalog(&who).await?, &mac, &cluster, &role))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "set_default_profile")]
pub async fn set_default_profile(default: DefaultProfile) -> Result<DefaultProfile, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.set_default(&who, default).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "boot_timeline")]
pub async fn boot_timeline(mac: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.timeline(&who, &mac).await.map(drawn::timeline) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "discovered_machines")]
pub async fn discovered_machines() -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let may_add = crate::access::authorize(&who, crate::access::Permission::ChangeMachines).is_ok();
        let refused = svc.refused_boot_requests();
        let gave_way = svc.discovered_gave_way();
        svc.discovered(&who).await.map(|found| drawn::discovered(found, may_add, &refused, gave_way))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_discovered")]
pub async fn add_discovered(request: AdoptDiscovered) -> Result<Vec<String>, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.adopt(&who, request).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "recent_boots")]
pub async fn recent_boots() -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.boot_activity(&who).await.map(drawn::activity) }).await
}
