//! Monitoring: each cluster's health from the Prometheus, Alertmanager and Grafana linked to it.
//! Charts: the server asks Prometheus for the signed-in person after checking their role on that
//! cluster; it sets the step from the range, caps the points, and times out slow queries with a
//! clear message. Alerts and silences (in the person's name, audited), etcd's quorum in words,
//! Grafana embedded through its auth proxy ([`grafana`]), and dashboards in Grafana's JSON
//! model drawn by Pangea itself ([`dashboards`]). Each source is asked with the client that
//! presents Pangea's credential for it ([`crate::clusters::sources`]).

pub mod alertmanager;
pub mod charts;
pub mod dashboards;
pub mod etcd;
pub mod grafana;
pub mod http;
pub mod prometheus;
pub mod query_turns;
pub mod source_check;
pub mod store;
pub mod ttl_cache;

/// The most of any one answer from a linked Prometheus, Alertmanager or Grafana that Pangea
/// reads: a source (or whatever a link points at) cannot make Pangea hold more.
pub const MAX_ANSWER: usize = 16 << 20;

pub use crate::http::body::BodyError;

/// A response's body, [`MAX_ANSWER`] bytes at most, read as it arrives.
pub async fn body_within(response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    crate::http::body::read_within(response, MAX_ANSWER).await
}

use crate::audit::{self, Event};
use crate::clusters::Clusters;
use crate::db::Database;
use crate::error::OrInternal;
use alertmanager::Alertmanager;
use app::access::{Permission, Principal, authorize, authorize_in};
use app::error::AppError;
use app::monitoring::dashboards::{Choices, DashboardSummary, DashboardView, PanelAnswer};
use app::monitoring::ssr::MonitoringService;
use app::monitoring::{
    Alert, Alerts, Chart, Charts, EtcdHealth, GrafanaDashboard, Silence, SilenceInput, TimeRange, Unit,
};
use charts::ChartSpec;
use dashboards::Dashboard;
use prometheus::{Prometheus, QueryError};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use ttl_cache::TtlCache;

pub struct Monitoring {
    db: Database,
    clusters: Arc<Clusters>,
    /// How many alerts fire, per cluster.
    firing: TtlCache<String, u32>,
    /// Dashboard variables' values, per cluster and query (see [`dashboards::resolve`]).
    options: dashboards::OptionsCache,
    /// Each person's queries to Prometheus running at once.
    turns: query_turns::QueryTurns,
    /// Browsers can open the clusters' Grafanas through this Pangea.
    grafana_served: bool,
}

/// How long a cluster's firing count is used before its Alertmanager is asked again.
const FIRING_COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(15);
/// How long a variable's values are used: long enough for the panels of one page load.
const VARIABLE_VALUES_TTL: std::time::Duration = std::time::Duration::from_secs(5);

const NO_PROMETHEUS: &str = "No Prometheus is linked to this cluster: an admin can add its URL on the cluster's page.";

/// Whether `who` may see a dashboard imported from `origin`: one from a cluster's Grafana
/// (`grafana:CLUSTER`) only with a role on that cluster.
fn may_see_origin(who: &Principal, origin: &str) -> bool {
    origin.strip_prefix("grafana:").is_none_or(|cluster| authorize_in(who, Permission::ViewClusters, cluster).is_ok())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Critical first, then warning, then the rest.
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 0,
        "error" => 1,
        "warning" => 2,
        _ => 3,
    }
}

/// Whether an alert is about this node: its `node` label, or the host of its `instance`.
fn about_node(alert: &Alert, node: &str, addresses: &[String]) -> bool {
    if alert.labels.get("node").is_some_and(|n| n == node) {
        return true;
    }
    alert.labels.get("instance").is_some_and(|instance| {
        let host = match instance.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => instance.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == node || addresses.iter().any(|a| a == host)
    })
}

fn parse_range(range: &str) -> Result<TimeRange, AppError> {
    TimeRange::parse(range).map_err(AppError::invalid)
}

/// The range's bounds at the step it gets, aligned to that step.
fn bounds(range: TimeRange) -> (i64, i64, i64) {
    let (start, end) = range.bounds(now());
    let step = prometheus::step_for(start, end);
    (start - start.rem_euclid(step), end - end.rem_euclid(step), step)
}

impl Monitoring {
    pub fn new(db: Database, clusters: Arc<Clusters>) -> Monitoring {
        Monitoring {
            db,
            clusters,
            firing: TtlCache::new(FIRING_COUNT_TTL),
            options: TtlCache::new(VARIABLE_VALUES_TTL),
            turns: query_turns::QueryTurns::new(query_turns::TURN_WAIT),
            grafana_served: false,
        }
    }

