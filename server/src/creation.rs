//! Cluster creation: a cluster template (what a person asks for) becomes machines that install,
//! join and answer as a Kubernetes cluster Pangea registers.
//!
//! Applying a template checks it against the inventory ([`Creation::preview`]), then writes in
//! one transaction, with its audit record: the creation (template, machines, the PKI sealed), the
//! machines' provisioner profiles, groups and Butane configs (install, then installed), their
//! sealed secret files, the machines taken into the cluster, and the `cluster.create` job. The
//! job ([`job`]) powers the machines on through their BMCs (boot from network once), follows
//! each one through the boot listener and, once its control plane answers, sets the cluster up
//! for Pangea and registers it ([`register`]), approves its kubelets' certificates
//! ([`approval`]), and ends when every node is Ready. See docs/clusters.md.

pub mod approval;
pub mod http;
pub mod job;
pub mod monitoring;
pub mod pki;
pub mod register;
pub mod reinstall;
pub mod render;
mod store;
pub mod template;

use crate::audit::Event;
use crate::db::Database;
use crate::error::OrInternal;
use crate::jobs::{JobKind, Jobs};
use crate::machines::Machines;
use crate::secrets::Sealer;
use app::access::{Permission, Principal, authorize};
use app::clusters::creation::{ClusterCreation, CreationPreview, PlannedNode, TemplateChange};
use app::error::AppError;
use app::machines::ssr::MachineService;
use app::machines::{Machine, MachineQuery};
use app::provisioning::{Catalog, Group, NetBoot, Profile, TemplateFile, TemplateKind};
use render::{NodeSpec, Role};
use secrecy::{ExposeSecret, SecretString};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use template::{ClusterTemplate, NodeOs, Selection};

/// The most machines one cluster is created with.
pub const MAX_MACHINES: usize = 1000;

/// The creation job: from power-on to every node Ready.
pub const CREATE_JOB: JobKind = JobKind { name: "cluster.create" };

/// Which machines a template takes, and what stands in the way of creating it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub controllers: Vec<Machine>,
    pub workers: Vec<Machine>,
    /// Each in words, naming the machine; creation waits until there are none.
    pub problems: Vec<String>,
}

/// How the creation job paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How often it looks at the machines and the cluster.
    pub tick: Duration,
    /// How long a machine may stay in one step before its stall is said in words.
    pub stall: Duration,
    /// How long a creation may take before it fails, naming what each machine waits for.
    pub deadline: Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { tick: Duration::from_secs(3), stall: Duration::from_secs(300), deadline: Duration::from_secs(2 * 3600) }
    }
}

#[derive(Clone)]
pub struct Creation {
    db: Database,
    machines: Arc<Machines>,
    sealer: Arc<Sealer>,
    provisioner: Arc<crate::provisioner::Provisioner>,
    power: crate::power::Power,
    clusters: Arc<crate::clusters::Clusters>,
    jobs: Jobs,
    background: crate::background::Background,
    /// Where machines reach the boot listener.
    boot_url: String,
    pace: Pace,
    /// Whether this process runs the creation jobs it starts (the command line leaves them to
    /// the server, which takes them over).
    runs_jobs: bool,
}

/// One machine of a creation, as kept with it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredNode {
    pub machine: i64,
    #[serde(flatten)]
    pub spec: NodeSpec,
    /// Whether Pangea powers it (it had a BMC when the creation was applied).
    pub powered: bool,
    /// The template it was last installed with, where a reinstall made it differ from the
    /// creation's (see [`reinstall`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
}

/// What a machine's secret link answers. Links are at most 64 characters of token and 256 of
/// path; longer ones are not looked up.
pub enum SecretAnswer {
    /// The file, fetched now for the first time.
    Served { mac: String, text: SecretString },
    /// Nothing, and why (for the boot event; the machine is named when the link is one of its).
    Refused { mac: Option<String>, reason: String },
}

/// Where a secret file's seal is bound: its cluster, link and path, so no sealed value can be
/// served in another's place.
fn secret_place(cluster: &str, token: &str, path: &str) -> String {
    format!("cluster-secret:{cluster}:{token}:{path}")
}

