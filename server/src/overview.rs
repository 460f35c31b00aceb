//! The home page's fleet at a glance: machines by boot state and by power state (counted in the
//! database, whatever the fleet's size), the clusters with their health and firing alerts, the
//! jobs that run, and the last failures (machines whose boot failed, jobs that failed), each
//! with its reason and a link. Each part is shown only to those who may see it.

pub mod http;
mod store;

use crate::db::Database;
use crate::error::OrInternal;
use crate::jobs::owner_of;
use app::access::{ConsoleRole, Permission, Principal, authorize};
use app::clusters::ssr::ClusterService;
use app::error::AppError;
use app::monitoring::ssr::MonitoringService;
use app::overview::{ClusterGlance, Failure, Fleet, RunningJob};
use std::sync::Arc;

/// How many failures the page lists.
const FAILURES: usize = 10;

pub struct Overview {
    db: Database,
    clusters: Arc<crate::clusters::Clusters>,
    monitoring: Arc<crate::monitoring::Monitoring>,
}

/// A job's kind in words, and where a person follows it.
fn job_words(kind: &str, input: &str) -> (String, String) {
    match kind {
        "cluster.create" => (
            format!("creating cluster {input}"),
            format!(
                "/clusters/create?name={}",
                url::form_urlencoded::byte_serialize(input.as_bytes()).collect::<String>()
            ),
        ),
        "power.run" => ("power run".into(), "/machines/power-runs".into()),
        "power.discover" => ("BMC discovery".into(), "/machines/discover".into()),
        "machine.import" => ("machine import".into(), "/machines/import".into()),
        "drain" => ("node drain".into(), "/clusters".into()),
        other => (other.to_string(), "/".into()),
    }
}

/// A stored job error (the JSON of an `AppError`) as words.
fn error_words(text: &str) -> String {
    serde_json::from_str::<AppError>(text).map(|e| e.to_string()).unwrap_or_else(|_| text.to_string())
}

impl Overview {
    pub fn new(
        db: Database,
        clusters: Arc<crate::clusters::Clusters>,
        monitoring: Arc<crate::monitoring::Monitoring>,
    ) -> Overview {
        Overview { db, clusters, monitoring }
    }

    async fn cluster_glances(&self, who: &Principal) -> Result<Vec<ClusterGlance>, AppError> {
        let glances = self.clusters.clusters(who).await?.into_iter().map(|cluster| async move {
            let h = &cluster.health;
            let connection = h.connection.as_ref().map_or("not connected", |c| c.label());
            let mut health =
                format!("{connection}, {} of {} nodes Ready", h.nodes_ready, h.nodes_ready + h.nodes_not_ready);
            if let Some(why) = &h.unreachable {
                health = format!("unreachable: {why}");
            }
            let healthy = h.unreachable.is_none() && h.nodes_not_ready == 0 && connection == "live";
            let firing = match self.monitoring.alerts(who, &cluster.name, None).await {
                Ok(alerts) if alerts.unavailable.is_none() => {
                    Some(alerts.alerts.iter().filter(|a| a.state == app::monitoring::AlertState::Firing).count() as u32)
                }
                _ => None,
            };
            ClusterGlance { name: cluster.name, health, healthy, firing }
        });
        // Each cluster's Alertmanager is asked at once, not one after another.
        Ok(futures::future::join_all(glances).await)
    }
}

#[async_trait::async_trait]
impl app::overview::ssr::OverviewService for Overview {
    async fn fleet(&self, who: &Principal) -> Result<Fleet, AppError> {
        // Everyone signed in has a home page; each part shows what they may see.
        if who.role.is_none() && who.cluster_roles.is_empty() {
            authorize(who, Permission::ViewMachines)?;
        }
        let machines = authorize(who, Permission::ViewMachines).is_ok();
        // One snapshot, so the counts and the lists agree with each other.
        let mut conn = self.db.snapshot().await.or_internal()?;
        let (by_boot_state, by_power_state) = if machines {
            (
                store::machines_by_boot_state(&mut conn).await.or_internal()?,
                store::machines_by_power_state(&mut conn).await.or_internal()?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let owner = (who.role != Some(ConsoleRole::Admin)).then(|| owner_of(who));
        let jobs = store::running_jobs(&mut conn, owner.as_deref())
            .await
            .or_internal()?
            .into_iter()
            .map(|j| {
                let (kind, link) = job_words(&j.kind, &j.input);
                RunningJob { kind, done: j.done, total: j.total, started_at: j.at, link }
            })
            .collect();
        let failed_machines =
            if machines { store::failed_machines(&mut conn, FAILURES).await.or_internal()? } else { Vec::new() };
        let mut failures: Vec<Failure> = failed_machines
            .into_iter()
            .map(|m| Failure {
                at: m.at,
                what: format!("machine {}", m.name),
                reason: m.reason,
                link: format!("/machines/{}", m.id),
            })
            .collect();
        failures.extend(
            store::failed_jobs(&mut conn, owner.as_deref(), FAILURES).await.or_internal()?.into_iter().map(|j| {
                let (kind, link) = job_words(&j.kind, &j.input);
                Failure { at: j.at, what: kind, reason: error_words(&j.error), link }
            }),
        );
        drop(conn);
        failures.sort_by(|a, b| b.at.cmp(&a.at));
        failures.truncate(FAILURES);
        // Those with roles in some clusters only see those clusters.
        let clusters = self.cluster_glances(who).await.unwrap_or_default();
        Ok(Fleet { by_boot_state, by_power_state, clusters, jobs, failures })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_job_is_named_in_words_with_where_to_follow_it() {
        assert_eq!(
            super::job_words("cluster.create", "edge-1"),
            ("creating cluster edge-1".to_string(), "/clusters/create?name=edge-1".to_string())
        );
        let error = app::error::AppError::Conflict { message: "The cluster was not Ready".into(), fields: vec![] };
        assert_eq!(super::error_words(&serde_json::to_string(&error).unwrap()), error.to_string());
    }
}
