//! The pages' server functions: each is one call of the clusters service for the caller.

use super::{Cluster, ClusterInput, ClusterNode, DrainOptions, KubeconfigImport, NodeAction, NodeQuery, PodQuery};
use crate::drawn::{Html, Progress};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
use super::drawn;
#[cfg(feature = "ssr")]
use super::ssr::SharedClusterService as Svc;

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cluster_table")]
pub async fn cluster_table() -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.clusters(&who).await.map(drawn::cluster_table) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cluster_facts")]
pub async fn cluster_facts(name: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.cluster(&who, &name).await.map(drawn::cluster_facts) }).await
}

/// Registers a cluster; its name.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_cluster")]
pub async fn add_cluster(input: ClusterInput) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.add(&who, input).await.map(|c| c.name) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "kubeconfig_contexts")]
pub async fn kubeconfig_contexts(kubeconfig: String) -> Result<Vec<String>, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.kubeconfig_contexts(&who, &kubeconfig).await }).await
}

/// Registers a cluster from a kubeconfig; its name.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_cluster_from_kubeconfig")]
pub async fn add_cluster_from_kubeconfig(import: KubeconfigImport) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.add_from_kubeconfig(&who, import).await.map(|c| c.name) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "update_cluster")]
pub async fn update_cluster(name: String, input: ClusterInput) -> Result<Cluster, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.update(&who, &name, input).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "remove_cluster")]
pub async fn remove_cluster(name: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.remove(&who, &name).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "node_table")]
pub async fn node_table(query: NodeQuery) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let page = svc.nodes(&who, query.clone()).await?;
        Ok(drawn::node_table(page, &query))
    })
    .await
}

/// The node an inventory machine is, when the caller may see it.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "machine_node")]
pub async fn machine_node(machine: i64) -> Result<Option<ClusterNode>, AppError> {
    let query = NodeQuery { machine: Some(machine), limit: Some(1), ..Default::default() };
    crate::ssr::call(|svc: Svc, who| async move {
        let page = svc.nodes(&who, query).await?;
        Ok(page.items.into_iter().next().map(|n| ClusterNode { cluster: n.cluster, node: n.name }))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "node_facts")]
pub async fn node_facts(cluster: String, node: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.node(&who, &cluster, &node).await.map(drawn::node_facts) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "pod_table")]
pub async fn pod_table(query: PodQuery) -> Result<Html, AppError> {
    crate::ssr::call(|svc: Svc, who| async move {
        let page = svc.pods(&who, query.clone()).await?;
        Ok(drawn::pod_table(page, &query))
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "act_on_node")]
pub async fn act_on_node(cluster: String, node: String, action: NodeAction) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.act(&who, &cluster, &node, action).await.map(|_| ()) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "drain_node")]
pub async fn drain_node(cluster: String, node: String, options: DrainOptions) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.drain(&who, &cluster, &node, options).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "drain_status")]
pub async fn drain_status(job: String) -> Result<Progress, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.drain_progress(&who, &job).await.map(drawn::drain) }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cancel_drain")]
pub async fn cancel_drain(job: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.cancel_drain(&who, &job).await }).await
}

/// What applying a cluster template would do, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "check_cluster_template")]
pub async fn check_cluster_template(template: String) -> Result<Html, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedCreationService, who| async move {
        svc.preview(&who, &template).await.map(drawn::creation_preview)
    })
    .await
}

/// Applies a cluster template; the cluster's name.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "create_cluster")]
pub async fn create_cluster(template: String) -> Result<String, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedCreationService, who| async move {
        svc.apply(&who, &template).await.map(|c| c.name)
    })
    .await
}

/// How a cluster's creation goes, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cluster_creation")]
pub async fn cluster_creation(name: String) -> Result<Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedCreationService, who| async move {
        svc.creation(&who, &name).await.map(drawn::creation)
    })
    .await
}

/// The clusters Pangea created, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "created_clusters")]
pub async fn created_clusters() -> Result<Html, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedCreationService, who| async move {
        svc.creations(&who).await.map(drawn::creations)
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "destroy_created_cluster")]
pub async fn destroy_created_cluster(name: String, confirm: String) -> Result<(), AppError> {
    crate::ssr::call(
        |svc: super::ssr::SharedCreationService, who| async move { svc.destroy(&who, &name, &confirm).await },
    )
    .await
}

/// A rolling operation's plan on `cluster`, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "plan_rolling")]
pub async fn plan_rolling(cluster: String, input: super::rolling::RollingInput) -> Result<Html, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedRollingService, who| async move {
        svc.plan(&who, &cluster, &input).await.map(drawn::rolling_plan)
    })
    .await
}

/// Starts a rolling operation on `cluster`; its job.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "start_rolling")]
pub async fn start_rolling(cluster: String, input: super::rolling::RollingInput) -> Result<String, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedRollingService, who| async move {
        svc.start(&who, &cluster, input).await.map(|op| op.job)
    })
    .await
}

/// Where a rolling operation stands, drawn.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "rolling_status")]
pub async fn rolling_status(job: String) -> Result<Progress, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedRollingService, who| async move {
        svc.operation(&who, &job).await.map(drawn::rolling)
    })
    .await
}

/// Pauses, resumes, cancels or rolls back a rolling operation (`what`: `pause`, `resume`,
/// `cancel` or `rollback`); the operation to follow (a roll back's is a new one).
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "steer_rolling")]
pub async fn steer_rolling(job: String, what: String) -> Result<String, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedRollingService, who| async move {
        if what == "rollback" {
            return svc.roll_back(&who, &job).await.map(|o| o.job);
        }
        let steer = super::rolling::Steer::parse(&what)
            .ok_or_else(|| AppError::invalid("A rolling operation is paused, resumed, cancelled or rolled back."))?;
        svc.steer(&who, &job, steer).await.map(|o| o.job)
    })
    .await
}
