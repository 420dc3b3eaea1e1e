//! Storage: the records the API serves, behind async, domain-level traits ([`Threads`],
//! [`Assistants`], [`Crons`], [`RunQueue`], [`Items`]; [`Storage`] is all of them), opened
//! from one [`StorageConfig`]. Every call is one transaction of the backend and owns its
//! arguments, so its future can run anywhere. How a backend runs its I/O is its own affair
//! (SQLite: inline under a budget, else on the blocking pool; `sqlite/calls.rs`). Auth
//! filters arrive as typed [`Filter`]s and are compiled into the query, never applied after
//! a LIMIT. This module knows neither HTTP nor pyo3.

pub mod canonical;
#[cfg(test)]
pub(crate) mod conformance;
pub mod postgres;
pub mod sqlite;
mod sql;
pub mod store_filter;
mod vectors;

pub use vectors::{Candidate, Ranking, Vectors};

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::assistants::Assistant;
pub use crate::config::{ThreadTtl, TtlStrategy};
use crate::crons::Cron;
use crate::auth::Filter;

/// Thread status. Serde names are the wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadStatus {
    Idle,
    Busy,
    Interrupted,
    Error,
}

impl ThreadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Interrupted => "interrupted",
            Self::Error => "error",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "busy" => Self::Busy,
            "interrupted" => Self::Interrupted,
            "error" => Self::Error,
            _ => Self::Idle,
        }
    }
}

/// A thread row.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub thread_id: Uuid,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub state_updated_at: i64,
    pub metadata: Map<String, Value>,
    pub config: Map<String, Value>,
    pub status: ThreadStatus,
    pub values: Option<Value>,
    pub interrupts: Map<String, Value>,
    pub error: Option<Value>,
    /// The thread's TTL, if it has one: it expires `ttl.minutes` after `updated_at`.
    pub ttl: Option<ThreadTtl>,
}

/// A thread's TTL as stored: whole microseconds (what the sweep's index adds to `updated_at`).
fn ttl_micros(ttl: &ThreadTtl) -> i64 {
    ttl.expires_at(0)
}

/// The stored columns (`ttl_strategy`, `ttl_micros`) back as a TTL.
fn ttl_from_columns(strategy: Option<String>, micros: Option<i64>) -> Option<ThreadTtl> {
    let strategy = TtlStrategy::parse(&strategy?)?;
    Some(ThreadTtl { strategy, minutes: micros? as f64 / 60_000_000.0 })
}

/// An expired thread claimed by one sweep (see [`Threads::claim_expired_threads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredThread {
    pub thread_id: Uuid,
    pub strategy: TtlStrategy,
}

/// Columns threads can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadSortBy {
    ThreadId,
    Status,
    CreatedAt,
    UpdatedAt,
    StateUpdatedAt,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    Desc,
}

/// Which threads a search or count selects.
#[derive(Debug, Clone, Default)]
pub struct ThreadQuery {
    /// Restrict to these ids.
    pub ids: Option<Vec<Uuid>>,
    /// Containment on metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Containment on the current values (`null` values never match).
    pub values: Option<Map<String, Value>>,
    pub status: Option<ThreadStatus>,
    /// The auth filter on metadata.
    pub auth: Option<Filter>,
}

/// Which assistants a search or count selects.
#[derive(Debug, Clone, Default)]
pub struct AssistantQuery {
    pub graph_id: Option<String>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Containment on metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The auth filter on metadata.
    pub auth: Option<Filter>,
}

/// Columns assistants can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssistantSortBy {
    AssistantId,
    CreatedAt,
    UpdatedAt,
    Name,
    GraphId,
}

/// A PATCH of an assistant: a new version with these fields replaced (metadata merged).
#[derive(Debug, Clone, Default)]
pub struct AssistantPatch {
    pub graph_id: Option<String>,
    pub config: Option<Map<String, Value>>,
    pub context: Option<Map<String, Value>>,
    pub metadata: Map<String, Value>,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Which crons a search or count selects.
#[derive(Debug, Clone, Default)]
pub struct CronQuery {
    pub assistant_id: Option<Uuid>,
    pub thread_id: Option<Uuid>,
    pub enabled: Option<bool>,
    /// Containment on the cron's metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The auth filter on the cron's metadata.
    pub auth: Option<Filter>,
    /// The auth filter on the target thread's metadata (crons without a thread are exempt; a
    /// cron whose thread is gone is tested against `{}`).
    pub thread_auth: Option<Filter>,
}

/// Columns crons can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CronSortBy {
    CronId,
    AssistantId,
    ThreadId,
    NextRunDate,
    EndTime,
    CreatedAt,
    UpdatedAt,
}

