//! etcd's members and quorum, from the metrics every etcd member publishes, as the cluster's
//! Prometheus has them. A member is known if it reported in the last hour; it is healthy if it
//! is scraped now and has a leader.

use super::prometheus::{Prometheus, QueryError};
use app::monitoring::{EtcdHealth, EtcdMember, quorum_words};
use std::collections::BTreeMap;

/// Each series' value by its `instance`.
async fn by_instance(prometheus: &Prometheus, query: &str) -> Result<BTreeMap<String, f64>, QueryError> {
    Ok(prometheus
        .instant(query)
        .await?
        .into_iter()
        .filter_map(|(labels, value)| Some((labels.get("instance")?.clone(), value)))
        .collect())
}

pub async fn health(prometheus: &Prometheus) -> Result<EtcdHealth, QueryError> {
    let known = by_instance(prometheus, "max by (instance) (max_over_time(etcd_server_has_leader[1h]))").await?;
    if known.is_empty() {
        return Ok(EtcdHealth {
            members: Vec::new(),
            quorum: String::new(),
            at_risk: false,
            unavailable: Some(format!(
                "Prometheus at {} has no etcd metrics (etcd_server_has_leader): scrape each etcd member's /metrics \
                 to see its quorum here.",
                prometheus.url
            )),
        });
    }
    let has_leader = by_instance(prometheus, "etcd_server_has_leader").await?;
    let is_leader = by_instance(prometheus, "etcd_server_is_leader").await?;
    let db_size = by_instance(prometheus, "etcd_mvcc_db_total_size_in_bytes").await?;
    let quota = by_instance(prometheus, "etcd_server_quota_backend_bytes").await?;
    let failed = by_instance(prometheus, "increase(etcd_server_proposals_failed_total[1h])").await?;
    let members: Vec<EtcdMember> = known
        .keys()
        .map(|instance| EtcdMember {
            instance: instance.clone(),
            healthy: has_leader.get(instance).is_some_and(|v| *v == 1.0),
            leader: is_leader.get(instance).is_some_and(|v| *v == 1.0),
            db_size: db_size.get(instance).copied(),
            quota: quota.get(instance).copied(),
            failed_proposals: failed.get(instance).copied(),
        })
        .collect();
    let healthy = members.iter().filter(|m| m.healthy).count();
    let (quorum, at_risk) = quorum_words(members.len(), healthy);
    Ok(EtcdHealth { members, quorum, at_risk, unavailable: None })
}
