//! Durable jobs: long work (imports and drains now; power actions and boots later) kept in the
//! `jobs` table on both backends, so any replica can report a job's progress, and a job whose
//! replica died goes on elsewhere.
//!
//! A running job holds a lease: its replica's id and an expiry, renewed every third of a lease.
//! Every write a run makes (progress, its end) is conditioned on holding it, so a run that lost
//! its lease stops at its next step and ends nothing. A job whose lease ran out belonged to a
//! replica that stopped: another replica [takes it over](Jobs::take_over) and resumes it from its
//! last recorded step, acting (and auditing) as the person kept with it. A job's end and its
//! audit record are written in one transaction by the run that holds it, so it is audited once.
//! Only a job's owner and admins may see it.

use crate::audit::{self, Event};
use crate::db::Database;
use crate::db::now;
use crate::error::OrInternal;
use app::access::{ConsoleRole, Principal};
use app::error::AppError;
use rand::Rng;
use sqlx::{AnyConnection, Row};
use std::time::Duration;

/// How long a running job's lease lasts without news from its replica, unless configured: the
/// time after which another replica takes over a job whose replica died.
pub const LEASE: Duration = Duration::from_secs(15);

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
    /// Whom the job acts for: who started it, or who took it on from waiting.
    pub acting: Option<Principal>,
    /// How many times another run took it over.
    pub resumed: u32,
    /// Whether it is paused (read with the rest of the row, so what it reported and its pause
    /// agree).
    pub paused: bool,
}

/// A kind of job, as an area declares it: its name in the jobs table.
#[derive(Debug, Clone, Copy)]
pub struct JobKind {
    pub name: &'static str,
}

/// How many times a job may be taken over before it fails.
pub const MAX_TAKE_OVERS: u32 = 3;

/// What a job of a kind no replica resumes is told when its replica stopped.
const ABANDONED: &str = "Pangea stopped while this job ran. Start it again.";

/// What a run is told when another replica took its job over (its lease had run out).
pub fn lease_lost() -> AppError {
    AppError::Conflict {
        message: "Another Pangea replica took this job over; it goes on there.".into(),
        fields: Vec::new(),
    }
}

/// What a person may ask of a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Pause,
    Cancel,
}

async fn set_flag(conn: &mut AnyConnection, id: &str, flag: &'static str, on: bool) -> Result<bool, AppError> {
    let done =
        sqlx::query(&format!("UPDATE jobs SET {flag} = $1, updated_at = $2 WHERE id = $3 AND state = 'running'"))
            .bind(i64::from(on))
            .bind(now())
            .bind(id)
            .execute(&mut *conn)
            .await
            .or_internal()?;
    Ok(done.rows_affected() > 0)
}

#[derive(Debug, Clone)]
pub struct Jobs {
    db: Database,
    /// This process's name in leases.
    replica: String,
    lease: Duration,
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

/// How a run ends a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Waiting,
    Succeeded,
    Failed,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Waiting => "waiting",
            Ending::Succeeded => "succeeded",
            Ending::Failed => "failed",
        }
    }
}

fn error_text(error: &AppError) -> String {
    serde_json::to_string(error).unwrap_or_default()
}

impl Jobs {
    pub fn new(db: Database) -> Jobs {
        Jobs { db, replica: format!("{:016x}", rand::rng().random::<u64>()), lease: LEASE }
    }

