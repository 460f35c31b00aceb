//! A PostgreSQL server of a test's own, to stop and start under load (the shared throwaway server
//! of `.ci/test` cannot be stopped under the other tests). Debian's `postgresql` package
//! (installed by `.ci/setup`) provides `initdb` and `pg_ctl`; as root they run as `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Names the socket file (`.s.PGSQL.PORT`); nothing listens on TCP.
    port: u16,
}

impl OwnPostgres {
    /// A new cluster, trusting local connections as `app`, on a Unix socket in its own folder
    /// only: no TCP port that another process could take while it is down.
    pub async fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries are missing: run .ci/setup (Debian's postgresql package)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").exists())
            .max()
            .expect("no /usr/lib/postgresql/*/bin/pg_ctl");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let mut chown = Command::new("chown");
            chown.arg("postgres").arg(dir.path());
            run(chown).await;
        }
        let pg = OwnPostgres { bin, dir, port: 5432 };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(pg.data()).args(["-U", "app", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        run(initdb).await;
        pg.up().await;
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://app@localhost/postgres?host={}&port={}", self.dir.path().display(), self.port)
    }

    /// Starts the server again, on the same socket and data.
    pub async fn up(&self) {
        let options = format!(
            "-c listen_addresses='' -p {} -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.command("pg_ctl");
        start.arg("-D").arg(self.data()).arg("-l").arg(self.dir.path().join("log"));
        start.args(["-w", "-o", &options, "start"]);
        run(start).await;
    }

    /// Stops it as an operator's restart does: `pg_ctl stop -m fast` (clients are disconnected,
    /// what was committed is kept).
    pub async fn down(&self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(self.data()).args(["-m", "fast", "-w", "stop"]);
        run(stop).await;
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

fn is_root() -> bool {
    Path::new("/proc/self").metadata().map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// Runs `command` to its end without holding up the test's other tasks.
async fn run(mut command: Command) {
    let (command, out) = tokio::task::spawn_blocking(move || {
        let out = command.output();
        (command, out)
    })
    .await
    .unwrap();
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