/// A run's status. Serde names are the wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Error,
    Timeout,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_string())).ok()
    }

    /// Pending or running.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

/// A run row.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub run_id: Uuid,
    pub thread_id: Uuid,
    pub assistant_id: Uuid,
    /// The scheduled start (creation time + `after_seconds`), microseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub status: RunStatus,
    pub metadata: Map<String, Value>,
    pub multitask_strategy: String,
    /// The stored execution arguments (input, command, config, context, stream_mode, …).
    pub kwargs: Map<String, Value>,
}

/// The thread fields a finished run (or a state update) sets.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadOutcome {
    pub values: Option<Value>,
    pub interrupts: Map<String, Value>,
    pub status: ThreadStatus,
    pub error: Option<Value>,
}

/// A stored cross-thread memory item.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreItem {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the item expires (µs), if it has a ttl.
    pub expires_at: Option<i64>,
}

/// What a put writes, in one transaction: the value, its vectors and its ttl.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemWrite {
    pub value: Map<String, Value>,
    /// The vectors of its embedded texts (none: not ranked by a query).
    pub vectors: Option<Vectors>,
    /// Minutes it lives from now, and again from each refreshing read (none: forever).
    pub ttl_minutes: Option<f64>,
}

impl ItemWrite {
    /// A plain value: no vectors, no ttl.
    pub fn value(value: Map<String, Value>) -> Self {
        Self { value, vectors: None, ttl_minutes: None }
    }

    /// When an item written at `now` expires.
    pub fn expires_at(&self, now: i64) -> Option<i64> {
        self.ttl_minutes.map(|minutes| expiry(now, minutes))
    }
}

/// `minutes` after `now` (µs), saturating.
pub fn expiry(now: i64, minutes: f64) -> i64 {
    let micros = (minutes * 60_000_000.0).min(i64::MAX as f64) as i64;
    now.saturating_add(micros)
}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The record does not exist (or an auth filter hides it).
    #[error("not found")]
    NotFound,
    /// A record with this id already exists.
    #[error("already exists")]
    Conflict,
    /// The database failed; the message is for logs.
    #[error("storage error: {0}")]
    Internal(String),
    /// The database cannot be reached (refused, dropped); the request may be retried. The
    /// message is for logs.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// What to do when a created id exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    Raise,
    DoNothing,
}

/// The records an assistant's deletion takes with it, each with the caller's filter for it.
#[derive(Debug, Clone, Default)]
pub struct AssistantCascade {
    pub threads: Vec<(Uuid, Option<Filter>)>,
    pub crons: Vec<(Uuid, Option<Filter>)>,
}

/// What [`Threads::delete_threads`] does with a thread that exists but fails its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// Leave it, delete the others.
    Skip,
    /// Delete nothing, answer `NotFound`.
    Refuse,
}

/// A storage call in flight. `'static` (it owns its arguments and its backend handle), so a
/// caller can hand it to a task of its own.
pub type Answer<T> = Pin<Box<dyn Future<Output = StorageResult<T>> + Send + 'static>>;

