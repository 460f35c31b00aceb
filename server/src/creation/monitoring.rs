//! The monitoring Pangea installs in a cluster it creates when its template asks
//! (`monitoring.enabled`), as Tectonic did: node_exporter on every node and one Prometheus that
//! scrapes them and the API server. Both run on the hosts'
//! network, so they need neither a pod network nor kube-proxy (Pangea installs neither). Pangea
//! links the Prometheus to the cluster's charts through the API server's service proxy, as user
//! `pangea:monitoring` (a client certificate from the cluster's CA, kept sealed), whose only right
//! in the cluster is to read that proxy.

use super::pki::{ClusterPki, MONITORING_USER};
use super::render::NodeSpec;
use super::template::ClusterTemplate;
use app::clusters::SourceCredential;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use std::net::IpAddr;

pub const NAMESPACE: &str = "pangea-monitoring";
const PROMETHEUS_PORT: u16 = 9090;
const NODE_EXPORTER_PORT: u16 = 9100;
/// The proxy's name for the Prometheus Service's port, as the API server's RBAC checks it.
const PROXIED: &str = "prometheus:9090";
/// Where the pods find their ServiceAccount's token and the cluster's CA.
const ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The linked Prometheus: the API server's proxy to the Prometheus Service.
pub fn prometheus_url(api_url: &str) -> String {
    format!("{}/api/v1/namespaces/{NAMESPACE}/services/{PROXIED}/proxy", api_url.trim_end_matches('/'))
}

/// Pangea's credential for that link: `pangea:monitoring`'s client certificate, trusting the
/// cluster's CA; none for a cluster created before Pangea made one.
pub fn credential(pki: &ClusterPki) -> Option<SourceCredential> {
    let (certificate_pem, key_pem) =
        (pki.console_clients.get("monitoring.crt")?, pki.console_clients.get("monitoring.key")?);
    Some(SourceCredential::ClientCertificate {
        certificate_pem: certificate_pem.clone(),
        key_pem: key_pem.clone(),
        ca_pem: pki.ca_pem().to_string(),
    })
}

/// Prometheus's configuration: each node's node_exporter, at the node's address (or its name
/// where the template gives none) and named by its node, and the API server at the template's
/// address, with the ServiceAccount's token. The nodes are the creation's, fixed by its template,
/// so no service discovery is needed (Debian's Prometheus is built without Kubernetes'), nor
/// kube-proxy.
pub fn prometheus_config(template: &ClusterTemplate, nodes: &[NodeSpec]) -> String {
    let api = super::register::api_url(template.api_server.address, template.api_server.port);
    let host = api.trim_start_matches("https://");
    let targets: String = nodes
        .iter()
        .map(|node| {
            let at = match node.address {
                Some(IpAddr::V6(a)) => format!("[{a}]"),
                Some(a) => a.to_string(),
                None => node.name.clone(),
            };
            format!("      - {{targets: ['{at}:{NODE_EXPORTER_PORT}'], labels: {{instance: '{}'}}}}\n", node.name)
        })
        .collect();
    format!(
        "global:
  scrape_interval: 30s
  evaluation_interval: 30s
rule_files: [rules.yml]
scrape_configs:
  - job_name: node
    static_configs:
{targets}  - job_name: apiserver
    scheme: https
    tls_config: {{ca_file: {ACCOUNT_DIR}/ca.crt}}
    authorization: {{credentials_file: {ACCOUNT_DIR}/token}}
    static_configs: [{{targets: ['{host}']}}]
  - job_name: prometheus
    static_configs: [{{targets: ['localhost:{PROMETHEUS_PORT}']}}]
"
    )
}

/// The alerting rules shipped with it: a node whose node_exporter stops answering, a filesystem
/// filling up.
pub const RULES: &str = r#"groups:
  - name: pangea-nodes
    rules:
      - alert: NodeExporterDown
        expr: up{job="node"} == 0
        for: 5m
        labels: {severity: critical}
        annotations: {summary: 'node_exporter on {{ $labels.instance }} has not answered for 5 minutes'}
      - alert: NodeFilesystemAlmostFull
        expr: node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} / node_filesystem_size_bytes < 0.1
        for: 15m
        labels: {severity: warning}
        annotations: {summary: '{{ $labels.mountpoint }} on {{ $labels.instance }} has less than 10% free'}
"#;

