//! Dashboards: the ones Pangea draws itself (shipped, or imported as Grafana JSON) and the
//! cluster's Grafana dashboards, embedded through the console's `/grafana/` proxy.

use super::clusters::may;
use super::machines::ErrorBlock;
use super::monitoring::{DrawnCharts, RangeControls};
use super::urlencode;
use crate::access::Permission;
use crate::components::toast::use_toasts;
use crate::drawn::{Drawn, clicked_button};
use crate::monitoring::dashboards::{ALL, Choices, PanelKind, PanelView, VariableView};
use crate::monitoring::server_fns::{
    dashboard, dashboard_list, dashboard_panel, delete_dashboard, grafana_list, import_grafana_dashboard,
};
use crate::resource::resource;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;

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
        if let Some((_, uid)) = clicked_button(&ev, "data-remove") {
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
        if let Some((_, uid)) = clicked_button(&ev, "data-import") {
            let cluster = cluster.clone();
            spawn_local(async move { imported(import_grafana_dashboard(cluster, uid).await) });
        } else if let Some((button, path)) = clicked_button(&ev, "data-embed") {
            if let Some(Ok(all)) = button
                .parent_element()
                .and_then(|li| li.parent_element())
                .map(|ul| ul.query_selector_all("button[data-embed]"))
            {
                for i in 0..all.length() {
                    if let Some(other) =
                        all.item(i).and_then(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(n).ok())
                    {
                        let _ = other.set_attribute("aria-pressed", "false");
                    }
                }
            }
            let _ = button.set_attribute("aria-pressed", "true");
            shown.set(Some((path, button.get_attribute("data-title").unwrap_or_default())));
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

/// `/clusters/{name}/dashboards/{uid}`: a dashboard drawn against the cluster's Prometheus,
/// its variables chosen in the page's URL.
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
    let view_resource = {
        let (cluster, uid) = (cluster.clone(), uid.clone());
        resource(
            move || (range.get(), choices.get()),
            move |(range, choices)| dashboard(cluster.clone(), uid.clone(), range, choices),
        )
    };
    let href = dashboard_href(&cluster, &uid);
    let choose = move |name: String, values: Vec<String>| {
        let mut next = choices.get_untracked();
        next.insert(name, values);
        let options = leptos_router::NavigateOptions { replace: true, scroll: false, ..Default::default() };
        navigate(&format!("{href}?{}", query_of(&next)), options);
    };
    view! {
        <section class="page dashboard">
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || {
                    let (cluster, uid, choose) = (cluster.clone(), uid.clone(), choose.clone());
                    Suspend::new(async move {
                        let d = match view_resource.await {
                            Ok(d) => d,
                            Err(e) => return view! { <ErrorBlock error=e /> }.into_any(),
                        };
                        let resolved: Choices = d.variables.iter().map(|v| (v.name.clone(), v.current.clone())).collect();
                        let range_now = range.get_untracked();
                        let grafana = d.grafana_path.clone();
                        view! {
                            <leptos_meta::Title text=d.title.clone() />
                            <div class="page-head">
                                <h1>{d.title.clone()}</h1>
                                <A href=format!("/clusters/{}/dashboards", urlencode(&cluster))>"All dashboards"</A>
                            </div>
                            {(!d.description.is_empty()).then(|| view! { <p class="hint">{d.description.clone()}</p> })}
                            {d.unavailable.clone().map(|reason| view! { <div class="alert warning" role="status">{reason}</div> })}
                            <div class="dashboard-variables">
                                {d.variables.into_iter().map(|v| view! { <VariablePicker v choose=choose.clone() /> }).collect_view()}
                            </div>
                            <div class="dashboard-grid">
                                {d.panels.into_iter().map(|panel| view! {
                                    <Panel cluster=cluster.clone() uid=uid.clone() panel range=range_now.clone()
                                        choices=resolved.clone() tick grafana=grafana.clone() />
                                }).collect_view()}
                            </div>
                        }.into_any()
                    })
                }}
            </Transition>
            <section class="health" aria-labelledby="health-title">
                <RangeControls range tick title="Range" />
            </section>
        </section>
    }
}

/// A variable's values: a list for one value, checkboxes for several.
#[component]
fn VariablePicker(
    v: VariableView,
    choose: impl Fn(String, Vec<String>) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let id = format!("var-{}", v.name);
    if v.typed {
        let (name, value) = (v.name.clone(), v.current.first().cloned().unwrap_or_default());
        return view! {
            <div class="variable">
                <label for=id.clone()>{v.label.clone()}</label>
                <input id=id value=value on:change=move |ev| choose(name.clone(), vec![event_target_value(&ev)]) />
            </div>
        }
        .into_any();
    }
    let mut options: Vec<(String, String)> = v.options.iter().map(|o| (o.clone(), o.clone())).collect();
    if v.include_all {
        options.insert(0, (ALL.to_string(), "All".to_string()));
    }
    let error = v.error.clone().map(|e| view! { <p class="field-error">{e}</p> });
    if v.multi {
        let current = v.current.clone();
        let name = v.name.clone();
        return view! {
            <fieldset class="variable" id=id>
                <legend>{v.label.clone()}</legend>
                {options.into_iter().map(|(value, text)| {
                    let checked = current.contains(&value);
                    let (name, current, choose) = (name.clone(), current.clone(), choose.clone());
                    let value_for = value.clone();
                    view! {
                        <label class="check">
                            <input type="checkbox" value=value checked=checked on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                let mut next: Vec<String> = current.iter().filter(|c| **c != value_for && *c != ALL).cloned().collect();
                                if on { next = if value_for == ALL { vec![ALL.to_string()] } else { next.into_iter().chain([value_for.clone()]).collect() }; }
                                choose(name.clone(), next);
                            } />
                            {text}
                        </label>
                    }
                }).collect_view()}
                {error}
            </fieldset>
        }
        .into_any();
    }
    let chosen = v.current.first().cloned().unwrap_or_default();
    let name = v.name.clone();
    view! {
        <div class="variable">
            <label for=id.clone()>{v.label.clone()}</label>
            <select id=id on:change=move |ev| choose(name.clone(), vec![event_target_value(&ev)])>
                {options.into_iter().map(|(value, text)| {
                    let selected = value == chosen;
                    view! { <option value=value selected=selected>{text}</option> }
                }).collect_view()}
            </select>
            {error}
        </div>
    }
    .into_any()
}

/// One panel, fetched on its own (again at each refresh).
#[component]
fn Panel(
    cluster: String,
    uid: String,
    panel: PanelView,
    range: String,
    choices: Choices,
    tick: RwSignal<u64>,
    grafana: Option<String>,
) -> impl IntoView {
    let class = format!("dash-panel w-{}", panel.width);
    match &panel.kind {
        PanelKind::Row => return view! { <h2 class="dash-row">{panel.title.clone()}</h2> }.into_any(),
        PanelKind::Other(kind) => {
            let link = grafana.map(|path| {
                view! { <a href=format!("{path}?viewPanel={}", panel.id)>{format!("Open \"{}\" in Grafana", panel.title)}</a> }
            });
            return view! {
                <figure class=class>
                    <figcaption>{panel.title.clone()}</figcaption>
                    <p class="chart-error">{format!("Pangea does not draw {kind} panels. ")}{link}</p>
                </figure>
            }
            .into_any();
        }
        _ => {}
    }
    let id = panel.id;
    let answer = resource(
        move || tick.get(),
        move |_| dashboard_panel(cluster.clone(), uid.clone(), id, range.clone(), choices.clone()),
    );
    view! { <div class=class><DrawnCharts drawn=answer /></div> }.into_any()
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
