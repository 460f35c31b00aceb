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

use crate::process::{serve_on_with_boot, started};
use crate::support::{self, Backend};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_backends_with_own_app!(replicas_share_the_boot_load_and_a_killed_one_loses_only_its_own_requests);

/// One replica process, killed when dropped.
struct Replica {
    child: Child,
    console: u16,
    boot: u16,
    _dir: tempfile::TempDir,
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

async fn readyz(console: u16) -> String {
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
    let url = app.database_url.expose_secret().to_string();
    let limits_off = [("PANGEA_BOOT_REQUESTS_PER_ADDRESS", "0"), ("PANGEA_BOOT_REQUESTS_PER_MAC", "0")];
    let replica = || {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(app.data_dir.join("secret.key"), dir.path().join("secret.key")).unwrap();
        let (child, console, boot) = serve_on_with_boot(&url, dir.path(), &limits_off);
        Replica { child, console, boot, _dir: dir }
    };

    if matches!(backend, Backend::Sqlite) {
        let first = replica();
        started(first.console).await;
        let mut second = replica();
        let exit = tokio::task::spawn_blocking(move || {
            let exit = second.child.wait().unwrap();
            (exit, std::fs::read_to_string(second._dir.path().join("log")).unwrap_or_default())
        })
        .await
        .unwrap();
        assert!(!exit.0.success(), "a second serve on one SQLite file must not start");
        assert!(exit.1.contains("another `pangea serve` is running on") && exit.1.contains("PostgreSQL"), "{}", exit.1);
        assert!(readyz(first.console).await.starts_with("ready\n"), "the first goes on serving");
        return;
    }

    let replicas: Vec<Replica> = (0..3).map(|_| replica()).collect();
    for r in &replicas {
        started(r.console).await;
    }
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
                let mac = format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255);
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
        let waiting = sent.iter().filter(|(m, (to, s))| survivors.contains(to) && *s == Sent::Answered && !stored.contains_key(*m)).count();
        if waiting == 0 {
            break stored;
        }
        assert!(Instant::now() < deadline, "{waiting} events answered by live replicas were never stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(stored.values().all(|n| *n == 1), "an event stored twice");
    let by_victim: Vec<(&String, &Sent)> = sent.iter().filter(|(_, (to, _))| *to == holder).map(|(m, (_, s))| (m, s)).collect();
    let victim_answered = by_victim.iter().filter(|(_, s)| **s == Sent::Answered).count();
    let victim_stored = by_victim.iter().filter(|(m, _)| stored.contains_key(*m)).count();
    let refused_after = by_victim.iter().filter(|(_, s)| **s == Sent::Failed).count();
    assert!(victim_stored <= victim_answered);
    println!(
        "replicas: {} requests in all ({} before the kill); the killed replica answered {victim_answered} and stored \
         {victim_stored} ({} answered but lost in its queue); {refused_after} requests sent to it failed (in flight \
         at the kill, or after it); duties handed over {:.1} s after the kill",
        sent.len(),
        killed_at_count,
        victim_answered - victim_stored,
        handed_over.as_secs_f64()
    );
    assert!(handed_over < Duration::from_secs(15), "hand-over took {handed_over:?}");
    pangea::audit::verify(&app.state.db).await.unwrap();
}
