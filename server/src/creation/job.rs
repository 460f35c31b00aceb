//! The `cluster.create` job: powers the machines on, follows each one until its node is Ready,
//! sets the cluster up and registers it when its control plane answers, and approves its
//! kubelets' certificates meanwhile. Its progress (kept with the job) is what the creation's page
//! shows; another replica resumes it from there.

use super::{Creation, StoredNode, approval, monitoring, register, store};
use crate::error::OrInternal;
use crate::jobs::{Job, lease_lost};
use app::access::Principal;
use app::clusters::ClusterInput;
use app::clusters::creation::CreationMachine;
use app::clusters::ssr::ClusterService;
use app::error::AppError;
use app::power::ssr::PowerService;
use app::power::{Pacing, PowerAction, PowerRunInput, RunStep};
use app::provisioning::boots::BootState;
use time::OffsetDateTime;

/// What the job has done, kept as its result while it runs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// What it does now, in words.
    pub step: String,
    pub started_at: String,
    /// The power run that powered the machines on.
    pub power_run: Option<String>,
    /// Whether the cluster is set up and registered.
    pub registered: bool,
    pub machines: Vec<CreationMachine>,
    /// Kubelet certificate requests left pending, and why (the last pass's).
    #[serde(default)]
    pub refused: Vec<String>,
    /// The nodes whose bootstrap tokens are deleted (each once its node is Ready).
    #[serde(default)]
    pub retired_tokens: Vec<String>,
    /// Whether the monitoring the template asks for is installed, and linked to the cluster.
    #[serde(default)]
    pub monitoring_installed: bool,
    #[serde(default)]
    pub monitoring_linked: bool,
    /// What linking it waits for, in words.
    #[serde(default)]
    pub monitoring_waiting: Option<String>,
}

/// `since` as "4 min ago".
fn ago(since: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (now - since).whole_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..7200 => format!("{} min ago", seconds / 60),
        _ => format!("{} h ago", seconds / 3600),
    }
}

/// Where a machine was last seen.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub state: BootState,
    /// Since when (the creation's start, before its first request).
    pub since: Option<OffsetDateTime>,
    /// Whether it fetched every one of its secret files.
    pub secrets_fetched: bool,
}

/// What a machine waits for, in words: where it is and, once it has stayed there longer than
/// `stall`, what to check (`api`, `install_disk`: the template's).
pub fn waiting_for(
    node: &StoredNode,
    seen: Seen,
    api: &str,
    install_disk: &str,
    now: OffsetDateTime,
    stall: std::time::Duration,
) -> String {
    let Seen { state, since, secrets_fetched } = seen;
    let name = &node.spec.name;
    let stalled = since.is_some_and(|s| now - s >= stall);
    let when = since.map(|s| ago(s, now)).unwrap_or_default();
    let (doing, check) = match state {
        BootState::NeverSeen if node.powered => (
            format!("{name} has not asked to boot yet"),
            "check its boot order and that DHCP on its network points it at Pangea".to_string(),
        ),
        BootState::NeverSeen => (
            format!("{name} has no BMC: power it on and boot it from the network"),
            "Pangea waits for its first boot request".to_string(),
        ),
        BootState::Pxe | BootState::Script | BootState::Assets => (
            format!("{name} is network-booting (last: {}, {when})", state.label()),
            "it has not asked for its install config: check its console for a kernel that did not start \
             (a wrong architecture, or too little memory)"
                .to_string(),
        ),
        BootState::Ignition => (
            format!("{name} fetched its install config {when} and is installing to {install_disk}"),
            format!("it has not asked for its installed config: check that {install_disk} exists and its console"),
        ),
        BootState::Installed if !secrets_fetched => (
            format!("{name} is installed and rebooting from its disk (since {when})"),
            "it has not fetched its kubelet credentials: check that it boots from its disk".to_string(),
        ),
        BootState::Installed => (
            format!("{name} fetched its credentials and is joining"),
            format!("it has not joined the cluster: check that it can reach {api}"),
        ),
        BootState::Joined => (
            format!("{name} joined; waiting for it to be Ready"),
            "its kubelet is not Ready: check its network plugin and its kubelet's log".to_string(),
        ),
        BootState::Ready => return String::new(),
        BootState::Failed => return format!("{name} failed {when}"),
    };
    if stalled { format!("{doing}; {check}") } else { doing }
}

