//! The Butane configs of a new cluster's machines, as Typhoon's bare-metal templates and kubeadm
//! lay a node out (docs/clusters.md compares them unit by unit):
//! - **install**: the live system network-booted once writes the OS to disk with the installed
//!   config (`flatcar-install -i`, `coreos-installer install --ignition-file`), then reboots;
//! - **controller**: kubelet, the cluster's PKI in `/etc/kubernetes/pki`, and etcd, the API
//!   server, the controller manager and the scheduler as static pods;
//! - **worker**: kubelet joining through TLS bootstrap with the cluster's bootstrap token.
//!
//! Each config is complete (no template variables left), and holds **no secret**: anyone on the
//! boot network can ask for any MAC's config (Matchbox's model, which Typhoon answers by copying
//! secrets over SSH after the install). Keys, kubeconfigs and the bootstrap token are files whose
//! contents Ignition fetches from [`secret_url`], a link for that machine and file, with the
//! content's SHA-512 so nothing else is accepted; the link answers once (docs/clusters.md).

use super::pki::ClusterPki;
use super::template::{ClusterTemplate, NodeOs};
use app::machines::mac::MacAddr;
use serde_json::{Value, json};
use std::net::IpAddr;

/// A machine's part in the cluster: the inventory's role.
pub use app::machines::fields::Role;

/// A machine chosen for the cluster.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeSpec {
    pub role: Role,
    /// Its node name: the machine's host name.
    pub name: String,
    pub mac: MacAddr,
    pub address: Option<IpAddr>,
    /// The random part of its secrets' links.
    pub secrets_token: String,
}

impl std::fmt::Debug for NodeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSpec")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("mac", &self.mac)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// `s` as one word for a shell script, in single quotes.
fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Where `node` fetches the secret file at `path` (under `/etc/kubernetes/`).
pub fn secret_url(boot_url: &str, node: &NodeSpec, path: &str) -> String {
    format!("{boot_url}{}{}/{path}", crate::http::middleware::SECRET_LINKS, node.secrets_token)
}

/// Everything the configs are made from.
pub struct Cluster<'a> {
    pub template: &'a ClusterTemplate,
    pub pki: &'a ClusterPki,
    pub nodes: &'a [NodeSpec],
    /// Where the machines fetch Pangea's assets and configs (the boot listener's URL).
    pub boot_url: &'a str,
}

/// The etcd image controllers run: etcd 3.6, which Kubernetes 1.36 is tested with.
const ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.6.4-0";

/// The images the static pods run, by component.
fn image(component: &str, cluster: &Cluster) -> String {
    match component {
        "etcd" => ETCD_IMAGE.into(),
        other => format!("registry.k8s.io/{other}:{}", cluster.template.kubernetes),
    }
}

/// The cluster DNS service's address: the service network's tenth, as Typhoon and kubeadm
/// choose it.
fn dns_address(cluster: &Cluster) -> String {
    cluster.template.services.nth(10).to_string()
}

fn file(path: &str, mode: u32, contents: &str) -> Value {
    json!({ "path": path, "mode": mode, "contents": { "inline": contents } })
}

/// A secret file of `/etc/kubernetes/` (`path` below it), fetched by link and checked by hash.
fn secret_file(cluster: &Cluster, node: &NodeSpec, path: &str, contents: &str) -> Value {
    use sha2::Digest as _;
    json!({
        "path": format!("/etc/kubernetes/{path}"),
        "mode": 0o600,
        "contents": {
            "source": secret_url(cluster.boot_url, node, path),
            "verification": { "hash": format!("sha512-{}", hex::encode(sha2::Sha512::digest(contents))) },
        },
    })
}

fn unit(name: &str, contents: &str) -> Value {
    json!({ "name": name, "enabled": true, "contents": contents })
}

fn users(cluster: &Cluster) -> Value {
    let keys: Vec<&str> = cluster.template.ssh_keys.iter().map(|k| k.as_str()).collect();
    json!({ "users": [{ "name": "core", "ssh_authorized_keys": keys }] })
}

