//! The machine service interface the server implements, and the glue server functions use to
//! reach it. Only compiled for the server.

use super::{
    ImportFormat, ImportProgress, ImportReport, Machine, MachineClass, MachineClassInput, MachineInput, MachinePage,
    MachineQuery,
};
use crate::access::Principal;
use crate::error::AppError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// All that can be done with machines. The GUI's server functions and the JSON API both call
/// exactly these methods, and each method authorizes its caller itself.
#[async_trait::async_trait]
pub trait MachineService: Send + Sync + 'static {
    async fn list(&self, who: &Principal, query: MachineQuery) -> Result<MachinePage, AppError>;
    async fn get(&self, who: &Principal, id: i64) -> Result<Machine, AppError>;
    async fn create(&self, who: &Principal, input: MachineInput) -> Result<Machine, AppError>;
    async fn update(&self, who: &Principal, id: i64, input: MachineInput) -> Result<Machine, AppError>;
    /// Deletes all of `ids` or, when one is missing, none.
    async fn delete(&self, who: &Principal, ids: Vec<i64>) -> Result<u64, AppError>;
    /// Merges `labels` into each machine's labels (same key: the new value wins).
    async fn add_labels(
        &self,
        who: &Principal,
        ids: Vec<i64>,
        labels: BTreeMap<String, String>,
    ) -> Result<u64, AppError>;
    /// Checks an import and, unless `dry_run`, writes it in one transaction when it has no error.
    async fn import(
        &self,
        who: &Principal,
        format: ImportFormat,
        text: String,
        dry_run: bool,
    ) -> Result<ImportReport, AppError>;
    /// Starts checking an import in the background and returns its job id.
    async fn start_import(&self, who: &Principal, format: ImportFormat, text: String) -> Result<String, AppError>;
    async fn import_progress(&self, who: &Principal, job: String) -> Result<ImportProgress, AppError>;
    /// Writes a previewed import in the background; progress shows in [`Self::import_progress`].
    async fn commit_import(&self, who: &Principal, job: String) -> Result<(), AppError>;
    /// Every machine class, with how many machines each matches now.
    async fn classes(&self, who: &Principal) -> Result<Vec<MachineClass>, AppError>;
    /// Creates or replaces the class `name`; its search is checked first.
    async fn save_class(
        &self,
        who: &Principal,
        name: String,
        input: MachineClassInput,
    ) -> Result<MachineClass, AppError>;
    async fn delete_class(&self, who: &Principal, name: String) -> Result<(), AppError>;
}

/// The service, as the server puts it into each request's context.
pub type SharedMachineService = Arc<dyn MachineService>;