    /// Whether browsers can open the clusters' Grafanas through this Pangea (`--grafana-listen`
    /// or `--grafana-same-origin`): only then are their dashboards offered to embed.
    pub fn with_grafana_served(mut self, served: bool) -> Monitoring {
        self.grafana_served = served;
        self
    }

    /// The cluster's Prometheus, once the caller may see that cluster.
    fn prometheus(&self, who: &Principal, cluster: &str) -> Result<Option<Prometheus>, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let linked = self.clusters.prometheus(cluster)?;
        Ok((!linked.url.is_empty()).then(|| Prometheus::new(&linked.url, linked.http)))
    }

    /// The cluster's Alertmanager (the caller was authorized), or why there is none.
    fn alertmanager(&self, cluster: &str) -> Result<Alertmanager, AppError> {
        let linked = self.clusters.alertmanager(cluster)?;
        if linked.url.is_empty() {
            return Err(AppError::not_found(format!(
                "No Alertmanager is linked to cluster {cluster}: an admin can add its URL on the cluster's page."
            )));
        }
        Ok(Alertmanager::new(&linked.url, linked.http))
    }

    /// Firing alerts from the Alertmanager, then pending ones from the Prometheus.
    async fn cluster_alerts(&self, cluster: &str) -> Result<Alerts, AppError> {
        let (prometheus, alertmanager) = (self.clusters.prometheus(cluster)?, self.clusters.alertmanager(cluster)?);
        if alertmanager.url.is_empty() && prometheus.url.is_empty() {
            let reason = "No Alertmanager or Prometheus is linked to this cluster: an admin can add them on the \
                          cluster's page.";
            return Ok(Alerts { alerts: Vec::new(), unavailable: Some(reason.into()) });
        }
        let mut alerts = Vec::new();
        let mut unavailable = Vec::new();
        if !alertmanager.url.is_empty() {
            match Alertmanager::new(&alertmanager.url, alertmanager.http).firing().await {
                Ok(firing) => alerts.extend(firing),
                Err(reason) => unavailable.push(reason),
            }
        }
        if !prometheus.url.is_empty() {
            match Prometheus::new(&prometheus.url, prometheus.http).pending_alerts().await {
                Ok(pending) => alerts.extend(pending),
                Err(reason) => unavailable.push(reason.to_string()),
            }
        }
        alerts.sort_by(|a, b| {
            (severity_rank(&a.severity), &a.name, &a.since).cmp(&(severity_rank(&b.severity), &b.name, &b.since))
        });
        Ok(Alerts { alerts, unavailable: (!unavailable.is_empty()).then(|| unavailable.join(" ")) })
    }

    /// A shipped or imported dashboard, as `who` may see it: one imported from a cluster's
    /// Grafana only for those who may see that cluster.
    async fn load(&self, who: &Principal, uid: &str) -> Result<Dashboard, AppError> {
        if let Some(shipped) = dashboards::shipped().iter().find(|d| d.uid == uid) {
            return Ok(shipped.clone());
        }
        let missing = || AppError::not_found(format!("There is no dashboard with uid {uid}."));
        let (model, origin) = store::model(&self.db, uid).await.or_internal()?.ok_or_else(missing)?;
        if !may_see_origin(who, &origin) {
            return Err(missing());
        }
        let (mut dashboard, _) = Dashboard::parse(&model).map_err(crate::error::internal)?;
        dashboard.uid = uid.to_string();
        Ok(dashboard)
    }

    /// Stores the dashboard `json` resolves to, once the caller may manage dashboards (and see
    /// `cluster`, when it comes from that cluster's Grafana); audited, refusals too.
    async fn import(
        &self,
        who: &Principal,
        origin: String,
        cluster: Option<&str>,
        json: impl Future<Output = Result<String, AppError>>,
    ) -> Result<DashboardSummary, AppError> {
        let event = Event::new("dashboard.import", "dashboard").summary(json!({ "origin": origin }));
        let allowed = authorize(who, Permission::ManageDashboards)
            .and_then(|()| cluster.map_or(Ok(()), |c| authorize_in(who, Permission::ViewClusters, c)));
        audit::settle(&self.db, who, event.clone(), allowed).await?;
        let imported = async {
            let (dashboard, mut model) = Dashboard::parse(&json.await?).map_err(AppError::invalid)?;
            let uid = if dashboard.uid.is_empty() {
                use rand::Rng;
                rand::rng().sample_iter(rand::distr::Alphanumeric).take(12).map(char::from).collect()
            } else {
                dashboard.uid.clone()
            };
            if dashboards::is_shipped(&uid) {
                return Err(AppError::Conflict {
                    message: format!("{uid} is the uid of a dashboard Pangea ships; give yours another uid."),
                    fields: Vec::new(),
                });
            }
            model["uid"] = json!(uid);
            let stored = store::Stored {
                uid: uid.clone(),
                title: dashboard.title.clone(),
                description: dashboard.description.clone(),
                model: model.to_string(),
                origin: origin.clone(),
            };
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let replaced = store::put(&mut tx, &stored, &who.actor()).await.or_internal()?;
            let summary = json!({ "origin": origin, "replaced": replaced, "panels": dashboard.panels.len() });
            audit::append(&mut tx, who, event.clone().target(&uid, &dashboard.title).summary(summary))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()?;
            Ok(DashboardSummary {
                uid,
                title: stored.title,
                description: stored.description,
                shipped: false,
                imported_by: who.actor(),
                origin,
            })
        }
        .await;
        audit::settle(&self.db, who, event, imported).await
    }

    /// Every chart of `specs` over `range`; `node` fills in `$node`. When Prometheus cannot be
    /// reached, that is the answer, rather than a set of empty charts.
    async fn draw(
        &self,
        prometheus: Option<Prometheus>,
        specs: &[ChartSpec],
        range: TimeRange,
        node: Option<&str>,
    ) -> Result<Charts, AppError> {
        let (start, end, step) = bounds(range);
        let mut answer = Charts {
            start,
            end,
            step: step as u32,
            prometheus_url: String::new(),
            unavailable: None,
            charts: Vec::new(),
        };
        let Some(prometheus) = prometheus else {
            answer.unavailable =
                Some("No Prometheus is linked to this cluster: an admin can add its URL on the cluster's page.".into());
            return Ok(answer);
        };
        answer.prometheus_url = prometheus.url.clone();
        let rate = prometheus::rate_interval(step);
        let drawn = futures::future::join_all(specs.iter().map(|spec| {
            let prometheus = &prometheus;
            let rate = &rate;
            async move {
                let mut chart = Chart {
                    id: spec.id.into(),
                    title: spec.title.into(),
                    unit: spec.unit,
                    query: spec.lines.iter().map(|(_, q)| charts::expand(q, rate, node)).collect::<Vec<_>>().join("\n"),
                    series: Vec::new(),
                    error: None,
                };
                for (legend, query) in spec.lines {
                    match prometheus.range(&charts::expand(query, rate, node), legend, start, end, step).await {
                        Ok(series) => chart.series.extend(series),
                        Err(e) => return Err((chart, e)),
                    }
                }
                Ok(chart)
            }
        }))
        .await;
        for result in drawn {
            match result {
                Ok(mut chart) => {
                    chart.series.retain(|s| !s.points.is_empty());
                    if chart.series.is_empty() {
                        chart.error = Some(if node.is_some() {
                            "No data: Prometheus has no node_exporter series for this node (its instance label \
                             must be the node's name or address)."
                                .into()
                        } else {
                            "No data: Prometheus has no series for this chart in this range.".into()
                        });
                    }
                    answer.charts.push(chart);
                }
                Err((_, QueryError::Unreachable(message))) => {
                    answer.unavailable = Some(message);
                    answer.charts.clear();
                    return Ok(answer);
                }
                Err((mut chart, QueryError::Refused(message))) => {
                    chart.error = Some(message);
                    answer.charts.push(chart);
                }
            }
        }
        Ok(answer)
    }
}

