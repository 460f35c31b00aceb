//! Every request to the boot listener becomes a boot event. The listener queues what it saw
//! ([`observe`]); one writer task per replica attributes events to machines, derives each
//! machine's state, keeps the discovered list, and writes what has queued meanwhile in one
//! transaction (a group commit). Each answer waits for its event's transaction, so a replica
//! killed at any moment has answered no request whose event it had not stored; a storm costs
//! a transaction per batch, not per request.

pub mod http;
pub mod load;
pub mod spool;
pub mod store;

use super::Provisioner;
use super::boot::Outcome;
use crate::audit::{self, Event};
use crate::db::Database;
use crate::error::Error;
use crate::error::OrInternal;
use app::access::{Permission, Principal, authorize};
use app::error::AppError;
use app::machines::mac::MacAddr;
use app::machines::{MachineInput, MachineSpec};
use app::provisioning::boots::{AdoptDiscovered, BootActivity, BootState, Discovered, Timeline};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How much boot history is kept, and how fast anyone may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Requests a second one source address may make, in bursts of twice that; 0: no limit.
    pub per_address: u32,
    /// Requests a second for one MAC label, in bursts of twice that; 0: no limit.
    pub per_mac: u32,
    /// Events kept per machine (and for requests no machine could be named for).
    pub per_machine: u32,
    /// Events, and discovered machines not seen since, are forgotten after this.
    pub max_age: Duration,
    /// At most this many discovered machines; MACs beyond it are neither listed nor recorded.
    pub discovered: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            per_address: 100,
            per_mac: 20,
            per_machine: 200,
            max_age: Duration::from_secs(30 * 24 * 3600),
            discovered: 1000,
        }
    }
}

/// Events waiting for the writer; beyond this a request is answered without waiting and its
/// event is dropped (counted in the metric `pangea_boot_events_dropped_total`).
const QUEUE: usize = 65_536;
/// The most events one transaction writes.
const BATCH: usize = 1024;
/// The longest a batch's write (or a round of the spool) may take before the batch goes to the
/// spool instead (the database hangs rather than refuses), so an answer waits a bounded time.
const WRITE_WAIT: Duration = Duration::from_secs(5);
/// The longest an answer waits for its event to be kept, should the disk hang too.
const KEPT_WAIT: Duration = Duration::from_secs(30);
/// How often spooled batches are offered to the database again once it refused them.
const SPOOL_RETRY: Duration = Duration::from_secs(2);
/// The most spooled batches written between two new ones, so answers do not wait on a long
/// spool.
const SPOOL_ROUND: usize = 16;
/// How long a stopping Pangea goes on writing queued boot events.
const SHUTDOWN_WRITING: Duration = Duration::from_secs(5);
/// A request without labels (`/assets/…`) belongs to the machine that last asked from the same
/// address within this time.
const SAME_ADDRESS: Duration = Duration::from_secs(30 * 60);

/// A request as the boot listener saw it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub at: OffsetDateTime,
    pub endpoint: String,
    pub labels: BTreeMap<String, String>,
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
    pub client: Option<IpAddr>,
    pub outcome: Outcome,
    /// Whether the request presented its machine's report token: `None` when it presented
    /// none, else whether the token was right (see [`super::report_tokens`]).
    pub report_token: Option<bool>,
}

/// A queued event, and the request that waits until it is stored.
type Queued = (Observed, oneshot::Sender<()>);

/// Adds to `batch` what is queued now, up to [`BATCH`] events.
fn take_queued(receiver: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
    while batch.len() < BATCH
        && let Ok(next) = receiver.try_recv()
    {
        batch.push(next);
    }
}

/// An event ready to write: attributed, with its step and reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attributed {
    pub at: String,
    pub mac: String,
    pub uuid: String,
    pub endpoint: String,
    pub labels: BTreeMap<String, String>,
    pub group: String,
    pub profile: String,
    pub status: u16,
    pub bytes: u64,
    pub duration_us: u64,
    pub client: String,
    pub sha256: String,
    pub reason: String,
    pub step: Option<BootState>,
}

pub struct Boots {
    db: Database,
    queue: mpsc::Sender<Queued>,
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Queued>>>,
    /// The MACs whose timeline just changed, for live pages.
    updates: broadcast::Sender<String>,
    dropped: AtomicU64,
    /// Discovered machines that gave way to newly seen MACs while the list was full.
    gave_way: AtomicU64,
    /// Events written since this process started.
    stored_events: AtomicU64,
    /// Whether this replica's writer runs (a process without background work has none, and
    /// its answers do not wait for one).
    writing: AtomicBool,
    pub retention: Retention,
    /// Digests of configs written lately: each is written once.
    stored: std::sync::Mutex<std::collections::HashSet<String>>,
    by_address: RateLimiter<IpAddr>,
    by_mac: RateLimiter<String>,
    /// Requests refused before they were answered, by why: (over the per-address rate, over the
    /// per-MAC rate, a query over its bounds).
    refused: [AtomicU64; 3],
    /// Requests answered and their answer times, for the last hour.
    pub load: load::Load,
    /// Where batches the database did not take wait for it.
    spool: Option<spool::Spool>,
}

/// The most a boot request's query may hold, in bytes, labels, and bytes per label key and value.
const MAX_QUERY: usize = 2048;
const MAX_LABELS: usize = 32;
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 256;

