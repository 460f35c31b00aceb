//! Reaching a cluster's API server: the kube-rs client for Pangea's own identity or for a
//! person Pangea impersonates, the checks made before a cluster is saved, kubeconfig reading,
//! and the cluster's refusals in words.

use app::access::{Identity, Principal};
use app::clusters::{Credential, ReadyCheck};
use app::error::AppError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client, Config};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::SecretString;
use std::time::Duration;

/// Where a cluster is and how Pangea signs in to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub api_url: String,
    pub ca_pem: String,
    pub credential: Credential,
}

/// The user and groups a call is made as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    pub user: String,
    pub groups: Vec<String>,
}

/// The group every API token is impersonated with, besides its own user `pangea:token:<name>`,
/// so a cluster can grant all of Pangea's automation at once.
pub const TOKEN_GROUP: &str = "pangea:api-tokens";

impl Impersonation {
    /// Whom Pangea acts as for `who`: a person by their IdP (or local) user name and groups; an
    /// API token as the identity configured for it, else as `pangea:token:<name>` in the group
    /// [`TOKEN_GROUP`].
    pub fn of(who: &Principal) -> Result<Impersonation, AppError> {
        match &who.identity {
            Identity::Oidc { username, groups, .. } => {
                let (user, groups) = app::access::acting_identity(username, groups)?;
                Ok(Impersonation { user, groups })
            }
            Identity::Local { username, .. } => Ok(Impersonation { user: username.clone(), groups: Vec::new() }),
            Identity::Token { cluster_as: Some(configured), .. } => {
                Ok(Impersonation { user: configured.user.clone(), groups: configured.groups.clone() })
            }
            Identity::Token { name, cluster_as: None, .. } => {
                Ok(Impersonation { user: format!("pangea:token:{name}"), groups: vec![TOKEN_GROUP.into()] })
            }
            Identity::Cli { .. } | Identity::Certificate { .. } | Identity::Anonymous => Err(AppError::Forbidden {
                message: "Node actions are made as a person or an API token; this caller has no identity to act as."
                    .into(),
            }),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    let message = message.into();
    AppError::Invalid {
        message: message.clone(),
        fields: vec![app::error::FieldError { field: field.into(), message }],
    }
}

/// The certificates of a PEM bundle, as DER.
pub fn certificates(pem: &str, field: &str) -> Result<Vec<Vec<u8>>, AppError> {
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(field, format!("This is not a PEM certificate bundle: {e}.")))?;
    if certs.is_empty() {
        return Err(invalid(field, "No certificate found: paste the PEM text, from -----BEGIN CERTIFICATE-----."));
    }
    Ok(certs)
}

/// The API server's URL, checked: https (or http on loopback, for tests), with a host.
pub fn api_url(text: &str) -> Result<http::Uri, AppError> {
    let url = url::Url::parse(text.trim())
        .map_err(|_| invalid("api_url", format!("\"{text}\" is not a URL: write https://host:6443.")))?;
    let loopback = url.host_str().is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]");
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(invalid("api_url", "The API server's URL must start with https://."));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("api_url", "The API server's URL is https://host[:port] with nothing after it."));
    }
    url.as_str().trim_end_matches('/').parse().map_err(|_| invalid("api_url", "This URL cannot be used."))
}

/// A client for `endpoint`, as Pangea itself or impersonating `as_whom`.
pub fn client(endpoint: &Endpoint, as_whom: Option<&Impersonation>) -> Result<Client, AppError> {
    Client::try_from(config(endpoint, as_whom)?).map_err(unusable)
}

/// The most of any one answer Pangea reads when it checks an API server (`/version`, reviews,
/// `/readyz`): whatever answers at a cluster's URL cannot make Pangea hold more.
pub const MAX_CHECK_ANSWER: usize = 1 << 20;

/// A client for checking `endpoint` as Pangea: each answer is read up to [`MAX_CHECK_ANSWER`].
/// (Watches use [`client`]: a watch is one long answer.)
pub fn checking_client(endpoint: &Endpoint) -> Result<Client, AppError> {
    let limit = tower::util::MapResponseLayer::new(|response: http::Response<_>| {
        response.map(|body| http_body_util::Limited::new(body, MAX_CHECK_ANSWER))
    });
    Ok(kube::client::ClientBuilder::try_from(config(endpoint, None)?).map_err(unusable)?.with_layer(&limit).build())
}

