//! Single sign-on with an OpenID provider (Dex, Keycloak, Okta, Entra ID, …): the
//! authorization-code flow with PKCE (S256), state and nonce, and full ID-token verification
//! (JWKS signature, issuer, audience, expiry, nonce).
//!
//! The provider is discovered on first use and re-discovered after an hour or a failure, so an
//! IdP that is down at start-up, or later, takes down only single sign-on, never the console.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreGenderClaim, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const REDISCOVER_AFTER: Duration = Duration::from_secs(3600);
/// How far the IdP's clock may be off before an ID token counts as expired.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Provider metadata beyond the core fields: where to end the IdP session on sign-out.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LogoutMetadata {
    end_session_endpoint: Option<url::Url>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// Every claim, kept as JSON, so the configured user-name and groups claims can be read.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct AnyClaims(serde_json::Map<String, serde_json::Value>);
impl AdditionalClaims for AnyClaims {}

/// How Pangea talks to the IdP; built from configuration.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: url::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where the IdP sends people back: `<public URL>/auth/oidc/callback`.
    pub redirect_url: url::Url,
    /// Where the IdP sends people after signing out: `<public URL>/login?signed_out=1`.
    pub post_logout_url: url::Url,
    pub extra_scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    /// How often a session with a refresh token asks the IdP whether the person may still sign in.
    pub refresh_every: Duration,
}

/// What the IdP said when asked to refresh a session.
#[derive(Debug)]
pub enum Refreshed {
    /// Still welcome; the IdP may have rotated the refresh token.
    Valid(Option<SecretString>),
    /// The IdP refused: the person was disabled there, or the grant revoked.
    Revoked(String),
    /// The IdP could not be asked; the session goes on (an IdP outage must not sign people out).
    Unavailable(String),
}

/// A sign-in on its way through the IdP, kept in the browser's session until the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    state: String,
    nonce: String,
    pkce_verifier: String,
    pub next: String,
}

/// Who the IdP says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    pub subject: String,
    pub username: String,
    pub groups: Vec<String>,
}

/// What went wrong, in terms a person can act on; `code` goes into the login page's URL.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot reach the identity provider at {issuer}: {detail}")]
    Unreachable { issuer: String, detail: String },
    #[error("the identity provider refused the sign-in: {0}")]
    Denied(String),
    #[error("the sign-in response does not belong to a sign-in started here (state missing or changed)")]
    State,
    #[error("the identity provider did not accept Pangea's code exchange: {0}")]
    Exchange(String),
    #[error("the ID token failed verification: {0}")]
    Token(String),
    #[error("the identity provider's answer has no usable {0} claim")]
    Claims(String),
}

impl OidcError {
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::Unreachable { .. } => "sso_unreachable",
            OidcError::Denied(_) => "sso_denied",
            OidcError::State => "sso_state",
            OidcError::Exchange(_) => "sso_exchange",
            OidcError::Token(_) => "sso_token",
            OidcError::Claims(_) => "sso_claims",
        }
    }
}

struct Provider {
    client: Client,
    end_session: Option<url::Url>,
    scopes_supported: Vec<String>,
    discovered: Instant,
}

pub struct Oidc {
    settings: OidcSettings,
    http: openidconnect::reqwest::Client,
    provider: Mutex<Option<std::sync::Arc<Provider>>>,
}

fn claim_text(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(|v| v.as_str()).map(str::to_string).filter(|s| !s.is_empty())
}

