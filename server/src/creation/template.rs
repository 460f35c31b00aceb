//! The cluster template: what a person asks Pangea to create, as YAML they can export, edit and
//! apply again. Parsing checks every field and names each bad one with its line; exporting writes
//! every field, defaults included, so the same file always means the same cluster.

use crate::provisioner::butane::{Node, Pos, parse_yaml_document};
use app::clusters::ClusterName;
use app::machines::fields::ClassName;
use app::machines::mac::MacAddr;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The first line of every template, and the only version read.
pub const VERSION: &str = "pangea.dev/v1";

/// A cluster template, each field parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTemplate {
    pub name: ClusterName,
    pub kubernetes: KubeVersion,
    pub os: NodeOs,
    pub controllers: Selection,
    pub workers: Selection,
    pub pods: Ipv4Network,
    pub services: Ipv4Network,
    pub api_server: ApiServer,
    pub install_disk: InstallDisk,
    pub ssh_keys: Vec<SshKey>,
    pub monitoring: Monitoring,
}

/// Whether Pangea installs monitoring in the cluster it creates (node_exporter on every node and a
/// Prometheus scraping them, linked to the cluster's charts), and from which images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitoring {
    pub enabled: bool,
    pub node_exporter_image: ImageRef,
    pub prometheus_image: ImageRef,
}

impl Default for Monitoring {
    fn default() -> Monitoring {
        Monitoring {
            enabled: false,
            node_exporter_image: ImageRef("quay.io/prometheus/node-exporter:v1.9.1".into()),
            prometheus_image: ImageRef("quay.io/prometheus/prometheus:v3.5.0".into()),
        }
    }
}

/// A container image reference, `registry/name:tag` or `…@sha256:…`, as the kubelet pulls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef(String);

impl ImageRef {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<ImageRef, String> {
        let plain = !text.is_empty()
            && text.len() <= 255
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':' | '@'));
        if plain {
            Ok(ImageRef(text.into()))
        } else {
            Err(format!("\"{text}\" is not a container image: write it as registry/name:tag"))
        }
    }
}

/// A Kubernetes release, `v1.36.2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for KubeVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<Option<u32>> = s
            .strip_prefix('v')
            .unwrap_or(s)
            .split('.')
            .map(|p| p.parse().ok().filter(|_| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
            .collect();
        match parts[..] {
            [Some(major @ 1), Some(minor), Some(patch)] => Ok(KubeVersion { major, minor, patch }),
            _ => Err(format!("\"{s}\" is not a Kubernetes release: write it as v1.36.2")),
        }
    }
}

/// The operating system the machines install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOs {
    Flatcar,
    FedoraCoreOs,
}

impl NodeOs {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOs::Flatcar => "flatcar",
            NodeOs::FedoraCoreOs => "fedora-coreos",
        }
    }
}

impl std::str::FromStr for NodeOs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flatcar" => Ok(NodeOs::Flatcar),
            "fedora-coreos" => Ok(NodeOs::FedoraCoreOs),
            _ => Err(format!("\"{s}\" is not an operating system Pangea installs: write flatcar or fedora-coreos")),
        }
    }
}

/// Which machines take a role: named by MAC, or those a machine search or a class matches
/// (`count` of them, the first by MAC, when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Machines(Vec<MacAddr>),
    Search { search: String, count: Option<u32> },
    Class { class: ClassName, count: Option<u32> },
}

impl Selection {
    /// How many machines it names, when the template alone says.
    pub fn count(&self) -> Option<usize> {
        match self {
            Selection::Machines(macs) => Some(macs.len()),
            Selection::Search { count, .. } | Selection::Class { count, .. } => count.map(|c| c as usize),
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |c: &Option<u32>| c.map(|c| format!(" (the first {c})")).unwrap_or_default();
        match self {
            Selection::Machines(macs) if macs.is_empty() => f.write_str("none"),
            Selection::Machines(macs) => {
                let shown: Vec<String> = macs.iter().map(ToString::to_string).collect();
                f.write_str(&shown.join(", "))
            }
            Selection::Search { search, count: c } => write!(f, "machines matching \"{search}\"{}", count(c)),
            Selection::Class { class, count: c } => write!(f, "machines of class {class}{}", count(c)),
        }
    }
}

/// An IPv4 network, `10.2.0.0/16`, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Network {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Network {
    fn mask(self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.address)
    }

    pub fn overlaps(self, other: Ipv4Network) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }

    /// The `n`th address of the network (the service network's first is the API server's
    /// service IP, as kubeadm and Typhoon take it).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) + n)
    }
}

