//! Slows password guessing: after too many failures in a window, sign-in for that user name, or
//! from that IP, is refused until the window has passed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PER_USER: u32 = 5;
const PER_IP: u32 = 20;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

fn keys(username: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
    [(format!("user:{username}"), PER_USER), (format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default()), PER_IP)]
}

impl LoginThrottle {
    /// `Err` with a message when this user name or IP must wait.
    pub fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), String> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        for (key, limit) in keys(username, ip) {
            if let Some((count, since)) = failures.get(&key)
                && *count >= limit
            {
                let wait = WINDOW.saturating_sub(since.elapsed()).as_secs() / 60 + 1;
                return Err(format!("Too many failed sign-ins; try again in {wait} minutes."));
            }
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, ip: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in keys(username, ip) {
            failures.entry(key).or_insert((0, Instant::now())).0 += 1;
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_user_and_twenty_lock_the_ip() {
        let t = LoginThrottle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..PER_USER {
            assert!(t.check("alice", ip).is_ok());
            t.failed("alice", ip);
        }
        assert!(t.check("alice", ip).unwrap_err().contains("Too many"));
        assert!(t.check("bob", ip).is_ok(), "other users from the IP may still try");
        for i in 0..PER_IP {
            t.failed(&format!("u{i}"), ip);
        }
        assert!(t.check("carol", ip).is_err());
        assert!(t.check("carol", Some(IpAddr::from([10, 0, 0, 2]))).is_ok());
    }
}
