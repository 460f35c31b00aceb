//! Background work, owned by [`crate::serve`]: every task runs on one `TaskTracker`, and one
//! cancellation token stops them all, so SIGTERM ends them cleanly and none is forgotten.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Default)]
pub struct Background {
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Background {
    /// Runs `task` until it ends or the server stops.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Runs a task that is told when the server stops and then finishes its work (say, writes
    /// what it has queued); `stop` waits for it.
    pub fn spawn_until_shutdown<F, Fut>(&self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task(self.shutdown.clone()));
    }

    /// Runs `step` every `period` (the first time after one period) until the server stops.
    pub fn every<F, Fut>(&self, period: Duration, mut step: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                step().await;
            }
        });
    }

    /// Stops every task and waits until all have ended.
    pub async fn stop(&self) {
        self.tracker.close();
        self.shutdown.cancel();
        self.tracker.wait().await;
    }

    /// How many tasks are running (for tests and diagnostics).
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_ends_every_task_and_waits_for_them() {
        let background = Background::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        background.every(Duration::from_millis(5), move || {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
            }
        });
        background.spawn(std::future::pending());
        rx.recv().await.expect("the periodic task ran");
        assert_eq!(background.running(), 2);
        background.stop().await;
        assert_eq!(background.running(), 0);
    }
}
