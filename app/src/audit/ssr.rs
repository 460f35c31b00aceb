//! The audit service interface the server implements.

use super::{AuditEntry, AuditPage, AuditQuery};
use crate::access::Principal;
use crate::error::AppError;
use std::sync::Arc;

/// Reading the audit log; only admins may.
#[async_trait::async_trait]
pub trait AuditService: Send + Sync + 'static {
    async fn search(&self, who: &Principal, query: AuditQuery) -> Result<AuditPage, AppError>;
    async fn get(&self, who: &Principal, id: i64) -> Result<AuditEntry, AppError>;
}

pub type SharedAuditService = Arc<dyn AuditService>;