impl fmt::Display for Ipv4Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl std::str::FromStr for Ipv4Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("\"{s}\" is not an IPv4 network: write it as 10.2.0.0/16");
        let (address, prefix) = s.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
        let network = Ipv4Network { address, prefix };
        if u32::from(address) & !network.mask() != 0 {
            let start = Ipv4Addr::from(u32::from(address) & network.mask());
            return Err(format!("\"{s}\" has host bits set: the network is {start}/{prefix}"));
        }
        Ok(network)
    }
}

/// Where nodes and people reach the Kubernetes API: a DNS name (in the serving certificate and
/// every kubeconfig) and the address it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServer {
    pub name: app::machines::fields::Hostname,
    pub address: IpAddr,
    /// The port it listens on: 6443 unless asked.
    pub port: u16,
}

impl ApiServer {
    /// `https://NAME:PORT`, as nodes and kubeconfigs reach it.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.name, self.port)
    }
}

/// The API server's port when the template names none (kubeadm's and Typhoon's).
pub const API_PORT: u16 = 6443;

/// The disk the OS is installed to: a device path, `/dev/sda` unless asked (as Typhoon's
/// `install_disk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallDisk(String);

impl InstallDisk {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for InstallDisk {
    fn default() -> InstallDisk {
        InstallDisk("/dev/sda".into())
    }
}

impl std::str::FromStr for InstallDisk {
    type Err = String;

    fn from_str(text: &str) -> Result<InstallDisk, String> {
        let plain = text.len() <= 200
            && text.strip_prefix("/dev/").is_some_and(|rest| {
                !rest.is_empty()
                    && !rest.split('/').any(|part| part.is_empty() || part == "..")
                    && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | ':'))
            });
        if plain {
            Ok(InstallDisk(text.into()))
        } else {
            Err(format!("\"{text}\" is not a disk: write a device path such as /dev/sda or /dev/disk/by-path/…"))
        }
    }
}

/// One line of `authorized_keys`: a key type, its base64 body and an optional comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey(String);

impl SshKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SshKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use base64::Engine as _;
        const TYPES: [&str; 6] = [
            "ssh-ed25519",
            "ssh-rsa",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "sk-ssh-ed25519@openssh.com",
        ];
        let shown: String = s.chars().take(40).collect();
        let mut words = s.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let body = words.next().unwrap_or_default();
        if !TYPES.contains(&kind) {
            return Err(format!(
                "\"{shown}…\" is not a public SSH key: it should start with ssh-ed25519, ssh-rsa or ecdsa-sha2-…"
            ));
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| format!("\"{shown}…\": the key's body is not base64"))?;
        // The blob names its own type first (a length, then the name).
        if blob.get(4..4 + kind.len()) != Some(kind.as_bytes()) {
            return Err(format!("\"{shown}…\": the key's body is not a {kind} key"));
        }
        if s.contains(['\n', '\r']) || s.len() > 16 * 1024 {
            return Err(format!("\"{shown}…\": one key per line, at most 16 KiB"));
        }
        // The configs it goes into are templates the provisioner renders.
        if s.contains("{{") || s.contains("}}") {
            return Err(format!("\"{shown}…\": a key's comment cannot hold {{{{ or }}}}"));
        }
        Ok(SshKey(s.trim().to_string()))
    }
}

/// Why a template was refused: each bad field with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateErrors(pub Vec<String>);

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

/// The most text a template may have.
pub const MAX_TEMPLATE: usize = 64 * 1024;

const DEFAULT_PODS: &str = "10.2.0.0/16";
const DEFAULT_SERVICES: &str = "10.3.0.0/16";

/// The keys each mapping may have, so a typo is named rather than ignored.
const TOP_KEYS: [&str; 11] = [
    "version",
    "name",
    "kubernetes",
    "os",
    "controllers",
    "workers",
    "networks",
    "api_server",
    "install_disk",
    "ssh_keys",
    "monitoring",
];

/// Reads fields out of YAML nodes, gathering every error rather than stopping at the first.
#[derive(Default)]
struct Reader {
    errors: Vec<String>,
}

impl Reader {
    fn error(&mut self, at: Pos, field: &str, message: impl fmt::Display) {
        self.errors.push(format!("line {}: {field}: {message}", at.0));
    }

