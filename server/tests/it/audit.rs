//! The audit log: every change is recorded with its outcome in the change's own transaction,
//! and `pangea audit verify` catches edited, deleted, reordered and cut-off records.

use crate::support::TestApp;
use pangea::audit::{self, ChainError};
use serde_json::{Value, json};
use sqlx::Executor;

on_both_backends!(
    each_change_is_recorded_with_actor_target_and_before_after,
    failed_changes_are_recorded_as_failed_and_change_nothing,
    imports_are_recorded_once_with_every_mac,
    verify_catches_an_edited_record,
    verify_catches_a_deleted_record,
    verify_catches_reordered_records,
    verify_catches_records_cut_off_the_end,
    records_cannot_be_updated_through_sql,
    cli_verify_exits_nonzero_naming_the_broken_record,
    the_log_filters_pages_and_exports_exactly_the_filtered_set,
    an_attacker_without_the_key_cannot_rewrite_the_chain,
    a_checkpoint_catches_a_cut_tail_with_a_rolled_back_head,
    exports_are_audited_and_csv_cells_cannot_run_as_formulas,
    a_very_long_target_is_still_audited,
    a_record_slipped_in_below_the_chain_is_caught,
);

async fn seed(app: &TestApp) -> Value {
    let m = app.create(json!({"mac": "52:54:00:00:00:01", "hostname": "one"})).await;
    app.create(json!({"mac": "52:54:00:00:00:02"})).await;
    let res = app
        .client
        .put(app.at(&format!("/api/v1/machines/{}", m["id"])))
        .json(&json!({"mac": "52:54:00:00:00:01", "hostname": "uno"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    m
}

/// The machine records, newest first (start-up and sign-in records come before them).
async fn machine_records(app: &TestApp) -> Vec<audit::Record> {
    audit::latest(&app.state.db, 50).await.unwrap().into_iter().filter(|r| r.action.starts_with("machine.")).collect()
}

/// Records written before a test's own: the admin's creation, the bootstrap group binding, the sign-in.
const STARTUP_RECORDS: i64 = 3;

/// Tampering needs the append-only triggers out of the way, as an attacker with database access would.
async fn drop_guards(app: &TestApp) {
    for sql in ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"] {
        let _ = app.state.db.pool().execute(sql).await;
    }
    let _ = app.state.db.pool().execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log").await;
}

async fn each_change_is_recorded_with_actor_target_and_before_after(app: TestApp) {
    let m = seed(&app).await;
    let res = app
        .client
        .delete(app.at(&format!("/api/v1/machines/{}", m["id"])))
        .header("user-agent", "audit-test/1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let records = machine_records(&app).await;
    let actions: Vec<&str> = records.iter().rev().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["machine.create", "machine.create", "machine.update", "machine.delete"]);
    let update = &records[1];
    assert_eq!((update.target_kind.as_str(), update.target_id.as_str()), ("machine", m["id"].to_string().as_str()));
    assert_eq!(update.outcome, "success");
    let summary: Value = serde_json::from_str(&update.summary).unwrap();
    assert_eq!(summary["before"]["hostname"], "one");
    assert_eq!(summary["after"]["hostname"], "uno");
    let delete = &records[0];
    assert_eq!(delete.user_agent, "audit-test/1");
    assert_eq!(delete.ip, "127.0.0.1");
    assert_eq!(delete.actor, "admin");
    assert_eq!((delete.auth_method.as_str(), delete.roles.as_str()), ("local", "admin"));
    assert_eq!(delete.request_id, res.headers()["x-request-id"].to_str().unwrap());
    assert_eq!(audit::verify(&app.state.db).await, Ok(STARTUP_RECORDS + 4));
}

async fn failed_changes_are_recorded_as_failed_and_change_nothing(app: TestApp) {
    app.create(json!({"mac": "52:54:00:00:00:01"})).await;
    assert_eq!(app.post_json("/api/v1/machines", json!({"mac": "52:54:00:00:00:01"})).await.status(), 409);
    assert_eq!(app.post_json("/api/v1/machines", json!({"mac": "bad"})).await.status(), 400);
    assert_eq!(app.client.delete(app.at("/api/v1/machines/4242")).send().await.unwrap().status(), 404);
    let records = machine_records(&app).await;
    let outcomes: Vec<(&str, &str)> = records.iter().rev().map(|r| (r.action.as_str(), r.outcome.as_str())).collect();
    assert_eq!(
        outcomes,
        [
            ("machine.create", "success"),
            ("machine.create", "failure"),
            ("machine.create", "failure"),
            ("machine.delete", "failure")
        ]
    );
    let conflict: Value = serde_json::from_str(&records[2].summary).unwrap();
    assert_eq!(conflict["error"]["code"], "conflict");
    assert_eq!(app.count().await, 1);
    assert_eq!(audit::verify(&app.state.db).await, Ok(STARTUP_RECORDS + 4));
}

async fn imports_are_recorded_once_with_every_mac(app: TestApp) {
    let csv = "mac\n52:54:00:00:00:01\n52:54:00:00:00:02\n";
    assert_eq!(app.post_json("/api/v1/machines/import", json!({"text": csv, "dry_run": true})).await.status(), 200);
    assert!(machine_records(&app).await.is_empty(), "a dry run changes nothing and is not recorded");
    assert_eq!(app.post_json("/api/v1/machines/import", json!({"text": csv})).await.status(), 200);
    let records = machine_records(&app).await;
    assert_eq!(records.len(), 1);
    let summary: Value = serde_json::from_str(&records[0].summary).unwrap();
    assert_eq!(summary["macs"], json!(["52:54:00:00:00:01", "52:54:00:00:00:02"]));
}

async fn verify_catches_an_edited_record(app: TestApp) {
    seed(&app).await;
    drop_guards(&app).await;
    app.state.db.pool().execute("UPDATE audit_log SET actor = 'someone else' WHERE id = 2").await.unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Err(ChainError::Edited { id: 2 }));
}

async fn verify_catches_a_deleted_record(app: TestApp) {
    seed(&app).await;
    drop_guards(&app).await;
    app.state.db.pool().execute("DELETE FROM audit_log WHERE id = 2").await.unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Err(ChainError::Broken { id: 3, expected_after: 1 }));
}

