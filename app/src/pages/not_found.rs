use leptos::prelude::*;
use leptos_meta::Title;

/// The answer for every unknown URL, with a real 404 status.
#[component]
pub fn NotFound() -> impl IntoView {
    crate::error::set_response_status(404);
    view! {
        <Title text="Not found" />
        <section class="page narrow">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. It may have moved, or the link may be mistyped."</p>
            <p><a class="button" href="/machines">"Go to machines"</a></p>
        </section>
    }
}
