//! Cluster creation: a template's plan against the inventory, on both databases, and kubelet
//! certificate requests against a real API server: made as a real bootstrap token user and as
//! real nodes (impersonated by the admin), judged by Pangea with only the rights it asks for on a
//! cluster it creates.

use crate::support::{TestApp, free_port};
use app::access::{ConsoleRole, Identity, Principal};
use pangea::creation::template::ClusterTemplate;
use serde_json::json;

on_both_backends!(
    a_template_takes_machines_by_mac_search_and_class_and_names_what_stands_in_the_way,
    a_secret_link_answers_its_machine_once_and_the_timeline_and_the_audit_say_so,
    an_applied_template_serves_each_machine_its_configs_and_destroy_takes_them_back,
    the_command_line_applies_shows_exports_and_destroys_a_creation_the_server_carries_on,
    a_controller_that_runs_its_config_gets_its_cluster_registered_and_the_creation_ends_when_it_is_ready,
);

fn admin() -> Principal {
    Principal {
        identity: Identity::Local { user_id: 1, username: "admin".into() },
        role: Some(ConsoleRole::Admin),
        cluster_roles: Default::default(),
        ip: None,
        user_agent: None,
    }
}

fn template(controllers: &str, workers: &str) -> ClusterTemplate {
    ClusterTemplate::parse(&format!(
        "version: pangea.dev/v1
name: edge-1
kubernetes: v1.36.2
os: flatcar
controllers:
{controllers}
workers:
{workers}
api_server:
  name: edge-1.example.com
  address: 10.0.0.10
"
    ))
    .unwrap()
}

async fn a_template_takes_machines_by_mac_search_and_class_and_names_what_stands_in_the_way(app: TestApp) {
    for (n, rack, cluster) in
        [(1, "r1", None), (2, "r1", None), (3, "r2", None), (4, "r2", Some("other")), (5, "r2", None)]
    {
        let mut machine = json!({
            "mac": format!("52:54:00:00:0c:0{n}"), "hostname": format!("node-{n}"), "role": "worker",
            "labels": { "rack": rack },
        });
        if let Some(c) = cluster {
            machine["cluster"] = json!(c);
        }
        app.create(machine).await;
    }
    app.create(json!({ "mac": "52:54:00:00:0c:09", "role": "worker", "labels": { "rack": "r3" } })).await;
    let res = app.put_json("/api/v1/machine-classes/rack-two", json!({ "query": "rack=r2" })).await;
    assert_eq!(res.status(), 200);
    let creation = &app.state.creation;
    let macs = |ms: &[app::machines::Machine]| ms.iter().map(|m| m.mac.clone()).collect::<Vec<_>>();

    // A controller by MAC, two workers of a search (the controller is not taken twice).
    let plan =
        creation.plan(&admin(), &template("  machines: [\"52:54:00:00:0c:01\"]", "  search: rack=r1")).await.unwrap();
    assert_eq!(macs(&plan.controllers), ["52:54:00:00:0c:01"]);
    assert_eq!(macs(&plan.workers), ["52:54:00:00:0c:02"]);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);

    // Three controllers of a class: one belongs to another cluster, and a count beyond the
    // matches is named.
    let plan = creation
        .plan(&admin(), &template("  class: rack-two\n  count: 3", "  search: rack=r3\n  count: 2"))
        .await
        .unwrap();
    assert_eq!(macs(&plan.controllers), ["52:54:00:00:0c:03", "52:54:00:00:0c:04", "52:54:00:00:0c:05"]);
    assert_eq!(
        plan.problems,
        [
            "workers: 2 wanted, but only 1 machines match",
            "52:54:00:00:0c:04 belongs to the cluster other; free it first",
            "52:54:00:00:0c:09 has no host name: its node needs one (set it on the machine)",
        ]
    );

    // MACs that are no machines, and a machine in both roles.
    let plan = creation
        .plan(
            &admin(),
            &template(
                "  machines: [\"52:54:00:00:0c:01\"]",
                "  machines: [\"52:54:00:00:0c:07\", \"52:54:00:00:0c:02\"]",
            ),
        )
        .await
        .unwrap();
    assert_eq!(plan.problems, ["workers: 52:54:00:00:0c:07 is not a machine of the inventory; add it first"]);
    let both =
        creation.plan(&admin(), &template("  search: rack=r1", "  machines: [\"52:54:00:00:0c:01\"]")).await.unwrap();
    assert!(
        both.problems
            .contains(&"controllers: 2 machines; etcd keeps quorum with 1, 3 or 5 control-plane machines".to_string())
    );
    assert!(
        both.problems.contains(&"workers: 52:54:00:00:0c:01 is a controller too; a machine takes one role".to_string())
    );

    // Someone who may not see machines gets no plan.
    let nobody = Principal { role: None, ..admin() };
    let refused = creation.plan(&nobody, &template("  search: rack=r1", "  machines: []")).await.unwrap_err();
    assert_eq!(refused.status(), 403);
}

