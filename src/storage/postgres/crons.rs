//! Crons on Postgres (see `threads.rs` for the shape of the queries).

use std::sync::Arc;

use serde_json::Value;
use super::pool::Sql;
use uuid::Uuid;

use super::threads::{index_metadata, select};
use super::{PostgresStorage, internal, object_of};
use crate::auth::Filter;
use crate::crons::Cron;
use crate::storage::sql::{self, CRON_META, Dialect, Param};
use crate::storage::{Answer, CronQuery, CronSortBy, Crons, SortOrder, StorageError, StorageResult};

const CRON_COLUMNS: &str = "t.cron_id, t.assistant_id, t.thread_id, t.on_run_completed, t.end_time, t.end_time_micros, t.schedule, t.timezone, \
    t.created_at, t.updated_at, t.payload, t.user_id, t.next_run_date, t.metadata, t.enabled, t.creator";

fn cron_from_row(row: &tokio_postgres::Row) -> Cron {
    let creator: Option<Value> = row.get(15);
    Cron {
        cron_id: row.get(0),
        assistant_id: row.get(1),
        thread_id: row.get(2),
        on_run_completed: row.get(3),
        end_time: row.get(4),
        end_time_micros: row.get(5),
        schedule: row.get(6),
        timezone: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
        payload: object_of(row.get(10)),
        user_id: row.get(11),
        next_run_date: row.get(12),
        metadata: object_of(row.get(13)),
        enabled: row.get(14),
        creator: creator.and_then(|user| crate::auth::AuthUser::from_json(&user)),
    }
}

pub(super) async fn get_cron_in<C: Sql>(client: &C, cron_id: Uuid, auth: Option<&Filter>) -> StorageResult<Cron> {
    let mut where_ = sql::cron_where(Dialect::Postgres, &CronQuery { auth: auth.cloned(), ..CronQuery::default() });
    where_.push("t.cron_id = ?".to_string(), [Param::Uuid(cron_id)]);
    let rows = select(client, &format!("SELECT {CRON_COLUMNS} FROM crons t"), &where_, "").await?;
    rows.first().map(cron_from_row).ok_or(StorageError::NotFound)
}

/// Every column of a cron, in [`CRON_COLUMNS`] order, for `INSERT` and `UPDATE`.
async fn write_cron<C: Sql>(client: &C, cron: &Cron, insert: bool) -> StorageResult<u64> {
    let (payload, metadata) = (Value::Object(cron.payload.clone()), Value::Object(cron.metadata.clone()));
    let creator = cron.creator.as_ref().map(crate::auth::AuthUser::to_json);
    let sql = if insert {
        "INSERT INTO crons (cron_id, assistant_id, thread_id, on_run_completed, end_time, end_time_micros, schedule, timezone,
           created_at, updated_at, payload, user_id, next_run_date, metadata, enabled, creator)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    } else {
        "UPDATE crons SET assistant_id = $2, thread_id = $3, on_run_completed = $4, end_time = $5, end_time_micros = $6, schedule = $7,
           timezone = $8, created_at = $9, updated_at = $10, payload = $11, user_id = $12, next_run_date = $13, metadata = $14, enabled = $15, creator = $16
         WHERE cron_id = $1"
    };
    client
        .execute(
            sql,
            &[
                &cron.cron_id,
                &cron.assistant_id,
                &cron.thread_id,
                &cron.on_run_completed,
                &cron.end_time,
                &cron.end_time_micros,
                &cron.schedule,
                &cron.timezone,
                &cron.created_at,
                &cron.updated_at,
                &payload,
                &cron.user_id,
                &cron.next_run_date,
                &metadata,
                &cron.enabled,
                &creator,
            ],
        )
        .await
        .map_err(internal)
}

impl Crons for PostgresStorage {
    fn create_cron(&self, cron: Cron) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            write_cron(&transaction, &cron, true).await?;
            index_metadata(&transaction, CRON_META, cron.cron_id, &cron.metadata).await?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn get_cron(&self, cron_id: Uuid, auth: Option<Filter>) -> Answer<Cron> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move { get_cron_in(&pool.get().await?, cron_id, auth.as_ref()).await })
    }

    fn update_cron(&self, cron: Cron) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            if write_cron(&transaction, &cron, false).await? == 0 {
                return Err(StorageError::NotFound);
            }
            index_metadata(&transaction, CRON_META, cron.cron_id, &cron.metadata).await?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn delete_cron(&self, cron_id: Uuid, auth: Option<Filter>) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            transaction.execute("SELECT 1 FROM crons WHERE cron_id = $1 FOR UPDATE", &[&cron_id]).await.map_err(internal)?;
            get_cron_in(&transaction, cron_id, auth.as_ref()).await?;
            transaction.execute("DELETE FROM crons WHERE cron_id = $1", &[&cron_id]).await.map_err(internal)?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn search_crons(&self, query: CronQuery, sort_by: CronSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Cron>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let column = sql::cron_sort_column(sort_by);
            let direction = if sort_order == SortOrder::Asc { "ASC" } else { "DESC" };
            let mut where_ = sql::cron_where(Dialect::Postgres, &query);
            where_.params.extend([Param::Integer(limit), Param::Integer(offset)]);
            // NULLs sort as SQLite sorts them: first ascending, last descending.
            let nulls = if sort_order == SortOrder::Asc { "NULLS FIRST" } else { "NULLS LAST" };
            let tail = format!("ORDER BY {column} {direction} {nulls}, t.cron_id {direction} LIMIT ? OFFSET ?");
            let rows = select(&pool.get().await?, &format!("SELECT {CRON_COLUMNS} FROM crons t"), &where_, &tail).await?;
            Ok(rows.iter().map(cron_from_row).collect())
        })
    }

    fn count_crons(&self, query: CronQuery) -> Answer<i64> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let rows = select(&pool.get().await?, "SELECT COUNT(*) FROM crons t", &sql::cron_where(Dialect::Postgres, &query), "").await?;
            Ok(rows.first().map_or(0, |row| row.get(0)))
        })
    }

    fn due_crons(&self, now: i64) -> Answer<Vec<Cron>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let sql = format!("SELECT {CRON_COLUMNS} FROM crons t WHERE t.enabled AND t.next_run_date IS NOT NULL AND t.next_run_date <= $1 ORDER BY t.next_run_date");
            Ok(pool.get().await?.query(&sql, &[&now]).await.map_err(internal)?.iter().map(cron_from_row).collect())
        })
    }

    fn advance_cron(&self, cron_id: Uuid, from: Option<i64>, to: Option<i64>, now: i64) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            pool.get()
                .await?
                .execute("UPDATE crons SET next_run_date = $1, updated_at = $2 WHERE cron_id = $3 AND next_run_date IS NOT DISTINCT FROM $4", &[&to, &now, &cron_id, &from])
                .await
                .map(|changed| changed > 0)
                .map_err(internal)
        })
    }
}
