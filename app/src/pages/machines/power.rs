//! A machine's Power section on its page: drawn on the server (`power::drawn`), read again as
//! the machine's boot timeline changes (power actions and their outcomes go on it). Its buttons
//! send power actions (asking first before cutting power) and remove the BMC; its form sets the
//! BMC, which the server checks before keeping it.

use crate::components::toast::use_toasts;
use crate::drawn::{Drawn, clicked_button, data};
use crate::pages::form_field;
use crate::power::PowerAction;
use crate::power::server_fns::{
    acknowledge_machine_hardware, machine_power, power_machine, remove_machine_bmc, set_machine_bmc,
};
use crate::resource::resource;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The Power section of machine `id` (in `cluster`); `timeline` ticks when its boot timeline
/// changes.
#[component]
pub fn MachinePower(id: i64, cluster: String, timeline: RwSignal<u64>) -> impl IntoView {
    let toasts = use_toasts();
    let version = RwSignal::new(0u64);
    // While a person types into the BMC form, a change of the timeline does not draw the section
    // again (that would wipe what they typed); their save does, and then the timeline again.
    let editing = RwSignal::new(false);
    let followed = Memo::new(move |shown: Option<&u64>| match (editing.get(), shown) {
        (true, Some(shown)) => *shown,
        _ => timeline.get(),
    });
    let drawn = resource(move || (version.get(), followed.get()), move |_| machine_power(id, cluster.clone()));
    let problem = RwSignal::new(None::<String>);
    let done = move |said: Result<String, crate::error::AppError>| match said {
        Ok(said) => {
            toasts.success(said);
            problem.set(None);
            editing.set(false);
            version.update(|v| *v += 1);
        }
        Err(e) => problem.set(Some(e.to_string())),
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if let Some(action) = clicked_button(&ev, data::POWER_ACTION).and_then(|(_, a)| PowerAction::parse(&a)) {
            let asked = format!("{}? It cuts the machine's power at once, whatever it is doing.", action.words());
            if action.abrupt() && !window().confirm_with_message(&asked).unwrap_or(false) {
                return;
            }
            spawn_local(async move {
                done(power_machine(id, action).await.map(|status| {
                    format!("Asked: the machine is {}. The boot timeline follows it.", status.state.words())
                }))
            });
        } else if clicked_button(&ev, data::REMOVE_BMC).is_some() {
            spawn_local(async move { done(remove_machine_bmc(id).await.map(|()| "BMC removed.".to_string())) });
        } else if clicked_button(&ev, data::ACKNOWLEDGE_HARDWARE).is_some() {
            spawn_local(async move {
                done(acknowledge_machine_hardware(id).await.map(|n| format!("{n} hardware change(s) acknowledged.")))
            });
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let password = form_field(&ev, "password");
        let input = crate::power::BmcInput {
            url: form_field(&ev, "url"),
            username: form_field(&ev, "username"),
            password: (!password.is_empty()).then_some(password),
            ca_pem: form_field(&ev, "ca_pem"),
            verify_off: form_field(&ev, "verify_off") == "on",
        };
        spawn_local(
            async move { done(set_machine_bmc(id, input).await.map(|_| "BMC checked and saved.".to_string())) },
        );
    };
    view! {
        <section class="power" aria-labelledby="power-head">
            <h2 id="power-head">"Power"</h2>
            {move || problem.get().map(|p| view! { <p class="alert error" role="alert">{p}</p> })}
            <div on:click=on_click on:submit=on_submit on:input=move |_| editing.set(true)><Drawn drawn /></div>
        </section>
    }
}
