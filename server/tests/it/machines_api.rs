//! The machines JSON API and service, end to end over HTTP, on SQLite and PostgreSQL.

use crate::support;

use crate::support::TestApp;
use serde_json::{Value, json};

on_both_backends!(
    create_then_get_normalizes_the_mac,
    bad_input_is_refused_with_codes_and_field_messages,
    duplicate_mac_is_a_conflict_and_keeps_the_original,
    update_replaces_fields_and_labels,
    delete_removes_and_missing_is_404,
    search_matches_hostname_label_and_any_mac_form,
    keyset_pages_visit_every_machine_once_in_order,
    descending_sort_by_hostname,
    import_dry_run_reports_every_line_and_writes_nothing,
    import_with_an_error_writes_nothing_and_keeps_existing,
    import_of_tfvars_creates_every_machine,
    csv_export_round_trips_through_import,
    gui_import_job_previews_then_commits,
    add_labels_merges_into_each_machine,
    malformed_paths_queries_and_bodies_answer_the_json_error_shape,
    a_machine_class_is_a_saved_search_the_list_filters_by_audited,
);

/// A class saves a search (checked as the list takes it), counts its machines, filters the
/// list together with a search, and is changed and deleted by operators only, audited.
async fn a_machine_class_is_a_saved_search_the_list_filters_by_audited(app: TestApp) {
    use app::access::ConsoleRole;
    for (mac, rack, host) in
        [("52:54:00:c1:00:01", "r1", "a-1"), ("52:54:00:c1:00:02", "r1", "b-2"), ("52:54:00:c1:00:03", "r2", "a-3")]
    {
        let body = json!({"mac": mac, "hostname": host, "labels": {"rack": rack}});
        assert_eq!(app.post_json("/api/v1/machines", body).await.status(), 201);
    }
    let res =
        app.put_json("/api/v1/machine-classes/rack-one", json!({"query": "rack=r1", "description": "Row 1"})).await;
    assert_eq!(res.status(), 200);
    let class: Value = res.json().await.unwrap();
    assert_eq!((class["members"].as_u64(), class["query"].as_str()), (Some(2), Some("rack=r1")));
    let hosts = |page: Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|m| m["hostname"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(hosts(app.get_json("/api/v1/machines?class=rack-one").await), ["a-1", "b-2"]);
    assert_eq!(hosts(app.get_json("/api/v1/machines?class=rack-one&search=a-").await), ["a-1"]);
    let csv = app.get("/api/v1/machines/export.csv?class=rack-one").await.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Bad input says what is wrong and stores nothing; an unknown class is not found.
    let res = app.put_json("/api/v1/machine-classes/rack-one", json!({"query": "cpus>=many"})).await;
    assert_eq!(res.status(), 400);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["fields"][0]["field"], "query", "{error}");
    assert!(error["message"].as_str().unwrap().contains("whole number"), "{error}");
    let res = app.put_json("/api/v1/machine-classes/Rack_One", json!({"query": "rack=r1"})).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not a valid class name"));
    assert_eq!(app.put_json("/api/v1/machine-classes/empty", json!({"query": "  "})).await.status(), 400);
    let res = app.get("/api/v1/machines?class=nope").await;
    assert_eq!(res.status(), 404);
    assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("no machine class \"nope\""));

    // Saving the same name replaces it.
    let res = app.put_json("/api/v1/machine-classes/rack-one", json!({"query": "rack=r2"})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["members"], 1);
    let classes = app.get_json("/api/v1/machine-classes").await;
    assert_eq!(classes.as_array().unwrap().len(), 1, "{classes}");
    assert_eq!((classes[0]["query"].as_str(), classes[0]["description"].as_str()), (Some("rack=r2"), Some("")));

    // A viewer sees classes but cannot change them.
    app.add_local_user("vera", ConsoleRole::Viewer).await;
    let vera = app.sign_in("vera", "vera-password").await;
    assert_eq!(vera.get(app.at("/api/v1/machine-classes")).send().await.unwrap().status(), 200);
    let res = vera.put(app.at("/api/v1/machine-classes/mine")).json(&json!({"query": "rack=r1"})).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(vera.delete(app.at("/api/v1/machine-classes/rack-one")).send().await.unwrap().status(), 403);

    let delete = || app.client.delete(app.at("/api/v1/machine-classes/rack-one")).send();
    assert_eq!(delete().await.unwrap().status(), 204);
    assert_eq!(delete().await.unwrap().status(), 404);
    let audit = app.get_json("/api/v1/audit?action=machine.class.save").await;
    let outcomes: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "success").count(), 2, "{audit}");
    let deleted = app.get_json("/api/v1/audit?action=machine.class.delete").await;
    let first = &deleted["items"].as_array().unwrap().iter().find(|e| e["outcome"] == "success").unwrap()["summary"];
    let summary: Value = serde_json::from_str(first.as_str().unwrap()).unwrap();
    assert_eq!(summary["before"]["query"], "rack=r2", "{deleted}");
}

