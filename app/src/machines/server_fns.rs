//! The GUI's endpoints for machines: each authorizes through the service and does nothing else.

use super::{ImportFormat, ImportProgress, Machine, MachineInput, MachinePage, MachineQuery};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use std::collections::BTreeMap;

/// Runs one service call for the current caller and maps its error onto the response status.
#[cfg(feature = "ssr")]
macro_rules! call_service {
    (|$svc:ident, $who:ident| $body:expr) => {{
        use super::ssr::{machine_service, principal, with_status};
        with_status(
            async {
                let $svc = machine_service()?;
                let $who = principal().await?;
                $body.await
            }
            .await,
        )
    }};
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_machines")]
pub async fn list_machines(query: MachineQuery) -> Result<MachinePage, AppError> {
    call_service!(|svc, who| svc.list(&who, query))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "get_machine")]
pub async fn get_machine(id: i64) -> Result<Machine, AppError> {
    call_service!(|svc, who| svc.get(&who, id))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "create_machine")]
pub async fn create_machine(input: MachineInput) -> Result<Machine, AppError> {
    call_service!(|svc, who| svc.create(&who, input))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "update_machine")]
pub async fn update_machine(id: i64, input: MachineInput) -> Result<Machine, AppError> {
    call_service!(|svc, who| svc.update(&who, id, input))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_machines")]
pub async fn delete_machines(ids: Vec<i64>) -> Result<u64, AppError> {
    call_service!(|svc, who| svc.delete(&who, ids))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_machine_labels")]
pub async fn add_machine_labels(ids: Vec<i64>, labels: BTreeMap<String, String>) -> Result<u64, AppError> {
    call_service!(|svc, who| svc.add_labels(&who, ids, labels))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "start_import")]
pub async fn start_import(format: ImportFormat, text: String) -> Result<String, AppError> {
    call_service!(|svc, who| svc.start_import(&who, format, text))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "poll_import")]
pub async fn poll_import(job: String) -> Result<ImportProgress, AppError> {
    call_service!(|svc, who| svc.import_progress(&who, job))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "commit_import")]
pub async fn commit_import(job: String) -> Result<(), AppError> {
    call_service!(|svc, who| svc.commit_import(&who, job))
}
