//! How many queries to Prometheus one person has running at once. Charts, dashboard panels,
//! etcd's quorum and the query box each take a turn; a person (or token) holding all of theirs
//! waits for one, up to a limit, then is refused with a message. One person's many tabs cannot
//! take the Prometheus, or Pangea's connections to it, from everyone else.

use app::access::Principal;
use app::error::AppError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The queries one person may have running at once: a cluster page draws its charts together.
pub const QUERIES_PER_PERSON: usize = 6;

/// How long a query waits for its turn before it is refused.
pub const TURN_WAIT: Duration = Duration::from_secs(20);

/// Each person's turns, by who they act as. An entry goes when its last turn ends.
pub struct QueryTurns {
    people: Mutex<HashMap<String, Arc<Semaphore>>>,
    wait: Duration,
}

/// One running query's turn, given back when dropped.
pub struct QueryTurn<'a> {
    turns: &'a QueryTurns,
    person: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl QueryTurns {
    pub fn new(wait: Duration) -> QueryTurns {
        QueryTurns { people: Mutex::new(HashMap::new()), wait }
    }

    fn people(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        self.people.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for one of `who`'s turns.
    pub async fn take(&self, who: &Principal) -> Result<QueryTurn<'_>, AppError> {
        let person = who.actor();
        let semaphore =
            self.people().entry(person.clone()).or_insert_with(|| Arc::new(Semaphore::new(QUERIES_PER_PERSON))).clone();
        match tokio::time::timeout(self.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(QueryTurn { turns: self, person, permit: Some(permit) }),
            _ => {
                self.forget_if_idle(&person);
                Err(AppError::RateLimited {
                    message: format!(
                        "You already have {QUERIES_PER_PERSON} queries to Prometheus running and more waiting: \
                         wait for them to finish, or close some chart and dashboard tabs."
                    ),
                })
            }
        }
    }

    fn forget_if_idle(&self, person: &str) {
        let mut people = self.people();
        if let Some(semaphore) = people.get(person)
            && Arc::strong_count(semaphore) == 1
            && semaphore.available_permits() == QUERIES_PER_PERSON
        {
            people.remove(person);
        }
    }

    /// How many people have queries running or waiting.
    #[cfg(test)]
    fn people_with_turns(&self) -> usize {
        self.people().len()
    }
}

impl Drop for QueryTurn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.turns.forget_if_idle(&self.person);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::access::Identity;

    fn person(name: &str) -> Principal {
        Principal {
            identity: Identity::Local { user_id: 1, username: name.into() },
            ..Principal::anonymous(None, None)
        }
    }

    #[tokio::test]
    async fn a_person_waits_for_a_turn_then_is_refused_and_others_are_not_held_up() {
        let turns = QueryTurns::new(Duration::from_millis(50));
        let (alice, bob) = (person("alice"), person("bob"));
        let held: Vec<_> = futures::future::join_all((0..QUERIES_PER_PERSON).map(|_| turns.take(&alice))).await;
        let held: Vec<QueryTurn> = held.into_iter().map(Result::unwrap).collect();
        // Bob is not held up by Alice's queries.
        drop(turns.take(&bob).await.unwrap());
        // Alice's next query waits, and is refused in words once the wait is over.
        let refused = turns.take(&alice).await.err().unwrap();
        assert!(matches!(&refused, AppError::RateLimited { message } if message.contains("queries to Prometheus")));
        // A turn given back lets the next query run.
        let mut held = held;
        held.pop();
        let next = turns.take(&alice).await.unwrap();
        drop(next);
        drop(held);
        assert_eq!(turns.people_with_turns(), 0, "no entry outlives its last turn");
    }
}
