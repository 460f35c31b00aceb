//! `/audit` and `/audit/:id`: who did what, filtered, paged and exported. Admins only.

use crate::audit::{AuditEntry, AuditQuery, get_audit_entry, list_audit};
use crate::components::get_form::GetForm;
use crate::components::messages::ErrorBlock;
use crate::components::text::urlencode;
use crate::resource::resource;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

/// The filters as query-string pairs (without the cursor).
fn filter_pairs(q: &AuditQuery) -> Vec<String> {
    [
        ("actor", &q.actor),
        ("action", &q.action),
        ("target", &q.target),
        ("outcome", &q.outcome),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencode(v))))
    .collect()
}

#[component]
pub fn AuditLog() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        let p = params.read();
        let text = |k: &str| p.get(k).filter(|v| !v.trim().is_empty());
        AuditQuery {
            actor: text("actor"),
            action: text("action"),
            target: text("target"),
            outcome: text("outcome"),
            from: text("from"),
            to: text("to"),
            before: p.get("before").and_then(|b| b.parse().ok()),
            limit: None,
        }
    });
    let page = resource(move || query.get(), list_audit);
    let export = move |format: &str| {
        let mut pairs = filter_pairs(&query.get());
        pairs.push(format!("format={format}"));
        format!("/api/v1/audit?{}", pairs.join("&"))
    };
    let value = move |f: fn(&AuditQuery) -> Option<String>| move || f(&query.get()).unwrap_or_default();
    view! {
        <Title text="Audit log" />
        <section class="page">
            <div class="page-head">
                <h1>"Audit log"</h1>
                <div class="actions">
                    <a class="button" href=move || export("csv") download="audit.csv" rel="external">"Export CSV"</a>
                    <a class="button" href=move || export("ndjson") download="audit.ndjson" rel="external">"Export NDJSON"</a>
                </div>
            </div>
            <GetForm action="/audit" attr:class="filters">
                <div class="field"><label for="audit-actor">"Actor"</label>
                    <input id="audit-actor" name="actor" placeholder="alice@example.com" prop:value=value(|q| q.actor.clone()) /></div>
                <div class="field"><label for="audit-action">"Action"</label>
                    <input id="audit-action" name="action" placeholder="machine.* or session.login" prop:value=value(|q| q.action.clone()) /></div>
                <div class="field"><label for="audit-target">"Target"</label>
                    <input id="audit-target" name="target" placeholder="id or name" prop:value=value(|q| q.target.clone()) /></div>
                <div class="field"><label for="audit-outcome">"Outcome"</label>
                    <select id="audit-outcome" name="outcome">
                        <option value="">"Any"</option>
                        {OUTCOMES.into_iter().map(|o| view! {
                            <option value=o selected=move || query.get().outcome.as_deref() == Some(o)>{o}</option>
                        }).collect_view()}
                    </select></div>
                <div class="field"><label for="audit-from">"From"</label>
                    <input id="audit-from" name="from" placeholder="2026-11-25" prop:value=value(|q| q.from.clone()) /></div>
                <div class="field"><label for="audit-to">"To"</label>
                    <input id="audit-to" name="to" placeholder="2026-11-26T12:00" prop:value=value(|q| q.to.clone()) /></div>
                <div class="field"><span class="label-spacer" aria-hidden="true">" "</span>
                    <button type="submit" class="button primary">"Filter"</button></div>
            </GetForm>
            <Transition fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(result) => {
                            let older = result.next.map(|before| {
                                let mut pairs = filter_pairs(&query.get_untracked());
                                pairs.push(format!("before={before}"));
                                format!("/audit?{}", pairs.join("&"))
                            });
                            let newest = query.get_untracked().before.is_some().then(|| {
                                format!("/audit?{}", filter_pairs(&query.get_untracked()).join("&"))
                            });
                            view! {
                                <AuditTable entries=result.items.clone() />
                                <nav class="pager" aria-label="Pages">
                                    {newest.map(|href| view! { <A href=href attr:class="button">"Newest"</A> })}
                                    {older.map(|href| view! { <A href=href attr:class="button">"Older entries"</A> })}
                                </nav>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorBlock error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <div class="empty">"No audit records match these filters."</div> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="audit">
                <thead><tr>
                    <th scope="col">"#"</th><th scope="col">"Time (UTC)"</th><th scope="col">"Actor"</th>
                    <th scope="col">"Action"</th><th scope="col">"Target"</th><th scope="col">"Outcome"</th>
                </tr></thead>
                <tbody>
                    {entries.into_iter().map(|e| view! {
                        <tr class:error=e.outcome != "success">
                            <td><A href=format!("/audit/{}", e.id)>{e.id}</A></td>
                            <td class="nowrap"><time datetime=e.at.clone()>{e.at.get(..19).unwrap_or_default().replace('T', " ")}</time></td>
                            <td>{e.actor.clone()}</td>
                            <td class="mono">{e.action.clone()}</td>
                            <td>{e.target_kind.clone()} " " {if e.target_name.is_empty() { e.target_id.clone() } else { e.target_name.clone() }}</td>
                            <td><span class="badge">{e.outcome.clone()}</span></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
pub fn AuditDetail() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let entry = resource(id, |id| async move {
        match id {
            Some(id) => get_audit_entry(id).await,
            None => Err(crate::error::AppError::not_found("Audit record ids are numbers.")),
        }
    });
    view! {
        <Title text="Audit record" />
        <section class="page narrow">
            <Suspense fallback=|| view! { <div class="skeleton-row"></div> }>
                {move || Suspend::new(async move {
                    match entry.await {
                        Ok(e) => {
                            let summary = serde_json::from_str::<serde_json::Value>(&e.summary)
                                .and_then(|v| serde_json::to_string_pretty(&v))
                                .unwrap_or_else(|_| e.summary.clone());
                            let rows = [
                                ("Time (UTC)", e.at.clone()), ("Actor", e.actor.clone()), ("Signed in with", e.auth_method.clone()),
                                ("Role", e.roles.clone()), ("Action", e.action.clone()), ("Target kind", e.target_kind.clone()),
                                ("Target id", e.target_id.clone()), ("Target name", e.target_name.clone()),
                                ("Outcome", e.outcome.clone()), ("IP address", e.ip.clone()), ("User agent", e.user_agent.clone()),
                                ("Request id", e.request_id.clone()), ("Previous hash", e.prev_hash.clone()), ("Hash", e.hash.clone()),
                            ];
                            view! {
                                <h1>{format!("Audit record {}", e.id)}</h1>
                                <dl class="details">
                                    {rows.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd class:mono=k.contains("hash")>{v}</dd> }).collect_view()}
                                </dl>
                                <h2>"What changed"</h2>
                                <pre class="summary-json">{summary}</pre>
                                <p><A href="/audit">"Back to the audit log"</A></p>
                            }.into_any()
                        }
                        Err(e) => {
                            crate::error::set_response_status(e.status());
                            view! { <h1>"Audit record"</h1><ErrorBlock error=e /> }.into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}