    /// This process's name in leases.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// With leases of `lease` (renewed every third of it).
    pub fn with_lease(mut self, lease: Duration) -> Jobs {
        self.lease = lease;
        self
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn lease_until(&self) -> String {
        crate::db::timestamp(time::OffsetDateTime::now_utc() + self.lease)
    }

    /// Starts a job on this replica, in `step`, acting for `who`, with `input` kept for
    /// whichever replica goes on.
    pub async fn start(
        &self,
        kind: JobKind,
        who: &Principal,
        step: &str,
        total: u32,
        input: &str,
    ) -> Result<String, AppError> {
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        self.start_in(&mut conn, kind, who, step, total, input).await
    }

    /// [`Jobs::start`] inside the transaction of the change that starts it: the job exists if,
    /// and only if, that change is written.
    pub async fn start_in(
        &self,
        conn: &mut AnyConnection,
        kind: JobKind,
        who: &Principal,
        step: &str,
        total: u32,
        input: &str,
    ) -> Result<String, AppError> {
        let id = format!("{:032x}", rand::rng().random::<u128>());
        let now = now();
        sqlx::query(
            "INSERT INTO jobs (id, kind, owner, state, step, total, input, acting, lease_holder, lease_until, created_at, updated_at) \
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(kind.name)
        .bind(owner_of(who))
        .bind(step)
        .bind(i64::from(total))
        .bind(input)
        .bind(serde_json::to_string(who).or_internal()?)
        .bind(&self.replica)
        .bind(self.lease_until())
        .bind(now)
        .execute(&mut *conn)
        .await
        .or_internal()?;
        Ok(id)
    }

    /// Reports progress (and renews this replica's lease); [`lease_lost`] when another run
    /// holds the job now.
    pub async fn progress(&self, id: &str, done: u32, total: u32) -> Result<(), AppError> {
        self.renew_reporting(id, done, total, None).await
    }

    /// Reports progress with what a person should see meanwhile (`result`, e.g. what blocks a
    /// drain), renewing this replica's lease; [`lease_lost`] when another run holds the job now.
    pub async fn report(&self, id: &str, done: u32, total: u32, result: &str) -> Result<(), AppError> {
        self.renew_reporting(id, done, total, Some(result)).await
    }

    async fn renew_reporting(&self, id: &str, done: u32, total: u32, result: Option<&str>) -> Result<(), AppError> {
        let updated = sqlx::query(
            "UPDATE jobs SET done = $1, total = $2, result = COALESCE($3, result), lease_until = $4, updated_at = $5 \
             WHERE id = $6 AND lease_holder = $7 AND state = 'running'",
        )
        .bind(i64::from(done))
        .bind(i64::from(total))
        .bind(result)
        .bind(self.lease_until())
        .bind(now())
        .bind(id)
        .bind(&self.replica)
        .execute(self.db.pool())
        .await
        .or_internal()?;
        if updated.rows_affected() == 0 { Err(lease_lost()) } else { Ok(()) }
    }

    /// Asks a running job to stop, for its owner or an admin; `false` when it was not running.
    /// The request stays with the job, so a run that takes it over stops too.
    pub async fn request_cancel(&self, id: &str, who: &Principal) -> Result<bool, AppError> {
        self.ask(id, who, "cancel_requested", true).await
    }

    /// Pauses (or, with `paused` false, resumes) a running job, for its owner or an admin;
    /// `false` when it was not running. The pause stays with the job, on whichever replica runs it.
    pub async fn request_pause(&self, id: &str, who: &Principal, paused: bool) -> Result<bool, AppError> {
        self.ask(id, who, "pause_requested", paused).await
    }

    /// Sets a running job's request `flag` (a column name of this module's own), for its owner
    /// or an admin; `false` when it was not running.
    async fn ask(&self, id: &str, who: &Principal, flag: &'static str, on: bool) -> Result<bool, AppError> {
        self.get(id, who).await?;
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        set_flag(&mut conn, id, flag, on).await
    }

    /// Asks running job `id` to pause (or, with `on` false, to go on) or to stop, inside the
    /// transaction that audits it, for a caller its area authorized; `false` when it was not
    /// running. The request stays with the job, on whichever replica runs it.
    pub async fn request_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        request: Request,
        on: bool,
    ) -> Result<bool, AppError> {
        let flag = match request {
            Request::Pause => "pause_requested",
            Request::Cancel => "cancel_requested",
        };
        set_flag(conn, id, flag, on).await
    }

    /// Pauses job `id` from its own run (a check it makes failed), as a person's pause, with
    /// `result` saying why, in one write: it waits until a person resumes it. [`lease_lost`]
    /// when another run holds it now.
    pub async fn hold(&self, id: &str, result: &str) -> Result<(), AppError> {
        let held = sqlx::query(
            "UPDATE jobs SET pause_requested = 1, result = $1, updated_at = $2 \
             WHERE id = $3 AND lease_holder = $4 AND state = 'running'",
        )
        .bind(result)
        .bind(now())
        .bind(id)
        .bind(&self.replica)
        .execute(self.db.pool())
        .await
        .or_internal()?;
        if held.rows_affected() == 0 { Err(lease_lost()) } else { Ok(()) }
    }

    /// Every running job of `kind`.
    pub async fn running(&self, kind: JobKind) -> Result<Vec<Job>, AppError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE kind = $1 AND state = 'running'")
            .bind(kind.name)
            .fetch_all(self.db.pool())
            .await
            .or_internal()?;
        self.load_each(ids).await
    }

