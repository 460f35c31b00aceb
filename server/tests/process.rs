//! The `pangea` binary as an operator runs it: JSON logs with request ids, and a clean stop on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn serve_logs_json_with_request_ids_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (port, boot) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pangea"))
        .args(["serve", "--log-format", "json", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--boot-listen", &format!("127.0.0.1:{boot}"), "--data-dir"])
        .arg(dir.path())
        .env("PANGEA_BOOTSTRAP_PASSWORD", "process-test-password")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request_id = runtime.block_on(async {
        loop {
            assert!(Instant::now() < deadline, "pangea did not start");
            if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
                return res.headers()["x-request-id"].to_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let lines: Vec<serde_json::Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every log line is JSON"))
        .collect();
    let request_line = lines.iter().find(|l| l["message"] == "request done").expect("a request was logged");
    assert_eq!(request_line["span"]["request_id"], request_id.as_str());
    assert!(lines.iter().any(|l| l["message"] == "pangea stopped cleanly"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("process-test-password")),
        "the given password is never logged"
    );
}