/// Every refusal of the API is the documented JSON shape, also those made before a handler runs
/// (a path, query or body its extractor cannot read), and the OpenAPI document lists them.
async fn malformed_paths_queries_and_bodies_answer_the_json_error_shape(app: TestApp) {
    let bad_path = app.get("/api/v1/machines/not-a-number").await;
    let bad_query = app.get("/api/v1/machines?descending=maybe").await;
    let bad_body = app
        .client
        .put(format!("{}/api/v1/machines/1", app.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let bad_text =
        app.client.post(format!("{}/api/v1/dashboards", app.url)).body(vec![0xff, 0xfe, 0x00]).send().await.unwrap();
    for (what, res) in [("path", bad_path), ("query", bad_query), ("body", bad_body), ("text", bad_text)] {
        assert_eq!(res.status(), 400, "{what}");
        assert_eq!(res.headers()["content-type"], "application/json", "{what}");
        let error: Value = res.json().await.unwrap();
        assert_eq!(error["code"], "invalid", "{what}: {error}");
        assert!(error["message"].as_str().unwrap().contains("was not accepted"), "{what}: {error}");
    }
    let doc = app.get_json("/api/v1/openapi.json").await;
    let responses = &doc["paths"]["/api/v1/machines/{id}"]["get"]["responses"];
    for status in ["200", "400", "401", "403", "404", "500"] {
        assert!(responses.get(status).is_some(), "GET /machines/{{id}} documents {status}: {responses}");
    }
    let put = &doc["paths"]["/api/v1/machines/{id}"]["put"]["responses"];
    assert!(put.get("413").is_some(), "a body can be too large: {put}");
}

async fn create_then_get_normalizes_the_mac(app: TestApp) {
    let created = app
        .create(json!({"mac": "5254.00AB.CDEF", "hostname": "Node-1.Example.com", "role": "controller", "labels": {"rack": "r1"}, "cluster": "prod"}))
        .await;
    assert_eq!(created["mac"], "52:54:00:ab:cd:ef");
    assert_eq!(created["hostname"], "node-1.example.com");
    assert_eq!(created["role"], "controller");
    assert_eq!(created["labels"], json!({"rack": "r1"}));
    assert_eq!(created["uuid"], Value::Null);
    let fetched = app.get_json(&format!("/api/v1/machines/{}", created["id"])).await;
    assert_eq!(fetched, created);
}

async fn bad_input_is_refused_with_codes_and_field_messages(app: TestApp) {
    let res = app
        .post_json(
            "/api/v1/machines",
            json!({"mac": "52:54:00:zz:00:01", "hostname": "<script>", "labels": {"x": "<b>"}}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid");
    let fields: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["mac", "hostname", "labels"]);
    assert!(body["message"].as_str().unwrap().contains("\"52:54:00:zz:00:01\" is not a MAC address"));

    let res = app
        .client
        .post(app.at("/api/v1/machines"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "invalid");

    // The documented limit: 8 MiB.
    let huge = "x".repeat(8 * 1024 * 1024 + 1);
    let res = app
        .client
        .post(app.at("/api/v1/machines"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "too_large");

    let res = app.get("/api/v1/machines?sort=colour").await;
    assert_eq!(res.status(), 400);
    assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("\"colour\""));

    let res = app.get("/api/v1/machines?after=garbage").await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.count().await, 0, "nothing was stored");
}

async fn duplicate_mac_is_a_conflict_and_keeps_the_original(app: TestApp) {
    app.create(json!({"mac": "52:54:00:00:00:01", "hostname": "first"})).await;
    let res = app.post_json("/api/v1/machines", json!({"mac": "52-54-00-00-00-01", "hostname": "second"})).await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "conflict");
    assert_eq!(body["message"], "A machine with MAC 52:54:00:00:00:01 already exists.");
    let list = app.get_json("/api/v1/machines").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["hostname"], "first");
}

async fn update_replaces_fields_and_labels(app: TestApp) {
    let m = app.create(json!({"mac": "52:54:00:00:00:01", "labels": {"a": "1", "b": "2"}})).await;
    let other = app.create(json!({"mac": "52:54:00:00:00:02"})).await;
    let res = app
        .client
        .put(app.at(&format!("/api/v1/machines/{}", m["id"])))
        .json(&json!({"mac": "52:54:00:00:00:03", "hostname": "renamed", "labels": {"b": "3"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["mac"], "52:54:00:00:00:03");
    assert_eq!(updated["labels"], json!({"b": "3"}));
    assert_eq!(updated["created_at"], m["created_at"]);
    assert!(updated["updated_at"].as_str() > m["updated_at"].as_str());
    // Taking another machine's MAC is a conflict, and changes nothing.
    let res = app
        .client
        .put(app.at(&format!("/api/v1/machines/{}", m["id"])))
        .json(&json!({"mac": other["mac"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(app.get_json(&format!("/api/v1/machines/{}", m["id"])).await["hostname"], "renamed");
    let res = app
        .client
        .put(app.at("/api/v1/machines/999999"))
        .json(&json!({"mac": "52:54:00:00:00:09"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn delete_removes_and_missing_is_404(app: TestApp) {
    let m = app.create(json!({"mac": "52:54:00:00:00:01", "labels": {"a": "1"}})).await;
    let path = format!("/api/v1/machines/{}", m["id"]);
    assert_eq!(app.client.delete(app.at(&path)).send().await.unwrap().status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    let res = app.client.delete(app.at(&path)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "not_found");
}

async fn search_matches_hostname_label_and_any_mac_form(app: TestApp) {
    app.create(json!({"mac": "52:54:00:00:00:01", "hostname": "alpha-1", "labels": {"rack": "r1"}})).await;
    app.create(json!({"mac": "52:54:00:00:00:02", "hostname": "beta-1", "labels": {"rack": "r2"}})).await;
    app.create(json!({"mac": "52:54:00:00:01:00", "hostname": "gamma-less", "labels": {"zone": "r1"}})).await;
    let macs = |v: Value| {
        v["items"].as_array().unwrap().iter().map(|m| m["mac"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(macs(app.get_json("/api/v1/machines?search=ALPHA").await), ["52:54:00:00:00:01"]);
    assert_eq!(macs(app.get_json("/api/v1/machines?search=rack%3Dr1").await), ["52:54:00:00:00:01"]);
    assert_eq!(macs(app.get_json("/api/v1/machines?search=r1").await), ["52:54:00:00:00:01", "52:54:00:00:01:00"]);
    assert_eq!(macs(app.get_json("/api/v1/machines?search=5254.0000.0002").await), ["52:54:00:00:00:02"]);
    assert_eq!(macs(app.get_json("/api/v1/machines?search=00:00:00:0").await).len(), 2);
    // LIKE wildcards in the term are literal.
    assert!(macs(app.get_json("/api/v1/machines?search=%25").await).is_empty());
    assert!(macs(app.get_json("/api/v1/machines?search=a_1").await).is_empty());
}

async fn keyset_pages_visit_every_machine_once_in_order(app: TestApp) {
    for i in 0..7u8 {
        app.create(json!({"mac": format!("52:54:00:00:00:{:02x}", 7 - i), "hostname": "same"})).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/machines?limit=3&sort=hostname".to_string();
    let mut pages = 0;
    loop {
        let page = app.get_json(&path).await;
        pages += 1;
        seen.extend(page["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/machines?limit=3&sort=hostname&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "equal host names fall back to id order");
    assert_eq!(seen.len(), 7);
}

async fn descending_sort_by_hostname(app: TestApp) {
    for (mac, host) in [("52:54:00:00:00:01", "b"), ("52:54:00:00:00:02", "c"), ("52:54:00:00:00:03", "a")] {
        app.create(json!({"mac": mac, "hostname": host})).await;
    }
    let page = app.get_json("/api/v1/machines?sort=hostname&descending=true&limit=2").await;
    let hosts: Vec<&str> = page["items"].as_array().unwrap().iter().map(|m| m["hostname"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["c", "b"]);
    let next = page["next"].as_str().unwrap();
    let rest = app.get_json(&format!("/api/v1/machines?sort=hostname&descending=true&limit=2&after={next}")).await;
    assert_eq!(rest["items"][0]["hostname"], "a");
    assert!(rest["next"].is_null());
}

const BROKEN_CSV: &str = "mac,hostname,role\n52:54:00:00:00:10,n10,worker\n52:54:00:zz:00:11,n11,worker\n52:54:00:00:00:10,dup,worker\n52:54:00:00:00:01,taken,worker\n52:54:00:00:00:12,n12,boss\n";

async fn import_dry_run_reports_every_line_and_writes_nothing(app: TestApp) {
    app.create(json!({"mac": "52:54:00:00:00:01"})).await;
    let res = app.post_json("/api/v1/machines/import", json!({"text": BROKEN_CSV, "dry_run": true})).await;
    assert_eq!(res.status(), 422);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["format"], "csv");
    assert_eq!((report["creatable"].as_u64(), report["errors"].as_u64()), (Some(1), Some(4)));
    let lines = report["lines"].as_array().unwrap();
    let by_line = |n: u64| lines.iter().find(|l| l["line"] == n).unwrap()["errors"].as_array().unwrap().clone();
    assert!(by_line(2).is_empty());
    assert!(by_line(3)[0].as_str().unwrap().contains("\"52:54:00:zz:00:11\" is not a MAC address"));
    assert_eq!(by_line(4)[0], "MAC 52:54:00:00:00:10 is already on line 2.");
    assert_eq!(by_line(5)[0], "A machine with MAC 52:54:00:00:00:01 already exists.");
    assert!(by_line(6)[0].as_str().unwrap().contains("\"boss\" is not a role"));
    assert_eq!(report["committed"], false);
    assert_eq!(app.count().await, 1);
}

async fn import_with_an_error_writes_nothing_and_keeps_existing(app: TestApp) {
    app.create(json!({"mac": "52:54:00:00:00:01", "hostname": "keep"})).await;
    let res = app.post_json("/api/v1/machines/import", json!({"text": BROKEN_CSV})).await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["committed"], false);
    assert_eq!(app.count().await, 1);
    assert_eq!(app.get_json("/api/v1/machines").await["items"][0]["hostname"], "keep");
    let res = app.post_json("/api/v1/machines/import", json!({"format": "typhoon", "text": "controllers = [{"})).await;
    assert_eq!(res.status(), 400);
    assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("line 1"));
}

async fn import_of_tfvars_creates_every_machine(app: TestApp) {
    let tectonic = r#"
tectonic_cluster_name = "mercury"
tectonic_metal_controller_macs = ["52:54:00:a1:9c:ae"]
tectonic_metal_controller_domains = ["node1.example.com"]
tectonic_metal_worker_macs = ["52:54:00:b2:2f:86", "52:54:00:c3:61:77"]
tectonic_metal_worker_domains = ["node2.example.com", "node3.example.com"]
"#;
    let res = app.post_json("/api/v1/machines/import", json!({"text": tectonic})).await;
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!((report["format"].as_str(), report["committed"].as_bool()), (Some("tectonic"), Some(true)));
    let page = app.get_json("/api/v1/machines?search=node1").await;
    assert_eq!(page["items"][0]["role"], "controller");
    assert_eq!(page["items"][0]["cluster"], "mercury");

    let typhoon = r#"workers = [{ name = "node4", mac = "52:54:00:d4:00:01", domain = "node4.example.com" }]"#;
    let res = app.post_json("/api/v1/machines/import", json!({"text": typhoon, "format": "typhoon"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count().await, 4);
}

async fn csv_export_round_trips_through_import(app: TestApp) {
    app.create(json!({"mac": "52:54:00:00:00:01", "hostname": "a", "labels": {"k": "v", "z": "w"}, "serial": "SN 1"}))
        .await;
    app.create(json!({"mac": "52:54:00:00:00:02", "role": "controller", "cluster": "c1"})).await;
    let res = app.get("/api/v1/machines/export.csv").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    assert!(csv.starts_with("mac,hostname,role,labels,cluster,uuid,serial\n"), "{csv}");
    assert!(csv.contains("52:54:00:00:00:01,a,worker,\"k=v,z=w\",,,SN 1\n"), "{csv}");
    let filtered = app.get("/api/v1/machines/export.csv?search=c1").await.text().await.unwrap();
    assert_eq!(filtered.lines().count(), 2);
    // Importing the export elsewhere recreates the same machines.
    let other = support::spawn_app(support::Backend::Sqlite).await;
    let res = other.post_json("/api/v1/machines/import", json!({"text": csv})).await;
    assert_eq!(res.status(), 200);
    let a = other.get_json("/api/v1/machines?search=52:54:00:00:00:01").await;
    assert_eq!(a["items"][0]["labels"], json!({"k": "v", "z": "w"}));
    assert_eq!(a["items"][0]["serial"], "SN 1");
}

async fn gui_import_job_previews_then_commits(app: TestApp) {
    let text: String = std::iter::once("mac,hostname".to_string())
        .chain((0..2000u32).map(|i| format!("52:54:00:01:{:02x}:{:02x},host-{i}", i >> 8, i & 0xff)))
        .collect::<Vec<_>>()
        .join("\n");
    let res = app.post_json("/api/gui/start_import", json!({"format": "auto", "text": text})).await;
    assert_eq!(res.status(), 200);
    let job: String = res.json().await.unwrap();
    let progress = |app: &TestApp, job: String| {
        let client = app.client.clone();
        let url = app.at("/api/gui/poll_import");
        async move { client.post(url).json(&json!({"job": job})).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mut state = progress(&app, job.clone()).await;
    while support::import_phase(&state) == "checking" {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        state = progress(&app, job.clone()).await;
    }
    assert_eq!(support::import_phase(&state), "previewed", "{state}");
    assert!(state["html"].as_str().unwrap().contains("2000 machines to create"), "{state}");
    assert_eq!(app.count().await, 0, "a preview writes nothing");
    let res = app.post_json("/api/gui/commit_import", json!({"job": job})).await;
    assert_eq!(res.status(), 200);
    loop {
        state = progress(&app, job.clone()).await;
        if support::import_phase(&state) != "committing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(support::import_phase(&state), "committed", "{state}");
    assert!(state["html"].as_str().unwrap().contains("Imported 2000 machines."), "{state}");
    assert_eq!(app.count().await, 2000);
    // A job commits once.
    let res = app.post_json("/api/gui/commit_import", json!({"job": job})).await;
    assert_eq!(res.status(), 409);
    let res = app.post_json("/api/gui/poll_import", json!({"job": "nope"})).await;
    assert_eq!(res.status(), 404);
}

async fn add_labels_merges_into_each_machine(app: TestApp) {
    let a = app.create(json!({"mac": "52:54:00:00:00:01", "labels": {"keep": "1", "tier": "old"}})).await;
    let b = app.create(json!({"mac": "52:54:00:00:00:02"})).await;
    let res = app
        .post_json("/api/gui/add_machine_labels", json!({"ids": [a["id"], b["id"]], "labels": {"tier": "gold"}}))
        .await;
    assert_eq!(res.status(), 200);
    let a = app.get_json(&format!("/api/v1/machines/{}", a["id"])).await;
    assert_eq!(a["labels"], json!({"keep": "1", "tier": "gold"}));
    let found = app.get_json("/api/v1/machines?search=tier%3Dgold").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 2);
    // Searching by substring sees the new label too.
    assert_eq!(app.get_json("/api/v1/machines?search=gold").await["items"].as_array().unwrap().len(), 2);
    // One missing machine: nothing changes.
    let res =
        app.post_json("/api/gui/add_machine_labels", json!({"ids": [b["id"], 999999], "labels": {"x": "y"}})).await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.get_json(&format!("/api/v1/machines/{}", b["id"])).await["labels"], json!({"tier": "gold"}));
    let res = app.post_json("/api/gui/add_machine_labels", json!({"ids": [b["id"]], "labels": {"bad key": "y"}})).await;
    assert_eq!(res.status(), 400);
}
