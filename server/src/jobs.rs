//! Durable jobs: long work (imports now; drains, power actions and boots later) kept in the
//! `jobs` table on both backends, so any replica can report a job's progress and a restart
//! leaves no job "running" forever.
//!
//! A running job holds a lease (its replica's id and an expiry, renewed as it reports
//! progress). A job whose lease ran out belonged to a replica that stopped: [`Jobs::fail_abandoned`]
//! marks it failed. An import writes in one transaction, so such an import wrote nothing; a drain's
//! evictions did happen, and its message says so.
//! Only a job's owner and admins may see it.

use crate::db::Database;
use crate::db::now;
use crate::error::OrInternal;
use app::access::{ConsoleRole, Principal};
use app::error::AppError;
use rand::Rng;
use sqlx::Row;
use std::time::Duration;

/// How long a running job's lease lasts without news from its replica.
const LEASE: Duration = Duration::from_secs(60);

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    /// Waiting for a person (an import's preview, waiting to be committed).
    Waiting,
    Succeeded,
    Failed,
}

impl JobState {
    fn parse(text: &str) -> JobState {
        match text {
            "running" => JobState::Running,
            "waiting" => JobState::Waiting,
            "succeeded" => JobState::Succeeded,
            _ => JobState::Failed,
        }
    }
}

/// One job, as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub owner: String,
    pub state: JobState,
    pub step: String,
    pub done: u32,
    pub total: u32,
    pub input: String,
    pub result: String,
    pub error: Option<AppError>,
}

/// A kind of job, as an area declares it: its name in the jobs table, and what a person is told
/// when its replica stopped while it ran (what that left behind differs by kind).
#[derive(Debug, Clone, Copy)]
pub struct JobKind {
    pub name: &'static str,
    pub when_abandoned: &'static str,
}

/// What a job of a kind no area declared is told when its replica stopped.
const ABANDONED: &str = "Pangea stopped while this job ran. Start it again.";

#[derive(Debug, Clone)]
pub struct Jobs {
    db: Database,
    /// This process's name in leases.
    replica: String,
}

fn lease_until() -> String {
    crate::db::timestamp(time::OffsetDateTime::now_utc() + LEASE)
}

/// Whom a job belongs to: a user by id (names can change hands), a token by id.
pub fn owner_of(who: &Principal) -> String {
    use app::access::Identity;
    match &who.identity {
        Identity::Local { user_id, .. } | Identity::Oidc { user_id, .. } => format!("user:{user_id}"),
        Identity::Token { token_id, .. } => format!("token:{token_id}"),
        Identity::Cli { os_user } => format!("cli:{os_user}"),
        Identity::Certificate { subject } => format!("cert:{subject}"),
        Identity::Anonymous => "anonymous".into(),
    }
}

impl Jobs {
    pub fn new(db: Database) -> Jobs {
        Jobs { db, replica: format!("{:016x}", rand::rng().random::<u64>()) }
    }

