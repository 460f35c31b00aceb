//! The monitoring service the server implements. Only compiled for the server.

use super::dashboards::{Choices, DashboardSummary, DashboardView, PanelAnswer};
use super::{Alerts, Chart, Charts, EtcdHealth, GrafanaDashboard, Silence, SilenceInput};
use crate::access::Principal;
use crate::error::AppError;
use std::sync::Arc;

/// Charts and queries against each cluster's Prometheus; each method authorizes its caller for
/// that cluster.
#[async_trait::async_trait]
pub trait MonitoringService: Send + Sync + 'static {
    /// The cluster's charts over `range` (`15m` … `7d`, or `START..END`).
    async fn cluster_charts(&self, who: &Principal, cluster: &str, range: &str) -> Result<Charts, AppError>;
    /// One node's charts, from node_exporter's series for that node.
    async fn node_charts(&self, who: &Principal, cluster: &str, node: &str, range: &str) -> Result<Charts, AppError>;
    /// Any PromQL range query against the cluster's Prometheus, stepped and capped as charts are.
    async fn query(&self, who: &Principal, cluster: &str, query: &str, range: &str) -> Result<Chart, AppError>;
    /// Alerts firing (from Alertmanager) and pending (from Prometheus); with `node`, those whose
    /// `node` or `instance` label is that node.
    async fn alerts(&self, who: &Principal, cluster: &str, node: Option<String>) -> Result<Alerts, AppError>;
    /// The dashboards of the cluster's Grafana, asked as the caller (through its auth proxy).
    async fn dashboards(&self, who: &Principal, cluster: &str) -> Result<Vec<GrafanaDashboard>, AppError>;
    /// etcd's members and quorum, from their metrics in the cluster's Prometheus.
    async fn etcd(&self, who: &Principal, cluster: &str) -> Result<EtcdHealth, AppError>;
    /// How many alerts fire in the clusters the caller may see (for the navigation).
    async fn firing_count(&self, who: &Principal) -> Result<u32, AppError>;
    /// The cluster's silences that have not expired.
    async fn silences(&self, who: &Principal, cluster: &str) -> Result<Vec<Silence>, AppError>;
    /// Creates a silence in the caller's name (operators); audited.
    async fn silence(&self, who: &Principal, cluster: &str, input: SilenceInput) -> Result<Silence, AppError>;
    /// Expires a silence now (operators); audited.
    async fn expire_silence(&self, who: &Principal, cluster: &str, id: &str) -> Result<(), AppError>;
    /// The dashboards Pangea draws itself: the shipped ones, then the imported ones.
    async fn list_dashboards(&self, who: &Principal) -> Result<Vec<DashboardSummary>, AppError>;
    /// A dashboard for a cluster over `range`: its variables' options listed from the
    /// cluster's Prometheus, with `choices` applied where they are among them.
    async fn dashboard(
        &self,
        who: &Principal,
        cluster: &str,
        uid: &str,
        range: &str,
        choices: Choices,
    ) -> Result<DashboardView, AppError>;
    /// One panel's data, its variables as `choices` says.
    async fn dashboard_panel(
        &self,
        who: &Principal,
        cluster: &str,
        uid: &str,
        panel: &str,
        range: &str,
        choices: Choices,
    ) -> Result<PanelAnswer, AppError>;
    /// Imports a dashboard in Grafana's JSON model (operators); audited. One with the same uid
    /// is replaced.
    async fn import_dashboard(&self, who: &Principal, json: &str) -> Result<DashboardSummary, AppError>;
    /// Imports a dashboard of the cluster's Grafana, asked as the caller (operators); audited.
    async fn import_grafana_dashboard(
        &self,
        who: &Principal,
        cluster: &str,
        uid: &str,
    ) -> Result<DashboardSummary, AppError>;
    /// Removes an imported dashboard (operators); audited.
    async fn delete_dashboard(&self, who: &Principal, uid: &str) -> Result<(), AppError>;
}

pub type SharedMonitoringService = Arc<dyn MonitoringService>;
