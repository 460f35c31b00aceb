//! The frame around every page: skip link, navigation, theme toggle and the error boundary.

use super::theme::ThemeToggle;
use crate::resource::resource;
use leptos::prelude::*;
use leptos_router::components::A;

/// Only pages that exist are linked; each area joins the list when its page lands. A link shows
/// only to people whose role allows its page (`permission_for_page`).
const NAV: [(&str, &str); 5] = [
    ("/machines", "Machines"),
    ("/provisioning", "Provisioning"),
    ("/clusters", "Clusters"),
    ("/access", "Access"),
    ("/audit", "Audit"),
];

/// The areas the signed-in person may open.
#[component]
fn NavLinks() -> impl IntoView {
    let me = resource(|| (), |_| crate::account::current_user());
    view! {
        <ul>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let me = me.await.ok().flatten();
                    me.map(|me| {
                        NAV.into_iter()
                            .filter(|(href, _)| crate::pages::permission_for_page(href).is_none_or(|p| me.may(p)))
                            .map(|(href, label)| view! {
                                <li><A href=href>{label}{(href == "/clusters").then(|| view! { <FiringCount /> })}</A></li>
                            })
                            .collect_view()
                    })
                })}
            </Suspense>
        </ul>
    }
}

/// How many alerts fire in the clusters the person may see, beside "Clusters". Fetched by the
/// browser after the page is up, so no page waits on an Alertmanager.
#[component]
fn FiringCount() -> impl IntoView {
    let count = LocalResource::new(crate::monitoring::server_fns::firing_count);
    move || {
        count.get().and_then(Result::ok).filter(|n| *n > 0).map(|n| {
            view! {
                <span class="nav-count" aria-hidden="true">{n}</span>
                <span class="visually-hidden">{format!(", {n} alerts firing")}</span>
            }
        })
    }
}

/// The signed-in person and a sign-out button, once known.
#[component]
fn Account() -> impl IntoView {
    let me = resource(|| (), |_| crate::account::current_user());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await.ok().flatten().map(|me| view! {
                    <div class="account">
                        <span class="who">{me.name.clone()} " · " {me.role.map(|r| r.as_str()).unwrap_or("no role")}</span>
                        {me.note.clone().map(|note| view! {
                            <details class="account-note">
                                <summary>"About your groups"</summary>
                                <p>{note}</p>
                            </details>
                        })}
                        <form method="post" action="/auth/logout">
                            <button type="submit" class="button ghost">"Sign out"</button>
                        </form>
                    </div>
                })
            })}
        </Suspense>
    }
}

/// Whether the first page, loaded lazily, has yet to hydrate (see [`lazy_page_ready`]).
#[derive(Clone, Copy)]
pub struct LazyPageWaiting(RwSignal<bool>);

/// Called by a lazily loaded page's view: once it has hydrated, the page takes clicks.
pub fn lazy_page_ready() {
    if let Some(LazyPageWaiting(waiting)) = use_context::<LazyPageWaiting>() {
        Effect::new(move |_| waiting.set(false));
    }
}

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // Marks the page as hydrated, so browser tests (and people) never click a dead page.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    // A page whose code loads lazily hydrates after the frame: until it says so, the page is
    // not ready for clicks.
    let path = leptos_router::hooks::use_location().pathname.get_untracked();
    let page_waiting = RwSignal::new(crate::pages::is_lazy_page(&path));
    provide_context(LazyPageWaiting(page_waiting));
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">"Pangea"</a>
            <nav aria-label="Main">
                <NavLinks />
            </nav>
            <ThemeToggle />
            <Account />
        </header>
        <main id="main" tabindex="-1" data-hydrated=move || (hydrated.get() && !page_waiting.get()).then_some("true")>
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
