//! The clusters' tables and facts, drawn on the server (see `crate::drawn`): the cluster list, a
//! cluster's health, the node and pod tables with their page links, and a node's facts. Only
//! compiled for the server.

use super::{
    Cluster, ClusterHealth, Connection, DEFAULT_PAGE, DrainProgress, NodeDetail, NodeQuery, NodeRow, Page, PodQuery,
    PodRow,
};
use crate::components::text::urlencode;
use crate::drawn::{Html, Progress, data, table};
use leptos::attr::custom::custom_attribute;
use leptos::prelude::*;

fn connection_badge(health: &ClusterHealth) -> impl IntoView + use<> {
    let (label, class, title) = match &health.connection {
        Some(Connection::Live) => ("live", "badge ok", String::new()),
        Some(Connection::Reconnecting { reason }) => ("reconnecting", "badge warn", reason.clone()),
        Some(c) => (c.label(), "badge", String::new()),
        None => ("not watched", "badge warn", String::new()),
    };
    view! { <span class=class title=title>{label}</span> }
}

/// The control plane's checks in words: unreachable, all passing, or the failing ones named.
fn control_plane(health: &ClusterHealth) -> String {
    let failing: Vec<&str> = health.readyz.iter().filter(|r| !r.ok).map(|r| r.name.as_str()).collect();
    match (&health.unreachable, health.readyz.is_empty(), failing.is_empty()) {
        (Some(reason), _, _) => reason.clone(),
        (None, true, _) => "not checked yet".into(),
        (None, false, true) => format!("all {} checks pass", health.readyz.len()),
        (None, false, false) => format!("failing: {}", failing.join(", ")),
    }
}

fn phases(health: &ClusterHealth) -> String {
    if health.pods_by_phase.is_empty() {
        return "none".into();
    }
    health.pods_by_phase.iter().map(|(phase, n)| format!("{n} {phase}")).collect::<Vec<_>>().join(", ")
}

/// `/clusters`'s table.
pub fn cluster_table(clusters: Vec<Cluster>) -> Html {
    if clusters.is_empty() {
        return Html::of(view! {
            <div class="empty">"No cluster is registered yet. An admin adds one with its API server's address, CA and Pangea's credentials, or from a kubeconfig."</div>
        });
    }
    let row = |c: Cluster| {
        view! {
            <tr>
                <td><a href=format!("/clusters/{}", urlencode(&c.name))>{c.name.clone()}</a></td>
                <td class="mono">{c.api_url}</td>
                <td>{c.health.version.clone().unwrap_or_default()}</td>
                <td>{connection_badge(&c.health)}</td>
                <td>{format!("{} / {}", c.health.nodes_ready, c.health.nodes_not_ready)}</td>
                <td>{phases(&c.health)}</td>
                <td>{control_plane(&c.health)}</td>
            </tr>
        }
    };
    let columns = ["Name", "API server", "Version", "Watches", "Nodes Ready / not", "Pods", "Control plane"];
    Html::of(table(&columns, clusters.into_iter().map(row).collect_view()))
}

/// A cluster's facts: its API server, version, watches, nodes, pods and control plane.
pub fn cluster_facts(cluster: Cluster) -> Html {
    let h = cluster.health;
    let kubeconfig = cluster.sso_kubeconfig.then(|| {
        view! {
            <p>
                <a class="button" href=format!("/api/v1/clusters/{}/kubeconfig", urlencode(&cluster.name)) download=format!("{}.kubeconfig", cluster.name) rel="external">
                    "Download kubeconfig (single sign-on)"
                </a>
            </p>
        }
    });
    Html::of(view! {
        <dl class="facts">
            <dt>"API server"</dt><dd class="mono">{cluster.api_url}</dd>
            <dt>"Version"</dt><dd>{h.version.clone().unwrap_or_else(|| "unknown".into())}</dd>
            <dt>"Watches"</dt><dd>{connection_badge(&h)}</dd>
            <dt>"Nodes"</dt><dd>{format!("{} Ready, {} not Ready", h.nodes_ready, h.nodes_not_ready)}</dd>
            <dt>"Pods"</dt><dd>{phases(&h)}</dd>
            <dt>"Control plane (/readyz, etcd included)"</dt>
            <dd>{control_plane(&h)}</dd>
        </dl>
        {kubeconfig}
        {(!h.warnings.is_empty()).then(|| view! {
            <div class="alert warn" role="status">
                <ul>{h.warnings.into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}</ul>
            </div>
        })}
    })
}

