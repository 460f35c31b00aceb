//! Registered Kubernetes clusters: the service behind the Clusters pages, the JSON API and
//! `pangea cluster`. Each cluster has a live cache ([`cache::ClusterCache`]) started when it
//! is registered (or when Pangea starts) and stopped when it is removed.

mod actions;
pub mod cache;
pub mod connect;
pub mod drain;
pub mod http;
pub mod selector;
pub mod sources;
pub mod store;

use crate::audit::{self, Event};
use crate::db::Database;
use crate::db::now;
use crate::error::{OrInternal, internal};
use crate::jobs::Job;
use crate::leases::Leases;
use crate::secrets::Sealer;
use app::access::{Permission, Principal, authorize, authorize_in};
use app::clusters::ssr::ClusterService;
use app::clusters::{
    Cluster, ClusterInput, ClusterName, DEFAULT_PAGE, DrainOptions, DrainProgress, KubeconfigImport, MAX_PAGE,
    NodeAction, NodeDetail, NodeQuery, NodeRow, Page, PodQuery, PodRow, SourceCredential,
};
use app::error::AppError;
use app::provisioning::boots::BootState;
use cache::ClusterCache;
use connect::{Endpoint, Impersonation};
use selector::Selector;
use serde_json::json;
use sources::{Clients, Credentials};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use store::ClusterRecord;

/// A source linked to a cluster: its URL ('' when none is) and the client that presents
/// Pangea's credential for it.
pub struct Linked {
    pub url: String,
    pub http: reqwest::Client,
}

/// An inventory machine as the clusters area links it: its MAC, cluster and boot state.
#[derive(Debug, Clone)]
pub struct LinkedMachine {
    pub mac: String,
    pub name: String,
    pub cluster: String,
    /// `None`: never seen by the boot listener.
    pub state: Option<BootState>,
    pub since: String,
}

/// The inventory machines a node can be: by UUID (lowercase) and by host name.
#[derive(Debug, Default)]
pub struct Inventory {
    by_uuid: HashMap<String, i64>,
    by_hostname: HashMap<String, i64>,
    /// How many inventory machines name each cluster.
    per_cluster: HashMap<String, u32>,
    machines: HashMap<i64, LinkedMachine>,
}

impl Inventory {
    pub async fn load(db: &Database) -> Result<Inventory, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT m.id, m.mac, m.hostname, m.uuid, m.cluster, s.state, s.since FROM machines m \
             LEFT JOIN boot_states s ON s.mac = m.mac",
        )
        .fetch_all(db.pool())
        .await?;
        let mut inventory = Inventory::default();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let hostname: String = row.try_get("hostname")?;
            let uuid: String = row.try_get("uuid")?;
            let cluster: String = row.try_get("cluster")?;
            let mac: String = row.try_get("mac")?;
            inventory.machines.insert(
                id,
                LinkedMachine {
                    name: if hostname.is_empty() { mac.clone() } else { hostname.clone() },
                    mac,
                    cluster: cluster.clone(),
                    state: row.try_get::<Option<String>, _>("state")?.as_deref().and_then(BootState::parse),
                    since: row.try_get::<Option<String>, _>("since")?.unwrap_or_default(),
                },
            );
            if !uuid.is_empty() {
                inventory.by_uuid.insert(uuid.to_lowercase(), id);
            }
            if !hostname.is_empty() {
                inventory.by_hostname.insert(hostname, id);
            }
            if !cluster.is_empty() {
                *inventory.per_cluster.entry(cluster).or_insert(0) += 1;
            }
        }
        Ok(inventory)
    }

    /// An inventory machine, by id.
    pub fn machine(&self, id: i64) -> Option<&LinkedMachine> {
        self.machines.get(&id)
    }

    /// The machine a node of `cluster` is: by its `systemUUID`, else by host name against the
    /// node's name; only a machine of that cluster, or of none, since a node of one cluster
    /// must not move the boot timeline of another's machine that shares its name.
    pub fn machine_of(&self, cluster: &str, node: &k8s_openapi::api::core::v1::Node) -> Option<i64> {
        let ours = |id: &i64| self.machines.get(id).is_some_and(|m| m.cluster.is_empty() || m.cluster == cluster);
        let uuid = cache::system_uuid(node);
        (!uuid.is_empty())
            .then(|| self.by_uuid.get(&uuid).copied().filter(ours))
            .flatten()
            .or_else(|| node.metadata.name.as_ref().and_then(|n| self.by_hostname.get(n).copied().filter(ours)))
    }
}

