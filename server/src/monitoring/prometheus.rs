//! A cluster's Prometheus, over its HTTP API: the check made when it is linked, and range
//! queries, with every failure in words.

use crate::error::cause;
use app::monitoring::Series;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a query may take, at Prometheus and here.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most points a series has: the step grows with the range to stay within it.
pub const MAX_POINTS: i64 = 300;
/// The finest step, in seconds: a common scrape interval.
pub const MIN_STEP: i64 = 15;

/// A Prometheus, by its base URL (`http://prometheus:9090`, or a sub-path behind a proxy).
#[derive(Debug, Clone)]
pub struct Prometheus {
    pub url: String,
    http: reqwest::Client,
}

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing answers, or it answered with something other than Prometheus' API.
    #[error("{0}")]
    Unreachable(String),
    /// Prometheus refused or failed this query (bad PromQL, too many samples, a timeout).
    #[error("{0}")]
    Refused(String),
}

#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<MatrixSeries>,
}

#[derive(Deserialize)]
struct Vector {
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct RuleGroups {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(default)]
    query: String,
    #[serde(default)]
    alerts: Vec<RuleAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    state: String,
    #[serde(default)]
    active_at: String,
}

#[derive(Deserialize)]
struct BuildInfo {
    version: String,
}

/// A range's step: at least [`MIN_STEP`], and coarse enough for [`MAX_POINTS`].
pub fn step_for(start: i64, end: i64) -> i64 {
    let span = (end - start).max(1);
    ((span + MAX_POINTS - 1) / MAX_POINTS).max(MIN_STEP)
}

/// The window `$__rate_interval` stands for at `step`, as Grafana defines it for a 15 s scrape:
/// the larger of four scrapes and one step plus one scrape.
pub fn rate_interval(step: i64) -> String {
    format!("{}s", (4 * MIN_STEP).max(step + MIN_STEP))
}

