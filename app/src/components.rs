//! Pieces every page uses.

pub mod get_form;
pub mod layout;
pub mod messages;
pub mod text;
pub mod theme;
pub mod toast;
