//! The Pangea server: configuration, storage, services and the HTTP listeners.
//!
//! `serve` reads top to bottom: config → database → state → routers → listeners.

pub mod access;
pub mod audit;
pub mod background;
pub mod clusters;
pub mod config;
pub mod creation;
pub mod db;
pub mod error;
pub mod http;
pub mod jobs;
pub mod leases;
pub mod machines;
pub mod monitoring;
pub mod overview;
pub mod power;
pub mod provisioner;
pub mod rolling;
pub mod routes;
pub mod secrets;
pub mod site;
pub mod telemetry;

use config::Config;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request handler may need, built once at start-up and cloned into each router.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub db: db::Database,
    /// Durable jobs, one set for the process (its replica id in their leases), shared by the areas.
    pub jobs: jobs::Jobs,
    /// The duties this replica holds by lease, and its share of the BMCs.
    #[from_ref(skip)]
    pub leases: Arc<leases::Leases>,
    pub machines: Arc<machines::Machines>,
    pub access: Arc<access::Access>,
    pub audit: Arc<audit::AuditLog>,
    /// Profiles, groups and templates, and the boot index served from memory.
    pub provisioner: Arc<provisioner::Provisioner>,
    /// Registered Kubernetes clusters and their live caches.
    pub clusters: Arc<clusters::Clusters>,
    /// Charts from each cluster's Prometheus.
    pub monitoring: Arc<monitoring::Monitoring>,
    /// Machines' BMCs and power, over Redfish.
    pub power: power::Power,
    /// Cluster creation: templates applied, their jobs, and the machines' secret links.
    pub creation: Arc<creation::Creation>,
    /// Rolling operations: a change rolled across a cluster's nodes, gated on its health.
    pub rolling: Arc<rolling::Rolling>,
    /// The home page's fleet at a glance.
    pub overview: Arc<overview::Overview>,
    /// How often every BMC's power is read.
    pub power_refresh: Duration,
    /// How often every BMC's hardware is read.
    #[from_ref(skip)]
    pub hardware_refresh: Duration,
    pub sessions: access::sessions::SessionBackend,
    pub auth: access::AuthSettings,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<access::sso::Oidc>>,
    /// Seals IdP refresh tokens at rest.
    pub sealer: Arc<secrets::Sealer>,
    pub metrics: Arc<http::metrics::Metrics>,
    pub leptos: leptos::config::LeptosOptions,
    /// Every background task: IdP refreshes, pruning.
    pub background: background::Background,
    /// Sessions whose IdP refresh is running in this process (one at a time per session).
    pub refreshing: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Live streams open per person (see [`http::live`]).
    pub live_streams: http::live::OpenStreams,
}

impl AppState {
    /// Opens and migrates the database, then creates the local admin on first start.
    pub async fn new(config: &Config) -> Result<AppState, error::StartError> {
        let (sealer, chain_key) =
            secrets::load_keys(config.secret_key.as_ref(), config.audit_key.as_ref(), &config.data_dir)
                .map_err(|e| error::StartError::Bootstrap(e.to_string()))?;
        let db = db::Database::connect(&config.database_url, chain_key).await?;
        db.migrate().await?;
        let state = AppState::from_database(db, sealer, config).await?;
        match state.access.ensure_bootstrap_admin(config.bootstrap_password.clone()).await {
            Ok(Some(password)) => {
                // Straight to the terminal, once: never through the log pipeline, which may ship
                // logs elsewhere and keep them.
                tracing::warn!(
                    username = access::LOCAL_ADMIN,
                    "created the local admin account; its password is printed on stderr only now"
                );
                eprintln!(
                    "\nPangea created the local admin account.\n  user name: {}\n  password:  {password}\n\
                     This password is shown only now: sign in and keep it safe (or set PANGEA_BOOTSTRAP_PASSWORD).\n",
                    access::LOCAL_ADMIN
                );
            }
            Ok(None) => {}
            Err(e) => return Err(error::StartError::Bootstrap(e.to_string())),
        }
        if let Some(group) = &config.bootstrap_admin_group {
            state.access.ensure_admin_group(group).await.map_err(|e| error::StartError::Bootstrap(e.to_string()))?;
        }
        Ok(state)
    }

