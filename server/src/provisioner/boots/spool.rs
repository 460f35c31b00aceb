//! Boot events this replica answered while the database could not take them, kept in a file of
//! its own (`boot-events.spool` in the data directory) until the database is back. A boot is
//! answered from memory whatever the database does; its record waits here instead of being lost,
//! and a replica restarted on the same data directory writes what it left. Each line is one
//! batch as it was to be written: a batch commits whole, so one whose commit was cut off (it may
//! have landed) is written again only if its first event is not stored.

use super::Attributed;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
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

pub struct Spool {
    path: PathBuf,
    /// The file's size: 0 when there is nothing to write.
    bytes: AtomicU64,
    limit: u64,
}

impl Spool {
    /// The spool at `path`, with whatever an earlier run left there.
    /// A last line cut short (the process died writing it, before its requests were answered)
    /// is cut off, so the next batch starts a line of its own.
    pub fn open(path: PathBuf) -> std::io::Result<Spool> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
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
        Ok(Spool { path, bytes: AtomicU64::new(whole as u64), limit: LIMIT })
    }

    #[cfg(test)]
    fn with_limit(mut self, limit: u64) -> Spool {
        self.limit = limit;
        self
    }

    /// Whether batches wait to be written.
    pub fn pending(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) > 0
    }

    /// Adds a batch, on disk (synced) before this returns; `Ok(false)` when the spool is full.
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
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()?;
        self.bytes.store(size + line.len() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// The batches waiting, oldest first.
    pub fn batches(&self) -> std::io::Result<Vec<Vec<SpooledEvent>>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text.split(|b| *b == b'\n').filter_map(|line| serde_json::from_slice(line).ok()).collect())
    }

    /// Forgets the first `written` batches, keeping any added since they were read.
    pub fn forget(&self, written: usize) -> std::io::Result<()> {
        let text = std::fs::read(&self.path)?;
        let rest: Vec<&[u8]> = text.split(|b| *b == b'\n').filter(|line| !line.is_empty()).skip(written).collect();
        if rest.is_empty() {
            std::fs::remove_file(&self.path)?;
            self.bytes.store(0, Ordering::Relaxed);
            return Ok(());
        }
        let kept = self.path.with_extension("spool.new");
        let mut body = rest.join(&b'\n');
        body.push(b'\n');
        std::fs::write(&kept, &body)?;
        std::fs::File::open(&kept)?.sync_all()?;
        std::fs::rename(&kept, &self.path)?;
        self.bytes.store(body.len() as u64, Ordering::Relaxed);
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
        let spool = Spool::open(path.clone()).unwrap();
        assert!(!spool.pending() && spool.batches().unwrap().is_empty());
        assert!(spool.append(&[(event("/ipxe"), Some("#!ipxe".into()))]).unwrap());
        assert!(spool.append(&[(event("/ignition"), None), (event("/assets/k"), None)]).unwrap());
        // A process that died writing a third line left half of it.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"[{\"at\":").unwrap();
        let again = Spool::open(path.clone()).unwrap();
        assert!(again.pending());
        assert!(std::fs::read(&path).unwrap().ends_with(b"]\n"), "the torn line is cut off");
        assert!(again.append(&[(event("/boot.ipxe"), None)]).unwrap());
        let batches = again.batches().unwrap();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0][0].event, event("/ipxe"));
        assert_eq!(batches[0][0].served.as_deref(), Some("#!ipxe"));
        assert_eq!(
            batches[1].iter().map(|e| e.event.endpoint.as_str()).collect::<Vec<_>>(),
            ["/ignition", "/assets/k"]
        );
        assert_eq!(batches[2][0].event.endpoint, "/boot.ipxe");
        again.forget(2).unwrap();
        assert_eq!(again.batches().unwrap().len(), 1);
        again.forget(1).unwrap();
        assert!(!again.pending() && !path.exists());
    }

    #[test]
    fn a_full_spool_takes_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("s")).unwrap().with_limit(400);
        assert!(spool.append(&[(event("/ipxe"), None)]).unwrap());
        assert!(!spool.append(&[(event("/ipxe"), None), (event("/ipxe"), None)]).unwrap());
        assert_eq!(spool.batches().unwrap().len(), 1);
    }
}
