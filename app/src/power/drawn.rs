//! A machine's Power section, drawn on the server (its code stays out of the wasm): the power as
//! last read, the BMC with its warnings, its hardware and the changes seen in it, and, for those
//! who may act, the power actions, the acknowledgement of hardware changes and the BMC's form. Buttons carry what they do (`data::POWER_ACTION`, `data::REMOVE_BMC`); the page's
//! handlers send it.

use super::{Bmc, Discovery, HardwareRecord, PowerAction, PowerRun, PowerRunPlan, RunStep, disk_size, memory_size};
use crate::components::text::capitalised;
use crate::drawn::{Html, Progress, data};
use leptos::prelude::*;
use leptos::tachys::html::attribute::custom::custom_attribute;

pub fn power(bmc: Option<Bmc>, hardware: Option<HardwareRecord>, may_act: bool) -> Html {
    let had = bmc.is_some();
    let shown = bmc.as_ref().map(|bmc| {
        let state = bmc.power.state;
        let reason = (!bmc.power.reason.is_empty()).then(|| format!(" ({})", bmc.power.reason));
        let read_at = (!bmc.power.read_at.is_empty()).then(|| format!("Read at {}.", bmc.power.read_at));
        view! {
            <p class="power-state">
                "Power: " <strong class=format!("badge power-{}", state.as_str())>{state.words()}</strong>{reason}
                " " <span class="hint">{read_at}</span>
            </p>
            {bmc.warnings.iter().map(|w| view! { <p class="alert warning" role="note">{w.clone()}</p> }).collect_view()}
            <dl class="details">
                <dt>"BMC"</dt><dd class="mono">{bmc.url.clone()}</dd>
                <dt>"User"</dt><dd>{bmc.username.clone()}</dd>
                <dt>"System"</dt><dd class="mono">{bmc.system.clone()}</dd>
            </dl>
        }
    });
    let actions = (had && may_act).then(|| {
        view! {
            <div class="actions power-actions" role="group" aria-label="Power actions">
                {PowerAction::ALL.into_iter().map(|action| {
                    view! { <button type="button" class=if action.abrupt() { "button danger" } else { "button" }>
                        {capitalised(action.words())}</button> }
                        .add_any_attr(custom_attribute(data::POWER_ACTION, action.as_str()))
                }).collect_view()}
            </div>
        }
    });
    let empty = match (had, may_act) {
        (true, _) => None,
        (false, true) => Some("This machine has no BMC yet: give its Redfish address to power it from here."),
        (false, false) => Some("This machine has no BMC."),
    };
    let form = may_act.then(|| {
        let url = bmc.as_ref().map(|b| b.url.clone()).unwrap_or_default();
        let username = bmc.as_ref().map(|b| b.username.clone()).unwrap_or_default();
        let verify_off = bmc.as_ref().is_some_and(|b| b.verify_off);
        view! {
            <form class="bmc-form" aria-label="BMC">
                <div class="field">
                    <label for="bmc-url">"BMC address (Redfish)"</label>
                    <input id="bmc-url" name="url" placeholder="https://10.0.0.10" autocomplete="off" value=url
                        aria-describedby="bmc-url-hint" />
                    <p class="hint" id="bmc-url-hint">"A BMC with several systems: add this machine's path, /redfish/v1/Systems/ID."</p>
                </div>
                <div class="field">
                    <label for="bmc-username">"BMC user"</label>
                    <input id="bmc-username" name="username" autocomplete="off" value=username />
                </div>
                <div class="field">
                    <label for="bmc-password">{if had { "BMC password (empty: keep the one kept)" } else { "BMC password" }}</label>
                    <input id="bmc-password" name="password" type="password" autocomplete="new-password" />
                </div>
                <div class="field">
                    <label for="bmc-ca">"CA certificates (PEM; empty: the system's)"</label>
                    <textarea id="bmc-ca" name="ca_pem" rows="3"></textarea>
                </div>
                <div class="field checkbox">
                    <input id="bmc-verify-off" name="verify_off" type="checkbox" value="on" checked=verify_off />
                    <label for="bmc-verify-off">"Do not check its certificate (not advised)"</label>
                </div>
                <div class="actions">
                    <button type="submit" class="button primary">"Check and save BMC"</button>
                    {had.then(|| view! { <button type="button" class="button danger">"Remove BMC"</button> }
                        .add_any_attr(custom_attribute(data::REMOVE_BMC, "")))}
                </div>
            </form>
        }
    });
    let hardware = hardware.map(|record| self::hardware(record, may_act));
    Html::of(view! { {empty.map(|text| view! { <p>{text}</p> })}{shown}{actions}{hardware}{form} })
}