    pub async fn from_database(
        db: db::Database,
        sealer: secrets::Sealer,
        config: &Config,
    ) -> Result<AppState, error::StartError> {
        let background = background::Background::default();
        let jobs = jobs::Jobs::new(db.clone()).with_lease(config.job_lease);
        let leases =
            Arc::new(leases::Leases::new(db.clone(), jobs.replica().to_string(), config.job_lease.min(leases::LEASE)));
        let sealer = Arc::new(sealer);
        let provisioner = Arc::new(
            provisioner::Provisioner::open(db.clone(), config.assets_dir.clone())
                .await
                .map_err(|e| error::StartError::Bootstrap(format!("cannot load the provisioning catalog: {e}")))?
                .with_boot_retention(config.boot_retention)
                .with_boot_spool(config.data_dir.join("boot-events.spool"))
                .map_err(|e| {
                    error::StartError::Bootstrap(format!(
                        "cannot open the boot events' spool in {}: {e}",
                        config.data_dir.display()
                    ))
                })?,
        );
        let clusters = Arc::new(
            clusters::Clusters::new(
                db.clone(),
                sealer.clone(),
                jobs.clone(),
                Arc::new(monitoring::source_check::SourceCheck),
            )
            .with_provisioner(provisioner.clone())
            .with_background(background.clone())
            .with_local_monitoring_urls(config.allow_local_monitoring_urls)
            .with_single_sign_on(config.oidc.as_ref().map(|o| clusters::SingleSignOn {
                issuer: o.issuer.to_string(),
                client_id: o.client_id.clone(),
                scopes: [vec!["email".to_string()], o.extra_scopes.clone()].concat(),
            })),
        );
        let machines = Arc::new(
            machines::Machines::new(
                db.clone(),
                jobs.clone(),
                provisioner.clone(),
                Arc::new(power::InventoryPower { db: db.clone(), sealer: sealer.clone() }),
                sealer.clone(),
            )
            .with_background(background.clone()),
        );
        let power = power::Power::new(
            db.clone(),
            sealer.clone(),
            machines.clone(),
            provisioner.clone(),
            jobs.clone(),
            background.clone(),
        )
        .with_settle(config.power_settle);
        let creation = Arc::new(creation::Creation::new(
            db.clone(),
            machines.clone(),
            sealer.clone(),
            provisioner.clone(),
            power.clone(),
            clusters.clone(),
            jobs.clone(),
            background.clone(),
            config.boot_url.clone(),
        ));
        let monitoring = Arc::new(
            monitoring::Monitoring::new(db.clone(), clusters.clone())
                .with_grafana_served(config.grafana != config::GrafanaPlacement::Off),
        );
        let rolling = Arc::new(rolling::Rolling::new(
            db.clone(),
            clusters.clone(),
            power.clone(),
            monitoring.clone(),
            provisioner.clone(),
            creation.clone(),
            jobs.clone(),
            background.clone(),
        ));
        Ok(AppState {
            power,
            creation,
            rolling,
            overview: Arc::new(overview::Overview::new(db.clone(), clusters.clone(), monitoring.clone())),
            monitoring,
            power_refresh: config.power_refresh,
            hardware_refresh: config.hardware_refresh,
            clusters,
            machines,
            access: Arc::new(access::Access::new(db.clone(), config.local_login_enabled, config.oidc.is_some())),
            audit: Arc::new(audit::AuditLog::new(db.clone())),
            provisioner: provisioner.clone(),
            sessions: access::sessions::SessionBackend::connect(&config.database_url, db.backend()).await?,
            auth: access::AuthSettings {
                public_origin: config.public_origin(),
                secure_cookies: config.public_url.scheme() == "https",
                idle_timeout: config.session_idle_timeout,
                absolute_timeout: config.session_absolute_timeout,
                trusted_proxies: config.trusted_proxies.clone(),
                live_recheck_every: config.live_recheck_every,
                grafana: config.grafana.clone(),
            },
            oidc: config.oidc.clone().map(|settings| Arc::new(access::sso::Oidc::new(settings))),
            sealer,
            metrics: Arc::new(http::metrics::Metrics::new(&db)),
            leptos: config.leptos_options(),
            background,
            refreshing: Arc::default(),
            live_streams: Default::default(),
            jobs,
            leases,
            db,
        })
    }

