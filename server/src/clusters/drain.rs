//! Draining a node, as the person who asked, as a durable job: cordon; evict every pod through
//! the Eviction API (so PodDisruptionBudgets are respected), leaving DaemonSet and mirror pods;
//! refuse pods with node-local storage unless asked; wait for the evicted pods to go; all
//! within a timeout, and stopped when the person cancels.
//!
//! Every step is idempotent (cordoning a cordoned node, evicting a pod already gone), so a
//! replica that takes over a drain whose replica died runs it again from the start, counting on
//! from what was recorded.

use super::connect::{self, Endpoint, Impersonation};
use crate::jobs::{JobKind, Jobs};
use app::clusters::{DrainBlocker, DrainOptions, DrainProgress};
use app::error::AppError;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use std::time::Duration;

/// A drain, in the jobs table.
pub const DRAIN_JOB: JobKind = JobKind { name: "drain" };

/// What a drain job keeps for whichever replica runs it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DrainInput {
    pub cluster: String,
    pub node: String,
    pub options: DrainOptions,
    /// When it times out (Unix seconds), however often it is resumed.
    pub deadline: i64,
}
/// How long a drain waits before it asks again for pods a budget protects.
const RETRY: Duration = Duration::from_secs(2);

/// What a drain does with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Evict,
    /// Owned by a DaemonSet: its controller would put it back at once.
    SkipDaemonSet,
    /// A static pod's mirror: the kubelet owns it, not the API.
    SkipMirror,
    /// Has `emptyDir` volumes, whose data eviction loses.
    LocalStorage,
}

pub fn disposition(pod: &Pod) -> Disposition {
    if pod.annotations().contains_key(super::cache::MIRROR_ANNOTATION) {
        return Disposition::SkipMirror;
    }
    if pod.owner_references().iter().any(|o| o.kind == "DaemonSet" && o.controller == Some(true)) {
        return Disposition::SkipDaemonSet;
    }
    let local =
        pod.spec.as_ref().and_then(|s| s.volumes.as_ref()).is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
    if local { Disposition::LocalStorage } else { Disposition::Evict }
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// Whether `budget` guards `pod`: same namespace, and its `matchLabels` (not empty) all match.
pub fn guards(budget: &PodDisruptionBudget, pod: &Pod) -> bool {
    let labels = pod.labels();
    budget.namespace() == pod.namespace()
        && budget
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.as_ref())
            .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// How many disruptions `budget` allows now, as its controller last said (none before it did).
pub fn disruptions_allowed(budget: &PodDisruptionBudget) -> i32 {
    budget.status.as_ref().and_then(|s| s.disruptions_allowed).unwrap_or(0)
}

/// What stops a pod's eviction now, in words: the budget (by name) that allows no disruption.
async fn blocker(client: &Client, pod: &Pod, message: &str) -> DrainBlocker {
    let namespace = pod.namespace().unwrap_or_default();
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &namespace);
    let named = budgets
        .list(&ListParams::default())
        .await
        .ok()
        .and_then(|list| list.items.into_iter().find(|b| guards(b, pod)));
    let reason = match named {
        Some(budget) => {
            let allowed = disruptions_allowed(&budget);
            format!("PodDisruptionBudget {namespace}/{} allows {allowed} disruption(s) now", budget.name_any())
        }
        None => message.to_string(),
    };
    DrainBlocker { pod: key(pod), reason }
}

