//! One cluster's live inventory: kube-runtime reflector stores of its nodes, pods (all
//! namespaces) and events, fed by watches and trimmed to what the pages use. Pages
//! read these stores, never the API server. A broken watch (an API server restart, `410 Gone`)
//! resumes on its own, with back-off, while the cluster shows "reconnecting".

use super::connect::{self, Endpoint};
use super::selector::Selector;
use app::clusters::{
    ClusterHealth, Connection, NodeCondition, NodeDetail, NodeEvent, NodeQuery, NodeRow, NodeSort, PodQuery, PodRow,
    ReadyCheck, Taint,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the API server's `/version` and `/readyz?verbose` are asked.
const HEALTH_EVERY: Duration = Duration::from_secs(10);

/// The annotation `kubectl apply` leaves, often the largest part of an object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Mirror pods (static pods a kubelet reports) carry this annotation.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The three watched kinds, for the connection state of each.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Nodes = 0,
    Pods = 1,
    Events = 2,
}

#[derive(Debug, Clone, PartialEq)]
enum WatchState {
    Starting,
    Complete,
    /// Why, and when it last failed.
    Broken(String, Instant),
}

/// The longest a broken watch waits before it tries again.
const RETRY_AT_MOST: Duration = Duration::from_secs(5);

/// Retries 0.5 s after a failure, doubling to at most [`RETRY_AT_MOST`]; back to 0.5 s once
/// the watch delivers again. A watch whose last failure is older than that bound, on an API
/// server that answers, was resumed (its retry did not fail).
#[derive(Debug, Default)]
struct Retry(u32);

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = Duration::from_millis(500).saturating_mul(1 << self.0.min(4)).min(RETRY_AT_MOST);
        self.0 += 1;
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for Retry {
    fn reset(&mut self) {
        self.0 = 0;
    }
}

#[derive(Debug)]
struct Live {
    watches: [WatchState; 3],
    version: Option<String>,
    unreachable: Option<String>,
    readyz: Vec<ReadyCheck>,
    started: Instant,
    /// How long the first complete set of all three stores took.
    first_complete: Option<Duration>,
}

/// Pods counted per node and per phase, as of one generation of the pods store.
#[derive(Debug, Default)]
struct PodTally {
    generation: u64,
    per_node: HashMap<String, u32>,
    by_phase: BTreeMap<String, u32>,
}

/// One cluster's stores, its health, and a counter every change bumps.
pub struct ClusterCache {
    pub name: String,
    pub endpoint: Endpoint,
    nodes: Store<Node>,
    pods: Store<Pod>,
    events: Store<Event>,
    live: Mutex<Live>,
    changes: tokio::sync::watch::Sender<u64>,
    /// Bumped by every change to the pods store; the tally is counted again only after one, so
    /// page views do not each walk every pod.
    pods_generation: AtomicU64,
    pod_tally: Mutex<Arc<PodTally>>,
    stop: CancellationToken,
}

impl Drop for ClusterCache {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn trim_meta<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// Keeps what the nodes and node pages show; drops the image list and volume bookkeeping.
fn trim_node(node: &mut Node) {
    trim_meta(node);
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.volumes_attached = None;
        status.volumes_in_use = None;
        status.config = None;
        status.daemon_endpoints = None;
    }
}

/// Keeps the pod's identity, labels, owners, node, phase, restart counts, and which volumes
/// are node-local (for drain); drops containers, the rest of the spec and annotations other
/// than the mirror-pod mark.
fn trim_pod(pod: &mut Pod) {
    trim_meta(pod);
    let meta = pod.meta_mut();
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| k == MIRROR_ANNOTATION);
    }
    if let Some(spec) = pod.spec.as_mut() {
        let local: Vec<_> = spec
            .volumes
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.empty_dir.is_some())
            .map(|v| k8s_openapi::api::core::v1::Volume { name: v.name, empty_dir: v.empty_dir, ..Default::default() })
            .collect();
        *spec = k8s_openapi::api::core::v1::PodSpec {
            node_name: spec.node_name.take(),
            volumes: (!local.is_empty()).then_some(local),
            ..Default::default()
        };
    }
    if let Some(status) = pod.status.as_mut() {
        let statuses = status.container_statuses.take().map(|all| {
            all.into_iter()
                .map(|c| k8s_openapi::api::core::v1::ContainerStatus {
                    name: c.name,
                    restart_count: c.restart_count,
                    ready: c.ready,
                    ..Default::default()
                })
                .collect()
        });
        *status = k8s_openapi::api::core::v1::PodStatus {
            phase: status.phase.take(),
            container_statuses: statuses,
            ..Default::default()
        };
    }
}

