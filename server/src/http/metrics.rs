//! Prometheus metrics, kept in the state (no global registry): requests by route and status,
//! request latency, database pool use, and build information.

use crate::AppState;
use crate::db::Database;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sqlx::Row;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DutyLabels {
    duty: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    backend: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pool_size: Gauge,
    pool_idle: Gauge,
    boot_events_dropped: Counter,
    boot_events_spooled: Gauge,
    boot_requests_refused: Family<ReasonLabels, Counter>,
    machines: Family<StateLabels, Gauge>,
    jobs: Family<JobLabels, Gauge>,
    leases: Family<DutyLabels, Gauge>,
    replicas: Gauge,
}

/// How long a count of machines and jobs serves scrapes: `/metrics` is open to anyone who
/// reaches the console, and must not put load on the database at their pace.
pub const COUNT_EVERY: Duration = Duration::from_secs(15);

impl Metrics {
    pub fn new(db: &Database) -> Metrics {
        let mut registry = Registry::with_prefix("pangea");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                backend: db.backend().as_str().into(),
            })
            .set(1);
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests, by route", latency.clone());
        registry.register("db_pool_connections", "Open database connections", pool_size.clone());
        registry.register("db_pool_idle_connections", "Idle database connections", pool_idle.clone());
        registry.register("build_info", "Pangea's version and database backend", build);
        let boot_events_dropped = Counter::default();
        registry.register(
            "boot_events_dropped",
            "Boot events not recorded: the writer's queue was full, an unknown MAC beyond the discovered limit, or \
             neither the database nor the spool took them",
            boot_events_dropped.clone(),
        );
        let boot_events_spooled = Gauge::default();
        registry.register(
            "boot_events_spool_bytes",
            "Boot events kept in this replica's spool until the database takes them, in bytes",
            boot_events_spooled.clone(),
        );
        let boot_requests_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "boot_requests_refused",
            "Boot requests refused before an answer: over the per-address or per-MAC rate, or a query over its bounds",
            boot_requests_refused.clone(),
        );
        let machines = Family::<StateLabels, Gauge>::default();
        registry.register(
            "machines",
            "Machines in the inventory, by boot state (counted every 15 s)",
            machines.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register("jobs", "Durable jobs kept, by kind and state (counted every 15 s)", jobs.clone());
        let leases = Family::<DutyLabels, Gauge>::default();
        registry.register("lease_held", "Whether this replica holds each duty's lease (1) or not (0)", leases.clone());
        let replicas = Gauge::default();
        registry.register(
            "replicas_live",
            "Replicas renewing their leases, as this one last read them",
            replicas.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            pool_size,
            pool_idle,
            boot_events_dropped,
            boot_events_spooled,
            boot_requests_refused,
            machines,
            jobs,
            leases,
            replicas,
        }
    }

    /// Counts machines by boot state and jobs by kind and state in the database; the background
    /// does it every [`COUNT_EVERY`], so a scrape answers from memory. A failed count keeps the
    /// last one.
    pub async fn count(&self, db: &Database) -> Result<(), sqlx::Error> {
        let machines = sqlx::query(
            "SELECT COALESCE(b.state, 'never_seen') AS state, COUNT(*) AS n FROM machines m \
             LEFT JOIN boot_states b ON b.mac = m.mac GROUP BY COALESCE(b.state, 'never_seen')",
        )
        .fetch_all(db.pool())
        .await?;
        let jobs = sqlx::query("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state")
            .fetch_all(db.pool())
            .await?;
        let machines: Vec<(StateLabels, i64)> = machines
            .iter()
            .map(|row| Ok((StateLabels { state: row.try_get("state")? }, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let jobs: Vec<(JobLabels, i64)> = jobs
            .iter()
            .map(|row| Ok((JobLabels { kind: row.try_get("kind")?, state: row.try_get("state")? }, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        // Under the registry's lock, which encoding holds too: a scrape never sees half a count.
        let _registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        self.machines.clear();
        for (labels, n) in machines {
            self.machines.get_or_create(&labels).set(n);
        }
        self.jobs.clear();
        for (labels, n) in jobs {
            self.jobs.get_or_create(&labels).set(n);
        }
        Ok(())
    }

    /// The metrics in Prometheus' text format; `boot_events_dropped` and `boot_requests_refused`
    /// (by reason) are the provisioner's counts, `leases` this replica's.
    pub async fn render(
        &self,
        db: &Database,
        boot_events_dropped: u64,
        boot_events_spooled: u64,
        boot_requests_refused: &[(&str, u64)],
        leases: &crate::leases::Leases,
    ) -> String {
        let held = leases.held();
        for duty in crate::leases::DUTIES {
            self.leases.get_or_create(&DutyLabels { duty: duty.into() }).set(i64::from(held.contains(&duty)));
        }
        self.replicas.set(leases.live() as i64);
        for (reason, count) in boot_requests_refused {
            let counter = self.boot_requests_refused.get_or_create(&ReasonLabels { reason: reason.to_string() });
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        self.boot_events_dropped.inc_by(boot_events_dropped.saturating_sub(self.boot_events_dropped.get()));
        self.boot_events_spooled.set(i64::try_from(boot_events_spooled).unwrap_or(i64::MAX));
        self.pool_size.set(i64::from(db.pool().size()));
        self.pool_idle.set(db.pool().num_idle() as i64);
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Counts and times each request under its route pattern (never the raw path, which would
/// let clients create unbounded series).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| {
            if req.uri().path().starts_with("/pkg/") { "/pkg/*".into() } else { "unmatched".into() }
        });
    // Only known methods become label values: any other would grow the series without bound.
    let method = match *req.method() {
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::OPTIONS => {
            req.method().as_str().to_string()
        }
        _ => "other".to_string(),
    };
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    state.metrics.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(started.elapsed().as_secs_f64());
    state.metrics.requests.get_or_create(&RequestLabels { method, route, status: response.status().as_u16() }).inc();
    response
}
