//! Machines' BMCs and power against real Redfish: sushy-tools' emulator (its fake driver), and
//! small stand-in BMCs of the test's own for what the emulator cannot do (answer 503, never
//! answer, cap its sessions at 2).

use crate::support::TestApp;
use crate::support::bmc::{FakeSystem, PASSWORD, USER, emulator, emulator_configured, emulator_with};
use app::access::{ConsoleRole, Principal};
use app::power::ssr::PowerService;
use app::power::{BmcInput, PowerAction, PowerState};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_backends!(
    a_bmc_is_checked_when_set_and_its_machine_is_powered_on_and_followed_on_its_timeline,
    bmcs_that_fail_say_why_and_hold_up_no_other_machine,
    a_bmc_that_caps_its_sessions_at_two_gets_at_most_two_reused_and_deleted_at_the_end,
    a_machines_hardware_is_read_from_its_bmc_and_a_change_is_drift_until_acknowledged,
    the_command_line_sets_shows_powers_and_removes_a_bmc,
    a_paced_power_run_keeps_each_racks_budget_and_the_boot_budget_and_pauses_and_cancels,
    an_import_brings_bmcs_sealed_and_the_next_refresh_checks_them,
    a_discovery_by_bmc_offers_the_systems_not_yet_machines_through_the_import,
);

const SYSTEM_1: &str = "11111111-0000-0000-0000-000000000001";
const SYSTEM_2: &str = "11111111-0000-0000-0000-000000000002";

async fn machine(app: &TestApp, mac: &str) -> i64 {
    let created = app.create(json!({ "mac": mac, "role": "worker" })).await;
    created["id"].as_i64().unwrap()
}

fn input(url: &str, password: Option<&str>) -> Value {
    json!({ "url": url, "username": USER, "password": password })
}

