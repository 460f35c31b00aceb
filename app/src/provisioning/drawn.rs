//! Provisioning drawn on the server (see `crate::drawn`): the overview of what the boot listener
//! serves, what a machine gets and why, a machine's boot timeline and the last hour's boots as a
//! chart. Only compiled for the server.

use super::boots::{ActivityMinute, BootActivity, BootEvent, BootState, Discovered, Timeline};
use super::{Catalog, Explanation, Served, TemplateKind};
use crate::components::text::short_time;
use crate::components::text::urlencode;
use crate::drawn::{Html, data, table};
use leptos::attr::custom::custom_attribute;
use leptos::prelude::*;

fn profile_href(id: &str) -> String {
    format!("/provisioning/profiles/{}", urlencode(id))
}

fn group_href(id: &str) -> String {
    format!("/provisioning/groups/{}", urlencode(id))
}

fn template_href(kind: TemplateKind, id: &str) -> String {
    format!("/provisioning/templates/{}/{}", kind.as_str(), urlencode(id))
}

/// How many groups the overview lists before asking for a filter.
const GROUPS_SHOWN: usize = 200;

/// The overview of what the boot listener serves: the inventory machines' defaults (with the
/// form that sets one, `#default-form`, for those who may change provisioning), the profiles,
/// the groups whose id, profile or selectors contain `filter` (ASCII case folded; the form
/// `#group-filter` asks again), and the templates.
pub fn catalog(catalog: Catalog, filter: &str, may_change: bool) -> Html {
    let Catalog { profiles, groups, templates, machine_profiles, defaults } = catalog;
    let known: std::collections::BTreeSet<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
    let needle = filter.trim().to_ascii_lowercase();
    let matching: Vec<_> = groups
        .iter()
        .filter(|g| {
            needle.is_empty()
                || [g.id.as_str(), g.profile.as_str(), g.selector_string().as_str()]
                    .iter()
                    .any(|text| text.to_ascii_lowercase().contains(&needle))
        })
        .collect();
    let defaults_table = if defaults.is_empty() {
        view! { <div class="empty">"No defaults: inventory machines boot only by their own profile or a group."</div> }
            .into_any()
    } else {
        let rows = defaults.into_iter().map(|d| {
            let cluster = if d.cluster.is_empty() { "(no cluster)".to_string() } else { d.cluster };
            view! { <tr><td>{cluster}</td><td>{d.role}</td><td><a href=profile_href(&d.profile)>{d.profile.clone()}</a></td></tr> }
        });
        table(&["Cluster", "Role", "Profile"], rows.collect_view()).into_any()
    };
    let default_form = may_change.then(|| {
        let options = profiles.iter().map(|p| view! { <option value=p.id.clone()>{p.id.clone()}</option> });
        view! {
            <form class="filters" id="default-form">
                <div class="field"><label for="default-cluster">"Cluster (empty: machines in no cluster)"</label>
                    <input id="default-cluster" name="cluster" placeholder="prod-eu" /></div>
                <div class="field"><label for="default-role">"Role"</label>
                    <select id="default-role" name="role">
                        <option value="worker">"worker"</option>
                        <option value="controller">"controller"</option>
                    </select></div>
                <div class="field"><label for="default-profile">"Profile"</label>
                    <select id="default-profile" name="profile">
                        <option value="">"(none: remove the default)"</option>
                        {options.collect_view()}
                    </select></div>
                <div class="field"><span class="label-spacer" aria-hidden="true">" "</span>
                    <button type="submit" class="button">"Set default"</button></div>
            </form>
        }
    });
    let profiles_table = if profiles.is_empty() {
        view! { <div class="empty">"No profiles yet. Create one, or import a Matchbox data directory."</div> }
            .into_any()
    } else {
        let uses = |id: &str| groups.iter().filter(|g| g.profile == id).count();
        let rows = profiles.iter().map(|p| {
            view! {
                <tr>
                    <td><a href=profile_href(&p.id)>{p.id.clone()}</a></td>
                    <td>{p.name.clone()}</td>
                    <td class="mono">{p.boot.kernel.clone()}</td>
                    <td class="mono">{p.ignition_id.clone()}</td>
                    <td class="mono">{p.generic_id.clone()}</td>
                    <td>{uses(&p.id)}</td>
                </tr>
            }
        });
        table(&["Id", "Name", "Kernel", "Ignition", "Generic", "Groups"], rows.collect_view()).into_any()
    };
    let group_rows = matching.iter().take(GROUPS_SHOWN).map(|g| {
        let missing =
            (!known.contains(g.profile.as_str())).then(|| view! { <span class="badge warn">" missing"</span> });
        let selectors = if g.selector.is_empty() { "(default: no selectors)".to_string() } else { g.selector_string() };
        view! {
            <tr>
                <td><a href=group_href(&g.id)>{g.id.clone()}</a></td>
                <td>{g.profile.clone()} {missing}</td>
                <td class="mono">{selectors}</td>
            </tr>
        }
    });
    let more = (matching.len() > GROUPS_SHOWN)
        .then(|| view! { <p class="hint">{format!("{GROUPS_SHOWN} of {} groups shown; filter to find others.", matching.len())}</p> });
    let template_rows = templates.into_iter().map(|t| {
        let kind = match t.kind {
            TemplateKind::Ignition if super::is_raw_ignition(&t.id) => "Ignition (raw JSON)",
            TemplateKind::Ignition => "Butane template",
            TemplateKind::Generic => "generic template",
        };
        view! {
            <tr>
                <td><a href=template_href(t.kind, &t.id)>{t.id.clone()}</a></td>
                <td>{kind}</td>
                <td>{format!("{} bytes", t.content.len())}</td>
            </tr>
        }
    });
    Html::of(view! {
        <h2>"Inventory machines"</h2>
        <p class="hint">
            "A machine in the inventory boots without a group of its own: it gets the profile set on its page, else the "
            "default of its cluster and role below, with its host name, role, cluster, UUID, serial and labels as template "
            "data. A hand-written group selecting the same labels wins; one with more selectors (e.g. os=installed) too. "
            {format!("Machines with a profile of their own: {}.", machine_profiles.len())}
        </p>
        {defaults_table}
        {default_form}
        <h2>"Profiles"</h2>
        {profiles_table}
        <h2>"Groups"</h2>
        <form class="filters" id="group-filter" role="search" method="get" action="/provisioning">
            <div class="field grow"><label for="group-filter-text">"Filter groups by id, profile or selector"</label>
                <input id="group-filter-text" type="search" name="groups" placeholder="mac=52:54:00" value=filter.to_string() /></div>
            <div class="field"><span class="label-spacer" aria-hidden="true">" "</span>
                <button type="submit" class="button">"Filter"</button></div>
        </form>
        {table(&["Id", "Profile", "Selectors"], group_rows.collect_view())}
        {more}
        <h2>"Templates"</h2>
        {table(&["Id", "Kind", "Size"], template_rows.collect_view())}
    })
}

