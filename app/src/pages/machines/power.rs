//! A machine's BMC and power on its page: the power state, the BMC and its warnings, the power
//! actions, and the BMC's setting (checked by the server before it is kept).

use crate::access::Permission;
use crate::components::messages::{ErrorBlock, FieldMessage};
use crate::components::text::capitalised;
use crate::components::toast::use_toasts;
use crate::error::AppError;
use crate::power::server_fns::{machine_bmc, power_machine, remove_machine_bmc, set_machine_bmc};
use crate::power::{Bmc, BmcInput, PowerAction};
use crate::resource::resource;
use leptos::prelude::*;

/// The Power section of machine `id` (in `cluster`).
#[component]
pub fn MachinePower(id: i64, cluster: String) -> impl IntoView {
    let me = resource(|| (), |_| crate::account::current_user());
    let version = RwSignal::new(0u64);
    let bmc = resource(move || version.get(), move |_| machine_bmc(id));
    // While the machine is powering on or off, its power is read again every 2 s.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let powering = bmc.get().and_then(|b| b.ok().flatten()).is_some_and(|b| {
            matches!(b.power.state, crate::power::PowerState::PoweringOn | crate::power::PowerState::PoweringOff)
        });
        if powering {
            set_timeout(move || version.update(|v| *v += 1), std::time::Duration::from_secs(2));
        }
    });
    view! {
        <section class="power" aria-labelledby="power-head">
            <h2 id="power-head">"Power"</h2>
            <Suspense fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || {
                    let cluster = cluster.clone();
                    Suspend::new(async move {
                        let may_act = me.await.ok().flatten().is_some_and(|me| me.may_in(Permission::PowerMachines, &cluster));
                        match bmc.await {
                            Ok(Some(bmc)) => view! {
                                <PowerReading bmc=bmc.clone() />
                                {may_act.then(|| view! { <PowerActions id version /> })}
                                {may_act.then(|| view! { <BmcForm id version bmc=Some(bmc) /> })}
                            }.into_any(),
                            Ok(None) if may_act => view! {
                                <p>"This machine has no BMC yet: give its Redfish address to power it from here."</p>
                                <BmcForm id version bmc=None />
                            }.into_any(),
                            Ok(None) => view! { <p>"This machine has no BMC."</p> }.into_any(),
                            Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

/// The power as last read, and the BMC it came from, with its warnings.
#[component]
fn PowerReading(bmc: Bmc) -> impl IntoView {
    let state = bmc.power.state;
    let reason = (!bmc.power.reason.is_empty()).then(|| format!(" ({})", bmc.power.reason));
    let read_at = (!bmc.power.read_at.is_empty()).then(|| format!("Read at {}.", bmc.power.read_at));
    view! {
        <p class="power-state">
            "Power: " <strong class=format!("badge power-{}", state.as_str())>{state.words()}</strong>{reason}
            " " <span class="hint">{read_at}</span>
        </p>
        {bmc.warnings.into_iter().map(|w| view! { <p class="alert warning" role="note">{w}</p> }).collect_view()}
        <dl class="details">
            <dt>"BMC"</dt><dd class="mono">{bmc.url}</dd>
            <dt>"User"</dt><dd>{bmc.username}</dd>
            <dt>"System"</dt><dd class="mono">{bmc.system}</dd>
        </dl>
    }
}

/// The power actions; each is sent at once, and its outcome follows on the boot timeline.
#[component]
fn PowerActions(id: i64, version: RwSignal<u64>) -> impl IntoView {
    let toasts = use_toasts();
    let act = Action::new(move |action: &PowerAction| power_machine(id, *action));
    Effect::new(move |_| {
        if let Some(result) = act.value().get() {
            match result {
                Ok(status) => {
                    toasts.success(format!(
                        "Asked: the machine is {}. The boot timeline follows it.",
                        status.state.words()
                    ));
                    version.update(|v| *v += 1);
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
    // Cutting power is asked once more before it is sent.
    let confirming = RwSignal::new(None::<PowerAction>);
    let abrupt = |action: PowerAction| {
        matches!(action, PowerAction::ForceOff | PowerAction::PowerCycle | PowerAction::ForceRestart)
    };
    view! {
        <div class="actions power-actions" role="group" aria-label="Power actions">
            {PowerAction::ALL.into_iter().map(|action| {
                let class = if abrupt(action) { "button danger" } else { "button" };
                view! {
                    <button type="button" class=class disabled=move || act.pending().get()
                        on:click=move |_| if abrupt(action) { confirming.set(Some(action)) } else { act.dispatch(action); }>
                        {capitalised(action.words())}
                    </button>
                }
            }).collect_view()}
        </div>
        {move || confirming.get().map(|action| view! {
            <p class="confirm" role="alert">
                {format!("{}? It cuts the machine's power at once, whatever it is doing.", capitalised(action.words()))}
                " "
                <button type="button" class="button danger" autofocus
                    on:click=move |_| { confirming.set(None); act.dispatch(action); }>{format!("Confirm {}", action.words())}</button>
                <button type="button" class="button" on:click=move |_| confirming.set(None)>"Cancel"</button>
            </p>
        })}
    }
}

/// The BMC's setting: saved only once the server checked it; the password is never shown.
#[component]
fn BmcForm(id: i64, version: RwSignal<u64>, bmc: Option<Bmc>) -> impl IntoView {
    let toasts = use_toasts();
    let had = bmc.is_some();
    let url = RwSignal::new(bmc.as_ref().map(|b| b.url.clone()).unwrap_or_default());
    let username = RwSignal::new(bmc.as_ref().map(|b| b.username.clone()).unwrap_or_default());
    let password = RwSignal::new(String::new());
    let ca_pem = RwSignal::new(String::new());
    let verify_off = RwSignal::new(bmc.as_ref().is_some_and(|b| b.verify_off));
    let errors = RwSignal::new(Vec::<crate::error::FieldError>::new());
    let save = Action::new(move |input: &BmcInput| set_machine_bmc(id, input.clone()));
    let remove = Action::new(move |_: &()| remove_machine_bmc(id));
    Effect::new(move |_| {
        if let Some(result) = save.value().get() {
            match result {
                Ok(_) => {
                    toasts.success("BMC checked and saved.");
                    errors.set(Vec::new());
                    version.update(|v| *v += 1);
                }
                Err(AppError::Invalid { fields, .. }) if !fields.is_empty() => errors.set(fields),
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = remove.value().get() {
            match result {
                Ok(()) => {
                    toasts.success("BMC removed.");
                    version.update(|v| *v += 1);
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let password = password.get_untracked();
        save.dispatch(BmcInput {
            url: url.get_untracked(),
            username: username.get_untracked(),
            password: (!password.is_empty()).then_some(password),
            ca_pem: ca_pem.get_untracked(),
            verify_off: verify_off.get_untracked(),
        });
    };
    let message = move |field: &'static str| {
        Signal::derive(move || errors.with(|e| e.iter().find(|f| f.field == field).map(|f| f.message.clone())))
    };
    let (url_error, user_error, password_error, ca_error) =
        (message("url"), message("username"), message("password"), message("ca_pem"));
    view! {
        <form class="bmc-form" on:submit=on_submit novalidate aria-label="BMC">
            <div class="field">
                <label for="bmc-url">"BMC address (Redfish)"</label>
                <input id="bmc-url" placeholder="https://10.0.0.10" autocomplete="off"
                    prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev))
                    aria-invalid=move || url_error.get().is_some().then_some("true") aria-describedby="bmc-url-error bmc-url-hint" />
                <p class="hint" id="bmc-url-hint">"A BMC with several systems: add this machine's path, /redfish/v1/Systems/ID."</p>
                <FieldMessage id="bmc-url-error" message=url_error />
            </div>
            <div class="field">
                <label for="bmc-username">"BMC user"</label>
                <input id="bmc-username" autocomplete="off" prop:value=move || username.get()
                    on:input=move |ev| username.set(event_target_value(&ev))
                    aria-invalid=move || user_error.get().is_some().then_some("true") aria-describedby="bmc-username-error" />
                <FieldMessage id="bmc-username-error" message=user_error />
            </div>
            <div class="field">
                <label for="bmc-password">{if had { "BMC password (empty: keep the one kept)" } else { "BMC password" }}</label>
                <input id="bmc-password" type="password" autocomplete="new-password" prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))
                    aria-invalid=move || password_error.get().is_some().then_some("true") aria-describedby="bmc-password-error" />
                <FieldMessage id="bmc-password-error" message=password_error />
            </div>
            <div class="field">
                <label for="bmc-ca">"CA certificates (PEM; empty: the system's)"</label>
                <textarea id="bmc-ca" rows="3" prop:value=move || ca_pem.get()
                    on:input=move |ev| ca_pem.set(event_target_value(&ev))
                    aria-invalid=move || ca_error.get().is_some().then_some("true") aria-describedby="bmc-ca-error"></textarea>
                <FieldMessage id="bmc-ca-error" message=ca_error />
            </div>
            <div class="field checkbox">
                <input id="bmc-verify-off" type="checkbox" prop:checked=move || verify_off.get()
                    on:change=move |ev| verify_off.set(event_target_checked(&ev)) />
                <label for="bmc-verify-off">"Do not check its certificate (not advised)"</label>
            </div>
            <div class="actions">
                <button type="submit" class="button primary" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Checking the BMC…" } else { "Check and save BMC" }}
                </button>
                {had.then(|| view! {
                    <button type="button" class="button danger" disabled=move || remove.pending().get()
                        on:click=move |_| { remove.dispatch(()); }>"Remove BMC"</button>
                })}
            </div>
        </form>
    }
}
