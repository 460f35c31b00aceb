//! `/clusters/{name}/nodes/{node}`: a node, its pods and events, and what people do to it.

use super::*;

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
        if let Some((_, job)) = clicked_button(&ev, data::CANCEL_DRAIN) {
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
pub(super) fn NodePage(cluster: String, node: String) -> impl IntoView {
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
