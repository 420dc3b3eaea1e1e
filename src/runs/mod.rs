//! Runs: the durable queue, the executor and the per-run event channels.
//!
//! A run is a row in storage. The scheduler claims runnable pending runs (one at a time per
//! thread, oldest first, up to `max_concurrent` at once) and executes each on the interpreter
//! loop through [`PythonHost::start_run`]. Every chunk the graph streams is appended to the
//! run's [`RunChannel`], which stream, wait and join endpoints read. The final status and the
//! thread's state are stored **before** the channel is closed, so a client that sees the end
//! of a stream and then reads the run gets its final status.
//!
//! Shutdown ([`RunManager::shutdown`]): the scheduler stops claiming, executing runs get a
//! grace period to finish, and those still executing after it are handed back — stopped,
//! their checkpoints removed, their row `pending` again — so the next start runs them from
//! the beginning. A process that dies without shutting down leaves rows `running`; the next
//! start marks those failed ([`RunManager::start`]), so no run stays `running` and no
//! thread `busy`.

mod channel;
mod ended;
mod log;
pub mod protocol;
mod thread_stream;
pub mod webhook;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

pub use channel::{RunChannel, RunEvent, Subscription};
pub use thread_stream::{ThreadChannel, CLOSED as THREAD_STREAM_CLOSED, valid_last_event_id};

use crate::python::{CheckpointOp, GraphUse, PythonHost, StateOp};
use crate::storage::{Answer, DeletedThreads, Lease, Run, RunStatus, StorageError, StorageHandle, StorageResult, ThreadOutcome, ThreadStatus};
use crate::timestamp::now_micros;

/// The key of a run's `kwargs` where graphward keeps what it needs to execute the run (never
/// shown to clients).
pub const EXECUTION_KEY: &str = "__graphward__";

/// How long a finished resumable run's events stay available for `Last-Event-ID` replays.
const RETAIN_FINISHED: Duration = Duration::from_secs(600);

/// How long deleting a thread waits for its cancelled runs to stop before it removes their
/// checkpoints anyway (a graph that swallows `CancelledError` is not waited for forever).
const STOP_WAIT: Duration = Duration::from_secs(30);

/// How long shutdown waits for handed-back runs to stop (after the grace period).
const HAND_BACK_WAIT: Duration = Duration::from_secs(10);

/// How long a claim on a run lasts unless renewed; this process renews its claims every
/// third of it, so a process that stops renewing (gone, or stalled) loses them within it.
/// `GRAPHWARD_RUN_LEASE` (seconds) overrides it.
const LEASE: Duration = Duration::from_secs(30);

/// The lease of this process's claims: [`LEASE`], or `GRAPHWARD_RUN_LEASE` seconds.
fn lease_duration() -> Duration {
    std::env::var(crate::config::env_vars::GRAPHWARD_RUN_LEASE)
        .ok()
        .and_then(|value| value.parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.3)
        .map_or(LEASE, Duration::from_secs_f64)
}

/// How long the run log keeps events (for joins and resumes on other processes).
const LOG_RETENTION: Duration = Duration::from_secs(3_600);

/// What cancelling does to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAction {
    /// Stop it; status `interrupted`; its checkpoints stay.
    Interrupt,
    /// Stop it and delete it with the checkpoints it wrote.
    Rollback,
}

/// Executes runs; shared by the routes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RunManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: StorageHandle,
    python: PythonHost,
    /// Live and recently finished runs' events. A std mutex: held for map operations only.
    channels: Mutex<HashMap<Uuid, Arc<RunChannel>>>,
    /// Thread-wide streams that have (or had) a subscriber.
    threads: Mutex<HashMap<Uuid, Arc<ThreadChannel>>>,
    /// Stateless runs' temporary threads, as their runs left them, for a while after their
    /// deletion (joins that arrive late).
    ended: ended::EndedThreads,
    /// Executing runs, and the threads being deleted (one lock: see [`RunManager::delete_threads`]).
    executing: Mutex<Executing>,
    /// Wakes the scheduler: a run was created or a slot freed.
    wake: Notify,
    /// Bounds how many runs execute at once.
    slots: Arc<Semaphore>,
    /// `http://host:port` of this server, for webhooks given as a path.
    base_url: std::sync::OnceLock<String>,
    /// `langgraph.json`'s `webhooks`: the URL policy (checked again before sending) and the
    /// headers every webhook carries.
    webhooks: crate::config::WebhooksConfig,
    /// Set (under the `executing` lock) when shutdown begins: no run starts after it.
    stopping: AtomicBool,
    /// Claimed runs whose execution (start to stored end) is in progress.
    in_progress: AtomicUsize,
    /// The scheduler's task, stopped by shutdown.
    scheduler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// This process as the holder of run leases (a fresh id per start).
    owner: Uuid,
    /// How long a claim lasts unless renewed.
    lease: Duration,
    /// The task renewing this process's leases, stopped when shutdown has settled every run.
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The event writer's queue, when other processes share the storage ([`log`]).
    log: Option<tokio::sync::mpsc::UnboundedSender<channel::LogEntry>>,
    /// Its other end, taken by the writer task at start.
    log_entries: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<channel::LogEntry>>>,
    /// The wake-ups of this process's mirrors of runs executing elsewhere.
    mirrors: Mutex<HashMap<Uuid, Arc<Notify>>>,
    /// The task following other processes' signals.
    signals: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The v3 protocol's per-thread event logs.
    protocol: protocol::ProtocolHub,
}

