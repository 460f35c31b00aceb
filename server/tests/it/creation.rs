//! Cluster creation against a real API server: kubelet certificate requests made as a real
//! bootstrap token user and as real nodes (impersonated by the admin), judged by Pangea with
//! only the rights it asks for on a cluster it creates.

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
        assert_eq!(refused[0].1, format!("{stranger} is not a machine of this cluster's inventory"));
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
