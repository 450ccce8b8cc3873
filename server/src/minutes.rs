//! Counters per name and minute, kept in memory between flushes to SQLite:
//! what the endpoints' and the local functions' metrics share. A request
//! adds to its minute's bucket under a lock held for a few instructions;
//! a flush every few seconds (and before every read, and at shutdown) takes
//! the buckets and adds them to the table.

use app::ApiError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The current minute, in minutes since the Unix epoch.
pub fn now_minute() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp().div_euclid(60)
}

pub struct MinuteBuffer<B> {
    pending: Mutex<HashMap<(String, i64), B>>,
}

impl<B: Default> Default for MinuteBuffer<B> {
    fn default() -> Self {
        MinuteBuffer { pending: Mutex::new(HashMap::new()) }
    }
}

impl<B: Default> MinuteBuffer<B> {
    /// Changes this minute's bucket of `name`.
    pub fn add(&self, name: &str, change: impl FnOnce(&mut B)) {
        let mut pending = self.pending.lock().expect("minute buffer");
        change(pending.entry((name.to_string(), now_minute())).or_default());
    }

    /// Every bucket since the last take: ((name, minute), bucket).
    pub fn take(&self) -> Vec<((String, i64), B)> {
        std::mem::take(&mut *self.pending.lock().expect("minute buffer")).into_iter().collect()
    }
}

/// Runs `flush` every `every` until the process ends; a failure is logged
/// and the next tick tries again.
pub fn spawn_flusher<T, F, Fut>(owner: Arc<T>, every: Duration, what: &'static str, flush: F)
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ApiError>> + Send,
{
    tokio::spawn(tracing::Instrument::instrument(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = flush(owner.clone()).await {
                tracing::warn!(error = %e, "{what} flush failed; will retry");
            }
        }
    }, tracing::info_span!("flusher", what)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_add_up_per_name_and_minute_until_taken() {
        let buffer: MinuteBuffer<u32> = MinuteBuffer::default();
        buffer.add("a", |n| *n += 1);
        buffer.add("a", |n| *n += 2);
        buffer.add("b", |n| *n += 5);
        let mut taken = buffer.take();
        taken.sort();
        assert_eq!(taken.iter().map(|((name, _), n)| (name.as_str(), *n)).collect::<Vec<_>>(), [("a", 3), ("b", 5)]);
        assert!(buffer.take().is_empty());
    }
}
