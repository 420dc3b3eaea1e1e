//! Assistants on Postgres (see `threads.rs` for the shape of the queries).

use std::sync::Arc;

use serde_json::{Map, Value};
use super::pool::Sql;
use uuid::Uuid;

use super::threads::{delete_threads_in, index_metadata, select};
use super::{PostgresStorage, crons::get_cron_in, internal, object_of};
use crate::assistants::Assistant;
use crate::auth::Filter;
use crate::storage::sql::{self, ASSISTANT_META, Dialect, Param, Where};
use crate::storage::{Answer, AssistantCascade, AssistantPatch, AssistantQuery, AssistantSortBy, Assistants, DeletedThreads, Hidden, IfExists, SortOrder, StorageError, StorageResult};

const ASSISTANT_COLUMNS: &str = "t.assistant_id, t.graph_id, t.name, t.description, t.config, t.context, t.metadata, t.version, t.created_at, t.updated_at";
const VERSION_COLUMNS: &str = "t.assistant_id, t.version, t.graph_id, t.name, t.description, t.config, t.context, t.metadata, t.created_at";

fn assistant_from_row(row: &tokio_postgres::Row) -> Assistant {
    Assistant {
        assistant_id: row.get(0),
        graph_id: row.get(1),
        name: row.get(2),
        description: row.get(3),
        config: object_of(row.get(4)),
        context: object_of(row.get(5)),
        metadata: object_of(row.get(6)),
        version: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
    }
}

fn version_from_row(row: &tokio_postgres::Row) -> Assistant {
    let created_at: i64 = row.get(8);
    Assistant {
        assistant_id: row.get(0),
        version: row.get(1),
        graph_id: row.get(2),
        name: row.get(3),
        description: row.get(4),
        config: object_of(row.get(5)),
        context: object_of(row.get(6)),
        metadata: object_of(row.get(7)),
        created_at,
        updated_at: created_at,
    }
}

async fn get_assistant_in<C: Sql>(client: &C, assistant_id: Uuid, auth: Option<&Filter>, lock: bool) -> StorageResult<Assistant> {
    let mut where_ = sql::assistant_where(Dialect::Postgres, &AssistantQuery { auth: auth.cloned(), ..AssistantQuery::default() });
    where_.push("t.assistant_id = ?".to_string(), [Param::Uuid(assistant_id)]);
    let rows = select(client, &format!("SELECT {ASSISTANT_COLUMNS} FROM assistants t"), &where_, if lock { "FOR UPDATE OF t" } else { "" }).await?;
    rows.first().map(assistant_from_row).ok_or(StorageError::NotFound)
}

/// Writes the assistant row (insert or replace), its side-table rows and its version row.
async fn write_assistant<C: Sql>(client: &C, assistant: &Assistant, version_created_at: i64) -> StorageResult<()> {
    let (config, context, metadata) = (Value::Object(assistant.config.clone()), Value::Object(assistant.context.clone()), Value::Object(assistant.metadata.clone()));
    client
        .execute(
            "INSERT INTO assistants (assistant_id, graph_id, name, description, config, context, metadata, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (assistant_id) DO UPDATE SET graph_id = excluded.graph_id, name = excluded.name, description = excluded.description,
               config = excluded.config, context = excluded.context, metadata = excluded.metadata, version = excluded.version, updated_at = excluded.updated_at",
            &[
                &assistant.assistant_id,
                &assistant.graph_id,
                &assistant.name,
                &assistant.description,
                &config,
                &context,
                &metadata,
                &assistant.version,
                &assistant.created_at,
                &assistant.updated_at,
            ],
        )
        .await
        .map_err(internal)?;
    client
        .execute(
            "INSERT INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (assistant_id, version) DO UPDATE SET graph_id = excluded.graph_id, name = excluded.name, description = excluded.description,
               config = excluded.config, context = excluded.context, metadata = excluded.metadata, created_at = excluded.created_at",
            &[&assistant.assistant_id, &assistant.version, &assistant.graph_id, &assistant.name, &assistant.description, &config, &context, &metadata, &version_created_at],
        )
        .await
        .map_err(internal)?;
    index_metadata(client, ASSISTANT_META, assistant.assistant_id, &assistant.metadata).await
}

