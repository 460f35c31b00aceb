//! The Access page's endpoints: each calls one service method, which authorizes and audits.

use super::{AccessOverview, Binding, ConsoleRole, NewToken, SessionInfo, TokenInfo};
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
macro_rules! call_access {
    (|$svc:ident, $who:ident| $body:expr) => {{
        use crate::machines::ssr::{principal, with_status};
        with_status(
            async {
                let $svc = super::ssr::access_service()?;
                let $who = principal().await?;
                $body.await
            }
            .await,
        )
    }};
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "access_overview")]
pub async fn load_access_overview() -> Result<AccessOverview, AppError> {
    call_access!(|svc, who| svc.overview(&who))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_bindings")]
pub async fn list_bindings() -> Result<Vec<Binding>, AppError> {
    call_access!(|svc, who| svc.bindings(&who))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "bind_role")]
pub async fn bind_role(subject_kind: String, subject: String, role: ConsoleRole) -> Result<(), AppError> {
    call_access!(|svc, who| svc.bind(&who, subject_kind, subject, role))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "unbind_role")]
pub async fn unbind_role(id: i64) -> Result<(), AppError> {
    call_access!(|svc, who| svc.unbind(&who, id))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "list_tokens")]
pub async fn list_tokens() -> Result<Vec<TokenInfo>, AppError> {
    call_access!(|svc, who| svc.tokens(&who))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "create_token")]
pub async fn create_token(name: String, role: ConsoleRole, expires_in_days: Option<u32>) -> Result<NewToken, AppError> {
    call_access!(|svc, who| svc.create_token(&who, name, role, expires_in_days))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<(), AppError> {
    call_access!(|svc, who| svc.revoke_token(&who, id))
}

#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "my_sessions")]
pub async fn my_sessions() -> Result<Vec<SessionInfo>, AppError> {
    call_access!(|svc, who| svc.my_sessions(&who))
}
