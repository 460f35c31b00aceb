//! Duties that one replica does at a time, held by lease. Every replica serves every page and
//! every boot request, and runs its own watch caches; what must happen once (pruning, linking
//! nodes to their machines) is done by whichever replica holds that duty's lease. BMC polling is
//! shared out instead: each live replica polls its share of the BMCs (see [`Shard`]).
//!
//! A lease is a row (`leases`: duty, holder, until) taken with one conditional upsert when it is
//! free, expired or already this replica's, and renewed every third of a lease. A replica that
//! stops renewing (it died, or lost its database) loses its duties when the lease runs out, and
//! stops believing it holds them a quarter of a lease before the row expires (so clocks that
//! disagree by less than that never let two replicas hold one duty); another replica takes each
//! over at its next round after the row expired, so a duty changes hands within a lease and a
//! third (10 s + 3.3 s). Clocks are the replicas' own (as the jobs' leases): they must agree to
//! within a second or two, as NTP keeps them.
//!
//! Each replica also keeps a row of its own (`replica:ID`), renewed the same way: the live rows
//! are the replicas a [`Shard`] divides the BMCs among.
//!
//! SQLite serves one process (see [`ServeLock`]); its replica holds every duty.

use crate::db::Database;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(10);

/// Deleting expired sessions and forgetting old jobs.
pub const PRUNE: &str = "prune";
/// Writing nodes' links to their machines (and their timeline events) once.
pub const LINK_NODES: &str = "link-nodes";

/// The duties a serving replica takes when it can.
pub const DUTIES: [&str; 2] = [PRUNE, LINK_NODES];

const REPLICA_PREFIX: &str = "replica:";

/// This replica's part of work shared out among the live replicas: the items whose stable hash
/// modulo `of` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

impl Shard {
    /// All of it, for a replica alone.
    pub const ALL: Shard = Shard { index: 0, of: 1 };

    /// Whether `key` (a BMC's URL, say) is this replica's: FNV-1a, the same on every replica.
    pub fn owns(&self, key: &str) -> bool {
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        match self.of {
            0 => false,
            1 => true,
            of => (hash % of as u64) as usize == self.index,
        }
    }
}

#[derive(Debug)]
pub struct Leases {
    db: Database,
    replica: String,
    lease: Duration,
    /// The duties held, each until when (by this process's clock).
    held: Mutex<BTreeMap<&'static str, Instant>>,
    /// The live replicas at the last round that read them, sorted, and when that round began.
    replicas: Mutex<(Vec<String>, Option<Instant>)>,
}

impl Leases {
    pub fn new(db: Database, replica: String, lease: Duration) -> Leases {
        Leases { db, replica, lease, held: Mutex::default(), replicas: Mutex::default() }
    }

