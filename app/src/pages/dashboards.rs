//! Dashboards: the ones Pangea draws itself (shipped, or imported as Grafana JSON) and the
//! cluster's Grafana dashboards, embedded through the console's `/grafana/` proxy.

use super::clusters::may;
use super::monitoring::{DrawnCharts, RangeControls};
use crate::access::Permission;
use crate::components::text::urlencode;
use crate::components::toast::use_toasts;
use crate::drawn::{Drawn, clicked_button, data, elements};
use crate::monitoring::dashboards::{ALL, Choices};
use crate::monitoring::server_fns::{
    dashboard, dashboard_list, delete_dashboard, grafana_list, import_grafana_dashboard,
};
use crate::resource::resource;
use leptos::prelude::*;
use leptos::task::spawn_local;

fn dashboard_href(cluster: &str, uid: &str) -> String {
    format!("/clusters/{}/dashboards/{}", urlencode(cluster), urlencode(uid))
}

/// `/clusters/{name}/dashboards`: Pangea's dashboards for this cluster, the import of Grafana
/// JSON for those who may manage dashboards, and the cluster's Grafana dashboards.
#[component]
pub fn DashboardsPage(cluster: String) -> impl IntoView {
    let manage = may(Permission::ManageDashboards, None);
    let version = RwSignal::new(0u32);
    let list = {
        let cluster = cluster.clone();
        resource(move || version.get(), move |_| dashboard_list(cluster.clone()))
    };
    let grafana = {
        let cluster = cluster.clone();
        resource(|| (), move |_| grafana_list(cluster.clone()))
    };
    // The Grafana dashboard shown: its kiosk path through the proxy, and its title.
    let shown = RwSignal::new(None::<(String, String)>);
    let toasts = use_toasts();
    let title = format!("Dashboards of cluster {cluster}");
    let imported = move |result: Result<String, crate::error::AppError>| match result {
        Ok(title) => {
            toasts.success(format!("Imported dashboard {title}."));
            version.update(|v| *v += 1);
        }
        Err(e) => toasts.error(e.to_string()),
    };
    let on_file = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        spawn_local(async move {
            let Some(json) = crate::pages::read_file(_ev).await else {
                toasts.error("That file could not be read as text.");
                return;
            };
            imported(crate::monitoring::server_fns::import_dashboard(json).await);
        });
    };
    // The buttons in the drawn lists carry what they act on (see `monitoring::drawn`).
    let on_own = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, uid)) = clicked_button(&ev, data::REMOVE_DASHBOARD) {
            spawn_local(async move {
                match delete_dashboard(uid.clone()).await {
                    Ok(()) => {
                        toasts.success(format!("Removed dashboard {uid}."));
                        version.update(|v| *v += 1);
                    }
                    Err(e) => toasts.error(e.to_string()),
                }
            });
        }
    };
    let on_grafana = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, uid)) = clicked_button(&ev, data::IMPORT_DASHBOARD) {
            let cluster = cluster.clone();
            spawn_local(async move { imported(import_grafana_dashboard(cluster, uid).await) });
        } else if let Some((button, path)) = clicked_button(&ev, data::EMBED_PATH) {
            if let Some(list) = button.closest("ul").ok().flatten() {
                for other in elements(&list, &format!("button[{}]", data::EMBED_PATH)) {
                    let _ = other.set_attribute("aria-pressed", "false");
                }
            }
            let _ = button.set_attribute("aria-pressed", "true");
            shown.set(Some((path, button.get_attribute(data::EMBED_TITLE).unwrap_or_default())));
        }
    };
    view! {
        <leptos_meta::Title text=title.clone() />
        <section class="page">
            <div class="page-head"><h1>{title}</h1></div>
            <section aria-labelledby="own-dashboards">
                <h2 id="own-dashboards">"Drawn by Pangea"</h2>
                <div on:click=on_own><Drawn drawn=list /></div>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        manage.await.then(|| view! {
                            <div class="inline-form">
                                <label for="dashboard-file">"Import a dashboard in Grafana's JSON model"</label>
                                <input id="dashboard-file" type="file" accept=".json,application/json" on:change=on_file />
                            </div>
                            <p class="hint">"A dashboard exported from Grafana (Share → Export). One with the same uid is replaced."</p>
                        })
                    })}
                </Suspense>
            </section>
            <section aria-labelledby="grafana-dashboards">
                <h2 id="grafana-dashboards">"In the cluster's Grafana"</h2>
                <div on:click=on_grafana><Drawn drawn=grafana /></div>
                {move || shown.get().map(|(path, title)| view! {
                    <iframe class="grafana-frame" src=path title=format!("Grafana dashboard {title}")></iframe>
                })}
            </section>
        </section>
    }
}

