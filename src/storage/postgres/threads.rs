//! Threads on Postgres: the queries of `sqlite.rs` in Postgres's dialect, with the same side
//! tables and the same compiled auth filters (`storage/sql.rs`).

use std::sync::Arc;

use serde_json::{Map, Value};
use super::pool::Sql;
use uuid::Uuid;

use super::{PostgresStorage, internal, numbered, object_of};
use crate::auth::Filter;
use crate::storage::sql::{self, Dialect, MetaTable, Param, THREAD_META, Where};
use crate::storage::{
    Answer, DeletedThreads, ExpiredThread, Hidden, IfExists, SortOrder, StorageError, StorageResult, Thread, ThreadOutcome, ThreadQuery, ThreadSortBy, ThreadStatus, ThreadTtl,
    Threads, TtlStrategy,
};

const THREAD_COLUMNS: &str = r#"t.thread_id, t.created_at, t.updated_at, t.state_updated_at, t.metadata, t.config, t.status, t."values", t.interrupts, t.error, t.ttl_strategy, t.ttl_micros"#;

/// Claims expired threads (see `Threads::claim_expired_threads`); `$1` now, `$2` the limit.
/// Rows another process is claiming are skipped; the expiry expression is the one
/// `threads_expiry` indexes.
const CLAIM_EXPIRED_THREADS: &str = "UPDATE threads SET ttl_swept_at = updated_at WHERE thread_id IN (
    SELECT thread_id FROM threads
    WHERE ttl_micros IS NOT NULL AND updated_at + ttl_micros <= $1 AND status != 'busy' AND ttl_swept_at IS DISTINCT FROM updated_at
    ORDER BY updated_at + ttl_micros LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING thread_id, ttl_strategy";

fn thread_from_row(row: &tokio_postgres::Row) -> Thread {
    let status: String = row.get(6);
    Thread {
        thread_id: row.get(0),
        created_at: row.get(1),
        updated_at: row.get(2),
        state_updated_at: row.get(3),
        metadata: object_of(row.get(4)),
        config: object_of(row.get(5)),
        status: serde_json::from_value(Value::String(status)).unwrap_or(ThreadStatus::Idle),
        values: row.get(7),
        interrupts: object_of(row.get(8)),
        error: row.get(9),
        ttl: crate::storage::ttl_from_columns(row.get(10), row.get(11)),
    }
}

/// Runs `select WHERE …` with the clause's parameters.
pub(super) async fn select<C: Sql>(client: &C, select: &str, where_: &Where, tail: &str) -> StorageResult<Vec<tokio_postgres::Row>> {
    let sql = numbered(&format!("{select} WHERE {} {tail}", where_.sql()));
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = where_.params.iter().map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
    client.query(&sql, &params).await.map_err(internal)
}

/// The thread, if it exists and passes `auth`; `lock`: held until the transaction ends.
async fn get_thread_in<C: Sql>(client: &C, thread_id: Uuid, auth: Option<&Filter>, lock: bool) -> StorageResult<Thread> {
    let mut where_ = sql::thread_where(Dialect::Postgres, &ThreadQuery { auth: auth.cloned(), ..ThreadQuery::default() });
    where_.push("t.thread_id = ?".to_string(), [Param::Uuid(thread_id)]);
    let rows = select(client, &format!("SELECT {THREAD_COLUMNS} FROM threads t"), &where_, if lock { "FOR UPDATE OF t" } else { "" }).await?;
    rows.first().map(thread_from_row).ok_or(StorageError::NotFound)
}

/// Rewrites the side-table rows of one record.
pub(super) async fn index_metadata<C: Sql>(client: &C, meta: MetaTable, record_id: Uuid, metadata: &Map<String, Value>) -> StorageResult<()> {
    let MetaTable { table, id, .. } = meta;
    client.execute(&format!("DELETE FROM {table} WHERE {id} = $1"), &[&record_id]).await.map_err(internal)?;
    let insert = format!("INSERT INTO {table} ({id}, key, elem, canon) VALUES ($1, $2, $3, $4)");
    use crate::storage::canonical::{canonical, indexed};
    for (key, value) in metadata {
        let key = indexed(key.clone());
        client.execute(&insert, &[&record_id, &key, &0_i16, &indexed(canonical(value))]).await.map_err(internal)?;
        if let Value::Array(items) = value {
            for item in items {
                client.execute(&insert, &[&record_id, &key, &1_i16, &indexed(canonical(item))]).await.map_err(internal)?;
            }
        }
    }
    Ok(())
}

/// Deletes each target thread that exists, passes its filter and `belongs`, with its runs;
/// see [`Threads::delete_threads`] for `hidden`.
/// How long a thread id deleted with a running run stays reserved at most (its run stops
/// within seconds of the cancellation; this bounds a process that died meanwhile).
const TOMBSTONE_MICROS: i64 = 120_000_000;

