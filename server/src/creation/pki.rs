//! A new cluster's PKI, in kubeadm's layout (`/etc/kubernetes/pki`): the cluster, etcd and
//! front-proxy CAs, the service-account key pair, the serving and client certificates with the
//! names and SANs the components check, the kubeconfigs of the admin, the controller manager and
//! the scheduler, and a bootstrap token for each machine's kubelet to join with (one per machine,
//! so a token names the machine that used it). Every key is ECDSA P-256.

use super::template::Ipv4Network;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use time::{Duration, OffsetDateTime};

/// A control-plane machine, as its certificates name it.
#[derive(Debug, Clone)]
pub struct ControllerName {
    /// Its node name (the machine's host name).
    pub name: String,
    pub address: Option<IpAddr>,
}

/// What the certificates must name.
#[derive(Debug, Clone)]
pub struct PkiRequest<'a> {
    pub api_name: &'a str,
    pub api_address: IpAddr,
    pub api_port: u16,
    pub services: Ipv4Network,
    pub controllers: &'a [ControllerName],
    /// Every node's name, controllers' too: each gets its own bootstrap token.
    pub nodes: &'a [String],
}

/// The generated files, by their path under `/etc/kubernetes/` (`pki/ca.crt`, `admin.conf`, …),
/// and each node's bootstrap token, by node name. Keys are PEM (PKCS#8); this is secret as a whole
/// and is sealed at rest.
#[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ClusterPki {
    pub files: BTreeMap<String, String>,
    pub bootstrap_tokens: BTreeMap<String, BootstrapToken>,
    /// Pangea's own client certificates in the cluster, kept off every machine: `monitoring.crt`
    /// and `.key` (user `pangea:monitoring`, which reads the cluster's Prometheus through the API
    /// server). Empty for clusters created before Pangea made them.
    #[serde(default)]
    pub console_clients: BTreeMap<String, String>,
}

/// Shows the files' names and the tokens' ids, never a key or a token's secret.
impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPki")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("bootstrap_tokens", &self.bootstrap_tokens)
            .field("console_clients", &self.console_clients.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BootstrapToken({}.…)", self.id)
    }
}

/// A bootstrap token, `abcdef.0123456789abcdef`, as `kubeadm token create` makes them.
#[derive(Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl BootstrapToken {
    pub fn generate() -> BootstrapToken {
        use rand::Rng as _;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let mut word =
            |n: usize| -> String { (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect() };
        BootstrapToken { id: word(6), secret: word(16) }
    }

    pub fn token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

/// Why the PKI could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the {what}: {source}")]
pub struct PkiError {
    what: String,
    source: rcgen::Error,
}

/// A CA or a leaf with its key.
struct Issued {
    cert: Certificate,
    key: KeyPair,
}

/// The user Pangea reads a created cluster's Prometheus as, through the API server's proxy.
pub const MONITORING_USER: &str = "pangea:monitoring";

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;

fn params(common_name: &str, organization: Option<&str>, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
    params
}

fn failed(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError { what: what.to_string(), source }
}

fn ca(common_name: &str) -> Result<Issued, PkiError> {
    let mut p = params(common_name, None, CA_DAYS);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().map_err(failed(common_name))?;
    let cert = p.self_signed(&key).map_err(failed(common_name))?;
    Ok(Issued { cert, key })
}

/// A leaf certificate signed by `by`.
fn leaf(
    by: &Issued,
    common_name: &str,
    organization: Option<&str>,
    usages: &[ExtendedKeyUsagePurpose],
    sans: Vec<SanType>,
) -> Result<Issued, PkiError> {
    let mut p = params(common_name, organization, LEAF_DAYS);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = usages.to_vec();
    p.subject_alt_names = sans;
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(failed(common_name))?;
    let cert = p.signed_by(&key, &by.cert, &by.key).map_err(failed(common_name))?;
    Ok(Issued { cert, key })
}

fn dns(name: &str) -> Result<SanType, PkiError> {
    name.to_string().try_into().map(SanType::DnsName).map_err(failed(name))
}

const SERVER: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth];
const CLIENT: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];
const BOTH: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];