/// Waits until `mac`'s timeline holds a request for `endpoint` (boot events are written in
/// batches): as a machine's secret fetches come well after its first boot request.
pub async fn recorded(app: &TestApp, mac: &str, endpoint: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
        if timeline["events"].as_array().unwrap().iter().any(|e| e["endpoint"] == endpoint) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{endpoint} was never recorded: {timeline:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn a_secret_link_answers_its_machine_once_and_the_timeline_and_the_audit_say_so(app: TestApp) {
    use pangea::creation::render::{NodeSpec, Role, secret_url};
    let mac = "52:54:00:00:0d:01";
    app.create(json!({ "mac": mac, "hostname": "node-1", "role": "worker" })).await;
    app.state.provisioner.record_boots(&app.state.background);
    let boot = app.boot_listener().await;
    // The machine network-boots a profile of its own.
    let cli = Principal::cli();
    let profile = serde_json::from_value(
        json!({ "id": "live", "boot": { "kernel": "/assets/vmlinuz", "initrd": [], "args": [] } }),
    )
    .unwrap();
    app.state.provisioner.put_profile(&cli, profile).await.unwrap();
    app.state.provisioner.set_machine_profile(&cli, mac, "live").await.unwrap();
    let node = NodeSpec {
        role: Role::Worker,
        name: "node-1".into(),
        mac: mac.parse().unwrap(),
        address: None,
        secrets_token: format!("{:032x}", rand::random::<u128>()),
    };
    let secret = "token: abcdef.0123456789abcdef\n";
    let files = [("bootstrap-kubelet.conf".to_string(), secret.to_string()), ("kubelet.conf".into(), "k".into())];
    app.state.creation.keep_secrets(&admin(), "edge-1", &node, &files).await.unwrap();
    // Sealed at rest.
    let sealed = || async {
        let sealed: String =
            sqlx::query_scalar("SELECT sealed FROM cluster_secrets WHERE path = 'bootstrap-kubelet.conf'")
                .fetch_one(app.state.db.pool())
                .await
                .unwrap();
        sealed
    };
    assert!(!sealed().await.contains("abcdef") && !sealed().await.is_empty());

    let url = secret_url(&format!("http://{boot}"), &node, "bootstrap-kubelet.conf");
    let from = |n: u8| {
        let address = std::net::IpAddr::from([127, 0, 0, n]);
        reqwest::Client::builder().local_address(address).build().unwrap()
    };
    let ipxe = format!("http://{boot}/ipxe?mac=52-54-00-00-0d-01");
    // Not before the machine booted, and then only from where it booted (127.0.0.1).
    assert_eq!(from(1).get(&url).send().await.unwrap().status(), 404);
    assert_eq!(from(1).get(&ipxe).send().await.unwrap().status(), 200);
    recorded(&app, mac, "/ipxe").await;
    assert_eq!(from(2).get(&url).send().await.unwrap().status(), 404);
    // What Pangea writes on the machine's timeline itself (a power action's note, its node's
    // steps) is no other address of it.
    app.state.provisioner.boots.note(mac, "power", "power on requested by admin").await.unwrap();
    let index = app.state.provisioner.index();
    let step = app::provisioning::boots::BootState::Ready;
    app.state.provisioner.boots.record_node_step(&index, mac, step, "edge-1/node-1").await.unwrap();
    let first = from(1).get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    assert_eq!(first.text().await.unwrap(), secret);
    // Once only, and a stranger's link is as absent as any other path.
    assert_eq!(sealed().await, "", "a fetched file is forgotten");
    // Another method does not use up (or reach) a link.
    let head = from(1).head(&url).send().await.unwrap();
    assert_eq!(head.status(), 405);
    let again = from(1).get(&url).send().await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(again.text().await.unwrap(), "404 page not found\n");
    let stranger = format!("http://{boot}/cluster-secrets/{:032x}/bootstrap-kubelet.conf", 7);
    assert_eq!(from(1).get(&stranger).send().await.unwrap().status(), 404);
    // Someone else boots with its MAC: its other link answers no one now.
    assert_eq!(from(2).get(&ipxe).send().await.unwrap().status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await["events"].as_array().unwrap().len() < 10 {
        assert!(tokio::time::Instant::now() < deadline, "the second boot request was never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let other = secret_url(&format!("http://{boot}"), &node, "kubelet.conf");
    assert_eq!(from(1).get(&other).send().await.unwrap().status(), 404);

    // The machine's timeline shows every fetch and the HEAD, without the link's token (and the
    // stranger's request too: it came from the address this machine asks from, as assets do).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let timeline = loop {
        let timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
        if timeline["events"].as_array().unwrap().len() == 11 {
            break timeline;
        }
        assert!(tokio::time::Instant::now() < deadline, "the timeline never showed the nine requests: {timeline:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let events: Vec<&serde_json::Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["endpoint"].as_str().unwrap().starts_with("/c"))
        .collect();
    let paths: Vec<&str> = events.iter().map(|e| e["endpoint"].as_str().unwrap()).collect();
    assert!(paths.iter().all(|p| p.starts_with("/cluster-secrets/…/") && p.ends_with(".conf")), "{timeline:#}");
    let statuses: Vec<u64> = events.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [404, 404, 200, 405, 404, 404, 404]);
    assert_eq!(events[0]["reason"], format!("bootstrap-kubelet.conf was asked for before {mac} booted from Pangea"));
    assert_eq!(
        events[1]["reason"],
        format!(
            "bootstrap-kubelet.conf was asked for from 127.0.0.2, but {mac} boots from 127.0.0.1: a secret link \
             answers the machine's address only (give it a fixed DHCP address)"
        )
    );
    let reason = events[4]["reason"].as_str().unwrap();
    assert!(reason.starts_with("bootstrap-kubelet.conf was fetched already, at "), "{reason}");
    assert!(reason.ends_with("from 127.0.0.1: a secret link answers once"), "{reason}");
    assert_eq!(events[5]["reason"], "no such secret link");
    assert_eq!(
        events[6]["reason"],
        format!(
            "kubelet.conf was not given: {mac} was answered at more than one address since the cluster was applied \
             (127.0.0.1, 127.0.0.2), so its secret links answer none; check what else uses its MAC, then destroy \
             the cluster and create it again"
        )
    );
    assert!(!timeline.to_string().contains(&node.secrets_token));

    // Audited: the fetch, and each refused one.
    let records = pangea::audit::latest(&app.state.db, 20).await.unwrap();
    let fetches: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.action == "cluster.secret.fetch")
        .map(|r| (r.outcome.as_str(), r.target_id.as_str()))
        .collect();
    assert_eq!(fetches, [("denied", mac), ("denied", mac), ("success", mac), ("denied", mac), ("denied", mac)]);
    let kept = records.iter().find(|r| r.action == "cluster.secret.keep").unwrap();
    assert_eq!((kept.actor.as_str(), kept.target_id.as_str()), ("admin", mac));
    assert!(kept.summary.contains("bootstrap-kubelet.conf"));
    assert!(records.iter().all(|r| !r.summary.contains(&node.secrets_token) && !r.summary.contains("abcdef.")));
    pangea::audit::verify(&app.state.db).await.unwrap();
}

/// The file at `path` of a served Ignition config, decoded from its data URL.
pub fn ignition_file(ignition: &serde_json::Value, path: &str) -> Option<String> {
    use base64::Engine as _;
    use std::io::Read as _;
    let files = ignition.pointer("/storage/files")?.as_array()?;
    let contents = &files.iter().find(|f| f["path"] == path)?["contents"];
    let (meta, data) = contents["source"].as_str()?.strip_prefix("data:")?.split_once(',')?;
    let bytes = if meta.ends_with(";base64") {
        base64::engine::general_purpose::STANDARD.decode(data).ok()?
    } else {
        percent_encoding::percent_decode_str(data).collect()
    };
    if contents["compression"] == "gzip" {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).ok()?;
        Some(text)
    } else {
        String::from_utf8(bytes).ok()
    }
}

pub(crate) const CREATED: &str = "version: pangea.dev/v1
name: edge-9
kubernetes: v1.36.2
os: flatcar
controllers:
  machines: [\"52:54:00:00:0e:01\"]
workers:
  search: pool=edge-9
api_server:
  name: edge-9.example.com
  address: 10.0.0.10
install_disk: /dev/vda
";

async fn an_applied_template_serves_each_machine_its_configs_and_destroy_takes_them_back(app: TestApp) {
    for (n, role) in [(1, "worker"), (2, "worker"), (3, "worker")] {
        app.create(json!({
            "mac": format!("52:54:00:00:0e:0{n}"), "hostname": format!("e9-{n}"), "role": role,
            "labels": { "pool": "edge-9" },
        }))
        .await;
    }
    app.state.provisioner.record_boots(&app.state.background);
    let boot = app.boot_listener().await;
    let body = json!({ "template": CREATED });

    // What it would do, asking nothing of anyone.
    let preview = app.post_json("/api/v1/cluster-creations/preview", body.clone()).await;
    assert_eq!(preview.status(), 200);
    let preview: serde_json::Value = preview.json().await.unwrap();
    assert_eq!(preview["problems"], json!([]), "{preview:#}");
    let roles: Vec<(&str, &str)> = preview["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("e9-1", "controller"), ("e9-2", "worker"), ("e9-3", "worker")]);
    assert!(preview["nodes"].as_array().unwrap().iter().all(|n| n["powered_by_pangea"] == false));

    // Applied: the creation runs, and says what each machine waits for.
    let created = app.post_json("/api/v1/cluster-creations", body.clone()).await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["state"], "creating");
    // The same file again is the same cluster; a changed one is refused with its changes.
    let again = app.post_json("/api/v1/cluster-creations", body.clone()).await;
    assert_eq!(again.status(), 200);
    let changed = CREATED.replace("/dev/vda", "/dev/sda");
    let preview: serde_json::Value =
        app.post_json("/api/v1/cluster-creations/preview", json!({ "template": changed })).await.json().await.unwrap();
    assert_eq!(preview["changes"], json!([{ "field": "install_disk", "before": "/dev/vda", "after": "/dev/sda" }]));
    let refused = app.post_json("/api/v1/cluster-creations", json!({ "template": changed })).await;
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.unwrap().contains("install_disk: /dev/vda → /dev/sda"));
    let machine = app.get_json("/api/v1/machines?search=e9-1").await;
    assert_eq!(machine["items"][0]["cluster"], "edge-9");
    assert_eq!(machine["items"][0]["role"], "controller");

    // The controller network-boots Flatcar's live system, which fetches its install config.
    let mac = "52:54:00:00:0e:01";
    let script = reqwest::get(format!("http://{boot}/ipxe?mac={mac}")).await.unwrap().text().await.unwrap();
    assert!(script.contains("flatcar_production_pxe.vmlinuz") && script.contains("flatcar.first_boot=yes"), "{script}");
    let install: serde_json::Value =
        reqwest::get(format!("http://{boot}/ignition?mac={mac}")).await.unwrap().json().await.unwrap();
    let installer = ignition_file(&install, "/opt/installer").unwrap();
    assert!(installer.contains("flatcar-install -d '/dev/vda'"), "{installer}");
    // The installer fetches the installed config with this machine's report token.
    let url = installer.split('\'').find(|w| w.contains("os=installed")).unwrap();
    assert!(!url.contains("{{"), "the report token is filled in: {url}");
    let url = url.replace("http://127.0.0.1:8080", &format!("http://{boot}"));
    let installed: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert!(ignition_file(&installed, "/etc/kubernetes/manifests/kube-apiserver.yaml").is_some());
    assert!(!installed.to_string().contains("PRIVATE KEY"), "no key is in a config");
    let files = installed["storage"]["files"].as_array().unwrap();
    let link = files.iter().find(|f| f["path"] == "/etc/kubernetes/pki/ca.key").unwrap()["contents"]["source"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8080", &format!("http://{boot}"));
    // "What will this machine get?" shows the config whole to admins, its links masked to others:
    // a link answers once, so whoever reads it first could take the file.
    let token = link.split('/').nth(4).unwrap().to_string();
    let explain = format!("/api/v1/provisioning/explain?query=mac%3D{mac}%26os%3Dinstalled");
    let as_admin = app.get_json(&explain).await;
    assert!(as_admin["ignition"]["body"].as_str().unwrap().contains(&token));
    let operator = app.token(app::access::ConsoleRole::Operator).await;
    let shown: serde_json::Value =
        app.anonymous().get(app.at(&explain)).bearer_auth(&operator).send().await.unwrap().json().await.unwrap();
    let body = shown["ignition"]["body"].as_str().unwrap();
    assert!(!body.contains(&token) && body.contains("/cluster-secrets/…/pki/ca.key"), "{body}");
    recorded(&app, mac, "/ipxe").await; // its first boot request, long before, on a real machine
    let key = reqwest::get(&link).await.unwrap();
    assert_eq!(key.status(), 200);
    assert!(key.text().await.unwrap().contains("PRIVATE KEY"));

    // The creation follows the machine: installed, its stall in words for the others.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let creation = loop {
        let creation = app.get_json("/api/v1/cluster-creations/edge-9").await;
        if creation["machines"][0]["state"] == "installed" {
            break creation;
        }
        assert!(tokio::time::Instant::now() < deadline, "the creation never saw e9-1 installed: {creation:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(creation["state"], "creating");
    assert!(creation["step"].as_str().unwrap().starts_with("waiting for the control plane at 10.0.0.10:6443"));
    assert!(creation["machines"][1]["waiting"].as_str().unwrap().starts_with("e9-2 has no BMC: power it on"));
    let exported = app.client.get(app.at("/api/v1/cluster-creations/edge-9/template")).send().await.unwrap();
    assert_eq!(exported.text().await.unwrap(), ClusterTemplate::parse(CREATED).unwrap().to_yaml());

    // Destroy: the name typed again, then everything generated is gone; the audit stays.
    let wrong = app.post_json("/api/v1/cluster-creations/edge-9/destroy", json!({ "confirm": "edge" })).await;
    assert_eq!(wrong.status(), 400);
    let done = app.post_json("/api/v1/cluster-creations/edge-9/destroy", json!({ "confirm": "edge-9" })).await;
    assert_eq!(done.status(), 204);
    let gone = reqwest::get(format!("http://{boot}/ignition?mac={mac}")).await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(app.client.get(app.at("/api/v1/cluster-creations/edge-9")).send().await.unwrap().status(), 404);
    let machine = app.get_json("/api/v1/machines?search=e9-1").await;
    assert_eq!(machine["items"][0]["cluster"], serde_json::Value::Null);
    let secrets: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cluster_secrets").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(secrets, 0);
    let records = pangea::audit::latest(&app.state.db, 50).await.unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    for action in ["cluster.creation.start", "cluster.destroy", "cluster.secret.fetch"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(records.iter().all(|r| !r.summary.contains("PRIVATE KEY")));
    pangea::audit::verify(&app.state.db).await.unwrap();
}

async fn the_command_line_applies_shows_exports_and_destroys_a_creation_the_server_carries_on(app: TestApp) {
    for n in 1..=3 {
        app.create(json!({
            "mac": format!("52:54:00:00:0e:0{n}"), "hostname": format!("e9-{n}"), "labels": { "pool": "edge-9" },
        }))
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge-9.yaml");
    std::fs::write(&file, CREATED).unwrap();
    let text = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let path = file.to_str().unwrap();
    let dry = text(app.cli(&["cluster", "create", path, "--dry-run"]));
    assert!(dry.contains("controller e9-1") && dry.contains("no BMC: power it on yourself"), "{dry}");
    assert!(app.client.get(app.at("/api/v1/cluster-creations/edge-9")).send().await.unwrap().status() == 404);
    let unset = app.cli(&["cluster", "create", path]);
    assert!(String::from_utf8_lossy(&unset.stderr).contains("give --boot-url"), "the machines' configs name it");
    let created = text(app.cli(&["cluster", "create", path, "--boot-url", "http://10.0.0.2:8080"]));
    assert!(created.contains("\nCreating edge-9: the running Pangea server"), "{created}");
    // The job waits for the server: it is there, held by the command's lease until it runs out.
    let state = app.get_json("/api/v1/cluster-creations/edge-9").await;
    assert_eq!(state["state"], "creating");
    let job: (String, String) = sqlx::query_as("SELECT kind, state FROM jobs WHERE id = $1")
        .bind(state["job"].as_str().unwrap())
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(job, ("cluster.create".to_string(), "running".to_string()));
    let shown = text(app.cli(&["cluster", "creation", "edge-9"]));
    assert!(shown.starts_with("edge-9: creating") && shown.contains("e9-2"), "{shown}");
    assert_eq!(text(app.cli(&["cluster", "template", "edge-9"])), ClusterTemplate::parse(CREATED).unwrap().to_yaml());
    let refused = app.cli(&["cluster", "destroy", "edge-9", "--confirm", "edge-8"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Type the cluster's name, edge-9"));
    text(app.cli(&["cluster", "destroy", "edge-9", "--confirm", "edge-9"]));
    assert!(app.client.get(app.at("/api/v1/cluster-creations/edge-9")).send().await.unwrap().status() == 404);
    let records = pangea::audit::latest(&app.state.db, 10).await.unwrap();
    let by_cli: Vec<&str> =
        records.iter().filter(|r| r.actor.ends_with("(command line)")).map(|r| r.action.as_str()).collect();
    assert!(by_cli.contains(&"cluster.creation.start") && by_cli.contains(&"cluster.destroy"), "{by_cli:?}");
}

/// A process killed when the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A kubelet's request for its client certificate, as node `node`, named `name`.
pub(crate) fn kubelet_client_request(
    name: &str,
    node: &str,
) -> k8s_openapi::api::certificates::v1::CertificateSigningRequest {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
    let pem = params.serialize_request(&rcgen::KeyPair::generate().unwrap()).unwrap().pem().unwrap();
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
            "request": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pem),
        },
    }))
    .unwrap()
}

/// A created cluster "solo" whose controller (cp-1, `52:54:00:00:0f:01`, made here) runs its
/// config: its files written where Ignition would, its API server run from its static pod's
/// flags on etcd-lite; returned once Pangea has registered it. `workers` lists their MACs (YAML);
/// `more` is added to the template.
pub(crate) struct Controller {
    pub root: tempfile::TempDir,
    pub port: u16,
    pub boot: std::net::SocketAddr,
    _etcd: Running,
    _apiserver: Running,
}

pub(crate) async fn run_controller(app: &TestApp, tools: &std::path::Path, workers: &str, more: &str) -> Controller {
    use sha2::Digest as _;
    app.create(json!({ "mac": "52:54:00:00:0f:01", "hostname": "cp-1" })).await;
    app.state.provisioner.record_boots(&app.state.background);
    app.state.leases.keep_renewing(&app.state.background);
    app.state.clusters.follow_nodes(&app.state.background, app.state.leases.clone());
    let boot = app.boot_listener().await;
    let port = free_port();
    let template = format!(
        "version: pangea.dev/v1
name: solo
kubernetes: v1.36.2
os: flatcar
controllers:
  machines: [\"52:54:00:00:0f:01\"]
workers:
  machines: {workers}
api_server:
  name: solo.example.test
  address: 127.0.0.1
  port: {port}
{more}"
    );
    let created = app.post_json("/api/v1/cluster-creations", json!({ "template": template })).await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    // The machine: its install config names its installed config, which it fetches as its
    // installer does.
    let here = |url: &str| url.replace("http://127.0.0.1:8080", &format!("http://{boot}"));
    let mac = "52:54:00:00:0f:01";
    let install: serde_json::Value =
        reqwest::get(format!("http://{boot}/ignition?mac={mac}")).await.unwrap().json().await.unwrap();
    let installer = ignition_file(&install, "/opt/installer").unwrap();
    let installed_url = installer.split('\'').find(|w| w.contains("os=installed")).unwrap();
    recorded(app, mac, "/ignition").await;
    // Without its report token (anyone else on the boot network), no config with secret links.
    let stranger = reqwest::get(format!("http://{boot}/ignition?mac={mac}&os=installed")).await.unwrap();
    assert_eq!(stranger.status(), 403);
    assert!(stranger.text().await.unwrap().contains("it carries no report_token"));
    let installed: serde_json::Value = reqwest::get(here(installed_url)).await.unwrap().json().await.unwrap();
    // Ignition writes its files: inline ones, and secret ones fetched and checked.
    let root_dir = tempfile::tempdir().unwrap();
    let root = root_dir.path();
    for file in installed["storage"]["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let source = file["contents"]["source"].as_str().unwrap_or_default();
        let text = if source.starts_with("data:") {
            ignition_file(&installed, path).unwrap()
        } else if source.contains("/cluster-secrets/") {
            let text = reqwest::get(here(source)).await.unwrap().text().await.unwrap();
            let hash = file["contents"]["verification"]["hash"].as_str().unwrap();
            assert_eq!(hash, format!("sha512-{}", hex::encode(sha2::Sha512::digest(&text))), "{path}");
            text
        } else {
            continue; // the Kubernetes system extension, from the assets: not needed here
        };
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    let etc = root.join("etc/kubernetes");
    assert!(etc.join("pki/ca.key").exists() && etc.join("admin.conf").exists());

    // The static pod's command, as the kubelet would run it.
    let manifest = std::fs::read_to_string(etc.join("manifests/kube-apiserver.yaml")).unwrap();
    let pod = &yaml_rust2::YamlLoader::load_from_str(&manifest).unwrap()[0];
    let args: Vec<String> = pod["spec"]["containers"][0]["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().replace("/etc/kubernetes", etc.to_str().unwrap()))
        .collect();
    assert!(args.contains(&format!("--secure-port={port}")), "{args:?}");
    let etcd_port = free_port();
    let etcd_dir = root.join("var/lib/etcd");
    let _etcd = Running(
        std::process::Command::new(tools.join("etcd-lite"))
            .args(["--name", "solo", "--data-dir", etcd_dir.to_str().unwrap()])
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{etcd_port}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{}", free_port())])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let args: Vec<String> =
        args.into_iter()
            .filter(|a| {
                !a.starts_with("--etcd-cafile") && !a.starts_with("--etcd-certfile") && !a.starts_with("--etcd-keyfile")
            })
            .map(|a| {
                if a.starts_with("--etcd-servers=") {
                    format!("--etcd-servers=http://127.0.0.1:{etcd_port}")
                } else {
                    a
                }
            })
            .chain(["--bind-address=127.0.0.1".to_string(), format!("--cert-dir={}", root.display())])
            .collect();
    let log = std::fs::File::create(root.join("apiserver.log")).unwrap();
    let _apiserver = Running(
        std::process::Command::new(tools.join("kube-apiserver"))
            .args(&args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    // Pangea sees it answer, sets it up and registers it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let creation = app.get_json("/api/v1/cluster-creations/solo").await;
        if creation["registered"] == true {
            break;
        }
        let log = std::fs::read_to_string(root.join("apiserver.log")).unwrap_or_default();
        assert!(
            tokio::time::Instant::now() < deadline,
            "never registered: {creation:#}\n{}",
            log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Controller { root: root_dir, port, boot, _etcd, _apiserver }
}

/// The whole creation against a real control plane, without VMs: the test plays the controller.
/// It network-boots as the machine would (install config, then the installed config with its
/// report token), writes every file of the installed config where Ignition would (inline ones
/// decoded, secret ones fetched once through their links and checked against their SHA-512), and
/// runs the real kube-apiserver with the flags of the rendered static pod (etcd is the tools'
/// etcd-lite, which has no TLS: its flags are the only ones changed). Pangea sees the control
/// plane answer, sets it up, registers it, links the node (made Ready here, as a kubelet would
/// report it) to its machine, installs the monitoring the template asks for, links its Prometheus
/// once it answers through the API server, and ends the creation. The Prometheus pod is played
/// by Debian's real Prometheus run with the rendered configuration (its ServiceAccount's token
/// and the cluster's CA where the kubelet would mount them), finding the node through the API
/// server and scraping a real node_exporter at the node's address, behind the Service as the
/// endpoint controller would put it.
async fn a_controller_that_runs_its_config_gets_its_cluster_registered_and_the_creation_ends_when_it_is_ready(
    app: TestApp,
) {
    let Some(tools) = crate::support::kube::tools() else {
        assert!(std::env::var("PANGEA_KUBE_REQUIRED").as_deref() != Ok("1"), "PANGEA_KUBE_REQUIRED=1 but no tools");
        eprintln!("skipped: no kube-apiserver here (../shared/tools or PANGEA_TEST_KUBE_BIN)");
        return;
    };
    if !crate::support::monitor::installed_here() {
        return;
    }
    let monitoring = "monitoring:\n  enabled: true\n  prometheus_image: localhost/pangea/prometheus:test\n";
    let Controller { root, port, .. } = &run_controller(&app, &tools, "[]", monitoring).await;
    let (root, port) = (root.path(), *port);
    let cluster = app.get_json("/api/v1/clusters/solo").await;
    assert_eq!(cluster["api_url"], format!("https://127.0.0.1:{port}"));
    assert_eq!(cluster["credential_kind"], "token");

    // Its node reports Ready (what the kubelet does, here as the cluster's admin).
    let admin = pangea::clusters::connect::client(
        &pangea::creation::register::admin_endpoint(
            &std::fs::read_to_string(root.join("etc/kubernetes/admin.conf")).unwrap(),
            &format!("https://127.0.0.1:{port}"),
        )
        .unwrap(),
        None,
    )
    .unwrap();
    // A kubelet certificate request for a machine that is not the cluster's: shown, audited, left
    // pending.
    let csr = kubelet_client_request("intruder", "intruder");
    ::kube::Api::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>::all(admin.clone())
        .create(&::kube::api::PostParams::default(), &csr)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let creation = app.get_json("/api/v1/cluster-creations/solo").await;
        if let Some(refused) = creation["refused"].as_array().and_then(|r| r.first()) {
            assert_eq!(
                refused,
                "intruder (asked by kubernetes-admin): \"intruder\" is not a machine of this cluster's inventory"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the request was never refused: {creation:#}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let nodes: ::kube::Api<k8s_openapi::api::core::v1::Node> = ::kube::Api::all(admin.clone());
    let node = serde_json::from_value(json!({ "metadata": { "name": "cp-1" } })).unwrap();
    nodes.create(&::kube::api::PostParams::default(), &node).await.unwrap();
    let now = "2026-12-07T00:00:00Z";
    // Its own loopback address, as the node's: node_exporter listens on its port there.
    let node_ip = format!("127.0.{}.{}", port / 256 % 256, port % 256);
    let status = json!({ "status": {
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }],
        "addresses": [{ "type": "InternalIP", "address": node_ip }],
    } });
    nodes
        .patch_status("cp-1", &::kube::api::PatchParams::default(), &::kube::api::Patch::Merge(&status))
        .await
        .unwrap();
    let _monitoring = play_monitoring(&app, &admin, root, &node_ip).await;

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let creation = loop {
        let creation = app.get_json("/api/v1/cluster-creations/solo").await;
        if creation["state"] != "creating" {
            break creation;
        }
        assert!(tokio::time::Instant::now() < deadline, "the creation never ended: {creation:#}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(creation["state"], "created", "{creation:#}");
    assert_eq!(creation["machines"][0]["state"], "ready");
    // Its Prometheus is linked, through the API server as pangea:monitoring; the node's charts
    // draw node_exporter's series, and the cluster's the API server's (scraped with the
    // ServiceAccount's token, as its ClusterRole allows).
    let cluster = app.get_json("/api/v1/clusters/solo").await;
    assert_eq!(
        cluster["prometheus_url"],
        format!("https://127.0.0.1:{port}/api/v1/namespaces/pangea-monitoring/services/prometheus:9090/proxy")
    );
    assert_eq!(cluster["prometheus_auth"], "client_certificate");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let drawn = |charts: &serde_json::Value, id: &str| {
            charts["charts"].as_array().unwrap().iter().any(|c| c["id"] == id && c["series"] != json!([]))
        };
        let node = app.get_json("/api/v1/clusters/solo/nodes/cp-1/charts?range=15m").await;
        let cluster = app.get_json("/api/v1/clusters/solo/charts?range=15m").await;
        if drawn(&node, "cpu") && drawn(&cluster, "api_requests") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "series missing: {node:#} {cluster:#}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // Its node is Ready: its bootstrap token, its own, is deleted.
    let secrets: ::kube::Api<k8s_openapi::api::core::v1::Secret> = ::kube::Api::namespaced(admin, "kube-system");
    let tokens =
        secrets.list(&::kube::api::ListParams::default().fields("type=bootstrap.kubernetes.io/token")).await.unwrap();
    assert!(tokens.items.is_empty(), "{:?}", tokens.items.iter().map(|s| &s.metadata.name).collect::<Vec<_>>());
    let records = pangea::audit::latest(&app.state.db, 30).await.unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    for action in
        ["cluster.creation.start", "cluster.create", "cluster.kubelet_certificate.refuse", "cluster.creation.end"]
    {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    // Destroyed: unregistered, its configs gone.
    let done = app.post_json("/api/v1/cluster-creations/solo/destroy", json!({ "confirm": "solo" })).await;
    assert_eq!(done.status(), 204);
    assert_eq!(app.get("/api/v1/clusters/solo").await.status(), 404);
}

/// The monitoring Pangea installed, as the kubelet and the endpoint controller would run it: once
/// the objects are applied (and the creation says it waits for the Prometheus), a real
/// node_exporter at the node's address and a real Prometheus with the rendered configuration on
/// this host's address, behind the Service.
async fn play_monitoring(app: &TestApp, admin: &::kube::Client, root: &std::path::Path, node_ip: &str) -> Monitoring {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    let ns = "pangea-monitoring";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let waiting = loop {
        let creation = app.get_json("/api/v1/cluster-creations/solo").await;
        let step = creation["step"].as_str().unwrap_or_default().to_string();
        if step.contains("waiting for the cluster's Prometheus") {
            break step;
        }
        assert!(tokio::time::Instant::now() < deadline, "never waited for its Prometheus: {creation:#}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(creation_state(app).await, "creating");
    assert!(waiting.contains("pod") || waiting.contains("no Prometheus pod yet"), "{waiting}");
    let deployment = ::kube::Api::<Deployment>::namespaced(admin.clone(), ns).get("prometheus").await.unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("localhost/pangea/prometheus:test"));
    assert_eq!(pod.host_network, Some(true));
    let exporter = ::kube::Api::<DaemonSet>::namespaced(admin.clone(), ns).get("node-exporter").await.unwrap();
    let image = exporter.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("quay.io/prometheus/node-exporter:v1.9.1"));

    // What the kubelet mounts: the ServiceAccount's token and the cluster's CA; the ConfigMap.
    let dir = tempfile::tempdir().unwrap();
    let token = ::kube::Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request("prometheus", &Default::default(), &Default::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    std::fs::write(dir.path().join("token"), token.unwrap()).unwrap();
    std::fs::copy(root.join("etc/kubernetes/pki/ca.crt"), dir.path().join("ca.crt")).unwrap();
    let config = ::kube::Api::<ConfigMap>::namespaced(admin.clone(), ns).get("prometheus").await.unwrap().data.unwrap();
    let rendered = config["prometheus.yml"]
        .replace("/var/run/secrets/kubernetes.io/serviceaccount", dir.path().to_str().unwrap())
        .replace("scrape_interval: 30s", "scrape_interval: 1s")
        .replace("'127.0.0.1:9100'", &format!("'{node_ip}:9100'"));
    std::fs::write(dir.path().join("prometheus.yml"), rendered).unwrap();
    std::fs::write(dir.path().join("rules.yml"), &config["rules.yml"]).unwrap();
    let exporter = Running(
        std::process::Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address={node_ip}:9100"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (Debian's package)"),
    );
    // The API server proxies to no loopback address: Prometheus listens on this host's own.
    let host = host_address();
    let prometheus_port = free_port();
    let prometheus = Running(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={host}:{prometheus_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian's package)"),
    );
    // The kubelet's report of the pod (on the host's network, the host's address), and the
    // endpoint controller's Endpoints: 1.36's service proxy reads Endpoints, and dials an address
    // only if it is the IP of the pod the address names.
    let pods = ::kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(admin.clone(), ns);
    let played = serde_json::from_value(json!({
        "metadata": { "name": "prometheus-played", "labels": { "app.kubernetes.io/name": "prometheus" } },
        "spec": { "hostNetwork": true, "serviceAccountName": "prometheus", "automountServiceAccountToken": false,
            "containers": [{ "name": "prometheus", "image": "localhost/pangea/prometheus:test" }] },
    }))
    .unwrap();
    pods.create(&::kube::api::PostParams::default(), &played).await.unwrap();
    let running = json!({ "status": { "phase": "Running", "podIP": host, "podIPs": [{ "ip": host }] } });
    pods.patch_status("prometheus-played", &Default::default(), &::kube::api::Patch::Merge(&running)).await.unwrap();
    let endpoints = serde_json::from_value(json!({
        "metadata": { "name": "prometheus" },
        "subsets": [{
            "addresses": [{ "ip": host, "targetRef": { "kind": "Pod", "name": "prometheus-played", "namespace": ns } }],
            "ports": [{ "name": "web", "port": prometheus_port }],
        }],
    }))
    .unwrap();
    ::kube::Api::<k8s_openapi::api::core::v1::Endpoints>::namespaced(admin.clone(), ns)
        .create(&::kube::api::PostParams::default(), &endpoints)
        .await
        .unwrap();
    Monitoring { _dir: dir, _exporter: exporter, _prometheus: prometheus }
}

pub(crate) struct Monitoring {
    _exporter: Running,
    _prometheus: Running,
    _dir: tempfile::TempDir,
}

async fn creation_state(app: &TestApp) -> String {
    app.get_json("/api/v1/cluster-creations/solo").await["state"].as_str().unwrap_or_default().to_string()
}

/// This host's first IPv4 address other than loopback.
fn host_address() -> String {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("this test needs an IPv4 address besides loopback (ip addr: {text})"))
}

mod needs_kube {
    use crate::support::kube;
    use ::kube::api::{Api, PostParams};
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use pangea::creation::approval::{APPROVER_RULES, KnownMachine, approve_pending};
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn csr_pem(node: &str, sans: Vec<SanType>) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, format!("system:node:{node}"));
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        params.subject_alt_names = sans;
        params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap()
    }

    /// A client that acts as `user` in `groups`, through the admin's impersonation.
    async fn as_user(k: &kube::Kube, user: &str, groups: &[&str]) -> ::kube::Client {
        let mut config = ::kube::Config::new(k.url.parse().unwrap());
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(k.ca_pem.as_bytes());
        config.root_cert = Some(certs.map(|c| c.unwrap().to_vec()).collect());
        config.auth_info.token = Some(k.admin_token.clone().into());
        config.auth_info.impersonate = Some(user.into());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        ::kube::Client::try_from(config).unwrap()
    }

    async fn ask(client: ::kube::Client, name: &str, signer: &str, usages: &[&str], pem: &str) {
        let csr: CertificateSigningRequest = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name },
            "spec": { "signerName": signer, "usages": usages, "request": base64_of(pem) },
        }))
        .unwrap();
        Api::<CertificateSigningRequest>::all(client).create(&PostParams::default(), &csr).await.unwrap();
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn approved(csr: &CertificateSigningRequest) -> bool {
        csr.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Approved"))
    }

    #[tokio::test]
    async fn kubelet_certificates_are_approved_for_known_machines_only() {
        let Some(k) = kube::shared() else { return };
        let id = kube::unique("csr");
        let token_id = &id[id.len() - 6..];
        let other_token = "0ther0";
        let (known, stranger, other) = (format!("{id}-known"), format!("{id}-stranger"), format!("{id}-other"));
        // What Pangea sets up on a cluster it creates: its approver's rights, and the bootstrap
        // group's right to ask (kubeadm's binding of system:node-bootstrapper).
        let rbac = serde_json::json!({
            "apiVersion": "v1", "kind": "List", "items": [
                { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                  "metadata": { "name": format!("{id}-approver") },
                  "rules": serde_json::from_str::<serde_json::Value>(APPROVER_RULES).unwrap() },
                { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                  "metadata": { "name": format!("{id}-approver") },
                  "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{id}-approver") },
                  "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "pangea" }] },
                { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                  "metadata": { "name": format!("{id}-bootstrappers") },
                  "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-bootstrapper" },
                  "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:bootstrappers" }] },
            ]
        });
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rbac.json");
        std::fs::write(&file, rbac.to_string()).unwrap();
        let out = k.kubectl(&["apply", "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let bootstrap = as_user(&k, &format!("system:bootstrap:{token_id}"), &["system:bootstrappers"]).await;
        let node = as_user(&k, &format!("system:node:{known}"), &["system:nodes"]).await;
        let client = ["digital signature", "client auth"];
        let server = ["digital signature", "key encipherment", "server auth"];
        let ip = |s: &str| SanType::IpAddress(s.parse().unwrap());
        let dns = |s: &str| SanType::DnsName(s.to_string().try_into().unwrap());
        let signer_client = "kubernetes.io/kube-apiserver-client-kubelet";
        let signer_serving = "kubernetes.io/kubelet-serving";
        ask(bootstrap.clone(), &format!("{id}-1"), signer_client, &client, &csr_pem(&known, vec![])).await;
        ask(bootstrap.clone(), &format!("{id}-2"), signer_client, &client, &csr_pem(&stranger, vec![])).await;
        // A token taken from one machine (known's), asking for another of the cluster's.
        ask(bootstrap, &format!("{id}-5"), signer_client, &client, &csr_pem(&other, vec![])).await;
        ask(
            node.clone(),
            &format!("{id}-3"),
            signer_serving,
            &server,
            &csr_pem(&known, vec![dns(&known), ip("10.0.0.11")]),
        )
        .await;
        ask(node, &format!("{id}-4"), signer_serving, &server, &csr_pem(&known, vec![dns(&known), ip("10.9.9.9")]))
            .await;

        // Pangea's own identity (the `pangea` user), with the rights above.
        let mut config = ::kube::Config::new(k.url.parse().unwrap());
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(k.ca_pem.as_bytes());
        config.root_cert = Some(certs.map(|c| c.unwrap().to_vec()).collect());
        config.auth_info.token = Some(k.pangea_token.clone().into());
        let pangea = ::kube::Client::try_from(config).unwrap();
        let machines = [
            KnownMachine {
                name: known.clone(),
                addresses: vec!["10.0.0.11".parse().unwrap()],
                bootstrap_token_id: token_id.to_string(),
            },
            KnownMachine { name: other.clone(), addresses: vec![], bootstrap_token_id: other_token.to_string() },
        ];
        let pass = approve_pending(&pangea, &machines).await.unwrap();

        let ours = |name: &str| name.starts_with(&id);
        let approved_names: Vec<&str> = pass.approved.iter().map(|a| a.request.as_str()).filter(|n| ours(n)).collect();
        assert_eq!(approved_names, [format!("{id}-1"), format!("{id}-3")]);
        let refused: Vec<(&str, &str)> =
            pass.refused.iter().filter(|r| ours(&r.request)).map(|r| (r.request.as_str(), r.reason.as_str())).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert_eq!(refused[0].1, format!("{stranger:?} is not a machine of this cluster's inventory"));
        assert!(refused[1].1.contains("names the address 10.9.9.9"), "{refused:?}");
        assert_eq!(
            refused[2].1,
            format!("asked with {known}'s bootstrap token for {other}: a token joins its own machine only")
        );

        // The API server holds the same: approved by Pangea, the rest still pending.
        let api: Api<CertificateSigningRequest> = Api::all(k.admin().await);
        for (n, expected) in [(1, true), (2, false), (3, true), (4, false), (5, false)] {
            let csr = api.get(&format!("{id}-{n}")).await.unwrap();
            assert_eq!(approved(&csr), expected, "request {n}");
        }
        let one = api.get(&format!("{id}-1")).await.unwrap();
        let condition = &one.status.unwrap().conditions.unwrap()[0];
        assert_eq!(condition.reason.as_deref(), Some("PangeaInventory"));
        // A second pass approves nothing again and refuses the same two.
        let again = approve_pending(&pangea, &machines).await.unwrap();
        assert!(again.approved.iter().all(|a| !ours(&a.request)));
        assert_eq!(again.refused.iter().filter(|r| ours(&r.request)).count(), 3);
    }

    /// What Pangea sets up on a cluster it created, once its control plane answers: its own
    /// ServiceAccount, bound to `pangea-console`, whose token reads and approves but writes
    /// nothing else; and the bootstrap token, allowed to ask for a client certificate.
    #[tokio::test]
    async fn a_created_cluster_is_set_up_for_pangea_with_a_token_that_reads_and_approves() {
        use ::kube::api::ListParams;
        use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
        use pangea::creation::{pki::BootstrapToken, register};
        let Some(k) = kube::own() else { return };
        let admin = k.admin().await;
        let tokens: std::collections::BTreeMap<String, BootstrapToken> =
            ["cp-1", "worker-1"].iter().map(|n| (n.to_string(), BootstrapToken::generate())).collect();
        let bootstrap = &tokens["worker-1"];
        let expires = "2030-01-01T00:00:00Z";
        let app::clusters::Credential::Token { token } = register::set_up(&admin, &tokens, expires).await.unwrap()
        else {
            panic!("a token")
        };
        // Set up again (a resumed creation): the same objects, a token again.
        register::set_up(&admin, &tokens, expires).await.unwrap();

        let endpoint = pangea::clusters::connect::Endpoint {
            api_url: k.url.clone(),
            ca_pem: k.ca_pem.clone(),
            credential: app::clusters::Credential::Token { token },
        };
        assert!(register::ready(&pangea::clusters::connect::checking_client(&endpoint).unwrap()).await);
        let client = pangea::clusters::connect::client(&endpoint, None).unwrap();
        let review: serde_json::Value = client
            .request(
                http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                    .header("content-type", "application/json")
                    .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(review["status"]["userInfo"]["username"], "system:serviceaccount:kube-system:pangea");
        Api::<Node>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        Api::<CertificateSigningRequest>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap();
        let refused = Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await;
        assert!(matches!(refused, Err(::kube::Error::Api(s)) if s.code == 403), "Pangea's token writes nothing");
        let reading = Api::<Secret>::namespaced(client.clone(), "kube-system").list(&ListParams::default()).await;
        assert!(matches!(reading, Err(::kube::Error::Api(s)) if s.code == 403), "Pangea's token reads no Secret");

        let secrets: Api<Secret> = Api::namespaced(admin.clone(), "kube-system");
        let secret = secrets.get(&format!("bootstrap-token-{}", bootstrap.id)).await.unwrap();
        assert_eq!(secret.type_.as_deref(), Some("bootstrap.kubernetes.io/token"));
        let data = secret.data.unwrap();
        let text = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
        assert_eq!(text("token-secret"), bootstrap.secret);
        assert_eq!(text("auth-extra-groups"), register::BOOTSTRAPPERS);
        assert_eq!(text("expiration"), expires);
        assert_eq!(text("description"), "Made by Pangea for worker-1 to join with once");
        // Pangea deletes a token once its node is Ready: that one, and no other Secret.
        register::retire_token(&client, &bootstrap.id).await.unwrap();
        assert!(secrets.get_opt(&format!("bootstrap-token-{}", bootstrap.id)).await.unwrap().is_none());
        register::retire_token(&client, &bootstrap.id).await.unwrap(); // gone already: fine
        assert!(secrets.get_opt(&format!("bootstrap-token-{}", tokens["cp-1"].id)).await.unwrap().is_some());
        let other: Secret =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "bootstrap-token-zzzzzz"}})).unwrap();
        secrets.create(&PostParams::default(), &other).await.unwrap();
        let refused = register::retire_token(&client, "zzzzzz").await;
        assert!(matches!(refused, Err(::kube::Error::Api(s)) if s.code == 403), "no other Secret");
        // Its group may ask for certificates (and nothing approves them but Pangea: no
        // kubeadm auto-approval binding is made).
        let out = k.kubectl(&[
            "auth",
            "can-i",
            "create",
            "certificatesigningrequests",
            "--as=system:bootstrap:x",
            &format!("--as-group={}", register::BOOTSTRAPPERS),
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");
        let bindings = k.kubectl(&["get", "clusterrolebindings", "-o", "name"]);
        let bindings = String::from_utf8_lossy(&bindings.stdout);
        assert!(!bindings.contains("autoapprove"), "{bindings}");
    }
}
