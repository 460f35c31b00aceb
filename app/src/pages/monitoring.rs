//! Health charts on the cluster and node pages: a time range picker with auto-refresh, and
//! each chart as an SVG line chart with hover values (mouse or arrow keys) and a table for
//! screen readers.

use crate::monitoring::server_fns::{
    cluster_charts, create_silence, etcd_quorum, expire_silence, list_alerts, list_silences, node_charts,
};
use crate::monitoring::{AlertState, Chart, Charts, Matcher, PRESETS, SilenceInput, TimeRange, Unit};
use crate::pages::machines::ErrorBlock;
use crate::resource::resource;
use leptos::prelude::*;

/// Whose charts: a cluster's, or one node's.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    Cluster(String),
    Node { cluster: String, node: String },
}

/// How often the charts are fetched again: (label, seconds; 0 is never).
const REFRESH: [(&str, u32); 4] = [("off", 0), ("10s", 10), ("30s", 30), ("1m", 60)];

/// `HH:MM` (UTC) for ranges within a day, else `MM-DD HH:MM`.
fn clock(at: i64, long: bool) -> String {
    let day = at.div_euclid(86_400);
    let seconds = at.rem_euclid(86_400);
    let (hour, minute) = (seconds / 3600, (seconds % 3600) / 60);
    if !long {
        return format!("{hour:02}:{minute:02}");
    }
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{m:02}-{d:02} {hour:02}:{minute:02}")
}

/// A `datetime-local` value (UTC) as Unix seconds.
fn parse_local(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + hour * 3600 + minute * 60)
}

/// The range picker (presets and a custom UTC range) and auto-refresh: `range` holds the
/// chosen range, and `tick` counts refreshes.
#[component]
pub(crate) fn RangeControls(range: RwSignal<String>, tick: RwSignal<u64>, title: &'static str) -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let custom_start = RwSignal::new(String::new());
    let custom_end = RwSignal::new(String::new());
    let custom_error = RwSignal::new(None::<String>);
    // Auto-refresh: one interval at a time, cleared when the choice changes or the page goes.
    let handle = StoredValue::new(None::<leptos::prelude::IntervalHandle>);
    Effect::new(move |_| {
        let seconds = refresh.get();
        if let Some(h) = handle.get_value() {
            h.clear();
        }
        handle.set_value(None);
        if seconds > 0
            && let Ok(h) = set_interval_with_handle(
                move || tick.update(|t| *t += 1),
                std::time::Duration::from_secs(u64::from(seconds)),
            )
        {
            handle.set_value(Some(h));
        }
    });
    on_cleanup(move || {
        if let Some(h) = handle.get_value() {
            h.clear();
        }
    });
    let apply_custom = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match (parse_local(&custom_start.get_untracked()), parse_local(&custom_end.get_untracked())) {
            (Some(start), Some(end)) => match (TimeRange::Between { start, end }).checked() {
                Ok(r) => {
                    custom_error.set(None);
                    range.set(r.label());
                }
                Err(e) => custom_error.set(Some(e)),
            },
            _ => custom_error.set(Some("Give both a start and an end.".into())),
        }
    };
    view! {
        <div class="health-head">
            <h2 id="health-title">{title}</h2>
            <div class="range-picker" role="group" aria-label="Time range">
                {PRESETS.iter().map(|(label, _)| {
                    let label = label.to_string();
                    let value = label.clone();
                    view! {
                        <button type="button" class="button small" aria-pressed=move || (range.get() == value).to_string()
                            on:click={ let label = label.clone(); move |_| range.set(label.clone()) }>{label.clone()}</button>
                    }
                }).collect_view()}
            </div>
            <label for="chart-refresh">"Refresh"</label>
            <select id="chart-refresh" on:change=move |ev| refresh.set(event_target_value(&ev).parse().unwrap_or(0))>
                {REFRESH.iter().map(|(label, seconds)| view! { <option value=seconds.to_string()>{*label}</option> }).collect_view()}
            </select>
        </div>
        <form class="inline-form custom-range" on:submit=apply_custom>
            <label for="range-start">"From (UTC)"</label>
            <input id="range-start" type="datetime-local" prop:value=move || custom_start.get()
                on:input=move |ev| custom_start.set(event_target_value(&ev)) />
            <label for="range-end">"to"</label>
            <input id="range-end" type="datetime-local" prop:value=move || custom_end.get()
                on:input=move |ev| custom_end.set(event_target_value(&ev)) />
            <button type="submit" class="button small">"Show range"</button>
            {move || custom_error.get().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        </form>
    }
}

