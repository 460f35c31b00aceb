//! The machine service: every read and change of the inventory, for the GUI and the JSON API.

pub mod http;
pub mod import;
pub mod store;

pub use import::{ParsedLine, parse_import};

use crate::audit::{self, Event};
use crate::background::Background;
use crate::db::{Database, unique_constraint};
use crate::error::{OrInternal, internal};
use crate::jobs::{Job, JobKind, JobState, Jobs};
use crate::secrets::Sealer;
use app::access::{Permission, Principal, authorize};
use app::error::{AppError, FieldError};
use app::machines::fields::ClassName;
use app::machines::fields::{Labels, Role};
use app::machines::ssr::MachineService;
use app::machines::{
    ImportFormat, ImportLine, ImportProgress, ImportReport, Machine, MachineClass, MachineClassInput, MachineInput,
    MachinePage, MachineQuery, MachineSpec,
};
use app::power::BmcInput;
use app::provisioning::boots::BootStatus;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The unique constraint on machines' MAC addresses.
const MAC_KEY: &str = "machines_mac_key";

/// Largest import accepted in one go; bigger lists should be split.
pub const MAX_IMPORT_LINES: usize = 50_000;
/// The inventory service: every read and change of machines, authorized and audited.
#[derive(Clone)]
pub struct Machines {
    db: Database,
    jobs: Jobs,
    background: Background,
    follower: Arc<dyn InventoryFollower>,
    power: Arc<dyn MachinePower>,
    sealer: Arc<Sealer>,
}

/// The area that follows the inventory (the provisioner, which boots inventory machines and
/// records their boots), as the composition root wires it: the inventory names no other area.
#[async_trait::async_trait]
pub trait InventoryFollower: Send + Sync {
    /// Called inside the transaction that changed machines, so what follows them moves with it.
    async fn inventory_changed(&self, tx: &mut AnyConnection) -> Result<(), crate::error::Error>;
    /// The boot state of each of `macs` that has one, for the machine list.
    async fn boot_states(&self, macs: &[String]) -> Result<BTreeMap<String, BootStatus>, crate::error::Error>;
}

/// The area that drives machines' BMCs, as the inventory needs it: their power for the list, and
/// the BMCs an import brings (wired by the composition root).
#[async_trait::async_trait]
pub trait MachinePower: Send + Sync {
    /// The power of each of `ids` that has a BMC, by MAC.
    async fn power_of(&self, ids: &[i64]) -> Result<BTreeMap<String, app::power::PowerStatus>, crate::error::Error>;
    /// What is wrong with an imported BMC's fields, if anything (nothing is sent to it).
    fn check_bmc(&self, bmc: &BmcInput) -> Result<(), String>;
    /// Keeps the BMCs of imported machines, by machine id, inside the import's transaction; they
    /// are checked (reached, signed in to, their system found) by the next power refresh.
    async fn add_bmcs(&self, tx: &mut AnyConnection, bmcs: &[(i64, BmcInput)]) -> Result<(), crate::error::Error>;
}

/// What a GUI import keeps in its job, for whichever replica goes on with it: sealed, as the
/// text may hold BMC passwords.
#[derive(serde::Serialize, serde::Deserialize)]
struct ImportInput {
    format: ImportFormat,
    text: String,
}

/// Where an import job's input is sealed.
const IMPORT_PLACE: &str = "machine-import";

/// A checked import line's machine and its BMC, if the line gave one.
type Checked = (MachineSpec, Option<BmcInput>);

/// An import, in the jobs table. Its check writes nothing, and its commit writes the machines
/// and ends the job in one transaction: a replica that takes it over runs its step again.
pub const IMPORT_JOB: JobKind = JobKind { name: "machine.import" };

/// Adds `specs` to the inventory inside the caller's transaction, which writes its own audit
/// record: the provisioner adopts discovered machines this way, with their boot profile, in one
/// change. The caller tells the inventory's follower; a MAC stored already refuses them all.
pub async fn add_in(tx: &mut AnyConnection, specs: &[MachineSpec]) -> Result<Vec<i64>, AppError> {
    match store::insert(tx, specs).await {
        Ok(ids) => Ok(ids),
        Err(e) if unique_constraint(&e) == Some(MAC_KEY) => {
            Err(AppError::invalid("One of these machines is in the inventory already; reload the list."))
        }
        Err(e) => Err(crate::error::Error::from(e).into()),
    }
}