/// The machine's BMC once `done` holds for it (power is read in the background).
async fn bmc_when(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let bmc = app.get_json(&format!("/api/v1/machines/{id}/bmc")).await;
        if done(&bmc) {
            return bmc;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the BMC never got there: {}", app.get_json(&format!("/api/v1/machines/{id}/bmc")).await);
}

fn reasons(timeline: &Value) -> Vec<String> {
    timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["endpoint"] == "power")
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn a_bmc_is_checked_when_set_and_its_machine_is_powered_on_and_followed_on_its_timeline(app: TestApp) {
    let bmc = emulator(&[
        FakeSystem { uuid: SYSTEM_1, power: "Off", mac: "52:54:00:b0:00:01" },
        FakeSystem { uuid: SYSTEM_2, power: "On", mac: "52:54:00:b0:00:02" },
    ])
    .await;
    let id = machine(&app, "52:54:00:b0:00:01").await;
    let at = format!("/api/v1/machines/{id}/bmc");

    // Two systems behind one BMC: which one is this machine's must be said.
    let res = app.put_json(&at, input(&bmc.url, Some(PASSWORD))).await;
    assert_eq!(res.status(), 400);
    let said = res.text().await.unwrap();
    assert!(said.contains("The BMC lists 2 systems; give this machine's in the URL"), "{said}");
    // A wrong password is refused in words, and nothing is stored.
    let system = format!("{}/redfish/v1/Systems/{SYSTEM_1}", bmc.url);
    let res = app.put_json(&at, input(&system, Some("wrong"))).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("refused the user name or password (HTTP 401)"));
    assert_eq!(app.get(&at).await.status(), 404);

    // The right one: checked, its system and power read, its password sealed and never shown.
    let res = app.put_json(&at, input(&system, Some(PASSWORD))).await;
    assert_eq!(res.status(), 200);
    let set: Value = res.json().await.unwrap();
    assert_eq!(set["system"], format!("/redfish/v1/Systems/{SYSTEM_1}"));
    assert_eq!(set["power"]["state"], "off");
    assert_eq!(set["warnings"][0], "It is reached over plain HTTP: its password crosses the network readable.");
    assert!(!set.to_string().contains(PASSWORD));
    let sealed: String = sqlx::query_scalar("SELECT password FROM machine_bmcs WHERE machine_id = $1")
        .bind(id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(!sealed.contains(PASSWORD));
    // Copied to another machine's row, the sealed password does not open.
    let other = machine(&app, "52:54:00:b0:00:02").await;
    sqlx::query(
        "INSERT INTO machine_bmcs (machine_id, url, username, password, system, updated_at) \
         SELECT $1, url, username, password, system, updated_at FROM machine_bmcs WHERE machine_id = $2",
    )
    .bind(other)
    .bind(id)
    .execute(app.state.db.pool())
    .await
    .unwrap();
    let res = app.post_json(&format!("/api/v1/machines/{other}/power"), json!({ "action": "on" })).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("password cannot be opened"));
    // An update without a password keeps it for the same BMC, never for another.
    assert_eq!(app.put_json(&at, input(&system, None)).await.status(), 200);
    let moved = app.put_json(&at, input("https://10.255.255.1/redfish/v1/Systems/x", None)).await;
    assert_eq!(moved.status(), 400);
    assert!(moved.text().await.unwrap().contains("Give the BMC user's password."));

    // Power on: audited, requested, then followed until the emulator says On (1 to 11 s).
    let res = app.post_json(&format!("/api/v1/machines/{id}/power"), json!({ "action": "on" })).await;
    assert_eq!(res.status(), 202);
    let requested: Value = res.json().await.unwrap();
    assert_eq!(requested["state"], "powering_on");
    let on = bmc_when(&app, id, |b| b["power"]["state"] == "on").await;
    assert_eq!(on["power"]["reason"], "");
    let timeline = app.get_json("/api/v1/boot/timeline/52:54:00:b0:00:01").await;
    assert_eq!(reasons(&timeline), ["power on requested by admin", "power on: on"]);
    let audit = app.get_json("/api/v1/audit?action=machine.power").await;
    assert_eq!(audit["items"][0]["summary"], r#"{"action":"on"}"#, "{audit}");
    assert_eq!(audit["items"][0]["target_name"], "52:54:00:b0:00:01");
    let audit = app.get_json("/api/v1/audit?action=machine.bmc.set").await;
    assert!(!audit.to_string().contains(PASSWORD), "{audit}");

    // Off, then boot from network once: the override and a power-on. This emulator keeps the
    // override "Continuous", so Pangea clears it after the boot, and says so.
    let power_path = format!("/api/v1/machines/{id}/power");
    let act = |action: &'static str| app.post_json(&power_path, json!({ "action": action }));
    assert_eq!(act("force_off").await.status(), 202);
    bmc_when(&app, id, |b| b["power"]["state"] == "off").await;
    assert_eq!(act("network_boot_once").await.status(), 202);
    let mut said = Vec::new();
    for _ in 0..300 {
        said = reasons(&app.get_json("/api/v1/boot/timeline/52:54:00:b0:00:01").await);
        if said.len() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        said[2..],
        [
            "force off requested by admin",
            "force off: off",
            "boot from network once requested by admin",
            "boot from network once: on",
            "the BMC did not clear the network boot override (it said Continuous): Pangea cleared it",
        ]
    );

    // Viewers see BMCs and power, and act on nothing; a role on another cluster acts on none
    // of this machine's.
    app.add_local_user("victor", ConsoleRole::Viewer).await;
    let victor = app.sign_in("victor", "victor-password").await;
    assert_eq!(victor.get(app.at(&at)).send().await.unwrap().status(), 200);
    let res = victor
        .post(app.at(&format!("/api/v1/machines/{id}/power")))
        .json(&json!({"action": "force_off"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    app.add_local_user("tess", None).await;
    app.state.access.bind(&Principal::cli(), "user", "tess", ConsoleRole::Viewer).await.unwrap();
    app.state.access.bind_in(&Principal::cli(), "user", "tess", ConsoleRole::Operator, "elsewhere").await.unwrap();
    let tess = app.sign_in("tess", "tess-password").await;
    let res = tess.put(app.at(&at)).json(&input(&system, Some(PASSWORD))).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let denied = app.get_json("/api/v1/audit?action=machine.power").await;
    assert!(denied["items"].as_array().unwrap().iter().any(|e| e["actor"] == "victor" && e["outcome"] == "denied"));

    // Forgotten: the machine has no BMC any more.
    assert_eq!(app.client.delete(app.at(&at)).send().await.unwrap().status(), 204);
    assert_eq!(app.get(&at).await.status(), 404);
}

/// A stand-in BMC that answers 503 to everything, or never answers at all.
async fn stand_in(busy: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    if busy {
        let answer = || async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy").into_response() };
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(answer)).await.unwrap() });
    } else {
        // Accepts connections and says nothing.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
    }
    url
}

async fn bmcs_that_fail_say_why_and_hold_up_no_other_machine(app: TestApp) {
    // Requests wait up to 20 s, as in production; an action settles within 3 s here.
    let power = app.state.power.clone().with_timeouts(Duration::from_secs(3), pangea::power::redfish::REQUEST_TIMEOUT);
    let admin = Principal::cli();
    let good = emulator(&[FakeSystem { uuid: SYSTEM_1, power: "On", mac: "52:54:00:b1:00:01" }]).await;
    let tls = emulator_with(&[FakeSystem { uuid: SYSTEM_2, power: "On", mac: "52:54:00:b1:00:02" }], true).await;
    let (busy, silent) = (stand_in(true).await, stand_in(false).await);
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}")
    };
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(machine(&app, &format!("52:54:00:b1:01:0{i}")).await);
    }
    let set = |power: &pangea::power::Power, id: i64, url: String, verify_off: bool| {
        let (power, admin) = (power.clone(), admin.clone());
        async move {
            let input = BmcInput {
                url,
                username: USER.into(),
                password: Some(PASSWORD.into()),
                ca_pem: String::new(),
                verify_off,
            };
            power.set_bmc(&admin, id, input).await
        }
    };
    // The silent BMC is still being waited for when every other one has answered: it holds up
    // none of them.
    let waiting = tokio::spawn(set(&power, ids[1], silent.clone(), false));
    let (busy, closed, self_signed, unverified, fine) = tokio::join!(
        set(&power, ids[0], busy, false),
        set(&power, ids[2], closed, false),
        set(&power, ids[3], tls.url.clone(), false),
        set(&power, ids[4], tls.url.clone(), true),
        set(&power, ids[5], good.url.clone(), false),
    );
    assert!(!waiting.is_finished(), "the others were held up by the silent BMC");
    waiting.abort();
    let said = |r: Result<app::power::Bmc, app::error::AppError>| r.unwrap_err().to_string();
    assert!(said(busy).contains("is busy (HTTP 503); Pangea waits"));
    assert!(said(closed).contains("cannot be reached"));
    let refused = said(self_signed);
    assert!(refused.contains("cannot be reached") && refused.contains("certificate"), "{refused}");
    let unverified = unverified.unwrap();
    assert_eq!(unverified.power.state, PowerState::On);
    assert_eq!(
        unverified.warnings[0],
        "Its certificate is not checked: anyone between Pangea and the BMC could read its password."
    );
    assert_eq!(fine.unwrap().power.state, PowerState::On);
    // Its own time limit ends the wait, in words.
    let short = app.state.power.clone().with_timeouts(Duration::from_secs(3), Duration::from_secs(2));
    assert!(said(set(&short, ids[1], silent, false).await).contains("did not answer within 2 s"));

    // A machine that never reaches the state asked for (its BMC stops answering once asked):
    // the timeline says so when the settle time has passed.
    let status = power.act(&admin, ids[5], PowerAction::ForceOff).await.unwrap();
    assert_eq!(status.state, PowerState::PoweringOff);
    drop(good);
    let timeline = "/api/v1/boot/timeline/52:54:00:b1:01:05";
    let mut last = Vec::new();
    for _ in 0..100 {
        last = reasons(&app.get_json(timeline).await);
        if last.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last[0], format!("force off requested by {}", admin.actor()));
    assert!(last[1].starts_with("force off: did not reach off within 3 s"), "{last:?}");
}

