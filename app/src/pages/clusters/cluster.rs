//! `/clusters/{name}`: a cluster's health and its live nodes.

use super::*;

/// `/clusters/{name}`: health and the live, server-side filtered nodes table.
#[component]
pub(super) fn ClusterPage(name: String) -> impl IntoView {
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
