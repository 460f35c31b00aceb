//! The `cluster.rolling` job: the plan's steps in order, each through its gates, the drain, the
//! change, the nodes' return, uncordon and the soak. What it has done is kept with the job after
//! each move, so another replica goes on from there (a drain and a power run started are
//! followed, not started again).

use super::plan::CONTROL_PLANE;
use super::{Rolling, Stored};
use crate::jobs::lease_lost;
use app::access::Principal;
use app::clusters::NodeAction;
use app::clusters::rolling::{RollingChange, RollingNode};
use app::clusters::ssr::ClusterService;
use app::clusters::{DrainOptions, DrainProgress};
use app::error::AppError;
use app::power::ssr::PowerService;
use app::power::{Pacing, PowerAction, PowerRunInput, RunStep};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Where a step stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Its gates are checked (and, for a control-plane node, a person's approval awaited).
    #[default]
    Gates,
    Drain,
    Change,
    /// Waiting for its nodes to come back: a new boot ID, and Ready.
    Rejoin,
    Soak,
}

/// What the operation has done, kept as its job's result.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// What it does now, in words.
    pub step: String,
    /// The plan's step it is at.
    pub index: usize,
    pub phase: Phase,
    /// Why it paused itself (a gate, a failed drain or change, an approval), until resumed.
    pub held: Option<String>,
    /// This step's control-plane node was approved (resumed from its approval hold).
    pub approved: bool,
    /// This step's drain jobs, by node.
    pub drains: BTreeMap<String, String>,
    /// This step's power run.
    pub power_run: Option<String>,
    /// A power run is being asked for (kept before the ask: a replica that takes over and finds
    /// no run does not ask again blindly, it pauses and says so).
    #[serde(default)]
    pub asking_power: bool,
    /// This step's nodes a power run already changed (a run asked again after a failure asks
    /// only the others).
    #[serde(default)]
    pub changed: Vec<String>,
    /// When this step's first node was reinstalled (Unix seconds).
    #[serde(default)]
    pub rendered_at: i64,
    /// Each node's boot ID before its change.
    pub boot_ids: BTreeMap<String, String>,
    /// When this step's change was asked, or its wait last resumed (Unix seconds).
    pub changed_at: i64,
    /// When this step's soak ends (Unix seconds).
    pub soak_until: i64,
    /// This step's nodes that were cordoned before it began (a person's): left cordoned.
    #[serde(default)]
    pub cordoned_before: Vec<String>,
    /// It was paused (by a person, or by itself) when last looked at.
    #[serde(default)]
    pub paused: bool,
    pub nodes: Vec<RollingNode>,
    /// For a reprovision: the nodes whose configs it has rendered anew, so far (kept from step to
    /// step: what a roll back installs again).
    #[serde(default)]
    pub reinstalled: Vec<String>,
}

/// What a pass decided.
enum Next {
    /// Look again after a tick.
    Wait,
    /// Pause, saying why.
    Hold(String),
    /// Every step is done.
    Done,
}

