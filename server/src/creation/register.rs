//! Setting up a cluster Pangea created, once its control plane answers, as its admin (the
//! `admin.conf` Pangea made, used for this only): Pangea's own identity (a ServiceAccount bound
//! to the `pangea-console` ClusterRole, with the right to approve kubelet certificates), and the
//! kubelets' first join (the bootstrap token, allowed to ask for a client certificate and nothing
//! more). kubeadm's auto-approval bindings are not made: Pangea approves ([`super::approval`]).

use super::approval::APPROVER_RULES;
use super::pki::BootstrapToken;
use crate::clusters::connect::{self, Endpoint};
use app::clusters::Credential;
use app::error::AppError;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
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

/// `pangea-console`'s rules: read everything, impersonate people, read health, and approve
/// kubelet certificates.
fn console_rules() -> serde_json::Value {
    let mut rules = json!([
        {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"nonResourceURLs": ["/readyz", "/readyz/*", "/healthz", "/healthz/*", "/version"], "verbs": ["get"]},
    ]);
    let approver: Vec<serde_json::Value> = serde_json::from_str(APPROVER_RULES).unwrap_or_default();
    if let Some(rules) = rules.as_array_mut() {
        rules.extend(approver);
    }
    rules
}

/// Applies Pangea's identity and the bootstrap token (valid until `expires`, RFC 3339), and
/// answers a token for Pangea's ServiceAccount.
pub async fn set_up(admin: &Client, bootstrap: &BootstrapToken, expires: &str) -> Result<Credential, kube::Error> {
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
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "kube-system");
    let secret_name = format!("bootstrap-token-{}", bootstrap.id);
    secrets
        .patch(
            &secret_name,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
                "metadata": {"name": secret_name, "namespace": "kube-system"},
                "stringData": {
                    "token-id": bootstrap.id,
                    "token-secret": bootstrap.secret,
                    "expiration": expires,
                    "usage-bootstrap-authentication": "true",
                    "auth-extra-groups": BOOTSTRAPPERS,
                    "description": "Made by Pangea for the machines it created this cluster from",
                },
            })),
        )
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pangeas_role_can_approve_kubelet_certificates_and_read_but_not_write() {
        let rules = console_rules();
        let text = rules.to_string();
        assert!(text.contains("certificatesigningrequests/approval") && text.contains("\"approve\""));
        assert!(!text.contains("\"create\"") && !text.contains("\"delete\""), "{text}");
        assert_eq!(api_url("10.0.0.10".parse().unwrap(), 6443), "https://10.0.0.10:6443");
        assert_eq!(api_url("fd00::10".parse().unwrap(), 443), "https://[fd00::10]:443");
    }
}
