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

/// `/provisioning`: everything the boot listener serves, drawn by the server with its groups
/// filtered by `?groups=`. Its two forms (see `provisioning::drawn::catalog`) are read here: the
/// filter asks again, and the default form sets an inventory default.
#[component]
fn ProvisioningOverview() -> impl IntoView {
    let params = use_query_map();
    let navigate = use_navigate();
    let toasts = use_toasts();
    let filter = Memo::new(move |_| params.read().get("groups").unwrap_or_default());
    let saved = RwSignal::new(0u32);
    let overview = resource(move || (filter.get(), saved.get()), |(filter, _)| provisioning_overview(filter));
    let may = may_change();
    let save = Action::new(move |default: &DefaultProfile| set_default_profile(default.clone()));
    Effect::new(move |_| match save.value().get() {
        Some(Ok(d)) => {
            saved.update(|n| *n += 1);
            toasts.success(if d.profile.is_empty() {
                format!("Removed the default for {}s.", d.role)
            } else {
                let cluster = if d.cluster.is_empty() { "no cluster" } else { &d.cluster };
                format!("{}s in {cluster} now boot {}.", d.role, d.profile)
            });
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        use wasm_bindgen::JsCast;
        let form = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).map(|form| form.id());
        let field = |name: &str| crate::pages::form_field(&ev, name);
        match form.as_deref() {
            Some("group-filter") => {
                navigate(&format!("/provisioning?groups={}", urlencode(&field("groups"))), Default::default())
            }
            Some("default-form") => {
                save.dispatch(DefaultProfile {
                    cluster: field("cluster"),
                    role: field("role"),
                    profile: field("profile"),
                });
            }
            _ => return,
        }
        ev.prevent_default();
    };
    view! {
        <Title text="Provisioning" />
        <section class="page">
            <div class="page-head">
                <h1>"Provisioning"</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        may.await.then(|| view! {
                            <div class="actions">
                                <A href="/provisioning/new/profile" attr:class="button">"New profile"</A>
                                <A href="/provisioning/new/group" attr:class="button">"New group"</A>
                                <A href="/provisioning/new/template" attr:class="button">"New template"</A>
                                <A href="/provisioning/import" attr:class="button">"Import Matchbox data"</A>
                            </div>
                        })
                    })}
                </Suspense>
            </div>
            <AskForm value=Signal::derive(String::new) />
            <p class="hint">
                "A machine gets the group whose selectors all equal its labels; the group with the most selectors wins, "
                "then the one whose selectors sort first, then the one whose id sorts first. A group without selectors "
                "is the default. Selectors override metadata of the same name in templates."
            </p>
            <div on:submit=on_submit><Drawn drawn=overview /></div>
        </section>
    }
}

/// On a machine's page: the profile it boots, and (for operators) a choice of its own.
#[component]
pub fn MachineBootProfile(mac: String, cluster: String, role: String) -> impl IntoView {
    let choice = {
        let (mac, cluster, role) = (mac.clone(), cluster.clone(), role.clone());
        resource(|| (), move |_| machine_boot_profile(mac.clone(), cluster.clone(), role.clone()))
    };
    let may = may_change();
    let toasts = use_toasts();
    let chosen = RwSignal::new(String::new());
    let save = Action::new(move |_: &()| set_machine_profile(mac.clone(), chosen.get_untracked()));
    Effect::new(move |_| {
        if let Some(result) = save.value().get() {
            match result {
                Ok(profile) if profile.is_empty() => {
                    toasts.success("The machine now boots by its cluster's default or a group.")
                }
                Ok(profile) => toasts.success(format!("The machine now boots profile {profile}.")),
                Err(e) => toasts.error(e.to_string()),
            }
            choice.refetch();
        }
    });
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let (cluster, role) = (cluster.clone(), role.clone());
                Suspend::new(async move {
                    let Ok(BootProfileChoice { own, default, profiles }) = choice.await else { return ().into_any() };
                    let text = match (&own, &default) {
                        (Some(p), _) => format!("{p} (its own)"),
                        (None, Some(p)) => format!("{p} (the default for {role}s in {})", if cluster.is_empty() { "no cluster" } else { &cluster }),
                        (None, None) => "none: it boots only if a group selects it".to_string(),
                    };
                    chosen.set(own.clone().unwrap_or_default());
                    let may_change = may.await;
                    view! {
                        <p class="boot-profile"><strong>"Boot profile: "</strong>{text}</p>
                        {may_change.then(|| view! {
                            <form class="filters" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save.dispatch(()); }>
                                <div class="field"><label for="machine-boot-profile">"Its own boot profile"</label>
                                    <select id="machine-boot-profile" on:change=move |ev| chosen.set(event_target_value(&ev))>
                                        <option value="" selected=own.is_none()>"(none: its cluster and role's default)"</option>
                                        {profiles.into_iter().map(|p| {
                                            let selected = own.as_deref() == Some(p.as_str());
                                            view! { <option value=p.clone() selected=selected>{p.clone()}</option> }
                                        }).collect_view()}
                                    </select></div>
                                <div class="field"><span class="label-spacer" aria-hidden="true">" "</span>
                                    <button type="submit" class="button">"Set boot profile"</button></div>
                            </form>
                        })}
                    }.into_any()
                })
            }}
        </Suspense>
    }
}

