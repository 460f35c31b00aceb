//! The provisioner against real Matchbox: the reference data directory is imported with the CLI,
//! and every recorded exchange with Matchbox v0.11 is replayed against Pangea's boot listener
//! over a real socket. Status, content type, body (Ignition as JSON) and the headers that carry
//! meaning must match, except where `DEVIATIONS` says otherwise and why.

use crate::support::TestApp;
use app::access::Principal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

on_both_backends!(
    every_recorded_matchbox_exchange_replays_the_same,
    an_import_with_a_broken_file_writes_nothing,
    changes_reach_the_boot_listener_at_once_and_other_replicas_within_a_poll,
    changes_are_checked_audited_and_refused_to_viewers,
    the_api_explains_what_a_machine_gets_and_refuses_bad_input,
    inventory_machines_boot_by_their_own_profile_or_their_clusters_default,
    templates_are_bounded_and_checked_when_saved_so_none_can_stop_the_boot_listener,
);

/// Where Pangea answers differently from Matchbox on purpose, by recording number.
const DEVIATIONS: &[(&str, &str)] = &[
    ("01", "/ names the server: Pangea answers \"pangea\\n\" where Matchbox answers \"matchbox\\n\""),
    ("27", "/metadata lines are sorted; Matchbox writes them in Go's random map order (28 shows two orders)"),
    ("28", "/metadata lines are sorted; Matchbox writes them in Go's random map order"),
    ("29", "/metadata lines are sorted"),
    ("30", "/metadata lines are sorted"),
    ("40", "/metadata lines are sorted"),
    ("43", "/metadata lines are sorted"),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/matchbox")
}

/// The reference data directory as the recordings saw it: the stored files plus the generated
/// `node-0004` … `node-0999` groups (MAC 52:54:00:00:HH:LL, workers), and the assets folder the
/// recordings fetched. `with_default` false drops the default group (recordings 44–52).
fn reference_data(with_default: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    };
    for sub in ["profiles", "groups", "ignition", "generic"] {
        copy(&fixtures().join("data").join(sub), &dir.path().join(sub));
    }
    for n in 4..1000u32 {
        let id = format!("node-{n:04}");
        let group = json!({
            "id": id, "name": id, "profile": "worker",
            "selector": {"mac": format!("52:54:00:00:{:02x}:{:02x}", n >> 8, n & 0xff)},
            "metadata": {"hostname": id, "role": "worker", "index": n},
        });
        std::fs::write(dir.path().join(format!("groups/{id}.json")), group.to_string()).unwrap();
    }
    if !with_default {
        std::fs::remove_file(dir.path().join("groups/default.json")).unwrap();
    }
    let assets = dir.path().join("assets");
    std::fs::create_dir_all(assets.join("fcos")).unwrap();
    std::fs::write(assets.join("vmlinuz"), "fake-kernel-for-matchbox-anchor\n").unwrap();
    std::fs::write(assets.join("initrd.img"), "fake-initrd-for-matchbox-anchor\n").unwrap();
    std::fs::write(assets.join("blob.bin"), (0..4096).map(|i| (i % 256) as u8).collect::<Vec<u8>>()).unwrap();
    std::fs::write(assets.join("fcos/README.txt"), "Fedora CoreOS images go here.\n").unwrap();
    dir
}