/// Threads, with the state a run or an update leaves on them.
pub trait Threads: Send + Sync {
    /// Creates a thread. An existing id: `Conflict` if `if_exists` is `Raise` or the existing
    /// thread fails `auth`, else the existing thread.
    fn create_thread(&self, thread: Thread, if_exists: IfExists, auth: Option<Filter>) -> Answer<Thread>;
    /// The thread, if it exists and passes `auth`.
    fn get_thread(&self, thread_id: Uuid, auth: Option<Filter>) -> Answer<Thread>;
    /// Merges `metadata` into the thread's metadata, replaces its TTL when `ttl` is given,
    /// bumps `updated_at` (which restarts the TTL).
    fn patch_thread(&self, thread_id: Uuid, metadata: Map<String, Value>, ttl: Option<ThreadTtl>, auth: Option<Filter>, now: i64) -> Answer<Thread>;
    /// Deletes the thread (and everything that belongs to it).
    fn delete_thread(&self, thread_id: Uuid, auth: Option<Filter>) -> Answer<()>;
    /// Deletes threads in one transaction, each only if it passes its own filter, with their
    /// runs and crons; answers what it deleted. A missing thread is skipped; one that exists
    /// but fails its filter is skipped too, or with [`Hidden::Refuse`] aborts the whole
    /// deletion with `NotFound` (nothing deleted).
    fn delete_threads(&self, targets: Vec<(Uuid, Option<Filter>)>, hidden: Hidden) -> Answer<DeletedThreads>;
    /// A page of threads.
    fn search_threads(&self, query: ThreadQuery, sort_by: ThreadSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Thread>>;
    /// How many threads match.
    fn count_threads(&self, query: ThreadQuery) -> Answer<i64>;
    /// Sets a thread's values, interrupts, status and error; `busy` wins while other runs
    /// are active.
    /// After a run ended without storing an outcome (dropped or cancelled before it started):
    /// the thread is `idle` (`interrupted` if it holds interrupts) unless other runs are
    /// active; values and error stay. One transaction, so a run finishing meanwhile is not
    /// overwritten.
    fn settle_thread(&self, thread_id: Uuid, now: i64) -> Answer<()>;
    fn finish_thread(&self, thread_id: Uuid, outcome: ThreadOutcome, now: i64) -> Answer<()>;
    /// Claims up to `limit` threads whose TTL ran out by `now` (soonest expired first): not
    /// busy, and not handled since their last activity. A claim marks the thread handled for
    /// its current `updated_at`, in the same statement that selects it, so of the processes
    /// sweeping one database each thread is claimed once (Postgres: rows others are claiming
    /// are skipped, not waited for). Activity (which bumps `updated_at`) makes it claimable
    /// again once it expires again.
    fn claim_expired_threads(&self, now: i64, limit: usize) -> Answer<Vec<ExpiredThread>>;
    /// Undoes the claims of threads whose sweep failed, so the next sweep tries again.
    fn release_expired_threads(&self, thread_ids: Vec<Uuid>) -> Answer<()>;
}

/// Assistants and their versions.
pub trait Assistants: Send + Sync {
    /// Registers a graph's system assistant: inserted if missing, else name and description
    /// re-synced (idempotent).
    fn register_system_assistant(&self, assistant: Assistant) -> Answer<()>;
    /// Creates an assistant (version 1). Existing id: like [`Threads::create_thread`].
    fn create_assistant(&self, assistant: Assistant, if_exists: IfExists, auth: Option<Filter>) -> Answer<Assistant>;
    fn get_assistant(&self, assistant_id: Uuid, auth: Option<Filter>) -> Answer<Assistant>;
    /// Applies a patch as a new version and makes it current.
    fn patch_assistant(&self, assistant_id: Uuid, patch: AssistantPatch, auth: Option<Filter>, now: i64) -> Answer<Assistant>;
    /// Deletes the assistant (if it passes `auth`, else `NotFound`) with its versions and
    /// crons and, in the same transaction, those of `cascade.threads` that still belong to it
    /// (`metadata.assistant_id`) and pass their own filter; answers the threads it deleted.
    /// Every cron of the assistant must be in `cascade.crons` and pass its filter, else
    /// nothing is deleted and the answer is `Conflict`.
    fn delete_assistant(&self, assistant_id: Uuid, auth: Option<Filter>, cascade: AssistantCascade) -> Answer<DeletedThreads>;
    fn search_assistants(&self, query: AssistantQuery, sort_by: AssistantSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Assistant>>;
    fn count_assistants(&self, query: AssistantQuery) -> Answer<i64>;
    /// Versions, newest first, filtered by containment on the version's metadata and by `auth`.
    fn assistant_versions(&self, assistant_id: Uuid, metadata: Option<Map<String, Value>>, auth: Option<Filter>, limit: i64, offset: i64) -> Answer<Vec<Assistant>>;
    /// Makes `version` current (all its fields). `Ok(None)`: no such version.
    fn set_latest_assistant_version(&self, assistant_id: Uuid, version: i64, auth: Option<Filter>, now: i64) -> Answer<Option<Assistant>>;
}

/// Crons and their schedule.
pub trait Crons: Send + Sync {
    fn create_cron(&self, cron: Cron) -> Answer<()>;
    fn get_cron(&self, cron_id: Uuid, auth: Option<Filter>) -> Answer<Cron>;
    /// Replaces every column of an existing cron.
    fn update_cron(&self, cron: Cron) -> Answer<()>;
    fn delete_cron(&self, cron_id: Uuid, auth: Option<Filter>) -> Answer<()>;
    fn search_crons(&self, query: CronQuery, sort_by: CronSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Cron>>;
    fn count_crons(&self, query: CronQuery) -> Answer<i64>;
    /// Enabled crons whose `next_run_date` has passed.
    fn due_crons(&self, now: i64) -> Answer<Vec<Cron>>;
    /// Moves a cron's `next_run_date` from `from` (the firing being claimed) to `to` (`None`: it
    /// never fires again), only if it is still at `from`: of the processes that read a cron as
    /// due, the one that moves it fires it (`true`).
    fn advance_cron(&self, cron_id: Uuid, from: Option<i64>, to: Option<i64>, now: i64) -> Answer<bool>;
}

/// The run queue: runs are inserted pending, claimed one per thread, and finished together
/// with their thread's outcome.
pub trait RunQueue: Send + Sync {
    /// Inserts a pending run; the thread becomes `busy` and gets `graph_id`/`assistant_id`
    /// merged into its metadata.
    fn insert_run(&self, run: Run, thread_metadata: Map<String, Value>) -> Answer<()>;
    /// [`RunQueue::insert_run`] for a cron's firing, in one transaction with the move of the
    /// cron's `next_run_date` from `firing.from` to `firing.to`: `false`, and nothing stored,
    /// when the cron is no longer at `from` (another process fired it). So a tick fires once,
    /// and a process that dies mid-firing leaves the tick for another.
    fn insert_cron_run(&self, run: Run, thread_metadata: Map<String, Value>, firing: CronFiring) -> Answer<bool>;
    fn get_run(&self, thread_id: Uuid, run_id: Uuid) -> Answer<Run>;
    /// Runs of a thread, newest first.
    fn list_runs(&self, thread_id: Uuid, status: Option<RunStatus>, limit: i64, offset: i64) -> Answer<Vec<Run>>;
    /// Pending and running runs of a thread, oldest first.
    fn active_runs(&self, thread_id: Uuid) -> Answer<Vec<Run>>;
    /// Active runs of every thread with this status (`None`: pending and running).
    fn all_active_runs(&self, status: Option<RunStatus>) -> Answer<Vec<Run>>;
    /// Ends a run that is still `pending` (not claimed): sets `status`, or deletes it when
    /// `None`. `false`: it was not pending (claimed meanwhile, finished, or gone); nothing changed.
    fn end_pending_run(&self, run_id: Uuid, status: Option<RunStatus>, now: i64) -> Answer<bool>;
    /// Deletes a run that is not executing (a client's `DELETE` of an ended run).
    fn delete_run(&self, run_id: Uuid) -> Answer<()>;
    /// Claims the oldest runnable pending run (scheduled start passed, nothing else running
    /// or older pending on its thread): it becomes `running`, held by `lease`.
    fn claim_next_run(&self, now: i64, lease: Lease) -> Answer<Option<Run>>;
    /// Extends to `until` the lease of every running run `owner` holds; answers how many.
    fn renew_leases(&self, owner: Uuid, until: i64) -> Answer<usize>;
    /// Gives a claimed run back to the queue (`pending`, no lease) while `owner` holds it.
    fn release_run(&self, run_id: Uuid, owner: Uuid, now: i64) -> Answer<bool>;
    /// Ends a claimed run that never started (cancelled first) while `owner` holds it: sets
    /// `status`, or deletes it when `None`. The thread's state is untouched.
    fn end_claimed_run(&self, run_id: Uuid, owner: Uuid, status: Option<RunStatus>, now: i64) -> Answer<bool>;
    /// The earliest scheduled start of a pending run, if any.
    fn next_pending_start(&self) -> Answer<Option<i64>>;
    /// The end of an executed run, in one transaction: its final status (`None`: the run is
    /// deleted, a rollback) and its thread's outcome — only while `owner` holds the run. A run
    /// whose row is gone (its thread was deleted meanwhile) or whose lease `owner` lost
    /// changes nothing and answers `false`: a thread created later with the same id never
    /// receives a deleted run's state, and a stalled process never writes over a run that
    /// another one took over.
    fn finish_run(&self, run_id: Uuid, thread_id: Uuid, owner: Uuid, status: Option<RunStatus>, outcome: ThreadOutcome, now: i64) -> Answer<bool>;
    /// Ends as `error` (their threads too) the running runs whose process is gone, from the
    /// point of view of process `me`: a backend that one process serves (SQLite) ends every
    /// run `me` does not hold; a shared one, those whose lease ended before `now`. Answers
    /// how many.
    fn recover_interrupted_runs(&self, me: Uuid, now: i64) -> Answer<usize>;
}

/// The processes serving one shared storage exchange a run's events and cancellations through
/// it: the executing process appends each event (with its position, `seq`, from 0); a reader on
/// any process reads them from a position; a cancellation reaches the run's owner. A backend
/// that one process serves (SQLite) keeps nothing here: its events travel in memory.
pub trait RunLog: Send + Sync {
    /// Whether other processes serve this storage.
    fn is_shared(&self) -> bool;
    /// Answers once the database answers a trivial query (the health check's `check_db`).
    fn ping(&self) -> Answer<()>;
    /// Appends events of runs, in order (`finished`: the run's last), in one transaction, and
    /// wakes the readers of those runs on every process.
    fn append_run_events(&self, batch: Vec<LoggedRun>) -> Answer<()>;
    /// The events of a run from position `from` on, and whether its last one is among them.
    fn run_events(&self, run_id: Uuid, from: i64) -> Answer<LoggedRun>;
    /// Asks the process executing a run to stop it (`action`: `interrupt` or `rollback`);
    /// the request is kept on the run for its owner's poll as well as signalled.
    fn request_cancel(&self, run_id: Uuid, action: String) -> Answer<()>;
    /// The cancellations requested for runs `owner` holds.
    fn requested_cancels(&self, owner: Uuid) -> Answer<Vec<(Uuid, String)>>;
    /// The signals of other processes, as they arrive (`None`: not a shared backend).
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>>;
    /// Removes the logs of runs whose log ended before `before` (microseconds); answers how
    /// many. Also ends the reservations of deleted threads' ids that lapsed, with whatever
    /// checkpoints their runs left.
    fn forget_run_events(&self, before: i64) -> Answer<usize>;
    /// A thread deleted while a run of it was running may be created again: that run has
    /// stopped and removed what it wrote (a shared storage keeps the id reserved till then).
    fn release_deleted_thread(&self, thread_id: Uuid) -> Answer<()>;
}

/// Events of one run, as the run log keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggedRun {
    pub run_id: Uuid,
    pub events: Vec<LoggedEvent>,
    /// The run's last event is in (or before) `events`.
    pub finished: bool,
}

/// One event at its position in its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub seq: i64,
    /// The SSE id (resumable runs).
    pub id: Option<String>,
    pub event: String,
    pub data: Arc<str>,
}

/// What another process signalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// These runs have new events.
    Events(Vec<Uuid>),
    /// Stop this run (`interrupt` or `rollback`) if it executes here.
    Cancel(Uuid, String),
    /// Signals may have been missed (the listening connection was lost): poll.
    Lagged,
}