/// A machine's failure, with what to do about one its installer reported.
pub fn explained(reason: &str, install_disk: &str, boot_url: &str) -> String {
    use super::render::reported;
    let advice = match reason.rsplit(' ').next().unwrap_or_default() {
        reported::NO_DISK => format!("it has no disk {install_disk}: set install_disk to a disk it has"),
        reported::NO_CONFIG => {
            format!("its installer could not fetch its installed config: check that it reaches {boot_url}")
        }
        reported::INSTALL_FAILED => "the OS's installer failed: its console says why".to_string(),
        _ => return reason.to_string(),
    };
    format!("{reason} ({advice})")
}

/// The architectures the cluster's OS images boot on: iPXE's `${buildarch}` on x86-64 machines
/// (`i386` for its BIOS build).
const BOOTS_ON: [&str; 3] = ["x86_64", "i386", "x86-64"];

/// What else the boot listener saw of a machine that is not Ready, in words: the architecture its
/// iPXE was built for when the OS images cannot boot there, its last failed request in its present
/// state, and, for a machine never seen, the unknown machines that asked meanwhile.
pub fn clues(
    node: &StoredNode,
    state: BootState,
    state_since: Option<&str>,
    signals: &store::Signals,
    stalled: bool,
) -> Vec<String> {
    let mac = node.spec.mac.to_string();
    let mut clues = Vec::new();
    if state == BootState::Ready {
        return clues;
    }
    if let Some(arch) = signals.arch.get(&mac).filter(|a| !BOOTS_ON.contains(&a.as_str()))
        && matches!(state, BootState::Pxe | BootState::Script | BootState::Assets)
    {
        clues.push(format!(
            "its iPXE says it is an {arch} machine, and the cluster's OS images are for x86-64: a wrong architecture"
        ));
    }
    if let Some(failed) = signals.failed.get(&mac)
        && state != BootState::Failed
        && state_since.is_none_or(|since| failed.at.as_str() >= since)
    {
        let reason = if failed.reason.is_empty() { String::new() } else { format!(" ({})", failed.reason) };
        clues.push(format!("its last request, {}, was answered {}{reason}", failed.endpoint, failed.status));
    }
    if state == BootState::NeverSeen && stalled && node.powered && !signals.strangers.is_empty() {
        clues.push(format!(
            "machines Pangea does not know asked to boot meanwhile ({}): is {}'s MAC {mac} right?",
            signals.strangers.join(", "),
            node.spec.name
        ));
    }
    clues
}

/// Where the creation's machines and control plane are, for each pass.
struct Place {
    api_url: String,
    shown_api: String,
    /// When the bootstrap token expires: the creation's deadline.
    expires: String,
    install_disk: String,
    started: OffsetDateTime,
    template: super::template::ClusterTemplate,
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

impl Creation {
    /// Runs creation job `job` of cluster `name` in the background, as `who`, from `previous`
    /// progress (a resumed job's), until every node is Ready, it fails, or it is stopped.
    pub(super) fn run(&self, who: Principal, job: String, name: String, previous: Option<Progress>) {
        let me = self.clone();
        self.background.spawn(async move {
            let outcome = me.jobs.holding_lease(&job, me.follow(&who, &job, &name, previous)).await;
            if matches!(&outcome, Err(e) if e.to_string() == lease_lost().to_string()) {
                return;
            }
            if let Err(e) = me.finish(&who, &job, &name, outcome).await {
                tracing::error!(error = %e, job, cluster = name, "could not end a cluster creation");
            }
        });
    }

    /// Goes on with a creation whose replica stopped, as whoever applied it is now.
    pub fn resume_creation(&self, job: Job) {
        let previous = serde_json::from_str::<Progress>(&job.result).ok();
        match job.acting {
            Some(who) => self.run(who, job.id, job.input, previous),
            None => {
                let me = self.clone();
                self.background.spawn(async move {
                    let stopped = AppError::Forbidden {
                        message: "This creation was stopped: whoever applied it may no longer act.".into(),
                    };
                    let nobody = Principal::anonymous(None, None);
                    if let Err(e) = me.finish(&nobody, &job.id, &job.input, Err(stopped)).await {
                        tracing::error!(error = %e, job = job.id, "could not fail a cluster creation");
                    }
                });
            }
        }
    }

