//! `/machines`: search, sort, page through, select, delete, label and export machines.

use crate::components::get_form::GetForm;
use crate::components::messages::ErrorBlock;
use crate::components::text::{short_time, urlencode};
use crate::components::toast::{toast_outcome, use_toasts};
use crate::machines::fields::split_label_text;
use crate::machines::server_fns::{add_machine_labels, delete_machines, list_machines};
use crate::machines::{Machine, MachineQuery, SortKey};
use crate::provisioning::boots::BootState;
use crate::resource::{Resource, resource};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use std::collections::BTreeSet;

/// Builds the list URL for a query, keeping only what differs from the defaults.
pub fn list_href(q: &MachineQuery, sort: SortKey, descending: bool, after: Option<&str>) -> String {
    let mut params = Vec::new();
    if let Some(q) = q.search.as_deref().filter(|q| !q.is_empty()) {
        params.push(format!("q={}", urlencode(q)));
    }
    if let Some(state) = q.state {
        params.push(format!("state={}", state.as_str()));
    }
    if let Some(class) = &q.class {
        params.push(format!("class={}", urlencode(class)));
    }
    if sort != SortKey::Mac {
        params.push(format!("sort={}", sort.as_str()));
    }
    if descending {
        params.push("desc=1".to_string());
    }
    if let Some(after) = after {
        params.push(format!("after={}", urlencode(after)));
    }
    if params.is_empty() { "/machines".into() } else { format!("/machines?{}", params.join("&")) }
}

