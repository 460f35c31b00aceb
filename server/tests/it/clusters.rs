//! Clusters against a real kube-apiserver v1.36 (see `support::kube`): registration and its
//! checks, the live inventory and its stream, node actions as the signed-in person (the
//! cluster's audit log names them, its RBAC refuses them), and resuming after a restart.

use crate::support;

use crate::support::kube::{Kube, eventually, input, person, unique};
use crate::support::{Backend, TestApp};
use app::access::{ConsoleRole, Principal};
use app::clusters::ssr::ClusterService;
use app::clusters::{ClusterInput, Connection, Credential, NodeAction, NodeQuery, PodQuery};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

/// Every test here needs a kube-apiserver (see the note in `main.rs`).
mod needs_kube {
    use super::*;

    on_both_backends!(
        registration_checks_the_server_the_credentials_and_impersonation,
        nodes_and_pods_are_live_and_changes_reach_an_open_stream,
        node_actions_are_made_as_the_signed_in_person,
        a_drain_evicts_through_budgets_and_can_be_cancelled,
        a_role_on_one_cluster_counts_there_only,
    );

    mod restart {
        use super::*;
        on_both_backends_with_own_app!(watches_resume_after_the_api_server_restarts);
    }

    mod single_sign_on {
        use super::*;
        on_both_backends_with_own_app!(sso_users_download_a_kubeconfig_that_kubectl_reads);
    }

    mod replica_loss {
        use super::*;
        on_both_backends_with_own_app!(a_drain_whose_replica_is_killed_is_finished_by_another);
    }
}

on_both_backends!(sealed_credentials_are_bound_to_their_cluster_and_rotate_under_a_new_key);

/// Stores a cluster as registering would, without its checks (nothing listens at its address).
async fn store_cluster(app: &TestApp, name: &str, api_url: &str, token: &str) {
    use pangea::clusters::sources::Credentials;
    use pangea::clusters::store::ClusterRecord;
    let record = ClusterRecord {
        name: name.into(),
        endpoint: pangea::clusters::connect::Endpoint {
            api_url: api_url.into(),
            ca_pem: String::new(),
            credential: Credential::Token { token: token.into() },
        },
        prometheus_url: String::new(),
        alertmanager_url: String::new(),
        grafana_url: String::new(),
        source_credentials: Credentials::default(),
        sources: Credentials::default().clients().unwrap(),
        created_by: "test".into(),
        created_at: "2026-12-06T00:00:00Z".into(),
        updated_at: "2026-12-06T00:00:00Z".into(),
        unreadable: None,
        sources_unreadable: None,
    };
    let mut tx = pangea::audit::begin(&app.state.db).await.unwrap();
    pangea::clusters::store::insert(&mut tx, &app.state.sealer, &record).await.unwrap();
    tx.commit().await.unwrap();
}

async fn sealed_credentials_are_bound_to_their_cluster_and_rotate_under_a_new_key(app: TestApp) {
    store_cluster(&app, "alpha", "https://127.0.0.1:9", "token-of-alpha").await;
    store_cluster(&app, "beta", "https://127.0.0.1:10", "token-of-beta").await;
    let sealed = async |name: &str| -> String {
        sqlx::query_scalar("SELECT credential_sealed FROM clusters WHERE name = $1")
            .bind(name)
            .fetch_one(app.state.db.pool())
            .await
            .unwrap()
    };
    let beta_before = sealed("beta").await;
    assert!(beta_before.starts_with("pk1.") && !beta_before.contains("token-of-beta"), "{beta_before}");
    // Copied into alpha's row, beta's ciphertext does not open there: alpha alone is disabled,
    // with the reason on its page; beta is still watched.
    sqlx::query("UPDATE clusters SET credential_sealed = $1 WHERE name = 'alpha'")
        .bind(&beta_before)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    app.state.clusters.sync_registered().await.unwrap();
    let alpha = app.get_json("/api/v1/clusters/alpha").await;
    let why = alpha["health"]["unreachable"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("Not watched") && why.contains("copied from another row or address"), "{alpha}");
    let beta = app.get_json("/api/v1/clusters/beta").await;
    assert!(!beta["health"]["unreachable"].as_str().unwrap_or_default().contains("Not watched"), "{beta}");
    // Without a new credential, the unreadable one is not kept by an update.
    let kept = json!({"name": "alpha", "api_url": "https://127.0.0.1:9"});
    let res = app.client.put(app.at("/api/v1/clusters/alpha")).json(&kept).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // A rotation stops at a value it cannot open, and changes nothing.
    let refused = app.cli(&["keys", "rotate"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cluster alpha"), "{refused:?}");
    assert_eq!(sealed("beta").await, beta_before);
    sqlx::query("DELETE FROM clusters WHERE name = 'alpha'").execute(app.state.db.pool()).await.unwrap();
    let done = app.cli(&["keys", "rotate"]);
    assert!(done.status.success(), "{done:?}");
    let beta_after = sealed("beta").await;
    let old_id = beta_before.split('.').nth(1).unwrap();
    let new_id = beta_after.split('.').nth(1).unwrap();
    assert_ne!(old_id, new_id, "re-sealed under the new key");
    let audit = app.get_json("/api/v1/audit?action=keys.rotate").await;
    assert_eq!(audit["items"][0]["target_id"], new_id);
    assert_eq!(audit["items"][0]["outcome"], "success");
    // The running server reads the key file again when it meets the new key: beta still opens.
    let stored = pangea::clusters::store::all(&app.state.db, &app.state.sealer).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].unreadable, None);
    assert_eq!(stored[0].endpoint.credential, Credential::Token { token: "token-of-beta".into() });
    let verified = app.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "the audit chain key did not change: {verified:?}");
}

