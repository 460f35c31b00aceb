//! `/machines/import`: paste or upload a list, preview every line, then import all or nothing.

use crate::access::Permission;
use crate::account::RequirePermission;
use crate::drawn::{ShownJob, ShownProgress, clicked_button, data, follow};
use crate::error::AppError;
use crate::machines::ImportFormat;
use crate::machines::server_fns::{commit_import, poll_import, start_import};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;

/// `/machines/import`, for people who may change machines.
#[component]
pub fn ImportMachines() -> impl IntoView {
    view! {
        <Title text="Import machines" />
        <section class="page">
            <h1>"Import machines"</h1>
            <RequirePermission permission=Permission::ChangeMachines what="Importing machines">
                <ImportForm />
            </RequirePermission>
        </section>
    }
}

/// The list, then its preview as the server draws it (`machines::drawn::import`): the commit
/// button there carries `data-commit`.
#[component]
fn ImportForm() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    let toasts = crate::components::toast::use_toasts();
    let text = RwSignal::new(String::new());
    let format = RwSignal::new(ImportFormat::Auto);
    let job = RwSignal::new(None::<String>);
    let shown = ShownJob::new(None);
    let working = RwSignal::new(false);
    // Follows the job until it settles; `step` starts it (checking) or commits it.
    let run = move |id: String, step: Result<(), AppError>| async move {
        match step {
            Ok(()) => follow(|| poll_import(id.clone()), shown, 200).await,
            Err(e) => shown.set(Some(Err(e))),
        }
        working.set(false);
    };

    let preview = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            shown.set(Some(Err(AppError::invalid("Paste a list or choose a file first."))));
            return;
        }
        working.set(true);
        shown.set(None);
        spawn_local(async move {
            match start_import(format.get_untracked(), body).await {
                Ok(id) => {
                    job.set(Some(id.clone()));
                    run(id, Ok(())).await;
                }
                Err(e) => run(String::new(), Err(e)).await,
            }
        });
    };
    let commit = move |ev: leptos::ev::MouseEvent| {
        let (Some(_), Some(id)) = (clicked_button(&ev, data::COMMIT_IMPORT), job.get_untracked()) else { return };
        working.set(true);
        spawn_local(async move { run(id.clone(), commit_import(id).await).await });
    };
    let on_file = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        spawn_local(async move {
            match crate::pages::read_file(_ev).await {
                Some(content) => text.set(content),
                None => toasts.error("That file could not be read as text."),
            }
        });
    };

    view! {
        <div class="import">
            <p class="hint">
                "Paste or upload a CSV with a header line (" <code>"mac,hostname,role,labels,cluster,uuid,serial"</code>
                "; labels as " <code>"k=v,k2=v2"</code> "; BMCs with " <code>"bmc_url,bmc_username,bmc_password,bmc_verify"</code> "), a Tectonic " <code>"terraform.tfvars"</code>
                " or a Typhoon " <code>"terraform.tfvars"</code> ". You see every line before anything is written, and the import writes all lines or none. No MACs written down? " <a href="/machines/discover">"Discover them from the BMCs"</a> "."
            </p>
            <form class="import-form" on:submit=preview>
                <div class="field">
                    <label for="import-format">"Format"</label>
                    <select id="import-format" on:change=move |ev| format.set(ImportFormat::parse(&event_target_value(&ev)).unwrap_or_default())>
                        {ImportFormat::ALL.into_iter().map(|f| view! { <option value=f.as_str()>{f.label()}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="import-file">"File"</label>
                    <input id="import-file" type="file" accept=".csv,.tfvars,.txt,text/csv,text/plain" on:change=on_file />
                </div>
                <div class="field">
                    <label for="import-text">"List"</label>
                    <textarea id="import-text" rows="10" spellcheck="false" class="mono"
                        prop:value=move || text.get() on:input=move |ev| { text.set(event_target_value(&ev)); shown.set(None); job.set(None); }>
                    </textarea>
                </div>
                <div class="actions">
                    <button type="submit" class="button primary" disabled=move || working.get()>"Preview"</button>
                    <A href="/machines" attr:class="button">"Back to machines"</A>
                </div>
            </form>
            <div class="import-state" aria-live="polite" on:click=commit><ShownProgress shown /></div>
        </div>
    }
}
