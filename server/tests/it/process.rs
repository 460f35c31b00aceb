//! The `pangea` binary as an operator runs it: JSON logs with request ids, and a clean stop on
//! SIGTERM.

use crate::support;

use crate::support::Backend;
use secrecy::ExposeSecret;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

on_both_backends_with_own_app!(
    serve_logs_json_with_request_ids_and_stops_cleanly_on_sigterm,
    a_generated_admin_password_goes_to_the_terminal_once_and_never_to_the_log,
    a_sigterm_in_a_boot_storm_stops_within_ten_seconds,
);

/// Starts `pangea serve` with JSON logs on a fresh database; returns it and its console port.
async fn serve(backend: Backend, dir: &std::path::Path, envs: &[(&str, &str)]) -> (Child, u16) {
    let (child, port, _) = serve_with_boot(backend, dir, envs).await;
    (child, port)
}

/// [`serve`], and the boot listener's port.
async fn serve_with_boot(backend: Backend, dir: &std::path::Path, envs: &[(&str, &str)]) -> (Child, u16, u16) {
    let url = support::fresh_database(backend, dir).await;
    let (port, boot) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_pangea"))
        .args(["serve", "--log-format", "json", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--boot-listen", &format!("127.0.0.1:{boot}"), "--data-dir"])
        .arg(dir)
        .env("PANGEA_DATABASE_URL", url.expose_secret())
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, port, boot)
}

/// Starts `pangea serve` on an existing database (another replica), its log in `dir/log`
/// (a pipe no one reads would fill and stop it); returns it and its console port.
pub(crate) fn serve_on(database_url: &str, dir: &std::path::Path, envs: &[(&str, &str)]) -> (Child, u16) {
    let (child, port, _) = serve_on_with_boot(database_url, dir, envs);
    (child, port)
}

/// [`serve_on`], and the boot listener's port.
pub(crate) fn serve_on_with_boot(
    database_url: &str,
    dir: &std::path::Path,
    envs: &[(&str, &str)],
) -> (Child, u16, u16) {
    let (port, boot) = (free_port(), free_port());
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pangea"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--boot-listen", &format!("127.0.0.1:{boot}"), "--data-dir"])
        .arg(dir)
        .env("PANGEA_DATABASE_URL", database_url)
        .envs(envs.iter().copied())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    (child, port, boot)
}

/// Waits until the console answers; returns the request id of that answer.
pub(crate) async fn started(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "pangea did not start");
        if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            return res.headers()["x-request-id"].to_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM, expects a clean exit, and returns stdout's JSON log lines and stderr.
fn stop(mut child: Child) -> (Vec<serde_json::Value>, String) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every log line is JSON"))
        .collect();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (lines, stderr)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn serve_logs_json_with_request_ids_and_stops_cleanly_on_sigterm(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = serve(backend, dir.path(), &[("PANGEA_BOOTSTRAP_PASSWORD", "process-test-password")]).await;
    let request_id = started(port).await;
    let (lines, _) = stop(child);
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
    let (child, port) = serve(backend, dir.path(), &[]).await;
    started(port).await;
    let (lines, stderr) = stop(child);
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
    let (mut child, port, boot) = serve_with_boot(backend, dir.path(), &limits_off).await;
    // The storm logs a line a request: read them as they come, or the pipe fills and the
    // process blocks on its log.
    let stdout = child.stdout.take().unwrap();
    let log = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    started(port).await;
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
    let lines: Vec<serde_json::Value> =
        log.join().unwrap().iter().map(|l| serde_json::from_str(l).expect("every log line is JSON")).collect();
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
