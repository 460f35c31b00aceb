//! The `pangea` binary as an operator runs it: JSON logs with request ids, and a clean stop on
//! SIGTERM.

use crate::support;

use crate::support::Backend;
use secrecy::ExposeSecret;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

on_both_backends_with_own_app!(
    serve_logs_json_with_request_ids_and_stops_cleanly_on_sigterm,
    a_generated_admin_password_goes_to_the_terminal_once_and_never_to_the_log,
    a_sigterm_in_a_boot_storm_stops_within_ten_seconds,
);

/// Starts `pangea serve` with JSON logs on a fresh database; returns it, its console's and its
/// boot listener's ports.
async fn serve(backend: Backend, dir: &Path, envs: &[(&str, &str)]) -> (Child, u16, u16) {
    let url = support::fresh_database(backend, dir).await;
    let mut child = spawn_serve(url.expose_secret(), dir, &["--log-format", "json"], envs);
    let (console, boot) = listening(&mut child, dir).await;
    (child, console, boot)
}

/// Starts `pangea serve` on `database_url` with both listeners on port 0 of loopback (the
/// kernel's choice, so no other test can take a port between its choice and the bind), its
/// stdout in `dir/stdout` and its stderr in `dir/stderr` (a pipe no one reads would fill and
/// stop it).
pub(crate) fn spawn_serve(database_url: &str, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Child {
    let file = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_pangea"))
        .args(["serve", "--listen", "127.0.0.1:0", "--boot-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("PANGEA_DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .unwrap()
}

/// What the process started in `dir` has written so far: stdout, then stderr.
pub(crate) fn output(dir: &Path) -> (String, String) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    (read("stdout"), read("stderr"))
}

/// Waits until `child` logs where it serves; returns its console's and its boot listener's
/// ports. Fails with what it wrote if it exits first or says nothing within 30 s.
pub(crate) async fn listening(child: &mut Child, dir: &Path) -> (u16, u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (stdout, stderr) = output(dir);
        // Whole lines only: the last may be half written.
        if let Some(line) = stdout.split_inclusive('\n').find(|l| l.ends_with('\n') && l.contains("pangea is serving"))
        {
            let port = |key| port_in(line, key).unwrap_or_else(|| panic!("no {key} address in {line}"));
            return (port("console"), port("boot"));
        }
        if let Some(exit) = child.try_wait().unwrap() {
            panic!("pangea serve ended ({exit}) before serving:\n{stdout}\n{stderr}");
        }
        assert!(Instant::now() < deadline, "pangea serve did not serve within 30 s:\n{stdout}\n{stderr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The port of the address logged as `key`, in the human format (`key=ADDR`) or JSON
/// (`"key":"ADDR"`).
fn port_in(line: &str, key: &str) -> Option<u16> {
    let human = format!(" {key}=");
    let json = format!("\"{key}\":\"");
    let at = match line.find(&human) {
        Some(i) => i + human.len(),
        None => line.find(&json)? + json.len(),
    };
    let address: String = line[at..].chars().take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':')).collect();
    address.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

/// The request id of an answer from the console.
async fn request_id(port: u16) -> String {
    let res = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap();
    res.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// Sends SIGTERM, expects a clean exit, and returns stdout's JSON log lines and stderr.
fn stop(mut child: Child, dir: &Path) -> (Vec<serde_json::Value>, String) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let (stdout, stderr) = output(dir);
    (json_lines(&stdout), stderr)
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).expect("every log line is JSON")).collect()
}

async fn serve_logs_json_with_request_ids_and_stops_cleanly_on_sigterm(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (child, port, _) = serve(backend, dir.path(), &[("PANGEA_BOOTSTRAP_PASSWORD", "process-test-password")]).await;
    let request_id = request_id(port).await;
    let (lines, _) = stop(child, dir.path());
    let request_line = lines.iter().find(|l| l["message"] == "request done").expect("a request was logged");
    assert_eq!(request_line["span"]["request_id"], request_id.as_str());
    assert!(lines.iter().any(|l| l["message"] == "pangea stopped cleanly"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("process-test-password")),
        "the given password is never logged"
    );
}

async fn a_generated_admin_password_goes_to_the_terminal_once_and_never_to_the_log(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (child, _, _) = serve(backend, dir.path(), &[]).await;
    let (lines, stderr) = stop(child, dir.path());
    let password = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .map(str::trim)
        .expect("the generated password is on stderr");
    assert!(password.len() >= 20, "{password}");
    assert_eq!(stderr.matches(password).count(), 1, "once");
    assert!(!lines.iter().any(|l| l.to_string().contains(password)), "never in the JSON log");
    assert!(lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.contains("printed on stderr"))));
}

/// A SIGTERM while machines (here: random MACs, as fast as 8 clients can ask) keep the event
/// writer busy: Pangea writes what it can for 5 s at most, logs what it could not as lost, and
/// exits within the 10 s an orchestrator waits before it kills.
async fn a_sigterm_in_a_boot_storm_stops_within_ten_seconds(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let limits_off = [("PANGEA_BOOT_REQUESTS_PER_ADDRESS", "0"), ("PANGEA_BOOT_REQUESTS_PER_MAC", "0")];
    let (mut child, _, boot) = serve(backend, dir.path(), &limits_off).await;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for worker in 0..8u64 {
        let sent = sent.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0u64.. {
                let mac = format!(
                    "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    worker,
                    (i >> 24) & 255,
                    (i >> 16) & 255,
                    (i >> 8) & 255,
                    i & 255
                );
                if client.get(format!("http://127.0.0.1:{boot}/ipxe?mac={mac}")).send().await.is_err() {
                    break;
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    while sent.load(std::sync::atomic::Ordering::Relaxed) < 2_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let took = stopping.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    let lines = json_lines(&output(dir.path()).0);
    // The bound an operator relies on (not a speed figure: the writer's own limit is 5 s).
    assert!(took < Duration::from_secs(10), "SIGTERM to exit took {took:?}");
    assert!(lines.iter().any(|l| l["message"] == "pangea stopped cleanly"), "{lines:?}");
    // Whatever was not written is in the log as a number, never dropped without a word.
    for line in
        lines.iter().filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("boot events were not stored")))
    {
        assert!(line["events"].as_u64().is_some_and(|n| n > 0), "{line}");
    }
}
