//! The home page, drawn on the server: two bars (machines by boot state, by power state), the
//! clusters, the running jobs and the last failures.

use super::{Fleet, StateCount};
use crate::drawn::{Html, table};
use leptos::prelude::*;

/// A bar of how many machines are in each state, with its legend; `class` prefixes each state's
/// colour class, `label` names a state.
fn bar(counts: &[StateCount], class: &'static str, label: fn(&str) -> String, what: &'static str) -> impl IntoView {
    let total: u64 = counts.iter().map(|c| c.machines).sum();
    let parts = counts
        .iter()
        .filter(|c| c.machines > 0)
        .map(|c| {
            let width = format!("width: {:.2}%", 100.0 * c.machines as f64 / total.max(1) as f64);
            view! { <span class=format!("{class}-{}", c.state) style=width title=format!("{}: {}", label(&c.state), c.machines)></span> }
        })
        .collect_view();
    let legend = counts
        .iter()
        .filter(|c| c.machines > 0)
        .map(|c| view! { <li><span class=format!("swatch {class}-{}", c.state)></span>{format!("{} {}", c.machines, label(&c.state))}</li> })
        .collect_view();
    view! {
        <div class="run-bar" role="img" aria-label=format!("{what}: {total} machines")>{parts}</div>
        <ul class="run-legend">{legend}</ul>
    }
}

fn boot_label(state: &str) -> String {
    crate::provisioning::boots::BootState::parse(state).map_or(state.to_string(), |s| s.label().to_string())
}

fn power_label(state: &str) -> String {
    match state {
        "no_bmc" => "no BMC".to_string(),
        other => crate::power::PowerState::parse(other).words().to_string(),
    }
}

pub fn fleet(f: Fleet) -> Html {
    let machines: u64 = f.by_boot_state.iter().map(|c| c.machines).sum();
    let clusters = f
        .clusters
        .iter()
        .map(|c| {
            let firing = c.firing.map_or("—".to_string(), |n| n.to_string());
            view! { <tr>
                <td><a href=format!("/clusters/{}", crate::components::text::urlencode(&c.name))>{c.name.clone()}</a></td>
                <td><span class=if c.healthy { "badge" } else { "badge failed" }>{c.health.clone()}</span></td>
                <td>{firing}</td>
            </tr> }
        })
        .collect_view();
    let jobs = f
        .jobs
        .iter()
        .map(|j| {
            view! { <tr>
                <td><a href=j.link.clone()>{j.kind.clone()}</a></td>
                <td>{format!("{} of {}", j.done, j.total)}</td>
                <td class="nowrap">{j.started_at.clone()}</td>
            </tr> }
        })
        .collect_view();
    let failures = f
        .failures
        .iter()
        .map(|x| {
            view! { <tr>
                <td class="nowrap">{x.at.clone()}</td>
                <td><a href=x.link.clone()>{x.what.clone()}</a></td>
                <td>{x.reason.clone()}</td>
            </tr> }
        })
        .collect_view();
    Html::of(view! {
        <section aria-label="Machines">
            <h2>{format!("Machines ({machines})")}</h2>
            <h3>"By boot state"</h3>
            {bar(&f.by_boot_state, "boot", boot_label, "Machines by boot state")}
            <h3>"By power state"</h3>
            {bar(&f.by_power_state, "power", power_label, "Machines by power state")}
        </section>
        <section aria-label="Clusters at a glance">
            <h2>"Clusters"</h2>
            {if f.clusters.is_empty() {
                view! { <p class="hint">"No cluster is registered (or you may see none)."</p> }.into_any()
            } else {
                table(&["Cluster", "Health", "Firing alerts"], clusters).into_any()
            }}
        </section>
        <section aria-label="Running jobs">
            <h2>"Running jobs"</h2>
            {if f.jobs.is_empty() {
                view! { <p class="hint">"Nothing runs now."</p> }.into_any()
            } else {
                table(&["Job", "Done", "Started"], jobs).into_any()
            }}
        </section>
        <section aria-label="Last failures">
            <h2>"Last failures"</h2>
            {if f.failures.is_empty() {
                view! { <p class="hint">"Nothing failed lately."</p> }.into_any()
            } else {
                table(&["When", "What", "Why"], failures).into_any()
            }}
        </section>
    })
}
