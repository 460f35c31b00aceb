//! `/`: the fleet at a glance, drawn on the server (see `crate::overview`).

use crate::drawn::Drawn;
use crate::overview::server_fns::fleet_overview;
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Home() -> impl IntoView {
    let fleet = resource(|| (), |_| fleet_overview());
    view! {
        <Title text="Pangea" />
        <section class="page">
            <h1>"Fleet"</h1>
            <Drawn drawn=fleet />
        </section>
    }
}
