//! Boot events over a real boot listener, on both databases: each request becomes an event on
//! its machine's timeline, states follow the way from PXE to installed, failures say why in
//! words, unknown MACs are discovered (and bounded) and can be added, and pages follow along live.

use crate::support;

use crate::support::{Backend, TestApp};
use app::access::Principal;
use serde_json::{Value, json};
use sha2::Digest;
use std::net::SocketAddr;
use std::time::Duration;

on_both_backends!(
    a_boot_from_pxe_to_installed_is_one_timeline,
    a_failed_request_says_why_in_words,
    unknown_machines_are_discovered_and_added,
    a_live_timeline_follows_each_request,
    the_boot_listener_bounds_queries_and_rates_before_it_answers,
);

mod bounded {
    use super::*;
    on_both_backends_with_own_app!(boot_history_and_discovery_are_bounded);
}

const MAC: &str = "52:54:00:12:34:56";

/// A profile with a kernel, an initrd and a Butane template writing a file that names the machine.
async fn catalog(app: &TestApp) {
    use pangea::provisioner::model::{Profile, TemplateFile, TemplateKind};
    let p = &app.state.provisioner;
    let cli = Principal::cli();
    let butane = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/pangea-proof\n      contents:\n        inline: \"{{.mac}} {{.hostname}}\"\n    - path: /etc/pangea/report-token\n      contents:\n        inline: \"{{.report_token}}\"\n";
    p.put_template(&cli, TemplateFile { kind: TemplateKind::Ignition, id: "node.yaml".into(), content: butane.into() })
        .await
        .unwrap();
    let profile: Profile = serde_json::from_value(json!({
        "id": "node", "ignition_id": "node.yaml",
        "boot": {"kernel": "/assets/vmlinuz", "initrd": ["/assets/initrd.img"], "args": ["ignition.config.url=http://boot/ignition?mac=${mac:hexhyp}"]},
    }))
    .unwrap();
    p.put_profile(&cli, profile).await.unwrap();
    std::fs::create_dir_all(&p.assets_dir).unwrap();
    std::fs::write(p.assets_dir.join("vmlinuz"), "kernel").unwrap();
    std::fs::write(p.assets_dir.join("initrd.img"), "initrd").unwrap();
}

async fn add_machine(app: &TestApp, mac: &str, profile: &str) {
    app.create(json!({"mac": mac, "hostname": "node-7.example.com", "role": "worker"})).await;
    app.state.provisioner.set_machine_profile(&Principal::cli(), mac, profile).await.unwrap();
}

