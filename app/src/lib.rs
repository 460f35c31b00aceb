//! Pangea's user interface: every page, the types shared with the server, and the server
//! functions the pages call. Built twice: with `ssr` into the server, with `hydrate` into wasm.

#![recursion_limit = "256"]

pub mod access;
pub mod account;
pub mod audit;
pub mod clusters;
pub mod components;
pub mod drawn;
pub mod error;
pub mod machines;
pub mod monitoring;
pub mod overview;
pub mod pages;
pub mod power;
pub mod provisioning;
pub mod resource;
#[cfg(feature = "ssr")]
pub mod ssr;

use components::layout::Layout;
use components::toast::ToastProvider;
use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, LazyRoute, lazy_route, path};

/// The document around every page. On the server it also sets the Content-Security-Policy,
/// whose script nonce is the one the hydration scripts carry.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let nonce = leptos::nonce::use_nonce();
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (nonce.as_ref(), use_context::<leptos_axum::ResponseOptions>())
        && let Ok(value) = axum::http::HeaderValue::from_str(&content_security_policy(
            nonce,
            use_context::<account::LoginOptions>().and_then(|o| o.idp_origin).as_deref(),
            use_context::<monitoring::GrafanaFrames>().and_then(|g| g.0).as_deref(),
        ))
    {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                // Applies the remembered theme before the first paint, so a dark page never flashes light.
                <script nonce=nonce>{components::theme::APPLY_SAVED_THEME_JS}</script>
                <HashedStylesheet options=options.clone() id="leptos" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Scripts only from this origin or with this response's nonce; wasm may be compiled; no framing.
/// Forms post only here, and to the identity provider, where signing out continues. Frames show
/// this origin, and Grafana's where it has its own.
#[cfg(feature = "ssr")]
pub fn content_security_policy(nonce: &str, idp_origin: Option<&str>, grafana_origin: Option<&str>) -> String {
    let idp = idp_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let grafana = grafana_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; frame-src 'self'{grafana}; object-src 'none'; base-uri 'self'; \
         form-action 'self'{idp}; frame-ancestors 'none'"
    )
}

// Each area's pages load their code on first visit (cargo leptos build --split), so a first
// page fetches the shell and its own area, not every page of the console. Areas are few on
// purpose: code that several areas share is cut into one file per set of areas sharing it,
// and nine areas made the machine list fetch 66 such files.
macro_rules! lazy_area {
    ($route:ident, $page:path) => {
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                components::layout::lazy_page_ready();
                $page().into_any()
            }
        }
    };
}

lazy_area!(MachineListRoute, pages::machines::MachineListPages);
lazy_area!(MachineRoute, pages::machines::MachinePages);
lazy_area!(ProvisioningRoute, pages::provisioning::ProvisioningArea);
lazy_area!(ClustersRoute, pages::clusters::ClustersArea);
lazy_area!(OtherPagesRoute, pages::access::OtherPages);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Pangea".to_string() } else { format!("{page} · Pangea") } />
        <Router>
            <ToastProvider>
                <Layout>
                    <Routes fallback=pages::not_found::NotFound>
                        <Route path=path!("/") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/login") view=pages::login::Login />
                        <Route path=path!("/machines") view={Lazy::<MachineListRoute>::new()} />
                        <Route path=path!("/machines/new") view={Lazy::<MachineRoute>::new()} />
                        // The list's side pages are in the other pages' area (see OtherPages).
                        <Route path=path!("/machines/power-runs") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/machines/classes") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/machines/discover") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/machines/import") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/machines/discovered") view={Lazy::<MachineListRoute>::new()} />
                        <Route path=path!("/machines/:id") view={Lazy::<MachineRoute>::new()} />
                        <Route path=path!("/provisioning") view={Lazy::<ProvisioningRoute>::new()} />
                        <Route path=path!("/provisioning/*rest") view={Lazy::<ProvisioningRoute>::new()} />
                        <Route path=path!("/clusters") view={Lazy::<ClustersRoute>::new()} />
                        <Route path=path!("/clusters/create") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/clusters/rolling") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/clusters/*rest") view={Lazy::<ClustersRoute>::new()} />
                        <Route path=path!("/access") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/audit") view={Lazy::<OtherPagesRoute>::new()} />
                        <Route path=path!("/audit/:id") view={Lazy::<OtherPagesRoute>::new()} />
                    </Routes>
                </Layout>
            </ToastProvider>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy routes (split wasm) hydrate once their page's code has loaded.
    leptos::mount::hydrate_lazy(App);
}

/// Room for wasm-split to lay out the read-only data again. It moves each page's data into the
/// module that uses it, grouped per module with alignment padding. If the regrouped data is
/// longer than the original segment, by even a few bytes, it keeps *all* of the data in the
/// shell ("Overlong segment 0 … putting it in main module"): about 35 KB more with brotli on
/// every page. Nothing reads this array, so wasm-split puts it in no module; it only makes the
/// original segment long enough for the padding. `#[used]` keeps it through the linker.
#[cfg(feature = "hydrate")]
#[used]
static WASM_SPLIT_DATA_SLACK: [u8; 4096] = [0; 4096];
