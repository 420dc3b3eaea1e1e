//! The run log on Postgres: the events of every run in `run_events` (with `run_log_ends`
//! marking a run's last), and the signals between processes — `LISTEN/NOTIFY` on two channels
//! whose payloads carry ids only: `graphward_events` (run ids with new events, comma-separated,
//! batched well under the 8,000-byte payload limit) and `graphward_cancels`
//! (`<run_id>:<action>`). A notification can be missed (the listening connection drops, a
//! process starts late): readers poll as well, and the listener reports [`Signal::Lagged`] when
//! it reconnects.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use super::pool::Sql;
use super::{PostgresStorage, internal};
use crate::storage::{Answer, LoggedEvent, LoggedRun, RunLog, Signal};

/// The channel of "these runs have new events".
const EVENTS_CHANNEL: &str = "graphward_events";

/// The channel of "stop this run".
const CANCELS_CHANNEL: &str = "graphward_cancels";

/// Bytes of run ids one notification carries (Postgres refuses payloads of 8,000 or more).
const PAYLOAD_BYTES: usize = 4_000;

/// Signals buffered for a slow subscriber before it gets [`Signal::Lagged`].
const SIGNAL_BUFFER: usize = 4_096;

/// The notification payloads naming `run_ids`: as few as fit under [`PAYLOAD_BYTES`] each.
fn payloads(run_ids: &[Uuid]) -> Vec<String> {
    let mut payloads: Vec<String> = Vec::new();
    for run_id in run_ids {
        match payloads.last_mut() {
            Some(last) if last.len() + 37 <= PAYLOAD_BYTES => {
                last.push(',');
                last.push_str(&run_id.to_string());
            }
            _ => payloads.push(run_id.to_string()),
        }
    }
    payloads
}

/// A notification as a signal (`None`: not ours, or malformed).
fn signal(channel: &str, payload: &str) -> Option<Signal> {
    match channel {
        EVENTS_CHANNEL => Some(Signal::Events(payload.split(',').filter_map(|id| id.parse().ok()).collect())),
        CANCELS_CHANNEL => {
            let (run_id, action) = payload.split_once(':')?;
            Some(Signal::Cancel(run_id.parse().ok()?, action.to_string()))
        }
        _ => None,
    }
}