impl Creation {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Database,
        machines: Arc<Machines>,
        sealer: Arc<Sealer>,
        provisioner: Arc<crate::provisioner::Provisioner>,
        power: crate::power::Power,
        clusters: Arc<crate::clusters::Clusters>,
        jobs: Jobs,
        background: crate::background::Background,
        boot_url: String,
    ) -> Creation {
        Creation {
            db,
            machines,
            sealer,
            provisioner,
            power,
            clusters,
            jobs,
            background,
            boot_url,
            pace: Pace::default(),
            runs_jobs: true,
        }
    }

    /// Leaves the creation jobs it starts to the running server (for the command line).
    pub fn leaving_jobs_to_the_server(mut self) -> Creation {
        self.runs_jobs = false;
        self
    }

    /// Where this process's background work runs.
    pub fn background(&self) -> crate::background::Background {
        self.background.clone()
    }

    pub fn with_pace(mut self, pace: Pace) -> Creation {
        self.pace = pace;
        self
    }

    /// Seals and keeps `node`'s secret files (`render::secrets_of`), each to be fetched once
    /// through its link; audited (the paths, never the link) in the same transaction.
    pub async fn keep_secrets(
        &self,
        who: &Principal,
        cluster: &str,
        node: &render::NodeSpec,
        secrets: &[(String, String)],
    ) -> Result<(), AppError> {
        allow_change(who)?;
        let token = &node.secrets_token;
        let sealed = self.seal_secrets(cluster, node, secrets);
        let mac = node.mac.to_string();
        let paths: Vec<&str> = secrets.iter().map(|(path, _)| path.as_str()).collect();
        let event = Event::new("cluster.secret.keep", "machine")
            .target(&mac, &node.name)
            .summary(serde_json::json!({ "cluster": cluster, "paths": paths }));
        let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
        store::insert_secrets(&mut tx, cluster, &mac, token, &sealed).await.or_internal()?;
        crate::audit::append(&mut tx, who, event).await.or_internal()?;
        tx.commit().await.or_internal()
    }

    /// Answers a machine's secret link: the file the first time, and nothing after, each fetch
    /// audited (the first in the transaction that marks it fetched). A link that does not exist
    /// costs one indexed read, and takes no lock: anyone on the boot network may ask.
    pub async fn fetch_secret(&self, token: &str, path: &str, from: Option<IpAddr>) -> Result<SecretAnswer, AppError> {
        let no_such = || Ok(SecretAnswer::Refused { mac: None, reason: "no such secret link".into() });
        if token.len() > 64 || path.len() > 256 {
            return no_such();
        }
        let who = Principal::anonymous(from, None);
        let from_text = from.map(|ip| ip.to_string()).unwrap_or_default();
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let Some(stored) = store::secret(&mut conn, token, path).await.or_internal()? else {
            return no_such();
        };
        let booted_from = store::boot_addresses(&mut conn, &stored.mac, &stored.created_at).await.or_internal()?;
        drop(conn);
        let event =
            Event::new("cluster.secret.fetch", "machine").target(&stored.mac, path).summary(serde_json::json!({
                "cluster": stored.cluster, "path": path, "from": from_text,
            }));
        let refuse = async |earlier: String| {
            let reason = format!("{path} was fetched already, {earlier}: a secret link answers once");
            let refused = AppError::Forbidden { message: reason.clone() };
            crate::audit::record_refusal(&self.db, &who, event.clone().failed(&refused)).await;
            Ok(SecretAnswer::Refused { mac: Some(stored.mac.clone()), reason })
        };
        if let Some((at, by)) = &stored.fetched {
            return refuse(format!("at {at} from {by}")).await;
        }
        // Only to the one address the machine was answered at since the cluster was applied:
        // someone else on the boot network who names its MAC makes it two, and then its links
        // answer no one.
        if booted_from != [from_text.as_str()] {
            let mac = &stored.mac;
            let reason = match &booted_from[..] {
                [] => format!("{path} was asked for before {mac} booted from Pangea"),
                [booted] => format!(
                    "{path} was asked for from {from_text}, but {mac} boots from {booted}: a secret link answers \
                     the machine's address only (give it a fixed DHCP address)"
                ),
                several => format!(
                    "{path} was not given: {mac} was answered at more than one address since the cluster was \
                     applied ({}), so its secret links answer none; check what else uses its MAC, then destroy \
                     the cluster and create it again",
                    several.join(", ")
                ),
            };
            let refused = AppError::Forbidden { message: reason.clone() };
            crate::audit::record_refusal(&self.db, &who, event.clone().failed(&refused)).await;
            return Ok(SecretAnswer::Refused { mac: Some(stored.mac.clone()), reason });
        }
        let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
        if !store::mark_fetched(&mut tx, token, path, &from_text).await.or_internal()? {
            drop(tx);
            return refuse("just now, by another request".into()).await;
        }
        let text = self.sealer.open(&stored.sealed, &secret_place(&stored.cluster, token, path)).map_err(|e| {
            crate::error::internal(format!("a sealed secret of {} cannot be opened: {e}", stored.cluster))
        })?;
        crate::audit::append(&mut tx, &who, event.clone()).await.or_internal()?;
        tx.commit().await.or_internal()?;
        Ok(SecretAnswer::Served { mac: stored.mac, text })
    }

    /// The machines `selection` names, in MAC order, but for those in `taken` (another role's);
    /// those it names that are not machines, or are taken, are problems.
    async fn resolve(
        &self,
        who: &Principal,
        role: &str,
        selection: &Selection,
        taken: &[Machine],
        problems: &mut Vec<String>,
    ) -> Result<Vec<Machine>, AppError> {
        let is_taken = |m: &Machine| taken.iter().any(|t| t.id == m.id);
        let mut found = Vec::new();
        let (search, class, count) = match selection {
            Selection::Machines(macs) => {
                let wanted: Vec<String> = macs.iter().map(ToString::to_string).collect();
                let ids = self.machines.ids_of_macs(&wanted).await?;
                for mac in &wanted {
                    match ids.get(mac) {
                        Some(id) => {
                            let machine = self.machines.get(who, *id).await?;
                            if is_taken(&machine) {
                                problems.push(format!("{role}: {mac} is a controller too; a machine takes one role"));
                            } else {
                                found.push(machine);
                            }
                        }
                        None => problems.push(format!("{role}: {mac} is not a machine of the inventory; add it first")),
                    }
                }
                found.sort_by(|a, b| a.mac.cmp(&b.mac));
                return Ok(found);
            }
            Selection::Search { search, count } => (Some(search.clone()), None, *count),
            Selection::Class { class, count } => (None, Some(class.to_string()), *count),
        };
        let mut query = MachineQuery {
            search,
            class,
            sort: app::machines::SortKey::Mac,
            limit: Some(MachineQuery::MAX_LIMIT),
            ..Default::default()
        };
        loop {
            let page = self.machines.list(who, query.clone()).await?;
            found.extend(page.items.into_iter().filter(|m| !is_taken(m)));
            match page.next {
                Some(next) if found.len() <= MAX_MACHINES => query.after = Some(next),
                _ => break,
            }
        }
        if let Some(count) = count.map(|c| c as usize) {
            if found.len() < count {
                problems.push(format!("{role}: {count} wanted, but only {} machines match", found.len()));
            }
            found.truncate(count);
        }
        Ok(found)
    }

    /// Resolves `template` against the inventory as `who` sees it.
    pub async fn plan(&self, who: &Principal, template: &ClusterTemplate) -> Result<Plan, AppError> {
        let mut problems = Vec::new();
        let controllers = self.resolve(who, "controllers", &template.controllers, &[], &mut problems).await?;
        let workers = self.resolve(who, "workers", &template.workers, &controllers, &mut problems).await?;
        if controllers.len() + workers.len() > MAX_MACHINES {
            return Err(AppError::invalid(format!(
                "A cluster is created with at most {MAX_MACHINES} machines; this template takes {}.",
                controllers.len() + workers.len()
            )));
        }
        if ![1, 3, 5].contains(&controllers.len()) {
            problems.push(format!(
                "controllers: {} machines; etcd keeps quorum with 1, 3 or 5 control-plane machines",
                controllers.len()
            ));
        }
        let mut names = std::collections::HashMap::new();
        for machine in controllers.iter().chain(&workers) {
            match machine.hostname.as_deref() {
                None => problems
                    .push(format!("{} has no host name: its node needs one (set it on the machine)", machine.mac)),
                Some(name) => {
                    if let Some(other) = names.insert(name.to_string(), machine.mac.clone()) {
                        problems.push(format!(
                            "{} and {other} have the same host name {name}: node names are unique",
                            machine.mac
                        ));
                    }
                }
            }
            if let Some(cluster) = machine.cluster.as_deref().filter(|c| *c != template.name.as_str()) {
                problems.push(format!("{} belongs to the cluster {cluster}; free it first", machine.mac));
            }
        }
        Ok(Plan { controllers, workers, problems })
    }
}