impl RunManager {
    pub fn new(storage: StorageHandle, python: PythonHost, max_concurrent: usize, webhooks: crate::config::WebhooksConfig) -> Self {
        let (log, log_entries) = if storage.is_shared() {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        Self {
            inner: Arc::new(Inner {
                storage,
                python,
                channels: Mutex::new(HashMap::new()),
                threads: Mutex::new(HashMap::new()),
                ended: ended::EndedThreads::default(),
                executing: Mutex::new(Executing::default()),
                wake: Notify::new(),
                slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
                base_url: std::sync::OnceLock::new(),
                webhooks,
                stopping: AtomicBool::new(false),
                in_progress: AtomicUsize::new(0),
                scheduler: Mutex::new(None),
                owner: Uuid::new_v4(),
                lease: lease_duration(),
                heartbeat: Mutex::new(None),
                log,
                log_entries: Mutex::new(log_entries),
                mirrors: Mutex::new(HashMap::new()),
                signals: Mutex::new(None),
                protocol: protocol::ProtocolHub::default(),
            }),
        }
    }

    /// Marks runs a previous process left `running` as failed, then starts the scheduler.
    /// `base_url` (`http://host:port`) resolves webhooks given as a path.
    pub async fn start(&self, base_url: String) -> Result<(), String> {
        let _ = self.inner.base_url.set(base_url);
        let recovered = self.inner.storage.recover_interrupted_runs(self.inner.owner, now_micros()).await.map_err(|error| error.to_string())?;
        if recovered > 0 {
            tracing::warn!(recovered, "runs left running by a previous process were marked as errors");
        }
        tracing::info!(owner = %self.inner.owner, shared = self.inner.log.is_some(), "run scheduler started");
        let manager = self.clone();
        let task = tokio::spawn(async move { manager.schedule().await });
        *self.inner.scheduler.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        let manager = self.clone();
        let task = tokio::spawn(async move { manager.renew_leases().await });
        *self.inner.heartbeat.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        if let Some(entries) = self.inner.log_entries.lock().unwrap_or_else(PoisonError::into_inner).take() {
            tokio::spawn(log::write_events(self.clone(), entries));
            let task = tokio::spawn(self.clone().follow_signals());
            *self.inner.signals.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
        Ok(())
    }

    /// A claim that lasts a lease from now.
    fn lease(&self) -> Lease {
        Lease { owner: self.inner.owner, until: now_micros() + i64::try_from(self.inner.lease.as_micros()).unwrap_or(i64::MAX) }
    }

    /// Every third of a lease, for as long as the process runs: renews this process's
    /// leases, then sweeps — the runs of a process that died (its leases lapsed) are marked
    /// failed and their threads freed, so no run stays `running` longer than a lease and a
    /// tick after its owner is gone, and the threads' next runs start.
    async fn renew_leases(self) {
        let mut ticks = tokio::time::interval(self.inner.lease / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let lease = self.lease();
            if let Err(error) = self.inner.storage.renew_leases(lease.owner, lease.until).await {
                tracing::error!(%error, "cannot renew the leases of executing runs");
                continue;
            }
            match self.inner.storage.recover_interrupted_runs(self.inner.owner, now_micros()).await {
                Ok(0) => {}
                Ok(recovered) => {
                    tracing::warn!(recovered, "runs of a process that stopped answering were marked as errors");
                    self.inner.wake.notify_one();
                }
                Err(error) => tracing::error!(%error, "cannot sweep the runs of stopped processes"),
            }
            if self.inner.log.is_some() {
                let before = now_micros() - i64::try_from(LOG_RETENTION.as_micros()).unwrap_or(i64::MAX);
                if let Err(error) = self.inner.storage.forget_run_events(before).await {
                    tracing::warn!(%error, "cannot remove old run events");
                }
            }
        }
    }

    /// Stops running runs for this process: the scheduler stops claiming, executing runs may
    /// finish within `grace`, then the rest are handed back (stopped, their checkpoints
    /// removed, `pending` again) for the next start. Returns (finished, handed back).
    pub async fn shutdown(&self, grace: Duration) -> (usize, usize) {
        {
            let _executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            self.inner.stopping.store(true, Ordering::SeqCst);
        }
        let executing_at_start = self.inner.in_progress.load(Ordering::SeqCst);
        if let Some(task) = self.inner.scheduler.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
        if executing_at_start > 0 {
            tracing::info!(runs = executing_at_start, ?grace, "shutting down: waiting for executing runs");
        }
        self.wait_idle(grace).await;
        let handing_back: Vec<(Uuid, Option<u64>)> = {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            executing
                .runs
                .iter_mut()
                .filter(|(_, running)| running.cancel.is_none())
                .map(|(run_id, running)| {
                    running.hand_back = true;
                    (*run_id, running.token)
                })
                .collect()
        };
        for (_, token) in &handing_back {
            if let Some(token) = token {
                self.inner.python.cancel(*token);
            }
        }
        if !self.wait_idle(HAND_BACK_WAIT).await {
            tracing::warn!("runs did not stop within {HAND_BACK_WAIT:?} of shutdown; the next start marks them failed");
        }
        self.flush_log().await;
        if let Some(task) = self.inner.signals.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
        if let Some(task) = self.inner.heartbeat.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
        (executing_at_start.saturating_sub(handing_back.len()), handing_back.len())
    }

    /// Waits until no run executes, at most `limit`; whether none does.
    async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.inner.in_progress.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The v3 protocol's per-thread event logs.
    pub fn protocol(&self) -> &protocol::ProtocolHub {
        &self.inner.protocol
    }

    /// Publishes a protocol run's events on its thread's protocol log until it ends.
    pub fn follow_protocol(&self, log: Arc<protocol::ProtocolLog>, run: &Run, graph_name: String, channel: Arc<RunChannel>) {
        protocol::follow(self.inner.storage.clone(), log, run.thread_id, run.run_id, graph_name, channel);
    }

    /// The channel of a run, created if needed (a run's events start here).
    pub fn channel(&self, run_id: Uuid, resumable: bool) -> Arc<RunChannel> {
        let mut channels = self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(channels.entry(run_id).or_insert_with(|| Arc::new(RunChannel::new(resumable))))
    }

    /// The thread-wide stream of a thread (the one created at `created_at`: a thread deleted
    /// elsewhere and created again has a stream of its own), created for a subscriber.
    pub fn thread_channel(&self, thread_id: Uuid, created_at: i64) -> Arc<ThreadChannel> {
        let mut threads = self.inner.threads.lock().unwrap_or_else(PoisonError::into_inner);
        // Streams nobody listens to any more are dropped here, on the next subscription.
        threads.retain(|_, channel| channel.has_subscribers());
        if let Some(channel) = threads.get(&thread_id) {
            if channel.created_at() == created_at {
                return Arc::clone(channel);
            }
            // The stream of the thread that had this id before.
            self.end_thread_stream(channel);
        }
        let channel = Arc::new(ThreadChannel::new(created_at));
        threads.insert(thread_id, Arc::clone(&channel));
        drop(threads);
        self.follow_thread(thread_id, Arc::clone(&channel));
        channel
    }

    /// This process's stream of the thread created at `created_at`, when someone listens to it
    /// (an event for it is worth computing).
    pub fn thread_listeners(&self, thread_id: Uuid, created_at: i64) -> Option<Arc<ThreadChannel>> {
        let threads = self.inner.threads.lock().unwrap_or_else(PoisonError::into_inner);
        threads.get(&thread_id).filter(|channel| channel.created_at() == created_at && channel.has_subscribers() && !channel.is_orphaned()).cloned()
    }

    /// Ends the stream of a thread that is gone: at once, or with a shared storage once its
    /// follower has published the runs it follows.
    fn end_thread_stream(&self, channel: &ThreadChannel) {
        if self.inner.log.is_some() {
            channel.orphan();
        } else {
            channel.close();
        }
    }

    /// Publishes on the thread stream of this process. With a shared storage the thread stream
    /// is fed in run order from the runs' channels instead ([`log`]), whatever process
    /// executes them, so this does nothing.
    fn publish_to_thread(&self, thread_id: Uuid, event: &str, data: Arc<str>) {
        if self.inner.log.is_some() {
            return;
        }
        let channel = self.inner.threads.lock().unwrap_or_else(PoisonError::into_inner).get(&thread_id).cloned();
        if let Some(channel) = channel {
            channel.publish(event, data);
        }
    }

    /// The channel of a run that was read as active, for a reader that found none: a pending
    /// run of a previous process has none yet, and an executor that ended the run since it
    /// was read has dropped its own. Opened, then the run is read again: one that ended
    /// meanwhile (its end is stored before its channel is dropped) gets the new channel
    /// finished, so no reader waits for events nobody will send.
    pub async fn open_channel(&self, run: &Run, resumable: bool) -> Arc<RunChannel> {
        if self.inner.log.is_some() {
            return self.mirror(run.run_id, run.thread_id, resumable).await;
        }
        let channel = self.channel(run.run_id, resumable);
        let (thread_id, run_id) = (run.thread_id, run.run_id);
        let active = self.inner.storage.get_run(thread_id, run_id).await.is_ok_and(|run| run.status.is_active());
        if !active {
            channel.finish();
            self.drop_channel(run_id, &channel);
        }
        channel
    }

    /// The temporary thread `thread_id` of the stateless run `run_id` as the run left it, if
    /// the run ended in this process and the thread was deleted in the last minutes.
    pub fn ended_temporary_thread(&self, thread_id: Uuid, run_id: Uuid) -> Option<crate::storage::Thread> {
        self.inner.ended.get(thread_id, run_id)
    }

    /// The channel of a run if it is live or recently finished here.
    fn existing_channel(&self, run_id: Uuid) -> Option<Arc<RunChannel>> {
        self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).get(&run_id).cloned()
    }

    /// The channel a reader of `run` follows: the live or recently finished one of this
    /// process; with a shared storage, else one following the run's log (finished already if
    /// the run has ended). `None`: the run has no events to read here.
    pub async fn reading_channel(&self, run: &Run) -> Option<Arc<RunChannel>> {
        if let Some(channel) = self.existing_channel(run.run_id) {
            return Some(channel);
        }
        if self.inner.log.is_none() {
            return None;
        }
        let resumable = run.kwargs.get("resumable").and_then(Value::as_bool).unwrap_or(false);
        Some(self.mirror(run.run_id, run.thread_id, resumable).await)
    }

    /// Stores a new run and wakes the scheduler; its channel, which the executor and every
    /// reader use.
    ///
    /// The channel is opened before the row is stored: once stored, the run can be claimed,
    /// executed and finished (its channel dropped) before this returns, and a channel opened
    /// after that would be one nobody finishes — a join on it would wait forever.
    ///
    /// With a cron `firing`, the run is stored only if the firing is still this process's to
    /// make ([`crate::storage::RunQueue::insert_cron_run`]): else `Conflict`, nothing stored.
    pub async fn enqueue(&self, run: &Run, thread_metadata: Map<String, Value>, firing: Option<crate::storage::CronFiring>) -> StorageResult<Arc<RunChannel>> {
        let resumable = run.kwargs.get("resumable").and_then(Value::as_bool).unwrap_or(false);
        let channel = self.channel(run.run_id, resumable);
        let stored = run.clone();
        let inserted = match firing {
            None => self.inner.storage.insert_run(stored, thread_metadata).await,
            Some(firing) => match self.inner.storage.insert_cron_run(stored, thread_metadata, firing).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(StorageError::Conflict),
                Err(error) => Err(error),
            },
        };
        if let Err(error) = inserted {
            channel.finish();
            self.drop_channel(run.run_id, &channel);
            return Err(error);
        }
        // Stored: the scheduler of any process may claim and even finish the run from here on.
        self.feed(run.run_id, run.thread_id, Arc::clone(&channel), resumable);
        if let Some(thread) = self.inner.threads.lock().unwrap_or_else(PoisonError::into_inner).get(&run.thread_id) {
            thread.wake();
        }
        crate::failpoint::pause("run-stored").await;
        self.inner.wake.notify_one();
        Ok(channel)
    }

