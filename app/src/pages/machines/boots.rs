//! Boots as people watch them: a machine's live timeline, the last hour's boots as a chart, and
//! `/machines/discovered` (MACs that asked to boot and are not in the inventory).

use super::ErrorBlock;
use crate::components::toast::use_toasts;
use crate::machines::fields::Role;
use crate::pages::short_time;
use crate::provisioning::boots::{AdoptDiscovered, BootActivity, BootEvent, BootState, Timeline};
use crate::provisioning::server_fns::{add_discovered, boot_timeline, discovered_machines, recent_boots};
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use std::collections::BTreeSet;

/// Follows `/api/v1/boot/timeline/{mac}/live` while the page is open; closes it when it is not.
#[cfg(feature = "hydrate")]
fn follow(mac: &str, timeline: RwSignal<Option<Timeline>>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(source) = web_sys::EventSource::new(&format!("/api/v1/boot/timeline/{mac}/live")) else { return };
    let on_timeline = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        if let Some(t) = ev.data().as_string().and_then(|text| serde_json::from_slice::<Timeline>(text.as_bytes()).ok())
        {
            timeline.set(Some(t));
        }
    });
    let _ = source.add_event_listener_with_callback("timeline", on_timeline.as_ref().unchecked_ref());
    let held = StoredValue::new_local((source, on_timeline));
    on_cleanup(move || held.with_value(|(source, _)| source.close()));
}

fn duration(us: u64) -> String {
    if us >= 1_000_000 { format!("{:.1} s", us as f64 / 1e6) } else { format!("{:.1} ms", us as f64 / 1e3) }
}