/// Who may apply and destroy templates: they register clusters, write provisioning and take
/// machines (and power them, where they have BMCs).
fn allow_change(who: &Principal) -> Result<(), AppError> {
    authorize(who, Permission::ManageClusters)?;
    authorize(who, Permission::ChangeProvisioning)?;
    authorize(who, Permission::ChangeMachines)
}

fn parse_template(text: &str) -> Result<ClusterTemplate, AppError> {
    ClusterTemplate::parse(text).map_err(|errors| {
        AppError::invalid(format!("The template cannot be read. Fix these and apply it again:\n{errors}"))
    })
}

/// A creation's machine ids and profile, group and template ids: the MAC names them, so they stay
/// within the provisioner's 128 characters.
fn generated_id(cluster: &str, node: &NodeSpec) -> String {
    format!("{cluster}-{}", node.mac.to_string().replace(':', "-"))
}

/// The install profile's network boot: the OS's live system from Pangea's assets, told where its
/// config is (Typhoon's "cached install" profiles).
fn install_boot(os: NodeOs, boot_url: &str) -> NetBoot {
    let config = format!("{boot_url}/ignition?uuid=${{uuid}}&mac=${{mac:hexhyp}}");
    match os {
        NodeOs::Flatcar => NetBoot {
            kernel: "/assets/flatcar/current/flatcar_production_pxe.vmlinuz".into(),
            initrd: vec!["/assets/flatcar/current/flatcar_production_pxe_image.cpio.gz".into()],
            args: vec![
                "initrd=flatcar_production_pxe_image.cpio.gz".into(),
                format!("flatcar.config.url={config}"),
                "flatcar.first_boot=yes".into(),
                "console=tty0".into(),
                "console=ttyS0".into(),
            ],
        },
        NodeOs::FedoraCoreOs => NetBoot {
            kernel: "/assets/fedora-coreos/fedora-coreos-live-kernel-x86_64".into(),
            initrd: vec![
                "/assets/fedora-coreos/fedora-coreos-live-initramfs.x86_64.img".into(),
                "/assets/fedora-coreos/fedora-coreos-live-rootfs.x86_64.img".into(),
            ],
            args: vec![
                "initrd=main".into(),
                format!("coreos.live.rootfs_url={boot_url}/assets/fedora-coreos/fedora-coreos-live-rootfs.x86_64.img"),
                "ignition.firstboot".into(),
                "ignition.platform.id=metal".into(),
                format!("ignition.config.url={config}"),
                "console=tty0".into(),
                "console=ttyS0".into(),
            ],
        },
    }
}

