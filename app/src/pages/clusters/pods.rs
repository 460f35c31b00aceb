//! `/clusters/{name}/pods`: a cluster's pods, live.

use super::*;

/// `/clusters/{name}/pods`: the cluster's pods, filtered by namespace, phase, node and label
/// selector on the server, live.
#[component]
pub(super) fn PodsPage(cluster: String) -> impl IntoView {
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
