//! Which kubelet certificate requests Pangea approves for a cluster it created: those of machines
//! in that cluster's inventory, matched by name and address, and nothing else. Kubernetes leaves
//! kubelet serving certificates to "an approver of your choosing" and kubeadm approves any node
//! holding a bootstrap token; Pangea knows which machines it powered on, so it checks them.
//!
//! - **Client certificates** (`kubernetes.io/kube-apiserver-client-kubelet`): the subject is
//!   `system:node:NAME` in `system:nodes`, with no alternative names; asked with NAME's own
//!   bootstrap token (first join: each machine has its own, so a token taken from one machine
//!   cannot name another) or by that very node (renewal).
//! - **Serving certificates** (`kubernetes.io/kubelet-serving`): asked by the node itself; its DNS
//!   names are the node's name, and its IP addresses ones Pangea saw the machine at.
//!
//! Other signers are not Pangea's to judge and are left alone.

use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::net::IpAddr;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// A certificate signing request as the API server holds it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub signer: &'a str,
    /// Who asked, as the API server authenticated them.
    pub username: &'a str,
    pub groups: &'a [String],
    pub usages: &'a [String],
    /// The PKCS#10 request, PEM.
    pub pem: &'a [u8],
}

/// A machine of the cluster's inventory.
#[derive(Debug, Clone)]
pub struct KnownMachine {
    /// Its node name (its host name).
    pub name: String,
    /// Where Pangea saw it (its boot requests' source addresses).
    pub addresses: Vec<IpAddr>,
    /// The id of its own bootstrap token.
    pub bootstrap_token_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Approve, for this node.
    Approve { node: String },
    /// Leave it pending and say why (shown and audited).
    Refuse { reason: String },
    /// Another signer's request: not Pangea's to judge.
    NotOurs,
}

/// The subject and alternative names a request asks for.
struct Asked {
    common_name: String,
    organizations: Vec<String>,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    /// Alternative names of other kinds (e-mail, URI).
    other_names: usize,
}

/// The most of a requester's own text a reason quotes.
const QUOTED: usize = 80;

fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(QUOTED).collect();
    format!("{cut:?}")
}

/// Reads what a request asks for, strictly: its subject has exactly one common name and one
/// organization, in string types every reader decodes alike, and nothing else (Go keeps the
/// *last* of several CNs, and reads string types this reader cannot: a CN it skipped would be the
/// one signed); at most one extension request, and its alternative names all read.
fn read(pem: &[u8]) -> Result<Asked, String> {
    use x509_parser::oid_registry::{
        OID_PKCS9_EXTENSION_REQUEST, OID_X509_COMMON_NAME, OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_ORGANIZATION_NAME,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| "the request is not PEM".to_string())?;
    let (_, csr) = X509CertificationRequest::from_der(&pem.contents)
        .map_err(|_| "the request is not a PKCS#10 certificate request".to_string())?;
    let info = &csr.certification_request_info;
    let (mut common_names, mut organizations) = (Vec::new(), Vec::new());
    for attribute in info.subject.iter_attributes() {
        let value = attribute
            .as_str()
            .map_err(|_| "its subject holds a value in a string type Pangea does not read".to_string())?;
        if *attribute.attr_type() == OID_X509_COMMON_NAME {
            common_names.push(value.to_string());
        } else if *attribute.attr_type() == OID_X509_ORGANIZATION_NAME {
            organizations.push(value.to_string());
        } else {
            return Err("its subject names more than a common name and an organization".into());
        }
    }
    let [common_name] = &common_names[..] else {
        return Err(format!("its subject has {} common names, not one", common_names.len()));
    };
    let mut asked =
        Asked { common_name: common_name.clone(), organizations, dns: Vec::new(), ips: Vec::new(), other_names: 0 };
    let requests: Vec<_> = info.iter_attributes().filter(|a| a.oid == OID_PKCS9_EXTENSION_REQUEST).collect();
    if requests.len() > 1 {
        return Err("it holds more than one extension request".into());
    }
    for request in requests {
        let ParsedCriAttribute::ExtensionRequest(extensions) = request.parsed_attribute() else {
            return Err("its extension request cannot be read".into());
        };
        for extension in extensions.extensions.iter().filter(|e| e.oid == OID_X509_EXT_SUBJECT_ALT_NAME) {
            let ParsedExtension::SubjectAlternativeName(names) = extension.parsed_extension() else {
                return Err("its alternative names cannot be read".into());
            };
            for name in &names.general_names {
                match name {
                    GeneralName::DNSName(d) => asked.dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => match (<[u8; 4]>::try_from(*b), <[u8; 16]>::try_from(*b)) {
                        (Ok(v4), _) => asked.ips.push(IpAddr::from(v4)),
                        (_, Ok(v6)) => asked.ips.push(IpAddr::from(v6)),
                        _ => asked.other_names += 1,
                    },
                    _ => asked.other_names += 1,
                }
            }
        }
    }
    Ok(asked)
}