/// How long a reinstall's configs stay good to boot from: half its bootstrap token's life.
const RENDERED_FOR: i64 = crate::creation::reinstall::TOKEN_LIFE.whole_seconds() / 2;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Rolling {
    /// Runs operation `job` in the background, holding its lease, from `previous` progress (a
    /// resumed job's), and ends it with its audit record once.
    pub(super) fn run(&self, who: Principal, job: String, stored: Stored, previous: Option<Progress>) {
        let me = self.clone();
        self.background.spawn(async move {
            let outcome = me.jobs.holding_lease(&job, me.follow(&who, &job, &stored, previous)).await;
            if matches!(&outcome, Err(e) if e.to_string() == lease_lost().to_string()) {
                return;
            }
            if let Err(e) = me.finish(&who, &job, &stored.cluster, outcome).await {
                tracing::error!(error = %e, job, cluster = stored.cluster, "could not end a rolling operation");
            }
        });
    }

    async fn follow(
        &self,
        who: &Principal,
        job: &str,
        stored: &Stored,
        previous: Option<Progress>,
    ) -> Result<String, AppError> {
        let mut progress = previous.unwrap_or_else(|| Progress { nodes: stored.nodes.clone(), ..Default::default() });
        let total = stored.steps.len() as u32;
        loop {
            let (cancelled, paused) = self.jobs.asked(job).await?;
            if cancelled {
                return Err(self.cancelled(who, &progress, total).await);
            }
            if paused {
                progress.paused = true;
                if progress.held.is_none() {
                    progress.step = "paused by a person".into();
                }
            } else {
                if std::mem::take(&mut progress.paused) {
                    // Resumed: an approval awaited is given; a wait and a soak start again.
                    progress.approved |= progress.held.take().is_some() && progress.phase == Phase::Gates;
                    progress.held = None;
                    progress.changed_at = now();
                    if progress.phase == Phase::Soak {
                        progress.soak_until = now() + i64::from(stored.settings.soak_seconds);
                    }
                }
                // A step that fails to reach the cluster or the database is said, and tried again;
                // one the cluster or Pangea refuses pauses the operation, saying why.
                match self.pass(who, job, stored, &mut progress).await {
                    Ok(Next::Done) => {
                        progress.step = format!(
                            "{} {} node(s) in {total} step(s)",
                            match stored.input.change {
                                RollingChange::Restart => "restarted",
                                RollingChange::PowerCycle => "power-cycled",
                                RollingChange::Reprovision => "reprovisioned",
                            },
                            progress.nodes.len()
                        );
                        // Kept as the job's result: the page shows the operation as it ended.
                        return serde_json::to_string(&progress).map_err(crate::error::internal);
                    }
                    Ok(Next::Wait) => {}
                    Ok(Next::Hold(why)) => self.hold(job, &mut progress, why).await?,
                    Err(e) if e.to_string() == lease_lost().to_string() => return Err(e),
                    Err(e) if (400..500).contains(&e.status()) => self.hold(job, &mut progress, e.to_string()).await?,
                    Err(e) => progress.step = format!("{e} (trying again)"),
                }
            }
            self.report(job, total, &progress).await?;
            tokio::time::sleep(self.pace.tick).await;
        }
    }

    /// Pauses the operation, saying why, in one write.
    async fn hold(&self, job: &str, progress: &mut Progress, why: String) -> Result<(), AppError> {
        progress.step = format!("paused: {why}");
        progress.held = Some(why);
        progress.paused = true;
        let text = serde_json::to_string(progress).map_err(crate::error::internal)?;
        self.jobs.hold(job, &text).await
    }

    /// Stops what the operation has under way (its drains, its power run) and says where it was
    /// cancelled.
    async fn cancelled(&self, who: &Principal, progress: &Progress, total: u32) -> AppError {
        let mut stopped = Vec::new();
        for (node, drain) in &progress.drains {
            if self.clusters.cancel_drain(who, drain).await.is_ok() {
                stopped.push(format!("the drain of {node}"));
            }
        }
        if let Some(run) = &progress.power_run
            && self.power.cancel_run(who, run).await.is_ok()
        {
            stopped.push("the power run (machines already asked go on)".to_string());
        }
        let out: Vec<&str> = progress
            .nodes
            .iter()
            .filter(|n| !matches!(n.step.as_str(), "waiting" | "done"))
            .map(|n| n.name.as_str())
            .collect();
        let stopped = if stopped.is_empty() { String::new() } else { format!("; stopped {}", stopped.join(", ")) };
        let left = if out.is_empty() {
            String::new()
        } else {
            format!("; {} stay as they are (check whether they are cordoned)", out.join(", "))
        };
        AppError::Conflict {
            message: format!(
                "Cancelled at step {} of {total}{stopped}{left}.",
                (progress.index + 1).min(total as usize)
            ),
            fields: vec![],
        }
    }

    async fn report(&self, job: &str, total: u32, progress: &Progress) -> Result<(), AppError> {
        let text = serde_json::to_string(progress).map_err(crate::error::internal)?;
        self.jobs.report(job, progress.index as u32, total, &text).await
    }

    /// Sets the step of `nodes` in `progress`, noting it on their machines' timelines.
    async fn mark(&self, progress: &mut Progress, nodes: &[String], step: &str, note: &str) {
        for node in progress.nodes.iter_mut().filter(|n| nodes.contains(&n.name)) {
            node.step = step.into();
            if !note.is_empty()
                && let Err(e) =
                    self.provisioner.boots.note(&node.mac, "rolling", &format!("{}: {note}", node.name)).await
            {
                tracing::warn!(error = %e, node = node.name, "could not note a rolling step on the timeline");
            }
        }
    }

    /// Every node of the step was changed: on to their return.
    async fn changed(&self, progress: &mut Progress, nodes: &[String]) -> Next {
        progress.phase = Phase::Rejoin;
        self.mark(progress, nodes, "rejoining", "").await;
        Next::Wait
    }

    /// One look at the step the operation is at, moving it on as far as it can go now.
    async fn pass(
        &self,
        who: &Principal,
        job: &str,
        stored: &Stored,
        progress: &mut Progress,
    ) -> Result<Next, AppError> {
        let cluster = &stored.cluster;
        let total = stored.steps.len() as u32;
        let Some(step) = stored.steps.get(progress.index) else { return Ok(Next::Done) };
        let names = step.nodes.join(", ");
        let change = stored.input.change.words();
        match progress.phase {
            Phase::Gates => {
                progress.step = format!("checking the gates before {names}");
                if step.role == CONTROL_PLANE && stored.input.approve_control_plane && !progress.approved {
                    return Ok(Next::Hold(format!(
                        "{}: control-plane node {names} waits for a person; resume to {change} it",
                        super::gates::APPROVAL
                    )));
                }
                if let Some(why) = self.failing_gate(who, cluster, &stored.gates, &stored.settings, Some(step)).await? {
                    return Ok(Next::Hold(why));
                }
                let cache = self.clusters.cache(cluster)?;
                progress.cordoned_before = step
                    .nodes
                    .iter()
                    .filter(|n| {
                        cache.node_object(n).and_then(|o| o.spec.as_ref().and_then(|s| s.unschedulable)) == Some(true)
                    })
                    .cloned()
                    .collect();
                progress.phase = Phase::Drain;
                self.mark(progress, &step.nodes, "draining", &format!("drained for a rolling {change}")).await;
                Ok(Next::Wait)
            }
            Phase::Drain => {
                progress.step = format!("draining {names}");
                for node in &step.nodes {
                    if !progress.drains.contains_key(node) {
                        let options = DrainOptions {
                            delete_local_data: false,
                            timeout_seconds: Some(self.pace.drain_timeout_seconds),
                        };
                        let drain = self.clusters.drain(who, cluster, node, options).await?;
                        progress.drains.insert(node.clone(), drain);
                        self.report(job, total, progress).await?;
                    }
                }
                let mut drained = 0;
                for (node, drain) in progress.drains.clone() {
                    let DrainProgress { state, error, .. } = self.clusters.drain_progress(who, &drain).await?;
                    match state.as_str() {
                        "succeeded" => drained += 1,
                        "failed" => {
                            progress.drains.remove(&node);
                            let why = error.unwrap_or_default();
                            return Ok(Next::Hold(format!(
                                "the drain of {node} failed: {why}; resume to drain it again"
                            )));
                        }
                        _ => {}
                    }
                }
                if drained == step.nodes.len() {
                    let cache = self.clusters.cache(cluster)?;
                    for node in &step.nodes {
                        let boot = boot_id(cache.node_object(node).as_deref());
                        if boot.is_empty() {
                            return Ok(Next::Hold(format!(
                                "{node} reports no boot ID (or is gone), so its restart could not be told from its \
                                 state now: check its kubelet, then resume"
                            )));
                        }
                        progress.boot_ids.insert(node.clone(), boot);
                    }
                    progress.phase = Phase::Change;
                    self.mark(progress, &step.nodes, "changing", "").await;
                }
                Ok(Next::Wait)
            }
            Phase::Change => {
                progress.step = format!("{change} of {names} through their BMCs");
                let Some(run) = progress.power_run.clone() else {
                    if std::mem::take(&mut progress.asking_power) {
                        return Ok(Next::Hold(format!(
                            "a Pangea replica stopped while asking the BMCs to {change} {names}: check on their \
                             machines' timelines whether they are changing, then resume to ask again"
                        )));
                    }
                    let asked: Vec<String> =
                        step.nodes.iter().filter(|n| !progress.changed.contains(n)).cloned().collect();
                    if asked.is_empty() {
                        return Ok(self.changed(progress, &step.nodes).await);
                    }
                    if let Some(reinstall) = &stored.reinstall {
                        // Configs first: each node fetches its new ones at the network boot below.
                        // Rendered long ago (a hold in between), they are rendered again: their
                        // bootstrap tokens would not outlive the install.
                        if now() - progress.rendered_at > RENDERED_FOR {
                            progress.reinstalled.retain(|r| !asked.contains(r));
                        }
                        for node in &asked {
                            if progress.reinstalled.contains(node) {
                                continue;
                            }
                            self.creation.reinstall_node(who, cluster, node, &reinstall.template).await?;
                            if !progress.reinstalled.iter().any(|r| asked.contains(r)) {
                                progress.rendered_at = now();
                            }
                            progress.reinstalled.push(node.clone());
                            self.report(job, total, progress).await?;
                        }
                    }
                    let machines: Vec<i64> =
                        progress.nodes.iter().filter(|n| asked.contains(&n.name)).map(|n| n.machine).collect();
                    let action = match stored.input.change {
                        RollingChange::Restart => PowerAction::GracefulRestart,
                        RollingChange::PowerCycle => PowerAction::PowerCycle,
                        RollingChange::Reprovision => PowerAction::NetworkBootOnce,
                    };
                    let input = PowerRunInput { action, machines, search: None, pacing: Pacing::default() };
                    progress.asking_power = true;
                    if let Err(e) = self.report(job, total, progress).await {
                        progress.asking_power = false;
                        return Err(e);
                    }
                    let run = self.power.start_run(who, input).await;
                    progress.asking_power = false;
                    progress.power_run = Some(run?);
                    progress.changed_at = now();
                    // Kept at once: a replica that takes this over must not ask again.
                    self.report(job, total, progress).await?;
                    return Ok(Next::Wait);
                };
                let run = self.power.power_run(who, &run).await?;
                // "succeeded" is trusted only with every machine done (a run reports its state
                // a moment before it fails for a machine that did not get there).
                let settled = match run.state.as_str() {
                    "succeeded" if run.machines.iter().all(|m| m.step == RunStep::Done) => true,
                    "succeeded" | "failed" | "cancelled" => false,
                    _ => return Ok(Next::Wait),
                };
                for node in progress.nodes.iter().filter(|n| step.nodes.contains(&n.name)) {
                    match run.machines.iter().find(|m| m.id == node.machine).map(|m| m.step) {
                        // Asked (done, or on its way): not asked again.
                        Some(RunStep::Done | RunStep::Sent | RunStep::Booting)
                            if !progress.changed.contains(&node.name) =>
                        {
                            progress.changed.push(node.name.clone())
                        }
                        Some(RunStep::Done | RunStep::Sent | RunStep::Booting) => {}
                        // Not asked, or failed: a reinstall is rendered anew (new links and
                        // token) before it is asked again.
                        Some(_) => progress.reinstalled.retain(|r| *r != node.name),
                        // Not in this run: changed by an earlier one.
                        None => {}
                    }
                }
                progress.power_run = None;
                if settled {
                    return Ok(self.changed(progress, &step.nodes).await);
                }
                let failed: Vec<String> = run
                    .machines
                    .iter()
                    .filter(|m| m.step != RunStep::Done)
                    .map(|m| format!("{}: {}", m.mac, m.reason))
                    .chain(run.error)
                    .collect();
                Ok(Next::Hold(format!("the {change} of {names} failed ({}); resume to ask again", failed.join("; "))))
            }
            Phase::Rejoin => {
                let cache = self.clusters.cache(cluster)?;
                let mut away = Vec::new();
                let mut back = Vec::new();
                for node in &step.nodes {
                    let seen = cache.node_object(node);
                    let rebooted = boot_id(seen.as_deref()) != progress.boot_ids.get(node).cloned().unwrap_or_default();
                    let status = seen.as_deref().map_or("gone", crate::clusters::cache::node_status);
                    if !rebooted || status != "Ready" {
                        let since = if rebooted { "restarted" } else { "not restarted yet" };
                        away.push(format!("{node} ({since}, {status})"));
                    } else {
                        back.push(node.clone());
                    }
                }
                if let Some(reinstall) = &stored.reinstall {
                    // A reinstalled kubelet joins again with its new token: its certificates are
                    // approved as at creation, and its token deleted once it is Ready.
                    if let Err(e) = self.creation.approve_kubelets(cluster, &back).await {
                        tracing::warn!(error = %e, cluster, "could not approve reinstalled kubelets");
                    }
                    for node in &back {
                        let version = kubelet_version(cache.node_object(node).as_deref());
                        if !reinstall.kubernetes.is_empty() && version != reinstall.kubernetes {
                            return Ok(Next::Hold(format!(
                                "{node} came back with kubelet {version}, not {}: it did not install its new \
                                 configs (check its console and its boot timeline), then resume",
                                reinstall.kubernetes
                            )));
                        }
                    }
                }
                if away.is_empty() {
                    for node in step.nodes.iter().filter(|n| !progress.cordoned_before.contains(n)) {
                        self.clusters.act(who, cluster, node, NodeAction::Uncordon).await?;
                    }
                    progress.phase = Phase::Soak;
                    progress.soak_until = now() + i64::from(stored.settings.soak_seconds);
                    self.mark(progress, &step.nodes, "soaking", &format!("back Ready after its {change}; uncordoned"))
                        .await;
                    return Ok(Next::Wait);
                }
                progress.step = format!("waiting for {} to come back Ready", away.join(", "));
                if now() - progress.changed_at > self.pace.rejoin.as_secs() as i64 {
                    return Ok(Next::Hold(format!(
                        "not back within {} min of the {change}: {}; check their consoles, then resume to wait again",
                        self.pace.rejoin.as_secs() / 60,
                        away.join(", ")
                    )));
                }
                Ok(Next::Wait)
            }
            Phase::Soak => {
                let left = (progress.soak_until - now()).max(0);
                progress.step = format!("soaking {names}: {left} s left");
                if let Some(why) = self.failing_gate(who, cluster, &stored.gates, &stored.settings, None).await? {
                    return Ok(Next::Hold(why));
                }
                if left == 0 {
                    self.mark(progress, &step.nodes, "done", &format!("rolling {change} done")).await;
                    *progress = Progress {
                        index: progress.index + 1,
                        nodes: std::mem::take(&mut progress.nodes),
                        reinstalled: std::mem::take(&mut progress.reinstalled),
                        step: format!("{names} done"),
                        ..Default::default()
                    };
                    if progress.index == stored.steps.len() {
                        return Ok(Next::Done);
                    }
                }
                Ok(Next::Wait)
            }
        }
    }
}

/// A node's boot ID, as its kubelet last reported it ('' for none).
fn boot_id(node: Option<&k8s_openapi::api::core::v1::Node>) -> String {
    node.and_then(|n| n.status.as_ref())
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.boot_id.clone())
        .unwrap_or_default()
}

/// A node's kubelet version, as it last reported it ('' for none).
pub(super) fn kubelet_version(node: Option<&k8s_openapi::api::core::v1::Node>) -> String {
    node.and_then(|n| n.status.as_ref())
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.kubelet_version.clone())
        .unwrap_or_default()
}
