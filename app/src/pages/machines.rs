//! `/machines/...`: the inventory of bare-metal machines.

pub mod boots;
pub mod classes;
pub mod discover;
pub mod form;
pub mod import;
pub mod list;
pub mod power;
pub mod power_runs;

use leptos::prelude::*;

/// `/machines/new` and `/machines/:id`: one lazily loaded area (the pages reached from the list
/// are in [`super::access::OtherPages`], whose first loads have room).
#[component]
pub fn MachinePages() -> impl IntoView {
    match leptos_router::hooks::use_location().pathname.get_untracked().trim_end_matches('/') {
        "/machines/new" => view! { <form::NewMachine /> }.into_any(),
        _ => view! { <form::EditMachine /> }.into_any(),
    }
}

/// `/machines` and `/machines/discovered`: one lazy area, so a machine's page does not carry the
/// code of the pages people reach from the list.
#[component]
pub fn MachineListPages() -> impl IntoView {
    match leptos_router::hooks::use_location().pathname.get_untracked().trim_end_matches('/') {
        "/machines/discovered" => view! { <boots::DiscoveredMachines /> }.into_any(),
        _ => view! { <list::MachineList /> }.into_any(),
    }
}