/// "1–50 of 120", with links to the previous and next pages that keep the other `parameters`.
fn pager<T>(page: &Page<T>, parameters: &[(&str, String)]) -> impl IntoView + use<T> {
    let href = |offset: usize| {
        let mut href = format!("?offset={offset}");
        for (name, value) in parameters {
            href.push_str(&format!("&{name}={}", urlencode(value)));
        }
        href
    };
    let end = page.offset as usize + page.items.len();
    let next = (end < page.total as usize).then(|| href(end));
    let previous = (page.offset > 0).then(|| href((page.offset as usize).saturating_sub(DEFAULT_PAGE as usize)));
    view! {
        <p class="pager">
            {format!("{}–{} of {}", page.offset + 1, end, page.total)}
            {previous.map(|href| view! { " " <a href=href>"Previous page"</a> })}
            {next.map(|href| view! { " " <a href=href>"Next page"</a> })}
        </p>
    }
}

/// A page of nodes, with the links to the next and previous pages of `query`.
pub fn node_table(page: Page<NodeRow>, query: &NodeQuery) -> Html {
    if page.items.is_empty() {
        return Html::of(view! { <div class="empty">"No node matches."</div> });
    }
    let mut parameters = vec![("sort", query.sort.as_str().to_string())];
    parameters.extend(query.search.clone().map(|q| ("q", q)));
    parameters.extend(query.selector.clone().map(|s| ("selector", s)));
    if query.descending {
        parameters.push(("desc", "1".into()));
    }
    let pager = pager(&page, &parameters);
    let row = |n: NodeRow| {
        let status = if n.status == "Ready" { "badge ok" } else { "badge failed" };
        let taints =
            n.taints.iter().map(|t| format!("{}={}:{}", t.key, t.value, t.effect)).collect::<Vec<_>>().join(" ");
        view! {
            <tr>
                <td><a href=format!("/clusters/{}/nodes/{}", urlencode(&n.cluster), urlencode(&n.name))>{n.name.clone()}</a></td>
                <td>
                    <span class=status>{n.status}</span>
                    {n.cordoned.then(|| view! { " " <span class="badge warn">"cordoned"</span> })}
                </td>
                <td>{n.roles.join(", ")}</td>
                <td>{n.version}</td>
                <td class="mono">{n.internal_ip}</td>
                <td>{n.created}</td>
                <td>{n.pods}</td>
                <td>{n.cpu}</td>
                <td>{n.memory}</td>
                <td>{taints}</td>
                <td>{n.machine.map(|id| view! { <a href=format!("/machines/{id}")>{format!("#{id}")}</a> })}</td>
            </tr>
        }
    };
    let columns =
        ["Name", "Status", "Roles", "Version", "Internal IP", "Created", "Pods", "CPU", "Memory", "Taints", "Machine"];
    Html::of(view! { {table(&columns, page.items.into_iter().map(row).collect_view())}{pager} })
}

/// A page of pods, with the links to the next and previous pages of `query`.
pub fn pod_table(page: Page<PodRow>, query: &PodQuery) -> Html {
    if page.items.is_empty() {
        return Html::of(view! { <div class="empty">"No pod matches."</div> });
    }
    let given = [
        ("namespace", &query.namespace),
        ("phase", &query.phase),
        ("node", &query.node),
        ("selector", &query.selector),
    ];
    let parameters: Vec<(&str, String)> =
        given.into_iter().filter_map(|(name, value)| value.clone().map(|v| (name, v))).collect();
    let pager = pager(&page, &parameters);
    let row = |p: PodRow| {
        let node = (!p.node.is_empty()).then(|| {
            view! { <a href=format!("/clusters/{}/nodes/{}", urlencode(&p.cluster), urlencode(&p.node))>{p.node.clone()}</a> }
        });
        view! {
            <tr>
                <td>{p.namespace}</td><td>{p.name}</td><td>{p.phase}</td>
                <td>{node}</td>
                <td>{p.restarts}</td><td>{p.created}</td>
            </tr>
        }
    };
    let columns = ["Namespace", "Name", "Phase", "Node", "Restarts", "Created"];
    Html::of(view! { {table(&columns, page.items.into_iter().map(row).collect_view())}{pager} })
}

