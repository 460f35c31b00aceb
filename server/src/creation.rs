//! Cluster creation: a cluster template (what a person asks for) becomes machines that install,
//! join and answer as a Kubernetes cluster Pangea registers.
//!
//! Built so far: the template, its plan against the inventory, the cluster's PKI, the machines'
//! Butane configs, their secret links (served once each on the boot listener) and the rule for
//! approving kubelet certificates. Not yet: serving the configs through the provisioner, the
//! creation job, the approver's watch, the pages and the API (issue 25; docs/clusters.md).

pub mod approval;
pub mod http;
pub mod pki;
pub mod render;
mod store;
pub mod template;

use crate::audit::Event;
use crate::db::Database;
use crate::error::OrInternal;
use crate::machines::Machines;
use crate::secrets::Sealer;
use app::access::Principal;
use app::error::AppError;
use app::machines::ssr::MachineService;
use app::machines::{Machine, MachineQuery};
use secrecy::SecretString;
use std::net::IpAddr;
use std::sync::Arc;
use template::{ClusterTemplate, Selection};

/// The most machines one cluster is created with.
pub const MAX_MACHINES: usize = 1000;

/// Which machines a template takes, and what stands in the way of creating it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub controllers: Vec<Machine>,
    pub workers: Vec<Machine>,
    /// Each in words, naming the machine; creation waits until there are none.
    pub problems: Vec<String>,
}

pub struct Creation {
    db: Database,
    machines: Arc<Machines>,
    sealer: Arc<Sealer>,
}

/// What a machine's secret link answers. Links are at most 64 characters of token and 256 of
/// path; longer ones are not looked up.
pub enum SecretAnswer {
    /// The file, fetched now for the first time.
    Served { mac: String, text: SecretString },
    /// Nothing, and why (for the boot event; the machine is named when the link is one of its).
    Refused { mac: Option<String>, reason: String },
}

/// Where a secret file's seal is bound: its cluster, link and path, so no sealed value can be
/// served in another's place.
fn secret_place(cluster: &str, token: &str, path: &str) -> String {
    format!("cluster-secret:{cluster}:{token}:{path}")
}

impl Creation {
    pub fn new(db: Database, machines: Arc<Machines>, sealer: Arc<Sealer>) -> Creation {
        Creation { db, machines, sealer }
    }

    /// Seals and keeps `node`'s secret files (`render::secrets_of`), each to be fetched once
    /// through its link; audited (the paths, never the link) in the same transaction.
    pub async fn keep_secrets(
        &self,
        who: &Principal,
        cluster: &str,
        node: &render::NodeSpec,
        secrets: &[(String, String)],
    ) -> Result<(), AppError> {
        let token = &node.secrets_token;
        let sealed: Vec<store::SealedSecret> = secrets
            .iter()
            .map(|(path, text)| store::SealedSecret {
                path,
                sealed: self.sealer.seal(&SecretString::from(text.clone()), &secret_place(cluster, token, path)),
            })
            .collect();
        let mac = node.mac.to_string();
        let paths: Vec<&str> = secrets.iter().map(|(path, _)| path.as_str()).collect();
        let event = Event::new("cluster.secret.keep", "machine")
            .target(&mac, &node.name)
            .summary(serde_json::json!({ "cluster": cluster, "paths": paths }));
        let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
        store::insert_secrets(&mut tx, cluster, &mac, token, &sealed).await.or_internal()?;
        crate::audit::append(&mut tx, who, event).await.or_internal()?;
        tx.commit().await.or_internal()
    }

    /// Answers a machine's secret link: the file the first time, and nothing after, each fetch
    /// audited (the first in the transaction that marks it fetched). A link that does not exist
    /// costs one indexed read, and takes no lock: anyone on the boot network may ask.
    pub async fn fetch_secret(&self, token: &str, path: &str, from: Option<IpAddr>) -> Result<SecretAnswer, AppError> {
        let no_such = || Ok(SecretAnswer::Refused { mac: None, reason: "no such secret link".into() });
        if token.len() > 64 || path.len() > 256 {
            return no_such();
        }
        let who = Principal::anonymous(from, None);
        let from_text = from.map(|ip| ip.to_string()).unwrap_or_default();
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        let Some(stored) = store::secret(&mut conn, token, path).await.or_internal()? else {
            return no_such();
        };
        drop(conn);
        let event =
            Event::new("cluster.secret.fetch", "machine").target(&stored.mac, path).summary(serde_json::json!({
                "cluster": stored.cluster, "path": path, "from": from_text,
            }));
        let refuse = async |earlier: String| {
            let reason = format!("{path} was fetched already, {earlier}: a secret link answers once");
            let refused = AppError::Forbidden { message: reason.clone() };
            crate::audit::record_refusal(&self.db, &who, event.clone().failed(&refused)).await;
            Ok(SecretAnswer::Refused { mac: Some(stored.mac.clone()), reason })
        };
        if let Some((at, by)) = &stored.fetched {
            return refuse(format!("at {at} from {by}")).await;
        }
        let mut tx = crate::audit::begin(&self.db).await.or_internal()?;
        if !store::mark_fetched(&mut tx, token, path, &from_text).await.or_internal()? {
            drop(tx);
            return refuse("just now, by another request".into()).await;
        }
        let text = self.sealer.open(&stored.sealed, &secret_place(&stored.cluster, token, path)).map_err(|e| {
            crate::error::internal(format!("a sealed secret of {} cannot be opened: {e}", stored.cluster))
        })?;
        crate::audit::append(&mut tx, &who, event.clone()).await.or_internal()?;
        tx.commit().await.or_internal()?;
        Ok(SecretAnswer::Served { mac: stored.mac, text })
    }