/// Token buckets by key: `rate` requests a second, in bursts of twice that. At most
/// [`RateLimiter::KEYS`] keys are followed; idle ones are forgotten first, and while the table is
/// still full, new keys pass unfollowed (the per-address limit still holds them).
struct RateLimiter<K> {
    rate: u32,
    buckets: std::sync::Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    const KEYS: usize = 100_000;

    fn new(rate: u32) -> Self {
        RateLimiter { rate, buckets: Default::default() }
    }

    fn admit(&self, key: K) -> bool {
        if self.rate == 0 {
            return true;
        }
        let (rate, burst, now) = (f64::from(self.rate), f64::from(self.rate) * 2.0, Instant::now());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= Self::KEYS && !buckets.contains_key(&key) {
            buckets.retain(|_, (_, last)| now.duration_since(*last) < Duration::from_secs(60));
            if buckets.len() >= Self::KEYS {
                return true;
            }
        }
        let (tokens, last) = buckets.entry(key).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why the boot listener refused a request before answering it.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Address = 0,
    Mac = 1,
    Oversized = 2,
}

impl Refusal {
    pub const ALL: [Refusal; 3] = [Refusal::Address, Refusal::Mac, Refusal::Oversized];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Address => "address_rate",
            Refusal::Mac => "mac_rate",
            Refusal::Oversized => "oversized_query",
        }
    }

    pub fn in_words(self) -> &'static str {
        match self {
            Refusal::Address => "over the per-address rate",
            Refusal::Mac => "over the per-MAC rate",
            Refusal::Oversized => "with a query over its bounds",
        }
    }
}

/// The boot listener's outer layer: a query over its bounds, or a source address or MAC asking
/// faster than its rate, is answered at once (414, 400 or 429) and neither rendered nor recorded.
/// Matchbox has no such limits; nothing a real boot sends comes near them.
pub async fn guard(State(provisioner): State<Arc<Provisioner>>, request: Request, next: Next) -> Response {
    let boots = &provisioner.boots;
    let refuse = |why: Refusal, status: StatusCode, text: &'static str| {
        boots.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        (status, [(header::RETRY_AFTER, "1")], text).into_response()
    };
    let query = request.uri().query().unwrap_or("");
    if query.len() > MAX_QUERY {
        return refuse(Refusal::Oversized, StatusCode::URI_TOO_LONG, "the query is over 2048 bytes\n");
    }
    let pairs: Vec<(std::borrow::Cow<str>, std::borrow::Cow<str>)> =
        url::form_urlencoded::parse(query.as_bytes()).collect();
    if pairs.len() > MAX_LABELS || pairs.iter().any(|(k, v)| k.len() > MAX_KEY || v.len() > MAX_VALUE) {
        return refuse(
            Refusal::Oversized,
            StatusCode::BAD_REQUEST,
            "at most 32 labels, keys of 64 bytes, values of 256\n",
        );
    }
    if let Some(ip) = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
        && !boots.by_address.admit(ip)
    {
        return refuse(Refusal::Address, StatusCode::TOO_MANY_REQUESTS, "too many requests from this address\n");
    }
    if let Some((_, mac)) = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case("mac"))
        && !boots.by_mac.admit(mac.to_ascii_lowercase().replace('-', ":"))
    {
        return refuse(Refusal::Mac, StatusCode::TOO_MANY_REQUESTS, "too many requests for this MAC\n");
    }
    next.run(request).await
}

/// The state a request moves its machine to: `Pxe` for `/boot.ipxe`, `Script` for a script,
/// `Assets` for a kernel or initrd, `Ignition` (or `Installed` with `os=installed`) for a config,
/// `Installed` for a `/metadata` report of `stage=installed` or `done`, and `Failed` for a 404
/// or a `stage=failed` report. Other requests leave the state alone.
pub fn step_of(endpoint: &str, labels: &BTreeMap<String, String>, status: u16) -> Option<BootState> {
    let ok = status < 400;
    let installed = labels.get("os").is_some_and(|os| os == "installed");
    let serves_a_machine = matches!(endpoint, "/ipxe" | "/grub" | "/ignition" | "/generic" | "/metadata")
        || endpoint.starts_with("/assets/");
    match endpoint {
        "/boot.ipxe" | "/boot.ipxe.0" => Some(BootState::Pxe),
        _ if !serves_a_machine => None,
        _ if !ok => Some(BootState::Failed),
        "/ipxe" | "/grub" => Some(BootState::Script),
        "/ignition" if installed => Some(BootState::Installed),
        "/ignition" => Some(BootState::Ignition),
        "/metadata" => match labels.get("stage").map(String::as_str) {
            Some("installed" | "done") => Some(BootState::Installed),
            Some("failed") => Some(BootState::Failed),
            _ => None,
        },
        "/generic" if installed => Some(BootState::Installed),
        _ if endpoint.starts_with("/assets/") => Some(BootState::Assets),
        _ => None,
    }
}

/// Whether a request is a machine's report of `installed` or `failed`, which must carry its
/// report token to move the machine's state: a `/metadata` stage report, or a config fetched
/// with `os=installed` (as Matchbox's installed systems do).
fn is_report(endpoint: &str, labels: &BTreeMap<String, String>, status: u16) -> bool {
    let stage = labels.get("stage").map(String::as_str);
    let installed = labels.get("os").is_some_and(|os| os == "installed");
    status < 400
        && match endpoint {
            "/metadata" => matches!(stage, Some("installed" | "done" | "failed")),
            "/ignition" | "/generic" => installed,
            _ => false,
        }
}

