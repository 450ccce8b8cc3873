//! A cache kept fresh from AWS by a background loop: the SageMaker training
//! jobs and endpoints. What both share lives here: one round at a time (a
//! page asking for a refresh while one runs waits for it rather than
//! starting another), a short wait while something changes and a long one
//! when all is settled, doubling after each failure up to a cap, an early
//! wake-up after a change the console made, and the state a page shows
//! ("refreshed 12 s ago", the last error, the next round).

use app::training::sagemaker::CacheState;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a poller waits between rounds.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// While something changes (a job runs, an endpoint updates).
    pub busy: Duration,
    /// When everything is settled.
    pub idle: Duration,
    /// The longest wait after failures.
    pub max_backoff: Duration,
}

impl Pace {
    /// The wait after a round: `busy` or `idle`, doubled after each failure
    /// up to `max_backoff`.
    pub fn next_wait(&self, busy: bool, failures: u32) -> Duration {
        let base = if busy { self.busy } else { self.idle };
        if failures == 0 {
            base
        } else {
            (base * 2u32.saturating_pow(failures.min(8))).min(self.max_backoff)
        }
    }
}

struct State {
    refreshed_at: Option<String>,
    error: Option<String>,
    next_at: Instant,
    failures: u32,
    /// Rounds completed without an error.
    rounds: i64,
}

/// One poller's loop state.
pub struct Poller {
    pace: Pace,
    wake: tokio::sync::Notify,
    running: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

impl Poller {
    pub fn new(pace: Pace) -> Poller {
        Poller {
            pace,
            wake: tokio::sync::Notify::new(),
            running: tokio::sync::Mutex::new(()),
            state: Mutex::new(State { refreshed_at: None, error: None, next_at: Instant::now(), failures: 0, rounds: 0 }),
        }
    }

    /// Waits `wait`, or less when woken.
    pub async fn sleep(&self, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.wake.notified() => {}
        }
    }

    /// Asks for a round now (after a change the console made).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// One round, unless one is running: then waits for it. Returns the wait
    /// before the next.
    pub async fn round<Fut>(&self, work: impl FnOnce(i64) -> Fut) -> Duration
    where
        Fut: Future<Output = Result<bool, app::ApiError>>,
    {
        let _running = match self.running.try_lock() {
            Ok(g) => g,
            Err(_) => {
                let _ = self.running.lock().await;
                return self.state.lock().expect("poll state").next_at.saturating_duration_since(Instant::now());
            }
        };
        let result = work(self.next_round()).await;
        let mut state = self.state.lock().expect("poll state");
        let wait = match result {
            Ok(busy) => {
                state.failures = 0;
                state.error = None;
                state.refreshed_at = Some(crate::store::now());
                state.rounds += 1;
                self.pace.next_wait(busy, 0)
            }
            Err(e) => {
                state.failures += 1;
                state.error = Some(e.message().to_string());
                self.pace.next_wait(false, state.failures)
            }
        };
        state.next_at = Instant::now() + wait;
        tracing::debug!(error = ?state.error, next_in = ?wait, "refreshed");
        wait
    }

    /// The number the round in progress (or the next one) has.
    pub fn next_round(&self) -> i64 {
        self.state.lock().expect("poll state").rounds + 1
    }

    /// What a page shows about the cache's freshness.
    pub fn cache_state(&self) -> CacheState {
        let state = self.state.lock().expect("poll state");
        CacheState {
            refreshed_at: state.refreshed_at.clone(),
            error: state.error.clone(),
            next_refresh_seconds: state.next_at.saturating_duration_since(Instant::now()).as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Pace = Pace { busy: Duration::from_secs(10), idle: Duration::from_secs(30), max_backoff: Duration::from_secs(300) };

    #[test]
    fn the_wait_is_short_while_busy_and_doubles_after_each_failure_up_to_the_cap() {
        assert_eq!(PACE.next_wait(true, 0), PACE.busy);
        assert_eq!(PACE.next_wait(false, 0), PACE.idle);
        assert_eq!(PACE.next_wait(false, 1), PACE.idle * 2);
        assert_eq!(PACE.next_wait(false, 2), PACE.idle * 4);
        assert_eq!(PACE.next_wait(false, 30), PACE.max_backoff);
    }

    #[tokio::test]
    async fn a_failed_round_keeps_its_error_and_backs_off_and_a_good_one_counts() {
        let poller = Poller::new(PACE);
        let wait = poller.round(|_| async { Err(app::ApiError::Throttled("throttled".into())) }).await;
        assert_eq!(wait, PACE.idle * 2);
        assert_eq!(poller.cache_state().error.as_deref(), Some("throttled"));
        assert_eq!(poller.next_round(), 1, "a failed round is not counted");
        let wait = poller.round(|n| async move { Ok(n == 1) }).await;
        assert_eq!(wait, PACE.busy, "the first counted round is number 1, and it said busy");
        assert!(poller.cache_state().error.is_none() && poller.cache_state().refreshed_at.is_some());
        assert_eq!(poller.next_round(), 2);
    }
}