/// A stand-in BMC with Redfish sessions, which refuses a third open session as iDRAC does: its
/// sessions made, open now, and deleted.
#[derive(Default)]
struct Sessions {
    made: usize,
    /// The most sessions open at once.
    most_open: usize,
    open: Vec<String>,
    deleted: usize,
    refused: usize,
}

async fn session_capped() -> (String, Arc<Mutex<Sessions>>) {
    use axum::extract::{Request, State};
    let sessions = Arc::new(Mutex::new(Sessions::default()));
    async fn answer(State(sessions): State<Arc<Mutex<Sessions>>>, req: Request) -> axum::response::Response {
        let path = req.uri().path().to_string();
        let token = req.headers().get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut s = sessions.lock().unwrap();
        if path == "/redfish/v1/SessionService/Sessions" && req.method() == axum::http::Method::POST {
            if s.open.len() >= 2 {
                s.refused += 1;
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maximum sessions").into_response();
            }
            s.made += 1;
            let id = format!("s{}", s.made);
            s.open.push(id.clone());
            s.most_open = s.most_open.max(s.open.len());
            let location = format!("/redfish/v1/SessionService/Sessions/{id}");
            return (
                axum::http::StatusCode::CREATED,
                [("x-auth-token", id.as_str()), ("location", location.as_str())],
                "{}",
            )
                .into_response();
        }
        // Basic authentication, as Redfish requires of every service; or a session's token.
        let basic = format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{USER}:{PASSWORD}"))
        );
        let signed_in = req.headers().get("authorization").is_some_and(|v| v.as_bytes() == basic.as_bytes());
        let Some(token) = token.filter(|t| s.open.contains(t)).or(signed_in.then(String::new)) else {
            return axum::http::StatusCode::UNAUTHORIZED.into_response();
        };
        if let Some(id) = path.strip_prefix("/redfish/v1/SessionService/Sessions/") {
            s.open.retain(|open| open != id);
            s.deleted += 1;
            return axum::http::StatusCode::NO_CONTENT.into_response();
        }
        let _ = token;
        match path.as_str() {
            "/redfish/v1/Systems" => {
                axum::Json(json!({ "Members": [{ "@odata.id": "/redfish/v1/Systems/1" }] })).into_response()
            }
            "/redfish/v1/Systems/1" => axum::Json(json!({ "PowerState": "On" })).into_response(),
            _ => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(answer).with_state(sessions.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, sessions)
}

async fn a_bmc_that_caps_its_sessions_at_two_gets_at_most_two_reused_and_deleted_at_the_end(app: TestApp) {
    let (url, sessions) = session_capped().await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let id = machine(&app, &format!("52:54:00:b2:00:0{i}")).await;
        let res = app.put_json(&format!("/api/v1/machines/{id}/bmc"), input(&url, Some(PASSWORD))).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        ids.push(id);
    }
    // Eight machines behind one BMC, checked (with basic authentication: a check opens no
    // session beside those in use), their hardware read in the background, and their power read
    // ten times over, many at once: at most two sessions, made once and reused.
    let power = app.state.power.clone();
    futures::future::join_all((0..10).map(|_| power.refresh_all(pangea::leases::Shard::ALL))).await;
    futures::future::join_all((0..3).map(|_| power.read_hardware_all(pangea::leases::Shard::ALL))).await;
    {
        let s = sessions.lock().unwrap();
        assert!(s.made <= 2 && s.most_open <= 2, "made {}, at most {} open", s.made, s.most_open);
        assert_eq!(s.refused, 0, "Pangea never asked for a third session");
    }
    let on: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM machine_bmcs WHERE power_state = 'on'")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(on, 8);
    // At shutdown, Pangea deletes its sessions.
    power.close().await;
    let s = sessions.lock().unwrap();
    assert!(s.open.is_empty() && s.deleted == s.made, "open {:?}, deleted {}", s.open, s.deleted);
}