async fn verify_catches_reordered_records(app: TestApp) {
    seed(&app).await;
    drop_guards(&app).await;
    let pool = app.state.db.pool();
    pool.execute("UPDATE audit_log SET id = 100 WHERE id = 1").await.unwrap();
    pool.execute("UPDATE audit_log SET id = 1 WHERE id = 2").await.unwrap();
    pool.execute("UPDATE audit_log SET id = 2 WHERE id = 100").await.unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Err(ChainError::Broken { id: 1, expected_after: 0 }));
}

async fn verify_catches_records_cut_off_the_end(app: TestApp) {
    seed(&app).await;
    drop_guards(&app).await;
    let last = STARTUP_RECORDS + 3;
    app.state.db.pool().execute(format!("DELETE FROM audit_log WHERE id = {last}").as_str()).await.unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Err(ChainError::Truncated { last: last - 1, head: last }));
}

async fn records_cannot_be_updated_through_sql(app: TestApp) {
    seed(&app).await;
    let err = app.state.db.pool().execute("UPDATE audit_log SET actor = 'x'").await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = app.state.db.pool().execute("DELETE FROM audit_log").await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

async fn cli_verify_exits_nonzero_naming_the_broken_record(app: TestApp) {
    seed(&app).await;
    let run = || app.cli(&["audit", "verify"]);
    let ok = run();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("intact: {} records", STARTUP_RECORDS + 3)));
    drop_guards(&app).await;
    app.state.db.pool().execute("UPDATE audit_log SET summary = '{}' WHERE id = 2").await.unwrap();
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stdout).contains("audit record 2"), "{broken:?}");
}