    /// The machines `selection` names, in MAC order, but for those in `taken` (another role's);
    /// those it names that are not machines, or are taken, are problems.
    async fn resolve(
        &self,
        who: &Principal,
        role: &str,
        selection: &Selection,
        taken: &[Machine],
        problems: &mut Vec<String>,
    ) -> Result<Vec<Machine>, AppError> {
        let is_taken = |m: &Machine| taken.iter().any(|t| t.id == m.id);
        let mut found = Vec::new();
        let (search, class, count) = match selection {
            Selection::Machines(macs) => {
                let wanted: Vec<String> = macs.iter().map(ToString::to_string).collect();
                let ids = self.machines.ids_of_macs(&wanted).await?;
                for mac in &wanted {
                    match ids.get(mac) {
                        Some(id) => {
                            let machine = self.machines.get(who, *id).await?;
                            if is_taken(&machine) {
                                problems.push(format!("{role}: {mac} is a controller too; a machine takes one role"));
                            } else {
                                found.push(machine);
                            }
                        }
                        None => problems.push(format!("{role}: {mac} is not a machine of the inventory; add it first")),
                    }
                }
                found.sort_by(|a, b| a.mac.cmp(&b.mac));
                return Ok(found);
            }
            Selection::Search { search, count } => (Some(search.clone()), None, *count),
            Selection::Class { class, count } => (None, Some(class.to_string()), *count),
        };
        let mut query = MachineQuery {
            search,
            class,
            sort: app::machines::SortKey::Mac,
            limit: Some(MachineQuery::MAX_LIMIT),
            ..Default::default()
        };
        loop {
            let page = self.machines.list(who, query.clone()).await?;
            found.extend(page.items.into_iter().filter(|m| !is_taken(m)));
            match page.next {
                Some(next) if found.len() <= MAX_MACHINES => query.after = Some(next),
                _ => break,
            }
        }
        if let Some(count) = count.map(|c| c as usize) {
            if found.len() < count {
                problems.push(format!("{role}: {count} wanted, but only {} machines match", found.len()));
            }
            found.truncate(count);
        }
        Ok(found)
    }

    /// Resolves `template` against the inventory as `who` sees it.
    pub async fn plan(&self, who: &Principal, template: &ClusterTemplate) -> Result<Plan, AppError> {
        let mut problems = Vec::new();
        let controllers = self.resolve(who, "controllers", &template.controllers, &[], &mut problems).await?;
        let workers = self.resolve(who, "workers", &template.workers, &controllers, &mut problems).await?;
        if controllers.len() + workers.len() > MAX_MACHINES {
            return Err(AppError::invalid(format!(
                "A cluster is created with at most {MAX_MACHINES} machines; this template takes {}.",
                controllers.len() + workers.len()
            )));
        }
        if ![1, 3, 5].contains(&controllers.len()) {
            problems.push(format!(
                "controllers: {} machines; etcd keeps quorum with 1, 3 or 5 control-plane machines",
                controllers.len()
            ));
        }
        let mut names = std::collections::HashMap::new();
        for machine in controllers.iter().chain(&workers) {
            match machine.hostname.as_deref() {
                None => problems
                    .push(format!("{} has no host name: its node needs one (set it on the machine)", machine.mac)),
                Some(name) => {
                    if let Some(other) = names.insert(name.to_string(), machine.mac.clone()) {
                        problems.push(format!(
                            "{} and {other} have the same host name {name}: node names are unique",
                            machine.mac
                        ));
                    }
                }
            }
            if let Some(cluster) = machine.cluster.as_deref().filter(|c| *c != template.name.as_str()) {
                problems.push(format!("{} belongs to the cluster {cluster}; free it first", machine.mac));
            }
        }
        Ok(Plan { controllers, workers, problems })
    }
}
