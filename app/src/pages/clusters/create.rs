//! `/clusters/create`: a cluster from machines. A person writes (or pastes, or edits an exported)
//! cluster template; "Check" shows the machines it takes and what stands in the way, drawn on
//! the server; "Create" applies it and follows the creation, machine by machine. `?name=` follows
//! a cluster Pangea created, with Destroy (its name typed again).

use crate::clusters::server_fns::{
    check_cluster_template, cluster_creation, create_cluster, created_clusters, destroy_created_cluster,
};
use crate::components::toast::use_toasts;
use crate::drawn::{Drawn, ShownJob, ShownProgress, follow};
use crate::pages::form_field;
use crate::resource::resource;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

/// A template of the shape Pangea reads, shown under the field (docs/clusters.md has every field).
const EXAMPLE: &str = "version: pangea.dev/v1
name: edge-1
kubernetes: v1.36.2
os: flatcar
controllers:
  machines: [\"52:54:00:00:00:01\"]
workers:
  search: rack=r1
api_server:
  name: edge-1.example.com
  address: 10.0.0.10
monitoring:            # node_exporter and a Prometheus, linked to the charts
  enabled: true";

#[component]
pub fn CreateCluster() -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let query = use_query_map();
    let following = move || query.with(|q| q.get("name")).filter(|n| !n.is_empty());
    let checked = RwSignal::new(None::<Result<crate::drawn::Html, crate::error::AppError>>);
    let shown = ShownJob::new(None);
    let creating = StoredValue::new(false);
    let created = resource(|| (), |_| created_clusters());
    Effect::new(move |_| {
        if let Some(name) = following() {
            spawn_local(async move { follow(|| cluster_creation(name.clone()), shown, 2000).await });
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let template = form_field(&ev, "template");
        let create = creating.get_value();
        creating.set_value(false);
        let navigate = navigate.clone();
        spawn_local(async move {
            if create {
                match create_cluster(template).await {
                    Ok(name) => {
                        created.refetch();
                        let href = format!("/clusters/create?name={}", crate::components::text::urlencode(&name));
                        navigate(&href, Default::default());
                    }
                    Err(e) => checked.set(Some(Err(e))),
                }
            } else {
                checked.set(Some(check_cluster_template(template).await));
            }
        });
    };
    let destroy = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(name) = following() else { return };
        let confirm = form_field(&ev, "confirm");
        spawn_local(async move {
            match destroy_created_cluster(name.clone(), confirm).await {
                Ok(()) => {
                    toasts.success(format!("Destroyed {name}: its machines are freed and powered off."));
                    shown.set(None);
                    created.refetch();
                }
                Err(e) => toasts.error(e.to_string()),
            }
        });
    };
    view! {
        <Title text="Create a cluster" />
        <section class="page">
            <h1>"Create a cluster"</h1>
            <p class="hint">"Write what you want as a cluster template: its name, Kubernetes version and OS, its control-plane machines (1, 3 or 5) and workers (a list of MACs, a machine search, or a machine class), its networks and API server, and whether it gets monitoring. Pangea generates the PKI and each machine's configs, powers the machines with BMCs on (boot from network once), follows each one until its node is Ready, and registers the cluster. The same file creates the same cluster; export it from a created cluster to keep it."</p>
            {move || following().map(|name| view! {
                <section aria-label="Creation">
                    <h2>{format!("Cluster {name}")}</h2>
                    <p><a href=format!("/api/v1/cluster-creations/{}/template", crate::components::text::urlencode(&name)) download>"Export its template"</a></p>
                    <ShownProgress shown />
                    <form class="inline" on:submit=destroy aria-label="Destroy this cluster">
                        <div class="field">
                            <label for="destroy-confirm">{format!("Type {name} to destroy it (its machines are powered off, their configs and secrets removed)")}</label>
                            <input id="destroy-confirm" name="confirm" required autocomplete="off" />
                        </div>
                        <button type="submit" class="button danger">"Destroy"</button>
                    </form>
                </section>
            })}
            <form on:submit=submit aria-label="Cluster template">
                <div class="field">
                    <label for="template">"Cluster template (YAML)"</label>
                    <textarea id="template" name="template" class="template" required spellcheck="false"></textarea>
                    <details><summary>"A template's shape"</summary><pre>{EXAMPLE}</pre></details>
                </div>
                <div class="actions">
                    <button type="submit" class="button">"Check"</button>
                    <button type="submit" class="button primary" on:click=move |_| creating.set_value(true)>"Create"</button>
                </div>
            </form>
            {move || checked.get().map(|html| match html {
                Ok(html) => view! { <section aria-label="What it would do" class="drawn" inner_html=html.into_string()></section> }.into_any(),
                Err(e) => view! { <p class="alert error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <h2>"Clusters Pangea created"</h2>
            <Drawn drawn=created />
        </section>
    }
}
