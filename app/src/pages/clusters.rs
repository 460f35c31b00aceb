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
use crate::drawn::{Drawn, ShownJob, ShownProgress, clicked_button, follow};
use crate::pages::dashboards::{DashboardPage, DashboardsPage};
use crate::pages::monitoring::{AlertsPanel, EtcdPanel, HealthCharts, Scope};
use crate::resource::{Resource, resource};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};
use std::collections::BTreeMap;

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

/// The credential Pangea presents to a linked source, from the add form's fields.
fn source_credential(get: &impl Fn(&str) -> String, source: &str) -> Option<SourceCredential> {
    let field = |name: &str| get(&format!("{source}_{name}"));
    match field("auth").as_str() {
        "bearer" => Some(SourceCredential::Bearer { token: field("token") }),
        "basic" => Some(SourceCredential::Basic { username: field("username"), password: field("password") }),
        "client_certificate" => Some(SourceCredential::ClientCertificate {
            certificate_pem: field("certificate"),
            key_pem: field("key"),
            ca_pem: field("ca"),
        }),
        _ => None,
    }
}

/// A linked source's credential: its kind, and the fields each kind reads.
#[component]
fn SourceCredentialFields(source: &'static str, label: &'static str) -> impl IntoView {
    let id = |name: &str| format!("{source}-{name}");
    let name = |field: &str| format!("{source}_{field}");
    view! {
        <details class="source-credential">
            <summary>{format!("{label} credentials (optional; stored sealed, never shown again)")}</summary>
            <label for=id("auth")>"Kind"</label>
            <select id=id("auth") name=name("auth")>
                <option value="none">"None"</option>
                <option value="bearer">"Bearer token"</option>
                <option value="basic">"Basic: user name and password"</option>
                <option value="client_certificate">"Client certificate (mTLS)"</option>
            </select>
            <label for=id("token")>"Bearer token"</label>
            <input id=id("token") name=name("token") type="password" autocomplete="off" />
            <label for=id("username")>"User name"</label>
            <input id=id("username") name=name("username") autocomplete="off" />
            <label for=id("password")>"Password"</label>
            <input id=id("password") name=name("password") type="password" autocomplete="off" />
            <label for=id("certificate")>"Client certificate (PEM)"</label>
            <textarea id=id("certificate") name=name("certificate") rows="3"></textarea>
            <label for=id("key")>"Client key (PEM)"</label>
            <textarea id=id("key") name=name("key") rows="3"></textarea>
            <label for=id("ca")>"CA of the source's certificate (PEM; empty: the system's roots)"</label>
            <textarea id=id("ca") name=name("ca") rows="3"></textarea>
        </details>
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

/// `/clusters`.
#[component]
fn ClusterList() -> impl IntoView {
    let clusters = resource(|| (), |_| cluster_table());
    let admin = may(Permission::ManageClusters, None);
    view! {
        <Title text="Clusters" />
        <section class="page">
            <div class="page-head">
                <h1>"Clusters"</h1>
                <div class="actions">
                    <A href="/clusters/nodes" attr:class="button">"All nodes"</A>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            admin.await.then(|| view! { <A href="/clusters/new" attr:class="button primary">"Add cluster"</A> })
                        })}
                    </Suspense>
                </div>
            </div>
            <Drawn drawn=clusters />
        </section>
    }
}

