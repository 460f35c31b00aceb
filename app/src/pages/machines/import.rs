//! `/machines/import`: paste or upload a list, preview every line, then import all or nothing.

use crate::access::Permission;
use crate::account::RequirePermission;
use crate::components::toast::use_toasts;
use crate::error::AppError;
use crate::machines::server_fns::{commit_import, poll_import, start_import};
use crate::machines::{ImportFormat, ImportProgress, ImportReport};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;

/// Waits before asking the server again how far an import has got.
async fn pause() {
    #[cfg(feature = "hydrate")]
    gloo_timers::future::TimeoutFuture::new(200).await;
}

/// Follows a job until it settles, publishing each step.
async fn follow(job: String, state: RwSignal<Option<ImportProgress>>) {
    loop {
        let progress = poll_import(job.clone()).await.unwrap_or_else(|error| ImportProgress::Failed { error });
        let settled = !matches!(progress, ImportProgress::Checking { .. } | ImportProgress::Committing { .. });
        state.set(Some(progress));
        if settled {
            return;
        }
        pause().await;
    }
}

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

#[component]
fn ImportForm() -> impl IntoView {
    let toasts = use_toasts();
    let text = RwSignal::new(String::new());
    let format = RwSignal::new(ImportFormat::Auto);
    let job = RwSignal::new(None::<String>);
    let state = RwSignal::new(None::<ImportProgress>);
    let busy = move || matches!(state.get(), Some(ImportProgress::Checking { .. } | ImportProgress::Committing { .. }));

    let preview = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            state
                .set(Some(ImportProgress::Failed { error: AppError::invalid("Paste a list or choose a file first.") }));
            return;
        }
        state.set(Some(ImportProgress::Checking { done: 0, total: 0 }));
        spawn_local(async move {
            match start_import(format.get_untracked(), body).await {
                Ok(id) => {
                    job.set(Some(id.clone()));
                    follow(id, state).await;
                }
                Err(error) => state.set(Some(ImportProgress::Failed { error })),
            }
        });
    };
    let commit = move |_| {
        let Some(id) = job.get_untracked() else { return };
        state.set(Some(ImportProgress::Committing { done: 0, total: 0 }));
        spawn_local(async move {
            match commit_import(id.clone()).await {
                Ok(()) => follow(id, state).await,
                Err(error) => state.set(Some(ImportProgress::Failed { error })),
            }
        });
    };
    Effect::new(move |_| {
        if let Some(ImportProgress::Committed { report }) = state.get() {
            toasts.success(format!("Imported {} machines.", report.creatable));
        }
    });
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
                "; labels as " <code>"k=v,k2=v2"</code> "), a Tectonic " <code>"terraform.tfvars"</code>
                " or a Typhoon " <code>"terraform.tfvars"</code> ". You see every line before anything is written, and the import writes all lines or none."
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
                        prop:value=move || text.get() on:input=move |ev| { text.set(event_target_value(&ev)); state.set(None); job.set(None); }>
                    </textarea>
                </div>
                <div class="actions">
                    <button type="submit" class="button primary" disabled=busy>"Preview"</button>
                    <A href="/machines" attr:class="button">"Back to machines"</A>
                </div>
            </form>
            <div class="import-state" aria-live="polite">
                {move || state.get().map(|s| match s {
                    ImportProgress::Checking { done, total } => view! { <Progress verb="Checking" done total /> }.into_any(),
                    ImportProgress::Committing { done, total } => view! { <Progress verb="Writing" done total /> }.into_any(),
                    ImportProgress::Previewed { report } => view! { <Preview report on_commit=commit /> }.into_any(),
                    ImportProgress::Committed { report } => view! {
                        <div class="alert success">{format!("Imported {} machines.", report.creatable)} " " <A href="/machines">"See machines"</A></div>
                    }.into_any(),
                    ImportProgress::Failed { error } => view! { <div class="alert error" role="alert">{error.to_string()}</div> }.into_any(),
                })}
            </div>
        </div>
    }
}

#[component]
fn Progress(verb: &'static str, done: u32, total: u32) -> impl IntoView {
    view! {
        <div class="progress">
            <label for="import-progress">{format!("{verb}: {done} of {total} lines")}</label>
            <progress id="import-progress" max=total.max(1) value=done></progress>
        </div>
    }
}

#[component]
fn Preview<F>(report: ImportReport, on_commit: F) -> impl IntoView
where
    F: Fn(leptos::ev::MouseEvent) + Clone + Send + Sync + 'static,
{
    let ok = report.errors == 0 && report.creatable > 0;
    let summary = format!(
        "{} format: {} machine{} to create, {} line{} with errors.",
        report.format.as_str(),
        report.creatable,
        if report.creatable == 1 { "" } else { "s" },
        report.errors,
        if report.errors == 1 { "" } else { "s" },
    );
    view! {
        <div class="preview">
            <p class="summary" class:error=!ok>{summary}</p>
            {if ok {
                view! { <button type="button" class="button primary" on:click=on_commit>{format!("Import {} machines", report.creatable)}</button> }.into_any()
            } else {
                view! { <p>"Nothing will be written until every line is fixed."</p> }.into_any()
            }}
            <div class="table-wrap">
                <table class="import-lines">
                    <thead><tr><th scope="col">"Line"</th><th scope="col">"MAC"</th><th scope="col">"Host name"</th><th scope="col">"Role"</th><th scope="col">"Result"</th></tr></thead>
                    <tbody>
                        {report.lines.into_iter().map(|l| {
                            let failed = !l.errors.is_empty();
                            view! {
                                <tr class:error=failed>
                                    <td>{l.line}</td>
                                    <td class="mono">{l.mac}</td>
                                    <td>{l.hostname}</td>
                                    <td>{l.role.map(|r| r.as_str())}</td>
                                    <td>{if failed { l.errors.join(" ") } else { "will be created".to_string() }}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </div>
    }
}
