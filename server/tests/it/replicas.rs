//! Pangea without a single point of failure, with real processes: on PostgreSQL, three
//! `pangea serve` replicas take a boot storm sent round-robin (as a load balancer or iPXE's
//! retries spread it), one of them (the one holding the duties) is killed with SIGKILL, and
//! - every request sent to a live replica is answered;
//! - each boot event a surviving replica accepted is stored exactly once;
//! - another replica holds the dead one's duties within a lease and a third (measured);
//! - the audit chain verifies.
//!
//! On SQLite, which serves one process, a second `pangea serve` on the same file is refused in
//! words, and the first goes on serving.

use crate::process::{listening, output, spawn_serve};
use crate::support::{self, Backend};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_backends_with_own_app!(
    replicas_share_the_boot_load_and_a_killed_one_loses_only_its_own_requests,
    a_cluster_creation_whose_replica_is_killed_goes_on_on_another,
    a_paced_power_run_whose_replica_is_killed_is_finished_by_another,
    an_import_whose_replica_is_killed_mid_commit_is_committed_once_by_another,
    the_discovered_limit_holds_when_every_replica_sees_the_same_unknown_machines,
);

/// One replica process, killed when dropped.
pub(crate) struct Replica {
    pub(crate) child: Child,
    pub(crate) console: u16,
    pub(crate) boot: u16,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// A `pangea serve` on `app`'s database, with its secret key, once it serves.
    pub(crate) async fn on(app: &support::TestApp, envs: &[(&str, &str)]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(app.data_dir.join("secret.key"), dir.path().join("secret.key")).unwrap();
        let child = spawn_serve(app.database_url.expose_secret(), dir.path(), &[], envs);
        // Killed when dropped, even when it never serves.
        let mut replica = Replica { child, console: 0, boot: 0, _dir: dir };
        (replica.console, replica.boot) = listening(&mut replica.child, replica._dir.path()).await;
        replica
    }

    /// `count` of them, started together.
    pub(crate) async fn several(app: &support::TestApp, count: usize, envs: &[(&str, &str)]) -> Vec<Replica> {
        futures::future::join_all((0..count).map(|_| Replica::on(app, envs))).await
    }

