//! Benchmark: the boot listener under load, as Matchbox was measured. For 1,000, 10,000 and
//! 100,000 groups (one MAC each, plus the reference profiles and templates), `wrk` (Debian's, 2
//! threads, 64 connections, 5 s) asks `/ipxe` and `/ignition` for random MACs of the set and
//! prints requests per second and p50/p99 latency, on SQLite and PostgreSQL.
//!
//!     cargo bench -p server --bench boot                  # SQLite only, boot events on
//!     PANGEA_BENCH_BOOT_EVENTS=off cargo bench -p server --bench boot   # events queued, never written
//!     PANGEA_BENCH_POSTGRES_URL=postgres://app@127.0.0.1:PORT/postgres \
//!         cargo bench -p server --bench boot              # both backends
//!
//! `PANGEA_BENCH_CONNECTIONS=8` runs the in-process storms with 8 connections instead of 64
//! (each answer waits for its event's transaction: fewer machines asking at once see shorter
//! waits).
//!
//! On PostgreSQL it then serves that catalog from one, then three `pangea serve` processes on
//! the one database, each under its own wrk (issue 26's capacity figures, docs/scaling.md).
//!
//! Goals (issue 7): at 1,000 groups at least 2,400 req/s on `/ipxe` (100× Matchbox's 24 req/s
//! here) with p99 under 10 ms; at 100,000 groups no more than 20% slower than at 1,000.

use app::access::Principal;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

mod support;

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/matchbox/data");

/// The reference profiles and templates, and the groups `node-N` for N in `from..to`, each with
/// MAC 52:54:HH:HH:HH:HH of N.
fn catalog_files(from: u32, to: u32) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for dir in ["profiles", "ignition", "generic"] {
        for entry in std::fs::read_dir(Path::new(REFERENCE).join(dir)).expect("reference data") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(format!("{dir}/{name}"), std::fs::read_to_string(entry.path()).expect("read"));
        }
    }
    for i in from..to {
        let id = format!("node-{i:06}");
        let role = if i % 50 == 0 { "controller" } else { "worker" };
        let group = serde_json::json!({
            "id": id, "profile": role,
            "selector": {"mac": mac(i)},
            "metadata": {"hostname": format!("{id}.example.com"), "role": role, "index": i},
        });
        files.insert(format!("groups/{id}.json"), group.to_string());
    }
    files
}

