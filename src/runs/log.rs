//! Runs across processes (a shared storage, Postgres): how a run's events and a cancellation
//! reach a process other than the one executing the run.
//!
//! - The executing process gives every event of its runs to one **writer** task, which stores
//!   them in batches (whatever queued while the previous batch was written) with one wake-up
//!   signal per batch ([`RunLog::append_run_events`](crate::storage::RunLog)). Its own readers
//!   read the run's channel directly, without waiting for the database.
//! - A reader on another process gets a **mirror**: a channel of its own, filled from the log
//!   by a feeder task from the position it has, woken by the signal or by a poll every
//!   [`POLL`] (a missed signal costs latency, not events). Events carry their position, so
//!   one offered twice is appended once.
//! - A cancellation is stored on the run and signalled; the owner stops the run when the
//!   signal arrives, or at its next poll of the requests for its runs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::channel::{LogEntry, LogSink};
use super::{CancelAction, RunChannel, RunManager, ThreadChannel};
use crate::storage::{LoggedRun, Signal, StorageError};

/// How often a mirror reads the log when no signal woke it.
const POLL: Duration = Duration::from_secs(1);

/// How long a new feeder waits for a signal before its first read.
const FIRST_READ: Duration = Duration::from_millis(50);

/// How often the owner of runs reads the cancellations requested for them.
const CANCEL_POLL: Duration = Duration::from_secs(2);

/// Polls without a new event after which a mirror checks that its run is still active.
const QUIET_POLLS: u32 = 5;

/// How often a thread stream with subscribers looks for new runs of its thread.
const THREAD_POLL: Duration = Duration::from_millis(300);

/// Entries one batch takes at most.
const BATCH: usize = 2_000;