/// The boot listener's layer: times each request and queues what it saw.
pub async fn observe(State(provisioner): State<Arc<Provisioner>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = OffsetDateTime::now_utc();
    let mut endpoint = bounded_endpoint(request.uri().path());
    let mut labels = super::index::labels_from_query(request.uri().query().unwrap_or(""));
    // The token is checked here and never kept: the timeline shows only whether it was right.
    let report_token = labels
        .remove(super::report_tokens::LABEL)
        .map(|token| labels.get("mac").is_some_and(|mac| provisioner.report_tokens.verify(mac, &token, at)));
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let mut response = next.run(request).await;
    let mut outcome = response.extensions_mut().remove::<Outcome>().unwrap_or_default();
    if let Some(shown) = outcome.shown_path.take() {
        endpoint = bounded_endpoint(&shown);
    }
    if let Some(mac) = outcome.mac.take() {
        labels.insert("mac".into(), mac);
    }
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| axum::body::HttpBody::size_hint(response.body()).exact())
        .unwrap_or(0);
    let duration = started.elapsed();
    // Refusals (over a rate, too large) never get here: `guard` answers them outside this layer.
    provisioner.boots.load.record(duration);
    provisioner
        .boots
        .record(Observed {
            at,
            endpoint,
            labels,
            status: response.status().as_u16(),
            bytes,
            duration,
            client,
            outcome,
            report_token,
        })
        .await;
    response
}

/// The most of a request's path an event keeps. With the query's bounds (see [`guard`]), one
/// stored event is at most about 11 KiB, whatever a stranger sends.
pub const MAX_ENDPOINT: usize = 256;

/// The most of one served config that is kept for its timeline; a larger one is recorded by its
/// digest and size only. Configs are kept once per digest, and only while an event names them.
pub const MAX_KEPT_CONFIG: usize = 1 << 20;

