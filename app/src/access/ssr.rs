//! The access service interface the server implements.

use super::{AccessOverview, Binding, ConsoleRole, NewToken, Principal, SessionInfo, TokenInfo};
use crate::error::AppError;
use std::sync::Arc;

/// Everything on the Access page. Each method authorizes and audits inside itself.
#[async_trait::async_trait]
pub trait AccessService: Send + Sync + 'static {
    async fn overview(&self, who: &Principal) -> Result<AccessOverview, AppError>;
    async fn bindings(&self, who: &Principal) -> Result<Vec<Binding>, AppError>;
    async fn bind(
        &self,
        who: &Principal,
        subject_kind: String,
        subject: String,
        role: ConsoleRole,
        cluster: Option<String>,
    ) -> Result<(), AppError>;
    async fn unbind(&self, who: &Principal, id: i64) -> Result<(), AppError>;
    async fn tokens(&self, who: &Principal) -> Result<Vec<TokenInfo>, AppError>;
    async fn create_token(
        &self,
        who: &Principal,
        name: String,
        role: ConsoleRole,
        expires_in_days: Option<u32>,
        cluster_user: String,
        cluster_groups: Vec<String>,
    ) -> Result<NewToken, AppError>;
    async fn revoke_token(&self, who: &Principal, id: i64) -> Result<(), AppError>;
    /// The caller's own sessions, newest first.
    async fn my_sessions(&self, who: &Principal) -> Result<Vec<SessionInfo>, AppError>;
}

pub type SharedAccessService = Arc<dyn AccessService>;