/// A cron firing being stored: the cron, the `next_run_date` it was read at, and its next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronFiring {
    pub cron_id: Uuid,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// A claim on a run: the process that executes it (`owner`, also the fencing token of its
/// writes) and when the claim lapses unless renewed (microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: Uuid,
    pub until: i64,
}

/// The cross-thread store (`/store` and the graphs' `BaseStore`).
///
/// An item whose `expires_at` is at or before a call's `now` is gone for every call: never
/// read, listed or guarded against, and replaced as new (its `created_at` too) by a put.
pub trait Items: Send + Sync {
    /// Inserts or replaces an item with its vectors and ttl (keeping `created_at` of a
    /// replaced one). With a `guard` (a store filter, [`store_filter`]) the new value and the
    /// item it replaces, if any, must both pass it, else nothing is written and the answer is
    /// `false`.
    fn put_item(&self, namespace: Vec<String>, key: String, item: ItemWrite, guard: Option<Map<String, Value>>, now: i64) -> Answer<bool>;
    fn get_item(&self, namespace: Vec<String>, key: String, now: i64) -> Answer<Option<StoreItem>>;
    /// Deletes an item; with a `guard`, only if its value passes it.
    fn delete_item(&self, namespace: Vec<String>, key: String, guard: Option<Map<String, Value>>) -> Answer<()>;
    /// Every item under `prefix`, newest first.
    fn items_under(&self, prefix: Vec<String>, now: i64) -> Answer<Vec<StoreItem>>;
    /// The page of a semantic query over the items under `prefix` whose values pass every
    /// filter: ranked by `query`'s cosine similarity to their vectors ([`Ranking`]: the
    /// unscored last), then `offset` and `limit`.
    fn rank_items(&self, prefix: Vec<String>, query: Vec<f32>, filters: Vec<Map<String, Value>>, page: (usize, usize), now: i64) -> Answer<Vec<(StoreItem, Option<f64>)>>;
    /// Every distinct namespace that holds an item, sorted.
    fn namespaces(&self, now: i64) -> Answer<Vec<Vec<String>>>;
    /// Restarts the ttl of these items (those that have one and have not expired) at `now`.
    fn refresh_items(&self, items: Vec<(Vec<String>, String)>, now: i64) -> Answer<()>;
    /// Deletes every item expired at `now`; how many. Safe to run from several processes.
    fn sweep_items(&self, now: i64) -> Answer<u64>;
}

