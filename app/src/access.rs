//! Who is asking, and what they may do. Every service method starts with [`authorize`].

pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A console role, bound to IdP groups or single users on the Access page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ConsoleRole {
    /// Read only.
    Viewer,
    /// Change machines and clusters, run node actions.
    Operator,
    /// Everything, including access settings and the audit log.
    Admin,
}

impl ConsoleRole {
    pub const ALL: [ConsoleRole; 3] = [ConsoleRole::Admin, ConsoleRole::Operator, ConsoleRole::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Viewer => "viewer",
            ConsoleRole::Operator => "operator",
            ConsoleRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<ConsoleRole, String> {
        ConsoleRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("\"{s}\" is not a role: use admin, operator or viewer"))
    }

    /// The role model: what each role may do. Everything else (the server's checks and the
    /// GUI's controls) asks this.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::ViewMachines | Permission::ViewProvisioning | Permission::ViewClusters => true,
            Permission::ChangeMachines
            | Permission::ChangeProvisioning
            | Permission::ActOnNodes
            | Permission::PowerMachines
            | Permission::SilenceAlerts
            | Permission::ManageDashboards => self >= ConsoleRole::Operator,
            Permission::ViewAudit | Permission::ManageAccess | Permission::ManageClusters => self == ConsoleRole::Admin,
        }
    }
}

/// Everything that can be allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ViewMachines,
    ChangeMachines,
    /// Profiles, groups and templates, and what a machine would get.
    ViewProvisioning,
    ChangeProvisioning,
    ViewAudit,
    ManageAccess,
    /// Registered clusters, their nodes and pods.
    ViewClusters,
    /// Register, change and remove clusters.
    ManageClusters,
    /// Cordon, label, taint and drain nodes (the cluster's own RBAC decides next).
    ActOnNodes,
    /// Set machines' BMCs and act on their power (per cluster: that cluster's machines).
    PowerMachines,
    /// Create and expire silences in a cluster's Alertmanager.
    SilenceAlerts,
    /// Import and remove the dashboards Pangea draws (for every cluster).
    ManageDashboards,
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// No session and no token.
    Anonymous,
    /// A person signed in with a local password (the break-glass admin).
    Local { user_id: i64, username: String },
    /// A person signed in through the OpenID provider.
    Oidc {
        user_id: i64,
        username: String,
        groups: Vec<String>,
        /// Why the groups are empty, when the IdP sent no groups claim at all.
        groups_note: Option<String>,
    },
    /// An API token, and whom Pangea acts as for it in clusters when one was configured.
    Token { token_id: i64, name: String, cluster_as: Option<ClusterIdentity> },
    /// The `pangea` command line, run on the host with access to the database.
    Cli { os_user: String },
    /// A client of the gRPC API, by the subject of its verified TLS client certificate.
    Certificate { subject: String },
}

/// The caller of a service method, resolved once per request (or CLI run); kept with a durable
/// job, so whichever replica goes on with it acts, and audits, as the person who started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub identity: Identity,
    /// The highest role bound to this caller for every cluster, if any.
    pub role: Option<ConsoleRole>,
    /// Roles bound to this caller for one cluster only, by cluster name ("team-a is operator on
    /// edge-1 only"); they add to `role` there.
    pub cluster_roles: std::collections::BTreeMap<String, ConsoleRole>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Principal {
    pub fn anonymous(ip: Option<IpAddr>, user_agent: Option<String>) -> Principal {
        Principal { identity: Identity::Anonymous, role: None, cluster_roles: Default::default(), ip, user_agent }
    }

    /// The command line acts with full rights: it needs the database's credentials already.
    pub fn cli() -> Principal {
        let os_user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
        Principal::cli_as(os_user)
    }

    /// The command line, run by the operating-system user `os_user`.
    pub fn cli_as(os_user: String) -> Principal {
        Principal {
            identity: Identity::Cli { os_user },
            role: Some(ConsoleRole::Admin),
            cluster_roles: Default::default(),
            ip: None,
            user_agent: None,
        }
    }

    /// The name the audit log and the GUI show.
    pub fn actor(&self) -> String {
        match &self.identity {
            Identity::Anonymous => "anonymous".into(),
            Identity::Local { username, .. } | Identity::Oidc { username, .. } => username.clone(),
            Identity::Token { name, .. } => format!("token:{name}"),
            Identity::Cli { os_user } => format!("{os_user} (command line)"),
            Identity::Certificate { subject } => format!("cert:{subject}"),
        }
    }

    pub fn auth_method(&self) -> &'static str {
        match self.identity {
            Identity::Anonymous => "none",
            Identity::Local { .. } => "local",
            Identity::Oidc { .. } => "oidc",
            Identity::Token { .. } => "token",
            Identity::Cli { .. } => "cli",
            Identity::Certificate { .. } => "mtls",
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self.identity {
            Identity::Local { user_id, .. } | Identity::Oidc { user_id, .. } => Some(user_id),
            _ => None,
        }
    }
}

