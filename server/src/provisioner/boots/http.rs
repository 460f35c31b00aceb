//! `/api/v1/boot/…`: timelines (and their live stream), the last hour's boots, discovered
//! machines and adding them, and configs as they were served. Thin adapters over [`Provisioner`].

use crate::http::Path;
use crate::http::live::LiveCheck;
use crate::http::{ApiResult, Json};
use crate::http::{Route, route};
use crate::provisioner::Provisioner;
use app::access::{Permission, Principal, authorize};
use app::provisioning::boots::{AdoptDiscovered, BootActivity, Discovered, Timeline};
use axum::Extension;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The routes, under `/api/v1`.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/boot/timeline/{mac}", timeline),
        route(Method::GET, "/boot/timeline/{mac}/live", live_timeline),
        route(Method::GET, "/boot/activity", activity),
        route(Method::GET, "/boot/discovered", discovered),
        route(Method::POST, "/boot/discovered/adopt", adopt),
        route(Method::GET, "/boot/served/{sha256}", served),
    ]
}

#[utoipa::path(get, path = "/api/v1/boot/timeline/{mac}",
    responses((status = 200, body = Timeline), (status = 400, body = app::error::AppError)))]
async fn timeline(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(mac): Path<String>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(p.timeline(&who, &mac).await?))
}

/// Changes that arrive together are sent as one timeline.
const SETTLE: Duration = Duration::from_millis(100);

/// The timeline now, then again whenever it changes, as server-sent events (`event: timeline`).
/// It ends when the page closes it, or when the caller's session or token ends or loses the role.
#[utoipa::path(get, path = "/api/v1/boot/timeline/{mac}/live",
    responses((status = 200, description = "text/event-stream of Timeline"), (status = 400, body = app::error::AppError)))]
async fn live_timeline(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Extension(live): Extension<LiveCheck>,
    Path(mac): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let updates = p.boots.subscribe();
    let first = p.timeline(&who, &mac).await?;
    let mac = first.mac.clone();
    let stream =
        futures::stream::unfold((p, who, mac, updates, Some(first)), |(p, who, mac, mut updates, first)| async move {
            let timeline = match first {
                Some(first) => first,
                None => loop {
                    match updates.recv().await {
                        Ok(changed) if changed != mac => continue,
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            tokio::time::sleep(SETTLE).await;
                            while updates.try_recv().is_ok() {}
                            match p.timeline(&who, &mac).await {
                                Ok(timeline) => break timeline,
                                Err(_) => return None,
                            }
                        }
                        Err(RecvError::Closed) => return None,
                    }
                },
            };
            let event = Event::default().event("timeline").json_data(&timeline).unwrap_or_default();
            Some((Ok(event), (p, who, mac, updates, None)))
        });
    let stream = live.guard(stream, |who| authorize(who, Permission::ViewMachines).is_ok())?;
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(crate::http::live::KEEP_ALIVE)))
}

#[utoipa::path(get, path = "/api/v1/boot/activity", responses((status = 200, body = BootActivity)))]
async fn activity(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<BootActivity>> {
    Ok(Json(p.boot_activity(&who).await?))
}

#[utoipa::path(get, path = "/api/v1/boot/discovered", responses((status = 200, body = Vec<Discovered>)))]
async fn discovered(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Json<Vec<Discovered>>> {
    Ok(Json(p.discovered(&who).await?))
}

/// Adds discovered machines to the inventory (all or none); answers their MACs.
#[utoipa::path(post, path = "/api/v1/boot/discovered/adopt", request_body = AdoptDiscovered,
    responses((status = 200, body = Vec<String>), (status = 400, body = app::error::AppError)))]
async fn adopt(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Json(request): Json<AdoptDiscovered>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(p.adopt(&who, request).await?))
}

/// A config exactly as it was served, by SHA-256 (as a boot event names it).
#[utoipa::path(get, path = "/api/v1/boot/served/{sha256}",
    responses((status = 200, description = "the config, as served", content_type = "text/plain"), (status = 404, body = app::error::AppError)))]
async fn served(
    State(p): State<Arc<Provisioner>>,
    Extension(who): Extension<Principal>,
    Path(sha256): Path<String>,
) -> ApiResult<Response> {
    let body = p.served_config(&who, &sha256).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(timeline, live_timeline, activity, discovered, adopt, served),
    components(schemas(
        Timeline,
        app::provisioning::boots::BootEvent,
        app::provisioning::boots::BootStatus,
        app::provisioning::boots::BootState,
        BootActivity,
        app::provisioning::boots::ActivityMinute,
        Discovered,
        AdoptDiscovered
    ))
)]
pub struct BootsApi;
