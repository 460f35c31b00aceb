//! The check made when a cluster's Prometheus, Alertmanager and Grafana are linked: each must
//! answer its own API, or the person is told in words which one did not and why.

use super::prometheus::{Prometheus, QUERY_TIMEOUT};
use crate::clusters::sources::Clients;
use crate::error::cause;
use app::error::{AppError, FieldError};

/// What the clusters area calls when links are saved, wired by the composition root.
pub struct SourceCheck;

#[async_trait::async_trait]
impl crate::clusters::SourcesCheck for SourceCheck {
    async fn check(
        &self,
        clients: &Clients,
        prometheus: &str,
        alertmanager: &str,
        grafana: &str,
    ) -> Result<(), AppError> {
        check(clients, prometheus, alertmanager, grafana).await
    }
}

/// A JSON API answering 200 at `path` with `key` in its object, as Alertmanager's
/// `/api/v2/status` (`versionInfo`) and Grafana's `/api/health` (`database`) do.
async fn answers(http: &reqwest::Client, what: &str, url: &str, path: &str, key: &str) -> Result<(), String> {
    let url = url.trim_end_matches('/');
    let response = http
        .get(format!("{url}{path}"))
        .timeout(QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{what} at {url} is unreachable: {}.", cause(&e)))?;
    let status = response.status();
    let body: Option<serde_json::Value> =
        super::body_within(response).await.ok().and_then(|b| serde_json::from_slice(&b).ok());
    match body {
        Some(body) if status.is_success() && body.get(key).is_some() => Ok(()),
        _ => Err(format!(
            "{what} at {url} answered {path} with HTTP {}, not {what}'s API; check the URL.",
            status.as_u16()
        )),
    }
}

/// Checks every linked source with its client; all failures are reported at once, each on
/// its field.
async fn check(
    clients: &Clients,
    prometheus_url: &str,
    alertmanager_url: &str,
    grafana_url: &str,
) -> Result<(), AppError> {
    let mut fields = Vec::new();
    if !prometheus_url.is_empty()
        && let Err(e) = Prometheus::new(prometheus_url, clients.prometheus.clone()).check().await
    {
        fields.push(FieldError { field: "prometheus_url".into(), message: e.to_string() });
    }
    if !alertmanager_url.is_empty()
        && let Err(message) =
            answers(&clients.alertmanager, "Alertmanager", alertmanager_url, "/api/v2/status", "versionInfo").await
    {
        fields.push(FieldError { field: "alertmanager_url".into(), message });
    }
    if !grafana_url.is_empty()
        && let Err(message) = answers(&clients.grafana, "Grafana", grafana_url, "/api/health", "database").await
    {
        fields.push(FieldError { field: "grafana_url".into(), message });
    }
    if fields.is_empty() {
        return Ok(());
    }
    let message = fields.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join(" ");
    Err(AppError::Invalid { message, fields })
}
