//! A Redfish client for machines' BMCs, written against the DMTF schema's JSON
//! (`ServiceRoot`, `ComputerSystemCollection`, `ComputerSystem`, `SessionService`), used gently:
//! - at most [`SESSIONS_PER_BMC`] sessions per BMC, reused, and deleted when Pangea stops (a BMC
//!   without a `SessionService` is asked with HTTP basic authentication instead);
//! - at most [`IN_FLIGHT_PER_BMC`] requests in flight per BMC;
//! - after a 503 or a connection error, the BMC is left alone for a back-off that doubles (1 s,
//!   then up to 60 s) until it answers again;
//! - every request has a time limit, and every answer a size cap.
//!
//! BMCs lock out callers that leak sessions (iDRAC: about eight, then minutes of lock-out), so a
//! session is made only when none is idle, and a session the BMC forgot is made again once.

use crate::error::cause;
use crate::http::body::read_within;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Sessions Pangea keeps open per BMC at most.
pub const SESSIONS_PER_BMC: usize = 2;
/// Requests in flight per BMC at most.
pub const IN_FLIGHT_PER_BMC: usize = 4;
/// How long one request to a BMC may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The most of a BMC's answer Pangea reads.
const MAX_ANSWER: usize = 1 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How to trust a BMC's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BmcTrust {
    /// The system's roots.
    System,
    /// This PEM CA bundle (BMCs often have their own CA).
    Ca(String),
    /// Any certificate: shown as a warning wherever the BMC is.
    Unverified,
}

/// Where a BMC is and how to sign in to it.
#[derive(Clone)]
pub struct BmcAccess {
    /// Its Redfish service: `https://host[:port]` (the path `/redfish/v1` is Redfish's).
    pub origin: url::Url,
    pub username: String,
    pub password: SecretString,
    pub trust: BmcTrust,
}

/// Why a BMC did not do what it was asked, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmcError {
    #[error("the BMC at {0} cannot be reached: {1}")]
    Unreachable(String, String),
    #[error("the BMC at {0} did not answer within {1} s")]
    TimedOut(String, u64),
    #[error("the BMC at {0} refused the user name or password (HTTP {1})")]
    Credentials(String, u16),
    #[error("the BMC at {0} is busy (HTTP 503); Pangea waits {1} s before asking it again")]
    Busy(String, u64),
    /// Left alone after it failed: what it did, and for how much longer.
    #[error("the BMC at {0} {1}; Pangea waits {2} s before asking it again")]
    BackedOff(String, String, u64),
    #[error("the BMC at {0} answered {1}")]
    Refused(String, String),
    /// An answer Pangea did not read, in words.
    #[error("{0}")]
    Unreadable(String),
}

/// One BMC's connection: its client, the requests in flight, its sessions and its back-off.
struct Link {
    access: BmcAccess,
    timeout: Duration,
    http: reqwest::Client,
    in_flight: Semaphore,
    /// Its sessions: idle ones, every open one, and whether the BMC has none at all.
    sessions: Mutex<Sessions>,
    /// Made-session slots: at most [`SESSIONS_PER_BMC`] exist at once.
    session_slots: Semaphore,
    backoff: Mutex<Backoff>,
}

#[derive(Default)]
struct Sessions {
    idle: Vec<Session>,
    /// Every session made and not deleted (idle or in use), to delete at shutdown.
    open: Vec<Session>,
    /// The BMC has no `SessionService`: basic authentication on each request.
    basic_only: bool,
}

#[derive(Clone)]
struct Session {
    token: SecretString,
    /// The session's URI, to delete it.
    location: String,
}

#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    next: Duration,
    /// What the BMC last did that started or doubled it, in words ("is busy (HTTP 503)").
    why: String,
}

/// Every BMC Pangea talks to, by origin and user: one link each, for the whole process.
#[derive(Clone)]
pub struct Redfish {
    /// By `origin user`.
    links: Arc<Mutex<HashMap<String, Arc<Link>>>>,
    /// How long one request may take.
    timeout: Duration,
}

impl Default for Redfish {
    fn default() -> Redfish {
        Redfish { links: Arc::default(), timeout: REQUEST_TIMEOUT }
    }
}

/// A link kept nowhere, for checking a BMC a person gives (whose password may be wrong): it
/// replaces no link in use, and signs in with HTTP basic authentication on each request, so it
/// opens no session beside those of the link in use (which may hold the BMC's last ones).
pub struct Trial(Arc<Link>);

impl Trial {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer, BmcError> {
        self.0.call(method, path, body).await
    }
}

