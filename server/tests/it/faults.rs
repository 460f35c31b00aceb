//! "Why didn't it boot?": the faults a machine meets on its way from power-on to Ready, each
//! injected into one creation, and the words Pangea shows for each machine, within a bounded
//! time. The machines are played by the requests their firmware, installer and Ignition send,
//! each from its own loopback address (127.0.0.N); their BMCs are sushy-tools' emulator. A real
//! VM meeting a fault (a config its Ignition cannot read) is in `netboot.rs`; a kubelet
//! certificate refused on a real API server is in `creation.rs`.

use crate::support::TestApp;
use crate::support::bmc::{FakeSystem, PASSWORD, USER, emulator};
use app::access::Principal;
use pangea::creation::Pace;
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(each_fault_on_the_way_to_ready_is_named_in_words);

/// A machine, played from its own address.
struct Played {
    mac: &'static str,
    client: reqwest::Client,
    boot: String,
}

impl Played {
    fn new(mac: &'static str, n: u8, boot: std::net::SocketAddr) -> Played {
        let address = std::net::IpAddr::from([127, 0, 0, n]);
        let client = reqwest::Client::builder().local_address(address).build().unwrap();
        Played { mac, client, boot: format!("http://{boot}") }
    }

    /// `path` of the boot listener (the configs name its default URL, here the test's).
    async fn get(&self, path: &str, accept: Option<&str>) -> reqwest::Response {
        let url = format!("{}{}", self.boot, path.replace("http://127.0.0.1:8080", ""));
        let mut request = self.client.get(url);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send().await.unwrap()
    }

    /// Its firmware's iPXE asks for its script, saying which architecture it was built for.
    async fn ipxe(&self, arch: &str) -> reqwest::Response {
        self.get(&format!("/ipxe?mac={}&arch={arch}", self.mac.replace(':', "-")), None).await
    }

    /// Its live system's Ignition fetches its install config; the installer script in it.
    async fn install_config(&self) -> String {
        let config: Value = self.get(&format!("/ignition?mac={}", self.mac), None).await.json().await.unwrap();
        crate::creation::ignition_file(&config, "/opt/installer").unwrap()
    }
}

/// A port bound and not listening: connecting to it is refused for as long as it is held.
fn held(at: std::net::SocketAddr) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // The emulator's connections may linger in TIME_WAIT on its port.
    socket.set_reuseaddr(true).unwrap();
    socket.bind(at).unwrap();
    socket
}

/// The word of the installer script that holds `needle` (its words are single-quoted).
fn word(script: &str, needle: &str) -> String {
    script.split('\'').find(|w| w.contains(needle)).unwrap().to_string()
}

const MACHINES: [(&str, &str); 7] = [
    ("52:54:00:00:0c:01", "cp-1"),
    ("52:54:00:00:0c:02", "w-dhcp"),
    ("52:54:00:00:0c:03", "w-bmc"),
    ("52:54:00:00:0c:04", "w-arch"),
    ("52:54:00:00:0c:05", "w-asset"),
    ("52:54:00:00:0c:06", "w-ignition"),
    ("52:54:00:00:0c:07", "w-disk"),
];

