//! The provisioning service the server implements, as pages and the JSON API call it. Only
//! compiled for the server.

use super::boots::{AdoptDiscovered, BootActivity, Discovered, Timeline};
use super::{
    Catalog, DefaultProfile, Explanation, Group, ImportOutcome, MachineProfile, Profile, TemplateFile, TemplateKind,
    TemplatePreview,
};
use crate::access::Principal;
use crate::error::AppError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// All that can be done with profiles, groups and templates; each method authorizes its caller.
#[async_trait::async_trait]
pub trait ProvisioningService: Send + Sync + 'static {
    async fn catalog(&self, who: &Principal) -> Result<Catalog, AppError>;
    async fn put_profile(&self, who: &Principal, profile: Profile) -> Result<Profile, AppError>;
    async fn put_group(&self, who: &Principal, group: Group) -> Result<Group, AppError>;
    async fn put_template(&self, who: &Principal, template: TemplateFile) -> Result<TemplateFile, AppError>;
    async fn delete_profile(&self, who: &Principal, id: &str) -> Result<(), AppError>;
    async fn delete_group(&self, who: &Principal, id: &str) -> Result<(), AppError>;
    async fn delete_template(&self, who: &Principal, kind: TemplateKind, id: &str) -> Result<(), AppError>;
    /// What a machine asking with this query string (`mac=…&os=…`) gets, and why.
    async fn explain(&self, who: &Principal, query: &str) -> Result<Explanation, AppError>;
    /// Gives an inventory machine a profile of its own (`""` takes it away).
    async fn set_machine_profile(&self, who: &Principal, mac: &str, profile: &str) -> Result<MachineProfile, AppError>;
    /// Sets the default profile of a cluster and role (`""` removes it).
    async fn set_default(&self, who: &Principal, default: DefaultProfile) -> Result<DefaultProfile, AppError>;
    /// Checks a template without saving it: it must parse, and it is rendered (and translated)
    /// with the data of the group a machine sending `query` matches.
    async fn preview_template(
        &self,
        who: &Principal,
        template: TemplateFile,
        query: &str,
    ) -> Result<TemplatePreview, AppError>;
    /// Checks a Matchbox data directory's files (by relative path) and, unless `dry_run` or an
    /// error, writes them all in one transaction.
    async fn import_files(
        &self,
        who: &Principal,
        files: BTreeMap<String, String>,
        dry_run: bool,
    ) -> Result<ImportOutcome, AppError>;
    /// A machine's boot state and recent boot events.
    async fn timeline(&self, who: &Principal, mac: &str) -> Result<Timeline, AppError>;
    /// MACs that asked to boot and are not in the inventory.
    async fn discovered(&self, who: &Principal) -> Result<Vec<Discovered>, AppError>;
    /// Boot requests refused before an answer since this server started, by why (over the
    /// per-address rate, over the per-MAC rate, a query over its bounds), in words.
    fn refused_boot_requests(&self) -> Vec<(&'static str, u64)>;
    /// How many discovered machines gave way to newly seen MACs since this server started, and
    /// the list's limit.
    fn discovered_gave_way(&self) -> (u64, u32);
    /// Adds discovered machines to the inventory, all or none; their MACs.
    async fn adopt(&self, who: &Principal, request: AdoptDiscovered) -> Result<Vec<String>, AppError>;
    /// Boots per minute over the last hour.
    async fn boot_activity(&self, who: &Principal) -> Result<BootActivity, AppError>;
}

/// The service, as the server puts it into each request's context.
pub type SharedProvisioningService = Arc<dyn ProvisioningService>;
