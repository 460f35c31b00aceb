//! A machine's Power section, drawn on the server (its code stays out of the wasm): the power as
//! last read, the BMC with its warnings, and, for those who may act, the power actions and the
//! BMC's form. Buttons carry what they do (`data::POWER_ACTION`, `data::REMOVE_BMC`); the page's
//! handlers send it.

use super::{Bmc, PowerAction};
use crate::components::text::capitalised;
use crate::drawn::{Html, data};
use leptos::prelude::*;
use leptos::tachys::html::attribute::custom::custom_attribute;

pub fn power(bmc: Option<Bmc>, may_act: bool) -> Html {
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
    Html::of(view! { {empty.map(|text| view! { <p>{text}</p> })}{shown}{actions}{form} })
}