/// `/provisioning/explain?query=…`: what a machine gets, and why.
#[component]
fn ExplainBoot() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        let raw = params.read().get("query").unwrap_or_default();
        // A bare MAC is a machine asking with its MAC.
        if raw.contains('=') || raw.trim().is_empty() { raw } else { format!("mac={}", raw.trim()) }
    });
    let explanation = resource(move || query.get(), explain_boot);
    view! {
        <Title text="What will this machine get?" />
        <section class="page">
            <h1>"What will this machine get?"</h1>
            <AskForm value=Signal::derive(move || query.get()) />
            <Drawn drawn=explanation />
        </section>
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

/// `/provisioning/new/:what`: a new profile, group or template.
#[component]
fn NewProvisioningItem(what: String) -> impl IntoView {
    let what = StoredValue::new(what);
    let what = move || what.get_value();
    view! {
        <Title text="New" />
        <section class="page narrow">
            <RequirePermission permission=Permission::ChangeProvisioning what="Changing provisioning">
                {move || match what().as_str() {
                    "profile" => view! { <h1>"New profile"</h1><ProfileForm profile=None may_change=true /> }.into_any(),
                    "group" => view! { <h1>"New group"</h1><GroupForm group=None may_change=true /> }.into_any(),
                    "template" => view! { <h1>"New template"</h1><TemplateForm template=None may_change=true /> }.into_any(),
                    _ => view! { <ErrorBlock error=AppError::not_found("Create a profile, a group or a template.") /> }.into_any(),
                }}
            </RequirePermission>
        </section>
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

#[component]
fn ProfileForm(profile: Option<Profile>, may_change: bool) -> impl IntoView {
    let existing = profile.clone();
    let p = profile.unwrap_or_default();
    let id = RwSignal::new(p.id.clone());
    let name = RwSignal::new(p.name.clone());
    let kernel = RwSignal::new(p.boot.kernel.clone());
    let initrd = RwSignal::new(p.boot.initrd.join("\n"));
    let args = RwSignal::new(p.boot.args.join("\n"));
    let ignition = RwSignal::new(p.ignition_id.clone());
    let generic = RwSignal::new(p.generic_id.clone());
    let cloud = p.cloud_id.clone();
    let errors = RwSignal::new(BTreeMap::<&'static str, String>::new());
    let build = move || -> Result<Profile, BTreeMap<&'static str, String>> {
        let profile = Profile {
            id: id.get_untracked().trim().to_string(),
            name: name.get_untracked(),
            boot: NetBoot {
                kernel: kernel.get_untracked().trim().to_string(),
                initrd: lines(&initrd.get_untracked()),
                args: lines(&args.get_untracked()),
            },
            ignition_id: ignition.get_untracked().trim().to_string(),
            generic_id: generic.get_untracked().trim().to_string(),
            cloud_id: cloud.clone(),
        };
        let mut problems = BTreeMap::new();
        if let Err(e) = check_id("profile", &profile.id) {
            problems.insert("profile-id", e);
        }
        for (field, value, what) in [
            ("profile-ignition", &profile.ignition_id, "Ignition template"),
            ("profile-generic", &profile.generic_id, "generic template"),
        ] {
            if !value.is_empty()
                && let Err(e) = check_id(what, value)
            {
                problems.insert(field, e);
            }
        }
        if problems.is_empty() { Ok(profile) } else { Err(problems) }
    };
    let build = StoredValue::new(build);
    Effect::new(move |_| {
        let _ = (id.get(), ignition.get(), generic.get());
        errors.set(build.with_value(|b| b().err().unwrap_or_default()));
    });
    let save = Action::new(move |_: &()| {
        let profile = build.with_value(|b| b());
        async move { put_profile(profile.map_err(|_| AppError::invalid("Fix the fields marked above."))?).await }
    });
    after_save(save, "profile");
    let readonly = !may_change;
    view! {
        <form class="machine-form" novalidate on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); if errors.with(|e| e.is_empty()) { save.dispatch(()); } }>
            <TextField id="profile-id" label="Id (a file name, e.g. worker)" value=id errors=errors readonly={readonly || existing.is_some()} />
            <TextField id="profile-name" label="Name" value=name errors=errors readonly=readonly />
            <TextField id="profile-kernel" label="Kernel" value=kernel errors=errors placeholder="/assets/fedora-coreos/kernel" readonly=readonly />
            <TextField id="profile-initrd" label="Initrds, one per line" value=initrd errors=errors rows=3 readonly=readonly />
            <TextField id="profile-args" label="Kernel arguments, one per line" value=args errors=errors rows=6 placeholder="ignition.config.url=http://pangea:8080/ignition?mac=${mac:hexhyp}" readonly=readonly />
            <TextField id="profile-ignition" label="Ignition template id" value=ignition errors=errors placeholder="worker.yaml.tmpl" readonly=readonly />
            <TextField id="profile-generic" label="Generic template id" value=generic errors=errors readonly=readonly />
            {may_change.then(|| view! {
                <div class="actions">
                    <button type="submit" class="button primary" disabled=move || save.pending().get()>"Save profile"</button>
                    <A href="/provisioning" attr:class="button">"Cancel"</A>
                </div>
            })}
        </form>
        {(may_change && existing.is_some()).then(|| {
            let id = p.id.clone();
            view! { <DeleteButton what=format!("profile {id}") delete=Action::new(move |_: &()| delete_profile(id.clone())) /> }
        })}
    }
}

#[component]
fn GroupForm(group: Option<Group>, may_change: bool) -> impl IntoView {
    let existing = group.clone();
    let g = group.unwrap_or_default();
    let id = RwSignal::new(g.id.clone());
    let name = RwSignal::new(g.name.clone());
    let profile = RwSignal::new(g.profile.clone());
    let selectors = RwSignal::new(g.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n"));
    let metadata = RwSignal::new(serde_json::to_string_pretty(&g.metadata).unwrap_or_else(|_| "{}".into()));
    let errors = RwSignal::new(BTreeMap::<&'static str, String>::new());
    let build = move || -> Result<Group, BTreeMap<&'static str, String>> {
        let mut problems = BTreeMap::new();
        let selector = pairs(&selectors.get_untracked()).unwrap_or_else(|e| {
            problems.insert("group-selectors", e);
            BTreeMap::new()
        });
        let metadata = match serde_json::from_str::<serde_json::Value>(&metadata.get_untracked()) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                problems.insert("group-metadata", "Metadata is a JSON object, e.g. {\"hostname\": \"node-1\"}.".into());
                Default::default()
            }
            Err(e) => {
                problems.insert("group-metadata", format!("Not JSON: {e}"));
                Default::default()
            }
        };
        let group = Group {
            id: id.get_untracked().trim().into(),
            name: name.get_untracked(),
            profile: profile.get_untracked().trim().into(),
            selector,
            metadata,
        };
        if let Err(e) = group.clone().normalize() {
            let field = if e.contains("selector") {
                "group-selectors"
            } else if e.contains("profile") && !e.contains("group id") {
                "group-profile"
            } else {
                "group-id"
            };
            problems.entry(field).or_insert(e);
        }
        if problems.is_empty() { Ok(group) } else { Err(problems) }
    };
    let build = StoredValue::new(build);
    Effect::new(move |_| {
        let _ = (id.get(), profile.get(), selectors.get(), metadata.get());
        errors.set(build.with_value(|b| b().err().unwrap_or_default()));
    });
    let save = Action::new(move |_: &()| {
        let group = build.with_value(|b| b());
        async move { put_group(group.map_err(|_| AppError::invalid("Fix the fields marked above."))?).await }
    });
    after_save(save, "group");
    let readonly = !may_change;
    let explain = (!g.selector.is_empty()).then(|| {
        let query = g.selector.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
        format!("/provisioning/explain?query={}", urlencode(&query))
    });
    view! {
        <form class="machine-form" novalidate on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); if errors.with(|e| e.is_empty()) { save.dispatch(()); } }>
            <TextField id="group-id" label="Id (a file name, e.g. node-0001)" value=id errors=errors readonly={readonly || existing.is_some()} />
            <TextField id="group-name" label="Name" value=name errors=errors readonly=readonly />
            <TextField id="group-profile" label="Profile id" value=profile errors=errors placeholder="worker" readonly=readonly />
            <TextField id="group-selectors" label="Selectors, key=value per line (none: the default group)" value=selectors errors=errors rows=3 placeholder="mac=52:54:00:00:00:01" readonly=readonly />
            <TextField id="group-metadata" label="Metadata for templates (JSON object)" value=metadata errors=errors rows=8 readonly=readonly />
            {may_change.then(|| view! {
                <div class="actions">
                    <button type="submit" class="button primary" disabled=move || save.pending().get()>"Save group"</button>
                    <A href="/provisioning" attr:class="button">"Cancel"</A>
                </div>
            })}
        </form>
        {explain.map(|href| view! { <p><A href=href>"What do machines of this group get?"</A></p> })}
        {(may_change && existing.is_some()).then(|| {
            let id = g.id.clone();
            view! { <DeleteButton what=format!("group {id}") delete=Action::new(move |_: &()| delete_group(id.clone())) /> }
        })}
    }
}