#[async_trait::async_trait]
impl MonitoringService for Monitoring {
    async fn cluster_charts(&self, who: &Principal, cluster: &str, range: &str) -> Result<Charts, AppError> {
        let prometheus = self.prometheus(who, cluster)?;
        let _turn = self.turns.take(who).await?;
        self.draw(prometheus, charts::CLUSTER, parse_range(range)?, None).await
    }

    async fn node_charts(&self, who: &Principal, cluster: &str, node: &str, range: &str) -> Result<Charts, AppError> {
        let prometheus = self.prometheus(who, cluster)?;
        let _turn = self.turns.take(who).await?;
        let range = parse_range(range)?;
        let addresses = self.clusters.node_addresses(cluster, node)?;
        let matcher = charts::node_matcher(node, &addresses);
        self.draw(prometheus, charts::NODE, range, Some(&matcher)).await
    }

    async fn query(&self, who: &Principal, cluster: &str, query: &str, range: &str) -> Result<Chart, AppError> {
        let prometheus = self.prometheus(who, cluster)?;
        let range = parse_range(range)?;
        if query.trim().is_empty() || query.len() > 10_000 {
            return Err(AppError::invalid("Give a PromQL query of at most 10,000 characters."));
        }
        let prometheus =
            prometheus.ok_or_else(|| AppError::not_found(format!("No Prometheus is linked to cluster {cluster}.")))?;
        let (start, end, step) = bounds(range);
        let _turn = self.turns.take(who).await?;
        let series = prometheus.range(query, "", start, end, step).await.map_err(|e| match e {
            QueryError::Unreachable(message) => AppError::Upstream { message },
            QueryError::Refused(message) => AppError::invalid(message),
        })?;
        Ok(Chart {
            id: "query".into(),
            title: query.into(),
            unit: Unit::Count,
            query: query.into(),
            series,
            error: None,
        })
    }

