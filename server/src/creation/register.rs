//! Setting up a cluster Pangea created, once its control plane answers, as its admin (the
//! `admin.conf` Pangea made, used for this only): Pangea's own identity (a ServiceAccount bound
//! to the `pangea-console` ClusterRole, with the right to approve kubelet certificates), and the
//! kubelets' first join (a bootstrap token per machine, allowed to ask for a client certificate and
//! nothing more, which Pangea deletes once its machine's node is Ready). kubeadm's auto-approval
//! bindings are not made: Pangea approves ([`super::approval`]).

use super::approval::APPROVER_RULES;
use super::pki::BootstrapToken;
use crate::clusters::connect::{self, Endpoint};
use app::clusters::Credential;
use app::error::AppError;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The ServiceAccount Pangea signs in as, in `kube-system`.
pub const ACCOUNT: &str = "pangea";
/// The ClusterRole (and binding) it holds.
pub const ROLE: &str = "pangea-console";
/// The group the bootstrap token's kubelets are in, besides `system:bootstrappers`.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers:pangea";
/// How long Pangea's token lasts; a new one is made from `admin.conf` when the cluster is set up
/// again.
const TOKEN_SECONDS: i64 = 365 * 24 * 3600;

/// The API server's URL as Pangea reaches it: its address, so no name needs to resolve here.
pub fn api_url(address: IpAddr, port: u16) -> String {
    format!("https://{}", SocketAddr::new(address, port))
}

/// The admin's endpoint, from the `admin.conf` Pangea made, at `api_url`.
pub fn admin_endpoint(admin_conf: &str, api_url: &str) -> Result<Endpoint, AppError> {
    let mut endpoint = connect::from_kubeconfig(admin_conf, None)?;
    endpoint.api_url = api_url.to_string();
    Ok(endpoint)
}

/// Whether the control plane answers `/readyz` for the admin.
pub async fn ready(admin: &Client) -> bool {
    connect::readyz(admin).await.is_ok_and(|checks| !checks.is_empty() && checks.iter().all(|c| c.ok))
}

/// `pangea-console`'s rules: read what the console shows (Kubernetes' `view` role's kinds, and
/// nodes; never Secrets), impersonate people, read health, and approve kubelet certificates.
fn console_rules() -> serde_json::Value {
    let read = json!(["get", "list", "watch"]);
    let mut rules = json!([
        {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]},
        {"apiGroups": [""], "resources": ["nodes", "pods", "pods/log", "events", "namespaces", "services", "endpoints",
            "configmaps", "persistentvolumes", "persistentvolumeclaims", "replicationcontrollers", "resourcequotas",
            "limitranges", "serviceaccounts"], "verbs": read},
        {"apiGroups": ["apps", "batch", "autoscaling", "events.k8s.io", "discovery.k8s.io", "networking.k8s.io",
            "storage.k8s.io", "coordination.k8s.io", "metrics.k8s.io", "apiextensions.k8s.io"],
            "resources": ["*"], "verbs": read},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": read},
        {"nonResourceURLs": ["/readyz", "/readyz/*", "/healthz", "/healthz/*", "/version"], "verbs": ["get"]},
    ]);
    let approver: Vec<serde_json::Value> = serde_json::from_str(APPROVER_RULES).unwrap_or_default();
    if let Some(rules) = rules.as_array_mut() {
        rules.extend(approver);
    }
    rules
}

