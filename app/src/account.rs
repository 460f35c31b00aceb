//! The signed-in person, as the pages see them.

use crate::access::ConsoleRole;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// Who is signed in to this browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: Option<ConsoleRole>,
    /// `local` or `oidc`.
    pub method: String,
}

impl Me {
    pub fn is_admin(&self) -> bool {
        self.role == Some(ConsoleRole::Admin)
    }

    /// Whether to offer adding, editing, importing and deleting machines.
    pub fn can_change_machines(&self) -> bool {
        self.role >= Some(ConsoleRole::Operator)
    }
}

/// The signed-in person, or `None`: answers every caller about themselves only.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    use crate::access::Identity;
    let who = crate::machines::ssr::principal().await?;
    Ok(match who.identity {
        Identity::Anonymous | Identity::Token { .. } | Identity::Cli { .. } => None,
        Identity::Local { .. } | Identity::Oidc { .. } => {
            Some(Me { name: who.actor(), role: who.role, method: who.auth_method().into() })
        }
    })
}

/// How people can sign in on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOptions {
    pub single_sign_on: bool,
    pub local_password: bool,
    /// The identity provider's origin: signing out sends the browser there, so forms may too.
    pub idp_origin: Option<String>,
}

/// Public: the login page shows only the ways that work.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "sign_in_methods")]
pub async fn sign_in_methods() -> Result<LoginOptions, AppError> {
    use_context::<LoginOptions>()
        .ok_or_else(|| AppError::Internal { request_id: "no sign-in methods in context".into() })
}