    /// Removes a run's channel from the map if it is still this one.
    fn drop_channel(&self, run_id: Uuid, channel: &Arc<RunChannel>) {
        let mut channels = self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if channels.get(&run_id).is_some_and(|open| Arc::ptr_eq(open, channel)) {
            channels.remove(&run_id);
        }
    }

    /// Cancels a run: a pending one ends now; an executing one is stopped at its next await;
    /// one claimed and not started yet does not start (its end is stored by its executor).
    /// `false`: it had ended before the cancellation reached it (nothing changed) — also when
    /// its graph had ended and its executor was storing that end.
    ///
    /// The three cases race with the scheduler, so each is decided where the race is: a
    /// pending run ends only if it is still pending (one conditional write, which a claim
    /// cannot interleave); otherwise, under the `executing` lock, either the executor has
    /// registered the run (it is marked) or it will, and then finds the cancellation waiting.
    pub async fn cancel(&self, run: &Run, action: CancelAction) -> Result<bool, String> {
        if self.mark_executing(run.run_id, action) {
            return Ok(true);
        }
        let (run_id, thread_id) = (run.run_id, run.thread_id);
        let status = (action == CancelAction::Interrupt).then_some(RunStatus::Interrupted);
        let ended = self.inner.storage.end_pending_run(run_id, status, now_micros()).await.map_err(|e| e.to_string())?;
        if ended {
            self.refresh_thread_status(thread_id).await;
            if let Some(channel) = self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id) {
                channel.finish();
            }
            // Its readers on other processes: the run is over, with no event.
            if self.inner.log.is_some() {
                let end = crate::storage::LoggedRun { run_id, events: Vec::new(), finished: true };
                let _ = self.inner.storage.append_run_events(vec![end]).await;
            }
            return Ok(true);
        }
        // Claimed (or finished) since it was read: the executor registers it, or registered it
        // meanwhile.
        let left_mark = {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            if executing.ending.contains(&run_id) {
                // Its graph has ended and its end is being stored: nothing left to stop (a
                // mark left here would be read by no one, and the run end as it ended).
                return Ok(false);
            }
            let absent = !executing.runs.contains_key(&run_id);
            if absent {
                executing.cancels.insert(run_id, action);
            }
            absent
        };
        if self.mark_executing(run_id, action) {
            return Ok(true);
        }
        // Executing on another process, perhaps: its owner stops it.
        if self.inner.log.is_some() {
            self.inner.storage.request_cancel(run_id, log::action_name(action).to_string()).await.map_err(|e| e.to_string())?;
        }
        // A run that ended before the mark was left never reads it.
        let active = self.inner.storage.get_run(thread_id, run_id).await.is_ok_and(|run| run.status.is_active());
        if !active {
            // Ended (or gone, for a rollback): by this cancellation if its executor took the
            // mark, else before it.
            let untaken = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner).cancels.remove(&run_id).is_some();
            return Ok(left_mark && !untaken);
        }
        Ok(active)
    }

    /// Marks a registered run cancelled and stops it if it has started; whether it was registered.
    fn mark_executing(&self, run_id: Uuid, action: CancelAction) -> bool {
        let token = {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(running) = executing.runs.get_mut(&run_id) else {
                return false;
            };
            running.cancel = Some(action);
            running.token
        };
        if let Some(token) = token {
            self.inner.python.cancel(token);
        }
        true
    }

    /// After a pending run is dropped, the thread is busy only while other runs are active.
    async fn refresh_thread_status(&self, thread_id: Uuid) {
        if let Err(error) = self.inner.storage.settle_thread(thread_id, now_micros()).await {
            tracing::error!(%thread_id, %error, "cannot settle the status of a thread after a run ended");
        }
    }

    /// Starts a claimed run on the interpreter, unless its thread is being deleted or is gone,
    /// or it was cancelled before it started; `None`: not started (its channel is finished).
    ///
    /// The run is registered (without a token) before its row is checked, under the lock that
    /// [`RunManager::delete_threads`] takes to stop a thread's runs: a deletion either sees the
    /// registration and marks it cancelled, or happened before the row check, which then fails.
    /// So a run never writes a checkpoint after its thread's deletion removed them.
    async fn start_claimed(
        &self,
        run: &Run,
        channel: &RunChannel,
        spec: Value,
        emit: Arc<dyn Fn(String, String) + Send + Sync>,
    ) -> Option<impl Future<Output = Result<Value, crate::python::PythonError>> + Send + 'static> {
        loop {
            let reserved = {
                let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
                let free = !executing.deleting.contains_key(&run.thread_id);
                if free {
                    let cancel = executing.cancels.remove(&run.run_id);
                    executing.runs.insert(run.run_id, Running { token: None, thread_id: run.thread_id, cancel, hand_back: false });
                }
                free
            };
            if reserved {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (thread_id, run_id) = (run.thread_id, run.run_id);
        let exists = self.inner.storage.get_run(thread_id, run_id).await.is_ok();
        let stopping = exists && {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            let stopping = self.inner.stopping.load(Ordering::SeqCst);
            if stopping {
                executing.runs.remove(&run_id);
            }
            stopping
        };
        if stopping {
            // Claimed as shutdown began: back to the queue, untouched.
            let _ = self.requeue(run_id, channel).await;
            channel.finish();
            self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
            return None;
        }
        // Started with the lock held, so a cancel either sees the token or leaves its mark
        // before this looks.
        let cancel = {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            let cancel = executing.runs.get(&run_id).and_then(|running| running.cancel);
            if exists && cancel.is_none() {
                let (token, result) = self.inner.python.start_run(spec, emit);
                if let Some(running) = executing.runs.get_mut(&run_id) {
                    running.token = Some(token);
                }
                return Some(result);
            }
            executing.runs.remove(&run_id);
            cancel
        };
        tracing::info!(%run_id, %thread_id, "run not started: cancelled, or its thread was deleted");
        if exists {
            // It wrote nothing: its end is its row's (interrupted, or gone for a rollback).
            let status = (cancel != Some(CancelAction::Rollback)).then_some(RunStatus::Interrupted);
            let ended = self.inner.storage.end_claimed_run(run_id, self.inner.owner, status, now_micros()).await;
            if let Err(error) = ended {
                tracing::error!(%run_id, %error, "cannot store the end of a run cancelled before it started");
            }
            self.refresh_thread_status(thread_id).await;
        }
        channel.finish();
        self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
        None
    }

    /// Creates a thread with `create` (a storage call), unless a deletion of the same id is
    /// stopping its runs and removing its checkpoints (`None`). A deletion that begins while
    /// the create is under way waits for it before it deletes, so the two are ordered.
    pub async fn create_unless_deleting<T>(&self, thread_id: Uuid, create: Answer<T>) -> StorageResult<Option<T>> {
        let Some(_creating) = CreatingHold::new(&self.inner, thread_id) else {
            return Ok(None);
        };
        create.await.map(Some)
    }

    /// Deletes threads as one step: `delete` (one storage call, each thread checked as the
    /// caller) removes the rows with their runs; then the runs it removed stop (pending ones
    /// end, executing ones are cancelled and awaited, and store nothing), then the threads'
    /// checkpoints are removed. Until then no thread with one of the `candidates`' ids can be
    /// created or start a run.
    pub async fn delete_threads(&self, candidates: &[Uuid], delete: Answer<DeletedThreads>) -> StorageResult<DeletedThreads> {
        // A task of its own, so it runs to its end even when the caller goes away (a client
        // that disconnects mid-request drops the handler's future): otherwise the ids would
        // stay held forever (their runs never start again) and rows deleted before the drop
        // would keep their checkpoints, which a new thread with the same id would then read.
        let manager = self.clone();
        let ids = candidates.to_vec();
        tokio::spawn(async move {
            let _held = DeletingHold::new(&manager.inner, ids.clone());
            manager.creations_done(&ids).await;
            manager.stop_and_forget(delete).await
        })
        .await
        .map_err(|error| StorageError::Internal(format!("thread deletion failed: {error}")))?
    }

    /// Waits until no creation of one of `ids` is under way (none can begin: they are held).
    async fn creations_done(&self, ids: &[Uuid]) {
        loop {
            let busy = {
                let executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
                ids.iter().any(|id| executing.creating.contains_key(id))
            };
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn stop_and_forget(&self, delete: Answer<DeletedThreads>) -> StorageResult<DeletedThreads> {
        let deleted = delete.await?;
        if deleted.thread_ids.is_empty() {
            return Ok(deleted);
        }
        let pending = &deleted.active_runs;
        let gone: HashSet<Uuid> = deleted.thread_ids.iter().copied().collect();
        // Executing runs (and claimed ones about to start, which then do not) are cancelled.
        let stopping: Vec<(Uuid, Option<u64>, Uuid)> = {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            executing
                .runs
                .iter_mut()
                .filter(|(_, running)| gone.contains(&running.thread_id))
                .map(|(run_id, running)| {
                    running.cancel = Some(CancelAction::Interrupt);
                    (*run_id, running.token, running.thread_id)
                })
                .collect()
        };
        let mut waits = Vec::new();
        for (run_id, token, _) in &stopping {
            if let Some(token) = token {
                self.inner.python.cancel(*token);
            }
            if let Some(channel) = self.existing_channel(*run_id) {
                waits.push(channel.subscribe_from_start());
            }
        }
        // Runs that were pending end now; their waiters and streams close. With a shared
        // storage, one may be executing on another process: the threads' checkpoints go first,
        // then it is told to stop; it removes what it wrote meanwhile and then frees the
        // thread id (which the deletion reserved), so a thread created again with the id never
        // sees this one's state.
        let elsewhere: Vec<Uuid> = pending.iter().filter(|run_id| !stopping.iter().any(|(executing, _, _)| executing == *run_id)).copied().collect();
        if self.inner.log.is_some() && !elsewhere.is_empty() {
            self.inner.python.checkpoints(CheckpointOp::DeleteThreads(deleted.thread_ids.clone())).await.map_err(|error| StorageError::Internal(format!("cannot delete checkpoints: {error}")))?;
        }
        for run_id in &elsewhere {
            if self.inner.log.is_some() {
                let _ = self.inner.storage.request_cancel(*run_id, log::action_name(CancelAction::Interrupt).to_string()).await;
            }
            if let Some(channel) = self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(run_id) {
                channel.finish();
            }
        }
        // Thread streams of the deleted threads end: a thread created later with the same id
        // starts a new stream, with none of the old events.
        {
            let mut threads = self.inner.threads.lock().unwrap_or_else(PoisonError::into_inner);
            for thread_id in &deleted.thread_ids {
                if let Some(channel) = threads.remove(thread_id) {
                    self.end_thread_stream(&channel);
                }
            }
        }
        let all_stopped = futures_util::future::join_all(waits.into_iter().map(|mut subscription| async move { while subscription.next().await.is_some() {} }));
        if tokio::time::timeout(STOP_WAIT, all_stopped).await.is_err() {
            tracing::warn!(threads = deleted.thread_ids.len(), "runs of deleted threads did not stop within {STOP_WAIT:?}; removing their checkpoints anyway");
        }
        self.inner.python.checkpoints(CheckpointOp::DeleteThreads(deleted.thread_ids.clone())).await.map_err(|error| StorageError::Internal(format!("cannot delete checkpoints: {error}")))?;
        // The ids whose running run stopped here are free again (those whose run executes
        // elsewhere are freed by that process).
        if self.inner.log.is_some() {
            let threads: HashSet<Uuid> = stopping.iter().map(|(_, _, thread_id)| *thread_id).collect();
            for thread_id in threads {
                let _ = self.inner.storage.release_deleted_thread(thread_id).await;
            }
        }
        Ok(deleted)
    }

    /// A run stopped by shutdown goes back to the queue as if it had not started: the
    /// checkpoints it wrote on its thread are removed and its row is `pending` again (its
    /// thread stays `busy`). Its streams end; the next start runs it from the beginning.
    async fn hand_back(&self, run: &Run, channel: &RunChannel) {
        let (run_id, thread_id) = (run.run_id, run.thread_id);
        let removed = self.inner.python.checkpoints(CheckpointOp::DeleteForRuns { thread_id, run_ids: vec![run_id] }).await;
        let requeued = self.requeue(run_id, channel).await;
        match (removed, requeued) {
            (Ok(_), Ok(true)) => tracing::info!(%run_id, %thread_id, "run handed back at shutdown: it runs again at the next start"),
            (removed, requeued) => tracing::error!(%run_id, ?removed, ?requeued, "cannot hand a run back at shutdown; the next start marks it failed"),
        }
        channel.push("error", json!({"error": "ServerShutdown", "message": "The server shut down; the run will run again when it restarts"}).to_string());
        channel.finish();
        self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
    }

    /// Gives a claimed run back to the queue. Its logged events go (its next execution logs
    /// its own from the start), and what the channel says from here is for this process only.
    async fn requeue(&self, run_id: Uuid, channel: &RunChannel) -> StorageResult<bool> {
        self.flush_log().await;
        let released = self.inner.storage.release_run(run_id, self.inner.owner, now_micros()).await;
        channel.stop_logging();
        released
    }

    async fn schedule(self) {
        loop {
            while let Ok(permit) = Arc::clone(&self.inner.slots).try_acquire_owned() {
                match self.inner.storage.claim_next_run(now_micros(), self.lease()).await {
                    Ok(Some(run)) => {
                        let manager = self.clone();
                        self.inner.in_progress.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            manager.execute(run).await;
                            manager.inner.in_progress.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                            manager.inner.wake.notify_one();
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::error!(%error, "cannot claim a run");
                        break;
                    }
                }
            }
            // Sleep until woken, or until a delayed run becomes due (at most a second).
            let next = self.inner.storage.next_pending_start().await.ok().flatten();
            let wait = next.map_or(Duration::from_secs(1), |start| {
                Duration::from_micros(u64::try_from(start - now_micros()).unwrap_or(0)).min(Duration::from_secs(1))
            });
            let _ = tokio::time::timeout(wait.max(Duration::from_millis(5)), self.inner.wake.notified()).await;
        }
    }

    async fn execute(&self, run: Run) {
        let started_at = now_micros();
        let execution = run.kwargs.get(EXECUTION_KEY).cloned().unwrap_or(Value::Null);
        let resumable = run.kwargs.get("resumable").and_then(Value::as_bool).unwrap_or(false);
        let channel = self.channel(run.run_id, resumable);
        channel.execute_here(self.log_sink(run.run_id));
        let started = json!({"run_id": run.run_id.to_string(), "attempt": 1}).to_string();
        channel.push("metadata", started.clone());
        self.publish_to_thread(run.thread_id, "metadata", started.into());

        let mut spec = Map::new();
        for key in ["input", "command", "config", "context", "stream_mode", "interrupt_before", "interrupt_after", "durability", "subgraphs"] {
            if let Some(value) = run.kwargs.get(key) {
                spec.insert(key.to_string(), value.clone());
            }
        }
        for key in ["graph_id", "checkpointer", "auth_user"] {
            spec.insert(key.to_string(), execution.get(key).cloned().unwrap_or(Value::Null));
        }
        let sink = Arc::clone(&channel);
        let manager = self.clone();
        let thread_of_run = run.thread_id;
        let emit: Arc<dyn Fn(String, String) + Send + Sync> = Arc::new(move |event, data| {
            manager.publish_to_thread(thread_of_run, &event, Arc::from(data.as_str()));
            sink.push(&event, data);
        });
        let spec = Value::Object(spec);
        let Some(result) = self.start_claimed(&run, &channel, spec.clone(), emit).await else {
            return;
        };
        let clock = std::time::Instant::now();
        crate::metrics::global().run_started();
        let result = result.await;
        let (cancel, hand_back, _ending) = {
            let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
            let (cancel, hand_back) = executing.runs.remove(&run.run_id).map_or((None, false), |running| (running.cancel, running.hand_back));
            // Its graph is over: until its end is stored, a cancellation finds it ended (it
            // can no longer change how the run ends), not waiting to be stopped.
            let ending = (!hand_back).then(|| {
                executing.ending.insert(run.run_id);
                EndingHold { inner: Arc::clone(&self.inner), run_id: run.run_id }
            });
            (cancel, hand_back, ending)
        };
        crate::failpoint::pause("run-executed").await;
        if hand_back {
            crate::metrics::global().run_ended("handed_back", clock.elapsed());
            self.hand_back(&run, &channel).await;
            return;
        }

        let result = match result {
            Err(error) if cancel.is_some() && error.kind() == Some("CancelledError") => {
                // Cancelled before the runner could catch it: an interrupted run, not a failure.
                tracing::info!(run_id = %run.run_id, "run cancelled before it recorded its state");
                self.inner.python.state(StateOp::Settle { spec: spec.clone() }, &GraphUse::default()).await.map(|mut summary| {
                    summary["status"] = json!("interrupted");
                    summary["error"] = json!({"error": "UserInterrupt", "message": "Run was cancelled"});
                    summary
                })
            }
            other => other,
        };
        let summary = match result {
            Ok(summary) => summary,
            Err(error) => {
                tracing::error!(run_id = %run.run_id, %error, "run failed in the host");
                let failure = json!({"error": "RuntimeError", "message": "An internal error occurred"});
                channel.push("error", failure.to_string());
                json!({"status": "error", "error": failure, "values_json": null, "interrupts": {}, "has_next": false})
            }
        };
        let mut status = match summary.get("status").and_then(Value::as_str) {
            Some("error") => RunStatus::Error,
            Some("interrupted") => RunStatus::Interrupted,
            _ => RunStatus::Success,
        };
        if cancel.is_some() {
            status = RunStatus::Interrupted;
        }
        crate::metrics::global().run_ended(status.as_str(), clock.elapsed());
        let mut outcome = thread_outcome(&summary, status == RunStatus::Error);
        let stateless_delete = execution.get("delete_thread").and_then(Value::as_bool).unwrap_or(false);
        let (run_id, thread_id) = (run.run_id, run.thread_id);
        let rollback = cancel == Some(CancelAction::Rollback);
        if rollback {
            // The thread goes back to the state before the run: its checkpoints are removed
            // and the thread's values, interrupts and status read again.
            let _ = self.inner.python.checkpoints(CheckpointOp::DeleteForRuns { thread_id, run_ids: vec![run_id] }).await;
            match self.inner.python.state(StateOp::Settle { spec }, &GraphUse::default()).await {
                Ok(remaining) => outcome = thread_outcome(&remaining, false),
                Err(error) => tracing::error!(%run_id, %error, "cannot read the state of a thread after a rollback"),
            }
        }
        let final_status = (!rollback).then_some(status);
        let stored = self.inner.storage.finish_run(run_id, thread_id, self.inner.owner, final_status, outcome.clone(), now_micros()).await;
        let deleted = match stored {
            Ok(kept) => !kept,
            Err(error) => {
                tracing::error!(%run_id, %error, "cannot store the end of a run");
                false
            }
        };
        if deleted {
            // Its thread was deleted while it ran: nothing of it is kept or announced.
            tracing::info!(%run_id, %thread_id, "run stopped: its thread was deleted, or its claim was lost");
            if self.inner.log.is_some() {
                // The deletion may have come from another process, which could not wait for
                // this run: the checkpoints it wrote go now, then the thread id is free again
                // (a deletion in this process frees it itself, once it has removed the rest).
                let _ = self.inner.python.checkpoints(CheckpointOp::DeleteForRuns { thread_id, run_ids: vec![run_id] }).await;
                let deleting_here = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner).deleting.contains_key(&thread_id);
                if !deleting_here {
                    let _ = self.inner.storage.release_deleted_thread(thread_id).await;
                }
            }
            channel.finish();
            self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
            return;
        }
        if stateless_delete {
            // Kept before the thread goes, so a join that finds no thread finds this.
            match self.inner.storage.get_thread(thread_id, None).await {
                Ok(thread) => self.inner.ended.keep(run_id, thread),
                Err(error) => tracing::warn!(%run_id, %thread_id, %error, "cannot read a stateless run's thread before deleting it"),
            }
            let _ = self.inner.python.checkpoints(CheckpointOp::DeleteThreads(vec![thread_id])).await;
            let _ = self.inner.storage.delete_thread(thread_id, None).await;
        }
        channel.finish();
        self.publish_to_thread(thread_id, "metadata", json!({"status": "run_done", "run_id": run_id.to_string()}).to_string().into());
        tracing::info!(%run_id, %thread_id, status = status.as_str(), "run finished");
        if let Some(webhook) = run.kwargs.get("webhook").and_then(Value::as_str).filter(|url| !url.is_empty() && !self.inner.webhooks.disabled) {
            let mut payload = run_json(&Run { status, updated_at: now_micros(), ..run.clone() });
            payload["run_started_at"] = Value::from(crate::timestamp::format_micros(started_at));
            payload["run_ended_at"] = Value::from(crate::timestamp::format_micros(now_micros()));
            payload["webhook_sent_at"] = Value::from(crate::timestamp::format_micros(now_micros()));
            payload["values"] = outcome.values.clone().unwrap_or(Value::Null);
            if let Some(error) = summary.get("error").filter(|error| !error.is_null()) {
                payload["error"] = error.clone();
            }
            // A path (allowed only with GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1) is this server.
            let url = match webhook.strip_prefix('/') {
                Some(path) => format!("{}/{path}", self.inner.base_url.get().map_or("http://127.0.0.1:2024", String::as_str)),
                None => webhook.to_string(),
            };
            let allow_private = webhook::private_targets_allowed();
            let python = self.inner.python.clone();
            let headers: serde_json::Map<String, Value> = self.inner.webhooks.headers.iter().map(|(name, value)| (name.clone(), Value::from(value.0.clone()))).collect();
            let allowed = webhook::check(webhook, &self.inner.webhooks.url);
            tokio::spawn(async move {
                if let Err(why) = allowed {
                    tracing::warn!(%run_id, %why, "webhook not sent");
                    return;
                }
                match python.send_webhook(url.clone(), payload, headers, allow_private).await {
                    Ok(outcome) => tracing::info!(%run_id, %url, %outcome, "webhook sent"),
                    Err(error) => tracing::warn!(%run_id, %url, %error, "webhook failed"),
                }
            });
        }
        // Readers hold their own handle; the map keeps a finished run's events only when a
        // resumable stream may replay them.
        if resumable {
            let manager = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RETAIN_FINISHED).await;
                manager.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
            });
        } else {
            self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&run_id);
        }
    }
}