    /// The mapping's entries, with any key outside `allowed` named.
    fn mapping<'a>(&mut self, node: &'a Node, field: &str, allowed: &[&str]) -> Option<&'a [(String, Pos, Node)]> {
        let Node::Map { entries, .. } = node else {
            self.error(node.at(), field, "expected a mapping");
            return None;
        };
        for (key, at, _) in entries {
            if !allowed.contains(&key.as_str()) {
                let name = if field.is_empty() { key.clone() } else { format!("{field}.{key}") };
                self.error(*at, &name, format!("not a template field; the fields here are {}", allowed.join(", ")));
            }
        }
        Some(entries)
    }

    fn scalar<'a>(&mut self, node: &'a Node, field: &str) -> Option<(&'a str, Pos)> {
        match node {
            Node::Scalar { text, at, .. } => Some((text.as_str(), *at)),
            other => {
                self.error(other.at(), field, "expected a single value");
                None
            }
        }
    }

    fn parsed<T: std::str::FromStr<Err: fmt::Display>>(&mut self, node: &Node, field: &str) -> Option<T> {
        let (text, at) = self.scalar(node, field)?;
        text.trim().parse().map_err(|e: T::Err| self.error(at, field, e)).ok()
    }

    /// A value of a type whose own error says too little: named as `what` instead.
    fn parsed_as<T: std::str::FromStr>(&mut self, node: &Node, field: &str, what: &str) -> Option<T> {
        let (text, at) = self.scalar(node, field)?;
        text.trim().parse().map_err(|_| self.error(at, field, format!("\"{text}\" is not {what}"))).ok()
    }

    fn selection(&mut self, node: &Node, field: &str) -> Option<Selection> {
        let entries = self.mapping(node, field, &["machines", "search", "class", "count"])?;
        let get = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
        let count = match get("count") {
            Some(node) => Some(self.parsed_as::<u32>(node, &format!("{field}.count"), "a number of machines")?),
            None => None,
        };
        let chosen = ["machines", "search", "class"].into_iter().filter(|k| get(k).is_some()).count();
        if chosen != 1 {
            self.error(node.at(), field, "name the machines in one way: machines (a list of MACs), search, or class");
            return None;
        }
        if let Some(list) = get("machines") {
            if count.is_some() {
                self.error(list.at(), &format!("{field}.count"), "count goes with search or class, not a list");
            }
            let items: &[Node] = match list {
                Node::Seq { items, .. } => items,
                node if node.is_null() => &[],
                other => {
                    self.error(other.at(), &format!("{field}.machines"), "expected a list of MAC addresses");
                    return None;
                }
            };
            let mut macs: Vec<MacAddr> = Vec::new();
            for item in items {
                let mac: MacAddr = self.parsed(item, &format!("{field}.machines"))?;
                if macs.contains(&mac) {
                    self.error(item.at(), &format!("{field}.machines"), format!("{mac} is listed twice"));
                }
                macs.push(mac);
            }
            return Some(Selection::Machines(macs));
        }
        if let Some(search) = get("search") {
            let (text, _) = self.scalar(search, &format!("{field}.search"))?;
            return Some(Selection::Search { search: text.trim().to_string(), count });
        }
        let class = self.parsed(get("class")?, &format!("{field}.class"))?;
        Some(Selection::Class { class, count })
    }
}

