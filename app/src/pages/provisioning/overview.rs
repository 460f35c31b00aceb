//! `/provisioning`: everything the boot listener serves.

use super::*;

/// `/provisioning`: everything the boot listener serves, drawn by the server with its groups
/// filtered by `?groups=`. Its two forms (see `provisioning::drawn::catalog`) are read here: the
/// filter asks again, and the default form sets an inventory default.
#[component]
pub(super) fn ProvisioningOverview() -> impl IntoView {
    let params = use_query_map();
    let navigate = use_navigate();
    let toasts = use_toasts();
    let filter = Memo::new(move |_| params.read().get("groups").unwrap_or_default());
    let saved = RwSignal::new(0u32);
    let overview = resource(move || (filter.get(), saved.get()), |(filter, _)| provisioning_overview(filter));
    let may = may_change();
    let save = Action::new(move |default: &DefaultProfile| set_default_profile(default.clone()));
    Effect::new(move |_| match save.value().get() {
        Some(Ok(d)) => {
            saved.update(|n| *n += 1);
            toasts.success(if d.profile.is_empty() {
                format!("Removed the default for {}s.", d.role)
            } else {
                let cluster = if d.cluster.is_empty() { "no cluster" } else { &d.cluster };
                format!("{}s in {cluster} now boot {}.", d.role, d.profile)
            });
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        use wasm_bindgen::JsCast;
        let form = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).map(|form| form.id());
        let field = |name: &str| crate::pages::form_field(&ev, name);
        match form.as_deref() {
            Some("group-filter") => {
                navigate(&format!("/provisioning?groups={}", urlencode(&field("groups"))), Default::default())
            }
            Some("default-form") => {
                save.dispatch(DefaultProfile {
                    cluster: field("cluster"),
                    role: field("role"),
                    profile: field("profile"),
                });
            }
            _ => return,
        }
        ev.prevent_default();
    };
    view! {
        <Title text="Provisioning" />
        <section class="page">
            <div class="page-head">
                <h1>"Provisioning"</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        may.await.then(|| view! {
                            <div class="actions">
                                <A href="/provisioning/new/profile" attr:class="button">"New profile"</A>
                                <A href="/provisioning/new/group" attr:class="button">"New group"</A>
                                <A href="/provisioning/new/template" attr:class="button">"New template"</A>
                                <A href="/provisioning/import" attr:class="button">"Import Matchbox data"</A>
                            </div>
                        })
                    })}
                </Suspense>
            </div>
            <AskForm value=Signal::derive(String::new) />
            <p class="hint">
                "A machine gets the group whose selectors all equal its labels; the group with the most selectors wins, "
                "then the one whose selectors sort first, then the one whose id sorts first. A group without selectors "
                "is the default. Selectors override metadata of the same name in templates."
            </p>
            <div on:submit=on_submit><Drawn drawn=overview /></div>
        </section>
    }
}