    async fn finish(
        &self,
        who: &Principal,
        job: &str,
        name: &str,
        outcome: Result<String, AppError>,
    ) -> Result<(), AppError> {
        let state = if outcome.is_ok() { "created" } else { "failed" };
        let event = crate::audit::Event::new("cluster.creation.end", "cluster").target(name, name);
        let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
        if self.jobs.finish_in(&mut tx, job, who, event, outcome).await? {
            store::set_state(&mut tx, name, state).await.or_internal()?;
            tx.commit().await.or_internal()?;
        }
        Ok(())
    }

    async fn follow(
        &self,
        who: &Principal,
        job: &str,
        name: &str,
        previous: Option<Progress>,
    ) -> Result<String, AppError> {
        let (row, template, nodes) = self.load(name).await?;
        let pki = self.open_pki(&row)?;
        let mut progress = previous.unwrap_or_default();
        // From when it was applied: its machines may ask before this run begins.
        let started = parse_time(&progress.started_at)
            .or_else(|| parse_time(&row.created_at))
            .unwrap_or_else(OffsetDateTime::now_utc);
        progress.started_at = crate::db::timestamp(started);
        let total = nodes.len() as u32;
        let powered: Vec<i64> = nodes.iter().filter(|n| n.powered).map(|n| n.machine).collect();
        if progress.power_run.is_none() && !powered.is_empty() {
            progress.step = "powering the machines on (boot from network once)".into();
            self.report(job, 0, total, &progress).await?;
            let input = PowerRunInput {
                action: PowerAction::NetworkBootOnce,
                machines: powered,
                search: None,
                pacing: Pacing::default(),
            };
            progress.power_run = Some(self.power.start_run(who, input).await?);
            // Kept at once: a run that takes this job over must not power the machines again.
            self.report(job, 0, total, &progress).await?;
        }
        let place = Place {
            api_url: register::api_url(template.api_server.address, template.api_server.port),
            shown_api: format!("{}:{}", template.api_server.address, template.api_server.port),
            expires: crate::db::timestamp(started + self.pace.deadline),
            install_disk: template.install_disk.as_str().to_string(),
            started,
            template,
        };
        loop {
            if self.jobs.cancel_requested(job).await? {
                return Err(AppError::Conflict {
                    message: "The creation was stopped on request.".into(),
                    fields: vec![],
                });
            }
            let mut conn = self.db.pool().acquire().await.or_internal()?;
            if store::creation(&mut conn, name).await.or_internal()?.is_none() {
                return Err(AppError::Conflict { message: format!("{name} was destroyed."), fields: vec![] });
            }
            drop(conn);
            let now = OffsetDateTime::now_utc();
            // A step that fails (a database or API server out of reach) is said and tried again
            // on the next pass, until the deadline.
            match self.pass(who, job, name, &pki, &nodes, &place, &mut progress).await {
                Ok(true) => return serde_json::to_string(&progress).or_internal(),
                Ok(false) => {}
                Err(e) if e.to_string() == lease_lost().to_string() => return Err(e),
                Err(e) => progress.step = format!("{e} (trying again)"),
            }
            if now - started >= self.pace.deadline {
                let stalls: Vec<&str> = progress
                    .machines
                    .iter()
                    .map(|m| m.waiting.as_str())
                    .chain(progress.monitoring_waiting.as_deref())
                    .filter(|w| !w.is_empty())
                    .collect();
                return Err(AppError::Conflict {
                    message: format!(
                        "The cluster was not Ready within {} min: {}",
                        self.pace.deadline.as_secs() / 60,
                        stalls.join("; ")
                    ),
                    fields: vec![],
                });
            }
            let ready = progress.machines.iter().filter(|m| m.state == BootState::Ready.as_str()).count() as u32;
            self.report(job, ready, total, &progress).await?;
            tokio::time::sleep(self.pace.tick).await;
        }
    }