/// What a single sign-on kubeconfig names: the IdP, Pangea's client id, and the scopes that
/// carry the user-name and groups claims.
#[derive(Debug, Clone)]
pub struct SingleSignOn {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// Checks a cluster's linked Prometheus, Alertmanager and Grafana when they are saved: each must
/// answer its own API. The monitoring area does it; the composition root wires it in.
#[async_trait::async_trait]
pub trait SourcesCheck: Send + Sync {
    async fn check(
        &self,
        clients: &Clients,
        prometheus: &str,
        alertmanager: &str,
        grafana: &str,
    ) -> Result<(), AppError>;
}

pub struct Clusters {
    db: Database,
    sources_check: Arc<dyn SourcesCheck>,
    sso: Option<SingleSignOn>,
    /// Where a node's registration and readiness go on its machine's boot timeline.
    provisioner: Option<Arc<crate::provisioner::Provisioner>>,
    jobs: crate::jobs::Jobs,
    /// Where drains run, so a stopping server ends them (and another replica resumes them).
    background: crate::background::Background,
    sealer: Arc<Sealer>,
    caches: RwLock<BTreeMap<String, Arc<ClusterCache>>>,
    records: RwLock<BTreeMap<String, ClusterRecord>>,
    /// Whether monitoring links may go to this host or its link (`--allow-local-monitoring-urls`).
    local_links: bool,
}

fn not_registered(name: &str) -> AppError {
    AppError::not_found(format!("No cluster named \"{name}\" is registered."))
}

fn page_of<T>(rows: Vec<T>, offset: u32, limit: Option<u32>) -> Page<T> {
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    let total = rows.len() as u32;
    let items = rows.into_iter().skip(offset as usize).take(limit).collect();
    Page { items, total, offset }
}

/// Whether a URL's host is this host or its link (loopback, link-local, unspecified).
fn is_local(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_unicast_link_local()
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_link_local())
        }
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// A monitoring link: empty, or an http(s) URL; not to this host or its link unless `local`.
fn link(field: &str, text: &str, local: bool) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    match url::Url::parse(text) {
        Ok(u) if !local && is_local(&u) => {
            let message = format!(
                "{} is this host or its link (loopback or link-local): Pangea would call it itself. Such links are \
                 refused unless pangea serve runs with --allow-local-monitoring-urls.",
                u.host_str().unwrap_or_default()
            );
            Err(AppError::Invalid {
                message: message.clone(),
                fields: vec![app::error::FieldError { field: field.into(), message }],
            })
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            let message = "Put no user name or password in the URL: every viewer sees it.".to_string();
            Err(AppError::Invalid {
                message: message.clone(),
                fields: vec![app::error::FieldError { field: field.into(), message }],
            })
        }
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(text.trim_end_matches('/').into())
        }
        _ => {
            let message = format!("\"{text}\" is not an http(s) URL.");
            Err(AppError::Invalid {
                message: message.clone(),
                fields: vec![app::error::FieldError { field: field.into(), message }],
            })
        }
    }
}

impl Clusters {
    pub fn new(
        db: Database,
        sealer: Arc<Sealer>,
        jobs: crate::jobs::Jobs,
        sources_check: Arc<dyn SourcesCheck>,
    ) -> Clusters {
        Clusters {
            jobs,
            background: Default::default(),
            sources_check,
            db,
            sso: None,
            provisioner: None,
            sealer,
            caches: RwLock::default(),
            records: RwLock::default(),
            local_links: false,
        }
    }

    /// Runs drains on `background`, which `serve()` stops at shutdown.
    pub fn with_background(mut self, background: crate::background::Background) -> Clusters {
        self.background = background;
        self
    }

    /// Goes on with a drain another replica was running when it stopped, as the person who
    /// started it, from what it had done (evictions are idempotent).
    pub fn resume_drain(&self, job: Job) {
        let previous = serde_json::from_str::<DrainProgress>(&job.result).unwrap_or_default();
        let input = serde_json::from_str::<drain::DrainInput>(&job.input);
        // It goes on only as someone who may still act on the cluster's nodes.
        let resumable = match (input, job.acting) {
            (Err(_), _) => Err(internal("this drain cannot be resumed: its stored input cannot be read")),
            (Ok(_), None) => Err(AppError::Forbidden {
                message: "This drain was stopped: whoever started it may no longer act (disabled, deleted, or a \
                          token revoked or expired)."
                    .into(),
            }),
            (Ok(input), Some(who)) => match authorize_in(&who, Permission::ActOnNodes, &input.cluster) {
                Ok(()) => Ok((who, input)),
                Err(_) => Err(AppError::Forbidden {
                    message: format!(
                        "This drain was stopped: {} may no longer act on cluster {}'s nodes.",
                        who.actor(),
                        input.cluster
                    ),
                }),
            },
        };
        match resumable {
            Ok((who, input)) => self.run_drain(who, job.id, input, Some(previous)),
            Err(error) => {
                let jobs = self.jobs.clone();
                self.background.spawn(async move {
                    if let Err(e) = jobs.fail(&job.id, &error).await {
                        tracing::error!(error = %e, job = job.id, "could not fail a drain");
                    }
                });
            }
        }
    }

    /// Runs drain `job` in the background, holding its lease, and ends it with its audit
    /// record (`node.drain.end`), once.
    fn run_drain(&self, who: Principal, job: String, input: drain::DrainInput, previous: Option<DrainProgress>) {
        let (jobs, record) = (self.jobs.clone(), self.record(&input.cluster));
        self.background.spawn(async move {
            let target = format!("{}/{}", input.cluster, input.node);
            let outcome = async {
                let as_whom = Impersonation::of(&who)?;
                let endpoint = record?.endpoint;
                jobs.holding_lease(&job, drain::run(&jobs, &job, &endpoint, &as_whom, &input, previous)).await
            }
            .await;
            let summary = match &outcome {
                Ok(progress) => json!({ "job": job, "evicted": progress.evicted, "skipped": progress.skipped }),
                Err(_) => json!({ "job": job }),
            };
            let finished = Event::new("node.drain.end", "node").target(target, &input.node).summary(summary);
            let outcome = outcome.map(|progress| serde_json::to_string(&progress).unwrap_or_default());
            if let Err(e) = jobs.finish(&job, &who, finished, outcome).await {
                tracing::error!(error = %e, job, "could not record a drain's end");
            }
        });
    }

