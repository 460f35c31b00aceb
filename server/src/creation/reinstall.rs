//! Installing a created cluster's workers again (a rolling reprovision): a node's configs
//! rendered anew, with the cluster's template or a changed one, behind new secret links and a
//! new bootstrap token of its own; its kubelet's certificates approved when it joins again, as
//! at creation.
//!
//! The creation's template stays what its controllers run; a worker installed with another
//! keeps that one as its own. Changing the template takes the rights of applying one.

use super::template::{ClusterTemplate, KubeVersion};
use super::{Creation, StoredNode, add_node_catalog, known_machine, pki, register, render, secret_token, store};
use crate::audit::Event;
use crate::error::OrInternal;
use app::access::{Permission, Principal, authorize, authorize_in};
use app::error::AppError;
use app::provisioning::Catalog;
use secrecy::SecretString;
use std::collections::BTreeMap;

/// What a template may change in a reinstall: what each node renders on its own. The rest (names,
/// networks, the API server, the machines) is the cluster's and needs a new cluster.
const CHANGEABLE: [&str; 4] = ["kubernetes", "os", "install_disk", "ssh_keys"];

/// How long a reinstalled node's bootstrap token lives (it is deleted once its node is Ready).
pub const TOKEN_LIFE: time::Duration = time::Duration::hours(2);

/// What reinstalling a created cluster's nodes with a template would do.
#[derive(Debug, Clone, Default)]
pub struct ReinstallPlan {
    /// The template the nodes are installed with (YAML), and its Kubernetes version.
    pub template: String,
    pub kubernetes: Option<KubeVersion>,
    /// Whether it changes what any of the nodes has: a change of the cluster's configs, which
    /// takes the right to change clusters and provisioning, not only to act on nodes.
    pub changes: bool,
    /// The template each node of the cluster has now, and its MAC, by node name.
    pub installed: BTreeMap<String, (String, String)>,
    /// Its controllers, by node name (they are not reinstalled: see the problems).
    pub controllers: Vec<String>,
    /// What stands in the way, in words.
    pub problems: Vec<String>,
}