/// Stores the events the process's runs give it, in order, until every sender is gone.
pub(super) async fn write_events(manager: RunManager, mut entries: mpsc::UnboundedReceiver<LogEntry>) {
    while let Some(first) = entries.recv().await {
        let mut taken = vec![first];
        while taken.len() < BATCH {
            match entries.try_recv() {
                Ok(entry) => taken.push(entry),
                Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let mut batch: Vec<LoggedRun> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        let mut run = |run_id: Uuid, batch: &mut Vec<LoggedRun>| {
            let at = *index.entry(run_id).or_insert_with(|| {
                batch.push(LoggedRun { run_id, events: Vec::new(), finished: false });
                batch.len() - 1
            });
            at
        };
        for entry in taken {
            match entry {
                LogEntry::Event(run_id, event) => {
                    let at = run(run_id, &mut batch);
                    batch[at].events.push(event);
                }
                LogEntry::End(run_id) => {
                    let at = run(run_id, &mut batch);
                    batch[at].finished = true;
                }
                LogEntry::Flush(done) => flushes.push(done),
            }
        }
        if !batch.is_empty() {
            store(&manager, batch).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Stores one batch, retrying while the database is unreachable.
async fn store(manager: &RunManager, batch: Vec<LoggedRun>) {
    let mut delay = Duration::from_millis(50);
    loop {
        match manager.inner.storage.append_run_events(batch.clone()).await {
            Ok(()) => return,
            Err(StorageError::Unavailable(message)) => {
                tracing::warn!(%message, runs = batch.len(), "cannot log run events; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::error!(%error, runs = batch.len(), "cannot log run events; readers on other processes miss them");
                return;
            }
        }
    }
}

impl RunManager {
    /// The sink a run executing here logs its events to (`None`: one process, no log).
    pub(super) fn log_sink(&self, run_id: Uuid) -> Option<LogSink> {
        self.inner.log.as_ref().map(|writer| LogSink { run_id, writer: writer.clone() })
    }

    /// Waits (at most 5 s) until the events given to the writer so far are stored.
    pub(super) async fn flush_log(&self) {
        let Some(writer) = &self.inner.log else { return };
        let (done, stored) = oneshot::channel();
        if writer.send(LogEntry::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), stored).await;
        }
    }

    /// A channel following the log of a run that may execute on another process: the known
    /// events read first, then a feeder keeps it filled until the run's end (or until the run
    /// turns out to execute here). One per run and process.
    pub(super) async fn mirror(&self, run_id: Uuid, thread_id: Uuid, resumable: bool) -> Arc<RunChannel> {
        if let Some(open) = self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).get(&run_id) {
            return Arc::clone(open);
        }
        let channel = Arc::new(RunChannel::new(resumable));
        let first = self.inner.storage.run_events(run_id, 0).await;
        let finished = first.as_ref().is_ok_and(|page| page.finished);
        if let Ok(page) = first {
            for event in page.events {
                channel.offer(event);
            }
        }
        let channel = {
            let mut channels = self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(open) = channels.get(&run_id) {
                return Arc::clone(open);
            }
            channels.insert(run_id, Arc::clone(&channel));
            channel
        };
        if finished {
            channel.finish();
            self.retire(run_id, &channel, resumable);
        } else {
            self.feed(run_id, thread_id, Arc::clone(&channel), resumable);
        }
        channel
    }

    /// Starts the feeder of a mirror (also for a channel whose run was just enqueued: any
    /// process may claim it).
    pub(super) fn feed(&self, run_id: Uuid, thread_id: Uuid, channel: Arc<RunChannel>, resumable: bool) {
        if self.inner.log.is_none() {
            return;
        }
        let wake = Arc::new(Notify::new());
        self.inner.mirrors.lock().unwrap_or_else(PoisonError::into_inner).insert(run_id, Arc::clone(&wake));
        let manager = self.clone();
        tokio::spawn(async move {
            manager.follow(run_id, thread_id, &channel, &wake).await;
            manager.inner.mirrors.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
            if !channel.is_local() {
                manager.retire(run_id, &channel, resumable);
            }
        });
    }

    async fn follow(&self, run_id: Uuid, thread_id: Uuid, channel: &RunChannel, wake: &Notify) {
        // What the log holds was just read (a mirror), or nothing is logged yet (a run just
        // enqueued): a moment first, in which a run claimed here turns local and needs no read.
        let _ = tokio::time::timeout(FIRST_READ, wake.notified()).await;
        let mut quiet = 0;
        loop {
            if channel.is_local() || channel.is_finished() {
                return;
            }
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let from = i64::try_from(channel.len()).unwrap_or(i64::MAX);
            match self.inner.storage.run_events(run_id, from).await {
                Ok(page) => {
                    quiet = if page.events.is_empty() { quiet + 1 } else { 0 };
                    for event in page.events {
                        channel.offer(event);
                    }
                    if page.finished && !channel.is_local() {
                        channel.finish();
                        return;
                    }
                }
                Err(error) => {
                    quiet += 1;
                    tracing::debug!(%run_id, %error, "cannot read a run's events");
                }
            }
            if quiet >= QUIET_POLLS {
                quiet = 0;
                // A run that ended without its end in the log (the writer could not store it).
                let active = match self.inner.storage.get_run(thread_id, run_id).await {
                    Ok(run) => run.status.is_active(),
                    Err(StorageError::NotFound) => false,
                    Err(_) => true,
                };
                if !active && !channel.is_local() {
                    let last = self.inner.storage.run_events(run_id, i64::try_from(channel.len()).unwrap_or(i64::MAX)).await;
                    for event in last.map(|page| page.events).unwrap_or_default() {
                        channel.offer(event);
                    }
                    channel.finish();
                    return;
                }
            }
            let _ = tokio::time::timeout(POLL, woken).await;
        }
    }

    /// Drops a finished mirror from the map (a resumable run's after a while, for replays).
    fn retire(&self, run_id: Uuid, channel: &Arc<RunChannel>, resumable: bool) {
        if resumable {
            let manager = self.clone();
            let channel = Arc::clone(channel);
            tokio::spawn(async move {
                tokio::time::sleep(super::RETAIN_FINISHED).await;
                manager.drop_channel(run_id, &channel);
            });
        } else {
            self.drop_channel(run_id, channel);
        }
    }

    /// Acts on other processes' signals: wakes mirrors, stops runs cancelled elsewhere; and
    /// polls the cancellations of this process's runs (a signal can be missed).
    pub(super) async fn follow_signals(self) {
        let Some(mut signals) = self.inner.storage.signals() else { return };
        let mut poll = tokio::time::interval(CANCEL_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                signal = signals.recv() => match signal {
                    Ok(Signal::Events(run_ids)) => {
                        let mirrors = self.inner.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
                        for run_id in run_ids {
                            if let Some(wake) = mirrors.get(&run_id) {
                                wake.notify_one();
                            }
                        }
                    }
                    Ok(Signal::Cancel(run_id, action)) => {
                        self.mark_executing(run_id, parse_action(&action));
                    }
                    Ok(Signal::Lagged) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        for wake in self.inner.mirrors.lock().unwrap_or_else(PoisonError::into_inner).values() {
                            wake.notify_one();
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = poll.tick() => {
                    if self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner).runs.is_empty() {
                        continue;
                    }
                    if let Ok(requested) = self.inner.storage.requested_cancels(self.inner.owner).await {
                        for (run_id, action) in requested {
                            self.mark_executing(run_id, parse_action(&action));
                        }
                    }
                }
            }
        }
    }
}

impl RunManager {
    /// With a shared storage, a thread stream carries the runs of its thread wherever they
    /// execute: its runs are listed every [`THREAD_POLL`] while it has subscribers, and each new
    /// one, oldest first, is followed to its end (its channel here, or a mirror of its log)
    /// and its events published on the stream, then its `run_done` — one run after the other,
    /// as they execute (those already active when the stream opened, from then on).
    pub(super) fn follow_thread(&self, thread_id: Uuid, channel: Arc<ThreadChannel>) {
        if self.inner.log.is_none() {
            return;
        }
        let manager = self.clone();
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut first = true;
            // The thread the stream is of: one deleted and created again with the same id
            // (through any process) is another user's, perhaps; its runs are not this stream's.
            let origin = channel.created_at();
            loop {
                if !first {
                    channel.woken(THREAD_POLL).await;
                    if !channel.has_subscribers() {
                        return;
                    }
                }
                if channel.is_orphaned() {
                    channel.close();
                    return;
                }
                let Ok(mut runs) = manager.inner.storage.list_runs(thread_id, None, 50, 0).await else { continue };
                runs.reverse();
                // Read after the runs: a run listed of a thread created again means the thread
                // now is not the origin one. Deleted (through any process): the stream ends.
                match manager.inner.storage.get_thread(thread_id, None).await {
                    Ok(thread) if thread.created_at == origin => {}
                    Ok(_) | Err(StorageError::NotFound) => {
                        channel.close();
                        return;
                    }
                    Err(_) => continue,
                }
                for run in runs {
                    if !seen.insert(run.run_id) || (first && !run.status.is_active()) {
                        continue;
                    }
                    manager.forward_to_thread(&run, &channel, first).await;
                    if !channel.has_subscribers() {
                        return;
                    }
                    if channel.is_orphaned() {
                        channel.close();
                        return;
                    }
                }
                first = false;
            }
        });
    }

    /// Publishes on a thread stream the events of one of its runs, then its `run_done`.
    async fn forward_to_thread(&self, run: &crate::storage::Run, channel: &ThreadChannel, from_now: bool) {
        let Some(events) = self.reading_channel(run).await else { return };
        let mut events = if from_now { events.subscribe_from_now() } else { events.subscribe_from_start() };
        while let Some(event) = events.next().await {
            channel.publish(&event.event, event.data);
        }
        channel.publish("metadata", serde_json::json!({"status": "run_done", "run_id": run.run_id.to_string()}).to_string().into());
    }
}

fn parse_action(action: &str) -> CancelAction {
    if action == "rollback" { CancelAction::Rollback } else { CancelAction::Interrupt }
}

/// The name a cancellation is signalled with.
pub(super) fn action_name(action: CancelAction) -> &'static str {
    match action {
        CancelAction::Interrupt => "interrupt",
        CancelAction::Rollback => "rollback",
    }
}