/// Judges one request against the cluster's inventory.
pub fn judge(request: &Request, inventory: &[KnownMachine]) -> Verdict {
    let serving = match request.signer {
        CLIENT_SIGNER => false,
        SERVING_SIGNER => true,
        _ => return Verdict::NotOurs,
    };
    match check(request, inventory, serving) {
        Ok(node) => Verdict::Approve { node },
        Err(reason) => Verdict::Refuse { reason },
    }
}

fn check(request: &Request, inventory: &[KnownMachine], serving: bool) -> Result<String, String> {
    let asked = read(request.pem)?;
    let Some(node) = asked.common_name.strip_prefix("system:node:").filter(|n| !n.is_empty()) else {
        return Err(format!("it asks for {}, not system:node:NAME", quoted(&asked.common_name)));
    };
    if asked.organizations != ["system:nodes"] {
        let shown: Vec<String> = asked.organizations.iter().map(|o| quoted(o)).collect();
        return Err(format!("its organizations are [{}], not system:nodes alone", shown.join(", ")));
    }
    let Some(machine) = inventory.iter().find(|m| m.name == node) else {
        return Err(format!("{} is not a machine of this cluster's inventory", quoted(node)));
    };
    let by_node = request.username == asked.common_name && request.groups.iter().any(|g| g == "system:nodes");
    // The usages, exactly: a signature, optionally key encipherment, and the one purpose.
    let only = |purpose: &str| {
        request.usages.iter().any(|u| u == purpose)
            && request.usages.iter().all(|u| [purpose, "digital signature", "key encipherment"].contains(&u.as_str()))
    };
    if !serving {
        let token_of = |id: &str| request.username == format!("system:bootstrap:{id}");
        let by_bootstrap =
            token_of(&machine.bootstrap_token_id) && request.groups.iter().any(|g| g == "system:bootstrappers");
        if !by_bootstrap && !by_node {
            if let Some(other) = inventory.iter().find(|m| token_of(&m.bootstrap_token_id)) {
                return Err(format!(
                    "asked with {}'s bootstrap token for {node}: a token joins its own machine only",
                    other.name
                ));
            }
            return Err(format!(
                "asked by {}, neither {node}'s bootstrap token nor the node itself",
                quoted(request.username)
            ));
        }
        if !asked.dns.is_empty() || !asked.ips.is_empty() || asked.other_names > 0 {
            return Err("a kubelet's client certificate names no host or address".into());
        }
        if !only("client auth") {
            return Err(format!("its usages {:?} are not a client's", request.usages));
        }
        return Ok(node.to_string());
    }
    if !by_node {
        return Err(format!("asked by {}, not by the node {node} itself", quoted(request.username)));
    }
    if !only("server auth") {
        return Err(format!("its usages {:?} are not a server's", request.usages));
    }
    if asked.other_names > 0 || (asked.dns.is_empty() && asked.ips.is_empty()) {
        return Err("it must name the node by DNS names and IP addresses only".into());
    }
    if let Some(name) = asked.dns.iter().find(|d| *d != node) {
        return Err(format!("it names the host {}, not {node}", quoted(name)));
    }
    if let Some(ip) = asked.ips.iter().find(|ip| !machine.addresses.contains(ip)) {
        let seen: Vec<String> = machine.addresses.iter().map(ToString::to_string).collect();
        let seen = if seen.is_empty() { "none yet".to_string() } else { seen.join(", ") };
        return Err(format!("it names the address {ip}, where Pangea never saw {node} (seen at: {seen})"));
    }
    Ok(node.to_string())
}

