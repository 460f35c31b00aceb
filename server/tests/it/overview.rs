//! The home page's fleet at a glance, on both databases: machines counted by boot and power
//! state, running jobs and the last failures, each for those who may see it.

use crate::creation::CREATED;
use crate::support::TestApp;
use serde_json::json;

on_both_backends!(the_home_page_counts_machines_by_state_and_lists_running_jobs_and_failures);

async fn the_home_page_counts_machines_by_state_and_lists_running_jobs_and_failures(app: TestApp) {
    for n in 1..=3 {
        app.create(json!({
            "mac": format!("52:54:00:00:0e:0{n}"), "hostname": format!("e9-{n}"), "labels": { "pool": "edge-9" },
        }))
        .await;
    }
    app.state.provisioner.record_boots(&app.state.background);
    let boot = app.boot_listener().await;
    // A machine with nothing to boot: its boot fails (404), with the reason kept.
    assert_eq!(reqwest::get(format!("http://{boot}/ipxe?mac=52:54:00:00:0e:03")).await.unwrap().status(), 404);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let fleet = loop {
        let fleet = app.get_json("/api/v1/overview").await;
        if fleet["failures"].as_array().is_some_and(|f| !f.is_empty()) {
            break fleet;
        }
        assert!(tokio::time::Instant::now() < deadline, "the failed boot never showed: {fleet:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        fleet["by_boot_state"],
        json!([{ "state": "failed", "machines": 1 }, { "state": "never_seen", "machines": 2 }])
    );
    assert_eq!(fleet["by_power_state"], json!([{ "state": "no_bmc", "machines": 3 }]));
    assert_eq!(fleet["failures"][0]["what"], "machine e9-3");
    assert!(fleet["failures"][0]["link"].as_str().unwrap().starts_with("/machines/"));
    assert!(!fleet["failures"][0]["reason"].as_str().unwrap().is_empty());
    assert_eq!(fleet["jobs"], json!([]));

    // A creation runs: the admin sees it, with where to follow it; a viewer sees the counts but
    // not other people's jobs.
    let created = app.post_json("/api/v1/cluster-creations", json!({ "template": CREATED })).await;
    assert_eq!(created.status(), 201);
    let fleet = app.get_json("/api/v1/overview").await;
    assert_eq!(fleet["jobs"][0]["kind"], "creating cluster edge-9");
    assert_eq!(fleet["jobs"][0]["link"], "/clusters/create?name=edge-9");
    let viewer = app.token(app::access::ConsoleRole::Viewer).await;
    let seen: serde_json::Value = app
        .anonymous()
        .get(app.at("/api/v1/overview"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["by_power_state"], fleet["by_power_state"]);
    assert_eq!(seen["jobs"], json!([]));
}
