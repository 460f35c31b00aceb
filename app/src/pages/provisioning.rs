//! `/provisioning/...`: profiles, groups and templates, what a machine will get, and imports of
//! Matchbox data directories. Viewers read; operators change.

use crate::access::Permission;
use crate::account::RequirePermission;
use crate::components::get_form::GetForm;
use crate::components::messages::{ErrorBlock, FieldMessage};
use crate::components::text::urlencode;
use crate::components::toast::use_toasts;
use crate::drawn::Drawn;
use crate::error::AppError;
use crate::provisioning::server_fns::{
    delete_group, delete_profile, delete_template, explain_boot, import_provisioning, machine_boot_profile,
    preview_template, provisioning_catalog, provisioning_overview, put_group, put_profile, put_template,
    set_default_profile, set_machine_profile,
};
use crate::provisioning::{
    BootProfileChoice, Catalog, DefaultProfile, Group, ImportOutcome, NetBoot, Profile, TemplateFile, TemplateKind,
    check_id,
};
use crate::resource::{Resource, resource};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};
use std::collections::BTreeMap;

mod explain;
mod group;
mod import;
mod machine_profile;
mod new_item;
mod overview;
mod profile;
mod template;

use explain::ExplainBoot;
use group::GroupForm;
use import::ImportProvisioning;
pub use machine_profile::MachineBootProfile;
use new_item::NewProvisioningItem;
use overview::ProvisioningOverview;
use profile::ProfileForm;
use template::TemplateForm;

fn may_change() -> Resource<bool> {
    resource(
        || (),
        |_| async {
            crate::account::current_user().await.ok().flatten().is_some_and(|me| me.may(Permission::ChangeProvisioning))
        },
    )
}

/// The "What will this machine get?" form: a MAC or any labels.
#[component]
fn AskForm(#[prop(into)] value: Signal<String>) -> impl IntoView {
    view! {
        <GetForm action="/provisioning/explain" attr:class="filters">
            <div class="field grow">
                <label for="explain-query">"What will this machine get? A MAC, or labels as a machine sends them"</label>
                <input id="explain-query" name="query" placeholder="mac=52:54:00:00:00:01&os=installed" prop:value=value />
            </div>
            <div class="field"><span class="label-spacer" aria-hidden="true">" "</span>
                <button type="submit" class="button primary">"Show"</button></div>
        </GetForm>
    }
}

/// Every page under `/provisioning`, chosen by path. One lazily loaded area keeps the shell and
/// each other page's first load small: seven lazy routes put their shared code into dozens of
/// small chunks that every page then fetched.
#[component]
pub fn ProvisioningArea() -> impl IntoView {
    let location = use_location();
    move || {
        let path = location.pathname.get();
        let parts: Vec<String> =
            path.trim_start_matches("/provisioning").split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
        match parts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [] => view! { <ProvisioningOverview /> }.into_any(),
            ["explain"] => view! { <ExplainBoot /> }.into_any(),
            ["import"] => view! { <ImportProvisioning /> }.into_any(),
            ["new", what] => view! { <NewProvisioningItem what=what.to_string() /> }.into_any(),
            ["profiles", id] => view! { <ProfilePage id=id.to_string() /> }.into_any(),
            ["groups", id] => view! { <GroupPage id=id.to_string() /> }.into_any(),
            ["templates", kind, id] => view! { <TemplatePage kind=kind.to_string() id=id.to_string() /> }.into_any(),
            _ => view! { <crate::pages::not_found::NotFound /> }.into_any(),
        }
    }
}