pub(crate) fn mac_taken(mac: &impl std::fmt::Display) -> AppError {
    let message = format!("A machine with MAC {mac} already exists.");
    AppError::Conflict { fields: vec![FieldError { field: "mac".into(), message: message.clone() }], message }
}

impl Machines {
    pub fn new(
        db: Database,
        jobs: Jobs,
        follower: Arc<dyn InventoryFollower>,
        power: Arc<dyn MachinePower>,
        sealer: Arc<Sealer>,
    ) -> Machines {
        Machines { jobs, db, background: Background::default(), follower, power, sealer }
    }

    async fn inventory_changed(&self, tx: &mut AnyConnection) -> Result<(), AppError> {
        self.follower.inventory_changed(tx).await.or_internal()
    }

    async fn fetch(&self, id: i64) -> Result<Machine, AppError> {
        store::machine(&self.db, id)
            .await
            .or_internal()?
            .ok_or_else(|| AppError::not_found(format!("There is no machine with id {id}; it may have been deleted.")))
    }

    /// Checks parsed import lines against each other and against the stored machines.
    /// With `job`, reports its progress as it goes.
    async fn check_import(
        &self,
        format: ImportFormat,
        lines: Vec<ParsedLine>,
        job: Option<&str>,
    ) -> Result<(ImportReport, Vec<Checked>), AppError> {
        let total = lines.len() as u32;
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut checked: Vec<(ImportLine, Option<Checked>)> = Vec::with_capacity(lines.len());
        for parsed in lines {
            let mut errors = parsed.errors;
            if let Some(bmc) = &parsed.bmc
                && let Err(e) = self.power.check_bmc(bmc)
            {
                errors.push(format!("BMC: {e}"));
            }
            let mut line = ImportLine {
                line: parsed.line,
                mac: Some(parsed.input.mac.clone()).filter(|m| !m.is_empty()),
                hostname: parsed.input.hostname.clone(),
                role: None,
                errors,
            };
            let spec = match parsed.input.validate() {
                Ok(spec) => {
                    line.mac = Some(spec.mac.to_string());
                    line.role = Some(spec.role);
                    match seen.get(&spec.mac.to_string()) {
                        Some(first) => line.errors.push(format!("MAC {} is already on line {first}.", spec.mac)),
                        None => {
                            seen.insert(spec.mac.to_string(), parsed.line);
                        }
                    }
                    Some((spec, parsed.bmc))
                }
                Err(fields) => {
                    line.errors.extend(fields.into_iter().map(|f| f.message));
                    None
                }
            };
            checked.push((line, spec));
        }
        // Look up the MACs already stored, a batch at a time, reporting progress.
        let macs: Vec<String> = seen.keys().cloned().collect();
        let mut existing: HashSet<String> = HashSet::new();
        let mut done = 0u32;
        for chunk in macs.chunks(store::BATCH) {
            existing.extend(store::ids_by_mac(&self.db, chunk).await.or_internal()?.into_keys());
            done += chunk.len() as u32;
            if let Some(job) = job {
                self.jobs.progress(job, done.min(total), total).await?;
            }
        }
        let mut report = ImportReport {
            format,
            lines: Vec::with_capacity(checked.len()),
            creatable: 0,
            errors: 0,
            committed: false,
        };
        let mut specs = Vec::new();
        for (mut line, spec) in checked {
            if let Some((spec, _)) = &spec
                && existing.contains(&spec.mac.to_string())
            {
                line.errors.push(format!("A machine with MAC {} already exists.", spec.mac));
            }
            match spec {
                Some(spec) if line.errors.is_empty() => {
                    report.creatable += 1;
                    specs.push(spec);
                }
                _ => report.errors += 1,
            }
            report.lines.push(line);
        }
        Ok((report, specs))
    }