/// What the boot listener answers: status and body.
async fn boot(addr: SocketAddr, path: &str) -> (u16, String) {
    let res = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The timeline once `done` holds for it (the writer batches events off the request path).
async fn timeline_when(app: &TestApp, mac: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
        if done(&timeline) {
            return timeline;
        }
        assert!(tokio::time::Instant::now() < deadline, "the timeline never got there: {timeline:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn endpoints(timeline: &Value) -> Vec<String> {
    timeline["events"].as_array().unwrap().iter().map(|e| e["endpoint"].as_str().unwrap().to_string()).collect()
}

fn steps(timeline: &Value) -> Vec<String> {
    timeline["events"].as_array().unwrap().iter().map(|e| e["step"].as_str().unwrap_or("-").to_string()).collect()
}

async fn a_boot_from_pxe_to_installed_is_one_timeline(app: TestApp) {
    catalog(&app).await;
    add_machine(&app, MAC, "node").await;
    app.state.provisioner.record_boots(&app.state.background);
    let addr = app.boot_listener().await;
    let never = app.get_json(&format!("/api/v1/machines?state=never_seen&search={MAC}")).await;
    assert_eq!(never["items"].as_array().unwrap().len(), 1, "not seen yet: {never}");

    // What iPXE does: the fixed script, its chain with labels, kernel and initrd (no labels:
    // they belong to the machine by address), then Ignition, then the guest's report.
    assert_eq!(boot(addr, "/boot.ipxe").await.0, 200);
    let (status, script) = boot(addr, "/ipxe?uuid=&mac=52-54-00-12-34-56&domain=&hostname=&serial=&arch=x86_64").await;
    assert_eq!(status, 200);
    assert!(script.contains("kernel /assets/vmlinuz"), "{script}");
    assert_eq!(boot(addr, "/assets/vmlinuz").await.0, 200);
    assert_eq!(boot(addr, "/assets/initrd.img").await.0, 200);
    let (status, config) = boot(addr, "/ignition?mac=52-54-00-12-34-56").await;
    assert_eq!(status, 200);
    assert!(config.contains("node-7.example.com"), "{config}");
    // Its config holds its report token, which its report presents.
    let token = app.state.provisioner.report_tokens.token(MAC, time::OffsetDateTime::now_utc());
    assert!(config.contains(&token), "{config}");
    let report = format!("/metadata?mac=52-54-00-12-34-56&stage=done&report_token={token}");
    assert_eq!(boot(addr, &report).await.0, 200);

    let timeline = timeline_when(&app, MAC, |t| t["events"].as_array().unwrap().len() == 6).await;
    assert_eq!(
        endpoints(&timeline),
        ["/boot.ipxe", "/ipxe", "/assets/vmlinuz", "/assets/initrd.img", "/ignition", "/metadata"]
    );
    assert_eq!(steps(&timeline), ["pxe", "script", "assets", "assets", "ignition", "installed"]);
    assert_eq!(timeline["status"]["state"], "installed");
    let events = timeline["events"].as_array().unwrap();
    let ignition = &events[4];
    assert_eq!(
        (ignition["group"].as_str(), ignition["profile"].as_str()),
        (Some("~inventory:52:54:00:12:34:56"), Some("node"))
    );
    assert_eq!(ignition["status"], 200);
    assert_eq!(ignition["bytes"].as_u64().unwrap() as usize, config.len());
    assert_eq!(ignition["client"], "127.0.0.1");
    assert_eq!(ignition["labels"]["mac"], MAC, "labels as the listener reads them");
    assert!(events[5]["labels"].get("report_token").is_none(), "a token is checked, never kept");
    // The console keeps exactly what was served, but for the report token, which only the
    // machine's config holds (viewers read timelines).
    let kept = config.replace(&token, "(this machine's report token)");
    assert_ne!(kept, config);
    let digest = hex::encode(sha2::Sha256::digest(kept.as_bytes()));
    assert_eq!(ignition["sha256"], digest.as_str());
    let served = app.get(&format!("/api/v1/boot/served/{digest}")).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), kept);
    assert!(events.iter().all(|e| e["at"].as_str().unwrap().ends_with('Z') && e["duration_us"].as_u64().is_some()));

    // The machines list shows the state and filters by it.
    let installed = app.get_json("/api/v1/machines?state=installed").await;
    assert_eq!(installed["items"][0]["mac"], MAC);
    assert_eq!(installed["states"][MAC]["state"], "installed");
    let failed = app.get_json("/api/v1/machines?state=failed").await;
    assert!(failed["items"].as_array().unwrap().is_empty());
    let bad = app.get("/api/v1/machines?state=booting").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("not a boot state"));

    // The chart's last minute counts the boot that started and the one that finished.
    let activity = app.get_json("/api/v1/boot/activity").await;
    let minutes = activity["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let total = |key: &str| minutes.iter().map(|m| m[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total("started"), total("finished"), total("failed")), (1, 1, 0));

    // A reboot of the installed machine, with os=installed, is `installed` again.
    let reboot = format!("/ignition?mac=52-54-00-12-34-56&os=installed&report_token={token}");
    assert_eq!(boot(addr, &reboot).await.0, 200);
    let timeline = timeline_when(&app, MAC, |t| t["events"].as_array().unwrap().len() == 7).await;
    assert_eq!(timeline["status"]["state"], "installed");

    // Anyone on the boot network can claim it failed: without its token, that changes nothing.
    assert_eq!(boot(addr, "/metadata?mac=52-54-00-12-34-56&stage=failed&reason=forged").await.0, 200);
    let forged = format!("/metadata?mac=52-54-00-12-34-56&stage=failed&report_token={}", "0".repeat(token.len()));
    assert_eq!(boot(addr, &forged).await.0, 200);
    let timeline = timeline_when(&app, MAC, |t| t["events"].as_array().unwrap().len() == 9).await;
    assert_eq!(timeline["status"]["state"], "installed");
    let events = timeline["events"].as_array().unwrap();
    let reasons: Vec<&str> = events[7..].iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].starts_with("unverified report of failed (it carries no report_token)"), "{reasons:?}");
    assert!(reasons[1].contains("not this machine's, or expired"), "{reasons:?}");
    assert!(events[7..].iter().all(|e| e["step"].is_null()));
}

