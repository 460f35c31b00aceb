//! Operations endpoints, open without identity: liveness, readiness and metrics.

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The process can serve (its database answers), and which duties it holds by lease.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let leases = &state.leases;
    let held = leases.held();
    let shard = leases.shard();
    let share = match shard.of {
        0 => "none (no recent round of leases)".to_string(),
        of => format!("share {} of {of}", shard.index + 1),
    };
    let spooled = match state.provisioner.boots.spool_bytes() {
        0 => String::new(),
        bytes => format!("boot events in the spool: {bytes} bytes, written once the database takes them\n"),
    };
    let about = format!(
        "replica {}\nleases held: {}\nBMCs polled: {share}\n{spooled}",
        leases.replica(),
        if held.is_empty() { "none".to_string() } else { held.join(", ") },
    );
    if state.db.is_ready().await {
        (StatusCode::OK, format!("ready\n{about}"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("database unreachable\n{about}"))
    }
}

/// Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let refused: Vec<(&str, u64)> =
        state.provisioner.boots.refused().into_iter().map(|(why, count)| (why.as_str(), count)).collect();
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state
            .metrics
            .render(
                &state.db,
                state.provisioner.boots.dropped(),
                state.provisioner.boots.spool_bytes(),
                &refused,
                &state.leases,
            )
            .await,
    )
}
