//! Pieces every page uses.

pub mod layout;
pub mod theme;
pub mod toast;
