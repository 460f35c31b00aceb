//! Power: machines' BMCs over Redfish. A machine may have a BMC (its Redfish URL, a user and a
//! password sealed at rest, and a CA or "verify off"); setting one checks it (reachable,
//! credentials accepted, one system found). Its power state is read in the background and
//! after each action; actions (on, shutdowns, restarts, power cycle, boot from network once) are
//! audited before they are sent, and each request and its outcome go on the machine's boot
//! timeline. Redfish does not confirm a power change: Pangea polls until the state is reached or
//! [`SETTLE`] passes, and says which.
//!
//! Operators act on every machine; a role bound for one cluster acts on that cluster's machines
//! only; viewers see BMCs (never their passwords) and power.

pub mod discovery;
pub mod hardware;
pub mod http;
pub mod redfish;
pub mod runs;
pub mod store;

use crate::audit::{self, Event};
use crate::background::Background;
use crate::db::{Database, now};
use crate::error::OrInternal;
use crate::machines::Machines;
use crate::provisioner::Provisioner;
use crate::secrets::Sealer;
use app::access::{Permission, Principal, authorize, authorize_in};
use app::components::text::capitalised;
use app::error::AppError;
use app::machines::ImportReport;
use app::machines::ssr::MachineService;
use app::power::ssr::PowerService;
use app::power::{
    Bmc, BmcInput, Discovery, DiscoveryInput, HardwareRecord, Pacing, PowerAction, PowerRun, PowerRunInput,
    PowerRunPlan, PowerState, PowerStatus, RunMachine, RunStep,
};
use redfish::{BmcAccess, BmcError, BmcTrust, Redfish};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use std::sync::Arc;
use std::time::Duration;
use store::StoredBmc;

/// How long Pangea waits for a machine to reach the state an action asked for.
pub const SETTLE: Duration = Duration::from_secs(180);
/// How often a settling machine's power is read.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How many BMCs the background refresh reads at once.
const REFRESH_AT_ONCE: usize = 64;

#[derive(Clone)]
pub struct Power {
    db: Database,
    sealer: Arc<Sealer>,
    machines: Arc<Machines>,
    provisioner: Arc<Provisioner>,
    redfish: Redfish,
    background: Background,
    jobs: crate::jobs::Jobs,
    settle: Duration,
    /// Machines whose hardware is being read: one read at a time each, so a change is counted once.
    reading: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
}

/// Where a machine's sealed BMC password may be opened: its machine and its BMC's origin, so a
/// copy to another row or another BMC does not open.
fn password_place(machine_id: i64, origin: &str) -> String {
    format!("bmc-password:{machine_id}:{origin}")
}

