//! Pages, one module per URL.

pub mod login;
pub mod machines;
pub mod not_found;