/// `/clusters/new`: by fields, or from a kubeconfig.
#[component]
fn NewCluster() -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    let add = Action::new(move |input: &ClusterInput| add_cluster(input.clone()));
    let import = Action::new(move |import: &KubeconfigImport| add_cluster_from_kubeconfig(import.clone()));
    let done = move |result: Option<Result<String, crate::error::AppError>>| match result {
        Some(Ok(name)) => {
            toasts.success(format!("Cluster {name} registered."));
            navigate(&format!("/clusters/{}", urlencode(&name)), Default::default());
        }
        Some(Err(e)) => error.set(Some(e.to_string())),
        None => {}
    };
    let done2 = done.clone();
    Effect::new(move |_| done(add.value().get()));
    Effect::new(move |_| done2(import.value().get()));
    let on_fields = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let get = |k: &str| crate::pages::form_field(&ev, k);
        error.set(None);
        add.dispatch(ClusterInput {
            name: get("name"),
            api_url: get("api_url"),
            ca_pem: get("ca_pem"),
            credential: Some(Credential::Token { token: get("token") }),
            prometheus_url: get("prometheus_url"),
            alertmanager_url: get("alertmanager_url"),
            grafana_url: get("grafana_url"),
            prometheus_credential: source_credential(&get, "prometheus"),
            alertmanager_credential: source_credential(&get, "alertmanager"),
            grafana_credential: source_credential(&get, "grafana"),
        });
    };
    let on_kubeconfig = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let get = |k: &str| crate::pages::form_field(&ev, k);
        error.set(None);
        let context = get("context");
        import.dispatch(KubeconfigImport {
            name: get("name"),
            kubeconfig: get("kubeconfig"),
            context: (!context.trim().is_empty()).then_some(context),
        });
    };
    let busy = move || add.pending().get() || import.pending().get();
    view! {
        <Title text="Add cluster" />
        <section class="page narrow">
            <h1>"Add cluster"</h1>
            <p class="hint">"Pangea checks that the API server answers with a certificate the CA signed, that the credentials work, and that they may impersonate users and groups, so that every action runs as the person who asks. See docs/clusters.md for the ClusterRole to bind."</p>
            <div class="alert error" role="alert" hidden=move || error.get().is_none()>{move || error.get()}</div>
            <h2>"From fields"</h2>
            <form on:submit=on_fields aria-busy=move || busy().to_string()>
                <label for="cluster-name">"Name"</label>
                <input id="cluster-name" name="name" required placeholder="edge-1" />
                <label for="cluster-api">"API server URL"</label>
                <input id="cluster-api" name="api_url" required placeholder="https://10.0.0.10:6443" />
                <label for="cluster-ca">"CA bundle (PEM; empty: the system's roots)"</label>
                <textarea id="cluster-ca" name="ca_pem" rows="4"></textarea>
                <label for="cluster-token">"Pangea's bearer token (stored sealed, never shown again)"</label>
                <input id="cluster-token" name="token" type="password" required autocomplete="off" />
                <label for="cluster-prometheus">"Prometheus URL (optional)"</label>
                <input id="cluster-prometheus" name="prometheus_url" />
                <SourceCredentialFields source="prometheus" label="Prometheus" />
                <label for="cluster-alertmanager">"Alertmanager URL (optional)"</label>
                <input id="cluster-alertmanager" name="alertmanager_url" />
                <SourceCredentialFields source="alertmanager" label="Alertmanager" />
                <label for="cluster-grafana">"Grafana URL (optional)"</label>
                <input id="cluster-grafana" name="grafana_url" />
                <SourceCredentialFields source="grafana" label="Grafana" />
                <button type="submit" class="button primary" disabled=busy>"Check and add"</button>
            </form>
            <h2>"From a kubeconfig"</h2>
            <form on:submit=on_kubeconfig>
                <label for="kc-name">"Name"</label>
                <input id="kc-name" name="name" required placeholder="edge-1" />
                <label for="kc-text">"kubeconfig (kubectl config view --raw --flatten)"</label>
                <textarea id="kc-text" name="kubeconfig" rows="8" required></textarea>
                <label for="kc-context">"Context (empty: the current context)"</label>
                <input id="kc-context" name="context" />
                <button type="submit" class="button" disabled=busy>"Check and add"</button>
            </form>
        </section>
    }
}

