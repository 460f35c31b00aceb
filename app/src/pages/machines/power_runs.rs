//! `/machines/power-runs`: one power action for many machines, paced. The form asks for the
//! machines (a search, as the machine list's), the action and the budgets; "Plan" shows the
//! server's plan, "Start" starts the run and follows it, drawn on the server, with Pause,
//! Resume and Cancel.

use crate::components::toast::use_toasts;
use crate::drawn::{ShownJob, ShownProgress, clicked_button, data, follow};
use crate::pages::form_field;
use crate::power::server_fns::{plan_power_run, power_run_status, start_power_run, steer_power_run};
use crate::power::{Pacing, PowerAction, PowerRunInput};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

fn input_of(ev: &leptos::ev::SubmitEvent) -> Option<PowerRunInput> {
    let number = |name: &str| form_field(ev, name).trim().parse::<u32>().unwrap_or(0);
    Some(PowerRunInput {
        action: PowerAction::parse(&form_field(ev, "action"))?,
        machines: Vec::new(),
        search: Some(form_field(ev, "search")),
        pacing: Pacing {
            group_by: form_field(ev, "group_by").trim().to_string(),
            per_group: number("per_group"),
            per_seconds: number("per_seconds"),
            booting_at_once: number("booting_at_once"),
        },
    })
}

#[component]
pub fn PowerRuns() -> impl IntoView {
    let toasts = use_toasts();
    let planned = RwSignal::new(None::<Result<crate::drawn::Html, crate::error::AppError>>);
    let shown = ShownJob::new(None);
    // Which submit button sent the form: only "Start" starts. Enter clicks the first, "Plan"
    // (implicit submission), which clears a "Start" whose form was refused as incomplete.
    let starting = StoredValue::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let start = starting.get_value();
        starting.set_value(false);
        let Some(input) = input_of(&ev) else { return };
        spawn_local(async move {
            if start {
                match start_power_run(input).await {
                    Ok(job) => follow(|| power_run_status(job.clone()), shown, 1000).await,
                    Err(e) => shown.set(Some(Err(e))),
                }
            } else {
                planned.set(Some(plan_power_run(input).await));
            }
        });
    };
    let steer = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, value)) = clicked_button(&ev, data::STEER_RUN)
            && let Some((what, job)) = value.split_once(':')
        {
            let (what, job) = (what.to_string(), job.to_string());
            spawn_local(async move {
                if let Err(e) = steer_power_run(job, what).await {
                    toasts.error(e.to_string());
                }
            });
        }
    };
    view! {
        <Title text="Power runs" />
        <section class="page">
            <h1>"Power runs"</h1>
            <p class="hint">"One power action for many machines, paced so no rack trips its breaker and the boot network is not flooded: at most N actions per group of machines (any label: a rack, a PDU) in any T seconds, and at most M machines between power-on and their first boot request. Each machine goes when its budget lets it, not after a fixed sleep."</p>
            <form class="power-run" on:submit=submit aria-label="Power run">
                <div class="field">
                    <label for="run-search">"Machines (a search, as the machine list's)"</label>
                    <input id="run-search" name="search" required placeholder="rack=r1" />
                </div>
                <div class="field">
                    <label for="run-action">"Action"</label>
                    <select id="run-action" name="action">
                        {PowerAction::ALL.into_iter().map(|a| view! { <option value=a.as_str()>{a.words()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="run-group">"Group by label"</label>
                    <input id="run-group" name="group_by" placeholder="rack" />
                </div>
                <div class="field">
                    <label for="run-per-group">"At most (per group)"</label>
                    <input id="run-per-group" name="per_group" type="number" min="0" value="10" />
                </div>
                <div class="field">
                    <label for="run-per-seconds">"per seconds"</label>
                    <input id="run-per-seconds" name="per_seconds" type="number" min="0" max="3600" value="5" />
                </div>
                <div class="field">
                    <label for="run-booting">"At most booting at once (0: no limit)"</label>
                    <input id="run-booting" name="booting_at_once" type="number" min="0" value="20" />
                </div>
                <div class="actions">
                    <button type="submit" class="button" on:click=move |_| starting.set_value(false)>"Plan"</button>
                    <button type="submit" class="button primary" on:click=move |_| starting.set_value(true)>"Start"</button>
                </div>
            </form>
            {move || planned.get().map(|plan| match plan {
                Ok(html) => view! { <section aria-label="Plan" class="drawn" inner_html=html.into_string()></section> }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <section aria-label="Run" on:click=steer><ShownProgress shown /></section>
        </section>
    }
}