fn trim_event(event: &mut Event) {
    trim_meta(event);
    event.metadata.annotations = None;
    event.metadata.labels = None;
    event.related = None;
    event.source = None;
}

impl ClusterCache {
    /// Starts watching the cluster as Pangea: three watches and a health check, all stopped when
    /// the cache is dropped.
    pub fn start(name: String, endpoint: Endpoint) -> Result<Arc<ClusterCache>, app::error::AppError> {
        let client = connect::client(&endpoint, None)?;
        let checks = connect::checking_client(&endpoint)?;
        let (nodes, nodes_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let (events, events_writer) = reflector::store();
        let cache = Arc::new(ClusterCache {
            name,
            endpoint,
            nodes,
            pods,
            events,
            live: Mutex::new(Live {
                watches: std::array::from_fn(|_| WatchState::Starting),
                version: None,
                unreachable: None,
                readyz: Vec::new(),
                started: Instant::now(),
                first_complete: None,
            }),
            changes: tokio::sync::watch::channel(0).0,
            pods_generation: AtomicU64::new(1),
            pod_tally: Mutex::default(),
            stop: CancellationToken::new(),
        });
        let weak = Arc::downgrade(&cache);
        let stop = cache.stop.clone();
        spawn(&stop, follow(weak.clone(), Kind::Nodes, Api::all(client.clone()), nodes_writer, trim_node));
        spawn(&stop, follow(weak.clone(), Kind::Pods, Api::all(client.clone()), pods_writer, trim_pod));
        spawn(&stop, follow(weak.clone(), Kind::Events, Api::all(client.clone()), events_writer, trim_event));
        spawn(&stop, check_health(weak, checks));
        Ok(cache)
    }

    /// A receiver that sees the change counter move; the live streams of pages wait on it.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn set_watch(&self, kind: Kind, state: WatchState) {
        let Ok(mut live) = self.live.lock() else { return };
        live.watches[kind as usize] = state;
        if live.first_complete.is_none() && live.watches.iter().all(|w| *w == WatchState::Complete) {
            live.first_complete = Some(live.started.elapsed());
        }
    }

    /// How long the first complete set of stores took, once it is complete.
    pub fn first_complete(&self) -> Option<Duration> {
        self.live.lock().ok().and_then(|l| l.first_complete)
    }

    pub fn connection(&self) -> Connection {
        let Ok(live) = self.live.lock() else { return Connection::Connecting };
        let broken = live.watches.iter().find_map(|w| match w {
            WatchState::Broken(reason, _) => Some(reason.clone()),
            _ => None,
        });
        if let Some(reason) = broken.or_else(|| live.unreachable.clone()) {
            return Connection::Reconnecting { reason };
        }
        if live.watches.iter().all(|w| *w == WatchState::Complete) { Connection::Live } else { Connection::Connecting }
    }

    /// Nodes Ready and not, pods by phase, the API server's version and checks.
    pub fn health(&self) -> ClusterHealth {
        let connection = self.connection();
        let (mut ready, mut not_ready) = (0, 0);
        for node in self.nodes.state() {
            if node_status(&node) == "Ready" {
                ready += 1;
            } else {
                not_ready += 1;
            }
        }
        let pods_by_phase = self.pod_tally().by_phase.clone();
        let live = self.live.lock().map(|l| (l.version.clone(), l.unreachable.clone(), l.readyz.clone()));
        let (version, unreachable, readyz) = live.unwrap_or_default();
        ClusterHealth {
            connection: Some(connection),
            version,
            unreachable,
            nodes_ready: ready,
            nodes_not_ready: not_ready,
            pods_by_phase,
            readyz,
            warnings: Vec::new(),
        }
    }

    pub fn node_objects(&self) -> Vec<Arc<Node>> {
        self.nodes.state()
    }

    pub fn node_object(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(&reflector::ObjectRef::new(name))
    }