fn mac(i: u32) -> String {
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

/// A wrk script asking `path?mac=…` for a random MAC of groups `first..=last`.
fn wrk_script(path: &str, first: u32, last: u32) -> String {
    format!(
        "math.randomseed(7)\nrequest = function()\n  local i = math.random({first}, {last})\n  \
         local mac = string.format('52:54:%02x:%02x:%02x:%02x', math.floor(i / 16777216) % 256, \
         math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)\n  \
         return wrk.format('GET', '{path}?mac=' .. mac)\nend\n"
    )
}

/// `(requests per second, p50, p99)` from wrk's `--latency` report.
fn parse_wrk(report: &str) -> Option<(f64, String, String)> {
    let value = |prefix: &str| {
        report
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    Some((value("Requests/sec:")?.parse().ok()?, value("50%")?, value("99%")?))
}

async fn run(name: &str, url: SecretString) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, _, state) = support::serve(url, dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let boot = listener.local_addr().expect("address");
    let router = pangea::routes::boot_router(state.clone());
    // Boot events on, as `pangea serve` runs: every request is queued and written in batches.
    // PANGEA_BENCH_BOOT_EVENTS=off leaves the writer off (requests are only queued), to compare.
    if std::env::var("PANGEA_BENCH_BOOT_EVENTS").as_deref() != Ok("off") {
        state.provisioner.record_boots(&state.background);
    }
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.expect("serve")
    });
    let cli = Principal::cli();
    let mut loaded = 0;
    for groups in support::sized(vec![1_000, 10_000, 100_000], vec![100]) {
        // Each size adds the groups the previous one lacked, in one import.
        let files = catalog_files(loaded, groups);
        let plan = pangea::provisioner::import::plan_files("bench", &files);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors.first());
        let started = Instant::now();
        state.provisioner.import(&cli, &plan).await.expect("import");
        println!(
            "\n{name}: {groups} groups: import of {} files and index rebuild {:.2?}",
            files.len(),
            started.elapsed()
        );
        loaded = groups;
        assert_eq!(state.provisioner.index().group_count() as u32, groups);
        for path in ["/ipxe", "/ignition"] {
            // What wrk will ask for is served, and is what it should be.
            let sample = reqwest::get(format!("http://{boot}{path}?mac={}", mac(groups - 1))).await.expect("sample");
            assert_eq!(sample.status(), 200, "{path}");
            let body = sample.text().await.expect("body");
            assert!(
                body.contains("/assets/vmlinuz") || body.contains(&format!("node-{:06}.example.com", groups - 1)),
                "{body}"
            );
            let script = dir.path().join("random-mac.lua");
            std::fs::write(&script, wrk_script(path, 0, groups - 1)).expect("script");
            let target = format!("http://{boot}");
            let connections = format!("-c{}", std::env::var("PANGEA_BENCH_CONNECTIONS").as_deref().unwrap_or("64"));
            let (stored_before, storm) = (state.provisioner.boots.stored(), Instant::now());
            // wrk runs beside the server's runtime, never on one of its workers.
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("wrk")
                    .args(["-t2", &connections, support::sized("-d5s", "-d1s"), "--latency", "-s"])
                    .arg(&script)
                    .arg(target)
                    .output()
            })
            .await
            .expect("join")
            .expect("wrk (Debian package wrk) must be installed");
            let report = String::from_utf8_lossy(&out.stdout);
            // A script wrk cannot run makes it fetch the bare URL (`/`) instead: figures of nothing.
            let complaints = String::from_utf8_lossy(&out.stderr);
            assert!(complaints.trim().is_empty(), "wrk could not run the request script: {complaints}");
            match parse_wrk(&report) {
                Some((rps, p50, p99)) => {
                    println!("{name}: {groups:>6} groups {path:<9} {rps:>9.0} req/s   p50 {p50:>8}   p99 {p99:>8}")
                }
                None => println!("{name}: wrk gave no figures: {report}{}", String::from_utf8_lossy(&out.stderr)),
            }
            if report.contains("Non-2xx") {
                println!("{name}: WARNING: some answers were not 200: {report}");
            }
            // The event writer after the storm: what it still had to write, and how fast it wrote.
            let (backlog, drain) = (state.provisioner.boots.backlog(), Instant::now());
            while state.provisioner.boots.backlog() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let stored = state.provisioner.boots.stored() - stored_before;
            println!(
                "{name}: {groups:>6} groups {path:<9} writer: {stored} events stored, {:.0}/s over the storm and its \
                 drain; backlog after the storm {backlog}, written in {:.2?}",
                stored as f64 / storm.elapsed().as_secs_f64(),
                drain.elapsed()
            );
        }
        let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM boot_events")
            .fetch_one(state.db.pool())
            .await
            .expect("count boot events");
        println!(
            "{name}: boot events so far: {written} kept (bounded per machine), {} not recorded (queue full, or unknown MACs beyond the discovered limit)",
            state.provisioner.boots.dropped()
        );
    }
}