impl Creation {
    /// What reinstalling `nodes` of `cluster` with `text` would do (without a text, the template
    /// those nodes have now: they must have the same one). A template that does not read is
    /// refused; what else stands in the way is said. Asks nothing of any machine.
    pub async fn reinstall_plan(
        &self,
        cluster: &str,
        text: Option<&str>,
        nodes: &[String],
    ) -> Result<ReinstallPlan, AppError> {
        let mut plan = ReinstallPlan::default();
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let Some(row) = store::creation(&mut conn, cluster).await.or_internal()? else {
            plan.problems.push(format!(
                "Pangea did not create {cluster}, so it has no configs to install its nodes with: restart or \
                 power-cycle them instead."
            ));
            return Ok(plan);
        };
        drop(conn);
        if row.state != "created" {
            plan.problems
                .push(format!("{cluster} is {}: only a created cluster's nodes are installed again.", row.state));
        }
        let stored: Vec<StoredNode> = serde_json::from_str(&row.nodes).or_internal()?;
        for node in &stored {
            let installed = node.installed.clone().unwrap_or_else(|| row.template.clone());
            plan.installed.insert(node.spec.name.clone(), (installed, node.spec.mac.to_string()));
            if node.spec.role == render::Role::Controller {
                plan.controllers.push(node.spec.name.clone());
            }
        }
        let now: Vec<&String> = nodes.iter().filter_map(|n| plan.installed.get(n).map(|(t, _)| t)).collect();
        let template = match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(text) => super::parse_template(text)?,
            None => {
                if now.iter().any(|t| *t != now[0]) {
                    plan.problems.push(
                        "These nodes were installed with different templates: give the template to install them \
                         with, or reinstall them in groups."
                            .into(),
                    );
                }
                parse(cluster, now.first().map_or(&row.template, |t| *t))?
            }
        };
        for installed in now {
            let changes = parse(cluster, installed)?.changes(&template);
            plan.changes |= !changes.is_empty();
            let fixed: Vec<String> = changes
                .iter()
                .filter(|c| !CHANGEABLE.contains(&c.field))
                .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
                .collect();
            if !fixed.is_empty() && plan.problems.iter().all(|p| !p.starts_with("The template changes")) {
                plan.problems.push(format!(
                    "The template changes what a reinstall cannot ({}): only {} change node by node; the rest \
                     needs a new cluster.",
                    fixed.join("; "),
                    CHANGEABLE.join(", ")
                ));
            }
        }
        plan.kubernetes = Some(template.kubernetes.clone());
        plan.template = template.to_yaml();
        Ok(plan)
    }

    /// Renders worker `node` of `cluster` anew with `template` (a [`ReinstallPlan`]'s), behind
    /// new secret links and a new bootstrap token. The token is made in the cluster first (as
    /// its admin, from the creation's PKI) and deleted again if the change cannot be kept; the
    /// configs, links and PKI are written with the audit record in one transaction. The machine
    /// fetches them at its next network boot.
    pub async fn reinstall_node(
        &self,
        who: &Principal,
        cluster: &str,
        node: &str,
        template: &str,
    ) -> Result<(), AppError> {
        let event = Event::new("cluster.node.reinstall", "cluster").target(cluster, node);
        crate::audit::settle(&self.db, who, event.clone(), authorize_in(who, Permission::PowerMachines, cluster))
            .await?;
        let result = async {
            let (mut row, creation_template, mut nodes) = self.load(cluster).await?;
            let read_nodes = row.nodes.clone();
            let template = super::parse_template(template)?;
            let index = nodes
                .iter()
                .position(|n| n.spec.name == node)
                .ok_or_else(|| AppError::not_found(format!("{node} is not a machine Pangea put into {cluster}.")))?;
            if nodes[index].spec.role != render::Role::Worker {
                return Err(AppError::invalid(format!(
                    "{node} is a controller: installing it again would wipe its etcd member, which Pangea does not \
                     replace yet."
                )));
            }
            let had = nodes[index].installed.clone().unwrap_or_else(|| row.template.clone());
            if !super::parse_template(&had)?.changes(&template).is_empty() {
                allow_template_change(who)?;
            }
            let mut pki = self.open_pki(&row)?;
            let token = pki::BootstrapToken::generate();
            let replaced = pki.bootstrap_tokens.insert(node.to_string(), token.clone());
            nodes[index].spec.secrets_token = secret_token();
            // The creation's template stays what its controllers run; a worker keeps its own.
            nodes[index].installed = (!creation_template.changes(&template).is_empty()).then(|| template.to_yaml());
            let specs: Vec<render::NodeSpec> = nodes.iter().map(|n| n.spec.clone()).collect();
            let spec = &specs[index];
            let rendered = render::Cluster { template: &template, pki: &pki, nodes: &specs, boot_url: &self.boot_url };
            let mut catalog = Catalog::default();
            add_node_catalog(&mut catalog, &rendered, spec);
            self.provisioner.check_generated(&catalog).await?;
            let secrets = render::secrets_of(&rendered, spec);
            let sealed = self.seal_secrets(cluster, spec, &secrets);
            let pki_text = SecretString::from(serde_json::to_string(&pki).or_internal()?);
            row.sealed_pki = self.sealer.seal(&pki_text, &super::pki_place(cluster));
            row.nodes = serde_json::to_string(&nodes).or_internal()?;

            let api_url = self.clusters.cache(cluster)?.endpoint.api_url.clone();
            let admin = register::admin_endpoint(pki.files.get("admin.conf").map_or("", String::as_str), &api_url)
                .and_then(|e| crate::clusters::connect::client(&e, None))?;
            let made = BTreeMap::from([(node.to_string(), token.clone())]);
            let expires = crate::db::timestamp(time::OffsetDateTime::now_utc() + TOKEN_LIFE);
            let kept = async {
                register::make_tokens(&admin, &made, &pki.bootstrap_tokens, &expires)
                    .await
                    .map_err(|e| AppError::invalid(crate::clusters::connect::unreachable(&api_url, &e)))?;
                let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
                // Only over the creation as it was read: not one destroyed, nor a node another
                // replica rendered meanwhile.
                if !store::update_creation(&mut tx, &row, &read_nodes).await.or_internal()? {
                    return Err(AppError::Conflict {
                        message: format!(
                            "{cluster} changed while {node} was being rendered (destroyed, or rendered \
                                          by another replica): look at it again before going on."
                        ),
                        fields: vec![],
                    });
                }
                let mac = spec.mac.to_string();
                store::delete_secrets_of(&mut tx, cluster, &mac).await.or_internal()?;
                store::insert_secrets(&mut tx, cluster, &mac, &spec.secrets_token, &sealed).await.or_internal()?;
                self.provisioner.put_generated(&mut tx, &catalog).await?;
                let changes: Vec<String> = creation_template
                    .changes(&template)
                    .iter()
                    .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
                    .collect();
                let record = event.clone().summary(serde_json::json!({
                    "mac": mac, "kubernetes": template.kubernetes.to_string(), "os": template.os.as_str(),
                    "changes": changes, "bootstrap_token": token.id,
                }));
                crate::audit::append(&mut tx, who, record).await.or_internal()?;
                tx.commit().await.or_internal()
            }
            .await;
            if let Err(e) = kept {
                // Not kept: the token made for it goes too (a make that failed half-way included).
                if let Err(gone) = register::retire_token(&admin, &token.id).await {
                    tracing::warn!(error = %gone, cluster, node, "could not delete a bootstrap token made for nothing");
                }
                return Err(e);
            }
            self.provisioner.generated_changed().await;
            // The token it had (deleted once it was Ready, or not used) joins nothing now.
            if let Some(old) = replaced
                && let Err(e) = register::retire_token(&admin, &old.id).await
            {
                tracing::warn!(error = %e, cluster, node, "could not delete a replaced bootstrap token");
            }
            Ok(())
        }
        .await;
        crate::audit::settle(&self.db, who, event, result).await
    }

    /// One approval pass over `cluster`'s pending kubelet certificate requests, for its machines
    /// as they are now (a reinstalled node asks with its new token); then, for each node of
    /// `ready`, deletes its bootstrap token, which it needs no more.
    pub async fn approve_kubelets(&self, cluster: &str, ready: &[String]) -> Result<(), AppError> {
        let (row, _, nodes) = self.load(cluster).await?;
        let pki = self.open_pki(&row)?;
        let tokens: Vec<String> = nodes.iter().map(|n| n.spec.secrets_token.clone()).collect();
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let fetched = store::fetches(&mut conn, &tokens).await.or_internal()?;
        drop(conn);
        let known: Vec<_> =
            nodes.iter().map(|node| known_machine(node, fetched.get(&node.spec.secrets_token), &pki)).collect();
        let client = crate::clusters::connect::client(&self.clusters.cache(cluster)?.endpoint, None)?;
        let api_url = &self.clusters.cache(cluster)?.endpoint.api_url;
        let unreachable =
            |e: kube::Error| AppError::Request { message: crate::clusters::connect::unreachable(api_url, &e) };
        super::approval::approve_pending(&client, &known).await.map_err(unreachable)?;
        for machine in known.iter().filter(|m| ready.contains(&m.name)) {
            register::retire_token(&client, &machine.bootstrap_token_id).await.map_err(unreachable)?;
        }
        Ok(())
    }
}

/// Changing what a node runs (its Kubernetes, OS, disk, SSH keys) changes the cluster's configs:
/// the rights of applying a template, beyond acting on nodes.
pub fn allow_template_change(who: &Principal) -> Result<(), AppError> {
    authorize(who, Permission::ManageClusters)?;
    authorize(who, Permission::ChangeProvisioning)
}

fn parse(cluster: &str, text: &str) -> Result<ClusterTemplate, AppError> {
    ClusterTemplate::parse(text)
        .map_err(|e| crate::error::internal(format!("a stored template of {cluster} cannot be read: {e}")))
}
