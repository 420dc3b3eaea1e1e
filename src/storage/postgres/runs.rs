//! The run queue on Postgres, shared by every process on the database: a claim takes the
//! oldest runnable run with `FOR UPDATE SKIP LOCKED` (claimers never wait for each other), the
//! database keeps one running run per thread (a partial unique index: a claim that would
//! break it claims nothing), and recovery ends only runs whose lease has lapsed.

use std::sync::Arc;

use serde_json::{Map, Value};
use super::pool::Sql;
use uuid::Uuid;

use super::threads::{finish_thread_in, index_metadata, lock_thread};
use super::{PostgresStorage, internal, object_of};
use crate::storage::sql::THREAD_META;
use crate::storage::{Answer, CronFiring, Lease, Run, RunQueue, RunStatus, StorageError, StorageResult, ThreadOutcome};

const RUN_COLUMNS: &str = "r.run_id, r.thread_id, r.assistant_id, r.created_at, r.updated_at, r.status, r.metadata, r.multitask_strategy, r.kwargs";

fn run_from_row(row: &tokio_postgres::Row) -> Run {
    Run {
        run_id: row.get(0),
        thread_id: row.get(1),
        assistant_id: row.get(2),
        created_at: row.get(3),
        updated_at: row.get(4),
        status: RunStatus::parse(row.get(5)).unwrap_or(RunStatus::Error),
        metadata: object_of(row.get(6)),
        multitask_strategy: row.get(7),
        kwargs: object_of(row.get(8)),
    }
}

async fn runs<C: Sql>(client: &C, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> StorageResult<Vec<Run>> {
    Ok(client.query(sql, params).await.map_err(internal)?.iter().map(run_from_row).collect())
}

/// See [`RunQueue::insert_run`] and [`RunQueue::insert_cron_run`] (`firing`): `false` when the
/// firing was taken.
async fn insert(pool: &super::pool::Pool, run: Run, thread_metadata: Map<String, Value>, firing: Option<CronFiring>) -> StorageResult<bool> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await.map_err(internal)?;
    if let Some(firing) = firing {
        let moved = transaction
            .execute(
                "UPDATE crons SET next_run_date = $1, updated_at = $2 WHERE cron_id = $3 AND next_run_date IS NOT DISTINCT FROM $4",
                &[&firing.to, &run.updated_at, &firing.cron_id, &firing.from],
            )
            .await
            .map_err(internal)?;
        if moved == 0 {
            return Ok(false);
        }
    }
    let (metadata, kwargs) = (Value::Object(run.metadata.clone()), Value::Object(run.kwargs.clone()));
    transaction
        .execute(
            "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy, kwargs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&run.run_id, &run.thread_id, &run.assistant_id, &run.created_at, &run.updated_at, &run.status.as_str(), &metadata, &run.multitask_strategy, &kwargs],
        )
        .await
        .map_err(internal)?;
    transaction
        .execute("UPDATE threads SET status = 'busy', metadata = $1, updated_at = $2 WHERE thread_id = $3", &[&Value::Object(thread_metadata.clone()), &run.updated_at, &run.thread_id])
        .await
        .map_err(internal)?;
    index_metadata(&transaction, THREAD_META, run.thread_id, &thread_metadata).await?;
    transaction.commit().await.map_err(internal)?;
    Ok(true)
}