/// `pangea serve` (the binary) on `url` under the same storm of random MACs, then SIGTERM in
/// the middle of it: how long until it exits, and what it says it could not store.
async fn stopped_in_a_storm(name: &str, url: &secrecy::SecretString) {
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().expect("tempdir");
    let free = || std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let (console, boot) = (free(), free());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pangea"))
        .args(["serve", "--log-format", "json", "--listen", &format!("127.0.0.1:{console}")])
        .args(["--boot-listen", &format!("127.0.0.1:{boot}"), "--boot-requests-per-address", "0"])
        .args(["--boot-requests-per-mac", "0", "--data-dir"])
        .arg(dir.path())
        .env("PANGEA_DATABASE_URL", url.expose_secret())
        .env("PANGEA_BOOTSTRAP_PASSWORD", "bench-password")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pangea serve");
    // Its log is read as it comes (a line a request), or the pipe fills and it blocks.
    let stdout = child.stdout.take().expect("stdout");
    let log = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let ready = Instant::now();
    while reqwest::get(format!("http://127.0.0.1:{console}/readyz")).await.is_err() {
        assert!(ready.elapsed().as_secs() < 60, "pangea serve did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let script = dir.path().join("random-mac.lua");
    std::fs::write(&script, wrk_script("/ipxe", 0, 99_999)).expect("script");
    let storm = std::process::Command::new("wrk")
        .args(["-t2", "-c64", support::sized("-d4s", "-d2s"), "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{boot}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("wrk");
    tokio::time::sleep(support::sized(std::time::Duration::from_secs(2), std::time::Duration::from_secs(1))).await;
    let stopping = Instant::now();
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.expect("join");
    let took = stopping.elapsed();
    let log = log.join().expect("log");
    let _ = tokio::task::spawn_blocking(move || storm.wait_with_output()).await;
    assert!(exit.expect("wait").success(), "pangea serve did not stop cleanly");
    let lost: u64 = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("boot events were not stored")))
        .filter_map(|l| l["events"].as_u64())
        .sum();
    println!(
        "\n{name}: SIGTERM in a storm of random MACs: exited after {took:.2?}; {lost} queued events logged as lost"
    );
}

/// `n` `pangea serve` processes on `url` (PostgreSQL) with the secret key in `key_dir`, each
/// under its own wrk (1 thread, 32 connections) asking `/ipxe` for random MACs of 10,000 groups
/// at once: the requests per second of all, the worst p99, the events written, each replica's
/// RSS and the database connections they hold.
async fn replicas_in_a_storm(n: usize, url: &SecretString, key_dir: &Path, state: &pangea::AppState) {
    let limits_off = ["--boot-requests-per-address", "0", "--boot-requests-per-mac", "0"];
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(support::Replica::start(url, key_dir, &limits_off).await);
    }
    for r in &replicas {
        let ready = Instant::now();
        while !reqwest::get(format!("http://127.0.0.1:{}/readyz", r.console)).await.is_ok_and(|r| r.status() == 200) {
            assert!(ready.elapsed().as_secs() < 60, "pangea serve did not start");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let count = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM boot_events").fetch_one(state.db.pool()).await.expect("count")
    };
    let size = async || -> i64 {
        sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(state.db.pool())
            .await
            .expect("size")
    };
    let (events_before, size_before, storm) = (count().await, size().await, Instant::now());
    let storms: Vec<_> = replicas
        .iter()
        .map(|r| {
            let script = r.dir.path().join("random-mac.lua");
            // MACs the storms before asked little of (most of the full-size catalog's 100,000
            // groups), so no machine reaches its bound of kept events and the growth of the count
            // is what was written.
            let (first, last) = support::sized((50_000, 59_999), (0, 99));
            std::fs::write(&script, wrk_script("/ipxe", first, last)).expect("script");
            std::process::Command::new("wrk")
                .args(["-t1", "-c32", support::sized("-d5s", "-d1s"), "--latency", "-s"])
                .arg(&script)
                .arg(format!("http://127.0.0.1:{}", r.boot))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("wrk")
        })
        .collect();
    let reports = tokio::task::spawn_blocking(move || {
        storms.into_iter().map(|s| String::from_utf8_lossy(&s.wait_with_output().expect("wrk").stdout).into_owned())
    })
    .await
    .expect("join")
    .collect::<Vec<_>>();
    let connections: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()")
            .fetch_one(state.db.pool())
            .await
            .expect("connections");
    let rss: Vec<String> =
        replicas.iter().map(|r| format!("{:.0}", support::rss_mib_of(&r.child.id().to_string()))).collect();
    // The writers' queues empty, then the rate of the storm and its drain.
    let mut last = count().await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = count().await;
        if now == last {
            break;
        }
        last = now;
    }
    let grew = size().await - size_before;
    println!(
        "postgres: the database grew {:.1} MiB for {} events: {:.0} bytes an event, indexes included",
        grew as f64 / 1048576.0,
        last - events_before,
        grew as f64 / (last - events_before).max(1) as f64
    );
    let figures: Vec<_> = reports.iter().filter_map(|r| parse_wrk(r)).collect();
    assert_eq!(figures.len(), n, "wrk gave no figures: {reports:?}");
    let total: f64 = figures.iter().map(|(rps, ..)| rps).sum();
    // "123456 requests in 5.00s": what the events written are out of.
    let requests: u64 = reports
        .iter()
        .filter_map(|r| {
            r.lines().find_map(|l| l.trim().split_once(" requests in ")).and_then(|(n, _)| n.parse::<u64>().ok())
        })
        .sum();
    let p99s: Vec<&str> = figures.iter().map(|(_, _, p99)| p99.as_str()).collect();
    println!(
        "\npostgres, {n} replica(s) (processes), {} groups, /ipxe: {total:.0} req/s in all; p99 per replica {p99s:?}; \
         {requests} requests, {} events stored ({:.0}/s over the storm and its drain; any other was dropped \
         (a full queue) or not kept (a machine's bound)); RSS per replica {rss:?} MiB; {connections} database \
         connections open (the bench's own included)",
        state.provisioner.index().group_count(),
        last - events_before,
        (last - events_before) as f64 / storm.elapsed().as_secs_f64()
    );
    for r in &mut replicas {
        let _ = std::process::Command::new("kill").args(["-TERM", &r.child.id().to_string()]).status();
        let _ = r.child.wait();
    }
}

#[tokio::main]
async fn main() {
    support::on_each_backend(async |name, url| {
        run(name, url.clone()).await;
        stopped_in_a_storm(name, &url).await;
        if name == "postgres" {
            // Replicas share one database: the boot storm spread over one, then three processes.
            let dir = tempfile::tempdir().expect("tempdir");
            let (_, _, state) = support::serve(url.clone(), dir.path()).await;
            for n in [1, 3] {
                replicas_in_a_storm(n, &url, dir.path(), &state).await;
            }
        }
    })
    .await;
}
