//! Search and filter forms that stay in the app when submitted.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// A `method="get"` form. Before hydration the browser submits it as usual; after, a submit
/// navigates to `action?<the form's fields>` in place, as leptos_router's `<Form>` does.
/// `<Form>` handles every method, and its code (with Unicode case tables) was a file of its own
/// that four areas fetched. `attr:class` and `attr:role` reach the `<form>`.
#[component]
pub fn GetForm(#[prop(into)] action: String, children: Children) -> impl IntoView {
    let navigate = use_navigate();
    let target = action.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        let form = event_target::<web_sys::HtmlFormElement>(&ev);
        let Ok(fields) = web_sys::FormData::new_with_form(&form) else { return };
        let Ok(query) = web_sys::UrlSearchParams::new_with_str_sequence_sequence(fields.as_ref()) else { return };
        ev.prevent_default();
        navigate(&format!("{target}?{}", String::from(query.to_string())), Default::default());
    };
    view! {
        <form method="get" action=action on:submit=submit>
            {children()}
        </form>
    }
}
