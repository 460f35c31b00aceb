//! The gates a rolling operation checks before each step and throughout each soak. A gate that
//! fails says which and why, in words; the operation pauses on it.

use super::Rolling;
use super::plan::{CONTROL_PLANE, Settings};
use crate::clusters::drain::{Disposition, disposition, disruptions_allowed, guards};
use app::access::Principal;
use app::clusters::rolling::{Gate, PlannedStep};
use app::error::AppError;
use app::monitoring::AlertState;
use app::monitoring::ssr::MonitoringService;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

pub const ETCD: &str = "etcd quorum";
pub const NODES: &str = "nodes Ready";
pub const ALERTS: &str = "no firing alerts";
pub const BUDGETS: &str = "PodDisruptionBudgets";
pub const APPROVAL: &str = "approval";

fn gate(name: &str, checked: bool, detail: String) -> Gate {
    Gate { name: name.into(), checked, detail }
}

impl Rolling {
    /// The gates of an operation on `cluster`, each with what it checks there or why it cannot be
    /// checked (no Prometheus or Alertmanager linked, no etcd metrics).
    pub(super) async fn gates(&self, who: &Principal, cluster: &str, settings: &Settings, approve: bool) -> Vec<Gate> {
        let mut gates = Vec::new();
        let linked = |url: Result<crate::clusters::Linked, AppError>| url.is_ok_and(|l| !l.url.is_empty());
        gates.push(if !linked(self.clusters.prometheus(cluster)) {
            gate(
                ETCD,
                false,
                format!("no Prometheus is linked to {cluster}: link one that scrapes etcd to have its quorum checked"),
            )
        } else {
            match self.monitoring.etcd(who, cluster).await {
                Ok(health) if health.unavailable.is_some() => gate(ETCD, false, health.unavailable.unwrap_or_default()),
                Ok(health) => gate(
                    ETCD,
                    true,
                    format!(
                        "etcd keeps its quorum, and before a control-plane node it can lose one more member ({})",
                        health.quorum
                    ),
                ),
                Err(e) => gate(ETCD, true, format!("etcd keeps its quorum (it cannot be read now: {e})")),
            }
        });
        gates.push(gate(
            NODES,
            true,
            format!("every node of {cluster} is Ready before each step and through each soak"),
        ));
        let severities = settings.alert_severities.join(", ");
        gates.push(if linked(self.clusters.alertmanager(cluster)) {
            gate(ALERTS, true, format!("no alert of severity {severities} fires in {cluster}'s Alertmanager"))
        } else {
            gate(
                ALERTS,
                false,
                format!("no Alertmanager is linked to {cluster}: link one to have its alerts hold the operation"),
            )
        });
        gates.push(gate(
            BUDGETS,
            true,
            "the budgets of the pods on each step's nodes allow a disruption before the step starts".into(),
        ));
        if approve {
            gates.push(gate(APPROVAL, true, "a person resumes the operation before each control-plane node".into()));
        }
        gates
    }

    /// The first of `gates` that fails now on `cluster`, in words: before `next` starts, or
    /// through a soak when `next` is `None`.
    pub(super) async fn failing_gate(
        &self,
        who: &Principal,
        cluster: &str,
        gates: &[Gate],
        settings: &Settings,
        next: Option<&PlannedStep>,
    ) -> Result<Option<String>, AppError> {
        let checks = |name: &str| gates.iter().any(|g| g.name == name && g.checked);
        if checks(ETCD) {
            match self.monitoring.etcd(who, cluster).await {
                Err(e) => return Ok(Some(format!("{ETCD}: it cannot be read: {e}"))),
                Ok(health) => {
                    if let Some(why) = health.unavailable {
                        return Ok(Some(format!("{ETCD}: it cannot be read: {why}")));
                    }
                    let healthy = health.members.iter().filter(|m| m.healthy).count();
                    let members = health.members.len();
                    if healthy <= members / 2 {
                        return Ok(Some(format!("{ETCD}: etcd has lost its quorum ({})", health.quorum)));
                    }
                    if let Some(step) = next.filter(|s| s.role == CONTROL_PLANE && members > 1 && health.at_risk) {
                        return Ok(Some(format!(
                            "{ETCD}: {}; taking {} out now could stop the cluster",
                            health.quorum,
                            step.nodes.join(", ")
                        )));
                    }
                }
            }
        }
        let cache = self.clusters.cache(cluster)?;
        let connection = cache.connection();
        if connection != app::clusters::Connection::Live {
            return Ok(Some(format!("{NODES}: Pangea's live view of {cluster} is not complete ({connection:?})")));
        }
        let mut not_ready: Vec<String> = cache
            .node_objects()
            .iter()
            .filter(|n| crate::clusters::cache::node_status(n) != "Ready")
            .map(|n| format!("{} ({})", n.name_any(), crate::clusters::cache::node_status(n)))
            .collect();
        if !not_ready.is_empty() {
            not_ready.sort();
            return Ok(Some(format!("{NODES}: not Ready: {}", not_ready.join(", "))));
        }
        if checks(ALERTS) {
            let alerts = self.monitoring.alerts(who, cluster, None).await?;
            if let Some(why) = alerts.unavailable {
                return Ok(Some(format!("{ALERTS}: the alerts cannot be read: {why}")));
            }
            let firing: Vec<String> = alerts
                .alerts
                .iter()
                .filter(|a| a.state == AlertState::Firing && settings.alert_severities.contains(&a.severity))
                .map(|a| {
                    let summary = if a.summary.is_empty() { String::new() } else { format!(": {}", a.summary) };
                    format!("{} ({}){summary}", a.name, a.severity)
                })
                .collect();
            if !firing.is_empty() {
                return Ok(Some(format!("{ALERTS}: firing: {}", firing.join("; "))));
            }
        }
        if let Some(step) = next {
            let pods: Vec<_> = step
                .nodes
                .iter()
                .flat_map(|node| cache.pods_on(node))
                .filter(|p| matches!(disposition(p), Disposition::Evict | Disposition::LocalStorage))
                .collect();
            if !pods.is_empty() {
                let client = crate::clusters::connect::client(&cache.endpoint, None)?;
                let budgets: Api<PodDisruptionBudget> = Api::all(client);
                let list = budgets
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| crate::clusters::connect::refusal(cluster, &cache.endpoint.api_url, e))?;
                for pod in &pods {
                    if let Some(budget) = list.items.iter().find(|b| guards(b, pod) && disruptions_allowed(b) < 1) {
                        return Ok(Some(format!(
                            "{BUDGETS}: PodDisruptionBudget {}/{} allows {} disruption(s) now, and its pod {} runs on {}",
                            budget.namespace().unwrap_or_default(),
                            budget.name_any(),
                            disruptions_allowed(budget),
                            pod.name_any(),
                            pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
                        )));
                    }
                }
            }
        }
        Ok(None)
    }
}
