//! The overview service the server implements. Only compiled for the server.

use super::Fleet;
use crate::access::Principal;
use crate::error::AppError;
use std::sync::Arc;

#[async_trait::async_trait]
pub trait OverviewService: Send + Sync + 'static {
    /// The fleet at a glance, as `who` may see it.
    async fn fleet(&self, who: &Principal) -> Result<Fleet, AppError>;
}

pub type SharedOverviewService = Arc<dyn OverviewService>;
