//! The Pangea server: configuration, storage, services and the HTTP listeners.
//!
//! `serve` reads top to bottom: config → database → state → routers → listeners.

pub mod audit;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod machines;
pub mod telemetry;

use config::Config;
use std::sync::Arc;

/// Everything a request handler may need, built once at start-up and cloned into each router.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub db: db::Database,
    pub machines: Arc<machines::MachineStore>,
    pub metrics: Arc<http::metrics::Metrics>,
    pub leptos: leptos::config::LeptosOptions,
}

impl AppState {
    pub async fn new(config: &Config) -> Result<AppState, error::StartError> {
        let db = db::Database::connect(&config.database_url).await?;
        db.migrate().await?;
        Ok(AppState::from_database(db, config))
    }

    pub fn from_database(db: db::Database, config: &Config) -> AppState {
        AppState {
            machines: Arc::new(machines::MachineStore::new(db.clone())),
            metrics: Arc::new(http::metrics::Metrics::new(&db)),
            leptos: config.leptos_options(),
            db,
        }
    }
}

/// Runs the console and the boot listener until SIGINT or SIGTERM, then drains both.
pub async fn serve(config: Config) -> Result<(), error::StartError> {
    let state = AppState::new(&config).await?;
    let console =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| error::StartError::Bind(config.listen, e))?;
    let boot = tokio::net::TcpListener::bind(config.boot_listen)
        .await
        .map_err(|e| error::StartError::Bind(config.boot_listen, e))?;
    tracing::info!(console = %config.listen, boot = %config.boot_listen, backend = state.db.backend().as_str(), "pangea is serving");
    let shutdown = telemetry::shutdown_signal();
    let shutdown = futures::FutureExt::shared(shutdown);
    let console = axum::serve(
        console,
        http::console_router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone());
    let boot = axum::serve(boot, http::boot_router(state)).with_graceful_shutdown(shutdown);
    tokio::try_join!(console.into_future(), boot.into_future()).map_err(error::StartError::Serve)?;
    tracing::info!("pangea stopped cleanly");
    Ok(())
}