impl Permission {
    /// Whether a role bound for one cluster can grant this permission there.
    pub fn per_cluster(self) -> bool {
        matches!(
            self,
            Permission::ViewClusters | Permission::ActOnNodes | Permission::PowerMachines | Permission::SilenceAlerts
        )
    }
}

/// The single authorization check: `Ok` when `who` holds `permission`; 401 for a caller who is
/// not signed in, 403 for one whose role does not allow it. A per-cluster permission passes
/// when some cluster's role allows it; [`authorize_in`] then decides for the cluster at hand.
pub fn authorize(who: &Principal, permission: Permission) -> Result<(), AppError> {
    if permission.per_cluster() && who.cluster_roles.values().any(|r| r.allows(permission)) {
        return authorize_role(who, Some(ConsoleRole::Admin), permission);
    }
    authorize_role(who, who.role, permission)
}

/// [`authorize`] for `permission` on one cluster: the caller's role everywhere, or the role
/// bound to them for this cluster, whichever is higher.
pub fn authorize_in(who: &Principal, permission: Permission, cluster: &str) -> Result<(), AppError> {
    let here = if permission.per_cluster() { who.cluster_roles.get(cluster).copied() } else { None };
    let role = who.role.max(here);
    if role.is_none() && !who.cluster_roles.is_empty() && who.identity != Identity::Anonymous {
        return Err(AppError::Forbidden { message: format!("You have no role on cluster {cluster}; ask an admin.") });
    }
    authorize_role(who, role, permission)
}

fn authorize_role(who: &Principal, role: Option<ConsoleRole>, permission: Permission) -> Result<(), AppError> {
    if who.identity == Identity::Anonymous {
        return Err(AppError::Unauthorized { message: "Sign in to use Pangea.".into() });
    }
    match role {
        Some(role) if role.allows(permission) => Ok(()),
        Some(role) => Err(AppError::Forbidden {
            message: format!("Your role ({}) does not allow this; ask an admin.", role.as_str()),
        }),
        None => {
            let mut message =
                "You are signed in, but no role is bound to you or your groups; ask an admin.".to_string();
            if let Identity::Oidc { groups_note: Some(note), .. } = &who.identity {
                message = format!("{message} {note}");
            }
            Err(AppError::Forbidden { message })
        }
    }
}

/// Kubernetes' own user and group names (`system:masters` is every right, `system:node:x` a
/// node): Pangea never acts in a cluster, nor signs in to Grafana, with one that came from an
/// identity provider.
pub fn is_kubernetes_own(name: &str) -> bool {
    name.starts_with("system:")
}

/// A person's identity-provider name and groups as Pangea may use them in a cluster or Grafana:
/// Kubernetes' own groups left out; a Kubernetes user name refused, with why.
pub fn acting_identity(username: &str, groups: &[String]) -> Result<(String, Vec<String>), AppError> {
    if is_kubernetes_own(username) {
        return Err(AppError::Forbidden {
            message: format!(
                "Your user name \"{username}\" is one of Kubernetes' own (system:…), so Pangea does not act as it in \
                 clusters or Grafana; an admin should map another claim to user names (--oidc-username-claim)."
            ),
        });
    }
    Ok((username.to_string(), groups.iter().filter(|g| !is_kubernetes_own(g)).cloned().collect()))
}

/// A role binding as the Access page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub id: i64,
    /// `group` or `user`.
    pub subject_kind: String,
    pub subject: String,
    pub role: ConsoleRole,
    /// The one cluster the role applies to; empty: every cluster (and the rest of Pangea).
    #[serde(default)]
    pub cluster: String,
    pub created_by: String,
    pub created_at: String,
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: ConsoleRole,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked: bool,
    /// Whom Pangea acts as in clusters for this token; `None`: `pangea:token:<name>`.
    #[serde(default)]
    pub cluster_as: Option<ClusterIdentity>,
}

/// The Kubernetes user and groups Pangea impersonates for an API token, set when the token is
/// created (for example the identity a cluster already binds for its CI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

impl ClusterIdentity {
    /// From a form or the command line: a user name and its groups (empty entries ignored).
    /// `None` when both are empty. Kubernetes' own `system:` names are refused, except a
    /// service account's user name, so no token can act as `system:masters` or a node.
    pub fn parse(user: &str, groups: &[String]) -> Result<Option<ClusterIdentity>, String> {
        let user = user.trim();
        let groups: Vec<String> = groups.iter().map(|g| g.trim()).filter(|g| !g.is_empty()).map(String::from).collect();
        if user.is_empty() {
            return if groups.is_empty() {
                Ok(None)
            } else {
                Err("Give the user name the token acts as in clusters, as well as its groups.".into())
            };
        }
        let printable = |name: &str| name.len() <= 253 && !name.chars().any(char::is_control);
        if !printable(user) || groups.iter().any(|g| !printable(g)) {
            return Err("A cluster user or group name has at most 253 printable characters.".into());
        }
        let kube_system = user.starts_with("system:serviceaccount:kube-system:");
        if (user.starts_with("system:") && !user.starts_with("system:serviceaccount:")) || kube_system {
            return Err(format!(
                "\"{user}\" is one of Kubernetes' own users; a token may act as a person's name or as a \
                 service account outside kube-system (system:serviceaccount:NAMESPACE:NAME)."
            ));
        }
        if let Some(group) = groups.iter().find(|g| g.starts_with("system:")) {
            return Err(format!(
                "\"{group}\" is one of Kubernetes' own groups (system:masters is every right); bind the \
                 roles the token needs to a group of your own instead."
            ));
        }
        Ok(Some(ClusterIdentity { user: user.into(), groups }))
    }
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub info: TokenInfo,
    pub token: String,
}