pub(super) async fn delete_threads_in<C: Sql>(
    client: &C,
    targets: &[(Uuid, Option<Filter>)],
    hidden: Hidden,
    belongs: impl Fn(&Thread) -> bool,
) -> StorageResult<DeletedThreads> {
    let mut deleted = DeletedThreads::default();
    for (thread_id, filter) in targets {
        match get_thread_in(client, *thread_id, filter.as_ref(), true).await {
            Ok(thread) if belongs(&thread) => deleted.thread_ids.push(*thread_id),
            Ok(_) => {}
            Err(StorageError::NotFound) => {
                if hidden == Hidden::Refuse && filter.is_some() && get_thread_in(client, *thread_id, None, false).await.is_ok() {
                    return Err(StorageError::NotFound);
                }
            }
            Err(other) => return Err(other),
        }
    }
    let until = crate::timestamp::now_micros() + TOMBSTONE_MICROS;
    for thread_id in &deleted.thread_ids {
        let runs = client.query("SELECT run_id, status FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running')", &[thread_id]).await.map_err(internal)?;
        deleted.active_runs.extend(runs.iter().map(|row| row.get::<_, Uuid>(0)));
        if runs.iter().any(|row| row.get::<_, &str>(1) == "running") {
            client
                .execute("INSERT INTO thread_tombstones (thread_id, until) VALUES ($1, $2) ON CONFLICT (thread_id) DO UPDATE SET until = excluded.until", &[thread_id, &until])
                .await
                .map_err(internal)?;
        }
        client.execute("DELETE FROM threads WHERE thread_id = $1", &[thread_id]).await.map_err(internal)?;
    }
    Ok(deleted)
}

/// Locks a thread's row until the transaction ends (nothing if it is gone).
///
/// Every transaction that derives a thread's status from its active runs takes this lock
/// before it reads them: under READ COMMITTED each statement sees what was committed when it
/// began, so two such transactions that interleave (a run finishing while another, pending,
/// is cancelled) could each see the other's run still active, and the thread stay `busy` with
/// no run left. Serialized on the row, the later one reads the runs after the earlier one
/// committed, and its status holds. (`NO KEY UPDATE`, the lock an update of the row takes:
/// the inserts of a run, which lock the row as a key, are not held up by it.)
pub(super) async fn lock_thread<C: Sql>(client: &C, thread_id: Uuid) -> StorageResult<()> {
    client.query("SELECT 1 FROM threads WHERE thread_id = $1 FOR NO KEY UPDATE", &[&thread_id]).await.map(drop).map_err(internal)
}

/// See [`Threads::finish_thread`]. The caller holds the thread's lock ([`lock_thread`]).
pub(super) async fn finish_thread_in<C: Sql>(client: &C, thread_id: Uuid, outcome: &ThreadOutcome, now: i64) -> StorageResult<()> {
    let active: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running'))", &[&thread_id])
        .await
        .map_err(internal)?
        .get(0);
    let status = if active { ThreadStatus::Busy } else { outcome.status };
    let interrupts = Value::Object(outcome.interrupts.clone());
    client
        .execute(
            r#"UPDATE threads SET "values" = $1, interrupts = $2, status = $3, error = $4, updated_at = $5, state_updated_at = $5 WHERE thread_id = $6"#,
            &[&outcome.values, &interrupts, &status.as_str(), &outcome.error, &now, &thread_id],
        )
        .await
        .map(drop)
        .map_err(internal)
}