    /// Writes checked machines and their audit record in one transaction: all of them, or none
    /// (recorded as a failure) when any MAC was taken meanwhile.
    async fn write_import(
        &self,
        who: &Principal,
        report: &ImportReport,
        checked: Vec<Checked>,
        job: Option<&str>,
    ) -> Result<(), AppError> {
        let total = checked.len() as u32;
        let (specs, bmcs): (Vec<MachineSpec>, Vec<Option<BmcInput>>) = checked.into_iter().unzip();
        // Which BMCs came, never their passwords (the first hundred; the count is whole).
        let told: Vec<_> = specs
            .iter()
            .zip(&bmcs)
            .filter_map(|(spec, bmc)| Some(json!({ "mac": spec.mac.to_string(), "url": bmc.as_ref()?.url, "username": bmc.as_ref()?.username })))
            .take(100)
            .collect();
        let event = Event::new("machine.import", "machine").target("", format!("{total} machines")).summary(json!({
            "format": report.format,
            "created": total,
            "macs": specs.iter().map(|s| s.mac.to_string()).collect::<Vec<_>>(),
            "bmcs": bmcs.iter().flatten().count(),
            "bmc_list": told,
        }));
        let result = async {
            // Setting BMCs is powering machines' business too.
            if bmcs.iter().any(Option::is_some) {
                authorize(who, Permission::PowerMachines)?;
            }
            let mut tx = audit::begin_unlocked(&self.db).await.or_internal()?;
            let inserted = store::insert(&mut tx, &specs).await;
            match inserted {
                Ok(ids) => {
                    let bmcs: Vec<(i64, BmcInput)> =
                        ids.into_iter().zip(bmcs).filter_map(|(id, bmc)| Some((id, bmc?))).collect();
                    self.power.add_bmcs(&mut tx, &bmcs).await.or_internal()?;
                }
                Err(e) if unique_constraint(&e) == Some(MAC_KEY) => {
                    return Err(AppError::Conflict {
                        message: "Another change added one of these MACs since the preview; nothing was imported. \
                                  Preview again."
                            .into(),
                        fields: Vec::new(),
                    });
                }
                Err(e) => return Err(crate::error::Error::from(e).into()),
            }
            audit::append(&mut tx, who, event.clone()).await.or_internal()?;
            self.inventory_changed(&mut tx).await?;
            // A job's import stands only with the job's end, by the run that holds it.
            if let Some(job) = job {
                let result =
                    serde_json::to_string(&ImportReport { committed: true, ..report.clone() }).or_internal()?;
                self.jobs.succeed_in(&mut tx, job, &result).await?;
            }
            tx.commit().await.or_internal()
        }
        .await;
        if result.is_ok()
            && let Err(e) = store::merge_search_index(&self.db).await
        {
            tracing::warn!(error = %e, "could not merge the search index's pending list");
        }
        self.settle(who, event, result).await
    }

    /// Checks a permission; a refusal is recorded in the audit log as denied.
    async fn allow(&self, who: &Principal, permission: Permission, action: &'static str) -> Result<(), AppError> {
        let result = authorize(who, permission);
        self.settle(who, Event::new(action, "machine"), result).await
    }

    async fn settle<T>(&self, who: &Principal, event: Event, result: Result<T, AppError>) -> Result<T, AppError> {
        audit::settle(&self.db, who, event, result).await
    }
}

fn parse_ids(ids: Vec<i64>) -> Result<Vec<i64>, AppError> {
    let unique: std::collections::BTreeSet<i64> = ids.into_iter().collect();
    if unique.is_empty() {
        return Err(AppError::invalid("Select at least one machine."));
    }
    if unique.len() > MachineQuery::MAX_LIMIT as usize {
        return Err(AppError::invalid(format!("Select at most {} machines at once.", MachineQuery::MAX_LIMIT)));
    }
    Ok(unique.into_iter().collect())
}

fn vanished(missing: usize) -> AppError {
    AppError::not_found(format!(
        "{missing} of the selected machines no longer exist (someone else deleted them); nothing was changed. Reload and try again."
    ))
}

/// The audit event of one change to several machines.
fn bulk_event(action: &'static str, ids: &[i64]) -> Event {
    let id_list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    Event::new(action, "machine").target(id_list, format!("{} machines", ids.len()))
}

fn class_name(name: &str) -> Result<ClassName, AppError> {
    name.parse().map_err(|message: String| AppError::Invalid {
        fields: vec![FieldError { field: "name".into(), message: message.clone() }],
        message,
    })
}

/// A class's search and description, checked: the search as the machine list would take it.
fn class_input(input: &MachineClassInput) -> Result<(String, String), AppError> {
    let query = input.query.trim().to_string();
    let field = |field: &str, message: String| AppError::Invalid {
        fields: vec![FieldError { field: field.into(), message: message.clone() }],
        message,
    };
    if query.is_empty() {
        return Err(field(
            "query",
            "Give the class's search: labels and hardware terms, as cpus>=32 and memory_gib>=256 and rack=r1.".into(),
        ));
    }
    store::check_search(&query).map_err(|message| field("query", message))?;
    let description = input.description.trim().to_string();
    if description.chars().count() > MachineClassInput::MAX_DESCRIPTION {
        return Err(field(
            "description",
            format!("A description is at most {} characters.", MachineClassInput::MAX_DESCRIPTION),
        ));
    }
    Ok((query, description))
}

