//! A machine's Power section, drawn on the server (its code stays out of the wasm): the power as
//! last read, the BMC with its warnings, its hardware and the changes seen in it, and, for those
//! who may act, the power actions, the acknowledgement of hardware changes and the BMC's form. Buttons carry what they do (`data::POWER_ACTION`, `data::REMOVE_BMC`); the page's
//! handlers send it.

use super::{Bmc, HardwareRecord, PowerAction, disk_size, memory_size};
use crate::components::text::capitalised;
use crate::drawn::{Html, data};
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