impl RunQueue for PostgresStorage {
    fn insert_run(&self, run: Run, thread_metadata: Map<String, Value>) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move { insert(&pool, run, thread_metadata, None).await.map(drop) })
    }

    fn insert_cron_run(&self, run: Run, thread_metadata: Map<String, Value>, firing: CronFiring) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move { insert(&pool, run, thread_metadata, Some(firing)).await })
    }

    fn get_run(&self, thread_id: Uuid, run_id: Uuid) -> Answer<Run> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = $1 AND r.run_id = $2");
            runs(&pool.get().await?, &sql, &[&thread_id, &run_id]).await?.into_iter().next().ok_or(StorageError::NotFound)
        })
    }

    fn list_runs(&self, thread_id: Uuid, status: Option<RunStatus>, limit: i64, offset: i64) -> Answer<Vec<Run>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            match status {
                Some(status) => {
                    let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = $1 AND r.status = $2 ORDER BY r.created_at DESC, r.run_id DESC LIMIT $3 OFFSET $4");
                    runs(&client, &sql, &[&thread_id, &status.as_str(), &limit, &offset]).await
                }
                None => {
                    let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = $1 ORDER BY r.created_at DESC, r.run_id DESC LIMIT $2 OFFSET $3");
                    runs(&client, &sql, &[&thread_id, &limit, &offset]).await
                }
            }
        })
    }

    fn active_runs(&self, thread_id: Uuid) -> Answer<Vec<Run>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.thread_id = $1 AND r.status IN ('pending', 'running') ORDER BY r.created_at, r.run_id");
            runs(&pool.get().await?, &sql, &[&thread_id]).await
        })
    }

    fn all_active_runs(&self, status: Option<RunStatus>) -> Answer<Vec<Run>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            match status {
                Some(status) => runs(&client, &format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.status = $1 ORDER BY r.created_at"), &[&status.as_str()]).await,
                None => runs(&client, &format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.status IN ('pending', 'running') ORDER BY r.created_at"), &[]).await,
            }
        })
    }

    fn end_pending_run(&self, run_id: Uuid, status: Option<RunStatus>, now: i64) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            let changed = match status {
                Some(status) => client.execute("UPDATE runs SET status = $1, updated_at = $2 WHERE run_id = $3 AND status = 'pending'", &[&status.as_str(), &now, &run_id]).await,
                None => client.execute("DELETE FROM runs WHERE run_id = $1 AND status = 'pending'", &[&run_id]).await,
            }
            .map_err(internal)?;
            Ok(changed > 0)
        })
    }

    fn delete_run(&self, run_id: Uuid) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let deleted = pool.get().await?.execute("DELETE FROM runs WHERE run_id = $1", &[&run_id]).await.map_err(internal)?;
            if deleted == 0 { Err(StorageError::NotFound) } else { Ok(()) }
        })
    }

    fn claim_next_run(&self, now: i64, lease: Lease) -> Answer<Option<Run>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs r WHERE r.status = 'pending' AND r.created_at <= $1
                   AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
                   AND NOT EXISTS (SELECT 1 FROM runs y WHERE y.thread_id = r.thread_id AND y.status = 'pending'
                                   AND (y.created_at < r.created_at OR (y.created_at = r.created_at AND y.run_id < r.run_id)))
                 ORDER BY r.created_at, r.run_id LIMIT 1 FOR UPDATE OF r SKIP LOCKED"
            );
            let Some(mut run) = runs(&transaction, &sql, &[&now]).await?.into_iter().next() else {
                return Ok(None);
            };
            let claimed = transaction
                .execute("UPDATE runs SET status = 'running', owner = $1, lease_until = $2, updated_at = $3, cancel_action = NULL WHERE run_id = $4", &[&lease.owner, &lease.until, &now, &run.run_id])
                .await;
            match claimed {
                // Another process claimed a run of the same thread meanwhile: nothing for us.
                Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => return Ok(None),
                other => other.map_err(internal)?,
            };
            transaction.commit().await.map_err(internal)?;
            run.status = RunStatus::Running;
            run.updated_at = now;
            Ok(Some(run))
        })
    }

    fn renew_leases(&self, owner: Uuid, until: i64) -> Answer<usize> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let renewed = pool.get().await?.execute("UPDATE runs SET lease_until = $1 WHERE owner = $2 AND status = 'running'", &[&until, &owner]).await.map_err(internal)?;
            usize::try_from(renewed).map_err(internal)
        })
    }

    fn release_run(&self, run_id: Uuid, owner: Uuid, now: i64) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let changed = transaction
                .execute(
                    "UPDATE runs SET status = 'pending', owner = NULL, lease_until = NULL, cancel_action = NULL, updated_at = $1 WHERE run_id = $2 AND owner = $3 AND status = 'running'",
                    &[&now, &run_id, &owner],
                )
                .await
                .map_err(internal)?;
            // Its next execution logs its events from the start.
            if changed > 0 {
                transaction.execute("DELETE FROM run_events WHERE run_id = $1", &[&run_id]).await.map_err(internal)?;
                transaction.execute("DELETE FROM run_log_ends WHERE run_id = $1", &[&run_id]).await.map_err(internal)?;
            }
            transaction.commit().await.map_err(internal)?;
            Ok(changed > 0)
        })
    }

    fn end_claimed_run(&self, run_id: Uuid, owner: Uuid, status: Option<RunStatus>, now: i64) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            let changed = match status {
                Some(status) => {
                    client
                        .execute(
                            "UPDATE runs SET status = $1, owner = NULL, lease_until = NULL, updated_at = $2 WHERE run_id = $3 AND owner = $4 AND status = 'running'",
                            &[&status.as_str(), &now, &run_id, &owner],
                        )
                        .await
                }
                None => client.execute("DELETE FROM runs WHERE run_id = $1 AND owner = $2 AND status = 'running'", &[&run_id, &owner]).await,
            }
            .map_err(internal)?;
            Ok(changed > 0)
        })
    }

    fn next_pending_start(&self) -> Answer<Option<i64>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move { Ok(pool.get().await?.query_one("SELECT MIN(created_at) FROM runs WHERE status = 'pending'", &[]).await.map_err(internal)?.get(0)) })
    }

    fn finish_run(&self, run_id: Uuid, thread_id: Uuid, owner: Uuid, status: Option<RunStatus>, outcome: ThreadOutcome, now: i64) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            // The thread first (as a deletion locks it, then its runs): its status is read
            // from its runs after any other writer of it has committed (see `lock_thread`).
            lock_thread(&transaction, thread_id).await?;
            let changed = match status {
                Some(status) => {
                    transaction
                        .execute(
                            "UPDATE runs SET status = $1, owner = NULL, lease_until = NULL, updated_at = $2 WHERE run_id = $3 AND thread_id = $4 AND owner = $5 AND status = 'running'",
                            &[&status.as_str(), &now, &run_id, &thread_id, &owner],
                        )
                        .await
                }
                None => transaction.execute("DELETE FROM runs WHERE run_id = $1 AND thread_id = $2 AND owner = $3 AND status = 'running'", &[&run_id, &thread_id, &owner]).await,
            }
            .map_err(internal)?;
            if changed == 0 {
                return Ok(false);
            }
            finish_thread_in(&transaction, thread_id, &outcome, now).await?;
            // Tests hold the end here, after the thread's status was read from its runs.
            crate::failpoint::pause("run-end-uncommitted").await;
            transaction.commit().await.map_err(internal)?;
            Ok(true)
        })
    }

    /// Shared by many processes: a run is left over only when its lease lapsed (its process
    /// stopped renewing it); `me`'s own runs are never ended here.
    fn recover_interrupted_runs(&self, me: Uuid, now: i64) -> Answer<usize> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let lapsed = "status = 'running' AND (owner IS NULL OR (owner <> $1 AND lease_until < $2))";
            let error = serde_json::json!({"error": "ServerRestart", "message": "The server stopped while this run was running"});
            transaction
                .execute(&format!("UPDATE threads SET status = 'error', error = $3, updated_at = $2 WHERE thread_id IN (SELECT thread_id FROM runs WHERE {lapsed})"), &[&me, &now, &error])
                .await
                .map_err(internal)?;
            // Their readers, on any process, get the error and the end of the stream.
            let failure = serde_json::json!({"error": "ServerRestart", "message": "The server running this run stopped"}).to_string();
            transaction
                .execute(
                    &format!(
                        "INSERT INTO run_events (run_id, seq, id, event, data, created_at)
                         SELECT r.run_id, COALESCE((SELECT max(seq) + 1 FROM run_events e WHERE e.run_id = r.run_id), 0), NULL, 'error', $3, $2 FROM runs r WHERE {lapsed}
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&me, &now, &failure],
                )
                .await
                .map_err(internal)?;
            transaction
                .execute(&format!("INSERT INTO run_log_ends (run_id, ended_at) SELECT run_id, $2 FROM runs WHERE {lapsed} ON CONFLICT DO NOTHING"), &[&me, &now])
                .await
                .map_err(internal)?;
            let recovered = transaction
                .execute(&format!("UPDATE runs SET status = 'error', owner = NULL, lease_until = NULL, updated_at = $2 WHERE {lapsed}"), &[&me, &now])
                .await
                .map_err(internal)?;
            transaction.commit().await.map_err(internal)?;
            usize::try_from(recovered).map_err(internal)
        })
    }
}
