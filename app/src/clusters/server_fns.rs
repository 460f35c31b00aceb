//! The pages' server functions: each is one call of the clusters service for the caller.

use super::{
    Cluster, ClusterInput, DrainOptions, DrainProgress, KubeconfigImport, NodeAction, NodeDetail, NodeQuery, NodeRow,
    Page, PodQuery, PodRow,
};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
use super::ssr::SharedClusterService as Svc;

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_clusters")]
pub async fn list_clusters() -> Result<Vec<Cluster>, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.clusters(&who).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "get_cluster")]
pub async fn get_cluster(name: String) -> Result<Cluster, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.cluster(&who, &name).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_cluster")]
pub async fn add_cluster(input: ClusterInput) -> Result<Cluster, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.add(&who, input).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "kubeconfig_contexts")]
pub async fn kubeconfig_contexts(kubeconfig: String) -> Result<Vec<String>, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.kubeconfig_contexts(&who, &kubeconfig).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "add_cluster_from_kubeconfig")]
pub async fn add_cluster_from_kubeconfig(import: KubeconfigImport) -> Result<Cluster, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.add_from_kubeconfig(&who, import).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "update_cluster")]
pub async fn update_cluster(name: String, input: ClusterInput) -> Result<Cluster, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.update(&who, &name, input).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "remove_cluster")]
pub async fn remove_cluster(name: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.remove(&who, &name).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_nodes")]
pub async fn list_nodes(query: NodeQuery) -> Result<Page<NodeRow>, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.nodes(&who, query).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "get_node")]
pub async fn get_node(cluster: String, node: String) -> Result<NodeDetail, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.node(&who, &cluster, &node).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_pods")]
pub async fn list_pods(query: PodQuery) -> Result<Page<PodRow>, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.pods(&who, query).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "act_on_node")]
pub async fn act_on_node(cluster: String, node: String, action: NodeAction) -> Result<NodeRow, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.act(&who, &cluster, &node, action).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "drain_node")]
pub async fn drain_node(cluster: String, node: String, options: DrainOptions) -> Result<String, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.drain(&who, &cluster, &node, options).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "drain_status")]
pub async fn drain_status(job: String) -> Result<DrainProgress, AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.drain_progress(&who, &job).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "cancel_drain")]
pub async fn cancel_drain(job: String) -> Result<(), AppError> {
    crate::ssr::call(|svc: Svc, who| async move { svc.cancel_drain(&who, &job).await }).await
}