/// Serializes, until the transaction ends, the creations of one assistant id (a row that does
/// not exist yet cannot be locked): replicas starting together register the same system
/// assistants, and two creates of one id must not both insert.
async fn lock_id<C: Sql>(client: &C, assistant_id: Uuid) -> StorageResult<()> {
    client.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", &[&assistant_id.to_string()]).await.map(drop).map_err(internal)
}

impl Assistants for PostgresStorage {
    fn register_system_assistant(&self, assistant: Assistant) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            lock_id(&transaction, assistant.assistant_id).await?;
            match get_assistant_in(&transaction, assistant.assistant_id, None, true).await {
                Ok(existing) => {
                    if existing.name != assistant.name || existing.description != assistant.description {
                        transaction
                            .execute("UPDATE assistants SET name = $1, description = $2 WHERE assistant_id = $3", &[&assistant.name, &assistant.description, &assistant.assistant_id])
                            .await
                            .map_err(internal)?;
                    }
                }
                Err(StorageError::NotFound) => write_assistant(&transaction, &assistant, assistant.created_at).await?,
                Err(other) => return Err(other),
            }
            transaction.commit().await.map_err(internal)
        })
    }

    fn create_assistant(&self, assistant: Assistant, if_exists: IfExists, auth: Option<Filter>) -> Answer<Assistant> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            lock_id(&transaction, assistant.assistant_id).await?;
            match get_assistant_in(&transaction, assistant.assistant_id, None, false).await {
                Ok(_) => {
                    return match (if_exists, get_assistant_in(&transaction, assistant.assistant_id, auth.as_ref(), false).await) {
                        (IfExists::DoNothing, Ok(existing)) => Ok(existing),
                        _ => Err(StorageError::Conflict),
                    };
                }
                Err(StorageError::NotFound) => {}
                Err(other) => return Err(other),
            }
            write_assistant(&transaction, &assistant, assistant.created_at).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(assistant)
        })
    }

    fn get_assistant(&self, assistant_id: Uuid, auth: Option<Filter>) -> Answer<Assistant> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move { get_assistant_in(&pool.get().await?, assistant_id, auth.as_ref(), false).await })
    }

    fn patch_assistant(&self, assistant_id: Uuid, patch: AssistantPatch, auth: Option<Filter>, now: i64) -> Answer<Assistant> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let mut assistant = get_assistant_in(&transaction, assistant_id, auth.as_ref(), true).await?;
            let latest: i64 = transaction
                .query_one("SELECT COALESCE(MAX(version), 0) FROM assistant_versions WHERE assistant_id = $1", &[&assistant_id])
                .await
                .map_err(internal)?
                .get(0);
            if let Some(graph_id) = patch.graph_id {
                assistant.graph_id = graph_id;
            }
            if let Some(config) = patch.config.filter(|config| !config.is_empty()) {
                assistant.config = config;
            }
            if let Some(context) = patch.context {
                assistant.context = context;
            }
            assistant.metadata.extend(patch.metadata);
            if let Some(name) = patch.name {
                assistant.name = name;
            }
            if let Some(description) = patch.description {
                assistant.description = Some(description);
            }
            assistant.version = latest + 1;
            assistant.updated_at = now;
            write_assistant(&transaction, &assistant, now).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(assistant)
        })
    }

    fn delete_assistant(&self, assistant_id: Uuid, auth: Option<Filter>, cascade: AssistantCascade) -> Answer<DeletedThreads> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            get_assistant_in(&transaction, assistant_id, auth.as_ref(), true).await?;
            // Its crons go with it (foreign key): each must be one the caller may delete.
            let crons = transaction.query("SELECT cron_id FROM crons WHERE assistant_id = $1 FOR UPDATE", &[&assistant_id]).await.map_err(internal)?;
            for row in crons {
                let cron_id: Uuid = row.get(0);
                match cascade.crons.iter().find(|(id, _)| *id == cron_id) {
                    Some((id, filter)) if get_cron_in(&transaction, *id, filter.as_ref()).await.is_ok() => {}
                    _ => return Err(StorageError::Conflict),
                }
            }
            transaction.execute("DELETE FROM assistants WHERE assistant_id = $1", &[&assistant_id]).await.map_err(internal)?;
            let owner = Value::from(assistant_id.to_string());
            let deleted = delete_threads_in(&transaction, &cascade.threads, Hidden::Skip, |thread| thread.metadata.get("assistant_id") == Some(&owner)).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(deleted)
        })
    }

    fn search_assistants(&self, query: AssistantQuery, sort_by: AssistantSortBy, sort_order: SortOrder, limit: i64, offset: i64) -> Answer<Vec<Assistant>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let column = sql::assistant_sort_column(sort_by);
            let direction = if sort_order == SortOrder::Asc { "ASC" } else { "DESC" };
            let mut where_ = sql::assistant_where(Dialect::Postgres, &query);
            where_.params.extend([Param::Integer(limit), Param::Integer(offset)]);
            let tail = format!("ORDER BY {column} {direction}, t.assistant_id {direction} LIMIT ? OFFSET ?");
            let rows = select(&pool.get().await?, &format!("SELECT {ASSISTANT_COLUMNS} FROM assistants t"), &where_, &tail).await?;
            Ok(rows.iter().map(assistant_from_row).collect())
        })
    }

    fn count_assistants(&self, query: AssistantQuery) -> Answer<i64> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let rows = select(&pool.get().await?, "SELECT COUNT(*) FROM assistants t", &sql::assistant_where(Dialect::Postgres, &query), "").await?;
            Ok(rows.first().map_or(0, |row| row.get(0)))
        })
    }

    fn assistant_versions(&self, assistant_id: Uuid, metadata: Option<Map<String, Value>>, auth: Option<Filter>, limit: i64, offset: i64) -> Answer<Vec<Assistant>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut where_ = Where::default();
            where_.push("t.assistant_id = ?".to_string(), [Param::Uuid(assistant_id)]);
            if let Some(metadata) = &metadata {
                sql::compile_containment(Dialect::Postgres, "t.metadata", metadata, None, &mut where_);
            }
            let rows = select(&pool.get().await?, &format!("SELECT {VERSION_COLUMNS} FROM assistant_versions t"), &where_, "ORDER BY t.version DESC").await?;
            // The auth filter applies to each version's own metadata; versions are few per
            // assistant, so it is evaluated here, before paging (as on SQLite).
            Ok(rows
                .iter()
                .map(version_from_row)
                .filter(|version| auth.as_ref().is_none_or(|filter| filter.matches(&version.metadata)))
                .skip(usize::try_from(offset).unwrap_or(0))
                .take(usize::try_from(limit).unwrap_or(0))
                .collect())
        })
    }

    fn set_latest_assistant_version(&self, assistant_id: Uuid, version: i64, auth: Option<Filter>, now: i64) -> Answer<Option<Assistant>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            let current = get_assistant_in(&transaction, assistant_id, auth.as_ref(), true).await?;
            let sql = format!("SELECT {VERSION_COLUMNS} FROM assistant_versions t WHERE t.assistant_id = $1 AND t.version = $2");
            let Some(chosen) = transaction.query_opt(&sql, &[&assistant_id, &version]).await.map_err(internal)?.map(|row| version_from_row(&row)) else {
                return Ok(None);
            };
            let assistant = Assistant { created_at: current.created_at, updated_at: now, ..chosen };
            let (config, context, metadata) = (Value::Object(assistant.config.clone()), Value::Object(assistant.context.clone()), Value::Object(assistant.metadata.clone()));
            transaction
                .execute(
                    "UPDATE assistants SET graph_id = $1, name = $2, description = $3, config = $4, context = $5, metadata = $6, version = $7, updated_at = $8
                     WHERE assistant_id = $9",
                    &[&assistant.graph_id, &assistant.name, &assistant.description, &config, &context, &metadata, &assistant.version, &now, &assistant_id],
                )
                .await
                .map_err(internal)?;
            index_metadata(&transaction, ASSISTANT_META, assistant_id, &assistant.metadata).await?;
            transaction.commit().await.map_err(internal)?;
            Ok(Some(assistant))
        })
    }
}
