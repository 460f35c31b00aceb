//! Pages, one module per URL.

pub mod machines;
pub mod not_found;
