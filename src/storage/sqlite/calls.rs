//! [`SqliteStorage`]: the storage traits over the blocking [`Database`]. Each call runs first
//! on the calling (tokio worker) thread under the [`inline`] work budget and, if it runs out
//! of budget or would wait for the writer, again on the blocking pool. Nearly every call is
//! an index lookup or a one-row write of a few microseconds, for which the two thread
//! hand-offs of the blocking pool cost more than the call itself.
//!
//! A call may therefore start twice; the database gives up an attempt before it has any
//! effect (the aborted statement or transaction is rolled back), and a call is one
//! transaction, so running it again is safe.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Database, inline};
use crate::assistants::Assistant;
use crate::auth::Filter;
use crate::crons::Cron;
use crate::storage::{
    Answer, AssistantCascade, AssistantPatch, AssistantQuery, AssistantSortBy, Assistants, CronQuery, CronSortBy, Crons, DeletedThreads, Hidden, IfExists, Items, CronFiring, Lease, LoggedRun, Run, RunLog, RunQueue,
    RunStatus, SortOrder, StorageError, StorageResult, StoreItem, ItemWrite, Thread, ThreadOutcome, ThreadQuery, ThreadSortBy, Threads, ExpiredThread, ThreadTtl,
};

/// The embedded SQLite storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    db: Arc<Database>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, String> {
        Database::open(path).map(|db| Self { db: Arc::new(db) })
    }

    /// Runs `call` on the database: inline under the budget, else on the blocking pool.
    fn call<T, F>(&self, call: F) -> Answer<T>
    where
        T: Send + 'static,
        F: Fn(&Database) -> StorageResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        Box::pin(async move {
            if let Some(result) = inline::attempt(|| call(&db)) {
                return result;
            }
            tokio::task::spawn_blocking(move || call(&db)).await.map_err(|error| StorageError::Internal(format!("storage task failed: {error}")))?
        })
    }
}

impl Threads for SqliteStorage {
    fn create_thread(&self, thread: Thread, if_exists: IfExists, auth: Option<Filter>) -> Answer<Thread> {
        self.call(move |db| db.create_thread(&thread, if_exists, auth.as_ref()))
    }

    fn get_thread(&self, thread_id: Uuid, auth: Option<Filter>) -> Answer<Thread> {
        self.call(move |db| db.get_thread(thread_id, auth.as_ref()))
    }

    fn patch_thread(&self, thread_id: Uuid, metadata: Map<String, Value>, ttl: Option<ThreadTtl>, auth: Option<Filter>, now: i64) -> Answer<Thread> {
        self.call(move |db| db.patch_thread(thread_id, &metadata, ttl, auth.as_ref(), now))
    }

    fn delete_thread(&self, thread_id: Uuid, auth: Option<Filter>) -> Answer<()> {
        self.call(move |db| db.delete_thread(thread_id, auth.as_ref()))
    }

    fn delete_threads(&self, targets: Vec<(Uuid, Option<Filter>)>, hidden: Hidden) -> Answer<DeletedThreads> {
        self.call(move |db| db.delete_threads(&targets, hidden))
    }

    fn search_threads(&self, query: ThreadQuery, sort_by: ThreadSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Thread>> {
        self.call(move |db| db.search_threads(&query, sort_by, sort_order, limit, offset))
    }

    fn count_threads(&self, query: ThreadQuery) -> Answer<i64> {
        self.call(move |db| db.count_threads(&query))
    }

    fn settle_thread(&self, thread_id: Uuid, now: i64) -> Answer<()> {
        self.call(move |db| db.settle_thread(thread_id, now))
    }

    fn finish_thread(&self, thread_id: Uuid, outcome: ThreadOutcome, now: i64) -> Answer<()> {
        self.call(move |db| db.finish_thread(thread_id, &outcome, now))
    }

    fn claim_expired_threads(&self, now: i64, limit: usize) -> Answer<Vec<ExpiredThread>> {
        self.call(move |db| db.claim_expired_threads(now, limit))
    }

    fn release_expired_threads(&self, thread_ids: Vec<Uuid>) -> Answer<()> {
        self.call(move |db| db.release_expired_threads(&thread_ids))
    }
}

impl Assistants for SqliteStorage {
    fn register_system_assistant(&self, assistant: Assistant) -> Answer<()> {
        self.call(move |db| db.register_system_assistant(&assistant))
    }