/// The variables' values in the URL, as Grafana writes them: `var-NAME=VALUE`, repeated.
fn query_of(choices: &Choices) -> String {
    choices
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| format!("var-{}={}", urlencode(name), urlencode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// The variable a change in the drawn dashboard chose, and its values now: a variable's
/// control carries its name in `data-variable` (see `monitoring::drawn::dashboard`). Checking
/// "All" unchecks the others; checking another value unchecks "All".
fn chosen(ev: &leptos::ev::Event) -> Option<(String, Vec<String>)> {
    use wasm_bindgen::JsCast;
    let target = ev.target()?.dyn_into::<web_sys::Element>().ok()?;
    let control = target.closest(&format!("[{}]", data::VARIABLE)).ok()??;
    let name = control.get_attribute(data::VARIABLE)?;
    if control.tag_name() != "FIELDSET" {
        return Some((name, vec![event_target_value(ev)]));
    }
    let changed = target.dyn_into::<web_sys::HtmlInputElement>().ok()?;
    if changed.checked() && changed.value() == ALL {
        return Some((name, vec![ALL.to_string()]));
    }
    let checked = elements(&control, "input[type=checkbox]:checked").into_iter();
    let values = checked.filter_map(|b| b.get_attribute("value")).filter(|v| v != ALL).collect();
    Some((name, values))
}

/// `/clusters/{name}/dashboards/{uid}`: a dashboard the server drew against the cluster's
/// Prometheus, its variables chosen in the page's URL.
#[component]
pub fn DashboardPage(cluster: String, uid: String) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let navigate = leptos_router::hooks::use_navigate();
    let range = RwSignal::new("1h".to_string());
    let tick = RwSignal::new(0u64);
    let choices = Memo::new(move |_| {
        query.with(|q| {
            let mut choices = Choices::new();
            for (key, value) in q {
                if let Some(name) = key.strip_prefix("var-") {
                    choices.entry(name.to_string()).or_default().push(value.to_string());
                }
            }
            choices
        })
    });
    let href = dashboard_href(&cluster, &uid);
    let drawn = resource(
        move || (range.get(), choices.get(), tick.get()),
        move |(range, choices, _)| dashboard(cluster.clone(), uid.clone(), range, choices),
    );
    let on_change = move |ev: leptos::ev::Event| {
        let Some((name, values)) = chosen(&ev) else { return };
        let mut next = choices.get_untracked();
        next.insert(name, values);
        let options = leptos_router::NavigateOptions { replace: true, scroll: false, ..Default::default() };
        navigate(&format!("{href}?{}", query_of(&next)), options);
    };
    view! {
        <section class="page dashboard">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move { drawn.await.ok().map(|d| view! { <leptos_meta::Title text=d.title /> }) })}
            </Transition>
            <div on:change=on_change><DrawnCharts drawn /></div>
            <section class="health" aria-labelledby="health-title">
                <RangeControls range tick title="Range" />
            </section>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_go_into_the_url_as_grafana_writes_them() {
        let choices = Choices::from([
            ("instance".to_string(), vec!["10.0.0.1:9100".to_string()]),
            ("verb".to_string(), vec!["GET".to_string(), "LIST".to_string()]),
        ]);
        assert_eq!(query_of(&choices), "var-instance=10.0.0.1%3A9100&var-verb=GET&var-verb=LIST");
    }
}
