//! Storage: the records the API serves, behind the object-safe [`Storage`] trait.
//!
//! The trait is synchronous: implementations do blocking I/O (SQLite now; a Postgres
//! implementation can follow with a blocking client or its own thread pool). Async callers go
//! through [`StorageHandle::run`], which tries the call on the calling thread under a work
//! budget and moves it onto tokio's blocking pool if it needs more (see [`inline`]). Auth
//! filters arrive as typed [`Filter`]s and are compiled into the query, never applied after a
//! LIMIT. This module knows neither HTTP nor pyo3.

pub mod canonical;
#[cfg(test)]
pub(crate) mod conformance;
pub mod sqlite;
pub mod store_filter;

use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::assistants::Assistant;
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

/// What [`Storage::delete_threads`] does with a thread that exists but fails its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// Leave it, delete the others.
    Skip,
    /// Delete nothing, answer `NotFound`.
    Refuse,
}

/// Every record the server keeps. Implementations must be safe to call from many threads.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates a thread. An existing id: `Conflict` if `if_exists` is `Raise` or the existing
    /// thread fails `auth`, else the existing thread.
    fn create_thread(&self, thread: &Thread, if_exists: IfExists, auth: Option<&Filter>) -> StorageResult<Thread>;
    /// The thread, if it exists and passes `auth`.
    fn get_thread(&self, thread_id: Uuid, auth: Option<&Filter>) -> StorageResult<Thread>;
    /// Merges `metadata` into the thread's metadata, bumps `updated_at`.
    fn patch_thread(&self, thread_id: Uuid, metadata: &Map<String, Value>, auth: Option<&Filter>, now: i64) -> StorageResult<Thread>;
    /// Deletes the thread (and everything that belongs to it).
    fn delete_thread(&self, thread_id: Uuid, auth: Option<&Filter>) -> StorageResult<()>;
    /// Deletes threads in one transaction, each only if it passes its own filter, with their
    /// runs and crons; returns the ids deleted. A missing thread is skipped; one that exists
    /// but fails its filter is skipped too, or with [`Hidden::Refuse`] aborts the whole
    /// deletion with `NotFound` (nothing deleted).
    fn delete_threads(&self, targets: &[(Uuid, Option<Filter>)], hidden: Hidden) -> StorageResult<Vec<Uuid>>;
    /// A page of threads.
    fn search_threads(&self, query: &ThreadQuery, sort_by: ThreadSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> StorageResult<Vec<Thread>>;
    /// How many threads match.
    fn count_threads(&self, query: &ThreadQuery) -> StorageResult<i64>;

    /// Registers a graph's system assistant: inserted if missing, else name and description
    /// re-synced (idempotent).
    fn register_system_assistant(&self, assistant: &Assistant) -> StorageResult<()>;
    /// Creates an assistant (version 1). Existing id: like [`Storage::create_thread`].
    fn create_assistant(&self, assistant: &Assistant, if_exists: IfExists, auth: Option<&Filter>) -> StorageResult<Assistant>;
    fn get_assistant(&self, assistant_id: Uuid, auth: Option<&Filter>) -> StorageResult<Assistant>;
    /// Applies a patch as a new version and makes it current.
    fn patch_assistant(&self, assistant_id: Uuid, patch: &AssistantPatch, auth: Option<&Filter>, now: i64) -> StorageResult<Assistant>;
    /// Deletes the assistant (if it passes `auth`, else `NotFound`) with its versions and
    /// crons and, in the same transaction, those of `cascade.threads` that still belong to it
    /// (`metadata.assistant_id`) and pass their own filter; returns the thread ids deleted.
    /// Every cron of the assistant must be in `cascade.crons` and pass its filter, else
    /// nothing is deleted and the answer is `Conflict`.
    fn delete_assistant(&self, assistant_id: Uuid, auth: Option<&Filter>, cascade: &AssistantCascade) -> StorageResult<Vec<Uuid>>;
    fn search_assistants(&self, query: &AssistantQuery, sort_by: AssistantSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> StorageResult<Vec<Assistant>>;
    fn count_assistants(&self, query: &AssistantQuery) -> StorageResult<i64>;
    /// Versions, newest first, filtered by containment on the version's metadata and by `auth`.
    fn assistant_versions(&self, assistant_id: Uuid, metadata: Option<&Map<String, Value>>, auth: Option<&Filter>, limit: i64, offset: i64) -> StorageResult<Vec<Assistant>>;
    /// Makes `version` current (all its fields). `Ok(None)`: no such version.
    fn set_latest_assistant_version(&self, assistant_id: Uuid, version: i64, auth: Option<&Filter>, now: i64) -> StorageResult<Option<Assistant>>;

    fn create_cron(&self, cron: &Cron) -> StorageResult<()>;
    fn get_cron(&self, cron_id: Uuid, auth: Option<&Filter>) -> StorageResult<Cron>;
    /// Replaces every column of an existing cron.
    fn update_cron(&self, cron: &Cron) -> StorageResult<()>;
    fn delete_cron(&self, cron_id: Uuid, auth: Option<&Filter>) -> StorageResult<()>;
    fn search_crons(&self, query: &CronQuery, sort_by: CronSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> StorageResult<Vec<Cron>>;
    fn count_crons(&self, query: &CronQuery) -> StorageResult<i64>;
    /// Enabled crons whose `next_run_date` has passed.
    fn due_crons(&self, now: i64) -> StorageResult<Vec<Cron>>;
    /// Moves a cron's `next_run_date` (`None`: it never fires again).
    fn set_cron_next_run(&self, cron_id: Uuid, next_run_date: Option<i64>, now: i64) -> StorageResult<()>;

    /// Inserts a pending run; the thread becomes `busy` and gets `graph_id`/`assistant_id`
    /// merged into its metadata.
    fn insert_run(&self, run: &Run, thread_metadata: &Map<String, Value>) -> StorageResult<()>;
    fn get_run(&self, thread_id: Uuid, run_id: Uuid) -> StorageResult<Run>;
    /// Runs of a thread, newest first.
    fn list_runs(&self, thread_id: Uuid, status: Option<RunStatus>, limit: i64, offset: i64) -> StorageResult<Vec<Run>>;
    /// Pending and running runs of a thread, oldest first.
    fn active_runs(&self, thread_id: Uuid) -> StorageResult<Vec<Run>>;
    /// Active runs of every thread with this status (`None`: pending and running).
    fn all_active_runs(&self, status: Option<RunStatus>) -> StorageResult<Vec<Run>>;
    fn set_run_status(&self, run_id: Uuid, status: RunStatus, now: i64) -> StorageResult<()>;
    /// Ends a run that is still `pending` (not claimed): sets `status`, or deletes it when
    /// `None`. `false`: it was not pending (claimed meanwhile, finished, or gone); nothing changed.
    fn end_pending_run(&self, run_id: Uuid, status: Option<RunStatus>, now: i64) -> StorageResult<bool>;
    fn delete_run(&self, run_id: Uuid) -> StorageResult<()>;
    /// Claims the oldest runnable pending run (scheduled start passed, nothing else running
    /// or older pending on its thread): it becomes `running`.
    fn claim_next_run(&self, now: i64) -> StorageResult<Option<Run>>;
    /// The earliest scheduled start of a pending run, if any.
    fn next_pending_start(&self) -> StorageResult<Option<i64>>;
    /// Sets a thread's values, interrupts, status and error; `busy` wins while other runs
    /// are active.
    fn finish_thread(&self, thread_id: Uuid, outcome: &ThreadOutcome, now: i64) -> StorageResult<()>;
    /// The end of an executed run, in one transaction: its final status (`None`: the run is
    /// deleted, a rollback) and its thread's outcome. A run whose row is gone (its thread was
    /// deleted meanwhile) changes nothing and answers `false`: a thread created later with
    /// the same id never receives a deleted run's state.
    fn finish_run(&self, run_id: Uuid, thread_id: Uuid, status: Option<RunStatus>, outcome: &ThreadOutcome, now: i64) -> StorageResult<bool>;
    /// Marks runs left `running` by a previous process as `error` (returns how many).
    fn recover_interrupted_runs(&self, now: i64) -> StorageResult<usize>;

    /// Inserts or replaces an item (keeping `created_at` of a replaced one). With a `guard`
    /// (a store filter, [`store_filter`]) the new value and the item it replaces, if any,
    /// must both pass it, else nothing is written and the answer is `false`.
    fn put_item(&self, namespace: &[String], key: &str, value: &Map<String, Value>, guard: Option<&Map<String, Value>>, now: i64) -> StorageResult<bool>;
    fn get_item(&self, namespace: &[String], key: &str) -> StorageResult<Option<StoreItem>>;
    /// Deletes an item; with a `guard`, only if its value passes it.
    fn delete_item(&self, namespace: &[String], key: &str, guard: Option<&Map<String, Value>>) -> StorageResult<()>;
    /// Every item under `prefix`, newest first.
    fn items_under(&self, prefix: &[String]) -> StorageResult<Vec<StoreItem>>;
    /// Every distinct namespace that holds an item, sorted.
    fn namespaces(&self) -> StorageResult<Vec<Vec<String>>>;
}

/// Cheap-clone async handle over a [`Storage`].
#[derive(Debug, Clone)]
pub struct StorageHandle {
    inner: Arc<dyn Storage>,
}

impl StorageHandle {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { inner: storage }
    }

    /// Runs a storage call: first on the calling (tokio worker) thread under the [`inline`]
    /// work budget, and if it runs out of budget (or would wait for the writer), again on the
    /// blocking pool. Most calls are index lookups or one-row writes of a few microseconds,
    /// for which the two thread hand-offs of the blocking pool cost more than the call.
    ///
    /// `call` may therefore start twice; an implementation gives up an attempt before it has
    /// any effect (SQLite: the aborted statement or transaction is rolled back).
    pub async fn run<T, F>(&self, call: F) -> StorageResult<T>
    where
        T: Send + 'static,
        F: Fn(&dyn Storage) -> StorageResult<T> + Send + 'static,
    {
        if let Some(result) = inline::attempt(|| call(self.inner.as_ref())) {
            return result;
        }
        let storage = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || call(storage.as_ref()))
            .await
            .map_err(|error| StorageError::Internal(format!("storage task failed: {error}")))?
    }
}

