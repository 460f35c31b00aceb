//! Single sign-on with an OpenID provider (Dex, Keycloak, Okta, Entra ID, …): the
//! authorization-code flow with PKCE (S256), state and nonce, and full ID-token verification
//! (JWKS signature, issuer, audience, expiry, nonce).
//!
//! The provider is discovered on first use and re-discovered after an hour or a failure, so an
//! IdP that is down at start-up, or later, takes down only single sign-on, never the console.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenClaims, IdTokenFields,
    IssuerUrl, Nonce, NonceVerifier, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    UserInfoClaims,
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

/// Every claim beyond the standard ones, kept as JSON, so the configured user-name and groups
/// claims can be read from the ID token itself (the core client's types would drop them).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct AnyClaims(serde_json::Map<String, serde_json::Value>);
impl AdditionalClaims for AnyClaims {}

type IdToken =
    openidconnect::IdToken<AnyClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type IdFields = IdTokenFields<
    AnyClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;

type Client = openidconnect::Client<
    AnyClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

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
    /// Still welcome. The IdP may have rotated the refresh token (the old one is spent).
    Valid { rotated: Option<SecretString>, groups: RefreshedGroups },
    /// The IdP refused the grant (`invalid_grant`): the person was disabled there, or the grant
    /// revoked. Only this ends a session.
    Revoked(String),
    /// The IdP could not be asked, or refused Pangea itself (a rotated client secret, a 5xx): the
    /// session goes on, since that is no verdict on the person.
    Unavailable(String),
}

/// Which token of the IdP's a session keeps (sealed) to ask again whether the person may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpTokenKind {
    /// A refresh token: each check is a refresh (the token may rotate).
    Refresh,
    /// The access token, when the IdP gave no refresh token: each check asks userinfo with it,
    /// and the session ends once the IdP refuses it (at the latest, when it expires).
    Access,
}

impl IdpTokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdpTokenKind::Refresh => "refresh",
            IdpTokenKind::Access => "access",
        }
    }

    pub fn parse(text: &str) -> IdpTokenKind {
        if text == "access" { IdpTokenKind::Access } else { IdpTokenKind::Refresh }
    }
}

/// The token a sign-in leaves the session, to check it with at the IdP later.
#[derive(Debug)]
pub struct IdpGrant {
    pub kind: IdpTokenKind,
    pub token: SecretString,
}

/// The person's groups after a refresh: from the refreshed ID token about them, else from
/// userinfo.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshedGroups {
    Named(Vec<String>),
    /// Neither the ID token nor userinfo has the groups claim: the session must end, or the
    /// groups of its sign-in would count forever.
    Unnamed,
    /// Userinfo could not be asked (the IdP is down): the groups stay as they were, and the
    /// next refresh asks again.
    Unknown(String),
}

/// A sign-in on its way through the IdP, sealed in a short-lived cookie until the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    state: String,
    nonce: String,
    pkce_verifier: String,
    pub next: String,
}

/// Who the IdP says signed in. People are keyed by issuer and subject, which never change;
/// the user name (often an email address) may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    pub issuer: String,
    pub subject: String,
    pub username: String,
    pub groups: Vec<String>,
    /// Set when neither the ID token nor userinfo carried the groups claim: says which claim
    /// was expected and which arrived, for the "no role" message and the audit log.
    pub groups_note: Option<String>,
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
    #[error("the identity provider did not send your groups (its userinfo endpoint failed: {0})")]
    Groups(String),
    #[error("the identity provider has not verified the email address {0}, so it cannot name a Pangea user")]
    UnverifiedEmail(String),
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
            OidcError::Groups(_) => "sso_groups",
            OidcError::UnverifiedEmail(_) => "sso_unverified",
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
    http: IdpHttp,
    provider: Mutex<Option<std::sync::Arc<Provider>>>,
}

