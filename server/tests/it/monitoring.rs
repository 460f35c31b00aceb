//! Monitoring against real parts: Debian's Prometheus scraping a real node_exporter, the real
//! kube-apiserver and its etcd, and alerting a real Alertmanager (see `support::monitor`).
//! Linking checks each source; charts carry exactly what Prometheus answers; a Prometheus that
//! stops is named, not drawn empty; alerts show on their node and are silenced in the person's
//! name, audited.

use crate::support;

use crate::support::TestApp;
use crate::support::kube::{Kube, eventually, input, person, unique};
use app::access::ConsoleRole;
use app::clusters::ssr::ClusterService;
use app::monitoring::ssr::MonitoringService;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

on_both_backends!(dashboards_import_as_grafana_json_audited_and_bad_ones_are_refused_in_words);

/// These need a kube-apiserver (see the note in `main.rs`), and Prometheus with its peers.
mod needs_kube {
    use super::*;
    on_both_backends!(
        charts_come_from_the_clusters_prometheus_and_say_when_it_is_down,
        alerts_show_on_their_node_and_operators_silence_them_in_their_own_name,
        a_killed_etcd_member_puts_quorum_at_risk_in_words,
        shipped_dashboards_draw_from_prometheus_with_their_variables,
        linked_sources_get_pangeas_credentials_sealed_at_rest,
    );
}

/// A node with this InternalIP (node_exporter's, 127.0.0.1, for a node on this host), as its
/// kubelet would report it.
async fn create_node_at(kube: &Kube, name: &str, address: &str) {
    let nodes: Api<Node> = Api::all(kube.admin().await);
    let node: Node = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({ "status": { "addresses": [{ "type": "InternalIP", "address": address }] } });
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

fn chart<'a>(charts: &'a Value, id: &str) -> &'a Value {
    charts["charts"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no {id} in {charts}"))
}

fn points(series: &Value) -> Vec<(i64, f64)> {
    series["points"].as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap())).collect()
}

