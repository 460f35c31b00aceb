//! Charts, dashboard panels, etcd's members, alerts and silences, drawn on the server (see
//! `crate::drawn`). A chart's hover runs in the browser (`pages::monitoring::chart_hover`) and
//! reads what it shows from the chart's table. Only compiled for the server.

use super::dashboards::{
    ALL, DashboardSummary, DashboardView, PanelAnswer, PanelData, PanelKind, PanelView, Threshold, VariableView,
};
use super::{Alert, AlertState, Alerts, Chart, Charts, EtcdHealth, GrafanaDashboard, Matcher, Silence, Unit};
use crate::components::text::urlencode;
use crate::drawn::{Html, Titled, data};
use leptos::attr::custom::custom_attribute;
use leptos::prelude::*;
use std::collections::BTreeMap;

/// The health charts of a cluster or node, or why there are none.
pub fn charts(set: Charts) -> Html {
    if let Some(reason) = set.unavailable {
        return Html::of(view! { <div class="alert warning chart-unavailable" role="status">{reason}</div> });
    }
    let long = set.end - set.start > 86_400;
    let (start, end) = (set.start, set.end);
    Html::of(view! {
        <div class="chart-grid">
            {set.charts.into_iter().map(|chart| line_chart(chart, start, end, long, false)).collect_view()}
        </div>
    })
}

/// A dashboard drawn whole for `cluster`: its heading, why nothing can be drawn, its variables
/// and its panels, each with its answer in `answers` (by panel id). Each variable's control
/// carries its name in `data-variable`, which the page reads when it changes.
pub fn dashboard(cluster: &str, view: DashboardView, mut answers: BTreeMap<u32, PanelAnswer>) -> Titled {
    let DashboardView { title, description, variables, panels, grafana_path, unavailable, .. } = view;
    let panels = panels.into_iter().map(|panel| {
        let class = format!("dash-panel w-{}", panel.width);
        match (&panel.kind, answers.remove(&panel.id)) {
            (PanelKind::Row, _) => view! { <h2 class="dash-row">{panel.title}</h2> }.into_any(),
            (PanelKind::Other(kind), _) => {
                let link = grafana_path.as_ref().map(|path| {
                    let href = format!("{path}?viewPanel={}", panel.id);
                    view! { <a href=href>{format!("Open \"{}\" in Grafana", panel.title)}</a> }
                });
                view! {
                    <figure class=class>
                        <figcaption>{panel.title.clone()}</figcaption>
                        <p class="chart-error">{format!("Pangea does not draw {kind} panels. ")}{link}</p>
                    </figure>
                }
                .into_any()
            }
            (_, Some(answer)) => view! { <div class=class>{panel_body(answer)}</div> }.into_any(),
            (_, None) => ().into_any(),
        }
    });
    let html = Html::of(view! {
        <div class="page-head">
            <h1>{title.clone()}</h1>
            <a href=format!("/clusters/{}/dashboards", urlencode(cluster))>"All dashboards"</a>
        </div>
        {(!description.is_empty()).then(|| view! { <p class="hint">{description}</p> })}
        {unavailable.map(|reason| view! { <div class="alert warning" role="status">{reason}</div> })}
        <div class="dashboard-variables">{variables.into_iter().map(variable).collect_view()}</div>
        <div class="dashboard-grid">{panels.collect_view()}</div>
    });
    Titled { title, html }
}