/// The provisioner profiles, groups and configs of a cluster's machines: per machine, an install
/// profile (network boot, install config) for its MAC, and an installed profile (its installed
/// config, no boot) for its MAC with `os=installed`.
pub fn catalog_of(cluster: &render::Cluster) -> Catalog {
    let mut catalog = Catalog::default();
    for node in cluster.nodes {
        add_node_catalog(&mut catalog, cluster, node);
    }
    catalog
}

/// Adds `node`'s entries of [`catalog_of`] to `catalog`: its install and installed templates,
/// profiles and groups.
fn add_node_catalog(catalog: &mut Catalog, cluster: &render::Cluster, node: &NodeSpec) {
    let name = cluster.template.name.as_str();
    let id = generated_id(name, node);
    let install = format!("{id}-install");
    let mac = node.mac.to_string();
    catalog.templates.push(TemplateFile {
        kind: TemplateKind::Ignition,
        id: format!("{install}.yaml"),
        content: render::install(cluster, node),
    });
    catalog.templates.push(TemplateFile {
        kind: TemplateKind::Ignition,
        id: format!("{id}.yaml"),
        content: render::installed(cluster, node),
    });
    catalog.profiles.push(Profile {
        id: install.clone(),
        name: format!("{name}: install {} on {}", cluster.template.os.as_str(), node.name),
        boot: install_boot(cluster.template.os, cluster.boot_url),
        ignition_id: format!("{install}.yaml"),
        ..Profile::default()
    });
    catalog.profiles.push(Profile {
        id: id.clone(),
        name: format!("{name}: {} {} (installed)", node.role.as_str(), node.name),
        ignition_id: format!("{id}.yaml"),
        ..Profile::default()
    });
    catalog.groups.push(Group {
        id: install.clone(),
        name: format!("{name}: install {}", node.name),
        profile: install,
        selector: [("mac".to_string(), mac.clone())].into(),
        metadata: Default::default(),
    });
    catalog.groups.push(Group {
        id: id.clone(),
        name: format!("{name}: {} installed", node.name),
        profile: id,
        selector: [("mac".to_string(), mac), ("os".to_string(), "installed".to_string())].into(),
        metadata: Default::default(),
    });
}

/// Only the ids of [`catalog_of`]'s entries: what destroy removes, with no need to render.
fn generated_ids(cluster: &str, nodes: &[NodeSpec]) -> Catalog {
    let mut catalog = Catalog::default();
    for node in nodes {
        let id = generated_id(cluster, node);
        for id in [format!("{id}-install"), id] {
            catalog.templates.push(TemplateFile {
                kind: TemplateKind::Ignition,
                id: format!("{id}.yaml"),
                content: String::new(),
            });
            catalog.profiles.push(Profile { id: id.clone(), ..Profile::default() });
            catalog.groups.push(Group { id, ..Group::default() });
        }
    }
    catalog
}