/// A node's facts, conditions, labels, annotations, pods and recent events.
pub fn node_facts(d: NodeDetail) -> Html {
    let joined = |pairs: Vec<String>| pairs.join(", ");
    let machine = match d.row.machine {
        Some(id) => view! { <a href=format!("/machines/{id}")>{format!("inventory machine #{id}")}</a> }.into_any(),
        None => "no inventory machine matches its system UUID or name".into_any(),
    };
    let events = if d.events.is_empty() {
        view! { <p class="empty">"No recent events."</p> }.into_any()
    } else {
        let events = d
            .events
            .into_iter()
            .map(|e| view! { <li>{format!("{} {} {}: {}", e.at, e.kind, e.reason, e.message)}</li> });
        view! { <ul>{events.collect_view()}</ul> }.into_any()
    };
    Html::of(view! {
        <dl class="facts">
            <dt>"Status"</dt><dd>{d.row.status}{d.row.cordoned.then_some(" (cordoned)")}</dd>
            <dt>"Roles"</dt><dd>{d.row.roles.join(", ")}</dd>
            <dt>"Kubelet"</dt><dd>{d.row.version}</dd>
            <dt>"System UUID"</dt><dd class="mono">{d.system_uuid}</dd>
            <dt>"Machine"</dt><dd>{machine}</dd>
            <dt>"Addresses"</dt><dd>{joined(d.addresses.iter().map(|(k, a)| format!("{k} {a}")).collect())}</dd>
            <dt>"Capacity"</dt><dd>{joined(d.capacity.iter().map(|(k, v)| format!("{k} {v}")).collect())}</dd>
            <dt>"Allocatable"</dt><dd>{joined(d.allocatable.iter().map(|(k, v)| format!("{k} {v}")).collect())}</dd>
            <dt>"Taints"</dt><dd>{joined(d.row.taints.iter().map(|t| format!("{}={}:{}", t.key, t.value, t.effect)).collect())}</dd>
        </dl>
        <h2>"Conditions"</h2>
        {table(&["Type", "Status", "Reason", "Message", "Since"], d.conditions.into_iter().map(|c| view! {
            <tr><td>{c.kind}</td><td>{c.status}</td><td>{c.reason}</td><td>{c.message}</td><td>{c.since}</td></tr>
        }).collect_view())}
        <h2>"Labels"</h2>
        <ul class="labels">{d.labels.iter().map(|(k, v)| view! { <li class="mono">{format!("{k}={v}")}</li> }).collect_view()}</ul>
        <h2>"Annotations"</h2>
        <ul class="labels">{d.annotations.iter().map(|(k, v)| view! { <li class="mono">{format!("{k}={v}")}</li> }).collect_view()}</ul>
        <h2>{format!("Pods ({})", d.pods.len())}</h2>
        {table(&["Namespace", "Name", "Phase", "Restarts", "Created"], d.pods.into_iter().map(|p| view! {
            <tr><td>{p.namespace}</td><td>{p.name}</td><td>{p.phase}</td><td>{p.restarts}</td><td>{p.created}</td></tr>
        }).collect_view())}
        <h2>"Recent events"</h2>
        {events}
    })
}