/// What an installer reports when it stops, as `reason=` of its `stage=failed` report.
pub mod reported {
    /// The install disk is not a block device of the machine.
    pub const NO_DISK: &str = "install-disk-missing";
    /// The installed config could not be fetched.
    pub const NO_CONFIG: &str = "installed-config-unfetched";
    /// The OS's installer failed.
    pub const INSTALL_FAILED: &str = "install-failed";
}

/// The config of the network-booted live system: check the install disk, fetch the installed
/// config, install, reboot; a step that fails is reported to Pangea (`/metadata?stage=failed`,
/// with the machine's report token) before the installer stops.
pub fn install(cluster: &Cluster, node: &NodeSpec) -> String {
    // The provisioner fills in the machine's report token, so fetching the installed config
    // moves the machine to "installed" (a stranger's fetch is recorded as unverified).
    let installed = shell_word(&format!(
        "{}/ignition?mac={}&os=installed&report_token={{{{.report_token}}}}",
        cluster.boot_url, node.mac
    ));
    let report = shell_word(&format!(
        "{}/metadata?mac={}&stage=failed&report_token={{{{.report_token}}}}&reason=",
        cluster.boot_url, node.mac
    ));
    let disk = shell_word(cluster.template.install_disk.as_str());
    let install = match cluster.template.os {
        NodeOs::Flatcar => format!("flatcar-install -d {disk} -i /run/ignition.json"),
        NodeOs::FedoraCoreOs => format!("coreos-installer install {disk} --ignition-file /run/ignition.json"),
    };
    let script = format!(
        "#!/bin/bash -e
failed() {{ echo \"install failed: $1\" >&2; curl --fail --retry 5 -o /dev/null {report}\"$1\" || true; exit 1; }}
[ -b {disk} ] || failed {no_disk}
curl --fail --retry 10 --retry-connrefused -o /run/ignition.json {installed} || failed {no_config}
{install} || failed {install_failed}
udevadm settle
systemctl reboot
",
        no_disk = reported::NO_DISK,
        no_config = reported::NO_CONFIG,
        install_failed = reported::INSTALL_FAILED,
    );
    let installer = "[Unit]
Description=Install the OS to disk, with this machine's config
Requires=network-online.target
After=network-online.target
[Service]
Type=oneshot
ExecStart=/opt/installer
[Install]
WantedBy=multi-user.target
";
    let config = json!({
        "variant": "fcos",
        "version": "1.5.0",
        "systemd": { "units": [unit("installer.service", installer)] },
        "storage": { "files": [file("/opt/installer", 0o500, &script)] },
        "passwd": users(cluster),
    });
    to_yaml(&config)
}

/// The installed system's config for `node`'s role.
pub fn installed(cluster: &Cluster, node: &NodeSpec) -> String {
    let t = cluster.template;
    let api = t.api_server.url();
    let ca = cluster.pki.ca_pem();
    let mut units =
        vec![json!({ "name": "containerd.service", "enabled": true }), unit("kubelet.service", &kubelet_unit(node))];
    let mut files = vec![
        file("/etc/hostname", 0o644, &format!("{}\n", node.name)),
        file("/etc/kubernetes/pki/ca.crt", 0o644, ca),
        file("/etc/kubernetes/kubelet.yaml", 0o644, &kubelet_config(cluster)),
        secret_file(cluster, node, "bootstrap-kubelet.conf", &bootstrap_kubeconfig(&api, ca, cluster, node)),
        file("/etc/sysctl.d/90-kubernetes.conf", 0o644, "net.ipv4.ip_forward=1\nfs.inotify.max_user_watches=16184\n"),
        file("/etc/modules-load.d/kubernetes.conf", 0o644, "br_netfilter\noverlay\n"),
    ];
    let mut storage = serde_json::Map::new();
    if t.os == NodeOs::Flatcar {
        // Flatcar ships no kubelet: the Kubernetes system extension brings it, from Pangea's
        // assets (Flatcar's sysext bakery builds it), merged into /usr at boot.
        let raw = format!("kubernetes-{}-x86-64.raw", t.kubernetes);
        let extension = format!("/opt/extensions/kubernetes/{raw}");
        files.push(json!({
            "path": extension,
            "mode": 0o644,
            "contents": { "source": format!("{}/assets/sysext/{raw}", cluster.boot_url) },
        }));
        storage.insert(
            "links".into(),
            json!([{ "path": "/etc/extensions/kubernetes.raw", "target": extension, "hard": false }]),
        );
        units.push(json!({ "name": "systemd-sysext.service", "enabled": true }));
        units.push(json!({ "name": "locksmithd.service", "mask": true }));
    }
    if node.role == Role::Controller {
        for (path, text) in &cluster.pki.files {
            match own_path(path, node) {
                Some(path) if path == "pki/ca.crt" => {}
                Some(path) if is_secret(&path) => files.push(secret_file(cluster, node, &path, text)),
                Some(path) => files.push(file(&format!("/etc/kubernetes/{path}"), 0o644, text)),
                None => {}
            }
        }
        for (name, manifest) in static_pods(cluster, node) {
            files.push(file(&format!("/etc/kubernetes/manifests/{name}.yaml"), 0o600, &manifest));
        }
        storage.insert("directories".into(), json!([{ "path": "/var/lib/etcd", "mode": 0o700 }]));
    }
    storage.insert("files".into(), Value::Array(files));
    to_yaml(&json!({
        "variant": "fcos",
        "version": "1.5.0",
        "systemd": { "units": units },
        "storage": storage,
        "passwd": users(cluster),
    }))
}

/// Whether a file of `/etc/kubernetes/` is secret: keys and kubeconfigs.
pub fn is_secret(path: &str) -> bool {
    path.ends_with(".key") || path.ends_with(".conf")
}

/// The secret files `node` fetches, by path under `/etc/kubernetes/`, with their contents.
pub fn secrets_of(cluster: &Cluster, node: &NodeSpec) -> Vec<(String, String)> {
    let api = cluster.template.api_server.url();
    let mut secrets =
        vec![("bootstrap-kubelet.conf".to_string(), bootstrap_kubeconfig(&api, cluster.pki.ca_pem(), cluster, node))];
    if node.role == Role::Controller {
        for (path, text) in &cluster.pki.files {
            if let Some(own) = own_path(path, node)
                && is_secret(&own)
            {
                secrets.push((own, text.clone()));
            }
        }
    }
    secrets
}

/// Where a file of the cluster's PKI goes on `node` (a controller): its own etcd certificates
/// where etcd looks for them, other controllers' nowhere.
fn own_path(path: &str, node: &NodeSpec) -> Option<String> {
    match path.strip_prefix(&format!("pki/etcd/{}/", node.name)) {
        Some(own) => Some(format!("pki/etcd/{own}")),
        None if path.starts_with("pki/etcd/") && path.matches('/').count() == 3 => None,
        None => Some(path.to_string()),
    }
}

fn kubelet_unit(node: &NodeSpec) -> String {
    let role = match node.role {
        Role::Controller => {
            " \\\n  --node-labels=node.kubernetes.io/controller=true \\\n  --register-with-taints=node-role.kubernetes.io/controller=:NoSchedule"
        }
        Role::Worker => " \\\n  --node-labels=node.kubernetes.io/node=",
    };
    format!(
        "[Unit]
Description=Kubelet
Wants=network-online.target
After=network-online.target containerd.service systemd-sysext.service
Requires=containerd.service
[Service]
ExecStartPre=/bin/mkdir -p /etc/kubernetes/manifests /var/lib/kubelet
ExecStart=/usr/bin/kubelet \\
  --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \\
  --kubeconfig=/var/lib/kubelet/kubeconfig \\
  --config=/etc/kubernetes/kubelet.yaml \\
  --container-runtime-endpoint=unix:///run/containerd/containerd.sock \\
  --hostname-override={name}{role}
Restart=always
RestartSec=5
[Install]
WantedBy=multi-user.target
",
        name = node.name,
    )
}

fn kubelet_config(cluster: &Cluster) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
  - {dns}
clusterDomain: cluster.local
healthzPort: 0
readOnlyPort: 0
rotateCertificates: true
serverTLSBootstrap: true
shutdownGracePeriod: 45s
shutdownGracePeriodCriticalPods: 30s
staticPodPath: /etc/kubernetes/manifests
",
        dns = dns_address(cluster)
    )
}