impl ClusterPki {
    /// Makes every CA, key and certificate the control plane needs.
    pub fn generate(request: &PkiRequest) -> Result<ClusterPki, PkiError> {
        let mut files = BTreeMap::new();
        let mut put = |path: &str, issued: &Issued| {
            files.insert(format!("pki/{path}.crt"), issued.cert.pem());
            files.insert(format!("pki/{path}.key"), issued.key.serialize_pem());
        };
        let cluster_ca = ca("kubernetes")?;
        let etcd_ca = ca("etcd-ca")?;
        let proxy_ca = ca("front-proxy-ca")?;

        // The API server answers at its service IP, its name and address, the in-cluster names,
        // and each controller (a node may reach the API server on its own machine).
        let mut sans =
            vec![SanType::IpAddress(IpAddr::V4(request.services.nth(1))), SanType::IpAddress(request.api_address)];
        for name in
            ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
        {
            sans.push(dns(name)?);
        }
        sans.push(dns(request.api_name)?);
        for controller in request.controllers {
            sans.push(dns(&controller.name)?);
            sans.extend(controller.address.map(SanType::IpAddress));
        }
        sans.dedup();
        put("apiserver", &leaf(&cluster_ca, "kube-apiserver", None, SERVER, sans)?);
        put(
            "apiserver-kubelet-client",
            &leaf(&cluster_ca, "kube-apiserver-kubelet-client", Some("system:masters"), CLIENT, vec![])?,
        );
        put("apiserver-etcd-client", &leaf(&etcd_ca, "kube-apiserver-etcd-client", None, CLIENT, vec![])?);
        put("front-proxy-client", &leaf(&proxy_ca, "front-proxy-client", None, CLIENT, vec![])?);
        put("etcd/healthcheck-client", &leaf(&etcd_ca, "kube-etcd-healthcheck-client", None, CLIENT, vec![])?);
        for controller in request.controllers {
            // kubeadm's etcd server and peer certificates: the node's name and addresses, and
            // loopback for the API server beside it.
            let mut sans = vec![
                dns("localhost")?,
                dns(&controller.name)?,
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ];
            sans.extend(controller.address.map(SanType::IpAddress));
            let name = &controller.name;
            put(&format!("etcd/{name}/server"), &leaf(&etcd_ca, name, None, BOTH, sans.clone())?);
            put(&format!("etcd/{name}/peer"), &leaf(&etcd_ca, name, None, BOTH, sans)?);
        }
        put("ca", &cluster_ca);
        put("etcd/ca", &etcd_ca);
        put("front-proxy-ca", &proxy_ca);
        let service_accounts = KeyPair::generate().map_err(failed("service-account key"))?;
        files.insert("pki/sa.key".into(), service_accounts.serialize_pem());
        files.insert("pki/sa.pub".into(), service_accounts.public_key_pem());

        let server = format!("https://{}:{}", request.api_name, request.api_port);
        for (file, user, group) in [
            ("admin.conf", "kubernetes-admin", Some("system:masters")),
            ("controller-manager.conf", "system:kube-controller-manager", None),
            ("scheduler.conf", "system:kube-scheduler", None),
        ] {
            let client = leaf(&cluster_ca, user, group, CLIENT, vec![])?;
            files.insert(file.into(), client_kubeconfig(&server, &cluster_ca.cert.pem(), user, &client));
        }
        let bootstrap_tokens = request.nodes.iter().map(|n| (n.clone(), BootstrapToken::generate())).collect();
        let monitoring = leaf(&cluster_ca, MONITORING_USER, None, CLIENT, vec![])?;
        let console_clients = BTreeMap::from([
            ("monitoring.crt".to_string(), monitoring.cert.pem()),
            ("monitoring.key".to_string(), monitoring.key.serialize_pem()),
        ]);
        Ok(ClusterPki { files, bootstrap_tokens, console_clients })
    }

    /// The cluster CA's certificate, which every kubeconfig trusts.
    pub fn ca_pem(&self) -> &str {
        self.files.get("pki/ca.crt").map_or("", String::as_str)
    }
}

/// A kubeconfig for `user` at `server`, trusting `ca_pem`, with `credentials` (`token`, or a
/// client certificate and key).
pub(crate) fn kubeconfig(server: &str, ca_pem: &str, user: &str, credentials: &[(&str, String)]) -> String {
    use base64::Engine as _;
    let credentials: String = credentials.iter().map(|(key, value)| format!("    {key}: {value}\n")).collect();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
{credentials}contexts:
- name: {user}@cluster
  context:
    cluster: cluster
    user: {user}
current-context: {user}@cluster
",
        ca = base64::engine::general_purpose::STANDARD.encode(ca_pem),
    )
}

