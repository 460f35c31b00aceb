//! Benchmark: machine list and search latency with 100,000 machines, on SQLite and PostgreSQL,
//! through HTTP with an API token (router, middleware, JSON and all), plus the time to preview
//! and commit 50,000-line imports (the largest allowed). Prints p50/p95 per query.
//!
//!     cargo bench -p server --bench machines_list                  # SQLite only
//!     PANGEA_BENCH_POSTGRES_URL=postgres://app@127.0.0.1:PORT/postgres \
//!         cargo bench -p server --bench machines_list              # both backends
//!
//! Goals: p95 < 20 ms for a page of 50 on either backend (issue 2); a 50,000-line import's
//! preview and its commit under 5 s each (issue 6).

use secrecy::SecretString;
use sqlx::Executor;
use std::time::Instant;

mod support;
use support::percentile;

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
    let machines = support::sized(100_000u32, 2_000);
    let import_lines = support::sized(50_000u32, 1_000);
    let runs = support::sized(200usize, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, token, state) = support::serve(url, dir.path()).await;
    let http = reqwest::Client::new();
    let import = |text: String, dry_run: bool| {
        let request = http
            .post(format!("{base}/api/v1/machines/import"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"text": text, "dry_run": dry_run}));
        async move {
            let res = request.send().await.expect("import");
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
        }
    };

    println!(
        "\n{name}: seeding {machines} machines by {import_lines}-line imports through POST /api/v1/machines/import"
    );
    for batch in 0..machines / import_lines {
        let text = csv(batch * import_lines, import_lines);
        let started = Instant::now();
        import(text.clone(), true).await;
        let preview = started.elapsed();
        let started = Instant::now();
        import(text, false).await;
        println!(
            "{name}: import {} of {import_lines} lines: preview {preview:.2?}, commit (re-check + write) {:.2?}",
            batch + 1,
            started.elapsed()
        );
    }
    if name == "postgres" {
        state.db.pool().execute("ANALYZE").await.expect("analyze");
    }

    let page = |query: String| {
        let request = http.get(format!("{base}/api/v1/machines?{query}")).bearer_auth(&token);
        async move {
            let res = request.send().await.expect("list");
            assert_eq!(res.status(), 200);
            res.bytes().await.expect("body")
        }
    };
    let deep: serde_json::Value = serde_json::from_slice(&page("limit=500".into()).await).expect("json");
    let after = deep["next"].as_str().unwrap_or_default().to_string();
    let cases: Vec<(&str, String)> = vec![
        ("first page, by MAC", String::new()),
        ("next page via cursor", format!("after={after}")),
        ("by host name, descending", "sort=hostname&descending=true".into()),
        ("search host name substring", "search=node-04".into()),
        ("search label rack=r17", "search=rack%3Dr17".into()),
        ("search with no match", "search=nothing-here".into()),
        ("search full MAC, dotted", "search=5254.0001.0203".into()),
    ];
    println!(
        "{name}: {:<30} {:>10} {:>10}  ({runs} requests each, page of 50, HTTP with a token)",
        "query", "p50", "p95"
    );
    for (label, query) in cases {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            std::hint::black_box(page(query.clone()).await);
            times.push(started.elapsed());
        }
        times.sort();
        println!("{name}: {label:<30} {:>10.2?} {:>10.2?}", percentile(&times, 0.50), percentile(&times, 0.95));
    }
}

#[tokio::main]
async fn main() {
    support::on_each_backend(run).await;
}
