//! Who is asking, and what they may do. Every service method starts with [`authorize`].
//!
//! Until sign-in exists, the console is reachable only from loopback, and a loopback caller is
//! the machine's operator. Adding users means adding a `Principal` variant and its arm here.

use crate::error::AppError;
use std::net::IpAddr;

/// The caller of a service method, resolved once per request by the console's middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A request from this host itself.
    Loopback { peer: IpAddr },
}

/// Everything that can be allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ViewMachines,
    ChangeMachines,
}

/// The single authorization check: `Ok` when `who` holds `permission`.
pub fn authorize(who: &Principal, permission: Permission) -> Result<(), AppError> {
    match (who, permission) {
        (Principal::Loopback { .. }, Permission::ViewMachines | Permission::ChangeMachines) => Ok(()),
    }
}