/// A machine's address in the cluster: its `address` label, else (for the only controller) the
/// API server's; otherwise nodes reach it by its host name.
fn address_of(machine: &Machine, role: Role, template: &ClusterTemplate, controllers: usize) -> Option<IpAddr> {
    machine
        .labels
        .get("address")
        .and_then(|a| a.parse().ok())
        .or_else(|| (role == Role::Controller && controllers == 1).then_some(template.api_server.address))
}

/// A machine of a creation as its kubelet's certificate requests are judged: its name, its
/// addresses (its own, and those its secret links were fetched from) and its bootstrap token.
fn known_machine(node: &StoredNode, fetched: Option<&store::Fetches>, pki: &pki::ClusterPki) -> approval::KnownMachine {
    let mut addresses: Vec<IpAddr> = node.spec.address.into_iter().collect();
    addresses.extend(fetched.iter().flat_map(|f| f.from.iter()).filter_map(|a| a.parse::<IpAddr>().ok()));
    approval::KnownMachine {
        name: node.spec.name.clone(),
        addresses,
        bootstrap_token_id: pki.bootstrap_tokens.get(&node.spec.name).map(|t| t.id.clone()).unwrap_or_default(),
    }
}

/// Where a creation's PKI is sealed: bound to its cluster.
fn pki_place(cluster: &str) -> String {
    format!("cluster-pki:{cluster}")
}

fn secret_token() -> String {
    use rand::Rng as _;
    format!("{:032x}", rand::rng().random::<u128>())
}

impl Creation {
    fn not_created(name: &str) -> AppError {
        AppError::not_found(format!("Pangea did not create a cluster named {name}."))
    }

    /// A creation, its template and its machines.
    async fn load(&self, name: &str) -> Result<(store::CreationRow, ClusterTemplate, Vec<StoredNode>), AppError> {
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let row = store::creation(&mut conn, name).await.or_internal()?.ok_or_else(|| Self::not_created(name))?;
        let template = ClusterTemplate::parse(&row.template)
            .map_err(|e| crate::error::internal(format!("the stored template of {name} cannot be read: {e}")))?;
        let nodes: Vec<StoredNode> = serde_json::from_str(&row.nodes).or_internal()?;
        Ok((row, template, nodes))
    }

    fn open_pki(&self, row: &store::CreationRow) -> Result<pki::ClusterPki, AppError> {
        let text = self
            .sealer
            .open(&row.sealed_pki, &pki_place(&row.name))
            .map_err(|e| crate::error::internal(format!("the sealed PKI of {} cannot be opened: {e}", row.name)))?;
        serde_json::from_str(text.expose_secret()).or_internal()
    }

    /// What applying `text` would do: the machines it takes, what stands in the way, and what
    /// it would change of the cluster created from it before. Asks nothing of any machine.
    pub async fn preview(&self, who: &Principal, text: &str) -> Result<CreationPreview, AppError> {
        self.checked(who, text).await.map(|(_, _, preview)| preview)
    }

    /// A template read and planned, with what applying it would do.
    async fn checked(&self, who: &Principal, text: &str) -> Result<(ClusterTemplate, Plan, CreationPreview), AppError> {
        allow_change(who)?;
        let template = parse_template(text)?;
        let name = template.name.as_str().to_string();
        let plan = self.plan(who, &template).await?;
        let mut problems = plan.problems.clone();
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let before = store::creation(&mut conn, &name).await.or_internal()?;
        drop(conn);
        let changes = match &before {
            Some(row) => ClusterTemplate::parse(&row.template)
                .map(|t| t.changes(&template))
                .unwrap_or_default()
                .into_iter()
                .map(|c| TemplateChange { field: c.field.into(), before: c.before, after: c.after })
                .collect(),
            None => {
                if self.clusters.names().contains(&name) {
                    problems.push(format!("a cluster named {name} is registered already: choose another name"));
                }
                Vec::new()
            }
        };
        let ids: Vec<i64> = plan.controllers.iter().chain(&plan.workers).map(|m| m.id).collect();
        let with_bmc = self.power.machines_with_bmc(&ids).await?;
        let planned = |role: Role| {
            let with_bmc = &with_bmc;
            move |m: &Machine| PlannedNode {
                machine: m.id,
                mac: m.mac.clone(),
                name: m.hostname.clone().unwrap_or_default(),
                role: role.as_str().into(),
                powered_by_pangea: with_bmc.contains(&m.mac),
            }
        };
        let mut nodes: Vec<PlannedNode> = plan.controllers.iter().map(planned(Role::Controller)).collect();
        nodes.extend(plan.workers.iter().map(planned(Role::Worker)));
        let preview =
            CreationPreview { template: template.to_yaml(), nodes, problems, exists: before.is_some(), changes };
        Ok((template, plan, preview))
    }