/// `{label}` in `template` replaced by the series' label values; with no template, the labels
/// as PromQL writes them.
pub fn legend(template: &str, labels: &BTreeMap<String, String>) -> String {
    if template.is_empty() {
        let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        return format!("{{{}}}", pairs.join(", "));
    }
    let mut out = template.to_string();
    for (key, value) in labels {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

/// The most series a range query may give: more is no chart a person can read.
pub const MAX_SERIES: usize = 500;

impl Prometheus {
    pub fn new(url: &str, http: reqwest::Client) -> Prometheus {
        Prometheus { url: url.trim_end_matches('/').to_string(), http }
    }

    fn unreachable(&self, error: &reqwest::Error) -> QueryError {
        if error.is_timeout() {
            return QueryError::Refused(format!(
                "Prometheus at {} did not answer within {} s; try a shorter range.",
                self.url,
                QUERY_TIMEOUT.as_secs()
            ));
        }
        QueryError::Unreachable(format!("Prometheus at {} is unreachable: {}.", self.url, cause(error)))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, QueryError> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .timeout(QUERY_TIMEOUT + Duration::from_secs(1))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = super::body_within(response).await.map_err(|e| match e {
            super::BodyError::Read(e) => self.unreachable(&e),
            too_large => QueryError::Refused(too_large.say("Prometheus", &self.url)),
        })?;
        match serde_json::from_slice::<Answer<T>>(&body) {
            Ok(Answer { status, data: Some(data), .. }) if status == "success" => Ok(data),
            Ok(answer) => Err(QueryError::Refused(format!(
                "Prometheus refused the query: {}",
                answer.error.unwrap_or_else(|| answer.status.clone())
            ))),
            Err(_) => Err(QueryError::Unreachable(format!(
                "Prometheus at {} answered {path} with HTTP {status}, not Prometheus' API; check the URL.",
                self.url
            ))),
        }
    }

    /// `/-/ready`, then the build information: the version, or why it is not usable.
    pub async fn check(&self) -> Result<String, QueryError> {
        let ready = self
            .http
            .get(format!("{}/-/ready", self.url))
            .timeout(QUERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !ready.status().is_success() {
            return Err(QueryError::Unreachable(format!(
                "Prometheus at {} answered /-/ready with HTTP {}: it is not ready, or it is not Prometheus; \
                 check the URL.",
                self.url,
                ready.status().as_u16()
            )));
        }
        let info: BuildInfo = self.get("/api/v1/status/buildinfo", &[]).await?;
        Ok(info.version)
    }

    /// An instant query's samples: each series' labels and its value now.
    pub async fn instant(&self, query: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, QueryError> {
        let vector: Vector = self
            .get("/api/v1/query", &[("query", query.to_string()), ("timeout", format!("{}s", QUERY_TIMEOUT.as_secs()))])
            .await?;
        Ok(vector.result.into_iter().filter_map(|s| Some((s.metric, s.value.1.parse().ok()?))).collect())
    }

    /// A label's values, among the series `selector` matches when given, over `start..end`.
    pub async fn label_values(
        &self,
        label: &str,
        selector: Option<&str>,
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(QueryError::Refused(format!("\"{label}\" is not a label name.")));
        }
        let mut query = vec![("start", start.to_string()), ("end", end.to_string())];
        if let Some(selector) = selector {
            query.push(("match[]", selector.to_string()));
        }
        self.get(&format!("/api/v1/label/{label}/values"), &query).await
    }

    /// The label names of the series over `start..end`.
    pub async fn label_names(&self, start: i64, end: i64) -> Result<Vec<String>, QueryError> {
        self.get("/api/v1/labels", &[("start", start.to_string()), ("end", end.to_string())]).await
    }

    /// Alerts whose condition holds but not yet for their `for:` time, each with a link to its
    /// rule's expression (as Prometheus links the alerts it sends).
    pub async fn pending_alerts(&self) -> Result<Vec<app::monitoring::Alert>, QueryError> {
        let rules: RuleGroups = self.get("/api/v1/rules", &[("type", "alert".into())]).await?;
        let mut pending = Vec::new();
        for rule in rules.groups.into_iter().flat_map(|g| g.rules) {
            let source = url::Url::parse_with_params(
                &format!("{}/graph", self.url),
                [("g0.expr", rule.query.as_str()), ("g0.tab", "1")],
            )
            .map(String::from)
            .unwrap_or_default();
            for a in rule.alerts.into_iter().filter(|a| a.state == "pending") {
                pending.push(super::alertmanager::alert(
                    app::monitoring::AlertState::Pending,
                    a.labels,
                    &a.annotations,
                    a.active_at,
                    source.clone(),
                ));
            }
        }
        Ok(pending)
    }

    /// A range query, aligned to `step` so repeated views ask the same instants.
    pub async fn range(
        &self,
        query: &str,
        legend_template: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let matrix: Matrix = self
            .get(
                "/api/v1/query_range",
                &[
                    ("query", query.to_string()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", step.to_string()),
                    ("timeout", format!("{}s", QUERY_TIMEOUT.as_secs())),
                ],
            )
            .await?;
        if matrix.result_type != "matrix" {
            return Err(QueryError::Refused(format!(
                "Prometheus answered a {} where a matrix was asked.",
                matrix.result_type
            )));
        }
        if matrix.result.len() > MAX_SERIES {
            return Err(QueryError::Refused(format!(
                "The query gave {} series; a chart draws at most {MAX_SERIES}: narrow it by a label, or aggregate it \
                 (sum by (…)).",
                matrix.result.len()
            )));
        }
        Ok(matrix
            .result
            .into_iter()
            .map(|series| Series {
                legend: legend(legend_template, &series.metric),
                points: series
                    .values
                    .iter()
                    .filter_map(|(at, value)| Some((at.round() as i64, value.parse::<f64>().ok()?)))
                    .filter(|(_, value)| value.is_finite())
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_keeps_series_within_their_points_and_rates_cover_four_scrapes() {
        assert_eq!(step_for(0, 900), 15, "15 minutes at the finest step");
        assert_eq!(step_for(0, 7 * 86_400), 2_016, "7 days in 300 points");
        assert!((7 * 86_400) / step_for(0, 7 * 86_400) <= 300);
        assert_eq!(rate_interval(15), "60s");
        assert_eq!(rate_interval(2_016), "2031s");
    }

    #[test]
    fn legends_fill_in_labels() {
        let labels = BTreeMap::from([("mountpoint".to_string(), "/var".to_string())]);
        assert_eq!(legend("{mountpoint}", &labels), "/var");
        assert_eq!(legend("used", &labels), "used");
        assert_eq!(legend("", &labels), r#"{mountpoint="/var"}"#);
    }
}
