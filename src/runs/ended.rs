//! The last state of the temporary threads of stateless runs (`on_completion: delete`), kept
//! for a short while after the thread is deleted: a client that creates a background stateless
//! run and joins it (`runs.create(None, …)` then `runs.join(thread_id, run_id)`) gets the
//! run's final values even when the run finished, and its thread went, before the join
//! arrived — as the reference answers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::storage::Thread;

/// How long a deleted temporary thread's last state answers joins.
const KEEP: Duration = Duration::from_secs(120);

/// At most this many are kept (the oldest go first), so a burst of stateless runs cannot
/// grow memory without bound.
const MAX_KEPT: usize = 2048;

/// The deleted temporary threads, oldest first.
#[derive(Debug, Default)]
pub(super) struct EndedThreads {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// (run id, when kept), in the order kept.
    order: VecDeque<(Uuid, Instant)>,
    threads: HashMap<Uuid, Thread>,
}

impl EndedThreads {
    /// Keeps `thread` (as stored when `run_id` ended, before it is deleted).
    pub(super) fn keep(&self, run_id: Uuid, thread: Thread) {
        let now = Instant::now();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.forget_expired(now);
        while kept.order.len() >= MAX_KEPT {
            kept.forget_oldest();
        }
        kept.order.push_back((run_id, now));
        kept.threads.insert(run_id, thread);
    }

    /// The temporary thread `thread_id` as `run_id` left it, if it was deleted lately.
    pub(super) fn get(&self, thread_id: Uuid, run_id: Uuid) -> Option<Thread> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.forget_expired(Instant::now());
        kept.threads.get(&run_id).filter(|thread| thread.thread_id == thread_id).cloned()
    }
}

impl Kept {
    fn forget_expired(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(_, at)| now.duration_since(*at) > KEEP) {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((run_id, _)) = self.order.pop_front() {
            self.threads.remove(&run_id);
        }
    }
}