/// Runs the drain for job `job`, going on from `previous` when it was taken over; the outcome
/// is the final progress.
pub async fn run(
    jobs: &Jobs,
    job: &str,
    endpoint: &Endpoint,
    as_whom: &Impersonation,
    input: &DrainInput,
    previous: Option<DrainProgress>,
) -> Result<DrainProgress, AppError> {
    let DrainInput { cluster, node, options, deadline } = input;
    let refused = |e| connect::refusal(cluster, &endpoint.api_url, e);
    let client = connect::client(endpoint, Some(as_whom))?;
    let mut progress = DrainProgress {
        job: job.into(),
        state: "running".into(),
        step: "cordon".into(),
        evicted: previous.as_ref().map_or(0, |p| p.evicted),
        ..Default::default()
    };
    let report = async |progress: &DrainProgress| {
        jobs.report(job, progress.evicted, progress.total, &serde_json::to_string(progress).unwrap_or_default()).await
    };
    let stop = async |progress: &DrainProgress| -> Result<(), AppError> {
        if jobs.cancel_requested(job).await? {
            return Err(AppError::Conflict {
                message: format!(
                    "Cancelled after evicting {} of {} pods; the node stays cordoned.",
                    progress.evicted, progress.total
                ),
                fields: Vec::new(),
            });
        }
        if time::OffsetDateTime::now_utc().unix_timestamp() >= *deadline {
            let blocked: Vec<String> = progress.blockers.iter().map(|b| format!("{} ({})", b.pod, b.reason)).collect();
            return Err(AppError::Conflict {
                message: format!(
                    "Timed out after {} s with {} of {} pods evicted{}; the node stays cordoned.",
                    options.timeout(),
                    progress.evicted,
                    progress.total,
                    if blocked.is_empty() { String::new() } else { format!(", blocked by {}", blocked.join("; ")) }
                ),
                fields: Vec::new(),
            });
        }
        Ok(())
    };
    // A drain cancelled while no replica ran it stops before doing anything more.
    stop(&progress).await?;

    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            node,
            &PatchParams { field_manager: Some("pangea".into()), ..Default::default() },
            &Patch::Merge(json!({ "spec": { "unschedulable": true } })),
        )
        .await
        .map_err(refused)?;

    let all: Api<Pod> = Api::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let pods = all.list(&on_node).await.map_err(refused)?.items;
    let mut to_evict = Vec::new();
    let mut local = Vec::new();
    // Pods evicted before a take-over and still terminating are waited for, not evicted again.
    let mut terminating = Vec::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            terminating.push(key(&pod));
            continue;
        }
        match disposition(&pod) {
            Disposition::Evict => to_evict.push(pod),
            Disposition::LocalStorage if options.delete_local_data => to_evict.push(pod),
            Disposition::LocalStorage => local.push(key(&pod)),
            Disposition::SkipDaemonSet | Disposition::SkipMirror => progress.skipped.push(key(&pod)),
        }
    }
    if !local.is_empty() {
        return Err(AppError::invalid(format!(
            "Not drained: {} use node-local storage (emptyDir), whose data eviction loses. Drain again with \"delete local \
             data\" to evict them anyway. The node stays cordoned.",
            local.join(", ")
        )));
    }
    progress.total = progress.evicted + to_evict.len() as u32;
    progress.step = "evict".into();
    report(&progress).await?;

    let mut remaining = to_evict.clone();
    while !remaining.is_empty() {
        stop(&progress).await?;
        let mut blocked = Vec::new();
        let mut still = Vec::new();
        for pod in remaining {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
            match pods.evict(&pod.name_any(), &EvictParams::default()).await {
                Ok(_) => progress.evicted += 1,
                Err(kube::Error::Api(s)) if s.code == 404 => progress.evicted += 1,
                // 429: a budget allows no disruption now; 500: more than one budget selects it.
                Err(kube::Error::Api(s)) if s.code == 429 || (s.code == 500 && s.message.contains("disruption")) => {
                    blocked.push(blocker(&client, &pod, &s.message).await);
                    still.push(pod);
                }
                Err(e) => return Err(refused(e)),
            }
        }
        progress.blockers = blocked;
        report(&progress).await?;
        remaining = still;
        if !remaining.is_empty() {
            tokio::time::sleep(RETRY).await;
        }
    }

    // Evicted pods terminate gracefully; the drain ends when they are gone.
    progress.step = "wait".into();
    report(&progress).await?;
    let evicted: std::collections::HashSet<String> = to_evict.iter().map(key).chain(terminating).collect();
    loop {
        let left =
            all.list(&on_node).await.map_err(refused)?.items.iter().filter(|p| evicted.contains(&key(p))).count();
        if left == 0 {
            break;
        }
        stop(&progress).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    progress.state = "succeeded".into();
    progress.step = "done".into();
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded_pod() -> Pod {
        let exchange = super::super::recorded("084_pod-list-all-namespaces.json");
        serde_json::from_value(exchange["response"]["body"]["items"][0].clone()).unwrap()
    }

    #[test]
    fn daemonset_and_mirror_pods_are_left_and_local_storage_is_flagged() {
        let pod = recorded_pod();
        assert_eq!(disposition(&pod), Disposition::Evict);
        let mut daemon = pod.clone();
        daemon.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u", "controller": true
            }))
            .unwrap(),
        ]);
        assert_eq!(disposition(&daemon), Disposition::SkipDaemonSet);
        let mut mirror = pod.clone();
        mirror.annotations_mut().insert(super::super::cache::MIRROR_ANNOTATION.into(), "x".into());
        assert_eq!(disposition(&mirror), Disposition::SkipMirror);
        let mut local = pod;
        local.spec.as_mut().unwrap().volumes =
            Some(vec![serde_json::from_value(json!({"name": "scratch", "emptyDir": {}})).unwrap()]);
        assert_eq!(disposition(&local), Disposition::LocalStorage);
    }
}
