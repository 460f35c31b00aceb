//! The pages' server functions: each is one call of the monitoring service for the caller.

use super::Charts;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
use super::ssr::SharedMonitoringService as Svc;

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cluster_charts")]
pub async fn cluster_charts(cluster: String, range: String) -> Result<Charts, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.cluster_charts(&who, &cluster, &range).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "node_charts")]
pub async fn node_charts(cluster: String, node: String, range: String) -> Result<Charts, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.node_charts(&who, &cluster, &node, &range).await }).await
}
