//! Role bindings: a role for an IdP group or a user, console-wide or on one cluster, and the
//! roles a person has from them.

use super::*;

impl Access {
    /// The highest role bound to the user or any of their groups everywhere, and per cluster.
    pub async fn roles_of(
        &self,
        username: &str,
        groups: &[String],
    ) -> Result<(Option<ConsoleRole>, BTreeMap<String, ConsoleRole>), AppError> {
        let mut best = None;
        let mut per_cluster = BTreeMap::new();
        for (kind, subject, role, cluster) in store::bindings_for(&self.db, username).await.or_internal()? {
            if kind == "group" && !groups.contains(&subject) {
                continue;
            }
            let role = ConsoleRole::parse(&role).map_err(internal)?;
            if cluster.is_empty() {
                best = best.max(Some(role));
            } else {
                let entry = per_cluster.entry(cluster).or_insert(role);
                *entry = (*entry).max(role);
            }
        }
        Ok((best, per_cluster))
    }

    pub async fn list_bindings(&self, who: &Principal) -> Result<Vec<Binding>, AppError> {
        audit::settle_read(&self.db, who, authorize(who, Permission::ManageAccess)).await?;
        store::bindings(&self.db).await.or_internal()
    }

    /// Binds a group or user to a role everywhere (replacing an earlier binding of the same
    /// subject).
    pub async fn bind(
        &self,
        who: &Principal,
        subject_kind: &str,
        subject: &str,
        role: ConsoleRole,
    ) -> Result<(), AppError> {
        self.bind_in(who, subject_kind, subject, role, "").await
    }

    /// Binds a group or user to a role on one cluster (`cluster` empty: everywhere), replacing
    /// an earlier binding of the same subject there.
    pub async fn bind_in(
        &self,
        who: &Principal,
        subject_kind: &str,
        subject: &str,
        role: ConsoleRole,
        cluster: &str,
    ) -> Result<(), AppError> {
        let cluster = cluster.trim();
        let scope = if cluster.is_empty() { String::new() } else { format!(" on cluster {cluster}") };
        let event = Event::new("binding.create", "binding")
            .target(subject, format!("{subject_kind} {subject} → {}{scope}", role.as_str()));
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let subject = subject.trim();
            if !matches!(subject_kind, "group" | "user") {
                return Err(AppError::invalid(format!("\"{subject_kind}\" is not a subject kind: use group or user.")));
            }
            if subject.is_empty() || subject.len() > 256 || subject.chars().any(char::is_control) {
                return Err(AppError::invalid("Name the group or user: 1 to 256 printable characters."));
            }
            if !cluster.is_empty() {
                cluster.parse::<app::clusters::ClusterName>().map_err(|e| AppError::invalid(e.to_string()))?;
                if role == ConsoleRole::Admin {
                    return Err(AppError::invalid(
                        "A role on one cluster is viewer or operator; admin is for all of Pangea.",
                    ));
                }
            }
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let before = store::bound_role(&mut tx, subject_kind, subject, cluster).await.or_internal()?;
            store::put_binding(&mut tx, subject_kind, subject, role, cluster, &who.actor()).await.map_err(|e| {
                if unique_constraint(&e) == Some("role_bindings_subject_key") {
                    AppError::Conflict { message: "That binding already exists.".into(), fields: vec![] }
                } else {
                    crate::error::Error::from(e).into()
                }
            })?;
            audit::append(
                &mut tx,
                who,
                event.clone().summary(json!({ "before": before, "after": role, "cluster": cluster })),
            )
            .await
            .or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        settle(&self.db, who, event, result).await
    }

    pub async fn unbind(&self, who: &Principal, id: i64) -> Result<(), AppError> {
        let event = Event::new("binding.delete", "binding").target(id, "");
        let result = async {
            authorize(who, Permission::ManageAccess)?;
            let mut tx = audit::begin(&self.db).await.or_internal()?;
            let (kind, subject, role) = store::delete_binding(&mut tx, id)
                .await
                .or_internal()?
                .ok_or_else(|| AppError::not_found(format!("There is no binding with id {id}.")))?;
            audit::append(&mut tx, who, event.clone().target(id, format!("{kind} {subject} → {role}")))
                .await
                .or_internal()?;
            tx.commit().await.or_internal()
        }
        .await;
        settle(&self.db, who, event, result).await
    }
}