/// A variable's control: a text box when typed, checkboxes when several values may be chosen,
/// else a list; "All" first when the variable offers it.
fn variable(v: VariableView) -> AnyView {
    let id = format!("var-{}", v.name);
    let error = v.error.map(|e| view! { <p class="field-error">{e}</p> });
    if v.typed {
        let value = v.current.first().cloned().unwrap_or_default();
        return view! {
            <div class="variable">
                <label for=id.clone()>{v.label}</label>
                {view! { <input id=id value=value /> }.add_any_attr(custom_attribute(data::VARIABLE, v.name))}
                {error}
            </div>
        }
        .into_any();
    }
    let all = v.include_all.then(|| (ALL.to_string(), "All".to_string()));
    let options = all.into_iter().chain(v.options.into_iter().map(|o| (o.clone(), o)));
    let current = v.current;
    if v.multi {
        return view! {
            <fieldset class="variable" id=id>
                <legend>{v.label}</legend>
                {options.map(|(value, text)| {
                    let checked = current.contains(&value);
                    view! { <label class="check"><input type="checkbox" value=value checked=checked />{text}</label> }
                }).collect_view()}
                {error}
            </fieldset>
        }
        .add_any_attr(custom_attribute(data::VARIABLE, v.name))
        .into_any();
    }
    view! {
        <div class="variable">
            <label for=id.clone()>{v.label}</label>
            {view! {
                <select id=id>
                    {options.map(|(value, text)| {
                        let selected = current.first() == Some(&value);
                        view! { <option value=value selected=selected>{text}</option> }
                    }).collect_view()}
                </select>
            }
            .add_any_attr(custom_attribute(data::VARIABLE, v.name))}
            {error}
        </div>
    }
    .into_any()
}

/// A dashboard panel's body: its chart, values or table, or why it has none.
fn panel_body(answer: PanelAnswer) -> AnyView {
    let PanelAnswer { panel, queries, data, error } = answer;
    let query = queries.join("\n");
    let (id, title, unit) = (format!("panel-{}", panel.id), panel.title.clone(), panel.unit);
    match data {
        Some(PanelData::Series { start, end, series }) => {
            let chart = Chart { id: format!("panel-{}", panel.id), title, unit, query, series, error: None };
            line_chart(chart, start, end, end - start > 86_400, !panel.show_legend).into_any()
        }
        Some(PanelData::Values { values }) => {
            let drawn = match panel.kind {
                PanelKind::Gauge => gauges(&panel, &values).into_any(),
                PanelKind::BarGauge => bars(&panel, &values).into_any(),
                _ => view! {
                    <div class="stat-values">{values.iter().map(|(legend, value)| view! {
                        <p class=format!("stat tone-{}", Threshold::tone_of(&panel.thresholds, *value))>
                            <span class="stat-number">{unit.format(*value)}</span>
                            {(values.len() > 1).then(|| view! { <span class="stat-legend">{legend.clone()}</span> })}
                        </p>
                    }).collect_view()}</div>
                }
                .into_any(),
            };
            view! {
                <figure class="chart" id=id>
                    <figcaption>{title}</figcaption>
                    {drawn}
                    <details class="chart-table"><summary>"Query"</summary><p class="hint"><code>{query}</code></p></details>
                </figure>
            }
            .into_any()
        }
        Some(PanelData::Table { columns, rows }) => view! {
            <figure class="chart" id=id>
                <figcaption>{title.clone()}</figcaption>
                <div class="table-wrap"><table>
                    <caption class="visually-hidden">{title}</caption>
                    <thead><tr>{columns.into_iter().map(|c| view! { <th scope="col">{c}</th> }).collect_view()}</tr></thead>
                    <tbody>{rows.into_iter().map(|row| view! {
                        <tr>{row.into_iter().map(|cell| view! { <td>{cell}</td> }).collect_view()}</tr>
                    }).collect_view()}</tbody>
                </table></div>
                <details class="chart-table"><summary>"Query"</summary><p class="hint"><code>{query}</code></p></details>
            </figure>
        }
        .into_any(),
        None => view! {
            <figure class="chart" id=id>
                <figcaption>{title}</figcaption>
                <p class="chart-error" role="status">{error.unwrap_or_default()}</p>
                {(!query.is_empty()).then(|| view! { <p class="hint"><code>{query}</code></p> })}
            </figure>
        }
        .into_any(),
    }
}