/// A signed-in session of the current person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub created_at: String,
    pub ip: String,
    pub user_agent: String,
}

/// How people get in, for the Access page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessOverview {
    pub local_login_enabled: bool,
    pub single_sign_on: bool,
    /// When the local admin last signed in, if ever.
    pub local_admin_last_login: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_acts_in_clusters_as_a_person_or_a_service_account_never_as_kubernetes_itself() {
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ClusterIdentity::parse(" ", &groups(&["", " "])), Ok(None));
        assert_eq!(
            ClusterIdentity::parse(" deployer ", &groups(&["ci", " "])),
            Ok(Some(ClusterIdentity { user: "deployer".into(), groups: groups(&["ci"]) }))
        );
        assert!(ClusterIdentity::parse("system:serviceaccount:ci:deployer", &[]).unwrap().is_some());
        assert!(ClusterIdentity::parse("", &groups(&["ci"])).unwrap_err().contains("user name"));
        assert!(ClusterIdentity::parse("system:admin", &[]).unwrap_err().contains("Kubernetes' own users"));
        assert!(ClusterIdentity::parse("system:serviceaccount:kube-system:generic-garbage-collector", &[]).is_err());
        assert!(ClusterIdentity::parse("ci", &groups(&["system:masters"])).unwrap_err().contains("system:masters"));
        assert!(ClusterIdentity::parse("a\u{7}b", &[]).unwrap_err().contains("printable"));
        assert!(ClusterIdentity::parse(&"x".repeat(254), &[]).is_err());
    }

    fn with_role(role: Option<ConsoleRole>) -> Principal {
        Principal {
            identity: Identity::Local { user_id: 1, username: "u".into() },
            role,
            cluster_roles: Default::default(),
            ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn roles_grant_in_order() {
        use Permission::*;
        let allowed = |role, p| authorize(&with_role(Some(role)), p).is_ok();
        assert!(allowed(ConsoleRole::Viewer, ViewMachines) && !allowed(ConsoleRole::Viewer, ChangeMachines));
        assert!(allowed(ConsoleRole::Operator, ChangeMachines) && !allowed(ConsoleRole::Operator, ViewAudit));
        assert!(allowed(ConsoleRole::Admin, ManageAccess) && allowed(ConsoleRole::Admin, ViewAudit));
        assert_eq!(authorize(&with_role(None), ViewMachines).unwrap_err().status(), 403);
        assert_eq!(authorize(&Principal::anonymous(None, None), ViewMachines).unwrap_err().status(), 401);
    }

    #[test]
    fn a_cluster_role_counts_on_its_cluster_only() {
        use Permission::*;
        let mut team = with_role(None);
        team.cluster_roles.insert("edge-1".into(), ConsoleRole::Operator);
        assert!(authorize_in(&team, ActOnNodes, "edge-1").is_ok());
        assert_eq!(
            authorize_in(&team, ActOnNodes, "edge-2").unwrap_err().to_string(),
            "You have no role on cluster edge-2; ask an admin."
        );
        assert!(
            authorize_in(&team, ViewClusters, "edge-1").is_ok() && authorize_in(&team, ViewClusters, "edge-2").is_err()
        );
        // Somewhere is enough to open the Clusters pages, never to manage clusters or machines.
        assert!(authorize(&team, ViewClusters).is_ok());
        assert!(authorize(&team, ManageClusters).is_err() && authorize(&team, ViewMachines).is_err());
        assert!(authorize_in(&team, ManageClusters, "edge-1").is_err());
        // A role everywhere still counts on every cluster.
        let viewer = with_role(Some(ConsoleRole::Viewer));
        assert!(
            authorize_in(&viewer, ViewClusters, "edge-2").is_ok()
                && authorize_in(&viewer, ActOnNodes, "edge-2").is_err()
        );
    }

    #[test]
    fn identity_provider_names_never_act_as_kubernetes_own() {
        let groups = vec!["system:masters".to_string(), "ops".to_string(), "system:nodes".to_string()];
        assert_eq!(acting_identity("alice", &groups).unwrap(), ("alice".to_string(), vec!["ops".to_string()]));
        let refused = acting_identity("system:node:n1", &groups).unwrap_err();
        assert!(refused.to_string().contains("one of Kubernetes' own"), "{refused}");
    }
}