    /// One look at the cluster and its machines: registers the cluster once its control plane
    /// answers, follows each machine, approves kubelet certificates; whether every node is Ready.
    #[allow(clippy::too_many_arguments)]
    async fn pass(
        &self,
        who: &Principal,
        job: &str,
        name: &str,
        pki: &super::pki::ClusterPki,
        nodes: &[StoredNode],
        place: &Place,
        progress: &mut Progress,
    ) -> Result<bool, AppError> {
        let total = nodes.len() as u32;
        // Registered by a run that stopped before it could say so.
        if !progress.registered && self.clusters.names().iter().any(|n| n == name) {
            progress.registered = true;
        }
        if !progress.registered {
            progress.step = format!("waiting for the control plane at {}", place.shown_api);
            let admin =
                register::admin_endpoint(pki.files.get("admin.conf").map_or("", String::as_str), &place.api_url)
                    .and_then(|e| crate::clusters::connect::checking_client(&e))?;
            if register::ready(&admin).await {
                progress.step = "setting the cluster up for Pangea and registering it".into();
                self.report(job, 0, total, progress).await?;
                let credential = register::set_up(&admin, &pki.bootstrap_tokens, &place.expires)
                    .await
                    .map_err(|e| AppError::invalid(crate::clusters::connect::unreachable(&place.api_url, &e)))?;
                let input = ClusterInput {
                    name: name.to_string(),
                    api_url: place.api_url.clone(),
                    ca_pem: pki.ca_pem().to_string(),
                    credential: Some(credential),
                    prometheus_url: String::new(),
                    alertmanager_url: String::new(),
                    grafana_url: String::new(),
                    prometheus_credential: None,
                    alertmanager_credential: None,
                    grafana_credential: None,
                };
                self.clusters.add(who, input).await?;
                progress.registered = true;
                self.report(job, 0, total, progress).await?;
            }
        }
        let macs: Vec<String> = nodes.iter().map(|n| n.spec.mac.to_string()).collect();
        let tokens: Vec<String> = nodes.iter().map(|n| n.spec.secrets_token.clone()).collect();
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let states = store::boot_states(&mut conn, &macs).await.or_internal()?;
        let fetched = store::fetches(&mut conn, &tokens).await.or_internal()?;
        let signals = store::signals(&mut conn, &macs, &crate::db::timestamp(place.started)).await.or_internal()?;
        drop(conn);
        // Machines the power run could not power on, and why (their BMC's words).
        let unpowered: std::collections::HashMap<String, String> = match &progress.power_run {
            Some(run) => match self.power.power_run(who, run).await {
                Ok(run) => {
                    run.machines.into_iter().filter(|m| m.step == RunStep::Failed).map(|m| (m.mac, m.reason)).collect()
                }
                Err(e) => {
                    tracing::warn!(error = %e, cluster = name, "cannot read a creation's power run");
                    Default::default()
                }
            },
            None => Default::default(),
        };
        let now = OffsetDateTime::now_utc();
        let mut known = Vec::new();
        let mut machines = Vec::new();
        for node in nodes {
            let mac = node.spec.mac.to_string();
            // A state from before this creation (an earlier cluster's) is not progress.
            let state = states.get(&mac).filter(|s| parse_time(&s.since).is_some_and(|t| t >= place.started));
            let boot = state.and_then(|s| BootState::parse(&s.state)).unwrap_or(BootState::NeverSeen);
            let seen = fetched.get(&node.spec.secrets_token);
            let since = state.and_then(|s| parse_time(&s.since)).or(Some(place.started));
            let mut waiting = waiting_for(
                node,
                Seen { state: boot, since, secrets_fetched: seen.is_some_and(|f| f.all_fetched) },
                &place.shown_api,
                &place.install_disk,
                now,
                self.pace.stall,
            );
            if boot == BootState::Failed
                && let Some(s) = state
            {
                waiting = format!("{waiting}: {}", explained(&s.reason, &place.install_disk, &self.boot_url));
            }
            let stalled = since.is_some_and(|s| now - s >= self.pace.stall);
            if boot == BootState::NeverSeen
                && let Some(reason) = unpowered.get(&mac)
            {
                waiting = format!("{} could not be powered on through its BMC: {reason}", node.spec.name);
            } else {
                for clue in clues(node, boot, state.map(|s| s.since.as_str()), &signals, stalled) {
                    waiting = format!("{waiting}; {clue}");
                }
            }
            known.push(super::known_machine(node, seen, pki));
            machines.push(CreationMachine {
                machine: node.machine,
                mac,
                name: node.spec.name.clone(),
                role: node.spec.role.as_str().into(),
                state: boot.as_str().into(),
                since: state.map(|s| s.since.clone()).unwrap_or_default(),
                waiting,
            });
        }
        if progress.registered {
            self.approve(name, &known, &machines, progress).await;
        }
        let ready = machines.iter().filter(|m| m.state == BootState::Ready.as_str()).count() as u32;
        progress.machines = machines;
        if progress.registered {
            progress.step = format!("{ready} of {total} nodes Ready");
        }
        progress.monitoring_waiting = match progress.registered && place.template.monitoring.enabled {
            true if !progress.monitoring_linked => self.link_monitoring(who, name, pki, nodes, place, progress).await?,
            _ => None,
        };
        if let Some(waiting) = &progress.monitoring_waiting {
            progress.step = format!("{}; {waiting}", progress.step);
        } else if ready == total && progress.registered {
            progress.step = "every node is Ready".into();
            return Ok(true);
        }
        Ok(false)
    }