/// The objects, in the order they are applied.
pub fn manifests(template: &ClusterTemplate, nodes: &[NodeSpec]) -> Vec<Value> {
    let monitoring = &template.monitoring;
    let meta = |name: &str| json!({"name": name, "namespace": NAMESPACE});
    let labels = |name: &str| json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "pangea"});
    let nobody = json!({"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534});
    let read_only = json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]}});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("prometheus")}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "pangea:prometheus"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "pangea:prometheus"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pangea:prometheus"},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": NAMESPACE}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": meta("pangea:prometheus-reader"),
            "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "resourceNames": [PROXIED],
                "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": meta("pangea:prometheus-reader"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pangea:prometheus-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": MONITORING_USER}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("prometheus"),
            "data": {"prometheus.yml": prometheus_config(template, nodes), "rules.yml": RULES}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("prometheus"),
            "spec": {"selector": labels("prometheus"),
                "ports": [{"name": "web", "port": PROMETHEUS_PORT, "targetPort": PROMETHEUS_PORT}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("prometheus"),
        "spec": {
            "replicas": 1,
            // On the host's network, its port is the node's: the old pod goes first.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels("prometheus")},
            "template": {
                "metadata": {"labels": labels("prometheus")},
                "spec": {
                    "serviceAccountName": "prometheus",
                    "hostNetwork": true,
                    "securityContext": nobody,
                    "tolerations": [{"key": "node-role.kubernetes.io/controller", "operator": "Exists",
                        "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "prometheus",
                        "image": monitoring.prometheus_image.as_str(),
                        "args": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                            "--storage.tsdb.retention.time=15d",
                            format!("--web.listen-address=:{PROMETHEUS_PORT}")],
                        "ports": [{"name": "web", "containerPort": PROMETHEUS_PORT}],
                        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": PROMETHEUS_PORT}},
                        "securityContext": read_only,
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"},
                            {"name": "data", "mountPath": "/prometheus"}],
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": "prometheus"}},
                        {"name": "data", "emptyDir": {}}],
                },
            },
        }}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("node-exporter"),
        "spec": {
            "selector": {"matchLabels": labels("node-exporter")},
            "template": {
                "metadata": {"labels": labels("node-exporter")},
                "spec": {
                    "hostNetwork": true,
                    "hostPID": true,
                    "securityContext": nobody,
                    // Every node, controllers too.
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": "node-exporter",
                        "image": monitoring.node_exporter_image.as_str(),
                        "args": ["--path.procfs=/host/proc", "--path.sysfs=/host/sys",
                            "--path.rootfs=/host/root", format!("--web.listen-address=:{NODE_EXPORTER_PORT}")],
                        "ports": [{"name": "metrics", "containerPort": NODE_EXPORTER_PORT}],
                        "securityContext": read_only,
                        "volumeMounts": [
                            {"name": "proc", "mountPath": "/host/proc", "readOnly": true},
                            {"name": "sys", "mountPath": "/host/sys", "readOnly": true},
                            {"name": "root", "mountPath": "/host/root", "readOnly": true,
                                "mountPropagation": "HostToContainer"},
                        ],
                    }],
                    "volumes": [{"name": "proc", "hostPath": {"path": "/proc"}},
                        {"name": "sys", "hostPath": {"path": "/sys"}}, {"name": "root", "hostPath": {"path": "/"}}],
                },
            },
        }}),
    ]
}

/// The API resource of an object of [`manifests`], by its `apiVersion` and `kind`.
fn resource(object: &Value) -> Option<ApiResource> {
    let api_version = object["apiVersion"].as_str()?;
    let kind = object["kind"].as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ConfigMap" => "configmaps",
        "Service" => "services",
        "Deployment" => "deployments",
        "DaemonSet" => "daemonsets",
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural))
}

/// Applies [`manifests`] as the cluster's admin (server-side apply, so applying again changes
/// nothing that is as it should be).
pub async fn install(admin: &Client, template: &ClusterTemplate, nodes: &[NodeSpec]) -> Result<(), kube::Error> {
    let apply = PatchParams::apply("pangea").force();
    for object in manifests(template, nodes) {
        let resource = resource(&object)
            .ok_or_else(|| kube::Error::Service(format!("no API resource for {}", object["kind"]).into()))?;
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(namespace) => Api::namespaced_with(admin.clone(), namespace, &resource),
            None => Api::all_with(admin.clone(), &resource),
        };
        api.patch(&name, &apply, &Patch::Apply(&object)).await?;
    }
    Ok(())
}

/// Whether the linked Prometheus answers Pangea through the API server: `Err` says why not.
pub async fn answers(url: &str, credential: &SourceCredential) -> Result<(), String> {
    let http = crate::clusters::sources::client_with(Some(credential))?;
    let response = http
        .get(format!("{url}/api/v1/status/buildinfo"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| crate::error::cause(&e))?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("the API server's proxy answered HTTP {}", status.as_u16())),
    }
}

