//! The signed-in person, as the pages see them.

use crate::access::{ConsoleRole, Permission};
use crate::error::AppError;
use crate::resource::resource;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// Who is signed in to this browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: Option<ConsoleRole>,
    /// Roles for one cluster only, by cluster name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cluster_roles: std::collections::BTreeMap<String, ConsoleRole>,
    /// `local` or `oidc`.
    pub method: String,
    /// What the identity provider sent that Pangea did not use, and why (e.g. Kubernetes' own
    /// groups it dropped, or a missing groups claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Me {
    /// Whether this person's role allows `permission` (the role model decides; pages only ask).
    pub fn may(&self, permission: Permission) -> bool {
        self.role.is_some_and(|role| role.allows(permission))
            || (permission.per_cluster() && self.cluster_roles.values().any(|r| r.allows(permission)))
    }

    /// Whether this person may do `permission` on `cluster`.
    pub fn may_in(&self, permission: Permission, cluster: &str) -> bool {
        let here = if permission.per_cluster() { self.cluster_roles.get(cluster).copied() } else { None };
        self.role.max(here).is_some_and(|role| role.allows(permission))
    }
}

/// Shows `children` to people who hold `permission`, and to everyone else a note saying which
/// role the page needs (the server answers such a page with 403).
#[component]
pub fn RequirePermission(permission: Permission, what: &'static str, children: ChildrenFn) -> impl IntoView {
    let me = resource(|| (), |_| current_user());
    view! {
        <Suspense fallback=|| view! { <div class="skeleton-row"></div> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    let me = me.await.ok().flatten();
                    if me.as_ref().is_some_and(|m| m.may(permission)) {
                        children().into_any()
                    } else {
                        let least = [ConsoleRole::Viewer, ConsoleRole::Operator, ConsoleRole::Admin]
                            .into_iter()
                            .find(|r| r.allows(permission))
                            .unwrap_or(ConsoleRole::Admin);
                        view! {
                            <div class="alert error" role="alert">
                                {format!("{what} needs the {} role; ask an admin.", least.as_str())}
                            </div>
                        }
                        .into_any()
                    }
                })
            }}
        </Suspense>
    }
}

/// The signed-in person, or `None`: answers every caller about themselves only.
#[server(input = Json, output = Json, prefix = "/api/gui", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    use crate::access::Identity;
    let who = crate::ssr::principal().await?;
    Ok(match who.identity {
        Identity::Anonymous | Identity::Token { .. } | Identity::Cli { .. } | Identity::Certificate { .. } => None,
        Identity::Local { .. } | Identity::Oidc { .. } => Some(Me {
            name: who.actor(),
            role: who.role,
            cluster_roles: who.cluster_roles.clone(),
            method: who.auth_method().into(),
            note: match &who.identity {
                Identity::Oidc { groups_note, .. } => groups_note.clone(),
                _ => None,
            },
        }),
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
    crate::ssr::service::<LoginOptions>()
}
