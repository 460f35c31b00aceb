//! Durable jobs: an import started on one replica is seen and committed from another, only by
//! its owner (and admins); a job whose replica stopped is taken over and finished once; a run
//! that lost its lease stops and ends nothing; and a 50,000-line import commits while other
//! people's changes and sign-ins go on. (A drain on a killed `pangea serve`: `clusters.rs`.)

use crate::support::{ADMIN_PASSWORD, TestApp, import_phase};
use app::access::{ConsoleRole, Principal};
use serde_json::{Value, json};

on_both_backends!(
    an_import_job_is_seen_from_any_replica_and_by_its_owner_only,
    an_import_whose_replica_stopped_is_taken_over_and_committed_once,
    a_job_taken_over_goes_on_only_as_someone_who_may_still_do_it,
    a_run_that_lost_its_lease_stops_and_ends_nothing,
    a_large_import_commits_while_others_change_and_sign_in,
    a_committing_import_holds_the_audit_chain_only_at_its_end,
);

pub(crate) fn csv(lines: u32, second_byte: u32) -> String {
    std::iter::once("mac,hostname".to_string())
        .chain((0..lines).map(|i| {
            format!(
                "52:54:{second_byte:02x}:{:02x}:{:02x}:{:02x},host-{second_byte}-{i}",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff
            )
        }))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn poll(app: &TestApp, client: &reqwest::Client, job: &str) -> reqwest::Response {
    client.post(app.at("/api/gui/poll_import")).json(&json!({"job": job})).send().await.unwrap()
}

/// Polls until the job leaves `phase` (at most 60 s, 50 ms apart); returns its drawn state.
async fn past(app: &TestApp, job: &str, phase: &str) -> Value {
    for _ in 0..1200 {
        let state: Value = poll(app, &app.client, job).await.json().await.unwrap();
        if import_phase(&state) != phase {
            return state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {job} stayed {phase}");
}

async fn an_import_job_is_seen_from_any_replica_and_by_its_owner_only(app: TestApp) {
    let other = app.replica().await;
    let res = app.post_json("/api/gui/start_import", json!({"format": "auto", "text": csv(1500, 1)})).await;
    assert_eq!(res.status(), 200);
    let job: String = res.json().await.unwrap();
    let state = past(&other, &job, "checking").await;
    assert_eq!(import_phase(&state), "previewed", "{state}");
    assert!(state["html"].as_str().unwrap().contains("1500 machines to create"), "{state}");
    assert_eq!(app.count().await, 0, "a preview writes nothing");
    // Someone else (an operator, who may import too) cannot see or commit it.
    let hash = pangea::access::hash_password(&secrecy::SecretString::from("olga-password")).unwrap();
    sqlx::query("INSERT INTO users (username, source, password_hash, created_at) VALUES ('olga', 'local', $1, '2026-01-01T00:00:00.000000Z')")
        .bind(hash)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    app.state.access.bind(&Principal::cli(), "user", "olga", ConsoleRole::Operator).await.unwrap();
    let olga = app.sign_in("olga", "olga-password").await;
    assert_eq!(poll(&app, &olga, &job).await.status(), 404);
    let res = olga.post(app.at("/api/gui/commit_import")).json(&json!({"job": job})).send().await.unwrap();
    assert_eq!(res.status(), 404, "not hers to commit, nor to know of");
    // Committed through the other replica, followed from the first.
    let res = other.post_json("/api/gui/commit_import", json!({"job": job})).await;
    assert_eq!(res.status(), 200);
    let state = past(&app, &job, "committing").await;
    assert_eq!(import_phase(&state), "committed", "{state}");
    assert_eq!(app.count().await, 1500);
    let again = app.post_json("/api/gui/commit_import", json!({"job": job})).await;
    assert_eq!(again.status(), 409, "a job commits once");
}

async fn an_import_whose_replica_stopped_is_taken_over_and_committed_once(app: TestApp) {
    let res = app.post_json("/api/gui/start_import", json!({"format": "auto", "text": csv(10, 2)})).await;
    let job: String = res.json().await.unwrap();
    assert_eq!(import_phase(&past(&app, &job, "checking").await), "previewed");
    // As if the replica committing it had been killed before its transaction committed:
    // running, nothing of it written, its lease long gone.
    sqlx::query(
        "UPDATE jobs SET state = 'running', step = 'commit', lease_holder = 'gone', \
         lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = $1",
    )
    .bind(&job)
    .execute(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(import_phase(&past(&app, &job, "nothing").await), "committing", "until a replica takes it over");
    app.state.sweep_jobs().await;
    let state = past(&app, &job, "committing").await;
    assert_eq!(import_phase(&state), "committed", "{state}");
    assert_eq!(app.count().await, 10);
    app.state.sweep_jobs().await;
    let imports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'machine.import'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(imports, 1, "committed and audited once");
    let resumed: i64 = sqlx::query_scalar("SELECT resumed FROM jobs WHERE id = $1")
        .bind(&job)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(resumed, 1);
}

/// Marks `job` as committing on a replica that died (running, its lease long gone).
async fn orphan_commit(app: &TestApp, job: &str) {
    sqlx::query(
        "UPDATE jobs SET state = 'running', step = 'commit', lease_holder = 'gone', \
         lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = $1",
    )
    .bind(job)
    .execute(app.state.db.pool())
    .await
    .unwrap();
}

async fn a_job_taken_over_goes_on_only_as_someone_who_may_still_do_it(app: TestApp) {
    // Olga, an operator, previews an import and commits it; her replica dies mid-commit.
    app.add_local_user("olga", ConsoleRole::Operator).await;
    app.add_local_user("ivan", ConsoleRole::Operator).await;
    let mut stopped = Vec::new();
    for (who, second_byte) in [("olga", 3), ("ivan", 4)] {
        let client = app.sign_in(who, &format!("{who}-password")).await;
        let res = client
            .post(app.at("/api/gui/start_import"))
            .json(&json!({"format": "auto", "text": csv(5, second_byte)}))
            .send()
            .await
            .unwrap();
        let job: String = res.json().await.unwrap();
        for _ in 0..1200 {
            let state: Value = poll(&app, &client, &job).await.json().await.unwrap();
            if import_phase(&state) == "previewed" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        orphan_commit(&app, &job).await;
        stopped.push((client, job));
    }
    // Meanwhile Olga lost her role and Ivan was disabled: the replica that takes their jobs over
    // fails them, in words, and imports nothing.
    sqlx::query("DELETE FROM role_bindings WHERE subject = 'olga'").execute(app.state.db.pool()).await.unwrap();
    sqlx::query("UPDATE users SET disabled = 1 WHERE username = 'ivan'").execute(app.state.db.pool()).await.unwrap();
    app.state.sweep_jobs().await;
    for ((_, job), why) in stopped.iter().zip([
        "This import was stopped: olga may no longer change machines.",
        "This import was stopped: whoever started it may no longer act",
    ]) {
        let mut error = String::new();
        for _ in 0..1200 {
            let (state, message): (String, String) = sqlx::query_as("SELECT state, error FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_one(app.state.db.pool())
                .await
                .unwrap();
            if state == "failed" {
                let stored: Value = serde_json::from_str(&message).unwrap();
                error = stored["message"].as_str().unwrap().to_string();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(error.starts_with(why), "{job}: {error:?}");
    }
    assert_eq!(app.count().await, 0);
}

async fn a_run_that_lost_its_lease_stops_and_ends_nothing(app: TestApp) {
    use pangea::jobs::{JobKind, JobState, Jobs};
    use std::time::Duration;
    const KIND: JobKind = JobKind { name: "test.lease" };
    let lease = Duration::from_secs(3);
    let (first, second) =
        (Jobs::new(app.state.db.clone()).with_lease(lease), Jobs::new(app.state.db.clone()).with_lease(lease));
    let who = Principal::cli();
    let job = first.start(KIND, &who, "work", 1, "{}").await.unwrap();
    // Work that outlasts the lease it started with: renewed meanwhile, nobody may take it.
    let work = async {
        tokio::time::sleep(lease + lease / 3).await;
        Ok::<_, app::error::AppError>(())
    };
    assert!(first.holding_lease(&job, work).await.is_ok());
    assert!(second.take_over(KIND).await.unwrap().is_empty(), "a renewed lease is not taken over");
    // Its replica stalls past its lease (as a frozen process would): the second takes it, once.
    sqlx::query("UPDATE jobs SET lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = $1")
        .bind(&job)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let taken = second.take_over(KIND).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].acting.as_ref(), taken[0].resumed), (Some(&who), 1));
    assert!(second.take_over(KIND).await.unwrap().is_empty(), "taken over once");
    // The first run wakes up: it stops at its next renewal, and what it writes is refused.
    let woken = first.holding_lease(&job, std::future::pending::<Result<(), app::error::AppError>>());
    let lost = tokio::time::timeout(lease * 3, woken).await.expect("the first run stopped");
    assert!(lost.unwrap_err().to_string().contains("Another Pangea replica took this job over"));
    assert!(first.report(&job, 1, 1, "late").await.is_err());
    let end = || pangea::audit::Event::new("test.lease.end", "job").target(&job, &job);
    first.finish(&job, &who, end(), Ok("first".into())).await.unwrap();
    second.finish(&job, &who, end(), Ok("second".into())).await.unwrap();
    let stored = second.get(&job, &who).await.unwrap();
    assert_eq!((stored.state, stored.result.as_str()), (JobState::Succeeded, "second"));
    let ends: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'test.lease.end'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(ends, 1, "audited once, by the run that ended it");
    // A job whose replicas kept dying is not passed on forever.
    let doomed = first.start(KIND, &who, "work", 1, "{}").await.unwrap();
    sqlx::query("UPDATE jobs SET resumed = $1, lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = $2")
        .bind(i64::from(pangea::jobs::MAX_TAKE_OVERS))
        .bind(&doomed)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert!(second.take_over(KIND).await.unwrap().is_empty());
    let failed = second.get(&doomed, &who).await.unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.error.unwrap().to_string().starts_with("Taken over 3 times"));
    // A job of a kind no replica resumes fails, saying so.
    let orphan = first.start(JobKind { name: "test.orphan" }, &who, "work", 1, "{}").await.unwrap();
    sqlx::query("UPDATE jobs SET lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = $1")
        .bind(&orphan)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(second.fail_abandoned(&[KIND]).await.unwrap(), 1);
    let failed = second.get(&orphan, &who).await.unwrap();
    assert!(failed.error.unwrap().to_string().contains("Start it again"));
}

async fn a_large_import_commits_while_others_change_and_sign_in(app: TestApp) {
    let big = csv(50_000, 3);
    let importing = {
        let (client, url) = (app.client.clone(), app.at("/api/v1/machines/import"));
        tokio::spawn(async move { client.post(url).json(&json!({"text": big})).send().await.unwrap().status() })
    };
    // Meanwhile: other people's changes and sign-ins, each of which must wait its turn and succeed.
    let mut others = Vec::new();
    for i in 0..10u32 {
        let (client, url) = (app.client.clone(), app.at("/api/v1/machines"));
        others.push(tokio::spawn(async move {
            let mac = format!("52:54:04:00:00:{i:02x}");
            client.post(url).json(&json!({"mac": mac})).send().await.unwrap().status().as_u16()
        }));
    }
    for _ in 0..3 {
        let (client, url) = (app.anonymous(), app.at("/auth/login"));
        others.push(tokio::spawn(async move {
            let res =
                client.post(url).form(&[("username", "admin"), ("password", ADMIN_PASSWORD)]).send().await.unwrap();
            if res.headers()["location"] == "/" { 200 } else { res.status().as_u16() }
        }));
    }
    for other in others {
        let status = other.await.unwrap();
        assert!(status == 201 || status == 200, "a change or sign-in failed with {status} during the import");
    }
    assert_eq!(importing.await.unwrap(), 200);
    assert_eq!(app.count().await, 50_010);
}

/// On PostgreSQL a change made while a large import commits is recorded before the import is:
/// the import takes the audit chain's lock only to append its own record. (SQLite has one
/// writer at a time: there the change goes before or after the import, and succeeds.)
async fn a_committing_import_holds_the_audit_chain_only_at_its_end(app: TestApp) {
    let res = app.post_json("/api/gui/start_import", json!({"format": "auto", "text": csv(20_000, 5)})).await;
    let job: String = res.json().await.unwrap();
    assert_eq!(import_phase(&past(&app, &job, "checking").await), "previewed");
    assert_eq!(app.post_json("/api/gui/commit_import", json!({"job": job})).await.status(), 200);
    // Wait until the commit step is writing (it reports its total just before it starts).
    for _ in 0..600 {
        let total: i64 = sqlx::query_scalar("SELECT total FROM jobs WHERE id = $1 AND step = 'commit'")
            .bind(&job)
            .fetch_optional(app.state.db.pool())
            .await
            .unwrap()
            .unwrap_or(0);
        if total > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let created = app.create(json!({"mac": "52:54:06:00:00:01"})).await;
    assert_eq!(import_phase(&past(&app, &job, "committing").await), "committed");
    let records = pangea::audit::latest(&app.state.db, 10).await.unwrap();
    let id_of = |action: &str| records.iter().find(|r| r.action == action).map(|r| r.id).unwrap();
    let (create, import) = (id_of("machine.create"), id_of("machine.import"));
    if app.state.db.backend() == pangea::db::Backend::Postgres {
        assert!(create < import, "the change did not wait for the import");
    }
    assert_eq!(created["mac"], "52:54:06:00:00:01");
    assert_eq!(pangea::audit::verify(&app.state.db).await.map(|n| n > 0), Ok(true));
}