/// Whether an address is link-local (a cloud's metadata service, 169.254.169.254, is one), also
/// when written as an IPv4-mapped IPv6 address.
pub fn link_local(ip: std::net::IpAddr) -> bool {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Resolves BMC host names, leaving out link-local addresses: a name that points at a metadata
/// service reaches nothing.
struct NotLinkLocal;

impl reqwest::dns::Resolve for NotLinkLocal {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addresses: Vec<std::net::SocketAddr> = found.filter(|a| !link_local(a.ip())).collect();
            if addresses.is_empty() {
                return Err(format!("{host} resolves only to link-local addresses, which are no BMC's").into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An answer: its status and its JSON (`Null` when there was none).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

fn origin_of(access: &BmcAccess) -> String {
    access.origin.origin().ascii_serialization()
}

impl Redfish {
    /// Requests that may take `timeout` each (tests shorten it).
    pub fn with_timeout(timeout: Duration) -> Redfish {
        Redfish { timeout, ..Redfish::default() }
    }

    /// The link to `access`'s BMC: the one in use when the origin, user, password and trust are
    /// the same, else a new one (the one it replaces ends its sessions at once).
    fn link(&self, access: &BmcAccess) -> Result<Arc<Link>, BmcError> {
        let key = format!("{} {}", origin_of(access), access.username);
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(link) = links.get(&key)
            && link.access.password.expose_secret() == access.password.expose_secret()
            && link.access.trust == access.trust
        {
            return Ok(link.clone());
        }
        let link = Arc::new(self.build(access)?);
        if let Some(replaced) = links.insert(key, link.clone()) {
            tokio::spawn(async move { replaced.close().await });
        }
        Ok(link)
    }

    /// A link to `access`'s BMC that replaces none: see [`Trial`].
    pub fn trial(&self, access: &BmcAccess) -> Result<Trial, BmcError> {
        let link = self.build(access)?;
        link.sessions.lock().unwrap_or_else(|p| p.into_inner()).basic_only = true;
        Ok(Trial(Arc::new(link)))
    }

    fn build(&self, access: &BmcAccess) -> Result<Link, BmcError> {
        let origin = origin_of(access);
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(NotLinkLocal))
            .redirect(reqwest::redirect::Policy::none());
        match &access.trust {
            BmcTrust::System => {}
            BmcTrust::Unverified => builder = builder.danger_accept_invalid_certs(true),
            BmcTrust::Ca(pem) => {
                let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                    BmcError::Refused(
                        origin.clone(),
                        format!("nothing: its CA is not PEM certificates ({})", cause(&e)),
                    )
                })?;
                for root in roots {
                    builder = builder.add_root_certificate(root);
                }
            }
        }
        let http = builder.build().map_err(|e| BmcError::Unreachable(origin, cause(&e)))?;
        Ok(Link {
            access: access.clone(),
            timeout: self.timeout,
            http,
            in_flight: Semaphore::new(IN_FLIGHT_PER_BMC),
            sessions: Mutex::default(),
            session_slots: Semaphore::new(SESSIONS_PER_BMC),
            backoff: Mutex::default(),
        })
    }

    /// Sends `method path` (a path under the BMC's origin, such as `/redfish/v1/Systems`) with
    /// `body`, as the BMC's user.
    pub async fn call(
        &self,
        access: &BmcAccess,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, BmcError> {
        self.link(access)?.call(method, path, body).await
    }

    /// Deletes every session Pangea holds, on every BMC at once, for at most 10 s (at shutdown).
    pub async fn close_all(&self) {
        let links: Vec<Arc<Link>> =
            self.links.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, link)| link).collect();
        let closed = futures::future::join_all(links.iter().map(|link| link.close()));
        if tokio::time::timeout(Duration::from_secs(10), closed).await.is_err() {
            tracing::warn!("some BMCs' Redfish sessions were not deleted within 10 s");
        }
    }
}

impl Link {
    fn origin(&self) -> String {
        origin_of(&self.access)
    }

    /// Refuses a request while the BMC is backed off.
    fn backed_off(&self) -> Result<(), BmcError> {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match backoff.until {
            Some(until) if until > Instant::now() => Err(BmcError::BackedOff(
                self.origin(),
                backoff.why.clone(),
                until.saturating_duration_since(Instant::now()).as_secs().max(1),
            )),
            _ => Ok(()),
        }
    }