/// What the Prometheus pod waits for, in words, read as the cluster's admin.
pub async fn prometheus_pod(admin: &Client) -> String {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NAMESPACE);
    let listed = match pods.list(&ListParams::default().labels("app.kubernetes.io/name=prometheus")).await {
        Ok(listed) => listed,
        Err(e) => return format!("its pods cannot be read: {e}"),
    };
    let Some(pod) = listed.items.first() else {
        return "no Prometheus pod yet".into();
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let unscheduled = status.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unscheduled {
        return format!("pod {name} is not scheduled: {}", c.message.clone().unwrap_or_default());
    }
    let waiting = status.container_statuses.iter().flatten().find_map(|c| c.state.as_ref()?.waiting.clone());
    match waiting {
        Some(w) => format!(
            "pod {name} waits: {} {}",
            w.reason.unwrap_or_default(),
            w.message.unwrap_or_default().chars().take(300).collect::<String>()
        )
        .trim_end()
        .to_string(),
        None => format!("pod {name} is {}", status.phase.unwrap_or_else(|| "Pending".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> ClusterTemplate {
        let text = super::super::template::tests::example();
        ClusterTemplate::parse(&format!(
            "{text}monitoring:\n  enabled: true\n  prometheus_image: localhost/prometheus:2.42\n"
        ))
        .unwrap()
    }

    fn nodes() -> Vec<NodeSpec> {
        let node = |name: &str, address: Option<&str>| NodeSpec {
            role: super::super::render::Role::Worker,
            name: name.into(),
            mac: "52:54:00:00:00:02".parse().unwrap(),
            address: address.map(|a| a.parse().unwrap()),
            secrets_token: "t".into(),
        };
        vec![node("cp-1", Some("10.0.0.10")), node("worker-1", None), node("worker-2", Some("fd00::12"))]
    }

    #[test]
    fn the_manifests_run_on_the_hosts_network_with_the_templates_images() {
        let objects = manifests(&template(), &nodes());
        let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
        let prometheus = &find("Deployment")["spec"]["template"]["spec"];
        assert_eq!(prometheus["hostNetwork"], true);
        assert_eq!(prometheus["containers"][0]["image"], "localhost/prometheus:2.42");
        let exporter = &find("DaemonSet")["spec"]["template"]["spec"];
        assert_eq!(exporter["containers"][0]["image"], "quay.io/prometheus/node-exporter:v1.9.1");
        assert_eq!(exporter["tolerations"], json!([{"operator": "Exists"}]));
        let config = find("ConfigMap")["data"]["prometheus.yml"].as_str().unwrap().to_string();
        assert!(config.contains("targets: ['10.0.0.10:9100'], labels: {instance: 'cp-1'}"), "{config}");
        assert!(config.contains("targets: ['worker-1:9100'], labels: {instance: 'worker-1'}"), "{config}");
        assert!(config.contains("targets: ['[fd00::12]:9100']"), "{config}");
        assert!(config.contains("targets: ['10.0.0.10:6443']"), "{config}");
        // Pangea's user may read the Prometheus Service's proxy, and nothing else.
        let reader = objects.iter().find(|o| o["kind"] == "Role").unwrap();
        assert_eq!(reader["rules"].as_array().unwrap().len(), 1);
        assert_eq!(reader["rules"][0]["resourceNames"], json!([PROXIED]));
        for object in &objects {
            let resource = resource(object).unwrap();
            assert_eq!(resource.kind, object["kind"].as_str().unwrap());
            assert!(resource.plural.ends_with('s') && resource.plural == resource.kind.to_lowercase() + "s");
        }
        assert_eq!(
            prometheus_url("https://10.0.0.10:6443/"),
            "https://10.0.0.10:6443/api/v1/namespaces/pangea-monitoring/services/prometheus:9090/proxy"
        );
    }

    #[test]
    fn promtool_reads_the_configuration_and_rules() {
        let Ok(version) = std::process::Command::new("promtool").arg("--version").output() else {
            assert!(std::env::var("PANGEA_MONITORING_REQUIRED").as_deref() != Ok("1"), "CI has promtool");
            eprintln!("skipped: no promtool here (Debian's prometheus package)");
            return;
        };
        assert!(version.status.success());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), prometheus_config(&template(), &nodes())).unwrap();
        std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
        let checked = std::process::Command::new("promtool")
            .args(["check", "config", "--syntax-only"])
            .arg(dir.path().join("prometheus.yml"))
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
        assert!(checked.status.success(), "{said}");
        let rules = std::process::Command::new("promtool")
            .args(["check", "rules"])
            .arg(dir.path().join("rules.yml"))
            .output()
            .unwrap();
        assert!(rules.status.success(), "{}", String::from_utf8_lossy(&rules.stdout));
    }
}
