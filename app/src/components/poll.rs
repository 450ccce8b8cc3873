//! Pages that follow something live (a running job, an upload) look again
//! on a timer. One rule for all of them: while the thing is live, look again
//! after `every`; once it is finished, stop; when a look fails (the server
//! restarting, a dropped connection, a busy machine), keep looking, more
//! slowly, so that one failed request never freezes a page that should move.

use leptos::prelude::*;
use std::time::Duration;

/// How long after a look failed the page looks again.
pub const RETRY_AFTER: Duration = Duration::from_secs(3);

/// When to look next, given the last answer: `None` stops the page's timer.
/// `None` for no answer yet: the first answer schedules the next look.
pub fn next_look<T, E>(last: Option<&Result<T, E>>, live: impl Fn(&T) -> bool, every: Duration) -> Option<Duration> {
    match last? {
        Ok(value) => live(value).then_some(every),
        Err(_) => Some(every.max(RETRY_AFTER)),
    }
}

/// Bumps `tick` (which the page's resource reads) on `next_look`'s timer.
/// One timer at a time: each new answer replaces the previous timer.
pub fn follow<T, E>(resource: Resource<Result<T, E>>, tick: RwSignal<u32>, every: Duration, live: impl Fn(&T) -> bool + Send + Sync + 'static)
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        let last = resource.get();
        if let Some(after) = next_look(last.as_ref(), &live, every) {
            if let Ok(timer) = set_timeout_with_handle(move || tick.update(|n| *n += 1), after) {
                on_cleanup(move || timer.clear());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_live_thing_is_followed_a_finished_one_is_not() {
        let live = |n: &u32| *n < 3;
        assert_eq!(next_look::<u32, ()>(Some(&Ok(1)), live, SECOND), Some(SECOND));
        assert_eq!(next_look::<u32, ()>(Some(&Ok(3)), live, SECOND), None);
        assert_eq!(next_look::<u32, ()>(None, live, SECOND), None);
    }

    #[test]
    fn a_failed_look_is_retried_never_faster_than_the_retry_pace() {
        let live = |_: &u32| false;
        assert_eq!(next_look::<u32, &str>(Some(&Err("connection reset")), live, SECOND), Some(RETRY_AFTER));
        let slow = Duration::from_secs(10);
        assert_eq!(next_look::<u32, &str>(Some(&Err("busy")), live, slow), Some(slow));
    }
}