/// Where a drain stands: a progress bar (pods evicted of total), what blocks it, the pods it
/// leaves, how it failed, and while it runs a button whose `data-cancel` (its job) the page
/// cancels.
pub fn drain(p: DrainProgress) -> Progress {
    let running = p.state == "running";
    let blocked = (!p.blockers.is_empty()).then(|| {
        let items = p.blockers.into_iter().map(|b| view! { <li>{format!("{}: {}", b.pod, b.reason)}</li> });
        view! { <h3>"Blocked"</h3><ul>{items.collect_view()}</ul> }
    });
    let html = Html::of(view! {
        <div class="progress" role="status">
            <label for="drain-progress">{format!("{}: {} of {} pods evicted ({})", p.state, p.evicted, p.total, p.step)}</label>
            <progress id="drain-progress" max=p.total.max(1) value=p.evicted></progress>
        </div>
        {blocked}
        {(!p.skipped.is_empty()).then(|| view! { <p class="hint">{format!("Left in place: {}", p.skipped.join(", "))}</p> })}
        {(p.resumed > 0).then(|| view! {
            <p class="hint">{format!(
                "Its Pangea replica stopped; another took it over and went on ({} time{}).",
                p.resumed, if p.resumed == 1 { "" } else { "s" }
            )}</p>
        })}
        {p.error.map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
        {running.then(|| {
            view! { <button type="button" class="button">"Cancel drain"</button> }
                .add_any_attr(custom_attribute(data::CANCEL_DRAIN, p.job))
        })}
    });
    Progress { html, running }
}

/// What applying a template would do: the machines it takes, what stands in the way, and what
/// it changes.
pub fn creation_preview(p: super::creation::CreationPreview) -> Html {
    let rows = p
        .nodes
        .iter()
        .map(|n| {
            let power = if n.powered_by_pangea { "Pangea, through its BMC" } else { "you (it has no BMC)" };
            view! { <tr>
                <td>{n.role.clone()}</td><td>{n.name.clone()}</td><td class="mono">{n.mac.clone()}</td><td>{power}</td>
            </tr> }
        })
        .collect_view();
    let problems = (!p.problems.is_empty()).then(|| {
        let items = p.problems.iter().map(|x| view! { <li>{x.clone()}</li> }).collect_view();
        view! { <div class="alert error" role="alert"><p>"It cannot be created yet:"</p><ul>{items}</ul></div> }
    });
    let changes = (p.exists).then(|| {
        if p.changes.is_empty() {
            view! { <p class="hint">"This cluster was created from this very template: applying it again changes nothing."</p> }.into_any()
        } else {
            let items = p
                .changes
                .iter()
                .map(|c| view! { <li>{format!("{}: {} → {}", c.field, c.before, c.after)}</li> })
                .collect_view();
            view! { <div class="alert error" role="alert"><p>"It would change the created cluster (not done by Pangea yet):"</p><ul>{items}</ul></div> }.into_any()
        }
    });
    Html::of(view! {
        {problems}
        {changes}
        {table(&["Role", "Node", "MAC", "Powered on by"], rows)}
        <details><summary>"The template as Pangea reads it"</summary><pre>{p.template}</pre></details>
    })
}

/// A creation as it stands: its step, a bar of where its machines are, and each machine's state
/// with what it waits for.
pub fn creation(c: super::creation::ClusterCreation) -> Progress {
    use crate::provisioning::boots::BootState;
    let running = c.state == "creating";
    let total = c.machines.len();
    let count = |state: BootState| c.machines.iter().filter(|m| m.state == state.as_str()).count();
    let bar = BootState::ALL
        .iter()
        .filter(|s| count(**s) > 0)
        .map(|s| {
            let width = format!("width: {:.2}%", 100.0 * count(*s) as f64 / total.max(1) as f64);
            view! { <span class=format!("boot-{}", s.as_str()) style=width title=format!("{}: {}", s.label(), count(*s))></span> }
        })
        .collect_view();
    let legend = BootState::ALL
        .iter()
        .filter(|s| count(**s) > 0)
        .map(|s| view! { <li><span class=format!("swatch boot-{}", s.as_str())></span>{format!("{} {}", count(*s), s.label())}</li> })
        .collect_view();
    let rows = c
        .machines
        .iter()
        .map(|m| {
            let state = BootState::parse(&m.state).map(|s| s.label()).unwrap_or_default();
            view! { <tr>
                <td>{m.role.clone()}</td>
                <td><a href=format!("/machines/{}", m.machine)>{m.name.clone()}</a></td>
                <td class="mono">{m.mac.clone()}</td>
                <td><span class=format!("badge boot-{}", m.state)>{state}</span></td>
                <td>{m.waiting.clone()}</td>
            </tr> }
        })
        .collect_view();
    let ready = count(BootState::Ready);
    let registered = c.registered.then(|| {
        view! { <p>"Registered: " <a href=format!("/clusters/{}", urlencode(&c.name))>{format!("see cluster {}", c.name)}</a></p> }
    });
    let html = Html::of(view! {
        <div class="progress" role="status">
            <p>{format!("{}: {} ({} of {} nodes Ready).", c.name, if c.step.is_empty() { c.state.clone() } else { c.step.clone() }, ready, total)}</p>
            <div class="run-bar" role="img" aria-label="Where the cluster's machines are">{bar}</div>
            <ul class="run-legend">{legend}</ul>
        </div>
        {c.error.map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
        {registered}
        {table(&["Role", "Node", "MAC", "State", "What it waits for"], rows)}
        {(!c.refused.is_empty()).then(|| view! {
            <h3>"Kubelet certificates refused"</h3>
            <p class="hint">"Pangea approves the certificates of this cluster's machines only; these requests stay pending."</p>
            <ul>{c.refused.iter().map(|r| view! { <li>{r.clone()}</li> }).collect_view()}</ul>
        })}
    });
    Progress { html, running }
}

/// The clusters Pangea created, each linked to its creation.
pub fn creations(all: Vec<super::creation::ClusterCreation>) -> Html {
    let rows = all
        .iter()
        .map(|c| {
            let ready = c.machines.iter().filter(|m| m.state == "ready").count();
            view! { <tr>
                <td><a href=format!("/clusters/create?name={}", urlencode(&c.name))>{c.name.clone()}</a></td>
                <td>{c.state.clone()}</td>
                <td>{format!("{ready} of {}", c.machines.len())}</td>
                <td>{c.created_by.clone()}</td>
                <td class="nowrap">{c.created_at.clone()}</td>
            </tr> }
        })
        .collect_view();
    if all.is_empty() {
        Html::of(view! { <p class="hint">"Pangea has not created a cluster yet."</p> })
    } else {
        Html::of(table(&["Cluster", "State", "Nodes Ready", "Created by", "Created at"], rows))
    }
}

/// A rolling operation's plan: the estimate, what stands in the way, the steps in order and
/// the gates (each checked, or why not).
pub fn rolling_plan(plan: super::rolling::RollingPlan) -> Html {
    let steps = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| view! { <tr><td>{i + 1}</td><td>{s.role.clone()}</td><td>{s.nodes.join(", ")}</td></tr> })
        .collect_view();
    let gates = plan
        .gates
        .iter()
        .map(|g| {
            let checked = if g.checked { "yes" } else { "no" };
            view! { <tr><td>{g.name.clone()}</td><td>{checked}</td><td>{g.detail.clone()}</td></tr> }
        })
        .collect_view();
    Html::of(view! {
        <p role="status">{format!(
            "A rolling {} of {} node(s) of {} in {} step(s), at most {} worker(s) out at once: about {} min ({}).",
            plan.change.words(),
            plan.steps.iter().map(|s| s.nodes.len()).sum::<usize>(),
            plan.cluster,
            plan.steps.len(),
            plan.max_unavailable,
            plan.estimate_seconds.div_ceil(60),
            plan.estimate_assumes
        )}</p>
        {(!plan.problems.is_empty()).then(|| view! {
            <div class="alert error" role="alert"><p>"It cannot start:"</p><ul>{plan.problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul></div>
        })}
        <h2>"Steps"</h2>
        {table(&["Step", "Role", "Nodes"], steps)}
        <h2>"Gates"</h2>
        {table(&["Gate", "Checked", "What it checks"], gates)}
    })
}

/// A rolling operation as it stands: its step, why it is paused, each node's step; Pause or
/// Resume, and Cancel, while it runs; Roll back, once a reprovision has ended.
pub fn rolling(op: super::rolling::RollingOperation) -> Progress {
    let running = matches!(op.state.as_str(), "running" | "paused");
    let done = op.nodes.iter().filter(|n| n.step == "done").count();
    let rows = op
        .nodes
        .iter()
        .map(|n| {
            view! { <tr>
                <td>{n.role.clone()}</td>
                <td><a href=format!("/machines/{}", n.machine)>{n.name.clone()}</a></td>
                <td class="mono">{n.mac.clone()}</td>
                <td><span class="badge">{n.step.clone()}</span></td>
            </tr> }
        })
        .collect_view();
    let steer = |what: &'static str, label: &'static str, class: &'static str| {
        view! { <button type="button" class=class>{label}</button> }
            .add_any_attr(custom_attribute(data::STEER_RUN, format!("{what}:{}", op.job)))
    };
    let buttons = running.then(|| {
        view! {
            <div class="actions" role="group" aria-label="This rolling operation">
                {if op.state == "paused" { steer("resume", "Resume", "button primary") } else { steer("pause", "Pause", "button") }}
                {steer("cancel", "Cancel", "button danger")}
            </div>
        }
    });
    let roll_back = (!op.rollback.is_empty()).then(|| {
        view! {
            <div class="actions" role="group" aria-label="This reprovision">
                {steer("rollback", "Roll back", "button")}
                <span class="hint">{format!("installs {} again with the template each had before", op.rollback.join(", "))}</span>
            </div>
        }
    });
    let html = Html::of(view! {
        <div class="progress" role="status">
            <p>{format!(
                "Rolling {} of {}: {} ({} of {} nodes done): {}.",
                op.change.words(),
                op.cluster,
                op.state,
                done,
                op.nodes.len(),
                op.step
            )}</p>
        </div>
        {op.held.map(|h| view! { <div class="alert" role="alert">{format!("Paused: {h}")}</div> })}
        {(op.resumed > 0).then(|| view! { <p class="hint">{format!("Its Pangea replica stopped; another took it over ({} time(s)).", op.resumed)}</p> })}
        {op.error.map(|e| view! { <div class="alert error" role="alert">{e}</div> })}
        {buttons}
        {roll_back}
        {table(&["Role", "Node", "MAC", "Step"], rows)}
    });
    Progress { html, running }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clusters::DrainBlocker;

    #[test]
    fn a_drain_shows_its_count_its_blockers_and_a_cancel_button_while_it_runs() {
        let running = DrainProgress {
            job: "j<1>".into(),
            state: "running".into(),
            step: "evict".into(),
            evicted: 2,
            total: 5,
            blockers: vec![DrainBlocker { pod: "db-0".into(), reason: "PodDisruptionBudget <db>".into() }],
            skipped: vec!["kube-proxy-x".into()],
            error: None,
            resumed: 1,
        };
        let Progress { html, running: still } = drain(running.clone());
        let html = html.into_string();
        assert!(html.contains("another took it over and went on (1 time)"), "{html}");
        assert!(still);
        assert!(html.contains("running: 2 of 5 pods evicted (evict)"), "{html}");
        assert!(html.contains(r#"max="5" value="2""#), "{html}");
        assert!(html.contains("<li>db-0: PodDisruptionBudget &lt;db&gt;</li>"), "{html}");
        assert!(html.contains("Left in place: kube-proxy-x"), "{html}");
        assert!(html.contains(r#"data-cancel="j&lt;1&gt;""#), "{html}");
        let failed = DrainProgress { state: "failed".into(), error: Some("forbidden".into()), total: 0, ..running };
        let Progress { html, running: still } = drain(failed);
        let html = html.into_string();
        assert!(!still && !html.contains("data-cancel"), "{html}");
        assert!(html.contains(r#"max="1""#) && html.contains(r#"class="alert error">forbidden"#), "{html}");
    }

    fn node(name: &str) -> NodeRow {
        NodeRow {
            cluster: "edge 1".into(),
            name: name.into(),
            status: "Ready".into(),
            roles: vec!["worker".into()],
            version: "v1.36.0".into(),
            internal_ip: "10.0.0.1".into(),
            created: "2026-11-30".into(),
            pods: 3,
            cpu: "4".into(),
            memory: "8Gi".into(),
            cordoned: true,
            taints: Vec::new(),
            machine: Some(7),
        }
    }

    #[test]
    fn a_node_page_links_its_nodes_and_the_next_page_keeping_the_filters() {
        let query = NodeQuery { search: Some("n&1".into()), descending: true, ..Default::default() };
        let page = Page { items: vec![node("<b>n1</b>")], total: 120, offset: 50 };
        let html = node_table(page, &query).into_string();
        assert!(html.contains("&lt;b&gt;n1&lt;/b&gt;") && !html.contains("<b>"), "{html}");
        assert!(html.contains(r#"href="/clusters/edge%201/nodes/%3Cb%3En1%3C%2Fb%3E""#), "{html}");
        assert!(html.contains(r#"href="/machines/7""#) && html.contains("cordoned"), "{html}");
        assert!(html.contains("51–51 of 120"), "{html}");
        let sort = query.sort.as_str();
        assert!(html.contains(&format!(r#"href="?offset=51&amp;sort={sort}&amp;q=n%261&amp;desc=1""#)), "{html}");
        assert!(html.contains(&format!(r#"href="?offset=0&amp;sort={sort}&amp;q=n%261&amp;desc=1""#)), "{html}");
    }

    #[test]
    fn empty_pages_say_so() {
        let nodes = node_table(Page { items: Vec::new(), total: 0, offset: 0 }, &NodeQuery::default());
        assert!(nodes.into_string().contains("No node matches."));
        let query = PodQuery { cluster: "a".into(), ..Default::default() };
        assert!(
            pod_table(Page { items: Vec::new(), total: 0, offset: 0 }, &query)
                .into_string()
                .contains("No pod matches.")
        );
        assert!(cluster_table(Vec::new()).into_string().contains("No cluster is registered yet."));
    }

    #[test]
    fn a_paused_rolling_operation_says_why_and_offers_resume_and_cancel() {
        use crate::clusters::rolling::{RollingChange, RollingNode, RollingOperation};
        let op = RollingOperation {
            job: "j1".into(),
            cluster: "edge".into(),
            change: RollingChange::Restart,
            state: "paused".into(),
            step: "paused: nodes Ready: not Ready: w-2 (NotReady)".into(),
            held: Some("nodes Ready: not Ready: w-2 (NotReady)".into()),
            nodes: vec![RollingNode {
                name: "w-1".into(),
                role: "worker".into(),
                machine: 4,
                mac: "m".into(),
                step: "done".into(),
            }],
            plan: vec![],
            error: None,
            resumed: 0,
            rollback: vec![],
        };
        let drawn = rolling(op.clone());
        let html = drawn.html.into_string();
        assert!(drawn.running);
        assert!(html.contains("Paused: nodes Ready: not Ready: w-2 (NotReady)"), "{html}");
        assert!(html.contains(r#"data-steer="resume:j1""#) && html.contains(r#"data-steer="cancel:j1""#), "{html}");
        assert!(!html.contains("pause:j1"));
        let ended = rolling(RollingOperation { state: "succeeded".into(), held: None, ..op.clone() });
        assert!(!ended.running);
        assert!(!ended.html.into_string().contains("data-steer"));
        // An ended reprovision offers its roll back, naming the nodes it would install again.
        let reinstalled = RollingOperation {
            change: RollingChange::Reprovision,
            state: "failed".into(),
            held: None,
            rollback: vec!["w-1".into()],
            ..op
        };
        let html = rolling(reinstalled).html.into_string();
        assert!(html.contains(r#"data-steer="rollback:j1""#) && html.contains("installs w-1 again"), "{html}");
    }
}
