//! Who is asking, and what they may do. Every service method starts with [`authorize`].
//!
//! Until sign-in exists, the console answers only requests from this host (loopback), and a
//! loopback caller acts as the host's administrator, as does the `pangea` CLI run on the host.
//! Adding users means adding an [`Identity`] variant and its arms here.

use crate::error::AppError;
use std::net::IpAddr;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A request to the console from this host itself.
    Loopback,
    /// The `pangea` command line, run on the host by an operating-system user.
    Cli { os_user: String },
}

/// The caller of a service method, resolved once per request (or CLI run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: Identity,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Principal {
    pub fn loopback(ip: IpAddr, user_agent: Option<String>) -> Principal {
        Principal { identity: Identity::Loopback, ip: Some(ip), user_agent }
    }

    pub fn cli() -> Principal {
        let os_user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
        Principal { identity: Identity::Cli { os_user }, ip: None, user_agent: None }
    }

    /// The name the audit log shows.
    pub fn actor(&self) -> String {
        match &self.identity {
            Identity::Loopback => format!("local console ({})", self.ip.map(|ip| ip.to_string()).unwrap_or_default()),
            Identity::Cli { os_user } => format!("{os_user} (command line)"),
        }
    }

    pub fn auth_method(&self) -> &'static str {
        match self.identity {
            Identity::Loopback => "loopback",
            Identity::Cli { .. } => "cli",
        }
    }

    /// Console roles held; both current identities administer the host they run on.
    pub fn roles(&self) -> Vec<&'static str> {
        match self.identity {
            Identity::Loopback | Identity::Cli { .. } => vec!["admin"],
        }
    }
}

/// Everything that can be allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ViewMachines,
    ChangeMachines,
    ViewAudit,
}

/// The single authorization check: `Ok` when `who` holds `permission`.
pub fn authorize(who: &Principal, permission: Permission) -> Result<(), AppError> {
    match (&who.identity, permission) {
        (Identity::Loopback | Identity::Cli { .. }, Permission::ViewMachines)
        | (Identity::Loopback | Identity::Cli { .. }, Permission::ChangeMachines)
        | (Identity::Loopback | Identity::Cli { .. }, Permission::ViewAudit) => Ok(()),
    }
}
