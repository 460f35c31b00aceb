//! The pages' server functions: each is one call of the monitoring service for the caller.

use super::SilenceInput;
use super::dashboards::{Choices, DashboardView};
use crate::drawn::Html;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
use super::drawn;
#[cfg(feature = "ssr")]
use super::ssr::SharedMonitoringService as Svc;
#[cfg(feature = "ssr")]
use crate::access::{Permission, authorize, authorize_in};

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cluster_charts")]
pub async fn cluster_charts(cluster: String, range: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.cluster_charts(&who, &cluster, &range).await.map(drawn::charts) })
        .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "node_charts")]
pub async fn node_charts(cluster: String, node: String, range: String) -> Result<Html, AppError> {
    crate::ssr::call(
        |svc: Svc, who| async move { svc.node_charts(&who, &cluster, &node, &range).await.map(drawn::charts) },
    )
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_alerts")]
pub async fn list_alerts(cluster: String, node: Option<String>) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let may_silence = authorize_in(&who, Permission::SilenceAlerts, &cluster).is_ok();
        svc.alerts(&who, &cluster, node).await.map(|alerts| drawn::alerts(alerts, may_silence))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "etcd_quorum")]
pub async fn etcd_quorum(cluster: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.etcd(&who, &cluster).await.map(drawn::etcd) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "grafana_list")]
pub async fn grafana_list(cluster: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let may_manage = authorize(&who, Permission::ManageDashboards).is_ok();
        svc.dashboards(&who, &cluster).await.map(|list| drawn::grafana_list(list, may_manage))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "firing_count")]
pub async fn firing_count() -> Result<u32, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.firing_count(&who).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_silences")]
pub async fn list_silences(cluster: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let may_expire = authorize_in(&who, Permission::SilenceAlerts, &cluster).is_ok();
        svc.silences(&who, &cluster).await.map(|list| drawn::silences(list, may_expire))
    })
    .await
}

/// Creates a silence; when it ends (RFC 3339).
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "create_silence")]
pub async fn create_silence(cluster: String, input: SilenceInput) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.silence(&who, &cluster, input).await.map(|s| s.ends_at) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "expire_silence")]
pub async fn expire_silence(cluster: String, id: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.expire_silence(&who, &cluster, &id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "dashboard_list")]
pub async fn dashboard_list(cluster: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let may_manage = authorize(&who, Permission::ManageDashboards).is_ok();
        svc.list_dashboards(&who).await.map(|list| drawn::dashboard_list(&cluster, list, may_manage))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "dashboard")]
pub async fn dashboard(
    cluster: String,
    uid: String,
    range: String,
    choices: Choices,
) -> Result<DashboardView, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.dashboard(&who, &cluster, &uid, &range, choices).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "dashboard_panel")]
pub async fn dashboard_panel(
    cluster: String,
    uid: String,
    panel: u32,
    range: String,
    choices: Choices,
) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        svc.dashboard_panel(&who, &cluster, &uid, &panel.to_string(), &range, choices).await.map(drawn::panel)
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "import_dashboard")]
pub async fn import_dashboard(json: String) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.import_dashboard(&who, &json).await.map(|d| d.title) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "import_grafana_dashboard")]
pub async fn import_grafana_dashboard(cluster: String, uid: String) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        svc.import_grafana_dashboard(&who, &cluster, &uid).await.map(|d| d.title)
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "delete_dashboard")]
pub async fn delete_dashboard(uid: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.delete_dashboard(&who, &uid).await }).await
}