#[component]
fn TemplateForm(template: Option<TemplateFile>, may_change: bool) -> impl IntoView {
    let existing = template.clone();
    let t =
        template.unwrap_or(TemplateFile { kind: TemplateKind::Ignition, id: String::new(), content: String::new() });
    let kind = RwSignal::new(t.kind);
    let id = RwSignal::new(t.id.clone());
    let content = RwSignal::new(t.content.clone());
    let sample = RwSignal::new(String::new());
    let errors = RwSignal::new(BTreeMap::<&'static str, String>::new());
    // Checked on the server as it would be served, a moment after each change.
    let preview = resource(
        move || (kind.get(), id.get(), content.get(), sample.get()),
        |(kind, id, content, sample)| async move {
            let id = if id.trim().is_empty() { "unsaved.tmpl".to_string() } else { id };
            preview_template(TemplateFile { kind, id, content }, sample).await
        },
    );
    Effect::new(move |_| {
        let mut problems = BTreeMap::new();
        if let Err(e) = check_id("template", id.get().trim()) {
            problems.insert("template-id", e);
        }
        errors.set(problems);
    });
    let save = Action::new(move |_: &()| {
        let template = TemplateFile {
            kind: kind.get_untracked(),
            id: id.get_untracked().trim().into(),
            content: content.get_untracked(),
        };
        async move { put_template(template).await }
    });
    after_save(save, "template");
    let readonly = !may_change;
    view! {
        <form class="machine-form" novalidate on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); if errors.with(|e| e.is_empty()) { save.dispatch(()); } }>
            <div class="field">
                <label for="template-kind">"Kind"</label>
                <select id="template-kind" disabled={readonly || existing.is_some()}
                    on:change=move |ev| kind.set(if event_target_value(&ev) == "generic" { TemplateKind::Generic } else { TemplateKind::Ignition })>
                    <option value="ignition" selected=move || kind.get() == TemplateKind::Ignition>"Ignition: raw JSON (.ign) or Butane (any other name)"</option>
                    <option value="generic" selected=move || kind.get() == TemplateKind::Generic>"Generic text"</option>
                </select>
            </div>
            <TextField id="template-id" label="Id (a file name: worker.yaml.tmpl, default.ign)" value=id errors=errors readonly={readonly || existing.is_some()} />
            <TextField id="template-content" label="Content (Go template syntax: {{.hostname}}, {{if index . \"stage\"}}…{{end}})" value=content errors=errors rows=18 readonly=readonly />
            <TextField id="template-sample" label="Check it for the machine with these labels" value=sample errors=errors placeholder="mac=52:54:00:00:00:01" />
            <div id="template-check" aria-live="polite">
            <Suspense fallback=|| view! { <p class="hint">"Checking…"</p> }>
                {move || Suspend::new(async move {
                    match preview.await {
                        Ok(p) => match (p.problem, p.output) {
                            (Some(problem), _) => view! { <p class="alert error">{problem}</p> }.into_any(),
                            (None, Some(output)) => view! {
                                <p class="hint">{format!("Renders for group {}:", p.group.unwrap_or_default())}</p>
                                <pre class="summary-json">{output}</pre>
                            }.into_any(),
                            (None, None) => view! { <p class="hint">"Parses."</p> }.into_any(),
                        },
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            </div>
            {may_change.then(|| view! {
                <div class="actions">
                    <button type="submit" class="button primary" disabled=move || save.pending().get()>"Save template"</button>
                    <A href="/provisioning" attr:class="button">"Cancel"</A>
                </div>
            })}
        </form>
        {(may_change && existing.is_some()).then(|| {
            let (kind, id) = (t.kind, t.id.clone());
            view! { <DeleteButton what=format!("template {id}") delete=Action::new(move |_: &()| delete_template(kind, id.clone())) /> }
        })}
    }
}

/// `/provisioning/import`: a Matchbox data directory, uploaded as a folder.
#[component]
fn ImportProvisioning() -> impl IntoView {
    view! {
        <Title text="Import Matchbox data" />
        <section class="page">
            <h1>"Import Matchbox data"</h1>
            <RequirePermission permission=Permission::ChangeProvisioning what="Importing Matchbox data">
                <ImportFolder />
            </RequirePermission>
        </section>
    }
}

/// The files of a chosen folder, by path relative to it (`groups/node-0001.json`).
#[cfg(feature = "hydrate")]
async fn read_folder(ev: leptos::ev::Event) -> Result<BTreeMap<String, String>, String> {
    use wasm_bindgen::JsCast;
    let input: web_sys::HtmlInputElement = ev.target().and_then(|t| t.dyn_into().ok()).ok_or("no file input")?;
    let files = input.files().ok_or("no files chosen")?;
    let mut out = BTreeMap::new();
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        let path = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| file.name());
        // Drop the chosen folder's own name: `data/groups/a.json` → `groups/a.json`.
        let relative = path.split_once('/').map(|(_, rest)| rest.to_string()).unwrap_or(path);
        if !["profiles/", "groups/", "ignition/", "generic/"].iter().any(|d| relative.starts_with(d)) {
            continue;
        }
        let text =
            wasm_bindgen_futures::JsFuture::from(file.text()).await.map_err(|_| format!("cannot read {relative}"))?;
        out.insert(relative, text.as_string().unwrap_or_default());
    }
    Ok(out)
}

#[component]
fn ImportFolder() -> impl IntoView {
    let toasts = use_toasts();
    let files = RwSignal::new(BTreeMap::<String, String>::new());
    let outcome = RwSignal::new(None::<ImportOutcome>);
    let run = Action::new(move |dry_run: &bool| {
        let dry_run = *dry_run;
        async move { import_provisioning(files.get_untracked(), dry_run).await }
    });
    Effect::new(move |_| {
        if let Some(result) = run.value().get() {
            match result {
                Ok(o) => {
                    if o.committed {
                        toasts.success(format!(
                            "Imported {} profiles, {} groups and {} templates.",
                            o.profiles, o.groups, o.templates
                        ));
                    }
                    outcome.set(Some(o));
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
    // Browsers pick a whole folder with `webkitdirectory`, which has no typed attribute here.
    let folder_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    let on_change = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match read_folder(_ev).await {
                Ok(read) => {
                    files.set(read);
                    outcome.set(None);
                    run.dispatch(true);
                }
                Err(e) => toasts.error(e),
            }
        });
    };
    view! {
        <p>"Choose a Matchbox data directory (the folder holding profiles/, groups/, ignition/ and generic/). "
           "Every file is checked first; the import then writes all of them, or none. Assets stay files: "
           "copy them into the assets folder, or use " <code>"pangea provisioner import DIR --copy-assets"</code> "."</p>
        <div class="field">
            <label for="import-folder">"Matchbox data directory"</label>
            <input id="import-folder" type="file" multiple node_ref=folder_input on:change=on_change />
        </div>
        {move || outcome.get().map(|o| {
            let can_import = o.errors.is_empty() && !o.committed;
            view! {
                <div role="status">
                    <p>{format!("{} profiles, {} groups, {} templates{}", o.profiles, o.groups, o.templates, if o.committed { ": imported." } else { "." })}</p>
                    {(!o.errors.is_empty()).then(|| view! {
                        <h2>"Errors: nothing can be imported until they are fixed"</h2>
                        <ul class="findings">{o.errors.iter().map(|f| view! { <li><span class="mono">{f.file.clone()}</span>": "{f.message.clone()}</li> }).collect_view()}</ul>
                    })}
                    {(!o.warnings.is_empty()).then(|| view! {
                        <h2>"Warnings"</h2>
                        <ul class="findings">{o.warnings.iter().map(|f| view! { <li><span class="mono">{f.file.clone()}</span>": "{f.message.clone()}</li> }).collect_view()}</ul>
                    })}
                    {can_import.then(|| view! {
                        <button type="button" class="button primary" disabled=move || run.pending().get() on:click=move |_| { run.dispatch(false); }>"Import all"</button>
                    })}
                </div>
            }
        })}
    }
}