fn machine_summary(m: &Machine) -> serde_json::Value {
    json!({
        "mac": m.mac, "hostname": m.hostname, "uuid": m.uuid, "serial": m.serial, "role": m.role,
        "labels": m.labels, "cluster": m.cluster,
    })
}

#[async_trait::async_trait]
impl MachineService for Machines {
    async fn list(&self, who: &Principal, query: MachineQuery) -> Result<MachinePage, AppError> {
        self.allow(who, Permission::ViewMachines, "machine.list").await?;
        let mut page = store::fetch_page(&self.db, &query).await?;
        store::attach_labels(&self.db, &mut page.items).await.or_internal()?;
        let macs: Vec<String> = page.items.iter().map(|m| m.mac.clone()).collect();
        page.states = self.follower.boot_states(&macs).await.or_internal()?;
        let ids: Vec<i64> = page.items.iter().map(|m| m.id).collect();
        page.power = self.power.power_of(&ids).await.or_internal()?;
        Ok(page)
    }

    async fn get(&self, who: &Principal, id: i64) -> Result<Machine, AppError> {
        self.allow(who, Permission::ViewMachines, "machine.get").await?;
        self.fetch(id).await
    }

    async fn create(&self, who: &Principal, input: MachineInput) -> Result<Machine, AppError> {
        let event = Event::new("machine.create", "machine").target("", &input.mac).summary(json!({ "after": input }));
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let spec = input.validate()?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let id = match store::insert(&mut tx, std::slice::from_ref(&spec)).await {
                Ok(ids) => ids[0],
                Err(e) if unique_constraint(&e) == Some(MAC_KEY) => return Err(mac_taken(&spec.mac)),
                Err(e) => return Err(crate::error::Error::from(e).into()),
            };
            audit::append(&mut tx, who, event.clone().target(id, &spec.mac)).await.or_internal()?;
            self.inventory_changed(&mut tx).await?;
            tx.commit().await.or_internal()?;
            Ok(id)
        }
        .await;
        let id = self.settle(who, event, result).await?;
        self.fetch(id).await
    }

    async fn update(&self, who: &Principal, id: i64, input: MachineInput) -> Result<Machine, AppError> {
        let event = Event::new("machine.update", "machine").target(id, &input.mac).summary(json!({ "after": input }));
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let spec = input.validate()?;
            let before = self.fetch(id).await?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            match store::update(&mut tx, id, &spec).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(AppError::not_found(format!(
                        "There is no machine with id {id}; it may have been deleted."
                    )));
                }
                Err(e) if unique_constraint(&e) == Some(MAC_KEY) => return Err(mac_taken(&spec.mac)),
                Err(e) => return Err(crate::error::Error::from(e).into()),
            }
            let summary = json!({ "before": machine_summary(&before), "after": input });
            audit::append(&mut tx, who, event.clone().target(id, &spec.mac).summary(summary)).await.or_internal()?;
            self.inventory_changed(&mut tx).await?;
            tx.commit().await.or_internal()
        }
        .await;
        self.settle(who, event, result).await?;
        self.fetch(id).await
    }

    async fn delete(&self, who: &Principal, ids: Vec<i64>) -> Result<u64, AppError> {
        let event = bulk_event("machine.delete", &ids);
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let ids = parse_ids(ids)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let deleted = store::delete(&mut tx, &ids).await.or_internal()?;
            if deleted.len() != ids.len() {
                return Err(vanished(ids.len() - deleted.len()));
            }
            let before: Vec<_> = deleted.iter().map(|(id, mac)| json!({ "id": id, "mac": mac })).collect();
            audit::append(&mut tx, who, event.clone().summary(json!({ "deleted": before }))).await.or_internal()?;
            self.inventory_changed(&mut tx).await?;
            tx.commit().await.or_internal()?;
            Ok(deleted.len() as u64)
        }
        .await;
        self.settle(who, event, result).await
    }

    async fn add_labels(
        &self,
        who: &Principal,
        ids: Vec<i64>,
        labels: BTreeMap<String, String>,
    ) -> Result<u64, AppError> {
        let event = bulk_event("machine.label", &ids).summary(json!({ "added": labels }));
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let ids = parse_ids(ids)?;
            let labels = Labels::from_pairs(&labels).map_err(|message| AppError::Invalid {
                fields: vec![FieldError { field: "labels".into(), message: message.clone() }],
                message,
            })?;
            if labels.is_empty() {
                return Err(AppError::invalid("Give at least one label as key=value."));
            }
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let found = store::count(&mut tx, &ids).await.or_internal()?;
            if found != ids.len() {
                return Err(vanished(ids.len() - found));
            }
            store::add_labels(&mut tx, &ids, &labels).await.or_internal()?;
            audit::append(&mut tx, who, event.clone()).await.or_internal()?;
            self.inventory_changed(&mut tx).await?;
            tx.commit().await.or_internal()?;
            Ok(ids.len() as u64)
        }
        .await;
        self.settle(who, event, result).await
    }

    async fn import(
        &self,
        who: &Principal,
        format: ImportFormat,
        text: String,
        dry_run: bool,
    ) -> Result<ImportReport, AppError> {
        let (format, lines) = Self::parse_off_workers(format, text).await?;
        self.import_lines(who, format, lines, dry_run).await
    }

    async fn start_import(&self, who: &Principal, format: ImportFormat, text: String) -> Result<String, AppError> {
        self.allow(who, Permission::ChangeMachines, "machine.import").await?;
        let input = serde_json::to_string(&ImportInput { format, text }).or_internal()?;
        let input = self.sealer.seal(&SecretString::from(input), IMPORT_PLACE);
        let id = self.jobs.start(IMPORT_JOB, who, "check", 0, &input).await?;
        self.run_check(id.clone(), input);
        Ok(id)
    }

    async fn import_progress(&self, who: &Principal, job: String) -> Result<ImportProgress, AppError> {
        self.allow(who, Permission::ChangeMachines, "machine.import").await?;
        let job = self.jobs.get(&job, who).await?;
        let report = || serde_json::from_str::<ImportReport>(&job.result).or_internal();
        Ok(match (job.state, job.step.as_str()) {
            (JobState::Running, "check") => ImportProgress::Checking { done: job.done, total: job.total },
            (JobState::Running, _) => ImportProgress::Committing { done: job.done, total: job.total },
            (JobState::Waiting, _) => ImportProgress::Previewed { report: report()? },
            (JobState::Succeeded, _) => ImportProgress::Committed { report: report()? },
            (JobState::Failed, _) => {
                ImportProgress::Failed { error: job.error.unwrap_or_else(|| internal("no error kept")) }
            }
        })
    }

    async fn commit_import(&self, who: &Principal, job: String) -> Result<(), AppError> {
        self.allow(who, Permission::ChangeMachines, "machine.import").await?;
        let preview = self.jobs.get(&job, who).await?;
        if preview.state == JobState::Waiting {
            let report: ImportReport = serde_json::from_str(&preview.result).or_internal()?;
            if report.errors > 0 {
                return Err(AppError::invalid(format!(
                    "{} lines have errors; fix them and preview again. Nothing was written.",
                    report.errors
                )));
            }
            if report.creatable == 0 {
                return Err(AppError::invalid("There is nothing to import."));
            }
        }
        // Exactly one commit, on whichever replica is asked first.
        let Some(input) = self.jobs.resume(&job, who, "commit").await? else {
            return Err(AppError::Conflict {
                message: "This import is still being checked, or was already imported.".into(),
                fields: Vec::new(),
            });
        };
        self.run_commit(who.clone(), job, input);
        Ok(())
    }

    async fn classes(&self, who: &Principal) -> Result<Vec<MachineClass>, AppError> {
        self.allow(who, Permission::ViewMachines, "machine.class.list").await?;
        let mut classes = Vec::new();
        for row in store::classes(&self.db).await.or_internal()? {
            let members = store::count_matching(&self.db, &row.query).await?;
            classes.push(MachineClass {
                name: row.name,
                query: row.query,
                description: row.description,
                members,
                updated_at: row.updated_at,
            });
        }
        Ok(classes)
    }

    async fn save_class(
        &self,
        who: &Principal,
        name: String,
        input: MachineClassInput,
    ) -> Result<MachineClass, AppError> {
        let event = Event::new("machine.class.save", "machine_class").target(&name, &name);
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let name = class_name(&name)?;
            let (query, description) = class_input(&input)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let before = store::class(&mut tx, name.as_str()).await.or_internal()?;
            let at = crate::db::now();
            store::save_class(&mut tx, name.as_str(), &query, &description, &at).await.or_internal()?;
            let summary = json!({
                "before": before.map(|b| json!({ "query": b.query, "description": b.description })),
                "after": { "query": query, "description": description },
            });
            audit::append(&mut tx, who, event.clone().summary(summary)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(MachineClass { name: name.to_string(), query, description, members: 0, updated_at: at })
        }
        .await;
        let saved = self.settle(who, event, result).await?;
        Ok(MachineClass { members: store::count_matching(&self.db, &saved.query).await?, ..saved })
    }

    async fn delete_class(&self, who: &Principal, name: String) -> Result<(), AppError> {
        let event = Event::new("machine.class.delete", "machine_class").target(&name, &name);
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let Some(before) = store::class(&mut tx, &name).await.or_internal()? else {
                return Err(AppError::not_found(format!(
                    "There is no machine class \"{name}\"; it may have been deleted."
                )));
            };
            store::delete_class(&mut tx, &name).await.or_internal()?;
            let summary = json!({ "before": { "query": before.query, "description": before.description } });
            audit::append(&mut tx, who, event.clone().summary(summary)).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        self.settle(who, event, result).await
    }
}

