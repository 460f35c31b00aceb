//! The pages' server functions: each is one call of the monitoring service for the caller.

use super::SilenceInput;
use super::dashboards::Choices;
#[cfg(feature = "ssr")]
use super::dashboards::{PanelAnswer, PanelKind};
use crate::drawn::{Html, Titled};
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

/// A dashboard drawn whole for the cluster: its variables as `choices` says, and every panel it
/// draws, their queries asked at once.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "dashboard")]
pub async fn dashboard(cluster: String, uid: String, range: String, choices: Choices) -> Result<Titled, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let view = svc.dashboard(&who, &cluster, &uid, &range, choices).await?;
        let resolved: Choices = view.variables.iter().map(|v| (v.name.clone(), v.current.clone())).collect();
        let drawn = view.panels.iter().filter(|p| !matches!(p.kind, PanelKind::Row | PanelKind::Other(_)));
        let answers = futures::future::join_all(drawn.map(|panel| {
            let (svc, who, cluster, uid, range, resolved) = (&svc, &who, &cluster, &uid, &range, resolved.clone());
            async move {
                let answer = svc.dashboard_panel(who, cluster, uid, &panel.id.to_string(), range, resolved).await;
                let answer = answer.unwrap_or_else(|e| PanelAnswer {
                    panel: panel.clone(),
                    queries: Vec::new(),
                    data: None,
                    error: Some(e.to_string()),
                });
                (panel.id, answer)
            }
        }))
        .await;
        Ok(drawn::dashboard(&cluster, view, answers.into_iter().collect()))
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