fn unusable(error: kube::Error) -> AppError {
    invalid("credential", format!("These credentials cannot be used: {}.", first_line(&error.to_string())))
}

fn config(endpoint: &Endpoint, as_whom: Option<&Impersonation>) -> Result<Config, AppError> {
    let mut config = Config::new(api_url(&endpoint.api_url)?);
    if !endpoint.ca_pem.trim().is_empty() {
        config.root_cert = Some(certificates(&endpoint.ca_pem, "ca_pem")?);
    }
    match &endpoint.credential {
        Credential::Token { token } => config.auth_info.token = Some(SecretString::from(token.trim().to_string())),
        Credential::ClientCertificate { certificate_pem, key_pem } => {
            certificates(certificate_pem, "certificate_pem")?;
            config.auth_info.client_certificate_data = Some(STANDARD.encode(certificate_pem));
            config.auth_info.client_key_data = Some(SecretString::from(STANDARD.encode(key_pem)));
        }
    }
    if let Some(person) = as_whom {
        config.auth_info.impersonate = Some(person.user.clone());
        config.auth_info.impersonate_groups = (!person.groups.is_empty()).then(|| person.groups.clone());
    }
    // kube-rs retries 429 and 503 by default, up to 15 times: a PodDisruptionBudget's refusal
    // (429) would hang a drain instead of being shown. Pangea decides itself when to retry.
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.write_timeout = Some(Duration::from_secs(10));
    Ok(config)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The whole chain of an error's causes, which is where TLS and connection errors say what
/// happened.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What went wrong reaching `api_url`, in words a person can act on.
pub fn unreachable(api_url: &str, error: &kube::Error) -> String {
    let chain = causes(error);
    let lower = chain.to_lowercase();
    if lower.contains("unknownissuer") || lower.contains("unknown issuer") || lower.contains("invalid peer certificate")
    {
        if lower.contains("notvalidforname") || lower.contains("not valid for name") {
            return format!("The API server's certificate is not valid for the host in {api_url}.");
        }
        return format!(
            "The CA does not match the server's certificate: {api_url} presented a certificate that the given CA did not sign."
        );
    }
    if lower.contains("length limit exceeded") {
        return format!(
            "{api_url} answered with more than {} KiB, more than an API server's check needs: is this the API server's URL?",
            MAX_CHECK_ANSWER >> 10
        );
    }
    if lower.contains("connection refused") {
        return format!("Nothing answers at {api_url} (connection refused): check the address and port.");
    }
    if lower.contains("timed out") || lower.contains("elapsed") || lower.contains("timeout") {
        return format!("{api_url} did not answer within 5 seconds.");
    }
    if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("name or service not known") {
        return format!("The host of {api_url} cannot be resolved.");
    }
    format!("{api_url} cannot be reached: {chain}")
}

/// A cluster's refusal or failure of a call, as the error a person sees: the cluster's own
/// message for 403 ("nodes \"x\" is forbidden: User … cannot patch …"), 404 and invalid
/// changes; anything else says the cluster could not be reached.
pub fn refusal(cluster: &str, api_url: &str, error: kube::Error) -> AppError {
    match error {
        kube::Error::Api(status) => {
            let message = format!("Cluster {cluster} refused: {}", status.message);
            match status.code {
                401 => AppError::Forbidden {
                    message: format!(
                        "Cluster {cluster} no longer accepts Pangea's credentials (401): rotate them on the cluster's page."
                    ),
                },
                403 => AppError::Forbidden { message },
                404 => AppError::NotFound { message },
                409 => AppError::Conflict { message, fields: Vec::new() },
                400 | 422 => AppError::invalid(message),
                429 => AppError::RateLimited { message },
                _ => AppError::Request {
                    message: format!("Cluster {cluster} failed ({}): {}", status.code, status.message),
                },
            }
        }
        other => AppError::Request { message: unreachable(api_url, &other) },
    }
}

/// What `/version` reported.
pub async fn version(client: &Client) -> Result<String, kube::Error> {
    client.apiserver_version().await.map(|v| v.git_version)
}

/// The checks made before a cluster is saved, in order; the first that fails is the error.
/// Returns the API server's version.
pub async fn check(endpoint: &Endpoint) -> Result<String, AppError> {
    let client = checking_client(endpoint)?;
    let api = &endpoint.api_url;
    // 1. The server answers, with a certificate the CA signed.
    let version = version(&client).await.map_err(|e| match e {
        // /version needs no credentials on most clusters; a refusal here is about them.
        kube::Error::Api(status) if status.code == 401 => bad_credentials(api),
        other => invalid("api_url", unreachable(api, &other)),
    })?;
    // 2. The credentials work: the server says who they are.
    let review: serde_json::Value = client
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec())
                .map_err(crate::error::internal)?,
        )
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) if status.code == 401 => bad_credentials(api),
            other => invalid("credential", unreachable(api, &other)),
        })?;
    let user = review.pointer("/status/userInfo/username").and_then(|u| u.as_str()).unwrap_or("(unnamed)").to_string();
    // 3. They may impersonate people and their groups.
    for (resource, what) in [("users", "users"), ("groups", "groups")] {
        if !may(&client, "impersonate", resource).await.map_err(|e| invalid("credential", unreachable(api, &e)))? {
            return Err(invalid(
                "credential",
                format!(
                    "The credentials are valid (user {user}) but may not impersonate {what}, so actions could not be made as the person \
                     who asks: bind a ClusterRole with verbs [impersonate] on users, groups and serviceaccounts to {user} \
                     (see docs/clusters.md)."
                ),
            ));
        }
    }
    for resource in ["nodes", "pods", "events"] {
        for verb in ["list", "watch"] {
            if !may(&client, verb, resource).await.map_err(|e| invalid("credential", unreachable(api, &e)))? {
                return Err(invalid(
                    "credential",
                    format!(
                        "The credentials are valid (user {user}) but may not {verb} {resource} in all namespaces, which the live \
                         inventory needs: bind the ClusterRole `view` and get/list/watch on nodes to {user}."
                    ),
                ));
            }
        }
    }
    Ok(version)
}

