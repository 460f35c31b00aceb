//! Boots as people watch them: a machine's live timeline, the last hour's boots as a chart, and
//! `/machines/discovered` (MACs that asked to boot and are not in the inventory).

use crate::components::toast::use_toasts;
use crate::drawn::{Drawn, clicked_button, data};
use crate::machines::fields::Role;
use crate::provisioning::boots::AdoptDiscovered;
use crate::provisioning::server_fns::{add_discovered, boot_timeline, discovered_machines, recent_boots};
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use std::collections::BTreeSet;

/// Counts `tick` up at each timeline `/api/v1/boot/timeline/{mac}/live` sends while the page is
/// open (the first is the timeline as it is, later ones its changes); closes it with the page.
#[cfg(feature = "hydrate")]
fn follow(mac: &str, tick: RwSignal<u64>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(source) = web_sys::EventSource::new(&format!("/api/v1/boot/timeline/{mac}/live")) else { return };
    let on_timeline =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| tick.update(|t| *t += 1));
    let _ = source.add_event_listener_with_callback("timeline", on_timeline.as_ref().unchecked_ref());
    let held = StoredValue::new_local((source, on_timeline));
    on_cleanup(move || held.with_value(|(source, _)| source.close()));
}

/// A machine's boot state and its events, oldest first, updated live; `tick` (when given) counts
/// its changes for others on the page to follow.
#[component]
pub fn BootTimeline(mac: String, #[prop(optional)] tick: Option<RwSignal<u64>>) -> impl IntoView {
    let tick = tick.unwrap_or_else(|| RwSignal::new(0u64));
    #[cfg(feature = "hydrate")]
    follow(&mac, tick);
    let timeline = resource(move || tick.get(), move |_| boot_timeline(mac.clone()));
    view! {
        <section class="boot-timeline" aria-labelledby="boot-timeline-head">
            <h2 id="boot-timeline-head">"Boot timeline"</h2>
            <Drawn drawn=timeline />
        </section>
    }
}

/// The last hour's boots per minute: started, finished and failed, as stacked bars.
#[component]
pub fn BootActivityChart() -> impl IntoView {
    let activity = resource(|| (), |_| recent_boots());
    view! { <Drawn drawn=activity /> }
}

/// `/machines/discovered`: MACs that asked to boot; select some and add them to the inventory.
#[component]
pub fn DiscoveredMachines() -> impl IntoView {
    let toasts = use_toasts();
    let list = resource(|| (), |_| discovered_machines());
    let me = resource(|| (), |_| crate::account::current_user());
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let watching = RwSignal::new(None::<String>);
    let role = RwSignal::new(Role::Worker);
    let cluster = RwSignal::new(String::new());
    let profile = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let add = Action::new(move |request: &AdoptDiscovered| add_discovered(request.clone()));
    Effect::new(move |_| match add.value().get() {
        Some(Ok(macs)) => {
            toasts.success(format!(
                "Added {} machine{} to the inventory.",
                macs.len(),
                if macs.len() == 1 { "" } else { "s" }
            ));
            selected.set(BTreeSet::new());
            error.set(None);
            list.refetch();
        }
        Some(Err(e)) => error.set(Some(e.to_string())),
        None => {}
    });
    let on_select = move |ev: leptos::ev::Event| {
        use wasm_bindgen::JsCast;
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        if let Some(mac) = input.get_attribute(data::SELECT_MAC) {
            let on = input.checked();
            selected.update(|s| {
                if on {
                    s.insert(mac);
                } else {
                    s.remove(&mac);
                }
            });
        }
    };
    let on_show = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, mac)) = clicked_button(&ev, data::WATCH_MAC) {
            watching.set(Some(mac));
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        add.dispatch(AdoptDiscovered {
            macs: selected.get_untracked().into_iter().collect(),
            role: Some(role.get_untracked().as_str().to_string()),
            cluster: Some(cluster.get_untracked()).filter(|c| !c.trim().is_empty()),
            profile: Some(profile.get_untracked()).filter(|p| !p.trim().is_empty()),
        });
    };
    view! {
        <Title text="Discovered machines" />
        <section class="page">
            <div class="page-head">
                <h1>"Discovered machines"</h1>
                <div class="actions"><A href="/machines" attr:class="button">"Inventory"</A></div>
            </div>
            <p class="muted">"MACs that asked the boot listener for a config and are not in the inventory. Add them, and they boot on their next try."</p>
            // The drawn rows' checkboxes and buttons carry their MAC (see `provisioning::drawn`).
            <div on:change=on_select on:click=on_show><Drawn drawn=list /></div>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let may_add = me.await.ok().flatten().is_some_and(|m| m.may(crate::access::Permission::ChangeMachines));
                    may_add.then(|| view! {
                        <form class="inline-form" on:submit=submit aria-label="Add the selected machines">
                            <label for="adopt-role">"Role"</label>
                            <select id="adopt-role" on:change=move |ev| role.set(if event_target_value(&ev) == "controller" { Role::Controller } else { Role::Worker })>
                                <option value="worker" selected>"worker"</option>
                                <option value="controller">"controller"</option>
                            </select>
                            <label for="adopt-cluster">"Cluster"</label>
                            <input id="adopt-cluster" prop:value=move || cluster.get() on:input=move |ev| cluster.set(event_target_value(&ev)) />
                            <label for="adopt-profile">"Profile"</label>
                            <input id="adopt-profile" prop:value=move || profile.get() on:input=move |ev| profile.set(event_target_value(&ev)) />
                            <button type="submit" class="button primary" disabled=move || selected.with(|s| s.is_empty())>
                                {move || format!("Add {} to the inventory", selected.with(|s| s.len()))}
                            </button>
                            <crate::components::messages::FieldMessage id="adopt-error" message=Signal::derive(move || error.get()) />
                        </form>
                    })
                })}
            </Suspense>
            {move || watching.get().map(|mac| view! { <BootTimeline mac /> })}
        </section>
    }
}
