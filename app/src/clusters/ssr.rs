//! The clusters service the server implements, as pages and the JSON API call it. Only
//! compiled for the server.

use super::{
    Cluster, ClusterInput, DrainOptions, DrainProgress, KubeconfigImport, NodeAction, NodeDetail, NodeQuery, NodeRow,
    Page, PodQuery, PodRow,
};
use crate::access::Principal;
use crate::error::AppError;
use std::sync::Arc;

/// All that can be done with clusters; each method authorizes its caller.
#[async_trait::async_trait]
pub trait ClusterService: Send + Sync + 'static {
    async fn clusters(&self, who: &Principal) -> Result<Vec<Cluster>, AppError>;
    async fn cluster(&self, who: &Principal, name: &str) -> Result<Cluster, AppError>;
    /// Checks that the API server answers, that the credentials work and that they may
    /// impersonate; then registers the cluster.
    async fn add(&self, who: &Principal, input: ClusterInput) -> Result<Cluster, AppError>;
    /// The contexts a kubeconfig names, so a person can pick one.
    async fn kubeconfig_contexts(&self, who: &Principal, kubeconfig: &str) -> Result<Vec<String>, AppError>;
    async fn add_from_kubeconfig(&self, who: &Principal, import: KubeconfigImport) -> Result<Cluster, AppError>;
    /// Changes a cluster's address, CA, links or (when given) credential, checked as on add.
    async fn update(&self, who: &Principal, name: &str, input: ClusterInput) -> Result<Cluster, AppError>;
    async fn remove(&self, who: &Principal, name: &str) -> Result<(), AppError>;
    async fn nodes(&self, who: &Principal, query: NodeQuery) -> Result<Page<NodeRow>, AppError>;
    async fn node(&self, who: &Principal, cluster: &str, node: &str) -> Result<NodeDetail, AppError>;
    async fn pods(&self, who: &Principal, query: PodQuery) -> Result<Page<PodRow>, AppError>;
    /// Changes a node as the signed-in person: the cluster's RBAC decides and its audit log
    /// names them.
    async fn act(&self, who: &Principal, cluster: &str, node: &str, action: NodeAction) -> Result<NodeRow, AppError>;
    /// Starts draining a node as the signed-in person: a durable job, whose id is returned.
    async fn drain(
        &self,
        who: &Principal,
        cluster: &str,
        node: &str,
        options: DrainOptions,
    ) -> Result<String, AppError>;
    /// A drain's progress, for the person who started it (and admins).
    async fn drain_progress(&self, who: &Principal, job: &str) -> Result<DrainProgress, AppError>;
    /// A kubeconfig for people who sign in with single sign-on: the cluster's server and CA,
    /// and the `kubectl oidc-login` exec plugin with Pangea's IdP and client id.
    async fn kubeconfig(&self, who: &Principal, cluster: &str) -> Result<String, AppError>;
    /// Asks a running drain to stop after the pod it is at; the node stays cordoned.
    async fn cancel_drain(&self, who: &Principal, job: &str) -> Result<(), AppError>;
}

/// The service, as the server puts it into each request's context.
pub type SharedClusterService = Arc<dyn ClusterService>;

/// Creating clusters from templates; each method authorizes its caller.
#[async_trait::async_trait]
pub trait CreationService: Send + Sync + 'static {
    /// What applying a template would do; nothing is written.
    async fn preview(&self, who: &Principal, template: &str) -> Result<super::creation::CreationPreview, AppError>;
    /// Applies a template: the creation as it stands afterwards.
    async fn apply(&self, who: &Principal, template: &str) -> Result<super::creation::ClusterCreation, AppError>;
    async fn creation(&self, who: &Principal, name: &str) -> Result<super::creation::ClusterCreation, AppError>;
    async fn creations(&self, who: &Principal) -> Result<Vec<super::creation::ClusterCreation>, AppError>;
    /// Destroys a cluster Pangea created, its name typed again in `confirm`.
    async fn destroy(&self, who: &Principal, name: &str, confirm: &str) -> Result<(), AppError>;
}

pub type SharedCreationService = Arc<dyn CreationService>;

/// Rolling operations on a cluster's nodes; each method authorizes its caller.
#[async_trait::async_trait]
pub trait RollingService: Send + Sync + 'static {
    /// What an operation on `cluster` would do; nothing is asked of any node.
    async fn plan(
        &self,
        who: &Principal,
        cluster: &str,
        input: &super::rolling::RollingInput,
    ) -> Result<super::rolling::RollingPlan, AppError>;
    async fn start(
        &self,
        who: &Principal,
        cluster: &str,
        input: super::rolling::RollingInput,
    ) -> Result<super::rolling::RollingOperation, AppError>;
    async fn operation(&self, who: &Principal, job: &str) -> Result<super::rolling::RollingOperation, AppError>;
    /// Pauses, resumes or cancels a running operation.
    async fn steer(
        &self,
        who: &Principal,
        job: &str,
        steer: super::rolling::Steer,
    ) -> Result<super::rolling::RollingOperation, AppError>;
    /// Rolls back a reprovision that has ended: a new operation installing the nodes it installed
    /// with the template they had before.
    async fn roll_back(&self, who: &Principal, job: &str) -> Result<super::rolling::RollingOperation, AppError>;
}

pub type SharedRollingService = Arc<dyn RollingService>;