    /// Starts the periodic work of a serving process, every minute: pruning expired sessions,
    /// failing jobs whose replica stopped, and forgetting jobs a day after they ended.
    pub async fn start_background_work(&self) {
        self.sweep_jobs().await;
        if let Err(e) = self.leases.round(&leases::DUTIES).await {
            tracing::warn!(error = %e, "could not take this replica's first leases");
        }
        self.leases.keep_renewing(&self.background);
        self.provisioner.follow_changes(&self.background);
        self.provisioner.record_boots(&self.background);
        if let Err(e) = self.clusters.start().await {
            tracing::warn!(error = %e, "cannot load the registered clusters");
        }
        self.clusters.follow_nodes(&self.background, self.leases.clone());
        // Scrapes of /metrics answer from memory: the counts are made here.
        let state = self.clone();
        self.background.every(http::metrics::COUNT_EVERY, move || {
            let state = state.clone();
            async move {
                if let Err(e) = state.metrics.count(&state.db).await {
                    tracing::warn!(error = %e, "metrics: cannot count machines and jobs");
                }
            }
        });
        // Each live replica reads its share of the BMCs.
        let (power, leases) = (self.power.clone(), self.leases.clone());
        self.background.every(self.power_refresh, move || {
            let (power, shard) = (power.clone(), leases.shard());
            async move { power.refresh_all(shard).await }
        });
        let (power, leases) = (self.power.clone(), self.leases.clone());
        self.background.every(self.hardware_refresh, move || {
            let (power, shard) = (power.clone(), leases.shard());
            async move { power.read_hardware_all(shard).await }
        });
        let state = self.clone();
        self.background.every(Duration::from_secs(60), move || {
            let state = state.clone();
            async move {
                if !state.leases.holds(leases::PRUNE) {
                    return;
                }
                state.prune_expired_sessions().await;
                if let Err(e) = state.jobs.forget_older_than(Duration::from_secs(24 * 3600)).await {
                    tracing::warn!(error = %e, "could not forget old jobs");
                }
            }
        });
        // A job whose replica died is taken over within a lease and a third.
        let state = self.clone();
        self.background.every(self.jobs.lease() / 3, move || {
            let state = state.clone();
            async move { state.sweep_jobs().await }
        });
    }

    /// Takes over the jobs whose replica stopped renewing their lease, and resumes each in its
    /// area; fails those of a kind no area resumes.
    pub async fn sweep_jobs(&self) {
        let jobs = &self.jobs;
        // A job goes on as whoever started it is now: with today's roles, or not at all.
        let acting_now = async |mut job: jobs::Job| -> Result<jobs::Job, app::error::AppError> {
            job.acting = match job.acting.take() {
                Some(recorded) => self.access.acting_now(recorded).await?,
                None => None,
            };
            Ok(job)
        };
        let taken = async {
            for job in jobs.take_over(machines::IMPORT_JOB).await? {
                self.machines.resume_import(acting_now(job).await?);
            }
            for job in jobs.take_over(clusters::drain::DRAIN_JOB).await? {
                self.clusters.resume_drain(acting_now(job).await?);
            }
            for job in jobs.take_over(power::POWER_RUN).await? {
                self.power.resume_run(acting_now(job).await?);
            }
            for job in jobs.take_over(power::discovery::DISCOVERY_JOB).await? {
                self.power.resume_discovery(acting_now(job).await?);
            }
            for job in jobs.take_over(creation::CREATE_JOB).await? {
                self.creation.resume_creation(acting_now(job).await?);
            }
            for job in jobs.take_over(rolling::ROLLING_JOB).await? {
                self.rolling.resume_operation(acting_now(job).await?);
            }
            jobs.fail_abandoned(&[
                machines::IMPORT_JOB,
                clusters::drain::DRAIN_JOB,
                power::POWER_RUN,
                power::discovery::DISCOVERY_JOB,
                creation::CREATE_JOB,
                rolling::ROLLING_JOB,
            ])
            .await
        };
        match taken.await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "failed jobs whose replica stopped while they ran"),
            Err(e) => tracing::warn!(error = %e, "could not sweep abandoned jobs"),
        }
    }

    /// Deletes expired sessions from the session store and from the "Your sessions" list, with
    /// their sealed IdP refresh tokens.
    pub async fn prune_expired_sessions(&self) {
        if let Err(e) = self.sessions.delete_expired().await {
            tracing::warn!(error = %e, "could not prune expired sessions from the session store");
        }
        match self.access.prune_sessions(self.auth.idle_timeout, self.auth.absolute_timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "pruned expired sessions"),
            Err(e) => tracing::warn!(error = %e, "could not prune expired sessions"),
        }
    }
}