/// `/clusters/{name}`: health and the live, server-side filtered nodes table.
#[component]
fn ClusterPage(name: String) -> impl IntoView {
    let tick = live_ticks(name.clone());
    let params = use_query_map();
    let cluster_name = name.clone();
    let query = Memo::new(move |_| {
        let p = params.read();
        NodeQuery {
            cluster: Some(cluster_name.clone()),
            search: p.get("q").filter(|q| !q.trim().is_empty()),
            selector: p.get("selector").filter(|q| !q.trim().is_empty()),
            sort: p.get("sort").and_then(|s| NodeSort::parse(&s)).unwrap_or_default(),
            descending: p.get("desc").is_some_and(|d| d == "1"),
            offset: p.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
            ..Default::default()
        }
    });
    let cluster = {
        let name = name.clone();
        resource(move || tick.get(), move |_| cluster_facts(name.clone()))
    };
    let nodes = resource(move || (query.get(), tick.get()), |(q, _)| node_table(q));
    let title = name.clone();
    let action = format!("/clusters/{}", urlencode(&name));
    view! {
        <Title text=title.clone() />
        <section class="page">
            <div class="page-head">
                <h1>{format!("Cluster {title}")}</h1>
                <div class="actions">
                    <A href=format!("/clusters/{}/pods", urlencode(&title)) attr:class="button">"Pods"</A>
                    <A href=format!("/clusters/{}/dashboards", urlencode(&title)) attr:class="button">"Dashboards"</A>
                </div>
            </div>
            <Drawn drawn=cluster />
            <EtcdPanel cluster=title.clone() />
            <HealthCharts scope=Scope::Cluster(title.clone()) />
            <Alerts cluster=title.clone() node=None />
            <h2>"Nodes"</h2>
            <GetForm action=action attr:class="search" attr:role="search">
                <label for="node-search">"Name"</label>
                <input id="node-search" type="search" name="q" prop:value=move || query.get().search.unwrap_or_default() />
                <label for="node-selector">"Label selector"</label>
                <input id="node-selector" name="selector" placeholder="node-role.kubernetes.io/worker,rack=r1"
                    prop:value=move || query.get().selector.unwrap_or_default() />
                <label for="node-sort">"Sort by"</label>
                <select id="node-sort" name="sort">
                    {NodeSort::ALL.into_iter().map(|s| view! {
                        <option value=s.as_str() selected=move || query.get().sort == s>{s.as_str()}</option>
                    }).collect_view()}
                </select>
                <button type="submit" class="button">"Search"</button>
            </GetForm>
            <Drawn drawn=nodes />
        </section>
    }
}

/// Drain: options, then its progress as the server draws it (`clusters::drawn::drain`), with
/// cancel while it runs.
#[component]
fn DrainPanel(cluster: String, node: String) -> impl IntoView {
    let shown = ShownJob::new(None);
    let toasts = use_toasts();
    let running = move || shown.with(|p| matches!(p, Some(Ok(p)) if p.running));
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let options = DrainOptions {
            delete_local_data: crate::pages::form_field(&ev, "delete_local_data") == "on",
            timeout_seconds: crate::pages::form_field(&ev, "timeout").trim().parse().ok(),
        };
        let (cluster, node) = (cluster.clone(), node.clone());
        spawn_local(async move {
            match drain_node(cluster, node, options).await {
                Ok(job) => follow(|| drain_status(job.clone()), shown, 1000).await,
                Err(e) => shown.set(Some(Err(e))),
            }
        });
    };
    let cancel = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, job)) = clicked_button(&ev, "data-cancel") {
            spawn_local(async move {
                if let Err(e) = cancel_drain(job).await {
                    toasts.error(e.to_string());
                }
            });
        }
    };
    view! {
        <section aria-labelledby="drain-heading">
            <h2 id="drain-heading">"Drain"</h2>
            <p class="hint">"Cordons the node and evicts its pods through the Eviction API, so PodDisruptionBudgets are respected; DaemonSet and mirror pods stay. It runs as you, so the cluster's RBAC decides."</p>
            <form class="inline-form" on:submit=start>
                <label><input type="checkbox" name="delete_local_data" />" Delete local data (pods with emptyDir volumes)"</label>
                <label for="drain-timeout">"Timeout (seconds)"</label>
                <input id="drain-timeout" name="timeout" type="number" min="1" max="3600" value="300" />
                <button type="submit" class="button danger" disabled=running>"Drain"</button>
            </form>
            <div on:click=cancel><ShownProgress shown /></div>
        </section>
    }
}

