//! A real network boot from Pangea, on both databases: QEMU's iPXE ROM fetches `/boot.ipxe`, its
//! kernel and initrd from `/assets`, and real Ignition (Debian's 2.14) fetches `/ignition` and
//! writes the files; the guest reads the file back and reports its digest to `/metadata`.
//! The guest's network reaches nothing but the boot listener (`.ci/netboot/boot-vm.sh`).
//!
//! The kit (QEMU, kernel, initrd) is built by `.ci/netboot/setup.sh` into
//! `~/.cache/pangea-netboot`. Without it the test says so in one line and passes, unless
//! `PANGEA_NETBOOT_REQUIRED=1` (as in CI), where a missing kit fails it.

use crate::support;

use crate::support::{Backend, TestApp};
use app::access::Principal;
use serde_json::{Value, json};
use sha2::Digest;
use std::path::PathBuf;
use std::time::Duration;

on_both_backends_with_own_app!(
    a_machine_boots_from_pangea_and_its_timeline_shows_every_step,
    a_vm_pangea_powers_on_through_redfish_boots_from_the_network,
);

fn kit() -> Option<PathBuf> {
    let cache = std::env::var_os("PANGEA_NETBOOT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pangea-netboot"));
    if cache.join("assets/initrd.img").is_file() && cache.join("qemu/usr/bin/qemu-system-x86_64").is_file() {
        return Some(cache);
    }
    assert!(
        std::env::var("PANGEA_NETBOOT_REQUIRED").as_deref() != Ok("1"),
        "PANGEA_NETBOOT_REQUIRED=1 but there is no netboot kit in {}: run .ci/netboot/setup.sh",
        cache.display()
    );
    println!("SKIPPED: no netboot kit in {} (run .ci/netboot/setup.sh to boot a real VM)", cache.display());
    None
}

/// Boots a VM with this MAC and UUID; the boot-vm.sh exit status and its output.
async fn boot_vm(port: u16, mac: &str, uuid: &str, log: &std::path::Path) -> (i32, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/netboot/boot-vm.sh");
    let args = [port.to_string(), mac.into(), uuid.into(), log.to_str().unwrap().into(), "150".into()];
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("bash").arg(script).args(args).output())
        .await
        .unwrap()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The profile `proof`: the kit's kernel and initrd, and an Ignition config whose file the guest
/// reads back and reports to `/metadata` (see .ci/netboot/init), for a listener on `port`.
async fn proof_profile(app: &TestApp, port: u16) {
    let cli = Principal::cli();
    let p = &app.state.provisioner;
    use pangea::provisioner::model::{Profile, TemplateFile, TemplateKind};
    // The guest's init presents the report token this config writes (see .ci/netboot/init).
    let butane = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/pangea-proof\n      mode: 0644\n      contents:\n        inline: |\n          machine {{.mac}}\n          uuid {{.uuid}}\n    - path: /etc/pangea/report-token\n      mode: 0600\n      contents:\n        inline: \"{{.report_token}}\"\n";
    p.put_template(
        &cli,
        TemplateFile { kind: TemplateKind::Ignition, id: "proof.yaml".into(), content: butane.into() },
    )
    .await
    .unwrap();
    let args = format!(
        "initrd=initrd.img ignition.config.url=http://10.0.2.100:{port}/ignition?uuid=${{uuid}}&mac=${{mac:hexhyp}} pangea.proof=/etc/pangea-proof console=ttyS0"
    );
    let profile: Profile = serde_json::from_value(json!({
        "id": "proof", "ignition_id": "proof.yaml",
        "boot": {"kernel": "/assets/vmlinuz", "initrd": ["/assets/initrd.img"], "args": [args]},
    }))
    .unwrap();
    p.put_profile(&cli, profile).await.unwrap();
}

