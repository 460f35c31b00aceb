//! The machine-facing endpoints, as Matchbox serves them: any method, no session, no token,
//! read-only, answered from the in-memory index. A machine that gets nothing sees Matchbox's
//! terse `404 page not found`; why goes to the log (and to "What will this machine get?").

use super::Provisioner;
use super::index::{self, Miss};
use crate::http::middleware::SECRET_LINKS;
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

fn missed(endpoint: &str, labels: &BTreeMap<String, String>, miss: &Miss) -> Response {
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

/// The answer to a boot request.
pub struct Answer {
    pub content_type: &'static str,
    pub body: Arc<str>,
    pub group: String,
    pub profile: Option<String>,
}

/// No answer: why, and the group and profile that were chosen before it went wrong.
pub struct Unanswered {
    pub miss: Miss,
    pub group: Option<String>,
    pub profile: Option<String>,
}

/// The answer to a boot request, or why there is none. Ignition and generic templates also see
/// `report_token` (see [`super::report_tokens`]); `/metadata` never lists it.
pub fn answer(
    index: &index::BootIndex,
    endpoint: Endpoint,
    labels: &BTreeMap<String, String>,
    raw_query: &str,
    report_token: &str,
) -> Result<Answer, Unanswered> {
    let Some(group) = index.select(labels) else {
        return Err(Unanswered { miss: Miss::NoGroup, group: None, profile: None });
    };
    let data = || index::template_data(group, labels, raw_query);
    let rendering_data = || index::rendering_data(group, labels, raw_query, report_token);
    let unanswered = |miss, profile: Option<&str>| Unanswered {
        miss,
        group: Some(group.id.clone()),
        profile: profile.map(str::to_string),
    };
    let answer = |content_type, body: Arc<str>, profile: Option<&str>| Answer {
        content_type,
        body,
        group: group.id.clone(),
        profile: profile.map(str::to_string),
    };
    if endpoint == Endpoint::Metadata {
        // Matchbox's content type, sic; metadata needs only the group.
        return Ok(answer("plain/text", index::metadata_lines(&data()).into(), None));
    }
    let profile = index.profile_of(group).map_err(|miss| unanswered(miss, None))?;
    let served = match endpoint {
        Endpoint::Ipxe => Ok((TEXT, index::ipxe_script(profile).into())),
        Endpoint::Grub => Ok((TEXT, index::grub_config(profile).into())),
        Endpoint::Ignition => index.ignition(profile, &rendering_data()).map(|json| ("application/json", json)),
        Endpoint::Generic | Endpoint::Metadata => {
            index.generic(profile, &rendering_data()).map(|text| (TEXT, text.into()))
        }
    };
    match served {
        Ok((content_type, body)) => Ok(answer(content_type, body, Some(&profile.id))),
        Err(miss) => Err(unanswered(miss, Some(&profile.id))),
    }
}

/// A rendering that could not run (the runtime is shutting down, or it panicked).
fn busy() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "the config could not be rendered; try again\n").into_response()
}

/// What the boot listener did with a request, for its boot event: set on the response by the
/// handlers, read by [`super::boots::observe`], never sent.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub group: Option<String>,
    pub profile: Option<String>,
    /// The config served, exactly.
    pub served: Option<Arc<str>>,
    /// Why nothing was served, or why what was served will fail, in words.
    pub reason: Option<String>,
    /// Whether the machine will fail with what was served (its Ignition cannot read it).
    pub fails: bool,
    /// The machine the request was for, when its handler knew it from elsewhere than a `mac`
    /// label (a link of the machine's own).
    pub mac: Option<String>,
    /// What the event shows as the request's path, when the path itself must not be kept (it
    /// holds a secret link's token).
    pub shown_path: Option<String>,
}