impl ClusterTemplate {
    /// Reads a template, naming every bad field with its line.
    pub fn parse(text: &str) -> Result<ClusterTemplate, TemplateErrors> {
        let one = |m: String| TemplateErrors(vec![m]);
        if text.len() > MAX_TEMPLATE {
            return Err(one(format!("the template is {} bytes; at most {MAX_TEMPLATE} are read", text.len())));
        }
        let root = parse_yaml_document(text, "a cluster template").map_err(|e| one(e.to_string()))?;
        let mut r = Reader::default();
        let Some(entries) = r.mapping(&root, "", &TOP_KEYS) else { return Err(TemplateErrors(r.errors)) };
        let get = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
        let required = |r: &mut Reader, key: &str| {
            let found = get(key);
            if found.is_none() {
                r.errors.push(format!("{key}: missing"));
            }
            found
        };
        match required(&mut r, "version").and_then(|v| r.scalar(v, "version")) {
            Some((VERSION, _)) | None => {}
            Some((other, at)) => r.error(at, "version", format!("\"{other}\" is not read here; write {VERSION}")),
        }
        let name = required(&mut r, "name").and_then(|n| r.parsed::<ClusterName>(n, "name"));
        let kubernetes = required(&mut r, "kubernetes").and_then(|n| r.parsed(n, "kubernetes"));
        let os = required(&mut r, "os").and_then(|n| r.parsed(n, "os"));
        let controllers = required(&mut r, "controllers").and_then(|n| r.selection(n, "controllers"));
        let workers = match get("workers") {
            Some(n) => r.selection(n, "workers"),
            None => Some(Selection::Machines(Vec::new())),
        };
        let (mut pods, mut services) = (DEFAULT_PODS.parse().ok(), DEFAULT_SERVICES.parse().ok());
        if let Some(networks) = get("networks")
            && let Some(entries) = r.mapping(networks, "networks", &["pods", "services"])
        {
            for (key, _, node) in entries {
                match key.as_str() {
                    "pods" => pods = r.parsed(node, "networks.pods"),
                    "services" => services = r.parsed(node, "networks.services"),
                    _ => {}
                }
            }
        }
        let api_server = required(&mut r, "api_server").and_then(|n| {
            let entries = r.mapping(n, "api_server", &["name", "address", "port"])?;
            let field = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
            let name = match field("name") {
                Some(v) => r.parsed(v, "api_server.name"),
                None => {
                    r.error(n.at(), "api_server.name", "missing: the DNS name nodes and people reach the API at");
                    None
                }
            };
            let address = match field("address") {
                Some(v) => r.parsed_as(v, "api_server.address", "an IP address"),
                None => {
                    r.error(n.at(), "api_server.address", "missing: the IP address that name resolves to");
                    None
                }
            };
            let port = match field("port") {
                Some(v) => r.parsed_as::<std::num::NonZeroU16>(v, "api_server.port", "a TCP port").map(|p| p.get()),
                None => Some(API_PORT),
            };
            Some(ApiServer { name: name?, address: address?, port: port? })
        });
        let install_disk = match get("install_disk") {
            Some(node) => r.parsed(node, "install_disk"),
            None => Some(InstallDisk::default()),
        };
        let mut ssh_keys = Vec::new();
        match get("ssh_keys") {
            Some(Node::Seq { items, .. }) => {
                for item in items {
                    if let Some(key) = r.parsed(item, "ssh_keys") {
                        ssh_keys.push(key);
                    }
                }
            }
            Some(node) if !node.is_null() => r.error(node.at(), "ssh_keys", "expected a list of public keys"),
            _ => {}
        }
        let mut monitoring = Monitoring::default();
        let mut monitoring_read = true;
        if let Some(node) = get("monitoring")
            && let Some(entries) =
                r.mapping(node, "monitoring", &["enabled", "node_exporter_image", "prometheus_image"])
        {
            for (key, _, node) in entries {
                let field = format!("monitoring.{key}");
                let read = match key.as_str() {
                    "enabled" => r.parsed_as(node, &field, "true or false").map(|v| monitoring.enabled = v),
                    "node_exporter_image" => r.parsed(node, &field).map(|v| monitoring.node_exporter_image = v),
                    "prometheus_image" => r.parsed(node, &field).map(|v| monitoring.prometheus_image = v),
                    _ => Some(()),
                };
                monitoring_read &= read.is_some();
            }
        }
        let monitoring = monitoring_read.then_some(monitoring);
        let (
            Some(name),
            Some(kubernetes),
            Some(os),
            Some(controllers),
            Some(workers),
            Some(pods),
            Some(services),
            Some(api_server),
            Some(install_disk),
            Some(monitoring),
        ) = (name, kubernetes, os, controllers, workers, pods, services, api_server, install_disk, monitoring)
        else {
            return Err(TemplateErrors(r.errors));
        };
        let template = ClusterTemplate {
            name,
            kubernetes,
            os,
            controllers,
            workers,
            pods,
            services,
            api_server,
            install_disk,
            ssh_keys,
            monitoring,
        };
        r.errors.extend(template.inconsistencies());
        if r.errors.is_empty() { Ok(template) } else { Err(TemplateErrors(r.errors)) }
    }