    async fn alerts(&self, who: &Principal, cluster: &str, node: Option<String>) -> Result<Alerts, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let mut alerts = self.cluster_alerts(cluster).await?;
        if let Some(node) = node {
            let addresses = self.clusters.node_addresses(cluster, &node)?;
            alerts.alerts.retain(|a| about_node(a, &node, &addresses));
        }
        Ok(alerts)
    }

    async fn dashboards(&self, who: &Principal, cluster: &str) -> Result<Vec<GrafanaDashboard>, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let linked = self.clusters.grafana(cluster)?;
        if linked.url.is_empty() {
            return Err(AppError::not_found(format!(
                "No Grafana is linked to cluster {cluster}: an admin can add its URL on the cluster's page."
            )));
        }
        let headers = grafana::upstream_headers(&axum::http::HeaderMap::new(), who, cluster, false)?;
        let mut listed = grafana::dashboards(&linked.http, &linked.url, cluster, headers)
            .await
            .map_err(|message| AppError::Upstream { message })?;
        if !self.grafana_served {
            listed.iter_mut().for_each(|d| d.embed_path.clear());
        }
        Ok(listed)
    }

    async fn etcd(&self, who: &Principal, cluster: &str) -> Result<EtcdHealth, AppError> {
        let Some(prometheus) = self.prometheus(who, cluster)? else {
            return Ok(EtcdHealth {
                members: Vec::new(),
                quorum: String::new(),
                at_risk: false,
                unavailable: Some(
                    "No Prometheus is linked to this cluster, so etcd's quorum is not known here.".into(),
                ),
            });
        };
        let _turn = self.turns.take(who).await?;
        Ok(etcd::health(&prometheus).await.unwrap_or_else(|e| EtcdHealth {
            members: Vec::new(),
            quorum: String::new(),
            at_risk: false,
            unavailable: Some(e.to_string()),
        }))
    }

    async fn firing_count(&self, who: &Principal) -> Result<u32, AppError> {
        let visible: Vec<String> = self
            .clusters
            .names()
            .into_iter()
            .filter(|c| authorize_in(who, Permission::ViewClusters, c).is_ok())
            .collect();
        if visible.is_empty() {
            app::access::authorize(who, Permission::ViewClusters)?;
        }
        let counts = futures::future::join_all(visible.iter().map(|cluster| async move {
            let now = std::time::Instant::now();
            if let Some(count) = self.firing.fresh(cluster, now) {
                return count;
            }
            let count = match self.clusters.alertmanager(cluster) {
                Ok(linked) if !linked.url.is_empty() => {
                    Alertmanager::new(&linked.url, linked.http).firing().await.map_or(0, |a| a.len() as u32)
                }
                _ => 0,
            };
            self.firing.remember(cluster.clone(), count, now);
            count
        }))
        .await;
        Ok(counts.into_iter().sum())
    }

    async fn silences(&self, who: &Principal, cluster: &str) -> Result<Vec<Silence>, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        self.alertmanager(cluster)?.silences().await.map_err(|message| AppError::Upstream { message })
    }

    async fn silence(&self, who: &Principal, cluster: &str, input: SilenceInput) -> Result<Silence, AppError> {
        let event = Event::new("alert.silence", "silence").summary(json!({
            "cluster": cluster,
            "matchers": input.matchers,
            "duration": input.duration,
            "comment": input.comment,
        }));
        audit::settle(&self.db, who, event.clone(), authorize_in(who, Permission::SilenceAlerts, cluster)).await?;
        let seconds = app::monitoring::parse_duration(&input.duration).map_err(AppError::invalid)?;
        if input.matchers.is_empty() || input.matchers.iter().any(|m| m.name.trim().is_empty()) {
            return Err(AppError::invalid("A silence needs at least one matcher, each with a label name."));
        }
        if input.comment.trim().is_empty() || input.comment.len() > 1_000 {
            return Err(AppError::invalid("Say why in a comment (at most 1,000 characters)."));
        }
        let alertmanager = self.alertmanager(cluster)?;
        let id = alertmanager
            .silence(&input.matchers, seconds, &who.actor(), input.comment.trim())
            .await
            .map_err(|message| AppError::Upstream { message })?;
        // The silence stands only once the audit log has it: if that write fails, it is expired.
        if let Err(e) = audit::record(&self.db, who, event.target(&id, cluster)).await {
            let _ = alertmanager.expire(&id).await;
            return Err(crate::error::internal(e));
        }
        self.firing.forget(cluster);
        let silences = alertmanager.silences().await.map_err(|message| AppError::Upstream { message })?;
        silences.into_iter().find(|s| s.id == id).ok_or_else(|| AppError::Upstream {
            message: format!("Alertmanager does not list the silence {id} it created."),
        })
    }

    async fn expire_silence(&self, who: &Principal, cluster: &str, id: &str) -> Result<(), AppError> {
        let event = Event::new("alert.unsilence", "silence").target(id, cluster).summary(json!({ "cluster": cluster }));
        audit::settle(&self.db, who, event.clone(), authorize_in(who, Permission::SilenceAlerts, cluster)).await?;
        let uuid = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !uuid {
            return Err(AppError::invalid(format!("\"{id}\" is not a silence id (Alertmanager's are UUIDs).")));
        }
        let alertmanager = self.alertmanager(cluster)?;
        let before = alertmanager.silences().await.ok().and_then(|all| all.into_iter().find(|s| s.id == id));
        alertmanager.expire(id).await.map_err(|message| AppError::Upstream { message })?;
        self.firing.forget(cluster);
        // The expiry stands only once the audit log has it: if that write fails, the silence is
        // put back (under a new id: Alertmanager does not revive one).
        if let Err(e) = audit::record(&self.db, who, event).await {
            tracing::error!(error = %e, cluster, silence = id, "a silence's expiry could not be audited; putting it back");
            let restored = match &before {
                Some(silence) => alertmanager.restore(silence).await,
                None => Err("it was not listed before".into()),
            };
            return Err(AppError::Upstream {
                message: match restored {
                    Ok(new_id) => format!("The silence was put back (as {new_id}): its expiry could not be audited."),
                    Err(why) => format!("The expiry could not be audited, and putting the silence back failed: {why}"),
                },
            });
        }
        Ok(())
    }
    async fn list_dashboards(&self, who: &Principal) -> Result<Vec<DashboardSummary>, AppError> {
        authorize(who, Permission::ViewClusters)?;
        let mut list: Vec<DashboardSummary> = dashboards::shipped()
            .iter()
            .map(|d| DashboardSummary {
                uid: d.uid.clone(),
                title: d.title.clone(),
                description: d.description.clone(),
                shipped: true,
                imported_by: String::new(),
                origin: "pangea".into(),
            })
            .collect();
        let imported = store::list(&self.db).await.or_internal()?;
        list.extend(imported.into_iter().filter(|d| may_see_origin(who, &d.origin)));
        Ok(list)
    }

    async fn dashboard(
        &self,
        who: &Principal,
        cluster: &str,
        uid: &str,
        range: &str,
        choices: Choices,
    ) -> Result<DashboardView, AppError> {
        let prometheus = self.prometheus(who, cluster)?;
        let range = parse_range(range)?;
        let dashboard = self.load(who, uid).await?;
        // An imported dashboard may be one of the cluster's Grafana; the shipped ones are not.
        let grafana = self.clusters.grafana(cluster)?.url;
        let in_grafana = !grafana.is_empty() && !dashboards::is_shipped(&dashboard.uid);
        let mut view = DashboardView {
            uid: dashboard.uid.clone(),
            title: dashboard.title.clone(),
            description: dashboard.description.clone(),
            variables: Vec::new(),
            panels: dashboard.panels.iter().map(|p| p.view.clone()).collect(),
            grafana_path: in_grafana.then(|| format!("/grafana/{cluster}/d/{}", dashboard.uid)),
            unavailable: None,
        };
        match prometheus {
            Some(prometheus) => {
                let _turn = self.turns.take(who).await?;
                view.variables =
                    dashboards::resolve(&dashboard, &prometheus, &self.options, cluster, &choices, bounds(range), true)
                        .await
                        .0;
            }
            None => view.unavailable = Some(NO_PROMETHEUS.into()),
        }
        Ok(view)
    }

    async fn dashboard_panel(
        &self,
        who: &Principal,
        cluster: &str,
        uid: &str,
        panel: &str,
        range: &str,
        choices: Choices,
    ) -> Result<PanelAnswer, AppError> {
        let prometheus = self.prometheus(who, cluster)?;
        let range = parse_range(range)?;
        let panel: u32 = panel.parse().map_err(|_| AppError::invalid(format!("\"{panel}\" is not a panel id.")))?;
        let dashboard = self.load(who, uid).await?;
        let panel = dashboard
            .panel(panel)
            .ok_or_else(|| AppError::not_found(format!("Dashboard {uid} has no panel {panel}.")))?;
        let Some(prometheus) = prometheus else {
            return Ok(PanelAnswer {
                panel: panel.view.clone(),
                queries: Vec::new(),
                data: None,
                error: Some(NO_PROMETHEUS.into()),
            });
        };
        let bounds = bounds(range);
        let _turn = self.turns.take(who).await?;
        let (_, filled) =
            dashboards::resolve(&dashboard, &prometheus, &self.options, cluster, &choices, bounds, false).await;
        Ok(dashboards::draw(&prometheus, panel, &filled, bounds).await)
    }

    async fn import_dashboard(&self, who: &Principal, json: &str) -> Result<DashboardSummary, AppError> {
        self.import(who, "upload".into(), None, async { Ok(json.to_string()) }).await
    }

    async fn import_grafana_dashboard(
        &self,
        who: &Principal,
        cluster: &str,
        uid: &str,
    ) -> Result<DashboardSummary, AppError> {
        let fetch = async {
            if !dashboards::valid_uid(uid) {
                return Err(AppError::invalid(format!("\"{uid}\" is not a Grafana dashboard uid.")));
            }
            let linked = self.clusters.grafana(cluster)?;
            if linked.url.is_empty() {
                return Err(AppError::not_found(format!("No Grafana is linked to cluster {cluster}.")));
            }
            let headers = grafana::upstream_headers(&axum::http::HeaderMap::new(), who, cluster, false)?;
            grafana::dashboard_json(&linked.http, &linked.url, cluster, uid, headers).await
        };
        self.import(who, format!("grafana:{cluster}"), Some(cluster), fetch).await
    }

    async fn delete_dashboard(&self, who: &Principal, uid: &str) -> Result<(), AppError> {
        let event = Event::new("dashboard.delete", "dashboard").target(uid, uid);
        audit::settle(&self.db, who, event.clone(), authorize(who, Permission::ManageDashboards)).await?;
        let deleted = async {
            if dashboards::is_shipped(uid) {
                return Err(AppError::Conflict {
                    message: format!("{uid} is shipped with Pangea and cannot be removed."),
                    fields: Vec::new(),
                });
            }
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            if !store::delete(&mut tx, uid).await.or_internal()? {
                return Err(AppError::not_found(format!("There is no imported dashboard with uid {uid}.")));
            }
            audit::append(&mut tx, who, event.clone()).await.or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        audit::settle(&self.db, who, event, deleted).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback answering every request with `body`, with or without its length.
    async fn answering(body: Vec<u8>, with_length: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move {
                if with_length {
                    axum::body::Body::from(body)
                } else {
                    let chunks = body.chunks(1 << 20).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>();
                    axum::body::Body::from_stream(futures::stream::iter(chunks))
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn answers_are_read_up_to_their_limit_whether_or_not_they_say_their_length() {
        for with_length in [true, false] {
            let url = answering(vec![b'x'; MAX_ANSWER + 1], with_length).await;
            let over = body_within(reqwest::get(&url).await.unwrap()).await.unwrap_err();
            assert!(matches!(over, BodyError::TooLarge { seen, .. } if seen > MAX_ANSWER as u64), "{over:?}");
            assert!(over.say("Prometheus", "http://p").contains("more than 16 MiB"));
            let url = answering(vec![b'y'; 1000], with_length).await;
            assert_eq!(body_within(reqwest::get(&url).await.unwrap()).await.unwrap().len(), 1000);
        }
    }
}