/// The ids a deletion holds (counted: overlapping deletions of one id each hold it until
/// they end); released on drop, however the deletion ends.
struct DeletingHold {
    inner: Arc<Inner>,
    ids: Vec<Uuid>,
}

impl DeletingHold {
    fn new(inner: &Arc<Inner>, ids: Vec<Uuid>) -> Self {
        let mut executing = inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &ids {
            *executing.deleting.entry(*id).or_default() += 1;
        }
        drop(executing);
        Self { inner: Arc::clone(inner), ids }
    }
}

impl Drop for DeletingHold {
    fn drop(&mut self) {
        let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &self.ids {
            if let Some(count) = executing.deleting.get_mut(id) {
                *count -= 1;
                if *count == 0 {
                    executing.deleting.remove(id);
                }
            }
        }
    }
}

/// A creation of a thread id under way; `None` while the id is being deleted.
struct CreatingHold {
    inner: Arc<Inner>,
    id: Uuid,
}

impl CreatingHold {
    fn new(inner: &Arc<Inner>, id: Uuid) -> Option<Self> {
        let mut executing = inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
        if executing.deleting.contains_key(&id) {
            return None;
        }
        *executing.creating.entry(id).or_default() += 1;
        drop(executing);
        Some(Self { inner: Arc::clone(inner), id })
    }
}