fn bad_credentials(api_url: &str) -> AppError {
    invalid(
        "credential",
        format!("{api_url} does not accept these credentials (401 Unauthorized): check the token or certificate."),
    )
}

/// Whether the client's own identity may `verb` `resource` (core group, all namespaces).
async fn may(client: &Client, verb: &str, resource: &str) -> Result<bool, kube::Error> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The checks of `/readyz?verbose`: lines `[+]etcd ok` and `[-]etcd failed: reason withheld`.
pub fn parse_readyz(text: &str) -> Vec<ReadyCheck> {
    text.lines()
        .filter_map(|line| {
            let (ok, rest) = match line.get(..3) {
                Some("[+]") => (true, &line[3..]),
                Some("[-]") => (false, &line[3..]),
                _ => return None,
            };
            let name = rest.split_whitespace().next()?.to_string();
            Some(ReadyCheck { name, ok })
        })
        .collect()
}

/// A health endpoint's text as Pangea sees it: the body comes with 200 and with 500 alike.
async fn health_text(client: &Client, path: &str) -> Result<String, kube::Error> {
    let request = http::Request::get(path).body(Vec::new()).map_err(kube::Error::HttpError)?;
    match client.request_text(request).await {
        Err(kube::Error::Api(status)) if status.code == 500 => Ok(status.message),
        other => other,
    }
}

/// The checks of `/readyz?verbose`, with etcd's own: API servers that do not list an `etcd`
/// check there answer it at `/healthz/etcd` (`ok`, or the failure).
pub async fn readyz(client: &Client) -> Result<Vec<ReadyCheck>, kube::Error> {
    let mut checks = parse_readyz(&health_text(client, "/readyz?verbose").await?);
    if !checks.iter().any(|c| c.name == "etcd") {
        let etcd = health_text(client, "/healthz/etcd").await?;
        checks.insert(0, ReadyCheck { name: "etcd".into(), ok: etcd.trim() == "ok" });
    }
    Ok(checks)
}