/// Where a stored BMC's password was sealed (read with no rule but URL syntax, so a stricter
/// rule later never makes a kept password unreadable).
fn password_place_of(stored: &StoredBmc) -> String {
    let origin = url::Url::parse(&stored.url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    password_place(stored.machine_id, &origin)
}

/// A BMC's URL, checked: `https://host[:port]`, optionally with the path of one Redfish system
/// (`/redfish/v1/Systems/ID`). Returns the origin and that system's path, if given.
pub fn parse_url(text: &str) -> Result<(url::Url, Option<String>), String> {
    let url = url::Url::parse(text.trim())
        .map_err(|_| format!("\"{text}\" is not a URL; give the BMC's, such as https://10.0.0.10"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("A BMC's URL is https://host (or http://host for one that speaks no TLS).".into());
    }
    // A cloud's metadata service (169.254.169.254) is no BMC: link-local addresses are refused
    // (names that resolve to them, when Pangea connects).
    let link_local = match url.host() {
        Some(url::Host::Ipv4(ip)) => redfish::link_local(ip.into()),
        Some(url::Host::Ipv6(ip)) => redfish::link_local(ip.into()),
        _ => false,
    };
    if link_local {
        return Err("A BMC's address is not link-local (169.254.0.0/16, fe80::/10).".into());
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err("Give the BMC's user and password in their own fields, and its URL without a query.".into());
    }
    let path = url.path().trim_end_matches('/');
    let system = match path {
        "" | "/redfish/v1" => None,
        system if system.starts_with("/redfish/v1/Systems/") && system.matches('/').count() == 4 => {
            Some(system.to_string())
        }
        _ => return Err("A BMC's URL has no path, or the path of one system: /redfish/v1/Systems/ID.".into()),
    };
    let origin = url::Url::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    Ok((origin, system))
}

/// A BMC's fields as a person gave them, checked without sending anything: its origin, the
/// system its URL names (if it does) and the user; else the field at fault and why.
fn checked_fields(input: &BmcInput) -> Result<(url::Url, Option<String>, String), (&'static str, String)> {
    let (origin, system) = parse_url(&input.url).map_err(|m| ("url", m))?;
    let username = input.username.trim();
    if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
        return Err(("username", "Give the BMC user's name (1 to 256 printable characters).".into()));
    }
    if input.ca_pem.len() > 64 * 1024 {
        return Err(("ca_pem", "A CA bundle is at most 64 KiB of PEM.".into()));
    }
    Ok((origin, system, username.to_string()))
}

/// The trust a person gave a BMC: any certificate, one chaining to `ca_pem`, or the system's roots.
fn trust_given(verify_off: bool, ca_pem: &str) -> BmcTrust {
    match (verify_off, ca_pem.trim()) {
        (true, _) => BmcTrust::Unverified,
        (false, "") => BmcTrust::System,
        (false, pem) => BmcTrust::Ca(pem.to_string()),
    }
}

/// The systems a BMC lists under `/redfish/v1/Systems` (their paths, at most
/// [`hardware::MAX_MEMBERS`]), or why it listed none, in words.
async fn listed_systems(trial: &redfish::Trial) -> Result<Vec<String>, String> {
    let listed = trial.call(Method::GET, "/redfish/v1/Systems", None).await.map_err(|e| said(&e))?;
    if listed.status != StatusCode::OK {
        return Err(format!(
            "The BMC answered HTTP {} for its systems (/redfish/v1/Systems): is this a Redfish BMC?",
            listed.status.as_u16()
        ));
    }
    Ok(listed.body["Members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["@odata.id"].as_str().map(|m| m.trim_end_matches('/').to_string()))
        .filter(|m| m.starts_with("/redfish/v1/Systems/") && m.matches('/').count() == 4)
        .take(hardware::MAX_MEMBERS)
        .collect())
}

/// A BMC's failure as a sentence.
fn said(error: &BmcError) -> String {
    format!("{}.", capitalised(&error.to_string()))
}

fn words(error: BmcError) -> AppError {
    AppError::Upstream { message: said(&error) }
}

/// Where an action left a machine: its power then, the BMC's reset action, and its power before.
struct Sent {
    status: PowerStatus,
    reset: String,
    was: PowerState,
}

fn status_now(state: PowerState, reason: impl Into<String>) -> PowerStatus {
    PowerStatus { state, reason: reason.into(), read_at: now() }
}

impl Power {
    pub fn new(
        db: Database,
        sealer: Arc<Sealer>,
        machines: Arc<Machines>,
        provisioner: Arc<Provisioner>,
        jobs: crate::jobs::Jobs,
        background: Background,
    ) -> Power {
        Power {
            db,
            sealer,
            machines,
            provisioner,
            redfish: Redfish::default(),
            background,
            jobs,
            settle: SETTLE,
            reading: Arc::default(),
        }
    }

    /// Whether machine `id` has a BMC, for an area that authorized its caller already (on the
    /// machine's cluster).
    pub async fn has_bmc(&self, id: i64) -> Result<bool, AppError> {
        Ok(store::bmc(&self.db, id).await.or_internal()?.is_some())
    }

    /// How long an action may take to settle (`--power-settle-seconds`).
    pub fn with_settle(mut self, settle: Duration) -> Power {
        self.settle = settle;
        self
    }

    /// How long an action may take to settle, and one request to a BMC (tests shorten them).
    pub fn with_timeouts(mut self, settle: Duration, request: Duration) -> Power {
        self.settle = settle;
        self.redfish = Redfish::with_timeout(request);
        self
    }

    fn access(&self, stored: &StoredBmc) -> Result<BmcAccess, AppError> {
        let (origin, _) = parse_url(&stored.url).map_err(crate::error::internal)?;
        let password = self.sealer.open(&stored.sealed_password, &password_place_of(stored)).map_err(|problem| {
            AppError::Conflict {
                message: format!("This machine's BMC password cannot be opened ({problem}): set it again."),
                fields: vec![],
            }
        })?;
        Ok(BmcAccess { origin, username: stored.username.clone(), password, trust: trust_of(stored) })
    }

    /// The BMC of machine `id` (MAC `mac`), checked: one an import brought is acted on once the
    /// refresh has found its system.
    async fn bmc_to_act_on(&self, id: i64, mac: &str) -> Result<StoredBmc, AppError> {
        let stored = store::bmc(&self.db, id)
            .await
            .or_internal()?
            .ok_or_else(|| AppError::not_found(format!("Machine {mac} has no BMC: set one first.")))?;
        if stored.system.is_empty() {
            return Err(AppError::Conflict {
                message: format!(
                    "Machine {mac}'s BMC came with an import and is not checked yet ({}): wait for the next power \
                     refresh, or set the BMC on the machine's page to check it now.",
                    stored.power.reason
                ),
                fields: vec![],
            });
        }
        Ok(stored)
    }

    /// The machine `id` with a BMC, for `who`, who must hold `permission` for its cluster.
    async fn machine(
        &self,
        who: &Principal,
        id: i64,
        permission: Permission,
    ) -> Result<app::machines::Machine, AppError> {
        authorize(who, permission)?;
        let machine = self.machines.get(who, id).await?;
        authorize_in(who, permission, machine.cluster.as_deref().unwrap_or_default())?;
        Ok(machine)
    }

    /// Checks a BMC as a person sets it, on a link of its own (a wrong password replaces no
    /// link in use): reachable, the credentials accepted, and one system (the one its URL names,
    /// or the only one it lists). Its path and power, or why not.
    async fn check(&self, access: &BmcAccess, system: Option<String>) -> Result<(String, PowerStatus), String> {
        let trial = self.redfish.trial(access).map_err(|e| said(&e))?;
        self.check_on(&trial, access, system).await
    }

    async fn check_on(
        &self,
        trial: &redfish::Trial,
        access: &BmcAccess,
        system: Option<String>,
    ) -> Result<(String, PowerStatus), String> {
        let system = match system {
            Some(system) => system,
            None => {
                let members = listed_systems(trial).await?;
                match &members[..] {
                    [one] => one.clone(),
                    [] => return Err("The BMC lists no system.".into()),
                    many => {
                        return Err(format!(
                            "The BMC lists {} systems; give this machine's in the URL, e.g. {}{}.",
                            many.len(),
                            access.origin.as_str().trim_end_matches('/'),
                            many[0]
                        ));
                    }
                }
            }
        };
        let read = trial.call(Method::GET, &system, None).await.map_err(|e| said(&e))?;
        match read.status {
            StatusCode::OK => Ok((system, status_now(power_of(&read.body), ""))),
            StatusCode::NOT_FOUND => Err(format!("The BMC has no system {system}.")),
            other => Err(format!("The BMC answered HTTP {} for system {system}.", other.as_u16())),
        }
    }

    /// Sends `action` to `system`: where it left the machine.
    async fn send(&self, access: &BmcAccess, system: &str, action: PowerAction) -> Result<Sent, BmcError> {
        let read = self.redfish.call(access, Method::GET, system, None).await?;
        let was = power_of(&read.body);
        let reset = read.body["Actions"]["#ComputerSystem.Reset"]["target"]
            .as_str()
            .map_or_else(|| format!("{system}/Actions/ComputerSystem.Reset"), str::to_string);
        let allowed: Vec<&str> = read.body["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let reset_type = match action {
            PowerAction::On => "On",
            PowerAction::GracefulShutdown => "GracefulShutdown",
            PowerAction::ForceOff => "ForceOff",
            PowerAction::GracefulRestart => "GracefulRestart",
            PowerAction::ForceRestart => "ForceRestart",
            // Off first where the BMC has no PowerCycle; `follow` turns it on again.
            PowerAction::PowerCycle if allowed.contains(&"PowerCycle") => "PowerCycle",
            PowerAction::PowerCycle => "ForceOff",
            PowerAction::NetworkBootOnce => {
                self.boot_from_network_once(access, system).await?;
                if was == PowerState::Off { "On" } else { "ForceRestart" }
            }
        };
        let sent = self.redfish.call(access, Method::POST, &reset, Some(json!({ "ResetType": reset_type }))).await;
        let sent = sent.and_then(|sent| refused(access, sent.status, reset_type));
        if let Err(error) = sent {
            // A one-time boot that will not happen now must not wait for whatever boot comes next.
            if action == PowerAction::NetworkBootOnce {
                let _ = self.clear_override(access, system).await;
            }
            return Err(error);
        }
        let heading = if matches!(reset_type, "ForceOff" | "GracefulShutdown") {
            PowerState::PoweringOff
        } else {
            PowerState::PoweringOn
        };
        Ok(Sent { status: status_now(heading, format!("{} requested", action.words())), reset, was })
    }

    /// Sets the next boot, and only the next, to the network; a BMC that says it keeps it for
    /// every boot (`Continuous`) is refused, and the override cleared.
    async fn boot_from_network_once(&self, access: &BmcAccess, system: &str) -> Result<(), BmcError> {
        let once = json!({ "Boot": { "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once" } });
        let patched = self.redfish.call(access, Method::PATCH, system, Some(once)).await?;
        refused(access, patched.status, "the one-time network boot")
    }

    async fn clear_override(&self, access: &BmcAccess, system: &str) -> Result<(), BmcError> {
        let off = json!({ "Boot": { "BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled" } });
        let cleared = self.redfish.call(access, Method::PATCH, system, Some(off)).await?;
        refused(access, cleared.status, "clearing the boot override")
    }

    /// Follows an action in the background until the machine reaches its state, or says that it
    /// did not within the settle time. A restart is confirmed once the machine was seen off (or
    /// powering) and then on; one too quick to see is said to be so. A power cycle sent as
    /// `ForceOff` (the BMC has no `PowerCycle`) is turned on once it is off. After a one-time
    /// network boot, an override the BMC did not clear is cleared, and said.
    fn follow(&self, mac: String, id: i64, access: BmcAccess, system: String, action: PowerAction, sent: Sent) {
        let power = self.clone();
        self.background.spawn(async move {
            let heading = sent.status.state;
            let mut target = if heading == PowerState::PoweringOff { PowerState::Off } else { PowerState::On };
            let mut then_on = action.reaches() == PowerState::On && target == PowerState::Off;
            // A machine that was on must be seen leaving "on" before "on" means it restarted.
            let mut left = !(target == PowerState::On && sent.was == PowerState::On);
            let deadline = tokio::time::Instant::now() + power.settle;
            let mut last = PowerState::Unknown;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(POLL_EVERY).await;
                let Ok(read) = power.redfish.call(&access, Method::GET, &system, None).await else { continue };
                last = power_of(&read.body);
                left |= last != PowerState::On;
                let at_end = tokio::time::Instant::now() + POLL_EVERY >= deadline;
                if last != target || (!left && !at_end) {
                    continue;
                }
                if then_on {
                    let on = power.redfish.call(&access, Method::POST, &sent.reset, Some(json!({ "ResetType": "On" })));
                    if on.await.and_then(|on| refused(&access, on.status, "On")).is_ok() {
                        (target, then_on) = (PowerState::On, false);
                    }
                    continue;
                }
                let _ = store::note_power(&power.db, id, &status_now(last, "")).await;
                let seen = if left { "" } else { " (Pangea did not see it go off: too quick to see, or not done)" };
                power.note(&mac, &format!("{}: {}{seen}", action.words(), last.words())).await;
                if action == PowerAction::NetworkBootOnce {
                    let kept = read.body["Boot"]["BootSourceOverrideEnabled"].as_str().unwrap_or("Disabled");
                    let said = match kept {
                        "Disabled" => "the one-time network boot override cleared".to_string(),
                        kept => match power.clear_override(&access, &system).await {
                            Ok(()) => format!("the BMC did not clear the network boot override (it said {kept}): Pangea cleared it"),
                            Err(e) => format!("the BMC did not clear the network boot override (it said {kept}), and clearing it failed: {e}"),
                        },
                    };
                    power.note(&mac, &said).await;
                }
                return;
            }
            power.not_reached(id, &mac, action, target, last).await;
        });
    }

    /// Keeps and says that machine `id` did not reach `target` within the settle time.
    async fn not_reached(&self, id: i64, mac: &str, action: PowerAction, target: PowerState, last: PowerState) {
        let why = format!(
            "{}: did not reach {} within {} s (last read: {})",
            action.words(),
            target.words(),
            self.settle.as_secs(),
            last.words()
        );
        let _ = store::note_power(&self.db, id, &status_now(last, why.clone())).await;
        self.note(mac, &why).await;
    }

    /// Follows again, after a replica took a run over, the machines whose action the stopped
    /// replica had decided on (it may have stopped before or after asking the BMC). An action
    /// that only leads to a state (on, off, shut down) is asked again when the machine is not
    /// there, which is harmless if it was asked already, and its power is read until it gets
    /// there or the settle time passes, and kept for the run to see. A restart, cycle or network
    /// boot is never asked twice, and "on" after one cannot be told from "on" without one: such a
    /// machine is failed in the run, saying so.
    fn follow_taken_over(&self, run: &PowerRun, action: PowerAction) {
        let again = matches!(action, PowerAction::On | PowerAction::ForceOff | PowerAction::GracefulShutdown);
        if !again {
            for machine in run.machines.iter().filter(|m| m.step == RunStep::Sent) {
                let (power, id, mac) = (self.clone(), machine.id, machine.mac.clone());
                self.background.spawn(async move {
                    let why = format!(
                        "{}: did not reach its end as far as Pangea can tell: the replica running the power run \
                         stopped after deciding on it, and whether its BMC was asked cannot be known; check the \
                         machine, and ask again if it needs it",
                        action.words()
                    );
                    let _ = store::note_power(&power.db, id, &status_now(PowerState::Unknown, why.clone())).await;
                    power.note(&mac, &why).await;
                });
            }
            return;
        }
        let target = action.reaches();
        for machine in run.machines.iter().filter(|m| m.step == RunStep::Sent) {
            let (power, id, mac) = (self.clone(), machine.id, machine.mac.clone());
            self.background.spawn(async move {
                let Ok(access) = power
                    .bmc_to_act_on(id, &mac)
                    .await
                    .and_then(|stored| power.access(&stored).map(|access| (access, stored.system)))
                else {
                    return;
                };
                let (access, system) = access;
                let deadline = tokio::time::Instant::now() + power.settle;
                let mut last = PowerState::Unknown;
                if again
                    && let Ok(read) = power.redfish.call(&access, Method::GET, &system, None).await
                    && power_of(&read.body) != target
                {
                    let asked = power.send(&access, &system, action).await;
                    let said = match &asked {
                        Ok(_) => "asked again by the replica that took the run over".to_string(),
                        Err(e) => format!("asked again by the replica that took the run over, and it failed: {e}"),
                    };
                    power.note(&mac, &format!("{}: {said}", action.words())).await;
                }
                while tokio::time::Instant::now() < deadline {
                    if let Ok(read) = power.redfish.call(&access, Method::GET, &system, None).await {
                        last = power_of(&read.body);
                        if last == target {
                            let _ = store::note_power(&power.db, id, &status_now(last, "")).await;
                            power
                                .note(
                                    &mac,
                                    &format!(
                                        "{}: {} (read again by the replica that took the run over)",
                                        action.words(),
                                        last.words()
                                    ),
                                )
                                .await;
                            return;
                        }
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                }
                power.not_reached(id, &mac, action, target, last).await;
            });
        }
    }

    async fn note(&self, mac: &str, what: &str) {
        if let Err(e) = self.provisioner.boots.note(mac, "power", what).await {
            tracing::warn!(error = %e, mac, "could not note a power action on the timeline");
        }
    }

    /// Reads the power of this replica's `shard` of the BMCs, a few at a time; a BMC that does
    /// not answer says why.
    pub async fn refresh_all(&self, shard: crate::leases::Shard) {
        use futures::StreamExt;
        let bmcs = match store::all(&self.db).await {
            Ok(bmcs) => bmcs.into_iter().filter(|b| shard.owns(&b.url)).collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the BMCs to read");
                return;
            }
        };
        futures::stream::iter(bmcs)
            .for_each_concurrent(REFRESH_AT_ONCE, |stored| async move {
                if stored.system.is_empty() {
                    return self.check_imported(stored).await;
                }
                let status = match self.access(&stored) {
                    Ok(access) => match self.redfish.call(&access, Method::GET, &stored.system, None).await {
                        Ok(read) if read.status == StatusCode::OK => status_now(power_of(&read.body), ""),
                        Ok(read) => {
                            status_now(PowerState::Unknown, format!("the BMC answered HTTP {}", read.status.as_u16()))
                        }
                        Err(e) => status_now(PowerState::Unknown, e.to_string()),
                    },
                    Err(e) => status_now(PowerState::Unknown, e.to_string()),
                };
                if let Err(e) = store::note_power(&self.db, stored.machine_id, &status).await {
                    tracing::warn!(error = %e, "could not note a machine's power");
                }
            })
            .await;
    }

    /// Checks a BMC an import brought, as a person's save would have: reached, signed in to, one
    /// system found. Then its hardware is read; until then its power says why it is unknown.
    async fn check_imported(&self, stored: StoredBmc) {
        // One whose check failed is tried again after a pause, not at every refresh: a BMC locks
        // out a user who keeps failing to sign in.
        let failed_lately = stored.power.reason != NOT_CHECKED
            && time::OffsetDateTime::parse(&stored.power.read_at, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|at| time::OffsetDateTime::now_utc() - at < IMPORTED_RETRY);
        if failed_lately {
            return;
        }
        let checked = match (self.access(&stored), parse_url(&stored.url)) {
            (Ok(access), Ok((_, system))) => self.check(&access, system).await,
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e),
        };
        let written = match checked {
            Ok((system, power)) => match store::set_system(&self.db, &stored, &system, &power).await {
                Ok(()) => {
                    self.read_hardware(StoredBmc { system, power, ..stored }).await;
                    return;
                }
                Err(e) => Err(e),
            },
            Err(problem) => {
                store::note_power(&self.db, stored.machine_id, &status_now(PowerState::Unknown, problem)).await
            }
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not note an imported BMC's check");
        }
    }

    /// The hardware of the machines `ids`, for `who`, who may see machines (the export).
    pub async fn hardware_of(
        &self,
        who: &Principal,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, HardwareRecord>, AppError> {
        authorize(who, Permission::ViewMachines)?;
        store::hardware_of(&self.db, ids).await.or_internal()
    }

    /// Asks a running power run something (`ask`), for someone who may power machines,
    /// audited.
    async fn ask_run<F, Fut>(&self, who: &Principal, job: &str, event: Event, ask: F) -> Result<(), AppError>
    where
        F: FnOnce(crate::jobs::Jobs) -> Fut,
        Fut: std::future::Future<Output = Result<bool, AppError>>,
    {
        let result = async {
            authorize(who, Permission::PowerMachines)?;
            if self.jobs.get(job, who).await?.kind != POWER_RUN.name {
                return Err(AppError::not_found("This power run is not known (it expired, or it is not yours)."));
            }
            if !ask(self.jobs.clone()).await? {
                return Err(AppError::Conflict {
                    message: "This power run is no longer running.".into(),
                    fields: vec![],
                });
            }
            audit::record(&self.db, who, event.clone()).await.or_internal()
        }
        .await;
        audit::settle(&self.db, who, event, result.map(|_| ())).await
    }

    /// Reads the hardware of this replica's `shard` of the BMCs, a few at a time, noting what
    /// changed.
    pub async fn read_hardware_all(&self, shard: crate::leases::Shard) {
        use futures::StreamExt;
        match store::all(&self.db).await {
            Ok(bmcs) => {
                // An imported BMC is read once its check has found its system.
                let checked = bmcs.into_iter().filter(|b| !b.system.is_empty() && shard.owns(&b.url));
                futures::stream::iter(checked).for_each_concurrent(REFRESH_AT_ONCE, |s| self.read_hardware(s)).await
            }
            Err(e) => tracing::warn!(error = %e, "could not list the BMCs to read"),
        }
    }

    /// Reads a machine's hardware from its BMC and keeps it. What changed since the last read goes
    /// on its boot timeline and stays listed (the "changed" badge) until a person acknowledges
    /// it; a read that fails keeps the last one and says why.
    pub async fn read_hardware(&self, stored: StoredBmc) {
        let id = stored.machine_id;
        if !self.reading.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
            return;
        }
        self.read_hardware_of(stored).await;
        self.reading.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    async fn read_hardware_of(&self, stored: StoredBmc) {
        let id = stored.machine_id;
        let read = async {
            let access = self.access(&stored).map_err(|e| e.to_string())?;
            let get = |path: String| {
                let access = &access;
                async move { self.redfish.call(access, Method::GET, &path, None).await }
            };
            let system = get(stored.system.clone()).await.map_err(|e| said(&e))?;
            if system.status != StatusCode::OK {
                return Err(format!("The BMC answered HTTP {} for system {}.", system.status.as_u16(), stored.system));
            }
            hardware::read(get, &system.body).await.map_err(|e| said(&e))
        };
        let kept = match read.await {
            Ok(read) => self.keep_hardware(id, read).await,
            Err(problem) => store::note_hardware_problem(&self.db, id, &problem).await.map_err(Into::into),
        };
        if let Err(e) = kept {
            tracing::warn!(error = %e, machine = id, "could not keep a machine's hardware");
        }
    }

    async fn keep_hardware(&self, id: i64, read: app::power::Hardware) -> Result<(), crate::error::Error> {
        let at = now();
        let earlier = store::hardware(&self.db, id).await?;
        let changes = earlier
            .filter(|e| !e.read_at.is_empty())
            .map(|e| hardware::changes(&e.hardware, &read, &at))
            .unwrap_or_default();
        store::put_hardware(&self.db, id, &read, &at, &changes).await?;
        if !changes.is_empty()
            && let Some(mac) = store::mac_of(&self.db, id).await?
        {
            let said: Vec<String> = changes.iter().map(|c| c.words()).collect();
            self.note(&mac, &format!("hardware changed: {}", said.join("; "))).await;
        }
        Ok(())
    }

    /// Ends Pangea's sessions on every BMC (at shutdown).
    pub async fn close(&self) {
        self.redfish.close_all().await;
    }
}

/// A power run, in the jobs table: its machines resolved when it started, kept for whichever
/// replica goes on with it.
pub const POWER_RUN: crate::jobs::JobKind = crate::jobs::JobKind { name: "power.run" };

/// The most machines one power run takes.
pub const MAX_RUN_MACHINES: usize = 10_000;

/// A power run's input as kept with its job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RunInput {
    action: PowerAction,
    pacing: Pacing,
    machines: Vec<RunTarget>,
}

