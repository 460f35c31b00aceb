//! `/provisioning/explain`: what a machine gets, and why.

use super::*;

/// `/provisioning/explain?query=…`: what a machine gets, and why.
#[component]
pub(super) fn ExplainBoot() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        let raw = params.read().get("query").unwrap_or_default();
        // A bare MAC is a machine asking with its MAC.
        if raw.contains('=') || raw.trim().is_empty() { raw } else { format!("mac={}", raw.trim()) }
    });
    let explanation = resource(move || query.get(), explain_boot);
    view! {
        <Title text="What will this machine get?" />
        <section class="page">
            <h1>"What will this machine get?"</h1>
            <AskForm value=Signal::derive(move || query.get()) />
            <Drawn drawn=explanation />
        </section>
    }
}