async fn charts_come_from_the_clusters_prometheus_and_say_when_it_is_down(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let Some(mut monitor) = support::monitor::start(&kube) else { return };
    let name = unique("watched");

    // Linking checks each source, and says which one is wrong and why.
    let mut wrong = input(&kube, &name, &kube.pangea_token);
    wrong.prometheus_url = app.url.clone();
    wrong.alertmanager_url = "http://127.0.0.1:1".into();
    let res = app.post_json("/api/v1/clusters", serde_json::to_value(&wrong).unwrap()).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let fields = body["fields"].as_array().unwrap();
    let on =
        |field: &str| fields.iter().find(|f| f["field"] == field).unwrap()["message"].as_str().unwrap().to_string();
    let not_prometheus = format!("Prometheus at {} answered /-/ready with HTTP 303", app.url);
    assert!(on("prometheus_url").starts_with(&not_prometheus), "{body}");
    assert!(on("alertmanager_url").starts_with("Alertmanager at http://127.0.0.1:1 is unreachable"), "{body}");
    assert!(app.get_json("/api/v1/clusters").await.as_array().unwrap().iter().all(|c| c["name"] != name.as_str()));

    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.prometheus_url = monitor.url.clone();
    app.state.clusters.add(&app::access::Principal::cli(), linked).await.unwrap();
    let node = unique("metered");
    create_node_at(&kube, &node, "127.0.0.1").await;
    eventually("the node in the cache", async || app.state.clusters.node_addresses(&name, &node).ok()).await;

    // node_exporter's series for this node (its instance is the node's address), exactly as
    // Prometheus answers them.
    let path = format!("/api/v1/clusters/{name}/nodes/{node}/charts?range=15m");
    let charts = eventually("node_exporter's memory in Prometheus", async || {
        let charts = app.get_json(&path).await;
        chart(&charts, "memory")["series"].as_array().is_some_and(|s| !s.is_empty()).then_some(charts)
    })
    .await;
    assert!(charts["unavailable"].is_null(), "{charts}");
    assert_eq!(charts["prometheus_url"], monitor.url.as_str());
    let (start, end, step) =
        (charts["start"].as_i64().unwrap(), charts["end"].as_i64().unwrap(), charts["step"].as_u64().unwrap() as u32);
    assert_eq!(step, 15, "a 15-minute range at the finest step");
    assert_eq!((start % 15, end % 15, end - start), (0, 0, 900), "aligned to the step");
    let memory = chart(&charts, "memory");
    assert_eq!(memory["unit"], "bytes");
    let total_query = memory["query"].as_str().unwrap().lines().nth(1).unwrap().to_string();
    assert!(total_query.contains(&format!(r#"instance=~"({node}|127\\.0\\.0\\.1)(:[0-9]+)?""#)), "{total_query}");
    let direct = monitor.range(&total_query, start, end, step).await;
    let total = memory["series"].as_array().unwrap().iter().find(|s| s["legend"] == "total").unwrap();
    assert_eq!(points(total), direct[0], "the chart is what Prometheus answers");
    assert!(direct[0].iter().all(|(_, bytes)| *bytes > 1e8), "a real machine's memory: {direct:?}");

    // The cluster's charts: the API server's requests and etcd's database, from their metrics.
    let cluster = eventually("the API server's request rate", async || {
        let charts = app.get_json(&format!("/api/v1/clusters/{name}/charts?range=15m")).await;
        chart(&charts, "api_requests")["series"].as_array().is_some_and(|s| !s.is_empty()).then_some(charts)
    })
    .await;
    let db_size = chart(&cluster, "etcd_db_size");
    assert_eq!(db_size["series"][0]["legend"], kube.etcd_url.trim_start_matches("http://"));
    assert!(points(&db_size["series"][0]).iter().all(|(_, bytes)| *bytes > 0.0));
    assert!(chart(&cluster, "pods")["error"].is_null(), "{cluster}");
    let api_errors = chart(&cluster, "api_errors");
    assert!(!points(&api_errors["series"][0]).is_empty(), "no 5xx is a line at 0, not an empty chart");

    // Any query, for the caller, stepped as charts are; bad input is refused in words.
    let up = app.get_json(&format!("/api/v1/clusters/{name}/query?query=up&range=15m")).await;
    let legends: Vec<&str> = up["series"].as_array().unwrap().iter().map(|s| s["legend"].as_str().unwrap()).collect();
    assert!(legends.iter().any(|l| l.contains(r#"job="node""#)), "{legends:?}");
    let res = app.get(&format!("/api/v1/clusters/{name}/query?query=rate(up&range=15m")).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Prometheus refused the query"));
    let res = app.get(&format!("/api/v1/clusters/{name}/charts?range=2w")).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not a time range"));

    // Only people with a role on this cluster see its charts.
    let mut elsewhere = person("dana@example.com", &[], ConsoleRole::Viewer);
    elsewhere.role = None;
    elsewhere.cluster_roles.insert("elsewhere".into(), ConsoleRole::Operator);
    let refused = app.state.monitoring.cluster_charts(&elsewhere, &name, "1h").await.unwrap_err();
    assert_eq!(refused.status(), 403, "{refused}");
    elsewhere.cluster_roles.insert(name.clone(), ConsoleRole::Viewer);
    assert!(app.state.monitoring.cluster_charts(&elsewhere, &name, "1h").await.is_ok());

    // Prometheus stops: the page says so, rather than drawing empty charts.
    monitor.stop_prometheus();
    let down = app.get_json(&path).await;
    let expected = format!("Prometheus at {} is unreachable", monitor.url);
    assert!(down["unavailable"].as_str().unwrap().starts_with(&expected), "{down}");
    assert!(down["charts"].as_array().unwrap().is_empty());
    let res = app.get(&format!("/api/v1/clusters/{name}/query?query=up")).await;
    assert_eq!(res.status(), 502);
    assert!(res.text().await.unwrap().contains(&expected));
    app.state.clusters.remove(&app::access::Principal::cli(), &name).await.unwrap();
}

async fn alerts_show_on_their_node_and_operators_silence_them_in_their_own_name(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let Some(monitor) = support::monitor::start(&kube) else { return };
    let name = unique("alerting");
    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.prometheus_url = monitor.url.clone();
    linked.alertmanager_url = monitor.alertmanager_url.clone();
    app.state.clusters.add(&app::access::Principal::cli(), linked.clone()).await.unwrap();
    let node = unique("alerted");
    create_node_at(&kube, &node, "127.0.0.1").await;
    eventually("the node in the cache", async || app.state.clusters.node_addresses(&name, &node).ok()).await;

    // On the node's page: the rule that fires (from Alertmanager) and the one still pending
    // (from Prometheus), each with severity, summary, since when, and its expression.
    let path = format!("/api/v1/clusters/{name}/alerts?node={node}");
    let alerts = eventually("both test alerts on the node", async || {
        let alerts = app.get_json(&path).await;
        let names: Vec<&str> = alerts["alerts"].as_array()?.iter().filter_map(|a| a["name"].as_str()).collect();
        (names.contains(&"NodeExporterUp") && names.contains(&"NodeExporterUpForAnHour")).then_some(alerts)
    })
    .await;
    assert!(alerts["unavailable"].is_null(), "{alerts}");
    let firing = alerts["alerts"].as_array().unwrap().iter().find(|a| a["name"] == "NodeExporterUp").unwrap();
    assert_eq!((firing["state"].as_str(), firing["severity"].as_str()), (Some("firing"), Some("warning")));
    assert_eq!(firing["summary"], format!("node_exporter on {} answers", monitor.node_exporter));
    assert!(firing["since"].as_str().unwrap().starts_with("20"), "{firing}");
    assert!(firing["source"].as_str().unwrap().starts_with(&format!("{}/graph?g0.expr=", monitor.url)), "{firing}");
    let pending = alerts["alerts"].as_array().unwrap().iter().find(|a| a["name"] == "NodeExporterUpForAnHour").unwrap();
    assert_eq!(pending["state"], "pending");
    assert!(pending["source"].as_str().unwrap().contains("g0.expr=up%7Bjob%3D%22node%22%7D"), "{pending}");
    // Another node has none of them; the navigation counts what fires.
    let elsewhere = unique("elsewhere");
    create_node_at(&kube, &elsewhere, "10.9.9.9").await;
    eventually("the other node in the cache", async || app.state.clusters.node_addresses(&name, &elsewhere).ok()).await;
    let other = app.get_json(&format!("/api/v1/clusters/{name}/alerts?node={elsewhere}")).await;
    assert_eq!(other["alerts"], json!([]), "{other}");
    assert!(app.get_json("/api/v1/alerts/firing").await.as_u64().unwrap() >= 1);

    // A viewer may not silence: refused and audited. An operator silences with matchers from the
    // alert's labels, and Alertmanager has it in her name.
    let input_for = |comment: &str| app::monitoring::SilenceInput {
        matchers: ["alertname", "instance"]
            .iter()
            .map(|label| app::monitoring::Matcher {
                name: label.to_string(),
                value: firing["labels"][label].as_str().unwrap().into(),
                is_regex: false,
                is_equal: true,
            })
            .collect(),
        duration: "1h".into(),
        comment: comment.into(),
    };
    let viewer = person("victor@example.com", &[], ConsoleRole::Viewer);
    let refused = app.state.monitoring.silence(&viewer, &name, input_for("no")).await.unwrap_err();
    assert_eq!(refused.status(), 403);
    let operator = person("olga@example.com", &[], ConsoleRole::Operator);
    let bad = app.state.monitoring.silence(
        &operator,
        &name,
        app::monitoring::SilenceInput { duration: "2w".into(), ..input_for("x") },
    );
    assert!(bad.await.unwrap_err().to_string().contains("30m, 2h or 1d"));
    let silence = app.state.monitoring.silence(&operator, &name, input_for("disk swap")).await.unwrap();
    assert_eq!((silence.created_by.as_str(), silence.state.as_str()), ("olga@example.com", "active"));
    let direct: Value =
        reqwest::get(format!("{}/api/v2/silences", monitor.alertmanager_url)).await.unwrap().json().await.unwrap();
    let at_alertmanager = direct.as_array().unwrap().iter().find(|s| s["id"] == silence.id.as_str()).unwrap();
    assert_eq!(at_alertmanager["createdBy"], "olga@example.com");
    assert_eq!(at_alertmanager["comment"], "disk swap");
    // Silenced, it no longer shows as firing; the silence is listed.
    eventually("the silenced alert to leave the list", async || {
        let alerts = app.get_json(&path).await;
        (!alerts["alerts"].as_array()?.iter().any(|a| a["name"] == "NodeExporterUp")).then_some(())
    })
    .await;
    let listed = app.get_json(&format!("/api/v1/clusters/{name}/silences")).await;
    assert!(listed.as_array().unwrap().iter().any(|s| s["id"] == silence.id.as_str()), "{listed}");

    // Expired over the API; both changes and the refusal are in the audit log.
    let res =
        app.client.delete(app.at(&format!("/api/v1/clusters/{name}/silences/{}", silence.id))).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let listed = app.get_json(&format!("/api/v1/clusters/{name}/silences")).await;
    assert!(!listed.as_array().unwrap().iter().any(|s| s["id"] == silence.id.as_str()), "{listed}");
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT actor || ':' || action || ':' || outcome FROM audit_log WHERE action LIKE 'alert.%' ORDER BY id",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [
            "victor@example.com:alert.silence:denied",
            "olga@example.com:alert.silence:success",
            "admin:alert.unsilence:success"
        ]
    );
    let target: String =
        sqlx::query_scalar("SELECT target_id FROM audit_log WHERE action = 'alert.silence' AND outcome = 'success'")
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(target, silence.id);
    app.state.clusters.remove(&app::access::Principal::cli(), &name).await.unwrap();

    // An expiry stands only once audited: with the database gone, the silence is put back.
    app.state.clusters.add(&app::access::Principal::cli(), linked.clone()).await.unwrap();
    let again = app.state.monitoring.silence(&operator, &name, input_for("kept")).await.unwrap();
    app.state.db.pool().close().await;
    let admin = person("ada@example.com", &[], ConsoleRole::Admin);
    let refused = app.state.monitoring.expire_silence(&admin, &name, &again.id).await.unwrap_err();
    assert!(refused.to_string().contains("The silence was put back"), "{refused}");
    let direct: Value =
        reqwest::get(format!("{}/api/v2/silences", monitor.alertmanager_url)).await.unwrap().json().await.unwrap();
    assert!(
        direct.as_array().unwrap().iter().any(|s| s["comment"] == "kept" && s["status"]["state"] == "active"),
        "{direct}"
    );
}

async fn a_killed_etcd_member_puts_quorum_at_risk_in_words(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let Some(tools) = support::kube::tools() else { return };
    let mut etcd = support::monitor::EtcdCluster::start(&tools);
    let Some(monitor) = support::monitor::start_scraping(&kube, &etcd.urls) else { return };
    let name = unique("quorum");
    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.prometheus_url = monitor.url.clone();
    app.state.clusters.add(&app::access::Principal::cli(), linked).await.unwrap();
    let path = format!("/api/v1/clusters/{name}/etcd");

    // Three members, all healthy, one of them the leader.
    let health = eventually("three healthy members with a leader", async || {
        let health = app.get_json(&path).await;
        let members = health["members"].as_array()?;
        (members.len() == 3
            && members.iter().all(|m| {
                m["healthy"] == true && m["db_size"].as_f64().is_some() && m["failed_proposals"].as_f64().is_some()
            })
            && members.iter().filter(|m| m["leader"] == true).count() == 1)
            .then_some(health)
    })
    .await;
    assert_eq!(health["quorum"], "3 members, 3 healthy: one may fail");
    assert_eq!(health["at_risk"], false);
    let member = &health["members"][0];
    assert_eq!(member["quota"].as_f64(), Some(2_147_483_648.0), "etcd's default 2 GiB quota");
    assert_eq!(member["failed_proposals"].as_f64(), Some(0.0));

    // One member dies: the other two keep quorum, but losing one more stops the cluster.
    let dead = etcd.urls[2].trim_start_matches("http://").to_string();
    etcd.kill(2);
    // (A leader's death means an election first: wait for the two to settle.)
    let health = eventually("two healthy members of three", async || {
        let health = app.get_json(&path).await;
        (health["quorum"] == "3 members, 2 healthy: losing one more stops the cluster").then_some(health)
    })
    .await;
    assert_eq!(health["at_risk"], true);
    let members = health["members"].as_array().unwrap();
    let down: Vec<&str> =
        members.iter().filter(|m| m["healthy"] == false).map(|m| m["instance"].as_str().unwrap()).collect();
    assert_eq!(down, [dead.as_str()]);
    app.state.clusters.remove(&app::access::Principal::cli(), &name).await.unwrap();
}

fn panel<'a>(view: &'a Value, title: &str) -> &'a Value {
    view["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no {title} in {view}"))
}

async fn shipped_dashboards_draw_from_prometheus_with_their_variables(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let Some(monitor) = support::monitor::start(&kube) else { return };
    let name = unique("dashed");
    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.prometheus_url = monitor.url.clone();
    app.state.clusters.add(&app::access::Principal::cli(), linked).await.unwrap();

    let listed = app.get_json("/api/v1/dashboards").await;
    let shipped: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["shipped"] == true)
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(shipped, ["pangea-node", "pangea-cluster", "pangea-etcd", "pangea-self"]);

    // The node dashboard's `instance` variable lists node_exporter's instance from Prometheus
    // (label_values), and picks it.
    let base = format!("/api/v1/clusters/{name}/dashboards/pangea-node");
    let view = eventually("node_exporter's instance as the variable's value", async || {
        let view = app.get_json(&format!("{base}?range=15m")).await;
        (view["variables"][0]["options"].as_array().is_some_and(|o| !o.is_empty())).then_some(view)
    })
    .await;
    let instance = &view["variables"][0];
    assert_eq!(instance["name"], "instance");
    assert!(instance["options"].as_array().unwrap().contains(&json!(monitor.node_exporter)), "{view}");
    assert!(view["unavailable"].is_null() && view["grafana_path"].is_null(), "{view}");
    let chosen = format!("var-instance={}", monitor.node_exporter);

    // A time series: the variable and $__rate_interval are filled in, and the lines are what
    // Prometheus answers for the same range and step (15 s for 15 minutes).
    let memory = panel(&view, "Memory")["id"].as_u64().unwrap();
    let answer = eventually("memory in Prometheus", async || {
        let answer = app.get_json(&format!("{base}/panels/{memory}?range=15m&{chosen}")).await;
        answer["data"]["series"].as_array().is_some_and(|s| s.len() == 2).then_some(answer)
    })
    .await;
    let query = answer["queries"][1].as_str().unwrap();
    assert_eq!(query, format!(r#"node_memory_MemTotal_bytes{{instance="{}"}}"#, monitor.node_exporter));
    let (start, end) = (answer["data"]["start"].as_i64().unwrap(), answer["data"]["end"].as_i64().unwrap());
    assert_eq!(end - start, 900);
    let direct = monitor.range(query, start, end, 15).await;
    assert_eq!(points(&answer["data"]["series"][1]), direct[0], "the panel is what Prometheus answers");
    let cpu = panel(&view, "CPU by mode")["id"].as_u64().unwrap();
    let answer = app.get_json(&format!("{base}/panels/{cpu}?range=15m&{chosen}")).await;
    assert!(answer["queries"][0].as_str().unwrap().ends_with("[60s]))"), "rate interval of four scrapes: {answer}");

    // A gauge reduces to one value; a table lists labels and values.
    let gauge = panel(&view, "Memory used")["id"].as_u64().unwrap();
    let answer = app.get_json(&format!("{base}/panels/{gauge}?range=15m&{chosen}")).await;
    let used = answer["data"]["values"][0][1].as_f64().unwrap_or_else(|| panic!("{answer}"));
    assert!(used > 0.0 && used < 1.0, "a share of memory: {answer}");
    let table = panel(&view, "Filesystems")["id"].as_u64().unwrap();
    let answer = app.get_json(&format!("{base}/panels/{table}?range=15m&{chosen}")).await;
    let columns = answer["data"]["columns"].as_array().unwrap_or_else(|| panic!("{answer}"));
    assert!(columns.contains(&json!("mountpoint")) && columns.last() == Some(&json!("Value")), "{answer}");
    assert!(!answer["data"]["rows"].as_array().unwrap().is_empty());

    // A value nobody has gives no data, said in words.
    let answer = app.get_json(&format!("{base}/panels/{memory}?range=15m&var-instance=nowhere:1")).await;
    assert!(answer["data"].is_null() && answer["error"].as_str().unwrap().starts_with("No data"), "{answer}");

    // A multi-value custom variable becomes a regex alternation; $__range is the range.
    let cluster = format!("/api/v1/clusters/{name}/dashboards/pangea-cluster");
    let view = app.get_json(&format!("{cluster}?range=15m")).await;
    assert_eq!(view["variables"][0]["current"], json!(["$__all"]), "the dashboard's default: all verbs");
    let by_code = panel(&view, "API requests by code")["id"].as_u64().unwrap();
    let answer = app.get_json(&format!("{cluster}/panels/{by_code}?range=15m&var-verb=GET&var-verb=LIST")).await;
    assert!(answer["queries"][0].as_str().unwrap().contains(r#"verb=~"(GET|LIST)""#), "{answer}");
    let all = app.get_json(&format!("{cluster}/panels/{by_code}?range=15m&var-verb=$__all")).await;
    assert!(all["queries"][0].as_str().unwrap().contains(r#"verb=~"(GET|LIST|POST|PUT|PATCH|DELETE)""#), "{all}");
    let total = panel(&view, "API requests")["id"].as_u64().unwrap();
    let answer = app.get_json(&format!("{cluster}/panels/{total}?range=15m")).await;
    assert!(answer["queries"][0].as_str().unwrap().contains("[900s]"), "{answer}");

    // Unknown dashboards and panels are 404s; only people with a role here see any.
    assert_eq!(app.get(&format!("/api/v1/clusters/{name}/dashboards/nope")).await.status(), 404);
    assert_eq!(app.get(&format!("{base}/panels/999?range=15m")).await.status(), 404);
    let res = app.get(&format!("{base}/panels/cpu?range=15m")).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["message"], "\"cpu\" is not a panel id.");
    let mut elsewhere = person("dana@example.com", &[], ConsoleRole::Viewer);
    elsewhere.role = None;
    elsewhere.cluster_roles.insert("elsewhere".into(), ConsoleRole::Viewer);
    let refused =
        app.state.monitoring.dashboard(&elsewhere, &name, "pangea-node", "1h", Default::default()).await.unwrap_err();
    assert_eq!(refused.status(), 403);
    app.state.clusters.remove(&app::access::Principal::cli(), &name).await.unwrap();
}

async fn dashboards_import_as_grafana_json_audited_and_bad_ones_are_refused_in_words(app: TestApp) {
    let viewer = app.token(ConsoleRole::Viewer).await;
    let operator = app.token(ConsoleRole::Operator).await;
    let post = async |token: &str, body: Value| {
        let res = app.browser().post(app.at("/api/v1/dashboards")).bearer_auth(token).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap())
    };
    let imported = || async { app.get_json("/api/v1/dashboards").await.as_array().unwrap().len() };
    let before = imported().await;

    // Broken dashboards: each refusal says what to fix, and nothing is stored.
    let big = json!({ "title": "big", "panels": [], "description": "x".repeat(1024 * 1024) });
    for (body, says) in [
        (json!({ "title": "No panels" }), "has a \"panels\" list"),
        (json!({ "panels": [] }), "needs a \"title\""),
        (json!({ "title": "t", "uid": "a/b", "panels": [] }), "may hold only letters"),
        (json!({ "title": "t", "panels": [{ "id": 3, "title": "CPU" }] }), "Panel 3 (\"CPU\") has no type"),
        (
            json!({ "title": "t", "panels": [], "templating": { "list": [{ "name": "x", "type": "query", "regex": "/(/" }] } }),
            "does not compile",
        ),
        (big, "at most 1 MiB"),
    ] {
        let (status, answer) = post(&operator, body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(says), "{says}: {answer}");
    }
    let (status, answer) = post(&operator, json!({ "uid": "pangea-node", "title": "Mine", "panels": [] })).await;
    assert_eq!(status, 409, "a shipped dashboard's uid is taken: {answer}");
    assert_eq!(imported().await, before, "nothing half-written is stored");

    // A Grafana export is imported, in the operator's name, audited in the same transaction.
    let export = json!({ "meta": {}, "dashboard": {
        "uid": "team-nodes", "title": "<script>alert(1)</script> Team", "panels": [
            { "id": 1, "type": "timeseries", "title": "Up", "targets": [{ "refId": "A", "expr": "up", "legendFormat": "{{job}}" }] }
        ] } });
    let (status, answer) = post(&operator, export.clone()).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["title"], "<script>alert(1)</script> Team", "kept as text; pages escape it");
    assert_eq!(imported().await, before + 1);
    let (status, answer) = post(&operator, export).await;
    assert_eq!(status, 201, "the same uid again replaces it: {answer}");
    assert_eq!(imported().await, before + 1);
    let audit = app.get_json("/api/v1/audit?action=dashboard.*").await;
    let actions: Vec<(&str, &str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target_id"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("dashboard.import", "team-nodes", "success")), "{actions:?}");
    assert!(audit["items"][0]["summary"].as_str().unwrap().contains("\"replaced\":true"), "{audit}");

    // A viewer may not import or remove, and the attempt is on record.
    let (status, _) = post(&viewer, json!({ "title": "t", "panels": [] })).await;
    assert_eq!(status, 403);
    let denied = app.get_json("/api/v1/audit?action=dashboard.import&outcome=denied").await;
    assert_eq!(denied["items"].as_array().unwrap().len(), 1, "{denied}");
    let delete = async |token: &str, uid: &str| {
        app.browser()
            .delete(app.at(&format!("/api/v1/dashboards/{uid}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(delete(&viewer, "team-nodes").await, 403);
    assert_eq!(delete(&operator, "pangea-node").await, 409, "shipped dashboards stay");
    assert_eq!(delete(&operator, "team-nodes").await, 204);
    assert_eq!(delete(&operator, "team-nodes").await, 404);
    assert_eq!(imported().await, before);
    let removed = app.get_json("/api/v1/audit?action=dashboard.delete&outcome=success").await;
    assert_eq!(removed["items"][0]["target_id"], "team-nodes");
}

/// A CA, and a certificate it signs for 127.0.0.1 (a server) or for a client: (cert, key) PEMs.
fn issue(ca: &(rcgen::Certificate, rcgen::KeyPair), server: bool) -> (String, String) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let mut params = CertificateParams::new(if server { vec!["127.0.0.1".to_string()] } else { vec![] }).unwrap();
    params.distinguished_name.push(DnType::CommonName, if server { "prometheus" } else { "pangea" });
    params.extended_key_usages =
        vec![if server { ExtendedKeyUsagePurpose::ServerAuth } else { ExtendedKeyUsagePurpose::ClientAuth }];
    let key = KeyPair::generate().unwrap();
    (params.signed_by(&key, &ca.0, &ca.1).unwrap().pem(), key.serialize_pem())
}

async fn linked_sources_get_pangeas_credentials_sealed_at_rest(app: TestApp) {
    use app::clusters::SourceCredential;
    let Some(kube) = support::kube::shared() else { return };
    if !support::monitor::installed_here() {
        return;
    }
    let name = unique("guarded");
    let basic = support::monitor::guarded_prometheus(
        &format!(
            "basic_auth_users: {{pangea: '{}', pangea2: '{}'}}\n",
            support::monitor::bcrypt("s3cret-pass"),
            support::monitor::bcrypt("n3w-pass")
        ),
        &[],
        false,
    );
    let post = async |input: &app::clusters::ClusterInput| {
        let res = app.post_json("/api/v1/clusters", serde_json::to_value(input).unwrap()).await;
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    };
    let field = |body: &Value, name: &str| {
        body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .map(|f| f["message"].as_str().unwrap().to_string())
    };

    // Without the credential, or with a wrong one, Prometheus says no, and Pangea says so.
    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.prometheus_url = basic.url.clone();
    let (status, body) = post(&linked).await;
    assert_eq!(status, 400);
    assert!(field(&body, "prometheus_url").unwrap().contains("HTTP 401"), "{body}");
    linked.prometheus_credential =
        Some(SourceCredential::Basic { username: "pangea".into(), password: "wrong".into() });
    assert_eq!(post(&linked).await.0, 400);
    linked.prometheus_credential = Some(SourceCredential::Bearer { token: "line\nbreak".into() });
    let (status, body) = post(&linked).await;
    assert_eq!(status, 400);
    assert!(field(&body, "prometheus_credential").unwrap().contains("visible ASCII"), "{body}");

    // With it, the cluster is linked, and queries go with the credential.
    linked.prometheus_credential =
        Some(SourceCredential::Basic { username: "pangea".into(), password: "s3cret-pass".into() });
    let (status, body) = post(&linked).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["prometheus_auth"].as_str(), body["alertmanager_auth"].as_str()), (Some("basic"), Some("none")));
    let up = app.get(&format!("/api/v1/clusters/{name}/query?query=vector(1)&range=15m")).await;
    assert_eq!(up.status(), 200, "{}", up.text().await.unwrap());

    // At rest the credential is sealed, and the audit log names only its kind.
    let sealed: String = sqlx::query_scalar("SELECT source_credentials_sealed FROM clusters WHERE name = $1")
        .bind(&name)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(!sealed.is_empty() && !sealed.contains("s3cret-pass") && !sealed.contains("pangea"), "{sealed}");
    let audit = app.get_json("/api/v1/audit?action=cluster.create&outcome=success").await;
    let entry = audit["items"].as_array().unwrap().iter().find(|e| e["target_id"] == name.as_str()).unwrap();
    let summary = entry["summary"].as_str().unwrap();
    assert!(summary.contains(r#""prometheus_auth":"basic""#) && !summary.contains("s3cret-pass"), "{summary}");

    // A change that leaves the credential out keeps it; "none" removes it, which Prometheus refuses.
    linked.prometheus_credential = None;
    let res = app.put_json(&format!("/api/v1/clusters/{name}"), serde_json::to_value(&linked).unwrap()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(app.get(&format!("/api/v1/clusters/{name}/query?query=vector(1)")).await.status(), 200);
    let updates = async || {
        let page = app.get_json("/api/v1/audit?action=cluster.*&outcome=success").await;
        page["items"][0]["summary"].as_str().unwrap().to_string()
    };
    assert!(updates().await.contains(r#""source_credentials_changed":[]"#), "kept: {}", updates().await);
    // A new password for it is audited as a change of that source's credential, never its value.
    linked.prometheus_credential =
        Some(SourceCredential::Basic { username: "pangea2".into(), password: "n3w-pass".into() });
    let res = app.put_json(&format!("/api/v1/clusters/{name}"), serde_json::to_value(&linked).unwrap()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let summary = updates().await;
    assert!(
        summary.contains(r#""source_credentials_changed":["prometheus"]"#) && !summary.contains("n3w-pass"),
        "{summary}"
    );
    linked.prometheus_credential = None;
    // The same Prometheus under another origin: the stored secret does not follow the URL there.
    let elsewhere = basic.url.replace("127.0.0.1", "localhost");
    let moved = app::clusters::ClusterInput { prometheus_url: elsewhere, ..linked.clone() };
    let res = app.put_json(&format!("/api/v1/clusters/{name}"), serde_json::to_value(&moved).unwrap()).await;
    assert_eq!(res.status(), 400, "sent without the credential, Prometheus says 401");
    linked.prometheus_credential = Some(SourceCredential::None);
    let res = app.put_json(&format!("/api/v1/clusters/{name}"), serde_json::to_value(&linked).unwrap()).await;
    assert_eq!(res.status(), 400);
    app.state.clusters.remove(&app::access::Principal::cli(), &name).await.unwrap();

    // mTLS: a Prometheus serving TLS that asks for a client certificate of its CA.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = (params.self_signed(&ca_key).unwrap(), ca_key);
    let (server_cert, server_key) = issue(&ca, true);
    let (client_cert, client_key) = issue(&ca, false);
    let tls = support::monitor::guarded_prometheus(
        "tls_server_config: {cert_file: DIR/server.crt, key_file: DIR/server.key, \
         client_auth_type: RequireAndVerifyClientCert, client_ca_file: DIR/ca.crt}\n",
        &[("server.crt", &server_cert), ("server.key", &server_key), ("ca.crt", &ca.0.pem())],
        true,
    );
    let name = unique("mtls");
    let mut linked = input(&kube, &name, &kube.pangea_token);
    linked.prometheus_url = tls.url.clone();
    linked.prometheus_credential = Some(SourceCredential::ClientCertificate {
        certificate_pem: client_cert.clone(),
        key_pem: client_key.clone(),
        ca_pem: String::new(),
    });
    let (status, body) = post(&linked).await;
    assert_eq!(status, 400, "the system's roots do not know this CA: {body}");
    linked.prometheus_credential = Some(SourceCredential::ClientCertificate {
        certificate_pem: client_cert,
        key_pem: client_key,
        ca_pem: ca.0.pem(),
    });
    let (status, body) = post(&linked).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["prometheus_auth"], "client_certificate");
    assert_eq!(app.get(&format!("/api/v1/clusters/{name}/query?query=vector(1)")).await.status(), 200);
    app.state.clusters.remove(&app::access::Principal::cli(), &name).await.unwrap();
}