impl Machines {
    /// Checks lines read from an import, or made by another area (a discovery's systems), and
    /// unless `dry_run` writes them as an import does: all in one transaction, or none.
    pub async fn import_lines(
        &self,
        who: &Principal,
        format: ImportFormat,
        lines: Vec<ParsedLine>,
        dry_run: bool,
    ) -> Result<ImportReport, AppError> {
        let permission = if dry_run { Permission::ViewMachines } else { Permission::ChangeMachines };
        self.allow(who, permission, "machine.import").await?;
        let (mut report, specs) = self.check_import(format, lines, None).await?;
        if !dry_run && report.errors == 0 && !specs.is_empty() {
            self.write_import(who, &report, specs, None).await?;
            report.committed = true;
        }
        Ok(report)
    }

    /// The ids of the machines with these MACs (in canonical form), by MAC: for the areas that
    /// offer machines, so they offer none twice.
    pub async fn ids_of_macs(&self, macs: &[String]) -> Result<HashMap<String, i64>, AppError> {
        let mut ids = HashMap::new();
        for chunk in macs.chunks(store::BATCH) {
            ids.extend(store::ids_by_mac(&self.db, chunk).await.or_internal()?);
        }
        Ok(ids)
    }

    /// Puts `machines` into `cluster` with a role each (or, with `None`, out of any cluster), in
    /// the caller's transaction, which records the audit: for cluster creation, which takes its
    /// machines with its other writes. A machine another cluster took meanwhile is a conflict.
    pub async fn set_cluster_in(
        &self,
        tx: &mut AnyConnection,
        machines: &[(&Machine, Role)],
        cluster: Option<&str>,
    ) -> Result<(), AppError> {
        for (machine, role) in machines {
            if let Some(cluster) = cluster
                && !store::claim(tx, machine.id, cluster).await.or_internal()?
            {
                return Err(AppError::Conflict {
                    message: format!("Machine {} was just taken into another cluster.", machine.mac),
                    fields: vec![],
                });
            }
            let input = MachineInput {
                mac: machine.mac.clone(),
                hostname: machine.hostname.clone(),
                uuid: machine.uuid.clone(),
                serial: machine.serial.clone(),
                role: Some(role.as_str().into()),
                labels: machine.labels.clone(),
                cluster: cluster.map(Into::into),
            };
            let spec = input.validate().map_err(|errors| AppError::Invalid {
                message: format!("Machine {} cannot be changed so.", machine.mac),
                fields: errors,
            })?;
            if !store::update(tx, machine.id, &spec).await.or_internal()? {
                return Err(AppError::not_found(format!("Machine {} is gone.", machine.mac)));
            }
        }
        self.inventory_changed(tx).await
    }