/// The emulator's configuration for one system with these NICs and, under one storage
/// controller, these drives (id and size).
fn rack_node(nics: &[&str], drives: &[(&str, u64)]) -> String {
    let nics: Vec<String> = nics.iter().map(|mac| format!("{{'mac': '{mac}', 'ip': '10.0.0.9'}}")).collect();
    let ids: Vec<String> = drives.iter().map(|(id, _)| format!("'{id}'")).collect();
    let drives: Vec<String> = drives
        .iter()
        .map(|(id, size)| {
            format!("{{'Id': '{id}', 'Name': 'Drive {id}', 'CapacityBytes': {size}, 'Protocol': 'SATA'}}")
        })
        .collect();
    format!(
        "SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '{SYSTEM_1}', 'name': 'rack1-node1', 'power_state': 'Off', 'nics': [{}]}}]\n\
         SUSHY_EMULATOR_STORAGE = {{'{SYSTEM_1}': [{{'Id': '1', 'Name': 'Local Storage', 'Drives': [{}]}}]}}\n\
         SUSHY_EMULATOR_DRIVES = {{('{SYSTEM_1}', '1'): [{}]}}",
        nics.join(", "),
        ids.join(", "),
        drives.join(", ")
    )
}

async fn a_machines_hardware_is_read_from_its_bmc_and_a_change_is_drift_until_acknowledged(app: TestApp) {
    const MAC: &str = "52:54:00:b0:01:01";
    let system = [FakeSystem { uuid: SYSTEM_1, power: "Off", mac: MAC }];
    let config = rack_node(&[MAC], &[("disk-0", 480_103_981_056), ("disk-1", 1_920_383_410_176)]);
    let bmc = emulator_configured(&system, false, &config, None).await;
    let id = machine(&app, MAC).await;
    machine(&app, "52:54:00:b0:01:02").await;
    let at = format!("/api/v1/machines/{id}/hardware");
    assert_eq!(app.get(&at).await.status(), 404);
    let url = format!("{}/redfish/v1/Systems/{SYSTEM_1}", bmc.url);
    assert_eq!(app.put_json(&format!("/api/v1/machines/{id}/bmc"), input(&url, Some(PASSWORD))).await.status(), 200);

    // Read once the BMC is set, in the background.
    let mut record = Value::Null;
    for _ in 0..300 {
        let res = app.get(&at).await;
        if res.status() == 200 {
            record = res.json().await.unwrap();
            if record["read_at"] != "" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hardware = &record["hardware"];
    assert_eq!(hardware["manufacturer"], "Sushy Emulator", "{record}");
    assert_eq!(hardware["bmc_firmware"], "1.00");
    assert_eq!(hardware["disks"].as_array().unwrap().len(), 2);
    assert_eq!(hardware["nics"][0]["mac"], MAC);
    assert_eq!(hardware["memory"], Value::Null, "the fake driver tells of no memory");
    assert_eq!(record["changes"], json!([]));
    assert_eq!(record["problem"], "");

    // The list filters by what the BMC told; a machine never read matches no hardware term.
    let app = &app;
    let listed = |search: &'static str| async move {
        let page = app
            .get_json(&format!(
                "/api/v1/machines?search={}",
                url::form_urlencoded::byte_serialize(search.as_bytes()).collect::<String>()
            ))
            .await;
        page["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(listed("disks>=2 and manufacturer~sushy").await, [id]);
    // The list says each machine's power, for those with a BMC.
    let page = app.get_json("/api/v1/machines").await;
    assert_eq!(page["power"][MAC]["state"], "off", "{page}");
    assert_eq!(page["power"].as_object().unwrap().len(), 1);
    assert_eq!(listed("disks>2").await, Vec::<i64>::new());
    assert_eq!(listed("nics=1").await, [id]);
    let res = app.get("/api/v1/machines?search=disks%3E%3Dmany").await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("whole number"));

    // The same BMC after a change: a disk gone, another NIC. Read again, it is drift.
    let port = url::Url::parse(&bmc.url).unwrap().port().unwrap();
    drop(bmc);
    let config = rack_node(&[MAC, "52:54:00:b0:01:99"], &[("disk-0", 480_103_981_056)]);
    let _bmc = emulator_configured(&system, false, &config, Some(port)).await;
    app.state.power.read_hardware_all(pangea::leases::Shard::ALL).await;
    let record = app.get_json(&at).await;
    let changes: Vec<String> = record["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {} → {}",
                c["part"].as_str().unwrap(),
                c["before"].as_str().unwrap(),
                c["after"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            "Disk 1/disk-1: C123, HDD, 1.9 TB, serial 1234570 → absent",
            "NIC 52:54:00:b0:01:99: absent → present (52:54:00:b0:01:99)"
        ]
    );
    assert_eq!(listed("disks=1").await, [id]);
    // A class of machines by hardware follows what the BMC tells.
    let class = app.put_json("/api/v1/machine-classes/two-disks", json!({"query": "disks>=2 and nics>=1"})).await;
    assert_eq!(class.json::<Value>().await.unwrap()["members"], 0);
    let class = app.put_json("/api/v1/machine-classes/one-disk", json!({"query": "disks=1 and nics>=2"})).await;
    assert_eq!(class.json::<Value>().await.unwrap()["members"], 1);
    // The export says what was told, for the machines the search finds.
    let csv = app.get("/api/v1/machines/hardware.csv?search=manufacturer%7Esushy").await.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "mac,hostname,manufacturer,model,serial,bios_version,bmc_firmware,cpus,memory_gib,disks,ssds,nics,read_at,changes"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with(&format!("{MAC},,Sushy Emulator,,,,1.00,,,1,0,2,")) && lines[1].ends_with(",2"),
        "{csv}"
    );
    let timeline = app.get_json(&format!("/api/v1/boot/timeline/{MAC}")).await;
    assert!(reasons(&timeline).iter().any(|r| r.starts_with("hardware changed: Disk 1/disk-1")), "{timeline}");
    // Read again with nothing changed: no new change.
    app.state.power.read_hardware_all(pangea::leases::Shard::ALL).await;
    assert_eq!(app.get_json(&at).await["changes"].as_array().unwrap().len(), 2);

    // A viewer sees it but cannot acknowledge; an operator acknowledges, audited.
    app.add_local_user("vera", ConsoleRole::Viewer).await;
    let vera = app.sign_in("vera", "vera-password").await;
    assert_eq!(vera.get(app.at(&at)).send().await.unwrap().status(), 200);
    let acknowledge = format!("{at}/acknowledge");
    assert_eq!(vera.post(app.at(&acknowledge)).send().await.unwrap().status(), 403);
    let res = app.post_json(&acknowledge, json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["changes"], 2);
    assert_eq!(app.get_json(&at).await["changes"], json!([]));
    let audit = app.get_json("/api/v1/audit?action=machine.hardware.acknowledge").await;
    let outcomes: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"denied") && outcomes.len() == 2, "{audit}");

    // A BMC that stops answering: the last read is kept, and why it failed is said.
    drop(_bmc);
    app.state.power.read_hardware_all(pangea::leases::Shard::ALL).await;
    let record = app.get_json(&at).await;
    assert_eq!(record["hardware"]["disks"].as_array().unwrap().len(), 1);
    assert!(record["problem"].as_str().unwrap().contains("cannot be reached"), "{record}");
}

