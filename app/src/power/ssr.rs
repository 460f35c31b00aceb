//! The power service interface the server implements. Only compiled for the server.

use super::{
    Bmc, BmcInput, Discovery, DiscoveryInput, HardwareRecord, PowerAction, PowerRun, PowerRunInput, PowerRunPlan,
    PowerStatus,
};
use crate::access::Principal;
use crate::error::AppError;
use std::sync::Arc;

/// All that can be done with machines' BMCs and power. The GUI's server functions and the JSON
/// API both call exactly these methods, and each method authorizes its caller itself.
#[async_trait::async_trait]
pub trait PowerService: Send + Sync + 'static {
    /// A machine's BMC, or `None`.
    async fn bmc(&self, who: &Principal, id: i64) -> Result<Option<Bmc>, AppError>;
    /// Sets a machine's BMC once it checks out.
    async fn set_bmc(&self, who: &Principal, id: i64, input: BmcInput) -> Result<Bmc, AppError>;
    async fn remove_bmc(&self, who: &Principal, id: i64) -> Result<(), AppError>;
    /// Asks for a power action; the power as the request left it.
    async fn act(&self, who: &Principal, id: i64, action: PowerAction) -> Result<PowerStatus, AppError>;
    /// A machine's hardware as last read from its BMC, or `None` before its first read.
    async fn hardware(&self, who: &Principal, id: i64) -> Result<Option<HardwareRecord>, AppError>;
    /// Forgets a machine's hardware changes once a person has seen them; how many there were.
    async fn acknowledge_hardware(&self, who: &Principal, id: i64) -> Result<usize, AppError>;
    /// A power run's plan, asking nothing of any BMC.
    async fn plan_run(&self, who: &Principal, input: PowerRunInput) -> Result<PowerRunPlan, AppError>;
    /// Starts a power run (a durable job); its id.
    async fn start_run(&self, who: &Principal, input: PowerRunInput) -> Result<String, AppError>;
    async fn power_run(&self, who: &Principal, job: &str) -> Result<PowerRun, AppError>;
    /// Pauses (or resumes) a power run.
    async fn pause_run(&self, who: &Principal, job: &str, paused: bool) -> Result<(), AppError>;
    async fn cancel_run(&self, who: &Principal, job: &str) -> Result<(), AppError>;
    /// Starts asking BMCs for their systems (a durable job); its id.
    async fn start_discovery(&self, who: &Principal, input: DiscoveryInput) -> Result<String, AppError>;
    async fn discovery(&self, who: &Principal, job: &str) -> Result<Discovery, AppError>;
    /// The systems a discovery found that are not machines yet, as an import with their BMCs:
    /// checked only with `dry_run`, else written (all or none).
    async fn import_discovered(
        &self,
        who: &Principal,
        job: &str,
        dry_run: bool,
    ) -> Result<crate::machines::ImportReport, AppError>;
}

/// The service, as the server puts it into each request's context.
pub type SharedPowerService = Arc<dyn PowerService>;