impl Drop for CreatingHold {
    fn drop(&mut self) {
        let mut executing = self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = executing.creating.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                executing.creating.remove(&self.id);
            }
        }
    }
}

/// The runs executing now, the thread ids being deleted (with how many deletions of each are
/// under way), and cancellations waiting for their run to register.
#[derive(Debug, Default)]
struct Executing {
    runs: HashMap<Uuid, Running>,
    deleting: HashMap<Uuid, usize>,
    /// Thread ids being created now (with how many creations of each are under way).
    creating: HashMap<Uuid, usize>,
    /// Cancellations of runs claimed but not registered yet, read when they register.
    cancels: HashMap<Uuid, CancelAction>,
    /// Runs whose graph has ended (they are no longer in `runs`) while their executor stores
    /// that end.
    ending: HashSet<Uuid>,
}

/// A run in [`Executing::ending`], removed on drop (once its executor is done with it).
struct EndingHold {
    inner: Arc<Inner>,
    run_id: Uuid,
}

impl Drop for EndingHold {
    fn drop(&mut self) {
        self.inner.executing.lock().unwrap_or_else(PoisonError::into_inner).ending.remove(&self.run_id);
    }
}

/// An executing run: its cancel token (`None` while it is being started), its thread, and the
/// action requested for it.
#[derive(Debug)]
struct Running {
    token: Option<u64>,
    thread_id: Uuid,
    cancel: Option<CancelAction>,
    /// Stopped by shutdown: handed back to the queue rather than ended.
    hand_back: bool,
}