#[component]
fn NodePage(cluster: String, node: String) -> impl IntoView {
    let tick = live_ticks(cluster.clone());
    let detail = {
        let (cluster, node) = (cluster.clone(), node.clone());
        resource(move || tick.get(), move |_| node_facts(cluster.clone(), node.clone()))
    };
    let operator = may(Permission::ActOnNodes, Some(cluster.clone()));
    let toasts = use_toasts();
    let act = {
        let (cluster, node) = (cluster.clone(), node.clone());
        Action::new(move |action: &NodeAction| act_on_node(cluster.clone(), node.clone(), action.clone()))
    };
    let changed = format!("Node {node} changed.");
    Effect::new(move |_| match act.value().get() {
        Some(Ok(())) => toasts.success(changed.clone()),
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let on_label = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = crate::pages::form_field(&ev, "label");
        let action = match text.trim().strip_prefix('-') {
            Some(key) => NodeAction::Labels { set: BTreeMap::new(), remove: vec![key.trim().to_string()] },
            None => {
                let (k, v) = text.split_once('=').unwrap_or((text.as_str(), ""));
                NodeAction::Labels {
                    set: BTreeMap::from([(k.trim().to_string(), v.trim().to_string())]),
                    remove: vec![],
                }
            }
        };
        act.dispatch(action);
    };
    // `key=value:Effect` (value optional) adds or replaces a taint; `-key` removes it.
    let on_taint = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = crate::pages::form_field(&ev, "taint");
        let action = match text.trim().strip_prefix('-') {
            Some(key) => NodeAction::Taints { set: vec![], remove: vec![key.trim().to_string()] },
            None => {
                let (pair, effect) = text.rsplit_once(':').unwrap_or((text.as_str(), ""));
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let taint = crate::clusters::Taint {
                    key: key.trim().to_string(),
                    value: value.trim().to_string(),
                    effect: effect.trim().to_string(),
                };
                NodeAction::Taints { set: vec![taint], remove: vec![] }
            }
        };
        act.dispatch(action);
    };
    let title = format!("Node {node}");
    view! {
        <Title text=title.clone() />
        <section class="page">
            <div class="page-head">
                <h1>{title}</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        operator.await.then(|| view! {
                            <div class="actions">
                                <button class="button" on:click=move |_| { act.dispatch(NodeAction::Cordon); }>"Cordon"</button>
                                <button class="button" on:click=move |_| { act.dispatch(NodeAction::Uncordon); }>"Uncordon"</button>
                            </div>
                        })
                    })}
                </Suspense>
            </div>
            <Drawn drawn=detail />
            <HealthCharts scope=Scope::Node { cluster: cluster.clone(), node: node.clone() } />
            <Alerts cluster=cluster.clone() node=Some(node.clone()) />
            <Suspense fallback=|| ()>
                {move || {
                    let (cluster, node) = (cluster.clone(), node.clone());
                    Suspend::new(async move {
                    operator.await.then(|| view! {
                        <DrainPanel cluster=cluster.clone() node=node.clone() />
                        <h2>"Change a label"</h2>
                        <form class="inline-form" on:submit=on_label>
                            <label for="node-label">"key=value to set, or -key to remove"</label>
                            <input id="node-label" name="label" required placeholder="rack=r1" />
                            <button type="submit" class="button">"Apply"</button>
                        </form>
                        <h2>"Change a taint"</h2>
                        <form class="inline-form" on:submit=on_taint>
                            <label for="node-taint">"key=value:Effect to set (NoSchedule, PreferNoSchedule or NoExecute), or -key to remove"</label>
                            <input id="node-taint" name="taint" required placeholder="maintenance=disk:NoSchedule" />
                            <button type="submit" class="button">"Apply"</button>
                        </form>
                    })
                })}}
            </Suspense>
        </section>
    }
}

