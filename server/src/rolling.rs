//! Rolling operations: one change (a restart, a power cycle, a reprovision) applied across a cluster's nodes
//! one safe step at a time, gated on the cluster's health.
//!
//! Before it starts, the plan ([`plan`]) says the order (control-plane nodes one at a time, then
//! the workers `max_unavailable` at a time), the gates ([`gates`]) and an estimate; it starts
//! only when every node it takes is a machine with a BMC. Each step then goes through: the gates;
//! cordon and drain (a drain job each, PDB-aware, as the person); the change through the
//! machines' BMCs (a power run); waiting until each node is back (a new boot ID) and Ready;
//! uncordon; the soak, with the gates checked throughout. A gate that fails pauses the
//! operation and says why; a person resumes it (the gates are checked again first), or cancels
//! it. The operation is a durable job ([`job`]): another replica resumes it from its last step.
//! See docs/rolling.md.

pub mod gates;
pub mod http;
mod job;
pub mod plan;

use crate::audit::Event;
use crate::db::Database;
use crate::error::OrInternal;
use crate::jobs::{Job, JobKind, JobState, Jobs, Request};
use app::access::{Permission, Principal, authorize_in};
pub use app::clusters::rolling::Steer;
use app::clusters::rolling::{
    Gate, PlannedStep, RollingChange, RollingInput, RollingNode, RollingOperation, RollingPlan,
};
use app::error::AppError;
use plan::{Candidate, Settings};
use std::sync::Arc;
use std::time::Duration;

/// A rolling operation, in the jobs table.
pub const ROLLING_JOB: JobKind = JobKind { name: "cluster.rolling" };

/// How many operations a cluster's list shows.
const LISTED: i64 = 50;

/// How an operation paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How often it looks at the cluster (a failing gate pauses it within this, and a pass).
    pub tick: Duration,
    /// How long a node may take to come back Ready after its change before the operation
    /// pauses on it.
    pub rejoin: Duration,
    /// How long each drain may take.
    pub drain_timeout_seconds: u32,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { tick: Duration::from_secs(2), rejoin: Duration::from_secs(30 * 60), drain_timeout_seconds: 600 }
    }
}

#[derive(Clone)]
pub struct Rolling {
    db: Database,
    clusters: Arc<crate::clusters::Clusters>,
    power: crate::power::Power,
    monitoring: Arc<crate::monitoring::Monitoring>,
    provisioner: Arc<crate::provisioner::Provisioner>,
    creation: Arc<crate::creation::Creation>,
    jobs: Jobs,
    background: crate::background::Background,
    pace: Pace,
}

/// What an operation keeps for whichever replica runs it: what was asked, and the plan as it
/// was started (the order does not change under it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Stored {
    cluster: String,
    input: RollingInput,
    settings: Settings,
    steps: Vec<PlannedStep>,
    gates: Vec<Gate>,
    nodes: Vec<RollingNode>,
    /// For a reprovision: what the nodes are installed with.
    #[serde(default)]
    reinstall: Option<Reinstall>,
}

/// What a reprovision installs, and what each node had before (for a roll back).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Reinstall {
    template: String,
    kubernetes: String,
    /// It changes what some node runs (not only installs it again as it is).
    #[serde(default)]
    changes: bool,
    before: std::collections::BTreeMap<String, String>,
}