async fn the_command_line_sets_shows_powers_and_removes_a_bmc(app: TestApp) {
    const MAC: &str = "52:54:00:b0:02:01";
    let bmc = emulator(&[FakeSystem { uuid: SYSTEM_1, power: "Off", mac: MAC }]).await;
    machine(&app, MAC).await;
    let url = format!("{}/redfish/v1/Systems/{SYSTEM_1}", bmc.url);
    let said = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };

    // The password comes from the environment only; a wrong one is refused in words.
    let out = app.cli(&["bmc", "set", MAC, "--url", &url, "--user", USER]);
    assert!(!out.status.success() && said(&out).contains("PANGEA_BMC_PASSWORD"), "{}", said(&out));
    let out = app.cli_with(&["bmc", "set", MAC, "--url", &url, "--user", USER], &[("PANGEA_BMC_PASSWORD", "wrong")]);
    assert!(!out.status.success() && said(&out).contains("refused the user name or password"), "{}", said(&out));

    let out = app.cli_with(&["bmc", "set", MAC, "--url", &url, "--user", USER], &[("PANGEA_BMC_PASSWORD", PASSWORD)]);
    assert!(out.status.success(), "{}", said(&out));
    let text = said(&out);
    assert!(text.contains("power off") && text.contains("warning: It is reached over plain HTTP"), "{text}");
    assert!(text.contains("Sushy Emulator") && text.contains("NICs 1"), "{text}");
    assert!(!text.contains(PASSWORD));

    let out = app.cli(&["bmc", "power", MAC, "sideways"]);
    assert!(!out.status.success() && said(&out).contains("use one of on, graceful_shutdown"), "{}", said(&out));
    let out = app.cli(&["bmc", "power", MAC, "on"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("Asked for power on: powering on.\nNow on."), "{}", said(&out));
    let out = app.cli(&["bmc", "show", MAC]);
    assert!(said(&out).contains("Power:  on"), "{}", said(&out));
    let audit = app.get_json("/api/v1/audit?action=machine.power").await;
    assert!(audit["items"][0]["actor"].as_str().unwrap().ends_with("(command line)"), "{audit}");

    let out = app.cli(&["bmc", "remove", MAC]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(!app.cli(&["bmc", "show", "52:54:00:b0:02:99"]).status.success());
    assert_eq!(app.get(&format!("/api/v1/machines/{}/bmc", machine_id(&app, MAC).await)).await.status(), 404);
}

async fn machine_id(app: &TestApp, mac: &str) -> i64 {
    app.get_json(&format!("/api/v1/machines?search={mac}")).await["items"][0]["id"].as_i64().unwrap()
}

async fn run_when(app: &TestApp, job: &str, mut each: impl AsyncFnMut(&Value) -> bool) -> Value {
    for _ in 0..1200 {
        let run = app.get_json(&format!("/api/v1/power-runs/{job}")).await;
        if each(&run).await {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the power run never got there: {:#}", app.get_json(&format!("/api/v1/power-runs/{job}")).await);
}

fn steps_of(run: &Value) -> Vec<String> {
    run["machines"].as_array().unwrap().iter().map(|m| m["step"].as_str().unwrap().to_string()).collect()
}

async fn a_paced_power_run_keeps_each_racks_budget_and_the_boot_budget_and_pauses_and_cancels(app: TestApp) {
    let uuids: Vec<String> = (1..=6).map(|i| format!("22222222-0000-0000-0000-00000000000{i}")).collect();
    let macs: Vec<String> = (1..=6).map(|i| format!("52:54:00:b0:03:0{i}")).collect();
    let systems: Vec<FakeSystem> =
        uuids.iter().zip(&macs).map(|(uuid, mac)| FakeSystem { uuid, power: "Off", mac }).collect();
    let bmc = emulator(&systems).await;
    app.state.provisioner.record_boots(&app.state.background);
    let boot = app.boot_listener().await;
    let mut ids = Vec::new();
    for (i, (uuid, mac)) in uuids.iter().zip(&macs).enumerate() {
        let rack = if i < 4 { "r1" } else { "r2" };
        let created = app.create(json!({ "mac": mac, "role": "worker", "labels": { "rack": rack, "row": "a" } })).await;
        let id = created["id"].as_i64().unwrap();
        let url = format!("{}/redfish/v1/Systems/{uuid}", bmc.url);
        assert_eq!(
            app.put_json(&format!("/api/v1/machines/{id}/bmc"), input(&url, Some(PASSWORD))).await.status(),
            200
        );
        ids.push(id);
    }
    let no_bmc = machine(&app, "52:54:00:b0:03:99").await;

    // Mistakes are said, and start nothing.
    let pacing = json!({ "group_by": "rack", "per_group": 2, "per_seconds": 4, "booting_at_once": 3 });
    let res = app
        .post_json("/api/v1/power-runs", json!({ "action": "on", "pacing": { "per_group": 2 } , "search": "row=a" }))
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("give both, or neither"));
    let res = app.post_json("/api/v1/power-runs", json!({ "action": "on", "machines": [ids[0], no_bmc] })).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("1 of these machines have no BMC (52:54:00:b0:03:99)"));
    app.add_local_user("vic", ConsoleRole::Viewer).await;
    let vic = app.sign_in("vic", "vic-password").await;
    let res = vic
        .post(app.at("/api/v1/power-runs"))
        .json(&json!({ "action": "on", "search": "row=a" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The plan: two per rack at once, the boot budget (three) holding the rest.
    let plan =
        app.post_json("/api/v1/power-runs/plan", json!({ "action": "on", "search": "row=a", "pacing": pacing })).await;
    assert_eq!(plan.status(), 200);
    let plan: Value = plan.json().await.unwrap();
    let starts: Vec<u64> =
        plan["machines"].as_array().unwrap().iter().map(|m| m["starts_at"].as_u64().unwrap()).collect();
    assert_eq!(starts.iter().filter(|s| **s == 0).count(), 3, "{plan}");
    assert!(plan["notes"][0].as_str().unwrap().contains("boot-network budget sets the pace"), "{plan}");
    let last_note = |plan: &Value| plan["notes"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    assert!(last_note(&plan).contains("not measured yet"), "no boot request yet: {plan}");

    // The run: each machine that powers on is followed until it asks for its boot script (the
    // test plays each machine's iPXE); at no moment do more than three wait between power-on
    // and boot, and no rack gets more than two power-ons in any 4 s.
    let res = app.post_json("/api/v1/power-runs", json!({ "action": "on", "search": "row=a", "pacing": pacing })).await;
    assert_eq!(res.status(), 202);
    let job = res.json::<Value>().await.unwrap()["job"].as_str().unwrap().to_string();
    let mut most_in_flight = 0;
    let run = run_when(&app, &job, async |run: &Value| {
        let steps = steps_of(run);
        most_in_flight = most_in_flight.max(steps.iter().filter(|s| *s == "sent" || *s == "booting").count());
        for m in run["machines"].as_array().unwrap() {
            if m["step"] == "booting" {
                let mac = m["mac"].as_str().unwrap().replace(':', "-");
                reqwest::get(format!("http://{boot}/ipxe?mac={mac}")).await.unwrap();
            }
        }
        run["state"] != "running"
    })
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");
    assert_eq!(steps_of(&run), vec!["done"; 6]);
    assert!(most_in_flight <= 3, "{most_in_flight} machines between power-on and boot at once");
    // The boot listener measured the boots it answered; a plan shows it beside the budgets.
    let plan = app.post_json("/api/v1/power-runs/plan", json!({ "action": "on", "search": "row=a", "pacing": pacing }));
    let plan: Value = plan.await.json().await.unwrap();
    assert!(plan["boot_listener"]["requests"].as_u64().unwrap() >= 1, "{plan}");
    assert!(plan["boot_listener"]["capacity_per_second"].as_u64().unwrap() > 0, "{plan}");
    let note = last_note(&plan);
    assert!(
        note.starts_with("The boot listener answered") && note.ends_with("the budgets bind, not the listener."),
        "{note}"
    );
    assert!(run["largest_burst"].as_u64().unwrap() <= 2, "{run:#}");
    let timeline = app.get_json(&format!("/api/v1/boot/timeline/{}", macs[0])).await;
    assert!(reasons(&timeline).contains(&"power on requested by admin (power run)".to_string()), "{timeline}");
    let audit = app.get_json("/api/v1/audit?action=machine.power.run.end").await;
    assert_eq!(audit["items"][0]["target_id"], job.as_str(), "{audit}");
    assert!(audit["items"][0]["summary"].as_str().unwrap().contains(r#""done":6"#), "{audit}");

    // A slow run (one per rack a minute): paused, resumed, then cancelled; those not asked are
    // skipped, and the rest of the rack was held by its budget, in words.
    let slow = json!({ "group_by": "rack", "per_group": 1, "per_seconds": 60 });
    let res = app
        .post_json("/api/v1/power-runs", json!({ "action": "force_off", "search": "rack=r1", "pacing": slow }))
        .await;
    let job = res.json::<Value>().await.unwrap()["job"].as_str().unwrap().to_string();
    let run =
        run_when(&app, &job, async |run: &Value| steps_of(run).iter().filter(|s| *s == "waiting").count() == 3).await;
    let held = run["machines"].as_array().unwrap().iter().find(|m| m["step"] == "waiting").unwrap();
    assert!(
        held["reason"].as_str().unwrap().starts_with("power budget: 1 of rack=r1 asked in the last 60 s"),
        "{run:#}"
    );
    assert_eq!(app.post_json(&format!("/api/v1/power-runs/{job}/pause"), json!({})).await.status(), 204);
    run_when(&app, &job, async |run: &Value| run["state"] == "paused").await;
    assert_eq!(app.post_json(&format!("/api/v1/power-runs/{job}/resume"), json!({})).await.status(), 204);
    run_when(&app, &job, async |run: &Value| run["state"] == "running").await;
    assert_eq!(vic.post(app.at(&format!("/api/v1/power-runs/{job}/cancel"))).send().await.unwrap().status(), 403);
    assert_eq!(app.post_json(&format!("/api/v1/power-runs/{job}/cancel"), json!({})).await.status(), 204);
    let run = run_when(&app, &job, async |run: &Value| run["state"] != "running").await;
    assert_eq!(run["state"], "cancelled", "{run:#}");
    assert_eq!(steps_of(&run).iter().filter(|s| *s == "skipped").count(), 3, "{run:#}");
    let audit = app.get_json("/api/v1/audit?action=machine.power.run.pause").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}

/// An import's `bmc_*` columns give machines their BMCs: their fields checked line by line in the
/// preview (nothing sent), kept sealed (never in a job's input or the audit log), refused for
/// power actions until the next power refresh has checked them against the BMC, which then reads
/// their hardware or says why it could not.
async fn an_import_brings_bmcs_sealed_and_the_next_refresh_checks_them(app: TestApp) {
    use app::machines::ssr::MachineService;
    use app::machines::{ImportFormat, ImportProgress};
    const ONE: &str = "52:54:00:b0:03:01";
    const TWO: &str = "52:54:00:b0:03:02";
    let bmc = emulator(&[
        FakeSystem { uuid: SYSTEM_1, power: "Off", mac: ONE },
        FakeSystem { uuid: SYSTEM_2, power: "On", mac: TWO },
    ])
    .await;
    let one = format!("{}/redfish/v1/Systems/{SYSTEM_1}", bmc.url);
    let two = format!("{}/redfish/v1/Systems/{SYSTEM_2}", bmc.url);

    // Bad BMC fields are errors on their lines, and nothing is written.
    let bad =
        format!("mac,bmc_url,bmc_username,bmc_password\n{ONE},{one},{USER},\n{TWO},ftp://bmc,{USER},{PASSWORD}\n");
    let res = app.post_json("/api/v1/machines/import", json!({ "text": bad })).await;
    assert_eq!(res.status(), 422);
    let report: Value = res.json().await.unwrap();
    let errors = |i: usize| report["lines"][i]["errors"].to_string();
    assert!(errors(0).contains("BMC: give the BMC user's password"), "{report}");
    assert!(errors(1).contains("BMC: A BMC's URL is https://host"), "{report}");
    assert_eq!(app.count().await, 0);

    // Through the GUI's import job: the text, passwords and all, is sealed in the jobs table.
    let text = format!(
        "mac,hostname,bmc_url,bmc_username,bmc_password,bmc_verify\n\
         {ONE},one,{one},{USER},{PASSWORD},on\n{TWO},two,{two},{USER},not-the-password,\n"
    );
    let cli = Principal::cli();
    let machines = &app.state.machines;
    let job = machines.start_import(&cli, ImportFormat::Csv, text).await.unwrap();
    let mut committed = false;
    for _ in 0..200 {
        match machines.import_progress(&cli, job.clone()).await.unwrap() {
            ImportProgress::Previewed { report } if report.errors == 0 && !committed => {
                machines.commit_import(&cli, job.clone()).await.unwrap();
                committed = true;
            }
            ImportProgress::Committed { .. } => break,
            ImportProgress::Failed { error } => panic!("{error}"),
            ImportProgress::Previewed { report } if !committed => panic!("{report:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(app.count().await, 2);
    let inputs: Vec<String> =
        sqlx::query_scalar("SELECT input FROM jobs").fetch_all(app.state.db.pool()).await.unwrap();
    assert!(!inputs.is_empty() && inputs.iter().all(|i| !i.contains(PASSWORD) && !i.contains("not-the-password")));
    let audit = app.get("/api/v1/audit?action=machine.import").await.text().await.unwrap();
    assert!(audit.contains("\\\"bmcs\\\":2") && !audit.contains(PASSWORD), "{audit}");

    // Not checked yet: it says so, and no power action is sent.
    let (id_one, id_two) = (machine_id(&app, ONE).await, machine_id(&app, TWO).await);
    let shown = app.get_json(&format!("/api/v1/machines/{id_one}/bmc")).await;
    assert_eq!(shown["power"]["state"], "unknown", "{shown}");
    assert!(shown["power"]["reason"].as_str().unwrap().contains("checked at the next power refresh"), "{shown}");
    let res = app.post_json(&format!("/api/v1/machines/{id_one}/power"), json!({ "action": "on" })).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("not checked yet"));

    // The refresh checks each: the right password finds its system, power and hardware; the
    // wrong one is said in words, and stays unchecked.
    app.state.power.refresh_all(pangea::leases::Shard::ALL).await;
    let shown = app.get_json(&format!("/api/v1/machines/{id_one}/bmc")).await;
    assert_eq!(
        (shown["power"]["state"].as_str(), shown["system"].as_str()),
        (Some("off"), Some(&*format!("/redfish/v1/Systems/{SYSTEM_1}"))),
        "{shown}"
    );
    let hardware = app.get_json(&format!("/api/v1/machines/{id_one}/hardware")).await;
    assert_eq!(hardware["hardware"]["manufacturer"], "Sushy Emulator", "{hardware}");
    let shown = app.get_json(&format!("/api/v1/machines/{id_two}/bmc")).await;
    assert_eq!(shown["power"]["state"], "unknown");
    assert!(shown["power"]["reason"].as_str().unwrap().contains("refused the user name or password"), "{shown}");
    assert_eq!(
        app.post_json(&format!("/api/v1/machines/{id_two}/power"), json!({ "action": "on" })).await.status(),
        409
    );
}

/// A discovery asks each BMC of a range for its systems and their MACs, says why an address gave
/// none, marks the systems that are machines already, and offers the others through the import's
/// preview and confirm, with their BMCs; its password never lands in the jobs table.
async fn a_discovery_by_bmc_offers_the_systems_not_yet_machines_through_the_import(app: TestApp) {
    const ONE: &str = "52:54:00:b0:04:01";
    const TWO: &str = "52:54:00:b0:04:02";
    let bmc = emulator(&[
        FakeSystem { uuid: SYSTEM_1, power: "Off", mac: ONE },
        FakeSystem { uuid: SYSTEM_2, power: "On", mac: TWO },
    ])
    .await;
    let port = url::Url::parse(&bmc.url).unwrap().port().unwrap();
    let known = machine(&app, TWO).await;

    // Bad input is refused in words; viewers may not discover.
    let body =
        |addresses: &str, password: &str| json!({ "addresses": addresses, "username": USER, "password": password });
    let res = app.post_json("/api/v1/bmc-discoveries", body("10.0.0.0/16", PASSWORD)).await;
    assert_eq!(res.status(), 400);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["fields"][0]["field"], "addresses");
    assert!(error["message"].as_str().unwrap().contains("at most 1024"), "{error}");
    assert_eq!(app.post_json("/api/v1/bmc-discoveries", body("10.0.0.1", "")).await.status(), 400);
    app.add_local_user("vera", ConsoleRole::Viewer).await;
    let vera = app.sign_in("vera", "vera-password").await;
    let res = vera.post(app.at("/api/v1/bmc-discoveries")).json(&body("10.0.0.1", PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // 127.0.0.1 answers with two systems; 127.0.0.2 and .3 have nothing listening.
    let addresses = format!("http://127.0.0.1-3:{port}");
    let res = app.post_json("/api/v1/bmc-discoveries", body(&addresses, PASSWORD)).await;
    assert_eq!(res.status(), 202);
    let job = res.json::<Value>().await.unwrap()["job"].as_str().unwrap().to_string();
    let mut discovery = Value::Null;
    for _ in 0..300 {
        discovery = app.get_json(&format!("/api/v1/bmc-discoveries/{job}")).await;
        if discovery["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(discovery["state"], "succeeded", "{discovery}");
    assert_eq!((discovery["done"].as_u64(), discovery["total"].as_u64()), (Some(3), Some(3)));
    let found = discovery["found"].as_array().unwrap();
    let by_mac = |mac: &str| found.iter().find(|f| f["mac"] == mac).unwrap_or_else(|| panic!("{discovery}")).clone();
    let one = by_mac(ONE);
    assert_eq!(one["bmc_url"], format!("http://127.0.0.1:{port}/redfish/v1/Systems/{SYSTEM_1}"));
    assert_eq!((one["uuid"].as_str(), one["power"].as_str()), (Some(SYSTEM_1), Some("off")));
    assert_eq!(one["machine"], Value::Null);
    assert_eq!(by_mac(TWO)["machine"], known);
    let missed: Vec<&str> =
        discovery["missed"].as_array().unwrap().iter().map(|m| m["address"].as_str().unwrap()).collect();
    assert_eq!(missed, [format!("http://127.0.0.2:{port}"), format!("http://127.0.0.3:{port}")]);
    assert!(discovery["missed"][0]["reason"].as_str().unwrap().contains("cannot be reached"), "{discovery}");
    let inputs: Vec<String> =
        sqlx::query_scalar("SELECT input FROM jobs").fetch_all(app.state.db.pool()).await.unwrap();
    assert!(inputs.iter().all(|i| !i.contains(PASSWORD)), "sealed: {inputs:?}");

    // Offered through the import: a preview first, then all of it, with the BMC.
    let at = format!("/api/v1/bmc-discoveries/{job}/import");
    let preview: Value = app.post_json(&at, json!({ "dry_run": true })).await.json().await.unwrap();
    assert_eq!((preview["creatable"].as_u64(), preview["committed"].as_bool()), (Some(1), Some(false)), "{preview}");
    assert_eq!(app.count().await, 1, "a preview writes nothing");
    let res = app.post_json(&at, json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["committed"], true);
    let id = machine_id(&app, ONE).await;
    let machine = app.get_json(&format!("/api/v1/machines/{id}")).await;
    assert_eq!(machine["uuid"], SYSTEM_1, "{machine}");
    app.state.power.refresh_all(pangea::leases::Shard::ALL).await;
    let shown = app.get_json(&format!("/api/v1/machines/{id}/bmc")).await;
    assert_eq!(shown["power"]["state"], "off", "{shown}");
    // Nothing is left to offer.
    let res = app.post_json(&at, json!({ "dry_run": true })).await;
    assert_eq!(res.status(), 400, "the discovery's systems are machines now");
}