/// `/clusters/nodes`: every cluster's nodes in one table, filtered, sorted and paged on the
/// server.
#[component]
fn NodesPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        let p = params.read();
        NodeQuery {
            cluster: None,
            search: p.get("q").filter(|q| !q.trim().is_empty()),
            selector: p.get("selector").filter(|q| !q.trim().is_empty()),
            sort: p.get("sort").and_then(|s| NodeSort::parse(&s)).unwrap_or_default(),
            descending: p.get("desc").is_some_and(|d| d == "1"),
            offset: p.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
            ..Default::default()
        }
    });
    let nodes = resource(move || query.get(), node_table);
    view! {
        <Title text="Nodes" />
        <section class="page">
            <div class="page-head"><h1>"Nodes of every cluster"</h1></div>
            <GetForm action="/clusters/nodes" attr:class="search" attr:role="search">
                <label for="all-node-search">"Name"</label>
                <input id="all-node-search" type="search" name="q" prop:value=move || query.get().search.unwrap_or_default() />
                <label for="all-node-selector">"Label selector"</label>
                <input id="all-node-selector" name="selector" prop:value=move || query.get().selector.unwrap_or_default() />
                <button type="submit" class="button">"Search"</button>
            </GetForm>
            <Drawn drawn=nodes />
        </section>
    }
}

/// `/clusters/{name}/pods`: the cluster's pods, filtered by namespace, phase, node and label
/// selector on the server, live.
#[component]
fn PodsPage(cluster: String) -> impl IntoView {
    let tick = live_ticks(cluster.clone());
    let params = use_query_map();
    let name = cluster.clone();
    let query = Memo::new(move |_| {
        let p = params.read();
        let given = |k: &str| p.get(k).filter(|v| !v.trim().is_empty());
        PodQuery {
            cluster: name.clone(),
            namespace: given("namespace"),
            phase: given("phase"),
            node: given("node"),
            selector: given("selector"),
            offset: p.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0),
            ..Default::default()
        }
    });
    let pods = resource(move || (query.get(), tick.get()), |(q, _)| pod_table(q));
    let action = format!("/clusters/{}/pods", urlencode(&cluster));
    view! {
        <Title text=format!("Pods of {cluster}") />
        <section class="page">
            <div class="page-head"><h1>{format!("Pods of cluster {cluster}")}</h1></div>
            <GetForm action=action attr:class="search" attr:role="search">
                <label for="pod-namespace">"Namespace"</label>
                <input id="pod-namespace" name="namespace" prop:value=move || query.get().namespace.unwrap_or_default() />
                <label for="pod-phase">"Phase"</label>
                <select id="pod-phase" name="phase">
                    {["", "Pending", "Running", "Succeeded", "Failed", "Unknown"].into_iter().map(|phase| view! {
                        <option value=phase selected=move || query.get().phase.as_deref().unwrap_or_default() == phase>
                            {if phase.is_empty() { "any" } else { phase }}
                        </option>
                    }).collect_view()}
                </select>
                <label for="pod-node">"Node"</label>
                <input id="pod-node" name="node" prop:value=move || query.get().node.unwrap_or_default() />
                <label for="pod-selector">"Label selector"</label>
                <input id="pod-selector" name="selector" prop:value=move || query.get().selector.unwrap_or_default() />
                <button type="submit" class="button">"Search"</button>
            </GetForm>
            <Drawn drawn=pods />
        </section>
    }
}