/// sushy-tools' libvirt-driven emulator venv, when `.ci/netboot/libvirt-up.sh` has made it and
/// libvirt answers; else the test says so in one line (and fails under PANGEA_NETBOOT_REQUIRED=1).
fn libvirt() -> Option<PathBuf> {
    let venv = std::env::var_os("PANGEA_SUSHY_LIBVIRT_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pangea-sushy-libvirt")
    });
    let answers = std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all"])
        .output()
        .is_ok_and(|o| o.status.success());
    if venv.join("bin/sushy-emulator").is_file() && answers {
        return Some(venv);
    }
    assert!(
        std::env::var("PANGEA_NETBOOT_REQUIRED").as_deref() != Ok("1"),
        "PANGEA_NETBOOT_REQUIRED=1 but libvirt or the emulator venv {} is missing: run .ci/netboot/libvirt-up.sh",
        venv.display()
    );
    println!("SKIPPED: no libvirt or no emulator venv in {} (run .ci/netboot/libvirt-up.sh)", venv.display());
    None
}

/// A libvirt domain, removed when dropped.
struct Domain(String);

impl Drop for Domain {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/netboot/libvirt-vm.sh");
        let _ = std::process::Command::new("bash").arg(script).args(["undefine", &self.0]).output();
    }
}

fn endpoints(timeline: &Value) -> Vec<String> {
    timeline["events"].as_array().unwrap().iter().map(|e| e["endpoint"].as_str().unwrap().to_string()).collect()
}

fn steps(timeline: &Value) -> Vec<String> {
    timeline["events"].as_array().unwrap().iter().map(|e| e["step"].as_str().unwrap_or("-").to_string()).collect()
}

