//! The monitoring service the server implements. Only compiled for the server.

use super::{Chart, Charts};
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
}

pub type SharedMonitoringService = Arc<dyn MonitoringService>;