    /// Pods per node name and per phase, counted again only when the pods store has changed.
    fn pod_tally(&self) -> Arc<PodTally> {
        let generation = self.pods_generation.load(Ordering::Acquire);
        if let Ok(tally) = self.pod_tally.lock()
            && tally.generation == generation
        {
            return tally.clone();
        }
        // Counted from a store at least as new as `generation`; a change meanwhile bumps the
        // generation again, so the next view counts once more.
        let mut tally = PodTally { generation, ..PodTally::default() };
        for pod in self.pods.state() {
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()) {
                *tally.per_node.entry(node.clone()).or_insert(0) += 1;
            }
            *tally.by_phase.entry(pod_phase(&pod)).or_insert(0) += 1;
        }
        let tally = Arc::new(tally);
        if let Ok(mut kept) = self.pod_tally.lock() {
            *kept = tally.clone();
        }
        tally
    }

    /// The nodes matching `query`'s search and selector, as rows (unsorted, unpaged).
    pub fn node_rows(
        &self,
        query: &NodeQuery,
        selector: &Selector,
        machine_of: &dyn Fn(&str, &Node) -> Option<i64>,
    ) -> Vec<NodeRow> {
        let search = query.search.as_deref().map(str::to_lowercase);
        let matching: Vec<Arc<Node>> = self
            .nodes
            .state()
            .into_iter()
            .filter(|n| search.as_ref().is_none_or(|s| n.name_any().to_lowercase().contains(s.as_str())))
            .filter(|n| selector.matches(n.labels()))
            .filter(|n| query.machine.is_none_or(|m| machine_of(&self.name, n) == Some(m)))
            .collect();
        if matching.is_empty() {
            return Vec::new();
        }
        let tally = self.pod_tally();
        matching
            .iter()
            .map(|n| {
                node_row(
                    &self.name,
                    n,
                    tally.per_node.get(&n.name_any()).copied().unwrap_or(0),
                    machine_of(&self.name, n),
                )
            })
            .collect()
    }

    /// The page of pods matching `query` at `offset` (in namespace/name order), and how many
    /// match. Only the page's pods become rows.
    pub fn pod_page(&self, query: &PodQuery, selector: &Selector, offset: usize, limit: usize) -> (Vec<PodRow>, usize) {
        let mut matching = self.pods.state_filter(|p| {
            query.namespace.as_deref().is_none_or(|ns| p.metadata.namespace.as_deref() == Some(ns))
                && query
                    .phase
                    .as_deref()
                    .is_none_or(|ph| p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Unknown") == ph)
                && query.node.as_deref().is_none_or(|n| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(n))
                && selector.matches(p.labels())
        });
        matching.sort_unstable_by(|a, b| {
            (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
                .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
        });
        let rows = matching.iter().skip(offset).take(limit).map(|p| pod_row(&self.name, p)).collect();
        (rows, matching.len())
    }

    /// Pods bound to `node`, whole (as stored), for drains.
    pub fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods.state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    }

    /// The node page: the node, its pods and its 20 most recent events.
    pub fn node_detail(&self, name: &str, machine: Option<i64>) -> Option<NodeDetail> {
        let node = self.node_object(name)?;
        let pods: Vec<PodRow> = {
            let mut rows: Vec<PodRow> = self.pods_on(name).iter().map(|p| pod_row(&self.name, p)).collect();
            rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            rows
        };
        let mut events: Vec<(String, NodeEvent)> = self
            .events
            .state()
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("Node") && e.involved_object.name.as_deref() == Some(name)
            })
            .map(|e| {
                let at = e
                    .last_timestamp
                    .as_ref()
                    .map(time_text)
                    .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                    .or_else(|| e.metadata.creation_timestamp.as_ref().map(time_text))
                    .unwrap_or_default();
                (
                    at.clone(),
                    NodeEvent {
                        at,
                        kind: e.type_.clone().unwrap_or_default(),
                        reason: e.reason.clone().unwrap_or_default(),
                        message: e.message.clone().unwrap_or_default(),
                    },
                )
            })
            .collect();
        events.sort_by(|a, b| b.0.cmp(&a.0));
        let status = node.status.clone().unwrap_or_default();
        let quantities = |q: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            q.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()
        };
        Some(NodeDetail {
            row: node_row(&self.name, &node, pods.len() as u32, machine),
            conditions: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| NodeCondition {
                    kind: c.type_,
                    status: c.status,
                    reason: c.reason.unwrap_or_default(),
                    message: c.message.unwrap_or_default(),
                    since: c.last_transition_time.as_ref().map(time_text).unwrap_or_default(),
                })
                .collect(),
            addresses: status.addresses.unwrap_or_default().into_iter().map(|a| (a.type_, a.address)).collect(),
            capacity: quantities(status.capacity),
            allocatable: quantities(status.allocatable),
            labels: node.labels().clone(),
            annotations: node.annotations().clone(),
            system_uuid: system_uuid(&node),
            pods,
            events: events.into_iter().take(20).map(|(_, e)| e).collect(),
        })
    }
}

fn spawn(stop: &CancellationToken, task: impl Future<Output = ()> + Send + 'static) {
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = task => {}
        }
    });
}

