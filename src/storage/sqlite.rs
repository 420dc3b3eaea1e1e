//! The embedded SQLite implementation of [`Storage`](super::Storage) (WAL, one file): the
//! synchronous [`Database`] here, and [`SqliteStorage`], its async face (`sqlite/calls.rs`),
//! which runs each call inline under a budget or on the blocking pool (`sqlite/inline.rs`).
//!
//! Metadata filters stay fast as data grows through a side table, `thread_meta`, with one
//! row per top-level metadata key (`elem = 0`, the value's canonical text) and one per element
//! of a list value (`elem = 1`), indexed by `(key, canon, elem, thread_id)`. Auth filters
//! compile to `EXISTS` lookups on it; request `metadata`/`values` containment compiles to
//! `json_extract` comparisons.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::{Map, Value};
use uuid::Uuid;

mod calls;
mod inline;

pub use calls::SqliteStorage;

use super::canonical::canonical;
use super::sql::{self, ASSISTANT_META, CRON_META, Dialect, MetaTable, Param, THREAD_META, Where};

const SQLITE: Dialect = Dialect::Sqlite;
use super::{
    CronFiring, Run, RunStatus, ThreadOutcome, AssistantPatch, AssistantQuery, AssistantSortBy, CronQuery, CronSortBy, AssistantCascade, DeletedThreads, Hidden, IfExists, Lease, SortOrder, StorageError, StorageResult, StoreItem, ItemWrite, Candidate, Ranking, Thread, ThreadQuery,
    ThreadSortBy, ThreadStatus, ExpiredThread, ThreadTtl, TtlStrategy,
};
use crate::assistants::Assistant;
use crate::crons::Cron;
use crate::auth::Filter;

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    state_updated_at INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    "values" TEXT,
    interrupts TEXT NOT NULL,
    error TEXT
);
CREATE INDEX threads_updated_at ON threads(updated_at);
CREATE INDEX threads_created_at ON threads(created_at);
CREATE TABLE thread_meta (
    thread_id TEXT NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    elem INTEGER NOT NULL,
    canon TEXT NOT NULL
);
CREATE INDEX thread_meta_lookup ON thread_meta(key, canon, elem, thread_id);
CREATE INDEX thread_meta_thread ON thread_meta(thread_id);
CREATE TABLE store_items (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX store_items_updated_at ON store_items(updated_at);
"#, r#"
CREATE TABLE assistants (
    assistant_id TEXT PRIMARY KEY,
    graph_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX assistants_created_at ON assistants(created_at);
CREATE TABLE assistant_meta (
    assistant_id TEXT NOT NULL REFERENCES assistants(assistant_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    elem INTEGER NOT NULL,
    canon TEXT NOT NULL
);
CREATE INDEX assistant_meta_lookup ON assistant_meta(key, canon, elem, assistant_id);
CREATE INDEX assistant_meta_assistant ON assistant_meta(assistant_id);
CREATE TABLE assistant_versions (
    assistant_id TEXT NOT NULL REFERENCES assistants(assistant_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    graph_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (assistant_id, version)
);
"#, r#"
CREATE TABLE crons (
    cron_id TEXT PRIMARY KEY,
    assistant_id TEXT NOT NULL REFERENCES assistants(assistant_id) ON DELETE CASCADE,
    thread_id TEXT REFERENCES threads(thread_id) ON DELETE CASCADE,
    on_run_completed TEXT,
    end_time TEXT,
    end_time_micros INTEGER,
    schedule TEXT NOT NULL,
    timezone TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    user_id TEXT,
    next_run_date INTEGER,
    metadata TEXT NOT NULL,
    enabled INTEGER NOT NULL
);
CREATE INDEX crons_due ON crons(enabled, next_run_date);
CREATE INDEX crons_created_at ON crons(created_at);
CREATE TABLE cron_meta (
    cron_id TEXT NOT NULL REFERENCES crons(cron_id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    elem INTEGER NOT NULL,
    canon TEXT NOT NULL
);
CREATE INDEX cron_meta_lookup ON cron_meta(key, canon, elem, cron_id);
CREATE INDEX cron_meta_cron ON cron_meta(cron_id);
"#, r#"
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
    assistant_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL,
    kwargs TEXT NOT NULL
);
CREATE INDEX runs_thread ON runs(thread_id, created_at);
CREATE INDEX runs_status ON runs(status, created_at);
"#, r#"
ALTER TABLE crons ADD COLUMN creator TEXT;
"#, r#"
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until INTEGER;
CREATE UNIQUE INDEX runs_one_running ON runs(thread_id) WHERE status = 'running';
"#, r#"
ALTER TABLE store_items ADD COLUMN vectors BLOB;
ALTER TABLE store_items ADD COLUMN ttl_minutes REAL;
ALTER TABLE store_items ADD COLUMN expires_at INTEGER;
CREATE INDEX store_items_expires_at ON store_items(expires_at) WHERE expires_at IS NOT NULL;
"#, r#"
-- Thread TTL: the thread expires `ttl_micros` after `updated_at`; `ttl_swept_at` is the
-- `updated_at` a sweep last handled (claimed) it at.
ALTER TABLE threads ADD COLUMN ttl_strategy TEXT;
ALTER TABLE threads ADD COLUMN ttl_micros INTEGER;
ALTER TABLE threads ADD COLUMN ttl_swept_at INTEGER;
CREATE INDEX threads_expiry ON threads(updated_at + ttl_micros) WHERE ttl_micros IS NOT NULL;
"#];

/// The SQLite database: a file, one writer connection and a small pool of reader connections.
/// Its methods block; [`SqliteStorage`] is how async callers reach them.
#[derive(Debug)]
pub(crate) struct Database {
    path: PathBuf,
    /// Idle connections for reads. A std mutex: held only to push or pop.
    pool: Mutex<Vec<Connection>>,
    /// The one connection that writes. Writers queue on this mutex instead of on SQLite's
    /// file lock, whose busy handler sleeps 1, 2, 5, 10… ms between retries (that sleep was
    /// the p99 of concurrent creates).
    writer: Arc<Mutex<Connection>>,
    /// Copies the WAL back into the database file on its own thread (see [`WalCheckpointer`]).
    _checkpointer: WalCheckpointer,
    /// The exclusive lock on `<file>.lock` that makes this process the file's only server.
    _lock: std::fs::File,
}

/// One process serves a database file: it ends the runs other processes left `running`
/// ([`Database::recover_interrupted_runs`]) and keeps one writer. A second server of the same
/// file would end the first one's runs, so it is refused. The lock is an OS lock on a file
/// beside the database (never on the database itself, whose POSIX locks a second descriptor
/// would disturb), released when the process ends, however it ends.
fn hold_exclusively(path: &Path) -> Result<std::fs::File, String> {
    let lock_path = lock_file(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| format!("cannot open {}: {error}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(format!("another graphward process is serving {}; stop it, or give this one another database with `--database`", path.display()))
        }
        Err(std::fs::TryLockError::Error(error)) => Err(format!("cannot lock {}: {error}", lock_path.display())),
    }
}

/// The lock file of a database file.
pub(super) fn lock_file(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", path.display()))
}

/// WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside the commit
/// that crosses 1,000 WAL pages and syncs the file: a write that lands on it takes
/// milliseconds, and writes run on tokio workers. Instead, the writer's WAL hook signals this
/// thread, which takes the writer connection (so no new frames arrive and the checkpoint can
/// finish, letting the next write restart the WAL) and checkpoints. Meanwhile inline writes see
/// the writer busy and move to the blocking pool, so no worker waits.
#[derive(Debug)]
struct WalCheckpointer {
    signal: Arc<(Mutex<WalSignal>, Condvar)>,
}

#[derive(Debug, Default)]
struct WalSignal {
    due: bool,
    stop: bool,
}

impl WalCheckpointer {
    /// WAL pages after which a checkpoint is due (SQLite's own threshold).
    const PAGES: i32 = 1_000;

    fn start(writer: &Arc<Mutex<Connection>>) -> rusqlite::Result<Self> {
        let signal = Arc::new((Mutex::new(WalSignal::default()), Condvar::new()));
        let hook_signal = Arc::clone(&signal);
        writer.lock().unwrap_or_else(PoisonError::into_inner).wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages >= Self::PAGES {
                let (lock, wake) = &*hook_signal;
                lock.lock().unwrap_or_else(PoisonError::into_inner).due = true;
                wake.notify_one();
            }
            Ok(())
        }))?;
        let shared = Arc::clone(&signal);
        let writer = Arc::downgrade(writer);
        let spawned = std::thread::Builder::new().name("graphward-wal".into()).spawn(move || {
            let (lock, wake) = &*shared;
            loop {
                let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
                while !state.due && !state.stop {
                    state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
                if state.stop {
                    break;
                }
                state.due = false;
                drop(state);
                let Some(writer) = writer.upgrade() else { break };
                let connection = writer.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "WAL checkpoint failed");
                }
            }
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the WAL checkpoint thread");
        }
        Ok(Self { signal })
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.signal;
        lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        wake.notify_one();
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
        }
        let lock = hold_exclusively(path)?;
        let mut writer = connect(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        migrate(&mut writer).map_err(|error| format!("cannot migrate {}: {error}", path.display()))?;
        let writer = Arc::new(Mutex::new(writer));
        let checkpointer = WalCheckpointer::start(&writer).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), pool: Mutex::new(Vec::new()), writer, _checkpointer: checkpointer, _lock: lock })
    }

    /// Runs `work` on the writer connection. Under an inline budget it does not wait: if
    /// another writer holds the connection, the call is abandoned (see [`super::inline`]).
    fn write<T>(&self, work: impl FnOnce(&mut Connection) -> StorageResult<T>) -> StorageResult<T> {
        let deadline = inline::deadline();
        let mut writer = match self.writer.try_lock() {
            Ok(writer) => writer,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if deadline.is_some() => {
                inline::exceeded();
                return Err(StorageError::Internal("the writer is busy".to_string()));
            }
            Err(std::sync::TryLockError::WouldBlock) => self.writer.lock().unwrap_or_else(PoisonError::into_inner),
        };
        budgeted(&mut writer, deadline, work)
    }

    fn release(&self, connection: Connection) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 16 {
            pool.push(connection);
        }
    }

    /// Runs `work` on a pooled connection.
    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> StorageResult<T>) -> StorageResult<T> {
        let pooled = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => connect(&self.path).map_err(internal)?,
        };
        let result = budgeted(&mut connection, inline::deadline(), work);
        self.release(connection);
        result
    }
}

