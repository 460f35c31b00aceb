//! Kubernetes clusters: how one is registered, what the live inventory shows of its nodes and
//! pods, and the node actions people take on it.

pub mod creation;
#[cfg(feature = "ssr")]
pub mod drawn;
pub mod rolling;
pub mod server_fns;
#[cfg(feature = "ssr")]
pub mod ssr;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A cluster's name in Pangea: a DNS label (RFC 1123), as Kubernetes names namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

/// Why a string is not a cluster name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a cluster name: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (e.g. edge-1)"
)]
pub struct InvalidClusterName(pub String);

impl FromStr for ClusterName {
    type Err = InvalidClusterName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let b = s.as_bytes();
        let valid = (1..=63).contains(&b.len())
            && b.iter().all(|&c| alnum(c) || c == b'-')
            && alnum(b[0])
            && alnum(b[b.len() - 1]);
        if valid { Ok(ClusterName(s.to_string())) } else { Err(InvalidClusterName(s.to_string())) }
    }
}

impl TryFrom<String> for ClusterName {
    type Error = InvalidClusterName;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ClusterName> for String {
    fn from(n: ClusterName) -> String {
        n.0
    }
}

impl ClusterName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How Pangea itself authenticates to a cluster's API server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// A bearer token (a service account's, or a static token).
    Token { token: String },
    /// A client certificate and its private key, both PEM.
    ClientCertificate { certificate_pem: String, key_pem: String },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Token { .. } => "Credential::Token(..)",
            Credential::ClientCertificate { .. } => "Credential::ClientCertificate(..)",
        })
    }
}

impl Credential {
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Token { .. } => "token",
            Credential::ClientCertificate { .. } => "client_certificate",
        }
    }
}

/// How Pangea signs in to a cluster's Prometheus, Alertmanager or Grafana.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceCredential {
    /// No credential: removes a stored one.
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer { token: String },
    /// HTTP basic authentication.
    Basic { username: String, password: String },
    /// A client certificate and its key (PEM), for a source that asks for one (mTLS), and the
    /// CA that signed the source's own certificate ('' for the system's roots).
    ClientCertificate {
        certificate_pem: String,
        key_pem: String,
        #[serde(default)]
        ca_pem: String,
    },
}

impl fmt::Debug for SourceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceCredential::{}(..)", self.kind())
    }
}

impl SourceCredential {
    /// `none`, `bearer`, `basic` or `client_certificate`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceCredential::None => "none",
            SourceCredential::Bearer { .. } => "bearer",
            SourceCredential::Basic { .. } => "basic",
            SourceCredential::ClientCertificate { .. } => "client_certificate",
        }
    }
}

/// A cluster as it is added or changed. `credential: None` on a change keeps the stored one,
/// and so does a source credential left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ClusterInput {
    pub name: String,
    /// `https://host:port` of the API server.
    pub api_url: String,
    /// The CA bundle (PEM) that signed the API server's certificate; empty: the system's roots.
    #[serde(default)]
    pub ca_pem: String,
    #[serde(default)]
    pub credential: Option<Credential>,
    #[serde(default)]
    pub prometheus_url: String,
    #[serde(default)]
    pub alertmanager_url: String,
    #[serde(default)]
    pub grafana_url: String,
    #[serde(default)]
    pub prometheus_credential: Option<SourceCredential>,
    #[serde(default)]
    pub alertmanager_credential: Option<SourceCredential>,
    #[serde(default)]
    pub grafana_credential: Option<SourceCredential>,
}

/// A kubeconfig to register a cluster from: the file's text and the context to use (the
/// current context when `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KubeconfigImport {
    pub name: String,
    pub kubeconfig: String,
    #[serde(default)]
    pub context: Option<String>,
}

/// A registered cluster and how its live view stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Cluster {
    pub name: String,
    pub api_url: String,
    /// `token` or `client_certificate`; the credential itself is never shown.
    pub credential_kind: String,
    pub has_ca: bool,
    pub prometheus_url: String,
    pub alertmanager_url: String,
    pub grafana_url: String,
    /// The kind of credential Pangea holds for each source (`none`, `bearer`, `basic`,
    /// `client_certificate`); the credentials themselves are never shown.
    pub prometheus_auth: String,
    pub alertmanager_auth: String,
    pub grafana_auth: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub health: ClusterHealth,
    /// Whether people can download a kubeconfig that signs in through single sign-on.
    pub sso_kubeconfig: bool,
}

/// Whether Pangea's watches of a cluster are current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case", try_from = "ConnectionWire")]
pub enum Connection {
    /// The first complete lists are still arriving.
    Connecting,
    Live,
    /// A watch broke (the API server restarted, or answered 410 Gone); it is being resumed.
    Reconnecting {
        reason: String,
    },
}

