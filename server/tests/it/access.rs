//! Sign-in, roles, tokens and the request guards: nothing but health, metrics and the boot
//! endpoints answers without a signed-in person or a token, and each role gets what it may.

on_both_backends_with_own_app!(
    every_route_refuses_the_signed_out_and_each_role_gets_only_its_share,
    signed_out_pages_go_to_the_login_and_operations_stay_open,
    session_cookie_is_http_only_and_same_site_and_sign_out_ends_it,
    cookies_are_secure_behind_an_https_public_url,
    sessions_end_after_the_absolute_timeout,
    sessions_end_after_the_idle_timeout,
    wrong_passwords_are_audited_and_throttled,
    disabled_local_login_refuses_the_password_form,
    cross_site_posts_are_refused,
    tokens_work_until_revoked_or_expired,
    the_cli_creates_tokens_and_resets_the_admin_password,
    a_group_binding_takes_effect_on_the_next_request,
    a_session_in_use_outlives_the_idle_timeout,
    next_values_that_browsers_read_as_another_site_are_refused,
    cookie_routes_need_a_same_site_origin_even_with_a_bearer_header,
    expired_sessions_are_pruned_with_their_refresh_tokens,
    session_ids_are_stored_only_as_their_hash,
    a_live_stream_ends_with_its_session_and_each_person_has_a_cap_on_streams,
    a_huge_anonymous_post_leaves_a_small_refusal_and_refusals_are_rate_limited,
    guesses_from_one_address_slow_that_address_not_the_admin_elsewhere,
    overlong_user_names_and_passwords_are_refused_before_any_check,
    a_session_gone_from_the_sessions_list_is_signed_out,
);

use crate::support::{ADMIN_PASSWORD, Backend, TestApp, spawn_app, spawn_app_with};
use app::access::{ConsoleRole, Principal};
use pangea::audit;
use serde_json::{Value, json};

/// Adds a local user with a role, or with none (a fixture: the product creates only the
/// break-glass admin).
/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// Anyone, signed in or not (sign-in, health, the login page, the boot listener).
    Anyone,
    /// A page for this role and above (403 below it); a signed-out visitor is sent to the
    /// login page.
    Page(ConsoleRole),
    /// A page for anyone signed in; a signed-out visitor is sent to the login page.
    OwnPage,
    /// Anyone signed in, role or not: their own things (their sessions). Signed out: 401.
    Yourself,
    /// At least this role.
    Role(ConsoleRole),
}