/// The work budget of storage calls run on a tokio worker ([`StorageHandle::run`]).
///
/// While [`attempt`] runs, [`deadline`] tells the implementation until when the call may work
/// (SQLite checks it from a progress handler every 1,000 VM instructions) and that it must not
/// wait for a lock. Past the budget, or when it would wait, the implementation abandons
/// the call without effect and calls [`exceeded`]; `attempt` then answers `None` and the
/// caller runs the call again on the blocking pool. A worker is thus never held for long by a
/// call that turns out to scan many rows or to queue behind another writer.
pub mod inline {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    /// How long an inline call may work before it is abandoned.
    pub const BUDGET: Duration = Duration::from_millis(1);

    thread_local! {
        static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
        static EXCEEDED: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `call` with the budget on; `None` if it was abandoned.
    pub fn attempt<T>(call: impl FnOnce() -> T) -> Option<T> {
        attempt_within(BUDGET, call)
    }

    /// [`attempt`] with another budget.
    pub fn attempt_within<T>(budget: Duration, call: impl FnOnce() -> T) -> Option<T> {
        DEADLINE.with(|deadline| deadline.set(Some(Instant::now() + budget)));
        EXCEEDED.with(|exceeded| exceeded.set(false));
        let result = call();
        DEADLINE.with(|deadline| deadline.set(None));
        if EXCEEDED.with(Cell::take) { None } else { Some(result) }
    }

    /// The deadline in force on this thread, if any.
    pub fn deadline() -> Option<Instant> {
        DEADLINE.with(Cell::get)
    }

    /// Records that the call on this thread was abandoned (out of budget, or it would wait).
    pub fn exceeded() {
        EXCEEDED.with(|exceeded| exceeded.set(true));
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn attempt_reports_an_abandoned_call_and_resets() {
            assert_eq!(deadline(), None);
            assert!(attempt(deadline).is_some_and(|deadline| deadline.is_some()));
            assert_eq!(attempt(exceeded), None);
            assert_eq!(deadline(), None);
            assert_eq!(attempt(|| 7), Some(7));
        }
    }
}
