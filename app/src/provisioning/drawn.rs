//! Boots drawn on the server (see `crate::drawn`): a machine's timeline and the last hour's
//! boots as a chart. Only compiled for the server.

use super::boots::{ActivityMinute, BootActivity, BootEvent, BootState, Timeline};
use crate::drawn::Html;
use crate::pages::short_time;
use leptos::prelude::*;

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

    #[test]
    fn seconds_between_stored_times_count_microseconds_and_cross_midnight() {
        let at = |t: &str| format!("2026-12-{t}Z");
        assert_eq!(seconds_between(&at("30T10:00:01.250000"), &at("30T10:00:13.750000")), Some(12.5));
        assert_eq!(seconds_between(&at("30T23:59:59.000000"), &at("31T00:00:01.000001")), Some(2.000001));
        assert_eq!(seconds_between(&at("30T10:00:02.000000"), &at("30T10:00:01.000000")), None);
        assert_eq!(seconds_between("soon", &at("30T10:00:01.000000")), None);
    }
}