fn claim_list(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<Vec<String>> {
    match claims.get(name)? {
        serde_json::Value::Array(items) => Some(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        serde_json::Value::String(one) => Some(vec![one.clone()]),
        _ => None,
    }
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Oidc {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a hostile IdP aim Pangea at internal addresses.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Oidc { settings, http, provider: Mutex::new(None) }
    }

    pub fn issuer(&self) -> &url::Url {
        &self.settings.issuer
    }

    /// The client id Pangea is registered under at the IdP.
    pub fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    async fn provider(&self) -> Result<std::sync::Arc<Provider>, OidcError> {
        let mut cached = self.provider.lock().await;
        if let Some(p) = cached.as_ref().filter(|p| p.discovered.elapsed() < REDISCOVER_AFTER) {
            return Ok(p.clone());
        }
        let unreachable = |detail: String| OidcError::Unreachable { issuer: self.settings.issuer.to_string(), detail };
        // URL parsing adds a "/" to a bare host; issuers are compared exactly, without it.
        let text = self.settings.issuer.as_str();
        let text = if self.settings.issuer.path() == "/" { text.trim_end_matches('/') } else { text };
        let issuer = IssuerUrl::new(text.to_string()).map_err(|e| unreachable(e.to_string()))?;
        let metadata = Metadata::discover_async(issuer, &self.http).await.map_err(|e| unreachable(error_chain(&e)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let scopes_supported =
            metadata.scopes_supported().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.expose_secret().to_string())),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.settings.redirect_url.clone()));
        let provider =
            std::sync::Arc::new(Provider { client, end_session, scopes_supported, discovered: Instant::now() });
        *cached = Some(provider.clone());
        Ok(provider)
    }

    /// Starts a sign-in: the IdP URL to send the browser to, and what to keep until it returns.
    pub async fn begin(&self, next: String) -> Result<(url::Url, PendingLogin), OidcError> {
        let provider = self.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in ["email", "profile", "groups", "offline_access"] {
            if provider.scopes_supported.iter().any(|s| s == scope) {
                request = request.add_scope(Scope::new(scope.into()));
            }
        }
        for scope in &self.settings.extra_scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next,
        };
        Ok((url, pending))
    }

    /// Finishes a sign-in from the callback's `state` and `code`. Also says how long it waited
    /// for the IdP, so Pangea's own share of the sign-in can be told apart.
    pub async fn finish(
        &self,
        pending: PendingLogin,
        state: &str,
        code: String,
    ) -> Result<(OidcIdentity, Option<SecretString>, Duration), OidcError> {
        if state != pending.state {
            return Err(OidcError::State);
        }
        let provider = self.provider().await?;
        let waiting = Instant::now();
        let token = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let mut idp_time = waiting.elapsed();
        let id_token = token.id_token().ok_or_else(|| OidcError::Token("the IdP sent no ID token".into()))?;
        // Tolerate clocks a little apart, in both directions: expired a moment ago is fine, and so
        // is issued a moment "in the future"; more than that means a clock is off.
        let verifier = provider
            .client
            .id_token_verifier()
            .set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW)
            .set_issue_time_verifier_fn(|issued| {
                if issued > chrono::Utc::now() + CLOCK_SKEW {
                    Err(format!("it was issued at {issued}, in the future by this server's clock; a clock is off"))
                } else {
                    Ok(())
                }
            });
        let claims =
            id_token.claims(&verifier, &Nonce::new(pending.nonce)).map_err(|e| OidcError::Token(error_chain(&e)))?;
        let subject = claims.subject().to_string();
        // The verified token's own claims; the configured names may be any claim.
        let mut all: serde_json::Map<String, serde_json::Value> =
            serde_json::to_value(claims).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
        let missing = |all: &serde_json::Map<String, serde_json::Value>| {
            claim_text(all, &self.settings.username_claim).is_none()
                || claim_list(all, &self.settings.groups_claim).is_none()
        };
        let asking = Instant::now();
        let userinfo = match (missing(&all), provider.client.user_info(token.access_token().clone(), None)) {
            (true, Ok(request)) => match request.request_async::<AnyClaims, _, CoreGenderClaim>(&self.http).await {
                Ok(info) => Some(info),
                Err(e) => {
                    // Signing in goes on with the ID token's claims; a missing groups claim means no role.
                    tracing::warn!(error = %error_chain(&e), "the IdP's userinfo endpoint failed");
                    None
                }
            },
            _ => None,
        };
        idp_time += asking.elapsed();
        if let Some(info) = userinfo {
            let info: UserInfoClaims<AnyClaims, CoreGenderClaim> = info;
            if info.subject().as_str() == subject {
                let extra = serde_json::to_value(&info).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
                for (k, v) in extra {
                    all.entry(k).or_insert(v);
                }
            }
        }
        let username = claim_text(&all, &self.settings.username_claim)
            .ok_or_else(|| OidcError::Claims(self.settings.username_claim.clone()))?;
        let groups = claim_list(&all, &self.settings.groups_claim).unwrap_or_default();
        let refresh = token.refresh_token().map(|t| SecretString::from(t.secret().clone()));
        Ok((OidcIdentity { subject, username, groups }, refresh, idp_time))
    }

    pub fn refresh_every(&self) -> Duration {
        self.settings.refresh_every
    }

    /// Uses a refresh token, which tells whether the IdP still lets the person in.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Refreshed {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Refreshed::Unavailable(e.to_string()),
        };
        let token = openidconnect::RefreshToken::new(refresh_token.expose_secret().to_string());
        let request = match provider.client.exchange_refresh_token(&token) {
            Ok(r) => r,
            Err(e) => return Refreshed::Unavailable(e.to_string()),
        };
        match request.request_async(&self.http).await {
            Ok(response) => Refreshed::Valid(response.refresh_token().map(|t| SecretString::from(t.secret().clone()))),
            Err(openidconnect::RequestTokenError::ServerResponse(e)) => Refreshed::Revoked(e.to_string()),
            Err(e) => Refreshed::Unavailable(error_chain(&e)),
        }
    }

    /// Where to send the browser to end the IdP session too, when the IdP offers it.
    pub async fn logout_url(&self) -> Option<url::Url> {
        let provider = self.provider().await.ok()?;
        let mut url = provider.end_session.clone()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("post_logout_redirect_uri", self.settings.post_logout_url.as_str());
        Some(url)
    }
}

/// An error and its causes on one line, without secrets (request bodies are not included).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_by_configured_name() {
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"email": "a@x", "roles": "one", "groups": ["g1", "g2"], "n": 1}))
                .unwrap();
        assert_eq!(claim_text(&claims, "email").as_deref(), Some("a@x"));
        assert_eq!(claim_list(&claims, "groups"), Some(vec!["g1".into(), "g2".into()]));
        assert_eq!(claim_list(&claims, "roles"), Some(vec!["one".into()]));
        assert_eq!(claim_text(&claims, "n"), None);
        assert_eq!(claim_list(&claims, "missing"), None);
    }
}
