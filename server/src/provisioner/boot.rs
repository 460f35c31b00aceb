//! The machine-facing endpoints, as Matchbox serves them: any method, no session, no token,
//! read-only, answered from the in-memory index. A machine that gets nothing sees Matchbox's
//! terse `404 page not found`; why goes to the log (and to "What will this machine get?").

use super::Provisioner;
use super::index::{self, Miss};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;

const TEXT: &str = "text/plain; charset=utf-8";

/// `404 page not found`, exactly as Go's `http.NotFound` writes it.
pub fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, TEXT), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        "404 page not found\n",
    )
        .into_response()
}

fn text(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body.into()).into_response()
}

fn missed(endpoint: &str, labels: &BTreeMap<String, String>, miss: Miss) -> Response {
    tracing::info!(endpoint, labels = ?labels, reason = %miss, "boot request not served");
    not_found()
}

/// `/`: the same one line for everyone.
pub async fn root() -> Response {
    text(TEXT, "pangea\n")
}

/// `/boot.ipxe` and `/boot.ipxe.0`: chainloads `/ipxe` with the machine's own labels.
pub async fn boot_ipxe() -> Response {
    text(
        TEXT,
        "#!ipxe\nchain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}&serial=${serial}&arch=${buildarch:uristring}\n",
    )
}

/// What a boot request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Ipxe,
    Grub,
    Ignition,
    Generic,
    Metadata,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Ipxe => "ipxe",
            Endpoint::Grub => "grub",
            Endpoint::Ignition => "ignition",
            Endpoint::Generic => "generic",
            Endpoint::Metadata => "metadata",
        }
    }
}

/// The answer to a boot request: `(content type, body)`, or why there is none.
pub fn answer(
    index: &index::BootIndex,
    endpoint: Endpoint,
    labels: &BTreeMap<String, String>,
    raw_query: &str,
) -> Result<(&'static str, String), Miss> {
    let group = index.select(labels).ok_or(Miss::NoGroup)?;
    let data = || index::template_data(group, labels, raw_query);
    Ok(match endpoint {
        // Matchbox's content type, sic; metadata needs only the group.
        Endpoint::Metadata => ("plain/text", index::metadata_lines(&data())),
        Endpoint::Ipxe => (TEXT, index::ipxe_script(index.profile_of(group)?)),
        Endpoint::Grub => (TEXT, index::grub_config(index.profile_of(group)?)),
        Endpoint::Ignition => ("application/json", index.ignition(index.profile_of(group)?, &data())?.to_string()),
        Endpoint::Generic => (TEXT, index.generic(index.profile_of(group)?, &data())?),
    })
}

async fn serve(
    provisioner: &Provisioner,
    endpoint: Endpoint,
    raw_query: Option<String>,
    method: &Method,
    range: Option<&HeaderValue>,
) -> Response {
    let raw_query = raw_query.unwrap_or_default();
    let labels = index::labels_from_query(&raw_query);
    let index = provisioner.index();
    match answer(&index, endpoint, &labels, &raw_query) {
        Ok((content_type, body)) if endpoint == Endpoint::Generic => {
            super::assets::serve_bytes(content_type, body.into_bytes(), method, range, None)
        }
        Ok((content_type, body)) => text(content_type, body),
        Err(miss) => missed(endpoint.name(), &labels, miss),
    }
}

macro_rules! boot_endpoint {
    ($name:ident, $endpoint:expr) => {
        pub async fn $name(State(p): State<Arc<Provisioner>>, RawQuery(q): RawQuery, req: Request<Body>) -> Response {
            serve(&p, $endpoint, q, req.method(), req.headers().get(header::RANGE)).await
        }
    };
}

boot_endpoint!(ipxe, Endpoint::Ipxe);
boot_endpoint!(grub, Endpoint::Grub);
boot_endpoint!(ignition, Endpoint::Ignition);
boot_endpoint!(generic, Endpoint::Generic);
boot_endpoint!(metadata, Endpoint::Metadata);
