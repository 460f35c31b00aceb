//! The power service interface the server implements. Only compiled for the server.

use super::{Bmc, BmcInput, PowerAction, PowerStatus};
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
}

/// The service, as the server puts it into each request's context.
pub type SharedPowerService = Arc<dyn PowerService>;