/// What a machine gets from the boot listener, and why: its group among the candidates, its
/// profile, and each endpoint's answer.
pub fn explanation(e: Explanation) -> Html {
    let labels = if e.labels.is_empty() {
        "none".to_string()
    } else {
        e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    };
    Html::of(view! {
        <dl class="details">
            <dt>"Labels as the boot listener reads them"</dt><dd class="mono">{labels}</dd>
            <dt>"Group"</dt>
            <dd>{match e.group.clone() {
                Some(g) if g.starts_with('~') => view! { <span>{format!("{g} (an inventory machine with a profile)")}</span> }.into_any(),
                Some(g) => view! { <a href=group_href(&g)>{g.clone()}</a> }.into_any(),
                None => view! { <span>"none: the machine gets 404 everywhere"</span> }.into_any(),
            }}</dd>
            <dt>"Profile"</dt>
            <dd>{match e.profile.clone() {
                Some(p) => view! { <a href=profile_href(&p.id)>{p.id.clone()}</a> }.into_any(),
                None => view! { <span>"none"</span> }.into_any(),
            }}</dd>
        </dl>
        <h2>"Candidates"</h2>
        {if e.candidates.is_empty() {
            view! { <div class="empty">"No group selects this machine's MAC, and there is no group without a MAC selector."</div> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table>
                    <thead><tr><th scope="col">"Group"</th><th scope="col">"Selectors"</th><th scope="col">"Outcome"</th></tr></thead>
                    <tbody>
                        {e.candidates.into_iter().map(|c| view! {
                            <tr>
                                <td>{if c.group.starts_with('~') {
                                    view! { <span class="mono">{c.group.clone()}</span> }.into_any()
                                } else {
                                    view! { <a href=group_href(&c.group)>{c.group.clone()}</a> }.into_any()
                                }}</td>
                                <td>{c.selectors}</td>
                                <td>{if c.reason.is_empty() { "serves this machine".to_string() } else { c.reason.clone() }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
            }.into_any()
        }}
        {served_block("iPXE script (/ipxe)", e.ipxe)}
        {served_block("Ignition config (/ignition)", e.ignition)}
        {served_block("Generic config (/generic)", e.generic)}
        {served_block("Metadata (/metadata)", e.metadata)}
    })
}

/// MACs that asked to boot and are not in the inventory. Each row has a "Show" button whose
/// `data-watch` (its MAC) the page shows the timeline of, and, for those who may add machines, a
/// checkbox whose `data-mac` the page collects.
/// `refused`: boot requests refused before an answer, by why, shown as one line above the list
/// (a flood of forged MACs shows here, not as rows).
pub fn discovered(found: Vec<Discovered>, may_add: bool, refused: &[(&str, u64)], gave_way: (u64, u32)) -> Html {
    let total: u64 = refused.iter().map(|(_, n)| n).sum();
    let refused_line = (total > 0).then(|| {
        let parts: Vec<String> = refused.iter().filter(|(_, n)| *n > 0).map(|(why, n)| format!("{n} {why}")).collect();
        view! {
            <p class="alert" role="status">
                {format!("Since this server started, the boot listener refused {total} request(s): {}.", parts.join(", "))}
            </p>
        }
    });
    let (replaced, limit) = gave_way;
    let gave_way_line = (replaced > 0).then(|| {
        view! {
            <p class="alert" role="status">
                {format!(
                    "The list is full ({limit} machines): since this server started, {replaced} entr{} gave way to \
                     newly seen MACs, those that asked least first, then those seen longest ago.",
                    if replaced == 1 { "y" } else { "ies" }
                )}
            </p>
        }
    });
    let refused_line = view! { {refused_line} {gave_way_line} };
    if found.is_empty() {
        return Html::of(view! { {refused_line} <p class="empty">"No unknown machine has asked to boot."</p> });
    }
    let row = move |d: Discovered| {
        let select = may_add.then(|| {
            let check = view! { <input type="checkbox" aria-label=format!("Select {}", d.mac) /> };
            view! { <td class="check">{check.add_any_attr(custom_attribute(data::SELECT_MAC, d.mac.clone()))}</td> }
        });
        view! {
            <tr>
                {select}
                <td class="mono">{d.mac.clone()}</td>
                <td class="mono">{d.uuid.unwrap_or_default()}</td>
                <td>{d.serial.unwrap_or_default()}</td>
                <td>{d.hostname.unwrap_or_default()}</td>
                <td>{d.arch.unwrap_or_default()}</td>
                <td class="nowrap">{short_time(&d.first_seen)}</td>
                <td class="nowrap">{short_time(&d.last_seen)}</td>
                <td>{d.requests}</td>
                <td>{view! { <button type="button" class="button">"Show"</button> }.add_any_attr(custom_attribute(data::WATCH_MAC, d.mac))}</td>
            </tr>
        }
    };
    Html::of(view! {
        {refused_line}
        <div class="table-wrap"><table class="machines">
            <thead><tr>
                {may_add.then(|| view! { <th scope="col" class="check"><span class="visually-hidden">"Select"</span></th> })}
                <th scope="col">"MAC"</th><th scope="col">"UUID"</th><th scope="col">"Serial"</th>
                <th scope="col">"Host name"</th><th scope="col">"Arch"</th><th scope="col">"First seen"</th>
                <th scope="col">"Last seen"</th><th scope="col">"Requests"</th><th scope="col">"Timeline"</th>
            </tr></thead>
            <tbody>{found.into_iter().map(row).collect_view()}</tbody>
        </table></div>
    })
}

/// A block of served text, or why the machine gets 404.
fn served_block(title: &'static str, served: Served) -> impl IntoView {
    view! {
        <h3>{title}</h3>
        {match (served.body, served.missing) {
            (Some(body), _) => view! { <pre class="summary-json">{body}</pre> }.into_any(),
            (None, why) => view! {
                <p class="alert">{format!("404 page not found: {}", why.unwrap_or_default())}</p>
            }.into_any(),
        }}
    }
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

/// A machine's boot state and its events, oldest first.
pub fn timeline(timeline: Timeline) -> Html {
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
            event_row(e, since)
        })
        .collect();
    Html::of(view! {
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
    })
}

fn event_row(event: BootEvent, since: Option<f64>) -> impl IntoView {
    let step = event.step.map(|s| s.label()).unwrap_or("");
    let failed = event.step == Some(BootState::Failed);
    let labels: Vec<String> =
        event.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
    // Pangea's own notes (a power action and its outcome) answered nothing: they say what happened.
    let note = event.status == 0;
    let answer = match (&event.group, &event.profile) {
        _ if note => String::new(),
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
            <td>{answer}{event.reason.map(|r| view! { <div class:boot-failure=!note>{r}</div> })}</td>
            <td class="nowrap">{(!note).then(|| duration(event.duration_us))}</td>
            <td>{event.sha256.map(|sha| view! {
                <a href=format!("/api/v1/boot/served/{sha}") rel="external" target="_blank"
                    title="The config exactly as it was served">{format!("{} ({} B)", &sha[..12], event.bytes)}</a>
            })}</td>
        </tr>
    }
}

/// The last hour's boots per minute: started, finished and failed, as stacked bars.
pub fn activity(activity: BootActivity) -> Html {
    let total = |f: fn(&ActivityMinute) -> u32| activity.minutes.iter().map(f).sum::<u32>();
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
    Html::of(view! {
        <figure class="boot-chart">
            <svg viewBox="0 0 240 40" role="img" aria-label=summary.clone() preserveAspectRatio="none">{bars}</svg>
            <figcaption>
                <span class="key started">"started "{started}</span>
                <span class="key finished">"finished "{finished}</span>
                <span class="key failed">"failed "{failed}</span>
                <span class="muted">" · last hour, per minute"</span>
            </figcaption>
        </figure>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::{DefaultProfile, Group, Profile, TemplateFile};

    #[test]
    fn the_catalog_lists_groups_by_the_filter_and_the_default_form_only_for_those_who_may_change() {
        let group = |id: &str, profile: &str, mac: &str| Group {
            id: id.into(),
            name: String::new(),
            profile: profile.into(),
            selector: [("mac".to_string(), mac.to_string())].into(),
            metadata: Default::default(),
        };
        let catalog = Catalog {
            profiles: vec![Profile { id: "worker".into(), ..Profile::default() }],
            groups: vec![
                group("node-1", "worker", "52:54:00:00:00:01"),
                group("Rescue", "<gone>", "52:54:00:00:00:02"),
            ],
            templates: vec![TemplateFile { kind: TemplateKind::Ignition, id: "w.ign".into(), content: "{}".into() }],
            machine_profiles: Vec::new(),
            defaults: vec![DefaultProfile { cluster: String::new(), role: "worker".into(), profile: "worker".into() }],
        };
        let all = catalog_html(catalog.clone(), "", false);
        assert!(all.contains(r#"<a href="/provisioning/groups/node-1">node-1</a>"#), "{all}");
        assert!(all.contains(r#"&lt;gone&gt;<span class="badge warn"> missing</span>"#), "{all}");
        assert!(all.contains("<td>(no cluster)</td><td>worker</td>"), "{all}");
        assert!(all.contains("<td>Ignition (raw JSON)</td><td>2 bytes</td>"), "{all}");
        assert!(!all.contains("default-form"), "viewers get no form: {all}");
        // The filter folds ASCII case and reads ids, profiles and selectors; the form keeps it.
        let rescue = catalog_html(catalog.clone(), " RESCUE ", true);
        assert!(
            rescue.contains("/provisioning/groups/Rescue") && !rescue.contains("/provisioning/groups/node-1"),
            "{rescue}"
        );
        assert!(rescue.contains(r#"value=" RESCUE ""#), "{rescue}");
        assert!(rescue.contains(r#"<form id="default-form" class="filters">"#), "{rescue}");
        let by_mac = catalog_html(catalog, "00:00:01", true);
        assert!(
            by_mac.contains("/provisioning/groups/node-1") && !by_mac.contains("/provisioning/groups/Rescue"),
            "{by_mac}"
        );
    }

    fn catalog_html(c: Catalog, filter: &str, may_change: bool) -> String {
        catalog(c, filter, may_change).into_string()
    }

    #[test]
    fn seconds_between_stored_times_count_microseconds_and_cross_midnight() {
        let at = |t: &str| format!("2026-12-{t}Z");
        assert_eq!(seconds_between(&at("30T10:00:01.250000"), &at("30T10:00:13.750000")), Some(12.5));
        assert_eq!(seconds_between(&at("30T23:59:59.000000"), &at("31T00:00:01.000001")), Some(2.000001));
        assert_eq!(seconds_between(&at("30T10:00:02.000000"), &at("30T10:00:01.000000")), None);
        assert_eq!(seconds_between("soon", &at("30T10:00:01.000000")), None);
    }

    #[test]
    fn an_explanation_links_its_group_and_says_why_an_endpoint_answers_404() {
        let served = |body: Option<&str>, missing: Option<&str>| Served {
            body: body.map(str::to_string),
            missing: missing.map(str::to_string),
        };
        let e = Explanation {
            labels: [("mac".to_string(), "52:54:00:00:00:01".to_string())].into(),
            group: Some("<node 1>".into()),
            candidates: vec![super::super::Candidate {
                group: "~inventory:52:54:00:00:00:01".into(),
                selectors: 1,
                reason: "a hand-written group wins".into(),
            }],
            profile: None,
            ipxe: served(Some("#!ipxe\nchain <x>"), None),
            ignition: served(None, Some("profile has no ignition_id")),
            generic: served(None, None),
            metadata: served(Some("MAC=52:54:00:00:00:01"), None),
        };
        let html = explanation(e).into_string();
        assert!(html.contains(r#"<a href="/provisioning/groups/%3Cnode%201%3E">&lt;node 1&gt;</a>"#), "{html}");
        assert!(html.contains("chain &lt;x&gt;") && !html.contains("<x>"), "{html}");
        assert!(html.contains("404 page not found: profile has no ignition_id"), "{html}");
        assert!(html.contains("a hand-written group wins"), "{html}");
    }

    #[test]
    fn discovered_machines_have_checkboxes_only_for_those_who_may_add_them() {
        let found = || {
            vec![Discovered {
                mac: "52:54:00:00:00:01".into(),
                uuid: None,
                serial: Some("<SN>".into()),
                hostname: None,
                arch: Some("x86_64".into()),
                first_seen: "2026-12-01T04:00:00.000000Z".into(),
                last_seen: "2026-12-01T04:01:00.000000Z".into(),
                requests: 2,
            }]
        };
        let html = discovered(found(), true, &[], (0, 1000)).into_string();
        assert!(!html.contains("gave way"), "{html}");
        assert!(html.contains(r#"aria-label="Select 52:54:00:00:00:01" data-mac="52:54:00:00:00:01""#), "{html}");
        assert!(html.contains(r#"data-watch="52:54:00:00:00:01""#) && html.contains("&lt;SN&gt;"), "{html}");
        let html = discovered(found(), false, &[], (1, 1000)).into_string();
        assert!(html.contains("1 entry gave way"), "{html}");
        assert!(!html.contains("checkbox") && html.contains("data-watch"), "{html}");
        let refused = [("over the per-MAC rate", 3), ("over the per-address rate", 0)];
        let empty = discovered(Vec::new(), true, &refused, (0, 1000));
        let empty = empty.into_string();
        assert!(empty.contains("No unknown machine has asked to boot."), "{empty}");
        assert!(empty.contains("refused 3 request(s): 3 over the per-MAC rate."), "{empty}");
    }
}
