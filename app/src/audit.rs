//! The audit log as the Audit page and the API show it.

#[cfg(feature = "ssr")]
pub mod ssr;

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// One record of the audit log, every column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Sequence number: records are chained in this order.
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: String,
    /// `local`, `oidc`, `token`, `cli` or `none`.
    pub auth_method: String,
    pub roles: String,
    /// Dotted verb, such as `machine.create` or `session.login`.
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub target_name: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// JSON: before/after for edits, the error for failures.
    pub summary: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters for the audit log; every given filter must match. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
pub struct AuditQuery {
    /// Exactly this actor, e.g. `alice@example.com` or `token:ci`.
    #[serde(default)]
    pub actor: Option<String>,
    /// This action, or a family of them with a trailing `*` (e.g. `machine.*`).
    #[serde(default)]
    pub action: Option<String>,
    /// The target's id or name.
    #[serde(default)]
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// At or after this time (RFC 3339 or a prefix such as `2026-11-25`).
    #[serde(default)]
    pub from: Option<String>,
    /// Before this time (RFC 3339 or a prefix).
    #[serde(default)]
    pub to: Option<String>,
    /// The `next` cursor of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
    /// 1 to 500; 50 when absent.
    #[serde(default)]
    pub limit: Option<u32>,
}

impl AuditQuery {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page.
    pub next: Option<i64>,
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_audit")]
pub async fn list_audit(query: AuditQuery) -> Result<AuditPage, AppError> {
    crate::ssr::call(|svc: ssr::SharedAuditService, who| async move { svc.search(&who, query).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "get_audit_entry")]
pub async fn get_audit_entry(id: i64) -> Result<AuditEntry, AppError> {
    crate::ssr::call(|svc: ssr::SharedAuditService, who| async move { svc.get(&who, id).await }).await
}