/// `path`, cut to [`MAX_ENDPOINT`] bytes (on a character boundary) with `…` when longer.
fn bounded_endpoint(path: &str) -> String {
    if path.len() <= MAX_ENDPOINT {
        return path.to_string();
    }
    let mut end = MAX_ENDPOINT;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

/// Remembers which machine last asked from each address, to attribute unlabeled requests.
#[derive(Default)]
pub struct Addresses(HashMap<IpAddr, (String, OffsetDateTime)>);

impl Addresses {
    fn machine_at(&self, client: Option<IpAddr>, at: OffsetDateTime) -> Option<String> {
        let (mac, seen) = self.0.get(&client?)?;
        (at - *seen <= SAME_ADDRESS).then(|| mac.clone())
    }

    fn saw(&mut self, client: Option<IpAddr>, mac: &str, at: OffsetDateTime) {
        let Some(client) = client else { return };
        if self.0.len() >= 65_536 {
            self.0.retain(|_, (_, seen)| at - *seen <= SAME_ADDRESS);
        }
        self.0.insert(client, (mac.to_string(), at));
    }
}

/// Names the machine of a request, its step and, for a failure, the reason in words.
pub fn attribute(
    index: &super::index::BootIndex,
    addresses: &mut Addresses,
    observed: &Observed,
) -> (Attributed, Option<Arc<str>>) {
    let labels = &observed.labels;
    let uuid = labels.get("uuid").cloned().unwrap_or_default();
    let labelled = labels
        .get("mac")
        .cloned()
        .or_else(|| index.mac_of_uuid(&uuid).map(str::to_string).filter(|_| !uuid.is_empty()));
    let mac = match &labelled {
        Some(mac) => {
            addresses.saw(observed.client, mac, observed.at);
            mac.clone()
        }
        // A /boot.ipxe is the first request of a boot: it belongs to whichever machine chains to
        // /ipxe next from its address (the writer attributes it then), not to the last one.
        None if observed.endpoint.starts_with("/boot.ipxe") => String::new(),
        None => addresses.machine_at(observed.client, observed.at).unwrap_or_default(),
    };
    let mut step = step_of(&observed.endpoint, labels, observed.status);
    if observed.outcome.fails {
        step = Some(BootState::Failed);
    }
    let mut reason = match (&observed.outcome.reason, step) {
        (Some(reason), _) => reason.clone(),
        (None, Some(BootState::Failed)) if observed.endpoint == "/metadata" => {
            format!("the machine reported stage=failed: {}", labels.get("reason").map_or("no reason given", |r| r))
        }
        (None, Some(BootState::Failed)) => format!("{} answered {}", observed.endpoint, observed.status),
        (None, _) => String::new(),
    };
    // Anyone on the boot network can send a report: only one with its machine's token counts.
    if is_report(&observed.endpoint, labels, observed.status) && observed.report_token != Some(true) {
        let why = match observed.report_token {
            None => "it carries no report_token",
            Some(_) => "its report_token is not this machine's, or expired",
        };
        let what = step.map_or("", BootState::as_str);
        reason = format!("unverified report of {what} ({why}): the machine's state is unchanged. {reason}")
            .trim_end()
            .to_string();
        step = None;
    }
    let served = observed.outcome.served.clone();
    let sha256 = served.as_deref().map(super::sha256).unwrap_or_default();
    let served = served.filter(|body| body.len() <= MAX_KEPT_CONFIG);
    let event = Attributed {
        at: crate::db::timestamp(observed.at),
        mac,
        uuid,
        endpoint: observed.endpoint.clone(),
        labels: labels.clone(),
        group: observed.outcome.group.clone().unwrap_or_default(),
        profile: observed.outcome.profile.clone().unwrap_or_default(),
        status: observed.status,
        bytes: observed.bytes,
        duration_us: u64::try_from(observed.duration.as_micros()).unwrap_or(u64::MAX),
        client: observed.client.map(|c| c.to_string()).unwrap_or_default(),
        sha256,
        reason,
        step,
    };
    (event, served)
}

impl Boots {
    pub fn new(db: Database, retention: Retention) -> Boots {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Boots {
            db,
            queue,
            receiver: std::sync::Mutex::new(Some(receiver)),
            updates: broadcast::channel(1024).0,
            dropped: AtomicU64::new(0),
            gave_way: AtomicU64::new(0),
            stored_events: AtomicU64::new(0),
            writing: AtomicBool::new(false),
            retention,
            stored: Default::default(),
            by_address: RateLimiter::new(retention.per_address),
            by_mac: RateLimiter::new(retention.per_mac),
            refused: Default::default(),
            load: load::Load::default(),
            spool: None,
        }
    }

    /// Keeps the batches the database does not take in `spool` until it does.
    pub fn keep_spool(&mut self, spool: spool::Spool) {
        self.spool = Some(spool);
    }

    /// Requests refused before they were answered, by why.
    pub fn refused(&self) -> Vec<(Refusal, u64)> {
        Refusal::ALL.iter().map(|&why| (why, self.refused[why as usize].load(Ordering::Relaxed))).collect()
    }

    /// Queues what a request saw and waits until it is kept: stored, or spooled until the
    /// database takes it (a write, or a round of the spool, takes [`WRITE_WAIT`] at most; only a
    /// disk that hangs outlasts [`KEPT_WAIT`]). An event the full queue cannot take is answered
    /// at once and counted as dropped.
    async fn record(&self, observed: Observed) {
        let (kept, waiting) = oneshot::channel();
        if self.queue.try_send((observed, kept)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.writing.load(Ordering::Relaxed) {
            let _ = tokio::time::timeout(KEPT_WAIT, waiting).await;
        }
    }

    /// Events not recorded: the queue was full, or the write failed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written since this process started.
    pub fn stored(&self) -> u64 {
        self.stored_events.load(Ordering::Relaxed)
    }

    /// Events queued and not yet written.
    pub fn backlog(&self) -> usize {
        QUEUE - self.queue.capacity()
    }

    /// Discovered machines that gave way to newly seen MACs since this process started.
    pub fn gave_way(&self) -> u64 {
        self.gave_way.load(Ordering::Relaxed)
    }

    /// Records that an inventory machine's node registered (`Joined`) or turned Ready, as the
    /// clusters area sees it: an event on the machine's timeline with that step.
    pub async fn record_node_step(
        &self,
        index: &super::index::BootIndex,
        mac: &str,
        step: BootState,
        node: &str,
    ) -> Result<(), Error> {
        let event = Attributed {
            at: crate::db::timestamp(OffsetDateTime::now_utc()),
            mac: mac.to_string(),
            uuid: String::new(),
            endpoint: format!("node {node}"),
            labels: BTreeMap::new(),
            group: String::new(),
            profile: String::new(),
            status: 200,
            bytes: 0,
            duration_us: 0,
            client: String::new(),
            sha256: String::new(),
            reason: match step {
                BootState::Ready => format!("node {node} is Ready"),
                _ => format!("node {node} registered with the cluster"),
            },
            step: Some(step),
        };
        store::write(&self.db, index, &self.retention, &self.stored, &[(event, None)]).await?;
        let _ = self.updates.send(mac.to_string());
        Ok(())
    }

    /// Notes on `mac`'s timeline something Pangea did to it outside the boot listener (`what`,
    /// e.g. `power`), said in `reason`; live pages see it at once.
    pub async fn note(&self, mac: &str, what: &str, reason: &str) -> Result<(), crate::error::Error> {
        let at = crate::db::timestamp(time::OffsetDateTime::now_utc());
        store::insert_note(&self.db, &at, mac, what, reason).await?;
        let _ = self.updates.send(mac.to_string());
        Ok(())
    }

    /// The MACs whose timeline changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.updates.subscribe()
    }

    /// Writes one batch in one transaction, then tells its requests and live pages. A batch the
    /// database does not take waits in the spool (its requests are answered: it is kept), and so
    /// does every batch after it while the spool holds any. Whether the database just failed.
    async fn write(&self, index: &super::index::BootIndex, addresses: &mut Addresses, batch: Vec<Queued>) -> bool {
        let (batch, waiting): (Vec<Observed>, Vec<oneshot::Sender<()>>) = batch.into_iter().unzip();
        let events: Vec<_> = batch.iter().map(|o| attribute(index, addresses, o)).collect();
        let spooled = self.spooled();
        let mut failure = match spooled {
            true => None,
            false => self.store(index, &events).await.err(),
        };
        if let Some(e) = &failure {
            let kept = match &self.spool {
                Some(spool) => spool.append(&events).map_err(|e| e.to_string()),
                None => Err("there is no spool".to_string()),
            };
            match kept {
                Ok(true) if !spooled => {
                    tracing::warn!(error = %e, "could not write boot events: they wait in the spool until the database takes them");
                }
                Ok(true) => {}
                Ok(false) => self.drop_batch(events.len(), e, "the spool is full"),
                Err(spooling) => self.drop_batch(events.len(), e, &spooling),
            }
        } else if spooled {
            // Earlier batches wait in the spool: this one joins them, unless the spool cannot
            // take it, when the database is asked after all.
            let kept = self.spool.as_ref().map(|spool| spool.append(&events));
            if !matches!(kept, Some(Ok(true))) {
                failure = self.store(index, &events).await.err();
                if let Some(e) = &failure {
                    self.drop_batch(events.len(), e, "the spool cannot take it");
                }
            }
        }
        for request in waiting {
            let _ = request.send(());
        }
        failure.is_some()
    }

    /// Writes `events` in one transaction within [`WRITE_WAIT`], counting them.
    async fn store(
        &self,
        index: &super::index::BootIndex,
        events: &[(Attributed, Option<Arc<str>>)],
    ) -> Result<(), String> {
        let written =
            tokio::time::timeout(WRITE_WAIT, store::write(&self.db, index, &self.retention, &self.stored, events))
                .await
                .map_err(|_| format!("the database did not answer within {} s", WRITE_WAIT.as_secs()))?
                .map_err(|e| e.to_string())?;
        self.counted(events.len(), &written);
        Ok(())
    }

    fn drop_batch(&self, events: usize, error: &str, why: &str) {
        self.dropped.fetch_add(events as u64, Ordering::Relaxed);
        tracing::warn!(error, why, events, "boot events were not stored");
    }

    /// Counts a written batch of `total` events, and tells live pages.
    fn counted(&self, total: usize, written: &store::Written) {
        self.stored_events.fetch_add(total as u64 - written.refused, Ordering::Relaxed);
        self.dropped.fetch_add(written.refused, Ordering::Relaxed);
        self.gave_way.fetch_add(written.gave_way, Ordering::Relaxed);
        for mac in &written.machines {
            let _ = self.updates.send(mac.clone());
        }
    }

    /// How much the spool holds, in bytes (0 with no spool).
    pub fn spool_bytes(&self) -> u64 {
        self.spool.as_ref().map_or(0, spool::Spool::bytes)
    }

    /// Whether spooled batches wait for the database.
    fn spooled(&self) -> bool {
        self.spool.as_ref().is_some_and(spool::Spool::pending)
    }

    /// Writes up to [`SPOOL_ROUND`] spooled batches, oldest first, within [`WRITE_WAIT`] in all,
    /// until the database refuses one; a batch whose events are stored already (its commit
    /// landed though it was reported failed) is skipped. Whether the database took every batch it
    /// was offered.
    async fn write_spooled(&self, index: &super::index::BootIndex) -> bool {
        let Some(spool) = &self.spool else { return false };
        let read = match spool.next(SPOOL_ROUND) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the boot events' spool");
                return false;
            }
        };
        let round = async {
            for batch in &read.batches {
                let events: Vec<(Attributed, Option<Arc<str>>)> =
                    batch.iter().map(|s| (s.event.clone(), s.served.as_deref().map(Arc::from))).collect();
                if !store::stored_already(&self.db, &events).await? {
                    let written = store::write(&self.db, index, &self.retention, &self.stored, &events).await?;
                    self.counted(events.len(), &written);
                }
            }
            Ok::<(), Error>(())
        };
        let whole = matches!(tokio::time::timeout(WRITE_WAIT, round).await, Ok(Ok(())));
        if !whole {
            // Written up to where the database stopped; the rest waits for the next round.
            return false;
        }
        if read.unreadable > 0 {
            let why = "the spool held lines this Pangea cannot read";
            self.drop_batch(read.unreadable as usize, "unreadable lines", why);
        }
        match spool.written(&read) {
            Ok(()) if !spool.pending() => tracing::info!("the boot events kept in the spool are written"),
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot empty the boot events' spool");
                return false;
            }
        }
        true
    }

    /// Writes what `receiver` holds, batch by batch, until it is empty or `within` has passed;
    /// then closes it. Returns how many events were not written, counted as dropped.
    async fn write_until(
        &self,
        index: &super::index::BootIndex,
        addresses: &mut Addresses,
        receiver: &mut mpsc::Receiver<Queued>,
        within: Duration,
    ) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        receiver.close();
        let mut lost = 0;
        loop {
            let mut batch = Vec::new();
            take_queued(receiver, &mut batch);
            let size = batch.len() as u64;
            if size == 0 {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                lost += size;
                while receiver.try_recv().is_ok() {
                    lost += 1;
                }
                break;
            }
            // A write cut off by the deadline rolls back whole: its events count as lost.
            if tokio::time::timeout_at(deadline, self.write(index, addresses, batch)).await.is_err() {
                lost += size;
                while receiver.try_recv().is_ok() {
                    lost += 1;
                }
                break;
            }
        }
        self.dropped.fetch_add(lost, Ordering::Relaxed);
        lost
    }

    /// Forgets events and discovered machines older than the retention allows.
    pub async fn prune(&self) -> Result<u64, Error> {
        let cutoff = OffsetDateTime::now_utc() - self.retention.max_age;
        let pruned = store::prune(&self.db, &crate::db::timestamp(cutoff)).await;
        // Configs may have been forgotten: write each again when next served.
        if let Ok(mut stored) = self.stored.lock() {
            stored.clear();
        }
        pruned
    }
}

