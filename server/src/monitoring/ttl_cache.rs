//! Answers of Pangea's sources, remembered for a few seconds, so that many page views (or the
//! panels of one dashboard) ask a source once.
//! - How many alerts fire in each cluster: the count shows beside "Clusters" on every page.
//! - The values a dashboard variable may take (`label_values(…)` and the like): every panel of
//!   a dashboard needs them when "All" is chosen.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each used for `ttl` after it was taken.
pub struct TtlCache<K, V> {
    ttl: Duration,
    taken: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache { ttl, taken: Mutex::new(HashMap::new()) }
    }

    /// The value for `key`, if it was taken less than the TTL before `now`.
    pub fn fresh<Q: Eq + Hash + ?Sized>(&self, key: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.get(key).filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl).map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `key` as taken at `now`, and drops the values past their TTL.
    pub fn remember(&self, key: K, value: V, now: Instant) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
        taken.insert(key, (now, value));
    }

    /// Forgets `key`'s value, for a change that makes it wrong (a silence made or expired).
    pub fn forget<Q: Eq + Hash + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_used_for_its_ttl_then_asked_again() {
        let counts: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(15));
        let t0 = Instant::now();
        assert_eq!(counts.fresh("prod", t0), None);
        counts.remember("prod".into(), 3, t0);
        assert_eq!(counts.fresh("prod", t0 + Duration::from_millis(14_999)), Some(3));
        assert_eq!(counts.fresh("prod", t0 + Duration::from_secs(15)), None);
        assert_eq!(counts.fresh("staging", t0), None);
    }

    #[test]
    fn a_forgotten_key_is_asked_again_and_stale_values_are_dropped() {
        let counts: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(15));
        let t0 = Instant::now();
        counts.remember("prod".into(), 3, t0);
        counts.remember("staging".into(), 1, t0);
        counts.forget("prod");
        assert_eq!(counts.fresh("prod", t0), None);
        assert_eq!(counts.fresh("staging", t0), Some(1));
        counts.remember("prod".into(), 0, t0 + Duration::from_secs(20));
        assert_eq!(counts.taken.lock().unwrap().len(), 1, "staging's stale value is gone");
    }
}
