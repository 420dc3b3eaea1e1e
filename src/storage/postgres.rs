//! The Postgres backend: every storage trait, passing the conformance suite (`threads.rs`,
//! `assistants.rs`, `crons.rs`, `runs.rs`; the store here). It is not selectable yet:
//! [`StorageConfig`](super::StorageConfig) opens it once checkpoints live in Postgres too (see
//! ARCHITECTURE.md "Postgres").
//!
//! - A small pool of `tokio-postgres` connections ([`Pool`]); a connection found closed is
//!   replaced, so the backend reconnects by itself once the database is back.
//! - The schema is versioned in `graphward_schema` and migrated at start-up under a session
//!   advisory lock, so replicas starting together apply each migration once.
//! - Values and metadata are `json` (the text as written, key order kept, like SQLite); auth
//!   filters compile to the same side tables as SQLite's (`storage/sql.rs`, `canonical.rs`).
//! - A connection that fails is [`StorageError::Unavailable`] (503), a statement that fails
//!   [`StorageError::Internal`].

mod assistants;
mod crons;
mod log;
mod pool;
mod runs;
mod threads;

use std::sync::Arc;

use serde_json::{Map, Value};

use self::pool::{Pool, Sql};
use super::{Answer, Candidate, ItemWrite, Items, Ranking, StorageError, StorageResult, StoreItem, store_filter};

/// Schema migrations, applied in order; `graphward_schema.version` counts the applied ones.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE threads (
    thread_id uuid PRIMARY KEY,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    state_updated_at bigint NOT NULL,
    metadata json NOT NULL,
    config json NOT NULL,
    status text NOT NULL,
    "values" json,
    interrupts json NOT NULL,
    error json
);
CREATE INDEX threads_updated_at ON threads(updated_at);
CREATE INDEX threads_created_at ON threads(created_at);
CREATE TABLE thread_meta (
    thread_id uuid NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
    key text NOT NULL,
    elem smallint NOT NULL,
    canon text NOT NULL
);
CREATE INDEX thread_meta_lookup ON thread_meta(key, canon, elem, thread_id);
CREATE INDEX thread_meta_thread ON thread_meta(thread_id);
CREATE TABLE assistants (
    assistant_id uuid PRIMARY KEY,
    graph_id text NOT NULL,
    name text NOT NULL,
    description text,
    config json NOT NULL,
    context json NOT NULL,
    metadata json NOT NULL,
    version bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);
