//! How many alerts fire in each cluster, remembered for a few seconds. The count shows beside
//! "Clusters" on every page, so without this each page view asked every cluster's Alertmanager.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cluster's count is used before its Alertmanager is asked again.
const FIRING_COUNT_TTL: Duration = Duration::from_secs(15);

/// Per cluster: when its count was taken, and the count.
#[derive(Default)]
pub struct FiringCounts {
    taken: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FiringCounts {
    /// The cluster's count, if it was taken less than [`FIRING_COUNT_TTL`] before `now`.
    pub fn fresh(&self, cluster: &str, now: Instant) -> Option<u32> {
        let taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.get(cluster).filter(|(at, _)| now.saturating_duration_since(*at) < FIRING_COUNT_TTL).map(|(_, n)| *n)
    }

    pub fn remember(&self, cluster: &str, count: u32, now: Instant) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.retain(|_, (at, _)| now.saturating_duration_since(*at) < FIRING_COUNT_TTL);
        taken.insert(cluster.to_string(), (now, count));
    }

    /// Forgets the cluster's count, as a silence made or expired there changes it.
    pub fn forget(&self, cluster: &str) {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).remove(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_used_for_fifteen_seconds_then_asked_again() {
        let counts = FiringCounts::default();
        let t0 = Instant::now();
        assert_eq!(counts.fresh("prod", t0), None);
        counts.remember("prod", 3, t0);
        assert_eq!(counts.fresh("prod", t0 + Duration::from_millis(14_999)), Some(3));
        assert_eq!(counts.fresh("prod", t0 + Duration::from_secs(15)), None);
        assert_eq!(counts.fresh("staging", t0), None);
    }

    #[test]
    fn forgetting_a_cluster_asks_it_again_and_old_counts_are_dropped() {
        let counts = FiringCounts::default();
        let t0 = Instant::now();
        counts.remember("prod", 3, t0);
        counts.remember("staging", 1, t0);
        counts.forget("prod");
        assert_eq!(counts.fresh("prod", t0), None);
        assert_eq!(counts.fresh("staging", t0), Some(1));
        counts.remember("prod", 0, t0 + Duration::from_secs(20));
        assert_eq!(counts.taken.lock().unwrap().len(), 1, "staging's stale count is gone");
    }
}