/// Events a timeline shows at most.
const TIMELINE: u32 = 200;

fn parse_mac(mac: &str) -> Result<String, AppError> {
    let mac: MacAddr =
        mac.trim().parse().map_err(|e: app::machines::mac::InvalidMac| AppError::invalid(e.to_string()))?;
    Ok(mac.to_string())
}

impl Provisioner {
    /// A machine's boot state and recent events (an inventory or a discovered machine).
    pub async fn timeline(&self, who: &Principal, mac: &str) -> Result<Timeline, AppError> {
        self.allow(who, Permission::ViewMachines, "machine.boots.view").await?;
        let mac = parse_mac(mac)?;
        // One snapshot: the writer changes events and state together, and a state read before its
        // commit with events read after it showed a failed request with no state.
        let mut snapshot = self.db.snapshot().await.or_internal()?;
        let status = store::status(&mut snapshot, &mac).await.or_internal()?;
        let events = store::events(&mut snapshot, &mac, TIMELINE).await.or_internal()?;
        snapshot.commit().await.or_internal()?;
        Ok(Timeline { mac, status, events })
    }

    /// A config exactly as the boot listener served it, by its SHA-256.
    pub async fn served_config(&self, who: &Principal, sha256: &str) -> Result<String, AppError> {
        self.allow(who, Permission::ViewProvisioning, "provisioning.view").await?;
        let served = store::served(&self.db, sha256.trim()).await.or_internal()?.ok_or_else(|| {
            AppError::not_found(format!("No config with SHA-256 {sha256} was served recently (or it was forgotten)."))
        })?;
        Ok(super::shown_to(who, &served))
    }