/// The wire form of a run (API responses and webhook payloads).
pub fn run_json(run: &Run) -> Value {
    let mut kwargs = run.kwargs.clone();
    kwargs.remove(EXECUTION_KEY);
    json!({
        "run_id": run.run_id.to_string(),
        "thread_id": run.thread_id.to_string(),
        "assistant_id": run.assistant_id.to_string(),
        "created_at": crate::timestamp::format_micros(run.created_at),
        "updated_at": crate::timestamp::format_micros(run.updated_at),
        "status": run.status.as_str(),
        "metadata": run.metadata,
        "multitask_strategy": run.multitask_strategy,
        "kwargs": kwargs,
        "langsmith_session_name": null,
    })
}

/// The thread's state after a run, from the run's summary.
fn thread_outcome(summary: &Value, failed: bool) -> ThreadOutcome {
    let has_next = summary.get("has_next").and_then(Value::as_bool).unwrap_or(false);
    ThreadOutcome {
        values: summary_values(summary),
        interrupts: summary.get("interrupts").and_then(Value::as_object).cloned().unwrap_or_default(),
        status: if failed {
            ThreadStatus::Error
        } else if has_next {
            ThreadStatus::Interrupted
        } else {
            ThreadStatus::Idle
        },
        error: summary.get("error").cloned().filter(|error| !error.is_null()),
    }
}