/// Creates a Node as a kubelet would: the object, then its status with a Ready condition.
async fn create_node(kube: &Kube, name: &str, uuid: &str, ready: bool) {
    let nodes: Api<Node> = Api::all(kube.admin().await);
    let node: Node = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "node-role.kubernetes.io/worker": "", "rack": "r1" } },
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({ "status": {
        "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" }, "reason": "KubeletReady",
                         "message": "kubelet is posting ready status", "lastHeartbeatTime": "2026-11-30T00:00:00Z",
                         "lastTransitionTime": "2026-11-30T00:00:00Z" }],
        "addresses": [{ "type": "InternalIP", "address": "10.0.0.7" }, { "type": "Hostname", "address": name }],
        "capacity": { "cpu": "8", "memory": "32Gi", "pods": "110" },
        "allocatable": { "cpu": "7800m", "memory": "31Gi", "pods": "110" },
        "nodeInfo": { "machineID": "m", "systemUUID": uuid, "bootID": "b", "kernelVersion": "6.1", "osImage": "Flatcar",
                      "containerRuntimeVersion": "containerd://2.0", "kubeletVersion": "v1.36.2", "kubeProxyVersion": "",
                      "operatingSystem": "linux", "architecture": "amd64" }
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

pub(crate) async fn create_pod(kube: &Kube, namespace: &str, name: &str, node: &str, app: &str) {
    let client = kube.admin().await;
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app": app } },
        "spec": { "nodeName": node, "automountServiceAccountToken": false,
                  "containers": [{ "name": "c", "image": "registry.example/app:1" }] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T00:00:00Z" }] } })),
    )
    .await
    .unwrap();
}

/// A namespace with its `default` service account (no controller makes it here).
pub(crate) async fn create_namespace(kube: &Kube, name: &str) {
    let client = kube.admin().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client, name);
    let account = serde_json::from_value(json!({ "metadata": { "name": "default" } })).unwrap();
    accounts.create(&PostParams::default(), &account).await.unwrap();
}

async fn registration_checks_the_server_the_credentials_and_impersonation(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let name = unique("edge");
    let post = async |body: &ClusterInput| app.post_json("/api/v1/clusters", serde_json::to_value(body).unwrap()).await;

    // A CA that did not sign the server's certificate.
    let other_ca = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap().cert.pem();
    let res = post(&ClusterInput { ca_pem: other_ca, ..input(&kube, &name, &kube.pangea_token) }).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("The CA does not match the server's certificate"), "{body}");

    // A token the server does not know.
    let res = post(&input(&kube, &name, "not-a-token")).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("does not accept these credentials"), "{body}");

    // A valid token that may not impersonate.
    let res = post(&input(&kube, &name, &kube.viewer_token)).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("viewer@example.com") && message.contains("may not impersonate users"), "{body}");

    // A bad name and a bad URL are refused before anything is asked.
    let res = post(&input(&kube, "Edge_1", &kube.pangea_token)).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("is not a cluster name"));
    let res = post(&ClusterInput { api_url: "ftp://x".into(), ..input(&kube, &name, &kube.pangea_token) }).await;
    assert_eq!(res.status(), 400);

    // A viewer may read, not add.
    let viewer = app.token(ConsoleRole::Viewer).await;
    let res = app
        .client
        .post(app.at("/api/v1/clusters"))
        .bearer_auth(&viewer)
        .json(&input(&kube, &name, &kube.pangea_token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Pangea's own identity: saved; the token never comes back and is sealed at rest.
    let res = post(&input(&kube, &name, &kube.pangea_token)).await;
    assert_eq!(res.status(), 201);
    let cluster: serde_json::Value = res.json().await.unwrap();
    assert_eq!(cluster["credential_kind"], "token");
    assert!(!cluster.to_string().contains(&kube.pangea_token));
    let sealed: String = sqlx::query_scalar("SELECT credential_sealed FROM clusters WHERE name = $1")
        .bind(&name)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(!sealed.contains(&kube.pangea_token) && !sealed.is_empty());
    assert_eq!(post(&input(&kube, &name, &kube.pangea_token)).await.status(), 409);

    // It goes live, with the server's version and its readyz checks, etcd's among them.
    let live = eventually("the cluster to go live", async || {
        let c = app.get_json(&format!("/api/v1/clusters/{name}")).await;
        (c["health"]["connection"]["state"] == "live"
            && c["health"]["version"].is_string()
            && !c["health"]["readyz"].as_array().unwrap().is_empty())
        .then_some(c)
    })
    .await;
    assert_eq!(live["health"]["version"], "v1.36.2");
    assert!(live["health"]["readyz"].as_array().unwrap().iter().any(|c| c["name"] == "etcd" && c["ok"] == true));

    // A second replica (same database) follows it without a restart.
    let replica = app.replica().await;
    assert!(replica.get_json("/api/v1/clusters").await.as_array().unwrap().is_empty());
    replica.state.clusters.sync_registered().await.unwrap();
    assert_eq!(replica.get_json("/api/v1/clusters").await[0]["name"], name.as_str());

    // Rotating the credential is checked and audited; removing stops the cache.
    let mut rotate = input(&kube, &name, "not-a-token");
    let res = app.client.put(app.at(&format!("/api/v1/clusters/{name}"))).json(&rotate).send().await.unwrap();
    assert_eq!(res.status(), 400, "a rotation to a bad token is refused and the old one kept");
    // A new address on another host, without new credentials, is refused before anything is
    // sent: the stored token never goes to a host it was not given for.
    let mut moved = input(&kube, &name, "unused");
    moved.api_url = "https://127.0.0.2:6443".into();
    moved.credential = None;
    let res = app.client.put(app.at(&format!("/api/v1/clusters/{name}"))).json(&moved).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("moved to another host"));
    rotate.credential = Some(Credential::Token { token: kube.pangea_token.clone() });
    let res = app.client.put(app.at(&format!("/api/v1/clusters/{name}"))).json(&rotate).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.delete(app.at(&format!("/api/v1/clusters/{name}"))).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.get(&format!("/api/v1/clusters/{name}")).await.status(), 404);
    replica.state.clusters.sync_registered().await.unwrap();
    assert_eq!(replica.get(&format!("/api/v1/clusters/{name}")).await.status(), 404, "and its removal");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action || ':' || outcome FROM audit_log WHERE target_id = $1 ORDER BY id")
            .bind(&name)
            .fetch_all(app.state.db.pool())
            .await
            .unwrap();
    for expected in [
        "cluster.create:failure",
        "cluster.create:denied",
        "cluster.create:success",
        "cluster.rotate_credential:failure",
        "cluster.rotate_credential:success",
        "cluster.delete:success",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} missing from {actions:?}");
    }
}

