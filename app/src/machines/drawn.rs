//! An import's progress drawn on the server (see `crate::drawn`). Only compiled for the server.

use super::{ImportProgress, ImportReport, MachineClass};
use crate::drawn::{Html, Progress, data};
use leptos::attr::custom::custom_attribute;
use leptos::prelude::*;

/// Where an import stands: a progress bar while its lines are checked or written, the preview
/// of every line (with a button whose `data-commit` the page commits, when every line is good),
/// what it wrote, or why it failed.
pub fn import(progress: ImportProgress) -> Progress {
    let running = matches!(progress, ImportProgress::Checking { .. } | ImportProgress::Committing { .. });
    let bar = |verb: &str, done: u32, total: u32| {
        view! {
            <div class="progress">
                <label for="import-progress">{format!("{verb}: {done} of {total} lines")}</label>
                <progress id="import-progress" max=total.max(1) value=done></progress>
            </div>
        }
        .into_any()
    };
    let html = Html::of(match progress {
        ImportProgress::Checking { done, total } => bar("Checking", done, total),
        ImportProgress::Committing { done, total } => bar("Writing", done, total),
        ImportProgress::Previewed { report } => preview(report),
        ImportProgress::Committed { report } => view! {
            <div class="alert success">{format!("Imported {} machines.", report.creatable)} " " <a href="/machines">"See machines"</a></div>
        }
        .into_any(),
        ImportProgress::Failed { error } => view! { <div class="alert error" role="alert">{error.to_string()}</div> }.into_any(),
    });
    Progress { html, running }
}

fn preview(report: ImportReport) -> AnyView {
    let ok = report.errors == 0 && report.creatable > 0;
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    let summary = format!(
        "{} format: {} machine{} to create, {} line{} with errors.",
        report.format.as_str(),
        report.creatable,
        plural(report.creatable),
        report.errors,
        plural(report.errors),
    );
    let rows = report.lines.into_iter().map(|l| {
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
    });
    let commit = if ok {
        let label = format!("Import {} machines", report.creatable);
        view! { <button type="button" class="button primary">{label}</button> }
            .add_any_attr(custom_attribute(data::COMMIT_IMPORT, ""))
            .into_any()
    } else {
        view! { <p>"Nothing will be written until every line is fixed."</p> }.into_any()
    };
    view! {
        <div class="preview">
            <p class="summary" class:error=!ok>{summary}</p>
            {commit}
            <div class="table-wrap">
                <table class="import-lines">
                    <thead><tr><th scope="col">"Line"</th><th scope="col">"MAC"</th><th scope="col">"Host name"</th><th scope="col">"Role"</th><th scope="col">"Result"</th></tr></thead>
                    <tbody>{rows.collect_view()}</tbody>
                </table>
            </div>
        </div>
    }
    .into_any()
}

/// The machine classes: each with its search, how many machines match it (a link to them), its
/// description and last change; a Delete button (`data-delete-class`) for those who may change
/// them.
pub fn classes(classes: Vec<MachineClass>, may_change: bool) -> Progress {
    let rows = classes
        .into_iter()
        .map(|c| {
            let href = format!("/machines?class={}", crate::components::text::urlencode(&c.name));
            let delete = may_change.then(|| {
                view! { <button type="button" class="button danger" aria-label=format!("Delete class {}", c.name)>"Delete"</button> }
                    .add_any_attr(custom_attribute(data::DELETE_CLASS, c.name.clone()))
            });
            view! { <tr>
                <td><a href=href>{c.name}</a></td><td><code>{c.query}</code></td><td>{c.members}</td>
                <td>{c.description}</td><td class="nowrap">{c.updated_at}</td><td>{delete}</td>
            </tr> }
        })
        .collect_view();
    let html =
        Html::of(crate::drawn::table(&["Class", "Search", "Machines", "Description", "Changed", "Actions"], rows));
    Progress { html, running: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use crate::machines::{ImportFormat, ImportLine};

    fn report(errors: Vec<String>) -> ImportReport {
        let failed = u32::from(!errors.is_empty());
        ImportReport {
            format: ImportFormat::ALL[0],
            lines: vec![ImportLine {
                line: 2,
                mac: Some("52:54:00:00:00:01".into()),
                hostname: Some("<n1>".into()),
                role: None,
                errors,
            }],
            creatable: 1 - failed,
            errors: failed,
            committed: false,
        }
    }

    #[test]
    fn an_import_shows_its_progress_its_preview_and_a_commit_button_only_when_every_line_is_good() {
        let Progress { html, running } = import(ImportProgress::Checking { done: 1, total: 3 });
        assert!(running && html.into_string().contains("Checking: 1 of 3 lines"));
        let Progress { html, running } = import(ImportProgress::Previewed { report: report(Vec::new()) });
        let html = html.into_string();
        assert!(!running);
        assert!(html.contains("1 machine to create, 0 lines with errors.") && html.contains("data-commit"), "{html}");
        assert!(html.contains("<td>&lt;n1&gt;</td>") && html.contains("will be created"), "{html}");
        let Progress { html, .. } = import(ImportProgress::Previewed { report: report(vec!["bad MAC".into()]) });
        let html = html.into_string();
        assert!(!html.contains("data-commit") && html.contains("Nothing will be written"), "{html}");
        assert!(html.contains(r#"<tr class="error">"#) && html.contains("<td>bad MAC</td>"), "{html}");
        let Progress { html, running } = import(ImportProgress::Failed { error: AppError::invalid("no <list>") });
        assert!(!running && html.into_string().contains("no &lt;list&gt;"));
    }
}
