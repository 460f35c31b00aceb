//! Boot events this replica answered while the database could not take them, kept in a file of
//! its own (`boot-events.spool` in the data directory) until the database is back. A boot is
//! answered from memory whatever the database does; its record waits here instead of being lost,
//! and a replica restarted on the same data directory writes what it left. Each line is one
//! batch as it was to be written: a batch commits whole, so one whose commit was cut off (it may
//! have landed) is written again only if none of its events is stored.

use super::Attributed;
use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most the file may hold: beyond it a batch is dropped (and counted), so an outage under a
/// flood of requests cannot fill the disk.
pub const LIMIT: u64 = 256 * 1024 * 1024;

/// One event with the config it was served, as spooled.
#[derive(Serialize, Deserialize)]
pub struct SpooledEvent {
    #[serde(flatten)]
    pub event: Attributed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<String>,
}

/// Batches read from the spool, and where the next read starts once they are written.
pub struct Read {
    pub batches: Vec<Vec<SpooledEvent>>,
    /// Lines that could not be read back (a format this Pangea does not know): skipped.
    pub unreadable: u64,
    end: u64,
}

pub struct Spool {
    path: PathBuf,
    /// The file's size: 0 when there is nothing to write.
    bytes: AtomicU64,
    /// How far batches are written to the database: the file is emptied when this reaches its
    /// end (not rewritten batch by batch). A restart offers everything again; a batch stored
    /// already is recognised then.
    written: AtomicU64,
    limit: u64,
    /// Held while this process runs: one process per spool.
    _lock: std::fs::File,
}

impl Spool {
    /// The spool at `path`, with whatever an earlier run left there; `Ok(None)` when another
    /// process holds it (replicas sharing a data directory: the first keeps the spool). A last
    /// line cut short (the process died writing it, before its requests were answered) is cut
    /// off, so the next batch starts a line of its own.
    pub fn open(path: PathBuf) -> std::io::Result<Option<Spool>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path.with_extension("spool.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            std::fs::OpenOptions::new().write(true).open(&path)?.set_len(whole as u64)?;
        }
        Ok(Some(Spool {
            path,
            bytes: AtomicU64::new(whole as u64),
            written: AtomicU64::new(0),
            limit: LIMIT,
            _lock: lock,
        }))
    }

    #[cfg(test)]
    fn with_limit(mut self, limit: u64) -> Spool {
        self.limit = limit;
        self
    }

    /// How much the file holds, in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether batches wait to be written.
    pub fn pending(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) > 0
    }

    /// Adds a batch, on disk (synced) before this returns; `Ok(false)` when the spool is full.
    /// Only this process reads it (the file is its own, 0600): served configs may hold secrets.
    pub fn append(&self, batch: &[(Attributed, Option<Arc<str>>)]) -> std::io::Result<bool> {
        let events: Vec<SpooledEvent> = batch
            .iter()
            .map(|(event, served)| SpooledEvent { event: event.clone(), served: served.as_deref().map(str::to_string) })
            .collect();
        let mut line = serde_json::to_vec(&events)?;
        line.push(b'\n');
        let size = self.bytes.load(Ordering::Relaxed);
        if size + line.len() as u64 > self.limit {
            return Ok(false);
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()?;
        self.bytes.store(size + line.len() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Up to `most` batches not yet written, oldest first.
    pub fn next(&self, most: usize) -> std::io::Result<Read> {
        let start = self.written.load(Ordering::Relaxed);
        let mut read = Read { batches: Vec::new(), unreadable: 0, end: start };
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(read),
            Err(e) => return Err(e),
        };
        file.seek(std::io::SeekFrom::Start(start))?;
        let mut lines = std::io::BufReader::new(file);
        let mut line = Vec::new();
        while read.batches.len() < most {
            line.clear();
            let n = lines.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            read.end += n as u64;
            match serde_json::from_slice(&line) {
                Ok(batch) => read.batches.push(batch),
                Err(_) => read.unreadable += 1,
            }
        }
        Ok(read)
    }

    /// Marks the batches of `read` written: the file is emptied once every batch in it is (or
    /// nothing more could be read from it).
    pub fn written(&self, read: &Read) -> std::io::Result<()> {
        self.written.store(read.end, Ordering::Relaxed);
        let exhausted = read.batches.is_empty() && read.unreadable == 0;
        if exhausted || read.end >= self.bytes.load(Ordering::Relaxed) {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.written.store(0, Ordering::Relaxed);
            self.bytes.store(0, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(endpoint: &str) -> Attributed {
        Attributed {
            at: "2026-12-08T05:00:00.000000Z".into(),
            mac: "52:54:00:00:00:01".into(),
            uuid: String::new(),
            endpoint: endpoint.into(),
            labels: [("mac".to_string(), "52:54:00:00:00:01".to_string())].into(),
            group: "g".into(),
            profile: "p".into(),
            status: 200,
            bytes: 10,
            duration_us: 5,
            client: "10.0.0.5".into(),
            sha256: String::new(),
            reason: String::new(),
            step: Some(app::provisioning::boots::BootState::Pxe),
        }
    }

    #[test]
    fn batches_wait_on_disk_in_order_and_a_restart_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot-events.spool");
        let spool = Spool::open(path.clone()).unwrap().unwrap();
        // One process per spool: a second finds it held.
        assert!(Spool::open(path.clone()).unwrap().is_none());
        assert!(!spool.pending() && spool.next(16).unwrap().batches.is_empty());
        assert!(spool.append(&[(event("/ipxe"), Some("#!ipxe".into()))]).unwrap());
        assert!(spool.append(&[(event("/ignition"), None), (event("/assets/k"), None)]).unwrap());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A process that died writing a third line left half of it.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"[{\"at\":").unwrap();
        drop(spool);
        let again = Spool::open(path.clone()).unwrap().unwrap();
        assert!(again.pending());
        assert!(std::fs::read(&path).unwrap().ends_with(b"]\n"), "the torn line is cut off");
        assert!(again.append(&[(event("/boot.ipxe"), None)]).unwrap());
        let first = again.next(2).unwrap();
        assert_eq!(first.batches.len(), 2);
        assert_eq!(first.batches[0][0].event, event("/ipxe"));
        assert_eq!(first.batches[0][0].served.as_deref(), Some("#!ipxe"));
        let endpoints: Vec<&str> = first.batches[1].iter().map(|e| e.event.endpoint.as_str()).collect();
        assert_eq!(endpoints, ["/ignition", "/assets/k"]);
        again.written(&first).unwrap();
        assert!(again.pending(), "one batch is left");
        let rest = again.next(16).unwrap();
        assert_eq!(rest.batches.len(), 1);
        assert_eq!(rest.batches[0][0].event.endpoint, "/boot.ipxe");
        again.written(&rest).unwrap();
        assert!(!again.pending() && !path.exists());
    }

    #[test]
    fn a_full_spool_takes_no_more_and_unreadable_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.spool");
        let spool = Spool::open(path.clone()).unwrap().unwrap().with_limit(400);
        assert!(spool.append(&[(event("/ipxe"), None)]).unwrap());
        assert!(!spool.append(&[(event("/ipxe"), None), (event("/ipxe"), None)]).unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"from\": \"elsewhere\"}\n")
            .unwrap();
        drop(spool);
        let again = Spool::open(path).unwrap().unwrap();
        let read = again.next(16).unwrap();
        assert_eq!((read.batches.len(), read.unreadable), (1, 1));
        again.written(&read).unwrap();
        assert!(!again.pending());
    }
}
