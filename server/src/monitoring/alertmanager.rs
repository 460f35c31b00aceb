//! A cluster's Alertmanager, over its API v2: the alerts firing (not silenced or inhibited),
//! and silences, created in the person's name. Pending alerts come from Prometheus, which
//! holds them until they fire.

use super::prometheus::QUERY_TIMEOUT;
use crate::error::cause;
use app::monitoring::{Alert, AlertState, Matcher, Silence};
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct Alertmanager {
    pub url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: String,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

#[derive(Deserialize)]
struct SilenceStatus {
    state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatus,
    matchers: Vec<Matcher>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

/// An alert as the console lists it, from its labels and annotations.
pub fn alert(
    state: AlertState,
    labels: BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    since: String,
    source: String,
) -> Alert {
    Alert {
        name: labels.get("alertname").cloned().unwrap_or_default(),
        state,
        severity: labels.get("severity").cloned().unwrap_or_default(),
        summary: annotations.get("summary").or_else(|| annotations.get("description")).cloned().unwrap_or_default(),
        since,
        labels,
        // A link, and only to a web page (any pod that can raise an alert writes this).
        source: if source.starts_with("http://") || source.starts_with("https://") { source } else { String::new() },
    }
}

impl Alertmanager {
    pub fn new(url: &str, http: reqwest::Client) -> Alertmanager {
        Alertmanager { url: url.trim_end_matches('/').to_string(), http }
    }

    fn unreachable(&self, error: &reqwest::Error) -> String {
        format!("Alertmanager at {} is unreachable: {}.", self.url, cause(error))
    }

    async fn answer<T: serde::de::DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, String> {
        let response = request.timeout(QUERY_TIMEOUT).send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = super::body_within(response).await.map_err(|e| match e {
            super::BodyError::Read(e) => self.unreachable(&e),
            too_large => too_large.say("Alertmanager", &self.url),
        })?;
        if !status.is_success() {
            let reason = String::from_utf8_lossy(&body).trim().trim_matches('"').to_string();
            return Err(format!("Alertmanager at {} refused: {reason} (HTTP {}).", self.url, status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|_| {
            format!("Alertmanager at {} answered with something other than its API v2; check the URL.", self.url)
        })
    }

    /// Alerts firing and neither silenced nor inhibited.
    pub async fn firing(&self) -> Result<Vec<Alert>, String> {
        let request = self.http.get(format!("{}/api/v2/alerts", self.url)).query(&[
            ("active", "true"),
            ("silenced", "false"),
            ("inhibited", "false"),
        ]);
        let alerts: Vec<GettableAlert> = self.answer(request).await?;
        Ok(alerts
            .into_iter()
            .map(|a| alert(AlertState::Firing, a.labels, &a.annotations, a.starts_at, a.generator_url))
            .collect())
    }

    /// Silences not yet expired, newest first.
    pub async fn silences(&self) -> Result<Vec<Silence>, String> {
        let silences: Vec<GettableSilence> =
            self.answer(self.http.get(format!("{}/api/v2/silences", self.url))).await?;
        let mut silences: Vec<Silence> = silences
            .into_iter()
            .filter(|s| s.status.state != "expired")
            .map(|s| Silence {
                id: s.id,
                state: s.status.state,
                matchers: s.matchers,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                created_by: s.created_by,
                comment: s.comment,
            })
            .collect();
        silences.sort_by(|a, b| b.starts_at.cmp(&a.starts_at));
        Ok(silences)
    }

    /// Creates a silence from now for `seconds`, in `created_by`'s name; its id.
    pub async fn silence(
        &self,
        matchers: &[Matcher],
        seconds: u64,
        created_by: &str,
        comment: &str,
    ) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc();
        let format = time::format_description::well_known::Rfc3339;
        let (starts, ends) = (now.format(&format), (now + time::Duration::seconds(seconds as i64)).format(&format));
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": starts.unwrap_or_default(),
            "endsAt": ends.unwrap_or_default(),
            "createdBy": created_by,
            "comment": comment,
        });
        let created: Created = self.answer(self.http.post(format!("{}/api/v2/silences", self.url)).json(&body)).await?;
        Ok(created.silence_id)
    }

    /// Puts back an expired silence as it was (from now to its end), under a new id: what an
    /// expiry that could not be audited is undone with.
    pub async fn restore(&self, silence: &Silence) -> Result<String, String> {
        let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339);
        let body = serde_json::json!({
            "matchers": silence.matchers,
            "startsAt": now.unwrap_or_default(),
            "endsAt": silence.ends_at,
            "createdBy": silence.created_by,
            "comment": silence.comment,
        });
        let created: Created = self.answer(self.http.post(format!("{}/api/v2/silences", self.url)).json(&body)).await?;
        Ok(created.silence_id)
    }

    /// Expires a silence now.
    pub async fn expire(&self, id: &str) -> Result<(), String> {
        let response = self
            .http
            .delete(format!("{}/api/v2/silence/{id}", self.url))
            .timeout(QUERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(format!("Alertmanager at {} has no silence {id}.", self.url)),
            status => Err(format!("Alertmanager at {} refused to expire silence {id} (HTTP {status}).", self.url)),
        }
    }
}
