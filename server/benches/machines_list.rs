//! Benchmark: machine list and search latency with 100,000 machines, on SQLite and PostgreSQL,
//! plus the time to preview and commit a 10,000-line import. Prints p50/p95 per query.
//!
//!     cargo bench -p server --bench machines_list                  # SQLite only
//!     PANGEA_BENCH_POSTGRES_URL=postgres://app@127.0.0.1:PORT/postgres \
//!         cargo bench -p server --bench machines_list              # both backends
//!
//! Goal (issue 2): p95 < 20 ms for a page of 50 on either backend.

use app::access::Principal;
use app::machines::ssr::MachineService;
use app::machines::{ImportFormat, MachineQuery, SortKey};
use pangea::db::Database;
use pangea::machines::MachineStore;
use secrecy::SecretString;
use sqlx::Executor;
use std::time::Instant;

mod support;
use support::percentile;

const MACHINES: u32 = 100_000;
const IMPORT_LINES: u32 = 10_000;
const RUNS: usize = 200;

fn csv(from: u32, count: u32) -> String {
    let mut out = String::from("mac,hostname,role,labels,cluster\n");
    for i in from..from + count {
        let role = if i % 50 == 0 { "controller" } else { "worker" };
        out.push_str(&format!(
            "52:54:{:02x}:{:02x}:{:02x}:{:02x},node-{i:06}.dc{}.example.com,{role},\"rack=r{},zone=z{}\",cluster-{}\n",
            (i >> 24) & 0xff,
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff,
            i % 4,
            i % 400,
            i % 3,
            i % 10
        ));
    }
    out
}

async fn run(name: &str, url: SecretString) {
    let db = Database::connect(&url, pangea::secrets::ChainKey::from_bytes(rand::random())).await.expect("connect");
    db.migrate().await.expect("migrate");
    let store = MachineStore::new(db.clone());
    let who = Principal::cli();

    println!("\n{name}: seeding {MACHINES} machines by {IMPORT_LINES}-line imports");
    let mut first_import = None;
    for batch in 0..MACHINES / IMPORT_LINES {
        let text = csv(batch * IMPORT_LINES, IMPORT_LINES);
        let started = Instant::now();
        let preview = store.import(&who, ImportFormat::Csv, text.clone(), true).await.expect("preview");
        let preview_time = started.elapsed();
        let started = Instant::now();
        let report = store.import(&who, ImportFormat::Csv, text, false).await.expect("import");
        assert!(report.committed && preview.errors == 0);
        first_import.get_or_insert((preview_time, started.elapsed()));
    }
    let (preview, commit) = first_import.unwrap_or_default();
    println!("{name}: import of {IMPORT_LINES} lines: preview {preview:.2?}, commit (re-check + write) {commit:.2?}");
    if name == "postgres" {
        db.pool().execute("ANALYZE").await.expect("analyze");
    }

    let deep = store.list(&who, MachineQuery { limit: Some(500), ..Default::default() }).await.expect("list").next;
    let cases: Vec<(&str, MachineQuery)> = vec![
        ("first page, by MAC", MachineQuery::default()),
        ("next page via cursor", MachineQuery { after: deep.clone(), ..Default::default() }),
        ("by host name, descending", MachineQuery { sort: SortKey::Hostname, descending: true, ..Default::default() }),
        ("search host name substring", MachineQuery { search: Some("node-04".into()), ..Default::default() }),
        ("search label rack=r17", MachineQuery { search: Some("rack=r17".into()), ..Default::default() }),
        ("search with no match", MachineQuery { search: Some("nothing-here".into()), ..Default::default() }),
        ("search full MAC, dotted", MachineQuery { search: Some("5254.0001.0203".into()), ..Default::default() }),
    ];
    println!("{name}: {:<30} {:>10} {:>10}  ({RUNS} runs each, page of 50)", "query", "p50", "p95");
    for (label, query) in cases {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let page = store.list(&who, query.clone()).await.expect("list");
            times.push(started.elapsed());
            std::hint::black_box(page);
        }
        times.sort();
        println!("{name}: {label:<30} {:>10.2?} {:>10.2?}", percentile(&times, 0.50), percentile(&times, 0.95));
    }
}

#[tokio::main]
async fn main() {
    support::on_each_backend(run).await;
}
