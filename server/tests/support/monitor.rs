//! A real Prometheus (Debian's `prometheus`) of the test's own, scraping a real node_exporter
//! (`prometheus-node-exporter`), the API server and its etcd every second. Where Prometheus is
//! not installed the test says so in one line and is skipped, unless
//! `PANGEA_MONITORING_REQUIRED=1` (as in CI, whose setup installs it).

use super::kube::Kube;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Monitor {
    pub url: String,
    /// node_exporter's `host:port`, its `instance` label.
    pub node_exporter: String,
    prometheus: Child,
    exporter: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for child in [&mut self.prometheus, &mut self.exporter] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn installed(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
    if !installed("prometheus") || !installed("prometheus-node-exporter") {
        assert!(
            std::env::var("PANGEA_MONITORING_REQUIRED").as_deref() != Ok("1"),
            "PANGEA_MONITORING_REQUIRED=1 but prometheus or prometheus-node-exporter is not installed"
        );
        eprintln!("skipped: no prometheus and prometheus-node-exporter here (apt-get install them)");
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
    let api = kube.url.trim_start_matches("https://");
    let etcd = kube.etcd_url.trim_start_matches("http://");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         scrape_configs:\n\
         - job_name: node\n  static_configs: [{{targets: ['{exporter_address}']}}]\n\
         - job_name: apiserver\n  scheme: https\n  tls_config: {{ca_file: '{}'}}\n  \
           authorization: {{credentials_file: '{}'}}\n  static_configs: [{{targets: ['{api}']}}]\n\
         - job_name: etcd\n  static_configs: [{{targets: ['{etcd}']}}]\n",
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
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("prometheus.log")).unwrap()))
        .spawn()
        .unwrap();
    wait_for(&exporter_address, "node_exporter");
    wait_for(&url, "Prometheus");
    Some(Monitor { url, node_exporter: exporter_address, prometheus, exporter, _dir: dir })
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