/// The cluster named by `context` (else the current context) of a kubeconfig, as an
/// [`Endpoint`]; certificates and keys must be inline (`*-data`), since the file's paths mean
/// nothing on the server.
pub fn from_kubeconfig(text: &str, context: Option<&str>) -> Result<Endpoint, AppError> {
    let config = kubeconfig(text)?;
    let wanted = context
        .map(str::to_string)
        .or(config.current_context.clone())
        .ok_or_else(|| invalid("context", "The kubeconfig has no current-context: pick one of its contexts."))?;
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == wanted)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| invalid("context", format!("The kubeconfig has no context \"{wanted}\".")))?;
    let cluster =
        config.clusters.iter().find(|c| c.name == ctx.cluster).and_then(|c| c.cluster.clone()).ok_or_else(|| {
            invalid(
                "kubeconfig",
                format!("Context \"{wanted}\" names cluster \"{}\", which the file does not define.", ctx.cluster),
            )
        })?;
    let user_name = ctx.user.clone().unwrap_or_default();
    let user =
        config.auth_infos.iter().find(|u| u.name == user_name).and_then(|u| u.auth_info.clone()).ok_or_else(|| {
            invalid(
                "kubeconfig",
                format!("Context \"{wanted}\" names user \"{user_name}\", which the file does not define."),
            )
        })?;
    let decode = |field: &str, data: &str| -> Result<String, AppError> {
        STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| invalid("kubeconfig", format!("{field} is not base64 of PEM text.")))
    };
    let ca_pem = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
        (Some(data), _) => decode("certificate-authority-data", data)?,
        (None, Some(_)) => {
            return Err(invalid(
                "kubeconfig",
                "The cluster's CA is a file path; use `kubectl config view --raw --flatten` to inline it.",
            ));
        }
        (None, None) => String::new(),
    };
    use secrecy::ExposeSecret;
    let credential = match (&user.token, &user.client_certificate_data, &user.client_key_data) {
        (Some(token), _, _) => Credential::Token { token: token.expose_secret().to_string() },
        (None, Some(cert), Some(key)) => Credential::ClientCertificate {
            certificate_pem: decode("client-certificate-data", cert)?,
            key_pem: decode("client-key-data", key.expose_secret())?,
        },
        _ => {
            return Err(invalid(
                "kubeconfig",
                format!(
                    "User \"{user_name}\" has neither a token nor inline client certificate data; Pangea needs credentials of \
                     its own (an exec plugin or file paths cannot be used on the server)."
                ),
            ));
        }
    };
    let server = cluster.server.ok_or_else(|| invalid("kubeconfig", "The cluster has no server URL."))?;
    Ok(Endpoint { api_url: server, ca_pem, credential })
}

/// The context names of a kubeconfig.
pub fn contexts(text: &str) -> Result<Vec<String>, AppError> {
    Ok(kubeconfig(text)?.contexts.into_iter().map(|c| c.name).collect())
}

fn kubeconfig(text: &str) -> Result<kube::config::Kubeconfig, AppError> {
    kube::config::Kubeconfig::from_yaml(text)
        .map_err(|e| invalid("kubeconfig", format!("This is not a kubeconfig: {}.", first_line(&e.to_string()))))
}

#[cfg(test)]
mod tests {
    use super::super::recorded;
    use super::*;
    use axum::response::IntoResponse;

    /// Whatever answers at a cluster's URL with a huge body is refused in words, whether or not
    /// it says its length.
    #[tokio::test]
    async fn a_check_reads_each_answer_up_to_its_limit() {
        for with_length in [true, false] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let api_url = format!("http://{}", listener.local_addr().unwrap());
            let app = axum::Router::new().fallback(move || async move {
                let version = format!(r#"{{"gitVersion": "v1.36.2", "pad": "{}"}}"#, "x".repeat(MAX_CHECK_ANSWER));
                let mut response = if with_length {
                    axum::body::Body::from(version)
                } else {
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                        version.into_bytes().chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
                    axum::body::Body::from_stream(futures::stream::iter(chunks))
                }
                .into_response();
                response.headers_mut().insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
                response
            });
            tokio::spawn(async move { axum::serve(listener, app).await });
            let endpoint = Endpoint {
                api_url: api_url.clone(),
                ca_pem: String::new(),
                credential: Credential::Token { token: "t".into() },
            };
            let error = check(&endpoint).await.unwrap_err().to_string();
            assert!(error.contains("more than 1024 KiB"), "{with_length}: {error}");
        }
    }