    fn create_assistant(&self, assistant: Assistant, if_exists: IfExists, auth: Option<Filter>) -> Answer<Assistant> {
        self.call(move |db| db.create_assistant(&assistant, if_exists, auth.as_ref()))
    }

    fn get_assistant(&self, assistant_id: Uuid, auth: Option<Filter>) -> Answer<Assistant> {
        self.call(move |db| db.get_assistant(assistant_id, auth.as_ref()))
    }

    fn patch_assistant(&self, assistant_id: Uuid, patch: AssistantPatch, auth: Option<Filter>, now: i64) -> Answer<Assistant> {
        self.call(move |db| db.patch_assistant(assistant_id, &patch, auth.as_ref(), now))
    }

    fn delete_assistant(&self, assistant_id: Uuid, auth: Option<Filter>, cascade: AssistantCascade) -> Answer<DeletedThreads> {
        self.call(move |db| db.delete_assistant(assistant_id, auth.as_ref(), &cascade))
    }

    fn search_assistants(&self, query: AssistantQuery, sort_by: AssistantSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Assistant>> {
        self.call(move |db| db.search_assistants(&query, sort_by, sort_order, limit, offset))
    }

    fn count_assistants(&self, query: AssistantQuery) -> Answer<i64> {
        self.call(move |db| db.count_assistants(&query))
    }

    fn assistant_versions(&self, assistant_id: Uuid, metadata: Option<Map<String, Value>>, auth: Option<Filter>, limit: i64, offset: i64) -> Answer<Vec<Assistant>> {
        self.call(move |db| db.assistant_versions(assistant_id, metadata.as_ref(), auth.as_ref(), limit, offset))
    }

    fn set_latest_assistant_version(&self, assistant_id: Uuid, version: i64, auth: Option<Filter>, now: i64) -> Answer<Option<Assistant>> {
        self.call(move |db| db.set_latest_assistant_version(assistant_id, version, auth.as_ref(), now))
    }
}

impl Crons for SqliteStorage {
    fn create_cron(&self, cron: Cron) -> Answer<()> {
        self.call(move |db| db.create_cron(&cron))
    }

    fn get_cron(&self, cron_id: Uuid, auth: Option<Filter>) -> Answer<Cron> {
        self.call(move |db| db.get_cron(cron_id, auth.as_ref()))
    }

    fn update_cron(&self, cron: Cron) -> Answer<()> {
        self.call(move |db| db.update_cron(&cron))
    }

    fn delete_cron(&self, cron_id: Uuid, auth: Option<Filter>) -> Answer<()> {
        self.call(move |db| db.delete_cron(cron_id, auth.as_ref()))
    }

    fn search_crons(&self, query: CronQuery, sort_by: CronSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Cron>> {
        self.call(move |db| db.search_crons(&query, sort_by, sort_order, limit, offset))
    }

    fn count_crons(&self, query: CronQuery) -> Answer<i64> {
        self.call(move |db| db.count_crons(&query))
    }

    fn due_crons(&self, now: i64) -> Answer<Vec<Cron>> {
        self.call(move |db| db.due_crons(now))
    }

    fn advance_cron(&self, cron_id: Uuid, from: Option<i64>, to: Option<i64>, now: i64) -> Answer<bool> {
        self.call(move |db| db.advance_cron(cron_id, from, to, now))
    }
}

/// One process serves a SQLite file: its runs' events and cancellations stay in memory.
impl RunLog for SqliteStorage {
    fn is_shared(&self) -> bool {
        false
    }

    fn ping(&self) -> Answer<()> {
        self.call(move |db| db.ping())
    }

    fn append_run_events(&self, _batch: Vec<LoggedRun>) -> Answer<()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn run_events(&self, run_id: Uuid, _from: i64) -> Answer<LoggedRun> {
        Box::pin(std::future::ready(Ok(LoggedRun { run_id, events: Vec::new(), finished: false })))
    }

    fn request_cancel(&self, _run_id: Uuid, _action: String) -> Answer<()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn requested_cancels(&self, _owner: Uuid) -> Answer<Vec<(Uuid, String)>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<crate::storage::Signal>> {
        None
    }

    fn forget_run_events(&self, _before: i64) -> Answer<usize> {
        Box::pin(std::future::ready(Ok(0)))
    }

