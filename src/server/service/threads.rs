//! Thread creation (shared by `POST /threads` and by a run that names a thread not there yet)
//! and copy.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::Filter;
use crate::config::TtlConfig;
use crate::error::ApiError;
use crate::python::CheckpointOp;
use crate::server::AppState;
use crate::storage::{IfExists, StorageError, Thread, ThreadStatus, ThreadTtl};
use crate::timestamp::now_micros;

/// Creates an idle thread with `metadata`, checked against the caller's `filter` when the id
/// exists (`if_exists`; an existing thread keeps its TTL). A new thread gets `ttl`, else the
/// configured `checkpointer.ttl.default_ttl`, if any. An id whose deletion is still stopping
/// runs answers 409 "being deleted"; an id taken by a row the caller may not have answers
/// `taken()`.
pub(in crate::server) async fn create_idle(
    state: &AppState,
    thread_id: Uuid,
    metadata: Map<String, Value>,
    ttl: Option<ThreadTtl>,
    if_exists: IfExists,
    filter: Option<Filter>,
    taken: impl FnOnce() -> ApiError,
) -> Result<Thread, ApiError> {
    create_idle_fresh(state, thread_id, metadata, ttl, if_exists, filter, taken).await.map(|(thread, _)| thread)
}

/// [`create_idle`], and whether the thread is new (`false`: `do_nothing` found it there).
pub(in crate::server) async fn create_idle_fresh(
    state: &AppState,
    thread_id: Uuid,
    metadata: Map<String, Value>,
    ttl: Option<ThreadTtl>,
    if_exists: IfExists,
    filter: Option<Filter>,
    taken: impl FnOnce() -> ApiError,
) -> Result<(Thread, bool), ApiError> {
    let now = now_micros();
    let thread = Thread {
        thread_id,
        created_at: now,
        updated_at: now,
        state_updated_at: now,
        metadata,
        config: Map::new(),
        status: ThreadStatus::Idle,
        values: None,
        interrupts: Map::new(),
        error: None,
        ttl: ttl.or_else(|| state.config().checkpointer.ttl.as_ref().and_then(TtlConfig::default_for_new_thread)),
    };
    state
        .runs()
        .create_unless_deleting(thread_id, state.storage().create_thread(thread, if_exists, filter))
        .await
        .map_err(|error| match error {
            StorageError::Conflict => taken(),
            other => other.into(),
        })?
        .ok_or_else(|| being_deleted(thread_id))
        .map(|thread| {
            let fresh = thread.created_at == now;
            (thread, fresh)
        })
}

/// Copies a thread the caller may read (`filter`) to `new_thread_id`: its checkpoints first,
/// then the row, so a copy is either whole or absent — checkpoints copied for a row that could
/// not be written are removed again. A missing (or hidden) source answers 409, like the
/// reference.
pub(in crate::server) async fn copy(state: &AppState, thread_id: Uuid, new_thread_id: Uuid, filter: Option<Filter>) -> Result<Thread, ApiError> {
    let source = state.storage().get_thread(thread_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::reason(StatusCode::CONFLICT),
        other => other.into(),
    })?;
    let python = state.python();
    python.checkpoints(CheckpointOp::CopyThread { from: thread_id, to: new_thread_id }).await.map_err(ApiError::internal)?;
    let now = now_micros();
    let copy = Thread { thread_id: new_thread_id, created_at: now, updated_at: now, state_updated_at: now, status: ThreadStatus::Idle, config: Map::new(), ..source };
    match state.storage().create_thread(copy, IfExists::Raise, None).await {
        Ok(copied) => Ok(copied),
        Err(error) => {
            if let Err(cleanup) = python.checkpoints(CheckpointOp::DeleteThreads(vec![new_thread_id])).await {
                tracing::error!(%new_thread_id, error = %cleanup, "cannot remove the checkpoints of a copy that failed");
            }
            Err(error.into())
        }
    }
}

/// A thread id whose deletion is still stopping runs and removing checkpoints.
pub(in crate::server) fn being_deleted(thread_id: Uuid) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, format!("Thread with ID {thread_id} is being deleted; try again"))
}
