//! Benchmark: one cluster of 5,000 nodes and 150,000 pods in a real kube-apiserver (from
//! `../shared/tools`, started here and torn down after). It prints:
//! - the time from registering the cluster to its first complete stores;
//! - the time to answer the nodes page and a filtered pods page (p50/p95, 200 requests each,
//!   through the real router on loopback);
//! - the time from a node label change (as `kubectl label node` makes it) to the `changed`
//!   event on an open live stream (p99 of 100);
//! - the process's resident memory before registering and with the complete stores;
//! - with `PANGEA_BENCH_POSTGRES_URL` (an admin URL), three `pangea serve` processes on a fresh
//!   PostgreSQL database, each watching the cluster: time to complete stores, RSS, nodes page.
//!
//! Run it with:
//!
//!     cargo bench -p server --bench clusters
//!     PANGEA_BENCH_NODES=500 PANGEA_BENCH_PODS=15000 cargo bench -p server --bench clusters   # smaller
//!
//! Goals (issue 9): page server time < 100 ms p95, change-to-browser < 1 s p99, RSS < 1 GiB.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use secrecy::SecretString;
use serde_json::json;
use std::time::{Duration, Instant};

mod support;

const CONCURRENCY: usize = 16;
const NAMESPACES: usize = 100;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn run_all<F, Fut>(n: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(0..n).map(make).buffer_unordered(CONCURRENCY).collect::<Vec<()>>().await;
}

async fn timed_gets(http: &reqwest::Client, url: &str, token: &str, n: usize) -> (Duration, Duration, u64) {
    let mut times = Vec::with_capacity(n);
    let mut total = 0;
    for _ in 0..n {
        let start = Instant::now();
        let res = http.get(url).bearer_auth(token).send().await.expect("get");
        assert!(res.status().is_success(), "{url}: {}", res.status());
        let page: serde_json::Value = res.json().await.expect("json");
        times.push(start.elapsed());
        total = page["total"].as_u64().unwrap_or(0);
    }
    times.sort();
    (support::percentile(&times, 0.5), support::percentile(&times, 0.95), total)
}