    /// What the fields say together that none says alone.
    fn inconsistencies(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(n) = self.controllers.count()
            && ![1, 3, 5].contains(&n)
        {
            found.push(format!("controllers: {n} machines; etcd keeps quorum with 1, 3 or 5 control-plane machines"));
        }
        if let (Selection::Machines(controllers), Selection::Machines(workers)) = (&self.controllers, &self.workers) {
            for mac in controllers.iter().filter(|m| workers.contains(m)) {
                found.push(format!("workers: {mac} is a controller too; a machine takes one role"));
            }
        }
        if self.pods.prefix > 24 {
            found.push(format!("networks.pods: {} is too small: each node takes a /24 of it", self.pods));
        }
        if self.services.prefix < 12 || self.services.prefix > 28 {
            found.push(format!(
                "networks.services: {} should be between a /12 and a /28 (the API server allots at most 2^20 addresses)",
                self.services
            ));
        }
        if self.pods.overlaps(self.services) {
            found.push(format!(
                "networks: the pod network {} overlaps the service network {}",
                self.pods, self.services
            ));
        }
        if let IpAddr::V4(address) = self.api_server.address {
            for (name, network) in [("pods", self.pods), ("services", self.services)] {
                if network.contains(address) {
                    found.push(format!(
                        "api_server.address: {address} is inside the {name} network {network}; it is a machine's address"
                    ));
                }
            }
        }
        found
    }

    /// The template as YAML, every field written (defaults too), in a fixed order.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("version: {VERSION}"));
        line(format!("name: {}", self.name.as_str()));
        line(format!("kubernetes: {}", self.kubernetes));
        line(format!("os: {}", self.os.as_str()));
        for (key, selection) in [("controllers", &self.controllers), ("workers", &self.workers)] {
            line(format!("{key}:"));
            match selection {
                Selection::Machines(macs) if macs.is_empty() => line("  machines: []".into()),
                Selection::Machines(macs) => {
                    line("  machines:".into());
                    for mac in macs {
                        line(format!("    - \"{mac}\""));
                    }
                }
                Selection::Search { search, count } => {
                    line(format!("  search: {}", quoted(search)));
                    if let Some(count) = count {
                        line(format!("  count: {count}"));
                    }
                }
                Selection::Class { class, count } => {
                    line(format!("  class: {class}"));
                    if let Some(count) = count {
                        line(format!("  count: {count}"));
                    }
                }
            }
        }
        line("networks:".into());
        line(format!("  pods: {}", self.pods));
        line(format!("  services: {}", self.services));
        line("api_server:".into());
        line(format!("  name: {}", self.api_server.name));
        line(format!("  address: {}", quoted(&self.api_server.address.to_string())));
        line(format!("  port: {}", self.api_server.port));
        line(format!("install_disk: {}", quoted(self.install_disk.as_str())));
        if self.ssh_keys.is_empty() {
            line("ssh_keys: []".into());
        } else {
            line("ssh_keys:".into());
            for key in &self.ssh_keys {
                line(format!("  - {}", quoted(key.as_str())));
            }
        }
        line("monitoring:".into());
        line(format!("  enabled: {}", self.monitoring.enabled));
        line(format!("  node_exporter_image: {}", quoted(self.monitoring.node_exporter_image.as_str())));
        line(format!("  prometheus_image: {}", quoted(self.monitoring.prometheus_image.as_str())));
        out
    }

    /// What applying `next` over this template would change, a line per field.
    pub fn changes(&self, next: &ClusterTemplate) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut compare = |field: &'static str, before: String, after: String| {
            if before != after {
                changes.push(Change { field, before, after });
            }
        };
        compare("name", self.name.as_str().into(), next.name.as_str().into());
        compare("kubernetes", self.kubernetes.to_string(), next.kubernetes.to_string());
        compare("os", self.os.as_str().into(), next.os.as_str().into());
        compare("controllers", self.controllers.to_string(), next.controllers.to_string());
        compare("workers", self.workers.to_string(), next.workers.to_string());
        compare("networks.pods", self.pods.to_string(), next.pods.to_string());
        compare("networks.services", self.services.to_string(), next.services.to_string());
        compare("api_server.name", self.api_server.name.to_string(), next.api_server.name.to_string());
        compare("api_server.address", self.api_server.address.to_string(), next.api_server.address.to_string());
        compare("api_server.port", self.api_server.port.to_string(), next.api_server.port.to_string());
        compare("install_disk", self.install_disk.as_str().into(), next.install_disk.as_str().into());
        // The images matter only where monitoring is installed (a later default changes nothing).
        let (m, n) = (&self.monitoring, &next.monitoring);
        compare("monitoring.enabled", m.enabled.to_string(), n.enabled.to_string());
        if m.enabled || n.enabled {
            compare(
                "monitoring.node_exporter_image",
                m.node_exporter_image.as_str().into(),
                n.node_exporter_image.as_str().into(),
            );
            compare(
                "monitoring.prometheus_image",
                m.prometheus_image.as_str().into(),
                n.prometheus_image.as_str().into(),
            );
        }
        let keys = |t: &ClusterTemplate| format!("{} keys", t.ssh_keys.len());
        if self.ssh_keys != next.ssh_keys {
            changes.push(Change { field: "ssh_keys", before: keys(self), after: keys(next) });
        }
        changes
    }
}