async fn a_failed_request_says_why_in_words(app: TestApp) {
    catalog(&app).await;
    app.create(json!({"mac": MAC, "role": "worker"})).await;
    let group =
        serde_json::from_value(json!({"id": "node-7", "profile": "node", "selector": {"mac": MAC, "os": "installed"}}))
            .unwrap();
    app.state.provisioner.put_group(&Principal::cli(), group).await.unwrap();
    app.state.provisioner.record_boots(&app.state.background);
    let addr = app.boot_listener().await;
    let (status, body) = boot(addr, "/ignition?mac=52:54:00:12:34:56").await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"), "the machine learns nothing more");
    let timeline = timeline_when(&app, MAC, |t| !t["events"].as_array().unwrap().is_empty()).await;
    assert_eq!(timeline["status"]["state"], "failed");
    let reason = "ignition: no group selects mac=52:54:00:12:34:56; the nearest group node-7 needs os=installed";
    assert_eq!(timeline["status"]["reason"], reason);
    assert_eq!(timeline["events"][0]["reason"], reason);
    assert_eq!(timeline["events"][0]["status"], 404);
    assert!(timeline["events"][0]["sha256"].is_null(), "nothing was served");

    // A template that fails to render is a failure with the template's own error. (Saving
    // renders it for the groups that use it, so it fails only for what those lack: a uuid.)
    use pangea::provisioner::model::{TemplateFile, TemplateKind};
    let broken = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /x\n      contents:\n        inline: \"{{if index .request.query \"uuid\"}}{{.missing}}{{end}}\"\n";
    app.state
        .provisioner
        .put_template(
            &Principal::cli(),
            TemplateFile { kind: TemplateKind::Ignition, id: "node.yaml".into(), content: broken.into() },
        )
        .await
        .unwrap();
    assert_eq!(boot(addr, "/ignition?mac=52:54:00:12:34:56&os=installed&uuid=1").await.0, 404);
    let timeline = timeline_when(&app, MAC, |t| t["events"].as_array().unwrap().len() == 2).await;
    let reason = timeline["status"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("ignition: template node.yaml:") && reason.contains("missing"), "{reason}");
    assert_eq!(timeline["events"][1]["group"], "node-7");
    let failed = app.get_json("/api/v1/machines?state=failed").await;
    assert_eq!(failed["items"][0]["mac"], MAC);
    assert_eq!(failed["states"][MAC]["reason"], reason);
}