/// One machine of a power run, as resolved when it started.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RunTarget {
    id: i64,
    mac: String,
    /// Its power-budget group ('' for none).
    group: String,
    /// Its cluster then ('' for none).
    cluster: String,
}

impl RunInput {
    /// The run before anything is asked: every machine waiting.
    fn fresh(&self, job: &str) -> PowerRun {
        let machines = self
            .machines
            .iter()
            .map(|t| RunMachine {
                id: t.id,
                mac: t.mac.clone(),
                group: t.group.clone(),
                step: RunStep::Waiting,
                reason: String::new(),
                sent_at: String::new(),
            })
            .collect();
        PowerRun {
            job: job.to_string(),
            state: "running".into(),
            action: Some(self.action),
            pacing: self.pacing.clone(),
            machines,
            ..PowerRun::default()
        }
    }
}

impl Power {
    /// The machines of a run, for `who`, who must be allowed to power each; every one must have
    /// a BMC. Refusals and mistakes are said in words.
    async fn run_machines(&self, who: &Principal, input: &PowerRunInput) -> Result<RunInput, AppError> {
        authorize(who, Permission::PowerMachines)?;
        let pacing = &input.pacing;
        if (pacing.per_group == 0) != (pacing.per_seconds == 0) {
            return Err(AppError::invalid(
                "A power budget is \"at most per_group per per_seconds\": give both, or neither.",
            ));
        }
        if pacing.per_seconds > 3600 || pacing.group_by.len() > 63 {
            return Err(AppError::invalid(
                "A power budget's window is at most 3600 s, and its label at most 63 characters.",
            ));
        }
        let mut found = Vec::new();
        if input.machines.is_empty() {
            let search = input.search.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                AppError::invalid("Give the machines: their ids, or a search (a label, say: rack=r1).")
            })?;
            let mut query = app::machines::MachineQuery {
                search: Some(search),
                limit: Some(app::machines::MachineQuery::MAX_LIMIT),
                ..Default::default()
            };
            loop {
                let page = self.machines.list(who, query.clone()).await?;
                found.extend(page.items);
                match page.next {
                    Some(next) if found.len() <= MAX_RUN_MACHINES => query.after = Some(next),
                    _ => break,
                }
            }
        } else {
            if input.machines.len() > MAX_RUN_MACHINES {
                return Err(AppError::invalid(format!(
                    "A power run takes at most {MAX_RUN_MACHINES} machines; split it."
                )));
            }
            let mut seen = std::collections::HashSet::new();
            for id in &input.machines {
                if seen.insert(*id) {
                    found.push(self.machines.get(who, *id).await?);
                }
            }
        }
        if found.is_empty() {
            return Err(AppError::invalid("No machine matches: nothing to power."));
        }
        if found.len() > MAX_RUN_MACHINES {
            return Err(AppError::invalid(format!("A power run takes at most {MAX_RUN_MACHINES} machines; split it.")));
        }
        for machine in &found {
            authorize_in(who, Permission::PowerMachines, machine.cluster.as_deref().unwrap_or_default())?;
        }
        let ids: Vec<i64> = found.iter().map(|m| m.id).collect();
        let with_bmc = self.machines_with_bmc(&ids).await?;
        let without: Vec<&str> = found.iter().filter(|m| !with_bmc.contains(&m.mac)).map(|m| m.mac.as_str()).collect();
        if !without.is_empty() {
            let shown: Vec<&str> = without.iter().take(5).copied().collect();
            return Err(AppError::invalid(format!(
                "{} of these machines have no BMC ({}{}): set their BMCs, or leave them out.",
                without.len(),
                shown.join(", "),
                if without.len() > 5 { ", …" } else { "" }
            )));
        }
        let machines = found
            .into_iter()
            .map(|m| {
                let group = m.labels.get(&pacing.group_by).cloned().unwrap_or_default();
                RunTarget {
                    id: m.id,
                    mac: m.mac,
                    group: if pacing.group_by.is_empty() { String::new() } else { group },
                    cluster: m.cluster.unwrap_or_default(),
                }
            })
            .collect();
        Ok(RunInput { action: input.action, pacing: input.pacing.clone(), machines })
    }

    /// Which of the machines `ids` have a BMC, by MAC: for the areas that power machines
    /// through power runs.
    pub async fn machines_with_bmc(&self, ids: &[i64]) -> Result<std::collections::HashSet<String>, AppError> {
        let mut found = std::collections::HashSet::new();
        for some in ids.chunks(500) {
            found.extend(store::power_of(&self.db, some).await.or_internal()?.into_keys());
        }
        Ok(found)
    }

    /// Goes on with a power run another replica started (its lease ran out), as whoever started
    /// it is now; it fails in words when they may no longer power its machines.
    pub fn resume_run(&self, job: crate::jobs::Job) {
        let previous = serde_json::from_str::<PowerRun>(&job.result).ok();
        let input = serde_json::from_str::<RunInput>(&job.input);
        let resumable = match (input, job.acting) {
            (Err(_), _) => {
                Err(crate::error::internal("this power run cannot be resumed: its stored input cannot be read"))
            }
            (Ok(_), None) => Err(AppError::Forbidden {
                message: "This power run was stopped: whoever started it may no longer act.".into(),
            }),
            (Ok(input), Some(who)) => {
                let refused =
                    input.machines.iter().find(|t| authorize_in(&who, Permission::PowerMachines, &t.cluster).is_err());
                match refused {
                    None => Ok((who, input)),
                    Some(RunTarget { mac, .. }) => Err(AppError::Forbidden {
                        message: format!("This power run was stopped: {} may no longer power {mac}.", who.actor()),
                    }),
                }
            }
        };
        match resumable {
            Ok((who, input)) => {
                if let Some(previous) = &previous {
                    self.follow_taken_over(previous, input.action);
                }
                self.run(who, job.id, input, previous)
            }
            Err(error) => {
                let jobs = self.jobs.clone();
                self.background.spawn(async move {
                    if let Err(e) = jobs.fail(&job.id, &error).await {
                        tracing::error!(error = %e, job = job.id, "could not fail a power run");
                    }
                });
            }
        }
    }

    /// Runs power run `job` in the background, holding its lease, until every machine is done,
    /// failed or skipped; then ends it with its audit record (`machine.power.run.end`), once.
    fn run(&self, who: Principal, job: String, input: RunInput, previous: Option<PowerRun>) {
        let power = self.clone();
        self.background.spawn(async move {
            let mut run =
                previous.filter(|p| p.machines.len() == input.machines.len()).unwrap_or_else(|| input.fresh(&job));
            let outcome = power.jobs.holding_lease(&job, power.run_steps(&who, &job, &input, &mut run)).await;
            let (done, failed, skipped) = run.machines.iter().fold((0, 0, 0), |(d, f, s), m| match m.step {
                RunStep::Done => (d + 1, f, s),
                RunStep::Failed => (d, f + 1, s),
                RunStep::Skipped => (d, f, s + 1),
                _ => (d, f, s),
            });
            let event = Event::new("machine.power.run.end", "job").target(&job, &job).summary(json!({
                "action": input.action, "done": done, "failed": failed, "skipped": skipped,
                "largest_burst": run.largest_burst,
            }));
            let total = run.machines.len() as u32;
            let _ = power.jobs.report(&job, total, total, &serde_json::to_string(&run).unwrap_or_default()).await;
            let outcome = match outcome {
                Err(e) if e.to_string() == crate::jobs::lease_lost().to_string() => return,
                Err(e) => Err(e),
                Ok(()) if failed > 0 => {
                    let first = run.machines.iter().find(|m| m.step == RunStep::Failed);
                    let why = first.map(|m| format!("{}: {}", m.mac, m.reason)).unwrap_or_default();
                    Err(AppError::Upstream {
                        message: format!("{failed} of {} machines failed (first, {why}).", run.machines.len()),
                    })
                }
                Ok(()) => Ok(serde_json::to_string(&run).unwrap_or_default()),
            };
            if let Err(e) = power.jobs.finish(&job, &who, event, outcome).await {
                tracing::error!(error = %e, job, "could not end a power run");
            }
        });
    }

    /// The run's loop: every half second, what was asked is checked, and the next machines go as
    /// far as the budgets let them.
    async fn run_steps(
        &self,
        who: &Principal,
        job: &str,
        input: &RunInput,
        run: &mut PowerRun,
    ) -> Result<(), AppError> {
        let target = input.action.reaches();
        let booting = runs::boots(input.action) && input.pacing.booting_at_once > 0;
        let mut reported = tokio::time::Instant::now();
        loop {
            let (cancelled, paused) = self.jobs.asked(job).await?;
            let now = time::OffsetDateTime::now_utc();
            // What was asked: its power, as the follow and the refresh keep it.
            let asked: Vec<i64> = run.machines.iter().filter(|m| m.step == RunStep::Sent).map(|m| m.id).collect();
            let powers = store::power_of(&self.db, &asked).await.or_internal()?;
            let booted: Vec<String> =
                run.machines.iter().filter(|m| m.step == RunStep::Booting).map(|m| m.mac.clone()).collect();
            let boots = crate::machines::InventoryFollower::boot_states(self.provisioner.as_ref(), &booted)
                .await
                .or_internal()?;
            for m in run.machines.iter_mut() {
                let since = runs::sent_at(m).map(|at| (now - at).whole_seconds()).unwrap_or_default();
                match m.step {
                    RunStep::Sent => match powers.get(&m.mac) {
                        Some(p) if p.state == target && p.reason.is_empty() && p.read_at > m.sent_at => {
                            (m.step, m.reason) = if booting {
                                (RunStep::Booting, format!("{}; waiting for its first boot request", target.words()))
                            } else {
                                (RunStep::Done, target.words().to_string())
                            };
                        }
                        Some(p) if p.reason.contains("did not reach") => {
                            (m.step, m.reason) = (RunStep::Failed, p.reason.clone())
                        }
                        last if since > self.settle.as_secs() as i64 + 10 => {
                            let last = last.map_or("unknown", |p| p.state.words());
                            (m.step, m.reason) = (
                                RunStep::Failed,
                                format!(
                                    "did not reach {} within {} s (last read: {last})",
                                    target.words(),
                                    self.settle.as_secs()
                                ),
                            );
                        }
                        _ => {}
                    },
                    RunStep::Booting => match boots.get(&m.mac) {
                        Some(status) if status.last_seen > m.sent_at => {
                            (m.step, m.reason) = (RunStep::Done, format!("booting: {}", status.state.label()));
                        }
                        _ if since > runs::BOOT_WAIT_SECONDS => {
                            (m.step, m.reason) = (
                                RunStep::Failed,
                                format!(
                                    "on, but it asked for no boot script within {} min: check its network boot (DHCP, PXE) and that it reaches the boot listener",
                                    runs::BOOT_WAIT_SECONDS / 60
                                ),
                            );
                        }
                        _ => {}
                    },
                    RunStep::Waiting if cancelled => {
                        (m.step, m.reason) = (RunStep::Skipped, "the run was cancelled".into())
                    }
                    _ => {}
                }
            }
            // The next machines, as far as the budgets let them, asked together (one slow BMC
            // holds up no other).
            if !paused && !cancelled {
                let decided = time::OffsetDateTime::now_utc();
                let mut going = Vec::new();
                let others = self.other_runs(job).await?;
                let mut budget = runs::budget(&run.machines, &others, &input.pacing, input.action, decided);
                let mut held = Vec::new();
                for (i, m) in run.machines.iter().enumerate().filter(|(_, m)| m.step == RunStep::Waiting) {
                    match budget.holds(&m.group) {
                        Some(why) => held.push((i, why.words())),
                        None => {
                            budget.take(&m.group);
                            going.push(i);
                        }
                    }
                }
                for (i, why) in held {
                    run.machines[i].reason = why;
                }
                for i in &going {
                    let m = &mut run.machines[*i];
                    (m.step, m.sent_at) = (RunStep::Sent, crate::db::timestamp(decided));
                }
                // Kept before anything is sent: a replica that takes the run over never asks again.
                if !going.is_empty() {
                    let total = run.machines.len() as u32;
                    self.jobs.report(job, 0, total, &serde_json::to_string(run).or_internal()?).await?;
                }
                let asked = futures::future::join_all(
                    going.iter().map(|i| self.send_in_run(who, &run.machines[*i], input.action)),
                )
                .await;
                for (i, (step, reason)) in going.into_iter().zip(asked) {
                    // The window counts from when the request went out, which a slow BMC delays.
                    let m = &mut run.machines[i];
                    (m.step, m.reason, m.sent_at) = (step, reason, crate::db::now());
                }
            }
            run.largest_burst = runs::largest_burst(&run.machines, &input.pacing);
            let open =
                run.machines.iter().any(|m| matches!(m.step, RunStep::Waiting | RunStep::Sent | RunStep::Booting));
            run.state = match (open, cancelled, paused) {
                (false, true, _) => "cancelled",
                (false, false, _) => "succeeded",
                (true, _, true) => "paused",
                (true, ..) => "running",
            }
            .into();
            let total = run.machines.len() as u32;
            let finished = total
                - run
                    .machines
                    .iter()
                    .filter(|m| matches!(m.step, RunStep::Waiting | RunStep::Sent | RunStep::Booting))
                    .count() as u32;
            if !open {
                return Ok(());
            }
            if reported.elapsed() >= Duration::from_millis(500) {
                self.jobs.report(job, finished, total, &serde_json::to_string(run).or_internal()?).await?;
                reported = tokio::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The power runs beside `job`, as they last reported, whose budgets it shares: those running,
    /// and those that ended within the longest budget window (their sends still count).
    async fn other_runs(&self, job: &str) -> Result<Vec<PowerRun>, AppError> {
        let results = self.jobs.recent_results(POWER_RUN, job, Duration::from_secs(3600)).await?;
        Ok(results.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    /// Asks one machine of a run for `action` (on its timeline, followed as a single action is):
    /// where it stands then.
    async fn send_in_run(&self, who: &Principal, machine: &RunMachine, action: PowerAction) -> (RunStep, String) {
        let asked = async {
            // As whoever started it may act now, on the machine's cluster now.
            self.machine(who, machine.id, Permission::PowerMachines).await?;
            let stored = self.bmc_to_act_on(machine.id, &machine.mac).await?;
            let access = self.access(&stored)?;
            self.note(&machine.mac, &format!("{} requested by {} (power run)", action.words(), who.actor())).await;
            let sent = self.send(&access, &stored.system, action).await.map_err(words)?;
            let _ = store::note_power(&self.db, machine.id, &sent.status).await;
            if action == PowerAction::On && sent.was == PowerState::On {
                let _ = store::note_power(&self.db, machine.id, &status_now(PowerState::On, "")).await;
                return Ok((RunStep::Done, "already on".to_string()));
            }
            let said = sent.status.reason.clone();
            self.follow(machine.mac.clone(), machine.id, access, stored.system.clone(), action, sent);
            Ok::<(RunStep, String), AppError>((RunStep::Sent, said))
        };
        match asked.await {
            Ok(now) => now,
            Err(e) => {
                self.note(&machine.mac, &format!("{} failed: {e}", action.words())).await;
                (RunStep::Failed, e.to_string())
            }
        }
    }
}

#[async_trait::async_trait]
impl PowerService for Power {
    /// A machine's BMC, or `None`.
    async fn bmc(&self, who: &Principal, id: i64) -> Result<Option<Bmc>, AppError> {
        self.machine(who, id, Permission::ViewMachines).await?;
        Ok(store::bmc(&self.db, id).await.or_internal()?.map(|stored| shown(&stored)))
    }

    /// Sets a machine's BMC once it checks out: reachable, the credentials accepted, one system.
    async fn set_bmc(&self, who: &Principal, id: i64, input: BmcInput) -> Result<Bmc, AppError> {
        let event = Event::new("machine.bmc.set", "machine")
            .target(id, "")
            .summary(json!({ "url": input.url, "username": input.username, "verify_off": input.verify_off }));
        let result = async {
            let machine = self.machine(who, id, Permission::PowerMachines).await?;
            let invalid = |field: &str, message: String| AppError::Invalid {
                message: message.clone(),
                fields: vec![app::error::FieldError { field: field.into(), message }],
            };
            let (origin, system, username) = checked_fields(&input).map_err(|(field, m)| invalid(field, m))?;
            let username = username.as_str();
            let origin_text = origin.origin().ascii_serialization();
            let earlier = store::bmc(&self.db, id).await.or_internal()?;
            let trust = trust_given(input.verify_off, &input.ca_pem);
            let password = match (input.password.filter(|p| !p.is_empty()), &earlier) {
                (Some(password), _) => SecretString::from(password),
                // Kept only for the same BMC, user and trust: a password never follows a changed
                // address, nor goes where its certificate is checked less.
                (None, Some(earlier))
                    if parse_url(&earlier.url).is_ok_and(|(o, _)| o == origin)
                        && earlier.username == username
                        && trust_of(earlier) == trust =>
                {
                    self.access(earlier)?.password
                }
                (None, _) => return Err(invalid("password", "Give the BMC user's password.".into())),
            };
            let stored = StoredBmc {
                machine_id: id,
                url: match &system {
                    Some(path) => format!("{origin_text}{path}"),
                    None => origin_text.clone(),
                },
                username: username.to_string(),
                sealed_password: self.sealer.seal(&password, &password_place(id, &origin_text)),
                ca_pem: if input.verify_off { String::new() } else { input.ca_pem.trim().to_string() },
                verify_off: input.verify_off,
                system: String::new(),
                power: status_now(PowerState::Unknown, ""),
            };
            let access = BmcAccess { origin, username: stored.username.clone(), password, trust: trust_of(&stored) };
            let (system, power) = self.check(&access, system).await.map_err(|m| invalid("url", m))?;
            let stored = StoredBmc { system, power, ..stored };
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            store::put(&mut tx, &stored, &now()).await.or_internal()?;
            let summary = json!({ "mac": machine.mac, "url": stored.url, "username": stored.username,
                "verify_off": stored.verify_off, "system": stored.system });
            audit::append(&mut tx, who, event.clone().target(id, &machine.mac).summary(summary)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            let power = self.clone();
            let read = stored.clone();
            self.background.spawn(async move { power.read_hardware(read).await });
            Ok(shown(&stored))
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    /// Forgets a machine's BMC.
    async fn remove_bmc(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        let event = Event::new("machine.bmc.remove", "machine").target(id, "");
        let result = async {
            let machine = self.machine(who, id, Permission::PowerMachines).await?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            if !store::remove(&mut tx, id).await.or_internal()? {
                return Err(AppError::not_found(format!("Machine {} has no BMC.", machine.mac)));
            }
            audit::append(&mut tx, who, event.clone().target(id, &machine.mac)).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    /// Asks a machine's BMC for `action`, audited before it is sent, and follows it on the
    /// machine's timeline until the machine reaches the state asked for or [`Self::settle`]
    /// passes. Returns the power as the request left it.
    async fn act(&self, who: &Principal, id: i64, action: PowerAction) -> Result<PowerStatus, AppError> {
        let event = Event::new("machine.power", "machine").target(id, "").summary(json!({ "action": action }));
        let result = async {
            let machine = self.machine(who, id, Permission::PowerMachines).await?;
            let stored = self.bmc_to_act_on(id, &machine.mac).await?;
            let access = self.access(&stored)?;
            // The record first: a request that cannot be recorded is not sent.
            let event = event.clone().target(id, &machine.mac);
            audit::record(&self.db, who, event).await.or_internal()?;
            self.note(&machine.mac, &format!("{} requested by {}", action.words(), who.actor())).await;
            let sent = self.send(&access, &stored.system, action).await;
            match sent {
                Ok(sent) => {
                    let status = sent.status.clone();
                    let _ = store::note_power(&self.db, id, &status).await;
                    self.follow(machine.mac.clone(), id, access, stored.system.clone(), action, sent);
                    Ok(status)
                }
                Err(error) => {
                    self.note(&machine.mac, &format!("{} failed: {error}", action.words())).await;
                    Err(words(error))
                }
            }
        }
        .await;
        // Refusals before the request was recorded are recorded as such; a failure after it is
        // on the timeline, and the record says it was asked.
        match &result {
            Err(e) if matches!(e.status(), 401 | 403) => audit::settle(&self.db, who, event, result).await,
            _ => result,
        }
    }

    /// The plan of a power run: its order, when each machine is expected to go, and how long it
    /// is expected to take. Nothing is asked of any BMC.
    async fn plan_run(&self, who: &Principal, input: PowerRunInput) -> Result<PowerRunPlan, AppError> {
        let run = self.run_machines(who, &input).await?;
        let machines = run.fresh("").machines;
        let mut plan = runs::plan(run.action, &machines, &run.pacing);
        if runs::boots(run.action) {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            plan.boot_listener = self.provisioner.boots.load.measured(cores);
            plan.notes.push(runs::listener_note(&plan, &plan.boot_listener));
        }
        Ok(plan)
    }

    /// Starts a power run, audited (`machine.power.run`), as a durable job; its id.
    async fn start_run(&self, who: &Principal, input: PowerRunInput) -> Result<String, AppError> {
        let event =
            Event::new("machine.power.run", "job").summary(json!({ "action": input.action, "pacing": input.pacing }));
        let result = async {
            let run = self.run_machines(who, &input).await?;
            let text = serde_json::to_string(&run).or_internal()?;
            let job = self.jobs.start(POWER_RUN, who, "run", run.machines.len() as u32, &text).await?;
            let macs: Vec<&str> = run.machines.iter().take(20).map(|t| t.mac.as_str()).collect();
            let mut started = event.clone().target(&job, &job);
            started.summary["machines"] = json!(run.machines.len());
            started.summary["first_macs"] = json!(macs);
            // A run that cannot be recorded does not run (no replica takes a failed job over).
            if let Err(e) = audit::record(&self.db, who, started).await {
                let refused = crate::error::internal(e);
                let _ = self.jobs.fail(&job, &refused).await;
                return Err(refused);
            }
            self.run(who.clone(), job.clone(), run, None);
            Ok(job)
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    /// A power run as it stands, for whoever started it and admins.
    async fn power_run(&self, who: &Principal, job: &str) -> Result<PowerRun, AppError> {
        authorize(who, Permission::ViewMachines)?;
        let stored = self.jobs.get(job, who).await?;
        if stored.kind != POWER_RUN.name {
            return Err(AppError::not_found("This power run is not known (it expired, or it is not yours)."));
        }
        let input: Option<RunInput> = serde_json::from_str(&stored.input).ok();
        let mut run: PowerRun = serde_json::from_str(&stored.result)
            .ok()
            .or_else(|| input.map(|i| i.fresh(&stored.id)))
            .unwrap_or_default();
        run.job = stored.id;
        run.resumed = stored.resumed;
        run.error = stored.error.map(|e| e.to_string());
        run.state = match stored.state {
            crate::jobs::JobState::Failed => "failed".into(),
            crate::jobs::JobState::Running if run.state.is_empty() => "running".into(),
            _ => run.state,
        };
        Ok(run)
    }

    /// Pauses a power run (what is under way goes on; nothing new starts), or resumes it.
    async fn pause_run(&self, who: &Principal, job: &str, paused: bool) -> Result<(), AppError> {
        let action = if paused { "machine.power.run.pause" } else { "machine.power.run.resume" };
        self.ask_run(who, job, Event::new(action, "job").target(job, job), |jobs| async move {
            jobs.request_pause(job, who, paused).await
        })
        .await
    }

    /// Cancels a power run: machines not yet asked are skipped; those asked go on.
    async fn start_discovery(&self, who: &Principal, input: DiscoveryInput) -> Result<String, AppError> {
        self.start_discovery_job(who, input).await
    }

    async fn discovery(&self, who: &Principal, job: &str) -> Result<Discovery, AppError> {
        self.discovery_of(who, job).await
    }

    async fn import_discovered(&self, who: &Principal, job: &str, dry_run: bool) -> Result<ImportReport, AppError> {
        self.import_discovery(who, job, dry_run).await
    }

    async fn cancel_run(&self, who: &Principal, job: &str) -> Result<(), AppError> {
        let event = Event::new("machine.power.run.cancel", "job").target(job, job);
        self.ask_run(who, job, event, |jobs| async move { jobs.request_cancel(job, who).await }).await
    }

    /// A machine's hardware as last read, or `None` before its first read.
    async fn hardware(&self, who: &Principal, id: i64) -> Result<Option<HardwareRecord>, AppError> {
        self.machine(who, id, Permission::ViewMachines).await?;
        store::hardware(&self.db, id).await.or_internal()
    }

    /// Forgets a machine's hardware changes, once a person has seen them; how many there were.
    async fn acknowledge_hardware(&self, who: &Principal, id: i64) -> Result<usize, AppError> {
        let event = Event::new("machine.hardware.acknowledge", "machine").target(id, "");
        let result = async {
            let machine = self.machine(who, id, Permission::PowerMachines).await?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let Some(count) = store::acknowledge_changes(&mut tx, id).await.or_internal()? else {
                return Err(AppError::not_found(format!("Machine {}'s hardware has not been read.", machine.mac)));
            };
            let event = event.clone().target(id, &machine.mac).summary(json!({ "changes": count }));
            audit::append(&mut tx, who, event).await.or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(count)
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }
}

/// Machines' power as last read, for the machine list.
pub struct InventoryPower {
    pub db: Database,
    pub sealer: Arc<Sealer>,
}

/// What an imported BMC's power says until the refresh has checked it.
const NOT_CHECKED: &str = "imported; checked at the next power refresh";

/// How long an imported BMC whose check failed waits before it is checked again.
const IMPORTED_RETRY: time::Duration = time::Duration::minutes(10);

#[async_trait::async_trait]
impl crate::machines::MachinePower for InventoryPower {
    async fn power_of(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::BTreeMap<String, PowerStatus>, crate::error::Error> {
        Ok(store::power_of(&self.db, ids).await?)
    }

    fn check_bmc(&self, bmc: &BmcInput) -> Result<(), String> {
        checked_fields(bmc).map_err(|(_, message)| message)?;
        match &bmc.password {
            Some(password) if !password.is_empty() => Ok(()),
            _ => Err("give the BMC user's password (bmc_password).".into()),
        }
    }

    async fn add_bmcs(&self, tx: &mut AnyConnection, bmcs: &[(i64, BmcInput)]) -> Result<(), crate::error::Error> {
        let at = now();
        for (id, input) in bmcs {
            let (origin, system, username) = checked_fields(input).map_err(|(_, m)| AppError::invalid(m))?;
            let origin = origin.origin().ascii_serialization();
            let password = SecretString::from(input.password.clone().unwrap_or_default());
            let stored = StoredBmc {
                machine_id: *id,
                url: format!("{origin}{}", system.unwrap_or_default()),
                username,
                sealed_password: self.sealer.seal(&password, &password_place(*id, &origin)),
                ca_pem: String::new(),
                verify_off: input.verify_off,
                system: String::new(),
                power: status_now(PowerState::Unknown, NOT_CHECKED),
            };
            store::put(tx, &stored, &at).await?;
        }
        Ok(())
    }
}

fn trust_of(stored: &StoredBmc) -> BmcTrust {
    match (stored.verify_off, stored.ca_pem.is_empty()) {
        (true, _) => BmcTrust::Unverified,
        (false, true) => BmcTrust::System,
        (false, false) => BmcTrust::Ca(stored.ca_pem.clone()),
    }
}

fn power_of(system: &Value) -> PowerState {
    system["PowerState"].as_str().map_or(PowerState::Unknown, PowerState::from_redfish)
}

/// `Ok` for a 2xx, else what the BMC refused, in words.
fn refused(access: &BmcAccess, status: StatusCode, what: &str) -> Result<(), BmcError> {
    if status.is_success() {
        return Ok(());
    }
    Err(BmcError::Refused(access.origin.origin().ascii_serialization(), format!("HTTP {} to {what}", status.as_u16())))
}

/// A stored BMC as people see it.
fn shown(stored: &StoredBmc) -> Bmc {
    let mut warnings = Vec::new();
    if stored.verify_off {
        warnings
            .push("Its certificate is not checked: anyone between Pangea and the BMC could read its password.".into());
    }
    if stored.url.starts_with("http://") {
        warnings.push("It is reached over plain HTTP: its password crosses the network readable.".into());
    }
    Bmc {
        url: stored.url.clone(),
        username: stored.username.clone(),
        has_ca: !stored.ca_pem.is_empty(),
        verify_off: stored.verify_off,
        system: stored.system.clone(),
        power: stored.power.clone(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bmc_url_is_an_origin_with_at_most_one_systems_path() {
        let (origin, system) = parse_url("https://10.0.0.10").unwrap();
        assert_eq!((origin.as_str(), system), ("https://10.0.0.10/", None));
        let (origin, system) = parse_url("https://bmc.example:8443/redfish/v1/Systems/abc/").unwrap();
        assert_eq!(
            (origin.as_str(), system.as_deref()),
            ("https://bmc.example:8443/", Some("/redfish/v1/Systems/abc"))
        );
        assert_eq!(parse_url("https://bmc/redfish/v1/").unwrap().1, None);
        for bad in [
            "bmc.example",
            "ftp://bmc",
            "https://root:calvin@bmc",
            "https://bmc/x",
            "https://bmc/redfish/v1/Systems/a/b",
            "https://bmc?x=1",
            "http://169.254.169.254",
            "https://[fe80::1]",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