/// The thread values of a run or update summary from the runner (`values_json`, JSON text);
/// `None` when it has none.
pub fn summary_values(summary: &Value) -> Option<Value> {
    let text = summary.get("values_json").and_then(Value::as_str)?;
    serde_json::from_str::<Value>(text).ok().filter(|values| !values.is_null())
}

/// The body of `/wait`, `/join` and `cancel?wait=1`, from a run's events (spec runs.md
/// §4.13). `None`: the run published no `values` and no error (the caller falls back to the
/// thread's values).
pub fn wait_result(events: &[RunEvent]) -> Option<Value> {
    let mut last_values = None;
    let mut interrupt_chunks = Vec::new();
    // Only the last `values` matters, unless others carry interrupts: the rest (whole states,
    // growing with the thread) are not parsed.
    let last_values_index = events.iter().rposition(|event| event.event == "values");
    for (index, event) in events.iter().enumerate() {
        if event.event != "error" && Some(index) != last_values_index && !event.data.contains("\"__interrupt__\"") {
            continue;
        }
        match event.event.as_str() {
            "error" => {
                let error = serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null);
                return Some(json!({"__error__": error}));
            }
            "values" => {
                let values = serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null);
                if let Some(interrupts) = values.get("__interrupt__") {
                    interrupt_chunks.push(interrupts.clone());
                }
                last_values = Some(values);
            }
            "updates" => {
                if let Ok(update) = serde_json::from_str::<Value>(&event.data)
                    && let Some(interrupts) = update.get("__interrupt__").filter(|list| list.as_array().is_some_and(|items| !items.is_empty()))
                {
                    interrupt_chunks.push(interrupts.clone());
                }
            }
            _ => {}
        }
    }
    if interrupt_chunks.len() > 1 {
        let all: Vec<Value> = interrupt_chunks.iter().filter_map(Value::as_array).flatten().cloned().collect();
        return Some(json!({"__interrupt__": all}));
    }
    last_values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> RunEvent {
        RunEvent { id: None, event: name.to_string(), data: Arc::from(data) }
    }

    #[test]
    fn wait_result_is_the_last_values_or_every_interrupt() {
        let plain = [event("metadata", "{}"), event("values", r#"{"n":1}"#), event("updates", r#"{"a":{}}"#), event("values", r#"{"n":2}"#)];
        assert_eq!(wait_result(&plain), Some(json!({"n": 2})));
        let one = [event("values", r#"{"n":1}"#), event("values", r#"{"n":1,"__interrupt__":[{"value":"q"}]}"#)];
        assert_eq!(wait_result(&one), Some(json!({"n": 1, "__interrupt__": [{"value": "q"}]})));
        let two = [
            event("updates", r#"{"__interrupt__":[{"value":"a"}]}"#),
            event("values", r#"{"n":1}"#),
            event("updates", r#"{"__interrupt__":[{"value":"b"}]}"#),
        ];
        assert_eq!(wait_result(&two), Some(json!({"__interrupt__": [{"value": "a"}, {"value": "b"}]})));
        let failed = [event("values", r#"{"n":1}"#), event("error", r#"{"error":"ValueError"}"#)];
        assert_eq!(wait_result(&failed), Some(json!({"__error__": {"error": "ValueError"}})));
        assert_eq!(wait_result(&[event("metadata", "{}")]), None);
    }
}