    /// This replica's name in leases.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether this replica holds `duty` now.
    pub fn holds(&self, duty: &str) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).get(duty).is_some_and(|until| *until > Instant::now())
    }

    /// The duties this replica holds now.
    pub fn held(&self) -> Vec<&'static str> {
        let now = Instant::now();
        self.held.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(_, u)| **u > now).map(|(d, _)| *d).collect()
    }

    /// How many replicas were live at the last round.
    pub fn live(&self) -> usize {
        self.replicas.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    /// This replica's share of work divided among the live replicas; none when its last round
    /// that read them is older than a lease (the others have shared its part out by then).
    pub fn shard(&self) -> Shard {
        let replicas = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        let (live, read_at) = &*replicas;
        let fresh = read_at.is_some_and(|at| at.elapsed() < self.lease);
        match live.iter().position(|r| *r == self.replica) {
            Some(index) if fresh => Shard { index, of: live.len() },
            _ => Shard { index: 0, of: 0 },
        }
    }

    /// Takes `duty` if it is free, expired or already this replica's, until a lease from now;
    /// whether this replica holds it.
    async fn take(&self, duty: &str, now: time::OffsetDateTime) -> Result<bool, sqlx::Error> {
        let taken = sqlx::query(
            "INSERT INTO leases (duty, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (duty) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < $4",
        )
        .bind(duty)
        .bind(&self.replica)
        .bind(crate::db::timestamp(now + self.lease))
        .bind(crate::db::timestamp(now))
        .execute(self.db.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// One round: this replica's own row, then each of `duties` taken or renewed, then the live
    /// replicas read. A duty whose renewal fails is let go at once.
    pub async fn round(&self, duties: &[&'static str]) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let now = time::OffsetDateTime::now_utc();
        self.take(&format!("{REPLICA_PREFIX}{}", self.replica), now).await?;
        for duty in duties {
            let held = self.take(duty, now).await.unwrap_or(false);
            let mut all = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held {
                // Counted from before the write, a quarter of a lease short of the row's expiry.
                all.insert(duty, started + self.lease - self.lease / 4);
            } else {
                all.remove(duty);
            }
        }
        let live: Vec<String> =
            sqlx::query_scalar("SELECT duty FROM leases WHERE duty LIKE 'replica:%' AND until >= $1 ORDER BY duty")
                .bind(crate::db::timestamp(now))
                .fetch_all(self.db.pool())
                .await?;
        let live = live.into_iter().filter_map(|r| r.strip_prefix(REPLICA_PREFIX).map(str::to_string)).collect();
        *self.replicas.lock().unwrap_or_else(|p| p.into_inner()) = (live, Some(started));
        Ok(())
    }

    /// Takes and renews [`DUTIES`] in the background: a round now, then every third of a lease.
    pub fn keep_renewing(self: &std::sync::Arc<Self>, background: &crate::background::Background) {
        let leases = self.clone();
        background.every(self.lease / 3, move || {
            let leases = leases.clone();
            async move {
                if let Err(e) = leases.round(&DUTIES).await {
                    tracing::warn!(error = %e, "could not renew this replica's leases");
                }
            }
        });
    }

    /// Lets every lease of this replica go, so others take its duties at once (a clean stop).
    pub async fn release(&self) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let released =
            sqlx::query("DELETE FROM leases WHERE holder = $1").bind(&self.replica).execute(self.db.pool()).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release this replica's leases");
        }
    }
}

/// One `pangea serve` per SQLite file: an exclusive lock on `FILE.serve-lock`, held while the
/// server runs and let go by the system when its process ends, however it ends. The command line
/// does not take it, so it keeps working beside a running server.
#[derive(Debug)]
pub struct ServeLock(#[allow(dead_code)] std::fs::File);

impl ServeLock {
    /// Takes the lock beside `database` (a SQLite file), or says who holds it.
    pub fn take(database: &std::path::Path) -> Result<ServeLock, String> {
        let path = database.with_file_name(format!(
            "{}.serve-lock",
            database.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(format!(
                "another `pangea serve` is running on {}: SQLite serves one process. Stop it, or run replicas on \
                 PostgreSQL (--database-url postgres://…), which share their work by lease.",
                database.display()
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_divides_keys_among_replicas_once_each() {
        let keys: Vec<String> = (0..300).map(|i| format!("https://bmc-{i}.example.com")).collect();
        let shards = [Shard { index: 0, of: 3 }, Shard { index: 1, of: 3 }, Shard { index: 2, of: 3 }];
        for key in &keys {
            assert_eq!(shards.iter().filter(|s| s.owns(key)).count(), 1, "{key}");
        }
        let each: Vec<usize> = shards.iter().map(|s| keys.iter().filter(|k| s.owns(k)).count()).collect();
        assert!(each.iter().all(|n| *n > 60), "roughly even: {each:?}");
        assert!(keys.iter().all(|k| Shard::ALL.owns(k)));
        assert!(!Shard { index: 0, of: 0 }.owns("x"), "a replica not yet seen live polls nothing");
    }

    #[test]
    fn a_second_serve_on_one_sqlite_file_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("not-yet/pangea.db");
        let first = ServeLock::take(&db).unwrap();
        let refused = ServeLock::take(&db).unwrap_err();
        assert!(refused.starts_with(&format!("another `pangea serve` is running on {}", db.display())), "{refused}");
        drop(first);
        ServeLock::take(&db).unwrap();
    }
}