/// Seconds between two stored times (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, the same day of the month or
/// the next), for "+12 s since the step before". Read as whole numbers: float parsing would bring
/// core's 10 KB table of powers of five into the wasm.
fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let micros = |t: &str| -> Option<i64> {
        let field = |range: std::ops::Range<usize>| t.get(range)?.parse::<i64>().ok();
        let (day, hour, minute, second, fraction) =
            (field(8..10)?, field(11..13)?, field(14..16)?, field(17..19)?, field(20..26)?);
        Some((((day * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + fraction)
    };
    let micros = micros(to)? - micros(from)?;
    (micros >= 0).then(|| micros as f64 / 1e6)
}

/// A machine's boot state and its events, oldest first, updated live.
#[component]
pub fn BootTimeline(mac: String) -> impl IntoView {
    let live = RwSignal::new(None::<Timeline>);
    #[cfg(feature = "hydrate")]
    follow(&mac, live);
    let first = resource(move || mac.clone(), boot_timeline);
    view! {
        <section class="boot-timeline" aria-labelledby="boot-timeline-head">
            <h2 id="boot-timeline-head">"Boot timeline"</h2>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let loaded = first.await;
                    match live.get().map(Ok).unwrap_or(loaded) {
                        Ok(t) => view! { <TimelineView timeline=t /> }.into_any(),
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TimelineView(timeline: Timeline) -> impl IntoView {
    let status = match &timeline.status {
        None => "never seen: no boot request has named this machine yet".to_string(),
        Some(s) => format!("{} since {}", s.state.label(), short_time(&s.since)),
    };
    let reason = timeline
        .status
        .as_ref()
        .and_then(|s| s.reason.clone())
        .filter(|_| timeline.status.as_ref().is_some_and(|s| s.state == BootState::Failed));
    let mut previous: Option<String> = None;
    let rows: Vec<_> = timeline
        .events
        .into_iter()
        .map(|e| {
            let since = previous.as_deref().and_then(|p| seconds_between(p, &e.at));
            previous = Some(e.at.clone());
            view! { <EventRow event=e since /> }
        })
        .collect();
    view! {
        <p class="boot-state" role="status">
            <strong>"State: "</strong>{status}
        </p>
        {reason.map(|r| view! { <p class="boot-failure" role="alert">{r}</p> })}
        {if rows.is_empty() {
            view! { <p class="empty">"No boot events."</p> }.into_any()
        } else {
            view! {
                // Focusable, so keyboard users can scroll a wide table.
                <div class="table-wrap" tabindex="0" role="region" aria-label="Boot events">
                    <table class="boot-events">
                        <thead><tr>
                            <th scope="col">"Time"</th><th scope="col">"Step"</th><th scope="col">"Request"</th>
                            <th scope="col">"Answer"</th><th scope="col">"Took"</th><th scope="col">"Config served"</th>
                        </tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}

#[component]
fn EventRow(event: BootEvent, since: Option<f64>) -> impl IntoView {
    let step = event.step.map(|s| s.label()).unwrap_or("");
    let failed = event.step == Some(BootState::Failed);
    let labels: Vec<String> =
        event.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
    let answer = match (&event.group, &event.profile) {
        (Some(g), Some(p)) => format!("{} · group {g}, profile {p}", event.status),
        (Some(g), None) => format!("{} · group {g}", event.status),
        _ => event.status.to_string(),
    };
    view! {
        <tr class:failed=failed>
            <td class="nowrap"><time datetime=event.at.clone()>{event.at.get(11..23).unwrap_or(&event.at).to_string()}</time>
                {since.map(|s| view! { <span class="muted">{format!(" +{s:.1} s")}</span> })}</td>
            <td>{step}</td>
            <td class="mono">{event.endpoint.clone()}" "<span class="muted">{labels.join(" ")}</span></td>
            <td>{answer}{event.reason.map(|r| view! { <div class="boot-failure">{r}</div> })}</td>
            <td class="nowrap">{duration(event.duration_us)}</td>
            <td>{event.sha256.map(|sha| view! {
                <a href=format!("/api/v1/boot/served/{sha}") rel="external" target="_blank"
                    title="The config exactly as it was served">{format!("{} ({} B)", &sha[..12], event.bytes)}</a>
            })}</td>
        </tr>
    }
}

/// The last hour's boots per minute: started, finished and failed, as stacked bars.
#[component]
pub fn BootActivityChart() -> impl IntoView {
    let activity = resource(|| (), |_| recent_boots());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move { activity.await.ok().map(|a| view! { <ActivityBars activity=a /> }) })}
        </Suspense>
    }
}

#[component]
fn ActivityBars(activity: BootActivity) -> impl IntoView {
    let total = |f: fn(&crate::provisioning::boots::ActivityMinute) -> u32| activity.minutes.iter().map(f).sum::<u32>();
    let (started, finished, failed) = (total(|m| m.started), total(|m| m.finished), total(|m| m.failed));
    let most = activity.minutes.iter().map(|m| m.started.max(m.finished + m.failed)).max().unwrap_or(0).max(1) as f64;
    let bars = activity
        .minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let x = i as f64 * 4.0;
            let h = |n: u32| n as f64 / most * 36.0;
            let (fin, fail) = (h(m.finished), h(m.failed));
            view! {
                <rect class="started" x=x y=40.0 - h(m.started) width=1.6 height=h(m.started) />
                <rect class="finished" x=x + 1.8 y=40.0 - fin width=1.6 height=fin />
                <rect class="failed" x=x + 1.8 y=40.0 - fin - fail width=1.6 height=fail />
            }
        })
        .collect_view();
    let summary = format!("Last hour: {started} boots started, {finished} finished, {failed} failed.");
    view! {
        <figure class="boot-chart">
            <svg viewBox="0 0 240 40" role="img" aria-label=summary.clone() preserveAspectRatio="none">{bars}</svg>
            <figcaption>
                <span class="key started">"started "{started}</span>
                <span class="key finished">"finished "{finished}</span>
                <span class="key failed">"failed "{failed}</span>
                <span class="muted">" · last hour, per minute"</span>
            </figcaption>
        </figure>
    }
}

/// `/machines/:id`: one machine's page, or (`/machines/discovered`) the discovered machines. One
/// lazy page for both, so the timeline they share ships in one chunk rather than in the shell.
#[component]
pub fn MachineArea() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let discovered = Memo::new(move |_| params.read().get("id").as_deref() == Some("discovered"));
    move || {
        if discovered.get() {
            view! { <DiscoveredMachines /> }.into_any()
        } else {
            view! { <super::form::EditMachine /> }.into_any()
        }
    }
}

/// `/machines/discovered`: MACs that asked to boot; select some and add them to the inventory.
#[component]
pub fn DiscoveredMachines() -> impl IntoView {
    let toasts = use_toasts();
    let list = resource(|| (), |_| discovered_machines());
    let me = resource(|| (), |_| crate::account::current_user());
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let watching = RwSignal::new(None::<String>);
    let role = RwSignal::new(Role::Worker);
    let cluster = RwSignal::new(String::new());
    let profile = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let add = Action::new(move |request: &AdoptDiscovered| add_discovered(request.clone()));
    Effect::new(move |_| match add.value().get() {
        Some(Ok(macs)) => {
            toasts.success(format!(
                "Added {} machine{} to the inventory.",
                macs.len(),
                if macs.len() == 1 { "" } else { "s" }
            ));
            selected.set(BTreeSet::new());
            error.set(None);
            list.refetch();
        }
        Some(Err(e)) => error.set(Some(e.to_string())),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        add.dispatch(AdoptDiscovered {
            macs: selected.get_untracked().into_iter().collect(),
            role: Some(role.get_untracked().as_str().to_string()),
            cluster: Some(cluster.get_untracked()).filter(|c| !c.trim().is_empty()),
            profile: Some(profile.get_untracked()).filter(|p| !p.trim().is_empty()),
        });
    };
    view! {
        <Title text="Discovered machines" />
        <section class="page">
            <div class="page-head">
                <h1>"Discovered machines"</h1>
                <div class="actions"><A href="/machines" attr:class="button">"Inventory"</A></div>
            </div>
            <p class="muted">"MACs that asked the boot listener for a config and are not in the inventory. Add them, and they boot on their next try."</p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let may_add = me.await.ok().flatten().is_some_and(|m| m.may(crate::access::Permission::ChangeMachines));
                    match list.await {
                        Ok(found) if found.is_empty() => view! { <p class="empty">"No unknown machine has asked to boot."</p> }.into_any(),
                        Ok(found) => view! {
                            <div class="table-wrap"><table class="machines">
                                <thead><tr>
                                    {may_add.then(|| view! { <th scope="col" class="check"><span class="visually-hidden">"Select"</span></th> })}
                                    <th scope="col">"MAC"</th><th scope="col">"UUID"</th><th scope="col">"Serial"</th>
                                    <th scope="col">"Host name"</th><th scope="col">"Arch"</th><th scope="col">"First seen"</th>
                                    <th scope="col">"Last seen"</th><th scope="col">"Requests"</th><th scope="col">"Timeline"</th>
                                </tr></thead>
                                <tbody>{found.into_iter().map(|d| {
                                    let (mac, for_check, for_watch) = (d.mac.clone(), d.mac.clone(), d.mac.clone());
                                    let checked = move || selected.with(|s| s.contains(&for_check));
                                    let toggle = move |ev: leptos::ev::Event| {
                                        let on = event_target_checked(&ev);
                                        let mac = mac.clone();
                                        selected.update(|s| { if on { s.insert(mac); } else { s.remove(&mac); } });
                                    };
                                    view! { <tr>
                                        {may_add.then(|| view! { <td class="check"><input type="checkbox" aria-label=format!("Select {}", d.mac) prop:checked=checked on:change=toggle /></td> })}
                                        <td class="mono">{d.mac.clone()}</td>
                                        <td class="mono">{d.uuid.unwrap_or_default()}</td>
                                        <td>{d.serial.unwrap_or_default()}</td>
                                        <td>{d.hostname.unwrap_or_default()}</td>
                                        <td>{d.arch.unwrap_or_default()}</td>
                                        <td class="nowrap">{short_time(&d.first_seen)}</td>
                                        <td class="nowrap">{short_time(&d.last_seen)}</td>
                                        <td>{d.requests}</td>
                                        <td><button type="button" class="button" on:click=move |_| watching.set(Some(for_watch.clone()))>"Show"</button></td>
                                    </tr> }
                                }).collect_view()}</tbody>
                            </table></div>
                            {may_add.then(|| view! {
                                <form class="inline-form" on:submit=submit aria-label="Add the selected machines">
                                    <label for="adopt-role">"Role"</label>
                                    <select id="adopt-role" on:change=move |ev| role.set(if event_target_value(&ev) == "controller" { Role::Controller } else { Role::Worker })>
                                        <option value="worker" selected>"worker"</option>
                                        <option value="controller">"controller"</option>
                                    </select>
                                    <label for="adopt-cluster">"Cluster"</label>
                                    <input id="adopt-cluster" prop:value=move || cluster.get() on:input=move |ev| cluster.set(event_target_value(&ev)) />
                                    <label for="adopt-profile">"Profile"</label>
                                    <input id="adopt-profile" prop:value=move || profile.get() on:input=move |ev| profile.set(event_target_value(&ev)) />
                                    <button type="submit" class="button primary" disabled=move || selected.with(|s| s.is_empty())>
                                        {move || format!("Add {} to the inventory", selected.with(|s| s.len()))}
                                    </button>
                                    <super::FieldMessage id="adopt-error" message=Signal::derive(move || error.get()) />
                                </form>
                            })}
                        }.into_any(),
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    }
                })}
            </Transition>
            {move || watching.get().map(|mac| view! { <BootTimeline mac /> })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_between_stored_times_count_microseconds_and_cross_midnight() {
        let at = |t: &str| format!("2026-12-{t}Z");
        assert_eq!(seconds_between(&at("30T10:00:01.250000"), &at("30T10:00:13.750000")), Some(12.5));
        assert_eq!(seconds_between(&at("30T23:59:59.000000"), &at("31T00:00:01.000001")), Some(2.000001));
        assert_eq!(seconds_between(&at("30T10:00:02.000000"), &at("30T10:00:01.000000")), None);
        assert_eq!(seconds_between("soon", &at("30T10:00:01.000000")), None);
    }
}
