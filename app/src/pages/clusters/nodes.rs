//! `/clusters/nodes`: every cluster's nodes.

use super::*;

/// `/clusters/nodes`: every cluster's nodes in one table, filtered, sorted and paged on the
/// server.
#[component]
pub(super) fn NodesPage() -> impl IntoView {
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
