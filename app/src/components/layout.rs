//! The frame around every page: skip link, navigation, theme toggle and the error boundary.

use super::theme::ThemeToggle;
use leptos::prelude::*;
use leptos_router::components::A;

/// Only pages that exist are linked; each area joins the list when its page lands.
const NAV: [(&str, &str); 1] = [("/machines", "Machines")];

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // Marks the page as hydrated, so browser tests (and people) never click a dead page.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">"Pangea"</a>
            <nav aria-label="Main">
                <ul>
                    {NAV.into_iter().map(|(href, label)| view! { <li><A href=href>{label}</A></li> }).collect_view()}
                </ul>
            </nav>
            <ThemeToggle />
        </header>
        <main id="main" tabindex="-1" data-hydrated=move || hydrated.get().then_some("true")>
            <ErrorBoundary fallback=|errors| view! {
                <div class="alert error" role="alert">
                    <h1>"This page failed"</h1>
                    <ul>{move || errors.get().into_iter().map(|(_, e)| view! { <li>{e.to_string()}</li> }).collect_view()}</ul>
                    <p><a href="/machines">"Back to machines"</a></p>
                </div>
            }>
                {children()}
            </ErrorBoundary>
        </main>
    }
}