CREATE INDEX assistants_created_at ON assistants(created_at);
CREATE TABLE assistant_meta (
    assistant_id uuid NOT NULL REFERENCES assistants(assistant_id) ON DELETE CASCADE,
    key text NOT NULL,
    elem smallint NOT NULL,
    canon text NOT NULL
);
CREATE INDEX assistant_meta_lookup ON assistant_meta(key, canon, elem, assistant_id);
CREATE INDEX assistant_meta_assistant ON assistant_meta(assistant_id);
CREATE TABLE assistant_versions (
    assistant_id uuid NOT NULL REFERENCES assistants(assistant_id) ON DELETE CASCADE,
    version bigint NOT NULL,
    graph_id text NOT NULL,
    name text NOT NULL,
    description text,
    config json NOT NULL,
    context json NOT NULL,
    metadata json NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (assistant_id, version)
);
CREATE TABLE crons (
    cron_id uuid PRIMARY KEY,
    assistant_id uuid NOT NULL REFERENCES assistants(assistant_id) ON DELETE CASCADE,
    thread_id uuid REFERENCES threads(thread_id) ON DELETE CASCADE,
    on_run_completed text,
    end_time text,
    end_time_micros bigint,
    schedule text NOT NULL,
    timezone text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    payload json NOT NULL,
    user_id text,
    next_run_date bigint,
    metadata json NOT NULL,
    enabled boolean NOT NULL,
    creator json
);
CREATE INDEX crons_due ON crons(enabled, next_run_date);
CREATE INDEX crons_created_at ON crons(created_at);
CREATE TABLE cron_meta (
    cron_id uuid NOT NULL REFERENCES crons(cron_id) ON DELETE CASCADE,
    key text NOT NULL,
    elem smallint NOT NULL,
    canon text NOT NULL
);
CREATE INDEX cron_meta_lookup ON cron_meta(key, canon, elem, cron_id);
CREATE INDEX cron_meta_cron ON cron_meta(cron_id);
CREATE TABLE runs (
    run_id uuid PRIMARY KEY,
    thread_id uuid NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
    assistant_id uuid NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    status text NOT NULL,
    metadata json NOT NULL,
    multitask_strategy text NOT NULL,
    kwargs json NOT NULL,
    owner uuid,
    lease_until bigint
);
CREATE INDEX runs_thread ON runs(thread_id, created_at);
CREATE INDEX runs_status ON runs(status, created_at);
CREATE UNIQUE INDEX runs_one_running ON runs(thread_id) WHERE status = 'running';
-- Items are keyed by a digest of (namespace, key): a btree entry holds at most ~2,700 bytes,
-- and a namespace or key may be longer.
CREATE FUNCTION graphward_item_digest(namespace text, key text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(namespace, 'UTF8') || '\x00'::bytea || convert_to(key, 'UTF8')) $$;
CREATE TABLE store_items (
    namespace text NOT NULL,
    key text NOT NULL,
    value json NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    digest bytea GENERATED ALWAYS AS (graphward_item_digest(namespace, key)) STORED PRIMARY KEY
);
CREATE INDEX store_items_updated_at ON store_items(updated_at);
"#, r#"
CREATE TABLE run_events (
    run_id uuid NOT NULL,
    seq bigint NOT NULL,
    id text,
    event text NOT NULL,
    data text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_events_created_at ON run_events(created_at);
CREATE TABLE run_log_ends (
    run_id uuid PRIMARY KEY,
    ended_at bigint NOT NULL
);
CREATE INDEX run_log_ends_ended_at ON run_log_ends(ended_at);
ALTER TABLE runs ADD COLUMN cancel_action text;
-- A thread deleted while one of its runs was running (perhaps on another process): its id
-- cannot be created again until that run has stopped and removed what it wrote, or `until`.
CREATE TABLE thread_tombstones (
    thread_id uuid PRIMARY KEY,
    until bigint NOT NULL
);
CREATE INDEX runs_owner ON runs(owner) WHERE status = 'running';
"#, r#"
ALTER TABLE store_items ADD COLUMN vectors bytea;
ALTER TABLE store_items ADD COLUMN ttl_minutes double precision;
ALTER TABLE store_items ADD COLUMN expires_at bigint;
CREATE INDEX store_items_expires_at ON store_items(expires_at) WHERE expires_at IS NOT NULL;
"#, r#"
-- Thread TTL: the thread expires `ttl_micros` after `updated_at`; `ttl_swept_at` is the
-- `updated_at` a sweep last handled (claimed) it at.
ALTER TABLE threads ADD COLUMN ttl_strategy text;
ALTER TABLE threads ADD COLUMN ttl_micros bigint;
ALTER TABLE threads ADD COLUMN ttl_swept_at bigint;
CREATE INDEX threads_expiry ON threads((updated_at + ttl_micros)) WHERE ttl_micros IS NOT NULL;
"#];

/// The advisory lock key migrations are applied under (any constant; "graphward" in ASCII).
const MIGRATION_LOCK: i64 = 0x6772_6170_6877_6172;

/// Connections per process.
const POOL_SIZE: usize = 16;

/// The Postgres storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresStorage {
    pool: Arc<Pool>,
    /// Other processes' signals, listened for from the first subscriber on ([`log`]).
    signals: Arc<std::sync::OnceLock<Arc<tokio::sync::broadcast::Sender<super::Signal>>>>,
}

