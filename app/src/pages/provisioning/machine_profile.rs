//! On a machine's page: the profile it boots.

use super::*;

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