impl Rolling {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Database,
        clusters: Arc<crate::clusters::Clusters>,
        power: crate::power::Power,
        monitoring: Arc<crate::monitoring::Monitoring>,
        provisioner: Arc<crate::provisioner::Provisioner>,
        creation: Arc<crate::creation::Creation>,
        jobs: Jobs,
        background: crate::background::Background,
    ) -> Rolling {
        Rolling { db, clusters, power, monitoring, provisioner, creation, jobs, background, pace: Pace::default() }
    }

    pub fn with_pace(mut self, pace: Pace) -> Rolling {
        self.pace = pace;
        self
    }

    /// Every node of `cluster` as its live cache has it, with its inventory machine.
    async fn candidates(&self, cluster: &str) -> Result<Vec<Candidate>, AppError> {
        let cache = self.clusters.cache(cluster)?;
        let inventory = crate::clusters::Inventory::load(&self.db).await.or_internal()?;
        let mut candidates = Vec::new();
        for node in cache.node_objects() {
            let machine = match inventory.machine_of(cluster, &node) {
                Some(id) => {
                    let mac = inventory.machine(id).map(|m| m.mac.clone()).unwrap_or_default();
                    Some((id, mac, self.power.has_bmc(id).await?))
                }
                None => None,
            };
            candidates.push(Candidate {
                name: node.metadata.name.clone().unwrap_or_default(),
                labels: node.metadata.labels.clone().unwrap_or_default(),
                machine,
            });
        }
        Ok(candidates)
    }

    async fn planned(
        &self,
        who: &Principal,
        cluster: &str,
        input: &RollingInput,
    ) -> Result<(RollingPlan, Vec<RollingNode>, Settings, Option<Reinstall>), AppError> {
        let settings = plan::settings(input)?;
        let gates = self.gates(who, cluster, &settings, input.approve_control_plane).await;
        let (mut plan, nodes) = plan::plan(cluster, input, self.candidates(cluster).await?, gates)?;
        let reinstall = match input.change {
            RollingChange::Reprovision => Some(self.reinstall_planned(cluster, input, &nodes, &mut plan).await?),
            _ => None,
        };
        Ok((plan, nodes, settings, reinstall))
    }

    /// A reprovision's part of the plan: the template, what stands in the way of installing
    /// each node again with it, and the version skew it would make.
    async fn reinstall_planned(
        &self,
        cluster: &str,
        input: &RollingInput,
        nodes: &[RollingNode],
        plan: &mut RollingPlan,
    ) -> Result<Reinstall, AppError> {
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let reinstall = self.creation.reinstall_plan(cluster, input.template.as_deref(), &names).await?;
        plan.problems.extend(reinstall.problems);
        // The configs are rendered for the creation's machine of that name, and the power run
        // boots the inventory machine the node is: they must be the same.
        for node in nodes {
            if let Some((_, mac)) = reinstall.installed.get(&node.name)
                && !node.mac.is_empty()
                && *mac != node.mac
            {
                plan.problems.push(format!(
                    "{} is machine {} in the inventory, but Pangea created it on {mac}: check the inventory.",
                    node.name, node.mac
                ));
            }
        }
        let controllers: Vec<&str> = nodes
            .iter()
            .filter(|n| reinstall.controllers.contains(&n.name) || n.role == plan::CONTROL_PLANE)
            .map(|n| n.name.as_str())
            .collect();
        if !controllers.is_empty() {
            plan.problems.push(format!(
                "{} of the control plane: installing a controller again would wipe its etcd member, which Pangea does not replace yet; choose the workers (!{}).",
                controllers.join(", "),
                plan::CONTROL_PLANE_LABEL
            ));
        }
        // (No machine at all: Pangea did not create the cluster, said above.)
        if !reinstall.installed.is_empty() {
            for node in nodes.iter().filter(|n| !reinstall.installed.contains_key(&n.name)) {
                plan.problems.push(format!("{} is not a machine Pangea put into {cluster}.", node.name));
            }
        }
        let kubernetes = reinstall.kubernetes.map(|v| v.to_string()).unwrap_or_default();
        if !kubernetes.is_empty()
            && let Ok(cache) = self.clusters.cache(cluster)
        {
            let kubelets: Vec<(String, String)> = nodes
                .iter()
                .map(|n| (n.name.clone(), job::kubelet_version(cache.node_object(&n.name).as_deref())))
                .collect();
            // Pangea installed each controller's API server: the oldest of them counts.
            let controllers: Vec<String> = reinstall
                .controllers
                .iter()
                .filter_map(|c| reinstall.installed.get(c))
                .filter_map(|(template, _)| crate::creation::template::ClusterTemplate::parse(template).ok())
                .map(|t| t.kubernetes.to_string())
                .collect();
            let api_server = plan::oldest_api_server(&cache.health().version.unwrap_or_default(), &controllers);
            plan.problems.extend(plan::version_skew(&api_server, &kubelets, &kubernetes));
        }
        let before = nodes
            .iter()
            .filter_map(|n| reinstall.installed.get(&n.name).map(|(t, _)| (n.name.clone(), t.clone())))
            .collect();
        Ok(Reinstall { template: reinstall.template, kubernetes, changes: reinstall.changes, before })
    }

    /// What a rolling operation on `cluster` would do, and what stands in the way; nothing is
    /// asked of any machine.
    pub async fn plan(&self, who: &Principal, cluster: &str, input: &RollingInput) -> Result<RollingPlan, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        Ok(self.planned(who, cluster, input).await?.0)
    }

    /// Starts a rolling operation on `cluster`, as `who`: for operators of the cluster, who
    /// drain its nodes and power its machines; refused while its plan has problems or another
    /// operation runs there. The job and its audit record are written together.
    pub async fn start(
        &self,
        who: &Principal,
        cluster: &str,
        input: RollingInput,
    ) -> Result<RollingOperation, AppError> {
        let event = Event::new("cluster.rolling.start", "cluster")
            .target(cluster, cluster)
            .summary(serde_json::json!({ "input": input }));
        let allowed = authorize_in(who, Permission::ActOnNodes, cluster)
            .and_then(|()| authorize_in(who, Permission::PowerMachines, cluster));
        crate::audit::settle(&self.db, who, event.clone(), allowed).await?;
        let result = async {
            let (plan, nodes, settings, reinstall) = self.planned(who, cluster, &input).await?;
            if reinstall.as_ref().is_some_and(|r| r.changes) {
                crate::creation::reinstall::allow_template_change(who)?;
            }
            if !plan.problems.is_empty() {
                return Err(AppError::Conflict { message: plan.problems.join(" "), fields: vec![] });
            }
            let stored = Stored {
                cluster: cluster.into(),
                input: input.clone(),
                settings,
                steps: plan.steps.clone(),
                gates: plan.gates.clone(),
                nodes,
                reinstall,
            };
            let text = serde_json::to_string(&stored).or_internal()?;
            let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
            // Under the audit chain's lock: two starts cannot both see none running.
            if let Some(running) = self.running_on(cluster).await? {
                return Err(AppError::Conflict {
                    message: format!(
                        "Another rolling operation runs on {cluster} ({running}): wait for it to end, or cancel it."
                    ),
                    fields: vec![],
                });
            }
            let total = plan.steps.len() as u32;
            let job = self.jobs.start_in(&mut tx, ROLLING_JOB, who, "plan", total, &text).await?;
            let mut started = event.clone();
            started.summary["job"] = serde_json::json!(job);
            started.summary["steps"] = serde_json::json!(plan.steps);
            crate::audit::append(&mut tx, who, started).await.or_internal()?;
            tx.commit().await.or_internal()?;
            self.run(who.clone(), job.clone(), stored, None);
            self.view(&job).await
        }
        .await;
        crate::audit::settle(&self.db, who, event, result).await
    }

    /// The running operation on `cluster`, if any.
    async fn running_on(&self, cluster: &str) -> Result<Option<String>, AppError> {
        Ok(self
            .jobs
            .running(ROLLING_JOB)
            .await?
            .into_iter()
            .find(|j| stored(j).is_ok_and(|s| s.cluster == cluster))
            .map(|j| j.id))
    }

    /// An operation as it stands, for whoever may see its cluster.
    pub async fn operation(&self, who: &Principal, job: &str) -> Result<RollingOperation, AppError> {
        app::access::authorize(who, Permission::ViewClusters)?;
        let operation = self.view(job).await?;
        authorize_in(who, Permission::ViewClusters, &operation.cluster).map_err(|_| unknown())?;
        Ok(operation)
    }

    /// The newest operations on `cluster`, newest first.
    pub async fn operations(&self, who: &Principal, cluster: &str) -> Result<Vec<RollingOperation>, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let mut listed = Vec::new();
        for job in self.jobs.newest(ROLLING_JOB, LISTED).await? {
            if stored(&job).is_ok_and(|s| s.cluster == cluster) {
                listed.push(self.view(&job.id).await?);
            }
        }
        Ok(listed)
    }

    async fn view(&self, id: &str) -> Result<RollingOperation, AppError> {
        let job = self.jobs.load(id).await?.filter(|j| j.kind == ROLLING_JOB.name).ok_or_else(unknown)?;
        let stored = stored(&job)?;
        let progress: job::Progress = serde_json::from_str(&job.result).unwrap_or_default();
        let paused = job.paused;
        let state = match job.state {
            JobState::Running if paused => "paused",
            JobState::Running | JobState::Waiting => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        };
        Ok(RollingOperation {
            job: job.id,
            cluster: stored.cluster,
            change: stored.input.change,
            state: state.into(),
            step: if progress.step.is_empty() { "starting".into() } else { progress.step },
            held: if paused { progress.held.or_else(|| Some("paused by a person".into())) } else { None },
            nodes: if progress.nodes.is_empty() { stored.nodes } else { progress.nodes },
            plan: stored.steps,
            error: job.error.map(|e| e.to_string()),
            resumed: job.resumed,
            rollback: if state == "running" || state == "paused" { Vec::new() } else { progress.reinstalled },
        })
    }

    /// Pauses, resumes or cancels a running operation, for operators of its cluster, audited in
    /// the transaction that asks it. A resume after a gate failed has the gates checked again.
    pub async fn steer(&self, who: &Principal, job: &str, steer: Steer) -> Result<RollingOperation, AppError> {
        let (action, request, on) = match steer {
            Steer::Pause => ("cluster.rolling.pause", Request::Pause, true),
            Steer::Resume => ("cluster.rolling.resume", Request::Pause, false),
            Steer::Cancel => ("cluster.rolling.cancel", Request::Cancel, true),
        };
        let event = Event::new(action, "job").target(job, job);
        crate::audit::settle(&self.db, who, event.clone(), app::access::authorize(who, Permission::ActOnNodes)).await?;
        let operation = self.view(job).await?;
        let cluster = operation.cluster.clone();
        let event = Event::new(action, "cluster")
            .target(&cluster, &cluster)
            .summary(serde_json::json!({ "job": job, "held": operation.held }));
        // Someone who may not see the cluster is told the operation does not exist.
        let allowed = authorize_in(who, Permission::ActOnNodes, &cluster).map_err(|e| match e {
            AppError::Forbidden { .. } if authorize_in(who, Permission::ViewClusters, &cluster).is_err() => unknown(),
            e => e,
        });
        crate::audit::settle(&self.db, who, event.clone(), allowed).await?;
        let result = async {
            let paused = operation.state == "paused";
            if (steer == Steer::Resume && !paused) || (steer == Steer::Pause && paused) {
                return Err(AppError::Conflict {
                    message: format!(
                        "This rolling operation is {} already.",
                        if paused { "paused" } else { "running" }
                    ),
                    fields: vec![],
                });
            }
            let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
            if !self.jobs.request_in(&mut tx, job, request, on).await? {
                return Err(AppError::Conflict {
                    message: "This rolling operation is no longer running.".into(),
                    fields: vec![],
                });
            }
            crate::audit::append(&mut tx, who, event.clone()).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        crate::audit::settle(&self.db, who, event, result).await?;
        self.view(job).await
    }

    /// Rolls back a reprovision that has ended: installs the nodes it installed again with the
    /// template they had before, as a new operation with the same care (its plan, gates and
    /// audit as any start's).
    pub async fn roll_back(&self, who: &Principal, job: &str) -> Result<RollingOperation, AppError> {
        let event = Event::new("cluster.rolling.rollback", "job").target(job, job);
        crate::audit::settle(&self.db, who, event, app::access::authorize(who, Permission::ActOnNodes)).await?;
        let operation = self.operation(who, job).await?;
        let stored = stored(&self.jobs.load(job).await?.ok_or_else(unknown)?)?;
        let refused = |message: String| Err(AppError::Conflict { message, fields: vec![] });
        let Some(reinstall) = stored.reinstall.filter(|_| !operation.rollback.is_empty()) else {
            return refused(
                "Only a reprovision that has ended, and installed a node, can be rolled back: pause or cancel it first."
                    .into(),
            );
        };
        let mut before = operation.rollback.iter().filter_map(|n| reinstall.before.get(n));
        let template = before.next().cloned().unwrap_or_default();
        if before.any(|t| *t != template) {
            return refused(format!(
                "{} had different templates before: roll them back one by one (a reprovision with each one's template).",
                operation.rollback.join(", ")
            ));
        }
        // Only nodes that still have what this operation installed (not rolled back already, nor
        // reinstalled since by another).
        let now = self.creation.reinstall_plan(&stored.cluster, None, &operation.rollback).await?;
        let moved: Vec<&str> = operation
            .rollback
            .iter()
            .filter(|n| now.installed.get(*n).is_none_or(|(t, _)| *t != reinstall.template))
            .map(String::as_str)
            .collect();
        if !moved.is_empty() {
            return refused(format!(
                "{} no longer have what this operation installed (rolled back already, or reinstalled since): reprovision them with the template you want instead.",
                moved.join(", ")
            ));
        }
        let input = RollingInput {
            nodes: Some(format!("kubernetes.io/hostname in ({})", operation.rollback.join(","))),
            template: Some(template),
            ..stored.input
        };
        // The selector names nodes by their hostname label: each must be its node's name.
        let cache = self.clusters.cache(&stored.cluster)?;
        let labelled = |node: &String| {
            cache.node_object(node).and_then(|o| o.metadata.labels.as_ref()?.get("kubernetes.io/hostname").cloned())
                == Some(node.clone())
        };
        if !operation.rollback.iter().all(labelled) {
            return refused(format!(
                "The nodes' kubernetes.io/hostname labels do not name {} as their node names: reprovision them with the template they had before instead.",
                operation.rollback.join(", ")
            ));
        }
        self.start(who, &stored.cluster, input).await
    }

    /// Goes on with an operation whose replica stopped, as whoever started it is now.
    pub fn resume_operation(&self, job: Job) {
        let previous = serde_json::from_str::<job::Progress>(&job.result).ok();
        match (job.acting.clone(), stored(&job)) {
            (Some(who), Ok(stored)) => self.run(who, job.id, stored, previous),
            (who, stored) => {
                let me = self.clone();
                self.background.spawn(async move {
                    let (cluster, stopped) = match stored {
                        Err(e) => (String::new(), e),
                        Ok(s) => (
                            s.cluster,
                            AppError::Forbidden {
                                message: "This rolling operation was stopped: whoever started it may no longer act."
                                    .into(),
                            },
                        ),
                    };
                    let who = who.unwrap_or_else(|| Principal::anonymous(None, None));
                    if let Err(e) = me.finish(&who, &job.id, &cluster, Err(stopped)).await {
                        tracing::error!(error = %e, job = job.id, "could not fail a rolling operation");
                    }
                });
            }
        }
    }

    async fn finish(
        &self,
        who: &Principal,
        job: &str,
        cluster: &str,
        outcome: Result<String, AppError>,
    ) -> Result<(), AppError> {
        let event = Event::new("cluster.rolling.end", "cluster").target(cluster, cluster).summary(serde_json::json!({
            "job": job
        }));
        self.jobs.finish(job, who, event, outcome).await
    }
}

fn unknown() -> AppError {
    AppError::not_found("This rolling operation is not known (it ended more than a day ago, or it never was).")
}

fn stored(job: &Job) -> Result<Stored, AppError> {
    serde_json::from_str(&job.input)
        .map_err(|_| crate::error::internal("this rolling operation's stored input cannot be read"))
}

#[async_trait::async_trait]
impl app::clusters::ssr::RollingService for Rolling {
    async fn plan(&self, who: &Principal, cluster: &str, input: &RollingInput) -> Result<RollingPlan, AppError> {
        Rolling::plan(self, who, cluster, input).await
    }

    async fn start(&self, who: &Principal, cluster: &str, input: RollingInput) -> Result<RollingOperation, AppError> {
        Rolling::start(self, who, cluster, input).await
    }

    async fn operation(&self, who: &Principal, job: &str) -> Result<RollingOperation, AppError> {
        Rolling::operation(self, who, job).await
    }

    async fn steer(&self, who: &Principal, job: &str, steer: Steer) -> Result<RollingOperation, AppError> {
        Rolling::steer(self, who, job, steer).await
    }

    async fn roll_back(&self, who: &Principal, job: &str) -> Result<RollingOperation, AppError> {
        Rolling::roll_back(self, who, job).await
    }
}