    pub async fn discovered(&self, who: &Principal) -> Result<Vec<Discovered>, AppError> {
        self.allow(who, Permission::ViewMachines, "machine.discovered.view").await?;
        store::discovered(&self.db).await.or_internal()
    }

    /// Boots started, finished and failed per minute over the last hour.
    pub async fn boot_activity(&self, who: &Principal) -> Result<BootActivity, AppError> {
        self.allow(who, Permission::ViewMachines, "machine.boots.view").await?;
        let now = OffsetDateTime::now_utc();
        let this_minute = now.replace_second(0).and_then(|t| t.replace_nanosecond(0)).unwrap_or(now);
        let since = this_minute - time::Duration::minutes(59);
        Ok(BootActivity { minutes: store::activity(&self.db, since).await.or_internal()? })
    }

    /// Adds discovered machines to the inventory, all or none, each with an audit record in the
    /// same transaction; they boot on their next request.
    pub async fn adopt(&self, who: &Principal, request: AdoptDiscovered) -> Result<Vec<String>, AppError> {
        let event = Event::new("machine.adopt", "machine").summary(json!(request));
        let result = async {
            authorize(who, Permission::ChangeMachines)?;
            let profile = request.profile.as_deref().map(str::trim).filter(|p| !p.is_empty());
            if profile.is_some() {
                authorize(who, Permission::ChangeProvisioning)?;
            }
            if request.macs.is_empty() {
                return Err(AppError::invalid("Choose at least one discovered machine to add."));
            }
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            if let Some(profile) = profile {
                self.require_profile(&mut tx, profile).await?;
            }
            let mut specs = Vec::new();
            for mac in &request.macs {
                let mac = parse_mac(mac)?;
                let Some(found) = store::discovered_one(&mut tx, &mac).await.or_internal()? else {
                    return Err(AppError::invalid(format!(
                        "{mac} is not among the discovered machines: it may have been added already."
                    )));
                };
                specs.push(spec_of(&found, &request)?);
            }
            let ids = crate::machines::add_in(&mut tx, &specs).await?;
            let now = crate::db::now();
            let mut macs = Vec::new();
            for (spec, id) in specs.iter().zip(ids) {
                let mac = spec.mac.to_string();
                store::forget_discovered(&mut tx, &mac).await.or_internal()?;
                if let Some(profile) = profile {
                    super::store::set_machine_profile(&mut tx, &mac, Some(profile), &now).await.or_internal()?;
                }
                let record = event.clone().target(id, &mac).summary(json!({
                    "after": {"mac": mac, "hostname": spec.hostname.as_ref().map(|h| h.to_string()),
                        "role": spec.role.as_str(), "cluster": spec.cluster.as_ref().map(|c| c.to_string()), "profile": profile},
                }));
                audit::append(&mut tx, who, record).await.or_internal()?;
                macs.push(mac);
            }
            super::store::bump_version(&mut tx).await.or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(macs)
        }
        .await;
        self.settled(who, event, result).await
    }