impl Connection {
    pub fn label(&self) -> &'static str {
        match self {
            Connection::Connecting => "connecting",
            Connection::Live => "live",
            Connection::Reconnecting { .. } => "reconnecting",
        }
    }
}

/// [`Connection`] as written, flat. serde's derive for an internally tagged enum buffers the
/// value in generic code first; reading this struct instead keeps that out of the wasm.
#[derive(Deserialize)]
struct ConnectionWire {
    state: String,
    #[serde(default)]
    reason: Option<String>,
}

impl TryFrom<ConnectionWire> for Connection {
    type Error = String;

    fn try_from(wire: ConnectionWire) -> Result<Self, String> {
        match (wire.state.as_str(), wire.reason) {
            ("connecting", _) => Ok(Connection::Connecting),
            ("live", _) => Ok(Connection::Live),
            ("reconnecting", Some(reason)) => Ok(Connection::Reconnecting { reason }),
            ("reconnecting", None) => Err("a reconnecting connection needs its reason".into()),
            (other, _) => Err(format!("unknown connection state {other:?}")),
        }
    }
}

/// One check of the API server's `/readyz?verbose`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReadyCheck {
    pub name: String,
    pub ok: bool,
}

/// A cluster's health, from the watch caches and the API server's own checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ClusterHealth {
    /// `None` until the caches start.
    pub connection: Option<Connection>,
    /// `gitVersion` from `/version`, when it answered.
    pub version: Option<String>,
    /// Why the API server is unreachable, when it is.
    pub unreachable: Option<String>,
    pub nodes_ready: u32,
    pub nodes_not_ready: u32,
    /// Pods by phase (Pending, Running, Succeeded, Failed, Unknown).
    pub pods_by_phase: BTreeMap<String, u32>,
    /// The checks of `/readyz?verbose`; empty until it answered.
    pub readyz: Vec<ReadyCheck>,
    /// Nodes with no inventory machine, and machines installed over an hour ago with no node.
    pub warnings: Vec<String>,
}

/// A taint, as Kubernetes writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

/// One node, as the nodes page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NodeRow {
    pub cluster: String,
    pub name: String,
    /// Ready, NotReady or Unknown.
    pub status: String,
    pub roles: Vec<String>,
    pub version: String,
    pub internal_ip: String,
    /// RFC 3339.
    pub created: String,
    pub pods: u32,
    pub cpu: String,
    pub memory: String,
    pub cordoned: bool,
    pub taints: Vec<Taint>,
    /// The inventory machine this node is, by id.
    pub machine: Option<i64>,
}

/// How the nodes page sorts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeSort {
    #[default]
    Name,
    Status,
    Age,
    Pods,
}

impl NodeSort {
    pub const ALL: [NodeSort; 4] = [NodeSort::Name, NodeSort::Status, NodeSort::Age, NodeSort::Pods];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeSort::Name => "name",
            NodeSort::Status => "status",
            NodeSort::Age => "age",
            NodeSort::Pods => "pods",
        }
    }

    pub fn parse(s: &str) -> Option<NodeSort> {
        NodeSort::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which node of which cluster (an inventory machine's, on its page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    pub cluster: String,
    pub node: String,
}

/// A page request of nodes. `cluster: None` lists every cluster's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NodeQuery {
    #[serde(default)]
    pub cluster: Option<String>,
    /// A substring of the name.
    #[serde(default)]
    pub search: Option<String>,
    /// A label selector: `key=value`, `key!=value`, `key`, `!key`, comma-separated.
    #[serde(default)]
    pub selector: Option<String>,
    /// Only the node that is this inventory machine (by its id).
    #[serde(default)]
    pub machine: Option<i64>,
    #[serde(default)]
    pub sort: NodeSort,
    #[serde(default)]
    pub descending: bool,
    /// Rows to skip.
    #[serde(default)]
    pub offset: u32,
    /// 1 to 500; 50 when absent.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The page size both list pages use unless asked otherwise, and the largest they allow.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// One page of a listing and how many rows match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u32,
    pub offset: u32,
}

/// One pod, as the pods page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PodRow {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub node: String,
    pub restarts: u32,
    pub created: String,
}

/// A page request of pods in one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PodQuery {
    pub cluster: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub offset: u32,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One node condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NodeCondition {
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub since: String,
}

/// One recent event about a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NodeEvent {
    pub at: String,
    pub kind: String,
    pub reason: String,
    pub message: String,
}