/// Lines of a textarea, without empty ones.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// `key=value` lines into a map; the first bad line is named.
fn pairs(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: write key=value, e.g. mac=52:54:00:00:00:01", n + 1));
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// One field's error message, as a signal.
fn message_of(errors: RwSignal<BTreeMap<&'static str, String>>, field: &'static str) -> Signal<Option<String>> {
    Signal::derive(move || errors.with(|e| e.get(field).cloned()))
}

/// A labelled text input or textarea bound to `value`, with its inline error.
#[component]
fn TextField(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    errors: RwSignal<BTreeMap<&'static str, String>>,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] rows: Option<u32>,
    #[prop(optional)] readonly: bool,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let msg = message_of(errors, id);
    let invalid = move || msg.get().is_some().then_some("true");
    let input = match rows {
        Some(rows) => view! {
            <textarea id=id rows=rows placeholder=placeholder spellcheck="false" readonly=readonly
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=invalid aria-describedby=error_id.clone()></textarea>
        }
        .into_any(),
        None => view! {
            <input id=id placeholder=placeholder autocomplete="off" readonly=readonly
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=invalid aria-describedby=error_id.clone() />
        }
        .into_any(),
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            {input}
            <FieldMessage id=error_id message=msg />
        </div>
    }
}

/// Saves through `save` and goes back to the overview; a refusal shows as a toast.
fn after_save<T: Clone + Send + Sync + 'static>(action: Action<(), Result<T, AppError>>, what: &'static str) {
    let toasts = use_toasts();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(result) = action.value().get() {
            match result {
                Ok(_) => {
                    toasts.success(format!("Saved the {what}."));
                    navigate("/provisioning", Default::default());
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
}

/// A two-step delete button; `delete` runs on confirmation.
#[component]
fn DeleteButton(what: String, delete: Action<(), Result<(), AppError>>) -> impl IntoView {
    let toasts = use_toasts();
    let navigate = use_navigate();
    let confirming = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(result) = delete.value().get() {
            match result {
                Ok(()) => {
                    toasts.success("Deleted.");
                    navigate("/provisioning", Default::default());
                }
                Err(e) => {
                    confirming.set(false);
                    toasts.error(e.to_string());
                }
            }
        }
    });
    view! {
        <div class="danger-zone">
            <Show when=move || confirming.get() fallback=move || view! {
                <button type="button" class="button danger" on:click=move |_| confirming.set(true)>"Delete…"</button>
            }>
                <span class="confirm" role="alert">
                    {format!("Delete {what}? Machines that get it will get 404.")}
                    <button type="button" class="button danger" autofocus on:click=move |_| { delete.dispatch(()); }>"Confirm delete"</button>
                    <button type="button" class="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </span>
            </Show>
        </div>
    }
}

/// Loads one item, then shows its form (read-only for viewers).
macro_rules! item_page {
    ($name:ident, $title:literal, $load:expr, $form:ident, $prop:ident) => {
        #[component]
        fn $name(#[prop(optional)] kind: String, id: String) -> impl IntoView {
            let key = StoredValue::new((kind, id));
            let key = move || key.get_value();
            let item = resource(key, $load);
            let may = may_change();
            view! {
                <Title text=$title />
                <section class="page narrow">
                    <Suspense fallback=|| view! { <div class="skeleton-row"></div> }>
                        {move || Suspend::new(async move {
                            let may_change = may.await;
                            match item.await {
                                Ok(found) => view! {
                                    <h1>{$title} " " <span class="mono">{key().1}</span></h1>
                                    <$form $prop=Some(found) may_change=may_change />
                                }.into_any(),
                                Err(e) => {
                                    crate::error::set_response_status(e.status());
                                    view! { <h1>{$title}</h1><ErrorBlock error=e /><p><A href="/provisioning">"Back to provisioning"</A></p> }.into_any()
                                }
                            }
                        })}
                    </Suspense>
                </section>
            }
        }
    };
}

/// Finds one item in the catalog (the catalog call authorizes).
async fn find<T>(pick: impl FnOnce(Catalog) -> Option<T>, what: &str) -> Result<T, AppError> {
    pick(provisioning_catalog().await?).ok_or_else(|| AppError::not_found(format!("There is no such {what}.")))
}

item_page!(
    ProfilePage,
    "Profile",
    |(_, id): (String, String)| find(move |c| c.profiles.into_iter().find(|p| p.id == id), "profile"),
    ProfileForm,
    profile
);
item_page!(
    GroupPage,
    "Group",
    |(_, id): (String, String)| find(move |c| c.groups.into_iter().find(|g| g.id == id), "group"),
    GroupForm,
    group
);
item_page!(
    TemplatePage,
    "Template",
    |(kind, id): (String, String)| find(
        move |c| c.templates.into_iter().find(|t| t.kind.as_str() == kind && t.id == id),
        "template"
    ),
    TemplateForm,
    template
);