    /// Installs the monitoring the template asks for (once), and links its Prometheus to the
    /// cluster once it answers through the API server; what it waits for meanwhile, in words.
    async fn link_monitoring(
        &self,
        who: &Principal,
        name: &str,
        pki: &super::pki::ClusterPki,
        nodes: &[StoredNode],
        place: &Place,
        progress: &mut Progress,
    ) -> Result<Option<String>, AppError> {
        let admin = register::admin_endpoint(pki.files.get("admin.conf").map_or("", String::as_str), &place.api_url)
            .and_then(|e| crate::clusters::connect::checking_client(&e))?;
        let unreachable = |e: kube::Error| AppError::invalid(crate::clusters::connect::unreachable(&place.api_url, &e));
        if !progress.monitoring_installed {
            let specs: Vec<_> = nodes.iter().map(|n| n.spec.clone()).collect();
            monitoring::install(&admin, &place.template, &specs).await.map_err(unreachable)?;
            progress.monitoring_installed = true;
        }
        let cluster = self.clusters.cluster(who, name).await?;
        // A Prometheus a person linked meanwhile is theirs to keep.
        if !cluster.prometheus_url.is_empty() {
            progress.monitoring_linked = true;
            return Ok(None);
        }
        let credential = monitoring::credential(pki).ok_or_else(|| {
            crate::error::internal("this creation's PKI has no client certificate for its Prometheus")
        })?;
        let url = monitoring::prometheus_url(&place.api_url);
        if let Err(why) = monitoring::answers(&url, &credential).await {
            let pod = monitoring::prometheus_pod(&admin).await;
            return Ok(Some(format!("waiting for the cluster's Prometheus ({why}): {pod}")));
        }
        let input = ClusterInput {
            name: name.to_string(),
            api_url: cluster.api_url,
            ca_pem: pki.ca_pem().to_string(),
            credential: None,
            prometheus_url: url,
            alertmanager_url: cluster.alertmanager_url,
            grafana_url: cluster.grafana_url,
            prometheus_credential: Some(credential),
            alertmanager_credential: None,
            grafana_credential: None,
        };
        self.clusters.update(who, name, input).await?;
        progress.monitoring_linked = true;
        Ok(None)
    }

    async fn report(&self, job: &str, done: u32, total: u32, progress: &Progress) -> Result<(), AppError> {
        self.jobs.report(job, done, total, &serde_json::to_string(progress).or_internal()?).await
    }