/// The kubeconfig `node`'s kubelet presents its own bootstrap token with, to ask for its client
/// certificate.
fn bootstrap_kubeconfig(api: &str, ca: &str, cluster: &Cluster, node: &NodeSpec) -> String {
    let token = cluster.pki.bootstrap_tokens.get(&node.name).map(|t| t.token()).unwrap_or_default();
    super::pki::kubeconfig(api, ca, "kubelet-bootstrap", &[("token", token)])
}

/// etcd, the API server, the controller manager and the scheduler, as kubeadm writes them.
fn static_pods(cluster: &Cluster, node: &NodeSpec) -> Vec<(&'static str, String)> {
    let t = cluster.template;
    let host = |n: &NodeSpec| n.address.map_or(n.name.clone(), |a| a.to_string());
    let me = host(node);
    let initial_cluster: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.role == Role::Controller)
        .map(|n| format!("{}=https://{}:2380", n.name, host(n)))
        .collect();
    let pki = "/etc/kubernetes/pki";
    // etcd listens on IP addresses only: the machine's own when known, else every one.
    let listen = node.address.map_or("0.0.0.0".to_string(), |a| a.to_string());
    let clients = if node.address.is_some() {
        format!("https://127.0.0.1:2379,https://{listen}:2379")
    } else {
        "https://0.0.0.0:2379".to_string()
    };
    let etcd = vec![
        format!("--name={}", node.name),
        "--data-dir=/var/lib/etcd".into(),
        format!("--listen-client-urls={clients}"),
        format!("--advertise-client-urls=https://{me}:2379"),
        format!("--listen-peer-urls=https://{listen}:2380"),
        format!("--initial-advertise-peer-urls=https://{me}:2380"),
        format!("--initial-cluster={}", initial_cluster.join(",")),
        "--initial-cluster-state=new".into(),
        "--listen-metrics-urls=http://127.0.0.1:2381".into(),
        format!("--cert-file={pki}/etcd/server.crt"),
        format!("--key-file={pki}/etcd/server.key"),
        format!("--trusted-ca-file={pki}/etcd/ca.crt"),
        "--client-cert-auth=true".into(),
        format!("--peer-cert-file={pki}/etcd/peer.crt"),
        format!("--peer-key-file={pki}/etcd/peer.key"),
        format!("--peer-trusted-ca-file={pki}/etcd/ca.crt"),
        "--peer-client-cert-auth=true".into(),
    ];
    let etcd_servers: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.role == Role::Controller)
        .map(|n| format!("https://{}:2379", host(n)))
        .collect();
    let mut apiserver = vec![
        "--allow-privileged=true".to_string(),
        "--authorization-mode=Node,RBAC".into(),
        format!("--client-ca-file={pki}/ca.crt"),
        "--enable-admission-plugins=NodeRestriction".into(),
        "--enable-bootstrap-token-auth=true".into(),
        format!("--etcd-cafile={pki}/etcd/ca.crt"),
        format!("--etcd-certfile={pki}/apiserver-etcd-client.crt"),
        format!("--etcd-keyfile={pki}/apiserver-etcd-client.key"),
        format!("--etcd-servers={}", etcd_servers.join(",")),
        format!("--kubelet-client-certificate={pki}/apiserver-kubelet-client.crt"),
        format!("--kubelet-client-key={pki}/apiserver-kubelet-client.key"),
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
        format!("--proxy-client-cert-file={pki}/front-proxy-client.crt"),
        format!("--proxy-client-key-file={pki}/front-proxy-client.key"),
        "--requestheader-allowed-names=front-proxy-client".into(),
        format!("--requestheader-client-ca-file={pki}/front-proxy-ca.crt"),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        format!("--secure-port={}", t.api_server.port),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={pki}/sa.pub"),
        format!("--service-account-signing-key-file={pki}/sa.key"),
        format!("--service-cluster-ip-range={}", t.services),
        format!("--tls-cert-file={pki}/apiserver.crt"),
        format!("--tls-private-key-file={pki}/apiserver.key"),
    ];
    if let Some(address) = node.address {
        apiserver.insert(0, format!("--advertise-address={address}"));
    }
    let controller_manager = vec![
        "--allocate-node-cidrs=true".to_string(),
        "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf".into(),
        "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--client-ca-file={pki}/ca.crt"),
        format!("--cluster-cidr={}", t.pods),
        format!("--cluster-name={}", t.name.as_str()),
        format!("--cluster-signing-cert-file={pki}/ca.crt"),
        format!("--cluster-signing-key-file={pki}/ca.key"),
        "--controllers=*,bootstrapsigner,tokencleaner".into(),
        "--kubeconfig=/etc/kubernetes/controller-manager.conf".into(),
        "--leader-elect=true".into(),
        format!("--requestheader-client-ca-file={pki}/front-proxy-ca.crt"),
        format!("--root-ca-file={pki}/ca.crt"),
        format!("--service-account-private-key-file={pki}/sa.key"),
        format!("--service-cluster-ip-range={}", t.services),
        "--use-service-account-credentials=true".into(),
    ];
    let scheduler = vec![
        "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf".to_string(),
        "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf".into(),
        "--bind-address=127.0.0.1".into(),
        "--kubeconfig=/etc/kubernetes/scheduler.conf".into(),
        "--leader-elect=true".into(),
    ];
    vec![
        (
            "etcd",
            pod(
                "etcd",
                &image("etcd", cluster),
                &etcd,
                &[("/var/lib/etcd", true), ("/etc/kubernetes/pki/etcd", false)],
            ),
        ),
        ("kube-apiserver", pod("kube-apiserver", &image("kube-apiserver", cluster), &apiserver, &[(pki, false)])),
        (
            "kube-controller-manager",
            pod(
                "kube-controller-manager",
                &image("kube-controller-manager", cluster),
                &controller_manager,
                &[(pki, false), ("/etc/kubernetes/controller-manager.conf", false)],
            ),
        ),
        (
            "kube-scheduler",
            pod(
                "kube-scheduler",
                &image("kube-scheduler", cluster),
                &scheduler,
                &[("/etc/kubernetes/scheduler.conf", false)],
            ),
        ),
    ]
}