/// Statements through the connection's prepared-statement cache: the SQL is parsed once per
/// connection, not once per call (parsing was a visible share of a point read's cost).
trait Cached {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn one<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn one<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Runs `work` on `connection`; past `deadline`, SQLite interrupts it (the statement or
/// transaction is rolled back) and the attempt is marked abandoned.
fn budgeted<T>(connection: &mut Connection, deadline: Option<std::time::Instant>, work: impl FnOnce(&mut Connection) -> StorageResult<T>) -> StorageResult<T> {
    let Some(deadline) = deadline else {
        return work(connection);
    };
    let over = move || {
        let over = std::time::Instant::now() >= deadline;
        if over {
            inline::exceeded();
        }
        over
    };
    connection.progress_handler(1_000, Some(over)).map_err(internal)?;
    let result = work(connection);
    let _ = connection.progress_handler(0, None::<fn() -> bool>);
    result
}

/// Opens a connection with graphward's settings.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    connection.set_prepared_statement_cache_capacity(128);
    // Plans must not depend on bound values: otherwise SQLite (built with STAT4) marks
    // cached statements to be re-prepared whenever a parameter is rebound, and every call
    // pays for parsing and planning again.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(applied).unwrap_or(0)) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        transaction.commit()?;
    }
    Ok(())
}

fn internal(error: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(error.to_string())
}

fn to_text(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

fn parse_map(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

const THREAD_COLUMNS: &str = r#"t.thread_id, t.created_at, t.updated_at, t.state_updated_at, t.metadata, t.config, t.status, t."values", t.interrupts, t.error, t.ttl_strategy, t.ttl_micros"#;

/// Claims expired threads (see `Threads::claim_expired_threads`); `?1` now, `?2` the limit.
/// The expiry expression is the one `threads_expiry` indexes.
const CLAIM_EXPIRED_THREADS: &str = "UPDATE threads SET ttl_swept_at = updated_at WHERE thread_id IN (
    SELECT thread_id FROM threads
    WHERE ttl_micros IS NOT NULL AND updated_at + ttl_micros <= ?1 AND status != 'busy' AND ttl_swept_at IS NOT updated_at
    ORDER BY updated_at + ttl_micros LIMIT ?2)
    RETURNING thread_id, ttl_strategy";

fn thread_from_row(row: &Row<'_>) -> rusqlite::Result<Thread> {
    let id: String = row.get(0)?;
    let values: Option<String> = row.get(7)?;
    let error: Option<String> = row.get(9)?;
    Ok(Thread {
        thread_id: Uuid::parse_str(&id).unwrap_or_default(),
        created_at: row.get(1)?,
        updated_at: row.get(2)?,
        state_updated_at: row.get(3)?,
        metadata: parse_map(&row.get::<_, String>(4)?),
        config: parse_map(&row.get::<_, String>(5)?),
        status: ThreadStatus::parse(&row.get::<_, String>(6)?),
        values: values.and_then(|text| serde_json::from_str(&text).ok()),
        interrupts: parse_map(&row.get::<_, String>(8)?),
        error: error.and_then(|text| serde_json::from_str(&text).ok()),
        ttl: super::ttl_from_columns(row.get(10)?, row.get(11)?),
    })
}

/// Starts a write transaction that takes the write lock at once (a deferred transaction
/// promoted to a writer gets `SQLITE_BUSY` without waiting, in WAL mode).
fn immediate(connection: &mut Connection) -> StorageResult<rusqlite::Transaction<'_>> {
    connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(internal)
}

