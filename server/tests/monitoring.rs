//! Monitoring against real parts: Debian's Prometheus scraping a real node_exporter, the real
//! kube-apiserver and its etcd (see `support::monitor`). Linking checks each source; charts
//! carry exactly what Prometheus answers; a Prometheus that stops is named, not drawn empty.

mod support;

use app::access::ConsoleRole;
use app::clusters::ssr::ClusterService;
use app::monitoring::ssr::MonitoringService;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::TestApp;
use support::kube::{Kube, eventually, input, unique};

on_both_backends!(charts_come_from_the_clusters_prometheus_and_say_when_it_is_down);

/// A node whose InternalIP is node_exporter's address, as a kubelet on that host would report.
async fn create_local_node(kube: &Kube, name: &str) {
    let nodes: Api<Node> = Api::all(kube.admin().await);
    let node: Node = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({ "status": { "addresses": [{ "type": "InternalIP", "address": "127.0.0.1" }] } });
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
    create_local_node(&kube, &node).await;
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
    let mut elsewhere = support::kube::person("dana@example.com", &[], ConsoleRole::Viewer);
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
