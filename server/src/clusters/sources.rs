//! A cluster's linked Prometheus, Alertmanager and Grafana: Pangea's credentials for each
//! (sealed at rest with the cluster) and the client that presents them. The monitoring area
//! checks the links when they are saved ([`super::SourcesCheck`]) and reads through the clients.

use crate::error::cause;
use app::clusters::SourceCredential;
use app::error::{AppError, FieldError};
use base64::Engine;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

/// Pangea's credentials for a cluster's linked sources, stored sealed as one JSON.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<SourceCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<SourceCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana: Option<SourceCredential>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, {}, {})", kind(&self.prometheus), kind(&self.alertmanager), kind(&self.grafana))
    }
}

/// The kind of a stored credential: `none`, `bearer`, `basic` or `client_certificate`.
pub fn kind(credential: &Option<SourceCredential>) -> &'static str {
    credential.as_ref().map_or("none", SourceCredential::kind)
}

/// The client for each linked source, presenting Pangea's credential for it.
#[derive(Clone, Debug)]
pub struct Clients {
    pub prometheus: reqwest::Client,
    pub alertmanager: reqwest::Client,
    pub grafana: reqwest::Client,
}

impl Credentials {
    /// The sources whose credential differs from `before`'s: set, replaced or removed. Names
    /// only, for the audit log.
    pub fn changed_since(&self, before: &Credentials) -> Vec<&'static str> {
        [
            ("prometheus", self.prometheus != before.prometheus),
            ("alertmanager", self.alertmanager != before.alertmanager),
            ("grafana", self.grafana != before.grafana),
        ]
        .into_iter()
        .filter_map(|(source, changed)| changed.then_some(source))
        .collect()
    }

    /// A client per source; a credential that cannot be used is refused on its field.
    pub fn clients(&self) -> Result<Clients, AppError> {
        let mut fields = Vec::new();
        let mut build = |field: &str, credential: &Option<SourceCredential>| {
            client_with(credential.as_ref()).unwrap_or_else(|message| {
                fields.push(FieldError { field: field.into(), message });
                reqwest::Client::new()
            })
        };
        let clients = Clients {
            prometheus: build("prometheus_credential", &self.prometheus),
            alertmanager: build("alertmanager_credential", &self.alertmanager),
            grafana: build("grafana_credential", &self.grafana),
        };
        // Grafana reads a token or a password before its auth proxy's headers: every person
        // would act as Pangea's account there. Only a client certificate (the proxy's own
        // identity) is taken.
        if matches!(self.grafana, Some(SourceCredential::Bearer { .. } | SourceCredential::Basic { .. })) {
            fields.push(FieldError {
                field: "grafana_credential".into(),
                message: "Grafana signs people in through its auth proxy, and a bearer token or password would \
                          replace them: give Pangea a client certificate for Grafana, or none."
                    .into(),
            });
        }
        if fields.is_empty() {
            return Ok(clients);
        }
        let message = fields.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join(" ");
        Err(AppError::Invalid { message, fields })
    }
}

fn authorization(value: String) -> Result<HeaderMap, String> {
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "A credential may hold only visible ASCII characters.".to_string())?;
    value.set_sensitive(true);
    Ok(HeaderMap::from_iter([(AUTHORIZATION, value)]))
}

/// A client for a source, following no redirects, that presents `credential`.
pub fn client_with(credential: Option<&SourceCredential>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5));
    match credential {
        None | Some(SourceCredential::None) => {}
        Some(SourceCredential::Bearer { token }) => {
            if token.trim().is_empty() {
                return Err("Give the bearer token.".into());
            }
            builder = builder.default_headers(authorization(format!("Bearer {}", token.trim()))?);
        }
        Some(SourceCredential::Basic { username, password }) => {
            if username.is_empty() || username.contains(':') {
                return Err("Give a user name, without a colon, for basic authentication.".into());
            }
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            builder = builder.default_headers(authorization(format!("Basic {pair}"))?);
        }
        Some(SourceCredential::ClientCertificate { certificate_pem, key_pem, ca_pem }) => {
            let identity = reqwest::Identity::from_pem(format!("{certificate_pem}\n{key_pem}").as_bytes())
                .map_err(|e| format!("The client certificate and key cannot be used: {}.", cause(&e)))?;
            builder = builder.identity(identity);
            if !ca_pem.trim().is_empty() {
                let roots = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
                    .map_err(|e| format!("The CA bundle is not PEM certificates: {}.", cause(&e)))?;
                if roots.is_empty() {
                    return Err("The CA bundle holds no certificate.".into());
                }
                for root in roots {
                    builder = builder.add_root_certificate(root);
                }
            }
        }
    }
    builder.build().map_err(|e| format!("The credential cannot be used: {}.", cause(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_since_names_the_sources_set_replaced_or_removed() {
        let bearer = |t: &str| Some(SourceCredential::Bearer { token: t.into() });
        let before = Credentials { prometheus: bearer("a"), alertmanager: bearer("b"), grafana: None };
        let after = Credentials { prometheus: bearer("a2"), alertmanager: None, grafana: None };
        assert_eq!(after.changed_since(&before), ["prometheus", "alertmanager"]);
        assert!(before.changed_since(&before).is_empty());
    }

    #[test]
    fn credentials_are_checked_in_words_and_never_shown() {
        let refused = |c: SourceCredential| client_with(Some(&c)).unwrap_err();
        assert_eq!(refused(SourceCredential::Bearer { token: " ".into() }), "Give the bearer token.");
        assert!(refused(SourceCredential::Basic { username: "a:b".into(), password: String::new() }).contains("colon"));
        assert!(refused(SourceCredential::Bearer { token: "line\nbreak".into() }).contains("visible ASCII"));
        let bad_pem = SourceCredential::ClientCertificate {
            certificate_pem: "not a certificate".into(),
            key_pem: "nor a key".into(),
            ca_pem: String::new(),
        };
        assert!(refused(bad_pem).starts_with("The client certificate and key cannot be used"));
        let credentials = Credentials {
            prometheus: Some(SourceCredential::Basic { username: "u".into(), password: "hunter2".into() }),
            alertmanager: Some(SourceCredential::Bearer { token: " ".into() }),
            grafana: Some(SourceCredential::Basic { username: "u".into(), password: "hunter2".into() }),
        };
        assert_eq!(format!("{credentials:?}"), "Credentials(basic, bearer, basic)");
        let refused = credentials.clients().unwrap_err();
        assert_eq!(refused.field("alertmanager_credential").as_deref(), Some("Give the bearer token."));
        assert!(refused.field("grafana_credential").unwrap().contains("auth proxy"));
        assert!(refused.field("prometheus_credential").is_none());
    }
}
