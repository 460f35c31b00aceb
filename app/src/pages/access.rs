//! `/access`: your sessions for everyone; role bindings, API tokens and how people sign in for
//! admins. Every change here goes through the access service, which audits it.

use crate::access::server_fns::{
    bind_role, create_token, list_bindings, list_tokens, load_access_overview, my_sessions, revoke_token, unbind_role,
};
use crate::access::{ConsoleRole, NewToken};
use crate::components::messages::ErrorBlock;
use crate::components::text::short_time;
use crate::components::toast::{toast_outcome, use_toasts};
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;

/// The pages not kept in an area of their own, in one lazily loaded area: the home page `/`,
/// `/access`, `/audit`, `/audit/:id`, the pages reached from the machine list
/// (`/machines/import`, `/machines/power-runs`, `/machines/classes`, `/machines/discover`) and
/// cluster creation (`/clusters/create`), whose code the lists' own first loads need not carry
/// (the list's and the clusters' areas are at their first-load budget, and an area of its own
/// re-cuts the shared code).
#[component]
pub fn OtherPages() -> impl IntoView {
    let path = leptos_router::hooks::use_location().pathname.get_untracked();
    match path.trim_end_matches('/') {
        "" => view! { <super::home::Home /> }.into_any(),
        "/access" => view! { <AccessPage /> }.into_any(),
        "/audit" => view! { <super::audit::AuditLog /> }.into_any(),
        "/machines/power-runs" => view! { <super::machines::power_runs::PowerRuns /> }.into_any(),
        "/machines/classes" => view! { <super::machines::classes::MachineClasses /> }.into_any(),
        "/machines/import" => view! { <super::machines::import::ImportMachines /> }.into_any(),
        "/machines/discover" => view! { <super::machines::discover::DiscoverByBmc /> }.into_any(),
        "/clusters/create" => view! { <super::clusters::create::CreateCluster /> }.into_any(),
        "/clusters/rolling" => view! { <super::clusters::rolling::RollingOperations /> }.into_any(),
        _ => view! { <super::audit::AuditDetail /> }.into_any(),
    }
}