    /// Notes how the BMC answered: a 503 or no answer (`failed`, in words) backs off (doubling),
    /// anything else ends it.
    fn note(&self, failed: Option<String>) -> u64 {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let Some(why) = failed else {
            *backoff = Backoff::default();
            return 0;
        };
        backoff.why = why;
        backoff.next = (backoff.next * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
        backoff.until = Some(Instant::now() + backoff.next);
        backoff.next.as_secs()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        session: Option<&Session>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value), BmcError> {
        let origin = self.origin();
        // Paths come from the BMC's own answers too: they stay on its Redfish service.
        let url = self
            .access
            .origin
            .join(path)
            .ok()
            .filter(|url| url.origin() == self.access.origin.origin() && url.path().starts_with("/redfish/v1"))
            .ok_or_else(|| BmcError::Refused(origin.clone(), format!("a link outside its Redfish service ({path})")))?;
        let mut request = self.http.request(method, url).header("accept", "application/json");
        request = match session {
            Some(session) => request.header("x-auth-token", session.token.expose_secret()),
            None => request.basic_auth(&self.access.username, Some(self.access.password.expose_secret())),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                self.note(Some(format!("did not answer within {} s", self.timeout.as_secs())));
                return Err(BmcError::TimedOut(origin, self.timeout.as_secs()));
            }
            Err(e) => {
                let why = cause(&e);
                let waits = self.note(Some(format!("cannot be reached: {why}")));
                return Err(BmcError::Unreachable(
                    origin,
                    format!("{why}; Pangea waits {waits} s before asking again"),
                ));
            }
        };
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return Err(BmcError::Busy(origin, self.note(Some("is busy (HTTP 503)".into()))));
        }
        self.note(None);
        let headers = response.headers().clone();
        let bytes =
            read_within(response, MAX_ANSWER).await.map_err(|e| BmcError::Unreadable(e.say("The BMC", &origin)))?;
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok((status, headers, json))
    }

    /// An idle session, a new one (when fewer than [`SESSIONS_PER_BMC`] exist), or `None` for a
    /// BMC without sessions.
    async fn session(&self) -> Result<Option<(Session, tokio::sync::SemaphorePermit<'_>)>, BmcError> {
        if self.sessions.lock().unwrap_or_else(|p| p.into_inner()).basic_only {
            return Ok(None);
        }
        let slot = self
            .session_slots
            .acquire()
            .await
            .map_err(|_| BmcError::Refused(self.origin(), "nothing: Pangea is stopping".into()))?;
        if let Some(idle) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).idle.pop() {
            return Ok(Some((idle, slot)));
        }
        let credentials = json!({ "UserName": self.access.username, "Password": self.access.password.expose_secret() });
        let (status, headers, _) =
            self.send(Method::POST, "/redfish/v1/SessionService/Sessions", Some(&credentials), None).await?;
        match status {
            s if s.is_success() => {
                let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let location = headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
                if token.is_empty() {
                    return Err(BmcError::Refused(self.origin(), "a new session without its X-Auth-Token".into()));
                }
                let location = url::Url::parse(location).map(|u| u.path().to_string()).unwrap_or(location.to_string());
                let session = Session { token: SecretString::from(token.to_string()), location };
                self.sessions.lock().unwrap_or_else(|p| p.into_inner()).open.push(session.clone());
                Ok(Some((session, slot)))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(BmcError::Credentials(self.origin(), status.as_u16()))
            }
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                self.sessions.lock().unwrap_or_else(|p| p.into_inner()).basic_only = true;
                Ok(None)
            }
            other => Err(BmcError::Refused(self.origin(), format!("HTTP {} to a new session", other.as_u16()))),
        }
    }

    /// Forgets a session the BMC no longer knows.
    fn forget(&self, session: &Session) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.open.retain(|s| s.location != session.location);
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer, BmcError> {
        let _turn = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| BmcError::Refused(self.origin(), "nothing: Pangea is stopping".into()))?;
        self.backed_off()?;
        for attempt in 0..2 {
            let session = self.session().await?;
            let with_session = session.is_some();
            let sent = self.send(method.clone(), path, body.as_ref(), session.as_ref().map(|(s, _)| s)).await;
            // A session goes back to the idle ones whatever happened, but one the BMC no longer
            // knows (a 401), which is forgotten.
            if let Some((session, _slot)) = session {
                if matches!(sent, Ok((StatusCode::UNAUTHORIZED, ..))) {
                    self.forget(&session);
                } else {
                    self.sessions.lock().unwrap_or_else(|p| p.into_inner()).idle.push(session);
                }
            }
            let (status, _, json) = sent?;
            match status {
                // The BMC forgot the session (it timed out there): make one again, once.
                StatusCode::UNAUTHORIZED if with_session && attempt == 0 => continue,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(BmcError::Credentials(self.origin(), status.as_u16()));
                }
                _ => return Ok(Answer { status, body: json }),
            }
        }
        Err(BmcError::Credentials(self.origin(), StatusCode::UNAUTHORIZED.as_u16()))
    }

    /// Deletes this link's sessions at the BMC.
    async fn close(&self) {
        let open = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.idle.clear();
            std::mem::take(&mut sessions.open)
        };
        let deleted = open.iter().map(|session| async move {
            if let Err(e) = self.send(Method::DELETE, &session.location, None, Some(session)).await {
                tracing::warn!(bmc = %self.origin(), error = %e, "could not delete a Redfish session");
            }
        });
        futures::future::join_all(deleted).await;
    }
}