    /// Starts a job on this replica, in `step`, with `input` kept for whichever replica goes on.
    pub async fn start(
        &self,
        kind: JobKind,
        who: &Principal,
        step: &str,
        total: u32,
        input: &str,
    ) -> Result<String, AppError> {
        let id = format!("{:032x}", rand::rng().random::<u128>());
        let now = now();
        sqlx::query(
            "INSERT INTO jobs (id, kind, owner, state, step, total, input, lease_holder, lease_until, created_at, updated_at) \
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(&id)
        .bind(kind.name)
        .bind(owner_of(who))
        .bind(step)
        .bind(i64::from(total))
        .bind(input)
        .bind(&self.replica)
        .bind(lease_until())
        .bind(now)
        .execute(self.db.pool())
        .await
        .or_internal()?;
        Ok(id)
    }

    /// Reports progress (and renews this replica's lease).
    pub async fn progress(&self, id: &str, done: u32, total: u32) -> Result<(), AppError> {
        sqlx::query("UPDATE jobs SET done = $1, total = $2, lease_until = $3, updated_at = $4 WHERE id = $5")
            .bind(i64::from(done))
            .bind(i64::from(total))
            .bind(lease_until())
            .bind(now())
            .bind(id)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(())
    }

    /// Reports progress with what a person should see meanwhile (`result`, e.g. what blocks a
    /// drain), renewing this replica's lease.
    pub async fn report(&self, id: &str, done: u32, total: u32, result: &str) -> Result<(), AppError> {
        sqlx::query(
            "UPDATE jobs SET done = $1, total = $2, result = $3, lease_until = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(i64::from(done))
        .bind(i64::from(total))
        .bind(result)
        .bind(lease_until())
        .bind(now())
        .bind(id)
        .execute(self.db.pool())
        .await
        .or_internal()?;
        Ok(())
    }

    /// Asks a running job to stop, for its owner or an admin; `false` when it was not running.
    pub async fn request_cancel(&self, id: &str, who: &Principal) -> Result<bool, AppError> {
        self.get(id, who).await?;
        let done =
            sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = $1 WHERE id = $2 AND state = 'running'")
                .bind(now())
                .bind(id)
                .execute(self.db.pool())
                .await
                .or_internal()?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether someone asked job `id` to stop.
    pub async fn cancel_requested(&self, id: &str) -> Result<bool, AppError> {
        let flag: Option<i64> = sqlx::query_scalar("SELECT cancel_requested FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?;
        Ok(flag.unwrap_or(0) != 0)
    }

    /// Runs `work` for job `id`, renewing this replica's lease every 20 s meanwhile (a commit
    /// may wait for locks longer than a lease lasts).
    pub async fn holding_lease<T>(&self, id: &str, work: impl std::future::Future<Output = T>) -> T {
        // Both run together: a renewal that waits for a lock never holds up the work.
        let renew = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + LEASE / 3, LEASE / 3);
            loop {
                ticks.tick().await;
                let renewed = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_holder = $3")
                    .bind(lease_until())
                    .bind(id)
                    .bind(&self.replica)
                    .execute(self.db.pool())
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(error = %e, job = id, "could not renew a job's lease");
                }
            }
        };
        tokio::select! {
            done = work => done,
            never = renew => never,
        }
    }

    /// Ends a step: the job waits for a person, with `result` to show them.
    pub async fn wait(&self, id: &str, result: &str) -> Result<(), AppError> {
        self.end(id, "waiting", result, "").await
    }

    pub async fn succeed(&self, id: &str, result: &str) -> Result<(), AppError> {
        self.end(id, "succeeded", result, "").await
    }

    pub async fn fail(&self, id: &str, error: &AppError) -> Result<(), AppError> {
        self.end(id, "failed", "", &serde_json::to_string(error).unwrap_or_default()).await
    }

    /// Ends this replica's run of a job (a job the sweeper already failed stays failed).
    async fn end(&self, id: &str, state: &str, result: &str, error: &str) -> Result<(), AppError> {
        sqlx::query(
            "UPDATE jobs SET state = $1, result = $2, error = $3, done = total, lease_holder = '', lease_until = '', \
             updated_at = $4 WHERE id = $5 AND state = 'running' AND lease_holder = $6",
        )
        .bind(state)
        .bind(result)
        .bind(error)
        .bind(now())
        .bind(id)
        .bind(&self.replica)
        .execute(self.db.pool())
        .await
        .or_internal()?;
        Ok(())
    }

    /// Takes a waiting job into `step` on this replica, exactly once (on any replica), for
    /// its owner only; returns its input.
    pub async fn resume(&self, id: &str, who: &Principal, step: &str) -> Result<Option<String>, AppError> {
        sqlx::query_scalar::<_, String>(
            "UPDATE jobs SET state = 'running', step = $1, done = 0, lease_holder = $2, lease_until = $3, updated_at = $4 \
             WHERE id = $5 AND owner = $6 AND state = 'waiting' RETURNING input",
        )
        .bind(step)
        .bind(&self.replica)
        .bind(lease_until())
        .bind(now())
        .bind(id)
        .bind(owner_of(who))
        .fetch_optional(self.db.pool())
        .await
        .or_internal()
    }

    /// A job, for its owner or an admin; anyone else is told it does not exist.
    pub async fn get(&self, id: &str, who: &Principal) -> Result<Job, AppError> {
        let gone = || AppError::not_found("This job is not known (it expired, or it is not yours). Start it again.");
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?
            .ok_or_else(gone)?;
        let owner: String = row.try_get("owner").or_internal()?;
        if owner != owner_of(who) && who.role != Some(ConsoleRole::Admin) {
            return Err(gone());
        }
        let error: String = row.try_get("error").or_internal()?;
        Ok(Job {
            id: row.try_get("id").or_internal()?,
            kind: row.try_get("kind").or_internal()?,
            owner,
            state: JobState::parse(&row.try_get::<String, _>("state").or_internal()?),
            step: row.try_get("step").or_internal()?,
            done: row.try_get::<i64, _>("done").or_internal()? as u32,
            total: row.try_get::<i64, _>("total").or_internal()? as u32,
            input: row.try_get("input").or_internal()?,
            result: row.try_get("result").or_internal()?,
            error: (!error.is_empty()).then(|| serde_json::from_str(&error).unwrap_or_else(crate::error::internal)),
        })
    }

    /// Marks failed every running job whose replica stopped renewing its lease (it was
    /// stopped or crashed), saying what that left behind: an import's one transaction never
    /// happened; a drain's evictions did.
    pub async fn fail_abandoned(&self, kinds: &[JobKind]) -> Result<u64, AppError> {
        let error = |message: &str| {
            serde_json::to_string(&AppError::Conflict { message: message.into(), fields: Vec::new() })
                .unwrap_or_default()
        };
        let now = now();
        let mut failed = 0;
        for kind in kinds {
            failed += sqlx::query(
                "UPDATE jobs SET state = 'failed', error = $1, lease_holder = '', lease_until = '', updated_at = $2 \
                 WHERE state = 'running' AND lease_until < $2 AND kind = $3",
            )
            .bind(error(kind.when_abandoned))
            .bind(&now)
            .bind(kind.name)
            .execute(self.db.pool())
            .await
            .or_internal()?
            .rows_affected();
        }
        failed += sqlx::query(
            "UPDATE jobs SET state = 'failed', error = $1, lease_holder = '', lease_until = '', updated_at = $2 \
             WHERE state = 'running' AND lease_until < $2",
        )
        .bind(error(ABANDONED))
        .bind(&now)
        .execute(self.db.pool())
        .await
        .or_internal()?
        .rows_affected();
        Ok(failed)
    }

    /// Deletes jobs that ended (or waited for a person) longer than `age` ago.
    pub async fn forget_older_than(&self, age: Duration) -> Result<u64, AppError> {
        let before = crate::db::timestamp(time::OffsetDateTime::now_utc() - age);
        let done =
            sqlx::query("DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'waiting') AND updated_at < $1")
                .bind(before)
                .execute(self.db.pool())
                .await
                .or_internal()?;
        Ok(done.rows_affected())
    }
}