/// The most of any one answer from the IdP (discovery, keys, tokens, userinfo) Pangea reads.
pub const MAX_IDP_ANSWER: usize = 1 << 20;

/// openidconnect's HTTP client, reading at most [`MAX_IDP_ANSWER`] of each answer as it arrives.
struct IdpHttp(openidconnect::reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for IdpHttp {
    type Error = openidconnect::HttpClientError<openidconnect::reqwest::Error>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>> + Send + Sync + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        use openidconnect::HttpClientError;
        Box::pin(async move {
            let url = request.uri().to_string();
            let response = self.0.execute(request.try_into().map_err(Box::new)?).await.map_err(Box::new)?;
            let mut builder = http::Response::builder().status(response.status()).version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = crate::http::body::read_within(response, MAX_IDP_ANSWER).await.map_err(|e| match e {
                crate::http::body::BodyError::Read(e) => HttpClientError::Reqwest(Box::new(e)),
                too_large => HttpClientError::Other(too_large.say("The IdP", &url)),
            })?;
            builder.body(body).map_err(HttpClientError::Http)
        })
    }
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
        Oidc { settings, http: IdpHttp(http), provider: Mutex::new(None) }
    }

    pub fn issuer(&self) -> &url::Url {
        &self.settings.issuer
    }

    /// The issuer as ID tokens name it (without the `/` URL parsing adds to a bare host).
    pub fn issuer_text(&self) -> &str {
        let text = self.settings.issuer.as_str();
        if self.settings.issuer.path() == "/" { text.trim_end_matches('/') } else { text }
    }

    /// The client id Pangea is registered under at the IdP.
    pub fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    async fn provider(&self) -> Result<std::sync::Arc<Provider>, OidcError> {
        self.discover(false).await
    }

    /// The discovered provider; `again` discovers it anew (and so re-fetches its JWKS).
    async fn discover(&self, again: bool) -> Result<std::sync::Arc<Provider>, OidcError> {
        let mut cached = self.provider.lock().await;
        if let Some(p) = cached.as_ref().filter(|p| !again && p.discovered.elapsed() < REDISCOVER_AFTER) {
            return Ok(p.clone());
        }
        let unreachable = |detail: String| OidcError::Unreachable { issuer: self.settings.issuer.to_string(), detail };
        // URL parsing adds a "/" to a bare host; issuers are compared exactly, without it.
        let issuer = IssuerUrl::new(self.issuer_text().to_string()).map_err(|e| unreachable(e.to_string()))?;
        let metadata = Metadata::discover_async(issuer, &self.http).await.map_err(|e| unreachable(error_chain(&e)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let scopes_supported =
            metadata.scopes_supported().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        let client = Client::from_provider_metadata(
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
        // The configured groups claim too: an IdP such as Keycloak releases `roles` only to
        // clients that ask for the scope of that name.
        let groups_claim = self.settings.groups_claim.as_str();
        let mut wanted = vec!["email", "profile", "groups", "offline_access"];
        if !wanted.contains(&groups_claim) {
            wanted.push(groups_claim);
        }
        for scope in wanted {
            if provider.scopes_supported.iter().any(|s| s == scope)
                && !self.settings.extra_scopes.iter().any(|s| s == scope)
            {
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
    ) -> Result<(OidcIdentity, IdpGrant, Duration), OidcError> {
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
        let nonce = Nonce::new(pending.nonce);
        let claims = self.verified_claims(&provider, id_token, &nonce).await?;
        let subject = claims.subject().to_string();
        // The verified token's own claims, standard and additional; the configured names may be any claim.
        let mut all = claims_as_map(&claims);
        let username_claim = self.settings.username_claim.as_str();
        let groups_claim = self.settings.groups_claim.as_str();
        let complete = |all: &serde_json::Map<String, serde_json::Value>| {
            claim_text(all, username_claim).is_some() && claim_list(all, groups_claim).is_some()
        };
        if !complete(&all) {
            // Only now ask userinfo; when it fails, the groups are unknown, and signing the
            // person in without them would hand out the wrong role (or none).
            let asking = Instant::now();
            let request = provider
                .client
                .user_info(token.access_token().clone(), None)
                .map_err(|e| OidcError::Groups(format!("the IdP offers no userinfo endpoint ({e})")))?;
            let info: UserInfoClaims<AnyClaims, CoreGenderClaim> =
                request.request_async(&self.http).await.map_err(|e| OidcError::Groups(error_chain(&e)))?;
            idp_time += asking.elapsed();
            if info.subject().as_str() == subject {
                let extra = serde_json::to_value(&info).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
                for (k, v) in extra {
                    all.entry(k).or_insert(v);
                }
            }
        }
        let username = claim_text(&all, username_claim).ok_or_else(|| OidcError::Claims(username_claim.to_string()))?;
        // An unverified email address could be anybody's: it must not name a Pangea user.
        // Some IdPs send `"true"` as a string; a missing claim counts as unverified.
        let verified = matches!(all.get("email_verified"), Some(serde_json::Value::Bool(true)))
            || matches!(all.get("email_verified"), Some(serde_json::Value::String(s)) if s == "true");
        if username_claim == "email" && !verified {
            return Err(OidcError::UnverifiedEmail(username));
        }
        let (groups, groups_note) = match claim_list(&all, groups_claim) {
            Some(groups) => (groups, None),
            None => {
                let arrived: Vec<&str> = all.keys().map(String::as_str).collect();
                let note = format!(
                    "Pangea expected your groups in the claim \"{groups_claim}\", but the identity provider sent only: {}. \
                     An admin should check --oidc-groups-claim and the provider's claim mappers.",
                    arrived.join(", ")
                );
                (Vec::new(), Some(note))
            }
        };
        // Kubernetes' own groups are never used (connect::Impersonation leaves them out too);
        // the person is told which were dropped, and the sign-in's audit record keeps the note.
        let (dropped, groups): (Vec<String>, Vec<String>) =
            groups.into_iter().partition(|g| app::access::is_kubernetes_own(g));
        let groups_note = match (groups_note, dropped.is_empty()) {
            (note, true) => note,
            (note, false) => Some(format!(
                "{}The identity provider's groups {} are Kubernetes' own; Pangea dropped them and never acts with them.",
                note.map(|n| format!("{n} ")).unwrap_or_default(),
                dropped.join(", ")
            )),
        };
        // Without a refresh token, the access token is what the session is checked with.
        let grant = match token.refresh_token() {
            Some(refresh) => {
                IdpGrant { kind: IdpTokenKind::Refresh, token: SecretString::from(refresh.secret().clone()) }
            }
            None => IdpGrant {
                kind: IdpTokenKind::Access,
                token: SecretString::from(token.access_token().secret().clone()),
            },
        };
        let issuer = claims.issuer().to_string();
        Ok((OidcIdentity { issuer, subject, username, groups, groups_note }, grant, idp_time))
    }

    /// Verifies an ID token: signature (re-fetching the JWKS once when the token names a key
    /// the cached set lacks, as after a key rotation at the IdP), issuer, audience, expiry,
    /// issue time and nonce.
    async fn verified_claims(
        &self,
        provider: &Provider,
        id_token: &IdToken,
        nonce: impl NonceVerifier + Copy,
    ) -> Result<IdTokenClaims<AnyClaims, CoreGenderClaim>, OidcError> {
        let verify = |client: &Client| {
            // Tolerate clocks a little apart, in both directions: expired a moment ago is fine,
            // and so is issued a moment "in the future"; more than that means a clock is off.
            let verifier = client
                .id_token_verifier()
                .set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW)
                .set_issue_time_verifier_fn(|issued| {
                    if issued > chrono::Utc::now() + CLOCK_SKEW {
                        Err(format!("it was issued at {issued}, in the future by this server's clock; a clock is off"))
                    } else {
                        Ok(())
                    }
                });
            id_token.claims(&verifier, nonce).cloned()
        };
        match verify(&provider.client) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                tracing::info!("an ID token names a signing key Pangea has not seen; re-fetching the IdP's keys");
                let fresh = self.discover(true).await?;
                verify(&fresh.client).map_err(|e| OidcError::Token(error_chain(&e)))
            }
            other => other.map_err(|e| OidcError::Token(error_chain(&e))),
        }
    }

    pub fn refresh_every(&self) -> Duration {
        self.settings.refresh_every
    }

    /// Uses a refresh token, which tells whether the IdP still lets the person in, and with
    /// which groups: those of the refreshed ID token when it is about `subject` and has the
    /// groups claim, else those userinfo gives about `subject`.
    pub async fn refresh(&self, refresh_token: &SecretString, subject: &str) -> Refreshed {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Refreshed::Unavailable(e.to_string()),
        };
        let token = openidconnect::RefreshToken::new(refresh_token.expose_secret().to_string());
        let request = match provider.client.exchange_refresh_token(&token) {
            Ok(r) => r,
            Err(e) => return Refreshed::Unavailable(e.to_string()),
        };
        let response = match request.request_async(&self.http).await {
            Ok(response) => response,
            Err(openidconnect::RequestTokenError::ServerResponse(e))
                if *e.error() == CoreErrorResponseType::InvalidGrant =>
            {
                return Refreshed::Revoked(e.to_string());
            }
            Err(e) => return Refreshed::Unavailable(error_chain(&e)),
        };
        let rotated = response.refresh_token().map(|t| SecretString::from(t.secret().clone()));
        // A refreshed ID token has no nonce of ours to check.
        let no_nonce = |_: Option<&Nonce>| Ok(());
        // What the refreshed ID token says of the groups: `Ok(None)` without an ID token or
        // without the claim; `Err(())` when it cannot be used (unverified, or about someone else).
        let from_id_token: Result<Option<Vec<String>>, ()> = match response.id_token() {
            Some(id_token) => match self.verified_claims(&provider, id_token, no_nonce).await {
                Ok(claims) if claims.subject().as_str() == subject => {
                    Ok(claim_list(&claims_as_map(&claims), &self.settings.groups_claim))
                }
                Ok(_) => {
                    tracing::warn!("a refreshed ID token is about someone else; its groups are not taken");
                    Err(())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a refreshed ID token failed verification; its groups are not taken");
                    Err(())
                }
            },
            None => Ok(None),
        };
        let groups = match &from_id_token {
            Ok(Some(groups)) => Some(groups.clone()),
            _ => match self.userinfo_groups(&provider, response.access_token(), subject).await {
                Ok(groups) => groups,
                Err(reason) => return Refreshed::Valid { rotated, groups: RefreshedGroups::Unknown(reason) },
            },
        };
        let groups = match (groups, from_id_token) {
            (Some(groups), _) => {
                RefreshedGroups::Named(groups.into_iter().filter(|g| !app::access::is_kubernetes_own(g)).collect())
            }
            // An ID token that could not be used says nothing either way: ask again next time.
            (None, Err(())) => {
                RefreshedGroups::Unknown("the refreshed ID token could not be used, and userinfo has no groups".into())
            }
            (None, Ok(_)) => RefreshedGroups::Unnamed,
        };
        Refreshed::Valid { rotated, groups }
    }

    /// Asks userinfo with a session's access token (its IdP gave no refresh token) whether the
    /// person may go on, and with which groups. A refused token (401) ends the session.
    pub async fn recheck(&self, access_token: &SecretString, subject: &str) -> Refreshed {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Refreshed::Unavailable(e.to_string()),
        };
        let token = openidconnect::AccessToken::new(access_token.expose_secret().to_string());
        let Ok(request) = provider.client.user_info(token, None) else {
            return Refreshed::Revoked(
                "the identity provider offers no userinfo endpoint to check the session with".into(),
            );
        };
        let answer: Result<UserInfoClaims<AnyClaims, CoreGenderClaim>, _> = request.request_async(&self.http).await;
        let info = match answer {
            Ok(info) => info,
            Err(openidconnect::UserInfoError::Response(status, _, _)) if status.as_u16() == 401 => {
                return Refreshed::Revoked("the identity provider no longer accepts the session's access token".into());
            }
            Err(e) => return Refreshed::Unavailable(format!("userinfo failed: {}", error_chain(&e))),
        };
        if info.subject().as_str() != subject {
            return Refreshed::Unavailable("userinfo answered about someone else".into());
        }
        let claims = serde_json::to_value(&info).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
        let groups = match claim_list(&claims, &self.settings.groups_claim) {
            Some(groups) => {
                RefreshedGroups::Named(groups.into_iter().filter(|g| !app::access::is_kubernetes_own(g)).collect())
            }
            None => RefreshedGroups::Unnamed,
        };
        Refreshed::Valid { rotated: None, groups }
    }

    /// The groups claim userinfo gives about `subject`: `None` when it has none (or the IdP has
    /// no userinfo endpoint); an error when it could not be asked or answered about someone else.
    async fn userinfo_groups(
        &self,
        provider: &Provider,
        access_token: &openidconnect::AccessToken,
        subject: &str,
    ) -> Result<Option<Vec<String>>, String> {
        let Ok(request) = provider.client.user_info(access_token.clone(), None) else { return Ok(None) };
        let info: UserInfoClaims<AnyClaims, CoreGenderClaim> =
            request.request_async(&self.http).await.map_err(|e| format!("userinfo failed: {}", error_chain(&e)))?;
        if info.subject().as_str() != subject {
            return Err("userinfo answered about someone else".into());
        }
        let claims = serde_json::to_value(&info).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
        Ok(claim_list(&claims, &self.settings.groups_claim))
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

/// Standard and additional claims of a verified ID token, by name.
fn claims_as_map(claims: &IdTokenClaims<AnyClaims, CoreGenderClaim>) -> serde_json::Map<String, serde_json::Value> {
    serde_json::to_value(claims).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
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

    /// An IdP whose discovery document is over [`MAX_IDP_ANSWER`] is refused in words once that
    /// much has arrived, whether or not it says its length.
    #[tokio::test]
    async fn an_answer_from_the_idp_is_read_up_to_its_limit() {
        for with_length in [true, false] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let issuer = format!("http://{}", listener.local_addr().unwrap());
            let huge = format!("{{\"issuer\": \"{issuer}\", \"pad\": \"{}\"}}", "x".repeat(MAX_IDP_ANSWER));
            let app = axum::Router::new().fallback(move || {
                let huge = huge.clone();
                async move {
                    if with_length {
                        axum::body::Body::from(huge)
                    } else {
                        let chunks = huge
                            .into_bytes()
                            .chunks(64 << 10)
                            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                            .collect::<Vec<_>>();
                        axum::body::Body::from_stream(futures::stream::iter(chunks))
                    }
                }
            });
            tokio::spawn(async move { axum::serve(listener, app).await });
            let oidc = Oidc::new(OidcSettings {
                issuer: issuer.parse().unwrap(),
                client_id: "pangea".into(),
                client_secret: SecretString::from("secret"),
                redirect_url: "http://127.0.0.1:1/auth/oidc/callback".parse().unwrap(),
                post_logout_url: "http://127.0.0.1:1/login".parse().unwrap(),
                extra_scopes: Vec::new(),
                username_claim: "email".into(),
                groups_claim: "groups".into(),
                refresh_every: Duration::from_secs(60),
            });
            let error = oidc.discover(false).await.err().unwrap().to_string();
            assert!(error.contains("more than 1 MiB"), "{with_length}: {error}");
        }
    }
}