    /// The newest `limit` jobs of `kind`, running or ended, newest first.
    pub async fn newest(&self, kind: JobKind, limit: i64) -> Result<Vec<Job>, AppError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE kind = $1 ORDER BY created_at DESC, id LIMIT $2")
                .bind(kind.name)
                .bind(limit)
                .fetch_all(self.db.pool())
                .await
                .or_internal()?;
        self.load_each(ids).await
    }

    /// The jobs `ids` that still exist, in order.
    async fn load_each(&self, ids: Vec<String>) -> Result<Vec<Job>, AppError> {
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            jobs.extend(self.load(&id).await?);
        }
        Ok(jobs)
    }

    /// Whether job `id` is asked to stop, and whether it is paused.
    pub async fn asked(&self, id: &str) -> Result<(bool, bool), AppError> {
        let row = sqlx::query("SELECT cancel_requested, pause_requested FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?;
        let flag = |column: &str| row.as_ref().and_then(|r| r.try_get::<i64, _>(column).ok()).unwrap_or(0) != 0;
        Ok((flag("cancel_requested"), flag("pause_requested")))
    }

    /// Whether someone asked job `id` to stop.
    pub async fn cancel_requested(&self, id: &str) -> Result<bool, AppError> {
        Ok(self.asked(id).await?.0)
    }

    /// Runs `work` for job `id`, renewing this replica's lease every third of a lease
    /// meanwhile (a commit may wait for locks longer than a lease lasts). The work stops with
    /// [`lease_lost`] when another run took the job over, or when no renewal got through for a
    /// whole lease (the database is out of reach, and another replica may take over).
    pub async fn holding_lease<T>(
        &self,
        id: &str,
        work: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        // Both run together: a renewal that waits for a lock never holds up the work.
        let renew = async {
            let every = self.lease / 3;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            let mut renewed = std::time::Instant::now();
            loop {
                ticks.tick().await;
                let update = sqlx::query(
                    "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_holder = $3 AND state = 'running'",
                )
                .bind(self.lease_until())
                .bind(id)
                .bind(&self.replica)
                .execute(self.db.pool())
                .await;
                match update {
                    Ok(done) if done.rows_affected() == 0 => {
                        tracing::warn!(job = id, "another replica took this job over; stopping its work here");
                        return lease_lost();
                    }
                    Ok(_) => renewed = std::time::Instant::now(),
                    Err(e) if renewed.elapsed() >= self.lease => {
                        tracing::warn!(error = %e, job = id, "could not renew a job's lease for a whole lease; stopping its work here");
                        return lease_lost();
                    }
                    Err(e) => tracing::warn!(error = %e, job = id, "could not renew a job's lease"),
                }
            }
        };
        tokio::select! {
            done = work => done,
            lost = renew => Err(lost),
        }
    }

    /// Ends a step: the job waits for a person, with `result` to show them.
    pub async fn wait(&self, id: &str, result: &str) -> Result<(), AppError> {
        self.end(id, Ending::Waiting, result, "").await
    }

    pub async fn succeed(&self, id: &str, result: &str) -> Result<(), AppError> {
        self.end(id, Ending::Succeeded, result, "").await
    }

    pub async fn fail(&self, id: &str, error: &AppError) -> Result<(), AppError> {
        self.end(id, Ending::Failed, "", &error_text(error)).await
    }

    /// Ends this replica's run of a job (a job another run holds now is left to it).
    async fn end(&self, id: &str, ending: Ending, result: &str, error: &str) -> Result<(), AppError> {
        let mut conn = self.db.pool().acquire().await.or_internal()?;
        self.end_in(&mut conn, id, ending, result, error).await.map(|_| ())
    }

    /// Ends this replica's run of a job inside `tx`; `false` when another run holds it now. A
    /// failure keeps the last progress reported (what stood when it failed).
    async fn end_in(
        &self,
        tx: &mut AnyConnection,
        id: &str,
        ending: Ending,
        result: &str,
        error: &str,
    ) -> Result<bool, AppError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, result = CASE WHEN $1 = 'failed' AND $2 = '' THEN result ELSE $2 END, \
             error = $3, done = total, lease_holder = '', lease_until = '', updated_at = $4 \
             WHERE id = $5 AND state = 'running' AND lease_holder = $6",
        )
        .bind(ending.as_str())
        .bind(result)
        .bind(error)
        .bind(now())
        .bind(id)
        .bind(&self.replica)
        .execute(&mut *tx)
        .await
        .or_internal()?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends job `id` as succeeded with `result`, inside `tx` (the job's own change commits with
    /// its end, or neither does); [`lease_lost`] when another run holds it now.
    pub async fn succeed_in(&self, tx: &mut AnyConnection, id: &str, result: &str) -> Result<(), AppError> {
        if self.end_in(tx, id, Ending::Succeeded, result, "").await? { Ok(()) } else { Err(lease_lost()) }
    }

    /// Ends this replica's run of job `id` with `outcome` (its result, or its error) and
    /// records `event` (as a failure, for an error) for `who`, in one transaction: a job is
    /// audited once, by the run that ends it. Nothing is written when another run holds it now.
    pub async fn finish(
        &self,
        id: &str,
        who: &Principal,
        event: Event,
        outcome: Result<String, AppError>,
    ) -> Result<(), AppError> {
        let mut tx = audit::begin(&self.db).await.or_internal()?;
        if self.finish_in(&mut tx, id, who, event, outcome).await? {
            tx.commit().await.or_internal()?;
        }
        Ok(())
    }

    /// [`Jobs::finish`] inside `tx` (begun with [`audit::begin`]), with the job's own last
    /// change; `false`, with nothing written, when another run holds the job now.
    pub async fn finish_in(
        &self,
        tx: &mut audit::AuditTx,
        id: &str,
        who: &Principal,
        event: Event,
        outcome: Result<String, AppError>,
    ) -> Result<bool, AppError> {
        let (ended, event) = match &outcome {
            Ok(result) => (self.end_in(tx, id, Ending::Succeeded, result, "").await?, event),
            Err(error) => (self.end_in(tx, id, Ending::Failed, "", &error_text(error)).await?, event.failed(error)),
        };
        if ended {
            audit::append(tx, who, event).await.or_internal()?;
        }
        Ok(ended)
    }

    /// Takes a waiting job into `step` on this replica, exactly once (on any replica), for
    /// its owner only, acting for `who` from now on; returns its input.
    pub async fn resume(&self, id: &str, who: &Principal, step: &str) -> Result<Option<String>, AppError> {
        sqlx::query_scalar::<_, String>(
            "UPDATE jobs SET state = 'running', step = $1, done = 0, acting = $2, lease_holder = $3, lease_until = $4, \
             updated_at = $5 WHERE id = $6 AND owner = $7 AND state = 'waiting' RETURNING input",
        )
        .bind(step)
        .bind(serde_json::to_string(who).or_internal()?)
        .bind(&self.replica)
        .bind(self.lease_until())
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
        let job = self.load(id).await?.ok_or_else(gone)?;
        if job.owner != owner_of(who) && who.role != Some(ConsoleRole::Admin) {
            return Err(gone());
        }
        Ok(job)
    }

    /// A job, for an area that shows it to whoever may see what it works on.
    pub async fn load(&self, id: &str) -> Result<Option<Job>, AppError> {
        let Some(row) = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .or_internal()?
        else {
            return Ok(None);
        };
        let error: String = row.try_get("error").or_internal()?;
        let acting: String = row.try_get("acting").or_internal()?;
        Ok(Some(Job {
            id: row.try_get("id").or_internal()?,
            kind: row.try_get("kind").or_internal()?,
            owner: row.try_get("owner").or_internal()?,
            state: JobState::parse(&row.try_get::<String, _>("state").or_internal()?),
            step: row.try_get("step").or_internal()?,
            done: row.try_get::<i64, _>("done").or_internal()? as u32,
            total: row.try_get::<i64, _>("total").or_internal()? as u32,
            input: row.try_get("input").or_internal()?,
            result: row.try_get("result").or_internal()?,
            error: (!error.is_empty()).then(|| serde_json::from_str(&error).unwrap_or_else(crate::error::internal)),
            acting: serde_json::from_str(&acting).ok(),
            resumed: row.try_get::<i64, _>("resumed").or_internal()? as u32,
            paused: row.try_get::<i64, _>("pause_requested").or_internal()? != 0,
        }))
    }

    /// What every job of `kind` but `except` that runs, or ended within `recent`, last reported
    /// (their results), on any replica.
    pub async fn recent_results(&self, kind: JobKind, except: &str, recent: Duration) -> Result<Vec<String>, AppError> {
        let since = crate::db::timestamp(time::OffsetDateTime::now_utc() - recent);
        sqlx::query_scalar(
            "SELECT result FROM jobs WHERE kind = $1 AND id <> $2 AND (state = 'running' OR updated_at >= $3)",
        )
        .bind(kind.name)
        .bind(except)
        .bind(since)
        .fetch_all(self.db.pool())
        .await
        .or_internal()
    }

    /// Takes over, for this replica, every running job of `kind` whose lease ran out (its
    /// replica stopped or crashed): each is taken by one replica only. The caller resumes them.
    /// A job taken over [`MAX_TAKE_OVERS`] times already fails instead: the replicas that ran it
    /// kept dying, perhaps because of it.
    pub async fn take_over(&self, kind: JobKind) -> Result<Vec<Job>, AppError> {
        let now = now();
        let too_often = AppError::Conflict {
            message: format!(
                "Taken over {MAX_TAKE_OVERS} times: each Pangea replica that ran it stopped while it ran. It was \
                 stopped here; check the replicas' logs, then start it again."
            ),
            fields: Vec::new(),
        };
        sqlx::query(
            "UPDATE jobs SET state = 'failed', error = $1, lease_holder = '', lease_until = '', updated_at = $2 \
             WHERE state = 'running' AND lease_until < $2 AND kind = $3 AND resumed >= $4",
        )
        .bind(error_text(&too_often))
        .bind(&now)
        .bind(kind.name)
        .bind(i64::from(MAX_TAKE_OVERS))
        .execute(self.db.pool())
        .await
        .or_internal()?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE jobs SET lease_holder = $1, lease_until = $2, resumed = resumed + 1, updated_at = $3 \
             WHERE state = 'running' AND lease_until < $3 AND kind = $4 RETURNING id",
        )
        .bind(&self.replica)
        .bind(self.lease_until())
        .bind(&now)
        .bind(kind.name)
        .fetch_all(self.db.pool())
        .await
        .or_internal()?;
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.load(&id).await? {
                tracing::info!(job = %job.id, kind = kind.name, step = %job.step, "took over a job whose replica stopped");
                taken.push(job);
            }
        }
        Ok(taken)
    }

    /// Marks failed every running job whose replica stopped renewing its lease and whose kind
    /// is none of `resumable` (no replica knows how to go on with it).
    pub async fn fail_abandoned(&self, resumable: &[JobKind]) -> Result<u64, AppError> {
        let kinds = if resumable.is_empty() { "''".to_string() } else { crate::db::placeholders(3, resumable.len()) };
        let sql = format!(
            "UPDATE jobs SET state = 'failed', error = $1, lease_holder = '', lease_until = '', updated_at = $2 \
             WHERE state = 'running' AND lease_until < $2 AND kind NOT IN ({kinds})"
        );
        let mut query = sqlx::query(&sql)
            .bind(error_text(&AppError::Conflict { message: ABANDONED.into(), fields: Vec::new() }))
            .bind(now());
        for kind in resumable {
            query = query.bind(kind.name);
        }
        Ok(query.execute(self.db.pool()).await.or_internal()?.rows_affected())
    }

    /// Gives up this replica's leases (it is stopping, its runs ended), so another replica
    /// takes its jobs over at once rather than after a lease.
    pub async fn release_all(&self) -> Result<u64, AppError> {
        let released = sqlx::query("UPDATE jobs SET lease_until = '' WHERE lease_holder = $1 AND state = 'running'")
            .bind(&self.replica)
            .execute(self.db.pool())
            .await
            .or_internal()?;
        Ok(released.rows_affected())
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