async fn serve(
    provisioner: &Provisioner,
    endpoint: Endpoint,
    raw_query: Option<String>,
    method: &Method,
    range: Option<&HeaderValue>,
    accept: Option<&HeaderValue>,
) -> Response {
    let raw_query = raw_query.unwrap_or_default();
    let mut labels = index::labels_from_query(&raw_query);
    // A report's token selects nothing and is never repeated in a reason.
    let presented = labels.remove(super::report_tokens::LABEL);
    let labels = Arc::new(labels);
    let index = provisioner.index();
    let renders = matches!(endpoint, Endpoint::Ignition | Endpoint::Generic);
    let now = time::OffsetDateTime::now_utc();
    let token = match labels.get("mac") {
        Some(mac) if renders => provisioner.report_tokens.token(mac, now),
        _ => String::new(),
    };
    let from_the_machine = match (labels.get("mac"), &presented) {
        (Some(mac), Some(presented)) => provisioner.report_tokens.verify(mac, presented, now),
        _ => false,
    };
    let answered = if renders {
        // Templates render off the async workers, a few at a time; each stops at its limits.
        let Ok(_permit) = provisioner.render_turn().await else { return busy() };
        let (index, labels, raw_query, token) = (index.clone(), labels.clone(), raw_query.clone(), token.clone());
        let rendered = move || answer(&index, endpoint, &labels, &raw_query, &token);
        match tokio::task::spawn_blocking(rendered).await {
            Ok(answered) => answered,
            Err(_) => return busy(),
        }
    } else {
        answer(&index, endpoint, &labels, &raw_query, "")
    };
    let (mut response, outcome) = match answered {
        // A config with links to a machine's secrets goes to that machine only: its installer asks
        // with the report token its install config holds. Anyone else on the boot network who
        // names its MAC gets nothing.
        Ok(answer) if answer.body.contains(SECRET_LINKS) && !from_the_machine => {
            let why = if presented.is_some() {
                "its report_token is not this machine's, or expired"
            } else {
                "it carries no report_token"
            };
            let reason = format!(
                "{}: refused: this config links to the machine's secrets and goes only to the machine itself, \
                 which asks with the report token of its install config; {why}",
                endpoint.name()
            );
            let response = (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response();
            let outcome = Outcome {
                group: Some(answer.group),
                profile: answer.profile,
                reason: Some(reason),
                ..Default::default()
            };
            (response, outcome)
        }
        Ok(mut answer) => {
            let mut unreadable = None;
            if endpoint == Endpoint::Ignition {
                let served = super::ignition::for_client(&answer.body, accept.and_then(|a| a.to_str().ok()));
                (answer.body, unreadable) = (served.config, served.unreadable);
            }
            let response = if endpoint == Endpoint::Generic {
                super::assets::serve_bytes(answer.content_type, answer.body.as_bytes().to_vec(), method, range, None)
            } else {
                text(answer.content_type, answer.body.to_string())
            };
            // The timeline keeps what was served, but for the machine's report token, which only
            // its config may hold (viewers read the timeline).
            let kept = if !token.is_empty() && answer.body.contains(&token) {
                Arc::from(answer.body.replace(&token, super::report_tokens::SHOWN))
            } else {
                answer.body
            };
            let outcome = Outcome {
                group: Some(answer.group),
                profile: answer.profile,
                served: Some(kept),
                fails: unreadable.is_some(),
                reason: unreadable.map(|why| format!("{}: {why}", endpoint.name())),
                ..Default::default()
            };
            (response, outcome)
        }
        Err(Unanswered { miss, group, profile }) => {
            let why = match miss {
                Miss::NoGroup => index.why_unmatched(&labels),
                ref other => other.to_string(),
            };
            let response = missed(endpoint.name(), &labels, &miss);
            (
                response,
                Outcome { group, profile, reason: Some(format!("{}: {why}", endpoint.name())), ..Default::default() },
            )
        }
    };
    response.extensions_mut().insert(outcome);
    response
}

macro_rules! boot_endpoint {
    ($name:ident, $endpoint:expr) => {
        pub async fn $name(State(p): State<Arc<Provisioner>>, RawQuery(q): RawQuery, req: Request<Body>) -> Response {
            let headers = req.headers();
            serve(&p, $endpoint, q, req.method(), headers.get(header::RANGE), headers.get(header::ACCEPT)).await
        }
    };
}

boot_endpoint!(ipxe, Endpoint::Ipxe);
boot_endpoint!(grub, Endpoint::Grub);
boot_endpoint!(ignition, Endpoint::Ignition);
boot_endpoint!(generic, Endpoint::Generic);
boot_endpoint!(metadata, Endpoint::Metadata);