    /// What the process has logged so far (stdout and stderr).
    pub(crate) fn log(&self) -> String {
        let (stdout, stderr) = output(self._dir.path());
        stdout + &stderr
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What became of one boot request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Answered,
    Failed,
}

pub(crate) async fn readyz(console: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{console}/readyz")).await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The duties a replica says it holds on `/readyz` (none when it does not answer).
async fn held(console: u16) -> Vec<String> {
    let ready = readyz(console).await;
    let Some(line) = ready.lines().find_map(|l| l.strip_prefix("leases held: ")) else { return Vec::new() };
    line.split(", ").filter(|d| *d != "none").map(str::to_string).collect()
}

async fn replicas_share_the_boot_load_and_a_killed_one_loses_only_its_own_requests(backend: Backend) {
    let app = support::spawn_app_with(backend, async |_| {}).await;
    let limits_off = [("PANGEA_BOOT_REQUESTS_PER_ADDRESS", "0"), ("PANGEA_BOOT_REQUESTS_PER_MAC", "0")];

    if matches!(backend, Backend::Sqlite) {
        let first = Replica::on(&app, &limits_off).await;
        let dir = tempfile::tempdir().unwrap();
        let mut second = spawn_serve(app.database_url.expose_secret(), dir.path(), &[], &limits_off);
        let exit = tokio::task::spawn_blocking(move || second.wait().unwrap()).await.unwrap();
        let (stdout, stderr) = output(dir.path());
        let log = stdout + &stderr;
        assert!(!exit.success(), "a second serve on one SQLite file must not start");
        assert!(log.contains("another `pangea serve` is running on") && log.contains("PostgreSQL"), "{log}");
        assert!(readyz(first.console).await.starts_with("ready\n"), "the first goes on serving");
        return;
    }

    let replicas = Replica::several(&app, 3, &limits_off).await;
    // Each duty is held by one of them (the first to take it): the one holding `prune` dies.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (holder, duties) = loop {
        let mut holding = Vec::new();
        for r in &replicas {
            holding.push(held(r.console).await);
        }
        let all: Vec<&String> = holding.iter().flatten().collect();
        if all.len() == 2 && all.iter().all(|d| *d == "prune" || *d == "link-nodes") && all[0] != all[1] {
            let holder = holding.iter().position(|h| h.iter().any(|d| d == "prune")).unwrap();
            break (holder, holding[holder].clone());
        }
        assert!(Instant::now() < deadline, "the duties were not held once each: {holding:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The storm: 12 clients, each request to the next replica in turn, each for a MAC of its own.
    let sent: Arc<Mutex<HashMap<String, (usize, Sent)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let boots: Vec<u16> = replicas.iter().map(|r| r.boot).collect();
    let mut clients = Vec::new();
    for _ in 0..12 {
        let (sent, stop, counter, boots) = (sent.clone(), stop.clone(), counter.clone(), boots.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let to = (n % 3) as usize;
                let mac = format!(
                    "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
                    (n >> 24) & 255,
                    (n >> 16) & 255,
                    (n >> 8) & 255,
                    n & 255
                );
                let answered = client.get(format!("http://127.0.0.1:{}/ipxe?mac={mac}", boots[to])).send().await;
                let outcome = match answered {
                    Ok(res) if res.status() == 404 => Sent::Answered,
                    _ => Sent::Failed,
                };
                sent.lock().unwrap().insert(mac, (to, outcome));
            }
        }));
    }
    let answered = || sent.lock().unwrap().values().filter(|(_, s)| *s == Sent::Answered).count();
    while answered() < 3_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no clean stop, no lease released.
    let mut replicas = replicas;
    let victim = replicas.remove(holder);
    let killed_at_count = counter.load(std::sync::atomic::Ordering::Relaxed);
    let killed = Instant::now();
    drop(victim);
    // Other replicas hold its duties within a lease and a third.
    let handed_over = loop {
        let mut now_held = Vec::new();
        for r in &replicas {
            now_held.extend(held(r.console).await);
        }
        if duties.iter().all(|d| now_held.contains(d)) {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no replica took the dead one's duties: {now_held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The storm goes on a little after the hand-over, then stops.
    let more = answered() + 1_000;
    while answered() < more {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let survivors: Vec<usize> = (0..3).filter(|i| *i != holder).collect();
    let sent = sent.lock().unwrap().clone();
    // Every request to a live replica was answered.
    let failed_live: Vec<&String> =
        sent.iter().filter(|(_, (to, s))| survivors.contains(to) && *s == Sent::Failed).map(|(m, _)| m).collect();
    assert!(failed_live.is_empty(), "requests to live replicas not answered: {}", failed_live.len());

    // Each event a survivor accepted is stored once; the dead one's stored at most once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stored: HashMap<String, i64> = loop {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT mac, COUNT(*) FROM boot_events WHERE endpoint = '/ipxe' AND mac LIKE '02:00:%' GROUP BY mac",
        )
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
        let stored: HashMap<String, i64> = rows.into_iter().collect();
        let waiting = sent
            .iter()
            .filter(|(m, (to, s))| survivors.contains(to) && *s == Sent::Answered && !stored.contains_key(*m))
            .count();
        if waiting == 0 {
            break stored;
        }
        assert!(Instant::now() < deadline, "{waiting} events answered by live replicas were never stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(stored.values().all(|n| *n == 1), "an event stored twice");
    let by_victim: Vec<(&String, &Sent)> =
        sent.iter().filter(|(_, (to, _))| *to == holder).map(|(m, (_, s))| (m, s)).collect();
    let victim_answered = by_victim.iter().filter(|(_, s)| **s == Sent::Answered).count();
    // Each answer waited for its event's transaction: what the dead replica answered, it stored.
    let answered_lost = by_victim.iter().filter(|(m, s)| **s == Sent::Answered && !stored.contains_key(*m)).count();
    assert_eq!(answered_lost, 0, "events the killed replica answered but never stored");
    let failed = by_victim.iter().filter(|(_, s)| **s == Sent::Failed).count();
    let failed_stored = by_victim.iter().filter(|(m, s)| **s == Sent::Failed && stored.contains_key(*m)).count();
    println!(
        "replicas: {} requests in all ({} before the kill); the killed replica answered {victim_answered}, each \
         stored; {failed} requests sent to it failed (in flight at the kill, or after it), {failed_stored} of them \
         stored before it died unanswered; duties handed over {:.1} s after the kill",
        sent.len(),
        killed_at_count,
        handed_over.as_secs_f64()
    );
    assert!(handed_over < Duration::from_secs(15), "hand-over took {handed_over:?}");
    pangea::audit::verify(&app.state.db).await.unwrap();
}

/// 400 MACs, 380 unknown and 20 of the inventory, each asked of every replica in turn by 8
/// clients at once (as iPXE's retries spread over a load balancer), with room for 50 discovered
/// machines: every replica's writer meets the same MACs in the same moments. The list holds 50,
/// and no writer fails a batch over a MAC another replica wrote first. (On SQLite, one process.)
async fn the_discovered_limit_holds_when_every_replica_sees_the_same_unknown_machines(backend: Backend) {
    let app = support::spawn_app_with(backend, async |_| {}).await;
    let envs = [
        ("PANGEA_BOOT_REQUESTS_PER_ADDRESS", "0"),
        ("PANGEA_BOOT_REQUESTS_PER_MAC", "0"),
        ("PANGEA_DISCOVERED_LIMIT", "50"),
    ];
    // 20 of the 400 are machines of the inventory: their states are written by every replica.
    for i in 256..276 {
        app.create(serde_json::json!({ "mac": format!("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 255) })).await;
    }
    let count = if matches!(backend, Backend::Postgres) { 3 } else { 1 };
    let replicas = Replica::several(&app, count, &envs).await;
    let boots: Vec<u16> = replicas.iter().map(|r| r.boot).collect();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (counter, boots) = (counter.clone(), boots.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut answered = 0;
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= 6_000 {
                    return answered;
                }
                // MAC n / 3 % 400 is asked of replica 0, 1 and 2 one after the other.
                let (mac, to) = ((n / 3) % 400, (n % 3) as usize % boots.len());
                let url =
                    format!("http://127.0.0.1:{}/ipxe?mac=02:00:00:00:{:02x}:{:02x}", boots[to], mac >> 8, mac & 255);
                if client.get(url).send().await.is_ok_and(|r| r.status() == 404) {
                    answered += 1;
                }
            }
        }));
    }
    let mut answered = 0;
    for client in clients {
        answered += client.await.unwrap();
    }
    assert_eq!(answered, 6_000, "every request answered");
    // Every inventory machine's events are written (its state moved) and the writers are done
    // (the count of events holds for 300 ms): then the list is read.
    let known: Vec<String> = (256..276).map(|i| format!("'02:00:00:00:{:02x}:{:02x}'", i >> 8, i & 255)).collect();
    let moved_sql = format!("SELECT COUNT(*) FROM boot_states WHERE mac IN ({})", known.join(", "));
    let count = async |sql: &str| -> i64 { sqlx::query_scalar(sql).fetch_one(app.state.db.pool()).await.unwrap() };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = -1;
    loop {
        let (moved, now) = (count(&moved_sql).await, count("SELECT COUNT(*) FROM boot_events").await);
        if moved == 20 && now == events {
            break;
        }
        assert!(Instant::now() < deadline, "{moved} of the 20 inventory machines have a boot state");
        events = now;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(count("SELECT COUNT(*) FROM discovered_machines").await, 50, "the discovered list holds its limit");
    for r in &replicas {
        let failed: Vec<String> =
            r.log().lines().filter(|l| l.contains("could not write boot events")).map(str::to_string).collect();
        assert!(failed.is_empty(), "a writer failed a batch: {failed:?}");
    }
}

/// Short job leases, so a take-over happens within a test.
pub(crate) const JOB_LEASE: [(&str, &str); 1] = [("PANGEA_JOB_LEASE_SECONDS", "3")];

/// A replica that has started, to run a job on; and, on PostgreSQL, a second one beside it to
/// take the job over (SQLite serves one process: there the server is started again instead).
pub(crate) async fn running_and_standby(
    app: &support::TestApp,
    backend: Backend,
    envs: &[(&str, &str)],
) -> (Replica, Option<Replica>) {
    let first = Replica::on(app, envs).await;
    let standby = match backend {
        Backend::Postgres => Some(Replica::on(app, envs).await),
        Backend::Sqlite => None,
    };
    (first, standby)
}

/// This replica's name in leases, from its `/readyz`.
pub(crate) async fn replica_id(console: u16) -> String {
    let ready = readyz(console).await;
    ready.lines().find_map(|l| l.strip_prefix("replica ")).unwrap_or_default().to_string()
}

/// The replica holding job `id`'s lease.
pub(crate) async fn job_holder(app: &support::TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT lease_holder FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
}

/// A creation's job runs on the replica it was applied on; that replica is killed (SIGKILL) and
/// another takes the job over within its lease, goes on following the machine, and its end is
/// audited once. On SQLite the other replica is the server started again, as an orchestrator
/// would.
async fn a_cluster_creation_whose_replica_is_killed_goes_on_on_another(backend: Backend) {
    let app = support::spawn_app_with(backend, async |_| {}).await;
    let token = app.token(app::access::ConsoleRole::Admin).await;
    let mac = "52:54:00:00:0b:01";
    app.create(serde_json::json!({ "mac": mac, "hostname": "cp-1" })).await;
    let client = reqwest::Client::new();
    let (first, standby) = running_and_standby(&app, backend, &JOB_LEASE).await;
    let template = format!(
        "version: pangea.dev/v1\nname: solo\nkubernetes: v1.36.2\nos: flatcar\ncontrollers:\n  machines: [\"{mac}\"]\n\
         workers:\n  machines: []\napi_server:\n  name: solo.example.test\n  address: 127.0.0.1\n  port: 1\n"
    );
    let applied = client
        .post(format!("http://127.0.0.1:{}/api/v1/cluster-creations", first.console))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "template": template }))
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 201, "{}", applied.text().await.unwrap());
    let job = applied.json::<serde_json::Value>().await.unwrap()["job"].as_str().unwrap().to_string();
    assert_eq!(job_holder(&app, &job).await, replica_id(first.console).await);

