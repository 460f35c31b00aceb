//! A real Kubernetes API server for cluster tests: the one `.ci/test` started (its `KUBE_*`
//! variables), or one of the test's own from `../shared/tools` (or `PANGEA_TEST_KUBE_BIN`).
//! Where neither exists (a fresh machine) the test says so in one line and is skipped, unless
//! `PANGEA_KUBE_REQUIRED=1` (as in CI).

use app::access::{ConsoleRole, Identity, Principal};
use app::clusters::{ClusterInput, Credential};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Kube {
    pub url: String,
    pub ca_pem: String,
    pub admin_token: String,
    pub pangea_token: String,
    pub viewer_token: String,
    pub audit_log: PathBuf,
    pub kubeconfig: PathBuf,
    /// etcd's client URL, which also serves its metrics.
    pub etcd_url: String,
    /// The folder of a control plane this test started, stopped on drop.
    own: Option<(PathBuf, tempfile::TempDir)>,
}

impl Drop for Kube {
    fn drop(&mut self) {
        if let Some((tools, dir)) = &self.own {
            let kube = dir.path().join("kube");
            let _ = std::process::Command::new(tools.join("kube-down")).arg(&kube).output();
            // An API server whose etcd went first may hang in its graceful shutdown: end it.
            for pid in ["apiserver.pid", "etcd.pid"].iter().filter_map(|f| std::fs::read_to_string(kube.join(f)).ok()) {
                let _ = std::process::Command::new("kill").args(["-9", pid.trim()]).output();
            }
        }
    }
}

/// Where the binaries are, if anywhere.
pub fn tools() -> Option<PathBuf> {
    let dir = std::env::var_os("PANGEA_TEST_KUBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools"));
    dir.join("kube-apiserver").exists().then_some(dir)
}

fn missing() -> Option<Kube> {
    assert!(
        std::env::var("PANGEA_KUBE_REQUIRED").as_deref() != Ok("1"),
        "PANGEA_KUBE_REQUIRED=1 but there is no kube-apiserver in ../shared/tools or PANGEA_TEST_KUBE_BIN"
    );
    eprintln!("skipped: no kube-apiserver here (../shared/tools or PANGEA_TEST_KUBE_BIN)");
    None
}

fn from_vars(get: impl Fn(&str) -> Option<String>) -> Option<Kube> {
    let ca = get("KUBE_CA")?;
    Some(Kube {
        url: get("KUBE_URL")?,
        ca_pem: std::fs::read_to_string(ca).ok()?,
        admin_token: get("KUBE_ADMIN_TOKEN")?,
        pangea_token: get("KUBE_PANGEA_TOKEN")?,
        viewer_token: get("KUBE_VIEWER_TOKEN")?,
        audit_log: get("KUBE_AUDIT_LOG")?.into(),
        kubeconfig: get("KUBECONFIG")?.into(),
        etcd_url: get("KUBE_ETCD_URL")?,
        own: None,
    })
}

/// The API server `.ci/test` started, else one of this test's own.
pub fn shared() -> Option<Kube> {
    from_vars(|k| std::env::var(k).ok()).or_else(own)
}

/// A control plane of this test's own (for tests that stop and restart it).
pub fn own() -> Option<Kube> {
    let Some(tools) = tools() else { return missing() };
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tools.join("kube-up")).arg(dir.path().join("kube")).output().unwrap();
    assert!(out.status.success(), "kube-up failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let vars: std::collections::HashMap<String, String> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut kube = from_vars(|k| vars.get(k).cloned()).expect("kube-up printed its variables");
    kube.own = Some((tools, dir));
    Some(kube)
}

impl Kube {
    /// A kube client as the cluster's admin (`system:masters`), for what a test sets up.
    pub async fn admin(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes());
        use rustls::pki_types::pem::PemObject;
        config.root_cert = Some(certs.map(|c| c.unwrap().to_vec()).collect());
        config.auth_info.token = Some(self.admin_token.clone().into());
        kube::Client::try_from(config).unwrap()
    }

    /// The folder of this test's own control plane.
    pub fn dir(&self) -> Option<PathBuf> {
        self.own.as_ref().map(|(_, d)| d.path().join("kube"))
    }

    /// `kubectl` against this API server as admin.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let tools = tools().expect("kubectl");
        std::process::Command::new(tools.join("kubectl"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    /// The audit log's records, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

pub fn input(kube: &Kube, name: &str, token: &str) -> ClusterInput {
    ClusterInput {
        name: name.into(),
        api_url: kube.url.clone(),
        ca_pem: kube.ca_pem.clone(),
        credential: Some(Credential::Token { token: token.into() }),
        ..Default::default()
    }
}

/// A name no other test (or earlier run on the shared API server) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

pub fn person(username: &str, groups: &[&str], role: ConsoleRole) -> Principal {
    Principal {
        identity: Identity::Oidc {
            // Each person their own id: jobs belong to a user by id.
            user_id: username.bytes().map(i64::from).sum(),
            username: username.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            groups_note: None,
        },
        role: Some(role),
        cluster_roles: Default::default(),
        ip: None,
        user_agent: None,
    }
}

/// Waits (up to 45 s) until `check` holds; the store is fed by a watch, so what a test wrote
/// arrives a moment later. (Charts end at the last whole step, so a Prometheus started by the
/// test shows its first samples up to a 15 s step plus its start-up later; on a loaded machine
/// that came near 20 s.)
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(45), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