async fn each_fault_on_the_way_to_ready_is_named_in_words(app: TestApp) {
    app.state.provisioner.record_boots(&app.state.background);
    let boot = app.boot_listener().await;
    let mut ids = Vec::new();
    for (mac, name) in MACHINES {
        let created = app.create(json!({ "mac": mac, "hostname": name })).await;
        ids.push(created["id"].as_i64().unwrap());
    }
    // w-dhcp's BMC answers and powers it on; w-bmc's answered when it was set, and then stops.
    let live =
        emulator(&[FakeSystem { uuid: "22222222-0000-0000-0000-000000000002", power: "Off", mac: MACHINES[1].0 }])
            .await;
    let dead =
        emulator(&[FakeSystem { uuid: "22222222-0000-0000-0000-000000000003", power: "Off", mac: MACHINES[2].0 }])
            .await;
    for (id, url) in [(ids[1], &live.url), (ids[2], &dead.url)] {
        let input = json!({ "url": url, "username": USER, "password": PASSWORD });
        let set = app.client.put(app.at(&format!("/api/v1/machines/{id}/bmc"))).json(&input).send().await.unwrap();
        assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
    }
    // Its port stays taken, listening to nothing: connections to it are refused, and no other
    // test's server can take it meanwhile.
    let dead_at: std::net::SocketAddr = dead.url.trim_start_matches("http://").parse().unwrap();
    drop(dead);
    let _dead_port = held(dead_at);
    // Nothing listens where the API server should be.
    let api = held("127.0.0.1:0".parse().unwrap());
    let closed = api.local_addr().unwrap().port();
    let workers: Vec<String> = MACHINES[1..].iter().map(|(mac, _)| format!("\"{mac}\"")).collect();
    let template = format!(
        "version: pangea.dev/v1
name: faults
kubernetes: v1.36.2
os: flatcar
controllers:
  machines: [\"{}\"]
workers:
  machines: [{}]
api_server:
  name: faults.example.test
  address: 127.0.0.1
  port: {closed}
",
        MACHINES[0].0,
        workers.join(", ")
    );
    let pace =
        Pace { tick: Duration::from_millis(200), stall: Duration::from_secs(1), deadline: Duration::from_secs(600) };
    let creation = (*app.state.creation).clone().with_pace(pace);
    let admin = Principal::cli();
    let (created, _) = creation.create(&admin, &template).await.unwrap();
    assert!(created);

    let played: Vec<Played> = MACHINES.iter().zip(11..).map(|((mac, _), n)| Played::new(mac, n, boot)).collect();
    // cp-1 installs and fetches its credentials, and its kubelet cannot reach the API server.
    let cp = &played[0];
    assert_eq!(cp.ipxe("i386").await.status(), 200);
    let installer = cp.install_config().await;
    crate::creation::recorded(&app, cp.mac, "/ignition").await;
    let installed: Value = cp.get(&word(&installer, "os=installed"), None).await.json().await.unwrap();
    for file in installed["storage"]["files"].as_array().unwrap() {
        let source = file["contents"]["source"].as_str().unwrap_or_default();
        if source.contains("/cluster-secrets/") {
            assert_eq!(cp.get(source, None).await.status(), 200, "{source}");
        }
    }
    // A machine nobody entered asks to boot (w-dhcp's MAC, written wrong, would look like this).
    let stranger = Played::new("52:54:00:00:0c:99", 99, boot);
    assert_eq!(stranger.ipxe("i386").await.status(), 404);
    // w-arch's iPXE was built for another architecture.
    assert_eq!(played[3].ipxe("arm64").await.status(), 200);
    // w-asset's kernel is not in Pangea's assets.
    assert_eq!(played[4].ipxe("i386").await.status(), 200);
    let kernel = played[4].get("/assets/flatcar/current/flatcar_production_pxe.vmlinuz", None).await;
    assert_eq!(kernel.status(), 404);
    // w-ignition's Ignition reads spec 3.2.0 at most.
    assert_eq!(played[5].ipxe("i386").await.status(), 200);
    let old = "application/vnd.coreos.ignition+json;version=3.2.0, */*;q=0.1";
    assert_eq!(played[5].get(&format!("/ignition?mac={}", played[5].mac), Some(old)).await.status(), 200);
    // w-disk has no /dev/sda: its installer says so, with its report token.
    assert_eq!(played[6].ipxe("i386").await.status(), 200);
    let installer = played[6].install_config().await;
    let report = format!("{}install-disk-missing", word(&installer, "stage=failed"));
    assert_eq!(played[6].get(&report, None).await.status(), 200);

    let expected = |closed: u16| -> Vec<(&'static str, String)> {
        vec![
            (
                "cp-1",
                format!(
                    "cp-1 fetched its credentials and is joining; it has not joined the cluster: check that it can \
                     reach 127.0.0.1:{closed}"
                ),
            ),
            (
                "w-dhcp",
                "w-dhcp has not asked to boot yet; check its boot order and that DHCP on its network points it at \
                 Pangea; machines Pangea does not know asked to boot meanwhile (52:54:00:00:0c:99): is w-dhcp's MAC \
                 52:54:00:00:0c:02 right?"
                    .into(),
            ),
            ("w-bmc", "w-bmc could not be powered on through its BMC: ".into()),
            (
                "w-arch",
                "; its iPXE says it is an arm64 machine, and the cluster's OS images are for x86-64: a wrong \
                 architecture"
                    .into(),
            ),
            ("w-asset", "/assets/flatcar/current/flatcar_production_pxe.vmlinuz".into()),
            (
                "w-ignition",
                "its Ignition reads config spec 3.2.0 at most, and this config is 3.4.0: it will refuse the config"
                    .into(),
            ),
            (
                "w-disk",
                "the machine reported stage=failed: install-disk-missing (it has no disk /dev/sda: set install_disk \
                 to a disk it has)"
                    .into(),
            ),
        ]
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let said = loop {
        let now = creation.creation(&admin, "faults").await.unwrap();
        let said: Vec<(String, String)> = now.machines.iter().map(|m| (m.name.clone(), m.waiting.clone())).collect();
        let all = expected(closed)
            .iter()
            .all(|(name, words)| said.iter().any(|(n, w)| n == name && w.contains(words.as_str())));
        if all {
            break said;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every fault was named: {said:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let of = |name: &str| said.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(of("w-asset").starts_with("w-asset failed"), "{}", of("w-asset"));
    assert!(of("w-ignition").starts_with("w-ignition failed"), "{}", of("w-ignition"));
    assert!(of("w-bmc").contains("cannot be reached"), "{}", of("w-bmc"));
    // The timeline of each says the same, at the request that went wrong.
    let timeline = app.get_json("/api/v1/boot/timeline/52:54:00:00:0c:06").await;
    let failed = timeline["events"].as_array().unwrap().iter().find(|e| e["endpoint"] == "/ignition").unwrap();
    assert!(failed["reason"].as_str().unwrap().contains("its Ignition reads config spec 3.2.0 at most"), "{failed}");
    let timeline = app.get_json("/api/v1/boot/timeline/52:54:00:00:0c:05").await;
    assert!(
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == 404 && e["endpoint"] == "/assets/flatcar/current/flatcar_production_pxe.vmlinuz"),
        "{timeline:#}"
    );
    let step = creation.creation(&admin, "faults").await.unwrap().step;
    assert_eq!(step, format!("waiting for the control plane at 127.0.0.1:{closed}"));
    creation.destroy(&admin, "faults", "faults").await.unwrap();
}