    drop(first);
    let second = match standby {
        Some(standby) => standby,
        None => Replica::on(&app, &JOB_LEASE).await,
    };
    let id = replica_id(second.console).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while job_holder(&app, &job).await != id {
        assert!(Instant::now() < deadline, "no replica took the creation over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // It goes on following the machine, which boots from the replica that is left.
    let ipxe = client.get(format!("http://127.0.0.1:{}/ipxe?mac={mac}", second.boot)).send().await.unwrap();
    assert_eq!(ipxe.status(), 200);
    let creation_at = format!("http://127.0.0.1:{}/api/v1/cluster-creations/solo", second.console);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let creation: serde_json::Value =
            client.get(&creation_at).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if creation["machines"][0]["state"] == "script" {
            assert_eq!(creation["state"], "creating", "{creation:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the creation did not follow the machine: {creation:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let destroyed = client
        .post(format!("{creation_at}/destroy"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "confirm": "solo" }))
        .send()
        .await
        .unwrap();
    assert_eq!(destroyed.status(), 204);
    let ends = || async {
        let ends: Vec<String> = sqlx::query_scalar(
            "SELECT outcome FROM audit_log WHERE action = 'cluster.creation.end' AND target_id = 'solo'",
        )
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
        ends
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while ends().await.is_empty() {
        assert!(Instant::now() < deadline, "the creation's end was never audited");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A pass and a lease later, still once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(ends().await.len(), 1, "its end is audited once");
    pangea::audit::verify(&app.state.db).await.unwrap();
}

/// A client signed in as the local admin on `replica`'s console, sending its `Origin`.
async fn admin_on(replica: &Replica) -> (reqwest::Client, String) {
    let base = format!("http://127.0.0.1:{}", replica.console);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ORIGIN, base.parse().unwrap());
    let client = reqwest::Client::builder().cookie_store(true).default_headers(headers).build().unwrap();
    let signed_in = client
        .post(format!("{base}/auth/login"))
        .form(&[("username", "admin"), ("password", support::ADMIN_PASSWORD), ("next", "/machines")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.url().path(), "/machines", "sign-in on {base} failed");
    (client, base)
}

/// Polls the import `job` through `on` until it is no longer `phase` (60 s at most).
async fn import_past(on: &(reqwest::Client, String), job: &str, phase: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res =
            on.0.post(format!("{}/api/gui/poll_import", on.1)).json(&serde_json::json!({ "job": job })).send().await;
        if let Ok(res) = res {
            let state: serde_json::Value = res.json().await.unwrap_or_default();
            if !state.is_null() && support::import_phase(&state) != phase {
                return state;
            }
        }
        assert!(Instant::now() < deadline, "import {job} stayed {phase}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An import of 20,000 lines is previewed and committed on one replica, which is killed with
/// SIGKILL while its commit (one transaction) is under way: nothing of it is written, another
/// replica takes the job over within its lease, commits it once and audits it once.
async fn an_import_whose_replica_is_killed_mid_commit_is_committed_once_by_another(backend: Backend) {
    const LINES: u32 = 20_000;
    let app = support::spawn_app_with(backend, async |_| {}).await;
    let (first, standby) = running_and_standby(&app, backend, &JOB_LEASE).await;
    let on_first = admin_on(&first).await;
    let started_import = on_first
        .0
        .post(format!("{}/api/gui/start_import", on_first.1))
        .json(&serde_json::json!({ "format": "auto", "text": crate::jobs::csv(LINES, 9) }))
        .send()
        .await
        .unwrap();
    assert_eq!(started_import.status(), 200);
    let job: String = started_import.json().await.unwrap();
    let previewed = import_past(&on_first, &job, "checking").await;
    assert_eq!(support::import_phase(&previewed), "previewed", "{previewed}");
    let commit = on_first
        .0
        .post(format!("{}/api/gui/commit_import", on_first.1))
        .json(&serde_json::json!({ "job": job }))
        .send()
        .await
        .unwrap();
    assert_eq!(commit.status(), 200, "{}", commit.text().await.unwrap());
    let committing = import_past(&on_first, &job, "previewed").await;
    assert_eq!(support::import_phase(&committing), "committing", "{committing}");
    drop(first);
    // Nothing of it appears (a commit already sent would land within milliseconds): had the kill
    // come too late, the machines would be there.
    for _ in 0..10 {
        assert_eq!(app.count().await, 0, "killed mid-commit, nothing of the import is written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let second = match standby {
        Some(standby) => standby,
        None => Replica::on(&app, &JOB_LEASE).await,
    };
    let on_second = admin_on(&second).await;
    let state = import_past(&on_second, &job, "committing").await;
    assert_eq!(support::import_phase(&state), "committed", "{state}");
    assert_eq!(app.count().await, LINES as usize);
    let resumed: i64 = sqlx::query_scalar("SELECT resumed FROM jobs WHERE id = $1")
        .bind(&job)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(resumed, 1, "taken over once");
    let imports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'machine.import'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(imports, 1, "committed and audited once");
    pangea::audit::verify(&app.state.db).await.unwrap();
}

/// A mass power-off paced one machine per 3 s; the replica running it is killed after its first
/// machine, and another finishes it: every machine off, none asked twice by the run, its end
/// audited once.
async fn a_paced_power_run_whose_replica_is_killed_is_finished_by_another(backend: Backend) {
    use crate::support::bmc::{FakeSystem, PASSWORD, USER, emulator};
    let app = support::spawn_app_with(backend, async |_| {}).await;
    let token = app.token(app::access::ConsoleRole::Admin).await;
    let uuids: Vec<String> = (1..=4).map(|i| format!("33333333-0000-0000-0000-00000000000{i}")).collect();
    let macs: Vec<String> = (1..=4).map(|i| format!("52:54:00:b0:0a:0{i}")).collect();
    let systems: Vec<FakeSystem> =
        uuids.iter().zip(&macs).map(|(uuid, mac)| FakeSystem { uuid, power: "On", mac }).collect();
    let bmc = emulator(&systems).await;
    let mut ids = Vec::new();
    for (uuid, mac) in uuids.iter().zip(&macs) {
        let created = app.create(serde_json::json!({ "mac": mac, "labels": { "rack": "r1" } })).await;
        let id = created["id"].as_i64().unwrap();
        let input = serde_json::json!({
            "url": format!("{}/redfish/v1/Systems/{uuid}", bmc.url), "username": USER, "password": PASSWORD,
        });
        assert_eq!(app.put_json(&format!("/api/v1/machines/{id}/bmc"), input).await.status(), 200);
        ids.push(id);
    }
    let client = reqwest::Client::new();
    let (first, standby) = running_and_standby(&app, backend, &JOB_LEASE).await;
    let pacing = serde_json::json!({ "group_by": "rack", "per_group": 1, "per_seconds": 3 });
    let started_run = client
        .post(format!("http://127.0.0.1:{}/api/v1/power-runs", first.console))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "action": "force_off", "machines": ids, "pacing": pacing }))
        .send()
        .await
        .unwrap();
    assert_eq!(started_run.status(), 202, "{}", started_run.text().await.unwrap());
    let job = started_run.json::<serde_json::Value>().await.unwrap()["job"].as_str().unwrap().to_string();
    let run_on = |console: u16| {
        let (client, token, job) = (client.clone(), token.clone(), job.clone());
        async move {
            let run: serde_json::Value = client
                .get(format!("http://127.0.0.1:{console}/api/v1/power-runs/{job}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            run
        }
    };
    let sent =
        |run: &serde_json::Value| run["machines"].as_array().unwrap().iter().filter(|m| m["sent_at"] != "").count();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = run_on(first.console).await;
        if sent(&run) >= 1 {
            assert!(sent(&run) < 4, "the run must still have machines to ask: {run:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the run asked no machine: {run:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);
    let second = match standby {
        Some(standby) => standby,
        None => Replica::on(&app, &JOB_LEASE).await,
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let run = loop {
        let run = run_on(second.console).await;
        if run["state"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run was not finished: {run:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(run["resumed"], 1, "{run:#}");
    assert_eq!(sent(&run), 4);
    let ends: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'machine.power.run.end' AND target_id = $1")
            .bind(&job)
            .fetch_one(app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(ends, 1, "its end is audited once");
    pangea::audit::verify(&app.state.db).await.unwrap();
}

mod needs_kube {
    use crate::support::kube;

    /// `deploy/kubernetes`'s overlays render with kubectl's own kustomize, and a real API server
    /// accepts every object (a server-side dry run): one replica on SQLite with its data on a
    /// volume and stopped before it is replaced, or three on PostgreSQL that a drain takes one at
    /// a time; non-root, a read-only root, no capabilities, no cluster credentials.
    #[tokio::test]
    async fn the_kubernetes_overlays_render_and_the_api_server_accepts_them() {
        let Some(k) = kube::shared() else { return };
        let deploy = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/overlays");
        let namespace = kube::unique("pangea");
        let made = k.kubectl(&["create", "namespace", &namespace]);
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        for (overlay, replicas) in [("single-sqlite", 1), ("ha-postgres", 3)] {
            let rendered = k.kubectl(&["kustomize", deploy.join(overlay).to_str().unwrap()]);
            assert!(rendered.status.success(), "{overlay}: {}", String::from_utf8_lossy(&rendered.stderr));
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("rendered.yaml");
            std::fs::write(&file, &rendered.stdout).unwrap();
            let applied =
                k.kubectl(&["apply", "--dry-run=server", "-n", &namespace, "-o", "json", "-f", file.to_str().unwrap()]);
            assert!(applied.status.success(), "{overlay}: {}", String::from_utf8_lossy(&applied.stderr));
            let applied: serde_json::Value = serde_json::from_slice(&applied.stdout).unwrap();
            let items = applied["items"].as_array().unwrap();
            let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
            let deployment = items.iter().find(|i| i["kind"] == "Deployment").unwrap();
            assert_eq!(deployment["spec"]["replicas"], replicas, "{overlay}");
            let pod = &deployment["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
            assert_eq!(pod["automountServiceAccountToken"], false);
            let container = &pod["containers"][0];
            assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
            assert_eq!(container["securityContext"]["capabilities"]["drop"][0], "ALL");
            assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
            let env: Vec<&str> =
                container["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
            assert!(env.contains(&"PANGEA_SECRET_KEY"), "every replica seals with one key: {env:?}");
            let services: Vec<&str> = items
                .iter()
                .filter(|i| i["kind"] == "Service")
                .map(|i| i["metadata"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(services, ["pangea-boot", "pangea-console"], "{overlay}");
            let policy = items.iter().find(|i| i["kind"] == "NetworkPolicy").expect("a NetworkPolicy");
            assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
            assert_eq!(policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], "pangea");
            let ports: Vec<&str> = policy["spec"]["ingress"][0]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_str().unwrap())
                .collect();
            assert_eq!(ports, ["console", "boot"], "the listeners' ports only (gRPC with its component)");
            match overlay {
                "single-sqlite" => {
                    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
                    assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "pangea-data");
                    assert!(kinds.contains(&"PersistentVolumeClaim") && !env.contains(&"PANGEA_DATABASE_URL"));
                }
                _ => {
                    assert!(env.contains(&"PANGEA_DATABASE_URL"), "{env:?}");
                    let budget = items.iter().find(|i| i["kind"] == "PodDisruptionBudget").unwrap();
                    assert_eq!(budget["spec"]["maxUnavailable"], 1);
                }
            }
        }
        k.kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
    }

    /// The components, over the HA overlay, applied for real in a namespace of their own (names
    /// suffixed, so the cluster-wide role is this test's): `grpc` adds the gRPC listener with its
    /// TLS files from a Secret, its Service (selecting Pangea's pods) and its port to the
    /// NetworkPolicy; `manage-own-cluster` gives Pangea's ServiceAccount the rules of
    /// `pangea-console`, checked with `kubectl auth can-i --as`: it reads and watches what the
    /// console shows and impersonates people, and as itself reads no Secret and changes nothing.
    #[tokio::test]
    async fn the_components_add_grpc_and_a_console_role_that_reads_no_secrets() {
        let Some(k) = kube::shared() else { return };
        let deploy = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
        let deploy = deploy.canonicalize().unwrap();
        let namespace = kube::unique("pangea");
        let suffix = namespace.trim_start_matches("pangea");
        let dir = tempfile::tempdir().unwrap();
        // kustomize takes only relative paths to other kustomizations.
        let up = "../".repeat(dir.path().canonicalize().unwrap().components().count() - 1);
        let at = |path: &str| format!("{up}{}/{path}", deploy.display().to_string().trim_start_matches('/'));
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {namespace}\n\
                 nameSuffix: {suffix}\nresources: [{}]\ncomponents: [{}, {}]\n",
                at("overlays/ha-postgres"),
                at("components/grpc"),
                at("components/manage-own-cluster")
            ),
        )
        .unwrap();
        let rendered = k.kubectl(&["kustomize", dir.path().to_str().unwrap()]);
        assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, &rendered.stdout).unwrap();
        let made = k.kubectl(&["create", "namespace", &namespace]);
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        // Whatever the test's outcome, what it made goes (the role and binding are cluster-wide).
        struct Made<'a>(&'a kube::Kube, String, String);
        impl Drop for Made<'_> {
            fn drop(&mut self) {
                for kind in ["clusterrolebinding", "clusterrole"] {
                    self.0.kubectl(&["delete", kind, &format!("pangea-in-cluster{}", self.2), "--ignore-not-found"]);
                }
                self.0.kubectl(&["delete", "namespace", &self.1, "--wait=false"]);
            }
        }
        let _made = Made(&k, namespace.clone(), suffix.to_string());
        let applied = k.kubectl(&["apply", "-o", "json", "-f", file.to_str().unwrap()]);
        assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
        let applied: serde_json::Value = serde_json::from_slice(&applied.stdout).unwrap();
        let items = applied["items"].as_array().unwrap();

        let grpc = items.iter().find(|i| i["metadata"]["name"] == format!("pangea-grpc{suffix}")).unwrap();
        assert_eq!(grpc["spec"]["ports"][0]["port"], 8081);
        assert_eq!(
            grpc["spec"]["selector"],
            serde_json::json!({"app.kubernetes.io/name": "pangea"}),
            "it selects Pangea"
        );
        let policy = items.iter().find(|i| i["kind"] == "NetworkPolicy").unwrap();
        assert_eq!(
            policy["spec"]["ingress"][0]["ports"],
            serde_json::json!([{"port": "console", "protocol": "TCP"}, {"port": "boot", "protocol": "TCP"}, {"port": "grpc", "protocol": "TCP"}])
        );
        let deployment = items.iter().find(|i| i["kind"] == "Deployment").unwrap();
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let env: Vec<&str> = container["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        for name in ["PANGEA_RPC_LISTEN", "PANGEA_RPC_CERT_FILE", "PANGEA_RPC_KEY_FILE", "PANGEA_RPC_CA_FILE"] {
            assert!(env.contains(&name), "{name}: {env:?}");
        }
        assert!(
            container["ports"].as_array().unwrap().iter().any(|p| p["name"] == "grpc" && p["containerPort"] == 8081)
        );
        let mounts = container["volumeMounts"].as_array().unwrap();
        let tls = mounts.iter().find(|m| m["name"] == "grpc-tls").expect("the TLS files' mount");
        assert_eq!((tls["mountPath"].as_str(), tls["readOnly"].as_bool()), (Some("/etc/pangea/grpc"), Some(true)));

        let account = format!("system:serviceaccount:{namespace}:pangea{suffix}");
        let can = |args: &[&str]| {
            let mut all = vec!["auth", "can-i", "--as", account.as_str()];
            all.extend_from_slice(args);
            String::from_utf8_lossy(&k.kubectl(&all).stdout).trim().to_string()
        };
        for (args, expected) in [
            (&["list", "nodes"][..], "yes"),
            (&["watch", "pods", "--all-namespaces"][..], "yes"),
            (&["get", "deployments.apps", "-n", "kube-system"][..], "yes"),
            (&["list", "poddisruptionbudgets.policy", "--all-namespaces"][..], "yes"),
            (&["impersonate", "users"][..], "yes"),
            (&["impersonate", "groups"][..], "yes"),
            (&["get", "/readyz"][..], "yes"),
            (&["get", "secrets", "-n", namespace.as_str()][..], "no"),
            (&["list", "secrets", "--all-namespaces"][..], "no"),
            (&["delete", "nodes"][..], "no"),
            (&["patch", "nodes"][..], "no"),
            (&["create", "pods/eviction", "--all-namespaces"][..], "no"),
        ] {
            assert_eq!(can(args), expected, "can-i {args:?} as {account}");
        }
    }
}