impl PostgresStorage {
    /// Connects to `uri` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations. A failure is one line for the user.
    pub async fn open(uri: &str) -> Result<Self, String> {
        let mut config: tokio_postgres::Config = uri.parse().map_err(|error| format!("invalid database URI: {error}"))?;
        // An address that never answers is an error within seconds, not a hang.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let pool = Arc::new(Pool::new(config, POOL_SIZE));
        migrate(&pool).await.map_err(|error| match error {
            StorageError::Unavailable(message) => format!("cannot connect to Postgres ({}): {message}", pool.describe()),
            other => format!("cannot migrate the Postgres database ({}): {other}", pool.describe()),
        })?;
        Ok(Self { pool, signals: Arc::default() })
    }

    /// The schema version the database is at.
    #[cfg(test)]
    pub(crate) async fn schema_version(&self) -> StorageResult<usize> {
        let client = self.pool.get().await?;
        let row = client.query_one("SELECT version FROM graphward_schema", &[]).await.map_err(internal)?;
        usize::try_from(row.get::<_, i32>(0)).map_err(internal)
    }
}

/// Applies the migrations the database lacks, under [`MIGRATION_LOCK`]: a replica that starts
/// meanwhile waits for the lock, then finds them applied.
async fn migrate(pool: &Pool) -> StorageResult<()> {
    let mut client = pool.get().await?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(internal)?;
    let applied = apply_migrations(&mut client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(internal);
    applied.and(unlocked.map(drop))
}

async fn apply_migrations(client: &mut pool::Pooled<'_>) -> StorageResult<()> {
    client
        .batch_execute(
            "SET client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS graphward_schema (version integer NOT NULL);
             INSERT INTO graphward_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM graphward_schema)",
        )
        .await
        .map_err(internal)?;
    let version: i32 = client.query_one("SELECT version FROM graphward_schema", &[]).await.map_err(internal)?.get(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        let transaction = client.transaction().await.map_err(internal)?;
        transaction.batch_execute(migration).await.map_err(internal)?;
        let next = i32::try_from(index + 1).map_err(internal)?;
        transaction.execute("UPDATE graphward_schema SET version = $1", &[&next]).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
    }
    Ok(())
}

/// A statement failed: a lost connection is `Unavailable`, anything else `Internal`.
fn internal(error: impl Into<Failure>) -> StorageError {
    match error.into() {
        Failure::Postgres(error) if error.is_closed() || error.as_db_error().is_none() && is_io(&error) || is_unavailable(&error) => {
            StorageError::Unavailable(pool::with_causes(&error))
        }
        Failure::Postgres(error) => StorageError::Internal(pool::with_causes(&error)),
        Failure::Other(message) => StorageError::Internal(message),
    }
}

/// Whether the server refused for being unavailable rather than for the statement: a
/// connection exception (SQLSTATE class 08) or an operator intervention (class 57: shutting
/// down, starting up, a terminated backend).
fn is_unavailable(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| matches!(code.code().get(..2), Some("08" | "57")))
}