/// `<select> WHERE … ORDER BY <column> <direction>, t.<id> <direction> LIMIT ? OFFSET ?`.
#[expect(clippy::too_many_arguments, reason = "one query shape, spelled out")]
fn select_page<T>(
    connection: &Connection,
    select: &str,
    id: &str,
    mut where_: Where,
    column: &str,
    order: SortOrder,
    limit: i64,
    offset: i64,
    from_row: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StorageResult<Vec<T>> {
    let direction = if order == SortOrder::Asc { "ASC" } else { "DESC" };
    let sql = format!("{select} WHERE {} ORDER BY {column} {direction}, t.{id} {direction} LIMIT ? OFFSET ?", where_.sql());
    where_.params.push(Param::Integer(limit));
    where_.params.push(Param::Integer(offset));
    let mut statement = connection.prepare_cached(&sql).map_err(internal)?;
    let rows = statement.query_map(params_from_iter(where_.params.iter()), from_row).map_err(internal)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
}

/// Deletes a record in one write transaction, after `visible` confirmed it exists and passes
/// the caller's auth filter (`NotFound` otherwise).
fn delete_visible(
    connection: &mut Connection,
    table: &str,
    id_column: &str,
    record_id: Uuid,
    visible: impl FnOnce(&Connection) -> StorageResult<()>,
) -> StorageResult<()> {
    let transaction = immediate(connection)?;
    visible(&transaction)?;
    transaction.run(&format!("DELETE FROM {table} WHERE {id_column} = ?"), [record_id.to_string()]).map_err(internal)?;
    transaction.commit().map_err(internal)
}

/// Deletes each target thread that exists, passes its filter and `belongs`, with its runs; see
/// [`Threads::delete_threads`](super::Threads::delete_threads) for `hidden`.
fn delete_threads_in(transaction: &Connection, targets: &[(Uuid, Option<Filter>)], hidden: Hidden, belongs: impl Fn(&Thread) -> bool) -> StorageResult<DeletedThreads> {
    let mut deleted = DeletedThreads::default();
    for (thread_id, filter) in targets {
        match get_thread_in(transaction, *thread_id, filter.as_ref()) {
            Ok(thread) if belongs(&thread) => deleted.thread_ids.push(*thread_id),
            Ok(_) => {}
            Err(StorageError::NotFound) => {
                if hidden == Hidden::Refuse && filter.is_some() && get_thread_in(transaction, *thread_id, None).is_ok() {
                    return Err(StorageError::NotFound);
                }
            }
            Err(other) => return Err(other),
        }
    }
    for thread_id in &deleted.thread_ids {
        let id = thread_id.to_string();
        let mut statement = transaction.prepare_cached("SELECT run_id FROM runs WHERE thread_id = ? AND status IN ('pending', 'running')").map_err(internal)?;
        let runs = statement.query_map([&id], |row| row.get::<_, String>(0)).map_err(internal)?;
        for run_id in runs {
            deleted.active_runs.push(Uuid::parse_str(&run_id.map_err(internal)?).map_err(internal)?);
        }
        transaction.run("DELETE FROM threads WHERE thread_id = ?", [&id]).map_err(internal)?;
    }
    Ok(deleted)
}

/// See [`Threads::finish_thread`](super::Threads::finish_thread).
fn finish_thread_in(connection: &Connection, thread_id: Uuid, outcome: &ThreadOutcome, now: i64) -> StorageResult<()> {
    let id = thread_id.to_string();
    let active: bool = connection
        .one("SELECT EXISTS (SELECT 1 FROM runs WHERE thread_id = ? AND status IN ('pending', 'running'))", [&id], |row| row.get(0))
        .map_err(internal)?;
    let status = if active { ThreadStatus::Busy } else { outcome.status };
    connection
        .run(
            r#"UPDATE threads SET "values" = ?, interrupts = ?, status = ?, error = ?, updated_at = ?, state_updated_at = ? WHERE thread_id = ?"#,
            params![
                outcome.values.as_ref().map(Value::to_string),
                to_text(&outcome.interrupts),
                status.as_str(),
                outcome.error.as_ref().map(Value::to_string),
                now,
                now,
                id
            ],
        )
        .map(|_| ())
        .map_err(internal)
}

/// The item at `namespace`/`key` unless it has expired at `now`.
fn item_in(connection: &Connection, namespace: &[String], key: &str, now: i64) -> StorageResult<Option<StoreItem>> {
    connection
        .one(
            "SELECT namespace, key, value, created_at, updated_at, expires_at FROM store_items
             WHERE namespace = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            params![encode_namespace(namespace), key, now],
            item_from_row,
        )
        .optional()
        .map_err(internal)
}

/// The parameters of a namespace-prefix condition: the prefix as stored, and it with the
/// separator (what every namespace below it starts with).
fn prefix_params(prefix: &[String]) -> (String, String) {
    let exact = encode_namespace(prefix);
    let below = format!("{exact}.");
    (exact, below)
}

/// Whether a value passes every store filter.
fn all_pass(value: &Map<String, Value>, filters: &[Map<String, Value>]) -> StorageResult<bool> {
    for filter in filters {
        if !passes(Some(value), filter)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether an item's value (`None`: no item) passes a store filter; an operator the filter
/// language lacks is an error, never a pass.
fn passes(value: Option<&Map<String, Value>>, guard: &Map<String, Value>) -> StorageResult<bool> {
    match value {
        None => Ok(false),
        Some(value) => super::store_filter::matches(value, guard).map_err(StorageError::Internal),
    }
}

/// `SELECT COUNT(*) FROM <table> t WHERE …`.
fn count_rows(connection: &Connection, table: &str, where_: &Where) -> StorageResult<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table} t WHERE {}", where_.sql());
    connection.one(&sql, params_from_iter(where_.params.iter()), |row| row.get(0)).map_err(internal)
}

/// Compiles an auth filter to SQL over the side table `meta` for the row aliased `t`.
/// Rewrites the side-table rows of one record.
fn index_metadata_in(connection: &Connection, meta: MetaTable, record_id: &str, metadata: &Map<String, Value>) -> rusqlite::Result<()> {
    let MetaTable { table, id, .. } = meta;
    connection.run(&format!("DELETE FROM {table} WHERE {id} = ?"), [record_id])?;
    let mut insert = connection.prepare_cached(&format!("INSERT INTO {table} ({id}, key, elem, canon) VALUES (?, ?, ?, ?)"))?;
    let thread_id = record_id;
    for (key, value) in metadata {
        insert.execute(params![thread_id, key, 0, canonical(value)])?;
        if let Value::Array(items) = value {
            for item in items {
                insert.execute(params![thread_id, key, 1, canonical(item)])?;
            }
        }
    }
    Ok(())
}

fn index_metadata(connection: &Connection, thread_id: &str, metadata: &Map<String, Value>) -> rusqlite::Result<()> {
    index_metadata_in(connection, THREAD_META, thread_id, metadata)
}

fn get_thread_in(connection: &Connection, thread_id: Uuid, auth: Option<&Filter>) -> StorageResult<Thread> {
    let mut where_ = sql::thread_where(SQLITE, &ThreadQuery { auth: auth.cloned(), ..ThreadQuery::default() });
    where_.push("t.thread_id = ?".to_string(), [Param::Text(thread_id.to_string())]);
    let sql = format!("SELECT {THREAD_COLUMNS} FROM threads t WHERE {}", where_.sql());
    connection
        .one(&sql, params_from_iter(where_.params.iter()), thread_from_row)
        .optional()
        .map_err(internal)?
        .ok_or(StorageError::NotFound)
}

const ASSISTANT_COLUMNS: &str = "t.assistant_id, t.graph_id, t.name, t.description, t.config, t.context, t.metadata, t.version, t.created_at, t.updated_at";

fn assistant_from_row(row: &Row<'_>) -> rusqlite::Result<Assistant> {
    let id: String = row.get(0)?;
    Ok(Assistant {
        assistant_id: Uuid::parse_str(&id).unwrap_or_default(),
        graph_id: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        config: parse_map(&row.get::<_, String>(4)?),
        context: parse_map(&row.get::<_, String>(5)?),
        metadata: parse_map(&row.get::<_, String>(6)?),
        version: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

fn get_assistant_in(connection: &Connection, assistant_id: Uuid, auth: Option<&Filter>) -> StorageResult<Assistant> {
    let mut where_ = sql::assistant_where(SQLITE, &AssistantQuery { auth: auth.cloned(), ..AssistantQuery::default() });
    where_.push("t.assistant_id = ?".to_string(), [Param::Text(assistant_id.to_string())]);
    let sql = format!("SELECT {ASSISTANT_COLUMNS} FROM assistants t WHERE {}", where_.sql());
    connection
        .one(&sql, params_from_iter(where_.params.iter()), assistant_from_row)
        .optional()
        .map_err(internal)?
        .ok_or(StorageError::NotFound)
}

/// Writes the assistant row (insert or replace), its side-table rows and its version row.
fn write_assistant(connection: &Connection, assistant: &Assistant, version_created_at: i64) -> rusqlite::Result<()> {
    let id = assistant.assistant_id.to_string();
    connection.run(
        "INSERT INTO assistants (assistant_id, graph_id, name, description, config, context, metadata, version, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (assistant_id) DO UPDATE SET graph_id = excluded.graph_id, name = excluded.name, description = excluded.description,
           config = excluded.config, context = excluded.context, metadata = excluded.metadata, version = excluded.version, updated_at = excluded.updated_at",
        params![
            id,
            assistant.graph_id,
            assistant.name,
            assistant.description,
            to_text(&assistant.config),
            to_text(&assistant.context),
            to_text(&assistant.metadata),
            assistant.version,
            assistant.created_at,
            assistant.updated_at
        ],
    )?;
    connection.run(
        "INSERT OR REPLACE INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, metadata, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            id,
            assistant.version,
            assistant.graph_id,
            assistant.name,
            assistant.description,
            to_text(&assistant.config),
            to_text(&assistant.context),
            to_text(&assistant.metadata),
            version_created_at
        ],
    )?;
    index_metadata_in(connection, ASSISTANT_META, &id, &assistant.metadata)
}

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<Assistant> {
    let id: String = row.get(0)?;
    let created_at: i64 = row.get(8)?;
    Ok(Assistant {
        assistant_id: Uuid::parse_str(&id).unwrap_or_default(),
        version: row.get(1)?,
        graph_id: row.get(2)?,
        name: row.get(3)?,
        description: row.get(4)?,
        config: parse_map(&row.get::<_, String>(5)?),
        context: parse_map(&row.get::<_, String>(6)?),
        metadata: parse_map(&row.get::<_, String>(7)?),
        created_at,
        updated_at: created_at,
    })
}

const CRON_COLUMNS: &str = "t.cron_id, t.assistant_id, t.thread_id, t.on_run_completed, t.end_time, t.end_time_micros, t.schedule, t.timezone, \
    t.created_at, t.updated_at, t.payload, t.user_id, t.next_run_date, t.metadata, t.enabled, t.creator";

fn cron_from_row(row: &Row<'_>) -> rusqlite::Result<Cron> {
    let uuid = |text: String| Uuid::parse_str(&text).unwrap_or_default();
    Ok(Cron {
        cron_id: uuid(row.get(0)?),
        assistant_id: uuid(row.get(1)?),
        thread_id: row.get::<_, Option<String>>(2)?.map(uuid),
        on_run_completed: row.get(3)?,
        end_time: row.get(4)?,
        end_time_micros: row.get(5)?,
        schedule: row.get(6)?,
        timezone: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
        payload: parse_map(&row.get::<_, String>(10)?),
        user_id: row.get(11)?,
        next_run_date: row.get(12)?,
        metadata: parse_map(&row.get::<_, String>(13)?),
        enabled: row.get(14)?,
        creator: row.get::<_, Option<String>>(15)?.and_then(|text| serde_json::from_str(&text).ok()).and_then(|user: Value| crate::auth::AuthUser::from_json(&user)),
    })
}

fn cron_params(cron: &Cron) -> Vec<SqlValue> {
    let text = |value: Option<&String>| value.map_or(SqlValue::Null, |text| SqlValue::Text(text.clone()));
    let int = |value: Option<i64>| value.map_or(SqlValue::Null, SqlValue::Integer);
    vec![
        SqlValue::Text(cron.cron_id.to_string()),
        SqlValue::Text(cron.assistant_id.to_string()),
        cron.thread_id.map_or(SqlValue::Null, |id| SqlValue::Text(id.to_string())),
        text(cron.on_run_completed.as_ref()),
        text(cron.end_time.as_ref()),
        int(cron.end_time_micros),
        SqlValue::Text(cron.schedule.clone()),
        text(cron.timezone.as_ref()),
        SqlValue::Integer(cron.created_at),
        SqlValue::Integer(cron.updated_at),
        SqlValue::Text(to_text(&cron.payload)),
        text(cron.user_id.as_ref()),
        int(cron.next_run_date),
        SqlValue::Text(to_text(&cron.metadata)),
        SqlValue::Integer(i64::from(cron.enabled)),
        cron.creator.as_ref().map_or(SqlValue::Null, |user| SqlValue::Text(user.to_json().to_string())),
    ]
}

fn get_cron_in(connection: &Connection, cron_id: Uuid, auth: Option<&Filter>) -> StorageResult<Cron> {
    let mut where_ = sql::cron_where(SQLITE, &CronQuery { auth: auth.cloned(), ..CronQuery::default() });
    where_.push("t.cron_id = ?".to_string(), [Param::Text(cron_id.to_string())]);
    let sql = format!("SELECT {CRON_COLUMNS} FROM crons t WHERE {}", where_.sql());
    connection
        .one(&sql, params_from_iter(where_.params.iter()), cron_from_row)
        .optional()
        .map_err(internal)?
        .ok_or(StorageError::NotFound)
}

const RUN_COLUMNS: &str = "r.run_id, r.thread_id, r.assistant_id, r.created_at, r.updated_at, r.status, r.metadata, r.multitask_strategy, r.kwargs";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let uuid = |text: String| Uuid::parse_str(&text).unwrap_or_default();
    Ok(Run {
        run_id: uuid(row.get(0)?),
        thread_id: uuid(row.get(1)?),
        assistant_id: uuid(row.get(2)?),
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        status: RunStatus::parse(&row.get::<_, String>(5)?).unwrap_or(RunStatus::Error),
        metadata: parse_map(&row.get::<_, String>(6)?),
        multitask_strategy: row.get(7)?,
        kwargs: parse_map(&row.get::<_, String>(8)?),
    })
}

fn query_runs(connection: &Connection, sql: &str, params: &[Param]) -> StorageResult<Vec<Run>> {
    let mut statement = connection.prepare_cached(sql).map_err(internal)?;
    let rows = statement.query_map(params_from_iter(params.iter()), run_from_row).map_err(internal)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
}

fn encode_namespace(namespace: &[String]) -> String {
    namespace.join(".")
}

fn decode_namespace(text: &str) -> Vec<String> {
    text.split('.').map(str::to_string).collect()
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<StoreItem> {
    Ok(StoreItem {
        namespace: decode_namespace(&row.get::<_, String>(0)?),
        key: row.get(1)?,
        value: parse_map(&row.get::<_, String>(2)?),
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        expires_at: row.get(5)?,
    })
}

/// One method per storage call (see the traits in `storage/mod.rs` for what each does); each
/// is one transaction.
impl Database {
    pub(crate) fn create_thread(&self, thread: &Thread, if_exists: IfExists, auth: Option<&Filter>) -> StorageResult<Thread> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let id = thread.thread_id.to_string();
            let exists: bool = transaction.one("SELECT EXISTS (SELECT 1 FROM threads WHERE thread_id = ?)", [&id], |row| row.get(0)).map_err(internal)?;
            if exists {
                // An existing thread the caller's create filter hides is a conflict, whatever
                // `if_exists` says (spec auth.md §5.4).
                return match (if_exists, get_thread_in(&transaction, thread.thread_id, auth)) {
                    (IfExists::DoNothing, Ok(existing)) => Ok(existing),
                    _ => Err(StorageError::Conflict),
                };
            }
            transaction
                .run(
                    r#"INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, config, status, "values", interrupts, error, ttl_strategy, ttl_micros)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"#,
                    params![
                        id,
                        thread.created_at,
                        thread.updated_at,
                        thread.state_updated_at,
                        to_text(&thread.metadata),
                        to_text(&thread.config),
                        thread.status.as_str(),
                        thread.values.as_ref().map(Value::to_string),
                        to_text(&thread.interrupts),
                        thread.error.as_ref().map(Value::to_string),
                        thread.ttl.map(|ttl| ttl.strategy.as_str()),
                        thread.ttl.as_ref().map(super::ttl_micros),
                    ],
                )
                .map_err(internal)?;
            index_metadata(&transaction, &id, &thread.metadata).map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(thread.clone())
        })
    }

    pub(crate) fn get_thread(&self, thread_id: Uuid, auth: Option<&Filter>) -> StorageResult<Thread> {
        self.with(|connection| get_thread_in(connection, thread_id, auth))
    }

    pub(crate) fn patch_thread(&self, thread_id: Uuid, metadata: &Map<String, Value>, ttl: Option<ThreadTtl>, auth: Option<&Filter>, now: i64) -> StorageResult<Thread> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let mut thread = get_thread_in(&transaction, thread_id, auth)?;
            thread.metadata.extend(metadata.iter().map(|(key, value)| (key.clone(), value.clone())));
            thread.updated_at = now;
            thread.ttl = ttl.or(thread.ttl);
            let id = thread_id.to_string();
            transaction
                .run(
                    "UPDATE threads SET metadata = ?, updated_at = ?, ttl_strategy = ?, ttl_micros = ? WHERE thread_id = ?",
                    params![to_text(&thread.metadata), now, thread.ttl.map(|ttl| ttl.strategy.as_str()), thread.ttl.as_ref().map(super::ttl_micros), id],
                )
                .map_err(internal)?;
            index_metadata(&transaction, &id, &thread.metadata).map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(thread)
        })
    }

    pub(crate) fn delete_thread(&self, thread_id: Uuid, auth: Option<&Filter>) -> StorageResult<()> {
        self.write(|connection| delete_visible(connection, "threads", "thread_id", thread_id, |transaction| get_thread_in(transaction, thread_id, auth).map(|_| ())))
    }

    pub(crate) fn delete_threads(&self, targets: &[(Uuid, Option<Filter>)], hidden: Hidden) -> StorageResult<DeletedThreads> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let deleted = delete_threads_in(&transaction, targets, hidden, |_| true)?;
            transaction.commit().map_err(internal)?;
            Ok(deleted)
        })
    }

    pub(crate) fn search_threads(&self, query: &ThreadQuery, sort_by: ThreadSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> StorageResult<Vec<Thread>> {
        self.with(|connection| {
            let column = sql::thread_sort_column(sort_by);
            let select = format!("SELECT {THREAD_COLUMNS} FROM threads t");
            select_page(connection, &select, "thread_id", sql::thread_where(SQLITE, query), column, sort_order, limit, offset, thread_from_row)
        })
    }

    pub(crate) fn count_threads(&self, query: &ThreadQuery) -> StorageResult<i64> {
        self.with(|connection| count_rows(connection, "threads", &sql::thread_where(SQLITE, query)))
    }

    pub(crate) fn claim_expired_threads(&self, now: i64, limit: usize) -> StorageResult<Vec<ExpiredThread>> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let claimed = {
                let mut statement = transaction.prepare(CLAIM_EXPIRED_THREADS).map_err(internal)?;
                let rows = statement.query_map(params![now, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                });
                rows.and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>).map_err(internal)?
            };
            transaction.commit().map_err(internal)?;
            Ok(claimed
                .into_iter()
                .filter_map(|(id, strategy)| Some(ExpiredThread { thread_id: Uuid::parse_str(&id).ok()?, strategy: TtlStrategy::parse(&strategy)? }))
                .collect())
        })
    }

    pub(crate) fn release_expired_threads(&self, thread_ids: &[Uuid]) -> StorageResult<()> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            for thread_id in thread_ids {
                transaction.run("UPDATE threads SET ttl_swept_at = NULL WHERE thread_id = ?", [thread_id.to_string()]).map_err(internal)?;
            }
            transaction.commit().map_err(internal)
        })
    }

    pub(crate) fn register_system_assistant(&self, assistant: &Assistant) -> StorageResult<()> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            match get_assistant_in(&transaction, assistant.assistant_id, None) {
                Ok(existing) => {
                    if existing.name != assistant.name || existing.description != assistant.description {
                        transaction
                            .run(
                                "UPDATE assistants SET name = ?, description = ? WHERE assistant_id = ?",
                                params![assistant.name, assistant.description, assistant.assistant_id.to_string()],
                            )
                            .map_err(internal)?;
                    }
                }
                Err(StorageError::NotFound) => write_assistant(&transaction, assistant, assistant.created_at).map_err(internal)?,
                Err(other) => return Err(other),
            }
            transaction.commit().map_err(internal)
        })
    }

    pub(crate) fn create_assistant(&self, assistant: &Assistant, if_exists: IfExists, auth: Option<&Filter>) -> StorageResult<Assistant> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            match get_assistant_in(&transaction, assistant.assistant_id, None) {
                Ok(_) => {
                    return match (if_exists, get_assistant_in(&transaction, assistant.assistant_id, auth)) {
                        (IfExists::DoNothing, Ok(existing)) => Ok(existing),
                        _ => Err(StorageError::Conflict),
                    };
                }
                Err(StorageError::NotFound) => {}
                Err(other) => return Err(other),
            }
            write_assistant(&transaction, assistant, assistant.created_at).map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(assistant.clone())
        })
    }

    pub(crate) fn get_assistant(&self, assistant_id: Uuid, auth: Option<&Filter>) -> StorageResult<Assistant> {
        self.with(|connection| get_assistant_in(connection, assistant_id, auth))
    }

    pub(crate) fn patch_assistant(&self, assistant_id: Uuid, patch: &AssistantPatch, auth: Option<&Filter>, now: i64) -> StorageResult<Assistant> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let mut assistant = get_assistant_in(&transaction, assistant_id, auth)?;
            let latest: i64 = transaction
                .one("SELECT COALESCE(MAX(version), 0) FROM assistant_versions WHERE assistant_id = ?", [assistant_id.to_string()], |row| row.get(0))
                .map_err(internal)?;
            if let Some(graph_id) = &patch.graph_id {
                assistant.graph_id.clone_from(graph_id);
            }
            if let Some(config) = patch.config.as_ref().filter(|config| !config.is_empty()) {
                assistant.config.clone_from(config);
            }
            if let Some(context) = &patch.context {
                assistant.context.clone_from(context);
            }
            assistant.metadata.extend(patch.metadata.iter().map(|(key, value)| (key.clone(), value.clone())));
            if let Some(name) = &patch.name {
                assistant.name.clone_from(name);
            }
            if let Some(description) = &patch.description {
                assistant.description = Some(description.clone());
            }
            assistant.version = latest + 1;
            assistant.updated_at = now;
            write_assistant(&transaction, &assistant, now).map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(assistant)
        })
    }

    pub(crate) fn delete_assistant(&self, assistant_id: Uuid, auth: Option<&Filter>, cascade: &AssistantCascade) -> StorageResult<DeletedThreads> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            get_assistant_in(&transaction, assistant_id, auth)?;
            // Its crons go with it (foreign key): each must be one the caller may delete.
            let crons: Vec<String> = {
                let mut statement = transaction.prepare_cached("SELECT cron_id FROM crons WHERE assistant_id = ?").map_err(internal)?;
                let rows = statement.query_map([assistant_id.to_string()], |row| row.get(0)).map_err(internal)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)?
            };
            for cron_id in crons {
                let allowed = cascade.crons.iter().find(|(id, _)| id.to_string() == cron_id);
                match allowed {
                    Some((id, filter)) if get_cron_in(&transaction, *id, filter.as_ref()).is_ok() => {}
                    _ => return Err(StorageError::Conflict),
                }
            }
            let threads = &cascade.threads;
            transaction.run("DELETE FROM assistants WHERE assistant_id = ?", [assistant_id.to_string()]).map_err(internal)?;
            let owner = Value::from(assistant_id.to_string());
            let deleted = delete_threads_in(&transaction, threads, Hidden::Skip, |thread| thread.metadata.get("assistant_id") == Some(&owner))?;
            transaction.commit().map_err(internal)?;
            Ok(deleted)
        })
    }

    pub(crate) fn search_assistants(&self, query: &AssistantQuery, sort_by: AssistantSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> StorageResult<Vec<Assistant>> {
        self.with(|connection| {
            let column = sql::assistant_sort_column(sort_by);
            let select = format!("SELECT {ASSISTANT_COLUMNS} FROM assistants t");
            select_page(connection, &select, "assistant_id", sql::assistant_where(SQLITE, query), column, sort_order, limit, offset, assistant_from_row)
        })
    }

    pub(crate) fn count_assistants(&self, query: &AssistantQuery) -> StorageResult<i64> {
        self.with(|connection| count_rows(connection, "assistants", &sql::assistant_where(SQLITE, query)))
    }

    pub(crate) fn assistant_versions(&self, assistant_id: Uuid, metadata: Option<&Map<String, Value>>, auth: Option<&Filter>, limit: i64, offset: i64) -> StorageResult<Vec<Assistant>> {
        self.with(|connection| {
            let mut where_ = Where::default();
            where_.push("t.assistant_id = ?".to_string(), [Param::Text(assistant_id.to_string())]);
            if let Some(metadata) = metadata {
                sql::compile_containment(SQLITE, "t.metadata", metadata, None, &mut where_);
            }
            let sql = format!(
                "SELECT t.assistant_id, t.version, t.graph_id, t.name, t.description, t.config, t.context, t.metadata, t.created_at
                 FROM assistant_versions t WHERE {} ORDER BY t.version DESC",
                where_.sql()
            );
            let mut statement = connection.prepare_cached(&sql).map_err(internal)?;
            let rows = statement.query_map(params_from_iter(where_.params.iter()), version_from_row).map_err(internal)?;
            let versions = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)?;
            // The auth filter applies to each version's own metadata; versions are few per
            // assistant, so it is evaluated here, before paging.
            Ok(versions
                .into_iter()
                .filter(|version| auth.is_none_or(|filter| filter.matches(&version.metadata)))
                .skip(usize::try_from(offset).unwrap_or(0))
                .take(usize::try_from(limit).unwrap_or(0))
                .collect())
        })
    }

    pub(crate) fn set_latest_assistant_version(&self, assistant_id: Uuid, version: i64, auth: Option<&Filter>, now: i64) -> StorageResult<Option<Assistant>> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let current = get_assistant_in(&transaction, assistant_id, auth)?;
            let chosen = transaction
                .one(
                    "SELECT t.assistant_id, t.version, t.graph_id, t.name, t.description, t.config, t.context, t.metadata, t.created_at
                     FROM assistant_versions t WHERE t.assistant_id = ? AND t.version = ?",
                    params![assistant_id.to_string(), version],
                    version_from_row,
                )
                .optional()
                .map_err(internal)?;
            let Some(chosen) = chosen else { return Ok(None) };
            let assistant = Assistant { created_at: current.created_at, updated_at: now, ..chosen };
            let id = assistant_id.to_string();
            transaction
                .run(
                    "UPDATE assistants SET graph_id = ?, name = ?, description = ?, config = ?, context = ?, metadata = ?, version = ?, updated_at = ?
                     WHERE assistant_id = ?",
                    params![
                        assistant.graph_id,
                        assistant.name,
                        assistant.description,
                        to_text(&assistant.config),
                        to_text(&assistant.context),
                        to_text(&assistant.metadata),
                        assistant.version,
                        now,
                        id
                    ],
                )
                .map_err(internal)?;
            index_metadata_in(&transaction, ASSISTANT_META, &id, &assistant.metadata).map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(Some(assistant))
        })
    }

    pub(crate) fn create_cron(&self, cron: &Cron) -> StorageResult<()> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            transaction
                .run(
                    "INSERT INTO crons (cron_id, assistant_id, thread_id, on_run_completed, end_time, end_time_micros, schedule, timezone,
                       created_at, updated_at, payload, user_id, next_run_date, metadata, enabled, creator)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params_from_iter(cron_params(cron)),
                )
                .map_err(internal)?;
            index_metadata_in(&transaction, CRON_META, &cron.cron_id.to_string(), &cron.metadata).map_err(internal)?;
            transaction.commit().map_err(internal)
        })
    }

    pub(crate) fn get_cron(&self, cron_id: Uuid, auth: Option<&Filter>) -> StorageResult<Cron> {
        self.with(|connection| get_cron_in(connection, cron_id, auth))
    }

    pub(crate) fn update_cron(&self, cron: &Cron) -> StorageResult<()> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let mut params = cron_params(cron);
            let id = params.remove(0);
            params.push(id);
            let changed = transaction
                .run(
                    "UPDATE crons SET assistant_id = ?, thread_id = ?, on_run_completed = ?, end_time = ?, end_time_micros = ?, schedule = ?,
                       timezone = ?, created_at = ?, updated_at = ?, payload = ?, user_id = ?, next_run_date = ?, metadata = ?, enabled = ?, creator = ?
                     WHERE cron_id = ?",
                    params_from_iter(params),
                )
                .map_err(internal)?;
            if changed == 0 {
                return Err(StorageError::NotFound);
            }
            index_metadata_in(&transaction, CRON_META, &cron.cron_id.to_string(), &cron.metadata).map_err(internal)?;
            transaction.commit().map_err(internal)
        })
    }

    pub(crate) fn delete_cron(&self, cron_id: Uuid, auth: Option<&Filter>) -> StorageResult<()> {
        self.write(|connection| delete_visible(connection, "crons", "cron_id", cron_id, |transaction| get_cron_in(transaction, cron_id, auth).map(|_| ())))
    }

    pub(crate) fn search_crons(&self, query: &CronQuery, sort_by: CronSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> StorageResult<Vec<Cron>> {
        self.with(|connection| {
            let column = sql::cron_sort_column(sort_by);
            let select = format!("SELECT {CRON_COLUMNS} FROM crons t");
            select_page(connection, &select, "cron_id", sql::cron_where(SQLITE, query), column, sort_order, limit, offset, cron_from_row)
        })
    }

    pub(crate) fn count_crons(&self, query: &CronQuery) -> StorageResult<i64> {
        self.with(|connection| count_rows(connection, "crons", &sql::cron_where(SQLITE, query)))
    }

    /// See [`RunQueue::insert_run`] and [`RunQueue::insert_cron_run`] (`firing`): `false` when
    /// the firing was taken.
    pub(crate) fn insert_run(&self, run: &Run, thread_metadata: &Map<String, Value>, firing: Option<&CronFiring>) -> StorageResult<bool> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            if let Some(firing) = firing {
                let moved = transaction
                    .run(
                        "UPDATE crons SET next_run_date = ?, updated_at = ? WHERE cron_id = ? AND next_run_date IS ?",
                        params![firing.to, run.updated_at, firing.cron_id.to_string(), firing.from],
                    )
                    .map_err(internal)?;
                if moved == 0 {
                    return Ok(false);
                }
            }
            let thread_id = run.thread_id.to_string();
            transaction
                .run(
                    "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy, kwargs)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        run.run_id.to_string(),
                        thread_id,
                        run.assistant_id.to_string(),
                        run.created_at,
                        run.updated_at,
                        run.status.as_str(),
                        to_text(&run.metadata),
                        run.multitask_strategy,
                        to_text(&run.kwargs)
                    ],
                )
                .map_err(internal)?;
            transaction
                .run(
                    "UPDATE threads SET status = 'busy', metadata = ?, updated_at = ? WHERE thread_id = ?",
                    params![to_text(thread_metadata), run.updated_at, thread_id],
                )
                .map_err(internal)?;
            index_metadata(&transaction, &thread_id, thread_metadata).map_err(internal)?;
            transaction.commit().map_err(internal).map(|()| true)
        })
    }

    pub(crate) fn get_run(&self, thread_id: Uuid, run_id: Uuid) -> StorageResult<Run> {
        self.with(|connection| {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = ? AND r.run_id = ?");
            query_runs(connection, &sql, &[Param::Text(thread_id.to_string()), Param::Text(run_id.to_string())])?
                .into_iter()
                .next()
                .ok_or(StorageError::NotFound)
        })
    }

    pub(crate) fn list_runs(&self, thread_id: Uuid, status: Option<RunStatus>, limit: i64, offset: i64) -> StorageResult<Vec<Run>> {
        self.with(|connection| {
            let mut params = vec![Param::Text(thread_id.to_string())];
            let status_clause = match status {
                Some(status) => {
                    params.push(Param::Text(status.as_str().to_string()));
                    "AND r.status = ?"
                }
                None => "",
            };
            params.push(Param::Integer(limit));
            params.push(Param::Integer(offset));
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = ? {status_clause} ORDER BY r.created_at DESC, r.run_id DESC LIMIT ? OFFSET ?");
            query_runs(connection, &sql, &params)
        })
    }

    pub(crate) fn active_runs(&self, thread_id: Uuid) -> StorageResult<Vec<Run>> {
        self.with(|connection| {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = ? AND r.status IN ('pending', 'running') ORDER BY r.created_at, r.run_id");
            query_runs(connection, &sql, &[Param::Text(thread_id.to_string())])
        })
    }

    pub(crate) fn all_active_runs(&self, status: Option<RunStatus>) -> StorageResult<Vec<Run>> {
        self.with(|connection| match status {
            Some(status) => {
                let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.status = ? ORDER BY r.created_at");
                query_runs(connection, &sql, &[Param::Text(status.as_str().to_string())])
            }
            None => {
                let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.status IN ('pending', 'running') ORDER BY r.created_at");
                query_runs(connection, &sql, &[])
            }
        })
    }

    pub(crate) fn renew_leases(&self, owner: Uuid, until: i64) -> StorageResult<usize> {
        self.write(|connection| {
            connection.run("UPDATE runs SET lease_until = ? WHERE owner = ? AND status = 'running'", params![until, owner.to_string()]).map_err(internal)
        })
    }

    pub(crate) fn release_run(&self, run_id: Uuid, owner: Uuid, now: i64) -> StorageResult<bool> {
        self.write(|connection| {
            connection
                .run(
                    "UPDATE runs SET status = 'pending', owner = NULL, lease_until = NULL, updated_at = ? WHERE run_id = ? AND owner = ? AND status = 'running'",
                    params![now, run_id.to_string(), owner.to_string()],
                )
                .map(|changed| changed > 0)
                .map_err(internal)
        })
    }

    pub(crate) fn end_claimed_run(&self, run_id: Uuid, owner: Uuid, status: Option<RunStatus>, now: i64) -> StorageResult<bool> {
        self.write(|connection| {
            let (id, owner) = (run_id.to_string(), owner.to_string());
            match status {
                Some(status) => connection.run(
                    "UPDATE runs SET status = ?, owner = NULL, lease_until = NULL, updated_at = ? WHERE run_id = ? AND owner = ? AND status = 'running'",
                    params![status.as_str(), now, id, owner],
                ),
                None => connection.run("DELETE FROM runs WHERE run_id = ? AND owner = ? AND status = 'running'", params![id, owner]),
            }
            .map(|changed| changed > 0)
            .map_err(internal)
        })
    }

    pub(crate) fn end_pending_run(&self, run_id: Uuid, status: Option<RunStatus>, now: i64) -> StorageResult<bool> {
        self.write(|connection| {
            let changed = match status {
                Some(status) => connection.run(
                    "UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ? AND status = 'pending'",
                    params![status.as_str(), now, run_id.to_string()],
                ),
                None => connection.run("DELETE FROM runs WHERE run_id = ? AND status = 'pending'", [run_id.to_string()]),
            }
            .map_err(internal)?;
            Ok(changed > 0)
        })
    }

    pub(crate) fn delete_run(&self, run_id: Uuid) -> StorageResult<()> {
        self.write(|connection| {
            let deleted = connection.run("DELETE FROM runs WHERE run_id = ?", [run_id.to_string()]).map_err(internal)?;
            if deleted == 0 { Err(StorageError::NotFound) } else { Ok(()) }
        })
    }

    pub(crate) fn claim_next_run(&self, now: i64, lease: Lease) -> StorageResult<Option<Run>> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs r WHERE r.status = 'pending' AND r.created_at <= ?
                   AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
                   AND NOT EXISTS (SELECT 1 FROM runs y WHERE y.thread_id = r.thread_id AND y.status = 'pending'
                                   AND (y.created_at < r.created_at OR (y.created_at = r.created_at AND y.run_id < r.run_id)))
                 ORDER BY r.created_at, r.run_id LIMIT 1"
            );
            let Some(mut run) = query_runs(&transaction, &sql, &[Param::Integer(now)])?.into_iter().next() else {
                return Ok(None);
            };
            transaction
                .run(
                    "UPDATE runs SET status = 'running', owner = ?, lease_until = ?, updated_at = ? WHERE run_id = ?",
                    params![lease.owner.to_string(), lease.until, now, run.run_id.to_string()],
                )
                .map_err(internal)?;
            transaction.commit().map_err(internal)?;
            run.status = RunStatus::Running;
            run.updated_at = now;
            Ok(Some(run))
        })
    }

    pub(crate) fn ping(&self) -> StorageResult<()> {
        self.with(|connection| connection.one("SELECT 1", [], |row| row.get::<_, i64>(0)).map(|_| ()).map_err(internal))
    }

    pub(crate) fn next_pending_start(&self) -> StorageResult<Option<i64>> {
        self.with(|connection| {
            connection.one("SELECT MIN(created_at) FROM runs WHERE status = 'pending'", [], |row| row.get(0)).map_err(internal)
        })
    }

    pub(crate) fn finish_run(&self, run_id: Uuid, thread_id: Uuid, owner: Uuid, status: Option<RunStatus>, outcome: &ThreadOutcome, now: i64) -> StorageResult<bool> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let (run, thread, owner) = (run_id.to_string(), thread_id.to_string(), owner.to_string());
            let changed = match status {
                Some(status) => transaction.run(
                    "UPDATE runs SET status = ?, owner = NULL, lease_until = NULL, updated_at = ? WHERE run_id = ? AND thread_id = ? AND owner = ? AND status = 'running'",
                    params![status.as_str(), now, run, thread, owner],
                ),
                None => transaction.run("DELETE FROM runs WHERE run_id = ? AND thread_id = ? AND owner = ? AND status = 'running'", params![run, thread, owner]),
            }
            .map_err(internal)?;
            if changed == 0 {
                return Ok(false);
            }
            finish_thread_in(&transaction, thread_id, outcome, now)?;
            transaction.commit().map_err(internal)?;
            Ok(true)
        })
    }

    pub(crate) fn settle_thread(&self, thread_id: Uuid, now: i64) -> StorageResult<()> {
        let id = thread_id.to_string();
        self.write(|connection| {
            connection
                .run(
                    "UPDATE threads SET status = CASE WHEN interrupts IS NOT NULL AND interrupts != '{}' THEN 'interrupted' ELSE 'idle' END, updated_at = ? \
                     WHERE thread_id = ? AND NOT EXISTS (SELECT 1 FROM runs WHERE thread_id = ? AND status IN ('pending', 'running'))",
                    params![now, id, id],
                )
                .map(|_| ())
                .map_err(internal)
        })
    }

    pub(crate) fn finish_thread(&self, thread_id: Uuid, outcome: &ThreadOutcome, now: i64) -> StorageResult<()> {
        self.write(|connection| finish_thread_in(connection, thread_id, outcome, now))
    }

    /// One process serves a database file, so every running run that `me` does not hold was
    /// left by a process that is gone.
    pub(crate) fn recover_interrupted_runs(&self, me: Uuid, now: i64) -> StorageResult<usize> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            let error = r#"{"error":"ServerRestart","message":"The server stopped while this run was running"}"#;
            let me = me.to_string();
            transaction
                .run(
                    "UPDATE threads SET status = 'error', error = ?, updated_at = ? \
                     WHERE thread_id IN (SELECT thread_id FROM runs WHERE status = 'running' AND (owner IS NULL OR owner != ?))",
                    params![error, now, me],
                )
                .map_err(internal)?;
            let recovered = transaction
                .run(
                    "UPDATE runs SET status = 'error', owner = NULL, lease_until = NULL, updated_at = ? WHERE status = 'running' AND (owner IS NULL OR owner != ?)",
                    params![now, me],
                )
                .map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(recovered)
        })
    }

    pub(crate) fn due_crons(&self, now: i64) -> StorageResult<Vec<Cron>> {
        self.with(|connection| {
            let sql = format!("SELECT {CRON_COLUMNS} FROM crons t WHERE t.enabled = 1 AND t.next_run_date IS NOT NULL AND t.next_run_date <= ? ORDER BY t.next_run_date");
            let mut statement = connection.prepare_cached(&sql).map_err(internal)?;
            let rows = statement.query_map([now], cron_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
    }

    pub(crate) fn advance_cron(&self, cron_id: Uuid, from: Option<i64>, to: Option<i64>, now: i64) -> StorageResult<bool> {
        self.write(|connection| {
            connection
                .run("UPDATE crons SET next_run_date = ?, updated_at = ? WHERE cron_id = ? AND next_run_date IS ?", params![to, now, cron_id.to_string(), from])
                .map(|changed| changed > 0)
                .map_err(internal)
        })
    }

    pub(crate) fn put_item(&self, namespace: &[String], key: &str, item: &ItemWrite, guard: Option<&Map<String, Value>>, now: i64) -> StorageResult<bool> {
        if namespace.iter().any(|label| label.is_empty() || label.contains(['.', '\0'])) {
            return Err(StorageError::Internal("a store namespace label is empty or holds a period or NUL".to_string()));
        }
        self.write(|connection| {
            let transaction = immediate(connection)?;
            if let Some(guard) = guard {
                let replaced = item_in(&transaction, namespace, key, now)?;
                let allowed = passes(Some(&item.value), guard)? && (replaced.is_none() || passes(replaced.as_ref().map(|item| &item.value), guard)?);
                if !allowed {
                    return Ok(false);
                }
            }
            // A replaced item that had expired is gone: the new one starts its own history.
            transaction
                .run(
                    "INSERT INTO store_items (namespace, key, value, created_at, updated_at, vectors, ttl_minutes, expires_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)
                     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
                         created_at = CASE WHEN store_items.expires_at IS NOT NULL AND store_items.expires_at <= excluded.updated_at THEN excluded.created_at ELSE store_items.created_at END,
                         vectors = excluded.vectors, ttl_minutes = excluded.ttl_minutes, expires_at = excluded.expires_at",
                    params![encode_namespace(namespace), key, to_text(&item.value), now, item.vectors.as_ref().map(super::Vectors::to_blob), item.ttl_minutes, item.expires_at(now)],
                )
                .map_err(internal)?;
            transaction.commit().map_err(internal)?;
            Ok(true)
        })
    }

    pub(crate) fn get_item(&self, namespace: &[String], key: &str, now: i64) -> StorageResult<Option<StoreItem>> {
        self.with(|connection| item_in(connection, namespace, key, now))
    }

    pub(crate) fn delete_item(&self, namespace: &[String], key: &str, guard: Option<&Map<String, Value>>) -> StorageResult<()> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            if let Some(guard) = guard
                && !passes(item_in(&transaction, namespace, key, i64::MIN)?.as_ref().map(|item| &item.value), guard)?
            {
                return Ok(());
            }
            transaction.run("DELETE FROM store_items WHERE namespace = ? AND key = ?", params![encode_namespace(namespace), key]).map_err(internal)?;
            transaction.commit().map_err(internal)
        })
    }

    pub(crate) fn items_under(&self, prefix: &[String], now: i64) -> StorageResult<Vec<StoreItem>> {
        self.with(|connection| {
            let (exact, below) = prefix_params(prefix);
            let mut statement = connection
                .prepare_cached(
                    "SELECT namespace, key, value, created_at, updated_at, expires_at FROM store_items
                     WHERE (?1 = '' OR namespace = ?1 OR substr(namespace, 1, length(?2)) = ?2) AND (expires_at IS NULL OR expires_at > ?3)
                     ORDER BY updated_at DESC, namespace, key",
                )
                .map_err(internal)?;
            let rows = statement.query_map(params![exact, below, now], item_from_row).map_err(internal)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
        })
    }

    /// Streams the candidate rows (unordered: ranking orders them) into a [`Ranking`]; a value
    /// is parsed only when there are filters to test it against.
    pub(crate) fn rank_items(&self, prefix: &[String], query: &[f32], filters: &[Map<String, Value>], page: (usize, usize), now: i64) -> StorageResult<Vec<(StoreItem, Option<f64>)>> {
        let (limit, offset) = page;
        self.with(|connection| {
            let (exact, below) = prefix_params(prefix);
            let mut statement = connection
                .prepare_cached(
                    "SELECT namespace, key, value, created_at, updated_at, expires_at, vectors FROM store_items
                     WHERE (?1 = '' OR namespace = ?1 OR substr(namespace, 1, length(?2)) = ?2) AND (expires_at IS NULL OR expires_at > ?3)",
                )
                .map_err(internal)?;
            let mut rows = statement.query(params![exact, below, now]).map_err(internal)?;
            let mut ranking = Ranking::new(query.to_vec(), limit, offset);
            while let Some(row) = rows.next().map_err(internal)? {
                let text = |index: usize| row.get_ref(index).and_then(|value| value.as_str().map_err(Into::into)).map_err(internal);
                let value = text(2)?;
                if !filters.is_empty() && !all_pass(&parse_map(value), filters)? {
                    continue;
                }
                let candidate = Candidate {
                    namespace: text(0)?,
                    key: text(1)?,
                    value,
                    created_at: row.get(3).map_err(internal)?,
                    updated_at: row.get(4).map_err(internal)?,
                    expires_at: row.get(5).map_err(internal)?,
                    vectors: row.get_ref(6).and_then(|value| value.as_blob_or_null().map_err(Into::into)).map_err(internal)?,
                };
                ranking.offer(&candidate);
            }
            Ok(ranking.page(offset))
        })
    }

    pub(crate) fn namespaces(&self, now: i64) -> StorageResult<Vec<Vec<String>>> {
        self.with(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT DISTINCT namespace FROM store_items WHERE expires_at IS NULL OR expires_at > ? ORDER BY namespace")
                .map_err(internal)?;
            let rows = statement.query_map([now], |row| row.get::<_, String>(0)).map_err(internal)?;
            let mut namespaces: Vec<Vec<String>> = rows.map(|row| row.map(|text| decode_namespace(&text))).collect::<rusqlite::Result<_>>().map_err(internal)?;
            namespaces.sort();
            Ok(namespaces)
        })
    }

    pub(crate) fn refresh_items(&self, items: &[(Vec<String>, String)], now: i64) -> StorageResult<()> {
        self.write(|connection| {
            let transaction = immediate(connection)?;
            for (namespace, key) in items {
                transaction
                    .run(
                        "UPDATE store_items SET expires_at = ?3 + CAST(ttl_minutes * 60000000.0 AS INTEGER)
                         WHERE namespace = ?1 AND key = ?2 AND ttl_minutes IS NOT NULL AND expires_at > ?3",
                        params![encode_namespace(namespace), key, now],
                    )
                    .map_err(internal)?;
            }
            transaction.commit().map_err(internal)
        })
    }

    pub(crate) fn sweep_items(&self, now: i64) -> StorageResult<u64> {
        self.write(|connection| {
            let deleted = connection.run("DELETE FROM store_items WHERE expires_at IS NOT NULL AND expires_at <= ?", [now]).map_err(internal)?;
            u64::try_from(deleted).map_err(internal)
        })
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Integer(number) => ToSqlOutput::Owned(SqlValue::Integer(*number)),
            Self::Real(number) => ToSqlOutput::Owned(SqlValue::Real(*number)),
            Self::Text(text) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(text.as_bytes())),
            Self::Uuid(id) => ToSqlOutput::Owned(SqlValue::Text(id.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!("graphward-sqlite-{}", Uuid::new_v4())).join("state.db")
    }

    fn storage() -> Database {
        Database::open(&scratch()).expect("open")
    }

    crate::storage::conformance::conformance_suite!(SqliteStorage::open(&scratch()).expect("open"));

    fn thread(metadata: Value) -> Thread {
        Thread {
            thread_id: Uuid::new_v4(),
            created_at: 1,
            updated_at: 1,
            state_updated_at: 1,
            metadata: metadata.as_object().cloned().unwrap_or_default(),
            config: Map::new(),
            status: ThreadStatus::Idle,
            values: None,
            interrupts: Map::new(),
            error: None,
            ttl: None,
        }
    }

    /// The SQL compilation of every filter gives the same answer as `Filter::matches`.
    #[test]
    fn create_conflicts_and_filters() {
        let storage = storage();
        let row = thread(json!({"owner": "a"}));
        storage.create_thread(&row, IfExists::Raise, None).expect("create");
        assert_eq!(storage.create_thread(&row, IfExists::Raise, None), Err(StorageError::Conflict));
        assert_eq!(storage.create_thread(&row, IfExists::DoNothing, None).expect("existing").thread_id, row.thread_id);
        let other = Filter::parse(&json!({"owner": "b"})).expect("filter");
        assert_eq!(storage.create_thread(&row, IfExists::DoNothing, Some(&other)), Err(StorageError::Conflict));
        assert_eq!(storage.get_thread(row.thread_id, Some(&other)), Err(StorageError::NotFound));
        let patched = storage.patch_thread(row.thread_id, json!({"x": 1}).as_object().expect("object"), None, None, 9).expect("patch");
        assert_eq!(patched.metadata, *json!({"owner": "a", "x": 1}).as_object().expect("object"));
        assert_eq!(storage.delete_thread(row.thread_id, Some(&other)), Err(StorageError::NotFound));
        storage.delete_thread(row.thread_id, None).expect("delete");
        assert_eq!(storage.get_thread(row.thread_id, None), Err(StorageError::NotFound));
    }

    /// Under an inline budget, a call that needs more work, or would wait for the writer, is
    /// abandoned without effect (so `StorageHandle::run` can run it on the blocking pool).
    #[test]
    fn inline_attempts_give_up_without_effect() {
        use super::inline::attempt_within;
        use std::time::Duration;
        let storage = storage();
        for index in 0..3_000 {
            storage.create_thread(&thread(json!({"owner": "a", "i": index})), IfExists::Raise, None).expect("create");
        }
        let query = ThreadQuery { metadata: json!({"i": -1}).as_object().cloned(), ..ThreadQuery::default() };
        // With no time at all, a point read still completes (the deadline is checked every
        // 1,000 VM instructions), a scan of 3,000 rows does not.
        assert!(attempt_within(Duration::ZERO, || storage.get_thread(Uuid::nil(), None)).is_some());
        assert_eq!(attempt_within(Duration::ZERO, || storage.count_threads(&query)), None);
        assert_eq!(storage.count_threads(&query), Ok(0), "the same call without a budget completes");

        // A write that would queue behind another writer is not started.
        let row = thread(json!({"owner": "b"}));
        let held = storage.writer.lock().expect("writer");
        assert_eq!(attempt_within(Duration::from_secs(5), || storage.create_thread(&row, IfExists::Raise, None)), None);
        drop(held);
        assert_eq!(storage.get_thread(row.thread_id, None), Err(StorageError::NotFound));
        let created = attempt_within(Duration::from_secs(5), || storage.create_thread(&row, IfExists::Raise, None)).expect("within budget");
        assert_eq!(created.map(|thread| thread.thread_id), Ok(row.thread_id));
    }

    /// A file has one server at a time: a second open is refused in one line until the first
    /// is gone.
    #[test]
    fn a_database_file_has_one_server() {
        let path = scratch();
        let first = Database::open(&path).expect("open");
        let refused = Database::open(&path).expect_err("a second server");
        assert!(refused.starts_with("another graphward process is serving") && !refused.contains('\n'), "{refused}");
        drop(first);
        Database::open(&path).expect("open again once the first is gone");
    }

    /// WAL frames are copied back into the database file by the checkpoint thread (automatic
    /// checkpoints are off on the writer), so the data does not pile up in the WAL.
    #[test]
    fn the_checkpoint_thread_moves_the_wal_into_the_database() {
        let path = std::env::temp_dir().join(format!("graphward-wal-{}", Uuid::new_v4())).join("state.db");
        let storage = Database::open(&path).expect("open");
        let value = json!({"text": "x".repeat(4_000)});
        for index in 0..2_000 {
            storage.put_item(&["wal".to_string()], &index.to_string(), &ItemWrite::value(value.as_object().cloned().expect("object")), None, 1).expect("put");
        }
        let started = std::time::Instant::now();
        let size = || std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        while size() < 4_000_000 && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(size() >= 4_000_000, "the database file holds {} bytes after 8 MB of writes", size());
        assert_eq!(storage.get_item(&["wal".to_string()], "1999", 1).expect("get").map(|item| item.value), value.as_object().cloned());
    }
}