/// The machine's hardware as last read: what it is, its parts, and the changes not yet
/// acknowledged, before and after.
fn hardware(record: HardwareRecord, may_act: bool) -> impl IntoView {
    let h = record.hardware;
    let problem = (!record.problem.is_empty())
        .then(|| view! { <p class="alert warning" role="note">{format!("The last hardware read failed: {}", record.problem)}</p> });
    let changed = (!record.changes.is_empty()).then(|| {
        let rows = record
            .changes
            .iter()
            .map(|c| view! { <tr><td>{c.part.clone()}</td><td>{c.before.clone()}</td><td>{c.after.clone()}</td><td>{c.seen_at.clone()}</td></tr> })
            .collect_view();
        view! {
            <p><strong class="badge changed">"changed"</strong>
                {format!(" {} hardware change(s) since the last acknowledgement.", record.changes.len())}</p>
            {crate::drawn::table(&["Part", "Before", "After", "Seen at"], rows)}
            {may_act.then(|| view! { <button type="button" class="button">"Acknowledge hardware changes"</button> }
                .add_any_attr(custom_attribute(data::ACKNOWLEDGE_HARDWARE, "")))}
        }
    });
    let told = |value: &str| if value.is_empty() { "not told".to_string() } else { value.to_string() };
    let count = |n: Option<usize>, what: &str| {
        n.map_or("not told".to_string(), |n| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
    };
    let cpus = match (&h.processors, h.cpus) {
        (Some(p), cpus) if !p.is_empty() => {
            format!("{} × {}{}", p.len(), p[0].model, cpus.map(|c| format!(" ({c} threads)")).unwrap_or_default())
        }
        (_, Some(cpus)) => format!("{cpus}"),
        _ => "not told".into(),
    };
    let memory = match (h.memory_gib, &h.memory) {
        (Some(gib), Some(m)) => format!(
            "{gib} GiB in {} modules ({})",
            m.len(),
            m.iter().map(|m| format!("{} {}", m.slot, memory_size(m.size_mib))).collect::<Vec<_>>().join(", ")
        ),
        (Some(gib), None) => format!("{gib} GiB"),
        _ => "not told".into(),
    };
    let disks = h.disks.as_ref().map(|d| {
        d.iter()
            .map(|d| format!("{} {} {}", disk_size(d.size_bytes), d.media, d.model).trim().replace("  ", " "))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let nics = h.nics.as_ref().map(|n| {
        n.iter()
            .map(|n| if n.link.is_empty() { n.mac.clone() } else { format!("{} ({})", n.mac, n.link) })
            .collect::<Vec<_>>()
            .join("; ")
    });
    let read_at =
        if record.read_at.is_empty() { "Not read yet.".to_string() } else { format!("Read at {}.", record.read_at) };
    view! {
        <h3>"Hardware"</h3>
        <p class="hint">{read_at}</p>
        {problem}
        {changed}
        <dl class="details hardware">
            <dt>"Manufacturer"</dt><dd>{told(&h.manufacturer)}</dd>
            <dt>"Model"</dt><dd>{told(&h.model)}</dd>
            <dt>"Serial number"</dt><dd class="mono">{told(&h.serial)}</dd>
            <dt>"BIOS"</dt><dd>{told(&h.bios_version)}</dd>
            <dt>"BMC firmware"</dt><dd>{told(&h.bmc_firmware)}</dd>
            <dt>"CPUs"</dt><dd>{cpus}</dd>
            <dt>"Memory"</dt><dd>{memory}</dd>
            <dt>"Disks"</dt><dd>{count(h.disks.as_ref().map(Vec::len), "disk")}{disks.filter(|d| !d.is_empty()).map(|d| format!(": {d}"))}</dd>
            <dt>"NICs"</dt><dd class="mono">{count(h.nics.as_ref().map(Vec::len), "NIC")}{nics.filter(|n| !n.is_empty()).map(|n| format!(": {n}"))}</dd>
        </dl>
    }
}

/// A power run's plan: the estimate and what sets the pace, then each machine's expected start.
pub fn plan(plan: PowerRunPlan) -> Html {
    let minutes = |s: u64| if s < 120 { format!("{s} s") } else { format!("{} min", s.div_ceil(60)) };
    let rows = plan
        .machines
        .iter()
        .map(|m| view! { <tr><td class="mono">{m.mac.clone()}</td><td>{m.group.clone()}</td><td>{format!("+{} s", m.starts_at)}</td></tr> })
        .collect_view();
    Html::of(view! {
        <p role="status">{format!(
            "{} for {} machines: about {} in all.",
            capitalised(plan.action.words()),
            plan.machines.len(),
            minutes(plan.estimated_seconds)
        )}</p>
        <ul class="hint">{plan.notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
        {crate::drawn::table(&["MAC", "Group", "Asked at"], rows)}
    })
}

/// A power run as it stands: a bar of where its machines are, what holds the next one, and each
/// machine's step; Pause or Resume, and Cancel, while it runs.
pub fn run(run: PowerRun) -> Progress {
    let running = matches!(run.state.as_str(), "running" | "paused");
    let total = run.machines.len();
    let count = |step: RunStep| run.machines.iter().filter(|m| m.step == step).count();
    let finished = count(RunStep::Done) + count(RunStep::Failed) + count(RunStep::Skipped);
    let steps = [RunStep::Waiting, RunStep::Sent, RunStep::Booting, RunStep::Done, RunStep::Failed, RunStep::Skipped];
    let bar = steps
        .iter()
        .filter(|s| count(**s) > 0)
        .map(|s| {
            let width = format!("width: {:.2}%", 100.0 * count(*s) as f64 / total.max(1) as f64);
            view! { <span class=format!("run-{}", s.words()) style=width title=format!("{}: {}", s.words(), count(*s))></span> }
        })
        .collect_view();
    let legend = steps
        .iter()
        .filter(|s| count(**s) > 0)
        .map(|s| view! { <li><span class=format!("swatch run-{}", s.words())></span>{format!("{} {}", count(*s), s.words())}</li> })
        .collect_view();
    let held =
        run.machines.iter().find(|m| m.step == RunStep::Waiting && !m.reason.is_empty()).map(|m| m.reason.clone());
    let rows = run
        .machines
        .iter()
        .map(|m| {
            view! { <tr>
                <td class="mono">{m.mac.clone()}</td><td>{m.group.clone()}</td>
                <td><span class=format!("badge run-{}", m.step.words())>{m.step.words()}</span></td>
                <td>{m.reason.clone()}</td><td class="nowrap">{m.sent_at.clone()}</td>
            </tr> }
        })
        .collect_view();
    let steer = |what: &'static str, label: &'static str, class: &'static str| {
        view! { <button type="button" class=class>{label}</button> }
            .add_any_attr(custom_attribute(data::STEER_RUN, format!("{what}:{}", run.job)))
    };
    let buttons = running.then(|| {
        view! {
            <div class="actions" role="group" aria-label="This power run">
                {if run.state == "paused" { steer("resume", "Resume", "button primary") } else { steer("pause", "Pause", "button") }}
                {steer("cancel", "Cancel", "button danger")}
            </div>
        }
    });
    let html = Html::of(view! {
        <div class="progress" role="status">
            <p>{format!(
                "{}: {} of {} machines finished ({}{}).",
                capitalised(&run.state),
                finished,
                total,
                run.action.map(|a| a.words()).unwrap_or_default(),
                if run.largest_burst > 0 { format!("; largest burst in one group: {}", run.largest_burst) } else { String::new() }
            )}</p>
            <div class="run-bar" role="img" aria-label="Where the run's machines are">{bar}</div>
            <ul class="run-legend">{legend}</ul>
        </div>
        {held.map(|h| view! { <p class="hint">{format!("Next held by the {h}.")}</p> })}
        {(run.resumed > 0).then(|| view! { <p class="hint">{format!("Its Pangea replica stopped; another took it over ({} time(s)).", run.resumed)}</p> })}
        {run.error.map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
        {buttons}
        {crate::drawn::table(&["MAC", "Group", "Step", "What happened", "Asked at"], rows)}
    });
    Progress { html, running }
}

/// A discovery as it stands: how many BMCs were asked, the systems found (those that are
/// machines already linked), the addresses that gave none and why; once done, a button to
/// preview the import of the others.
pub fn discovery(discovery: Discovery) -> Progress {
    let running = discovery.state == "running";
    let offered = discovery.found.iter().filter(|f| f.machine.is_none() && !f.mac.is_empty()).count();
    let found = discovery
        .found
        .iter()
        .map(|f| {
            let memory = f.memory_gib.map(|g| format!("{g} GiB")).unwrap_or_default();
            let machine = match f.machine {
                Some(id) => view! { <a href=format!("/machines/{id}")>{format!("machine {id}")}</a> }.into_any(),
                None if f.mac.is_empty() => "no MAC told: not offered".into_any(),
                None => "offered".into_any(),
            };
            view! { <tr>
                <td class="mono">{f.bmc_url.clone()}</td><td class="mono">{f.mac.clone()}</td>
                <td class="mono">{f.macs.join(" ")}</td>
                <td>{format!("{} {}", f.manufacturer, f.model)}</td><td>{f.cpus}</td><td>{memory}</td>
                <td>{f.power.words()}</td><td>{machine}</td>
            </tr> }
        })
        .collect_view();
    let missed = discovery
        .missed
        .iter()
        .map(|m| view! { <tr><td class="mono">{m.address.clone()}</td><td>{m.reason.clone()}</td></tr> })
        .collect_view();
    let import = (discovery.state == "succeeded" && offered > 0).then(|| {
        view! { <button type="button" class="button primary">{format!("Preview the import of {offered} machines")}</button> }
            .add_any_attr(custom_attribute(data::IMPORT_DISCOVERED, discovery.job.clone()))
    });
    let html = Html::of(view! {
        <div class="progress" role="status">
            <label for="discovery-progress">{format!("{}: {} of {} BMCs asked, {} systems found.", capitalised(&discovery.state), discovery.done, discovery.total, discovery.found.len())}</label>
            <progress id="discovery-progress" max=discovery.total.max(1) value=discovery.done></progress>
        </div>
        {discovery.error.map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
        {import}
        {(!discovery.found.is_empty()).then(|| crate::drawn::table(&["System", "Offered MAC", "MACs", "Model", "CPUs", "Memory", "Power", "Machine"], found))}
        {(!discovery.missed.is_empty()).then(|| crate::drawn::table(&["Address", "Why no system"], missed))}
    });
    Progress { html, running }
}
