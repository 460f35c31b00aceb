//! A real Prometheus (Debian's `prometheus`) of the test's own, scraping a real node_exporter
//! (`prometheus-node-exporter`), the API server and its etcd every second, and sending two test
//! alerts to a real Alertmanager (`prometheus-alertmanager`): `NodeExporterUp` fires at once,
//! `NodeExporterUpForAnHour` stays pending. Where they are not installed the test says so in one
//! line and is skipped, unless `PANGEA_MONITORING_REQUIRED=1` (as in CI, whose setup installs
//! them).

use super::free_port;
use super::kube::Kube;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Monitor {
    pub url: String,
    pub alertmanager_url: String,
    /// node_exporter's `host:port`, its `instance` label.
    pub node_exporter: String,
    prometheus: Child,
    exporter: Child,
    alertmanager: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for child in [&mut self.prometheus, &mut self.exporter, &mut self.alertmanager] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn installed(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn wait_for(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = std::net::TcpStream::connect(url.trim_start_matches("http://").split('/').next().unwrap()).is_ok();
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not start listening at {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts node_exporter and a Prometheus scraping it, `kube`'s API server and its etcd.
pub fn start(kube: &Kube) -> Option<Monitor> {
    start_scraping(kube, std::slice::from_ref(&kube.etcd_url))
}

/// As [`start`], with these etcd members scraped instead of `kube`'s.
/// Whether Debian's Prometheus, node_exporter and Alertmanager are installed; if not, the test
/// skips with one line (or fails, with `PANGEA_MONITORING_REQUIRED=1`).
pub fn installed_here() -> bool {
    if !["prometheus", "prometheus-node-exporter", "prometheus-alertmanager"].iter().all(|p| installed(p)) {
        assert!(
            std::env::var("PANGEA_MONITORING_REQUIRED").as_deref() != Ok("1"),
            "PANGEA_MONITORING_REQUIRED=1 but prometheus, prometheus-node-exporter or prometheus-alertmanager is missing"
        );
        eprintln!(
            "skipped: no prometheus, prometheus-node-exporter and prometheus-alertmanager here (apt-get install them)"
        );
        return false;
    }
    true
}

pub fn start_scraping(kube: &Kube, etcd_urls: &[String]) -> Option<Monitor> {
    if !installed_here() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let exporter_address = format!("127.0.0.1:{}", free_port());
    let exporter = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address={exporter_address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, &kube.admin_token).unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &kube.ca_pem).unwrap();
    let alertmanager_address = format!("127.0.0.1:{}", free_port());
    std::fs::write(dir.path().join("alertmanager.yml"), "route: {receiver: none}\nreceivers: [{name: none}]\n")
        .unwrap();
    let alertmanager = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", dir.path().join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", dir.path().join("alertmanager").display()))
        .arg(format!("--web.listen-address={alertmanager_address}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("alertmanager.log")).unwrap()))
        .spawn()
        .unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"groups:
- name: pangea-test
  rules:
  - alert: NodeExporterUp
    expr: up{job="node"} == 1
    labels: {severity: warning}
    annotations: {summary: 'node_exporter on {{ $labels.instance }} answers'}
  - alert: NodeExporterUpForAnHour
    expr: up{job="node"} == 1
    for: 1h
    labels: {severity: info}
"#,
    )
    .unwrap();
    let api = kube.url.trim_start_matches("https://");
    let etcd =
        etcd_urls.iter().map(|u| format!("'{}'", u.trim_start_matches("http://"))).collect::<Vec<_>>().join(", ");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: ['{}']\n\
         alerting: {{alertmanagers: [{{static_configs: [{{targets: ['{alertmanager_address}']}}]}}]}}\n\
         scrape_configs:\n\
         - job_name: node\n  static_configs: [{{targets: ['{exporter_address}']}}]\n\
         - job_name: apiserver\n  scheme: https\n  tls_config: {{ca_file: '{}'}}\n  \
           authorization: {{credentials_file: '{}'}}\n  static_configs: [{{targets: ['{api}']}}]\n\
         - job_name: etcd\n  static_configs: [{{targets: [{etcd}]}}]\n",
        rules.display(),
        ca.display(),
        token.display()
    );
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.external-url={url}"))
        .arg("--rules.alert.resend-delay=1s")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("prometheus.log")).unwrap()))
        .spawn()
        .unwrap();
    wait_for(&exporter_address, "node_exporter");
    wait_for(&url, "Prometheus");
    wait_for(&alertmanager_address, "Alertmanager");
    Some(Monitor {
        url,
        alertmanager_url: format!("http://{alertmanager_address}"),
        node_exporter: exporter_address,
        prometheus,
        exporter,
        alertmanager,
        _dir: dir,
    })
}

