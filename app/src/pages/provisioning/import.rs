//! `/provisioning/import`: a Matchbox data directory.

use super::*;

/// `/provisioning/import`: a Matchbox data directory, uploaded as a folder.
#[component]
pub(super) fn ImportProvisioning() -> impl IntoView {
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
