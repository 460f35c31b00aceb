//! Health charts on the cluster and node pages: a time range picker with auto-refresh, and the
//! charts the server drew (SVG lines and a table for screen readers, `monitoring::drawn`), with
//! hover values by mouse or arrow keys.

use crate::drawn::{Drawn, Html, clicked_button, data};
use crate::error::AppError;
use crate::monitoring::server_fns::{
    cluster_charts, create_silence, etcd_quorum, expire_silence, list_alerts, list_silences, node_charts,
};
use crate::monitoring::{Matcher, PRESETS, SilenceInput, TimeRange};
use crate::resource::{Resource, resource};
use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Whose charts: a cluster's, or one node's.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    Cluster(String),
    Node { cluster: String, node: String },
}

/// How often the charts are fetched again: (label, seconds; 0 is never).
const REFRESH: [(&str, u32); 4] = [("off", 0), ("10s", 10), ("30s", 30), ("1m", 60)];

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
            <DrawnCharts drawn=charts />
        </section>
    }
}

/// Charts or a panel the server drew, with hover values: the pointer over a chart, or the arrow
/// keys, Home and End on it, show the values at an instant; leaving it, Escape or moving focus
/// away shows the legend again.
#[component]
pub(crate) fn DrawnCharts<T>(drawn: Resource<Result<T, AppError>>) -> impl IntoView
where
    T: Into<Html> + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    view! {
        <div on:mousemove=chart_hover::on_move on:mouseout=chart_hover::on_out on:keydown=chart_hover::on_key
            on:focusout=chart_hover::on_focus_out>
            <Drawn drawn />
        </div>
    }
}

/// The hover of the charts `monitoring::drawn` draws, read from the page: a chart's instants
/// are its table's rows (each with its place on the x axis as `data-x`), the legends are the
/// table's column heads, and the instant shown is kept in the figure's `data-hover`.
mod chart_hover {
    use crate::drawn::data;
    use crate::drawn::elements as all;
    use leptos::ev::{FocusEvent, KeyboardEvent, MouseEvent};
    use wasm_bindgen::JsCast;
    use web_sys::{Element, Event, EventTarget};

    const SVG: &str = "figure.chart svg[tabindex]";

    fn element(target: Option<EventTarget>) -> Option<Element> {
        target?.dyn_into::<Element>().ok()
    }

    /// The chart an event happened on: its figure and its SVG.
    fn chart_of(ev: &Event) -> Option<(Element, Element)> {
        let svg = element(ev.target())?.closest(SVG).ok()??;
        Some((svg.closest("figure.chart").ok()??, svg))
    }

    /// Shows the values at the `index`th instant, or the legend again with `None`.
    fn show(figure: &Element, rows: &[Element], index: Option<usize>) {
        let find = |selector: &str| figure.query_selector(selector).ok().flatten();
        let (Some(legend), Some(hover), Some(cursor)) = (find(".chart-legend"), find(".chart-hover"), find(".cursor"))
        else {
            return;
        };
        hover.set_text_content(None);
        let (Some(index), Some(row)) = (index, index.and_then(|i| rows.get(i))) else {
            let _ = figure.remove_attribute("data-hover");
            let _ = legend.remove_attribute("hidden");
            let _ = cursor.set_attribute("visibility", "hidden");
            return;
        };
        let _ = figure.set_attribute("data-hover", &index.to_string());
        let _ = legend.set_attribute("hidden", "");
        let x = row.get_attribute(data::CHART_X).unwrap_or_default();
        for (name, value) in [("x1", x.as_str()), ("x2", x.as_str()), ("visibility", "visible")] {
            let _ = cursor.set_attribute(name, value);
        }
        let Some(document) = leptos::prelude::window().document() else { return };
        let span = |class: &str| {
            let span = document.create_element("span").ok()?;
            span.set_class_name(class);
            Some(span)
        };
        let time = row.query_selector("th").ok().flatten().and_then(|th| th.text_content()).unwrap_or_default();
        if let Some(time_span) = span("readout-time") {
            time_span.set_text_content(Some(&format!("{time} UTC ")));
            let _ = hover.append_with_node_1(&time_span);
        }
        let legends = all(figure, "thead th");
        for (i, (legend, cell)) in legends.iter().skip(1).zip(all(row, "td")).enumerate() {
            if let Some(swatch) = span(&format!("swatch series-{}", i % 6)) {
                let _ = hover.append_with_node_1(&swatch);
            }
            let text =
                format!("{}: {} ", legend.text_content().unwrap_or_default(), cell.text_content().unwrap_or_default());
            let _ = hover.append_with_str_1(&text);
        }
    }

    pub fn on_move(ev: MouseEvent) {
        let Some((figure, svg)) = chart_of(&ev) else { return };
        let rows = all(&figure, "tbody tr");
        let rect = svg.get_bounding_client_rect();
        if rect.width() > 0.0 && !rows.is_empty() {
            let fraction = ((f64::from(ev.client_x()) - rect.left()) / rect.width()).clamp(0.0, 1.0);
            let index = (fraction * (rows.len() - 1) as f64).round() as usize;
            show(&figure, &rows, Some(index));
        }
    }

    pub fn on_out(ev: MouseEvent) {
        let Some((figure, svg)) = chart_of(&ev) else { return };
        let still_over = element(ev.related_target()).and_then(|to| to.closest(SVG).ok().flatten());
        if still_over.as_ref() != Some(&svg) {
            show(&figure, &[], None);
        }
    }

    pub fn on_key(ev: KeyboardEvent) {
        let Some((figure, _)) = chart_of(&ev) else { return };
        let rows = all(&figure, "tbody tr");
        let Some(last) = rows.len().checked_sub(1) else { return };
        let current = figure.get_attribute("data-hover").and_then(|i| i.parse::<usize>().ok());
        let next = match ev.key().as_str() {
            "ArrowRight" => Some(current.map_or(0, |i| (i + 1).min(last))),
            "ArrowLeft" => Some(current.map_or(last, |i| i.saturating_sub(1))),
            "Home" => Some(0),
            "End" => Some(last),
            "Escape" => None,
            _ => return,
        };
        ev.prevent_default();
        show(&figure, &rows, next);
    }

    pub fn on_focus_out(ev: FocusEvent) {
        if let Some((figure, _)) = chart_of(&ev) {
            show(&figure, &[], None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datetime_local_value_is_read_as_utc() {
        assert_eq!(parse_local("2026-11-30T01:01"), Some(1_795_996_800 + 3_660));
        assert_eq!(parse_local("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_local("soon"), None);
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
        Some(Ok(ends_at)) => {
            toasts.success(format!("Silenced until {ends_at}."));
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
    // The buttons in the drawn tables carry what they act on (see `monitoring::drawn`).
    let silence_from_row = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, prefill)) = clicked_button(&ev, data::SILENCE_MATCHERS) {
            matchers.set(prefill);
            if let Some(field) = document().get_element_by_id("silence-matchers") {
                use wasm_bindgen::JsCast;
                if let Ok(field) = field.dyn_into::<web_sys::HtmlElement>() {
                    let _ = field.focus();
                }
            }
        }
    };
    let expire_from_row = move |ev: leptos::ev::MouseEvent| {
        if let Some((_, id)) = clicked_button(&ev, data::EXPIRE_SILENCE) {
            expire.dispatch(id);
        }
    };
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
            <div on:click=silence_from_row><Drawn drawn=alerts /></div>
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
            <div on:click=expire_from_row><Drawn drawn=silences /></div>
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
            <Drawn drawn=health />
        </section>
    }
}