    /// Runs background work (import jobs) on `background`, which `serve()` stops at shutdown.
    pub fn with_background(mut self, background: Background) -> Machines {
        self.background = background;
        self
    }

    /// Goes on with an import job another replica was running when it stopped: its check or
    /// its commit again (the commit writes nothing until its one transaction commits).
    pub fn resume_import(&self, job: Job) {
        // A commit goes on only as someone who may still change machines.
        let may_commit = job.acting.as_ref().is_some_and(|who| authorize(who, Permission::ChangeMachines).is_ok());
        match (job.step.as_str(), job.acting) {
            ("commit", Some(who)) if may_commit => self.run_commit(who, job.id, job.input),
            ("check", _) => self.run_check(job.id, job.input),
            (step, who) => {
                let jobs = self.jobs.clone();
                let error = match (step, who) {
                    ("commit", Some(who)) => AppError::Forbidden {
                        message: format!("This import was stopped: {} may no longer change machines.", who.actor()),
                    },
                    ("commit", None) => AppError::Forbidden {
                        message: "This import was stopped: whoever started it may no longer act (disabled, deleted, \
                                  or a token revoked or expired)."
                            .into(),
                    },
                    _ => internal(format!("an import job in step \"{step}\" cannot be resumed")),
                };
                self.background.spawn(async move {
                    if let Err(e) = jobs.fail(&job.id, &error).await {
                        tracing::error!(error = %e, job = job.id, "could not fail an import job");
                    }
                });
            }
        }
    }

