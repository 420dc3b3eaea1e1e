//! A run's events: an append-only list that any number of readers follow.
//!
//! Events are kept (not broadcast and dropped) so a reader never misses one: the stream that
//! created the run reads from the start, a join reads the `metadata` event then from "now" (a
//! resumable run's join from the start), a resumable reconnect from the event after
//! `Last-Event-ID`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::storage::LoggedEvent;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    /// `<ms>-<seq>`, only for resumable runs.
    pub id: Option<String>,
    /// `metadata`, `values`, `updates`, `values|sub:…`, `error`, …
    pub event: String,
    /// Compact JSON.
    pub data: Arc<str>,
}

impl RunEvent {
    /// The SSE frame: `event:`, one `data:` line, `id:` when present, CRLF line ends.
    pub fn frame(&self) -> String {
        match &self.id {
            Some(id) => format!("event: {}\r\ndata: {}\r\nid: {id}\r\n\r\n", self.event, self.data),
            None => format!("event: {}\r\ndata: {}\r\n\r\n", self.event, self.data),
        }
    }

    /// The stream mode of the event (`values|sub:…` → `values`, `messages/partial` → `messages`).
    pub fn mode(&self) -> &str {
        let base = self.event.split('|').next().unwrap_or_default();
        base.split('/').next().unwrap_or(base)
    }
}

/// The events of one run.
#[derive(Debug)]
pub struct RunChannel {
    events: Mutex<Vec<RunEvent>>,
    notify: Notify,
    finished: AtomicBool,
    /// Resumable runs give every event an id.
    resumable: bool,
    sequence: AtomicU64,
    /// Where the executor's events are also logged, for readers on other processes (a shared
    /// storage; see [`super::log`]).
    log: Mutex<Option<LogSink>>,
    /// The run executes in this process: its events come from here, not from the log.
    local: AtomicBool,
}

/// A channel's link to the process's event writer.
#[derive(Debug, Clone)]
pub struct LogSink {
    pub run_id: uuid::Uuid,
    pub writer: tokio::sync::mpsc::UnboundedSender<LogEntry>,
}

/// What the event writer is given, in order.
#[derive(Debug)]
pub enum LogEntry {
    Event(uuid::Uuid, LoggedEvent),
    /// The run's last event was sent.
    End(uuid::Uuid),
    /// Answer once everything sent before is stored.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl RunChannel {
    pub fn new(resumable: bool) -> Self {
        Self {
            events: Mutex::new(Vec::new()),
            notify: Notify::new(),
            finished: AtomicBool::new(false),
            resumable,
            sequence: AtomicU64::new(0),
            log: Mutex::new(None),
            local: AtomicBool::new(false),
        }
    }

    /// The run executes here; with `log`, each event from now on is logged as well.
    pub fn execute_here(&self, log: Option<LogSink>) {
        self.local.store(true, Ordering::Release);
        *self.log.lock().unwrap_or_else(PoisonError::into_inner) = log;
    }

    /// Stops logging (the events that follow are for this process's readers only).
    pub fn stop_logging(&self) {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    pub fn is_local(&self) -> bool {
        self.local.load(Ordering::Acquire)
    }

    /// Appends an event (`data` is JSON text) and wakes readers.
    pub fn push(&self, event: &str, data: String) {
        let id = self.resumable.then(|| {
            let millis = crate::timestamp::now_micros() / 1000;
            format!("{millis}-{}", self.sequence.fetch_add(1, Ordering::Relaxed))
        });
        let event = RunEvent { id, event: event.to_string(), data: data.into() };
        {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(sink) = self.log.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
                let seq = i64::try_from(events.len()).unwrap_or(i64::MAX);
                let logged = LoggedEvent { seq, id: event.id.clone(), event: event.event.clone(), data: Arc::clone(&event.data) };
                let _ = sink.writer.send(LogEntry::Event(sink.run_id, logged));
            }
            events.push(event);
        }
        self.notify.notify_waiters();
    }

    /// Appends an event read from the log if it is the next one; whether it was.
    pub fn offer(&self, logged: LoggedEvent) -> bool {
        {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if usize::try_from(logged.seq).ok() != Some(events.len()) {
                return false;
            }
            events.push(RunEvent { id: logged.id, event: logged.event, data: logged.data });
        }
        self.notify.notify_waiters();
        true
    }

    /// How many events there are (the position of the next).
    pub fn len(&self) -> usize {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// No more events will come.
    pub fn finish(&self) {
        if !self.finished.swap(true, Ordering::AcqRel)
            && let Some(sink) = self.log.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
        {
            let _ = sink.writer.send(LogEntry::End(sink.run_id));
        }
        self.notify.notify_waiters();
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Every event so far.
    pub fn snapshot(&self) -> Vec<RunEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn get(&self, index: usize) -> Option<RunEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).get(index).cloned()
    }

