//! The thread-wide stream (`GET /threads/{id}/stream`): every run event of a thread, live,
//! with ids always, plus a `run_done` marker per run. A bounded replay buffer serves
//! `Last-Event-ID`; a slow reader that falls behind the live channel skips what it missed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::broadcast;

use super::RunEvent;

/// How many recent events a thread stream keeps for `Last-Event-ID` replays.
const REPLAY: usize = 1000;

/// The event name that tells a thread stream's subscriber the stream is over.
pub const CLOSED: &str = "";

/// Live events of one thread.
#[derive(Debug)]
pub struct ThreadChannel {
    live: broadcast::Sender<RunEvent>,
    recent: Mutex<VecDeque<RunEvent>>,
    sequence: AtomicU64,
    /// Wakes the follower of a shared storage's thread stream (a run was created here).
    wake: tokio::sync::Notify,
    /// The thread was deleted; the follower ends the stream.
    orphaned: AtomicBool,
    /// When the thread was created (which thread of this id the stream is).
    created_at: i64,
}

impl ThreadChannel {
    /// The stream of the thread created at `created_at`.
    pub fn new(created_at: i64) -> Self {
        Self {
            live: broadcast::channel(1024).0,
            recent: Mutex::new(VecDeque::new()),
            sequence: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            orphaned: AtomicBool::new(false),
            created_at,
        }
    }

    pub fn created_at(&self) -> i64 {
        self.created_at
    }
}

impl ThreadChannel {
    /// Publishes an event (re-identified in this thread's sequence).
    pub fn publish(&self, event: &str, data: std::sync::Arc<str>) {
        let millis = crate::timestamp::now_micros() / 1000;
        let id = format!("{millis}-{}", self.sequence.fetch_add(1, Ordering::Relaxed));
        let event = RunEvent { id: Some(id), event: event.to_string(), data };
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == REPLAY {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        // Sent under the lock so a subscriber's replay and live parts never overlap or gap.
        let _ = self.live.send(event);
    }

    /// The stored events after `last_event_id` (`-`: all) and the live receiver from there.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> (Vec<RunEvent>, broadcast::Receiver<RunEvent>) {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = self.live.subscribe();
        let replay = match last_event_id {
            None => Vec::new(),
            Some("-") => recent.iter().cloned().collect(),
            Some(after) => {
                let after = super::channel::parse_id(after);
                recent.iter().filter(|event| event.id.as_deref().map(super::channel::parse_id).is_some_and(|id| id > after)).cloned().collect()
            }
        };
        (replay, receiver)
    }

    /// Ends every subscriber's stream (the thread was deleted): they receive [`CLOSED`].
    pub fn close(&self) {
        let _recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self.live.send(RunEvent { id: None, event: CLOSED.to_string(), data: std::sync::Arc::from("") });
    }

    /// Tells the follower to look for new runs now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until [`ThreadChannel::wake`] or `limit`.
    pub async fn woken(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, self.wake.notified()).await;
    }

    /// The thread was deleted: the stream ends once its follower has published what it follows.
    pub fn orphan(&self) {
        self.orphaned.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::SeqCst)
    }

    /// Whether anyone is listening.
    pub fn has_subscribers(&self) -> bool {
        self.live.receiver_count() > 0
    }
}

/// `-` or `<ms>[-<seq>|-*]`, the thread stream's accepted `Last-Event-ID` forms.
pub fn valid_last_event_id(id: &str) -> bool {
    if id == "-" {
        return true;
    }
    let (millis, rest) = id.split_once('-').map_or((id, None), |(millis, rest)| (millis, Some(rest)));
    !millis.is_empty() && millis.bytes().all(|byte| byte.is_ascii_digit()) && rest.is_none_or(|rest| rest == "*" || (!rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_digit())))
}