    /// Records nodes joining and turning Ready on their machines' boot timelines.
    pub fn with_provisioner(mut self, provisioner: Arc<crate::provisioner::Provisioner>) -> Clusters {
        self.provisioner = Some(provisioner);
        self
    }

    /// Every 5 s: follows clusters registered, changed or removed on another replica, and moves
    /// each provisioned machine whose node registered to `joined`, and to `Ready` when the
    /// node's Ready condition is true.
    pub fn follow_nodes(self: &Arc<Self>, background: &crate::background::Background, leases: Arc<Leases>) {
        let clusters = Arc::downgrade(self);
        background.every(std::time::Duration::from_secs(5), move || {
            let (clusters, leases) = (clusters.clone(), leases.clone());
            async move {
                let Some(clusters) = clusters.upgrade() else { return };
                if let Err(e) = clusters.sync_registered().await {
                    tracing::warn!(error = %e, "could not read the registered clusters");
                }
                // Every replica watches; one writes the links (and their timeline events).
                if !leases.holds(crate::leases::LINK_NODES) {
                    return;
                }
                if let Err(e) = clusters.link_nodes(|| leases.holds(crate::leases::LINK_NODES)).await {
                    tracing::warn!(error = %e, "could not record nodes on their machines' timelines");
                }
            }
        });
    }

    /// Watches what the database says is registered: a cluster another replica added or changed
    /// (by `updated_at`) is (re)started here, one it removed is stopped.
    pub async fn sync_registered(&self) -> Result<(), crate::error::Error> {
        let stored = store::all(&self.db, &self.sealer).await?;
        let known: BTreeMap<String, String> = self
            .records
            .read()
            .map(|r| r.iter().map(|(n, c)| (n.clone(), c.updated_at.clone())).collect())
            .unwrap_or_default();
        for record in &stored {
            if known.get(&record.name) != Some(&record.updated_at)
                && let Err(e) = self.watch(record)
            {
                tracing::warn!(cluster = %record.name, error = %e, "cannot watch a registered cluster");
            }
        }
        for name in known.keys().filter(|n| !stored.iter().any(|r| &r.name == *n)) {
            self.forget(name);
        }
        Ok(())
    }

    /// One pass of linking nodes to machines (see [`Self::follow_nodes`]).
    ///
    /// `still_holds` is asked before each write: a replica that lost the duty mid-pass (a stall
    /// longer than its lease's margin) stops before it writes what the new holder writes.
    pub async fn link_nodes(&self, still_holds: impl Fn() -> bool) -> Result<(), crate::error::Error> {
        let Some(provisioner) = &self.provisioner else { return Ok(()) };
        let inventory = Inventory::load(&self.db).await?;
        let index = provisioner.index();
        for cache in self.all_caches() {
            for node in cache.node_objects() {
                let Some(machine) = inventory.machine_of(&cache.name, &node).and_then(|id| inventory.machines.get(&id))
                else {
                    continue;
                };
                // Only machines Pangea provisioned have a boot timeline to move.
                let Some(state) = machine.state else { continue };
                let name = format!("{}/{}", cache.name, node.metadata.name.as_deref().unwrap_or_default());
                let to_record_ready = cache::node_status(&node) == "Ready" && state != BootState::Ready;
                let to_record_joined = !matches!(state, BootState::Joined | BootState::Ready);
                if (to_record_joined || to_record_ready) && !still_holds() {
                    return Ok(());
                }
                if to_record_joined {
                    provisioner.boots.record_node_step(&index, &machine.mac, BootState::Joined, &name).await?;
                }
                if to_record_ready {
                    provisioner.boots.record_node_step(&index, &machine.mac, BootState::Ready, &name).await?;
                }
            }
        }
        Ok(())
    }

    /// Allows monitoring links to loopback and link-local addresses.
    pub fn with_local_monitoring_urls(mut self, allowed: bool) -> Clusters {
        self.local_links = allowed;
        self
    }

    /// Lets people download kubeconfigs that sign in through this IdP.
    pub fn with_single_sign_on(mut self, sso: Option<SingleSignOn>) -> Clusters {
        self.sso = sso;
        self
    }

    /// Loads the registered clusters and starts watching each.
    pub async fn start(&self) -> Result<(), crate::error::Error> {
        for record in store::all(&self.db, &self.sealer).await? {
            if let Err(e) = self.watch(&record) {
                tracing::warn!(cluster = %record.name, error = %e, "cannot watch a registered cluster");
            }
        }
        Ok(())
    }

    /// Stops the watches of every cluster (at shutdown, or in tests).
    pub fn stop(&self) {
        if let Ok(mut caches) = self.caches.write() {
            caches.clear();
        }
    }

