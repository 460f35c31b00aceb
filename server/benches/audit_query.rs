//! Benchmark: filtered audit-log queries with 1,000,000 records, on SQLite and PostgreSQL, and
//! the memory an export of all of them takes. Prints p50/p95 per query and the peak RSS growth.
//!
//!     cargo bench -p server --bench audit_query                  # SQLite only
//!     PANGEA_BENCH_POSTGRES_URL=postgres://app@127.0.0.1:PORT/postgres \
//!         cargo bench -p server --bench audit_query              # both backends
//!
//! Goal (issue 3): p95 < 50 ms for a filtered page; export in constant memory.

use app::audit::{AuditEntry, AuditQuery};
use pangea::audit::{GENESIS, compute_hash, store::page};
use pangea::db::Database;
use secrecy::SecretString;
use sqlx::Executor;
use std::time::Instant;

mod support;
use support::percentile;

const BATCH: i64 = 1_000;
const ACTORS: [&str; 5] = ["alice@example.com", "olga@example.com", "victor@example.com", "token:ci", "admin"];
const ACTIONS: [&str; 5] = ["machine.create", "machine.update", "machine.delete", "session.login", "token.create"];

/// Resident set size high-water mark of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes a valid hash chain of `count` records straight into the table, a batch per statement.
async fn seed(db: &Database, count: i64) {
    let mut prev = GENESIS.to_string();
    let pool = db.pool();
    for start in (1..=count).step_by(BATCH as usize) {
        let mut tx = pool.begin().await.unwrap();
        let mut values = Vec::new();
        let mut records = Vec::new();
        for id in start..start + BATCH {
            let day = 1 + (id * 28 / count);
            let mut r = AuditEntry {
                id,
                at: format!("2026-10-{day:02}T{:02}:{:02}:{:02}.000000Z", (id / 3600) % 24, (id / 60) % 60, id % 60),
                actor: ACTORS[(id % 5) as usize].into(),
                auth_method: "oidc".into(),
                roles: "admin".into(),
                action: ACTIONS[((id / 5) % 5) as usize].into(),
                target_kind: "machine".into(),
                target_id: (id % 10_000).to_string(),
                target_name: format!("52:54:00:00:{:02x}:{:02x}", (id >> 8) & 0xff, id & 0xff),
                outcome: if id % 97 == 0 {
                    "denied".into()
                } else if id % 31 == 0 {
                    "failure".into()
                } else {
                    "success".into()
                },
                summary: format!("{{\"after\":{{\"hostname\":\"node-{id}\"}}}}"),
                ip: "10.0.0.1".into(),
                user_agent: "bench".into(),
                request_id: format!("{id:016x}"),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            r.hash = compute_hash(db.chain_key(), &r);
            prev = r.hash.clone();
            let n = records.len() * 16;
            values.push(format!("({})", (1..=16).map(|i| format!("${}", n + i)).collect::<Vec<_>>().join(",")));
            records.push(r);
        }
        let sql = format!(
            "INSERT INTO audit_log (id, at, actor, auth_method, roles, action, target_kind, target_id, target_name, outcome, summary, ip, user_agent, request_id, prev_hash, hash) VALUES {}",
            values.join(",")
        );
        let mut q = sqlx::query(&sql);
        for r in &records {
            q = q
                .bind(r.id)
                .bind(&r.at)
                .bind(&r.actor)
                .bind(&r.auth_method)
                .bind(&r.roles)
                .bind(&r.action)
                .bind(&r.target_kind)
                .bind(&r.target_id)
                .bind(&r.target_name)
                .bind(&r.outcome)
                .bind(&r.summary)
                .bind(&r.ip)
                .bind(&r.user_agent)
                .bind(&r.request_id)
                .bind(&r.prev_hash)
                .bind(&r.hash);
        }
        q.execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE id = 1")
        .bind(count)
        .bind(&prev)
        .execute(pool)
        .await
        .unwrap();
}

async fn run(name: &str, url: SecretString) {
    let records = support::sized(1_000_000i64, 2_000);
    let runs = support::sized(100usize, 3);
    // Seeded under the key the served console will load from the same data directory, so its
    // own records chain on and `verify` walks all of them.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, chain_key) = pangea::secrets::load_keys(None, None, dir.path()).expect("keys");
    let db = Database::connect(&url, chain_key).await.expect("connect");
    db.migrate().await.expect("migrate");
    let started = Instant::now();
    seed(&db, records).await;
    println!("\n{name}: seeded {records} chained records in {:.1?}", started.elapsed());
    if name == "postgres" {
        db.pool().execute("ANALYZE audit_log").await.unwrap();
    }
    let q = |f: fn(&mut AuditQuery)| {
        let mut query = AuditQuery::default();
        f(&mut query);
        query
    };
    let cases: Vec<(&str, AuditQuery)> = vec![
        ("newest page, no filter", AuditQuery::default()),
        ("by actor", q(|q| q.actor = Some("victor@example.com".into()))),
        ("by action", q(|q| q.action = Some("session.login".into()))),
        ("by action family machine.*", q(|q| q.action = Some("machine.*".into()))),
        ("by outcome denied", q(|q| q.outcome = Some("denied".into()))),
        ("by target", q(|q| q.target = Some("4242".into()))),
        (
            "actor + outcome",
            q(|q| {
                q.actor = Some("token:ci".into());
                q.outcome = Some("failure".into());
            }),
        ),
        (
            "time range (one day)",
            q(|q| {
                q.from = Some("2026-10-14".into());
                q.to = Some("2026-10-15".into());
            }),
        ),
        ("deep page (before id 500000)", q(|q| q.before = Some(500_000))),
    ];
    println!("{name}: {:<30} {:>10} {:>10}  ({runs} runs each, page of 50)", "filter", "p50", "p95");
    for (label, query) in cases {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            std::hint::black_box(page(&db, &query).await.expect("page"));
            times.push(started.elapsed());
        }
        times.sort();
        println!("{name}: {label:<30} {:>10.2?} {:>10.2?}", percentile(&times, 0.5), percentile(&times, 0.95));
    }
    // The export streams through the real handler: GET /api/v1/audit?format=ndjson with a token.
    let (base, token, _state) = support::serve(url.clone(), dir.path()).await;
    let before = peak_rss_kib();
    let started = Instant::now();
    let mut response = reqwest::Client::new()
        .get(format!("{base}/api/v1/audit?format=ndjson"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    println!(
        "{name}: export of all {lines} records through GET /api/v1/audit?format=ndjson: {:.1} MiB in {:.1?}, \
         peak RSS of the process (server and client) grew by {} KiB",
        bytes as f64 / 1048576.0,
        started.elapsed(),
        peak_rss_kib().saturating_sub(before)
    );
    let started = Instant::now();
    let verified = pangea::audit::verify(&db).await.expect("chain intact");
    println!("{name}: pangea audit verify of {verified} records: {:.1?}", started.elapsed());
}

#[tokio::main]
async fn main() {
    support::on_each_backend(run).await;
}