    /// Runs an import job's check in the background; the job then waits for its owner.
    fn run_check(&self, job: String, input: String) {
        let store = self.clone();
        self.background.spawn(async move {
            let outcome = store.jobs.holding_lease(&job, store.check_import_job(&job, &input)).await;
            let ended = match outcome {
                Ok(report) => store.jobs.wait(&job, &serde_json::to_string(&report).unwrap_or_default()).await,
                Err(error) => store.jobs.fail(&job, &error).await,
            };
            if let Err(e) = ended {
                tracing::error!(error = %e, job, "could not record the end of an import check");
            }
        });
    }

    /// Runs an import job's commit in the background, for `who`; it ends the job itself.
    fn run_commit(&self, who: Principal, job: String, input: String) {
        let store = self.clone();
        self.background.spawn(async move {
            let outcome = store.jobs.holding_lease(&job, store.commit_import_job(&who, &job, &input)).await;
            if let Err(error) = outcome
                && let Err(e) = store.jobs.fail(&job, &error).await
            {
                tracing::error!(error = %e, job, "could not record the end of an import");
            }
        });
    }

    /// Parses an import off the async workers (a 50,000-line file takes a while).
    async fn parse_off_workers(
        format: ImportFormat,
        text: String,
    ) -> Result<(ImportFormat, Vec<ParsedLine>), AppError> {
        tokio::task::spawn_blocking(move || parse_import(format, &text)).await.map_err(internal)?
    }

    /// An import job's check step: parse, check, report progress as it goes.
    /// An import job's input, opened.
    fn import_input(&self, sealed: &str) -> Result<ImportInput, AppError> {
        let opened = self.sealer.open(sealed, IMPORT_PLACE).map_err(|e| AppError::Conflict {
            message: format!("This import's text cannot be read here ({e}); import it again."),
            fields: Vec::new(),
        })?;
        serde_json::from_str(opened.expose_secret()).or_internal()
    }

    async fn check_import_job(&self, job: &str, input: &str) -> Result<ImportReport, AppError> {
        let ImportInput { format, text } = self.import_input(input)?;
        let (format, lines) = Self::parse_off_workers(format, text).await?;
        let total = lines.len() as u32;
        self.jobs.progress(job, 0, total).await?;
        let (report, _) = self.check_import(format, lines, Some(job)).await?;
        Ok(report)
    }

    /// An import job's commit step: the input is checked again (another change may have taken
    /// a MAC since), then written in one transaction.
    async fn commit_import_job(&self, who: &Principal, job: &str, input: &str) -> Result<ImportReport, AppError> {
        let ImportInput { format, text } = self.import_input(input)?;
        let (format, lines) = Self::parse_off_workers(format, text).await?;
        let (report, specs) = self.check_import(format, lines, None).await?;
        if report.errors > 0 {
            return Err(AppError::Conflict {
                message: format!(
                    "Since the preview, {} lines came to have errors (another change?); nothing was imported. Preview again.",
                    report.errors
                ),
                fields: Vec::new(),
            });
        }
        self.jobs.progress(job, 0, specs.len() as u32).await?;
        self.write_import(who, &report, specs, Some(job)).await?;
        Ok(ImportReport { committed: true, ..report })
    }
}
