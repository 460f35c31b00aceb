//! Rolling operations against a real kube-apiserver v1.36 (a control plane of the test's own, so
//! no other test's nodes are in it) and real Redfish BMCs (sushy-tools' emulator): the plan, the
//! order, `maxUnavailable`, the approval and PodDisruptionBudget gates pausing it in words, pause,
//! resume and cancel, and the audit trail. The nodes' kubelets are played by the test: a node
//! whose machine was restarted comes back with a new boot ID.

use crate::clusters::{allow_disruptions, create_namespace, create_pod, guard_budget, kubelet_for};
use crate::support::bmc::{Emulator, FakeSystem, PASSWORD, USER, emulator};
use crate::support::kube::{Kube, eventually, input, person, unique};
use crate::support::{Backend, TestApp};
use app::access::{ConsoleRole, Principal};
use app::clusters::rolling::{RollingChange, RollingInput, RollingOperation};
use app::clusters::ssr::ClusterService;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pangea::rolling::{Pace, Rolling, Steer};
use serde_json::json;
use std::time::{Duration, Instant};

mod needs_kube {
    use super::*;
    on_both_backends_with_own_app!(a_restart_rolls_across_the_cluster_one_safe_step_at_a_time);

    mod replica_loss {
        use super::*;
        on_both_backends_with_own_app!(a_rolling_operation_whose_replica_is_killed_goes_on_on_another);
    }
}

mod created {
    use super::*;
    on_both_backends_with_own_app!(a_reprovision_installs_a_created_workers_new_version_and_a_roll_back_the_old);
}

mod monitored {
    use super::*;
    on_both_backends_with_own_app!(an_alert_firing_in_the_real_prometheus_holds_the_operation_at_its_gate);
}

/// The nodes, their machines' MACs and system UUIDs; cp-1 is the control plane.
const NODES: [(&str, &str, &str); 3] = [
    ("cp-1", "52:54:00:0d:00:01", "33333333-0000-0000-0000-000000000001"),
    ("w-1", "52:54:00:0d:00:02", "33333333-0000-0000-0000-000000000002"),
    ("w-2", "52:54:00:0d:00:03", "33333333-0000-0000-0000-000000000003"),
];

/// Creates a Ready node as its kubelet would, with boot ID `<name>-1`.
async fn create_node(nodes: &Api<Node>, name: &str, labels: serde_json::Value) {
    let node: Node = serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels } })).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    boot(nodes, name, &format!("{name}-1")).await;
}