    fn watch(&self, record: &ClusterRecord) -> Result<(), AppError> {
        // A cluster whose credential cannot be opened is listed, with why, and not watched.
        let cache = match &record.unreadable {
            None => Some(ClusterCache::start(record.name.clone(), record.endpoint.clone())?),
            Some(_) => None,
        };
        if let Ok(mut caches) = self.caches.write() {
            match cache {
                Some(cache) => caches.insert(record.name.clone(), cache),
                None => caches.remove(&record.name),
            };
        }
        if let Ok(mut records) = self.records.write() {
            records.insert(record.name.clone(), record.clone());
        }
        Ok(())
    }

    fn forget(&self, name: &str) {
        if let Ok(mut caches) = self.caches.write() {
            caches.remove(name);
        }
        if let Ok(mut records) = self.records.write() {
            records.remove(name);
        }
    }

    /// The live cache of a registered cluster.
    pub fn cache(&self, name: &str) -> Result<Arc<ClusterCache>, AppError> {
        self.caches.read().ok().and_then(|c| c.get(name).cloned()).ok_or_else(|| not_registered(name))
    }

    fn all_caches(&self) -> Vec<Arc<ClusterCache>> {
        self.caches.read().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    async fn inventory(&self) -> Result<Inventory, AppError> {
        Inventory::load(&self.db).await.or_internal()
    }

    fn summary(&self, record: &ClusterRecord, inventory: &Inventory) -> Cluster {
        let cache = self.cache(&record.name).ok();
        let mut health = cache.as_ref().map(|c| c.health()).unwrap_or_default();
        if let Some(problem) = &record.unreadable {
            health.unreachable = Some(format!("Not watched: {problem} Give Pangea's credentials for it again."));
        }
        if let Some(problem) = &record.sources_unreadable {
            health.warnings.push(format!("Monitoring links are used without credentials: {problem}; give them again."));
        }
        if let Some(cache) = &cache
            && inventory.per_cluster.get(&record.name).copied().unwrap_or(0) > 0
        {
            let nodes = cache.node_objects();
            let linked: std::collections::HashSet<i64> =
                nodes.iter().filter_map(|n| inventory.machine_of(&record.name, n)).collect();
            let an_hour_ago = crate::db::timestamp(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
            let mut nodeless: Vec<&LinkedMachine> = inventory
                .machines
                .iter()
                .filter(|(id, m)| {
                    m.cluster == record.name
                        && m.state == Some(BootState::Installed)
                        && m.since < an_hour_ago
                        && !linked.contains(id)
                })
                .map(|(_, m)| m)
                .collect();
            nodeless.sort_by(|a, b| a.name.cmp(&b.name));
            for machine in nodeless.iter().take(5) {
                health.warnings.push(format!(
                    "Machine {} was installed at {} and no node of this cluster is it yet.",
                    machine.name, machine.since
                ));
            }
            let unlinked: Vec<String> = cache
                .node_objects()
                .iter()
                .filter(|n| inventory.machine_of(&record.name, n).is_none())
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            if !unlinked.is_empty() {
                let shown: Vec<&str> = unlinked.iter().take(5).map(String::as_str).collect();
                let more = if unlinked.len() > 5 { format!(" and {} more", unlinked.len() - 5) } else { String::new() };
                health.warnings.push(format!(
                    "{} node(s) match no inventory machine by system UUID or host name: {}{more}.",
                    unlinked.len(),
                    shown.join(", ")
                ));
            }
        }
        Cluster {
            name: record.name.clone(),
            api_url: record.endpoint.api_url.clone(),
            credential_kind: record.endpoint.credential.kind().into(),
            has_ca: !record.endpoint.ca_pem.trim().is_empty(),
            prometheus_url: record.prometheus_url.clone(),
            alertmanager_url: record.alertmanager_url.clone(),
            grafana_url: record.grafana_url.clone(),
            prometheus_auth: sources::kind(&record.source_credentials.prometheus).into(),
            alertmanager_auth: sources::kind(&record.source_credentials.alertmanager).into(),
            grafana_auth: sources::kind(&record.source_credentials.grafana).into(),
            created_by: record.created_by.clone(),
            created_at: record.created_at.clone(),
            updated_at: record.updated_at.clone(),
            health,
            sso_kubeconfig: self.sso.is_some(),
        }
    }

    fn record(&self, name: &str) -> Result<ClusterRecord, AppError> {
        self.records.read().ok().and_then(|r| r.get(name).cloned()).ok_or_else(|| not_registered(name))
    }

    /// The cluster's linked Prometheus: its URL ('' when none is) and the client that presents
    /// Pangea's credential for it.
    pub fn prometheus(&self, name: &str) -> Result<Linked, AppError> {
        let record = self.record(name)?;
        Ok(Linked { url: record.prometheus_url, http: record.sources.prometheus })
    }

    /// The cluster's linked Alertmanager, as [`Self::prometheus`].
    pub fn alertmanager(&self, name: &str) -> Result<Linked, AppError> {
        let record = self.record(name)?;
        Ok(Linked { url: record.alertmanager_url, http: record.sources.alertmanager })
    }

    /// The cluster's linked Grafana, as [`Self::prometheus`].
    pub fn grafana(&self, name: &str) -> Result<Linked, AppError> {
        let record = self.record(name)?;
        Ok(Linked { url: record.grafana_url, http: record.sources.grafana })
    }

    /// The names of the registered clusters.
    pub fn names(&self) -> Vec<String> {
        self.records.read().map(|r| r.keys().cloned().collect()).unwrap_or_default()
    }

    /// A node's addresses (internal first), from the live cache.
    pub fn node_addresses(&self, cluster: &str, node: &str) -> Result<Vec<String>, AppError> {
        let node = self
            .cache(cluster)?
            .node_object(node)
            .ok_or_else(|| AppError::not_found(format!("Cluster {cluster} has no node named \"{node}\".")))?;
        let mut addresses: Vec<(bool, String)> = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .map(|a| (a.type_ != "InternalIP", a.address.clone()))
            .collect();
        addresses.sort();
        Ok(addresses.into_iter().map(|(_, a)| a).collect())
    }

    /// Checks a permission; a refusal is recorded in the audit log as denied.
    async fn allow(&self, who: &Principal, permission: Permission, event: Event) -> Result<(), AppError> {
        audit::settle(&self.db, who, event, authorize(who, permission)).await
    }

    /// [`Self::allow`] on one cluster, where a role bound for that cluster counts too.
    async fn allow_in(
        &self,
        who: &Principal,
        permission: Permission,
        cluster: &str,
        event: Event,
    ) -> Result<(), AppError> {
        audit::settle(&self.db, who, event, authorize_in(who, permission, cluster)).await
    }

    /// Validates `input` into a record; `keep` supplies the credentials that are not given.
    fn parse(
        &self,
        who: &Principal,
        input: ClusterInput,
        keep: Option<&ClusterRecord>,
    ) -> Result<ClusterRecord, AppError> {
        let name: ClusterName =
            input.name.trim().parse().map_err(|e: app::clusters::InvalidClusterName| AppError::Invalid {
                message: e.to_string(),
                fields: vec![app::error::FieldError { field: "name".into(), message: e.to_string() }],
            })?;
        connect::api_url(&input.api_url)?;
        if !input.ca_pem.trim().is_empty() {
            connect::certificates(&input.ca_pem, "ca_pem")?;
        }
        // A credential left out keeps the stored one only while its destination stays at the same
        // origin: a secret is never sent to a host it was not given for.
        let origin = |url: &str| url::Url::parse(url.trim()).ok().map(|u| u.origin().ascii_serialization());
        let same_origin = |old: &str, new: &str| origin(old).is_some() && origin(old) == origin(new);
        let credential = match (input.credential, keep) {
            (Some(c), _) => c,
            (None, Some(existing))
                if existing.unreadable.is_none() && same_origin(&existing.endpoint.api_url, &input.api_url) =>
            {
                existing.endpoint.credential.clone()
            }
            (None, existing) => {
                let moved = existing.is_some_and(|e| e.unreadable.is_none());
                return Err(AppError::Invalid {
                    message: if moved {
                        "The API server's address moved to another host: give Pangea's credentials for the new one \
                         (the old ones are not sent there)."
                    } else {
                        "Give Pangea's credentials for this cluster: a bearer token or a client certificate and key."
                    }
                    .into(),
                    fields: vec![app::error::FieldError {
                        field: "credential".into(),
                        message: "A token or a client certificate is required.".into(),
                    }],
                });
            }
        };
        let source =
            |url: &str, given: Option<SourceCredential>, kept: Option<(&str, &Option<SourceCredential>)>| match given {
                _ if url.trim().is_empty() => None,
                Some(SourceCredential::None) => None,
                Some(credential) => Some(credential),
                None => kept.filter(|(old, _)| same_origin(old, url)).and_then(|k| k.1.clone()),
            };
        let source_credentials = Credentials {
            prometheus: source(
                &input.prometheus_url,
                input.prometheus_credential,
                keep.map(|k| (k.prometheus_url.as_str(), &k.source_credentials.prometheus)),
            ),
            alertmanager: source(
                &input.alertmanager_url,
                input.alertmanager_credential,
                keep.map(|k| (k.alertmanager_url.as_str(), &k.source_credentials.alertmanager)),
            ),
            grafana: source(
                &input.grafana_url,
                input.grafana_credential,
                keep.map(|k| (k.grafana_url.as_str(), &k.source_credentials.grafana)),
            ),
        };
        let sources = source_credentials.clients()?;
        let now = now();
        Ok(ClusterRecord {
            name: name.to_string(),
            endpoint: Endpoint {
                api_url: input.api_url.trim().trim_end_matches('/').into(),
                ca_pem: input.ca_pem.trim().into(),
                credential,
            },
            prometheus_url: link("prometheus_url", &input.prometheus_url, self.local_links)?,
            alertmanager_url: link("alertmanager_url", &input.alertmanager_url, self.local_links)?,
            grafana_url: link("grafana_url", &input.grafana_url, self.local_links)?,
            source_credentials,
            sources,
            created_by: keep.map_or_else(|| who.actor(), |k| k.created_by.clone()),
            created_at: keep.map_or_else(|| now.clone(), |k| k.created_at.clone()),
            updated_at: now,
            unreadable: None,
            sources_unreadable: None,
        })
    }

    /// The API server's checks, then those of the linked Prometheus, Alertmanager and Grafana;
    /// the API server's version.
    async fn check(&self, record: &ClusterRecord) -> Result<String, AppError> {
        let version = connect::check(&record.endpoint).await?;
        self.sources_check
            .check(&record.sources, &record.prometheus_url, &record.alertmanager_url, &record.grafana_url)
            .await?;
        Ok(version)
    }

    /// What the audit log keeps of a cluster: never its credential.
    fn audit_summary(record: &ClusterRecord, version: &str) -> serde_json::Value {
        json!({
            "api_url": record.endpoint.api_url,
            "credential_kind": record.endpoint.credential.kind(),
            "has_ca": !record.endpoint.ca_pem.is_empty(),
            "prometheus_url": record.prometheus_url,
            "alertmanager_url": record.alertmanager_url,
            "grafana_url": record.grafana_url,
            "prometheus_auth": sources::kind(&record.source_credentials.prometheus),
            "alertmanager_auth": sources::kind(&record.source_credentials.alertmanager),
            "grafana_auth": sources::kind(&record.source_credentials.grafana),
            "version": version,
        })
    }

    async fn register(&self, who: &Principal, input: ClusterInput) -> Result<Cluster, AppError> {
        let record = self.parse(who, input, None)?;
        let version = self.check(&record).await?;
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        store::insert(&mut tx, &self.sealer, &record).await.or_internal()?;
        audit::append(
            &mut tx,
            who,
            Event::new("cluster.create", "cluster")
                .target(&record.name, &record.name)
                .summary(Self::audit_summary(&record, &version)),
        )
        .await
        .or_internal()?;
        tx.commit().await.or_internal()?;
        self.watch(&record)?;
        Ok(self.summary(&record, &self.inventory().await?))
    }
}

/// A recorded kube-apiserver exchange (from `../shared/reference/kube`), for unit tests.
#[cfg(test)]
fn recorded(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/kube/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A YAML double-quoted scalar (the JSON string form is one).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The kubeconfig of [`ClusterService::kubeconfig`].
fn sso_kubeconfig(record: &ClusterRecord, sso: &SingleSignOn) -> String {
    use base64::Engine;
    let name = &record.name;
    let ca = if record.endpoint.ca_pem.is_empty() {
        String::new()
    } else {
        let data = base64::engine::general_purpose::STANDARD.encode(&record.endpoint.ca_pem);
        format!("\n    certificate-authority-data: {}", quoted(&data))
    };
    let mut args = vec![
        "oidc-login".to_string(),
        "get-token".into(),
        format!("--oidc-issuer-url={}", sso.issuer.trim_end_matches('/')),
        format!("--oidc-client-id={}", sso.client_id),
    ];
    args.extend(sso.scopes.iter().map(|s| format!("--oidc-extra-scope={s}")));
    let args: Vec<String> = args.iter().map(|a| format!("\n      - {}", quoted(a))).collect();
    format!(
        "# kubeconfig for cluster {name}, made by Pangea: kubectl signs you in through single sign-on with the\n\
         # oidc-login plugin (kubectl krew install oidc-login). The cluster's API server must trust the same\n\
         # IdP; see docs/clusters.md.\n\
         apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n    server: {server}{ca}\n\
         users:\n- name: {user}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: kubectl\n\
         \x20     args:{args}\n      interactiveMode: IfAvailable\n\
         contexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {user}\ncurrent-context: {n}\n",
        n = quoted(name),
        server = quoted(&record.endpoint.api_url),
        user = quoted(&format!("{name}-oidc")),
        args = args.concat(),
    )
}

#[async_trait::async_trait]
impl ClusterService for Clusters {
    async fn clusters(&self, who: &Principal) -> Result<Vec<Cluster>, AppError> {
        authorize(who, Permission::ViewClusters)?;
        let inventory = self.inventory().await?;
        let records: Vec<ClusterRecord> = self
            .records
            .read()
            .map(|r| {
                r.values().filter(|c| authorize_in(who, Permission::ViewClusters, &c.name).is_ok()).cloned().collect()
            })
            .unwrap_or_default();
        Ok(records.iter().map(|r| self.summary(r, &inventory)).collect())
    }

    async fn cluster(&self, who: &Principal, name: &str) -> Result<Cluster, AppError> {
        authorize_in(who, Permission::ViewClusters, name)?;
        let record = self.record(name)?;
        Ok(self.summary(&record, &self.inventory().await?))
    }

    async fn add(&self, who: &Principal, input: ClusterInput) -> Result<Cluster, AppError> {
        let event = Event::new("cluster.create", "cluster").target(input.name.trim(), input.name.trim());
        self.allow(who, Permission::ManageClusters, event.clone()).await?;
        let result = self.register(who, input).await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn kubeconfig_contexts(&self, who: &Principal, kubeconfig: &str) -> Result<Vec<String>, AppError> {
        authorize(who, Permission::ManageClusters)?;
        connect::contexts(kubeconfig)
    }

    async fn add_from_kubeconfig(&self, who: &Principal, import: KubeconfigImport) -> Result<Cluster, AppError> {
        let event = Event::new("cluster.create", "cluster").target(import.name.trim(), import.name.trim());
        self.allow(who, Permission::ManageClusters, event.clone()).await?;
        let result = async {
            let endpoint = connect::from_kubeconfig(&import.kubeconfig, import.context.as_deref())?;
            let input = ClusterInput {
                name: import.name.clone(),
                api_url: endpoint.api_url,
                ca_pem: endpoint.ca_pem,
                credential: Some(endpoint.credential),
                ..Default::default()
            };
            self.register(who, input).await
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn update(&self, who: &Principal, name: &str, input: ClusterInput) -> Result<Cluster, AppError> {
        let rotated = input.credential.is_some();
        let action = if rotated { "cluster.rotate_credential" } else { "cluster.update" };
        let event = Event::new(action, "cluster").target(name, name);
        self.allow(who, Permission::ManageClusters, event.clone()).await?;
        let result = async {
            let existing = self.record(name)?;
            if input.name.trim() != name {
                return Err(AppError::invalid("A cluster cannot be renamed: remove it and register it again."));
            }
            let record = self.parse(who, input, Some(&existing))?;
            let version = self.check(&record).await?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            store::update(&mut tx, &self.sealer, &record).await.or_internal()?;
            let mut summary = Self::audit_summary(&record, &version);
            summary["credential_rotated"] = json!(rotated);
            summary["source_credentials_changed"] =
                json!(record.source_credentials.changed_since(&existing.source_credentials));
            audit::append(&mut tx, who, event.clone().summary(summary)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            self.watch(&record)?;
            Ok(self.summary(&record, &self.inventory().await?))
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn remove(&self, who: &Principal, name: &str) -> Result<(), AppError> {
        let event = Event::new("cluster.delete", "cluster").target(name, name);
        self.allow(who, Permission::ManageClusters, event.clone()).await?;
        let result = async {
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            if !store::delete(&mut tx, name).await.or_internal()? {
                return Err(not_registered(name));
            }
            audit::append(&mut tx, who, event.clone()).await.or_internal()?;
            tx.commit().await.or_internal()?;
            self.forget(name);
            Ok(())
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn nodes(&self, who: &Principal, query: NodeQuery) -> Result<Page<NodeRow>, AppError> {
        authorize(who, Permission::ViewClusters)?;
        let selector = Selector::parse(query.selector.as_deref())?;
        let caches = match &query.cluster {
            Some(name) => {
                authorize_in(who, Permission::ViewClusters, name)?;
                vec![self.cache(name)?]
            }
            None => self
                .all_caches()
                .into_iter()
                .filter(|c| authorize_in(who, Permission::ViewClusters, &c.name).is_ok())
                .collect(),
        };
        let inventory = self.inventory().await?;
        let machine_of = |cluster: &str, n: &k8s_openapi::api::core::v1::Node| inventory.machine_of(cluster, n);
        let mut rows: Vec<NodeRow> = caches.iter().flat_map(|c| c.node_rows(&query, &selector, &machine_of)).collect();
        cache::sort_nodes(&mut rows, query.sort, query.descending);
        Ok(page_of(rows, query.offset, query.limit))
    }

    async fn node(&self, who: &Principal, cluster: &str, node: &str) -> Result<NodeDetail, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let cache = self.cache(cluster)?;
        let inventory = self.inventory().await?;
        let machine = cache.node_object(node).and_then(|n| inventory.machine_of(cluster, &n));
        cache
            .node_detail(node, machine)
            .ok_or_else(|| AppError::not_found(format!("Cluster {cluster} has no node named \"{node}\".")))
    }

    async fn pods(&self, who: &Principal, query: PodQuery) -> Result<Page<PodRow>, AppError> {
        authorize(who, Permission::ViewClusters)?;
        authorize_in(who, Permission::ViewClusters, &query.cluster)?;
        let selector = Selector::parse(query.selector.as_deref())?;
        let cache = self.cache(&query.cluster)?;
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let (items, total) = cache.pod_page(&query, &selector, query.offset as usize, limit as usize);
        Ok(Page { items, total: total as u32, offset: query.offset })
    }

    async fn act(&self, who: &Principal, cluster: &str, node: &str, action: NodeAction) -> Result<NodeRow, AppError> {
        let event = Event::new(action.audit_action(), "node")
            .target(format!("{cluster}/{node}"), node)
            .summary(json!({ "cluster": cluster, "node": node, "change": action }));
        // Pangea's own role check comes first; the cluster's RBAC decides next.
        self.allow_in(who, Permission::ActOnNodes, cluster, event.clone()).await?;
        let result = async {
            let record = self.record(cluster)?;
            let as_whom = Impersonation::of(who)?;
            let cached = self.cache(cluster).ok().and_then(|c| c.node_object(node)).map(|n| (*n).clone());
            let (row, undo) = actions::act(cluster, &record.endpoint, &as_whom, node, &action, cached).await?;
            let mut event = event.clone();
            event.summary["as"] = json!({ "user": as_whom.user, "groups": as_whom.groups });
            // The change stands only once the audit log has it: if that write fails, it is undone.
            if let Err(e) = audit::record(&self.db, who, event).await {
                tracing::error!(error = %e, cluster, node, "a node change could not be audited; undoing it");
                let undone = actions::undo(cluster, &record.endpoint, &as_whom, node, &undo).await;
                return Err(AppError::Upstream {
                    message: match undone {
                        Ok(()) => "The change was undone: its audit record could not be written. Try again.".into(),
                        Err(e) => format!(
                            "The change could not be audited, and undoing it failed ({e}): check node {node} on {cluster}."
                        ),
                    },
                });
            }
            Ok(row)
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn drain(
        &self,
        who: &Principal,
        cluster: &str,
        node: &str,
        options: DrainOptions,
    ) -> Result<String, AppError> {
        let event = Event::new("node.drain", "node")
            .target(format!("{cluster}/{node}"), node)
            .summary(json!({ "cluster": cluster, "node": node, "options": options }));
        self.allow_in(who, Permission::ActOnNodes, cluster, event.clone()).await?;
        let result = async {
            self.record(cluster)?;
            let as_whom = Impersonation::of(who)?;
            let deadline = time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(options.timeout());
            let input = drain::DrainInput { cluster: cluster.into(), node: node.into(), options, deadline };
            let text = serde_json::to_string(&input).or_internal()?;
            let job = self.jobs.start(drain::DRAIN_JOB, who, "drain", 0, &text).await?;
            let mut started = event.clone();
            started.summary["job"] = json!(job);
            started.summary["as"] = json!({ "user": as_whom.user, "groups": as_whom.groups });
            audit::record(&self.db, who, started).await.or_internal()?;
            self.run_drain(who.clone(), job.clone(), input, None);
            Ok(job)
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn drain_progress(&self, who: &Principal, job: &str) -> Result<DrainProgress, AppError> {
        authorize(who, Permission::ViewClusters)?;
        let stored = self.jobs.get(job, who).await?;
        if stored.kind != drain::DRAIN_JOB.name {
            return Err(AppError::not_found("This drain is not known (it expired, or it is not yours)."));
        }
        let mut progress: DrainProgress = serde_json::from_str(&stored.result).unwrap_or_default();
        progress.job = stored.id;
        progress.state = match stored.state {
            crate::jobs::JobState::Running | crate::jobs::JobState::Waiting => "running",
            crate::jobs::JobState::Succeeded => "succeeded",
            crate::jobs::JobState::Failed => "failed",
        }
        .into();
        progress.resumed = stored.resumed;
        if progress.step.is_empty() {
            progress.step = stored.step;
            progress.total = stored.total;
        }
        progress.error = stored.error.map(|e| e.to_string());
        Ok(progress)
    }

    async fn cancel_drain(&self, who: &Principal, job: &str) -> Result<(), AppError> {
        let event = Event::new("node.drain.cancel", "job").target(job, job);
        self.allow(who, Permission::ActOnNodes, event.clone()).await?;
        let result = async {
            if !self.jobs.request_cancel(job, who).await? {
                return Err(AppError::Conflict {
                    message: "This drain is no longer running.".into(),
                    fields: Vec::new(),
                });
            }
            audit::record(&self.db, who, event.clone()).await.or_internal()?;
            Ok(())
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    async fn kubeconfig(&self, who: &Principal, cluster: &str) -> Result<String, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let record = self.record(cluster)?;
        let sso = self.sso.as_ref().ok_or_else(|| AppError::Conflict {
            message: "Single sign-on is not configured on this Pangea, so there is no IdP for kubectl to sign in with."
                .into(),
            fields: Vec::new(),
        })?;
        Ok(sso_kubeconfig(&record, sso))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Node;

    fn node(name: &str, uuid: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"nodeInfo": {"systemUUID": uuid, "machineID": "", "bootID": "", "kernelVersion": "",
              "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "",
              "operatingSystem": "linux", "architecture": "amd64"}}
        }))
        .unwrap()
    }

    #[test]
    fn a_node_links_only_to_a_machine_of_its_own_cluster_or_of_none() {
        let mut inventory = Inventory::default();
        for (id, host, uuid, cluster) in [(1, "n1", "aaaa", "prod"), (2, "n2", "bbbb", ""), (3, "n3", "cccc", "edge")] {
            let machine = LinkedMachine {
                mac: String::new(),
                name: host.into(),
                cluster: cluster.into(),
                state: None,
                since: String::new(),
            };
            inventory.machines.insert(id, machine);
            inventory.by_hostname.insert(host.into(), id);
            inventory.by_uuid.insert(uuid.into(), id);
        }
        assert_eq!(inventory.machine_of("prod", &node("n1", "aaaa")), Some(1));
        assert_eq!(inventory.machine_of("prod", &node("n2", "")), Some(2), "a machine of no cluster");
        assert_eq!(inventory.machine_of("prod", &node("n3", "")), None, "edge's n3 is not prod's n3");
        assert_eq!(inventory.machine_of("prod", &node("x", "CCCC")), None, "nor by UUID");
        assert_eq!(inventory.machine_of("edge", &node("x", "CCCC")), Some(3));
    }

    #[test]
    fn monitoring_links_to_this_host_or_its_link_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9090",
            "http://169.254.169.254/latest",
            "http://[::1]:9090",
            "http://[fe80::1]:9090",
            "http://localhost:3000",
            "http://0.0.0.0:9090",
            "http://[::ffff:127.0.0.1]:9090",
        ] {
            let refused = link("prometheus_url", url, false).unwrap_err();
            assert!(refused.to_string().contains("--allow-local-monitoring-urls"), "{url}: {refused}");
            assert!(link("prometheus_url", url, true).is_ok(), "{url}");
        }
        assert_eq!(
            link("prometheus_url", "https://prometheus.example.com/", false).unwrap(),
            "https://prometheus.example.com"
        );
    }
}