impl Monitor {
    /// Stops Prometheus, as when it goes down.
    pub fn stop_prometheus(&mut self) {
        let _ = self.prometheus.kill();
        let _ = self.prometheus.wait();
    }

    /// A range query straight to Prometheus: each series' (time, value) points.
    pub async fn range(&self, query: &str, start: i64, end: i64, step: u32) -> Vec<Vec<(i64, f64)>> {
        let answer: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query_range", self.url))
            .query(&[
                ("query", query),
                ("start", &start.to_string()),
                ("end", &end.to_string()),
                ("step", &step.to_string()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "success", "{answer}");
        answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|series| {
                series["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| (v[0].as_f64().unwrap() as i64, v[1].as_str().unwrap().parse::<f64>().unwrap()))
                    .collect()
            })
            .collect()
    }
}

/// Three real etcd members (`etcd-lite` from `../shared/tools`) on loopback, one cluster.
pub struct EtcdCluster {
    /// Each member's client URL, which also serves its metrics.
    pub urls: Vec<String>,
    members: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for child in self.members.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl EtcdCluster {
    pub fn start(tools: &std::path::Path) -> EtcdCluster {
        let dir = tempfile::tempdir().unwrap();
        let names = ["a", "b", "c"];
        let ports: Vec<(u16, u16)> = names.iter().map(|_| (free_port(), free_port())).collect();
        let initial = names
            .iter()
            .zip(&ports)
            .map(|(name, (_, peer))| format!("{name}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let members = names
            .iter()
            .zip(&ports)
            .map(|(name, (client, peer))| {
                Some(
                    Command::new(tools.join("etcd-lite"))
                        .args(["--name", name])
                        .arg("--data-dir")
                        .arg(dir.path().join(name))
                        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                        .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
                        .arg(format!("--initial-cluster={initial}"))
                        .stdout(Stdio::null())
                        .stderr(Stdio::from(std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap()))
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        let urls: Vec<String> = ports.iter().map(|(client, _)| format!("http://127.0.0.1:{client}")).collect();
        for url in &urls {
            wait_for(url, "an etcd member");
        }
        EtcdCluster { urls, members, _dir: dir }
    }

    /// Kills one member, as when its machine dies.
    pub fn kill(&mut self, member: usize) {
        if let Some(mut child) = self.members[member].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Prometheus that lets in only those who sign in as its web config says (Prometheus'
/// `--web.config.file`: basic-auth users, TLS with client certificates). It scrapes nothing.
pub struct GuardedPrometheus {
    pub url: String,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for GuardedPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a Prometheus behind `web_config` (YAML; `DIR` in it is replaced by the Prometheus'
/// own directory, where `files` are written first); `https` says whether it serves TLS.
pub fn guarded_prometheus(web_config: &str, files: &[(&str, &str)], https: bool) -> GuardedPrometheus {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config.replace("DIR", &dir.path().display().to_string())).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {scrape_interval: 1s}\nscrape_configs: []\n").unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.config.file={}", web.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("prometheus.log")).unwrap()))
        .spawn()
        .unwrap();
    let url = format!("{}://127.0.0.1:{port}", if https { "https" } else { "http" });
    // It answers /-/ready only to those it lets in: its log says when it is ready.
    let log = dir.path().join("prometheus.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("Server is ready to receive web requests") {
        assert!(Instant::now() < deadline, "Prometheus did not get ready: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    GuardedPrometheus { url, child, dir }
}

/// A bcrypt hash of `password`, as Prometheus' basic-auth users are written (Python's crypt).
pub fn bcrypt(password: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024)))",
        ])
        .arg(password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