/// The Secret that holds bootstrap token `id`.
pub fn token_secret(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// Applies Pangea's identity and each node's bootstrap token (by node name, valid until `expires`,
/// RFC 3339), and answers a token for Pangea's ServiceAccount.
pub async fn set_up(
    admin: &Client,
    bootstrap: &BTreeMap<String, BootstrapToken>,
    expires: &str,
) -> Result<Credential, kube::Error> {
    let apply = PatchParams::apply("pangea").force();
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    roles
        .patch(
            ROLE,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": ROLE}, "rules": console_rules(),
            })),
        )
        .await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "kube-system");
    accounts
        .patch(
            ACCOUNT,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": ACCOUNT, "namespace": "kube-system"},
            })),
        )
        .await?;
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    for (name, role, subject) in [
        (ROLE, ROLE, json!({"kind": "ServiceAccount", "name": ACCOUNT, "namespace": "kube-system"})),
        (
            "pangea:node-bootstrapper",
            "system:node-bootstrapper",
            json!({"kind": "Group", "name": BOOTSTRAPPERS, "apiGroup": "rbac.authorization.k8s.io"}),
        ),
    ] {
        bindings
            .patch(
                name,
                &apply,
                &Patch::Apply(json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [subject],
                })),
            )
            .await?;
    }
    make_tokens(admin, bootstrap, bootstrap, expires).await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(TOKEN_SECONDS), ..Default::default() }),
        ..Default::default()
    };
    let made = accounts.create_token_request(ACCOUNT, &PostParams::default(), &request).await?;
    match made.status.and_then(|s| s.token).filter(|t| !t.is_empty()) {
        Some(token) => Ok(Credential::Token { token }),
        None => Err(kube::Error::Service("the API server made no token for Pangea's ServiceAccount".into())),
    }
}

/// Makes the bootstrap tokens `made` (by node) in the cluster as its admin, and lets Pangea
/// delete those of `every` (the cluster's tokens now), and no other Secret.
pub async fn make_tokens(
    admin: &Client,
    made: &BTreeMap<String, BootstrapToken>,
    every: &BTreeMap<String, BootstrapToken>,
    expires: &str,
) -> Result<(), kube::Error> {
    let apply = PatchParams::apply("pangea").force();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "kube-system");
    for (node, token) in made {
        let secret_name = token_secret(&token.id);
        secrets
            .patch(
                &secret_name,
                &apply,
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
                    "metadata": {"name": secret_name, "namespace": "kube-system"},
                    "stringData": {
                        "token-id": token.id,
                        "token-secret": token.secret,
                        "expiration": expires,
                        "usage-bootstrap-authentication": "true",
                        "auth-extra-groups": BOOTSTRAPPERS,
                        "description": format!("Made by Pangea for {node} to join with once"),
                    },
                })),
            )
            .await?;
    }
    // Pangea deletes each token once its node is Ready: those Secrets, and no other (a rule
    // naming none would name every Secret).
    let names: Vec<String> = every.values().map(|t| token_secret(&t.id)).collect();
    if names.is_empty() {
        return Err(kube::Error::Service("a cluster with no machine has no bootstrap token to make".into()));
    }
    let retire = "pangea:bootstrap-tokens";
    Api::<Role>::namespaced(admin.clone(), "kube-system")
        .patch(
            retire,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": retire, "namespace": "kube-system"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"], "resourceNames": names}],
            })),
        )
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), "kube-system")
        .patch(
            retire,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": retire, "namespace": "kube-system"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": retire},
                "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": "kube-system"}],
            })),
        )
        .await?;
    Ok(())
}

/// Deletes bootstrap token `id` as Pangea (`client`); one already gone counts as deleted.
pub async fn retire_token(client: &Client, id: &str) -> Result<(), kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    match secrets.delete(&token_secret(id), &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pangeas_role_can_approve_kubelet_certificates_and_read_but_not_write() {
        let rules = console_rules();
        let text = rules.to_string();
        assert!(text.contains("certificatesigningrequests/approval") && text.contains("\"approve\""));
        assert!(!text.contains("\"create\"") && !text.contains("\"delete\""), "{text}");
        assert!(!text.contains("secrets") && !text.contains("\"apiGroups\":[\"*\"]"), "never Secrets: {text}");
        assert_eq!(api_url("10.0.0.10".parse().unwrap(), 6443), "https://10.0.0.10:6443");
        assert_eq!(api_url("fd00::10".parse().unwrap(), 443), "https://[fd00::10]:443");
    }
}