#[component]
pub fn MachineList() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        let p = params.read();
        MachineQuery {
            search: p.get("q").filter(|q| !q.trim().is_empty()),
            sort: p.get("sort").and_then(|s| SortKey::parse(&s)).unwrap_or_default(),
            descending: p.get("desc").is_some_and(|d| d == "1"),
            after: p.get("after"),
            limit: None,
            state: p.get("state").and_then(|s| BootState::parse(&s)),
            class: p.get("class").filter(|c| !c.is_empty()),
        }
    });
    let page = resource(move || query.get(), list_machines);
    let me = resource(|| (), |_| crate::account::current_user());
    let selected = RwSignal::new(BTreeSet::<i64>::new());
    Effect::new(move |_| {
        query.track();
        selected.set(BTreeSet::new());
    });

    let export_href = move |file: &str| {
        let q = query.get();
        let search = q.search.map(|s| format!("search={}", urlencode(&s)));
        let class = q.class.map(|c| format!("class={}", urlencode(&c)));
        let params = [search, class].into_iter().flatten().collect::<Vec<_>>().join("&");
        format!("/api/v1/machines/{file}?{params}")
    };

    view! {
        <Title text="Machines" />
        <section class="page">
            <div class="page-head">
                <h1>"Machines"</h1>
                <div class="actions">
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let can_change = me.await.ok().flatten().is_some_and(|m| m.may(crate::access::Permission::ChangeMachines));
                            can_change.then(|| view! {
                                <A href="/machines/new" attr:class="button primary">"Add machine"</A>
                                <A href="/machines/import" attr:class="button">"Import"</A>
                            })
                        })}
                    </Suspense>
                    <A href="/machines/discovered" attr:class="button">"Discovered"</A>
                    <A href="/machines/power-runs" attr:class="button">"Power runs"</A>
                    <A href="/machines/classes" attr:class="button">"Classes"</A>
                    <a class="button" href=move || export_href("export.csv") download="machines.csv" rel="external">"Export CSV"</a>
                    <a class="button" href=move || export_href("hardware.csv") download="hardware.csv" rel="external">"Export hardware"</a>
                </div>
            </div>
            <super::boots::BootActivityChart />
            <GetForm action="/machines" attr:class="search" attr:role="search">
                <label for="machine-search">"Search"</label>
                <input id="machine-search" type="search" name="q" placeholder="MAC, host name, label or key=value"
                    aria-describedby="machine-search-hint" prop:value=move || query.get().search.unwrap_or_default() />
                <label for="machine-state">"Boot state"</label>
                <select id="machine-state" name="state">
                    <option value="" selected=move || query.get().state.is_none()>"any"</option>
                    {BootState::ALL.into_iter().map(|s| view! {
                        <option value=s.as_str() selected=move || query.get().state == Some(s)>{s.label()}</option>
                    }).collect_view()}
                </select>
                {move || query.get().class.map(|class| view! {
                    <label><input type="checkbox" name="class" value=class.clone() checked=true />" of class "{class}</label>
                })}
                {move || {
                    let q = query.get();
                    (q.sort != SortKey::Mac).then(|| view! { <input type="hidden" name="sort" value=q.sort.as_str() /> })
                }}
                <button type="submit" class="button">"Search"</button>
                <p class="hint" id="machine-search-hint">
                    "And hardware, as BMCs tell it: memory_gib>=256 and model~R650 (also cpus, disks, disks.ssd, nics, manufacturer, bios, bmc_firmware)."
                </p>
            </GetForm>
            <Transition fallback=|| view! { <SkeletonTable /> }>
                {move || Suspend::new(async move {
                    let can_change = me.await.ok().flatten().is_some_and(|m| m.may(crate::access::Permission::ChangeMachines));
                    match page.await {
                        Ok(result) => view! {
                            {can_change.then(|| view! { <BulkActions selected page /> })}
                            <MachineTable machines=result.items.clone() states=result.states.clone() power=result.power.clone() query selected can_change />
                            <Pager query next=result.next.clone() />
                        }.into_any(),
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn SkeletonTable() -> impl IntoView {
    view! {
        <div class="skeleton-table" aria-busy="true" aria-label="Loading machines">
            {(0..6).map(|_| view! { <div class="skeleton-row"></div> }).collect_view()}
        </div>
    }
}

#[component]
fn SortHeader(key: SortKey, label: &'static str, query: Memo<MachineQuery>) -> impl IntoView {
    let href = move || {
        let q = query.get();
        let descending = q.sort == key && !q.descending;
        list_href(&q, key, descending, None)
    };
    let aria_sort = move || {
        let q = query.get();
        match (q.sort == key, q.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    };
    view! {
        <th scope="col" aria-sort=aria_sort>
            <A href=href>{label}</A>
        </th>
    }
}

#[component]
fn MachineTable(
    machines: Vec<Machine>,
    states: std::collections::BTreeMap<String, crate::provisioning::boots::BootStatus>,
    power: std::collections::BTreeMap<String, crate::power::PowerStatus>,
    query: Memo<MachineQuery>,
    selected: RwSignal<BTreeSet<i64>>,
    can_change: bool,
) -> impl IntoView {
    if machines.is_empty() {
        let q = query.get_untracked();
        let searching = q.search.is_some() || q.state.is_some();
        return view! {
            <div class="empty">
                {if searching { "No machine matches this search." } else { "No machines yet. Add one, or import a list." }}
            </div>
        }
        .into_any();
    }
    let ids: Vec<i64> = machines.iter().map(|m| m.id).collect();
    let all_ids = ids.clone();
    let all_selected = move || selected.with(|s| all_ids.iter().all(|id| s.contains(id)));
    let toggle_all = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        selected.update(|s| {
            for id in &ids {
                if on {
                    s.insert(*id);
                } else {
                    s.remove(id);
                }
            }
        });
    };
    view! {
        <div class="table-wrap">
            <table class="machines">
                <thead>
                    <tr>
                        {can_change.then(|| view! {
                            <th scope="col" class="check">
                                <input type="checkbox" aria-label="Select all on this page" prop:checked=all_selected on:change=toggle_all />
                            </th>
                        })}
                        <SortHeader key=SortKey::Mac label="MAC" query />
                        <SortHeader key=SortKey::Hostname label="Host name" query />
                        <SortHeader key=SortKey::Role label="Role" query />
                        <SortHeader key=SortKey::Cluster label="Cluster" query />
                        <th scope="col">"Power"</th>
                        <th scope="col">"Boot state"</th>
                        <th scope="col">"Labels"</th>
                        <SortHeader key=SortKey::UpdatedAt label="Updated" query />
                    </tr>
                </thead>
                <tbody>
                    {machines.into_iter().map(|m| {
                        let id = m.id;
                        let status = states.get(&m.mac);
                        let state = status.map_or(BootState::NeverSeen, |s| s.state);
                        let title = status.and_then(|s| s.reason.clone()).unwrap_or_default();
                        let state_cell = view! {
                            <td><span class="badge" class:failed=state == BootState::Failed title=title>{state.label()}</span></td>
                        };
                        let power_cell = match power.get(&m.mac) {
                            Some(p) => view! { <td><span class=format!("badge power-{}", p.state.as_str()) title=p.reason.clone()>{p.state.words()}</span></td> }.into_any(),
                            None => view! { <td class="hint">"no BMC"</td> }.into_any(),
                        };
                        let checked = move || selected.with(|s| s.contains(&id));
                        let toggle = move |ev: leptos::ev::Event| {
                            let on = event_target_checked(&ev);
                            selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                        };
                        view! {
                            <tr>
                                {can_change.then(|| view! {
                                    <td class="check">
                                        <input type="checkbox" aria-label=format!("Select {}", m.mac) prop:checked=checked on:change=toggle />
                                    </td>
                                })}
                                <td class="mono"><A href=format!("/machines/{id}")>{m.mac.clone()}</A></td>
                                <td>{m.hostname.clone().unwrap_or_default()}</td>
                                <td><span class="badge" class:controller=m.role == crate::machines::fields::Role::Controller>{m.role.as_str()}</span></td>
                                <td>{m.cluster.clone().unwrap_or_default()}</td>
                                {power_cell}
                                {state_cell}
                                <td class="labels">
                                    {m.labels.iter().map(|(k, v)| view! { <span class="chip">{format!("{k}={v}")}</span> }).collect_view()}
                                </td>
                                <td class="nowrap"><time datetime=m.updated_at.clone()>{short_time(&m.updated_at)}</time></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn Pager(query: Memo<MachineQuery>, next: Option<String>) -> impl IntoView {
    let q = query.get_untracked();
    let first = q.after.is_some().then(|| list_href(&q, q.sort, q.descending, None));
    let next = next.map(|cursor| list_href(&q, q.sort, q.descending, Some(&cursor)));
    view! {
        <nav class="pager" aria-label="Pages">
            {first.map(|href| view! { <A href=href attr:class="button">"First page"</A> })}
            {next.map(|href| view! { <A href=href attr:class="button">"Next page"</A> })}
        </nav>
    }
}

#[component]
fn BulkActions(
    selected: RwSignal<BTreeSet<i64>>,
    page: Resource<Result<crate::machines::MachinePage, crate::error::AppError>>,
) -> impl IntoView {
    let toasts = use_toasts();
    let confirming = RwSignal::new(false);
    let label_text = RwSignal::new(String::new());
    let label_error = RwSignal::new(None::<String>);
    let count = move || selected.with(|s| s.len());

    let delete = Action::new(move |ids: &Vec<i64>| delete_machines(ids.clone()));
    let label = Action::new(move |(ids, labels): &(Vec<i64>, std::collections::BTreeMap<String, String>)| {
        add_machine_labels(ids.clone(), labels.clone())
    });
    toast_outcome(
        delete,
        |n| format!("Deleted {n} machine{}.", if *n == 1 { "" } else { "s" }),
        move || {
            selected.set(BTreeSet::new());
            confirming.set(false);
            page.refetch();
        },
    );
    Effect::new(move |_| {
        if let Some(result) = label.value().get() {
            match result {
                Ok(n) => {
                    toasts.success(format!("Labelled {n} machine{}.", if n == 1 { "" } else { "s" }));
                    label_text.set(String::new());
                    page.refetch();
                }
                Err(e) => label_error.set(Some(e.to_string())),
            }
        }
    });
    let apply_labels = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match split_label_text(&label_text.get_untracked()) {
            Ok(pairs) if !pairs.is_empty() => {
                label_error.set(None);
                let ids = selected.get_untracked().into_iter().collect();
                label.dispatch((ids, pairs.into_iter().collect()));
            }
            Ok(_) => label_error.set(Some("Write at least one label as key=value.".into())),
            Err(e) => label_error.set(Some(e)),
        }
    };

    view! {
        <Show when=move || { count() > 0 }>
            <div class="bulk" role="region" aria-label="Selected machines">
                <strong>{move || format!("{} selected", count())}</strong>
                <form class="inline-form" on:submit=apply_labels>
                    <label for="bulk-labels">"Add labels"</label>
                    <input id="bulk-labels" placeholder="rack=r1,zone=a" prop:value=move || label_text.get()
                        on:input=move |ev| label_text.set(event_target_value(&ev))
                        aria-describedby="bulk-labels-error" aria-invalid=move || label_error.get().is_some().then_some("true") />
                    <button type="submit" class="button">"Apply labels"</button>
                    <crate::components::messages::FieldMessage id="bulk-labels-error" message=Signal::derive(move || label_error.get()) />
                </form>
                <Show when=move || confirming.get() fallback=move || view! {
                    <button type="button" class="button danger" on:click=move |_| confirming.set(true)>"Delete…"</button>
                }>
                    <span class="confirm" role="alert">
                        {move || format!("Delete {} machine{}? This cannot be undone.", count(), if count() == 1 { "" } else { "s" })}
                        <button type="button" class="button danger" autofocus
                            on:click=move |_| { delete.dispatch(selected.get_untracked().into_iter().collect()); }>
                            "Confirm delete"
                        </button>
                        <button type="button" class="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                    </span>
                </Show>
            </div>
        </Show>
    }
}
