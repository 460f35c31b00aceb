//! Spawns a real Pangea console on 127.0.0.1:0 over a fresh database: a new SQLite file, or a
//! new database on the throwaway PostgreSQL that `.ci/test` starts (PANGEA_TEST_POSTGRES_URL).

#![allow(dead_code)]

pub mod bmc;
pub mod kube;
pub mod monitor;
pub mod postgres;

use pangea::AppState;
use pangea::config::{Config, LogFormat};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Executor;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub url: String,
    /// The console's public origin, which browsers send as `Origin`.
    pub origin: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub database_url: SecretString,
    /// The data directory, where the secret key file lives (CLI runs need it).
    pub data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A TCP port on loopback free at this moment, for a program of others that cannot be told to
/// take port 0 and say which it got (Pangea's own processes are: see `process::listening`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A new, empty database on `backend` (a SQLite file in `dir`, or a new PostgreSQL database).
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> SecretString {
    match backend {
        Backend::Sqlite => SecretString::from(format!("sqlite://{}/pangea.db?mode=rwc", dir.display())),
        Backend::Postgres => {
            let admin_url = std::env::var("PANGEA_TEST_POSTGRES_URL").expect(
                "PANGEA_TEST_POSTGRES_URL is not set: run the tests with .ci/test, which starts a throwaway PostgreSQL",
            );
            let name = format!("pangea_test_{:016x}", rand::random::<u64>());
            sqlx::any::install_default_drivers();
            let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create a test database");
            let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
            SecretString::from(format!("{base}/{name}"))
        }
    }
}

/// The local admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "pangea-test-password";

pub fn test_config(database_url: SecretString, dir: &std::path::Path, listen: SocketAddr) -> Config {
    Config {
        listen,
        boot_listen: "127.0.0.1:0".parse().unwrap(),
        boot_url: "http://127.0.0.1:8080".into(),
        data_dir: dir.into(),
        assets_dir: dir.join("assets"),
        grpc: None,
        boot_retention: Default::default(),
        database_url,
        log_format: LogFormat::Human,
        site_root: dir.join("site"),
        site_embedded: false,
        public_url: format!("http://{listen}").parse().unwrap(),
        local_login_enabled: true,
        session_idle_timeout: std::time::Duration::from_secs(3600),
        session_absolute_timeout: std::time::Duration::from_secs(7200),
        // Short, so the tests see a stream end soon after its session does.
        live_recheck_every: std::time::Duration::from_millis(300),
        job_lease: pangea::jobs::LEASE,
        power_settle: pangea::power::SETTLE,
        bootstrap_admin_group: Some("pangea-admins".into()),
        bootstrap_password: Some(SecretString::from(ADMIN_PASSWORD)),
        oidc: None,
        secret_key: None,
        audit_key: None,
        trusted_proxies: vec![],
        allow_local_monitoring_urls: true,
        grafana: pangea::config::GrafanaPlacement::Off,
        power_refresh: std::time::Duration::from_secs(60),
        hardware_refresh: std::time::Duration::from_secs(3600),
    }
}

/// A console over a fresh database whose `client` is signed in as the local admin.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, async |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl AsyncFnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, dir.path()).await;
    spawn_on(url, dir, adjust).await
}

/// A console on the database at `url` (which it migrates), with a data directory of its own.
pub async fn spawn_app_on(url: SecretString) -> TestApp {
    spawn_on(url, tempfile::tempdir().unwrap(), async |_| {}).await
}

/// A console whose clusters' Grafanas are served on an origin of their own (`--grafana-listen`),
/// reached at `localhost`: another host than the console's 127.0.0.1, as browsers see hosts.
/// Returns the app and that origin.
pub async fn spawn_app_with_grafana_origin(backend: Backend) -> (TestApp, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap();
    let origin = format!("http://localhost:{}", listen.port());
    let public_url = origin.parse().unwrap();
    let app = spawn_app_with(backend, async |c| {
        c.grafana = pangea::config::GrafanaPlacement::OwnOrigin { listen, public_url };
    })
    .await;
    let router = pangea::routes::grafana_router(app.state.clone());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
    });
    (app, origin)
}