/// The timeline once its machine is installed (events are written off the request path).
async fn installed(app: &TestApp, mac: &str) -> Value {
    for _ in 0..100 {
        let timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
        if timeline["status"]["state"] == "installed" {
            return timeline;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{mac} never reached installed: {:#}", app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await);
}

/// The steps of one boot from power-on, as iPXE, the kernel and Ignition ask.
const ONE_BOOT: [&str; 6] = ["/boot.ipxe", "/ipxe", "/assets/vmlinuz", "/assets/initrd.img", "/ignition", "/metadata"];
const ONE_BOOT_STEPS: [&str; 6] = ["pxe", "script", "assets", "assets", "ignition", "installed"];

async fn a_machine_boots_from_pangea_and_its_timeline_shows_every_step(backend: Backend) {
    let Some(kit) = kit() else { return };
    let app = support::spawn_app_with(backend, async |config| config.assets_dir = kit.join("assets")).await;
    app.state.provisioner.record_boots(&app.state.background);
    let port = app.boot_listener().await.port();
    let cli = Principal::cli();
    let p = &app.state.provisioner;
    proof_profile(&app, port).await;
    let logs = tempfile::tempdir().unwrap();

    // A machine in the inventory, with a profile of its own.
    let (mac, uuid) = ("52:54:00:12:34:56", "8a1e43f2-4b7e-4d5c-9f00-1234567890ab");
    app.create(json!({"mac": mac, "uuid": uuid, "hostname": "node-1.example.com", "role": "worker"})).await;
    p.set_machine_profile(&cli, mac, "proof").await.unwrap();
    let (code, out) = boot_vm(port, mac, uuid, &logs.path().join("known.log")).await;
    assert_eq!(code, 0, "the VM did not complete its boot: {out}");
    let timeline = installed(&app, mac).await;
    assert_eq!(endpoints(&timeline), ONE_BOOT, "{timeline:#}");
    assert_eq!(steps(&timeline), ONE_BOOT_STEPS);
    let events = timeline["events"].as_array().unwrap();
    assert!(events.iter().all(|e| e["status"] == 200), "{timeline:#}");
    assert_eq!(events[1]["labels"]["uuid"], uuid, "iPXE sent its UUID");
    // Ignition got the config rendered for this machine, and wrote exactly that file.
    let expected = format!("machine {mac}\nuuid {uuid}\n");
    let reported = &events[5]["labels"]["proof_sha256"];
    assert_eq!(reported.as_str().unwrap(), hex::encode(sha2::Sha256::digest(expected.as_bytes())), "{timeline:#}");
    let served = app.get(&format!("/api/v1/boot/served/{}", events[4]["sha256"].as_str().unwrap())).await;
    let served: Value = serde_json::from_str(&served.text().await.unwrap()).unwrap();
    assert_eq!(served["storage"]["files"][0]["path"], "/etc/pangea-proof");
    assert_eq!(served["ignition"]["version"], "3.3.0", "Debian's Ignition reads 3.3.0 at most, and says so");

    // An unknown machine: its boot fails (Matchbox's 404), it is discovered, added through the
    // API, and its next boot completes.
    let (mac, uuid) = ("52:54:00:12:34:57", "8a1e43f2-4b7e-4d5c-9f00-1234567890ac");
    let (code, out) = boot_vm(port, mac, uuid, &logs.path().join("unknown.log")).await;
    assert_eq!(code, 3, "iPXE finds nothing to boot and the VM resets: {out}");
    let mut discovered = Value::Null;
    for _ in 0..100 {
        discovered = app.get_json("/api/v1/boot/discovered").await;
        if discovered.as_array().unwrap().iter().any(|d| d["mac"] == mac) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = discovered.as_array().unwrap().iter().find(|d| d["mac"] == mac).expect("discovered");
    assert_eq!(found["uuid"], uuid);
    let res = app
        .post_json("/api/v1/boot/discovered/adopt", json!({"macs": [mac], "role": "worker", "profile": "proof"}))
        .await;
    assert_eq!(res.status(), 200);
    let (code, out) = boot_vm(port, mac, uuid, &logs.path().join("added.log")).await;
    assert_eq!(code, 0, "the added machine did not complete its boot: {out}");
    let timeline = installed(&app, mac).await;
    let ends: Vec<String> = endpoints(&timeline);
    assert_eq!(&ends[..2], ["/boot.ipxe", "/ipxe"], "the failed first boot: {timeline:#}");
    assert_eq!(timeline["events"][1]["step"], "failed");
    assert_eq!(&ends[ends.len() - 6..], ONE_BOOT, "{timeline:#}");
    let expected = format!("machine {mac}\nuuid {uuid}\n");
    let last = timeline["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["labels"]["proof_sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(expected.as_bytes()))
    );

    // A fault: a config that needs what Ignition 3.4.0 added (LUKS discard), for a machine whose
    // Ignition reads 3.3.0 at most. The guest's Ignition refuses it; Pangea said why when it
    // served it, as the step that failed.
    let (mac, uuid) = ("52:54:00:12:34:58", "8a1e43f2-4b7e-4d5c-9f00-1234567890ad");
    let luks = "variant: fcos\nversion: 1.5.0\nstorage:\n  luks:\n    - name: data\n      device: /dev/vdb\n      discard: true\n";
    use pangea::provisioner::model::{Profile, TemplateFile, TemplateKind};
    let file = TemplateFile { kind: TemplateKind::Ignition, id: "luks.yaml".into(), content: luks.into() };
    p.put_template(&cli, file).await.unwrap();
    let mut profile: Profile = p.profile(&cli, "proof").await.unwrap();
    (profile.id, profile.ignition_id) = ("luks".into(), "luks.yaml".into());
    p.put_profile(&cli, profile).await.unwrap();
    app.create(json!({"mac": mac, "uuid": uuid, "hostname": "node-3.example.com", "role": "worker"})).await;
    p.set_machine_profile(&cli, mac, "luks").await.unwrap();
    let (code, out) = boot_vm(port, mac, uuid, &logs.path().join("luks.log")).await;
    assert_eq!(code, 4, "the guest's Ignition refuses the config and the guest says so: {out}");
    crate::creation::recorded(&app, mac, "/ignition").await;
    let timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
    let served = timeline["events"].as_array().unwrap().iter().find(|e| e["endpoint"] == "/ignition").unwrap();
    assert_eq!(served["step"], "failed");
    assert!(
        served["reason"].as_str().unwrap().contains(
            "its Ignition reads config spec 3.3.0 at most, and this config uses what 3.4.0 added (LUKS discard or \
             openOptions): it will refuse the config"
        ),
        "{served:#}"
    );
}

/// The real thing: a libvirt VM that Pangea powers on through Redfish (sushy-tools' libvirt
/// driver) with "boot from network once" network-boots from Pangea's boot listener, and its
/// machine's timeline shows the request, then every step of the boot.
async fn a_vm_pangea_powers_on_through_redfish_boots_from_the_network(backend: Backend) {
    let (Some(kit), Some(venv)) = (kit(), libvirt()) else { return };
    let app = support::spawn_app_with(backend, async |config| config.assets_dir = kit.join("assets")).await;
    app.state.provisioner.record_boots(&app.state.background);
    let port = app.boot_listener().await.port();
    proof_profile(&app, port).await;
    let (mac, uuid) = match backend {
        Backend::Sqlite => ("52:54:00:12:35:01", "8a1e43f2-4b7e-4d5c-9f00-123456789a01"),
        Backend::Postgres => ("52:54:00:12:35:02", "8a1e43f2-4b7e-4d5c-9f00-123456789a02"),
    };
    let created = app.create(json!({"mac": mac, "uuid": uuid, "role": "worker"})).await;
    let id = created["id"].as_i64().unwrap();
    app.state.provisioner.set_machine_profile(&Principal::cli(), mac, "proof").await.unwrap();

    let logs = tempfile::tempdir().unwrap();
    let name = format!("pangea-it-{}-{}", &uuid[34..], std::process::id());
    let console = logs.path().join("console.log");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/netboot/libvirt-vm.sh");
    let args =
        ["define".to_string(), name.clone(), mac.into(), uuid.into(), port.to_string(), console.display().to_string()];
    let defined = std::process::Command::new("bash").arg(script).args(args).output().unwrap();
    assert!(defined.status.success(), "libvirt-vm.sh define: {}", String::from_utf8_lossy(&defined.stderr));
    let _domain = Domain(name);
    let bmc = crate::support::bmc::libvirt_emulator(&venv).await;

    // The BMC checks out: the emulator lists the domain as a system, off.
    let system = format!("{}/redfish/v1/Systems/{uuid}", bmc.url);
    let res = app
        .put_json(
            &format!("/api/v1/machines/{id}/bmc"),
            json!({"url": system, "username": crate::support::bmc::USER, "password": crate::support::bmc::PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = app.post_json(&format!("/api/v1/machines/{id}/power"), json!({"action": "network_boot_once"})).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());

    // The VM powers on, boots from the network, installs and reports: the timeline says so.
    let mut timeline = Value::Null;
    for _ in 0..1800 {
        timeline = app.get_json(&format!("/api/v1/boot/timeline/{mac}")).await;
        if timeline["status"]["state"] == "installed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        timeline["status"]["state"],
        "installed",
        "{timeline:#}\nconsole:\n{}",
        std::fs::read_to_string(&console).unwrap_or_default()
    );
    let ends = endpoints(&timeline);
    let first_boot = ends.iter().position(|e| e == "/boot.ipxe").unwrap();
    assert!(ends[..first_boot].iter().any(|e| e == "power"), "the power request comes first: {timeline:#}");
    let asked = &timeline["events"].as_array().unwrap()[..first_boot];
    assert!(
        asked.iter().any(|e| e["reason"].as_str().unwrap_or_default().contains("requested by admin")),
        "{timeline:#}"
    );
    let booted: Vec<&String> = ends[first_boot..].iter().filter(|e| *e != "power").collect();
    assert_eq!(booted, ONE_BOOT.iter().collect::<Vec<_>>(), "{timeline:#}");
}
