//! The database lost under load, with real processes. Machines are created through the API and
//! boot requests sent, round-robin, while:
//! - on PostgreSQL (a server of the test's own), two `pangea serve` replicas see it stopped and
//!   started again, as an operator's restart does: each replica's `/readyz` goes 503, then 200,
//!   and writes resume without a restart of Pangea;
//! - on SQLite, the one `pangea serve` is killed (SIGKILL) and started again.
//!
//! Either way nothing acknowledged is lost: every machine whose creation was answered 201 is
//! stored, every machine stored has its audit record (written in the same transaction), the
//! audit chain verifies, and every boot request answered has its event stored, those answered
//! while the database was away too (kept in the replica's spool until it was back).

use crate::replicas::{Replica, readyz};
use crate::support::{self, Backend, postgres::OwnPostgres};
use secrecy::SecretString;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_backends_with_own_app!(the_database_lost_under_load_loses_nothing_acknowledged);

const BEFORE: u8 = 0;
const OUTAGE: u8 = 1;
const AFTER: u8 = 2;

/// One round of a load client: a machine created, then a boot request naming it.
struct Sent {
    mac: String,
    phase: u8,
    /// HTTP status of the creation; 0 when nothing answered.
    created: u16,
    created_says: String,
    booted: u16,
}

/// A boot request answered as the boot listener answers a MAC it has no group for.
fn answered(status: u16) -> bool {
    status == 404
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

async fn the_database_lost_under_load_loses_nothing_acknowledged(backend: Backend) {
    let own = match backend {
        Backend::Postgres => Some(OwnPostgres::start().await),
        Backend::Sqlite => None,
    };
    let app = match &own {
        Some(pg) => support::spawn_app_on(SecretString::from(pg.url())).await,
        None => support::spawn_app(backend).await,
    };
    let token = app.token(app::access::ConsoleRole::Admin).await;
    // One test client sends it all: no per-address limit (a site's many machines have many).
    let limits_off = [("PANGEA_BOOT_REQUESTS_PER_ADDRESS", "0"), ("PANGEA_BOOT_REQUESTS_PER_MAC", "0")];
    let mut replicas = Replica::several(&app, if own.is_some() { 2 } else { 1 }, &limits_off).await;

    let targets = Arc::new(Mutex::new(replicas.iter().map(|r| (r.console, r.boot)).collect::<Vec<_>>()));
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (targets, phase, stop, counter, sent, token) =
            (targets.clone(), phase.clone(), stop.clone(), counter.clone(), sent.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
            while !stop.load(Relaxed) {
                let n = counter.fetch_add(1, Relaxed);
                let (console, boot) = {
                    let targets = targets.lock().unwrap();
                    targets[n as usize % targets.len()]
                };
                let mac = format!("02:01:00:{:02x}:{:02x}:{:02x}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                let at = phase.load(Relaxed);
                let (created, created_says) = match client
                    .post(format!("http://127.0.0.1:{console}/api/v1/machines"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "mac": mac, "hostname": format!("load-{n}") }))
                    .send()
                    .await
                {
                    Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                let booted = match client.get(format!("http://127.0.0.1:{boot}/ipxe?mac={mac}")).send().await {
                    Ok(res) => res.status().as_u16(),
                    Err(_) => 0,
                };
                sent.lock().unwrap().push(Sent { mac, phase: at, created, created_says, booted });
                if created != 201 {
                    // Nothing to gain from asking a process that is down as fast as it refuses.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    let macs = |sql: &'static str| async {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(app.state.db.pool()).await.unwrap();
        rows.into_iter().collect::<HashSet<String>>()
    };
    let boot_events =
        async || macs("SELECT DISTINCT mac FROM boot_events WHERE endpoint = '/ipxe' AND mac LIKE '02:01:%'").await;
    let created_in = |p: u8| sent.lock().unwrap().iter().filter(|s| s.phase == p && s.created == 201).count();
    wait_for("200 machines created", Duration::from_secs(60), async || created_in(BEFORE) >= 200).await;

    // Every boot event answered so far is stored already (an answer waits for its event's
    // transaction), then the database goes: those must survive it.
    let answered_before: Vec<String> =
        sent.lock().unwrap().iter().filter(|s| answered(s.booted)).map(|s| s.mac.clone()).collect();
    let stored = boot_events().await;
    let unstored: Vec<&String> = answered_before.iter().filter(|mac| !stored.contains(*mac)).collect();
    assert!(unstored.is_empty(), "boot events answered and not stored: {unstored:?}");
    phase.store(OUTAGE, Relaxed);
    let (went_unready, back) = match &own {
        Some(pg) => {
            pg.down().await;
            let mut unready = Duration::ZERO;
            for r in &replicas {
                let took = wait_for("/readyz says the database is unreachable", Duration::from_secs(20), async || {
                    readyz(r.console).await.starts_with("database unreachable")
                })
                .await;
                unready = unready.max(took);
            }
            // A little while down, under load: the boot events answered meanwhile wait in the
            // replicas' spools, as their /readyz says.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut spooling = false;
            for r in &replicas {
                spooling |= readyz(r.console).await.contains("boot events in the spool: ");
            }
            assert!(spooling, "no replica says it keeps boot events in its spool");
            pg.up().await;
            (Some(unready), Instant::now())
        }
        None => {
            drop(replicas.remove(0));
            let again = Replica::on(&app, &limits_off).await;
            *targets.lock().unwrap() = vec![(again.console, again.boot)];
            replicas.push(again);
            (None, Instant::now())
        }
    };
    for r in &replicas {
        wait_for("/readyz ready again", Duration::from_secs(30), async || {
            readyz(r.console).await.starts_with("ready\n")
        })
        .await;
    }
    let ready_again = back.elapsed();
    phase.store(AFTER, Relaxed);
    let resumed =
        wait_for("100 machines created after", Duration::from_secs(60), async || created_in(AFTER) >= 100).await;
    stop.store(true, Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());

    let stored = macs("SELECT mac FROM machines WHERE mac LIKE '02:01:%'").await;
    let audited =
        macs("SELECT target_name FROM audit_log WHERE action = 'machine.create' AND target_name LIKE '02:01:%'").await;
    let lost: Vec<&String> =
        sent.iter().filter(|s| s.created == 201 && !stored.contains(&s.mac)).map(|s| &s.mac).collect();
    assert!(lost.is_empty(), "acknowledged machines lost: {lost:?}");
    let unaudited: Vec<&String> = stored.difference(&audited).collect();
    let unstored: Vec<&String> = audited.difference(&stored).collect();
    assert!(
        unaudited.is_empty() && unstored.is_empty(),
        "half-written: no record {unaudited:?}, no machine {unstored:?}"
    );
    pangea::audit::verify(&app.state.db).await.unwrap();

    // Every boot event answered is written: those answered while the database was away too
    // (each replica kept them in its spool, and wrote them once it was back).
    let unwritten = async || {
        let stored = boot_events().await;
        sent.iter()
            .filter(|s| s.phase != BEFORE && answered(s.booted) && !stored.contains(&s.mac))
            .map(|s| s.mac.clone())
            .collect::<Vec<_>>()
    };
    let all_written = Instant::now() + Duration::from_secs(20);
    while !unwritten().await.is_empty() && Instant::now() < all_written {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = unwritten().await;
    assert!(missing.is_empty(), "boot events answered and never written: {} ({missing:?})", missing.len());
    // And once each: a batch whose commit was cut off is not written twice.
    let twice: Vec<String> = sqlx::query_scalar(
        "SELECT mac FROM boot_events WHERE endpoint = '/ipxe' AND mac LIKE '02:01:%' GROUP BY mac HAVING COUNT(*) > 1",
    )
    .fetch_all(app.state.db.pool())
    .await
    .unwrap();
    assert!(twice.is_empty(), "boot events stored twice: {twice:?}");

    // While the database was away, a creation either succeeded or said why, with a 5xx.
    let count = |p: u8, f: &dyn Fn(&Sent) -> bool| sent.iter().filter(|s| s.phase == p && f(s)).count();
    let refused: Vec<&Sent> = sent.iter().filter(|s| s.created != 201).collect();
    if own.is_some() {
        let internal: Vec<String> = replicas
            .iter()
            .flat_map(|r| {
                r.log().lines().filter(|l| l.contains("internal error")).map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        for s in &refused {
            assert_eq!(s.created, 503, "{}: {} (logged: {internal:?})", s.mac, s.created_says);
            assert!(s.created_says.contains("database"), "{}", s.created_says);
        }
        // The boot listener answered throughout, from what it holds.
        assert!(sent.iter().all(|s| answered(s.booted)), "boot requests not answered");
    }
    println!(
        "failover ({backend:?}): created before / during / after: {} / {} / {}; refused during: {}; boot requests \
         answered during: {} of {}; unready within {:?}; ready again {:.1} s after the database was back; \
         100 creations {:.1} s after that",
        count(BEFORE, &|s| s.created == 201),
        count(OUTAGE, &|s| s.created == 201),
        count(AFTER, &|s| s.created == 201),
        refused.len(),
        count(OUTAGE, &|s| answered(s.booted)),
        count(OUTAGE, &|_| true),
        went_unready,
        ready_again.as_secs_f64(),
        resumed.as_secs_f64(),
    );
}
