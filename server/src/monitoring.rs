//! Monitoring: each cluster's health as charts from the Prometheus linked to it. The server
//! asks Prometheus for the signed-in person after checking their role on that cluster; it sets
//! the step from the range, caps the points, and times out slow queries with a clear message.

pub mod charts;
pub mod http;
pub mod prometheus;
pub mod sources;

use crate::clusters::Clusters;
use app::access::{Permission, Principal, authorize_in};
use app::error::AppError;
use app::monitoring::ssr::MonitoringService;
use app::monitoring::{Chart, Charts, TimeRange, Unit};
use charts::ChartSpec;
use prometheus::{Prometheus, QueryError};
use std::sync::Arc;

pub struct Monitoring {
    clusters: Arc<Clusters>,
    http: reqwest::Client,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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

/// The client for Prometheus, Alertmanager and Grafana. Their URLs are people's input: it
/// follows no redirects elsewhere.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

impl Monitoring {
    pub fn new(clusters: Arc<Clusters>) -> Monitoring {
        Monitoring { clusters, http: client() }
    }

    /// The cluster's Prometheus, once the caller may see that cluster.
    fn prometheus(&self, who: &Principal, cluster: &str) -> Result<Option<Prometheus>, AppError> {
        authorize_in(who, Permission::ViewClusters, cluster)?;
        let url = self.clusters.prometheus_url(cluster)?;
        Ok((!url.is_empty()).then(|| Prometheus::new(&url, self.http.clone())))
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
        self.draw(prometheus, charts::CLUSTER, parse_range(range)?, None).await
    }

    async fn node_charts(&self, who: &Principal, cluster: &str, node: &str, range: &str) -> Result<Charts, AppError> {
        let prometheus = self.prometheus(who, cluster)?;
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
}
