//! The provisioner: Matchbox-compatible network boot. Profiles, groups and templates live in the
//! database; the boot listener serves iPXE scripts, GRUB menus, Ignition, generic configs and
//! metadata from an in-memory [`index::BootIndex`], rebuilt and swapped in whole whenever the
//! catalog changes (on this replica at once, on others within a poll).

pub mod assets;
pub mod boot;
pub mod boots;
pub mod butane;
pub mod gotemplate;
pub mod grpc;
pub mod http;
pub mod ignition;
pub mod import;
pub mod index;
pub mod report_tokens;
pub mod store;

/// The provisioning types, shared with the pages.
pub use app::provisioning as model;

use crate::audit::{self, Event};
use crate::db::Database;
use crate::error::{Error, OrInternal};
use app::access::{Permission, Principal, authorize};
use app::error::AppError;
use app::provisioning::{
    Catalog, DefaultProfile, Explanation, Group, ImportOutcome, MachineProfile, Profile, Served, TemplateFile,
    TemplateKind, TemplatePreview,
};
use arc_swap::ArcSwap;
use index::BootIndex;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Deletion;

/// How often a replica looks for catalog changes made elsewhere.
pub const CATALOG_POLL: Duration = Duration::from_millis(500);

pub struct Provisioner {
    db: Database,
    index: ArcSwap<BootIndex>,
    /// Serialises index rebuilds, so an older catalog never replaces a newer one.
    rebuilding: tokio::sync::Mutex<()>,
    pub assets_dir: PathBuf,
    /// Boot events: queued by the boot listener, written by [`Provisioner::record_boots`].
    pub boots: boots::Boots,
    /// Template renderings running at once, off the async workers.
    renders: tokio::sync::Semaphore,
    /// Made for each machine's configs; its reports of installed or failed must carry one.
    pub report_tokens: report_tokens::ReportTokens,
}

/// Template renderings that may run at once; more wait their turn. Each is bounded by
/// [`gotemplate::Limits`], so a turn ends within its time limit.
const RENDERS_AT_ONCE: usize = 8;

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A template's content as the audit log records it: its digest, never the text.
fn digest(t: &Option<TemplateFile>) -> serde_json::Value {
    t.as_ref().map_or(serde_json::Value::Null, |t| json!(sha256(&t.content)))
}

/// Checks a template the way it will be served: raw Ignition must be a valid config; a template
/// must parse, and render for a sample machine within its limits (and, for Ignition, translate
/// from Butane when the sample had every key it asks for). Errors name the line and column. It
/// can take a rendering's time limit: call it off the async workers.
pub fn check_template(t: &TemplateFile) -> Result<Option<gotemplate::Template>, String> {
    model::check_id("template", &t.id)?;
    if t.kind == TemplateKind::Ignition && model::is_raw_ignition(&t.id) {
        return ignition::upgrade_raw(&t.content).map(|_| None).map_err(|e| e.to_string());
    }
    let template = gotemplate::Template::parse(&t.content).map_err(|e| e.to_string())?;
    let text = template.check(&index::sample_data()).map_err(|e| format!("for a sample machine: {e}"))?;
    if let (TemplateKind::Ignition, Some(text)) = (t.kind, text) {
        butane::translate(&text).map_err(|e| format!("for a sample machine, Butane: {e}"))?;
    }
    Ok(Some(template))
}

/// [`check_template`], then renders it for the groups that use it now, off the async workers.
async fn check_served(index: Arc<BootIndex>, t: TemplateFile) -> Result<(), AppError> {
    tokio::task::spawn_blocking(move || {
        check_template(&t)
            .and_then(|template| match template {
                Some(template) => index.check_for_groups(t.kind, &t.id, &template),
                None => Ok(()),
            })
            .map_err(|e| AppError::invalid(format!("template {}: {e}", t.id)))
    })
    .await
    .or_internal()?
}

/// A config as `who` may see it: secret links (of clusters Pangea creates) masked for anyone
/// but admins.
pub fn shown_to(who: &Principal, text: &str) -> String {
    if who.role == Some(app::access::ConsoleRole::Admin) {
        text.to_string()
    } else {
        crate::http::middleware::mask_secret_links(text).into_owned()
    }
}

/// Inventory machines boot without groups, so a change to machines is a change to what the boot
/// index serves; and the machine list shows each machine's boot state.
#[async_trait::async_trait]
impl crate::machines::InventoryFollower for Provisioner {
    async fn inventory_changed(&self, tx: &mut sqlx::AnyConnection) -> Result<(), Error> {
        store::bump_version(tx).await
    }

