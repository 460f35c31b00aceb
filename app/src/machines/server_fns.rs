//! The GUI's endpoints for machines: each authorizes through the service and does nothing else.

use super::{ImportFormat, Machine, MachineClass, MachineClassInput, MachineInput, MachinePage, MachineQuery};
use crate::drawn::Progress;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use std::collections::BTreeMap;

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_machines")]
pub async fn list_machines(query: MachineQuery) -> Result<MachinePage, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.list(&who, query).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "get_machine")]
pub async fn get_machine(id: i64) -> Result<Machine, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.get(&who, id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "create_machine")]
pub async fn create_machine(input: MachineInput) -> Result<Machine, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.create(&who, input).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "update_machine")]
pub async fn update_machine(id: i64, input: MachineInput) -> Result<Machine, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.update(&who, id, input).await })
        .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_machines")]
pub async fn delete_machines(ids: Vec<i64>) -> Result<u64, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.delete(&who, ids).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_machine_labels")]
pub async fn add_machine_labels(ids: Vec<i64>, labels: BTreeMap<String, String>) -> Result<u64, AppError> {
    crate::ssr::call(
        |svc: super::ssr::SharedMachineService, who| async move { svc.add_labels(&who, ids, labels).await },
    )
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "start_import")]
pub async fn start_import(format: ImportFormat, text: String) -> Result<String, AppError> {
    crate::ssr::call(
        |svc: super::ssr::SharedMachineService, who| async move { svc.start_import(&who, format, text).await },
    )
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "poll_import")]
pub async fn poll_import(job: String) -> Result<Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move {
        svc.import_progress(&who, job).await.map(super::drawn::import)
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "commit_import")]
pub async fn commit_import(job: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.commit_import(&who, job).await })
        .await
}

/// The machine classes, drawn (with Delete buttons for those who may change them).
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_machine_classes")]
pub async fn list_machine_classes() -> Result<crate::drawn::Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move {
        let may_change = crate::access::authorize(&who, crate::access::Permission::ChangeMachines).is_ok();
        svc.classes(&who).await.map(|classes| super::drawn::classes(classes, may_change))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "save_machine_class")]
pub async fn save_machine_class(name: String, input: MachineClassInput) -> Result<MachineClass, AppError> {
    crate::ssr::call(
        |svc: super::ssr::SharedMachineService, who| async move { svc.save_class(&who, name, input).await },
    )
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_machine_class")]
pub async fn delete_machine_class(name: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedMachineService, who| async move { svc.delete_class(&who, name).await })
        .await
}