#[component]
pub fn HealthCharts(scope: Scope) -> impl IntoView {
    let range = RwSignal::new("1h".to_string());
    let tick = RwSignal::new(0u64);
    let charts = resource(
        move || (range.get(), tick.get()),
        move |(range, _)| {
            let scope = scope.clone();
            async move {
                match scope {
                    Scope::Cluster(cluster) => cluster_charts(cluster, range).await,
                    Scope::Node { cluster, node } => node_charts(cluster, node, range).await,
                }
            }
        },
    );
    view! {
        <section class="health" aria-labelledby="health-title">
            <RangeControls range tick title="Health" />
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match charts.await {
                        Ok(set) => view! { <ChartGrid set /> }.into_any(),
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ChartGrid(set: Charts) -> impl IntoView {
    if let Some(reason) = set.unavailable.clone() {
        return view! { <div class="alert warning chart-unavailable" role="status">{reason}</div> }.into_any();
    }
    let long = set.end - set.start > 86_400;
    view! {
        <div class="chart-grid">
            {set.charts.into_iter().map(|chart| view! { <LineChart chart start=set.start end=set.end long /> }).collect_view()}
        </div>
    }
    .into_any()
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 4.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 8.0;

/// The top of the y axis: the largest value, rounded up to 1, 2 or 5 times a power of ten (a
/// ratio at most 100 %).
fn nice_max(max: f64, ratio: bool) -> f64 {
    if ratio {
        return if max <= 0.0 { 1.0 } else { (max * 1.1).clamp(0.05, 1.0) };
    }
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|v| *v >= max).unwrap_or(10.0 * power)
}

#[component]
pub(crate) fn LineChart(
    chart: Chart,
    start: i64,
    end: i64,
    long: bool,
    /// Grafana's `showLegend: false`: the legend shows only with hover values.
    #[prop(optional)]
    hide_legend: bool,
) -> impl IntoView {
    let id = format!("chart-{}", chart.id);
    let hover = RwSignal::new(None::<usize>);
    let Chart { title, unit, series, error, query, .. } = chart;
    if let Some(error) = error {
        return view! {
            <figure class="chart" id=id>
                <figcaption>{title}</figcaption>
                <p class="chart-error" role="status">{error}</p>
            </figure>
        }
        .into_any();
    }
    // Every instant any series has, in order: the hover and the table walk these.
    let mut instants: Vec<i64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    instants.sort_unstable();
    instants.dedup();
    let max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::max);
    let top = nice_max(max, unit == Unit::Ratio);
    let span = (end - start).max(1) as f64;
    let x = move |at: i64| LEFT + (at - start) as f64 / span * (WIDTH - LEFT);
    let y = move |v: f64| TOP + (1.0 - v / top) * (HEIGHT - TOP - BOTTOM);
    let lines: Vec<String> = series
        .iter()
        .map(|s| s.points.iter().map(|(at, v)| format!("{:.1},{:.1}", x(*at), y(*v))).collect::<Vec<_>>().join(" "))
        .collect();
    let latest: Vec<String> = series
        .iter()
        .filter_map(|s| s.points.last().map(|(_, v)| format!("{} {}", s.legend, unit.format(*v))))
        .collect();
    let label = format!("{title}, latest: {}", latest.join(", "));
    let value_at = {
        let series = series.clone();
        move |at: i64| -> Vec<(usize, String, String)> {
            series
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let value = s.points.iter().find(|p| p.0 == at).map_or("–".into(), |p| unit.format(p.1));
                    (i, s.legend.clone(), value)
                })
                .collect()
        }
    };
    let count = instants.len();
    let hover_at = {
        let instants = instants.clone();
        move || hover.get().and_then(|i| instants.get(i).copied())
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        use wasm_bindgen::JsCast;
        let Some(target) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
        let width = f64::from(target.client_width());
        if width > 0.0 && count > 0 {
            let fraction = (f64::from(ev.offset_x()) / width).clamp(0.0, 1.0);
            hover.set(Some(((fraction * (count - 1) as f64).round()) as usize));
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if count == 0 {
            return;
        }
        let current = hover.get_untracked();
        let next = match ev.key().as_str() {
            "ArrowRight" => Some(current.map_or(0, |i| (i + 1).min(count - 1))),
            "ArrowLeft" => Some(current.map_or(count - 1, |i| i.saturating_sub(1))),
            "Home" => Some(0),
            "End" => Some(count - 1),
            "Escape" => None,
            _ => return,
        };
        ev.prevent_default();
        hover.set(next);
    };
    let readout = {
        let value_at = value_at.clone();
        let hover_at = hover_at.clone();
        move || {
            hover_at().map(|at| {
                let values = value_at(at)
                    .into_iter()
                    .map(|(i, legend, value)| {
                        view! { <span class=format!("swatch series-{}", i % 6)></span>{format!("{legend}: {value} ")} }
                    })
                    .collect_view();
                view! { <span class="readout-time">{clock(at, long)}" UTC "</span>{values} }
            })
        }
    };
    let cursor = move || {
        hover_at().map(|at| {
            let px = x(at);
            view! { <line class="cursor" x1=px x2=px y1=TOP y2=HEIGHT - BOTTOM /> }
        })
    };
    let rows = instants
        .iter()
        .map(|at| {
            let cells = value_at(*at).into_iter().map(|(_, _, v)| view! { <td>{v}</td> }).collect_view();
            view! { <tr><th scope="row">{clock(*at, long)}</th>{cells}</tr> }
        })
        .collect_view();
    let legends = series.iter().map(|s| s.legend.clone()).collect::<Vec<_>>();
    view! {
        <figure class="chart" id=id.clone()>
            <figcaption>
                {title.clone()}
                <span class="chart-max">{format!("max {}", unit.format(top))}</span>
            </figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=label tabindex="0"
                aria-describedby=format!("{id}-readout") preserveAspectRatio="none"
                on:mousemove=on_move on:mouseleave=move |_| hover.set(None) on:keydown=on_key on:blur=move |_| hover.set(None)>
                <line class="axis" x1=LEFT x2=WIDTH y1=HEIGHT - BOTTOM y2=HEIGHT - BOTTOM />
                <line class="grid" x1=LEFT x2=WIDTH y1=y(top / 2.0) y2=y(top / 2.0) />
                {lines.into_iter().enumerate().map(|(i, points)| view! {
                    <polyline class=format!("line series-{}", i % 6) points=points />
                }).collect_view()}
                {cursor}
            </svg>
            <div class="chart-axis" aria-hidden="true"><span>{clock(start, long)}</span><span>{clock(end, long)}" UTC"</span></div>
            <p class="chart-readout" id=format!("{id}-readout") aria-live="polite">
                {move || readout().map(|r| r.into_any()).unwrap_or_else(|| {
                    legends.iter().filter(|_| !hide_legend).enumerate().map(|(i, l)| view! {
                        <span class=format!("swatch series-{}", i % 6)></span>{format!("{l} ")}
                    }).collect_view().into_any()
                })}
            </p>
            <details class="chart-table">
                <summary>"Table"</summary>
                <div class="table-wrap"><table>
                    <caption class="visually-hidden">{title}</caption>
                    <thead><tr><th scope="col">"Time (UTC)"</th>{series.iter().map(|s| view! { <th scope="col">{s.legend.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
                <p class="hint"><code>{query}</code></p>
            </details>
        </figure>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_datetime_local_agree_in_utc() {
        assert_eq!(clock(0, false), "00:00");
        assert_eq!(clock(1_795_996_800 + 3_660, true), "11-30 01:01");
        assert_eq!(parse_local("2026-11-30T01:01"), Some(1_795_996_800 + 3_660));
        assert_eq!(parse_local("soon"), None);
    }

    #[test]
    fn the_axis_top_is_a_round_number_and_ratios_stop_at_one() {
        assert_eq!(nice_max(730.0, false), 1_000.0);
        assert_eq!(nice_max(0.0031, false), 0.005);
        assert_eq!(nice_max(0.95, true), 1.0);
        assert!((nice_max(0.2, true) - 0.22).abs() < 1e-9);
    }
}

/// The cluster's (or a node's) alerts, firing and pending, with a silence form pre-filled from
/// an alert's labels (for operators) and the silences that have not expired.
#[component]
pub fn AlertsPanel(cluster: String, node: Option<String>, operator: bool) -> impl IntoView {
    let toasts = crate::components::toast::use_toasts();
    let changed = RwSignal::new(0u32);
    let alerts = {
        let (cluster, node) = (cluster.clone(), node.clone());
        resource(move || changed.get(), move |_| list_alerts(cluster.clone(), node.clone()))
    };
    let silences = {
        let cluster = cluster.clone();
        resource(move || changed.get(), move |_| list_silences(cluster.clone()))
    };
    // The silence form's matchers, one per line; filled from an alert's labels.
    let matchers = RwSignal::new(String::new());
    let duration = RwSignal::new("2h".to_string());
    let comment = RwSignal::new(String::new());
    let form_error = RwSignal::new(None::<String>);
    let create = {
        let cluster = cluster.clone();
        Action::new(move |input: &SilenceInput| create_silence(cluster.clone(), input.clone()))
    };
    let expire = {
        let cluster = cluster.clone();
        Action::new(move |id: &String| expire_silence(cluster.clone(), id.clone()))
    };
    Effect::new(move |_| match create.value().get() {
        Some(Ok(s)) => {
            toasts.success(format!("Silenced until {}.", s.ends_at));
            matchers.set(String::new());
            comment.set(String::new());
            changed.update(|n| *n += 1);
        }
        Some(Err(e)) => form_error.set(Some(e.to_string())),
        None => {}
    });
    Effect::new(move |_| match expire.value().get() {
        Some(Ok(())) => {
            toasts.success("Silence expired.".to_string());
            changed.update(|n| *n += 1);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parsed: Result<Vec<Matcher>, String> =
            matchers.get_untracked().lines().filter(|l| !l.trim().is_empty()).map(Matcher::parse).collect();
        match parsed {
            Ok(list) if !list.is_empty() => {
                form_error.set(None);
                create.dispatch(SilenceInput {
                    matchers: list,
                    duration: duration.get_untracked(),
                    comment: comment.get_untracked(),
                });
            }
            Ok(_) => form_error.set(Some("Give at least one matcher.".into())),
            Err(e) => form_error.set(Some(e)),
        }
    };
    view! {
        <section class="alerts" aria-labelledby="alerts-title">
            <h2 id="alerts-title">"Alerts"</h2>
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match alerts.await {
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                        Ok(set) => view! {
                            {set.unavailable.map(|reason| view! { <div class="alert" role="status">{reason}</div> })}
                            {if set.alerts.is_empty() { view! { <p class="empty">"No alert is firing or pending."</p> }.into_any() } else { view! {
                                <div class="table-wrap"><table class="alert-list">
                                    <thead><tr><th scope="col">"Alert"</th><th scope="col">"State"</th><th scope="col">"Severity"</th><th scope="col">"Summary"</th><th scope="col">"Since"</th><th scope="col">"Source"</th>
                                        {operator.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}</tr></thead>
                                    <tbody>{set.alerts.into_iter().map(|a| {
                                        let prefill = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
                                        let name = a.name.clone();
                                        view! {
                                            <tr>
                                                <td>{a.name.clone()}</td>
                                                <td><span class=format!("badge {}", if a.state == AlertState::Firing { "firing" } else { "pending" })>{if a.state == AlertState::Firing { "firing" } else { "pending" }}</span></td>
                                                <td>{a.severity.clone()}</td>
                                                <td>{a.summary.clone()}</td>
                                                <td class="nowrap">{a.since.chars().take(19).collect::<String>().replace('T', " ")}</td>
                                                <td>{(!a.source.is_empty()).then(|| view! { <a href=a.source.clone() rel="noopener noreferrer" target="_blank">"expression"</a> })}</td>
                                                {operator.then(|| view! {
                                                    <td><button type="button" class="button small" aria-label=format!("Silence {name}")
                                                        on:click=move |_| {
                                                            matchers.set(prefill.clone());
                                                            if let Some(field) = document().get_element_by_id("silence-matchers") {
                                                                use wasm_bindgen::JsCast;
                                                                if let Ok(field) = field.dyn_into::<web_sys::HtmlElement>() { let _ = field.focus(); }
                                                            }
                                                        }>"Silence"</button></td>
                                                })}
                                            </tr>
                                        }
                                    }).collect_view()}</tbody>
                                </table></div>
                            }.into_any() }}
                        }.into_any(),
                    }
                })}
            </Transition>
            {operator.then(|| view! {
                <h3>"Silence alerts"</h3>
                <form class="silence-form" on:submit=submit>
                    <label for="silence-matchers">"Matchers, one per line (label=value, label!=value, label=~regex)"</label>
                    <textarea id="silence-matchers" rows="4" prop:value=move || matchers.get() on:input=move |ev| matchers.set(event_target_value(&ev))></textarea>
                    <label for="silence-duration">"For"</label>
                    <select id="silence-duration" on:change=move |ev| duration.set(event_target_value(&ev))>
                        {["30m", "1h", "2h", "6h", "1d", "7d"].into_iter().map(|d| view! { <option value=d selected=move || duration.get() == d>{d}</option> }).collect_view()}
                    </select>
                    <label for="silence-comment">"Why"</label>
                    <input id="silence-comment" required prop:value=move || comment.get() on:input=move |ev| comment.set(event_target_value(&ev)) />
                    {move || form_error.get().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
                    <button type="submit" class="button primary">"Create silence"</button>
                </form>
            })}
            <h3>"Silences"</h3>
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match silences.await {
                        Err(e) => view! { <p class="empty">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No silence is active."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap"><table class="silences">
                                <thead><tr><th scope="col">"Matchers"</th><th scope="col">"State"</th><th scope="col">"Until"</th><th scope="col">"By"</th><th scope="col">"Why"</th>
                                    {operator.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}</tr></thead>
                                <tbody>{list.into_iter().map(|s| {
                                    let id = s.id.clone();
                                    view! {
                                        <tr>
                                            <td class="mono">{s.matchers.iter().map(Matcher::text).collect::<Vec<_>>().join(", ")}</td>
                                            <td>{s.state.clone()}</td>
                                            <td class="nowrap">{s.ends_at.chars().take(19).collect::<String>().replace('T', " ")}</td>
                                            <td>{s.created_by.clone()}</td>
                                            <td>{s.comment.clone()}</td>
                                            {operator.then(|| view! {
                                                <td><button type="button" class="button small danger" aria-label=format!("Expire the silence by {}", s.created_by)
                                                    on:click=move |_| { expire.dispatch(id.clone()); }>"Expire"</button></td>
                                            })}
                                        </tr>
                                    }
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// etcd's quorum in words, with a banner when losing one more member would stop the cluster,
/// and each member's health, leadership, database size against its quota and failed proposals.
#[component]
pub fn EtcdPanel(cluster: String) -> impl IntoView {
    let health = resource(|| (), move |_| etcd_quorum(cluster.clone()));
    view! {
        <section class="etcd" aria-labelledby="etcd-title">
            <h2 id="etcd-title">"etcd"</h2>
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match health.await {
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                        Ok(h) if h.unavailable.is_some() => view! { <p class="empty">{h.unavailable.clone()}</p> }.into_any(),
                        Ok(h) => view! {
                            {if h.at_risk {
                                view! { <div class="alert error quorum-banner" role="alert"><strong>"Quorum at risk: "</strong>{h.quorum.clone()}"."</div> }.into_any()
                            } else {
                                view! { <p class="quorum">{h.quorum.clone()}"."</p> }.into_any()
                            }}
                            <div class="table-wrap"><table class="etcd-members">
                                <thead><tr><th scope="col">"Member"</th><th scope="col">"Health"</th><th scope="col">"Leader"</th><th scope="col">"Database / quota"</th><th scope="col">"Failed proposals (1h)"</th></tr></thead>
                                <tbody>{h.members.into_iter().map(|m| {
                                    let db = match (m.db_size, m.quota) {
                                        (Some(size), Some(quota)) if quota > 0.0 => format!(
                                            "{} of {} ({:.0} %)", Unit::Bytes.format(size), Unit::Bytes.format(quota), size / quota * 100.0),
                                        (Some(size), _) => Unit::Bytes.format(size),
                                        _ => "–".into(),
                                    };
                                    view! {
                                        <tr>
                                            <td class="mono">{m.instance.clone()}</td>
                                            <td>{if m.healthy { "healthy" } else { "down" }}</td>
                                            <td>{if m.leader { "leader" } else { "" }}</td>
                                            <td>{db}</td>
                                            <td>{m.failed_proposals.map_or("–".into(), |f| format!("{f:.0}"))}</td>
                                        </tr>
                                    }
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