async fn unknown_machines_are_discovered_and_added(app: TestApp) {
    catalog(&app).await;
    app.state.provisioner.record_boots(&app.state.background);
    let addr = app.boot_listener().await;
    let unknown = ["52:54:00:aa:00:01", "52:54:00:aa:00:02"];
    for (i, mac) in unknown.iter().enumerate() {
        let path =
            format!("/ipxe?uuid=0000000{i}-aaaa-bbbb-cccc-000000000000&mac={mac}&hostname=&serial=SN{i}&arch=x86_64");
        assert_eq!(boot(addr, &path).await.0, 404, "no group: Matchbox's 404");
    }
    let discovered = loop {
        let list = app.get_json("/api/v1/boot/discovered").await;
        if list.as_array().unwrap().len() == 2 {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first = discovered.as_array().unwrap().iter().find(|d| d["mac"] == unknown[0]).unwrap();
    assert_eq!(first["uuid"], "00000000-aaaa-bbbb-cccc-000000000000");
    assert_eq!((first["serial"].as_str(), first["arch"].as_str()), (Some("SN0"), Some("x86_64")));
    assert!(first["hostname"].is_null(), "an empty label is no host name");
    assert_eq!(first["requests"], 1);
    let timeline = timeline_when(&app, unknown[0], |t| t["status"]["state"] == "failed").await;
    assert!(timeline["status"]["reason"].as_str().unwrap().contains("there is no default group"), "{timeline}");

    // Bad input is refused with a message, and nothing is added.
    let viewer = app.token(app::access::ConsoleRole::Viewer).await;
    let refused = reqwest::Client::new()
        .post(app.at("/api/v1/boot/discovered/adopt"))
        .bearer_auth(viewer)
        .json(&json!({"macs": unknown}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    for (body, message) in [
        (json!({"macs": []}), "at least one"),
        (json!({"macs": ["52:54:00:aa:00:01", "not-a-mac"]}), "not-a-mac"),
        (json!({"macs": ["52:54:00:aa:00:09"]}), "not among the discovered"),
        (json!({"macs": unknown, "role": "boss"}), "role"),
        (json!({"macs": unknown, "profile": "nope"}), "does not exist"),
    ] {
        let res = app.post_json("/api/v1/boot/discovered/adopt", body.clone()).await;
        assert_eq!(res.status(), 400, "{body}");
        assert!(res.text().await.unwrap().contains(message), "{body}: {message}");
    }
    assert_eq!(app.count().await, 0, "nothing half-written");

    // One action adds both, with a profile; they boot on their next try.
    let res = app
        .post_json(
            "/api/v1/boot/discovered/adopt",
            json!({"macs": unknown, "role": "worker", "cluster": "edge-1", "profile": "node"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!(unknown));
    assert!(app.get_json("/api/v1/boot/discovered").await.as_array().unwrap().is_empty());
    let machine = app.get_json(&format!("/api/v1/machines?search={}", unknown[1])).await;
    let machine = &machine["items"][0];
    assert_eq!((machine["serial"].as_str(), machine["cluster"].as_str()), (Some("SN1"), Some("edge-1")));
    assert_eq!(machine["uuid"], "00000001-aaaa-bbbb-cccc-000000000000");
    assert_eq!(machine["labels"]["arch"], "x86_64");
    let (status, script) = boot(addr, &format!("/ipxe?mac={}", unknown[0])).await;
    assert_eq!(status, 200, "it boots on its next try");
    assert!(script.contains("/assets/vmlinuz"));
    // Its timeline goes on where discovery left it.
    let timeline = timeline_when(&app, unknown[0], |t| t["status"]["state"] == "script").await;
    assert_eq!(steps(&timeline), ["failed", "script"]);
    // Each added machine has its audit record.
    let audit = app.get_json("/api/v1/audit?action=machine.adopt").await;
    let records: Vec<&Value> =
        audit["items"].as_array().unwrap().iter().filter(|r| r["outcome"] == "success").collect();
    assert_eq!(records.len(), 2, "{audit:#}");
}

async fn a_live_timeline_follows_each_request(app: TestApp) {
    catalog(&app).await;
    add_machine(&app, MAC, "node").await;
    app.state.provisioner.record_boots(&app.state.background);
    let addr = app.boot_listener().await;
    let res = app.get(&format!("/api/v1/boot/timeline/{MAC}/live")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut res = res;
    let mut text = String::new();
    let mut next_timeline = async || -> Value {
        loop {
            if let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    assert!(frame.starts_with("event: timeline"), "{frame}");
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await.unwrap().unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    let first = next_timeline().await;
    assert!(first["events"].as_array().unwrap().is_empty() && first["status"].is_null());
    boot(addr, "/ipxe?mac=52-54-00-12-34-56").await;
    let second = next_timeline().await;
    assert_eq!(endpoints(&second), ["/ipxe"]);
    assert_eq!(second["status"]["state"], "script");
    // Another machine's boot is not this page's news.
    boot(addr, "/ipxe?mac=52-54-00-99-99-99").await;
    boot(addr, "/ignition?mac=52-54-00-12-34-56").await;
    let third = next_timeline().await;
    assert_eq!(endpoints(&third), ["/ipxe", "/ignition"]);
}

async fn boot_history_and_discovery_are_bounded(backend: Backend) {
    let app = support::spawn_app_with(backend, async |config| {
        config.boot_retention.per_machine = 3;
        config.boot_retention.discovered = 2;
    })
    .await;
    catalog(&app).await;
    add_machine(&app, MAC, "node").await;
    app.state.provisioner.record_boots(&app.state.background);
    let addr = app.boot_listener().await;
    for _ in 0..5 {
        boot(addr, "/ipxe?mac=52-54-00-12-34-56").await;
    }
    boot(addr, "/ignition?mac=52-54-00-12-34-56").await;
    let timeline = timeline_when(&app, MAC, |t| t["status"]["state"] == "ignition").await;
    assert_eq!(endpoints(&timeline), ["/ipxe", "/ipxe", "/ignition"], "the newest three are kept");

    // A rogue network: a real new machine asks as firmware does (more than once), then many
    // forged MACs ask once each. The list keeps two: the forged ones give way to each other
    // (those that asked least first, then those seen longest ago), and the real one stays.
    boot(addr, "/ipxe?mac=02:00:00:00:00:00").await;
    boot(addr, "/ignition?mac=02:00:00:00:00:00").await;
    for i in 1..=6 {
        boot(addr, &format!("/ipxe?mac=02:00:00:00:00:{i:02x}")).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let macs = loop {
        let listed = app.get_json("/api/v1/boot/discovered").await;
        let macs: Vec<String> =
            listed.as_array().unwrap().iter().map(|d| d["mac"].as_str().unwrap().to_string()).collect();
        if macs.contains(&"02:00:00:00:00:06".to_string()) {
            break macs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(macs.len(), 2, "{macs:?}");
    assert!(macs.contains(&"02:00:00:00:00:00".to_string()), "the machine that asked twice stays: {macs:?}");
    assert_eq!(app.state.provisioner.boots.gave_way(), 5, "02 to 06 each took the place of the one before");
    assert_eq!(app.state.provisioner.boots.dropped(), 0);
    let page = app.post_json("/api/gui/discovered_machines", serde_json::json!({})).await.text().await.unwrap();
    assert!(page.contains("5 entries gave way to newly seen MACs"), "{page}");

    // Age: everything older than the retention goes (here: all, with a cutoff in the future).
    let pool = app.state.db.pool();
    sqlx::query("UPDATE boot_events SET at = '2000-01-01T00:00:00.000000Z'").execute(pool).await.unwrap();
    sqlx::query("UPDATE discovered_machines SET last_seen = '2000-01-01T00:00:00.000000Z'")
        .execute(pool)
        .await
        .unwrap();
    assert!(app.state.provisioner.boots.prune().await.unwrap() > 0);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM boot_events").fetch_one(pool).await.unwrap();
    let configs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM boot_configs").fetch_one(pool).await.unwrap();
    assert_eq!((left, configs), (0, 0));
    assert!(app.get_json("/api/v1/boot/discovered").await.as_array().unwrap().is_empty());
}

async fn the_boot_listener_bounds_queries_and_rates_before_it_answers(app: TestApp) {
    catalog(&app).await;
    app.state.provisioner.record_boots(&app.state.background);
    let addr = app.boot_listener().await;
    let long = format!("/ipxe?mac={MAC}&x={}", "a".repeat(2100));
    assert_eq!(boot(addr, &long).await.0, 414);
    let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
    assert_eq!(boot(addr, &format!("/ipxe?{}", many.join("&"))).await.0, 400);
    let wide = format!("/ipxe?mac={MAC}&note={}", "b".repeat(300));
    assert_eq!(boot(addr, &wide).await.0, 400);
    // One MAC asking far faster than a machine does: past its burst (40), it gets 429s. Another
    // MAC from the same address is still answered.
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(boot(addr, "/ipxe?mac=52:54:00:00:00:99").await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_ne!(boot(addr, &format!("/ipxe?mac={MAC}")).await.0, 429);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for reason in ["mac_rate", "oversized_query"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with("pangea_boot_requests_refused_total") && l.contains(reason))
            .unwrap_or_else(|| panic!("no {reason} line in {metrics}"));
        let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 1, "{line}");
    }
    // The Discovered page says so in one line.
    let page = app.post_json("/api/gui/discovered_machines", serde_json::json!({})).await.text().await.unwrap();
    assert!(page.contains("the boot listener refused") && page.contains("over the per-MAC rate"), "{page}");
    // Refused requests are neither answered with a config nor recorded.
    let timeline = timeline_when(&app, MAC, |t| !t["events"].as_array().unwrap().is_empty()).await;
    assert!(
        timeline["events"].as_array().unwrap().iter().all(|e| e["status"] != 414 && e["status"] != 400),
        "{timeline}"
    );
}
