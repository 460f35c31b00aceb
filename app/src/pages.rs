//! Pages, one module per URL.

pub mod access;
pub mod audit;
pub mod login;
pub mod machines;
pub mod not_found;