/// Feeds one store from its watch for as long as the cache lives.
async fn follow<K>(
    cache: std::sync::Weak<ClusterCache>,
    kind: Kind,
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    trim: fn(&mut K),
) where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let stream = watcher(api, watcher::Config::default()).modify(trim).backoff(Retry::default()).reflect(writer);
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let Some(cache) = cache.upgrade() else { return };
        if matches!(kind, Kind::Pods) {
            cache.pods_generation.fetch_add(1, Ordering::Release);
        }
        match item {
            Ok(watcher::Event::InitDone) => {
                cache.set_watch(kind, WatchState::Complete);
                cache.changed();
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                if matches!(cache.live.lock().map(|l| l.watches[kind as usize].clone()), Ok(WatchState::Broken(..))) {
                    cache.set_watch(kind, WatchState::Complete);
                }
                cache.changed();
            }
            Err(error) => {
                let reason = watch_error(&cache.endpoint.api_url, &error);
                tracing::debug!(cluster = %cache.name, ?kind, %reason, "a watch broke; resuming");
                cache.set_watch(kind, WatchState::Broken(reason, Instant::now()));
                cache.changed();
            }
        }
    }
}

/// A broken watch in words.
fn watch_error(api_url: &str, error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            connect::unreachable(api_url, e)
        }
        watcher::Error::WatchError(status) if status.code == 410 => {
            "the API server answered 410 Gone (its history moved on); listing again".into()
        }
        other => other.to_string(),
    }
}

/// Asks `/version` and `/readyz?verbose` every [`HEALTH_EVERY`] (every 2 s while something is
/// broken). A broken watch is retried by its own back-off; once the server answers and the
/// watch has not failed for longer than a retry waits, it was resumed and counts as complete.
async fn check_health(cache: std::sync::Weak<ClusterCache>, client: Client) {
    loop {
        let version = connect::version(&client).await;
        let readyz = connect::readyz(&client).await;
        let Some(cache) = cache.upgrade() else { return };
        let mut changed = false;
        let mut broken = false;
        if let Ok(mut live) = cache.live.lock() {
            let before = (live.version.clone(), live.unreachable.clone(), live.readyz.clone());
            match (&version, &readyz) {
                (Ok(v), Ok(checks)) => {
                    live.version = Some(v.clone());
                    live.unreachable = None;
                    live.readyz = checks.clone();
                    for watch in live.watches.iter_mut() {
                        if matches!(watch, WatchState::Broken(_, at) if at.elapsed() > RETRY_AT_MOST + Duration::from_secs(1))
                        {
                            *watch = WatchState::Complete;
                            changed = true;
                        }
                    }
                }
                (Err(e), _) | (Ok(_), Err(e)) => {
                    live.unreachable = Some(connect::unreachable(&cache.endpoint.api_url, e));
                    live.readyz = Vec::new();
                }
            }
            changed |= before != (live.version.clone(), live.unreachable.clone(), live.readyz.clone());
            broken = live.unreachable.is_some() || live.watches.iter().any(|w| matches!(w, WatchState::Broken(..)));
        }
        if changed {
            cache.changed();
        }
        drop(cache);
        tokio::time::sleep(if broken { Duration::from_secs(2) } else { HEALTH_EVERY }).await;
    }
}

fn time_text(t: &Time) -> String {
    t.0.to_string()
}

/// Ready, NotReady or Unknown, from the Ready condition.
pub fn node_status(node: &Node) -> &'static str {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    match ready {
        Some("True") => "Ready",
        Some("False") => "NotReady",
        _ => "Unknown",
    }
}

pub fn system_uuid(node: &Node) -> String {
    node.status.as_ref().and_then(|s| s.node_info.as_ref()).map(|i| i.system_uuid.to_lowercase()).unwrap_or_default()
}

fn pod_phase(pod: &Pod) -> String {
    pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".into())
}

