//! The home page's server function: one call of the overview service for the caller.

use crate::drawn::Html;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// The fleet at a glance, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "fleet_overview")]
pub async fn fleet_overview() -> Result<Html, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedOverviewService, who| async move {
        svc.fleet(&who).await.map(super::drawn::fleet)
    })
    .await
}
