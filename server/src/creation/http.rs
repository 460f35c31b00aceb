//! Cluster creation's handlers: on the boot listener, the machines' secret links.

use super::{Creation, SecretAnswer};
use crate::provisioner::boot::{Outcome, not_found};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;

/// `GET /cluster-secrets/{token}/{*path}`: the file once, then Matchbox's 404, as for any path
/// that is not there. The boot event names the machine, and shows the path without its token
/// (as the request log does).
pub async fn secret(
    State(creation): State<Arc<Creation>>,
    Path((token, path)): Path<(String, String)>,
    request: Request,
) -> Response {
    let from = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let shown_path = Some(crate::http::middleware::logged_path(request.uri().path()).into_owned());
    // axum answers HEAD with a GET route: a HEAD must not use up the link either.
    if request.method() != Method::GET {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response.extensions_mut().insert(Outcome { shown_path, ..Default::default() });
        return response;
    }
    let (mut response, outcome) = match creation.fetch_secret(&token, &path, from).await {
        Ok(SecretAnswer::Served { mac, text }) => (
            (
                [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")],
                text.expose_secret().to_string(),
            )
                .into_response(),
            Outcome { mac: Some(mac), shown_path, ..Default::default() },
        ),
        Ok(SecretAnswer::Refused { mac, reason }) => {
            (not_found(), Outcome { mac, shown_path, reason: Some(reason), ..Default::default() })
        }
        Err(_) => {
            let busy = (StatusCode::SERVICE_UNAVAILABLE, "the file could not be read; try again\n").into_response();
            (busy, Outcome { shown_path, reason: Some("the file could not be read".into()), ..Default::default() })
        }
    };
    response.extensions_mut().insert(outcome);
    response
}
