//! Slows password guessing with backoff, never a lockout. Each attempt is counted the moment it
//! starts (under one lock, so parallel guesses cannot all slip past the check), and a success
//! takes its own count back. Three counters:
//! - one user name from one IP: 5 failures free, then a wait that doubles with each failure;
//! - one IP, whatever the user name: 20 failures free, then the same doubling wait;
//! - one user name from anywhere: 100 failures free, then a wait of at most a minute, which
//!   slows a guesser spread over many addresses without shutting the owner out for long.
//!
//! So someone guessing the break-glass `admin` from one address slows down that address, not the
//! real admin signing in from another. Failures are forgotten after 15 minutes without one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy)]
struct Rule {
    free: u32,
    longest_wait: Duration,
}

const PER_USER_AND_IP: Rule = Rule { free: 5, longest_wait: LONGEST_WAIT };
const PER_IP: Rule = Rule { free: 20, longest_wait: LONGEST_WAIT };
const PER_USER: Rule = Rule { free: 100, longest_wait: Duration::from_secs(60) };

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Failures>>,
}

/// An address as the throttle counts it: IPv4 as it is, IPv6 by its /64 (one customer's
/// network usually holds a whole /64, so single IPv6 addresses cost an attacker nothing).
fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn keys(username: &str, ip: Option<IpAddr>) -> [(String, Rule); 3] {
    let ip = ip.map(address_key).unwrap_or_default();
    [
        (format!("user-ip:{username}\u{0}{ip}"), PER_USER_AND_IP),
        (format!("ip:{ip}"), PER_IP),
        (format!("user:{username}"), PER_USER),
    ]
}

/// The wait after `count` failures under `rule`: none while free, then 1 s, 2 s, 4 s, …
fn wait_after(count: u32, rule: Rule) -> Duration {
    if count < rule.free {
        return Duration::ZERO;
    }
    let doublings = (count - rule.free).min(20);
    Duration::from_secs(1u64 << doublings).min(rule.longest_wait)
}

/// An attempt in progress: it counts as a failure unless [`Attempt::succeeded`] is called.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [(String, Rule); 3],
}

impl Attempt<'_> {
    /// The password was right: this attempt no longer counts, and the user's own counters
    /// start again (the IP's does not: an address that guesses many names stays slowed).
    pub fn succeeded(self) {
        let mut failures = self.throttle.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in &self.keys {
            if !key.starts_with("ip:") {
                failures.remove(key);
            } else if let Some(f) = failures.get_mut(key) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }
}

impl LoginThrottle {
    /// Starts an attempt, or says how long this user name or address must wait first.
    pub fn attempt(&self, username: &str, ip: Option<IpAddr>) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        let keys = keys(username, ip);
        let wait = keys
            .iter()
            .filter_map(|(key, rule)| {
                let f = failures.get(key)?;
                wait_after(f.count, *rule).checked_sub(now.duration_since(f.last))
            })
            .filter(|w| !w.is_zero())
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in &keys {
            let f = failures.entry(key.clone()).or_insert(Failures { count: 0, last: now });
            f.count += 1;
            f.last = now;
        }
        Ok(Attempt { throttle: self, keys })
    }
}

/// "3 seconds", "2 minutes": how long to wait, for people.
pub fn wait_text(wait: Duration) -> String {
    let secs = wait.as_secs_f64().ceil() as u64;
    match secs {
        0..=1 => "1 second".into(),
        2..=119 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &LoginThrottle, user: &str, ip: Option<IpAddr>) {
        drop(t.attempt(user, ip).expect("may try"));
    }

    #[test]
    fn five_failures_of_a_user_from_one_address_slow_only_that_address() {
        let t = LoginThrottle::default();
        let (here, there) = (Some(IpAddr::from([10, 0, 0, 1])), Some(IpAddr::from([10, 0, 0, 2])));
        for _ in 0..5 {
            fail(&t, "admin", here);
        }
        let wait = t.attempt("admin", here).err().expect("the sixth try waits");
        assert!(wait <= Duration::from_secs(1) && !wait.is_zero(), "{wait:?}");
        assert!(t.attempt("admin", there).is_ok(), "the real admin elsewhere is not shut out");
        assert!(t.attempt("bob", here).is_ok(), "other users from the address may still try");
    }

    #[test]
    fn twenty_failures_from_one_address_slow_it_for_every_name() {
        let t = LoginThrottle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 3]));
        for i in 0..20 {
            fail(&t, &format!("user{i}"), ip);
        }
        assert!(t.attempt("carol", ip).is_err());
        assert!(t.attempt("carol", Some(IpAddr::from([10, 0, 0, 4]))).is_ok());
    }

    #[test]
    fn waits_double_and_stop_growing() {
        let rule = Rule { free: 5, longest_wait: Duration::from_secs(900) };
        let waits: Vec<u64> = (4..10).map(|n| wait_after(n, rule).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16]);
        assert_eq!(wait_after(40, rule), Duration::from_secs(900));
        assert_eq!(wait_after(200, PER_USER), Duration::from_secs(60), "a user name is never shut out for long");
    }

    #[test]
    fn parallel_attempts_are_all_counted() {
        let t = LoginThrottle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 5]));
        // Five attempts under way at once, none finished: a sixth must wait already.
        let attempts: Vec<_> = (0..5).map(|_| t.attempt("admin", ip).unwrap()).collect();
        assert!(t.attempt("admin", ip).is_err());
        drop(attempts);
    }

    #[test]
    fn a_success_takes_its_attempt_back() {
        let t = LoginThrottle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 6]));
        for _ in 0..4 {
            fail(&t, "admin", ip);
        }
        t.attempt("admin", ip).unwrap().succeeded();
        for _ in 0..5 {
            fail(&t, "admin", ip);
        }
        assert!(t.attempt("admin", ip).is_err());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let t = LoginThrottle::default();
        for i in 1..=20u16 {
            fail(&t, &format!("user{i}"), Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i])));
        }
        assert!(t.attempt("x", Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 0, 0, 99]))).is_err());
        assert!(t.attempt("x", Some(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]))).is_ok());
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(wait_text(Duration::from_millis(300)), "1 second");
        assert_eq!(wait_text(Duration::from_secs(16)), "16 seconds");
        assert_eq!(wait_text(Duration::from_secs(900)), "15 minutes");
    }
}