async fn the_log_filters_pages_and_exports_exactly_the_filtered_set(app: TestApp) {
    // 600 machine records (more than one export page), plus a few failures.
    let csv: String = std::iter::once("mac".to_string())
        .chain((0..3u32).map(|i| format!("52:54:00:00:10:{i:02x}")))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(app.post_json("/api/v1/machines/import", json!({"text": csv})).await.status(), 200);
    for i in 0..600u32 {
        let res = app
            .post_json("/api/v1/machines", json!({"mac": format!("52:54:00:01:{:02x}:{:02x}", i >> 8, i & 0xff)}))
            .await;
        assert_eq!(res.status(), 201);
    }
    for _ in 0..3 {
        assert_eq!(app.post_json("/api/v1/machines", json!({"mac": "bad"})).await.status(), 400);
    }
    let page = app.get_json("/api/v1/audit?action=machine.create&outcome=failure").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert!(page["next"].is_null());
    // Keyset pages, newest first, visit each record once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit?action=machine.*&limit=250".to_string();
    loop {
        let page = app.get_json(&path).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next"].as_i64() {
            Some(before) => path = format!("/api/v1/audit?action=machine.*&limit=250&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 604);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    let by_actor = app.get_json("/api/v1/audit?actor=admin&action=session.login").await;
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 1);
    let future = app.get_json("/api/v1/audit?from=2999-01-01").await;
    assert!(future["items"].as_array().unwrap().is_empty());
    let res = app.get("/api/v1/audit?outcome=maybe").await;
    assert_eq!(res.status(), 400);

    let ndjson = app.get("/api/v1/audit?format=ndjson&action=machine.*").await;
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = ndjson.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>(), seen);
    let csv = app.get("/api/v1/audit?format=csv&outcome=failure").await.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.headers().unwrap().get(0), Some("id"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| &r[9] == "failure" && r[10].contains("\"code\":\"invalid\"")));
    assert_eq!(app.get("/api/v1/audit?format=xml").await.status(), 400);
}

/// Someone with write access to the database, but not the audit key, edits a record and
/// recomputes every hash after it (with a key of their own, the best they can do).
async fn an_attacker_without_the_key_cannot_rewrite_the_chain(app: TestApp) {
    seed(&app).await;
    drop_guards(&app).await;
    let pool = app.state.db.pool();
    pool.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = 2").await.unwrap();
    let attacker_key = pangea::secrets::ChainKey::from_bytes([0x42; 32]);
    let mut records = audit::latest(&app.state.db, 1000).await.unwrap();
    records.reverse();
    let mut prev = audit::GENESIS.to_string();
    for mut r in records {
        r.prev_hash = prev.clone();
        r.hash = audit::compute_hash(&attacker_key, &r);
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE id = $3")
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.id)
            .execute(pool)
            .await
            .unwrap();
        prev = r.hash;
    }
    sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1").bind(&prev).execute(pool).await.unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Err(ChainError::Edited { id: 1 }));
    let cli = app.cli(&["audit", "verify"]);
    assert_eq!(cli.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cli.stdout).contains("audit record 1"), "{cli:?}");
}

