//! Matchbox's gRPC API as terraform-provider-matchbox drives it: ProfilePut, IgnitionPut,
//! GenericPut, GroupPut, the Gets and the Selects, then destroy in Terraform's order. Over real
//! TLS with client certificates from a CA made for the test; a client without a certificate, or
//! with one from another CA, gets nowhere.

use crate::support::TestApp;
use pangea::provisioner::grpc::{GrpcTls, pb};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

on_both_backends!(
    terraform_s_calls_work_and_are_audited_under_the_certificate_s_name,
    only_clients_of_the_ca_get_in,
    an_independent_grpcio_client_does_what_terraform_does,
    tls_is_as_matchbox_sets_it_and_the_certificate_rotates_without_a_restart,
    the_command_line_makes_certificates_that_work_for_server_and_client,
    a_revoked_client_certificate_fails_the_handshake,
);

/// Binds a role to a certificate's name (`cert:<CN>`, or `cert:*` for every client of the CA),
/// as `pangea access bind cert:terraform --user --role operator` does.
async fn bind_certificate(app: &TestApp, subject: &str, role: app::access::ConsoleRole) {
    app.state.access.bind(&app::access::Principal::cli(), "user", subject, role).await.unwrap();
}

struct Pki {
    ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca_pem: ca.pem(), ca, ca_key }
    }

    /// `(certificate, key)` PEMs signed by this CA.
    fn issue(&self, common_name: &str, server: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(if server { vec!["localhost".to_string()] } else { Vec::new() }).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages =
            vec![if server { ExtendedKeyUsagePurpose::ServerAuth } else { ExtendedKeyUsagePurpose::ClientAuth }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The listener's files in `dir`: a server certificate of `pki`, and `pki`'s CA for clients
/// (and `ca.crl` for revocation lists, when `crl`).
fn tls_files(dir: &std::path::Path, pki: &Pki, crl: bool) -> GrpcTls {
    let (cert, key) = pki.issue("pangea", true);
    let tls = GrpcTls {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: dir.join("ca.pem"),
        client_crl: crl.then(|| dir.join("ca.crl")),
    };
    std::fs::write(&tls.cert, cert).unwrap();
    std::fs::write(&tls.key, key).unwrap();
    std::fs::write(&tls.client_ca, &pki.ca_pem).unwrap();
    tls
}

/// Starts the gRPC listener with a server certificate of `pki`, trusting clients of `pki`.
async fn rpc_listener(app: &TestApp, pki: &Pki) -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_files(dir.path(), pki, false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let provisioner = app.state.provisioner.clone();
    tokio::spawn(async move {
        pangea::provisioner::grpc::serve(provisioner, listener, &tls, std::future::pending()).await.unwrap()
    });
    (addr, dir)
}

async fn channel(
    addr: std::net::SocketAddr,
    server_ca: &str,
    client: Option<(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(server_ca)).domain_name("localhost");
    if let Some((cert, key)) = client {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls)?.connect().await
}

/// One unary call of `/rpcpb.<Service>/<Method>`.
async fn call<Req: prost::Message + Send + Sync + 'static, Resp: prost::Message + Default + Send + Sync + 'static>(
    channel: &Channel,
    path: &'static str,
    request: Req,
) -> Result<Resp, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic::codec::ProstCodec::<Req, Resp>::default();
    grpc.unary(tonic::Request::new(request), http::uri::PathAndQuery::from_static(path), codec)
        .await
        .map(|r| r.into_inner())
}

async fn terraform_s_calls_work_and_are_audited_under_the_certificate_s_name(app: TestApp) {
    let pki = Pki::new("matchbox-ca");
    let (addr, _dir) = rpc_listener(&app, &pki).await;
    bind_certificate(&app, "cert:terraform", app::access::ConsoleRole::Operator).await;
    let ch = channel(addr, &pki.ca_pem, Some(pki.issue("terraform", false))).await.unwrap();

    // matchbox_profile: ProfilePut, then IgnitionPut (<name>.yaml.tmpl), then GenericPut.
    let profile = pb::Profile {
        id: "worker".into(),
        name: "worker".into(),
        ignition_id: "worker.yaml.tmpl".into(),
        generic_id: "worker.env".into(),
        boot: Some(pb::NetBoot {
            kernel: "/assets/vmlinuz".into(),
            initrd: vec!["/assets/initrd.img".into()],
            args: vec!["console=ttyS0".into()],
        }),
        ..Default::default()
    };
    let _: pb::Empty =
        call(&ch, "/rpcpb.Profiles/ProfilePut", pb::ProfilePutRequest { profile: Some(profile.clone()) })
            .await
            .unwrap();
    let butane = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: {{.hostname}}\n";
    let _: pb::Empty = call(
        &ch,
        "/rpcpb.Ignition/IgnitionPut",
        pb::TemplatePutRequest { name: "worker.yaml.tmpl".into(), config: butane.into() },
    )
    .await
    .unwrap();
    let _: pb::Empty = call(
        &ch,
        "/rpcpb.Generic/GenericPut",
        pb::TemplatePutRequest { name: "worker.env".into(), config: b"HOST={{.hostname}}\n".to_vec() },
    )
    .await
    .unwrap();
    // matchbox_group: GroupPut (the Terraform name is the id), then GroupGet.
    let group = pb::Group {
        id: "node1".into(),
        name: "node1".into(),
        profile: "worker".into(),
        selector: [("mac".to_string(), "52-54-00-00-00-21".to_string())].into(),
        metadata: br#"{"hostname":"node1.example.com"}"#.to_vec(),
    };
    let _: pb::Empty = call(&ch, "/rpcpb.Groups/GroupPut", pb::GroupPutRequest { group: Some(group) }).await.unwrap();
    let got: pb::GroupGetResponse =
        call(&ch, "/rpcpb.Groups/GroupGet", pb::IdRequest { id: "node1".into() }).await.unwrap();
    let got = got.group.unwrap();
    assert_eq!(got.selector["mac"], "52:54:00:00:00:21", "stored in matching form");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&got.metadata).unwrap()["hostname"], "node1.example.com");
    let profile_back: pb::ProfileGetResponse =
        call(&ch, "/rpcpb.Profiles/ProfileGet", pb::IdRequest { id: "worker".into() }).await.unwrap();
    assert_eq!(profile_back.profile.unwrap(), profile);
    let template: pb::TemplateGetResponse =
        call(&ch, "/rpcpb.Ignition/IgnitionGet", pb::NameRequest { name: "worker.yaml.tmpl".into() }).await.unwrap();
    assert_eq!(template.config, butane.as_bytes());
    let listed: pb::GroupListResponse = call(&ch, "/rpcpb.Groups/GroupList", pb::Empty {}).await.unwrap();
    assert_eq!(listed.groups.len(), 1);
    let selected: pb::ProfileGetResponse = call(
        &ch,
        "/rpcpb.Select/SelectProfile",
        pb::SelectRequest { labels: [("mac".to_string(), "52:54:00:00:00:21".to_string())].into() },
    )
    .await
    .unwrap();
    assert_eq!(selected.profile.unwrap().id, "worker");
    // The boot listener serves it at once.
    let why = app.state.provisioner.explain(&app::access::Principal::cli(), "mac=52:54:00:00:00:21").await.unwrap();
    assert_eq!(why.generic.body.as_deref(), Some("HOST=node1.example.com\n"));

    // Bad input is refused with a reason; a missing one is NotFound.
    let err = call::<_, pb::Empty>(
        &ch,
        "/rpcpb.Ignition/IgnitionPut",
        pb::TemplatePutRequest { name: "bad.ign".into(), config: b"{".to_vec() },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("not valid JSON"), "{}", err.message());
    let err = call::<_, pb::GroupGetResponse>(&ch, "/rpcpb.Groups/GroupGet", pb::IdRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = call::<_, pb::Empty>(&ch, "/rpcpb.Profiles/ProfileDelete", pb::IdRequest { id: "worker".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "a group still boots by it");

    // terraform destroy: the group, then the profile and its templates.
    let _: pb::Empty = call(&ch, "/rpcpb.Groups/GroupDelete", pb::IdRequest { id: "node1".into() }).await.unwrap();
    let _: pb::Empty = call(&ch, "/rpcpb.Profiles/ProfileDelete", pb::IdRequest { id: "worker".into() }).await.unwrap();
    let _: pb::Empty =
        call(&ch, "/rpcpb.Ignition/IgnitionDelete", pb::NameRequest { name: "worker.yaml.tmpl".into() }).await.unwrap();
    let _: pb::Empty =
        call(&ch, "/rpcpb.Generic/GenericDelete", pb::NameRequest { name: "worker.env".into() }).await.unwrap();

    let records = pangea::audit::latest(&app.state.db, 30).await.unwrap();
    let by_terraform: Vec<&str> = records
        .iter()
        .filter(|r| r.actor == "cert:terraform" && r.outcome == "success")
        .map(|r| r.action.as_str())
        .collect();
    for action in [
        "provisioning.profile.put",
        "provisioning.template.put",
        "provisioning.group.put",
        "provisioning.group.delete",
        "provisioning.profile.delete",
        "provisioning.template.delete",
    ] {
        assert!(by_terraform.contains(&action), "{action} in {by_terraform:?}");
    }
    assert!(records.iter().any(|r| r.actor == "cert:terraform" && r.auth_method == "mtls"));
}

async fn only_clients_of_the_ca_get_in(app: TestApp) {
    let pki = Pki::new("matchbox-ca");
    let (addr, _dir) = rpc_listener(&app, &pki).await;
    // No client certificate: the handshake (or the first call) fails; nothing is answered.
    let anonymous = match channel(addr, &pki.ca_pem, None).await {
        Ok(ch) => call::<_, pb::GroupListResponse>(&ch, "/rpcpb.Groups/GroupList", pb::Empty {}).await.is_err(),
        Err(_) => true,
    };
    assert!(anonymous, "a client without a certificate was answered");
    // A certificate from another CA: refused the same way.
    let rogue = Pki::new("rogue-ca");
    let refused = match channel(addr, &pki.ca_pem, Some(rogue.issue("terraform", false))).await {
        Ok(ch) => call::<_, pb::GroupListResponse>(&ch, "/rpcpb.Groups/GroupList", pb::Empty {}).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client of another CA was answered");
    // A client of the CA with no role bound to its name gets nothing, and is told how to bind one.
    let stranger = channel(addr, &pki.ca_pem, Some(pki.issue("stranger", false))).await.unwrap();
    let err = call::<_, pb::GroupListResponse>(&stranger, "/rpcpb.Groups/GroupList", pb::Empty {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("pangea access bind cert:stranger --user --role"), "{err:?}");
    // A certificate's name can be bound to a role like any user: a viewer reads, and changes nothing.
    bind_certificate(&app, "cert:reader", app::access::ConsoleRole::Viewer).await;
    let reader = channel(addr, &pki.ca_pem, Some(pki.issue("reader", false))).await.unwrap();
    call::<_, pb::GroupListResponse>(&reader, "/rpcpb.Groups/GroupList", pb::Empty {}).await.unwrap();
    let put = pb::ProfilePutRequest { profile: Some(pb::Profile { id: "p".into(), ..Default::default() }) };
    let err = call::<_, pb::Empty>(&reader, "/rpcpb.Profiles/ProfilePut", put.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    // The rule for every client of the CA (cert:*) gives the stranger its role; a name's own
    // binding still wins.
    bind_certificate(&app, "cert:*", app::access::ConsoleRole::Operator).await;
    call::<_, pb::Empty>(&stranger, "/rpcpb.Profiles/ProfilePut", put.clone()).await.unwrap();
    let err = call::<_, pb::Empty>(&reader, "/rpcpb.Profiles/ProfilePut", put).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "the reader stays a viewer: {err:?}");
    // A method Matchbox does not have.
    let ch = channel(addr, &pki.ca_pem, Some(pki.issue("terraform", false))).await.unwrap();
    let err = call::<_, pb::Empty>(&ch, "/rpcpb.Groups/GroupPatch", pb::Empty {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

/// The Python interpreter of the venv `.ci/setup` makes, with grpcio and grpcio-tools.
fn grpcio_python() -> Option<std::path::PathBuf> {
    let venv = std::env::var_os("PANGEA_PY_VENV").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pangea-venv")
    });
    let python = venv.join("bin/python");
    if python.is_file() {
        return Some(python);
    }
    assert!(
        std::env::var("PANGEA_GRPCIO_REQUIRED").as_deref() != Ok("1"),
        "PANGEA_GRPCIO_REQUIRED=1 but there is no venv at {}: run .ci/setup",
        venv.display()
    );
    println!("SKIPPED: no grpcio venv at {} (run .ci/setup)", venv.display());
    None
}

/// Python's grpcio, with stubs generated from Matchbox's .proto files, calls as
/// terraform-provider-matchbox does; without a certificate, or with another CA's, it is refused.
async fn an_independent_grpcio_client_does_what_terraform_does(app: TestApp) {
    let Some(python) = grpcio_python() else { return };
    let pki = Pki::new("matchbox-ca");
    let (addr, dir) = rpc_listener(&app, &pki).await;
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let ca = write("ca-for-client.pem", &pki.ca_pem);
    bind_certificate(&app, "cert:terraform", app::access::ConsoleRole::Operator).await;
    let (cert, key) = pki.issue("terraform", false);
    let (cert, key) = (write("client.pem", &cert), write("client.key", &key));
    let (rogue_cert, rogue_key) = Pki::new("rogue-ca").issue("terraform", false);
    let (rogue_cert, rogue_key) = (write("rogue.pem", &rogue_cert), write("rogue.key", &rogue_key));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end/grpc/terraform_client.py");
    let endpoint = addr.to_string();
    let run = |args: Vec<String>| {
        let (python, script) = (python.clone(), script.clone());
        async move {
            tokio::task::spawn_blocking(move || std::process::Command::new(python).arg(script).args(args).output())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let base = |scenario: &str| -> Vec<String> {
        ["--scenario", scenario, "--endpoint", &endpoint, "--server-name", "localhost", "--ca-file", &ca]
            .map(str::to_string)
            .to_vec()
    };
    let mut terraform = base("terraform");
    terraform.extend(["--cert-file", &cert, "--key-file", &key, "--prefix", "tf"].map(str::to_string));
    let out = run(terraform).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON from the client: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{report:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report["group_get"]["id"], "tf-node1", "{report:#}");
    assert_eq!(report["select_profile"]["id"], "tf-worker", "{report:#}");
    assert_eq!(report["group_get_after_destroy"]["code"], "NOT_FOUND", "{report:#}");
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{report:#}");
    let audit = app.get_json("/api/v1/audit?actor=cert:terraform&action=provisioning.group.put").await;
    assert_eq!(audit["items"][0]["auth_method"], "mtls", "{audit:#}");

    let out = run(base("expect-refused")).await;
    assert!(out.status.success(), "a client without a certificate got in: {}", String::from_utf8_lossy(&out.stdout));
    let mut rogue = base("expect-refused");
    rogue.extend(["--cert-file", &rogue_cert, "--key-file", &rogue_key].map(str::to_string));
    let out = run(rogue).await;
    assert!(out.status.success(), "another CA's client got in: {}", String::from_utf8_lossy(&out.stdout));
}

/// A TLS handshake with only these suites and versions; the server certificate's common name.
async fn handshake(
    addr: std::net::SocketAddr,
    pki: &Pki,
    client: &(String, String),
    suites: Vec<rustls::SupportedCipherSuite>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = rustls::crypto::CryptoProvider { cipher_suites: suites, ..rustls::crypto::ring::default_provider() };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let chain = vec![CertificateDer::from_pem_slice(client.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(client.1.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| e.to_string())?;
    let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    Ok(parsed.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string())
}

/// TLS 1.2+ with ECDHE and AES-GCM only, as Matchbox; the server's certificate files are read
/// again when they change.
async fn tls_is_as_matchbox_sets_it_and_the_certificate_rotates_without_a_restart(app: TestApp) {
    use rustls::crypto::ring::cipher_suite::*;
    use rustls::version::{TLS12, TLS13};
    let pki = Pki::new("matchbox-ca");
    let (addr, dir) = rpc_listener(&app, &pki).await;
    let client = pki.issue("terraform", false);
    let tls13 = vec![TLS13_AES_128_GCM_SHA256];
    assert_eq!(handshake(addr, &pki, &client, tls13, &[&TLS13]).await.unwrap(), "pangea");
    for suite in [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384] {
        assert!(handshake(addr, &pki, &client, vec![suite], &[&TLS12]).await.is_ok(), "{suite:?}");
    }
    for (suite, version) in
        [(TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, &TLS12), (TLS13_CHACHA20_POLY1305_SHA256, &TLS13)]
    {
        let refused = handshake(addr, &pki, &client, vec![suite], &[version]).await;
        assert!(refused.is_err(), "{suite:?} was accepted: Matchbox allows AES-GCM only");
    }
    // Rotation: new files in place, and the next handshake gets the new certificate.
    let (cert, key) = pki.issue("pangea-rotated", true);
    std::fs::write(dir.path().join("server.key"), key).unwrap();
    std::fs::write(dir.path().join("server.pem"), cert).unwrap();
    let rotated = handshake(addr, &pki, &client, vec![TLS13_AES_256_GCM_SHA384], &[&TLS13]).await.unwrap();
    assert_eq!(rotated, "pangea-rotated");
    // Calls still work over the rotated certificate.
    bind_certificate(&app, "cert:terraform", app::access::ConsoleRole::Viewer).await;
    let ch = channel(addr, &pki.ca_pem, Some(client)).await.unwrap();
    call::<_, pb::GroupListResponse>(&ch, "/rpcpb.Groups/GroupList", pb::Empty {}).await.unwrap();
}

/// `pangea provisioner certs` makes what a quick start needs, as Matchbox's cert-gen does.
async fn the_command_line_makes_certificates_that_work_for_server_and_client(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("tls");
    let tls = tls_dir.to_str().unwrap();
    let cli = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_pangea")).args(args).output().unwrap();
    let out = cli(&["provisioner", "certs", tls, "--server-name", "localhost", "--server-name", "127.0.0.1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = cli(&["provisioner", "certs", tls, "--server-name", "localhost"]);
    assert!(!again.status.success(), "a second run must not replace the CA");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let read = |name: &str| std::fs::read_to_string(tls_dir.join(name)).unwrap();
    let files = GrpcTls {
        cert: tls_dir.join("server.crt"),
        key: tls_dir.join("server.key"),
        client_ca: tls_dir.join("ca.crt"),
        client_crl: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let provisioner = app.state.provisioner.clone();
    tokio::spawn(async move {
        pangea::provisioner::grpc::serve(provisioner, listener, &files, std::future::pending()).await.unwrap()
    });
    bind_certificate(&app, "cert:terraform", app::access::ConsoleRole::Operator).await;
    let ch = channel(addr, &read("ca.crt"), Some((read("client.crt"), read("client.key")))).await.unwrap();
    let put = pb::ProfilePutRequest { profile: Some(pb::Profile { id: "quick-start".into(), ..Default::default() }) };
    call::<_, pb::Empty>(&ch, "/rpcpb.Profiles/ProfilePut", put).await.unwrap();
    let audit = app.get_json("/api/v1/audit?actor=cert:terraform").await;
    assert_eq!(audit["items"][0]["action"], "provisioning.profile.put", "{audit:#}");
}

/// With the CA's revocation list (`--rpc-crl-file`), a revoked client certificate fails the
/// handshake while the CA's other clients go on; a file that holds no list stops the start.
async fn a_revoked_client_certificate_fails_the_handshake(app: TestApp) {
    use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
    let pki = Pki::new("matchbox-ca");
    bind_certificate(&app, "cert:*", app::access::ConsoleRole::Operator).await;
    let issue = |name: &str, serial: u64| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        (params.signed_by(&key, &pki.ca, &pki.ca_key).unwrap().pem(), key.serialize_pem())
    };
    let (kept, revoked) = (issue("kept", 1001), issue("revoked", 1002));
    let now = time::OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(1002u64),
            revocation_time: now - time::Duration::minutes(1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&pki.ca, &pki.ca_key)
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let tls = tls_files(dir.path(), &pki, true);
    std::fs::write(dir.path().join("ca.crl"), "not a list").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = pangea::provisioner::grpc::serve(app.state.provisioner.clone(), listener, &tls, async {}).await;
    assert!(refused.unwrap_err().contains("holds no revocation list"));

    std::fs::write(dir.path().join("ca.crl"), crl.pem().unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let provisioner = app.state.provisioner.clone();
    tokio::spawn(async move {
        pangea::provisioner::grpc::serve(provisioner, listener, &tls, std::future::pending()).await.unwrap()
    });
    let kept_ch = channel(addr, &pki.ca_pem, Some(kept)).await.unwrap();
    call::<_, pb::GroupListResponse>(&kept_ch, "/rpcpb.Groups/GroupList", pb::Empty {}).await.unwrap();
    let revoked_answered = match channel(addr, &pki.ca_pem, Some(revoked)).await {
        Ok(ch) => call::<_, pb::GroupListResponse>(&ch, "/rpcpb.Groups/GroupList", pb::Empty {}).await.is_ok(),
        Err(_) => false,
    };
    assert!(!revoked_answered, "a revoked certificate was answered");
}