/// What a thread deletion removed, in its one transaction: the threads, and the runs of theirs
/// that were still pending or running (their streams and waiters are then ended).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedThreads {
    pub thread_ids: Vec<Uuid>,
    pub active_runs: Vec<Uuid>,
}

/// Every record the server keeps: one backend implements every part. Implementations are safe
/// to call from many tasks; each call is one transaction.
pub trait Storage: Threads + Assistants + Crons + RunQueue + RunLog + Items + std::fmt::Debug {}

impl<T: Threads + Assistants + Crons + RunQueue + RunLog + Items + std::fmt::Debug> Storage for T {}

/// Where the server keeps its records, chosen once at start-up.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// An embedded SQLite database file (created with its folder if missing).
    Sqlite { path: PathBuf },
    /// A Postgres database (`postgres://user:password@host:port/database`), which any number
    /// of graphward processes share.
    Postgres { uri: String },
}

impl std::fmt::Debug for StorageConfig {
    /// Never the password of a URI.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { path } => formatter.debug_struct("Sqlite").field("path", path).finish(),
            Self::Postgres { uri } => formatter.debug_struct("Postgres").field("uri", &redact_uri(uri)).finish(),
        }
    }
}

/// `uri` with the password of its user part replaced by `***`.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(authority, tail)| (authority, Some(tail)));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    tail.map_or_else(|| format!("{scheme}://{authority}"), |tail| format!("{scheme}://{authority}/{tail}"))
}