async fn nodes_and_pods_are_live_and_changes_reach_an_open_stream(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let name = unique("live");
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let node = unique("node");
    let uuid = format!("{:08x}-0000-4000-8000-000000000001", rand::random::<u32>());
    // The inventory machine this node is, by its system UUID.
    let machine = app
        .create(json!({ "mac": "52:54:00:aa:00:01", "hostname": "other-name", "uuid": uuid, "cluster": name }))
        .await;
    create_node(&kube, &node, &uuid, true).await;
    let ns = unique("team");
    create_namespace(&kube, &ns).await;
    create_pod(&kube, &ns, "web-1", &node, "web").await;
    create_pod(&kube, &ns, "db-1", &node, "db").await;

    let rows = eventually("the node and its pods", async || {
        let page = app.get_json(&format!("/api/v1/nodes?cluster={name}&search={node}")).await;
        (page["items"][0]["pods"] == 2).then_some(page)
    })
    .await;
    let row = &rows["items"][0];
    assert_eq!(row["status"], "Ready");
    assert_eq!(row["roles"], json!(["worker"]));
    assert_eq!(row["internal_ip"], "10.0.0.7");
    assert_eq!(row["version"], "v1.36.2");
    assert_eq!(row["cpu"], "8");
    assert_eq!(row["machine"], machine["id"], "linked by system UUID");
    // The machine's page finds its node (to chart it beside the boot timeline).
    let of_machine = app.get_json(&format!("/api/v1/nodes?machine={}", machine["id"])).await;
    assert_eq!((of_machine["total"].as_u64(), &of_machine["items"][0]["name"]), (Some(1), &json!(node)));
    let other = app
        .get_json(&format!("/api/v1/nodes?cluster={name}&machine={}", machine["id"].as_i64().unwrap() + 1_000))
        .await;
    assert_eq!(other["total"], 0);

    // Filters: label selector, namespace, phase, node; a bad selector is a 400 in words.
    let page = app.get_json(&format!("/api/v1/nodes?cluster={name}&search={node}&selector=rack%3Dr1,!gpu")).await;
    assert!(page["items"].as_array().unwrap().iter().any(|n| n["name"] == node.as_str()));
    let page = app.get_json(&format!("/api/v1/nodes?cluster={name}&selector=rack%3Dr9")).await;
    assert_eq!(page["total"], 0);
    let res = app.get(&format!("/api/v1/nodes?cluster={name}&selector=a%3Db%20c")).await;
    assert_eq!(res.status(), 400);
    let pods = app.get_json(&format!("/api/v1/clusters/{name}/pods?namespace={ns}&selector=app%3Dweb")).await;
    assert_eq!(pods["total"], 1);
    assert_eq!(pods["items"][0]["name"], "web-1");
    assert_eq!(pods["items"][0]["phase"], "Running");
    let pods = app.get_json(&format!("/api/v1/clusters/{name}/pods?node={node}&phase=Running&limit=1")).await;
    assert_eq!((pods["total"].as_u64(), pods["items"].as_array().unwrap().len()), (Some(2), 1));

    // The node page has its conditions, pods and machine.
    let detail = app.get_json(&format!("/api/v1/clusters/{name}/nodes/{node}")).await;
    assert_eq!(detail["conditions"][0]["kind"], "Ready");
    assert_eq!(detail["pods"].as_array().unwrap().len(), 2);
    assert_eq!(detail["system_uuid"], uuid.as_str());
    assert_eq!(detail["row"]["machine"], machine["id"]);

    // An open stream hears a label change made with kubectl, and the page then shows it.
    let mut stream = app.get(&format!("/api/v1/clusters/{name}/live")).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // (Other tests change the same API server, so the stream may announce their changes
    // too: each announcement is followed by a fetch, until ours shows.)
    let zone = unique("z");
    let labelled = kube.kubectl(&["label", "node", &node, &format!("zone={zone}")]);
    assert!(labelled.status.success(), "{}", String::from_utf8_lossy(&labelled.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk()).await.expect("a change within 5 s").unwrap().unwrap();
        assert!(String::from_utf8_lossy(&chunk).contains("event: changed"));
        let page = app.get_json(&format!("/api/v1/nodes?cluster={name}&selector=zone%3D{zone}")).await;
        if page["total"] == 1 {
            assert_eq!(page["items"][0]["name"], node.as_str());
            break;
        }
    }

    // The machine was provisioned by Pangea: once it reported "installed", its node moves its
    // timeline to joined and, the node being Ready, to Ready.
    {
        let p = &app.state.provisioner;
        let cli = Principal::cli();
        let profile = serde_json::from_value(json!({ "id": "node", "boot": { "kernel": "/assets/k" } })).unwrap();
        p.put_profile(&cli, profile).await.unwrap();
        p.set_machine_profile(&cli, "52:54:00:aa:00:01", "node").await.unwrap();
        p.record_boots(&app.state.background);
        let boot = app.boot_listener().await;
        let token = p.report_tokens.token("52:54:00:aa:00:01", time::OffsetDateTime::now_utc());
        let report = format!("http://{boot}/metadata?mac=52:54:00:aa:00:01&stage=installed&report_token={token}");
        let res = reqwest::get(report).await.unwrap();
        assert_eq!(res.status(), 200);
        eventually("installed", async || {
            let t = p.timeline(&cli, "52:54:00:aa:00:01").await.unwrap();
            t.status.filter(|s| s.state == app::provisioning::boots::BootState::Installed)
        })
        .await;
        app.state.clusters.link_nodes(|| true).await.unwrap();
        let timeline = p.timeline(&cli, "52:54:00:aa:00:01").await.unwrap();
        assert_eq!(timeline.status.unwrap().state, app::provisioning::boots::BootState::Ready);
        let steps: Vec<_> = timeline.events.iter().filter_map(|e| e.step).collect();
        use app::provisioning::boots::BootState::{Installed, Joined, Ready};
        assert!(steps.ends_with(&[Installed, Joined, Ready]), "{steps:?}");
        assert!(
            timeline
                .events
                .last()
                .unwrap()
                .reason
                .as_deref()
                .unwrap()
                .contains(&format!("node {name}/{node} is Ready"))
        );
        // A second pass records nothing new.
        app.state.clusters.link_nodes(|| true).await.unwrap();
        assert_eq!(p.timeline(&cli, "52:54:00:aa:00:01").await.unwrap().events.len(), timeline.events.len());
    }

    // Mismatches are warnings on the cluster: a node that is no machine, and a machine of this
    // cluster installed over an hour ago that no node is.
    let stray = unique("stray");
    create_node(&kube, &stray, "", true).await;
    app.create(json!({ "mac": "52:54:00:aa:00:02", "hostname": "lost-one", "cluster": name })).await;
    sqlx::query("INSERT INTO boot_states (mac, state, reason, since, last_seen) VALUES ('52:54:00:aa:00:02', 'installed', '', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    // (Other tests' nodes share this API server: every node but ours is such a stray.)
    let warnings = eventually("the stray node counted on the cluster page", async || {
        let total = app.get_json(&format!("/api/v1/nodes?cluster={name}&limit=1")).await["total"].as_u64().unwrap();
        let c = app.get_json(&format!("/api/v1/clusters/{name}")).await;
        let w: Vec<String> =
            c["health"]["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
        let strays = format!("{} node(s) match no inventory machine", total - 1);
        w.iter().any(|w| w.starts_with(&strays)).then_some(w)
    })
    .await;
    assert!(warnings.iter().any(|w| w.starts_with("Machine lost-one was installed at 2026-01-01")), "{warnings:?}");

    // The same through the service the pages call.
    let who = Principal::cli();
    let pods = app
        .state
        .clusters
        .pods(&who, PodQuery { cluster: name.clone(), namespace: Some(ns.clone()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(pods.total, 2);
    let nodes = app
        .state
        .clusters
        .nodes(&who, NodeQuery { cluster: Some(name.clone()), search: Some(node.clone()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(nodes.items.len(), 1);
    app.state.clusters.remove(&who, &name).await.unwrap();

    // The command line registers one from a kubeconfig (inline data, Pangea's token), lists
    // it and removes it, each audited as the operating-system user.
    use base64::Engine;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: p\nclusters:\n- name: k\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         contexts:\n- name: p\n  context:\n    cluster: k\n    user: pangea\nusers:\n- name: pangea\n  user:\n    token: {}\n",
        kube.url,
        base64::engine::general_purpose::STANDARD.encode(&kube.ca_pem),
        kube.pangea_token
    );
    let file = app.data_dir.join("pangea.kubeconfig");
    std::fs::write(&file, kubeconfig).unwrap();
    let cli_name = unique("cli");
    let out = app.cli(&["cluster", "add", &cli_name, "--kubeconfig", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.cli(&["cluster", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&cli_name));
    let out = app.cli(&["cluster", "remove", &cli_name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.cli(&["cluster", "remove", &cli_name]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("No cluster named"));
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE target_id = $1 AND outcome = 'success'")
            .bind(&cli_name)
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(audited, 2, "cluster.create and cluster.delete");
}

async fn node_actions_are_made_as_the_signed_in_person(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let name = unique("acts");
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let node = unique("node");
    create_node(&kube, &node, "", true).await;
    let group = unique("sre");
    let viewers = unique("viewers");
    // The cluster lets group `sre-…` patch nodes, and binds `viewers-…` to `view` only.
    for args in [
        vec!["create", "clusterrole", &format!("{group}-patch"), "--verb=get,patch", "--resource=nodes"],
        vec![
            "create",
            "clusterrolebinding",
            &format!("{group}-patch"),
            &format!("--clusterrole={group}-patch"),
            &format!("--group={group}"),
        ],
        vec![
            "create",
            "clusterrolebinding",
            &format!("{viewers}-view"),
            "--clusterrole=view",
            &format!("--group={viewers}"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        let out = kube.kubectl(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let alice = person("alice@example.com", &[&group], ConsoleRole::Operator);
    let clusters = &app.state.clusters;

    // RBAC is eventually consistent in the API server's authorizer cache; the first patch
    // waits for the binding to be seen.
    let row = eventually("alice's cordon to be allowed", async || {
        clusters.act(&alice, &name, &node, NodeAction::Cordon).await.ok()
    })
    .await;
    assert!(row.cordoned);
    let row = clusters
        .act(
            &alice,
            &name,
            &node,
            NodeAction::Taints {
                set: vec![app::clusters::Taint {
                    key: "maintenance".into(),
                    value: "disk".into(),
                    effect: "NoSchedule".into(),
                }],
                remove: vec![],
            },
        )
        .await
        .unwrap();
    assert!(row.taints.iter().any(|t| t.key == "maintenance" && t.value == "disk"), "{:?}", row.taints);
    clusters.act(&alice, &name, &node, NodeAction::Uncordon).await.unwrap();

    // The cluster's audit log names alice (and her group) as the impersonated user.
    let record = eventually("the cluster's audit record", async || {
        kube.audit().into_iter().find(|r| {
            r["verb"] == "patch"
                && r["objectRef"]["name"] == node.as_str()
                && r["impersonatedUser"]["username"] == "alice@example.com"
        })
    })
    .await;
    assert_eq!(record["user"]["username"], "pangea");
    assert!(record["impersonatedUser"]["groups"].as_array().unwrap().iter().any(|g| g == group.as_str()));

    // Bob is an operator in Pangea, but the cluster binds his group to `view` only: the
    // cluster's refusal, in its words, is a 403 and is audited as denied.
    let bob = person("bob@example.com", &[&viewers], ConsoleRole::Operator);
    let refused = clusters.act(&bob, &name, &node, NodeAction::Cordon).await.unwrap_err();
    assert_eq!(refused.status(), 403);
    let message = refused.to_string();
    assert!(message.contains("User \"bob@example.com\" cannot patch resource \"nodes\""), "{message}");
    // A Pangea viewer is stopped by Pangea first, without asking the cluster.
    let carol = person("carol@example.com", &[&group], ConsoleRole::Viewer);
    let refused = clusters.act(&carol, &name, &node, NodeAction::Cordon).await.unwrap_err();
    assert!(refused.to_string().contains("Your role (viewer)"), "{refused}");
    assert!(!kube.audit().iter().any(|r| r["impersonatedUser"]["username"] == "carol@example.com"));
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT actor || ':' || action || ':' || outcome FROM audit_log WHERE target_id = $1 ORDER BY id",
    )
    .bind(format!("{name}/{node}"))
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    for expected in [
        "alice@example.com:node.cordon:success",
        "alice@example.com:node.taints:success",
        "bob@example.com:node.cordon:denied",
        "carol@example.com:node.cordon:denied",
    ] {
        assert!(outcomes.iter().any(|o| o == expected), "{expected} missing from {outcomes:?}");
    }

    // Over HTTP with an API token: it acts as `pangea:token:<name>`, which this cluster does
    // not let patch nodes.
    let token = app.token(ConsoleRole::Operator).await;
    let res = app
        .client
        .post(app.at(&format!("/api/v1/clusters/{name}/nodes/{node}/actions")))
        .bearer_auth(&token)
        .json(&json!({ "action": "labels", "set": { "rack": "r2" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("pangea:token:test-operator"), "{body}");
    let res = app
        .client
        .post(app.at(&format!("/api/v1/clusters/{name}/nodes/{node}/actions")))
        .bearer_auth(&token)
        .json(&json!({ "action": "labels", "set": { "<script>": "x" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "bad keys are refused before the cluster is asked");

    // A token made with a cluster identity (here by the command line) acts as that user and
    // group, which this cluster lets patch nodes.
    let deployer = unique("deployer");
    let out = app.cli(&[
        "token",
        "create",
        "--name",
        "deploy",
        "--role",
        "operator",
        "--cluster-user",
        &deployer,
        "--cluster-group",
        &group,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("acts in clusters as {deployer} in {group}")));
    let deploy_token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let res = app
        .client
        .post(app.at(&format!("/api/v1/clusters/{name}/nodes/{node}/actions")))
        .bearer_auth(&deploy_token)
        .json(&json!({ "action": "labels", "set": { "rack": "r2" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let record = eventually("the deploy token's audit record", async || {
        kube.audit()
            .into_iter()
            .find(|r| r["verb"] == "patch" && r["impersonatedUser"]["username"] == deployer.as_str())
    })
    .await;
    assert_eq!(record["objectRef"]["name"], node.as_str());
    assert!(record["impersonatedUser"]["groups"].as_array().unwrap().iter().any(|g| g == group.as_str()));
    assert!(!record["impersonatedUser"]["groups"].as_array().unwrap().iter().any(|g| g == "pangea:api-tokens"));
    // The Access page lists whom each token acts as; Kubernetes' own groups are refused.
    let tokens = app.post_json("/api/gui/list_tokens", json!({})).await.json::<serde_json::Value>().await.unwrap();
    let listed = tokens.as_array().unwrap().iter().find(|t| t["name"] == "deploy").unwrap().clone();
    assert_eq!(listed["cluster_as"], json!({ "user": deployer, "groups": [group] }));
    let res = app
        .post_json(
            "/api/gui/create_token",
            json!({ "name": "root", "role": "operator", "cluster_user": "ci", "cluster_groups": ["system:masters"] }),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("system:masters"));
    app.state.clusters.remove(&Principal::cli(), &name).await.unwrap();

    // A change stands only once the audit log has it: with the database gone, alice's label is
    // made, then undone, and she is told so.
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    app.state.db.pool().close().await;
    let label = NodeAction::Labels { set: [("undo-me".to_string(), "yes".to_string())].into(), remove: vec![] };
    let refused = clusters.act(&alice, &name, &node, label).await.unwrap_err();
    assert!(refused.to_string().contains("The change was undone"), "{refused}");
    let now: Node = Api::all(kube.admin().await).get(&node).await.unwrap();
    assert!(!now.metadata.labels.unwrap_or_default().contains_key("undo-me"), "undone in the cluster");
}

async fn watches_resume_after_the_api_server_restarts(backend: Backend) {
    let Some(kube) = support::kube::own() else { return };
    let app = support::spawn_app(backend).await;
    let name = unique("restart");
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let connection = async || app.state.clusters.cache(&name).unwrap().connection();
    eventually("live", async || (connection().await == Connection::Live).then_some(())).await;

    // The API server dies (SIGKILL: a graceful stop keeps serving open watches for a while).
    let dir = kube.dir().unwrap();
    let pid = std::fs::read_to_string(dir.join("apiserver.pid")).unwrap();
    let command_line = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap();
    let args: Vec<String> =
        command_line.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into()).collect();
    std::process::Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
    let reason = eventually("reconnecting", async || match connection().await {
        Connection::Reconnecting { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(!reason.is_empty());

    // Start it again with the same flags; etcd kept everything.
    let log = std::fs::File::create(dir.join("apiserver-2.log")).unwrap();
    let child = std::process::Command::new(&args[0])
        .args(&args[1..])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::fs::write(dir.join("apiserver.pid"), child.id().to_string()).unwrap();
    // Stopped with the test even when it fails (kube-down's SIGTERM can leave it waiting for
    // the etcd that is already gone).
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _restarted = KillOnDrop(child);
    let node = unique("after");
    eventually("the API server to answer again", async || {
        let nodes: Api<Node> = Api::all(kube.admin().await);
        nodes.list(&Default::default()).await.ok()
    })
    .await;
    create_node(&kube, &node, "", false).await;
    eventually("the new node in the store, without restarting Pangea", async || {
        let page = app
            .state
            .clusters
            .nodes(
                &Principal::cli(),
                NodeQuery { cluster: Some(name.clone()), search: Some(node.clone()), ..Default::default() },
            )
            .await
            .unwrap();
        (page.total == 1).then_some(())
    })
    .await;
    eventually("live again", async || (connection().await == Connection::Live).then_some(())).await;
}

/// Acts as the kubelet of `namespace`'s pods: a pod being deleted (evicted) is removed at once.
pub(crate) async fn kubelet_for(kube: &Kube, namespace: &str) -> tokio::task::JoinHandle<()> {
    let (client, namespace) = (kube.admin().await, namespace.to_string());
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client, &namespace);
        loop {
            if let Ok(list) = pods.list(&Default::default()).await {
                for pod in list.items.iter().filter(|p| p.metadata.deletion_timestamp.is_some()) {
                    let now = kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
                    let _ = pods.delete(pod.metadata.name.as_deref().unwrap_or_default(), &now).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// A PodDisruptionBudget `guard` over the two `guarded` pods of `namespace`.
pub(crate) async fn guard_budget(
    admin: &kube::Client,
    namespace: &str,
) -> Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> {
    let budgets = Api::namespaced(admin.clone(), namespace);
    let budget = serde_json::from_value(json!({ "metadata": { "name": "guard" },
        "spec": { "minAvailable": 2, "selector": { "matchLabels": { "app": "guarded" } } } }))
    .unwrap();
    budgets.create(&PostParams::default(), &budget).await.unwrap();
    budgets
}

/// Sets how many disruptions `guard` allows now, as the disruption controller would.
pub(crate) async fn allow_disruptions(budgets: &Api<k8s_openapi::api::policy::v1::PodDisruptionBudget>, n: i32) {
    let status = json!({ "status": { "observedGeneration": 1, "currentHealthy": 2, "desiredHealthy": 2 - n.min(1),
        "disruptionsAllowed": n, "expectedPods": 2 } });
    budgets.patch_status("guard", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

/// Two `pangea serve` processes on one database (on SQLite, the second starts after the first
/// died, as a restarted server); a drain blocked by a budget runs on the first, which is killed
/// with SIGKILL. The second takes it over after the lease, finishes it once the budget allows,
/// and audits its end once.
async fn a_drain_whose_replica_is_killed_is_finished_by_another(backend: Backend) {
    use crate::replicas::Replica;
    let Some(kube) = support::kube::shared() else { return };
    let app = support::spawn_app(backend).await;
    let name = unique("resume");
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let drainer = unique("drainer");
    let (_, token) =
        app.state.access.create_token(&Principal::cli(), &drainer, ConsoleRole::Operator, None, None).await.unwrap();
    let user = format!("--user=pangea:token:{drainer}");
    for args in [
        vec!["create", "clusterrole", &drainer, "--verb=get,list,patch", "--resource=nodes,pods,poddisruptionbudgets"],
        vec!["create", "clusterrole", &format!("{drainer}-evict"), "--verb=create", "--resource=pods/eviction"],
        vec!["create", "clusterrolebinding", &drainer, &format!("--clusterrole={drainer}"), &user],
        vec![
            "create",
            "clusterrolebinding",
            &format!("{drainer}-evict"),
            &format!("--clusterrole={drainer}-evict"),
            &user,
        ],
    ] {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        let out = kube.kubectl(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (node, other, ns) = (unique("node"), unique("node"), unique("team"));
    create_node(&kube, &node, "", true).await;
    create_node(&kube, &other, "", true).await;
    create_namespace(&kube, &ns).await;
    create_pod(&kube, &ns, "web-1", &node, "web").await;
    create_pod(&kube, &ns, "guarded-1", &node, "guarded").await;
    create_pod(&kube, &ns, "guarded-2", &other, "guarded").await;
    let admin = kube.admin().await;
    let budgets = guard_budget(&admin, &ns).await;
    let allow = async |n: i32| allow_disruptions(&budgets, n).await;
    allow(0).await;
    let kubelet = kubelet_for(&kube, &ns).await;

    let lease = [("PANGEA_JOB_LEASE_SECONDS", "3")];
    let client = reqwest::Client::new();
    let progress = async |port: u16, job: &str| -> serde_json::Value {
        let res = client
            .get(format!("http://127.0.0.1:{port}/api/v1/drains/{job}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    };
    let first = Replica::on(&app, &lease).await;
    let first_port = first.console;
    let standby = match backend {
        Backend::Postgres => Some(Replica::on(&app, &lease).await),
        Backend::Sqlite => None,
    };
    let res = client
        .post(format!("http://127.0.0.1:{first_port}/api/v1/clusters/{name}/nodes/{node}/drain"))
        .bearer_auth(&token)
        .json(&json!({ "timeout_seconds": 120 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let job = res.json::<serde_json::Value>().await.unwrap()["job"].as_str().unwrap().to_string();
    let blocked = eventually("the drain to wait for the budget", async || {
        let p = progress(first_port, &job).await;
        (p["evicted"] == 1 && p["blockers"].as_array().is_some_and(|b| !b.is_empty())).then_some(p)
    })
    .await;
    assert_eq!(blocked["state"], "running", "{blocked}");

    // The replica running it dies mid-drain; the budget then allows the last eviction.
    drop(first);
    allow(1).await;
    let second = match standby {
        Some(standby) => standby,
        None => Replica::on(&app, &lease).await,
    };
    let second_port = second.console;
    let done = eventually("another replica to finish the drain", async || {
        let p = progress(second_port, &job).await;
        (p["state"] != "running").then_some(p)
    })
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        (done["evicted"].as_u64(), done["total"].as_u64(), done["resumed"].as_u64()),
        (Some(2), Some(2), Some(1))
    );
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let left: Vec<String> =
        pods.list(&Default::default()).await.unwrap().items.iter().filter_map(|p| p.metadata.name.clone()).collect();
    assert_eq!(left, vec!["guarded-2".to_string()]);
    let nodes: Api<Node> = Api::all(admin);
    assert_eq!(nodes.get(&node).await.unwrap().spec.unwrap().unschedulable, Some(true));
    kubelet.abort();

    let ends: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM audit_log WHERE action = 'node.drain.end' AND target_id = $1")
            .bind(format!("{name}/{node}"))
            .fetch_all(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(ends, vec!["success".to_string()], "its end is audited once");
    assert!(pangea::audit::verify(&app.state.db).await.is_ok());
    drop(second);
}

/// Waits (up to 20 s) until the drain's progress satisfies `done`; a timeout shows the last.
async fn wait_for_drain(
    app: &TestApp,
    who: &Principal,
    job: &str,
    done: impl Fn(&app::clusters::DrainProgress) -> bool,
) -> app::clusters::DrainProgress {
    let start = Instant::now();
    loop {
        let progress = app.state.clusters.drain_progress(who, job).await.unwrap();
        if done(&progress) {
            return progress;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for the drain; it is at {progress:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_drain_evicts_through_budgets_and_can_be_cancelled(app: TestApp) {
    use app::clusters::DrainOptions;
    let Some(kube) = support::kube::shared() else { return };
    let name = unique("drain");
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let (node, other) = (unique("node"), unique("node"));
    create_node(&kube, &node, "", true).await;
    create_node(&kube, &other, "", true).await;
    let ns = unique("team");
    create_namespace(&kube, &ns).await;
    create_pod(&kube, &ns, "web-1", &node, "web").await;
    create_pod(&kube, &ns, "guarded-1", &node, "guarded").await;
    create_pod(&kube, &ns, "guarded-2", &other, "guarded").await;
    let admin = kube.admin().await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let special: Vec<Pod> = vec![
        serde_json::from_value(json!({ "metadata": { "name": "scratch-1" }, "spec": { "nodeName": node,
            "automountServiceAccountToken": false, "containers": [{ "name": "c", "image": "x" }],
            "volumes": [{ "name": "tmp", "emptyDir": {} }] } }))
        .unwrap(),
        serde_json::from_value(json!({ "metadata": { "name": "agent-1", "ownerReferences": [{ "apiVersion": "apps/v1",
            "kind": "DaemonSet", "name": "agent", "uid": "8b2a1c9e-0000-4000-8000-000000000001", "controller": true }] },
            "spec": { "nodeName": node, "automountServiceAccountToken": false, "containers": [{ "name": "c", "image": "x" }] } }))
        .unwrap(),
    ];
    for pod in &special {
        pods.create(&PostParams::default(), pod).await.unwrap();
    }
    // A budget that allows no disruption of the `guarded` pods (its status patched as the
    // disruption controller would).
    let budgets = guard_budget(&admin, &ns).await;
    let allow = async |n: i32| allow_disruptions(&budgets, n).await;
    allow(0).await;
    let kubelet = kubelet_for(&kube, &ns).await;

    // Alice's group may drain in this cluster.
    let group = unique("sre");
    crate::rolling::let_drain(&kube, &group);
    let alice = person("alice@example.com", &[&group], ConsoleRole::Operator);
    let clusters = &app.state.clusters;
    eventually("alice's RBAC to be seen", async || clusters.act(&alice, &name, &node, NodeAction::Cordon).await.ok())
        .await;

    // Without "delete local data", the emptyDir pod stops the drain before any eviction.
    let job = clusters.drain(&alice, &name, &node, DrainOptions::default()).await.unwrap();
    let failed = wait_for_drain(&app, &alice, &job, |p| p.state == "failed").await;
    let error = failed.error.unwrap();
    assert!(error.contains(&format!("{ns}/scratch-1")) && error.contains("node-local storage"), "{error}");
    assert_eq!(pods.list(&Default::default()).await.unwrap().items.len(), 5, "nothing was evicted");

    // With it: web-1 and scratch-1 go; guarded-1 waits for its budget, and says so.
    let options = DrainOptions { delete_local_data: true, timeout_seconds: Some(60) };
    let job = clusters.drain(&alice, &name, &node, options.clone()).await.unwrap();
    let blocked = wait_for_drain(&app, &alice, &job, |p| p.evicted == 2 && !p.blockers.is_empty()).await;
    assert_eq!(blocked.total, 3);
    assert_eq!(blocked.state, "running");
    assert_eq!(blocked.blockers[0].pod, format!("{ns}/guarded-1"));
    assert!(blocked.blockers[0].reason.contains(&format!("PodDisruptionBudget {ns}/guard allows 0")), "{blocked:?}");
    assert_eq!(blocked.skipped, vec![format!("{ns}/agent-1")]);
    // The budget allows one disruption: the drain finishes.
    allow(1).await;
    let done = wait_for_drain(&app, &alice, &job, |p| p.state != "running").await;
    assert_eq!((done.state.as_str(), done.evicted, done.total), ("succeeded", 3, 3), "{done:?}");
    let left: Vec<String> =
        pods.list(&Default::default()).await.unwrap().items.iter().filter_map(|p| p.metadata.name.clone()).collect();
    assert!(
        left.contains(&"agent-1".to_string()) && left.contains(&"guarded-2".to_string()) && left.len() == 2,
        "{left:?}"
    );

    // A drain blocked by the budget is cancelled: it stops, the node stays cordoned.
    allow(0).await;
    let job = clusters.drain(&alice, &name, &other, options).await.unwrap();
    wait_for_drain(&app, &alice, &job, |p| !p.blockers.is_empty()).await;
    let bob = person("bob@example.com", &[&group], ConsoleRole::Operator);
    assert_eq!(clusters.cancel_drain(&bob, &job).await.unwrap_err().status(), 404, "only its owner or an admin");
    clusters.cancel_drain(&alice, &job).await.unwrap();
    let cancelled = wait_for_drain(&app, &alice, &job, |p| p.state == "failed").await;
    assert!(cancelled.error.unwrap().starts_with("Cancelled after evicting 0 of 1 pods"));
    let nodes: Api<Node> = Api::all(admin);
    assert_eq!(nodes.get(&other).await.unwrap().spec.unwrap().unschedulable, Some(true));
    kubelet.abort();

    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT action || ':' || outcome FROM audit_log WHERE target_id IN ($1, $2) OR action = 'node.drain.cancel' ORDER BY id",
    )
    .bind(format!("{name}/{node}"))
    .bind(format!("{name}/{other}"))
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    for expected in
        ["node.drain:success", "node.drain.end:failure", "node.drain.end:success", "node.drain.cancel:success"]
    {
        assert!(outcomes.iter().any(|o| o == expected), "{expected} missing from {outcomes:?}");
    }
}

async fn sso_users_download_a_kubeconfig_that_kubectl_reads(backend: Backend) {
    let Some(kube) = support::kube::shared() else { return };
    let app = support::spawn_app_with(backend, async |config| {
        let url = |u: &str| url::Url::parse(u).unwrap();
        config.oidc = Some(pangea::access::sso::OidcSettings {
            issuer: url("https://idp.example.com/realms/ops"),
            client_id: "pangea".into(),
            client_secret: "unused".to_string().into(),
            redirect_url: url("http://127.0.0.1/auth/oidc/callback"),
            post_logout_url: url("http://127.0.0.1/login"),
            extra_scopes: vec!["groups".into()],
            username_claim: "email".into(),
            groups_claim: "groups".into(),
            refresh_every: Duration::from_secs(300),
        });
    })
    .await;
    let name = unique("sso");
    app.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let res = app.get(&format!("/api/v1/clusters/{name}/kubeconfig")).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains(&format!("{name}.kubeconfig")));
    let text = res.text().await.unwrap();
    assert!(!text.contains(&kube.pangea_token), "Pangea's own credential is never in it");
    let file = app.data_dir.join("sso.kubeconfig");
    std::fs::write(&file, &text).unwrap();

    // The real kubectl reads it.
    let out = kube.kubectl(&["config", "view", "--raw", "-o", "json", "--kubeconfig", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["current-context"], name.as_str());
    assert_eq!(view["clusters"][0]["cluster"]["server"], kube.url.as_str());
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(view["clusters"][0]["cluster"]["certificate-authority-data"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(ca).unwrap().trim(), kube.ca_pem.trim());
    let exec = &view["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], "kubectl");
    let args: Vec<&str> = exec["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "oidc-login",
            "get-token",
            "--oidc-issuer-url=https://idp.example.com/realms/ops",
            "--oidc-client-id=pangea",
            "--oidc-extra-scope=email",
            "--oidc-extra-scope=groups"
        ]
    );

    // Without single sign-on there is no IdP to name: a clear 409.
    let plain = support::spawn_app(backend).await;
    plain.state.clusters.add(&Principal::cli(), input(&kube, &name, &kube.pangea_token)).await.unwrap();
    let res = plain.get(&format!("/api/v1/clusters/{name}/kubeconfig")).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("Single sign-on is not configured"));
}

async fn a_role_on_one_cluster_counts_there_only(app: TestApp) {
    let Some(kube) = support::kube::shared() else { return };
    let (edge, core) = (unique("edge"), unique("core"));
    for name in [&edge, &core] {
        app.state.clusters.add(&Principal::cli(), input(&kube, name, &kube.pangea_token)).await.unwrap();
    }
    let node = unique("node");
    create_node(&kube, &node, "", true).await;
    // "team-a is operator on edge only", bound with the command line; a local user in no other
    // binding signs in.
    let out = app.cli(&["access", "bind", "tina", "--user", "--role", "operator", "--cluster", &edge]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.cli(&["access", "bind", "tina", "--user", "--role", "admin", "--cluster", &edge]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin is for all of Pangea"));
    let hash = pangea::access::hash_password(&"tina-password".to_string().into()).unwrap();
    sqlx::query("INSERT INTO users (username, source, password_hash, created_at) VALUES ('tina', 'local', $1, '2026-01-01T00:00:00.000000Z')")
        .bind(hash)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let tina = app.browser();
    let res = tina
        .post(app.at("/auth/login"))
        .form(&[("username", "tina"), ("password", "tina-password"), ("next", "/clusters")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().path(), "/clusters", "she may open the Clusters pages");
    assert_eq!(res.status(), 200);
    assert_eq!(tina.get(app.at("/machines")).send().await.unwrap().status(), 403, "and nothing else");
    let listed: serde_json::Value = tina.get(app.at("/api/v1/clusters")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, [edge.as_str()]);
    assert_eq!(tina.get(app.at(&format!("/api/v1/clusters/{core}"))).send().await.unwrap().status(), 403);
    let nodes: serde_json::Value = tina.get(app.at("/api/v1/nodes")).send().await.unwrap().json().await.unwrap();
    assert!(nodes["items"].as_array().unwrap().iter().all(|n| n["cluster"] == edge.as_str()));

    // Pangea lets her act on edge (the cluster's RBAC then refuses user tina, in its words),
    // and refuses her on core itself.
    let act = async |cluster: &str| {
        tina.post(app.at(&format!("/api/v1/clusters/{cluster}/nodes/{node}/actions")))
            .json(&json!({ "action": "cordon" }))
            .send()
            .await
            .unwrap()
    };
    let on_edge = act(&edge).await;
    assert_eq!(on_edge.status(), 403);
    let body: serde_json::Value = on_edge.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("User \"tina\" cannot patch resource \"nodes\""), "{body}");
    let on_core = act(&core).await;
    assert_eq!(on_core.status(), 403);
    let body: serde_json::Value = on_core.json().await.unwrap();
    assert_eq!(body["message"], format!("You have no role on cluster {core}; ask an admin."));
    let bindings = app.state.access.list_bindings(&Principal::cli()).await.unwrap();
    assert!(bindings.iter().any(|b| b.subject == "tina" && b.cluster == edge && b.role == ConsoleRole::Operator));
}
