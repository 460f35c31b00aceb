//! A group's page: its form.

use super::*;

#[component]
pub(super) fn GroupForm(group: Option<Group>, may_change: bool) -> impl IntoView {
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