/// What the test expects of every route, with a request body each accepts. A route the
/// server serves that is missing here fails the test below, and so does one listed here that
/// it no longer serves.
fn expectations() -> Vec<(&'static str, &'static str, Value, Need)> {
    use ConsoleRole::*;
    use Need::*;
    let mac = json!({"mac": "52:54:00:00:00:99"});
    vec![
        ("GET", "/healthz", Value::Null, Anyone),
        ("GET", "/readyz", Value::Null, Anyone),
        ("GET", "/metrics", Value::Null, Anyone),
        ("POST", "/auth/login", Value::Null, Anyone),
        ("POST", "/auth/logout", Value::Null, Anyone),
        ("POST", "/auth/logout-everywhere", Value::Null, Anyone),
        ("GET", "/auth/oidc/start", Value::Null, Anyone),
        ("GET", "/auth/oidc/callback", Value::Null, Anyone),
        ("GET", "/", Value::Null, Page(Viewer)),
        ("GET", "/api/v1/overview", Value::Null, Role(Viewer)),
        ("POST", "/api/gui/fleet_overview", json!({}), Role(Viewer)),
        // The boot listener: machines, no session or token, nothing to change.
        ("GET", "/boot.ipxe", Value::Null, Anyone),
        ("GET", "/boot.ipxe.0", Value::Null, Anyone),
        ("GET", "/ipxe", Value::Null, Anyone),
        ("GET", "/grub", Value::Null, Anyone),
        ("GET", "/ignition", Value::Null, Anyone),
        ("GET", "/generic", Value::Null, Anyone),
        ("GET", "/metadata", Value::Null, Anyone),
        ("GET", "/assets", Value::Null, Anyone),
        ("GET", "/assets/", Value::Null, Anyone),
        ("GET", "/assets/{*path}", Value::Null, Anyone),
        // A machine's secret link: the file once, to anyone holding the link.
        ("GET", "/cluster-secrets/{token}/{*path}", Value::Null, Anyone),
        ("GET", "/login", Value::Null, Anyone),
        ("POST", "/api/gui/current_user", json!({}), Anyone),
        ("POST", "/api/gui/sign_in_methods", json!({}), Anyone),
        ("GET", "/machines", Value::Null, Page(Viewer)),
        ("GET", "/machines/new", Value::Null, Page(Operator)),
        ("GET", "/machines/import", Value::Null, Page(Operator)),
        ("GET", "/machines/discovered", Value::Null, Page(Viewer)),
        ("GET", "/machines/power-runs", Value::Null, Page(Viewer)),
        ("GET", "/machines/classes", Value::Null, Page(Viewer)),
        ("GET", "/machines/discover", Value::Null, Page(Operator)),
        ("GET", "/machines/{id}", Value::Null, Page(Viewer)),
        ("GET", "/clusters", Value::Null, Page(Viewer)),
        ("GET", "/clusters/{*rest}", Value::Null, Page(Viewer)),
        ("GET", "/provisioning", Value::Null, Page(Viewer)),
        // Every provisioning page is one route; /provisioning/import and /provisioning/new/… need
        // an operator (see pages::permission_for_page and its test).
        ("GET", "/provisioning/{*rest}", Value::Null, Page(Viewer)),
        ("GET", "/access", Value::Null, OwnPage),
        ("GET", "/audit", Value::Null, Page(Admin)),
        ("GET", "/audit/{id}", Value::Null, Page(Admin)),
        ("POST", "/api/gui/my_sessions", json!({}), Yourself),
        ("POST", "/api/gui/access_overview", json!({}), Role(Admin)),
        ("POST", "/api/gui/list_bindings", json!({}), Role(Admin)),
        ("POST", "/api/gui/bind_role", json!({"subject_kind": "group", "subject": "g", "role": "viewer"}), Role(Admin)),
        ("POST", "/api/gui/unbind_role", json!({"id": 999}), Role(Admin)),
        ("POST", "/api/gui/list_tokens", json!({}), Role(Admin)),
        ("POST", "/api/gui/create_token", json!({"name": "t", "role": "viewer", "expires_in_days": 1}), Role(Admin)),
        ("POST", "/api/gui/revoke_token", json!({"id": 999}), Role(Admin)),
        ("POST", "/api/gui/list_audit", json!({"query": {}}), Role(Admin)),
        ("POST", "/api/gui/get_audit_entry", json!({"id": 1}), Role(Admin)),
        ("GET", "/api/v1/audit", Value::Null, Role(Admin)),
        ("POST", "/api/gui/list_machines", json!({"query": {}}), Role(Viewer)),
        ("POST", "/api/gui/get_machine", json!({"id": 1}), Role(Viewer)),
        ("POST", "/api/gui/create_machine", json!({"input": mac}), Role(Operator)),
        ("POST", "/api/gui/update_machine", json!({"id": 1, "input": mac}), Role(Operator)),
        ("POST", "/api/gui/delete_machines", json!({"ids": [1]}), Role(Operator)),
        ("POST", "/api/gui/add_machine_labels", json!({"ids": [1], "labels": {"a": "b"}}), Role(Operator)),
        ("POST", "/api/gui/start_import", json!({"format": "csv", "text": "mac\n52:54:00:00:00:98"}), Role(Operator)),
        ("POST", "/api/gui/poll_import", json!({"job": "none"}), Role(Operator)),
        ("POST", "/api/gui/commit_import", json!({"job": "none"}), Role(Operator)),
        ("POST", "/api/gui/provisioning_catalog", json!({}), Role(Viewer)),
        ("POST", "/api/gui/provisioning_overview", json!({"groups": ""}), Role(Viewer)),
        (
            "POST",
            "/api/gui/machine_boot_profile",
            json!({"mac": "52:54:00:00:00:01", "cluster": "", "role": "worker"}),
            Role(Viewer),
        ),
        ("POST", "/api/gui/explain_boot", json!({"query": "mac=52:54:00:00:00:01"}), Role(Viewer)),
        ("POST", "/api/gui/put_profile", json!({"profile": {"id": "gui"}}), Role(Operator)),
        ("POST", "/api/gui/put_group", json!({"group": {"id": "gui", "profile": "gui"}}), Role(Operator)),
        (
            "POST",
            "/api/gui/put_template",
            json!({"template": {"kind": "generic", "id": "gui", "content": "x"}}),
            Role(Operator),
        ),
        ("POST", "/api/gui/delete_profile", json!({"id": "none"}), Role(Operator)),
        ("POST", "/api/gui/delete_group", json!({"id": "none"}), Role(Operator)),
        ("POST", "/api/gui/delete_template", json!({"kind": "generic", "id": "none"}), Role(Operator)),
        (
            "POST",
            "/api/gui/preview_template",
            json!({"template": {"kind": "generic", "id": "x", "content": "{{.a}}"}, "query": ""}),
            Role(Viewer),
        ),
        ("POST", "/api/gui/set_machine_profile", json!({"mac": "52:54:00:00:00:99", "profile": ""}), Role(Operator)),
        (
            "POST",
            "/api/gui/set_default_profile",
            json!({"default": {"cluster": "", "role": "worker", "profile": ""}}),
            Role(Operator),
        ),
        ("POST", "/api/gui/import_provisioning", json!({"files": {"generic/x": "y"}, "dry_run": true}), Role(Operator)),
        ("GET", "/api/v1/provisioning/profiles", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/provisioning/profiles/{id}", Value::Null, Role(Viewer)),
        ("PUT", "/api/v1/provisioning/profiles/{id}", json!({"id": "1"}), Role(Operator)),
        ("DELETE", "/api/v1/provisioning/profiles/{id}", Value::Null, Role(Operator)),
        ("GET", "/api/v1/provisioning/groups", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/provisioning/groups/{id}", Value::Null, Role(Viewer)),
        ("PUT", "/api/v1/provisioning/groups/{id}", json!({"id": "1", "profile": "p"}), Role(Operator)),
        ("DELETE", "/api/v1/provisioning/groups/{id}", Value::Null, Role(Operator)),
        ("GET", "/api/v1/provisioning/templates", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/provisioning/templates/{kind}/{id}", Value::Null, Role(Viewer)),
        ("PUT", "/api/v1/provisioning/templates/{kind}/{id}", json!({"content": "x"}), Role(Operator)),
        ("DELETE", "/api/v1/provisioning/templates/{kind}/{id}", Value::Null, Role(Operator)),
        ("PUT", "/api/v1/provisioning/machines/{mac}", json!({"profile": ""}), Role(Operator)),
        ("PUT", "/api/v1/provisioning/defaults", json!({"role": "worker", "profile": ""}), Role(Operator)),
        ("GET", "/api/v1/provisioning/explain", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/provisioning/import", json!({"files": {"generic/x": "y"}, "dry_run": true}), Role(Operator)),
        ("GET", "/api/v1/provisioning/export", Value::Null, Role(Viewer)),
        ("POST", "/api/gui/boot_timeline", json!({"mac": "52:54:00:00:00:99"}), Role(Viewer)),
        ("POST", "/api/gui/discovered_machines", json!({}), Role(Viewer)),
        ("POST", "/api/gui/add_discovered", json!({"request": {"macs": []}}), Role(Operator)),
        ("POST", "/api/gui/recent_boots", json!({}), Role(Viewer)),
        ("GET", "/api/v1/boot/timeline/{mac}", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/boot/timeline/{mac}/live", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/boot/activity", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/boot/discovered", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/boot/discovered/adopt", json!({"macs": []}), Role(Operator)),
        ("GET", "/api/v1/boot/served/{sha256}", Value::Null, Role(Viewer)),
        ("POST", "/api/gui/cluster_table", json!({}), Role(Viewer)),
        ("POST", "/api/gui/cluster_facts", json!({"name": "c1"}), Role(Viewer)),
        (
            "POST",
            "/api/gui/add_cluster",
            json!({"input": {"name": "c1", "api_url": "https://127.0.0.1:1"}}),
            Role(Admin),
        ),
        ("POST", "/api/gui/kubeconfig_contexts", json!({"kubeconfig": "apiVersion: v1"}), Role(Admin)),
        (
            "POST",
            "/api/gui/add_cluster_from_kubeconfig",
            json!({"import": {"name": "c1", "kubeconfig": "x"}}),
            Role(Admin),
        ),
        (
            "POST",
            "/api/gui/update_cluster",
            json!({"name": "c1", "input": {"name": "c1", "api_url": "https://127.0.0.1:1"}}),
            Role(Admin),
        ),
        ("POST", "/api/gui/remove_cluster", json!({"name": "c1"}), Role(Admin)),
        ("POST", "/api/gui/node_table", json!({"query": {}}), Role(Viewer)),
        ("POST", "/api/gui/machine_node", json!({"machine": 1}), Role(Viewer)),
        ("POST", "/api/gui/node_facts", json!({"cluster": "c1", "node": "n1"}), Role(Viewer)),
        ("POST", "/api/gui/pod_table", json!({"query": {"cluster": "c1"}}), Role(Viewer)),
        (
            "POST",
            "/api/gui/act_on_node",
            json!({"cluster": "c1", "node": "n1", "action": {"action": "cordon"}}),
            Role(Operator),
        ),
        ("GET", "/api/v1/clusters", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/clusters", json!({"name": "c1", "api_url": "https://127.0.0.1:1"}), Role(Admin)),
        ("POST", "/api/v1/clusters/kubeconfig", json!({"name": "c1", "kubeconfig": "x"}), Role(Admin)),
        ("GET", "/api/v1/clusters/{name}", Value::Null, Role(Viewer)),
        ("PUT", "/api/v1/clusters/{name}", json!({"name": "1", "api_url": "https://127.0.0.1:1"}), Role(Admin)),
        ("DELETE", "/api/v1/clusters/{name}", Value::Null, Role(Admin)),
        ("GET", "/api/v1/clusters/{name}/live", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/kubeconfig", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/nodes/{node}", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/clusters/{name}/nodes/{node}/actions", json!({"action": "cordon"}), Role(Operator)),
        ("GET", "/api/v1/clusters/{name}/pods", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/clusters/{name}/nodes/{node}/drain", json!({}), Role(Operator)),
        ("GET", "/api/v1/drains/{job}", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/drains/{job}/cancel", Value::Null, Role(Operator)),
        ("POST", "/api/gui/drain_node", json!({"cluster": "c1", "node": "n1", "options": {}}), Role(Operator)),
        ("POST", "/api/gui/drain_status", json!({"job": "j1"}), Role(Viewer)),
        ("POST", "/api/gui/cancel_drain", json!({"job": "j1"}), Role(Operator)),
        ("GET", "/api/v1/nodes", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/charts", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/nodes/{node}/charts", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/query", Value::Null, Role(Viewer)),
        ("POST", "/api/gui/cluster_charts", json!({"cluster": "c1", "range": "1h"}), Role(Viewer)),
        ("POST", "/api/gui/node_charts", json!({"cluster": "c1", "node": "n1", "range": "1h"}), Role(Viewer)),
        ("GET", "/grafana/{cluster}/", Value::Null, Page(Viewer)),
        ("GET", "/grafana/{cluster}/{*rest}", Value::Null, Page(Viewer)),
        // Grafana's own listener (walked apart: see below).
        ("GET", "/pangea-handover/{cluster}", Value::Null, Anyone),
        ("GET", "/api/v1/clusters/{name}/alerts", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/alerts/firing", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/etcd", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/dashboards", Value::Null, Role(Viewer)),
        ("POST", "/api/gui/grafana_list", json!({"cluster": "c1"}), Role(Viewer)),
        ("POST", "/api/gui/etcd_quorum", json!({"cluster": "c1"}), Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/silences", Value::Null, Role(Viewer)),
        (
            "POST",
            "/api/v1/clusters/{name}/silences",
            json!({"matchers": [], "duration": "1h", "comment": "x"}),
            Role(Operator),
        ),
        ("DELETE", "/api/v1/clusters/{name}/silences/{id}", Value::Null, Role(Operator)),
        ("POST", "/api/gui/list_alerts", json!({"cluster": "c1"}), Role(Viewer)),
        ("POST", "/api/gui/firing_count", json!({}), Role(Viewer)),
        ("POST", "/api/gui/list_silences", json!({"cluster": "c1"}), Role(Viewer)),
        (
            "POST",
            "/api/gui/create_silence",
            json!({"cluster": "c1", "input": {"matchers": [], "duration": "1h", "comment": "x"}}),
            Role(Operator),
        ),
        ("POST", "/api/gui/expire_silence", json!({"cluster": "c1", "id": "s1"}), Role(Operator)),
        ("GET", "/api/v1/dashboards", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/dashboards", json!({"title": "t", "panels": []}), Role(Operator)),
        ("DELETE", "/api/v1/dashboards/{uid}", Value::Null, Role(Operator)),
        ("GET", "/api/v1/clusters/{name}/dashboards/{uid}", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/clusters/{name}/dashboards/{uid}/panels/{panel}", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/clusters/{name}/grafana-dashboards/{uid}/import", Value::Null, Role(Operator)),
        ("POST", "/api/gui/dashboard_list", json!({"cluster": "c1"}), Role(Viewer)),
        (
            "POST",
            "/api/gui/dashboard",
            json!({"cluster": "c1", "uid": "pangea-node", "range": "1h", "choices": {}}),
            Role(Viewer),
        ),
        ("POST", "/api/gui/import_dashboard", json!({"json": "{}"}), Role(Operator)),
        ("POST", "/api/gui/import_grafana_dashboard", json!({"cluster": "c1", "uid": "u"}), Role(Operator)),
        ("POST", "/api/gui/delete_dashboard", json!({"uid": "u"}), Role(Operator)),
        ("GET", "/api/v1/machines", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/machines", mac.clone(), Role(Operator)),
        ("GET", "/api/v1/machines/{id}", Value::Null, Role(Viewer)),
        ("PUT", "/api/v1/machines/{id}", mac, Role(Operator)),
        ("DELETE", "/api/v1/machines/{id}", Value::Null, Role(Operator)),
        ("GET", "/api/v1/machines/{id}/bmc", Value::Null, Role(Viewer)),
        (
            "PUT",
            "/api/v1/machines/{id}/bmc",
            json!({"url": "http://127.0.0.1:9", "username": "u", "password": "p"}),
            Role(Operator),
        ),
        ("DELETE", "/api/v1/machines/{id}/bmc", Value::Null, Role(Operator)),
        ("POST", "/api/v1/machines/{id}/power", json!({"action": "on"}), Role(Operator)),
        ("POST", "/api/gui/machine_power", json!({"id": 1, "cluster": ""}), Role(Viewer)),
        (
            "POST",
            "/api/gui/set_machine_bmc",
            json!({"id": 1, "input": {"url": "http://127.0.0.1:9", "username": "u", "password": "p"}}),
            Role(Operator),
        ),
        ("POST", "/api/gui/remove_machine_bmc", json!({"id": 1}), Role(Operator)),
        ("POST", "/api/gui/power_machine", json!({"id": 1, "action": "on"}), Role(Operator)),
        ("GET", "/api/v1/machines/{id}/hardware", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/machines/hardware.csv", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/power-runs/plan", json!({"action": "on", "search": "x"}), Role(Operator)),
        ("POST", "/api/v1/power-runs", json!({"action": "on", "search": "x"}), Role(Operator)),
        ("GET", "/api/v1/power-runs/{job}", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/power-runs/{job}/pause", Value::Null, Role(Operator)),
        ("POST", "/api/v1/power-runs/{job}/resume", Value::Null, Role(Operator)),
        ("POST", "/api/v1/power-runs/{job}/cancel", Value::Null, Role(Operator)),
        ("POST", "/api/v1/machines/{id}/hardware/acknowledge", Value::Null, Role(Operator)),
        ("POST", "/api/gui/acknowledge_machine_hardware", json!({"id": 1}), Role(Operator)),
        ("POST", "/api/gui/plan_power_run", json!({"input": {"action": "on", "search": "x"}}), Role(Operator)),
        ("POST", "/api/gui/start_power_run", json!({"input": {"action": "on", "search": "x"}}), Role(Operator)),
        ("POST", "/api/gui/power_run_status", json!({"job": "x"}), Role(Viewer)),
        ("POST", "/api/gui/steer_power_run", json!({"job": "x", "what": "pause"}), Role(Operator)),
        ("GET", "/api/v1/machine-classes", Value::Null, Role(Viewer)),
        (
            "POST",
            "/api/v1/bmc-discoveries",
            json!({"addresses": "x", "username": "u", "password": "p"}),
            Role(Operator),
        ),
        ("GET", "/api/v1/bmc-discoveries/{job}", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/bmc-discoveries/{job}/import", json!({"dry_run": true}), Role(Operator)),
        (
            "POST",
            "/api/gui/start_discovery",
            json!({"input": {"addresses": "x", "username": "u", "password": "p"}}),
            Role(Operator),
        ),
        ("POST", "/api/gui/discovery_status", json!({"job": "x"}), Role(Viewer)),
        ("POST", "/api/gui/import_discovered", json!({"job": "x", "dry_run": true}), Role(Operator)),
        ("PUT", "/api/v1/machine-classes/{name}", json!({"query": "rack=r1"}), Role(Operator)),
        ("DELETE", "/api/v1/machine-classes/{name}", Value::Null, Role(Operator)),
        ("POST", "/api/gui/list_machine_classes", json!({}), Role(Viewer)),
        ("POST", "/api/gui/save_machine_class", json!({"name": "x", "input": {"query": "rack=r1"}}), Role(Operator)),
        ("POST", "/api/gui/delete_machine_class", json!({"name": "x"}), Role(Operator)),
        ("POST", "/api/v1/machines/import", json!({"text": "mac\n52:54:00:00:00:97"}), Role(Operator)),
        ("GET", "/api/v1/machines/export.csv", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/openapi.json", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/cluster-creations/preview", json!({"template": "x"}), Role(Admin)),
        ("GET", "/clusters/create", Value::Null, Page(Viewer)),
        ("GET", "/clusters/rolling", Value::Null, Page(Viewer)),
        ("POST", "/api/gui/plan_rolling", json!({"cluster": "c1", "input": {"change": "restart"}}), Role(Viewer)),
        ("POST", "/api/gui/start_rolling", json!({"cluster": "c1", "input": {"change": "restart"}}), Role(Operator)),
        ("POST", "/api/gui/rolling_status", json!({"job": "x"}), Role(Viewer)),
        ("POST", "/api/gui/steer_rolling", json!({"job": "x", "what": "pause"}), Role(Operator)),
        ("POST", "/api/gui/check_cluster_template", json!({"template": "x"}), Role(Admin)),
        ("POST", "/api/gui/create_cluster", json!({"template": "x"}), Role(Admin)),
        ("POST", "/api/gui/cluster_creation", json!({"name": "c1"}), Role(Viewer)),
        ("POST", "/api/gui/created_clusters", json!({}), Role(Viewer)),
        ("POST", "/api/gui/destroy_created_cluster", json!({"name": "c1", "confirm": "c1"}), Role(Admin)),
        ("POST", "/api/v1/cluster-creations", json!({"template": "x"}), Role(Admin)),
        ("GET", "/api/v1/cluster-creations", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/cluster-creations/{name}", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/cluster-creations/{name}/template", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/cluster-creations/{name}/destroy", json!({"confirm": "1"}), Role(Admin)),
        ("POST", "/api/v1/clusters/{name}/rolling-operations/plan", json!({"change": "restart"}), Role(Viewer)),
        ("POST", "/api/v1/clusters/{name}/rolling-operations", json!({"change": "restart"}), Role(Operator)),
        ("GET", "/api/v1/clusters/{name}/rolling-operations", Value::Null, Role(Viewer)),
        ("GET", "/api/v1/rolling-operations/{job}", Value::Null, Role(Viewer)),
        ("POST", "/api/v1/rolling-operations/{job}/pause", Value::Null, Role(Operator)),
        ("POST", "/api/v1/rolling-operations/{job}/resume", Value::Null, Role(Operator)),
        ("POST", "/api/v1/rolling-operations/{job}/cancel", Value::Null, Role(Operator)),
        ("POST", "/api/v1/rolling-operations/{job}/rollback", Value::Null, Role(Operator)),
    ]
}

/// A default group whose profile has every kind of template, and an asset named `1`, so each
/// boot route has something to serve.
async fn serve_a_machine(app: &TestApp) {
    use pangea::provisioner::model::{Group, Profile, TemplateFile, TemplateKind};
    let p = &app.state.provisioner;
    let cli = Principal::cli();
    for (kind, id, content) in [
        (TemplateKind::Ignition, "p.ign", r#"{"ignition":{"version":"3.4.0"}}"#),
        (TemplateKind::Generic, "p.env", "HOST={{.pool}}\n"),
    ] {
        p.put_template(&cli, TemplateFile { kind, id: id.into(), content: content.into() }).await.unwrap();
    }
    let profile: Profile = serde_json::from_value(
        json!({"id": "p", "boot": {"kernel": "/assets/1"}, "ignition_id": "p.ign", "generic_id": "p.env"}),
    )
    .unwrap();
    p.put_profile(&cli, profile).await.unwrap();
    let group: Group =
        serde_json::from_value(json!({"id": "default", "profile": "p", "metadata": {"pool": "x"}})).unwrap();
    p.put_group(&cli, group).await.unwrap();
    std::fs::create_dir_all(&p.assets_dir).unwrap();
    std::fs::write(p.assets_dir.join("1"), "kernel").unwrap();
}

/// A route's path with its parameters filled in (`{id}` and `:id` become 1).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') || seg.starts_with(':') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(client: &reqwest::Client, app: &TestApp, method: &str, path: &str, body: &Value) -> u16 {
    let mut req = client.request(method.parse().unwrap(), app.at(&concrete(path)));
    if !body.is_null() {
        req = req.json(body);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A signed-in client that does not follow redirects.
async fn signed_in(app: &TestApp, name: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ORIGIN, app.origin.parse().unwrap());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    let password = if name == "admin" { ADMIN_PASSWORD.to_string() } else { format!("{name}-password") };
    let res = client
        .post(app.at("/auth/login"))
        .form(&[("username", name), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/", "{name} signs in");
    client
}

async fn every_route_refuses_the_signed_out_and_each_role_gets_only_its_share(backend: Backend) {
    use pangea::http::Listener;
    // Grafana on an origin of its own: the console's /grafana/… hands over, and that listener's
    // routes are walked too.
    let (app, _) = crate::support::spawn_app_with_grafana_origin(backend).await;
    app.create(json!({"mac": "52:54:00:00:00:01"})).await;
    let table = expectations();

    // The table and the routes the server actually serves are the same set.
    let served = pangea::routes::console_routes();
    for (_, method, path) in &served {
        assert!(
            table.iter().any(|(m, p, ..)| *m == method.as_str() && p == path),
            "{method} {path} is served but has no entry in expectations(): add one, with its check"
        );
    }
    for (method, path, ..) in &table {
        assert!(
            served.iter().any(|(_, m, p)| m.as_str() == *method && p == path),
            "{method} {path} is no longer served"
        );
    }
    // OpenAPI documents every /api/v1 route, and nothing else.
    let doc = app.get_json("/api/v1/openapi.json").await;
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect();
    let mut api: Vec<(String, String)> = served
        .iter()
        .filter(|(_, _, p)| p.starts_with("/api/v1/"))
        .map(|(_, m, p)| (m.to_string(), p.clone()))
        .collect();
    documented.sort();
    api.sort();
    assert_eq!(documented, api, "OpenAPI lists exactly the /api/v1 routes");

    app.add_local_user("nobody", None).await;
    app.add_local_user("victor", ConsoleRole::Viewer).await;
    app.add_local_user("olga", ConsoleRole::Operator).await;
    let callers = [
        ("no role", signed_in(&app, "nobody").await, None),
        ("viewer", signed_in(&app, "victor").await, Some(ConsoleRole::Viewer)),
        ("operator", signed_in(&app, "olga").await, Some(ConsoleRole::Operator)),
        ("admin", signed_in(&app, "admin").await, Some(ConsoleRole::Admin)),
    ];
    let anonymous = app.anonymous();
    serve_a_machine(&app).await;
    // Signing out comes last: it ends the callers' sessions.
    let mut served = served;
    served.sort_by_key(|(_, _, path)| path.starts_with("/auth/logout"));
    for (listener, method, path) in &served {
        let (_, _, body, need) = table.iter().find(|(m, p, ..)| *m == method.as_str() && p == path).unwrap();
        if *listener == Listener::Boot {
            let res = tower::ServiceExt::oneshot(
                pangea::routes::boot_router(app.state.clone()),
                axum::http::Request::builder()
                    .method(method.clone())
                    .uri(concrete(path))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            // A secret link that was never made is as absent as any other path.
            let expected = match path.as_str() {
                "/assets" => 307,
                p if p.starts_with("/cluster-secrets/") => 404,
                _ => 200,
            };
            assert_eq!(res.status(), expected, "boot {method} {path}");
            continue;
        }
        if *listener == Listener::Grafana {
            // Nothing there answers without a hand-over's code or its pass.
            let res = tower::ServiceExt::oneshot(
                pangea::routes::grafana_router(app.state.clone()),
                axum::http::Request::builder()
                    .method(method.clone())
                    .uri(concrete(path))
                    .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            assert!([400, 401].contains(&res.status().as_u16()), "Grafana's {method} {path}: {}", res.status());
            continue;
        }
        let status = call(&anonymous, &app, method.as_str(), path, body).await;
        assert!(status < 500, "{method} {path}: signed out got {status}");
        match need {
            Need::Anyone => assert!(status != 401 && status != 403, "{method} {path} is for anyone, got {status}"),
            Need::Page(_) | Need::OwnPage => {
                assert_eq!(status, 303, "{method} {path} sends the signed-out to the login page")
            }
            Need::Yourself | Need::Role(_) => {
                assert_eq!(status, 401, "{method} {path} must refuse a signed-out caller")
            }
        }
        for (who, client, role) in &callers {
            let status = call(client, &app, method.as_str(), path, body).await;
            assert!(status < 500, "{method} {path}: {who} got {status}");
            match need {
                Need::Anyone | Need::Yourself | Need::OwnPage => {
                    assert!(status != 401 && status != 403, "{method} {path} must allow {who}, got {status}")
                }
                Need::Role(least) | Need::Page(least) if role.is_some_and(|r| r >= *least) => {
                    assert!(status != 401 && status != 403, "{method} {path} must allow {who}, got {status}")
                }
                Need::Role(_) | Need::Page(_) => assert_eq!(status, 403, "{method} {path} must refuse {who}"),
            }
        }
    }
    // Denials are in the audit log.
    let records = audit::latest(&app.state.db, 1000).await.unwrap();
    assert!(records.iter().any(|r| r.outcome == "denied" && r.actor == "victor" && r.action == "machine.create"));
}

async fn signed_out_pages_go_to_the_login_and_operations_stay_open(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.anonymous();
    let res = anonymous.get(app.at("/machines?q=a")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2Fmachines%3Fq%3Da");
    let res = anonymous.get(app.at("/api/v1/machines")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "unauthorized");
    // The login form carries where to go next in its HTML, so it works before (or without) hydration.
    let login = anonymous.get(app.at("/login?next=%2Faccess")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains(r#"name="next" value="/access""#), "{login}");
    for open in ["/login", "/healthz", "/readyz", "/metrics"] {
        assert_eq!(anonymous.get(app.at(open)).send().await.unwrap().status(), 200, "{open}");
    }
}

async fn session_cookie_is_http_only_and_same_site_and_sign_out_ends_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .anonymous()
        .post(app.at("/auth/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("next", "//evil.example")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/", "no open redirect");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("pangea_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http public URL: no Secure flag");

    let client = app.sign_in("admin", ADMIN_PASSWORD).await;
    let other = app.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
    client.post(app.at("/auth/logout")).send().await.unwrap();
    assert_eq!(client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 401);
    assert_eq!(other.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200, "other sessions live on");
    let third = app.sign_in("admin", ADMIN_PASSWORD).await;
    third.post(app.at("/auth/logout-everywhere")).send().await.unwrap();
    assert_eq!(other.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 401, "signed out everywhere");
    let actions: Vec<String> = audit::latest(&app.state.db, 50).await.unwrap().into_iter().map(|r| r.action).collect();
    assert!(
        actions.contains(&"session.logout".to_string()) && actions.contains(&"session.logout_everywhere".to_string())
    );
}

async fn cookies_are_secure_behind_an_https_public_url(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.public_url = "https://pangea.example.com".parse().unwrap()).await;
    let res = app.admin_sign_in_answer().await;
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("Secure"));
}

async fn sessions_end_after_the_absolute_timeout(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.session_absolute_timeout = std::time::Duration::from_secs(1)).await;
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 401);
}

async fn sessions_end_after_the_idle_timeout(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.session_idle_timeout = std::time::Duration::from_secs(1)).await;
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 401);
}

async fn wrong_passwords_are_audited_and_throttled(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.anonymous();
    for _ in 0..5 {
        let res = anonymous
            .post(app.at("/auth/login"))
            .form(&[("username", "admin"), ("password", "guess")])
            .send()
            .await
            .unwrap();
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=invalid"));
    }
    let res = anonymous
        .post(app.at("/auth/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["location"].to_str().unwrap().starts_with("/login?error=throttled"),
        "even the right password waits"
    );
    let failures = audit::latest(&app.state.db, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "session.login" && r.outcome != "success")
        .count();
    assert_eq!(failures, 6);
}

async fn disabled_local_login_refuses_the_password_form(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.local_login_enabled = false).await;
    let res = app.admin_sign_in_answer().await;
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=disabled"));
}

async fn cross_site_posts_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut req = app.client.post(app.at("/api/v1/machines")).json(&json!({"mac": "52:54:00:00:00:01"}));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        req.send()
    };
    assert_eq!(post(Some("http://evil.example"), None).await.unwrap().status(), 403);
    assert_eq!(post(None, Some("cross-site")).await.unwrap().status(), 403);
    assert_eq!(post(Some("http://evil.example"), Some("same-site")).await.unwrap().status(), 403);
    assert_eq!(app.count().await, 0);
    assert_eq!(post(Some(app.url.as_str()), None).await.unwrap().status(), 201);
}

async fn tokens_work_until_revoked_or_expired(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token(ConsoleRole::Operator).await;
    let anonymous = app.anonymous();
    let list = |t: String| anonymous.get(app.at("/api/v1/machines")).bearer_auth(t).send();
    assert_eq!(list(token.clone()).await.unwrap().status(), 200);
    let tokens = app.state.access.list_tokens(&Principal::cli()).await.unwrap();
    assert!(tokens[0].last_used_at.is_some());
    app.state.access.revoke_token(&Principal::cli(), tokens[0].id).await.unwrap();
    let res = list(token).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("revoked"));
    let (_, expiring) = app
        .state
        .access
        .create_token(&Principal::cli(), "short", ConsoleRole::Viewer, Some(std::time::Duration::from_secs(1)), None)
        .await
        .unwrap();
    assert_eq!(list(expiring.clone()).await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(list(expiring).await.unwrap().status(), 401);
    assert_eq!(list("pgt_made_up".into()).await.unwrap().status(), 401);
}

async fn the_cli_creates_tokens_and_resets_the_admin_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let pangea = |args: &[&str]| app.cli(args);
    // Even without $USER (cron, systemd), the audit log names who ran the command.
    let bare = std::process::Command::new(env!("CARGO_BIN_EXE_pangea"))
        .args(["access", "bind", "cli-group", "--role", "viewer", "--data-dir"])
        .arg(&app.data_dir)
        .arg("--database-url")
        .arg(secrecy::ExposeSecret::expose_secret(&app.database_url))
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert!(bare.status.success(), "{bare:?}");
    let bind = audit::latest(&app.state.db, 1).await.unwrap().remove(0);
    let me = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    assert_eq!(bind.actor, format!("{} (command line)", me.trim()));
    let out = pangea(&["token", "create", "--name", "ci", "--role", "viewer", "--expires", "30d"]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("pgt_"));
    assert_eq!(app.anonymous().get(app.at("/api/v1/machines")).bearer_auth(&token).send().await.unwrap().status(), 200);
    let stored: String = sqlx::query_scalar::<_, String>("SELECT token_hash FROM api_tokens WHERE name = 'ci'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&token[4..]), "only a hash is stored");
    let listing = String::from_utf8(pangea(&["token", "list"]).stdout).unwrap();
    assert!(listing.contains("ci") && listing.contains("viewer") && !listing.contains(&token));
    let bad = pangea(&["token", "create", "--name", "x", "--role", "boss"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"boss\" is not a role"));

    let out = pangea(&["admin", "reset-password"]);
    assert!(out.status.success(), "{out:?}");
    let password = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(password.len() >= 20);
    let res = app.admin_sign_in_answer().await;
    assert!(res.headers()["location"].to_str().unwrap().contains("error=invalid"), "the old password no longer works");
    app.sign_in("admin", &password).await;
    let hash: String = sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE username = 'admin'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
}

async fn a_group_binding_takes_effect_on_the_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_local_user("newbie", ConsoleRole::Viewer).await;
    let newbie = app.sign_in("newbie", "newbie-password").await;
    assert_eq!(
        newbie
            .post(app.at("/api/v1/machines"))
            .json(&json!({"mac": "52:54:00:00:00:01"}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    app.state.access.bind(&Principal::cli(), "user", "newbie", ConsoleRole::Operator).await.unwrap();
    assert_eq!(
        newbie
            .post(app.at("/api/v1/machines"))
            .json(&json!({"mac": "52:54:00:00:00:01"}))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}

async fn a_session_in_use_outlives_the_idle_timeout(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.session_idle_timeout = std::time::Duration::from_secs(2)).await;
    // Four seconds of use, a request every 400 ms: twice the idle timeout.
    for _ in 0..10 {
        assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    let last_seen: String =
        sqlx::query_scalar("SELECT last_seen_at FROM user_sessions").fetch_one(app.state.db.pool()).await.unwrap();
    let created: String =
        sqlx::query_scalar("SELECT created_at FROM user_sessions").fetch_one(app.state.db.pool()).await.unwrap();
    assert!(last_seen > created, "the sessions list knows it is in use");
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    assert_eq!(app.client.get(app.at("/api/v1/machines")).send().await.unwrap().status(), 401, "then idle");
}

async fn next_values_that_browsers_read_as_another_site_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for next in ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example", "/\n/evil.example"] {
        let res = app
            .anonymous()
            .post(app.at("/auth/login"))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["location"], "/", "{next:?}");
        let wrong = app
            .anonymous()
            .post(app.at("/auth/login"))
            .form(&[("username", "nobody"), ("password", "x"), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.headers()["location"], "/login?error=invalid&next=%2F", "{next:?}");
    }
}

async fn cookie_routes_need_a_same_site_origin_even_with_a_bearer_header(backend: Backend) {
    let app = spawn_app(backend).await;
    // A browser-like client that sends no Origin and no Sec-Fetch-Site of its own accord.
    let bare =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = bare
        .post(app.at("/auth/login"))
        .header("origin", app.url.as_str())
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/");
    let create = |auth: Option<&str>| {
        let mut req =
            bare.post(app.at("/api/gui/create_machine")).json(&json!({"input": {"mac": "52:54:00:00:00:31"}}));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };
    let res = create(Some("Bearer not-a-token")).await.unwrap();
    assert_eq!(res.status(), 403, "a Bearer header does not make a cookie request safe");
    let res = create(None).await.unwrap();
    assert_eq!(res.status(), 403, "neither Origin nor Sec-Fetch-Site");
    assert!(res.text().await.unwrap().contains("cross-site"));
    assert_eq!(bare.post(app.at("/auth/logout")).send().await.unwrap().status(), 403);
    assert_eq!(app.count().await, 0);
    // Scripts with a token on /api/v1 need neither header.
    let token = app.token(ConsoleRole::Operator).await;
    let res = reqwest::Client::new()
        .post(app.at("/api/v1/machines"))
        .bearer_auth(token)
        .json(&json!({"mac": "52:54:00:00:00:32"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

async fn expired_sessions_are_pruned_with_their_refresh_tokens(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.session_idle_timeout = std::time::Duration::from_secs(1)).await;
    app.sign_in("admin", ADMIN_PASSWORD).await;
    let pool = app.state.db.pool();
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap() };
    let store_table = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM tower_sessions",
        Backend::Postgres => "SELECT COUNT(*) FROM tower_sessions.session",
    };
    assert_eq!(count("SELECT COUNT(*) FROM user_sessions").await, 2);
    assert_eq!(count(store_table).await, 2);
    // The SQLite session store compares expiry times in whole seconds.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.state.prune_expired_sessions().await;
    assert_eq!(count("SELECT COUNT(*) FROM user_sessions").await, 0, "the sessions list");
    assert_eq!(count(store_table).await, 0, "the session store");
}

async fn session_ids_are_stored_only_as_their_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.admin_sign_in_answer().await;
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    let id = cookie.trim_start_matches("pangea_session=").split(';').next().unwrap().to_string();
    let key = pangea::access::sessions::session_key(&id.parse().unwrap()).to_string();
    assert_ne!(id, key);
    let pool = app.state.db.pool();
    let listed: Vec<String> = sqlx::query_scalar("SELECT session_id FROM user_sessions").fetch_all(pool).await.unwrap();
    let stored_sql = match backend {
        Backend::Sqlite => "SELECT id FROM tower_sessions",
        Backend::Postgres => "SELECT id FROM tower_sessions.session",
    };
    let stored: Vec<String> = sqlx::query_scalar(stored_sql).fetch_all(pool).await.unwrap();
    // (The test app has a session of its own too.)
    for rows in [&listed, &stored] {
        assert!(rows.contains(&key) && !rows.contains(&id), "only the key, never the id {id}: {rows:?}");
    }
    // The browser's id still works, and signing out deletes the stored row.
    let with_cookie = |request: reqwest::RequestBuilder| request.header("cookie", format!("pangea_session={id}"));
    let client = app.anonymous();
    assert_eq!(with_cookie(client.get(app.at("/api/v1/machines"))).send().await.unwrap().status(), 200);
    with_cookie(client.post(app.at("/auth/logout"))).send().await.unwrap();
    let left: Vec<String> = sqlx::query_scalar(stored_sql).fetch_all(pool).await.unwrap();
    assert!(!left.contains(&key), "signed out: {left:?}");
}

async fn a_live_stream_ends_with_its_session_and_each_person_has_a_cap_on_streams(backend: Backend) {
    use pangea::http::live::STREAMS_PER_PERSON;
    let app = spawn_app_with(backend, async |c| c.live_recheck_every = std::time::Duration::from_millis(200)).await;
    let client = app.sign_in("admin", ADMIN_PASSWORD).await;
    let url = app.at("/api/v1/boot/timeline/52:54:00:5e:55:01/live");
    let mut stream = client.get(&url).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: timeline"));
    // The person's other streams open up to the cap; one more is refused in words.
    let mut others = Vec::new();
    for _ in 1..STREAMS_PER_PERSON {
        let other = client.get(&url).send().await.unwrap();
        assert_eq!(other.status(), 200);
        others.push(other);
    }
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("live views open"));
    // Another person is not held up by them.
    app.add_local_user("vera", app::access::ConsoleRole::Viewer).await;
    let vera = app.sign_in("vera", "vera-password").await;
    assert_eq!(vera.get(&url).send().await.unwrap().status(), 200);
    // Signed out everywhere from another browser: the open stream ends at its next check
    // (keep-alives are comments: only the check ends it).
    let elsewhere = app.sign_in("admin", ADMIN_PASSWORD).await;
    elsewhere.post(app.at("/auth/logout-everywhere")).send().await.unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while stream.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}

async fn a_huge_anonymous_post_leaves_a_small_refusal_and_refusals_are_rate_limited(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.anonymous();
    // Just under the documented 8 MiB body limit.
    let big = json!({"mac": "52:54:00:00:00:01", "hostname": "h".repeat(8 * 1024 * 1024 - 100)});
    let res = anonymous.post(app.at("/api/v1/machines")).json(&big).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let refusal = audit::latest(&app.state.db, 1).await.unwrap().remove(0);
    assert_eq!((refusal.action.as_str(), refusal.outcome.as_str()), ("machine.create", "denied"));
    assert!(refusal.summary.len() < 4096, "{} bytes kept", refusal.summary.len());
    assert!(!refusal.summary.contains("hhhh"), "none of the caller's payload");
    let over = json!({"hostname": "h".repeat(8 * 1024 * 1024 + 1)});
    assert_eq!(anonymous.post(app.at("/api/v1/machines")).json(&over).send().await.unwrap().status(), 413);
    // Forty refusals from one address within a minute: at most 30 are written.
    let before = audit::latest(&app.state.db, 1000).await.unwrap().len();
    for _ in 0..40 {
        let res =
            anonymous.post(app.at("/api/v1/machines")).json(&json!({"mac": "52:54:00:00:00:02"})).send().await.unwrap();
        assert_eq!(res.status(), 401);
    }
    let written = audit::latest(&app.state.db, 1000).await.unwrap().len() - before;
    assert!(written <= 30, "{written} refusals written");
    assert_eq!(app.get("/api/v1/machines").await.status(), 200, "people with access are not slowed");
}

async fn guesses_from_one_address_slow_that_address_not_the_admin_elsewhere(backend: Backend) {
    let app = spawn_app_with(backend, async |c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let login = |from: &'static str, password: &'static str| {
        app.anonymous()
            .post(app.at("/auth/login"))
            .header("x-forwarded-for", format!("{from}, 127.0.0.1"))
            .form(&[("username", "admin"), ("password", password)])
            .send()
    };
    for _ in 0..5 {
        let res = login("203.0.113.7", "guess").await.unwrap();
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=invalid"));
    }
    let res = login("203.0.113.7", ADMIN_PASSWORD).await.unwrap();
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=throttled"), "the guesser waits");
    let res = login("198.51.100.9", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(res.headers()["location"], "/", "the real admin, elsewhere, signs in");
    let records = audit::latest(&app.state.db, 20).await.unwrap();
    assert!(records.iter().any(|r| r.ip == "203.0.113.7" && r.outcome == "denied"), "the client's address is audited");
    // Without a trusted proxy, the header is the caller's word and is ignored.
    let direct = spawn_app(backend).await;
    let res = direct
        .anonymous()
        .post(direct.at("/auth/login"))
        .header("x-forwarded-for", "192.0.2.1")
        .form(&[("username", "admin"), ("password", "guess")])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=invalid"));
    assert_eq!(audit::latest(&direct.state.db, 1).await.unwrap()[0].ip, "127.0.0.1");
}

async fn overlong_user_names_and_passwords_are_refused_before_any_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let long_name = "a".repeat(257);
    let long_password = "p".repeat(1025);
    for (user, password) in [(long_name.as_str(), "x"), ("admin", long_password.as_str())] {
        let res = app
            .anonymous()
            .post(app.at("/auth/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=too_long"));
    }
    let page = app.anonymous().get(app.at("/login?error=too_long")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("at most 256 characters"), "{page}");
    let ok_name = "a".repeat(256);
    let res = app
        .anonymous()
        .post(app.at("/auth/login"))
        .form(&[("username", ok_name.as_str()), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login?error=invalid"), "256 is allowed");
}

/// A request in flight when its session was ended elsewhere may save the session again; it is
/// still over, because it is no longer in the sessions list.
async fn a_session_gone_from_the_sessions_list_is_signed_out(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/api/v1/machines").await.status(), 200);
    sqlx::query("DELETE FROM user_sessions").execute(app.state.db.pool()).await.unwrap();
    assert_eq!(app.get("/api/v1/machines").await.status(), 401);
}
