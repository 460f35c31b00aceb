//! The GUI's endpoints for BMCs and power: each authorizes through the service and does nothing
//! else.

use super::{Bmc, BmcInput, PowerAction, PowerStatus};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// A machine's Power section, drawn; with its controls for people who may act on the machines
/// of `cluster` (the machine's, as its page has it: the service checks each action anyway).
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "machine_power")]
pub async fn machine_power(id: i64, cluster: String) -> Result<crate::drawn::Html, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move {
        let bmc = svc.bmc(&who, id).await?;
        let hardware = svc.hardware(&who, id).await?;
        let may_act = crate::access::authorize_in(&who, crate::access::Permission::PowerMachines, &cluster).is_ok();
        Ok(super::drawn::power(bmc, hardware, may_act))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "set_machine_bmc")]
pub async fn set_machine_bmc(id: i64, input: BmcInput) -> Result<Bmc, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move { svc.set_bmc(&who, id, input).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "remove_machine_bmc")]
pub async fn remove_machine_bmc(id: i64) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move { svc.remove_bmc(&who, id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "power_machine")]
pub async fn power_machine(id: i64, action: PowerAction) -> Result<PowerStatus, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move { svc.act(&who, id, action).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "acknowledge_machine_hardware")]
pub async fn acknowledge_machine_hardware(id: i64) -> Result<usize, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move { svc.acknowledge_hardware(&who, id).await })
        .await
}

/// A power run's plan, drawn: its order, each machine's expected start, and the estimate.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "plan_power_run")]
pub async fn plan_power_run(input: super::PowerRunInput) -> Result<crate::drawn::Html, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move {
        svc.plan_run(&who, input).await.map(super::drawn::plan)
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "start_power_run")]
pub async fn start_power_run(input: super::PowerRunInput) -> Result<String, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move { svc.start_run(&who, input).await }).await
}

/// Where a power run stands, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "power_run_status")]
pub async fn power_run_status(job: String) -> Result<crate::drawn::Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move {
        svc.power_run(&who, &job).await.map(super::drawn::run)
    })
    .await
}

/// Pauses, resumes or cancels a power run (`what`: `pause`, `resume` or `cancel`).
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "steer_power_run")]
pub async fn steer_power_run(job: String, what: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move {
        match what.as_str() {
            "pause" => svc.pause_run(&who, &job, true).await,
            "resume" => svc.pause_run(&who, &job, false).await,
            "cancel" => svc.cancel_run(&who, &job).await,
            _ => Err(AppError::invalid("A power run is paused, resumed or cancelled.")),
        }
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "start_discovery")]
pub async fn start_discovery(input: super::DiscoveryInput) -> Result<String, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move { svc.start_discovery(&who, input).await })
        .await
}

/// Where a discovery stands, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "discovery_status")]
pub async fn discovery_status(job: String) -> Result<crate::drawn::Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move {
        svc.discovery(&who, &job).await.map(super::drawn::discovery)
    })
    .await
}

/// Previews (`dry_run`) or writes the import of a discovery's systems, drawn as an import's.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "import_discovered")]
pub async fn import_discovered(job: String, dry_run: bool) -> Result<crate::drawn::Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedPowerService, who| async move {
        let report = svc.import_discovered(&who, &job, dry_run).await?;
        Ok(crate::machines::drawn::import(match report.committed {
            true => crate::machines::ImportProgress::Committed { report },
            false => crate::machines::ImportProgress::Previewed { report },
        }))
    })
    .await
}