/// `n` `pangea serve` processes on one PostgreSQL database where the cluster is registered
/// (through the command line, as an operator would): each keeps watch caches of its own. Prints,
/// per replica, the time from its start to its complete stores, its RSS with them, and its nodes
/// page p50/p95.
async fn replicas_watching(n: usize, url: &SecretString, vars: &std::collections::HashMap<String, String>) {
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str], envs: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pangea"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("PANGEA_DATABASE_URL", url.expose_secret())
            .envs(envs.iter().copied())
            .output()
            .expect("pangea");
        assert!(out.status.success(), "pangea {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let token = cli(&["token", "create", "--name", "bench", "--role", "admin"], &[]);
    let token = token.lines().last().expect("token").trim().to_string();
    cli(
        &["cluster", "add", "big", "--server", &vars["KUBE_URL"], "--ca-file", &vars["KUBE_CA"]],
        &[("PANGEA_CLUSTER_TOKEN", &vars["KUBE_PANGEA_TOKEN"])],
    );
    let started = Instant::now();
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(support::Replica::start(url, dir.path(), &[]).await);
    }
    let http = reqwest::Client::new();
    let mut live_after = Vec::new();
    for r in &replicas {
        loop {
            let c: serde_json::Value = match http
                .get(format!("http://127.0.0.1:{}/api/v1/clusters/big", r.console))
                .bearer_auth(&token)
                .send()
                .await
            {
                Ok(res) => res.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            if c["health"]["connection"]["state"] == "live" {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "replica stores not complete in 10 minutes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        live_after.push(started.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("\n{n} replicas (processes) on PostgreSQL, each watching the cluster:\n");
    println!("| replica | complete stores after its start | RSS | nodes page p50 / p95 |");
    println!("| --- | --- | --- | --- |");
    for (i, (r, live)) in replicas.iter().zip(&live_after).enumerate() {
        let rss = support::rss_mib_of(&r.child.id().to_string());
        let (p50, p95, _) =
            timed_gets(&http, &format!("http://127.0.0.1:{}/api/v1/nodes?cluster=big", r.console), &token, 200).await;
        println!("| {} | {:.1} s | {rss:.0} MiB | {} / {} |", i + 1, live.as_secs_f64(), ms(p50), ms(p95));
    }
}

#[tokio::main]
async fn main() {
    let tools = std::env::var_os("PANGEA_TEST_KUBE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools"));
    if !tools.join("kube-up").exists() {
        println!("skipped: no kube-apiserver here (../shared/tools or PANGEA_TEST_KUBE_BIN)");
        return;
    }
    let (nodes_n, pods_n) = (
        count("PANGEA_BENCH_NODES", support::sized(5_000, 20)),
        count("PANGEA_BENCH_PODS", support::sized(150_000, 100)),
    );
    let work = tempfile::tempdir().expect("tempdir");
    let kube_dir = work.path().join("kube");
    let out = std::process::Command::new(tools.join("kube-up")).arg(&kube_dir).output().expect("kube-up");
    assert!(out.status.success(), "kube-up: {}", String::from_utf8_lossy(&out.stderr));
    let vars: std::collections::HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let ca_pem = std::fs::read_to_string(&vars["KUBE_CA"]).expect("ca");
    let mut config = kube::Config::new(vars["KUBE_URL"].parse().expect("url"));
    {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes());
        config.root_cert = Some(certs.map(|c| c.expect("pem").to_vec()).collect());
    }
    config.auth_info.token = Some(vars["KUBE_ADMIN_TOKEN"].clone().into());
    let admin = kube::Client::try_from(config).expect("client");

    // The cluster: namespaces (with their default service account), Ready nodes, pods on them.
    let started = Instant::now();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    run_all(NAMESPACES, |i| {
        let (namespaces, admin) = (namespaces.clone(), admin.clone());
        async move {
            let name = format!("ns-{i:03}");
            let ns = serde_json::from_value(json!({ "metadata": { "name": name } })).expect("ns");
            namespaces.create(&PostParams::default(), &ns).await.expect("namespace");
            let accounts: Api<ServiceAccount> = Api::namespaced(admin, &name);
            let account = serde_json::from_value(json!({ "metadata": { "name": "default" } })).expect("sa");
            accounts.create(&PostParams::default(), &account).await.expect("service account");
        }
    })
    .await;
    let nodes: Api<Node> = Api::all(admin.clone());
    run_all(nodes_n, |i| {
        let nodes = nodes.clone();
        async move {
            let name = format!("node-{i:05}");
            let role = if i % 100 == 0 { "control-plane" } else { "worker" };
            let node = serde_json::from_value(json!({ "metadata": { "name": name,
                "labels": { format!("node-role.kubernetes.io/{role}"): "", "rack": format!("r{}", i % 40) } } }))
            .expect("node");
            nodes.create(&PostParams::default(), &node).await.expect("node");
            let status = json!({ "status": {
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "",
                    "lastHeartbeatTime": "2026-11-30T00:00:00Z", "lastTransitionTime": "2026-11-30T00:00:00Z" }],
                "addresses": [{ "type": "InternalIP", "address": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256) }],
                "capacity": { "cpu": "32", "memory": "128Gi", "pods": "110" },
                "nodeInfo": { "machineID": "m", "systemUUID": format!("00000000-0000-4000-8000-{i:012}"), "bootID": "b",
                    "kernelVersion": "6.1", "osImage": "Flatcar", "containerRuntimeVersion": "containerd://2.0",
                    "kubeletVersion": "v1.36.2", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64" } } });
            nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await.expect("node status");
        }
    })
    .await;
    run_all(pods_n, |i| {
        let admin = admin.clone();
        async move {
            let pods: Api<Pod> = Api::namespaced(admin, &format!("ns-{:03}", i % NAMESPACES));
            let pod = serde_json::from_value(json!({
                "metadata": { "name": format!("pod-{i:06}"), "labels": { "app": format!("app-{}", i % 50) } },
                "spec": { "nodeName": format!("node-{:05}", i % nodes_n), "automountServiceAccountToken": false,
                          "containers": [{ "name": "c", "image": "registry.example/app:1" }] } }))
            .expect("pod");
            pods.create(&PostParams::default(), &pod).await.expect("pod");
        }
    })
    .await;
    println!(
        "cluster: {nodes_n} nodes, {pods_n} pods in {NAMESPACES} namespaces, created in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // Pangea, registering the cluster as Pangea's own identity.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SecretString::from(format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()));
    let (url, token, _state) = support::serve(db, dir.path()).await;
    let http = reqwest::Client::new();
    let rss_before = support::rss_mib();
    let registered = Instant::now();
    let res = http
        .post(format!("{url}/api/v1/clusters"))
        .bearer_auth(&token)
        .json(&json!({ "name": "big", "api_url": vars["KUBE_URL"], "ca_pem": ca_pem,
                       "credential": { "kind": "token", "token": vars["KUBE_PANGEA_TOKEN"] } }))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap_or_default());
    loop {
        let c: serde_json::Value = http
            .get(format!("{url}/api/v1/clusters/big"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if c["health"]["connection"]["state"] == "live" {
            break;
        }
        assert!(registered.elapsed() < Duration::from_secs(600), "the stores did not complete in 10 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_complete = registered.elapsed();
    // Let the allocator settle, as a running server would be measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = support::rss_mib();

    let (nodes_p50, nodes_p95, nodes_total) =
        timed_gets(&http, &format!("{url}/api/v1/nodes?cluster=big"), &token, 200).await;
    let (pods_p50, pods_p95, pods_total) = timed_gets(
        &http,
        &format!("{url}/api/v1/clusters/big/pods?namespace=ns-007&selector=app%3Dapp-7&phase=Pending"),
        &token,
        200,
    )
    .await;

    // Change to stream: label a node, wait for `changed`.
    let mut stream =
        http.get(format!("{url}/api/v1/clusters/big/live")).bearer_auth(&token).send().await.expect("live");
    // The stream's first event comes at once.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await;
    let mut delays = Vec::new();
    for i in 0..100 {
        let patch = json!({ "metadata": { "labels": { "bench": format!("v{i}") } } });
        let sent = Instant::now();
        nodes
            .patch(&format!("node-{:05}", i % nodes_n), &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("label");
        loop {
            let chunk =
                tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.expect("a change").expect("stream");
            if chunk.is_some_and(|c| String::from_utf8_lossy(&c).contains("event: changed")) {
                break;
            }
        }
        delays.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    delays.sort();

    println!("\n| measure | value | goal |");
    println!("| --- | --- | --- |");
    println!("| first complete stores | {:.1} s | |", first_complete.as_secs_f64());
    println!(
        "| nodes page ({nodes_total} nodes, first 50) | p50 {} / p95 {} | p95 < 100 ms |",
        ms(nodes_p50),
        ms(nodes_p95)
    );
    println!(
        "| filtered pods page ({pods_total} match) | p50 {} / p95 {} | p95 < 100 ms |",
        ms(pods_p50),
        ms(pods_p95)
    );
    println!(
        "| label change to live stream | p50 {} / p99 {} | p99 < 1 s |",
        ms(support::percentile(&delays, 0.5)),
        ms(support::percentile(&delays, 0.99))
    );
    println!("| RSS before / with the stores | {rss_before:.0} / {rss_after:.0} MiB | < 1 GiB |");

    if let Some(database) = support::PostgresDatabase::create().await {
        replicas_watching(3, &database.url, &vars).await;
        database.drop().await;
    } else {
        println!("\nreplicas: skipped (set PANGEA_BENCH_POSTGRES_URL to include them)");
    }

    let _ = std::process::Command::new(tools.join("kube-down")).arg(&kube_dir).output();
    // An API server whose etcd went first may hang in its graceful shutdown: end it.
    for pid in ["apiserver.pid", "etcd.pid"].iter().filter_map(|f| std::fs::read_to_string(kube_dir.join(f)).ok()) {
        let _ = std::process::Command::new("kill").args(["-9", pid.trim()]).output();
    }
}