    async fn boot_states(
        &self,
        macs: &[String],
    ) -> Result<std::collections::BTreeMap<String, app::provisioning::boots::BootStatus>, Error> {
        boots::store::statuses(&self.db, macs).await
    }
}

impl Provisioner {
    /// Loads the catalog and builds the first index.
    pub async fn open(db: Database, assets_dir: PathBuf) -> Result<Provisioner, Error> {
        let (version, catalog) = store::load(&db).await?;
        let machines = store::boot_machines(&db).await?;
        let index = ArcSwap::from_pointee(BootIndex::build(version, catalog, machines));
        let boots = boots::Boots::new(db.clone(), boots::Retention::default());
        let renders = tokio::sync::Semaphore::new(RENDERS_AT_ONCE);
        let report_tokens = report_tokens::ReportTokens::new(db.chain_key());
        Ok(Provisioner { db, index, rebuilding: Default::default(), assets_dir, boots, renders, report_tokens })
    }

    /// A turn among the renderings that may run at once.
    pub async fn render_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AppError> {
        // The semaphore is never closed; say so in words should that ever change.
        self.renders.acquire().await.map_err(|_| AppError::Upstream { message: "Rendering has stopped.".into() })
    }

    /// Keeps this much boot history instead of the default.
    pub fn with_boot_retention(mut self, retention: boots::Retention) -> Provisioner {
        self.boots = boots::Boots::new(self.db.clone(), retention);
        self
    }

    /// Keeps boot events the database does not take in a spool file at `path` until it does
    /// (and writes what an earlier run left there).
    pub fn with_boot_spool(mut self, path: PathBuf) -> std::io::Result<Provisioner> {
        match boots::spool::Spool::open(path.clone())? {
            Some(spool) => self.boots.keep_spool(spool),
            None => tracing::warn!(
                spool = %path.display(),
                "another process keeps this data directory's boot spool: boot events the database does not take \
                 will be dropped; give each replica a data directory of its own"
            ),
        }
        Ok(self)
    }

    /// The index boot requests are answered from.
    pub fn index(&self) -> Arc<BootIndex> {
        self.index.load_full()
    }

    /// Rebuilds the index if the catalog moved since it was built; whether it did.
    pub async fn refresh(&self) -> Result<bool, Error> {
        let _one_at_a_time = self.rebuilding.lock().await;
        if store::version(&self.db).await? == self.index.load().version {
            return Ok(false);
        }
        let (version, catalog) = store::load(&self.db).await?;
        let machines = store::boot_machines(&self.db).await?;
        let index = tokio::task::spawn_blocking(move || BootIndex::build(version, catalog, machines)).await?;
        tracing::info!(version, groups = index.group_count(), "rebuilt the boot index");
        self.index.store(Arc::new(index));
        Ok(true)
    }

    /// After a change commits here: the boot listener serves it at once.
    async fn changed(&self) {
        if let Err(e) = self.refresh().await {
            tracing::error!(error = %e, "could not rebuild the boot index after a change; the next poll tries again");
        }
    }

    /// Follows changes made by other replicas (and the command line) every [`CATALOG_POLL`].
    pub fn follow_changes(self: &Arc<Self>, background: &crate::background::Background) {
        let me = self.clone();
        background.every(CATALOG_POLL, move || {
            let me = me.clone();
            async move {
                if let Err(e) = me.refresh().await {
                    tracing::warn!(error = %e, "could not check the provisioning catalog for changes");
                }
            }
        });
    }

    /// Checks a permission; a refusal is recorded in the audit log as denied.
    pub async fn allow(&self, who: &Principal, permission: Permission, action: &'static str) -> Result<(), AppError> {
        audit::settle(&self.db, who, Event::new(action, "provisioning"), authorize(who, permission)).await
    }