/// Runs the console and the boot listener until SIGINT or SIGTERM, then drains both.
pub async fn serve(mut config: Config) -> Result<(), error::StartError> {
    let shutdown = futures::FutureExt::shared(telemetry::shutdown_signal());
    if config.site_embedded {
        site::unpack(&config.site_root).map_err(|e| error::StartError::Site(config.site_root.clone(), e))?;
    }
    // SQLite serves one process; held until this one ends, however it ends.
    let _serving = match db::sqlite_path(secrecy::ExposeSecret::expose_secret(&config.database_url)) {
        Some(file) => {
            Some(leases::ServeLock::take(std::path::Path::new(file)).map_err(error::StartError::AlreadyServing)?)
        }
        None => None,
    };
    let console =
        tokio::net::TcpListener::bind(config.listen).await.map_err(|e| error::StartError::Bind(config.listen, e))?;
    let boot = tokio::net::TcpListener::bind(config.boot_listen)
        .await
        .map_err(|e| error::StartError::Bind(config.boot_listen, e))?;
    // Port 0 is the kernel's choice: the log says which port it became, and so does a public
    // URL taken from the listen address.
    let console_at = console.local_addr().map_err(|e| error::StartError::Bind(config.listen, e))?;
    let boot_at = boot.local_addr().map_err(|e| error::StartError::Bind(config.boot_listen, e))?;
    if config.public_url.port() == Some(0) {
        let _ = config.public_url.set_port(Some(console_at.port()));
    }
    if let Ok(mut boot_url) = url::Url::parse(&config.boot_url)
        && boot_url.port() == Some(0)
    {
        let _ = boot_url.set_port(Some(boot_at.port()));
        config.boot_url = boot_url.to_string().trim_end_matches('/').to_string();
    }
    // A signal while it starts (migrations may wait for another replica's) ends it cleanly.
    let state = tokio::select! {
        state = AppState::new(&config) => state?,
        () = shutdown.clone() => return Ok(()),
    };
    tracing::info!(console = %console_at, boot = %boot_at, backend = state.db.backend().as_str(), public_url = %config.public_url, "pangea is serving");
    state.start_background_work().await;
    let background = state.background.clone();
    let state_clusters = state.clusters.clone();
    let state_jobs = state.jobs.clone();
    let state_power = state.power.clone();
    let state_leases = state.leases.clone();
    let console = axum::serve(
        console,
        routes::console_router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone());
    let grpc = match &config.grpc {
        Some((at, tls)) => {
            let listener = tokio::net::TcpListener::bind(at).await.map_err(|e| error::StartError::Bind(*at, e))?;
            tracing::info!(grpc = %at, "serving Matchbox's gRPC API (TLS, client certificates required)");
            let (provisioner, tls, shutdown) = (state.provisioner.clone(), tls.clone(), shutdown.clone());
            Some(async move { provisioner::grpc::serve(provisioner, listener, &tls, shutdown).await })
        }
        None => None,
    };
    let boot = axum::serve(
        boot,
        routes::boot_router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone());
    let grpc = async move {
        match grpc {
            Some(serving) => serving.await.map_err(std::io::Error::other),
            None => Ok(()),
        }
    };
    let grafana = match &config.grafana {
        config::GrafanaPlacement::OwnOrigin { listen, public_url } => {
            let listener =
                tokio::net::TcpListener::bind(listen).await.map_err(|e| error::StartError::Bind(*listen, e))?;
            tracing::info!(grafana = %listen, public_url = %public_url, "serving the clusters' Grafanas on an origin of their own");
            let router = routes::grafana_router(state.clone());
            Some(
                axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .with_graceful_shutdown(shutdown.clone()),
            )
        }
        _ => None,
    };
    let grafana = async move {
        match grafana {
            Some(serving) => serving.await,
            None => Ok(()),
        }
    };
    let served = tokio::try_join!(console.into_future(), boot.into_future(), grpc, grafana)
        .map(|_| ())
        .map_err(error::StartError::Serve);
    background.stop().await;
    // Its runs ended: another replica may take its jobs over now, not a lease later.
    match state_jobs.release_all().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "left running jobs to another replica"),
        Err(e) => tracing::warn!(error = %e, "could not release this replica's job leases"),
    }
    // Its duties go to another replica now, not a lease later.
    state_leases.release().await;
    state_clusters.stop();
    // BMCs lock out callers who leak sessions: Pangea ends its own.
    state_power.close().await;
    served?;
    tracing::info!("pangea stopped cleanly");
    Ok(())
}