/// Whether a client error came from the connection (I/O) rather than the server.
fn is_io(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// What [`internal`] takes: a driver error, or anything else that displays.
enum Failure {
    Postgres(tokio_postgres::Error),
    Other(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

impl From<std::num::TryFromIntError> for Failure {
    fn from(error: std::num::TryFromIntError) -> Self {
        Self::Other(error.to_string())
    }
}


/// `?` placeholders (as `storage/sql.rs` writes them) numbered `$1`, `$2`, … (the SQL holds
/// no `?` of its own: values are always parameters).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    for character in sql.chars() {
        if character == '?' {
            next += 1;
            out.push('$');
            out.push_str(&next.to_string());
        } else {
            out.push(character);
        }
    }
    out
}

/// A `json` column that holds an object (anything else reads as `{}`).
fn object_of(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl tokio_postgres::types::ToSql for super::sql::Param {
    fn to_sql(&self, ty: &tokio_postgres::types::Type, out: &mut bytes::BytesMut) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use super::sql::Param;
        match self {
            Param::Integer(number) => number.to_sql(ty, out),
            Param::Real(number) => number.to_sql(ty, out),
            Param::Text(text) => text.to_sql(ty, out),
            Param::Uuid(id) => id.to_sql(ty, out),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

fn encode_namespace(namespace: &[String]) -> String {
    namespace.join(".")
}

fn item_from_row(row: &tokio_postgres::Row) -> StoreItem {
    StoreItem {
        namespace: row.get::<_, String>(0).split('.').map(str::to_string).collect(),
        key: row.get(1),
        value: object_of(row.get(2)),
        created_at: row.get(3),
        updated_at: row.get(4),
        expires_at: row.get(5),
    }
}

/// Whether an item's value (`None`: no item) passes a store filter; an operator the filter
/// language lacks is an error, never a pass.
fn passes(value: Option<&Map<String, Value>>, guard: &Map<String, Value>) -> StorageResult<bool> {
    match value {
        None => Ok(false),
        Some(value) => store_filter::matches(value, guard).map_err(StorageError::Internal),
    }
}

/// The parameters of a namespace-prefix condition: the prefix as stored, and the `LIKE`
/// pattern of every namespace below it (labels hold no `.`, so `prefix.` followed by anything
/// is exactly "below"; `LIKE` wildcards in the labels are escaped).
fn prefix_params(prefix: &[String]) -> (String, String) {
    let exact = encode_namespace(prefix);
    let below = format!("{}.%", exact.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    (exact, below)
}

const ITEM_COLUMNS: &str = "namespace, key, value, created_at, updated_at, expires_at";

/// The condition of an item that has not expired at `$now`.
fn alive(now: &str) -> String {
    format!("(expires_at IS NULL OR expires_at > {now})")
}

impl Items for PostgresStorage {
    fn put_item(&self, namespace: Vec<String>, key: String, item: ItemWrite, guard: Option<Map<String, Value>>, now: i64) -> Answer<bool> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            if namespace.iter().any(|label| label.is_empty() || label.contains(['.', '\0'])) {
                return Err(StorageError::Internal("a store namespace label is empty or holds a period or NUL".to_string()));
            }
            let encoded = encode_namespace(&namespace);
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            if let Some(guard) = &guard {
                // The replaced row stays locked until the write commits.
                let sql = format!("SELECT {ITEM_COLUMNS} FROM store_items WHERE digest = graphward_item_digest($1, $2) AND namespace = $1 AND key = $2 AND {} FOR UPDATE", alive("$3"));
                let replaced = transaction.query_opt(&sql, &[&encoded, &key, &now]).await.map_err(internal)?.map(|row| item_from_row(&row));
                let allowed = passes(Some(&item.value), guard)? && (replaced.is_none() || passes(replaced.as_ref().map(|item| &item.value), guard)?);
                if !allowed {
                    return Ok(false);
                }
            }
            let expires_at = item.expires_at(now);
            let vectors = item.vectors.as_ref().map(super::Vectors::to_blob);
            let value = Value::Object(item.value);
            // A replaced item that had expired is gone: the new one starts its own history.
            transaction
                .execute(
                    "INSERT INTO store_items (namespace, key, value, created_at, updated_at, vectors, ttl_minutes, expires_at) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)
                     ON CONFLICT (digest) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
                         created_at = CASE WHEN store_items.expires_at IS NOT NULL AND store_items.expires_at <= excluded.updated_at THEN excluded.created_at ELSE store_items.created_at END,
                         vectors = excluded.vectors, ttl_minutes = excluded.ttl_minutes, expires_at = excluded.expires_at",
                    &[&encoded, &key, &value, &now, &vectors, &item.ttl_minutes, &expires_at],
                )
                .await
                .map_err(internal)?;
            transaction.commit().await.map_err(internal)?;
            Ok(true)
        })
    }

    fn get_item(&self, namespace: Vec<String>, key: String, now: i64) -> Answer<Option<StoreItem>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            let sql = format!("SELECT {ITEM_COLUMNS} FROM store_items WHERE digest = graphward_item_digest($1, $2) AND namespace = $1 AND key = $2 AND {}", alive("$3"));
            Ok(client.query_opt(&sql, &[&encode_namespace(&namespace), &key, &now]).await.map_err(internal)?.map(|row| item_from_row(&row)))
        })
    }

    fn delete_item(&self, namespace: Vec<String>, key: String, guard: Option<Map<String, Value>>) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let encoded = encode_namespace(&namespace);
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            if let Some(guard) = &guard {
                let sql = format!("SELECT {ITEM_COLUMNS} FROM store_items WHERE digest = graphward_item_digest($1, $2) AND namespace = $1 AND key = $2 FOR UPDATE");
                let item = transaction.query_opt(&sql, &[&encoded, &key]).await.map_err(internal)?.map(|row| item_from_row(&row));
                if !passes(item.as_ref().map(|item| &item.value), guard)? {
                    return Ok(());
                }
            }
            transaction.execute("DELETE FROM store_items WHERE digest = graphward_item_digest($1, $2) AND namespace = $1 AND key = $2", &[&encoded, &key]).await.map_err(internal)?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn items_under(&self, prefix: Vec<String>, now: i64) -> Answer<Vec<StoreItem>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let (exact, below) = prefix_params(&prefix);
            let client = pool.get().await?;
            let sql = format!(
                "SELECT {ITEM_COLUMNS} FROM store_items WHERE ($1 = '' OR namespace = $1 OR namespace LIKE $2) AND {}
                 ORDER BY updated_at DESC, namespace, key",
                alive("$3")
            );
            Ok(client.query(&sql, &[&exact, &below, &now]).await.map_err(internal)?.iter().map(item_from_row).collect())
        })
    }

    fn rank_items(&self, prefix: Vec<String>, query: Vec<f32>, filters: Vec<Map<String, Value>>, page: (usize, usize), now: i64) -> Answer<Vec<(StoreItem, Option<f64>)>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let (limit, offset) = page;
            let (exact, below) = prefix_params(&prefix);
            let client = pool.get().await?;
            // The value as text: parsed only when there are filters (and for the page).
            let sql = format!(
                "SELECT namespace, key, value::text, created_at, updated_at, expires_at, vectors FROM store_items
                 WHERE ($1 = '' OR namespace = $1 OR namespace LIKE $2) AND {}",
                alive("$3")
            );
            let rows = client.query(&sql, &[&exact, &below, &now]).await.map_err(internal)?;
            let mut ranking = Ranking::new(query, limit, offset);
            for row in &rows {
                let value: &str = row.get(2);
                if !filters.is_empty() {
                    let parsed = object_of(serde_json::from_str(value).unwrap_or(Value::Null));
                    let mut all = true;
                    for filter in &filters {
                        all &= passes(Some(&parsed), filter)?;
                    }
                    if !all {
                        continue;
                    }
                }
                ranking.offer(&Candidate {
                    namespace: row.get(0),
                    key: row.get(1),
                    value,
                    created_at: row.get(3),
                    updated_at: row.get(4),
                    expires_at: row.get(5),
                    vectors: row.get(6),
                });
            }
            Ok(ranking.page(offset))
        })
    }

    fn namespaces(&self, now: i64) -> Answer<Vec<Vec<String>>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            let sql = format!("SELECT DISTINCT namespace FROM store_items WHERE {}", alive("$1"));
            let rows = client.query(&sql, &[&now]).await.map_err(internal)?;
            let mut namespaces: Vec<Vec<String>> = rows.iter().map(|row| row.get::<_, String>(0).split('.').map(str::to_string).collect()).collect();
            namespaces.sort();
            Ok(namespaces)
        })
    }

    fn refresh_items(&self, items: Vec<(Vec<String>, String)>, now: i64) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let (namespaces, keys): (Vec<String>, Vec<String>) = items.iter().map(|(namespace, key)| (encode_namespace(namespace), key.clone())).unzip();
            let client = pool.get().await?;
            client
                .execute(
                    "UPDATE store_items SET expires_at = $3 + (ttl_minutes * 60000000.0)::bigint
                     FROM unnest($1::text[], $2::text[]) AS wanted(namespace, key)
                     WHERE store_items.digest = graphward_item_digest(wanted.namespace, wanted.key) AND store_items.namespace = wanted.namespace
                       AND store_items.key = wanted.key AND ttl_minutes IS NOT NULL AND expires_at > $3",
                    &[&namespaces, &keys, &now],
                )
                .await
                .map_err(internal)?;
            Ok(())
        })
    }

    fn sweep_items(&self, now: i64) -> Answer<u64> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            // Several processes may sweep at once: each DELETE re-checks a row it waited for, so
            // an item refreshed meanwhile stays, and a row is deleted once.
            let client = pool.get().await?;
            client.execute("DELETE FROM store_items WHERE expires_at IS NOT NULL AND expires_at <= $1", &[&now]).await.map_err(internal)
        })
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    async fn storage() -> PostgresStorage {
        PostgresStorage::open(&testing::fresh_database().await).await.expect("open")
    }

    crate::storage::conformance::conformance_suite!(storage().await);

    /// Replicas that start together migrate once: every one opens, and the schema is at the
    /// last version.
    #[test]
    fn concurrent_starts_migrate_once() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let uri = testing::fresh_database().await;
            let opens: Vec<_> = (0..4).map(|_| tokio::spawn({
                let uri = uri.clone();
                async move { PostgresStorage::open(&uri).await }
            })).collect();
            for open in opens {
                let storage = open.await.expect("task").expect("open");
                assert_eq!(storage.schema_version().await.expect("version"), MIGRATIONS.len());
            }
        });
    }

    /// A database that goes away answers `Unavailable` (503), never a hang, and the same
    /// storage serves again once it is back, without a restart of its own.
    #[test]
    fn the_database_coming_back_is_served_again() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
        let cluster = testing::Cluster::start();
        runtime.block_on(async {
            let storage = PostgresStorage::open(&cluster.uri).await.expect("open");
            let put = |n: i64| storage.put_item(vec!["a".to_string()], "k".to_string(), ItemWrite::value(serde_json::json!({"n": n}).as_object().cloned().unwrap_or_default()), None, n);
            assert!(put(1).await.expect("put"));
            cluster.stop();
            let down = tokio::time::timeout(std::time::Duration::from_secs(30), put(2)).await.expect("no hang");
            assert!(matches!(down, Err(StorageError::Unavailable(_))), "{down:?}");
            cluster.resume();
            assert!(put(3).await.expect("served again"));
            let item = storage.get_item(vec!["a".to_string()], "k".to_string(), 0).await.expect("get").expect("the item");
            assert_eq!((item.value["n"].clone(), item.created_at), (serde_json::json!(3), 1), "the acknowledged write is kept");
        });
    }

    /// Bad URIs and refused connections are one line; the process never hangs on them.
    #[test]
    fn bad_databases_are_one_line() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let bad = PostgresStorage::open("postgres://localhost:not-a-port/db").await.expect_err("a bad URI");
            assert!(bad.starts_with("invalid database URI") && !bad.contains('\n'), "{bad}");
            let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
            let refused = PostgresStorage::open(&format!("postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=5")).await.expect_err("refused");
            assert!(refused.starts_with(&format!("cannot connect to Postgres (127.0.0.1:{port}/postgres)")), "{refused}");
            assert!(refused.contains("refused") && !refused.contains('\n'), "{refused}");
        });
    }
}