/// A kubeconfig that signs in with a client certificate.
fn client_kubeconfig(server: &str, ca_pem: &str, user: &str, client: &Issued) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let credentials =
        [("client-certificate-data", b64(&client.cert.pem())), ("client-key-data", b64(&client.key.serialize_pem()))];
    kubeconfig(server, ca_pem, user, &credentials)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use x509_parser::prelude::*;

    /// A cluster's PKI with one controller, node-1 at 10.0.0.11.
    pub(crate) fn generated() -> ClusterPki {
        let controllers = [ControllerName { name: "node-1".into(), address: Some("10.0.0.11".parse().unwrap()) }];
        ClusterPki::generate(&PkiRequest {
            api_name: "edge-1.example.com",
            api_address: "10.0.0.10".parse().unwrap(),
            api_port: 6443,
            services: "10.3.0.0/16".parse().unwrap(),
            controllers: &controllers,
            nodes: &["node-1".into(), "node-2".into()],
        })
        .unwrap()
    }

    fn with_cert<T>(pki: &ClusterPki, path: &str, f: impl FnOnce(&X509Certificate) -> T) -> T {
        let (_, pem) = parse_x509_pem(pki.files[path].as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        f(&cert)
    }

    fn sans(cert: &X509Certificate) -> Vec<String> {
        let ext = cert.subject_alternative_name().unwrap().unwrap();
        let ip = |b: &[u8]| match b.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(b).unwrap()).to_string(),
            _ => IpAddr::from(<[u8; 16]>::try_from(b).unwrap()).to_string(),
        };
        ext.value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::IPAddress(b) => format!("IPAddress({})", ip(b)),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_files_are_where_kubeadm_puts_them() {
        let pki = generated();
        for path in [
            "pki/ca.crt",
            "pki/ca.key",
            "pki/apiserver.crt",
            "pki/apiserver-kubelet-client.crt",
            "pki/apiserver-etcd-client.crt",
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-client.crt",
            "pki/etcd/ca.crt",
            "pki/etcd/healthcheck-client.crt",
            "pki/etcd/node-1/server.crt",
            "pki/etcd/node-1/peer.key",
            "pki/sa.key",
            "pki/sa.pub",
            "admin.conf",
            "controller-manager.conf",
            "scheduler.conf",
        ] {
            assert!(pki.files.contains_key(path), "{path} missing");
        }
        assert!(pki.files["pki/sa.pub"].starts_with("-----BEGIN PUBLIC KEY-----"));
        let tokens: Vec<&BootstrapToken> = pki.bootstrap_tokens.values().collect();
        assert_eq!(pki.bootstrap_tokens.keys().collect::<Vec<_>>(), ["node-1", "node-2"]);
        let token = tokens[0].token();
        assert!(token.len() == 23 && token.chars().all(|c| c == '.' || c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(tokens[0], tokens[1], "each node its own");
        assert_ne!(generated().bootstrap_tokens["node-1"], *tokens[0]);
        let shown = format!("{pki:?}");
        assert!(!shown.contains("PRIVATE") && tokens.iter().all(|t| !shown.contains(&t.secret)), "{shown}");
    }

    #[test]
    fn the_api_servers_certificate_names_every_way_it_is_reached() {
        let pki = generated();
        let names = with_cert(&pki, "pki/apiserver.crt", |c| {
            assert!(c.extended_key_usage().unwrap().unwrap().value.server_auth);
            sans(c)
        });
        for expected in [
            "IPAddress(10.3.0.1)",
            "IPAddress(10.0.0.10)",
            "IPAddress(10.0.0.11)",
            "DNSName(kubernetes.default.svc.cluster.local)",
            "DNSName(edge-1.example.com)",
            "DNSName(node-1)",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
        }
        let etcd = with_cert(&pki, "pki/etcd/node-1/peer.crt", sans);
        assert!(etcd.iter().any(|n| n == "IPAddress(127.0.0.1)") && etcd.iter().any(|n| n == "DNSName(node-1)"));
    }

    #[test]
    fn cas_are_cas_and_clients_carry_the_groups_rbac_reads() {
        let pki = generated();
        for ca in ["pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt"] {
            assert!(with_cert(&pki, ca, |c| c.is_ca()), "{ca}");
        }
        let subject = with_cert(&pki, "pki/apiserver-kubelet-client.crt", |c| c.subject().to_string());
        assert!(subject.contains("O=system:masters"), "{subject}");
        assert!(!with_cert(&pki, "pki/apiserver.crt", |c| c.is_ca()));
        // Pangea's own client for the cluster's Prometheus: from the cluster CA, in no group, and
        // not among the files a controller gets.
        let (_, pem) = parse_x509_pem(pki.console_clients["monitoring.crt"].as_bytes()).unwrap();
        let monitoring = pem.parse_x509().unwrap();
        assert_eq!(monitoring.subject().to_string(), format!("CN={MONITORING_USER}"));
        assert_eq!(monitoring.issuer().to_string(), "CN=kubernetes");
        assert!(pki.files.keys().all(|path| !path.contains("monitoring")));
        assert!(!format!("{pki:?}").contains("PRIVATE KEY"));
    }

    /// Each leaf verifies against its own CA, and not against another, by OpenSSL.
    #[test]
    fn openssl_verifies_each_chain() {
        let pki = generated();
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in &pki.files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        let verify = |ca: &str, cert: &str| {
            let out = std::process::Command::new("openssl")
                .args(["verify", "-CAfile", ca, cert])
                .current_dir(dir.path())
                .output()
                .expect("openssl (Debian package openssl) runs");
            out.status.success()
        };
        assert!(verify("pki/ca.crt", "pki/apiserver.crt"));
        assert!(verify("pki/etcd/ca.crt", "pki/etcd/node-1/server.crt"));
        assert!(verify("pki/etcd/ca.crt", "pki/apiserver-etcd-client.crt"));
        assert!(verify("pki/front-proxy-ca.crt", "pki/front-proxy-client.crt"));
        assert!(!verify("pki/ca.crt", "pki/etcd/node-1/server.crt"));
        // The admin kubeconfig's client certificate is the cluster CA's.
        let admin = &pki.files["admin.conf"];
        assert!(admin.contains("server: https://edge-1.example.com:6443"));
        let data = admin.lines().find_map(|l| l.trim().strip_prefix("client-certificate-data: ")).unwrap();
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        std::fs::write(dir.path().join("admin.crt"), pem).unwrap();
        assert!(verify("pki/ca.crt", "admin.crt"));
    }
}