/// The rules Pangea's identity needs on a cluster it created, to approve kubelet certificates
/// (and nothing else: approving for another signer is refused by the API server itself).
pub const APPROVER_RULES: &str = r#"[
  {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["get", "list", "watch"]},
  {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"], "verbs": ["update", "patch"]},
  {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
   "resourceNames": ["kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving"]}
]"#;

/// A request approved in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub request: String,
    pub node: String,
}

/// A request left pending, with who asked and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub request: String,
    pub username: String,
    pub reason: String,
}

/// What one pass over a cluster's pending requests did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub approved: Vec<Approved>,
    pub refused: Vec<Refused>,
}

fn pending(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_none_or(|c| !c.iter().any(|c| matches!(c.type_.as_str(), "Approved" | "Denied" | "Failed")))
}

/// One pass over the cluster's pending kubelet certificate requests: approves each that
/// [`judge`] approves, and returns the rest with their reasons, for the caller to show and audit.
pub async fn approve_pending(client: &kube::Client, inventory: &[KnownMachine]) -> Result<Pass, kube::Error> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut pass = Pass::default();
    for csr in api.list(&ListParams::default()).await?.items.into_iter().filter(pending) {
        let name = csr.metadata.name.clone().unwrap_or_default();
        let spec = &csr.spec;
        let none = Vec::new();
        let request = Request {
            signer: &spec.signer_name,
            username: spec.username.as_deref().unwrap_or_default(),
            groups: spec.groups.as_ref().unwrap_or(&none),
            usages: spec.usages.as_ref().unwrap_or(&none),
            pem: &spec.request.0,
        };
        match judge(&request, inventory) {
            Verdict::Approve { node } => {
                let mut conditions = csr.status.and_then(|s| s.conditions).unwrap_or_default();
                conditions.push(CertificateSigningRequestCondition {
                    type_: "Approved".into(),
                    status: "True".into(),
                    reason: Some("PangeaInventory".into()),
                    message: Some(format!("{node} is a machine of this cluster's inventory")),
                    ..Default::default()
                });
                let patch = serde_json::json!({ "status": { "conditions": conditions } });
                api.patch_approval(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                pass.approved.push(Approved { request: name, node });
            }
            Verdict::Refuse { reason } => {
                pass.refused.push(Refused { request: name, username: request.username.to_string(), reason });
            }
            Verdict::NotOurs => {}
        }
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn csr(cn: &str, org: &str, sans: Vec<SanType>) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.distinguished_name.push(DnType::OrganizationName, org);
        params.subject_alt_names = sans;
        params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap()
    }

    fn machines() -> Vec<KnownMachine> {
        vec![
            KnownMachine {
                name: "node-1".into(),
                addresses: vec!["10.0.0.11".parse().unwrap()],
                bootstrap_token_id: "abcdef".into(),
            },
            KnownMachine { name: "node-2".into(), addresses: vec![], bootstrap_token_id: "bbbbbb".into() },
        ]
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn judged(signer: &str, username: &str, groups: &[&str], usages: &[&str], pem: &str) -> Verdict {
        let machines = machines();
        let (groups, usages) = (strings(groups), strings(usages));
        judge(&Request { signer, username, groups: &groups, usages: &usages, pem: pem.as_bytes() }, &machines)
    }

    const CLIENT: [&str; 2] = ["digital signature", "client auth"];
    const SERVER: [&str; 3] = ["digital signature", "key encipherment", "server auth"];

    #[test]
    fn a_known_machine_gets_its_client_certificate_by_its_own_token_or_by_itself() {
        let pem = csr("system:node:node-1", "system:nodes", vec![]);
        let approved = Verdict::Approve { node: "node-1".into() };
        assert_eq!(
            judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &CLIENT, &pem),
            approved
        );
        assert_eq!(judged(CLIENT_SIGNER, "system:node:node-1", &["system:nodes"], &CLIENT, &pem), approved);
    }

    #[test]
    fn nothing_else_gets_a_client_certificate_and_each_refusal_says_why() {
        let refused = |v: Verdict| match v {
            Verdict::Refuse { reason } => reason,
            other => panic!("{other:?}"),
        };
        let stranger = csr("system:node:node-9", "system:nodes", vec![]);
        let why =
            refused(judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &CLIENT, &stranger));
        assert_eq!(why, "\"node-9\" is not a machine of this cluster's inventory");
        let pem = csr("system:node:node-1", "system:nodes", vec![]);
        let why = refused(judged(CLIENT_SIGNER, "system:bootstrap:zzzzzz", &["system:bootstrappers"], &CLIENT, &pem));
        assert!(why.contains("neither node-1's bootstrap token"), "{why}");
        // Another machine's token cannot name node-1: a token taken from one machine joins it only.
        let why = refused(judged(CLIENT_SIGNER, "system:bootstrap:bbbbbb", &["system:bootstrappers"], &CLIENT, &pem));
        assert_eq!(why, "asked with node-2's bootstrap token for node-1: a token joins its own machine only");
        let why = refused(judged(CLIENT_SIGNER, "system:node:node-2", &["system:nodes"], &CLIENT, &pem));
        assert!(why.contains("asked by \"system:node:node-2\""), "{why}");
        let masters = csr("system:node:node-1", "system:masters", vec![]);
        let why =
            refused(judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &CLIENT, &masters));
        assert!(why.contains("system:masters"), "{why}");
        let named = csr("system:node:node-1", "system:nodes", vec![SanType::DnsName("node-1".try_into().unwrap())]);
        let why = refused(judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &CLIENT, &named));
        assert!(why.contains("names no host"), "{why}");
        let why = refused(judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &SERVER, &pem));
        assert!(why.contains("not a client's"), "{why}");
        let why = refused(judged(CLIENT_SIGNER, "x", &[], &CLIENT, "not pem"));
        assert_eq!(why, "the request is not PEM");
        let signing = ["digital signature", "client auth", "cert sign"];
        let why = refused(judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &signing, &pem));
        assert!(why.contains("not a client's"), "{why}");
    }

    /// What Go would read differently, or sign for another name, is refused.
    #[test]
    fn a_subject_is_read_strictly() {
        let refused =
            |pem: &str| match judged(CLIENT_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &CLIENT, pem)
            {
                Verdict::Refuse { reason } => reason,
                other => panic!("{other:?}"),
            };
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "system:node:node-1");
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(DnType::OrganizationalUnitName, "x");
        let extra = params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap();
        assert_eq!(refused(&extra), "its subject names more than a common name and an organization");
        let mut params = CertificateParams::default();
        let bmp = rcgen::BmpString::try_from("system:node:node-1").unwrap();
        params.distinguished_name.push(DnType::CommonName, rcgen::DnValue::BmpString(bmp));
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        let wide = params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap();
        assert_eq!(refused(&wide), "its subject holds a value in a string type Pangea does not read");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        let nameless = params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap();
        assert_eq!(refused(&nameless), "its subject has 0 common names, not one");
    }

    #[test]
    fn a_serving_certificate_names_only_the_node_and_addresses_pangea_saw() {
        let ip = |s: &str| SanType::IpAddress(s.parse().unwrap());
        let dns = |s: &str| SanType::DnsName(s.to_string().try_into().unwrap());
        let good = csr("system:node:node-1", "system:nodes", vec![dns("node-1"), ip("10.0.0.11")]);
        assert_eq!(
            judged(SERVING_SIGNER, "system:node:node-1", &["system:nodes", "system:authenticated"], &SERVER, &good),
            Verdict::Approve { node: "node-1".into() }
        );
        let elsewhere = csr("system:node:node-1", "system:nodes", vec![dns("node-1"), ip("10.0.0.99")]);
        assert_eq!(
            judged(SERVING_SIGNER, "system:node:node-1", &["system:nodes"], &SERVER, &elsewhere),
            Verdict::Refuse {
                reason: "it names the address 10.0.0.99, where Pangea never saw node-1 (seen at: 10.0.0.11)".into()
            }
        );
        let other_host = csr("system:node:node-1", "system:nodes", vec![dns("api.example.com")]);
        assert!(matches!(
            judged(SERVING_SIGNER, "system:node:node-1", &["system:nodes"], &SERVER, &other_host),
            Verdict::Refuse { reason } if reason.contains("names the host \"api.example.com\"")
        ));
        // By the bootstrap token, never.
        assert!(matches!(
            judged(SERVING_SIGNER, "system:bootstrap:abcdef", &["system:bootstrappers"], &SERVER, &good),
            Verdict::Refuse { reason } if reason.contains("not by the node node-1 itself")
        ));
        assert_eq!(judged("example.com/other", "someone", &[], &SERVER, &good), Verdict::NotOurs);
    }
}