/// A console on `url`, with its data (and secret key) in `dir`.
async fn spawn_on(url: SecretString, dir: tempfile::TempDir, adjust: impl AsyncFnOnce(&mut Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = test_config(url, dir.path(), addr);
    adjust(&mut config).await;
    let state = AppState::new(&config).await.expect("start");
    let router = pangea::routes::console_router(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let mut app = TestApp {
        url: format!("http://{addr}"),
        origin: config.public_origin(),
        client: reqwest::Client::new(),
        state,
        database_url: config.database_url.clone(),
        data_dir: dir.path().to_path_buf(),
        _dir: dir,
    };
    if config.local_login_enabled {
        app.client = app.sign_in("admin", ADMIN_PASSWORD).await;
    }
    app
}

impl TestApp {
    /// Serves the boot listener on a port of its own, as `pangea serve` does.
    pub async fn boot_listener(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = pangea::routes::boot_router(self.state.clone());
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
        });
        addr
    }

    /// A second console on the same database, with the same keys: another HA replica.
    pub async fn replica(&self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(self.data_dir.join("secret.key"), dir.path().join("secret.key")).unwrap();
        let url = match self.database_url.expose_secret() {
            // Both replicas use the first one's SQLite file.
            sqlite if sqlite.starts_with("sqlite:") => SecretString::from(sqlite.to_string()),
            other => SecretString::from(other.to_string()),
        };
        spawn_on(url, dir, async |_| {}).await
    }

    /// A cookie-keeping client that says, as browsers do, that its requests come from the
    /// console's own pages (`Origin`), which the cross-site guard requires of cookie requests.
    pub fn browser(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.origin.parse().unwrap());
        reqwest::Client::builder().cookie_store(true).default_headers(headers).build().unwrap()
    }

    /// A new cookie-keeping client, signed in with a local password.
    pub async fn sign_in(&self, username: &str, password: &str) -> reqwest::Client {
        let client = self.browser();
        let res = client
            .post(self.at("/auth/login"))
            .form(&[("username", username), ("password", password), ("next", "/machines")])
            .send()
            .await
            .unwrap();
        assert!(res.url().path() == "/machines", "sign-in as {username} failed: ended at {}", res.url());
        client
    }

    /// The answer to the local admin's sign-in form, sent by an anonymous client.
    pub async fn admin_sign_in_answer(&self) -> reqwest::Response {
        self.anonymous()
            .post(self.at("/auth/login"))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap()
    }

    /// A client that sends no credentials (but, like a browser on the console's pages, its
    /// `Origin`), and does not follow redirects.
    pub fn anonymous(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.origin.parse().unwrap());
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().unwrap()
    }

    /// Adds a local user `name` whose password is `{name}-password`, bound to `role` if given.
    pub async fn add_local_user(&self, name: &str, role: impl Into<Option<app::access::ConsoleRole>>) {
        let hash = pangea::access::hash_password(&SecretString::from(format!("{name}-password"))).unwrap();
        sqlx::query(
            "INSERT INTO users (username, source, password_hash, created_at) \
             VALUES ($1, 'local', $2, '2026-01-01T00:00:00.000000Z')",
        )
        .bind(name)
        .bind(hash)
        .execute(self.state.db.pool())
        .await
        .unwrap();
        if let Some(role) = role.into() {
            self.state.access.bind(&app::access::Principal::cli(), "user", name, role).await.unwrap();
        }
    }

    /// Creates an API token with `role` (as the CLI would) and returns it.
    pub async fn token(&self, role: app::access::ConsoleRole) -> String {
        let (_, token) = self
            .state
            .access
            .create_token(&app::access::Principal::cli(), &format!("test-{}", role.as_str()), role, None, None)
            .await
            .unwrap();
        token
    }

    /// Runs the `pangea` command line on this app's database and data directory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with(args, &[])
    }

    /// The same, with these environment variables set.
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_pangea"))
            .args(args)
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--database-url")
            .arg(secrecy::ExposeSecret::expose_secret(&self.database_url))
            .output()
            .unwrap()
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client.post(self.at(path)).json(&body).send().await.unwrap()
    }

    pub async fn put_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client.put(self.at(path)).json(&body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.at(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.get(path).await;
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    pub async fn create(&self, body: serde_json::Value) -> serde_json::Value {
        let res = self.post_json("/api/v1/machines", body).await;
        assert_eq!(res.status(), 201, "create failed");
        res.json().await.unwrap()
    }

    pub async fn count(&self) -> usize {
        let mut total = 0;
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/api/v1/machines?limit=500&after={a}"),
                None => "/api/v1/machines?limit=500".to_string(),
            };
            let page = self.get_json(&path).await;
            total += page["items"].as_array().unwrap().len();
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return total,
            }
        }
    }
}

/// Declares one test per backend for a scenario `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::spawn_app($crate::support::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::spawn_app($crate::support::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

/// Declares one test per backend for a scenario `async fn(Backend)` that starts its own app.
#[macro_export]
macro_rules! on_both_backends_with_own_app {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Where a GUI import job stands, as its drawn progress (`/api/gui/poll_import`) shows it:
/// "checking", "committing", "previewed", "committed" or "failed".
pub fn import_phase(progress: &serde_json::Value) -> &'static str {
    let html = progress["html"].as_str().unwrap_or_default();
    match progress["running"].as_bool() {
        Some(true) if html.contains("Checking:") => "checking",
        Some(true) => "committing",
        Some(false) if html.contains(r#"class="preview""#) => "previewed",
        Some(false) if html.contains("alert success") => "committed",
        Some(false) if html.contains("alert error") => "failed",
        _ => "unknown",
    }
}
