//! Pieces every page uses.

pub mod get_form;
pub mod layout;
pub mod theme;
pub mod toast;