/// A node's roles, from its `node-role.kubernetes.io/<role>` labels.
fn roles(node: &Node) -> Vec<String> {
    let mut roles: Vec<String> = node
        .labels()
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .or_else(|| (k == "kubernetes.io/role").then(|| v.clone()))
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

pub fn taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|all| {
            all.iter()
                .map(|t| Taint {
                    key: t.key.clone(),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.effect.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn node_row(cluster: &str, node: &Node, pods: u32, machine: Option<i64>) -> NodeRow {
    let status = node.status.as_ref();
    let capacity = |key: &str| {
        status.and_then(|s| s.capacity.as_ref()).and_then(|c| c.get(key)).map(|q| q.0.clone()).unwrap_or_default()
    };
    NodeRow {
        cluster: cluster.to_string(),
        name: node.name_any(),
        status: node_status(node).into(),
        roles: roles(node),
        version: status.and_then(|s| s.node_info.as_ref()).map(|i| i.kubelet_version.clone()).unwrap_or_default(),
        internal_ip: status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone())
            .unwrap_or_default(),
        created: node.metadata.creation_timestamp.as_ref().map(time_text).unwrap_or_default(),
        pods,
        cpu: capacity("cpu"),
        memory: capacity("memory"),
        cordoned: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        taints: taints(node),
        machine,
    }
}

fn pod_row(cluster: &str, pod: &Pod) -> PodRow {
    PodRow {
        cluster: cluster.to_string(),
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
        phase: pod_phase(pod),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        restarts: pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c.iter().map(|c| c.restart_count.max(0) as u32).sum())
            .unwrap_or(0),
        created: pod.metadata.creation_timestamp.as_ref().map(time_text).unwrap_or_default(),
    }
}

/// Sorts rows by `sort`, then by cluster and name.
pub fn sort_nodes(rows: &mut [NodeRow], sort: NodeSort, descending: bool) {
    rows.sort_by(|a, b| {
        let primary = match sort {
            NodeSort::Name => std::cmp::Ordering::Equal,
            NodeSort::Status => a.status.cmp(&b.status),
            // Oldest first is "by age, descending" in most consoles; here ascending age is newest first.
            NodeSort::Age => b.created.cmp(&a.created),
            NodeSort::Pods => a.pods.cmp(&b.pods),
        };
        let ordering = primary.then_with(|| (&a.name, &a.cluster).cmp(&(&b.name, &b.cluster)));
        if descending { ordering.reverse() } else { ordering }
    });
}

#[cfg(test)]
mod tests {
    use super::super::recorded;
    use super::*;

    #[test]
    fn a_recorded_node_becomes_its_row_and_keeps_no_managed_fields() {
        let mut node: Node = serde_json::from_value(recorded("023_node-get.json")["response"]["body"].clone()).unwrap();
        assert!(node.metadata.managed_fields.is_some());
        trim_node(&mut node);
        assert!(node.metadata.managed_fields.is_none());
        let row = node_row("edge-1", &node, 3, Some(7));
        assert_eq!(row.name, "worker-1");
        assert_eq!(row.roles, vec!["worker".to_string()]);
        assert_eq!(row.pods, 3);
        assert_eq!(row.machine, Some(7));
        assert_eq!(row.created, "2026-11-25T01:01:00Z");
        assert!(["Ready", "NotReady", "Unknown"].contains(&row.status.as_str()));
    }

    #[test]
    fn recorded_pods_keep_only_what_the_pages_use() {
        let list = recorded("084_pod-list-all-namespaces.json")["response"]["body"].clone();
        let pods: Vec<Pod> = serde_json::from_value(list["items"].clone()).unwrap();
        assert!(!pods.is_empty());
        for mut pod in pods {
            let before = pod_row("c", &pod);
            trim_pod(&mut pod);
            assert_eq!(pod_row("c", &pod), before, "the row is the same from the trimmed pod");
            let spec = pod.spec.as_ref().unwrap();
            assert!(spec.containers.is_empty());
            assert!(pod.metadata.managed_fields.is_none());
        }
    }

    #[test]
    fn a_410_is_said_in_words() {
        let exchange = recorded("141_watch-too-old-rv1-after-writes.json");
        let error = exchange["response"]["events"].as_array().unwrap().iter().find(|e| e["type"] == "ERROR").unwrap();
        let status: kube::core::Status = serde_json::from_value(error["object"].clone()).unwrap();
        assert_eq!(status.code, 410);
        let reason = watch_error("https://x", &watcher::Error::WatchError(Box::new(status)));
        assert!(reason.contains("410 Gone"), "{reason}");
    }

    #[test]
    fn nodes_sort_by_the_key_then_by_name() {
        let row = |name: &str, pods: u32| NodeRow {
            cluster: "c".into(),
            name: name.into(),
            status: "Ready".into(),
            roles: vec![],
            version: String::new(),
            internal_ip: String::new(),
            created: String::new(),
            pods,
            cpu: String::new(),
            memory: String::new(),
            cordoned: false,
            taints: vec![],
            machine: None,
        };
        let mut rows = vec![row("b", 1), row("a", 5), row("c", 1)];
        sort_nodes(&mut rows, NodeSort::Pods, false);
        assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["b", "c", "a"]);
        sort_nodes(&mut rows, NodeSort::Name, true);
        assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["c", "b", "a"]);
    }
}