/// Where the graphs' checkpoints live, as the interpreter's checkpointer is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointTarget {
    /// A SQLite file of graphward's own saver.
    SqliteFile(PathBuf),
    /// The tables of langgraph-checkpoint-postgres in this database.
    Postgres(String),
}

impl StorageConfig {
    /// Opens (and migrates) the storage. A failure is one line for the user.
    pub async fn open(&self) -> Result<StorageHandle, String> {
        match self {
            Self::Sqlite { path } => Ok(StorageHandle::new(Arc::new(sqlite::SqliteStorage::open(path)?))),
            Self::Postgres { uri } => Ok(StorageHandle::new(Arc::new(postgres::PostgresStorage::open(uri).await?))),
        }
    }

    /// Whether several processes may serve this storage at once.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    /// Where the checkpoints of this storage go.
    pub fn checkpoints(&self) -> CheckpointTarget {
        match self {
            Self::Sqlite { path } => {
                let stem = path.file_stem().map_or_else(|| "state".into(), |stem| stem.to_string_lossy().into_owned());
                CheckpointTarget::SqliteFile(path.with_file_name(format!("{stem}.checkpoints.db")))
            }
            Self::Postgres { uri } => CheckpointTarget::Postgres(uri.clone()),
        }
    }

    /// The files this storage keeps (for a caller that removes a throwaway database); none
    /// for Postgres.
    pub fn files(&self) -> Vec<PathBuf> {
        let (Self::Sqlite { path }, CheckpointTarget::SqliteFile(checkpoints)) = (self, self.checkpoints()) else { return Vec::new() };
        [path.clone(), checkpoints]
            .iter()
            .flat_map(|base| ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", base.display()))))
            .chain([sqlite::lock_file(path)])
            .collect()
    }
}

/// Cheap-clone handle over a [`Storage`]: `storage.get_thread(…).await`.
#[derive(Debug, Clone)]
pub struct StorageHandle {
    inner: Arc<dyn Storage>,
}

impl StorageHandle {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { inner: storage }
    }
}

impl std::ops::Deref for StorageHandle {
    type Target = dyn Storage;

    fn deref(&self) -> &Self::Target {
        self.inner.as_ref()
    }
}