#[component]
pub fn AccessPage() -> impl IntoView {
    let me = resource(|| (), |_| crate::account::current_user());
    view! {
        <Title text="Access" />
        <section class="page">
            <h1>"Access"</h1>
            <Suspense fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    let admin = me.await.ok().flatten().is_some_and(|m| m.may(crate::access::Permission::ManageAccess));
                    view! {
                        {admin.then(|| view! { <Overview /> <Bindings /> <Tokens /> })}
                        <Sessions />
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The roles, least first, as `<option>`s.
#[component]
fn RoleOptions() -> impl IntoView {
    [ConsoleRole::Viewer, ConsoleRole::Operator, ConsoleRole::Admin]
        .into_iter()
        .map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> })
        .collect_view()
}

#[component]
fn Overview() -> impl IntoView {
    let overview = resource(|| (), |_| load_access_overview());
    view! {
        <h2>"Sign-in"</h2>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(o) => view! {
                        <ul class="facts">
                            <li>"Single sign-on: " <strong>{if o.single_sign_on { "configured" } else { "not configured" }}</strong></li>
                            <li>"Local admin sign-in: " <strong>{if o.local_login_enabled { "enabled" } else { "disabled" }}</strong>
                                {format!(" (last used: {})", o.local_admin_last_login.unwrap_or_else(|| "never".into()))}</li>
                        </ul>
                    }.into_any(),
                    Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Bindings() -> impl IntoView {
    let bindings = resource(|| (), |_| list_bindings());
    let kind = RwSignal::new("group".to_string());
    let subject = RwSignal::new(String::new());
    let role = RwSignal::new(ConsoleRole::Viewer);
    let cluster = RwSignal::new(String::new());
    let bind = Action::new(|(k, s, r, c): &(String, String, ConsoleRole, String)| {
        bind_role(k.clone(), s.clone(), *r, (!c.trim().is_empty()).then(|| c.clone()))
    });
    let unbind = Action::new(|id: &i64| unbind_role(*id));
    toast_outcome(
        bind,
        |_| "Binding saved; it applies from the next request.".into(),
        move || {
            subject.set(String::new());
            bindings.refetch();
        },
    );
    toast_outcome(unbind, |_| "Binding removed.".into(), move || bindings.refetch());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        bind.dispatch((kind.get_untracked(), subject.get_untracked(), role.get_untracked(), cluster.get_untracked()));
    };
    view! {
        <h2>"Role bindings"</h2>
        <p class="hint">"Bind IdP groups (or single users) to a console role, everywhere or on one cluster only (viewer or operator there). A person gets the highest role bound to them or any of their groups."</p>
        <form class="inline-form bind-form" on:submit=submit>
            <label for="bind-kind">"Kind"</label>
            <select id="bind-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                <option value="group">"group"</option>
                <option value="user">"user"</option>
            </select>
            <label for="bind-subject">"Group or user"</label>
            <input id="bind-subject" required placeholder="platform-team" prop:value=move || subject.get()
                on:input=move |ev| subject.set(event_target_value(&ev)) />
            <label for="bind-role">"Role"</label>
            <select id="bind-role" on:change=move |ev| role.set(ConsoleRole::parse(&event_target_value(&ev)).unwrap_or(ConsoleRole::Viewer))>
                <RoleOptions />
            </select>
            <label for="bind-cluster">"Cluster (empty: all)"</label>
            <input id="bind-cluster" placeholder="edge-1" prop:value=move || cluster.get()
                on:input=move |ev| cluster.set(event_target_value(&ev)) />
            <button type="submit" class="button primary">"Bind role"</button>
        </form>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match bindings.await {
                    Ok(list) => view! {
                        <div class="table-wrap"><table class="bindings">
                            <thead><tr><th scope="col">"Kind"</th><th scope="col">"Group or user"</th><th scope="col">"Role"</th><th scope="col">"Cluster"</th><th scope="col">"By"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|b| view! {
                                    <tr>
                                        <td>{b.subject_kind.clone()}</td><td>{b.subject.clone()}</td><td>{b.role.as_str()}</td><td>{if b.cluster.is_empty() { "all".to_string() } else { b.cluster.clone() }}</td><td>{b.created_by.clone()}</td>
                                        <td><button type="button" class="button small" aria-label=format!("Remove binding of {}", b.subject)
                                            on:click=move |_| { unbind.dispatch(b.id); }>"Remove"</button></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                    Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Tokens() -> impl IntoView {
    let toasts = use_toasts();
    let tokens = resource(|| (), |_| list_tokens());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(ConsoleRole::Viewer);
    let days = RwSignal::new(Some(90u32));
    let cluster_user = RwSignal::new(String::new());
    let cluster_groups = RwSignal::new(String::new());
    let created = RwSignal::new(None::<NewToken>);
    let create = Action::new(|(n, r, d, user, groups): &(String, ConsoleRole, Option<u32>, String, String)| {
        let groups = groups.split(',').map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
        create_token(n.clone(), *r, *d, Some(user.clone()), Some(groups))
    });
    let revoke = Action::new(|id: &i64| revoke_token(*id));
    Effect::new(move |_| {
        if let Some(result) = create.value().get() {
            match result {
                Ok(token) => {
                    created.set(Some(token));
                    name.set(String::new());
                    cluster_user.set(String::new());
                    cluster_groups.set(String::new());
                    tokens.refetch();
                }
                Err(e) => toasts.error(e.to_string()),
            }
        }
    });
    toast_outcome(revoke, |_| "Token revoked.".into(), move || tokens.refetch());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch((
            name.get_untracked(),
            role.get_untracked(),
            days.get_untracked(),
            cluster_user.get_untracked(),
            cluster_groups.get_untracked(),
        ));
    };
    view! {
        <h2>"API tokens"</h2>
        <p class="hint">"Tokens authenticate scripts on /api/v1 as " <code>"Authorization: Bearer …"</code> ". Only a hash is stored: the token is shown once."</p>
        <form class="inline-form token-form" on:submit=submit>
            <label for="token-name">"Token name"</label>
            <input id="token-name" required placeholder="ci-deploy" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            <label for="token-role">"Token role"</label>
            <select id="token-role" on:change=move |ev| role.set(ConsoleRole::parse(&event_target_value(&ev)).unwrap_or(ConsoleRole::Viewer))>
                <RoleOptions />
            </select>
            <label for="token-expiry">"Expires"</label>
            <select id="token-expiry" on:change=move |ev| days.set(event_target_value(&ev).parse().ok())>
                <option value="90">"in 90 days"</option>
                <option value="30">"in 30 days"</option>
                <option value="365">"in a year"</option>
                <option value="never">"never"</option>
            </select>
            <label for="token-cluster-user">"Acts in clusters as"</label>
            <input id="token-cluster-user" placeholder="pangea:token:NAME" aria-describedby="token-cluster-hint"
                prop:value=move || cluster_user.get() on:input=move |ev| cluster_user.set(event_target_value(&ev)) />
            <label for="token-cluster-groups">"in groups"</label>
            <input id="token-cluster-groups" placeholder="pangea:api-tokens" aria-describedby="token-cluster-hint"
                prop:value=move || cluster_groups.get() on:input=move |ev| cluster_groups.set(event_target_value(&ev)) />
            <button type="submit" class="button primary">"Create token"</button>
            <p id="token-cluster-hint" class="hint">"Node actions in clusters impersonate this Kubernetes user and its groups (comma-separated). Empty: pangea:token:NAME in the group pangea:api-tokens."</p>
        </form>
        {move || created.get().map(|t| view! {
            <div class="alert success new-token" role="status">
                <p>{format!("Token \"{}\" created. Copy it now; it will not be shown again:", t.info.name)}</p>
                <code class="token-value">{t.token.clone()}</code>
            </div>
        })}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match tokens.await {
                    Ok(list) => view! {
                        <div class="table-wrap"><table class="tokens">
                            <thead><tr><th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col">"In clusters"</th><th scope="col">"Created"</th><th scope="col">"Expires"</th><th scope="col">"Last used"</th><th scope="col">"State"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|t| {
                                    let id = t.id;
                                    view! {
                                        <tr>
                                            <td>{t.name.clone()}</td><td>{t.role.as_str()}</td>
                                            <td>{match &t.cluster_as {
                                                Some(c) if c.groups.is_empty() => c.user.clone(),
                                                Some(c) => format!("{} ({})", c.user, c.groups.join(", ")),
                                                None => format!("pangea:token:{}", t.name),
                                            }}</td>
                                            <td class="nowrap">{short_time(&t.created_at)}</td>
                                            <td class="nowrap">{t.expires_at.as_deref().map_or("never".into(), short_time)}</td>
                                            <td class="nowrap">{t.last_used_at.as_deref().map_or("never".into(), short_time)}</td>
                                            <td>{if t.revoked { "revoked" } else { "active" }}</td>
                                            <td>{(!t.revoked).then(|| view! {
                                                <button type="button" class="button small danger" aria-label=format!("Revoke token {}", t.name)
                                                    on:click=move |_| { revoke.dispatch(id); }>"Revoke"</button>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                    Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Sessions() -> impl IntoView {
    let sessions = resource(|| (), |_| my_sessions());
    view! {
        <h2>"Your sessions"</h2>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match sessions.await {
                    Ok(list) => view! {
                        <div class="table-wrap"><table class="sessions">
                            <thead><tr><th scope="col">"Signed in"</th><th scope="col">"From"</th><th scope="col">"Browser"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|s| view! {
                                    <tr><td class="nowrap">{short_time(&s.created_at)}</td><td>{s.ip}</td><td>{s.user_agent}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                    Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                }
            })}
        </Suspense>
        <form method="post" action="/auth/logout-everywhere" class="danger-zone">
            <button type="submit" class="button danger">"Sign out everywhere"</button>
        </form>
    }
}
