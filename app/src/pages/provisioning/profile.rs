//! A profile's page: its form.

use super::*;

#[component]
pub(super) fn ProfileForm(profile: Option<Profile>, may_change: bool) -> impl IntoView {
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