/// The node's kubelet reports boot `boot_id`, Ready.
async fn boot(nodes: &Api<Node>, name: &str, boot_id: &str) {
    let uuid = NODES.iter().find(|n| n.0 == name).map_or("", |n| n.2);
    let status = json!({ "status": {
        "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                         "lastHeartbeatTime": "2026-12-07T00:00:00Z", "lastTransitionTime": "2026-12-07T00:00:00Z" }],
        "nodeInfo": { "machineID": "m", "systemUUID": uuid, "bootID": boot_id, "kernelVersion": "6.1", "osImage": "Flatcar",
                      "containerRuntimeVersion": "containerd://2.0", "kubeletVersion": "v1.36.2", "kubeProxyVersion": "",
                      "operatingSystem": "linux", "architecture": "amd64" }
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

/// Lets `group` cordon, drain and uncordon nodes in the cluster.
pub(crate) fn let_drain(kube: &Kube, group: &str) {
    for args in [
        vec![
            "create",
            "clusterrole",
            &format!("{group}-drain"),
            "--verb=get,list,patch",
            "--resource=nodes,pods,poddisruptionbudgets",
        ],
        vec!["create", "clusterrole", &format!("{group}-evict"), "--verb=create", "--resource=pods/eviction"],
        vec![
            "create",
            "clusterrolebinding",
            &format!("{group}-drain"),
            &format!("--clusterrole={group}-drain"),
            &format!("--group={group}"),
        ],
        vec![
            "create",
            "clusterrolebinding",
            &format!("{group}-evict"),
            &format!("--clusterrole={group}-evict"),
            &format!("--group={group}"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        let out = kube.kubectl(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Waits (up to 90 s) until the operation satisfies `done`.
async fn operation_when(
    rolling: &Rolling,
    who: &Principal,
    job: &str,
    done: impl Fn(&RollingOperation) -> bool,
) -> RollingOperation {
    let mut last = None;
    for _ in 0..900 {
        let op = rolling.operation(who, job).await.unwrap();
        if done(&op) {
            return op;
        }
        last = Some(op);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the operation never got there: {last:#?}");
}

fn restart(nodes: Option<&str>) -> RollingInput {
    RollingInput {
        change: RollingChange::Restart,
        nodes: nodes.map(Into::into),
        max_unavailable: Some(1),
        soak_seconds: Some(1),
        alert_severities: None,
        approve_control_plane: false,
        template: None,
    }
}

/// A cluster of three nodes registered in `app`, each node a machine with a BMC (the emulator,
/// kept alive by the caller); `group` may drain its nodes; `monitor`'s Prometheus and
/// Alertmanager linked, when given.
async fn cluster_of_three(
    app: &TestApp,
    kube: &Kube,
    group: &str,
    monitor: Option<&crate::support::monitor::Monitor>,
) -> (String, Emulator, Api<Node>) {
    let name = unique("rolling");
    let mut linked = input(kube, &name, &kube.pangea_token);
    if let Some(monitor) = monitor {
        linked.prometheus_url = monitor.url.clone();
        linked.alertmanager_url = monitor.alertmanager_url.clone();
    }
    app.state.clusters.add(&Principal::cli(), linked).await.unwrap();
    let_drain(kube, group);
    let nodes: Api<Node> = Api::all(kube.admin().await);
    let systems: Vec<FakeSystem> = NODES.iter().map(|(_, mac, uuid)| FakeSystem { uuid, power: "On", mac }).collect();
    let bmc = emulator(&systems).await;
    for (node, mac, uuid) in NODES {
        let created = app.create(json!({ "mac": mac, "hostname": node, "uuid": uuid })).await;
        let id = created["id"].as_i64().unwrap();
        let url = format!("{}/redfish/v1/Systems/{uuid}", bmc.url);
        let set = app
            .put_json(
                &format!("/api/v1/machines/{id}/bmc"),
                json!({ "url": url, "username": USER, "password": PASSWORD }),
            )
            .await;
        assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
        let mut labels = json!({ "node-role.kubernetes.io/worker": "" });
        if node == "cp-1" {
            labels = json!({ "node-role.kubernetes.io/control-plane": "" });
        }
        if node == "w-1" {
            labels["pool"] = json!("a");
        }
        create_node(&nodes, node, labels).await;
    }
    let cans = ["create pods --subresource=eviction", "patch nodes"];
    let as_group = format!("--as-group={group}");
    eventually("the group's RBAC to be seen", async || {
        cans.iter()
            .all(|can| {
                let mut args = vec!["auth", "can-i"];
                args.extend(can.split(' '));
                args.extend(["--as=someone", as_group.as_str()]);
                kube.kubectl(&args).status.success()
            })
            .then_some(())
    })
    .await;
    (name, bmc, nodes)
}

/// `app`'s rolling operations at a test's pace (a pass every 200 ms), once every node of
/// cluster `name` (of three) is seen.
async fn paced(app: &TestApp, name: &str) -> Rolling {
    let pace = Pace { tick: Duration::from_millis(200), rejoin: Duration::from_secs(60), drain_timeout_seconds: 60 };
    eventually("every node to be seen", async || {
        (app.state.clusters.cache(name).ok()?.node_objects().len() == 3).then_some(())
    })
    .await;
    (*app.state.rolling).clone().with_pace(pace)
}

/// How long the machines' power may take to settle here. The emulator restarts a machine within
/// 0 to 11 s (its delay is a whole second from now, plus 0 to 10); one that is on again before
/// Pangea's first read (every 0.5 s) was never seen going off, so Pangea waits the settle time
/// before it calls the restart done ("too quick to see"): 180 s by default, too long for a test.
const SETTLE_SECONDS: u64 = 15;
/// The same for a network boot once, whose machine the emulator may keep off longer than 15 s
/// when the machine is loaded (seen in a full run: "did not reach on within 15 s").
const NETWORK_BOOT_SETTLE_SECONDS: u64 = 40;

async fn a_restart_rolls_across_the_cluster_one_safe_step_at_a_time(backend: Backend) {
    let Some(kube) = crate::support::kube::own() else { return };
    let app =
        crate::support::spawn_app_with(backend, async |c| c.power_settle = Duration::from_secs(SETTLE_SECONDS)).await;
    let group = unique("sre");
    let (name, _bmc, nodes) = cluster_of_three(&app, &kube, &group, None).await;
    let admin_client = kube.admin().await;
    // A pod on w-1; two pods under a budget, on cp-1 and w-2, which allows one disruption.
    let ns = unique("team");
    create_namespace(&kube, &ns).await;
    create_pod(&kube, &ns, "web-1", "w-1", "web").await;
    create_pod(&kube, &ns, "guarded-1", "w-2", "guarded").await;
    create_pod(&kube, &ns, "guarded-2", "cp-1", "guarded").await;
    let budgets = guard_budget(&admin_client, &ns).await;
    allow_disruptions(&budgets, 1).await;
    let kubelet = kubelet_for(&kube, &ns).await;

    let rolling = paced(&app, &name).await;
    let alice = person("alice@example.com", &[&group], ConsoleRole::Operator);

    // The plan: the control plane first, then each worker; the gates it checks and why not.
    let mut input = restart(None);
    input.approve_control_plane = true;
    let planned = app.post_json(&format!("/api/v1/clusters/{name}/rolling-operations/plan"), json!(input)).await;
    assert_eq!(planned.status(), 200);
    let planned: serde_json::Value = planned.json().await.unwrap();
    let steps: Vec<serde_json::Value> =
        planned["steps"].as_array().unwrap().iter().map(|s| s["nodes"].clone()).collect();
    assert_eq!(steps, [json!(["cp-1"]), json!(["w-1"]), json!(["w-2"])]);
    assert_eq!(planned["problems"], json!([]));
    assert_eq!(planned["estimate_seconds"], 3 * (60 + 300 + 1));
    let gates: Vec<(String, bool)> = planned["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap().to_string(), g["checked"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        gates,
        [
            ("etcd quorum".to_string(), false),
            ("nodes Ready".into(), true),
            ("no firing alerts".into(), false),
            ("PodDisruptionBudgets".into(), true),
            ("approval".into(), true)
        ]
    );
    assert!(planned["gates"][0]["detail"].as_str().unwrap().contains("no Prometheus is linked"), "{planned}");
    let bad = app
        .post_json(
            &format!("/api/v1/clusters/{name}/rolling-operations/plan"),
            json!({ "change": "restart", "max_unavailable": 0 }),
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("max_unavailable must be at least 1"));

    // A viewer may not start one; alice, an operator whose group may drain, may.
    let viewer = person("vera@example.com", &[&group], ConsoleRole::Viewer);
    assert_eq!(rolling.start(&viewer, &name, input.clone()).await.unwrap_err().status(), 403);
    let started = rolling.start(&alice, &name, input).await.unwrap();
    let job = started.job.clone();
    assert_eq!(started.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["cp-1", "w-1", "w-2"]);

    // The test plays each kubelet: a node whose machine was restarted comes back with a new boot
    // ID. Meanwhile, at most one worker is ever unschedulable, and no worker moves before cp-1
    // is done.
    let watcher = {
        let (rolling, alice, job, nodes) = (rolling.clone(), alice.clone(), job.clone(), nodes.clone());
        tokio::spawn(async move {
            let mut most_out = 0;
            let mut rebooted = Vec::new();
            let mut order = Vec::new();
            loop {
                let op = rolling.operation(&alice, &job).await.unwrap();
                for n in &op.nodes {
                    if n.step != "waiting" && !order.contains(&n.name) {
                        order.push(n.name.clone());
                    }
                    if n.step == "rejoining" && !rebooted.contains(&n.name) {
                        boot(&nodes, &n.name, &format!("{}-2", n.name)).await;
                        rebooted.push(n.name.clone());
                    }
                }
                let cp_done = op.nodes.iter().any(|n| n.name == "cp-1" && n.step == "done");
                assert!(
                    cp_done || op.nodes.iter().all(|n| n.name == "cp-1" || n.step == "waiting"),
                    "a worker moved before the control plane was done: {op:?}"
                );
                let out = nodes
                    .list(&Default::default())
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .filter(|n| n.metadata.name.as_deref() != Some("cp-1"))
                    .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
                    .count();
                most_out = most_out.max(out);
                if !matches!(op.state.as_str(), "running" | "paused") {
                    return (most_out, order, rebooted);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // It waits for a person before the control-plane node.
    let held = operation_when(&rolling, &alice, &job, |op| op.state == "paused").await;
    assert_eq!(
        held.held.as_deref(),
        Some("approval: control-plane node cp-1 waits for a person; resume to restart it"),
        "{held:?}"
    );
    assert!(held.nodes.iter().all(|n| n.step == "waiting"));
    rolling.steer(&alice, &job, Steer::Resume).await.unwrap();

    // cp-1's drain took the budget's one disruption: before w-2, whose pod it guards, the
    // operation pauses on the budget, and says so.
    let held = operation_when(&rolling, &alice, &job, |op| op.state == "paused").await;
    assert_eq!(
        held.held.as_deref(),
        Some(&*format!(
            "PodDisruptionBudgets: PodDisruptionBudget {ns}/guard allows 0 disruption(s) now, and its pod guarded-1 runs on w-2"
        )),
        "{held:?}"
    );
    let steps: Vec<(&str, &str)> = held.nodes.iter().map(|n| (n.name.as_str(), n.step.as_str())).collect();
    assert_eq!(steps, [("cp-1", "done"), ("w-1", "done"), ("w-2", "waiting")]);
    // While one runs, no other starts on the cluster.
    let again = rolling.start(&alice, &name, restart(None)).await.unwrap_err();
    assert_eq!(again.status(), 409);
    assert!(again.to_string().contains(&format!("Another rolling operation runs on {name} ({job})")), "{again}");
    // The budget allows a disruption again: resumed, the operation finishes.
    allow_disruptions(&budgets, 1).await;
    rolling.steer(&alice, &job, Steer::Resume).await.unwrap();
    let done = operation_when(&rolling, &alice, &job, |op| !matches!(op.state.as_str(), "running" | "paused")).await;
    assert_eq!(done.state, "succeeded", "{done:?}");
    assert!(done.nodes.iter().all(|n| n.step == "done"), "{done:?}");
    let (most_out, order, rebooted) = watcher.await.unwrap();
    assert_eq!(most_out, 1, "one worker out at a time, and each was cordoned");
    assert_eq!(order, ["cp-1", "w-1", "w-2"]);
    assert_eq!(rebooted, ["cp-1", "w-1", "w-2"]);
    for (node, _, _) in NODES {
        let seen = nodes.get(node).await.unwrap();
        assert_ne!(seen.spec.unwrap().unschedulable, Some(true), "{node} is uncordoned");
    }
    // The machines' timelines show the steps.
    let timeline = app.get_json(&format!("/api/v1/boot/timeline/{}", NODES[1].1)).await;
    let said: Vec<&str> = timeline["events"].as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
    for expected in [
        "w-1: drained for a rolling restart",
        "w-1: back Ready after its restart; uncordoned",
        "w-1: rolling restart done",
    ] {
        assert!(said.contains(&expected), "{expected} missing from {said:?}");
    }

    // A second operation, on w-1 alone, is paused and cancelled by a person.
    let second = rolling.start(&alice, &name, restart(Some("pool=a"))).await.unwrap();
    assert_eq!(second.plan.len(), 1);
    let paused = rolling.steer(&alice, &second.job, Steer::Pause).await.unwrap();
    assert_eq!(paused.state, "paused");
    let again = rolling.steer(&alice, &second.job, Steer::Pause).await.unwrap_err();
    assert_eq!((again.status(), again.to_string().as_str()), (409, "This rolling operation is paused already."));
    let bob = person("bob@example.com", &[&group], ConsoleRole::Viewer);
    assert_eq!(rolling.steer(&bob, &second.job, Steer::Cancel).await.unwrap_err().status(), 403);
    rolling.steer(&alice, &second.job, Steer::Cancel).await.unwrap();
    let cancelled = operation_when(&rolling, &alice, &second.job, |op| op.state == "failed").await;
    assert!(cancelled.error.as_deref().unwrap_or_default().starts_with("Cancelled at step 1 of 1"), "{cancelled:?}");
    let listed = rolling.operations(&alice, &name).await.unwrap();
    assert_eq!(listed.iter().map(|o| o.job.as_str()).collect::<Vec<_>>(), [second.job.as_str(), job.as_str()]);
    kubelet.abort();

    // Every step a person took, and each end, is audited; the chain verifies.
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT action || ':' || outcome FROM audit_log WHERE action LIKE 'cluster.rolling.%' ORDER BY id",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [
            "cluster.rolling.start:denied",
            "cluster.rolling.start:success",
            "cluster.rolling.resume:success",
            "cluster.rolling.start:failure",
            "cluster.rolling.resume:success",
            "cluster.rolling.end:success",
            "cluster.rolling.start:success",
            "cluster.rolling.pause:success",
            "cluster.rolling.pause:failure",
            "cluster.rolling.cancel:denied",
            "cluster.rolling.cancel:success",
            "cluster.rolling.end:failure",
        ]
    );
    pangea::audit::verify(&app.state.db).await.unwrap();
}

/// A restart of w-1 runs on a `pangea serve` replica, which is killed (SIGKILL) once w-1's machine
/// was restarted and before its node is back. Another replica (on SQLite: the server started
/// again) takes the operation over within its lease, sees w-1 back, uncordons it, soaks, and ends
/// it; its end is audited once.
async fn a_rolling_operation_whose_replica_is_killed_goes_on_on_another(backend: Backend) {
    use crate::replicas::{Replica, job_holder, replica_id, running_and_standby};
    let Some(kube) = crate::support::kube::own() else { return };
    let app = crate::support::spawn_app(backend).await;
    let (name, _bmc, nodes) = cluster_of_three(&app, &kube, pangea::clusters::connect::TOKEN_GROUP, None).await;
    let token = app.token(ConsoleRole::Operator).await;
    let settle = SETTLE_SECONDS.to_string();
    let envs = [crate::replicas::JOB_LEASE[0], ("PANGEA_POWER_SETTLE_SECONDS", settle.as_str())];
    let (first, standby) = running_and_standby(&app, backend, &envs).await;
    let client = reqwest::Client::new();
    let started = client
        .post(format!("http://127.0.0.1:{}/api/v1/clusters/{name}/rolling-operations", first.console))
        .bearer_auth(&token)
        .json(&restart(Some("pool=a")))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201, "{}", started.text().await.unwrap());
    let job = started.json::<RollingOperation>().await.unwrap().job;
    let on = |console: u16| {
        let (client, token, job) = (client.clone(), token.clone(), job.clone());
        async move {
            let at = format!("http://127.0.0.1:{console}/api/v1/rolling-operations/{job}");
            client.get(at).bearer_auth(&token).send().await.unwrap().json::<RollingOperation>().await.unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while on(first.console).await.nodes[0].step != "rejoining" {
        assert!(Instant::now() < deadline, "w-1 was never restarted: {:?}", on(first.console).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(job_holder(&app, &job).await, replica_id(first.console).await);
    drop(first);

    let second = match standby {
        Some(standby) => standby,
        None => Replica::on(&app, &envs).await,
    };
    let id = replica_id(second.console).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while job_holder(&app, &job).await != id {
        assert!(Instant::now() < deadline, "no replica took the operation over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // w-1 comes back from its restart: the replica left goes on from there.
    boot(&nodes, "w-1", "w-1-2").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let op = on(second.console).await;
        if op.state != "running" {
            break op;
        }
        assert!(Instant::now() < deadline, "the operation did not end: {op:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((done.state.as_str(), done.nodes[0].step.as_str(), done.resumed), ("succeeded", "done", 1), "{done:?}");
    assert_ne!(nodes.get("w-1").await.unwrap().spec.unwrap().unschedulable, Some(true), "w-1 is uncordoned");
    // One drain and one restart: the replica that took over followed them, and asked for none again.
    let asked: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action IN ('node.drain', 'machine.power.run') ORDER BY id",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(asked, ["node.drain", "machine.power.run"]);
    // A tick and a lease later, its end is still audited once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ends: Vec<String> = sqlx::query_scalar("SELECT outcome FROM audit_log WHERE action = 'cluster.rolling.end'")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(ends, ["success"]);
    pangea::audit::verify(&app.state.db).await.unwrap();
}

/// A node's kubelet reports boot `boot_id`, Ready, at `version`.
async fn boot_at(nodes: &Api<Node>, name: &str, uuid: &str, boot_id: &str, version: &str) {
    let status = json!({ "status": {
        "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                         "lastHeartbeatTime": "2026-12-07T00:00:00Z", "lastTransitionTime": "2026-12-07T00:00:00Z" }],
        "nodeInfo": { "machineID": "m", "systemUUID": uuid, "bootID": boot_id, "kernelVersion": "6.1", "osImage": "Flatcar",
                      "containerRuntimeVersion": "containerd://2.0", "kubeletVersion": version, "kubeProxyVersion": "",
                      "operatingSystem": "linux", "architecture": "amd64" }
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

/// What a machine does at its network boot: fetches its install config, then (as its installer
/// does) its installed config, then its bootstrap kubeconfig through its secret link, which
/// answers once. Returns the installed config and the bootstrap token.
async fn install(app: &TestApp, boot: std::net::SocketAddr, mac: &str) -> (serde_json::Value, String) {
    let here = |url: &str| url.replace("http://127.0.0.1:8080", &format!("http://{boot}"));
    let install: serde_json::Value =
        reqwest::get(format!("http://{boot}/ignition?mac={mac}")).await.unwrap().json().await.unwrap();
    let installer = crate::creation::ignition_file(&install, "/opt/installer").unwrap();
    let installed_url = installer.split('\'').find(|w| w.contains("os=installed")).unwrap();
    crate::creation::recorded(app, mac, "/ignition").await;
    let installed: serde_json::Value = reqwest::get(here(installed_url)).await.unwrap().json().await.unwrap();
    let link = installed["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/kubernetes/bootstrap-kubelet.conf")
        .and_then(|f| f["contents"]["source"].as_str())
        .unwrap()
        .to_string();
    let conf = reqwest::get(here(&link)).await.unwrap().text().await.unwrap();
    assert_ne!(reqwest::get(here(&link)).await.unwrap().status(), 200, "a link answers once");
    let token = conf.lines().find_map(|l| l.trim().strip_prefix("token: ")).expect(&conf).trim_matches('"').to_string();
    (installed, token)
}

/// A cluster Pangea created (its controller's API server run from its own config, as in the
/// creation tests) with one worker, w-1, whose machine has a BMC. Its workers are reprovisioned
/// with Kubernetes v1.35.0: the plan checks the version skew and refuses the controller; the
/// worker's configs are rendered anew behind a new secret link and a new bootstrap token, made
/// in the cluster; the machine is network-booted once; its kubelet (played) asks for its
/// certificate with that token, which Pangea approves, and comes back at v1.35.0; the token is
/// deleted. A roll back installs it again with v1.36.2.
async fn a_reprovision_installs_a_created_workers_new_version_and_a_roll_back_the_old(backend: Backend) {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use k8s_openapi::api::core::v1::Secret;
    let Some(tools) = crate::support::kube::tools() else {
        assert!(std::env::var("PANGEA_KUBE_REQUIRED").as_deref() != Ok("1"), "PANGEA_KUBE_REQUIRED=1 but no tools");
        eprintln!("skipped: no kube-apiserver here (../shared/tools or PANGEA_TEST_KUBE_BIN)");
        return;
    };
    const MAC: &str = "52:54:00:00:0f:02";
    const UUID: &str = "44444444-0000-0000-0000-000000000002";
    let app = crate::support::spawn_app_with(backend, async |c| {
        c.power_settle = Duration::from_secs(NETWORK_BOOT_SETTLE_SECONDS)
    })
    .await;
    let bmc = emulator(&[FakeSystem { uuid: UUID, power: "On", mac: MAC }]).await;
    let id = app.create(json!({ "mac": MAC, "hostname": "w-1", "uuid": UUID })).await["id"].as_i64().unwrap();
    let url = format!("{}/redfish/v1/Systems/{UUID}", bmc.url);
    let set = app
        .put_json(&format!("/api/v1/machines/{id}/bmc"), json!({ "url": url, "username": USER, "password": PASSWORD }))
        .await;
    assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
    let controller = crate::creation::run_controller(&app, &tools, &format!("[\"{MAC}\"]"), "").await;
    let etc = controller.root.path().join("etc/kubernetes");
    let api_url = format!("https://127.0.0.1:{}", controller.port);
    let admin = pangea::clusters::connect::client(
        &pangea::creation::register::admin_endpoint(
            &std::fs::read_to_string(etc.join("admin.conf")).unwrap(),
            &api_url,
        )
        .unwrap(),
        None,
    )
    .unwrap();
    // w-1 installs; its kubelets, played: both nodes Ready; the creation ends.
    let (first, _) = install(&app, controller.boot, MAC).await;
    assert!(first.to_string().contains("kubernetes-v1.36.2-x86-64.raw"), "{first}");
    let nodes: Api<Node> = Api::all(admin.clone());
    for (name, labels) in [
        ("cp-1", json!({ "node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "cp-1" })),
        ("w-1", json!({ "kubernetes.io/hostname": "w-1" })),
    ] {
        let node: Node = serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels } })).unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        boot_at(&nodes, name, if name == "w-1" { UUID } else { "" }, &format!("{name}-1"), "v1.36.2").await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let creation = app.get_json("/api/v1/cluster-creations/solo").await;
        if creation["state"] == "created" {
            break;
        }
        assert!(Instant::now() < deadline, "the creation never ended: {creation:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // alice's group may drain there (Pangea acts as her).
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "sre-admin" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre" }],
    }))
    .unwrap();
    Api::all(admin.clone()).create(&PostParams::default(), &binding).await.unwrap();
    // Changing what nodes run is changing the cluster's configs: an admin's, not an operator's.
    let alice = person("alice@example.com", &["sre"], ConsoleRole::Admin);
    let olga = person("olga@example.com", &["sre"], ConsoleRole::Operator);
    let pace = Pace { tick: Duration::from_millis(200), rejoin: Duration::from_secs(90), drain_timeout_seconds: 60 };
    let rolling = (*app.state.rolling).clone().with_pace(pace);
    eventually("both nodes and the version to be seen", async || {
        let cache = app.state.clusters.cache("solo").ok()?;
        (cache.node_objects().len() == 2 && cache.health().version.is_some()).then_some(())
    })
    .await;

    // The plan: the controller is not reinstalled; kubelets never newer than the API server.
    let template: String =
        app.get_json("/api/v1/cluster-creations/solo").await["template"].as_str().unwrap().to_string();
    let reprovision = |nodes: Option<&str>, version: &str| RollingInput {
        change: RollingChange::Reprovision,
        template: Some(template.replace("kubernetes: v1.36.2", &format!("kubernetes: {version}"))),
        ..restart(nodes)
    };
    let refused = rolling.plan(&alice, "solo", &reprovision(None, "v1.37.0")).await.unwrap();
    let said = |p: &[String], what: &str| p.iter().any(|p| p.contains(what));
    assert!(
        said(&refused.problems, "cp-1 of the control plane: installing a controller again would wipe"),
        "{refused:?}"
    );
    assert!(said(&refused.problems, "never newer than their API server (v1.36.2)"), "{:?}", refused.problems);
    let workers = Some("!node-role.kubernetes.io/control-plane");
    let changed = rolling.plan(&alice, "solo", &reprovision(workers, "v1.38.0")).await.unwrap();
    assert!(changed.problems.iter().any(|p| p.contains("w-1 runs v1.36.2: kubelets move one minor version")));
    let mut fixed = reprovision(workers, "v1.35.0");
    fixed.template = fixed.template.map(|t| t.replace("name: solo", "name: other"));
    let other = rolling.plan(&alice, "solo", &fixed).await.unwrap();
    assert!(
        other.problems.iter().any(|p| p.contains("changes what a reinstall cannot (name: solo → other")),
        "{other:?}"
    );
    let plan = rolling.plan(&alice, "solo", &reprovision(workers, "v1.35.0")).await.unwrap();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);

    let refused = rolling.start(&olga, "solo", reprovision(workers, "v1.35.0")).await.unwrap_err();
    assert_eq!(refused.status(), 403, "{refused}");
    let started = rolling.start(&alice, "solo", reprovision(workers, "v1.35.0")).await.unwrap();
    let job = started.job.clone();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "kube-system");
    let tokens = || async {
        let listed =
            secrets.list(&kube::api::ListParams::default().fields("type=bootstrap.kubernetes.io/token")).await.unwrap();
        listed.items.into_iter().map(|s| s.metadata.name.unwrap_or_default()).collect::<Vec<_>>()
    };
    operation_when(&rolling, &alice, &job, |op| op.nodes.iter().any(|n| n.name == "w-1" && n.step == "rejoining"))
        .await;
    // Its configs, new: v1.35.0's kubelet, behind a new link that answers once; its token is in
    // the cluster.
    let (installed, token) = install(&app, controller.boot, MAC).await;
    assert!(installed.to_string().contains("kubernetes-v1.35.0-x86-64.raw"), "{installed}");
    let token_id = token.split('.').next().unwrap().to_string();
    assert_eq!(tokens().await, [format!("bootstrap-token-{token_id}")]);

    // Its kubelet asks for its client certificate with that token: approved.
    let kubelet = pangea::clusters::connect::client(
        &pangea::clusters::connect::Endpoint {
            api_url: api_url.clone(),
            ca_pem: std::fs::read_to_string(etc.join("pki/ca.crt")).unwrap(),
            credential: app::clusters::Credential::Token { token },
        },
        None,
    )
    .unwrap();
    let csr = crate::creation::kubelet_client_request("w-1-again", "w-1");
    Api::<CertificateSigningRequest>::all(kubelet).create(&PostParams::default(), &csr).await.unwrap();
    let requests: Api<CertificateSigningRequest> = Api::all(admin.clone());
    eventually("the reinstalled kubelet's request to be approved", async || {
        let csr = requests.get("w-1-again").await.ok()?;
        csr.status?.conditions?.iter().any(|c| c.type_ == "Approved").then_some(())
    })
    .await;
    // Back at v1.35.0: done, its token deleted; the creation's template stays (cp-1 has it).
    boot_at(&nodes, "w-1", UUID, "w-1-2", "v1.35.0").await;
    let done = operation_when(&rolling, &alice, &job, |op| op.state != "running").await;
    assert_eq!(done.state, "succeeded", "{done:#?}");
    assert_eq!(done.rollback, ["w-1"]);
    assert!(tokens().await.is_empty());
    let creation = app.get_json("/api/v1/cluster-creations/solo").await;
    assert!(creation["template"].as_str().unwrap().contains("kubernetes: v1.36.2"), "{creation}");

    // Rolled back: w-1 installed with v1.36.2 again, through the same plan and gates.
    let back = rolling.roll_back(&alice, &job).await.unwrap();
    assert_eq!(back.plan.iter().map(|s| s.nodes.clone()).collect::<Vec<_>>(), [vec!["w-1".to_string()]]);
    let again = app.post_json(&format!("/api/v1/rolling-operations/{}/rollback", back.job), json!({})).await;
    assert_eq!(again.status(), 409, "a running operation is not rolled back");
    assert!(again.text().await.unwrap().contains("Only a reprovision that has ended"));
    operation_when(&rolling, &alice, &back.job, |op| op.nodes[0].step == "rejoining").await;
    let (installed, _) = install(&app, controller.boot, MAC).await;
    assert!(installed.to_string().contains("kubernetes-v1.36.2-x86-64.raw"), "{installed}");
    boot_at(&nodes, "w-1", UUID, "w-1-3", "v1.36.2").await;
    let done = operation_when(&rolling, &alice, &back.job, |op| op.state != "running").await;
    assert_eq!(done.state, "succeeded", "{done:#?}");
    // Rolled back already: not again.
    let twice = rolling.roll_back(&alice, &job).await.unwrap_err();
    assert!(twice.to_string().contains("w-1 no longer have what this operation installed"), "{twice}");
    let records = pangea::audit::latest(&app.state.db, 200).await.unwrap();
    let reinstalls = records.iter().filter(|r| r.action == "cluster.node.reinstall").count();
    assert_eq!(reinstalls, 2);
}

/// A cluster whose real Prometheus fires `NodeExporterUp` (severity `warning`) to its real
/// Alertmanager: an operation held by warnings pauses at its first gate, naming the alert, and
/// moves no node; one held by critical alerts only goes on.
async fn an_alert_firing_in_the_real_prometheus_holds_the_operation_at_its_gate(backend: Backend) {
    let Some(kube) = crate::support::kube::own() else { return };
    let Some(monitor) = crate::support::monitor::start(&kube) else { return };
    let app = crate::support::spawn_app_with(backend, async |_| {}).await;
    let group = unique("sre");
    let (name, _bmc, _nodes) = cluster_of_three(&app, &kube, &group, Some(&monitor)).await;
    let rolling = paced(&app, &name).await;
    let alice = person("alice@example.com", &[&group], ConsoleRole::Operator);
    use app::monitoring::ssr::MonitoringService as _;
    eventually("the alert to fire in Alertmanager", async || {
        let alerts = app.state.monitoring.alerts(&alice, &name, None).await.ok()?;
        alerts
            .alerts
            .iter()
            .any(|a| a.name == "NodeExporterUp" && a.state == app::monitoring::AlertState::Firing)
            .then_some(())
    })
    .await;

    let mut warnings = restart(None);
    warnings.alert_severities = Some(vec!["warning".into()]);
    let planned = rolling.plan(&alice, &name, &warnings).await.unwrap();
    let gate = planned.gates.iter().find(|g| g.name == "no firing alerts").unwrap();
    assert!(gate.checked && gate.detail.contains("no alert of severity warning fires"), "{gate:?}");
    let job = rolling.start(&alice, &name, warnings).await.unwrap().job;
    let held = operation_when(&rolling, &alice, &job, |op| op.state == "paused").await;
    let why = held.held.clone().unwrap_or_default();
    assert!(why.starts_with("no firing alerts: ") && why.contains("NodeExporterUp (warning)"), "{held:#?}");
    assert!(held.nodes.iter().all(|n| n.step == "waiting"), "{held:#?}");
    // A resume checks the gate again: still firing, still held.
    rolling.steer(&alice, &job, Steer::Resume).await.unwrap();
    let again = operation_when(&rolling, &alice, &job, |op| op.state == "paused").await;
    assert!(again.held.unwrap_or_default().contains("NodeExporterUp"));
    let cancelled = rolling.steer(&alice, &job, Steer::Cancel).await.unwrap();
    assert_eq!(cancelled.cluster, name);
    operation_when(&rolling, &alice, &job, |op| op.state == "failed").await;
    // Critical alerts only: this one does not hold it.
    let critical = rolling.start(&alice, &name, restart(None)).await.unwrap().job;
    operation_when(&rolling, &alice, &critical, |op| op.nodes[0].step != "waiting").await;
    rolling.steer(&alice, &critical, Steer::Cancel).await.unwrap();
}