    fn release_deleted_thread(&self, _thread_id: Uuid) -> Answer<()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl RunQueue for SqliteStorage {
    fn insert_run(&self, run: Run, thread_metadata: Map<String, Value>) -> Answer<()> {
        self.call(move |db| db.insert_run(&run, &thread_metadata, None).map(drop))
    }

    fn insert_cron_run(&self, run: Run, thread_metadata: Map<String, Value>, firing: CronFiring) -> Answer<bool> {
        self.call(move |db| db.insert_run(&run, &thread_metadata, Some(&firing)))
    }

    fn get_run(&self, thread_id: Uuid, run_id: Uuid) -> Answer<Run> {
        self.call(move |db| db.get_run(thread_id, run_id))
    }

    fn list_runs(&self, thread_id: Uuid, status: Option<RunStatus>, limit: i64, offset: i64) -> Answer<Vec<Run>> {
        self.call(move |db| db.list_runs(thread_id, status, limit, offset))
    }

    fn active_runs(&self, thread_id: Uuid) -> Answer<Vec<Run>> {
        self.call(move |db| db.active_runs(thread_id))
    }

    fn all_active_runs(&self, status: Option<RunStatus>) -> Answer<Vec<Run>> {
        self.call(move |db| db.all_active_runs(status))
    }

    fn end_pending_run(&self, run_id: Uuid, status: Option<RunStatus>, now: i64) -> Answer<bool> {
        self.call(move |db| db.end_pending_run(run_id, status, now))
    }

    fn delete_run(&self, run_id: Uuid) -> Answer<()> {
        self.call(move |db| db.delete_run(run_id))
    }

    fn claim_next_run(&self, now: i64, lease: Lease) -> Answer<Option<Run>> {
        self.call(move |db| db.claim_next_run(now, lease))
    }

    fn renew_leases(&self, owner: Uuid, until: i64) -> Answer<usize> {
        self.call(move |db| db.renew_leases(owner, until))
    }

    fn release_run(&self, run_id: Uuid, owner: Uuid, now: i64) -> Answer<bool> {
        self.call(move |db| db.release_run(run_id, owner, now))
    }

    fn end_claimed_run(&self, run_id: Uuid, owner: Uuid, status: Option<RunStatus>, now: i64) -> Answer<bool> {
        self.call(move |db| db.end_claimed_run(run_id, owner, status, now))
    }

    fn next_pending_start(&self) -> Answer<Option<i64>> {
        self.call(move |db| db.next_pending_start())
    }

    fn finish_run(&self, run_id: Uuid, thread_id: Uuid, owner: Uuid, status: Option<RunStatus>, outcome: ThreadOutcome, now: i64) -> Answer<bool> {
        self.call(move |db| db.finish_run(run_id, thread_id, owner, status, &outcome, now))
    }

    fn recover_interrupted_runs(&self, me: Uuid, now: i64) -> Answer<usize> {
        self.call(move |db| db.recover_interrupted_runs(me, now))
    }
}

impl Items for SqliteStorage {
    fn put_item(&self, namespace: Vec<String>, key: String, item: ItemWrite, guard: Option<Map<String, Value>>, now: i64) -> Answer<bool> {
        self.call(move |db| db.put_item(&namespace, &key, &item, guard.as_ref(), now))
    }

    fn get_item(&self, namespace: Vec<String>, key: String, now: i64) -> Answer<Option<StoreItem>> {
        self.call(move |db| db.get_item(&namespace, &key, now))
    }

    fn delete_item(&self, namespace: Vec<String>, key: String, guard: Option<Map<String, Value>>) -> Answer<()> {
        self.call(move |db| db.delete_item(&namespace, &key, guard.as_ref()))
    }

    fn items_under(&self, prefix: Vec<String>, now: i64) -> Answer<Vec<StoreItem>> {
        self.call(move |db| db.items_under(&prefix, now))
    }

    fn rank_items(&self, prefix: Vec<String>, query: Vec<f32>, filters: Vec<Map<String, Value>>, page: (usize, usize), now: i64) -> Answer<Vec<(StoreItem, Option<f64>)>> {
        self.call(move |db| db.rank_items(&prefix, &query, &filters, page, now))
    }

    fn namespaces(&self, now: i64) -> Answer<Vec<Vec<String>>> {
        self.call(move |db| db.namespaces(now))
    }

    fn refresh_items(&self, items: Vec<(Vec<String>, String)>, now: i64) -> Answer<()> {
        self.call(move |db| db.refresh_items(&items, now))
    }

    fn sweep_items(&self, now: i64) -> Answer<u64> {
        self.call(move |db| db.sweep_items(now))
    }
}