/// Imports `dir` with the command line, as an operator would, and returns its output.
fn import_with_cli(app: &TestApp, dir: &Path) -> String {
    let assets = app.state.provisioner.assets_dir.to_str().unwrap().to_string();
    let out = app.cli(&["provisioner", "import", dir.to_str().unwrap(), "--copy-assets", "--assets-dir", &assets]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "import failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` exactly as written (no client normalises `..` away) over HTTP/1.1.
async fn send_raw(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

/// Real Ignition's own check of a served config. Debian's ignition-validate (2.14) predates the
/// 3.4.0 spec's release and knows it as 3.4.0-experimental, whose schema 3.4.0 froze unchanged:
/// the version is renamed for it, nothing else.
fn ignition_validate(config: &str, what: &str) {
    let Ok(validator) = which("ignition-validate") else {
        println!("ignition-validate is not installed (Debian package ignition): served configs not checked by it");
        return;
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config.replacen(r#""version":"3.4.0""#, r#""version":"3.4.0-experimental""#, 1))
        .unwrap();
    let out = std::process::Command::new(validator).arg(file.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: ignition-validate refuses the served config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or(())
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

async fn replay(addr: std::net::SocketAddr, numbers: std::ops::RangeInclusive<u32>) -> usize {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(fixtures().join("recorded")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut replayed = 0;
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let number: u32 = name[..2].parse().unwrap();
        if !numbers.contains(&number) {
            continue;
        }
        let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let request = &recorded["request"];
        let sent: Vec<(&str, &str)> = request["headers_sent"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k == "Range")
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let method = request["method"].as_str().unwrap();
        let answer = send_raw(addr, method, request["path"].as_str().unwrap(), &sent).await;
        let what = format!("{name} ({method} {})", request["path"]);
        assert_eq!(u64::from(answer.status), recorded["status"].as_u64().unwrap(), "{what}: status");
        assert_eq!(answer.header("content-type"), recorded["content_type"].as_str(), "{what}: content type");
        let deviation = DEVIATIONS.iter().find(|(n, _)| *n == &name[..2]).map(|(_, why)| *why);
        for header in ["Location", "Content-Range", "Accept-Ranges", "Content-Length", "X-Content-Type-Options"] {
            if header == "Content-Length" && deviation.is_some_and(|why| why.contains("names the server")) {
                continue;
            }
            let expected =
                recorded["headers"].as_array().unwrap().iter().find(|h| h[0] == header).map(|h| h[1].as_str().unwrap());
            assert_eq!(answer.header(header), expected, "{what}: {header}");
        }
        let has_last_modified = recorded["headers"].as_array().unwrap().iter().any(|h| h[0] == "Last-Modified");
        assert_eq!(answer.header("Last-Modified").is_some(), has_last_modified, "{what}: Last-Modified");
        let expected_body: Vec<u8> = match (&recorded["body"], recorded.get("body_base64")) {
            (Value::String(s), _) => s.as_bytes().to_vec(),
            (_, Some(Value::String(b64))) => {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
            }
            _ => Vec::new(),
        };
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let expected_text = String::from_utf8_lossy(&expected_body).into_owned();
        match deviation {
            Some(why) if why.contains("sorted") => {
                assert_eq!(sorted_lines(&body), sorted_lines(&expected_text), "{what}: metadata lines");
            }
            Some(_) => assert_eq!(body, "pangea\n", "{what}"),
            None if recorded["content_type"] == "application/json" => {
                let got: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
                let want: Value = serde_json::from_str(&expected_text).unwrap();
                assert_eq!(got, want, "{what}: Ignition");
                if answer.status == 200 {
                    ignition_validate(&body, &what);
                }
            }
            None => assert_eq!(answer.body, expected_body, "{what}: body"),
        }
        replayed += 1;
    }
    replayed
}

async fn every_recorded_matchbox_exchange_replays_the_same(app: TestApp) {
    let data = reference_data(true);
    let report = import_with_cli(&app, data.path());
    assert!(report.contains("3 profiles, 1004 groups, 4 templates"), "{report}");
    assert!(report.contains("edge-dangling-profile.json: names profile \"does-not-exist\""), "{report}");
    app.state.provisioner.refresh().await.unwrap();
    let addr = app.boot_listener().await;
    let main = replay(addr, 1..=43).await + replay(addr, 53..=64).await;
    assert_eq!(main, 55);

    // The second Matchbox instance had no default group.
    let cli = Principal::cli();
    app.state.provisioner.delete_group(&cli, "default").await.unwrap();
    assert_eq!(replay(addr, 44..=52).await, 9);
}

async fn an_import_with_a_broken_file_writes_nothing(app: TestApp) {
    let data = reference_data(true);
    std::fs::write(data.path().join("groups/node-0500.json"), "{\"id\": \"node-0500\",").unwrap();
    std::fs::write(data.path().join("ignition/broken.yaml.tmpl"), "variant: fcos\n{{if .x}}\n").unwrap();
    let out = app.cli(&["provisioner", "import", data.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("error: groups/node-0500.json: not a group: EOF"), "{stdout}");
    assert!(
        stdout.contains("error: ignition/broken.yaml.tmpl: line 2, column 6: unexpected end of template"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 file(s) have errors; nothing was imported"));
    let catalog = app.state.provisioner.catalog(&Principal::cli()).await.unwrap();
    assert!(catalog.groups.is_empty() && catalog.profiles.is_empty() && catalog.templates.is_empty());
}

async fn changes_reach_the_boot_listener_at_once_and_other_replicas_within_a_poll(app: TestApp) {
    use pangea::provisioner::model::{Group, Profile};
    let cli = Principal::cli();
    let p = &app.state.provisioner;
    let profile: Profile = serde_json::from_value(json!({"id": "w", "boot": {"kernel": "/k1"}})).unwrap();
    p.put_profile(&cli, profile).await.unwrap();
    let group: Group =
        serde_json::from_value(json!({"id": "g", "profile": "w", "selector": {"mac": "52-54-00-00-00-07"}})).unwrap();
    p.put_group(&cli, group).await.unwrap();
    let addr = app.boot_listener().await;
    let answer = send_raw(addr, "GET", "/ipxe?mac=52:54:00:00:00:07", &[]).await;
    assert_eq!(String::from_utf8_lossy(&answer.body), "#!ipxe\nkernel /k1\nboot\n");

    // Another replica on the same database: it follows the change within its next poll.
    let replica = app.replica().await;
    replica.state.provisioner.follow_changes(&replica.state.background);
    let changed: Profile = serde_json::from_value(json!({"id": "w", "boot": {"kernel": "/k2"}})).unwrap();
    p.put_profile(&cli, changed).await.unwrap();
    let replica_addr = replica.boot_listener().await;
    let mut body = String::new();
    for _ in 0..40 {
        body = String::from_utf8_lossy(&send_raw(replica_addr, "GET", "/ipxe?mac=52:54:00:00:00:07", &[]).await.body)
            .into_owned();
        if body.contains("/k2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(body, "#!ipxe\nkernel /k2\nboot\n", "the replica serves the change after its poll");
    replica.state.background.stop().await;
}

async fn changes_are_checked_audited_and_refused_to_viewers(app: TestApp) {
    use app::access::{ConsoleRole, Identity};
    use pangea::provisioner::model::{Group, Profile, TemplateFile, TemplateKind};
    let cli = Principal::cli();
    let p = &app.state.provisioner;
    // A group may not name a profile that does not exist.
    let group: Group = serde_json::from_value(json!({"id": "g", "profile": "nope"})).unwrap();
    let err = p.put_group(&cli, group).await.unwrap_err();
    assert!(err.to_string().contains("Profile \"nope\" does not exist"), "{err}");
    // A template that does not parse is refused with its line and column.
    let bad = TemplateFile { kind: TemplateKind::Generic, id: "x.tmpl".into(), content: "a\n{{.x".into() };
    let err = p.put_template(&cli, bad).await.unwrap_err();
    assert!(err.to_string().contains("line 2, column 3: unclosed action"), "{err}");
    assert_eq!(err.status(), 400);

    let template = TemplateFile { kind: TemplateKind::Generic, id: "x.tmpl".into(), content: "a={{.a}}\n".into() };
    p.put_template(&cli, template.clone()).await.unwrap();
    let profile: Profile = serde_json::from_value(json!({"id": "w", "generic_id": "x.tmpl"})).unwrap();
    p.put_profile(&cli, profile).await.unwrap();
    let group = json!({"id": "g", "profile": "w", "metadata": {"a": "1"}});
    p.put_group(&cli, serde_json::from_value(group).unwrap()).await.unwrap();
    // Deletes that would leave something dangling are refused with the names.
    let err = p.delete_profile(&cli, "w").await.unwrap_err();
    assert_eq!(err.status(), 409);
    assert!(err.to_string().contains("used by group g"), "{err}");
    let err = p.delete_template(&cli, TemplateKind::Generic, "x.tmpl").await.unwrap_err();
    assert!(err.to_string().contains("used by profile(s) w"), "{err}");

    // The audit log keeps the template's digest before and after, never its text.
    let changed = TemplateFile { content: "a={{.a}}!\n".into(), ..template };
    p.put_template(&cli, changed).await.unwrap();
    let records = pangea::audit::latest(&app.state.db, 20).await.unwrap();
    let put = records.iter().find(|r| r.action == "provisioning.template.put").unwrap();
    let summary: Value = serde_json::from_str(&put.summary).unwrap();
    assert_eq!(summary["sha256_before"], sha256_hex("a={{.a}}\n"));
    assert_eq!(summary["sha256_after"], sha256_hex("a={{.a}}!\n"));
    assert!(!put.summary.contains("{{.a}}"));

    // Viewers read but do not change; the refusal is audited.
    let viewer = Principal {
        identity: Identity::Local { user_id: 99, username: "vic".into() },
        role: Some(ConsoleRole::Viewer),
        cluster_roles: Default::default(),
        ip: None,
        user_agent: None,
    };
    assert!(p.catalog(&viewer).await.is_ok());
    let err = p.delete_group(&viewer, "g").await.unwrap_err();
    assert_eq!(err.status(), 403);
    let records = pangea::audit::latest(&app.state.db, 5).await.unwrap();
    assert!(
        records.iter().any(|r| r.action == "provisioning.group.delete" && r.outcome == "denied" && r.actor == "vic")
    );
}

async fn message(res: reqwest::Response) -> String {
    res.json::<Value>().await.unwrap()["message"].as_str().unwrap().to_string()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn the_api_explains_what_a_machine_gets_and_refuses_bad_input(app: TestApp) {
    let data = reference_data(true);
    import_with_cli(&app, data.path());
    app.state.provisioner.refresh().await.unwrap();
    let out = app.cli(&["token", "create", "--name", "automation", "--role", "operator"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let api = |method: reqwest::Method, path: &str| {
        reqwest::Client::new().request(method, app.at(&format!("/api/v1/provisioning{path}"))).bearer_auth(&token)
    };

    let res =
        api(reqwest::Method::GET, "/explain?query=mac%3D52-54-00-00-00-01%26os%3Dinstalled").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let why: Value = res.json().await.unwrap();
    assert_eq!(why["labels"]["mac"], "52:54:00:00:00:01");
    assert_eq!(why["group"], "node-0001-installed");
    assert_eq!(why["profile"]["id"], "controller");
    let candidates = why["candidates"].as_array().unwrap();
    assert_eq!(candidates[0]["group"], "node-0001-installed");
    assert!(
        candidates
            .iter()
            .any(|c| c["group"] == "node-0001" && c["reason"].as_str().unwrap().contains("node-0001-installed wins"))
    );
    assert!(candidates.iter().any(|c| c["group"] == "default"));
    assert!(why["ipxe"]["body"].as_str().unwrap().starts_with("#!ipxe\nkernel /assets/vmlinuz"));
    assert!(why["ignition"]["body"].as_str().unwrap().contains("stage%3Dinstalled"));
    let dangling: Value =
        api(reqwest::Method::GET, "/explain?query=mac%3D52:54:00:00:ff:02").send().await.unwrap().json().await.unwrap();
    assert_eq!(dangling["group"], "edge-dangling-profile");
    assert!(dangling["ipxe"]["missing"].as_str().unwrap().contains("profile does-not-exist, which does not exist"));
    assert!(dangling["metadata"]["body"].as_str().unwrap().contains("HOSTNAME=ghost"));

    // Bad input gets a 4xx that says what to fix, and nothing is stored.
    let bad_mac = api(reqwest::Method::PUT, "/groups/g1")
        .json(&json!({"profile": "worker", "selector": {"mac": "52:54:zz"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_mac.status(), 400);
    assert!(message(bad_mac).await.contains("\"52:54:zz\" is not a MAC address"));
    let bad_template = api(reqwest::Method::PUT, "/templates/ignition/x.ign").json(&json!({"content": "{\"ignition\": {\"version\": \"3.4.0\"}, \"storage\": {\"files\": [{\"path\": \"x\"}]}}"})).send().await.unwrap();
    assert_eq!(bad_template.status(), 400);
    assert!(message(bad_template).await.contains("storage.files[0].path: \"x\" is not an absolute path"));
    let other_id = api(reqwest::Method::PUT, "/profiles/a").json(&json!({"id": "b"})).send().await.unwrap();
    assert_eq!(other_id.status(), 400);
    let oversized = api(reqwest::Method::PUT, "/templates/generic/big")
        .json(&json!({"content": "x".repeat(9 * 1024 * 1024)}))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    let broken = api(reqwest::Method::POST, "/import")
        .json(&json!({"files": {"groups/a.json": "{", "generic/ok": "fine"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 422);
    let outcome: Value = broken.json().await.unwrap();
    assert_eq!(outcome["committed"], false);
    assert_eq!(outcome["errors"][0]["file"], "groups/a.json");
    let catalog = app.state.provisioner.catalog(&Principal::cli()).await.unwrap();
    assert!(catalog.groups.iter().all(|g| g.id != "g1" && g.id != "a"));
    assert!(catalog.templates.iter().all(|t| t.id != "x.ign" && t.id != "big" && t.id != "ok"));

    // What the API exports imports back the same.
    let files: std::collections::BTreeMap<String, String> =
        api(reqwest::Method::GET, "/export").send().await.unwrap().json().await.unwrap();
    assert_eq!(files.len(), 3 + 1004 + 4);
    let again =
        api(reqwest::Method::POST, "/import").json(&json!({"files": files, "dry_run": true})).send().await.unwrap();
    assert_eq!(again.status(), 200);
    let outcome: Value = again.json().await.unwrap();
    assert_eq!(
        (outcome["profiles"].as_u64(), outcome["groups"].as_u64(), outcome["templates"].as_u64()),
        (Some(3), Some(1004), Some(4))
    );
}

async fn inventory_machines_boot_by_their_own_profile_or_their_clusters_default(app: TestApp) {
    use app::machines::MachineInput;
    use app::machines::ssr::MachineService;
    use app::provisioning::DefaultProfile;
    use pangea::provisioner::model::{Profile, TemplateFile, TemplateKind};
    let cli = Principal::cli();
    let p = &app.state.provisioner;
    let template = TemplateFile {
        kind: TemplateKind::Generic,
        id: "env".into(),
        content: "HOST={{.hostname}} RACK={{.labels.rack}} CLUSTER={{.cluster}}\n".into(),
    };
    p.put_template(&cli, template).await.unwrap();
    for id in ["prod-worker", "special"] {
        let profile: Profile =
            serde_json::from_value(json!({"id": id, "boot": {"kernel": format!("/assets/{id}")}, "generic_id": "env"}))
                .unwrap();
        p.put_profile(&cli, profile).await.unwrap();
    }
    let machine = |mac: &str, host: &str| MachineInput {
        mac: mac.into(),
        hostname: Some(host.into()),
        role: Some("worker".into()),
        cluster: Some("prod".into()),
        labels: [("rack".to_string(), "r7".to_string())].into(),
        ..Default::default()
    };
    let first = app.state.machines.create(&cli, machine("52-54-00-00-10-01", "w1.example.com")).await.unwrap();
    app.state.machines.create(&cli, machine("52:54:00:00:10:02", "w2.example.com")).await.unwrap();
    let addr = app.boot_listener().await;
    let get = |path: &'static str| async move { send_raw(addr, "GET", path, &[]).await };
    assert_eq!(get("/ipxe?mac=52:54:00:00:10:01").await.status, 404, "no profile yet: Matchbox's 404");

    // A default per cluster and role boots every worker of the cluster.
    p.set_default(
        &cli,
        DefaultProfile { cluster: "prod".into(), role: "worker".into(), profile: "prod-worker".into() },
    )
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&get("/ipxe?mac=52:54:00:00:10:02").await.body),
        "#!ipxe\nkernel /assets/prod-worker\nboot\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&get("/generic?mac=52:54:00:00:10:01").await.body),
        "HOST=w1.example.com RACK=r7 CLUSTER=prod\n"
    );
    // A machine's own profile beats the default.
    p.set_machine_profile(&cli, "52-54-00-00-10-01", "special").await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&get("/ipxe?mac=52:54:00:00:10:01").await.body),
        "#!ipxe\nkernel /assets/special\nboot\n"
    );
    // A change to the machine reaches its templates (machine writes move the catalog version).
    let mut changed = machine("52:54:00:00:10:01", "renamed.example.com");
    changed.labels.clear();
    changed.labels.insert("rack".into(), "r9".into());
    app.state.machines.update(&cli, first.id, changed).await.unwrap();
    assert!(p.refresh().await.unwrap(), "the machine change moved the catalog version");
    assert_eq!(
        String::from_utf8_lossy(&get("/generic?mac=52:54:00:00:10:01").await.body),
        "HOST=renamed.example.com RACK=r9 CLUSTER=prod\n"
    );
    // A hand-written group with the same selectors wins; one with more selectors wins too.
    let group = serde_json::from_value(
        json!({"id": "pinned", "profile": "prod-worker", "selector": {"mac": "52:54:00:00:10:01"}}),
    )
    .unwrap();
    p.put_group(&cli, group).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&get("/ipxe?mac=52:54:00:00:10:01").await.body),
        "#!ipxe\nkernel /assets/prod-worker\nboot\n"
    );
    let why = p.explain(&cli, "mac=52:54:00:00:10:01").await.unwrap();
    assert_eq!(why.group.as_deref(), Some("pinned"));
    assert!(
        why.candidates.iter().any(|c| c.group == "~inventory:52:54:00:00:10:01" && c.reason.contains("pinned wins"))
    );
    // A profile something still boots by cannot be deleted; the refusal names the users.
    let err = p.delete_profile(&cli, "prod-worker").await.unwrap_err();
    assert!(
        err.to_string().contains("group pinned") && err.to_string().contains("the default for workers in cluster prod"),
        "{err}"
    );
    let err = p.set_machine_profile(&cli, "52:54:00:00:10:02", "nope").await.unwrap_err();
    assert!(err.to_string().contains("Profile \"nope\" does not exist"), "{err}");
    let err = p.set_machine_profile(&cli, "52:54:zz", "special").await.unwrap_err();
    assert_eq!(err.status(), 400);
    let records = pangea::audit::latest(&app.state.db, 30).await.unwrap();
    assert!(records.iter().any(|r| r.action == "provisioning.default.set" && r.outcome == "success"));
    assert!(
        records.iter().any(|r| r.action == "provisioning.machine_profile.set" && r.target_id == "52:54:00:00:10:01")
    );
}

async fn templates_are_bounded_and_checked_when_saved_so_none_can_stop_the_boot_listener(app: TestApp) {
    use pangea::provisioner::model::{Group, Profile, TemplateFile, TemplateKind};
    let out = app.cli(&["token", "create", "--name", "automation", "--role", "operator"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let put = |kind: &str, id: &str, content: String| {
        reqwest::Client::new()
            .put(app.at(&format!("/api/v1/provisioning/templates/{kind}/{id}")))
            .bearer_auth(&token)
            .json(&json!({ "content": content }))
            .send()
    };

    // Each of these stopped the process at its first boot request; now saving refuses them,
    // saying where and why.
    let mut laughs = String::from("variant: fcos\nversion: 1.5.0\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = format!("*a{}", i - 1);
        laughs.push_str(&format!("a{i}: &a{i} [{}]\n", [p.as_str(); 10].join(", ")));
    }
    let refused = [
        (
            "generic",
            "loop",
            "ok\n{{range 1000000000000000}}x{{end}}".to_string(),
            "line 2, column 9: stopped after 1000000 steps",
        ),
        (
            "generic",
            "wide",
            "{{printf \"%099999999999999d\" 1}}".to_string(),
            "width or precision 99999999999999 is over",
        ),
        ("ignition", "laughs.yaml", laughs, "more than 200000 values once its aliases are expanded"),
        ("generic", "deep", "{{if 1}}".repeat(150) + &"{{end}}".repeat(150), "nest more than 100 deep"),
    ];
    for (kind, id, content, why) in refused {
        let res = put(kind, id, content).await.unwrap();
        assert_eq!(res.status(), 400, "{id}");
        let said = message(res).await;
        assert!(said.contains(why), "{id}: {said}");
    }

    // A template is also rendered as each group that uses it would get it.
    let cli = Principal::cli();
    let p = &app.state.provisioner;
    p.put_template(
        &cli,
        TemplateFile { kind: TemplateKind::Generic, id: "env".into(), content: "HOST={{.hostname}}".into() },
    )
    .await
    .unwrap();
    let profile: Profile = serde_json::from_value(json!({"id": "env", "generic_id": "env"})).unwrap();
    p.put_profile(&cli, profile).await.unwrap();
    let group: Group = serde_json::from_value(
        json!({"id": "rack-7", "profile": "env", "selector": {"mac": "52:54:00:00:aa:01"}, "metadata": {"hostname": "h7"}}),
    )
    .unwrap();
    p.put_group(&cli, group).await.unwrap();
    let res = put("generic", "env", "HOST={{.hostname}} RACK={{.rack}}".into()).await.unwrap();
    assert_eq!(res.status(), 400);
    let said = message(res).await;
    assert!(said.contains("for group rack-7: line 1, column 27: map has no entry for key \"rack\""), "{said}");
    let addr = app.boot_listener().await;
    let generic = send_raw(addr, "GET", "/generic?mac=52:54:00:00:aa:01", &[]).await;
    assert_eq!((generic.status, String::from_utf8_lossy(&generic.body).into_owned()), (200, "HOST=h7".into()));

    // A template stored before these checks (written here past the service) renders within its
    // limits at boot: a clear miss for that machine, and the listener answers the next request.
    sqlx::query("UPDATE provisioning_templates SET content = $1 WHERE kind = 'generic' AND id = 'env'")
        .bind("{{range 1000000000000000}}x{{end}}")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE provisioning_version SET version = version + 1 WHERE id = 1")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    p.refresh().await.unwrap();
    let stopped = send_raw(addr, "GET", "/generic?mac=52:54:00:00:aa:01", &[]).await;
    assert_eq!(stopped.status, 404, "{}", String::from_utf8_lossy(&stopped.body));
    let ipxe = send_raw(addr, "GET", "/ipxe?mac=52:54:00:00:aa:01", &[]).await;
    assert_eq!(ipxe.status, 200);
    let why = p.explain(&cli, "mac=52:54:00:00:aa:01").await.unwrap();
    assert!(why.generic.missing.unwrap_or_default().contains("stopped after 1000000 steps"));
}