    /// Starts this replica's boot-event writer; on shutdown it writes what is queued, then ends.
    pub fn record_boots(self: &Arc<Self>, background: &crate::background::Background) {
        let Some(mut receiver) = self.boots.receiver.lock().ok().and_then(|mut r| r.take()) else { return };
        self.boots.writing.store(true, Ordering::Relaxed);
        let me = self.clone();
        background.spawn_until_shutdown(move |shutdown| async move {
            let mut addresses = Addresses::default();
            let due = || tokio::time::Instant::now().checked_sub(SPOOL_RETRY).unwrap_or_else(tokio::time::Instant::now);
            let mut spool_tried = due();
            loop {
                let spooled = me.boots.spooled();
                let first = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => None,
                    first = receiver.recv() => first.map(Some),
                    _ = tokio::time::sleep_until(spool_tried + SPOOL_RETRY), if spooled => Some(None),
                };
                let Some(first) = first else { break };
                // Batches kept while the database was away go first, in their order.
                if spooled && spool_tried.elapsed() >= SPOOL_RETRY {
                    // A round the database took whole is followed at once by the next.
                    spool_tried = match me.boots.write_spooled(&me.index()).await {
                        true => due(),
                        false => tokio::time::Instant::now(),
                    };
                }
                let Some(first) = first else { continue };
                // What queued while the last batch was written goes in this one.
                let mut batch = vec![first];
                take_queued(&mut receiver, &mut batch);
                if me.boots.write(&me.index(), &mut addresses, batch).await {
                    // The database just failed (a commit cut off may still land): wait a round.
                    spool_tried = tokio::time::Instant::now();
                }
            }
            // Stopping: what is queued is written for a few seconds at most, and the rest is
            // counted and logged as lost, so a SIGTERM never waits on a backlog.
            let lost = me.boots.write_until(&me.index(), &mut addresses, &mut receiver, SHUTDOWN_WRITING).await;
            if lost > 0 {
                tracing::warn!(events = lost, "boot events were not stored: Pangea stopped before it could write them");
            }
        });
        let me = self.clone();
        background.every(Duration::from_secs(60), move || {
            let me = me.clone();
            async move {
                match me.boots.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "forgot old boot events"),
                    Err(e) => tracing::warn!(error = %e, "could not prune boot events"),
                }
            }
        });
    }
}

