//! `/machines/new` and `/machines/:id`: add, edit and delete one machine.

use crate::access::Permission;
use crate::account::RequirePermission;
use crate::components::messages::{ErrorBlock, FieldMessage};
use crate::components::toast::use_toasts;
use crate::error::{AppError, FieldError};
use crate::machines::fields::{Role, split_label_text};
use crate::machines::server_fns::{create_machine, delete_machines, get_machine, update_machine};
use crate::machines::{Machine, MachineInput};
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

/// The text of each form field, as typed.
#[derive(Clone, Default, PartialEq)]
struct Draft {
    mac: String,
    hostname: String,
    role: String,
    cluster: String,
    labels: String,
    uuid: String,
    serial: String,
}

impl Draft {
    fn from_machine(m: &Machine) -> Draft {
        Draft {
            mac: m.mac.clone(),
            hostname: m.hostname.clone().unwrap_or_default(),
            role: m.role.as_str().into(),
            cluster: m.cluster.clone().unwrap_or_default(),
            labels: m.labels_text(),
            uuid: m.uuid.clone().unwrap_or_default(),
            serial: m.serial.clone().unwrap_or_default(),
        }
    }

    /// The input to send, or the problems to show next to each field.
    fn to_input(&self) -> Result<MachineInput, Vec<FieldError>> {
        let some = |s: &String| Some(s.clone()).filter(|s| !s.trim().is_empty());
        let labels =
            split_label_text(&self.labels).map_err(|message| vec![FieldError { field: "labels".into(), message }])?;
        let input = MachineInput {
            mac: self.mac.clone(),
            hostname: some(&self.hostname),
            uuid: some(&self.uuid),
            serial: some(&self.serial),
            role: some(&self.role),
            labels: labels.into_iter().collect(),
            cluster: some(&self.cluster),
        };
        input.validate().map(|_| input)
    }
}

#[component]
pub fn NewMachine() -> impl IntoView {
    view! {
        <Title text="Add machine" />
        <section class="page narrow">
            <h1>"Add machine"</h1>
            <RequirePermission permission=Permission::ChangeMachines what="Adding machines">
                <MachineForm machine=None />
            </RequirePermission>
        </section>
    }
}

