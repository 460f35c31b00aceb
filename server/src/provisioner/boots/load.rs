//! The boot listener's own load, as it measures it: how many boot requests it answered in each
//! 10 s of the last hour, and how long they took to answer. A power run's plan shows it beside
//! its budgets, so a person sees whether the listener or a budget binds.

use app::power::ListenerLoad;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds per bucket, and buckets kept (an hour).
const BUCKET: u64 = 10;
const BUCKETS: usize = 360;

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Which 10 s since the epoch this bucket counts (0: none yet).
    window: u64,
    requests: u64,
    busy_us: u64,
}

#[derive(Default)]
pub struct Load {
    buckets: Mutex<Vec<Bucket>>,
}

fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl Load {
    /// Counts one answered request that took `took` to answer.
    pub fn record(&self, took: Duration) {
        self.record_at(now_seconds(), took);
    }

    fn record_at(&self, at: u64, took: Duration) {
        let window = at / BUCKET;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.is_empty() {
            buckets.resize(BUCKETS, Bucket::default());
        }
        let bucket = &mut buckets[(window % BUCKETS as u64) as usize];
        if bucket.window != window {
            *bucket = Bucket { window, ..Bucket::default() };
        }
        bucket.requests += 1;
        bucket.busy_us += took.as_micros().min(u128::from(u64::MAX)) as u64;
    }

    /// The last hour's load, and what the listener can answer in a second on `cores` cores at
    /// the answer time it measured.
    pub fn measured(&self, cores: usize) -> ListenerLoad {
        self.measured_at(now_seconds(), cores)
    }

    fn measured_at(&self, at: u64, cores: usize) -> ListenerLoad {
        let oldest = (at / BUCKET).saturating_sub(BUCKETS as u64 - 1);
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let recent = buckets.iter().filter(|b| b.window >= oldest && b.requests > 0);
        let (requests, busy_us, busiest) =
            recent.fold((0u64, 0u64, 0u64), |(r, u, m), b| (r + b.requests, u + b.busy_us, m.max(b.requests)));
        let mean_answer_us = busy_us.checked_div(requests).unwrap_or_default();
        ListenerLoad {
            requests,
            mean_answer_us,
            peak_per_second: busiest.div_ceil(BUCKET),
            capacity_per_second: (requests > 0).then(|| cores as u64 * 1_000_000 / mean_answer_us.max(1)),
            cores: cores as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hour_is_counted_and_older_requests_are_forgotten() {
        let load = Load::default();
        assert_eq!(load.measured_at(10_000, 2), ListenerLoad { cores: 2, ..ListenerLoad::default() });
        // 50 requests of 2 ms in one 10 s window, 10 of 4 ms in another.
        for _ in 0..50 {
            load.record_at(10_000, Duration::from_millis(2));
        }
        for _ in 0..10 {
            load.record_at(10_020, Duration::from_millis(4));
        }
        let measured = load.measured_at(10_030, 2);
        assert_eq!((measured.requests, measured.peak_per_second), (60, 5));
        assert_eq!(measured.mean_answer_us, (50 * 2000 + 10 * 4000) / 60);
        assert_eq!(measured.capacity_per_second, Some(2 * 1_000_000 / 2333));
        // An hour later the first window is gone; its bucket is reused by a new window.
        let measured = load.measured_at(10_000 + 3600, 2);
        assert_eq!(measured.requests, 10);
        load.record_at(10_000 + 3600, Duration::from_millis(1));
        assert_eq!(load.measured_at(10_000 + 3600, 2).requests, 11);
    }
}