/// A static pod on the host network whose one container runs `command` with `args`, with each
/// host path mounted at the same place (writable where marked).
fn pod(name: &str, image: &str, args: &[String], mounts: &[(&str, bool)]) -> String {
    let volume = |i: usize| format!("{name}-{i}");
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "labels": { "component": name, "tier": "control-plane" },
        },
        "spec": {
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [{
                "name": name,
                "image": image,
                "command": [name],
                "args": args,
                "volumeMounts": mounts.iter().enumerate().map(|(i, (path, writable))| json!({
                    "name": volume(i), "mountPath": path, "readOnly": !writable,
                })).collect::<Vec<_>>(),
            }],
            "volumes": mounts.iter().enumerate().map(|(i, (path, _))| json!({
                "name": volume(i), "hostPath": { "path": path },
            })).collect::<Vec<_>>(),
        },
    });
    to_yaml(&pod)
}

/// YAML for a JSON value: block style, multi-line strings as literal blocks, other strings
/// double-quoted, and Butane's `mode` fields in octal.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0, None);
    out
}

fn scalar(value: &Value, key: Option<&str>) -> String {
    match value {
        Value::Number(n) if key == Some("mode") => format!("0{:o}", n.as_u64().unwrap_or(0)),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

/// A mapping's entries, Butane's header and each item's name or path first, then by key.
fn ordered(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    const FIRST: [&str; 4] = ["variant", "version", "name", "path"];
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()));
    entries
}

