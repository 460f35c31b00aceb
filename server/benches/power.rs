//! Benchmark: machines' BMCs at scale, against PyPI sushy-tools' Redfish emulator (its fake
//! driver, `~/.cache/pangea-sushy`, as `.ci/setup` installs it) serving 1,000 systems (ten
//! processes of 100). Each
//! machine reaches it through an address of its own (127.0.x.y), so each is a BMC origin of its
//! own to Pangea: its own link, its own 4 requests in flight. It prints:
//! - one full hardware read and power refresh of every BMC: the whole time, and each BMC's
//!   hardware read (p50/p99), with at most 4 requests in flight per BMC;
//! - Pangea's resident memory (this process) after it;
//! - a paced mass power-on of every machine under "10 per 5 s per rack" (25 racks): the largest
//!   burst actually seen in one rack within any 5 s (which must never exceed 10), the run's time,
//!   and how many machines reached "on".
//!
//! - on PostgreSQL, three `pangea serve` processes sharing the BMCs out: how long until every
//!   machine's power was read by them.
//!
//! Run it with:
//!
//!     cargo bench -p server --bench power
//!     PANGEA_BENCH_SCALE=smoke cargo bench -p server --bench power   # 20 machines: it still runs
//!
//! The emulators are Python processes on this machine's 2 cores beside Pangea: their answers,
//! not Pangea, set most of the times printed.

use app::access::Principal;
use app::machines::ssr::MachineService;
use app::power::ssr::PowerService;
use app::power::{BmcInput, Pacing, PowerAction, PowerRunInput};
use futures::StreamExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const RACKS: usize = 25;

fn uuid(i: usize) -> String {
    format!("33333333-0000-0000-0000-{i:012}")
}

fn mac(i: usize) -> String {
    format!("52:54:00:be:{:02x}:{:02x}", i / 256, i % 256)
}

/// Systems per emulator process: its fake driver does work in proportion to its systems on every
/// request (1,000 in one process answered slower than Pangea's 20 s limit).
const PER_EMULATOR: usize = 100;

