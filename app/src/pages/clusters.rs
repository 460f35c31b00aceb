//! The Clusters area: every registered cluster and its health, a cluster's nodes (live), a
//! node with its pods and events and the actions on it, and registering a cluster.

use crate::access::Permission;
use crate::clusters::server_fns::{
    act_on_node, add_cluster, add_cluster_from_kubeconfig, cancel_drain, cluster_facts, cluster_table, drain_node,
    drain_status, machine_node, node_facts, node_table, pod_table,
};
use crate::clusters::{
    ClusterInput, ClusterNode, Credential, DrainOptions, KubeconfigImport, NodeAction, NodeQuery, NodeSort, PodQuery,
    SourceCredential,
};
use crate::components::get_form::GetForm;
use crate::components::text::urlencode;
use crate::components::toast::use_toasts;
use crate::drawn::{Drawn, ShownJob, ShownProgress, clicked_button, data, follow};
use crate::pages::dashboards::{DashboardPage, DashboardsPage};
use crate::pages::monitoring::{AlertsPanel, EtcdPanel, HealthCharts, Scope};
use crate::resource::{Resource, resource};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};
use std::collections::BTreeMap;

mod cluster;
pub mod create;
mod list;
mod new;
mod node;
mod nodes;
mod pods;
pub mod rolling;

use cluster::ClusterPage;
use list::ClusterList;
use new::NewCluster;
use node::NodePage;
use nodes::NodesPage;
use pods::PodsPage;

#[component]
pub fn ClustersArea() -> impl IntoView {
    let location = use_location();
    move || {
        let path = location.pathname.get();
        let parts: Vec<String> =
            path.trim_start_matches("/clusters").split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        match parts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [] => view! { <ClusterList /> }.into_any(),
            ["new"] => view! { <NewCluster /> }.into_any(),
            ["nodes"] => view! { <NodesPage /> }.into_any(),
            [name] => view! { <ClusterPage name=name.to_string() /> }.into_any(),
            [name, "pods"] => view! { <PodsPage cluster=name.to_string() /> }.into_any(),
            [name, "dashboards"] => view! { <DashboardsPage cluster=name.to_string() /> }.into_any(),
            [name, "dashboards", uid] => {
                view! { <DashboardPage cluster=name.to_string() uid=uid.to_string() /> }.into_any()
            }
            [name, "nodes", node] => view! { <NodePage cluster=name.to_string() node=node.to_string() /> }.into_any(),
            _ => view! { <crate::pages::not_found::NotFound /> }.into_any(),
        }
    }
}

/// The health charts of the node an inventory machine is, for its page beside the boot
/// timeline; nothing when it is no node the person may see.
#[component]
pub fn MachineNodeHealth(machine: i64) -> impl IntoView {
    let node = resource(|| (), move |_| machine_node(machine));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                node.await.ok().flatten().map(|ClusterNode { cluster, node }| {
                    let href = format!("/clusters/{}/nodes/{}", urlencode(&cluster), urlencode(&node));
                    let (said, name) = (format!(" of cluster {cluster}."), node.clone());
                    view! {
                        <p>"This machine is node " <A href=href>{name}</A>{said}</p>
                        <HealthCharts scope=Scope::Node { cluster, node } />
                    }
                })
            })}
        </Suspense>
    }
}

/// Whether the signed-in person may do `permission` (on `cluster`, when one is named).
pub(crate) fn may(permission: Permission, cluster: Option<String>) -> Resource<bool> {
    resource(
        || (),
        move |_| {
            let cluster = cluster.clone();
            async move {
                crate::account::current_user().await.ok().flatten().is_some_and(|me| match &cluster {
                    Some(cluster) => me.may_in(permission, cluster),
                    None => me.may(permission),
                })
            }
        },
    )
}

/// The alerts panel, with the silence controls for those who may silence in this cluster.
#[component]
fn Alerts(cluster: String, node: Option<String>) -> impl IntoView {
    let operator = may(Permission::SilenceAlerts, Some(cluster.clone()));
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let (cluster, node) = (cluster.clone(), node.clone());
                Suspend::new(async move { view! { <AlertsPanel cluster node operator=operator.await /> } })
            }}
        </Suspense>
    }
}

/// Counts `tick` up whenever `/api/v1/clusters/{name}/live` says the cluster changed, while
/// the page is open; the stream is closed with the page.
fn live_ticks(name: String) -> RwSignal<u64> {
    let tick = RwSignal::new(0u64);
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        if let Ok(source) = web_sys::EventSource::new(&format!("/api/v1/clusters/{}/live", urlencode(&name))) {
            let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| tick.update(|t| *t += 1));
            let _ = source.add_event_listener_with_callback("changed", on_change.as_ref().unchecked_ref());
            let held = StoredValue::new_local((source, on_change));
            on_cleanup(move || held.with_value(|(source, _)| source.close()));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = name;
    tick
}
