//! `/clusters/rolling`: a change rolled across a cluster's nodes, one safe step at a time. The
//! form asks for the cluster (`?cluster=` fills it), the change, the nodes and how carefully it
//! goes; "Plan" shows the server's plan (order, gates, estimate, what stands in the way), drawn;
//! "Start" starts it and follows it, with Pause, Resume and Cancel (and, once a reprovision
//! has ended, Roll back). `?job=` follows one.

use crate::clusters::rolling::{RollingChange, RollingInput};
use crate::clusters::server_fns::{plan_rolling, rolling_status, start_rolling, steer_rolling};
use crate::components::toast::use_toasts;
use crate::drawn::{ShownJob, ShownProgress, clicked_button, data, follow};
use crate::pages::form_field;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn input_of(ev: &leptos::ev::SubmitEvent) -> Option<(String, RollingInput)> {
    let number = |name: &str| form_field(ev, name).trim().parse::<u32>().ok();
    let text = |name: &str| Some(form_field(ev, name).trim().to_string()).filter(|t| !t.is_empty());
    let input = RollingInput {
        change: RollingChange::parse(&form_field(ev, "change"))?,
        nodes: text("nodes"),
        max_unavailable: number("max_unavailable"),
        soak_seconds: number("soak_seconds"),
        alert_severities: text("alert_severities")
            .map(|t| t.split([',', ' ']).filter(|s| !s.is_empty()).map(String::from).collect()),
        approve_control_plane: form_field(ev, "approve_control_plane") == "on",
        template: text("template"),
    };
    Some((form_field(ev, "cluster").trim().to_string(), input))
}

#[component]
pub fn RollingOperations() -> impl IntoView {
    let toasts = use_toasts();
    let query = use_query_map();
    let cluster = query.with_untracked(|q| q.get("cluster")).unwrap_or_default();
    let planned = RwSignal::new(None::<Result<crate::drawn::Html, crate::error::AppError>>);
    let shown = ShownJob::new(None);
    // Which submit button sent the form: only "Start" starts. Enter clicks the first, "Plan"
    // (implicit submission), which clears a "Start" whose form was refused as incomplete.
    let starting = StoredValue::new(false);
    Effect::new(move |_| {
        if let Some(job) = query.with(|q| q.get("job")).filter(|j| !j.is_empty()) {
            spawn_local(async move { follow(|| rolling_status(job.clone()), shown, 1000).await });
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let start = starting.get_value();
        starting.set_value(false);
        let Some((cluster, input)) = input_of(&ev) else { return };
        spawn_local(async move {
            if start {
                match start_rolling(cluster, input).await {
                    Ok(job) => follow(|| rolling_status(job.clone()), shown, 1000).await,
                    Err(e) => shown.set(Some(Err(e))),
                }
            } else {
                planned.set(Some(plan_rolling(cluster, input).await));
            }
        });
    };
    let steer = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, value)) = clicked_button(&ev, data::STEER_RUN)
            && let Some((what, job)) = value.split_once(':')
        {
            let (what, job) = (what.to_string(), job.to_string());
            spawn_local(async move {
                match steer_rolling(job.clone(), what).await {
                    Ok(next) if next != job => follow(|| rolling_status(next.clone()), shown, 1000).await,
                    Ok(_) => {}
                    Err(e) => toasts.error(e.to_string()),
                }
            });
        }
    };
    view! {
        <Title text="Rolling operations" />
        <section class="page">
            <h1>"Rolling operations"</h1>
            <p class="hint">"One change across a cluster's nodes, one safe step at a time: the control-plane nodes one by one, then the workers a few at a time. Each step is drained, changed through its machines' BMCs, waited for until its nodes are back and Ready, uncordoned and soaked; the cluster's health gates every step, and a failing gate pauses the operation and says why."</p>
            <form class="power-run" on:submit=submit aria-label="Rolling operation">
                <div class="field">
                    <label for="rolling-cluster">"Cluster"</label>
                    <input id="rolling-cluster" name="cluster" required value=cluster />
                </div>
                <div class="field">
                    <label for="rolling-change">"Change"</label>
                    <select id="rolling-change" name="change">
                        {RollingChange::ALL.into_iter().map(|c| view! { <option value=c.as_str()>{c.words()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="rolling-nodes">"Nodes (a label selector; empty: every node)"</label>
                    <input id="rolling-nodes" name="nodes" placeholder="rack=r1" />
                </div>
                <div class="field">
                    <label for="rolling-max">"Workers out at once"</label>
                    <input id="rolling-max" name="max_unavailable" type="number" min="1" value="1" />
                </div>
                <div class="field">
                    <label for="rolling-soak">"Soak after each step (seconds)"</label>
                    <input id="rolling-soak" name="soak_seconds" type="number" min="0" max="3600" value="60" />
                </div>
                <div class="field">
                    <label for="rolling-severities">"Alert severities that hold it"</label>
                    <input id="rolling-severities" name="alert_severities" value="critical" />
                </div>
                <div class="field">
                    <label for="rolling-template">"For a reprovision: the cluster's template with its change (a new kubernetes version or os; empty: installed again as they are)"</label>
                    <textarea id="rolling-template" name="template" rows="4"></textarea>
                </div>
                <div class="field">
                    <label>
                        <input type="checkbox" name="approve_control_plane" />
                        " Wait for a person before each control-plane node"
                    </label>
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
            <section aria-label="Operation" on:click=steer><ShownProgress shown /></section>
        </section>
    }
}