/// An emulator with systems `first..first + n`, all off, on 0.0.0.0 (so 127.0.x.y reach it);
/// stopped on drop.
struct Emulator {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn emulator(first: usize, n: usize) -> Emulator {
    let venv = std::env::var_os("PANGEA_SUSHY_VENV").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pangea-sushy")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let systems: Vec<String> = (first..first + n)
        .map(|i| {
            format!(
                "{{'uuid': '{}', 'name': 'bench-{i}', 'power_state': 'Off', 'nics': [{{'mac': '{}', 'ip': '10.1.0.1'}}]}}",
                uuid(i),
                mac(i)
            )
        })
        .collect();
    let config = dir.path().join("emulator.conf");
    std::fs::write(
        &config,
        format!(
            "SUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_STATE_DIR = '{}'\nSUSHY_EMULATOR_FAKE_SYSTEMS = [{}]\n",
            dir.path().join("state").display(),
            systems.join(", ")
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("port").port();
    let log = std::fs::File::create(dir.path().join("emulator.log")).expect("log");
    let child = Command::new(venv.join("bin/sushy-emulator"))
        .args(["--config", config.to_str().expect("path"), "-i", "0.0.0.0", "-p", &port.to_string(), "--fake"])
        .env("TMPDIR", dir.path())
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sushy-emulator from {} (run .ci/setup): {e}", venv.display()));
    let emulator = Emulator { port, child, _dir: dir };
    for _ in 0..400 {
        if reqwest::get(format!("http://127.0.0.1:{port}/redfish/v1/")).await.is_ok() {
            return emulator;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sushy-emulator did not answer within 20 s");
}

/// `replicas` `pangea serve` processes on the bench's PostgreSQL database, refreshing power every
/// 10 s, each reading its share of the BMCs (by hash, among the live replicas): the time from
/// their start until every machine's power was read by them, and each one's RSS.
async fn replicas_polling(
    replicas: usize,
    machines: usize,
    url: &secrecy::SecretString,
    key_dir: &std::path::Path,
    state: &pangea::AppState,
) {
    let since = pangea::db::timestamp(time::OffsetDateTime::now_utc());
    let mut running = Vec::new();
    for _ in 0..replicas {
        running.push(support::Replica::start(url, key_dir, &["--power-refresh-seconds", "10"]).await);
    }
    let started = Instant::now();
    let (mut first, mut read) = (None, 0);
    while read < machines {
        read = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM machine_bmcs WHERE power_read_at > $1")
            .bind(&since)
            .fetch_one(state.db.pool())
            .await
            .expect("count") as usize;
        if read > 0 && first.is_none() {
            first = Some(started.elapsed());
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{read} of {machines} read within 5 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = started.elapsed();
    let first = first.unwrap_or(all);
    let rss: Vec<String> =
        running.iter().map(|r| format!("{:.0}", support::rss_mib_of(&r.child.id().to_string()))).collect();
    println!(
        "  {replicas} replicas (processes) refreshing every 10 s, each its share: the first read {:.1} s after they \
         started, every machine's power read {:.1} s after (a full refresh shared out: {:.1} s); RSS per replica \
         {rss:?} MiB",
        first.as_secs_f64(),
        all.as_secs_f64(),
        (all - first).as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let n = support::sized(1000, 20);
    support::on_each_backend(async |backend, url| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, _, state) = support::serve(url.clone(), dir.path()).await;
        let mut bmcs = Vec::new();
        for first in (0..n).step_by(PER_EMULATOR) {
            bmcs.push(emulator(first, PER_EMULATOR.min(n - first)).await);
        }
        let bmcs = &bmcs;
        let admin = Principal::cli();
        println!("\n{backend}: {n} machines, each behind a BMC origin of its own (sushy-tools fake driver)");

        // Machines, in 25 racks, each with its BMC (checked as a person sets it).
        let started = Instant::now();
        let ids: Vec<i64> = futures::stream::iter(0..n)
            .map(|i| {
                let (state, admin) = (state.clone(), admin.clone());
                async move {
                    let input = app::machines::MachineInput {
                        mac: mac(i),
                        role: Some("worker".into()),
                        labels: [("rack".to_string(), format!("r{}", i % RACKS)), ("bench".into(), "power".into())].into(),
                        ..Default::default()
                    };
                    let id = state.machines.create(&admin, input).await.expect("machine").id;
                    let port = bmcs[i / PER_EMULATOR].port;
                    let origin = format!("http://127.0.{}.{}:{port}", 1 + i / 250, 1 + i % 250);
                    let bmc = BmcInput {
                        url: format!("{origin}/redfish/v1/Systems/{}", uuid(i)),
                        username: "root".into(),
                        password: Some("bench".into()),
                        ca_pem: String::new(),
                        verify_off: false,
                    };
                    state.power.set_bmc(&admin, id, bmc).await.expect("bmc");
                    id
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        // The hardware reads that setting BMCs starts, done.
        while state.background.running() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("  set {} BMCs (each checked) and read their hardware once: {:.1} s", ids.len(), started.elapsed().as_secs_f64());

        // One full hardware read and power refresh.
        let stored = pangea::power::store::all(&state.db).await.expect("bmcs");
        let started = Instant::now();
        let mut each: Vec<Duration> = futures::stream::iter(stored)
            .map(|bmc| {
                let power = state.power.clone();
                async move {
                    let t = Instant::now();
                    power.read_hardware(bmc).await;
                    t.elapsed()
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        state.power.refresh_all(pangea::leases::Shard::ALL).await;
        each.sort();
        let read: usize = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM machine_hardware WHERE problem = ''")
            .fetch_one(state.db.pool())
            .await
            .expect("count") as usize;
        println!(
            "  full hardware read and power refresh of {n} BMCs: {:.1} s (each BMC's hardware read: p50 {:.0} ms, p99 {:.0} ms; {read} read without a problem)",
            started.elapsed().as_secs_f64(),
            support::percentile(&each, 0.5).as_secs_f64() * 1000.0,
            support::percentile(&each, 0.99).as_secs_f64() * 1000.0,
        );
        println!("  RSS after it: {:.0} MiB", support::rss_mib());

        // A paced mass power-on of every machine: 10 per 5 s per rack.
        let pacing = Pacing { group_by: "rack".into(), per_group: 10, per_seconds: 5, booting_at_once: 0 };
        let input = PowerRunInput { action: PowerAction::On, machines: vec![], search: Some("bench=power".into()), pacing };
        let plan = state.power.plan_run(&admin, input.clone()).await.expect("plan");
        let started = Instant::now();
        let job = state.power.start_run(&admin, input).await.expect("run");
        let run = loop {
            let run = state.power.power_run(&admin, &job).await.expect("run");
            if run.state != "running" {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let on = run.machines.iter().filter(|m| m.step == app::power::RunStep::Done).count();
        println!(
            "  paced power-on of {n} machines, 10 per 5 s per rack ({RACKS} racks): largest burst in one rack {} (budget 10), {:.1} s (planned {} s before power settles), {on} reached on, run {}",
            run.largest_burst,
            started.elapsed().as_secs_f64(),
            plan.estimated_seconds,
            run.state
        );
        let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
        for m in run.machines.iter().filter(|m| m.step == app::power::RunStep::Failed) {
            // The reason without the BMC's address, so alike failures count together.
            let reason = m.reason.split(" at http").next().unwrap_or_default().chars().take(80).collect();
            *failures.entry(reason).or_default() += 1;
        }
        for (reason, count) in failures {
            println!("    failed: {count} × {reason}…");
        }
        assert!(run.largest_burst <= 10, "a rack got {} power-ons within 5 s", run.largest_burst);
        state.power.close().await;
        if backend == "postgres" {
            replicas_polling(3, n, &url, dir.path(), &state).await;
        }
        drop(ids);
    })
    .await;
}
