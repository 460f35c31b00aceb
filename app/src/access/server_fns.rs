//! The Access page's endpoints: each calls one service method, which authorizes and audits.

use super::{AccessOverview, Binding, ConsoleRole, NewToken, SessionInfo, TokenInfo};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "access_overview")]
pub async fn load_access_overview() -> Result<AccessOverview, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move { svc.overview(&who).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_bindings")]
pub async fn list_bindings() -> Result<Vec<Binding>, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move { svc.bindings(&who).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "bind_role")]
pub async fn bind_role(
    subject_kind: String,
    subject: String,
    role: ConsoleRole,
    cluster: Option<String>,
) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move {
        svc.bind(&who, subject_kind, subject, role, cluster).await
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "unbind_role")]
pub async fn unbind_role(id: i64) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move { svc.unbind(&who, id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move { svc.tokens(&who).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "create_token")]
pub async fn create_token(
    name: String,
    role: ConsoleRole,
    expires_in_days: Option<u32>,
    /// Whom Pangea acts as in clusters for the token (default `pangea:token:<name>`).
    cluster_user: Option<String>,
    cluster_groups: Option<Vec<String>>,
) -> Result<NewToken, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move {
        let (user, groups) = (cluster_user.unwrap_or_default(), cluster_groups.unwrap_or_default());
        svc.create_token(&who, name, role, expires_in_days, user, groups).await
    })
    .await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<(), AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move { svc.revoke_token(&who, id).await }).await
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "my_sessions")]
pub async fn my_sessions() -> Result<Vec<SessionInfo>, AppError> {
    crate::ssr::call(|svc: super::ssr::SharedAccessService, who| async move { svc.my_sessions(&who).await }).await
}
