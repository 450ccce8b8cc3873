//! Failures per key in a sliding window. Sign-in counts failures per client
//! address and per user name tried, so neither one address guessing many
//! names nor many addresses guessing one name get more than a few tries; the
//! guard counts refused anonymous requests per address, to cap how many of
//! them the journal takes.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub struct FailureWindow {
    window: Duration,
    max_failures: usize,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl FailureWindow {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { window, max_failures, failures: HashMap::new() }
    }

    /// `Err(wait)` while any key has used up its failures in the window.
    pub fn check(&mut self, keys: &[String], now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(times) = self.failures.get_mut(key) {
                prune(times, now, self.window);
                if times.len() >= self.max_failures {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max(self.window.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            // At least a second, so Retry-After never reads 0.
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    pub fn failed(&mut self, keys: &[String], now: Instant) {
        // The map is bounded: an attacker rotating names cannot grow it forever.
        if self.failures.len() > 10_000 {
            let window = self.window;
            self.failures.retain(|_, t| {
                prune(t, now, window);
                !t.is_empty()
            });
        }
        for key in keys {
            self.failures.entry(key.clone()).or_default().push_back(now);
        }
    }

    /// A correct password clears that user's failures (not the address's).
    pub fn succeeded(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Takes back the newest entry of `key`: an attempt counted before it was
    /// checked (so concurrent attempts cannot all pass the limit) that turned
    /// out right.
    pub fn forget_last(&mut self, key: &str) {
        if let Some(times) = self.failures.get_mut(key) {
            times.pop_back();
        }
    }

    /// Checks and counts in one step, as one more attempt: `Err(wait)` when
    /// the keys have no attempt left.
    pub fn attempt(&mut self, keys: &[String], now: Instant) -> Result<(), Duration> {
        self.check(keys, now)?;
        self.failed(keys, now);
        Ok(())
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ip: &str, user: &str) -> Vec<String> {
        vec![format!("ip:{ip}"), format!("user:{user}")]
    }

    #[test]
    fn five_failures_then_a_wait_until_the_window_moves() {
        let mut l = FailureWindow::new(5, Duration::from_secs(900));
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(l.check(&keys("1.1.1.1", "ann"), t0 + Duration::from_secs(i)).is_ok());
            l.failed(&keys("1.1.1.1", "ann"), t0 + Duration::from_secs(i));
        }
        let wait = l.check(&keys("1.1.1.1", "ann"), t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(890));
        // The same address trying another name is still blocked, and so is
        // another address trying the same name.
        assert!(l.check(&keys("1.1.1.1", "bob"), t0 + Duration::from_secs(10)).is_err());
        assert!(l.check(&keys("2.2.2.2", "ann"), t0 + Duration::from_secs(10)).is_err());
        assert!(l.check(&keys("2.2.2.2", "bob"), t0 + Duration::from_secs(10)).is_ok());
        // Once the first failure leaves the window, one more try is allowed.
        assert!(l.check(&keys("1.1.1.1", "ann"), t0 + Duration::from_secs(900)).is_ok());
    }

    #[test]
    fn attempts_are_counted_before_they_are_judged() {
        let mut l = FailureWindow::new(5, Duration::from_secs(900));
        let t0 = Instant::now();
        // Forty at once: five get a try, whatever their outcome later.
        let admitted = (0..40).filter(|_| l.attempt(&keys("3.3.3.3", "ann"), t0).is_ok()).count();
        assert_eq!(admitted, 5);
        // One of them was right: its count is taken back, and the user's cleared.
        l.forget_last("ip:3.3.3.3");
        l.succeeded("user:ann");
        assert!(l.attempt(&keys("3.3.3.3", "ann"), t0).is_ok());
        assert!(l.attempt(&keys("3.3.3.3", "ann"), t0).is_err());
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let mut l = FailureWindow::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        l.failed(&keys("9.9.9.9", "ann"), t0);
        l.failed(&keys("9.9.9.9", "ann"), t0);
        l.succeeded("user:ann");
        assert!(l.check(&["user:ann".to_string()], t0).is_ok());
        assert!(l.check(&["ip:9.9.9.9".to_string()], t0).is_err());
    }
}
