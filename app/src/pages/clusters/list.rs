//! `/clusters`: every registered cluster.

use super::*;

/// `/clusters`.
#[component]
pub(super) fn ClusterList() -> impl IntoView {
    let clusters = resource(|| (), |_| cluster_table());
    let admin = may(Permission::ManageClusters, None);
    view! {
        <Title text="Clusters" />
        <section class="page">
            <div class="page-head">
                <h1>"Clusters"</h1>
                <div class="actions">
                    <A href="/clusters/nodes" attr:class="button">"All nodes"</A>
                    <A href="/clusters/rolling" attr:class="button">"Rolling operations"</A>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            admin.await.then(|| view! {
                                <A href="/clusters/create" attr:class="button primary">"Create cluster"</A>
                                <A href="/clusters/new" attr:class="button">"Add existing cluster"</A>
                            })
                        })}
                    </Suspense>
                </div>
            </div>
            <Drawn drawn=clusters />
        </section>
    }
}
