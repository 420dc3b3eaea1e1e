//! A small pool of `tokio-postgres` connections: at most `size` at once; idle ones are reused,
//! and one found closed (the database restarted, the network dropped) is replaced by a new
//! connection, so the backend recovers by itself when the database is back.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Config, NoTls};

use crate::storage::{StorageError, StorageResult};

pub(super) struct Pool {
    config: Config,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

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
                Some(client) if !client.is_closed() => return Ok(Pooled { client: Some(client), pool: self, _permit: permit }),
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
        Ok(Pooled { client: Some(client), pool: self, _permit: permit })
    }
}

/// A connection taken from the pool; it goes back when dropped, unless it closed.
pub(super) struct Pooled<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Pooled<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("a pooled client until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a pooled client until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(client);
        }
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