/// The machine a discovered MAC becomes: the person's role and cluster, and what the machine
/// said of itself where it is valid (a machine's own hostname or serial may not be).
fn spec_of(found: &Discovered, request: &AdoptDiscovered) -> Result<MachineSpec, AppError> {
    let mut input = MachineInput {
        mac: found.mac.clone(),
        hostname: found.hostname.clone(),
        uuid: found.uuid.clone(),
        serial: found.serial.clone(),
        role: request.role.clone(),
        cluster: request.cluster.clone().filter(|c| !c.trim().is_empty()),
        labels: found.arch.iter().map(|arch| ("arch".to_string(), arch.clone())).collect(),
    };
    match input.validate() {
        Ok(spec) => Ok(spec),
        Err(errors) => {
            for e in &errors {
                match e.field.as_str() {
                    "hostname" => input.hostname = None,
                    "uuid" => input.uuid = None,
                    "serial" => input.serial = None,
                    "labels" => input.labels.clear(),
                    _ => {}
                }
            }
            Ok(input.validate()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(query: &str) -> BTreeMap<String, String> {
        crate::provisioner::index::labels_from_query(query)
    }

    #[test]
    fn each_request_moves_its_machine_along_the_way() {
        let none = BTreeMap::new();
        assert_eq!(step_of("/boot.ipxe", &none, 200), Some(BootState::Pxe));
        assert_eq!(step_of("/ipxe", &labels("mac=52-54-00-00-00-01"), 200), Some(BootState::Script));
        assert_eq!(step_of("/assets/vmlinuz", &none, 200), Some(BootState::Assets));
        assert_eq!(step_of("/assets/initrd.img", &none, 206), Some(BootState::Assets));
        assert_eq!(step_of("/ignition", &labels("mac=52-54-00-00-00-01"), 200), Some(BootState::Ignition));
        assert_eq!(step_of("/ignition", &labels("os=installed"), 200), Some(BootState::Installed));
        assert_eq!(step_of("/metadata", &labels("stage=done"), 200), Some(BootState::Installed));
        assert_eq!(step_of("/metadata", &labels("stage=installed"), 200), Some(BootState::Installed));
        assert_eq!(step_of("/metadata", &labels("stage=failed"), 200), Some(BootState::Failed));
        assert_eq!(step_of("/metadata", &none, 200), None);
        assert_eq!(step_of("/generic", &none, 200), None);
        for endpoint in ["/ipxe", "/ignition", "/generic", "/metadata", "/assets/x"] {
            assert_eq!(step_of(endpoint, &none, 404), Some(BootState::Failed), "{endpoint}");
        }
        assert_eq!(step_of("/", &none, 200), None);
        assert_eq!(step_of("/wp-login.php", &none, 404), None, "a stray path fails no machine");
    }

    fn observed(endpoint: &str, query: &str, client: [u8; 4], at: OffsetDateTime) -> Observed {
        Observed {
            at,
            endpoint: endpoint.into(),
            labels: labels(query),
            status: 200,
            bytes: 10,
            duration: Duration::from_micros(1500),
            client: Some(IpAddr::from(client)),
            outcome: Outcome::default(),
            report_token: None,
        }
    }

    #[test]
    fn unlabelled_requests_belong_to_the_machine_that_last_asked_from_that_address() {
        let index = super::super::index::BootIndex::build(0, Default::default(), vec![]);
        let mut addresses = Addresses::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (first, _) = attribute(&index, &mut addresses, &observed("/boot.ipxe", "", [10, 0, 0, 5], t0));
        assert_eq!(first.mac, "", "nobody asked from there before");
        let (script, _) =
            attribute(&index, &mut addresses, &observed("/ipxe", "mac=52-54-00-00-00-07", [10, 0, 0, 5], t0));
        assert_eq!((script.mac.as_str(), script.duration_us), ("52:54:00:00:00:07", 1500));
        let (next_boot, _) = attribute(&index, &mut addresses, &observed("/boot.ipxe", "", [10, 0, 0, 5], t0));
        assert_eq!(next_boot.mac, "", "the next boot from there may be another machine's: /ipxe will tell");
        let (kernel, _) = attribute(&index, &mut addresses, &observed("/assets/vmlinuz", "", [10, 0, 0, 5], t0));
        assert_eq!(kernel.mac, "52:54:00:00:00:07");
        let (other, _) = attribute(&index, &mut addresses, &observed("/assets/vmlinuz", "", [10, 0, 0, 6], t0));
        assert_eq!(other.mac, "", "another address");
        let later = t0 + Duration::from_secs(31 * 60);
        let (stale, _) = attribute(&index, &mut addresses, &observed("/assets/vmlinuz", "", [10, 0, 0, 5], later));
        assert_eq!(stale.mac, "", "half an hour later the address may be another machine's");
    }

    #[test]
    fn a_reported_failure_keeps_the_machines_reason() {
        let index = super::super::index::BootIndex::build(0, Default::default(), vec![]);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let report =
            observed("/metadata", "mac=52:54:00:00:00:07&stage=failed&reason=ignition-fetch", [10, 0, 0, 5], t0);
        let (event, _) = attribute(&index, &mut Addresses::default(), &Observed { report_token: Some(true), ..report });
        assert_eq!(event.step, Some(BootState::Failed));
        assert_eq!(event.reason, "the machine reported stage=failed: ignition-fetch");
    }

    #[test]
    fn a_report_without_its_token_is_recorded_as_unverified_and_moves_nothing() {
        let index = super::super::index::BootIndex::build(0, Default::default(), vec![]);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let attributed = |endpoint: &str, query: &str, token: Option<bool>| {
            let seen = Observed { report_token: token, ..observed(endpoint, query, [10, 0, 0, 5], t0) };
            attribute(&index, &mut Addresses::default(), &seen).0
        };
        let bare = attributed("/metadata", "mac=52:54:00:00:00:07&stage=done", None);
        assert_eq!(bare.step, None);
        assert!(
            bare.reason.starts_with("unverified report of installed (it carries no report_token)"),
            "{}",
            bare.reason
        );
        let wrong = attributed("/metadata", "mac=52:54:00:00:00:07&stage=failed&reason=x", Some(false));
        assert_eq!(wrong.step, None);
        assert!(wrong.reason.contains("not this machine's, or expired") && wrong.reason.ends_with("stage=failed: x"));
        let installed = attributed("/ignition", "mac=52:54:00:00:00:07&os=installed", None);
        assert_eq!(installed.step, None, "an installed system's fetch is a report too");
        assert_eq!(
            attributed("/metadata", "mac=52:54:00:00:00:07&stage=done", Some(true)).step,
            Some(BootState::Installed)
        );
        // What is not a report needs no token.
        assert_eq!(attributed("/ignition", "mac=52:54:00:00:00:07", None).step, Some(BootState::Ignition));
        let failed = Observed { status: 404, ..observed("/ipxe", "mac=52:54:00:00:00:07", [10, 0, 0, 5], t0) };
        assert_eq!(attribute(&index, &mut Addresses::default(), &failed).0.step, Some(BootState::Failed));
    }

    /// What one stranger's request can make Pangea store is bounded in bytes: a long path is
    /// cut, and a config over the kept size is recorded by its digest only.
    #[test]
    fn a_stored_event_is_bounded_in_bytes() {
        let long = format!("/{}", "é".repeat(MAX_ENDPOINT));
        let cut = bounded_endpoint(&long);
        assert!(cut.len() <= MAX_ENDPOINT + "…".len() && cut.ends_with('…'), "{} bytes", cut.len());
        assert_eq!(bounded_endpoint("/ipxe"), "/ipxe");
        let index = super::super::index::BootIndex::build(0, Default::default(), vec![]);
        let mut huge = observed("/ignition", "mac=52-54-00-00-00-07", [10, 0, 0, 5], OffsetDateTime::UNIX_EPOCH);
        huge.outcome.served = Some(Arc::from("x".repeat(MAX_KEPT_CONFIG + 1)));
        let (event, kept) = attribute(&index, &mut Addresses::default(), &huge);
        assert_eq!((event.sha256.len(), kept), (64, None), "recorded by digest, body not kept");
        let mut small = huge;
        small.outcome.served = Some(Arc::from("{}"));
        let (_, kept) = attribute(&index, &mut Addresses::default(), &small);
        assert_eq!(kept.as_deref(), Some("{}"));
    }
}