fn is_block(value: &Value) -> bool {
    matches!(value, Value::Array(a) if !a.is_empty()) || matches!(value, Value::Object(o) if !o.is_empty())
}

fn write_value(out: &mut String, value: &Value, indent: usize, key: Option<&str>) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in ordered(map) {
                write_entry(out, &pad, k, v, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                if let Value::Object(map) = item
                    && !map.is_empty()
                {
                    // The first entry on the dash's line, the rest beneath it.
                    let inner = " ".repeat(indent + 2);
                    for (i, (k, v)) in ordered(map).into_iter().enumerate() {
                        write_entry(out, if i == 0 { "" } else { &inner }, k, v, indent + 2);
                    }
                } else if is_block(item) {
                    out.push('\n');
                    write_value(out, item, indent + 2, None);
                } else {
                    out.push_str(&scalar(item, key));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other, key));
            out.push('\n');
        }
    }
}

fn write_entry(out: &mut String, pad: &str, key: &str, value: &Value, indent: usize) {
    out.push_str(pad);
    out.push_str(key);
    out.push(':');
    match value {
        Value::String(s) if s.contains('\n') && !s.contains('\r') && !s.starts_with([' ', '\n']) => {
            // A literal block keeps the text as it is: `|` with one final newline, `|-` with
            // none, `|+` with more.
            out.push_str(if s.ends_with("\n\n") {
                " |+\n"
            } else if s.ends_with('\n') {
                " |\n"
            } else {
                " |-\n"
            });
            let inner = " ".repeat(indent + 2);
            for line in s.lines() {
                if !line.is_empty() {
                    out.push_str(&inner);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        v if is_block(v) => {
            out.push('\n');
            write_value(out, v, indent + 2, Some(key));
        }
        v => {
            out.push(' ');
            out.push_str(&scalar(v, Some(key)));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creation::pki::tests::generated as pki;
    use crate::provisioner::butane::translate;

    fn template(os: &str) -> ClusterTemplate {
        ClusterTemplate::parse(&format!(
            "version: pangea.dev/v1
name: edge-1
kubernetes: v1.36.2
os: {os}
controllers:
  machines: [\"52:54:00:00:00:01\"]
workers:
  machines: [\"52:54:00:00:00:02\"]
api_server:
  name: edge-1.example.com
  address: 10.0.0.11
ssh_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJd8x1pJ7uFBGaIfDbp7rv3Dnc7Qdc+GVTwNc8mMM2i8 alice
"
        ))
        .unwrap()
    }

    fn nodes() -> Vec<NodeSpec> {
        vec![
            NodeSpec {
                role: Role::Controller,
                name: "node-1".into(),
                mac: "52:54:00:00:00:01".parse().unwrap(),
                address: Some("10.0.0.11".parse().unwrap()),
                secrets_token: "t1".into(),
            },
            NodeSpec {
                role: Role::Worker,
                name: "node-2".into(),
                mac: "52:54:00:00:00:02".parse().unwrap(),
                address: None,
                secrets_token: "t2".into(),
            },
        ]
    }

    /// The Ignition file at `path` in a translated config, decoded.
    fn ignition_file(ignition: &Value, path: &str) -> Option<String> {
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

    #[test]
    fn every_config_translates_to_ignition_with_its_roles_units_and_files() {
        let (template, pki, nodes) = (template("flatcar"), pki(), nodes());
        let cluster = Cluster { template: &template, pki: &pki, nodes: &nodes, boot_url: "http://10.0.0.2:8080" };
        let controller = translate(&installed(&cluster, &nodes[0])).unwrap().value().clone();
        let worker = translate(&installed(&cluster, &nodes[1])).unwrap().value().clone();
        let units = |c: &Value| -> Vec<String> {
            c["systemd"]["units"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_string()).collect()
        };
        assert!(units(&controller).contains(&"kubelet.service".to_string()));
        assert_eq!(ignition_file(&controller, "/etc/hostname").unwrap(), "node-1\n");
        let apiserver = ignition_file(&controller, "/etc/kubernetes/manifests/kube-apiserver.yaml").unwrap();
        assert!(apiserver.contains("--service-cluster-ip-range=10.3.0.0/16"), "{apiserver}");
        assert!(apiserver.contains("--etcd-servers=https://10.0.0.11:2379"), "{apiserver}");
        assert!(apiserver.contains("registry.k8s.io/kube-apiserver:v1.36.2"));
        let etcd = ignition_file(&controller, "/etc/kubernetes/manifests/etcd.yaml").unwrap();
        assert!(etcd.contains("--initial-cluster=node-1=https://10.0.0.11:2380"), "{etcd}");
        assert_eq!(
            ignition_file(&controller, "/etc/kubernetes/pki/etcd/server.crt"),
            Some(pki.files["pki/etcd/node-1/server.crt"].clone())
        );
        // Secrets are links for that machine and file, checked by hash: no key is in a config.
        let fetched = |config: &Value, path: &str| -> (String, String) {
            let files = config["storage"]["files"].as_array().unwrap();
            let f = files.iter().find(|f| f["path"] == format!("/etc/kubernetes/{path}")).unwrap();
            assert_eq!(f["mode"], 0o600, "{path}");
            let contents = &f["contents"];
            (contents["source"].as_str().unwrap().into(), contents["verification"]["hash"].as_str().unwrap().into())
        };
        use sha2::Digest as _;
        let sha512 = |text: &str| format!("sha512-{}", hex::encode(sha2::Sha512::digest(text)));
        let (url, hash) = fetched(&controller, "pki/ca.key");
        assert_eq!(url, "http://10.0.0.2:8080/cluster-secrets/t1/pki/ca.key");
        assert_eq!(hash, sha512(&pki.files["pki/ca.key"]));
        assert_eq!(fetched(&controller, "pki/etcd/peer.key").1, sha512(&pki.files["pki/etcd/node-1/peer.key"]));
        assert!(!controller.to_string().contains("PRIVATE KEY"));
        assert!(pki.bootstrap_tokens.values().all(|t| !controller.to_string().contains(&t.secret)));
        // What the links serve is what the hashes say.
        let secrets = secrets_of(&cluster, &nodes[0]);
        assert!(secrets.iter().all(|(path, text)| fetched(&controller, path).1 == sha512(text)));
        assert!(
            secrets.iter().any(|(path, _)| path == "admin.conf") && secrets.len() == 15,
            "{:?}",
            secrets.iter().map(|s| &s.0).collect::<Vec<_>>()
        );
        // A worker gets the CA and a link to its bootstrap kubeconfig; no key, no static pod.
        assert!(!worker.to_string().contains("pki/ca.key"));
        assert!(ignition_file(&worker, "/etc/kubernetes/manifests/etcd.yaml").is_none());
        assert_eq!(ignition_file(&worker, "/etc/kubernetes/pki/ca.crt").as_deref(), Some(pki.ca_pem()));
        let worker_secrets = secrets_of(&cluster, &nodes[1]);
        assert_eq!(worker_secrets.len(), 1);
        let (path, bootstrap) = &worker_secrets[0];
        assert_eq!(fetched(&worker, path).0, "http://10.0.0.2:8080/cluster-secrets/t2/bootstrap-kubelet.conf");
        assert!(bootstrap.contains(&format!("token: {}", pki.bootstrap_tokens["node-2"].token())), "its own token");
        let (_, controllers_bootstrap) = &secrets_of(&cluster, &nodes[0])[0];
        assert!(controllers_bootstrap.contains(&format!("token: {}", pki.bootstrap_tokens["node-1"].token())));
        assert!(bootstrap.contains("server: https://edge-1.example.com:6443"));
        let kubelet =
            worker["systemd"]["units"].as_array().unwrap().iter().find(|u| u["name"] == "kubelet.service").unwrap();
        let kubelet = kubelet["contents"].as_str().unwrap();
        assert!(kubelet.contains("--hostname-override=node-2") && !kubelet.contains("register-with-taints"));
        // Flatcar brings the kubelet as a system extension from Pangea's assets.
        let link = &worker["storage"]["links"][0];
        assert_eq!(link["path"], "/etc/extensions/kubernetes.raw");
        assert!(worker.to_string().contains("http://10.0.0.2:8080/assets/sysext/kubernetes-v1.36.2-x86-64.raw"));
        assert_eq!(
            controller["passwd"]["users"][0]["sshAuthorizedKeys"][0].as_str().unwrap().split(' ').next(),
            Some("ssh-ed25519")
        );
    }

    #[test]
    fn the_installer_fetches_the_installed_config_and_runs_the_oss_own_installer() {
        let (pki, nodes) = (pki(), nodes());
        for (os, command) in [
            ("flatcar", "flatcar-install -d '/dev/vda' -i /run/ignition.json"),
            ("fedora-coreos", "coreos-installer install '/dev/vda' --ignition-file /run/ignition.json"),
        ] {
            let mut template = template(os);
            template.install_disk = "/dev/vda".parse().unwrap();
            let cluster = Cluster { template: &template, pki: &pki, nodes: &nodes, boot_url: "http://pangea:8080" };
            let ignition = translate(&install(&cluster, &nodes[1])).unwrap().value().clone();
            let script = ignition_file(&ignition, "/opt/installer").unwrap();
            assert!(
                script.contains(
                    "'http://pangea:8080/ignition?mac=52:54:00:00:00:02&os=installed&report_token={{.report_token}}'"
                ),
                "{script}"
            );
            assert!(script.contains(&format!("{command} || failed install-failed")), "{script}");
            assert!(script.contains("[ -b '/dev/vda' ] || failed install-disk-missing"), "{script}");
            assert!(
                script.contains(
                    "curl --fail --retry 5 -o /dev/null 'http://pangea:8080/metadata?mac=52:54:00:00:00:02&stage=failed&\
                     report_token={{.report_token}}&reason='\"$1\""
                ),
                "{script}"
            );
            assert!(!ignition.to_string().contains("BEGIN"), "the installer's config holds no certificate or key");
        }
    }

    #[test]
    fn words_in_the_installer_stay_one_word() {
        assert_eq!(shell_word("/dev/sda"), "'/dev/sda'");
        assert_eq!(shell_word("a'b; rm -rf /"), "'a'\\''b; rm -rf /'");
        let node = &nodes()[0];
        assert!(!format!("{node:?}").contains("t1"), "a node's secret link is not shown");
    }

    #[test]
    fn yaml_is_written_so_it_reads_back_the_same() {
        let value = json!({
            "a": "one\ntwo\n",
            "b": ["x", {"c": 1, "d": [true]}],
            "mode": 0o600,
            "e": [],
            "f": "quote \" and: colon",
            "g": "no final newline\nhere",
            "h": "two final\n\n",
            "i": " leading space\nx\n",
        });
        let text = to_yaml(&value);
        assert!(text.contains("mode: 0600"), "{text}");
        assert!(
            to_yaml(&json!({"storage": 1, "version": "1.5.0", "variant": "fcos"}))
                .starts_with("variant: \"fcos\"\nversion:")
        );
        let node = crate::provisioner::butane::parse_yaml_document(&text, "a test").unwrap();
        let crate::provisioner::butane::Node::Map { entries, .. } = node else { panic!("{text}") };
        let get = |k: &str| entries.iter().find(|(key, _, _)| key == k).map(|(_, _, v)| v.clone()).unwrap();
        assert!(matches!(get("a"), crate::provisioner::butane::Node::Scalar { text, .. } if text == "one\ntwo\n"));
        assert!(
            matches!(get("g"), crate::provisioner::butane::Node::Scalar { text, .. } if text == "no final newline\nhere")
        );
        assert!(
            matches!(get("f"), crate::provisioner::butane::Node::Scalar { text, .. } if text == "quote \" and: colon")
        );
        assert!(matches!(get("h"), crate::provisioner::butane::Node::Scalar { text, .. } if text == "two final\n\n"));
        assert!(
            matches!(get("i"), crate::provisioner::butane::Node::Scalar { text, .. } if text == " leading space\nx\n")
        );
        assert!(matches!(get("b"), crate::provisioner::butane::Node::Seq { items, .. } if items.len() == 2));
    }
}