/// Everything the node page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NodeDetail {
    pub row: NodeRow,
    pub conditions: Vec<NodeCondition>,
    /// `(type, address)`.
    pub addresses: Vec<(String, String)>,
    pub capacity: BTreeMap<String, String>,
    pub allocatable: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub system_uuid: String,
    pub pods: Vec<PodRow>,
    pub events: Vec<NodeEvent>,
}

/// A change to a node, made as the signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NodeAction {
    Cordon,
    Uncordon,
    /// Sets labels (adding or changing them) and removes others, by key.
    Labels {
        #[serde(default)]
        set: BTreeMap<String, String>,
        #[serde(default)]
        remove: Vec<String>,
    },
    /// Adds or replaces taints (by key and effect) and removes others, by key.
    Taints {
        #[serde(default)]
        set: Vec<Taint>,
        #[serde(default)]
        remove: Vec<String>,
    },
}

impl NodeAction {
    /// The audit log's action name.
    pub fn audit_action(&self) -> &'static str {
        match self {
            NodeAction::Cordon => "node.cordon",
            NodeAction::Uncordon => "node.uncordon",
            NodeAction::Labels { .. } => "node.labels",
            NodeAction::Taints { .. } => "node.taints",
        }
    }
}

/// How to drain a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DrainOptions {
    /// Evict pods with node-local storage (`emptyDir`) too, losing that data; without it such
    /// pods stop the drain before anything is evicted.
    #[serde(default)]
    pub delete_local_data: bool,
    /// How long the drain may take; 300 when absent, at most 3600.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

impl DrainOptions {
    pub const DEFAULT_TIMEOUT: u32 = 300;
    pub const MAX_TIMEOUT: u32 = 3600;

    pub fn timeout(&self) -> u32 {
        self.timeout_seconds.unwrap_or(Self::DEFAULT_TIMEOUT).clamp(1, Self::MAX_TIMEOUT)
    }
}

/// A pod a drain cannot evict yet, and why (the PodDisruptionBudget that forbids it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DrainBlocker {
    /// `namespace/name`.
    pub pod: String,
    pub reason: String,
}

/// Where a drain stands: pods evicted of those to evict, what blocks it, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DrainProgress {
    pub job: String,
    /// running, succeeded or failed.
    pub state: String,
    /// cordon, evict or wait (for evicted pods to terminate).
    pub step: String,
    pub evicted: u32,
    pub total: u32,
    pub blockers: Vec<DrainBlocker>,
    /// DaemonSet and mirror pods, which a drain leaves.
    pub skipped: Vec<String>,
    pub error: Option<String>,
    /// How many times another replica took this drain over (its own had stopped).
    #[serde(default)]
    pub resumed: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_reads_back_as_written() {
        for connection in
            [Connection::Connecting, Connection::Live, Connection::Reconnecting { reason: "410 Gone".into() }]
        {
            let json = serde_json::to_string(&connection).unwrap();
            assert_eq!(serde_json::from_str::<Connection>(&json).unwrap(), connection, "{json}");
        }
        assert_eq!(
            serde_json::to_value(Connection::Reconnecting { reason: "r".into() }).unwrap(),
            serde_json::json!({"state": "reconnecting", "reason": "r"})
        );
        let unknown = serde_json::from_str::<Connection>(r#"{"state":"asleep"}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown connection state \"asleep\""), "{unknown}");
        assert!(serde_json::from_str::<Connection>(r#"{"state":"reconnecting"}"#).is_err());
    }

    #[test]
    fn cluster_names_follow_dns_label_rules() {
        for good in ["a", "edge-1", "0prod", &"x".repeat(63)] {
            assert!(good.parse::<ClusterName>().is_ok(), "{good}");
        }
        for bad in ["", "Edge", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            let err = bad.parse::<ClusterName>().unwrap_err();
            assert!(err.to_string().contains("lowercase letters"), "{bad}");
        }
        assert!(serde_json::from_str::<ClusterName>("\"UP\"").is_err());
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let token = Credential::Token { token: "s3cr3t".into() };
        assert!(!format!("{token:?}").contains("s3cr3t"));
        let input = ClusterInput {
            name: "a".into(),
            api_url: "https://x".into(),
            ca_pem: String::new(),
            credential: Some(Credential::ClientCertificate { certificate_pem: "c".into(), key_pem: "KEY".into() }),
            prometheus_url: String::new(),
            alertmanager_url: String::new(),
            grafana_url: String::new(),
            prometheus_credential: Some(SourceCredential::Basic { username: "u".into(), password: "PASSWORD".into() }),
            alertmanager_credential: Some(SourceCredential::Bearer { token: "TOKEN".into() }),
            grafana_credential: None,
        };
        let shown = format!("{input:?}");
        assert!(!shown.contains("KEY") && !shown.contains("PASSWORD") && !shown.contains("TOKEN"), "{shown}");
    }
}