/// Is this a unique-key violation (an id taken meanwhile)?
fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl Threads for PostgresStorage {
    fn create_thread(&self, thread: Thread, if_exists: IfExists, auth: Option<Filter>) -> Answer<Thread> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            // Deleted while a run of it was running: not again until that run has stopped.
            let tombstone: bool = transaction
                .query_one("SELECT EXISTS (SELECT 1 FROM thread_tombstones WHERE thread_id = $1 AND until > $2)", &[&thread.thread_id, &crate::timestamp::now_micros()])
                .await
                .map_err(internal)?
                .get(0);
            if tombstone {
                return Err(StorageError::Conflict);
            }
            let exists: bool = transaction.query_one("SELECT EXISTS (SELECT 1 FROM threads WHERE thread_id = $1)", &[&thread.thread_id]).await.map_err(internal)?.get(0);
            if exists {
                // An existing thread the caller's create filter hides is a conflict, whatever
                // `if_exists` says (spec auth.md §5.4).
                return match (if_exists, get_thread_in(&transaction, thread.thread_id, auth.as_ref(), false).await) {
                    (IfExists::DoNothing, Ok(existing)) => Ok(existing),
                    _ => Err(StorageError::Conflict),
                };
            }
            let (metadata, config, interrupts) = (Value::Object(thread.metadata.clone()), Value::Object(thread.config.clone()), Value::Object(thread.interrupts.clone()));
            let inserted = transaction
                .execute(
                    r#"INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, config, status, "values", interrupts, error, ttl_strategy, ttl_micros)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
                    &[
                        &thread.thread_id,
                        &thread.created_at,
                        &thread.updated_at,
                        &thread.state_updated_at,
                        &metadata,
                        &config,
                        &thread.status.as_str(),
                        &thread.values,
                        &interrupts,
                        &thread.error,
                        &thread.ttl.map(|ttl| ttl.strategy.as_str()),
                        &thread.ttl.as_ref().map(crate::storage::ttl_micros),
                    ],
                )
                .await;
            match inserted {
                Err(error) if is_unique_violation(&error) => return Err(StorageError::Conflict),
                other => other.map_err(internal)?,
            };
            index_metadata(&transaction, THREAD_META, thread.thread_id, &thread.metadata).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(thread)
        })
    }

    fn get_thread(&self, thread_id: Uuid, auth: Option<Filter>) -> Answer<Thread> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move { get_thread_in(&pool.get().await?, thread_id, auth.as_ref(), false).await })
    }

    fn patch_thread(&self, thread_id: Uuid, metadata: Map<String, Value>, ttl: Option<ThreadTtl>, auth: Option<Filter>, now: i64) -> Answer<Thread> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let mut thread = get_thread_in(&transaction, thread_id, auth.as_ref(), true).await?;
            thread.metadata.extend(metadata);
            thread.updated_at = now;
            thread.ttl = ttl.or(thread.ttl);
            let (strategy, micros) = (thread.ttl.map(|ttl| ttl.strategy.as_str()), thread.ttl.as_ref().map(crate::storage::ttl_micros));
            transaction
                .execute(
                    "UPDATE threads SET metadata = $1, updated_at = $2, ttl_strategy = $3, ttl_micros = $4 WHERE thread_id = $5",
                    &[&Value::Object(thread.metadata.clone()), &now, &strategy, &micros, &thread_id],
                )
                .await
                .map_err(internal)?;
            index_metadata(&transaction, THREAD_META, thread_id, &thread.metadata).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(thread)
        })
    }

    fn delete_thread(&self, thread_id: Uuid, auth: Option<Filter>) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            get_thread_in(&transaction, thread_id, auth.as_ref(), true).await?;
            transaction.execute("DELETE FROM threads WHERE thread_id = $1", &[&thread_id]).await.map_err(internal)?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn delete_threads(&self, targets: Vec<(Uuid, Option<Filter>)>, hidden: Hidden) -> Answer<DeletedThreads> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let deleted = delete_threads_in(&transaction, &targets, hidden, |_| true).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(deleted)
        })
    }

    fn search_threads(&self, query: ThreadQuery, sort_by: ThreadSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Thread>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let column = sql::thread_sort_column(sort_by);
            let direction = if sort_order == SortOrder::Asc { "ASC" } else { "DESC" };
            let mut where_ = sql::thread_where(Dialect::Postgres, &query);
            let tail = format!("ORDER BY {column} {direction}, t.thread_id {direction} LIMIT ? OFFSET ?");
            where_.params.extend([Param::Integer(limit), Param::Integer(offset)]);
            let rows = select(&pool.get().await?, &format!("SELECT {THREAD_COLUMNS} FROM threads t"), &where_, &tail).await?;
            Ok(rows.iter().map(thread_from_row).collect())
        })
    }

    fn count_threads(&self, query: ThreadQuery) -> Answer<i64> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let rows = select(&pool.get().await?, "SELECT COUNT(*) FROM threads t", &sql::thread_where(Dialect::Postgres, &query), "").await?;
            Ok(rows.first().map_or(0, |row| row.get(0)))
        })
    }

    fn settle_thread(&self, thread_id: Uuid, now: i64) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            // Locked first, so the update reads the runs as the last writer left them (see
            // `lock_thread`), not as they were when it began waiting.
            lock_thread(&transaction, thread_id).await?;
            transaction
                .execute(
                    "UPDATE threads SET status = CASE WHEN interrupts::text NOT IN ('{}', 'null') THEN 'interrupted' ELSE 'idle' END, updated_at = $1
                     WHERE thread_id = $2 AND NOT EXISTS (SELECT 1 FROM runs WHERE thread_id = $2 AND status IN ('pending', 'running'))",
                    &[&now, &thread_id],
                )
                .await
                .map_err(internal)?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn finish_thread(&self, thread_id: Uuid, outcome: ThreadOutcome, now: i64) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            lock_thread(&transaction, thread_id).await?;
            finish_thread_in(&transaction, thread_id, &outcome, now).await?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn claim_expired_threads(&self, now: i64, limit: usize) -> Answer<Vec<ExpiredThread>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = pool.get().await?.query(CLAIM_EXPIRED_THREADS, &[&now, &limit]).await.map_err(internal)?;
            Ok(rows
                .iter()
                .filter_map(|row| Some(ExpiredThread { thread_id: row.get(0), strategy: TtlStrategy::parse(row.get::<_, Option<&str>>(1)?)? }))
                .collect())
        })
    }

    fn release_expired_threads(&self, thread_ids: Vec<Uuid>) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            pool.get()
                .await?
                .execute("UPDATE threads SET ttl_swept_at = NULL WHERE thread_id = ANY($1)", &[&thread_ids])
                .await
                .map(drop)
                .map_err(internal)
        })
    }
}
