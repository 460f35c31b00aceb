//! Real BMCs for the power tests: PyPI `sushy-tools`, the Redfish emulator (its fake driver,
//! systems without VMs), which `.ci/setup` installs into `~/.cache/pangea-sushy`
//! (`PANGEA_SUSHY_VENV`), signing in with HTTP basic authentication from an htpasswd file.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The user and password every emulator here accepts.
pub const USER: &str = "root";
pub const PASSWORD: &str = "calvin";

/// A running emulator; stopped when dropped.
pub struct Emulator {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv() -> PathBuf {
    std::env::var_os("PANGEA_SUSHY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pangea-sushy"))
}

/// One fake system: its UUID, power state (`On` or `Off`) and MAC.
pub struct FakeSystem<'a> {
    pub uuid: &'a str,
    pub power: &'a str,
    pub mac: &'a str,
}

/// Starts an emulator on a free port with these systems, ready to answer.
pub async fn emulator(systems: &[FakeSystem<'_>]) -> Emulator {
    emulator_with(systems, false).await
}

/// The same, over https with a self-signed certificate when `self_signed`.
pub async fn emulator_with(systems: &[FakeSystem<'_>], self_signed: bool) -> Emulator {
    emulator_configured(systems, self_signed, "", None).await
}

/// The same, with `extra` lines of the emulator's (Python) configuration after the systems' (its
/// storage and drives, say, or systems given in full), on `port` when given (to stand in for
/// the same BMC after a change).
pub async fn emulator_configured(
    systems: &[FakeSystem<'_>],
    self_signed: bool,
    extra: &str,
    port: Option<u16>,
) -> Emulator {
    let listed: Vec<String> = systems
        .iter()
        .map(|s| {
            format!(
                "{{'uuid': '{}', 'name': 'node-{}', 'power_state': '{}', 'nics': [{{'mac': '{}', 'ip': '10.0.0.9'}}]}}",
                s.uuid, s.uuid, s.power, s.mac
            )
        })
        .collect();
    let driver =
        format!("SUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_FAKE_SYSTEMS = [{}]\n{extra}\n", listed.join(", "));
    start(&venv(), &driver, &["--fake"], self_signed, port).await
}

/// sushy-tools' libvirt driver, from `venv` (`.ci/netboot/libvirt-up.sh` makes it): every domain
/// of `qemu:///system`, as a system named by its UUID, really started and stopped.
pub async fn libvirt_emulator(venv: &std::path::Path) -> Emulator {
    start(venv, "SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system'\n", &[], false, None).await
}

/// Starts the emulator of `venv` with `driver`'s configuration and `driver_args`, behind the
/// htpasswd file of [`USER`] and [`PASSWORD`], ready to answer.
async fn start(
    venv: &std::path::Path,
    driver: &str,
    driver_args: &[&str],
    self_signed: bool,
    port: Option<u16>,
) -> Emulator {
    let dir = tempfile::tempdir().unwrap();
    let hash = Command::new(venv.join("bin/python"))
        .args(["-c", &format!("import bcrypt; print(bcrypt.hashpw(b'{PASSWORD}', bcrypt.gensalt()).decode())")])
        .output()
        .unwrap_or_else(|e| panic!("sushy-tools is not installed in {} (run .ci/setup): {e}", venv.display()));
    assert!(hash.status.success(), "bcrypt: {}", String::from_utf8_lossy(&hash.stderr));
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{USER}:{}", String::from_utf8_lossy(&hash.stdout).trim())).unwrap();
    let config = dir.path().join("emulator.conf");
    std::fs::write(
        &config,
        format!(
            "SUSHY_EMULATOR_AUTH_FILE = '{}'\nSUSHY_EMULATOR_STATE_DIR = '{}'\n{driver}",
            htpasswd.display(),
            dir.path().join("state").display(),
        ),
    )
    .unwrap();
    let port = port.unwrap_or_else(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let log = std::fs::File::create(dir.path().join("emulator.log")).unwrap();
    let mut args: Vec<String> =
        ["--config", config.to_str().unwrap(), "-i", "127.0.0.1", "-p", &port.to_string()].map(String::from).into();
    args.extend(driver_args.iter().map(|a| a.to_string()));
    if self_signed {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("bmc.crt"), dir.path().join("bmc.key"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        args.extend([
            "--ssl-certificate".into(),
            cert.display().to_string(),
            "--ssl-key".into(),
            key.display().to_string(),
        ]);
    }
    let child = Command::new(venv.join("bin/sushy-emulator"))
        .args(&args)
        .env("TMPDIR", dir.path())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sushy-emulator from {} (run .ci/setup): {e}", venv.display()));
    let url = format!("{}://127.0.0.1:{port}", if self_signed { "https" } else { "http" });
    let emulator = Emulator { url: url.clone(), child, _dir: dir };
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    for _ in 0..200 {
        if client.get(format!("{url}/redfish/v1/")).send().await.is_ok() {
            return emulator;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "sushy-emulator did not answer within 10 s: {}",
        std::fs::read_to_string(emulator._dir.path().join("emulator.log")).unwrap_or_default()
    );
}
