//! A template's page: its form, checked as it is typed.

use super::*;

#[component]
pub(super) fn TemplateForm(template: Option<TemplateFile>, may_change: bool) -> impl IntoView {
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