/// One field that differs between two templates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// A YAML double-quoted scalar.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJd8x1pJ7uFBGaIfDbp7rv3Dnc7Qdc+GVTwNc8mMM2i8 alice@example.com";

    /// A template of every kind of field, with an SSH key.
    pub(crate) fn example() -> String {
        format!(
            "version: pangea.dev/v1
name: edge-1
kubernetes: v1.36.2
os: flatcar
controllers:
  machines: [\"52:54:00:00:00:01\"]
workers:
  class: small
  count: 2
api_server:
  name: edge-1.example.com
  address: 10.0.0.10
ssh_keys:
  - {KEY}
"
        )
    }

    #[test]
    fn a_template_is_read_with_defaults_and_written_back_the_same() {
        let template = ClusterTemplate::parse(&example()).unwrap();
        assert_eq!(template.kubernetes, KubeVersion { major: 1, minor: 36, patch: 2 });
        assert_eq!(template.controllers.count(), Some(1));
        assert_eq!(template.workers, Selection::Class { class: "small".parse().unwrap(), count: Some(2) });
        assert_eq!(template.pods.to_string(), "10.2.0.0/16");
        assert_eq!(template.services.nth(1).to_string(), "10.3.0.1");
        let written = template.to_yaml();
        assert!(written.contains("pods: 10.2.0.0/16"), "{written}");
        assert_eq!(ClusterTemplate::parse(&written).unwrap(), template);
        assert_eq!(ClusterTemplate::parse(&written).unwrap().to_yaml(), written);
        assert!(template.changes(&template).is_empty());
        assert_eq!(template.monitoring, Monitoring::default());
        assert!(written.contains("monitoring:\n  enabled: false\n"), "{written}");
    }

    #[test]
    fn monitoring_is_asked_for_with_its_images_checked() {
        let text =
            format!("{}monitoring:\n  enabled: true\n  prometheus_image: localhost/prometheus:2.42\n", example());
        let template = ClusterTemplate::parse(&text).unwrap();
        assert!(template.monitoring.enabled);
        assert_eq!(template.monitoring.prometheus_image.as_str(), "localhost/prometheus:2.42");
        assert_eq!(template.monitoring.node_exporter_image, Monitoring::default().node_exporter_image);
        assert_eq!(ClusterTemplate::parse(&template.to_yaml()).unwrap(), template);
        let before = ClusterTemplate::parse(&example()).unwrap();
        let fields: Vec<&str> = before.changes(&template).iter().map(|c| c.field).collect();
        assert_eq!(fields, ["monitoring.enabled", "monitoring.prometheus_image"]);
        let off = |image: &str| {
            let text = format!("{}monitoring:\n  enabled: false\n  prometheus_image: {image}\n", example());
            ClusterTemplate::parse(&text).unwrap()
        };
        assert!(off("a/b:1").changes(&off("a/b:2")).is_empty(), "images of monitoring that is off change nothing");
        let bad =
            format!("{}monitoring:\n  enabled: yes please\n  prometheus_image: \"a b\"\n  grafana: true\n", example());
        let said = ClusterTemplate::parse(&bad).unwrap_err().to_string();
        assert!(said.contains("monitoring.enabled: \"yes please\" is not true or false"), "{said}");
        assert!(said.contains("monitoring.prometheus_image: \"a b\" is not a container image"), "{said}");
        assert!(said.contains("monitoring.grafana: not a template field"), "{said}");
    }

    #[test]
    fn every_bad_field_is_named_with_its_line() {
        let text = example()
            .replace("edge-1\n", "Edge_1\n")
            .replace("v1.36.2", "latest")
            .replace("flatcar", "windows")
            .replace("count: 2", "count: 2\n  colour: blue");
        let errors = ClusterTemplate::parse(&text).unwrap_err().0;
        let said = errors.join("\n");
        assert!(said.contains("name: \"Edge_1\" is not a cluster name"), "{said}");
        assert!(said.contains("line 3: kubernetes: \"latest\" is not a Kubernetes release"), "{said}");
        assert!(said.contains("line 4: os: \"windows\""), "{said}");
        assert!(said.contains("workers.colour: not a template field"), "{said}");
        assert_eq!(errors.len(), 4, "{said}");
    }

    #[test]
    fn the_fields_must_agree_with_each_other() {
        let text = example()
            .replace("machines: [\"52:54:00:00:00:01\"]", "machines: [\"52:54:00:00:00:01\", \"52:54:00:00:00:02\"]")
            .replace("api_server:", "networks:\n  pods: 10.0.0.0/16\n  services: 10.0.0.0/20\napi_server:");
        let said = ClusterTemplate::parse(&text).unwrap_err().to_string();
        assert!(said.contains("controllers: 2 machines; etcd keeps quorum with 1, 3 or 5"), "{said}");
        assert!(said.contains("the pod network 10.0.0.0/16 overlaps the service network 10.0.0.0/20"), "{said}");
        assert!(said.contains("api_server.address: 10.0.0.10 is inside the pods network"), "{said}");
        let both = example().replace("class: small\n  count: 2", "machines: [\"52-54-00-00-00-01\"]");
        let said = ClusterTemplate::parse(&both).unwrap_err().to_string();
        assert!(said.contains("52:54:00:00:00:01 is a controller too"), "{said}");
    }

    #[test]
    fn networks_keys_and_versions_are_parsed_strictly() {
        assert!("10.2.0.1/16".parse::<Ipv4Network>().unwrap_err().contains("the network is 10.2.0.0/16"));
        assert!("10.2.0.0".parse::<Ipv4Network>().is_err());
        let n: Ipv4Network = "10.2.0.0/16".parse().unwrap();
        assert!(n.contains("10.2.255.1".parse().unwrap()) && !n.contains("10.3.0.0".parse().unwrap()));
        assert!("1.36".parse::<KubeVersion>().is_err() && "v2.0.0".parse::<KubeVersion>().is_err());
        assert_eq!("1.36.0".parse::<KubeVersion>().unwrap().to_string(), "v1.36.0");
        assert!("ssh-ed25519 bm90IGEga2V5".parse::<SshKey>().unwrap_err().contains("not a ssh-ed25519 key"));
        assert!("ssh-dss AAAA".parse::<SshKey>().is_err());
        assert!(KEY.parse::<SshKey>().is_ok());
    }

    #[test]
    fn a_changed_template_says_what_would_change() {
        let before = ClusterTemplate::parse(&example()).unwrap();
        let after =
            ClusterTemplate::parse(&example().replace("count: 2", "count: 3").replace("v1.36.2", "v1.37.0")).unwrap();
        let changes = before.changes(&after);
        assert_eq!(
            changes,
            [
                Change { field: "kubernetes", before: "v1.36.2".into(), after: "v1.37.0".into() },
                Change {
                    field: "workers",
                    before: "machines of class small (the first 2)".into(),
                    after: "machines of class small (the first 3)".into()
                },
            ]
        );
    }

    #[test]
    fn what_is_not_a_template_is_refused_in_words() {
        assert!(ClusterTemplate::parse("").unwrap_err().to_string().contains("is empty"));
        assert!(ClusterTemplate::parse("- a\n- b\n").unwrap_err().to_string().contains("expected a mapping"));
        let missing = ClusterTemplate::parse("version: pangea.dev/v1\n").unwrap_err().0;
        assert!(missing.contains(&"name: missing".to_string()), "{missing:?}");
        assert!(ClusterTemplate::parse(&"#".repeat(MAX_TEMPLATE + 1)).unwrap_err().to_string().contains("at most"));
        let quoted_search = example().replace("class: small", "search: \"rack=r1 \\\"x\\\"\"");
        let t = ClusterTemplate::parse(&quoted_search).unwrap();
        assert_eq!(ClusterTemplate::parse(&t.to_yaml()).unwrap(), t);
    }
}
