//! What the bench binaries share: the backends to run on, and percentiles. Each bench uses a
//! part of it.

#![allow(dead_code)]

use secrecy::SecretString;
use sqlx::Executor;

/// `full`, or `smoke` when `PANGEA_BENCH_SCALE=smoke`: the same bench at a size that only shows
/// it still runs (`.ci/test` runs every documented bench this way, so none goes stale). Figures
/// from a smoke run mean nothing.
pub fn sized<T>(full: T, smoke: T) -> T {
    if std::env::var("PANGEA_BENCH_SCALE").as_deref() == Ok("smoke") { smoke } else { full }
}

/// This process's resident memory, in MiB.
pub fn rss_mib() -> f64 {
    rss_mib_of("self")
}

/// The resident memory of process `pid` ("self" for this one), in MiB.
pub fn rss_mib_of(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The value at fraction `p` (0.0–1.0) of an ascending list.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `run` on a fresh SQLite file and, when `PANGEA_BENCH_POSTGRES_URL` (an admin URL) is
/// set, on a fresh PostgreSQL database that is dropped afterwards. `PANGEA_BENCH_BACKENDS=postgres`
/// skips SQLite.
pub async fn on_each_backend<F: AsyncFn(&'static str, SecretString)>(run: F) {
    let dir = tempfile::tempdir().expect("tempdir");
    if std::env::var("PANGEA_BENCH_BACKENDS").is_ok_and(|b| !b.contains("sqlite")) {
        println!("sqlite: skipped (PANGEA_BENCH_BACKENDS)");
    } else {
        run("sqlite", SecretString::from(format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()))).await;
    }
    match PostgresDatabase::create().await {
        Some(database) => {
            run("postgres", database.url.clone()).await;
            database.drop().await;
        }
        None => println!("\npostgres: skipped (set PANGEA_BENCH_POSTGRES_URL to include it)"),
    }
}

/// A fresh PostgreSQL database on the server `PANGEA_BENCH_POSTGRES_URL` (an admin URL) names.
pub struct PostgresDatabase {
    pub url: SecretString,
    admin: sqlx::AnyConnection,
    name: String,
}

impl PostgresDatabase {
    /// None when `PANGEA_BENCH_POSTGRES_URL` is not set.
    pub async fn create() -> Option<PostgresDatabase> {
        let admin_url = std::env::var("PANGEA_BENCH_POSTGRES_URL").ok()?;
        sqlx::any::install_default_drivers();
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await.expect("connect");
        let name = format!("pangea_bench_{}_{}", std::process::id(), rand_suffix());
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(b, _)| b);
        Some(PostgresDatabase { url: SecretString::from(format!("{base}/{name}")), admin, name })
    }

    pub async fn drop(mut self) {
        self.admin.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str()).await.ok();
    }
}

/// Distinguishes databases one bench process creates one after another.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// A Pangea console on `url`, served on 127.0.0.1 over HTTP, and an admin API token for it:
/// benches measure what a client sees, through the real router, middleware and JSON.
pub async fn serve(url: SecretString, dir: &std::path::Path) -> (String, String, pangea::AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let config = pangea::config::Config {
        listen: addr,
        boot_listen: "127.0.0.1:0".parse().expect("address"),
        boot_url: "http://127.0.0.1:8080".into(),
        data_dir: dir.into(),
        assets_dir: dir.join("assets"),
        grpc: None,
        // A bench's load comes from one address: no rate limits, to measure the listener itself.
        boot_retention: pangea::provisioner::boots::Retention { per_address: 0, per_mac: 0, ..Default::default() },
        database_url: url,
        log_format: pangea::config::LogFormat::Human,
        site_root: dir.join("site"),
        site_embedded: false,
        public_url: format!("http://{addr}").parse().expect("url"),
        local_login_enabled: true,
        session_idle_timeout: std::time::Duration::from_secs(3600),
        session_absolute_timeout: std::time::Duration::from_secs(7200),
        live_recheck_every: pangea::http::live::RECHECK_EVERY,
        job_lease: pangea::jobs::LEASE,
        power_settle: pangea::power::SETTLE,
        bootstrap_admin_group: None,
        bootstrap_password: Some(SecretString::from("bench-password")),
        oidc: None,
        secret_key: None,
        audit_key: None,
        trusted_proxies: vec![],
        allow_local_monitoring_urls: true,
        grafana: pangea::config::GrafanaPlacement::Off,
        power_refresh: std::time::Duration::from_secs(60),
        hardware_refresh: std::time::Duration::from_secs(3600),
    };
    let state = pangea::AppState::new(&config).await.expect("start");
    let router = pangea::routes::console_router(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
            .expect("serve");
    });
    let (_, token) = state
        .access
        .create_token(&app::access::Principal::cli(), "bench", app::access::ConsoleRole::Admin, None, None)
        .await
        .expect("token");
    (format!("http://{addr}"), token, state)
}

/// A `pangea serve` process, killed when dropped.
pub struct Replica {
    pub child: std::process::Child,
    pub console: u16,
    pub boot: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    /// `pangea serve` on `url` with the secret key of `key_dir`, both listeners on port 0 of
    /// loopback (the ports it got are read from its log), once it serves.
    pub async fn start(url: &SecretString, key_dir: &std::path::Path, args: &[&str]) -> Replica {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(key_dir.join("secret.key"), dir.path().join("secret.key")).expect("secret key");
        let log = dir.path().join("log");
        let mut replica = Replica {
            child: std::process::Command::new(env!("CARGO_BIN_EXE_pangea"))
                .args(["serve", "--listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path())
                .args(args)
                .env("PANGEA_DATABASE_URL", url.expose_secret())
                .env_remove("RUST_LOG")
                .stdout(std::fs::File::create(&log).expect("log"))
                .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr"))
                .spawn()
                .expect("pangea serve"),
            console: 0,
            boot: 0,
            dir,
        };
        let started = std::time::Instant::now();
        (replica.console, replica.boot) = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // Whole lines only: the last may be half written.
            if let Some(line) =
                text.split_inclusive('\n').find(|l| l.ends_with('\n') && l.contains("pangea is serving"))
            {
                let port = |key: &str| -> u16 {
                    let after = line.split_once(&format!(" {key}=")).expect("address").1;
                    let address = after.split_whitespace().next().expect("address");
                    address.parse::<std::net::SocketAddr>().expect("address").port()
                };
                break (port("console"), port("boot"));
            }
            let stderr = std::fs::read_to_string(replica.dir.path().join("stderr")).unwrap_or_default();
            if let Ok(Some(exit)) = replica.child.try_wait() {
                panic!("pangea serve ended ({exit}) before serving: {text}{stderr}");
            }
            assert!(started.elapsed().as_secs() < 60, "pangea serve did not start: {text}{stderr}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        replica
    }
}