    pub async fn catalog(&self, who: &Principal) -> Result<Catalog, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let mut catalog = store::load(&self.db).await.or_internal()?.1;
        for t in &mut catalog.templates {
            t.content = shown_to(who, &t.content);
        }
        Ok(catalog)
    }

    pub async fn profile(&self, who: &Principal, id: &str) -> Result<Profile, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        store::profile(&mut conn, id).await.or_internal()?.ok_or_else(|| not_found("profile", id))
    }

    pub async fn group(&self, who: &Principal, id: &str) -> Result<Group, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        store::group(&mut conn, id).await.or_internal()?.ok_or_else(|| not_found("group", id))
    }

    pub async fn template(&self, who: &Principal, kind: TemplateKind, id: &str) -> Result<TemplateFile, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let mut template =
            store::template(&mut conn, kind, id).await.or_internal()?.ok_or_else(|| not_found("template", id))?;
        template.content = shown_to(who, &template.content);
        Ok(template)
    }

    /// Creates or replaces a profile.
    pub async fn put_profile(&self, who: &Principal, profile: Profile) -> Result<Profile, AppError> {
        let event = Event::new("provisioning.profile.put", "profile").target(&profile.id, &profile.name);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            profile.check().map_err(AppError::invalid)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let before = store::profile(&mut tx, &profile.id).await.or_internal()?;
            store::put_profile(&mut tx, &profile, &crate::db::now()).await.or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(&mut tx, who, event.clone().summary(json!({ "before": before, "after": profile })))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(profile)
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Creates or replaces a group; its profile must exist.
    pub async fn put_group(&self, who: &Principal, group: Group) -> Result<Group, AppError> {
        let event = Event::new("provisioning.group.put", "group").target(&group.id, &group.name);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            let group = group.normalize().map_err(AppError::invalid)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            self.require_profile(&mut tx, &group.profile).await?;
            let before = store::group(&mut tx, &group.id).await.or_internal()?;
            store::put_group(&mut tx, &group, &crate::db::now()).await.or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(&mut tx, who, event.clone().summary(json!({ "before": before, "after": group })))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(group)
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Creates or replaces a template; it must parse (raw Ignition must be valid Ignition).
    pub async fn put_template(&self, who: &Principal, template: TemplateFile) -> Result<TemplateFile, AppError> {
        let event = Event::new("provisioning.template.put", "template").target(template.kind.as_str(), &template.id);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            check_served(self.index(), template.clone()).await?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let before = store::template(&mut tx, template.kind, &template.id).await.or_internal()?;
            store::put_template(&mut tx, &template, &crate::db::now()).await.or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            let summary = json!({ "kind": template.kind, "sha256_before": digest(&before), "sha256_after": sha256(&template.content) });
            audit::append(&mut tx, who, event.clone().summary(summary)).await.or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(template)
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Deletes a profile nothing names (no group, machine or cluster default).
    pub async fn delete_profile(&self, who: &Principal, id: &str) -> Result<(), AppError> {
        let event = Event::new("provisioning.profile.delete", "profile").target(id, id);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let users = store::profile_users(&mut tx, id).await.or_internal()?;
            if !users.is_empty() {
                return Err(AppError::Conflict {
                    message: format!("Profile {id} is used by {}; change or delete them first.", users.join(", ")),
                    fields: Vec::new(),
                });
            }
            let before = store::profile(&mut tx, id).await.or_internal()?.ok_or_else(|| not_found("profile", id))?;
            store::delete(&mut tx, Deletion::Profile(id)).await.or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(&mut tx, who, event.clone().summary(json!({ "before": before }))).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        self.settled(who, event, result).await
    }

    pub async fn delete_group(&self, who: &Principal, id: &str) -> Result<(), AppError> {
        let event = Event::new("provisioning.group.delete", "group").target(id, id);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let before = store::group(&mut tx, id).await.or_internal()?.ok_or_else(|| not_found("group", id))?;
            store::delete(&mut tx, Deletion::Group(id)).await.or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(&mut tx, who, event.clone().summary(json!({ "before": before }))).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Deletes a template no profile names.
    pub async fn delete_template(&self, who: &Principal, kind: TemplateKind, id: &str) -> Result<(), AppError> {
        let event = Event::new("provisioning.template.delete", "template").target(kind.as_str(), id);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let users = store::profiles_using(&mut tx, kind, id).await.or_internal()?;
            if !users.is_empty() {
                return Err(AppError::Conflict {
                    message: format!("Template {id} is used by profile(s) {}; change them first.", users.join(", ")),
                    fields: Vec::new(),
                });
            }
            let before = store::template(&mut tx, kind, id).await.or_internal()?;
            if before.is_none() {
                return Err(not_found("template", id));
            }
            store::delete(&mut tx, Deletion::Template(kind, id)).await.or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(
                &mut tx,
                who,
                event.clone().summary(json!({ "kind": kind, "sha256_before": digest(&before) })),
            )
            .await
            .or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Gives the inventory machine `mac` a profile of its own; an empty profile takes it away
    /// (the machine then gets its cluster and role's default, if any).
    pub async fn set_machine_profile(
        &self,
        who: &Principal,
        mac: &str,
        profile: &str,
    ) -> Result<MachineProfile, AppError> {
        let event = Event::new("provisioning.machine_profile.set", "machine").target(mac, profile);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            let mac: app::machines::mac::MacAddr =
                mac.trim().parse().map_err(|e: app::machines::mac::InvalidMac| AppError::invalid(e.to_string()))?;
            let mac = mac.to_string();
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let profile = profile.trim();
            if !profile.is_empty() {
                self.require_profile(&mut tx, profile).await?;
            }
            let before =
                store::set_machine_profile(&mut tx, &mac, Some(profile).filter(|p| !p.is_empty()), &crate::db::now())
                    .await
                    .or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(
                &mut tx,
                who,
                event.clone().target(&mac, profile).summary(json!({ "before": before, "after": profile })),
            )
            .await
            .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(MachineProfile { mac, profile: profile.to_string() })
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Sets the profile inventory machines of a cluster and role get; an empty profile removes it.
    pub async fn set_default(&self, who: &Principal, default: DefaultProfile) -> Result<DefaultProfile, AppError> {
        let event = Event::new("provisioning.default.set", "provisioning")
            .target(format!("{}/{}", default.cluster, default.role), &default.profile);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            let role: app::machines::fields::Role = default.role.parse().map_err(AppError::invalid)?;
            let cluster = default.cluster.trim();
            if !cluster.is_empty() {
                cluster.parse::<app::machines::fields::ClusterName>().map_err(AppError::invalid)?;
            }
            let profile = default.profile.trim();
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            if !profile.is_empty() {
                self.require_profile(&mut tx, profile).await?;
            }
            let before = store::set_default(
                &mut tx,
                cluster,
                role.as_str(),
                Some(profile).filter(|p| !p.is_empty()),
                &crate::db::now(),
            )
            .await
            .or_internal()?;
            store::bump_version(&mut tx).await.or_internal()?;
            audit::append(&mut tx, who, event.clone().summary(json!({ "before": before, "after": profile })))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(DefaultProfile {
                cluster: cluster.to_string(),
                role: role.as_str().to_string(),
                profile: profile.to_string(),
            })
        }
        .await;
        self.settled(who, event, result).await
    }

    async fn require_profile(&self, conn: &mut sqlx::AnyConnection, profile: &str) -> Result<(), AppError> {
        match store::profile(conn, profile).await.or_internal()? {
            Some(_) => Ok(()),
            None => Err(AppError::invalid(format!("Profile \"{profile}\" does not exist; create it first."))),
        }
    }

    /// Writes a checked import whole, in one transaction with its audit record.
    pub async fn import(&self, who: &Principal, plan: &import::ImportPlan) -> Result<ImportOutcome, AppError> {
        let event = Event::new("provisioning.import", "provisioning").target("", &plan.source);
        let result = async {
            authorize(who, Permission::ChangeProvisioning)?;
            if !plan.errors.is_empty() {
                return Err(AppError::invalid(format!(
                    "The import has {} error(s); nothing was written. First: {}",
                    plan.errors.len(),
                    plan.errors[0]
                )));
            }
            let now = crate::db::now();
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            for p in &plan.catalog.profiles {
                store::put_profile(&mut tx, p, &now).await.or_internal()?;
            }
            for g in &plan.catalog.groups {
                store::put_group(&mut tx, g, &now).await.or_internal()?;
            }
            let mut digests = serde_json::Map::new();
            for t in &plan.catalog.templates {
                store::put_template(&mut tx, t, &now).await.or_internal()?;
                digests.insert(format!("{}/{}", t.kind.as_str(), t.id), json!(sha256(&t.content)));
            }
            store::bump_version(&mut tx).await.or_internal()?;
            let summary = outcome(plan, true);
            audit::append(
                &mut tx,
                who,
                event.clone().summary(json!({ "counts": summary, "template_sha256": digests })),
            )
            .await
            .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(summary)
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Checks the profiles, groups and templates another area generated (cluster creation's):
    /// each template must parse, each id be valid. Before [`Provisioner::put_generated`], outside
    /// its transaction.
    pub async fn check_generated(&self, catalog: &Catalog) -> Result<(), AppError> {
        for t in &catalog.templates {
            check_served(self.index(), t.clone()).await?;
        }
        for p in &catalog.profiles {
            p.check().map_err(AppError::invalid)?;
        }
        for g in &catalog.groups {
            g.clone().normalize().map_err(AppError::invalid)?;
        }
        Ok(())
    }

    /// Writes a checked generated catalog in that area's transaction, which records its audit.
    /// Call [`Provisioner::generated_changed`] once it commits.
    pub async fn put_generated(&self, conn: &mut sqlx::AnyConnection, catalog: &Catalog) -> Result<(), AppError> {
        let now = crate::db::now();
        for t in &catalog.templates {
            store::put_template(conn, t, &now).await.or_internal()?;
        }
        for p in &catalog.profiles {
            store::put_profile(conn, p, &now).await.or_internal()?;
        }
        for g in &catalog.groups {
            let g = g.clone().normalize().map_err(AppError::invalid)?;
            store::put_group(conn, &g, &now).await.or_internal()?;
        }
        store::bump_version(conn).await.or_internal()
    }

    /// Removes what [`Provisioner::put_generated`] wrote, in the caller's transaction.
    pub async fn remove_generated(&self, conn: &mut sqlx::AnyConnection, catalog: &Catalog) -> Result<(), AppError> {
        for g in &catalog.groups {
            store::delete(conn, store::Deletion::Group(&g.id)).await.or_internal()?;
        }
        for p in &catalog.profiles {
            store::delete(conn, store::Deletion::Profile(&p.id)).await.or_internal()?;
        }
        for t in &catalog.templates {
            store::delete(conn, store::Deletion::Template(t.kind, &t.id)).await.or_internal()?;
        }
        store::bump_version(conn).await.or_internal()
    }

    /// Rebuilds the boot index after another area's transaction changed the catalog.
    pub async fn generated_changed(&self) {
        self.changed().await;
    }

    /// Records a refusal or failure (a success was recorded with the change); refreshes the
    /// index after a success.
    async fn settled<T>(&self, who: &Principal, event: Event, result: Result<T, AppError>) -> Result<T, AppError> {
        match result {
            Ok(value) => {
                self.changed().await;
                Ok(value)
            }
            Err(e) => audit::settle(&self.db, who, event, Err(e)).await,
        }
    }
}

/// What an import found and whether it was written.
fn outcome(plan: &import::ImportPlan, committed: bool) -> ImportOutcome {
    ImportOutcome {
        profiles: plan.catalog.profiles.len(),
        groups: plan.catalog.groups.len(),
        templates: plan.catalog.templates.len(),
        errors: plan.errors.clone(),
        warnings: plan.warnings.clone(),
        committed,
    }
}

impl Provisioner {
    /// What a machine asking with `query` gets from the boot listener now, and why.
    pub async fn explain(&self, who: &Principal, query: &str) -> Result<Explanation, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let query = query.trim().trim_start_matches('?').to_string();
        let index = self.index();
        let who = who.clone();
        // It renders templates: off the async workers, a turn among the boot listener's.
        let _permit = self.render_turn().await?;
        tokio::task::spawn_blocking(move || {
            let labels = index::labels_from_query(&query);
            // A viewer learns where the machine's report token goes, never the token.
            let served = |endpoint| match boot::answer(&index, endpoint, &labels, &query, report_tokens::SHOWN) {
                Ok(answer) => Served { body: Some(shown_to(&who, answer.body.as_ref())), missing: None },
                Err(unanswered) => Served { body: None, missing: Some(unanswered.miss.to_string()) },
            };
            let group = index.select(&labels);
            Explanation {
                group: group.map(|g| g.id.clone()),
                candidates: index.candidates(&labels),
                profile: group.and_then(|g| index.profile_of(g).ok()).cloned(),
                ipxe: served(boot::Endpoint::Ipxe),
                ignition: served(boot::Endpoint::Ignition),
                generic: served(boot::Endpoint::Generic),
                metadata: served(boot::Endpoint::Metadata),
                labels,
            }
        })
        .await
        .or_internal()
    }
}

#[async_trait::async_trait]
impl app::provisioning::ssr::ProvisioningService for Provisioner {
    async fn catalog(&self, who: &Principal) -> Result<Catalog, AppError> {
        Provisioner::catalog(self, who).await
    }
    async fn put_profile(&self, who: &Principal, profile: Profile) -> Result<Profile, AppError> {
        Provisioner::put_profile(self, who, profile).await
    }
    async fn put_group(&self, who: &Principal, group: Group) -> Result<Group, AppError> {
        Provisioner::put_group(self, who, group).await
    }
    async fn put_template(&self, who: &Principal, template: TemplateFile) -> Result<TemplateFile, AppError> {
        Provisioner::put_template(self, who, template).await
    }
    async fn delete_profile(&self, who: &Principal, id: &str) -> Result<(), AppError> {
        Provisioner::delete_profile(self, who, id).await
    }
    async fn delete_group(&self, who: &Principal, id: &str) -> Result<(), AppError> {
        Provisioner::delete_group(self, who, id).await
    }
    async fn delete_template(&self, who: &Principal, kind: TemplateKind, id: &str) -> Result<(), AppError> {
        Provisioner::delete_template(self, who, kind, id).await
    }
    async fn explain(&self, who: &Principal, query: &str) -> Result<Explanation, AppError> {
        Provisioner::explain(self, who, query).await
    }
    async fn set_machine_profile(&self, who: &Principal, mac: &str, profile: &str) -> Result<MachineProfile, AppError> {
        Provisioner::set_machine_profile(self, who, mac, profile).await
    }
    async fn set_default(&self, who: &Principal, default: DefaultProfile) -> Result<DefaultProfile, AppError> {
        Provisioner::set_default(self, who, default).await
    }
    async fn preview_template(
        &self,
        who: &Principal,
        template: TemplateFile,
        query: &str,
    ) -> Result<TemplatePreview, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let query = query.trim().trim_start_matches('?').to_string();
        let index = self.index();
        // Checked and rendered off the async workers, a turn among the boot listener's renderings.
        let _permit = self.render_turn().await?;
        tokio::task::spawn_blocking(move || preview(&index, &template, &query)).await.or_internal()
    }
    async fn import_files(
        &self,
        who: &Principal,
        files: std::collections::BTreeMap<String, String>,
        dry_run: bool,
    ) -> Result<ImportOutcome, AppError> {
        self.allow(who, Permission::ChangeProvisioning, "provisioning.import").await?;
        let plan = tokio::task::spawn_blocking(move || import::plan_files("upload", &files)).await.or_internal()?;
        if dry_run || !plan.errors.is_empty() {
            return Ok(outcome(&plan, false));
        }
        self.import(who, &plan).await
    }
    async fn timeline(&self, who: &Principal, mac: &str) -> Result<app::provisioning::boots::Timeline, AppError> {
        Provisioner::timeline(self, who, mac).await
    }
    async fn discovered(&self, who: &Principal) -> Result<Vec<app::provisioning::boots::Discovered>, AppError> {
        Provisioner::discovered(self, who).await
    }
    fn refused_boot_requests(&self) -> Vec<(&'static str, u64)> {
        self.boots.refused().into_iter().map(|(why, n)| (why.in_words(), n)).collect()
    }
    fn discovered_gave_way(&self) -> (u64, u32) {
        (self.boots.gave_way(), self.boots.retention.discovered)
    }
    async fn adopt(
        &self,
        who: &Principal,
        request: app::provisioning::boots::AdoptDiscovered,
    ) -> Result<Vec<String>, AppError> {
        Provisioner::adopt(self, who, request).await
    }
    async fn boot_activity(&self, who: &Principal) -> Result<app::provisioning::boots::BootActivity, AppError> {
        Provisioner::boot_activity(self, who).await
    }
}

/// A template as the machine that `query` describes would get it, or why it would get nothing.
fn preview(index: &BootIndex, template: &TemplateFile, query: &str) -> TemplatePreview {
    let parsed = match check_template(template) {
        Ok(parsed) => parsed,
        Err(problem) => return TemplatePreview { problem: Some(problem), ..Default::default() },
    };
    let labels = index::labels_from_query(query);
    let Some(group) = index.select(&labels) else {
        return TemplatePreview { problem: Some(index::Miss::NoGroup.to_string()), ..Default::default() };
    };
    let data = index::rendering_data(group, &labels, query, report_tokens::SHOWN);
    let rendered = match parsed {
        None => ignition::upgrade_raw(&template.content).map(|c| c.to_string()).map_err(|e| e.to_string()),
        Some(parsed) => parsed.render(&data).map_err(|e| e.to_string()).and_then(|text| match template.kind {
            TemplateKind::Ignition => {
                butane::translate(&text).map(|c| c.to_string()).map_err(|e| format!("Butane: {e}"))
            }
            TemplateKind::Generic => Ok(text),
        }),
    };
    let (output, problem) = match rendered {
        Ok(output) => (Some(output), None),
        Err(problem) => (None, Some(problem)),
    };
    TemplatePreview { problem, output, group: Some(group.id.clone()) }
}

fn not_found(what: &str, id: &str) -> AppError {
    AppError::not_found(format!("There is no {what} \"{id}\"."))
}