#[component]
pub fn EditMachine() -> impl IntoView {
    let params = use_params_map();
    let me = resource(|| (), |_| crate::account::current_user());
    // Counts the machine's boot timeline's changes: its Power section reads again on each.
    let timeline = RwSignal::new(0u64);
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let machine = resource(id, |id| async move {
        match id {
            Some(id) => get_machine(id).await,
            None => Err(AppError::not_found("Machine ids are numbers; this address has none.")),
        }
    });
    view! {
        <Title text="Edit machine" />
        <section class="page narrow">
            <Suspense fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match machine.await {
                        Ok(m) => {
                            let may_change = me.await.ok().flatten().is_some_and(|me| me.may(Permission::ChangeMachines));
                            view! {
                                <h1>"Machine " <span class="mono">{m.mac.clone()}</span></h1>
                                <p><A href=format!("/provisioning/explain?query={}", crate::components::text::urlencode(&format!("mac={}", m.mac)))>
                                    "What will this machine get?"
                                </A></p>
                                <crate::pages::provisioning::MachineBootProfile mac=m.mac.clone()
                                    cluster=m.cluster.clone().unwrap_or_default() role=m.role.as_str().to_string() />
                                <super::power::MachinePower id=m.id cluster=m.cluster.clone().unwrap_or_default() timeline />
                                <super::boots::BootTimeline mac=m.mac.clone() tick=timeline />
                                <crate::pages::clusters::MachineNodeHealth machine=m.id />
                                {if may_change {
                                    view! { <MachineForm machine=Some(m.clone()) /> <DeleteMachine machine=m /> }.into_any()
                                } else {
                                    view! { <MachineDetails machine=m /> }.into_any()
                                }}
                            }.into_any()
                        }
                        Err(e) => {
                            crate::error::set_response_status(e.status());
                            view! { <h1>"Machine"</h1><ErrorBlock error=e /><p><A href="/machines">"Back to machines"</A></p> }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn MachineForm(machine: Option<Machine>) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let id = machine.as_ref().map(|m| m.id);
    let draft = RwSignal::new(
        machine
            .as_ref()
            .map(Draft::from_machine)
            .unwrap_or_else(|| Draft { role: "worker".into(), ..Draft::default() }),
    );
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let touched = RwSignal::new(false);
    let save = Action::new(move |input: &MachineInput| {
        let input = input.clone();
        async move {
            match id {
                Some(id) => update_machine(id, input).await,
                None => create_machine(input).await,
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = save.value().get() {
            match result {
                Ok(m) => {
                    toasts.success(format!("Saved machine {}.", m.mac));
                    navigate("/machines", Default::default());
                }
                Err(e) => {
                    let fields = match &e {
                        AppError::Invalid { fields, .. } | AppError::Conflict { fields, .. } => fields.clone(),
                        _ => Vec::new(),
                    };
                    if fields.is_empty() {
                        toasts.error(e.to_string());
                    }
                    errors.set(fields);
                }
            }
        }
    });
    // Inline validation: once a field was left or the form submitted, re-check on every change.
    let revalidate = move || {
        if touched.get_untracked() {
            errors.set(draft.with_untracked(|d| d.to_input().err().unwrap_or_default()));
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        match draft.with_untracked(Draft::to_input) {
            Ok(input) => {
                errors.set(Vec::new());
                save.dispatch(input);
            }
            Err(problems) => errors.set(problems),
        }
    };
    let message = move |field: &'static str| {
        Signal::derive(move || errors.with(|e| e.iter().find(|f| f.field == field).map(|f| f.message.clone())))
    };

    macro_rules! text_field {
        ($field:ident, $label:expr, $hint:expr) => {{
            let error_id = concat!("machine-", stringify!($field), "-error");
            let msg = message(stringify!($field));
            view! {
                <div class="field">
                    <label for=concat!("machine-", stringify!($field))>{$label}</label>
                    <input id=concat!("machine-", stringify!($field)) name=stringify!($field) placeholder=$hint
                        autocomplete="off"
                        prop:value=move || draft.with(|d| d.$field.clone())
                        on:input=move |ev| { draft.update(|d| d.$field = event_target_value(&ev)); revalidate(); }
                        on:blur=move |_| { touched.set(true); revalidate(); }
                        aria-invalid=move || msg.get().is_some().then_some("true")
                        aria-describedby=error_id />
                    <FieldMessage id=error_id message=msg />
                </div>
            }
        }};
    }

    view! {
        <form class="machine-form" on:submit=on_submit novalidate>
            {text_field!(mac, "MAC address (required)", "52:54:00:12:34:56")}
            {text_field!(hostname, "Host name", "node-1.example.com")}
            <div class="field">
                <label for="machine-role">"Role"</label>
                <select id="machine-role" name="role" on:change=move |ev| draft.update(|d| d.role = event_target_value(&ev))>
                    {Role::ALL.into_iter().map(|r| view! {
                        <option value=r.as_str() selected=move || draft.with(|d| d.role == r.as_str())>{r.as_str()}</option>
                    }).collect_view()}
                </select>
            </div>
            {text_field!(cluster, "Cluster", "prod-eu")}
            {text_field!(labels, "Labels", "rack=r1, zone=a")}
            {text_field!(uuid, "System UUID", "4c4c4544-0051-3410-8051-b5c04f305a32")}
            {text_field!(serial, "Serial number", "CZ1234ABC")}
            <div class="actions">
                <button type="submit" class="button primary" disabled=move || save.pending().get()>
                    {move || if save.pending().get() { "Saving…" } else { "Save machine" }}
                </button>
                <A href="/machines" attr:class="button">"Cancel"</A>
            </div>
        </form>
    }
}

/// A machine, read-only: for people who may look but not change.
#[component]
fn MachineDetails(machine: Machine) -> impl IntoView {
    let or_dash = |v: Option<String>| v.filter(|v| !v.is_empty()).unwrap_or_else(|| "—".into());
    let rows = [
        ("MAC address", machine.mac.clone()),
        ("Host name", or_dash(machine.hostname.clone())),
        ("Role", machine.role.as_str().to_string()),
        ("Cluster", or_dash(machine.cluster.clone())),
        ("Labels", or_dash(Some(machine.labels_text()))),
        ("UUID", or_dash(machine.uuid.clone())),
        ("Serial", or_dash(machine.serial.clone())),
    ];
    view! {
        <dl class="details">
            {rows.into_iter().map(|(term, value)| view! { <dt>{term}</dt><dd>{value}</dd> }).collect_view()}
        </dl>
        <p><A href="/machines">"Back to machines"</A></p>
    }
}

#[component]
fn DeleteMachine(machine: Machine) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let confirming = RwSignal::new(false);
    let id = machine.id;
    let delete = Action::new(move |_: &()| delete_machines(vec![id]));
    Effect::new(move |_| {
        if let Some(result) = delete.value().get() {
            match result {
                Ok(_) => {
                    toasts.success("Machine deleted.");
                    navigate("/machines", Default::default());
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
    view! {
        <div class="danger-zone">
            <Show when=move || confirming.get() fallback=move || view! {
                <button type="button" class="button danger" on:click=move |_| confirming.set(true)>"Delete machine…"</button>
            }>
                <span class="confirm" role="alert">
                    {format!("Delete {}? This cannot be undone.", machine.mac)}
                    <button type="button" class="button danger" autofocus on:click=move |_| { delete.dispatch(()); }>"Confirm delete"</button>
                    <button type="button" class="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </span>
            </Show>
        </div>
    }
}
