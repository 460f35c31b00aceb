//! Cluster creation: a template's plan against the inventory, on both databases, and kubelet
//! certificate requests against a real API server: made as a real bootstrap token user and as
//! real nodes (impersonated by the admin), judged by Pangea with only the rights it asks for on a
//! cluster it creates.

use crate::support::TestApp;
use app::access::{ConsoleRole, Identity, Principal};
use pangea::creation::template::ClusterTemplate;
use serde_json::json;

on_both_backends!(
    a_template_takes_machines_by_mac_search_and_class_and_names_what_stands_in_the_way,
    a_secret_link_answers_its_machine_once_and_the_timeline_and_the_audit_say_so,
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

async fn a_secret_link_answers_its_machine_once_and_the_timeline_and_the_audit_say_so(app: TestApp) {
    use pangea::creation::render::{NodeSpec, Role, secret_url};
    let mac = "52:54:00:00:0d:01";
    app.create(json!({ "mac": mac, "hostname": "node-1", "role": "worker" })).await;
    app.state.provisioner.record_boots(&app.state.background);
    let boot = app.boot_listener().await;
    let node = NodeSpec {
        role: Role::Worker,
        name: "node-1".into(),
        mac: mac.parse().unwrap(),
        address: None,
        secrets_token: format!("{:032x}", rand::random::<u128>()),
    };
    let secret = "token: abcdef.0123456789abcdef\n";
    app.state
        .creation
        .keep_secrets(&admin(), "edge-1", &node, &[("bootstrap-kubelet.conf".into(), secret.into())])
        .await
        .unwrap();
    // Sealed at rest.
    let sealed = || async {
        let sealed: String =
            sqlx::query_scalar("SELECT sealed FROM cluster_secrets").fetch_one(app.state.db.pool()).await.unwrap();
        sealed
    };
    assert!(!sealed().await.contains("abcdef") && !sealed().await.is_empty());

    let url = secret_url(&format!("http://{boot}"), &node, "bootstrap-kubelet.conf");
    let first = reqwest::get(&url).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    assert_eq!(first.text().await.unwrap(), secret);
    // Once only, and a stranger's link is as absent as any other path.
    assert_eq!(sealed().await, "", "a fetched file is forgotten");
    // Another method does not use up (or reach) a link.
    let head = reqwest::Client::new().head(&url).send().await.unwrap();
    assert_eq!(head.status(), 405);
    let again = reqwest::get(&url).await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(again.text().await.unwrap(), "404 page not found\n");
    let stranger =
        reqwest::get(format!("http://{boot}/cluster-secrets/{:032x}/bootstrap-kubelet.conf", 7)).await.unwrap();
    assert_eq!(stranger.status(), 404);

    // The machine's timeline shows both fetches and the HEAD, without the link's token (and the
    // stranger's request too: it came from the address this machine asks from, as assets do).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let timeline = loop {
        let timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
        if timeline["events"].as_array().unwrap().len() == 4 {
            break timeline;
        }
        assert!(tokio::time::Instant::now() < deadline, "the timeline never showed the four requests: {timeline:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let events = timeline["events"].as_array().unwrap();
    assert!(events.iter().all(|e| e["endpoint"] == "/cluster-secrets/…/bootstrap-kubelet.conf"), "{timeline:#}");
    let statuses: Vec<u64> = events.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 405, 404, 404]);
    let reason = events[2]["reason"].as_str().unwrap();
    assert!(reason.starts_with("bootstrap-kubelet.conf was fetched already, at "), "{reason}");
    assert!(reason.ends_with("from 127.0.0.1: a secret link answers once"), "{reason}");
    assert_eq!(events[3]["reason"], "no such secret link");
    assert!(!timeline.to_string().contains(&node.secrets_token));

    // Audited: the fetch, and the refused second one.
    let records = pangea::audit::latest(&app.state.db, 10).await.unwrap();
    let fetches: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.action == "cluster.secret.fetch")
        .map(|r| (r.outcome.as_str(), r.target_id.as_str()))
        .collect();
    assert_eq!(fetches, [("denied", mac), ("success", mac)]);
    let kept = records.iter().find(|r| r.action == "cluster.secret.keep").unwrap();
    assert_eq!((kept.actor.as_str(), kept.target_id.as_str()), ("admin", mac));
    assert!(kept.summary.contains("bootstrap-kubelet.conf"));
    assert!(records.iter().all(|r| !r.summary.contains(&node.secrets_token) && !r.summary.contains("abcdef.")));
    pangea::audit::verify(&app.state.db).await.unwrap();
}

mod needs_kube {
    use crate::support::kube;
    use ::kube::api::{Api, PostParams};
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use pangea::creation::approval::{APPROVER_RULES, Inventory, KnownMachine, approve_pending};
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
        let (known, stranger) = (format!("{id}-known"), format!("{id}-stranger"));
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
        ask(bootstrap, &format!("{id}-2"), signer_client, &client, &csr_pem(&stranger, vec![])).await;
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
        let machines = [KnownMachine { name: known.clone(), addresses: vec!["10.0.0.11".parse().unwrap()] }];
        let pass =
            approve_pending(&pangea, &Inventory { bootstrap_token_id: token_id, machines: &machines }).await.unwrap();

        let ours = |name: &str| name.starts_with(&id);
        let approved_names: Vec<&str> = pass.approved.iter().map(|a| a.request.as_str()).filter(|n| ours(n)).collect();
        assert_eq!(approved_names, [format!("{id}-1"), format!("{id}-3")]);
        let refused: Vec<(&str, &str)> =
            pass.refused.iter().filter(|r| ours(&r.request)).map(|r| (r.request.as_str(), r.reason.as_str())).collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert_eq!(refused[0].1, format!("{stranger:?} is not a machine of this cluster's inventory"));
        assert!(refused[1].1.contains("names the address 10.9.9.9"), "{refused:?}");

        // The API server holds the same: approved by Pangea, the rest still pending.
        let api: Api<CertificateSigningRequest> = Api::all(k.admin().await);
        for (n, expected) in [(1, true), (2, false), (3, true), (4, false)] {
            let csr = api.get(&format!("{id}-{n}")).await.unwrap();
            assert_eq!(approved(&csr), expected, "request {n}");
        }
        let one = api.get(&format!("{id}-1")).await.unwrap();
        let condition = &one.status.unwrap().conditions.unwrap()[0];
        assert_eq!(condition.reason.as_deref(), Some("PangeaInventory"));
        // A second pass approves nothing again and refuses the same two.
        let again =
            approve_pending(&pangea, &Inventory { bootstrap_token_id: token_id, machines: &machines }).await.unwrap();
        assert!(again.approved.iter().all(|a| !ours(&a.request)));
        assert_eq!(again.refused.iter().filter(|r| ours(&r.request)).count(), 2);
    }
}
