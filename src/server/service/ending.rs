//! Ending runs for a client: deleting one, and choosing the active runs a cancellation of
//! many reaches.

use uuid::Uuid;

use crate::auth::Filter;
use crate::error::ApiError;
use crate::python::CheckpointOp;
use crate::runs::CancelAction;
use crate::server::AppState;
use crate::storage::{Run, RunStatus, StorageError};

/// Deletes a run with the checkpoints it wrote. An active run is cancelled with a rollback,
/// which deletes both; one that had ended (or ends before the cancellation reaches it) loses
/// its checkpoints first, then its row, so a failure leaves the row to delete again.
pub(in crate::server) async fn delete(state: &AppState, run: &Run) -> Result<(), ApiError> {
    let cancelled = run.status.is_active() && state.runs().cancel(run, CancelAction::Rollback).await.map_err(ApiError::internal)?;
    if !cancelled {
        let (thread_id, run_id) = (run.thread_id, run.run_id);
        state.python().checkpoints(CheckpointOp::DeleteForRuns { thread_id, run_ids: vec![run_id] }).await.map_err(ApiError::internal)?;
        state.storage().delete_run(run_id).await?;
    }
    Ok(())
}

/// Whether the thread exists and passes `filter` (`false` when hidden or missing).
pub(in crate::server) async fn thread_visible(state: &AppState, thread_id: Uuid, filter: Option<Filter>) -> Result<bool, ApiError> {
    match state.storage().get_thread(thread_id, filter).await {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// The active runs (with `status`; `None`: pending and running) of every thread that passes
/// `filter`.
pub(in crate::server) async fn active_on_visible_threads(state: &AppState, status: Option<RunStatus>, filter: Option<Filter>) -> Result<Vec<Run>, ApiError> {
    let mut visible = Vec::new();
    for run in state.storage().all_active_runs(status).await? {
        if thread_visible(state, run.thread_id, filter.clone()).await? {
            visible.push(run);
        }
    }
    Ok(visible)
}

/// The active runs among `run_ids` of a thread.
pub(in crate::server) async fn active_among(state: &AppState, thread_id: Uuid, run_ids: &[Uuid]) -> Result<Vec<Run>, ApiError> {
    Ok(state.storage().active_runs(thread_id).await?.into_iter().filter(|run| run_ids.contains(&run.run_id)).collect())
}
