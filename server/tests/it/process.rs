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
);

/// Starts `pangea serve` with JSON logs on a fresh database; returns it and its console port.
async fn serve(backend: Backend, dir: &std::path::Path, envs: &[(&str, &str)]) -> (Child, u16) {
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
    (child, port)
}

/// Waits until the console answers; returns the request id of that answer.
async fn started(port: u16) -> String {
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