    #[test]
    fn readyz_names_each_check_and_whether_it_passed() {
        let exchange = recorded("133_readyz-verbose.json");
        let body = exchange["response"]["body"].as_str().unwrap();
        let checks = parse_readyz(body);
        assert!(checks.len() > 10 && checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(checks.iter().any(|c| c.name == "poststarthook/rbac/bootstrap-roles"));
        let failing = parse_readyz("[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n");
        assert_eq!(
            failing,
            vec![ReadyCheck { name: "ping".into(), ok: true }, ReadyCheck { name: "etcd".into(), ok: false }]
        );
    }

    #[test]
    fn a_forbidden_answer_keeps_the_clusters_words() {
        let exchange = recorded("119_rbac-viewer-delete-node-forbidden.json");
        let status: kube::core::Status = serde_json::from_value(exchange["response"]["body"].clone()).unwrap();
        let error = refusal("edge-1", "https://x", kube::Error::Api(Box::new(status.clone())));
        assert_eq!(error.status(), 403);
        assert!(error.to_string().contains("cannot delete resource \"nodes\""), "{error}");
        assert!(error.to_string().starts_with("Cluster edge-1 refused: "));
    }

    #[test]
    fn api_urls_must_be_https_except_on_loopback() {
        assert!(api_url("https://10.0.0.1:6443").is_ok());
        assert!(api_url("http://127.0.0.1:8080").is_ok());
        assert_eq!(api_url("http://10.0.0.1:8080").unwrap_err().status(), 400);
        assert!(api_url("not a url").unwrap_err().to_string().contains("is not a URL"));
        assert!(api_url("https://h:6443/?x=1").is_err());
    }

    #[test]
    fn kubeconfigs_give_their_contexts_cluster_and_inline_credentials() {
        let ca = STANDARD.encode("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c1\n  cluster:\n    server: https://k:6443\n    certificate-authority-data: {ca}\n\
             contexts:\n- name: a\n  context:\n    cluster: c1\n    user: u1\n- name: b\n  context:\n    cluster: c1\n    user: u2\n\
             users:\n- name: u1\n  user:\n    token: abc\n- name: u2\n  user:\n    exec:\n      command: kubectl\n      apiVersion: client.authentication.k8s.io/v1\n"
        );
        assert_eq!(contexts(&text).unwrap(), vec!["a", "b"]);
        let endpoint = from_kubeconfig(&text, None).unwrap();
        assert_eq!(endpoint.api_url, "https://k:6443");
        assert!(endpoint.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(endpoint.credential, Credential::Token { token: "abc".into() });
        let exec = from_kubeconfig(&text, Some("b")).unwrap_err();
        assert!(exec.to_string().contains("neither a token nor inline client certificate"), "{exec}");
        assert!(from_kubeconfig(&text, Some("zz")).unwrap_err().to_string().contains("no context \"zz\""));
        assert!(contexts("{{{").unwrap_err().to_string().starts_with("This is not a kubeconfig"));
    }

    #[test]
    fn tokens_act_as_their_configured_identity_else_as_their_own_user_in_the_token_group() {
        let token = |cluster_as| Principal {
            identity: Identity::Token { token_id: 1, name: "ci".into(), cluster_as },
            role: None,
            cluster_roles: Default::default(),
            ip: None,
            user_agent: None,
        };
        let as_whom = Impersonation::of(&token(None)).unwrap();
        assert_eq!(as_whom.user, "pangea:token:ci");
        assert_eq!(as_whom.groups, vec!["pangea:api-tokens".to_string()]);
        let configured = app::access::ClusterIdentity { user: "deployer".into(), groups: vec!["ci-team".into()] };
        let as_whom = Impersonation::of(&token(Some(configured))).unwrap();
        assert_eq!((as_whom.user.as_str(), as_whom.groups), ("deployer", vec!["ci-team".to_string()]));
        assert_eq!(Impersonation::of(&Principal::cli()).unwrap_err().status(), 403);
    }
}