/// etcd's quorum in words, as a banner when losing one more member would stop the cluster, and
/// each member's health, leadership, database size against its quota and failed proposals.
pub fn etcd(health: EtcdHealth) -> Html {
    if let Some(reason) = health.unavailable {
        return Html::of(view! { <p class="empty">{reason}</p> });
    }
    let quorum = if health.at_risk {
        view! { <div class="alert error quorum-banner" role="alert"><strong>"Quorum at risk: "</strong>{health.quorum}"."</div> }.into_any()
    } else {
        view! { <p class="quorum">{health.quorum}"."</p> }.into_any()
    };
    let members = health.members.into_iter().map(|m| {
        let db = match (m.db_size, m.quota) {
            (Some(size), Some(quota)) if quota > 0.0 => {
                format!("{} of {} ({:.0} %)", Unit::Bytes.format(size), Unit::Bytes.format(quota), size / quota * 100.0)
            }
            (Some(size), _) => Unit::Bytes.format(size),
            _ => "–".into(),
        };
        view! {
            <tr>
                <td class="mono">{m.instance}</td>
                <td>{if m.healthy { "healthy" } else { "down" }}</td>
                <td>{if m.leader { "leader" } else { "" }}</td>
                <td>{db}</td>
                <td>{m.failed_proposals.map_or("–".into(), |f| format!("{f:.0}"))}</td>
            </tr>
        }
    });
    Html::of(view! {
        {quorum}
        <div class="table-wrap"><table class="etcd-members">
            <thead><tr><th scope="col">"Member"</th><th scope="col">"Health"</th><th scope="col">"Leader"</th><th scope="col">"Database / quota"</th><th scope="col">"Failed proposals (1h)"</th></tr></thead>
            <tbody>{members.collect_view()}</tbody>
        </table></div>
    })
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS`.
fn seconds(at: &str) -> String {
    at.chars().take(19).collect::<String>().replace('T', " ")
}

/// Firing and pending alerts. For those who may silence, each has a button whose
/// `data-matchers` (its labels, one `name=value` per line) the page puts into its silence form.
pub fn alerts(set: Alerts, may_silence: bool) -> Html {
    let unavailable = set.unavailable.map(|reason| view! { <div class="alert" role="status">{reason}</div> });
    if set.alerts.is_empty() {
        return Html::of(view! { {unavailable}<p class="empty">"No alert is firing or pending."</p> });
    }
    let row = move |a: Alert| {
        let state = if a.state == AlertState::Firing { "firing" } else { "pending" };
        let silence = may_silence.then(|| {
            let prefill = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
            let button = view! { <button type="button" class="button small" aria-label=format!("Silence {}", a.name)>"Silence"</button> };
            view! { <td>{button.add_any_attr(custom_attribute(data::SILENCE_MATCHERS, prefill))}</td> }
        });
        view! {
            <tr>
                <td>{a.name.clone()}</td>
                <td><span class=format!("badge {state}")>{state}</span></td>
                <td>{a.severity}</td>
                <td>{a.summary}</td>
                <td class="nowrap">{seconds(&a.since)}</td>
                <td>{(!a.source.is_empty()).then(|| view! { <a href=a.source rel="noopener noreferrer" target="_blank">"expression"</a> })}</td>
                {silence}
            </tr>
        }
    };
    Html::of(view! {
        {unavailable}
        <div class="table-wrap"><table class="alert-list">
            <thead><tr><th scope="col">"Alert"</th><th scope="col">"State"</th><th scope="col">"Severity"</th><th scope="col">"Summary"</th><th scope="col">"Since"</th><th scope="col">"Source"</th>
                {may_silence.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}</tr></thead>
            <tbody>{set.alerts.into_iter().map(row).collect_view()}</tbody>
        </table></div>
    })
}

/// Silences that have not expired. For those who may silence, each has a button whose
/// `data-silence` (its id) the page expires.
pub fn silences(list: Vec<Silence>, may_expire: bool) -> Html {
    if list.is_empty() {
        return Html::of(view! { <p class="empty">"No silence is active."</p> });
    }
    let row = move |s: Silence| {
        let expire = may_expire.then(|| {
            let button = view! {
                <button type="button" class="button small danger" aria-label=format!("Expire the silence by {}", s.created_by)>
                    "Expire"
                </button>
            };
            view! { <td>{button.add_any_attr(custom_attribute(data::EXPIRE_SILENCE, s.id))}</td> }
        });
        view! {
            <tr>
                <td class="mono">{s.matchers.iter().map(Matcher::text).collect::<Vec<_>>().join(", ")}</td>
                <td>{s.state}</td>
                <td class="nowrap">{seconds(&s.ends_at)}</td>
                <td>{s.created_by.clone()}</td>
                <td>{s.comment}</td>
                {expire}
            </tr>
        }
    };
    Html::of(view! {
        <div class="table-wrap"><table class="silences">
            <thead><tr><th scope="col">"Matchers"</th><th scope="col">"State"</th><th scope="col">"Until"</th><th scope="col">"By"</th><th scope="col">"Why"</th>
                {may_expire.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}</tr></thead>
            <tbody>{list.into_iter().map(row).collect_view()}</tbody>
        </table></div>
    })
}

/// The dashboards Pangea draws, linked for `cluster`. For those who may manage dashboards, each
/// imported one has a button whose `data-remove` (its uid) the page removes.
pub fn dashboard_list(cluster: &str, list: Vec<DashboardSummary>, may_manage: bool) -> Html {
    let item = |d: DashboardSummary| {
        let origin = if d.shipped {
            "Shipped with Pangea".to_string()
        } else {
            format!("Imported by {} ({})", d.imported_by, d.origin)
        };
        let remove = (may_manage && !d.shipped).then(|| {
            view! {
                <button type="button" class="button small danger" aria-label=format!("Remove dashboard {}", d.title)>
                    "Remove"
                </button>
            }
            .add_any_attr(custom_attribute(data::REMOVE_DASHBOARD, d.uid.clone()))
        });
        view! {
            <li>
                <a href=format!("/clusters/{}/dashboards/{}", urlencode(cluster), urlencode(&d.uid))>{d.title.clone()}</a>
                <span class="hint">{format!(" — {origin}. {}", d.description)}</span>
                {remove}
            </li>
        }
    };
    Html::of(view! { <ul class="dashboard-list">{list.into_iter().map(item).collect_view()}</ul> })
}

/// The dashboards of the cluster's Grafana. Each has a button whose `data-embed` (its kiosk
/// path through the proxy) and `data-title` the page shows it by, and, for those who may manage
/// dashboards, one whose `data-import` (its uid) the page imports.
pub fn grafana_list(list: Vec<GrafanaDashboard>, may_manage: bool) -> Html {
    if list.is_empty() {
        return Html::of(view! { <p class="empty">"This Grafana has no dashboards you may see."</p> });
    }
    let embedded = list.iter().all(|d| !d.embed_path.is_empty());
    let item = move |d: GrafanaDashboard| {
        let label = if d.folder.is_empty() { d.title.clone() } else { format!("{} / {}", d.folder, d.title) };
        let import = may_manage.then(|| {
            view! { <button type="button" class="button small" aria-label=format!("Import {label} into Pangea")>"Import"</button> }
                .add_any_attr(custom_attribute(data::IMPORT_DASHBOARD, d.uid.clone()))
        });
        let open = if d.embed_path.is_empty() {
            view! { <span>{label.clone()}</span> }.into_any()
        } else {
            view! { <button type="button" class="button" aria-pressed="false">{label.clone()}</button> }
                .add_any_attr(custom_attribute(data::EMBED_PATH, d.embed_path))
                .add_any_attr(custom_attribute(data::EMBED_TITLE, d.title))
                .into_any()
        };
        view! { <li>{open}{import}</li> }
    };
    let not_served = (!embedded).then(|| {
        view! {
            <p class="hint">"This Pangea does not serve Grafana's pages, so they are listed here but not shown: an admin can serve them on an origin of their own with --grafana-listen (docs/monitoring.md)."</p>
        }
    });
    Html::of(view! { {not_served}<ul class="dashboards">{list.into_iter().map(item).collect_view()}</ul> })
}

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

/// One chart as SVG lines, with a table of every instant for screen readers. The hover readout
/// and cursor are filled in the browser from the table's rows: each row's `data-x` is where its
/// instant lies on the SVG's x axis. `hide_legend` is Grafana's `showLegend: false`: the legend
/// then shows only with hover values.
fn line_chart(chart: Chart, start: i64, end: i64, long: bool, hide_legend: bool) -> AnyView {
    let id = format!("chart-{}", chart.id);
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
    let x = |at: i64| LEFT + (at - start) as f64 / span * (WIDTH - LEFT);
    let y = |v: f64| TOP + (1.0 - v / top) * (HEIGHT - TOP - BOTTOM);
    let latest: Vec<String> = series
        .iter()
        .filter_map(|s| s.points.last().map(|(_, v)| format!("{} {}", s.legend, unit.format(*v))))
        .collect();
    let label = format!("{title}, latest: {}", latest.join(", "));
    let lines = series.iter().enumerate().map(|(i, s)| {
        let points = s.points.iter().map(|(at, v)| format!("{:.1},{:.1}", x(*at), y(*v))).collect::<Vec<_>>().join(" ");
        view! { <polyline class=format!("line series-{}", i % 6) points=points /> }
    });
    let rows = instants.iter().map(|at| {
        let cells = series.iter().map(|s| {
            let value = s.points.iter().find(|p| p.0 == *at).map_or("–".into(), |p| unit.format(p.1));
            view! { <td>{value}</td> }
        });
        view! { <tr><th scope="row">{clock(*at, long)}</th>{cells.collect_view()}</tr> }
            .add_any_attr(custom_attribute(data::CHART_X, format!("{:.1}", x(*at))))
    });
    let legend = series.iter().enumerate().filter(|_| !hide_legend).map(|(i, s)| {
        view! { <span class=format!("swatch series-{}", i % 6)></span>{format!("{} ", s.legend)} }
    });
    view! {
        <figure class="chart" id=id.clone()>
            <figcaption>
                {title.clone()}
                <span class="chart-max">{format!("max {}", unit.format(top))}</span>
            </figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=label tabindex="0"
                aria-describedby=format!("{id}-readout") preserveAspectRatio="none">
                <line class="axis" x1=LEFT x2=WIDTH y1=HEIGHT - BOTTOM y2=HEIGHT - BOTTOM />
                <line class="grid" x1=LEFT x2=WIDTH y1=y(top / 2.0) y2=y(top / 2.0) />
                {lines.collect_view()}
                <line class="cursor" x1="0" x2="0" y1=TOP y2=HEIGHT - BOTTOM visibility="hidden" />
            </svg>
            <div class="chart-axis" aria-hidden="true"><span>{clock(start, long)}</span><span>{clock(end, long)}" UTC"</span></div>
            <p class="chart-readout" id=format!("{id}-readout") aria-live="polite">
                <span class="chart-legend">{legend.collect_view()}</span>
                <span class="chart-hover"></span>
            </p>
            <details class="chart-table">
                <summary>"Table"</summary>
                <div class="table-wrap"><table>
                    <caption class="visually-hidden">{title}</caption>
                    <thead><tr><th scope="col">"Time (UTC)"</th>{series.iter().map(|s| view! { <th scope="col">{s.legend.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody>{rows.collect_view()}</tbody>
                </table></div>
                <p class="hint"><code>{query}</code></p>
            </details>
        </figure>
    }
    .into_any()
}

/// The panel's range: its own min and max, else 0 to 100 % for ratios and percentages, else 0
/// to the largest value.
fn bounds(panel: &PanelView, values: &[(String, f64)]) -> (f64, f64) {
    let min = panel.min.unwrap_or(0.0);
    let max = panel.max.unwrap_or(match panel.unit {
        Unit::Ratio => 1.0,
        Unit::Percent => 100.0,
        _ => values.iter().map(|v| v.1).fold(0.0, f64::max),
    });
    (min, if max > min { max } else { min + 1.0 })
}

/// How far `value` is along `min..max`, from 0 to 1.
fn fraction(value: f64, (min, max): (f64, f64)) -> f64 {
    ((value - min) / (max - min)).clamp(0.0, 1.0)
}

/// Half-circle gauges, one per value.
fn gauges(panel: &PanelView, values: &[(String, f64)]) -> impl IntoView {
    // The arc from (10,60) to (110,60) with radius 50 is half a circle: 50π long.
    const ARC: f64 = 50.0 * std::f64::consts::PI;
    let range = bounds(panel, values);
    let unit = panel.unit;
    view! {
        <div class="gauges">{values.iter().map(|(legend, value)| {
            let name = if values.len() == 1 { &panel.title } else { legend };
            let label = format!("{name}: {} of {}", unit.format(*value), unit.format(range.1));
            let filled = fraction(*value, range) * ARC;
            view! {
                <div class="gauge">
                    <svg viewBox="0 0 120 66" role="img" aria-label=label>
                        <path class="gauge-track" d="M10,60 A50,50 0 0 1 110,60" />
                        <path class=format!("gauge-fill tone-{}", Threshold::tone_of(&panel.thresholds, *value))
                            d="M10,60 A50,50 0 0 1 110,60" stroke-dasharray=format!("{filled:.1} {ARC:.1}") />
                    </svg>
                    <p class="gauge-value">{unit.format(*value)}</p>
                    {(values.len() > 1).then(|| view! { <p class="stat-legend">{legend.clone()}</p> })}
                </div>
            }
        }).collect_view()}</div>
    }
}

/// Horizontal bars, one per value, on one scale.
fn bars(panel: &PanelView, values: &[(String, f64)]) -> impl IntoView {
    let range = bounds(panel, values);
    let unit = panel.unit;
    view! {
        <ul class="bar-gauge">{values.iter().map(|(legend, value)| view! {
            <li>
                <span class="bar-label">{legend.clone()}</span>
                <svg viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">
                    <rect class="bar-track" width="100" height="8" />
                    <rect class=format!("bar-fill tone-{}", Threshold::tone_of(&panel.thresholds, *value))
                        width=format!("{:.1}", fraction(*value, range) * 100.0) height="8" />
                </svg>
                <span class="bar-value">{unit.format(*value)}</span>
            </li>
        }).collect_view()}</ul>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::Series;

    #[test]
    fn the_clock_is_utc_and_shows_the_date_for_long_ranges() {
        assert_eq!(clock(0, false), "00:00");
        assert_eq!(clock(1_795_996_800 + 3_660, true), "11-30 01:01");
    }

    #[test]
    fn the_axis_top_is_a_round_number_and_ratios_stop_at_one() {
        assert_eq!(nice_max(730.0, false), 1_000.0);
        assert_eq!(nice_max(0.0031, false), 0.005);
        assert_eq!(nice_max(0.95, true), 1.0);
        assert!((nice_max(0.2, true) - 0.22).abs() < 1e-9);
    }

    fn panel_view(kind: PanelKind, unit: Unit) -> PanelView {
        PanelView {
            id: 1,
            title: String::new(),
            description: String::new(),
            kind,
            width: 6,
            unit,
            min: None,
            max: None,
            thresholds: Vec::new(),
            show_legend: true,
        }
    }

    #[test]
    fn gauges_fill_from_their_bounds() {
        let panel = panel_view(PanelKind::Gauge, Unit::Ratio);
        assert_eq!(bounds(&panel, &[]), (0.0, 1.0));
        assert_eq!(fraction(0.25, bounds(&panel, &[])), 0.25);
        let counts = PanelView { unit: Unit::Count, ..panel };
        assert_eq!(bounds(&counts, &[("a".into(), 40.0), ("b".into(), 80.0)]), (0.0, 80.0));
        assert_eq!(fraction(120.0, (0.0, 80.0)), 1.0, "a value past the top fills the gauge, no more");
    }

    fn chart(legend: &str, points: Vec<(i64, f64)>) -> Chart {
        Chart {
            id: "memory".into(),
            title: "Memory".into(),
            unit: Unit::Bytes,
            query: "node_memory_MemTotal_bytes".into(),
            series: vec![Series { legend: legend.into(), points }],
            error: None,
        }
    }

    #[test]
    fn a_chart_has_a_table_row_per_instant_placed_on_the_x_axis_and_escapes_its_text() {
        let set = Charts {
            start: 0,
            end: 600,
            step: 300,
            prometheus_url: String::new(),
            unavailable: None,
            charts: vec![chart("<script>alert(1)</script>", vec![(0, 1024.0), (300, 2048.0), (600, 4096.0)])],
        };
        let html = charts(set).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        // The x axis runs from 4 to 600 over the range: the instants at 0 s, 300 s and 600 s.
        for (x, value) in [("4.0", "1 KiB"), ("302.0", "2 KiB"), ("600.0", "4 KiB")] {
            assert!(html.contains(&format!(r#"<tr data-x="{x}"><th scope="row">"#)), "{x} in {html}");
            assert!(html.contains(&format!("<td>{value}</td>")), "{value} in {html}");
        }
        assert_eq!(html.matches("<tr data-x=").count(), 3);
        assert!(html.contains(r#"aria-describedby="chart-memory-readout""#), "{html}");
        assert!(html.contains(r#"class="cursor""#), "{html}");
    }

    #[test]
    fn unavailable_charts_say_why_and_a_panel_without_data_says_its_error() {
        let set = Charts {
            start: 0,
            end: 1,
            step: 1,
            prometheus_url: String::new(),
            unavailable: Some("Prometheus at http://127.0.0.1:9 is unreachable".into()),
            charts: Vec::new(),
        };
        assert!(charts(set).into_string().contains("Prometheus at http://127.0.0.1:9 is unreachable"));
        let answer = PanelAnswer {
            panel: panel_view(PanelKind::Stat, Unit::Count),
            queries: vec!["up".into()],
            data: None,
            error: Some("no Prometheus".into()),
        };
        let html = Html::of(panel_body(answer)).into_string();
        assert!(html.contains("no Prometheus") && html.contains("<code>up</code>"), "{html}");
    }

    #[test]
    fn a_dashboard_is_drawn_whole_with_its_variables_named_for_the_page() {
        let variable = |name: &str, multi: bool, typed: bool| VariableView {
            name: name.into(),
            label: name.into(),
            options: vec!["GET".into(), "<b>LIST</b>".into()],
            current: vec![if multi { ALL.into() } else { "GET".into() }],
            multi,
            include_all: multi,
            typed,
            error: None,
        };
        let panels = vec![
            PanelView { title: "Requests".into(), ..panel_view(PanelKind::Row, Unit::Count) },
            PanelView { id: 2, title: "Jobs".into(), ..panel_view(PanelKind::Other("piechart".into()), Unit::Count) },
            PanelView { id: 3, title: "Up".into(), ..panel_view(PanelKind::Stat, Unit::Count) },
        ];
        let view = DashboardView {
            uid: "d".into(),
            title: "Cluster <API>".into(),
            description: String::new(),
            variables: vec![
                variable("verb", true, false),
                variable("code", false, false),
                variable("job", false, true),
            ],
            panels: panels.clone(),
            grafana_path: Some("/grafana/c1/d/d".into()),
            unavailable: None,
        };
        let answers = BTreeMap::from([(
            3,
            PanelAnswer {
                panel: panels[2].clone(),
                queries: vec!["sum(up)".into()],
                data: Some(PanelData::Values { values: vec![("up".into(), 4.0)] }),
                error: None,
            },
        )]);
        let Titled { title, html } = dashboard("c 1", view, answers);
        let html = html.into_string();
        assert_eq!(title, "Cluster <API>");
        assert!(html.contains("<h1>Cluster &lt;API&gt;</h1>"), "{html}");
        assert!(html.contains(r#"href="/clusters/c%201/dashboards""#), "{html}");
        // Checkboxes for the multi-value variable, "All" first and chosen; a list; a text box.
        assert!(html.contains(r#"<fieldset id="var-verb" data-variable="verb" class="variable">"#), "{html}");
        assert!(html.contains(r#"<input type="checkbox" value="$__all" checked>All"#), "{html}");
        assert!(html.contains("&lt;b&gt;LIST&lt;/b&gt;") && !html.contains("<b>"), "{html}");
        assert!(html.contains(r#"<select id="var-code" data-variable="code">"#), "{html}");
        assert!(html.contains(r#"<option value="GET" selected>GET</option>"#), "{html}");
        assert!(html.contains(r#"<input id="var-job" value="GET" data-variable="job">"#), "{html}");
        // A row's heading, a panel type Pangea does not draw, and a drawn stat.
        assert!(html.contains(r#"<h2 class="dash-row">Requests</h2>"#), "{html}");
        assert!(html.contains("Pangea does not draw piechart panels."), "{html}");
        assert!(html.contains(r#"href="/grafana/c1/d/d?viewPanel=2""#), "{html}");
        assert!(html.contains(r#"<span class="stat-number">4</span>"#), "{html}");
    }
}
