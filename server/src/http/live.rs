//! Live streams (server-sent events) that end when their person may no longer watch them.
//!
//! The access middleware gives every console request a [`LiveCheck`]: who the caller is and a
//! way to ask again (their session still listed, their token not revoked, their role). A
//! handler that answers with a stream wraps it with [`LiveCheck::guard`], which
//! - takes one of the person's [`STREAMS_PER_PERSON`] stream slots, or refuses with a message;
//! - asks again every [`RECHECK_EVERY`], and ends the stream once the answer is no.
//!
//! [`LiveCheck::watch`] does the same for a connection that is not a stream of items (a proxied
//! WebSocket).

use app::access::Principal;
use app::error::AppError;
use futures::{Stream, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often an open stream checks that its person may still watch it.
pub const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// After this long without news a stream sends a comment, so proxies keep it open. It is also
/// how soon the stream of a page that went away is noticed (the write fails) and its slot given
/// back: a server does not read a connection while it sends an answer.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Live streams one person (or token) may have open at once: a page opens one or two.
pub const STREAMS_PER_PERSON: usize = 16;

/// Asks again who the caller of a request is now: `None` once their session or token has ended.
pub type Reresolve = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Principal>> + Send>> + Send + Sync>;

/// Open streams per person, for the whole process.
#[derive(Clone, Default)]
pub struct OpenStreams(Arc<Mutex<HashMap<String, usize>>>);

impl OpenStreams {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many streams `person` has open.
    pub fn open(&self, person: &str) -> usize {
        self.counts().get(person).copied().unwrap_or(0)
    }
}

/// One open stream's place in its person's count, given back when the stream ends.
struct Slot {
    streams: OpenStreams,
    person: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.streams.counts();
        if let Some(open) = counts.get_mut(&self.person) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.person);
            }
        }
    }
}

/// What a stream handler needs to keep its stream to the people who may see it.
#[derive(Clone)]
pub struct LiveCheck {
    person: String,
    streams: OpenStreams,
    reresolve: Reresolve,
    every: Duration,
}

impl LiveCheck {
    pub fn new(who: &Principal, streams: OpenStreams, reresolve: Reresolve, every: Duration) -> LiveCheck {
        LiveCheck { person: who.actor(), streams, reresolve, every }
    }

    /// `stream`, ended when the caller's session or token ends or `still_may` says no (checked
    /// every [`RECHECK_EVERY`]). Refused when the caller already has [`STREAMS_PER_PERSON`] open.
    pub fn guard<S, F>(
        &self,
        stream: S,
        still_may: F,
    ) -> Result<impl Stream<Item = S::Item> + Send + 'static + use<S, F>, AppError>
    where
        S: Stream + Send + 'static,
        F: Fn(&Principal) -> bool + Send + 'static,
    {
        Ok(stream.take_until(Box::pin(self.watch(still_may)?)))
    }

    /// Takes one of the caller's stream slots, and returns what finishes (giving it back) once
    /// the caller's session or token has ended or `still_may` says no: a connection that is not
    /// a stream of items (a proxied WebSocket) races its copying against it.
    pub fn watch<F>(&self, still_may: F) -> Result<impl Future<Output = ()> + Send + 'static + use<F>, AppError>
    where
        F: Fn(&Principal) -> bool + Send + 'static,
    {
        let slot = {
            let mut counts = self.streams.counts();
            let open = counts.entry(self.person.clone()).or_insert(0);
            if *open >= STREAMS_PER_PERSON {
                return Err(AppError::RateLimited {
                    message: format!(
                        "You have {STREAMS_PER_PERSON} live views open already: close some tabs of Pangea, then reload."
                    ),
                });
            }
            *open += 1;
            Slot { streams: self.streams.clone(), person: self.person.clone() }
        };
        let (reresolve, every) = (self.reresolve.clone(), self.every);
        Ok(async move {
            let _slot = slot;
            loop {
                tokio::time::sleep(every).await;
                match reresolve().await {
                    Some(who) if still_may(&who) => continue,
                    _ => break,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::access::{ConsoleRole, Identity};
    use std::sync::atomic::{AtomicBool, Ordering};

    fn alice() -> Principal {
        Principal {
            identity: Identity::Local { user_id: 1, username: "alice".into() },
            role: Some(ConsoleRole::Viewer),
            ..Principal::anonymous(None, None)
        }
    }

    #[tokio::test]
    async fn a_stream_ends_when_its_person_may_no_longer_watch_and_slots_are_capped() {
        let signed_in = Arc::new(AtomicBool::new(true));
        let reresolve: Reresolve = {
            let signed_in = signed_in.clone();
            Arc::new(move || {
                let now = signed_in.load(Ordering::SeqCst).then(alice);
                Box::pin(async move { now })
            })
        };
        let streams = OpenStreams::default();
        let every = Duration::from_millis(20);
        let live = LiveCheck::new(&alice(), streams.clone(), reresolve, every);
        let forever = || futures::stream::pending::<u32>();
        let mut watched = Box::pin(live.guard(futures::stream::iter([1]).chain(forever()), |_| true).unwrap());
        assert_eq!(watched.next().await, Some(1));
        // Still signed in after a few checks: the stream goes on.
        let waited = tokio::time::timeout(every * 5, watched.next()).await;
        assert!(waited.is_err(), "the stream went on");
        assert_eq!(streams.open("alice"), 1);
        // Signed out: the stream ends at the next check, and its slot is given back.
        signed_in.store(false, Ordering::SeqCst);
        assert_eq!(tokio::time::timeout(Duration::from_secs(10), watched.next()).await, Ok(None));
        drop(watched);
        assert_eq!(streams.open("alice"), 0);
        // At most STREAMS_PER_PERSON at once.
        let open: Vec<_> = (0..STREAMS_PER_PERSON).map(|_| live.guard(forever(), |_| true).unwrap()).collect();
        assert!(matches!(live.guard(forever(), |_| true), Err(AppError::RateLimited { .. })));
        drop(open);
        assert!(live.guard(forever(), |_| true).is_ok());
    }
}