/// Listens on the signal channels while the storage lives (`sender` is its; gone, the task
/// ends at the next notification or reconnection), reconnecting after a lost connection.
pub(super) fn spawn_listener(config: tokio_postgres::Config, sender: Weak<broadcast::Sender<Signal>>) {
    tokio::spawn(async move {
        let mut retry = false;
        while sender.strong_count() > 0 {
            if retry {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            retry = true;
            let Ok((client, mut connection)) = config.connect(tokio_postgres::NoTls).await else { continue };
            let forward = sender.clone();
            let driver = tokio::spawn(async move {
                let mut messages = futures_util::stream::poll_fn(move |context| connection.poll_message(context));
                while let Some(Ok(message)) = messages.next().await {
                    let AsyncMessage::Notification(notification) = message else { continue };
                    let Some(sender) = forward.upgrade() else { return };
                    if let Some(signal) = signal(notification.channel(), notification.payload()) {
                        let _ = sender.send(signal);
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {CANCELS_CHANNEL}")).await.is_err() {
                driver.abort();
                continue;
            }
            // Listening from here; whatever was sent before is unknown to the readers.
            lagged(&sender);
            let _ = driver.await;
            drop(client);
            lagged(&sender);
        }
    });
}

fn lagged(sender: &Weak<broadcast::Sender<Signal>>) {
    if let Some(sender) = sender.upgrade() {
        let _ = sender.send(Signal::Lagged);
    }
}

impl PostgresStorage {
    /// The signal sender, with its listener started on first use.
    fn signal_sender(&self) -> Arc<broadcast::Sender<Signal>> {
        Arc::clone(self.signals.get_or_init(|| {
            let sender = Arc::new(broadcast::channel(SIGNAL_BUFFER).0);
            spawn_listener(self.pool.config().clone(), Arc::downgrade(&sender));
            sender
        }))
    }
}

impl RunLog for PostgresStorage {
    fn is_shared(&self) -> bool {
        true
    }

    fn ping(&self) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            pool.get().await?.query_one("SELECT 1", &[]).await.map_err(internal)?;
            Ok(())
        })
    }

    fn append_run_events(&self, batch: Vec<LoggedRun>) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let now = crate::timestamp::now_micros();
            let (mut runs, mut seqs, mut ids, mut names, mut data) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut ended = Vec::new();
            for logged in &batch {
                for event in &logged.events {
                    runs.push(logged.run_id);
                    seqs.push(event.seq);
                    ids.push(event.id.clone());
                    names.push(event.event.clone());
                    data.push(event.data.to_string());
                }
                if logged.finished {
                    ended.push(logged.run_id);
                }
            }
            let mut woken: Vec<Uuid> = batch.iter().map(|logged| logged.run_id).collect();
            woken.dedup();
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            if !runs.is_empty() {
                transaction
                    .execute(
                        "INSERT INTO run_events (run_id, seq, id, event, data, created_at)
                         SELECT run_id, seq, id, event, data, $6 FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[]) AS e(run_id, seq, id, event, data)
                         ON CONFLICT DO NOTHING",
                        &[&runs, &seqs, &ids, &names, &data, &now],
                    )
                    .await
                    .map_err(internal)?;
            }
            if !ended.is_empty() {
                transaction
                    .execute("INSERT INTO run_log_ends (run_id, ended_at) SELECT unnest($1::uuid[]), $2 ON CONFLICT DO NOTHING", &[&ended, &now])
                    .await
                    .map_err(internal)?;
            }
            for payload in payloads(&woken) {
                transaction.execute("SELECT pg_notify($1, $2)", &[&EVENTS_CHANNEL, &payload]).await.map_err(internal)?;
            }
            transaction.commit().await.map_err(internal)
        })
    }

    fn run_events(&self, run_id: Uuid, from: i64) -> Answer<LoggedRun> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let client = pool.get().await?;
            // The end first: once it is stored, so is every event before it.
            let finished = client.query_opt("SELECT 1 FROM run_log_ends WHERE run_id = $1", &[&run_id]).await.map_err(internal)?.is_some();
            let rows = client.query("SELECT seq, id, event, data FROM run_events WHERE run_id = $1 AND seq >= $2 ORDER BY seq", &[&run_id, &from]).await.map_err(internal)?;
            let events = rows.iter().map(|row| LoggedEvent { seq: row.get(0), id: row.get(1), event: row.get(2), data: Arc::from(row.get::<_, String>(3)) }).collect();
            Ok(LoggedRun { run_id, events, finished })
        })
    }

    fn request_cancel(&self, run_id: Uuid, action: String) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            transaction.execute("UPDATE runs SET cancel_action = $2 WHERE run_id = $1 AND status = 'running'", &[&run_id, &action]).await.map_err(internal)?;
            transaction.execute("SELECT pg_notify($1, $2)", &[&CANCELS_CHANNEL, &format!("{run_id}:{action}")]).await.map_err(internal)?;
            transaction.commit().await.map_err(internal)
        })
    }

    fn requested_cancels(&self, owner: Uuid) -> Answer<Vec<(Uuid, String)>> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            let rows = pool
                .get()
                .await?
                .query("SELECT run_id, cancel_action FROM runs WHERE owner = $1 AND status = 'running' AND cancel_action IS NOT NULL", &[&owner])
                .await
                .map_err(internal)?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    fn release_deleted_thread(&self, thread_id: Uuid) -> Answer<()> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            pool.get().await?.execute("DELETE FROM thread_tombstones WHERE thread_id = $1", &[&thread_id]).await.map_err(internal)?;
            Ok(())
        })
    }

    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        Some(self.signal_sender().subscribe())
    }

    fn forget_run_events(&self, before: i64) -> Answer<usize> {
        let pool = Arc::clone(&self.pool);
        Box::pin(async move {
            // Only logs that ended: a run executing for longer keeps every event, so a reader
            // that comes late still reads it from the start.
            let mut client = pool.get().await?;
            let transaction = client.transaction().await.map_err(internal)?;
            transaction
                .execute("DELETE FROM run_events e USING run_log_ends x WHERE e.run_id = x.run_id AND x.ended_at < $1", &[&before])
                .await
                .map_err(internal)?;
            let ended = transaction.execute("DELETE FROM run_log_ends WHERE ended_at < $1", &[&before]).await.map_err(internal)?;
            // Reservations whose run never reported back (its process died): what it wrote goes.
            let lapsed: Vec<Uuid> = transaction
                .query("DELETE FROM thread_tombstones WHERE until < $1 RETURNING thread_id", &[&crate::timestamp::now_micros()])
                .await
                .map_err(internal)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            if !lapsed.is_empty() {
                let ids: Vec<String> = lapsed.iter().map(Uuid::to_string).collect();
                for table in ["checkpoint_writes", "checkpoint_blobs", "checkpoints"] {
                    let exists: bool = transaction.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.map_err(internal)?.get(0);
                    if exists {
                        transaction.execute(&format!("DELETE FROM {table} WHERE thread_id = ANY($1)"), &[&ids]).await.map_err(internal)?;
                    }
                }
            }
            transaction.commit().await.map_err(internal)?;
            usize::try_from(ended).map_err(internal)
        })
    }
}