    /// One approval pass over the cluster's pending kubelet certificate requests (refusals are
    /// kept for the page and audited once each); then deletes the bootstrap tokens of the nodes
    /// that are Ready, which need them no more.
    async fn approve(
        &self,
        name: &str,
        known: &[approval::KnownMachine],
        machines: &[CreationMachine],
        progress: &mut Progress,
    ) {
        let client = match self.clusters.cache(name).and_then(|c| crate::clusters::connect::client(&c.endpoint, None)) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, cluster = name, "cannot reach a created cluster to approve its kubelets");
                return;
            }
        };
        for (machine, node) in machines.iter().zip(known) {
            if machine.state != BootState::Ready.as_str() || progress.retired_tokens.contains(&node.name) {
                continue;
            }
            match register::retire_token(&client, &node.bootstrap_token_id).await {
                Ok(()) => progress.retired_tokens.push(node.name.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, cluster = name, node = node.name, "could not delete a bootstrap token")
                }
            }
        }
        match approval::approve_pending(&client, known).await {
            Ok(pass) => {
                for refused in &pass.refused {
                    let said = format!("{} (asked by {}): {}", refused.request, refused.username, refused.reason);
                    if !progress.refused.contains(&said) {
                        let event = crate::audit::Event::new("cluster.kubelet_certificate.refuse", "cluster")
                            .target(name, &refused.request)
                            .summary(serde_json::json!({ "requester": refused.username, "reason": refused.reason }));
                        let refusal = AppError::Forbidden { message: refused.reason.clone() };
                        // The requester is the cluster's, not a person of Pangea's: named in the summary.
                        let requester = Principal::anonymous(None, None);
                        crate::audit::record_refusal(&self.db, &requester, event.failed(&refusal)).await;
                        progress.refused.push(said);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, cluster = name, "could not approve a created cluster's kubelets"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creation::render::{NodeSpec, Role};
    use std::time::Duration;

    #[test]
    fn a_stalled_machine_is_told_what_to_check() {
        let node = StoredNode {
            machine: 1,
            spec: NodeSpec {
                role: Role::Worker,
                name: "worker-2".into(),
                mac: "52:54:00:00:00:02".parse().unwrap(),
                address: None,
                secrets_token: "t".into(),
            },
            powered: true,
            installed: None,
        };
        let now = OffsetDateTime::now_utc();
        let four_min = Some(now - Duration::from_secs(240));
        let stall = Duration::from_secs(120);
        let said = |state, secrets_fetched| {
            let seen = Seen { state, since: four_min, secrets_fetched };
            waiting_for(&node, seen, "10.0.0.10:6443", "/dev/sda", now, stall)
        };
        assert_eq!(
            said(BootState::Installed, true),
            "worker-2 fetched its credentials and is joining; it has not joined the cluster: check that it can reach \
             10.0.0.10:6443"
        );
        assert!(said(BootState::Ignition, false).contains("fetched its install config 4 min ago"));
        assert!(said(BootState::Ignition, false).contains("check that /dev/sda exists"));
        assert_eq!(said(BootState::Ready, true), "");
        // Before the stall, only where it is.
        let seen = Seen { state: BootState::Installed, since: Some(now), secrets_fetched: true };
        let fresh = waiting_for(&node, seen, "api", "/dev/sda", now, stall);
        assert_eq!(fresh, "worker-2 fetched its credentials and is joining");
        let manual = StoredNode { powered: false, ..node.clone() };
        let mut signals = store::Signals::default();
        signals.arch.insert("52:54:00:00:00:02".into(), "arm64".into());
        signals.failed.insert(
            "52:54:00:00:00:02".into(),
            store::FailedRequest {
                at: "2026-12-07T10:00:05.000000Z".into(),
                endpoint: "/assets/flatcar/current/flatcar_production_pxe.vmlinuz".into(),
                status: 404,
                reason: String::new(),
            },
        );
        signals.strangers = vec!["52:54:00:00:00:99".into()];
        assert_eq!(
            explained("the machine reported stage=failed: install-disk-missing", "/dev/sda", "http://p"),
            "the machine reported stage=failed: install-disk-missing (it has no disk /dev/sda: set install_disk to a \
             disk it has)"
        );
        assert_eq!(explained("ipxe: no group", "/dev/sda", "http://p"), "ipxe: no group");
        let since = Some("2026-12-07T10:00:00.000000Z");
        assert_eq!(
            clues(&node, BootState::Script, since, &signals, true),
            [
                "its iPXE says it is an arm64 machine, and the cluster's OS images are for x86-64: a wrong architecture",
                "its last request, /assets/flatcar/current/flatcar_production_pxe.vmlinuz, was answered 404",
            ]
        );
        // A failure from before its present state is not a clue; a Ready node has none.
        assert!(clues(&node, BootState::Ignition, Some("2026-12-07T10:01:00.000000Z"), &signals, true).is_empty());
        assert!(clues(&node, BootState::Ready, since, &signals, true).is_empty());
        signals.arch.insert("52:54:00:00:00:02".into(), "i386".into());
        assert_eq!(clues(&node, BootState::Script, since, &signals, true).len(), 1, "iPXE's BIOS build on x86-64");
        let never =
            clues(&node, BootState::NeverSeen, None, &store::Signals { failed: Default::default(), ..signals }, true);
        assert_eq!(
            never,
            ["machines Pangea does not know asked to boot meanwhile (52:54:00:00:00:99): is worker-2's MAC \
              52:54:00:00:00:02 right?"]
        );
        let seen = Seen { state: BootState::NeverSeen, since: None, secrets_fetched: false };
        assert!(waiting_for(&manual, seen, "api", "/dev/sda", now, stall).contains("no BMC"));
    }
}
