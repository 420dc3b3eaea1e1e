//! A small pool of `tokio-postgres` connections: at most `size` at once; idle ones are reused,
//! and one found closed (the database restarted, the network dropped) is replaced by a new
//! connection, so the backend recovers by itself when the database is back.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, GenericClient, NoTls, Row, Statement};

use crate::storage::{StorageError, StorageResult};

pub(super) struct Pool {
    config: Config,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// A connection and the statements prepared on it, by SQL text: a statement prepared once is
/// one round trip per use instead of two, and the server neither parses nor plans it again.
struct Connection {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

/// Statements one connection keeps at most (queries built from filters vary); past it the
/// cache starts over.
const STATEMENTS: usize = 512;

impl std::fmt::Debug for Pool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Pool").field("target", &self.describe()).finish_non_exhaustive()
    }
}

impl Pool {
    pub(super) fn new(config: Config, size: usize) -> Self {
        Self { config, idle: Mutex::new(Vec::new()), permits: Semaphore::new(size.max(1)) }
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// `host:port/database` for messages (never the password).
    pub(super) fn describe(&self) -> String {
        let host = self.config.get_hosts().first().map_or_else(
            || "localhost".to_string(),
            |host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            },
        );
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}/{}", self.config.get_dbname().unwrap_or("postgres"))
    }

    /// A connection: an idle open one, else a new one. Waits while `size` are in use.
    pub(super) async fn get(&self) -> StorageResult<Pooled<'_>> {
        let permit = self.permits.acquire().await.map_err(|error| StorageError::Internal(error.to_string()))?;
        loop {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            match idle {
                Some(connection) if !connection.client.is_closed() => return Ok(Pooled { connection: Some(connection), pool: self, _permit: permit }),
                Some(_) => continue,
                None => break,
            }
        }
        let (client, connection) = self.config.connect(NoTls).await.map_err(|error| StorageError::Unavailable(with_causes(&error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "a Postgres connection ended");
            }
        });
        let connection = Connection { client, statements: Mutex::new(HashMap::new()) };
        Ok(Pooled { connection: Some(connection), pool: self, _permit: permit })
    }
}

/// A connection taken from the pool; it goes back when dropped, unless it closed. Its
/// statements are prepared once per connection (see [`Sql`]).
pub(super) struct Pooled<'a> {
    connection: Option<Connection>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Pooled<'_> {
    fn connection(&self) -> &Connection {
        self.connection.as_ref().expect("a pooled connection until dropped")
    }

    /// A transaction whose statements use the connection's prepared ones.
    pub(super) async fn transaction(&mut self) -> Result<Transaction<'_>, tokio_postgres::Error> {
        let Connection { client, statements } = self.connection.as_mut().expect("a pooled connection until dropped");
        Ok(Transaction { transaction: client.transaction().await?, statements })
    }

    pub(super) async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.connection().client.batch_execute(sql).await
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && !connection.client.is_closed()
        {
            self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
        }
    }
}

/// A transaction on a pooled connection.
pub(super) struct Transaction<'a> {
    transaction: tokio_postgres::Transaction<'a>,
    statements: &'a Mutex<HashMap<String, Statement>>,
}

impl Transaction<'_> {
    pub(super) async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.transaction.commit().await
    }

    pub(super) async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.transaction.batch_execute(sql).await
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// The statements of a pooled connection or of a transaction on one, prepared once per
/// connection and SQL text.
pub(super) trait Sql: Sync {
    fn prepared(&self, sql: &str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send;
    fn client(&self) -> &(impl GenericClient + Sync);

    fn execute(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send {
        async move { self.client().execute(&self.prepared(sql).await?, params).await }
    }

    fn query(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send {
        async move { self.client().query(&self.prepared(sql).await?, params).await }
    }

    fn query_one(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send {
        async move { self.client().query_one(&self.prepared(sql).await?, params).await }
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send {
        async move { self.client().query_opt(&self.prepared(sql).await?, params).await }
    }
}

/// The cached statement for `sql`, prepared through `client` when missing.
async fn cached(statements: &Mutex<HashMap<String, Statement>>, client: &(impl GenericClient + Sync), sql: &str) -> Result<Statement, tokio_postgres::Error> {
    if let Some(statement) = statements.lock().unwrap_or_else(PoisonError::into_inner).get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql).await?;
    let mut statements = statements.lock().unwrap_or_else(PoisonError::into_inner);
    if statements.len() >= STATEMENTS {
        statements.clear();
    }
    statements.insert(sql.to_string(), statement.clone());
    Ok(statement)
}

impl Sql for Pooled<'_> {
    fn prepared(&self, sql: &str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
        let connection = self.connection();
        cached(&connection.statements, &connection.client, sql)
    }

    fn client(&self) -> &(impl GenericClient + Sync) {
        &self.connection().client
    }
}

impl Sql for Transaction<'_> {
    fn prepared(&self, sql: &str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
        cached(self.statements, &self.transaction, sql)
    }

    fn client(&self) -> &(impl GenericClient + Sync) {
        &self.transaction
    }
}

/// An error and its causes on one line ("error connecting to server: Connection refused").
pub(super) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}