    /// Applies a template: writes everything its machines need, takes them into the cluster, and
    /// starts the creation job, in one transaction with its audit record; whether it did. The
    /// same template again answers the creation as it stands; a changed one is refused with its
    /// changes.
    pub async fn create(&self, who: &Principal, text: &str) -> Result<(bool, ClusterCreation), AppError> {
        let event = Event::new("cluster.creation.start", "cluster");
        let started = async {
            let (template, plan, preview) = self.checked(who, text).await?;
            let name = template.name.as_str().to_string();
            if preview.exists {
                if preview.changes.is_empty() {
                    return Ok((name, None));
                }
                let changes: Vec<String> =
                    preview.changes.iter().map(|c| format!("{}: {} → {}", c.field, c.before, c.after)).collect();
                return Err(AppError::Conflict {
                    message: format!(
                        "The cluster {name} was created from another template ({}). Pangea does not change a \
                         created cluster from its template yet: destroy it and create it again, or apply the \
                         template it was created from.",
                        changes.join("; ")
                    ),
                    fields: vec![],
                });
            }
            if !preview.problems.is_empty() {
                return Err(AppError::invalid(format!(
                    "The cluster cannot be created yet:\n{}",
                    preview.problems.join("\n")
                )));
            }
            let machines: Vec<(&Machine, Role)> = plan
                .controllers
                .iter()
                .map(|m| (m, Role::Controller))
                .chain(plan.workers.iter().map(|m| (m, Role::Worker)))
                .collect();
            let powered: std::collections::HashSet<String> =
                preview.nodes.iter().filter(|n| n.powered_by_pangea).map(|n| n.mac.clone()).collect();
            let mut nodes = Vec::new();
            for (machine, role) in &machines {
                let mac = machine.mac.parse().map_err(|e| crate::error::internal(format!("{e}")))?;
                nodes.push(StoredNode {
                    machine: machine.id,
                    spec: NodeSpec {
                        role: *role,
                        name: machine.hostname.clone().unwrap_or_default(),
                        mac,
                        address: address_of(machine, *role, &template, plan.controllers.len()),
                        secrets_token: secret_token(),
                    },
                    powered: powered.contains(&machine.mac),
                    installed: None,
                });
            }
            if !powered.is_empty() {
                authorize(who, Permission::PowerMachines)?;
            }
            let specs: Vec<NodeSpec> = nodes.iter().map(|n| n.spec.clone()).collect();
            let controllers: Vec<pki::ControllerName> = specs
                .iter()
                .filter(|n| n.role == Role::Controller)
                .map(|n| pki::ControllerName { name: n.name.clone(), address: n.address })
                .collect();
            let names: Vec<String> = specs.iter().map(|n| n.name.clone()).collect();
            let request = pki::PkiRequest {
                api_name: template.api_server.name.as_str(),
                api_address: template.api_server.address,
                api_port: template.api_server.port,
                services: template.services,
                controllers: &controllers,
                nodes: &names,
            };
            let pki = pki::ClusterPki::generate(&request).map_err(|e| crate::error::internal(e.to_string()))?;
            let cluster = render::Cluster { template: &template, pki: &pki, nodes: &specs, boot_url: &self.boot_url };
            let catalog = catalog_of(&cluster);
            let pki_text = SecretString::from(serde_json::to_string(&pki).or_internal()?);
            self.provisioner.check_generated(&catalog).await?;
            let secrets: Vec<Vec<(String, String)>> = specs.iter().map(|n| render::secrets_of(&cluster, n)).collect();
            let sealed: Vec<Vec<store::SealedSecret>> =
                specs.iter().zip(&secrets).map(|(n, s)| self.seal_secrets(&name, n, s)).collect();
            let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
            let job = self.jobs.start_in(&mut tx, CREATE_JOB, who, "create", nodes.len() as u32, &name).await?;
            let row = store::CreationRow {
                name: name.clone(),
                template: template.to_yaml(),
                nodes: serde_json::to_string(&nodes).or_internal()?,
                sealed_pki: self.sealer.seal(&pki_text, &pki_place(&name)),
                job: job.clone(),
                state: "creating".into(),
                created_by: who.actor(),
                created_at: crate::db::now(),
            };
            store::insert_creation(&mut tx, &row).await.map_err(|e| {
                if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                    AppError::Conflict {
                        message: format!("The cluster {name} is being created already."),
                        fields: vec![],
                    }
                } else {
                    crate::error::Error::from(e).into()
                }
            })?;
            self.provisioner.put_generated(&mut tx, &catalog).await?;
            for (node, sealed) in specs.iter().zip(&sealed) {
                store::insert_secrets(&mut tx, &name, &node.mac.to_string(), &node.secrets_token, sealed)
                    .await
                    .or_internal()?;
            }
            self.machines.set_cluster_in(&mut tx, &machines, Some(&name)).await?;
            let macs: Vec<String> = specs.iter().map(|n| n.mac.to_string()).collect();
            let profiles: Vec<&str> = catalog.profiles.iter().map(|p| p.id.as_str()).collect();
            let record = event.clone().target(&name, &name).summary(serde_json::json!({
                "job": job, "machines": macs, "profiles": profiles, "template": row.template,
            }));
            crate::audit::append(&mut tx, who, record).await.or_internal()?;
            tx.commit().await.or_internal()?;
            self.provisioner.generated_changed().await;
            Ok((name, Some(job)))
        }
        .await;
        let (name, job) = crate::audit::settle(&self.db, who, event, started).await?;
        let created = job.is_some();
        if let Some(job) = job
            && self.runs_jobs
        {
            self.run(who.clone(), job, name.clone(), None);
        }
        Ok((created, self.creation(who, &name).await?))
    }

    /// A creation as it stands, for anyone who may see clusters.
    pub async fn creation(&self, who: &Principal, name: &str) -> Result<ClusterCreation, AppError> {
        app::access::authorize_in(who, Permission::ViewClusters, name)?;
        let (row, _, nodes) = self.load(name).await?;
        let job = self.jobs.load(&row.job).await?;
        let progress = job.as_ref().and_then(|j| serde_json::from_str::<job::Progress>(&j.result).ok());
        let machines = match &progress {
            Some(p) if !p.machines.is_empty() => p.machines.clone(),
            _ => nodes
                .iter()
                .map(|n| app::clusters::creation::CreationMachine {
                    machine: n.machine,
                    mac: n.spec.mac.to_string(),
                    name: n.spec.name.clone(),
                    role: n.spec.role.as_str().into(),
                    state: app::provisioning::boots::BootState::NeverSeen.as_str().into(),
                    since: String::new(),
                    waiting: String::new(),
                })
                .collect(),
        };
        let mut error = job.as_ref().and_then(|j| j.error.as_ref()).map(|e| e.to_string());
        // A creation whose job ended without ending it (failed while taken over, or forgotten)
        // is shown as failed, not as running forever.
        let running = job.as_ref().is_some_and(|j| j.state == crate::jobs::JobState::Running);
        // The row was read before the job: a job that ended in between wrote the row's end in
        // the same transaction, so the row is read again before it is called failed.
        let row_state = if row.state == "creating" && !running { self.load(name).await?.0.state } else { row.state };
        let state = if row_state == "creating" && !running {
            error.get_or_insert_with(|| {
                "Its job stopped before every node was Ready: destroy it and create it again.".into()
            });
            "failed".to_string()
        } else {
            row_state
        };
        Ok(ClusterCreation {
            name: row.name,
            state,
            job: row.job,
            step: progress.as_ref().map(|p| p.step.clone()).unwrap_or_default(),
            error,
            template: row.template,
            machines,
            power_run: progress.as_ref().and_then(|p| p.power_run.clone()),
            registered: progress.as_ref().is_some_and(|p| p.registered),
            refused: progress.as_ref().map(|p| p.refused.clone()).unwrap_or_default(),
            created_by: row.created_by,
            created_at: row.created_at,
        })
    }

    /// Every creation, for anyone who may see clusters (those of the clusters they may see).
    pub async fn creations(&self, who: &Principal) -> Result<Vec<ClusterCreation>, AppError> {
        authorize(who, Permission::ViewClusters)?;
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let rows = store::creations(&mut conn).await.or_internal()?;
        drop(conn);
        let mut all = Vec::new();
        for row in rows {
            if app::access::authorize_in(who, Permission::ViewClusters, &row.name).is_ok() {
                all.push(self.creation(who, &row.name).await?);
            }
        }
        Ok(all)
    }

    /// The template a cluster was created from, to edit and apply again.
    pub async fn template(&self, who: &Principal, name: &str) -> Result<String, AppError> {
        app::access::authorize_in(who, Permission::ViewClusters, name)?;
        Ok(self.load(name).await?.0.template)
    }

    /// Destroys a cluster Pangea created, `confirm` being its name typed again: stops its
    /// creation, unregisters it, removes its profiles, groups, configs and secret files, frees
    /// its machines (in one transaction with the audit record), then powers off those Pangea
    /// powers. The audit trail stays.
    pub async fn destroy(&self, who: &Principal, name: &str, confirm: &str) -> Result<(), AppError> {
        let event = Event::new("cluster.destroy", "cluster").target(name, name);
        let result = async {
            allow_change(who)?;
            if confirm.trim() != name {
                return Err(AppError::invalid(format!(
                    "Type the cluster's name, {name}, to destroy it: its machines are powered off and their configs removed."
                )));
            }
            let (row, _, nodes) = self.load(name).await?;
            let powered: Vec<i64> = nodes.iter().filter(|n| n.powered).map(|n| n.machine).collect();
            if let Some(job) = self.jobs.load(&row.job).await?
                && job.state == crate::jobs::JobState::Running
            {
                self.jobs.request_cancel(&row.job, who).await?;
                // Its power run too, so no machine is powered on after it is powered off.
                let run = serde_json::from_str::<job::Progress>(&job.result).ok().and_then(|p| p.power_run);
                if let Some(run) = run
                    && let Err(e) = app::power::ssr::PowerService::cancel_run(&self.power, who, &run).await
                {
                    tracing::info!(error = %e, cluster = name, "the creation's power run had ended");
                }
            }
            if self.clusters.names().iter().any(|n| n == name) {
                app::clusters::ssr::ClusterService::remove(&*self.clusters, who, name).await?;
            }
            let specs: Vec<NodeSpec> = nodes.iter().map(|n| n.spec.clone()).collect();
            let catalog = generated_ids(name, &specs);
            let mut machines = Vec::new();
            for node in &nodes {
                match self.machines.get(who, node.machine).await {
                    Ok(machine) => machines.push(machine),
                    Err(AppError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let freed: Vec<(&Machine, Role)> = machines
                .iter()
                .filter(|m| m.cluster.as_deref() == Some(name))
                .map(|m| (m, m.role))
                .collect();
            let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
            self.provisioner.remove_generated(&mut tx, &catalog).await?;
            store::delete_creation(&mut tx, name).await.or_internal()?;
            self.machines.set_cluster_in(&mut tx, &freed, None).await?;
            let macs: Vec<String> = specs.iter().map(|n| n.mac.to_string()).collect();
            let record = event.clone().summary(serde_json::json!({ "machines": macs, "template": row.template }));
            crate::audit::append(&mut tx, who, record).await.or_internal()?;
            tx.commit().await.or_internal()?;
            self.provisioner.generated_changed().await;
            if !powered.is_empty() {
                let input = app::power::PowerRunInput {
                    action: app::power::PowerAction::ForceOff,
                    machines: powered,
                    search: None,
                    pacing: Default::default(),
                };
                // Destroyed already: a power-off that cannot start is said, not a failure.
                if let Err(e) = app::power::ssr::PowerService::start_run(&self.power, who, input).await {
                    tracing::warn!(error = %e, cluster = name, "could not power off a destroyed cluster's machines");
                }
            }
            Ok(())
        }
        .await;
        crate::audit::settle(&self.db, who, event, result).await
    }

    fn seal_secrets<'a>(
        &self,
        cluster: &str,
        node: &NodeSpec,
        secrets: &'a [(String, String)],
    ) -> Vec<store::SealedSecret<'a>> {
        secrets
            .iter()
            .map(|(path, text)| store::SealedSecret {
                path,
                sealed: self
                    .sealer
                    .seal(&SecretString::from(text.clone()), &secret_place(cluster, &node.secrets_token, path)),
            })
            .collect()
    }
}

/// The pages' and the JSON API's view of creation: the same methods.
#[async_trait::async_trait]
impl app::clusters::ssr::CreationService for Creation {
    async fn preview(&self, who: &Principal, template: &str) -> Result<CreationPreview, AppError> {
        Creation::preview(self, who, template).await
    }

    async fn apply(&self, who: &Principal, template: &str) -> Result<ClusterCreation, AppError> {
        Creation::create(self, who, template).await.map(|(_, creation)| creation)
    }

    async fn creation(&self, who: &Principal, name: &str) -> Result<ClusterCreation, AppError> {
        Creation::creation(self, who, name).await
    }

    async fn creations(&self, who: &Principal) -> Result<Vec<ClusterCreation>, AppError> {
        Creation::creations(self, who).await
    }

    async fn destroy(&self, who: &Principal, name: &str, confirm: &str) -> Result<(), AppError> {
        Creation::destroy(self, who, name, confirm).await
    }
}