    /// A reader from the first event.
    pub fn subscribe_from_start(self: &Arc<Self>) -> Subscription {
        Subscription { channel: Arc::clone(self), index: 0, then: None }
    }

    /// A reader of the events published from now on.
    pub fn subscribe_from_now(self: &Arc<Self>) -> Subscription {
        Subscription { channel: Arc::clone(self), index: self.len(), then: None }
    }

    /// A join's reader (no `Last-Event-ID`), as the reference answers one: nothing once the
    /// run has finished; else a resumable run's events from the start, another run's
    /// `metadata` event (its first: which run and attempt this is), then the events published
    /// from now on.
    pub fn subscribe_joining(self: &Arc<Self>) -> Subscription {
        if self.is_finished() {
            return self.subscribe_from_now();
        }
        if self.resumable {
            return self.subscribe_from_start();
        }
        let now = self.len();
        match self.get(0) {
            Some(first) if first.event == "metadata" && now > 1 => Subscription { channel: Arc::clone(self), index: 0, then: Some(now) },
            _ => self.subscribe_from_now(),
        }
    }

    /// A reader of the events after `last_event_id` (`-`, `-1`, `0`: from the start).
    pub fn subscribe_after(self: &Arc<Self>, last_event_id: &str) -> Subscription {
        if matches!(last_event_id, "-" | "-1" | "0") {
            return self.subscribe_from_start();
        }
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let after = parse_id(last_event_id);
        let index = events.iter().position(|event| event.id.as_deref().map(parse_id).is_some_and(|id| id > after)).unwrap_or(events.len());
        Subscription { channel: Arc::clone(self), index, then: None }
    }
}

/// `<ms>-<seq>` as numbers, so `…-10` sorts after `…-9`.
pub(super) fn parse_id(id: &str) -> (u64, u64) {
    let (millis, sequence) = id.split_once('-').unwrap_or((id, "0"));
    (millis.parse().unwrap_or(0), sequence.parse().unwrap_or(0))
}

/// A reader's position in a channel.
#[derive(Debug)]
pub struct Subscription {
    channel: Arc<RunChannel>,
    index: usize,
    /// Where to go on after the first event read (a join's `metadata`, then "now").
    then: Option<usize>,
}

impl Subscription {
    /// The next event; `None` once the run has finished and every event was read.
    pub async fn next(&mut self) -> Option<RunEvent> {
        loop {
            let notified = self.channel.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(event) = self.channel.get(self.index) {
                self.index = self.then.take().unwrap_or(self.index + 1);
                return Some(event);
            }
            if self.channel.is_finished() {
                return None;
            }
            notified.await;
        }
    }

    /// Every event until the run finishes.
    pub async fn collect(mut self) -> Vec<RunEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_join_reads_the_metadata_then_from_now() {
        let channel = Arc::new(RunChannel::new(false));
        assert!(channel.subscribe_joining().index == 0, "before any event: from the start");
        channel.push("metadata", r#"{"run_id":"r"}"#.into());
        channel.push("values", r#"{"i":0}"#.into());
        channel.push("values", r#"{"i":1}"#.into());
        let join = channel.subscribe_joining();
        channel.push("values", r#"{"i":2}"#.into());
        channel.finish();
        let seen: Vec<String> = join.collect().await.iter().map(|event| format!("{} {}", event.event, event.data)).collect();
        assert_eq!(seen, [r#"metadata {"run_id":"r"}"#, r#"values {"i":2}"#]);
    }

    #[tokio::test]
    async fn readers_see_every_event_once() {
        let channel = Arc::new(RunChannel::new(true));
        channel.push("metadata", "{}".into());
        let early = channel.subscribe_from_start();
        let late = channel.subscribe_from_now();
        let writer = Arc::clone(&channel);
        let joining = channel.subscribe_joining();
        let producer = tokio::spawn(async move {
            for index in 0..100 {
                writer.push("values", format!("{{\"i\":{index}}}"));
                tokio::task::yield_now().await;
            }
            writer.finish();
        });
        let (early, late, joined) = tokio::join!(early.collect(), late.collect(), joining.collect());
        producer.await.expect("producer");
        assert_eq!(joined, early, "a resumable run's join replays from the start");
        assert!(channel.subscribe_joining().collect().await.is_empty(), "nothing once it finished");
        assert_eq!(early.len(), 101);
        assert_eq!(late.len(), 100);
        let third = early[2].id.clone().expect("resumable ids");
        let replay = channel.subscribe_after(&third).collect().await;
        assert_eq!(replay.len(), 98);
        assert_eq!(early[1].frame(), format!("event: values\r\ndata: {{\"i\":0}}\r\nid: {}\r\n\r\n", early[1].id.clone().expect("id")));
    }
}