/// The last record is deleted and the head rolled back to the one before: the chain itself is
/// consistent again, but a checkpoint taken earlier shows what is missing.
async fn a_checkpoint_catches_a_cut_tail_with_a_rolled_back_head(app: TestApp) {
    seed(&app).await;
    let out = app.cli(&["audit", "checkpoint"]);
    assert!(out.status.success(), "{out:?}");
    let file = app.data_dir.join("checkpoint.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let checkpoint: Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = STARTUP_RECORDS + 3;
    assert_eq!(checkpoint["count"], last);
    let verify = || app.cli(&["audit", "verify", "--checkpoint", file.to_str().unwrap()]);
    let ok = verify();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("holds the checkpoint"), "{ok:?}");

    drop_guards(&app).await;
    let pool = app.state.db.pool();
    let before: String =
        sqlx::query_scalar("SELECT hash FROM audit_log WHERE id = $1").bind(last - 1).fetch_one(pool).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE id = $1").bind(last).execute(pool).await.unwrap();
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE id = 1")
        .bind(last - 1)
        .bind(&before)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Ok(last - 1), "without the checkpoint the cut goes unseen");
    let caught = verify();
    assert_eq!(caught.status.code(), Some(1));
    let said = String::from_utf8_lossy(&caught.stdout);
    assert!(said.contains(&format!("counted {last} records")) && said.contains("cut off"), "{said}");

    let mut forged = checkpoint.clone();
    forged["count"] = json!(last - 1);
    std::fs::write(&file, forged.to_string()).unwrap();
    let refused = verify();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("not signed with this audit key"), "{refused:?}");
}

async fn exports_are_audited_and_csv_cells_cannot_run_as_formulas(app: TestApp) {
    let created = app.create(json!({"mac": "52:54:00:00:00:07", "serial": "=HYPERLINK(\"x\")"})).await;
    let csv = app.get("/api/v1/machines/export.csv?search=52:54:00:00:00:07").await.text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    // The export reads back to the same machine.
    let res = app.client.delete(app.at(&format!("/api/v1/machines/{}", created["id"]))).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.post_json("/api/v1/machines/import", json!({"text": csv})).await.status(), 200);
    let page = app.get_json("/api/v1/machines?search=52:54:00:00:00:07").await;
    assert_eq!(page["items"][0]["serial"], "=HYPERLINK(\"x\")", "{page}");
    let audit_csv = app.get("/api/v1/audit?format=csv&action=machine.create").await.text().await.unwrap();
    assert!(!audit_csv.lines().skip(1).any(|l| l.starts_with(['=', '+', '-', '@'])));

    let records = audit::latest(&app.state.db, 10).await.unwrap();
    let machines = records.iter().find(|r| r.action == "machine.export").expect("the machines export is audited");
    let summary: Value = serde_json::from_str(&machines.summary).unwrap();
    assert_eq!(summary["rows"], 1);
    assert_eq!(summary["search"]["search"], "52:54:00:00:00:07");
    let export = records.iter().find(|r| r.action == "audit.export").expect("the audit export is audited");
    assert_eq!(export.actor, "admin");
    let summary: Value = serde_json::from_str(&export.summary).unwrap();
    assert_eq!(
        (summary["format"].as_str(), summary["filter"]["action"].as_str()),
        (Some("csv"), Some("machine.create"))
    );
}

/// PostgreSQL refuses index entries over about 2.7 kB: long names are cut before they are kept.
async fn a_very_long_target_is_still_audited(app: TestApp) {
    let long = "x".repeat(100_000);
    let event = audit::Event::new("machine.delete", "machine").target(&long, &long);
    let id = audit::record(&app.state.db, &app::access::Principal::cli(), event).await.unwrap();
    let record = audit::latest(&app.state.db, 1).await.unwrap().remove(0);
    assert_eq!(record.id, id);
    assert!(record.target_name.chars().count() <= 256 && record.target_name.starts_with("xxx"));
    assert_eq!(audit::verify(&app.state.db).await, Ok(id));
}

async fn a_record_slipped_in_below_the_chain_is_caught(app: TestApp) {
    seed(&app).await;
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, auth_method, roles, action, target_kind, target_id, target_name, \
         outcome, summary, ip, user_agent, request_id, prev_hash, hash) \
         VALUES (0, '2026-01-01T00:00:00.000000Z', 'admin', 'local', 'admin', 'machine.delete', 'machine', '1', 'x', \
         'success', '', '', '', '', '', '')",
    )
    .execute(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(audit::verify(&app.state.db).await, Err(ChainError::Broken { id: 0, expected_after: 0 }));
}
