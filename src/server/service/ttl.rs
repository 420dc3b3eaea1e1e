//! The thread TTL sweep: threads whose TTL ran out since their last activity are deleted
//! (`delete`, exactly as `DELETE /threads/{id}` deletes: runs stopped, checkpoints removed)
//! or reduced to their latest checkpoint (`keep_latest`; the thread stays). Every serving
//! process sweeps; the storage's claim hands each expired thread to one of them.

use uuid::Uuid;

use crate::python::CheckpointOp;
use crate::server::AppState;
use crate::storage::{Hidden, TtlStrategy};
use crate::timestamp::now_micros;

/// One sweep: claims up to `checkpointer.ttl.sweep_limit` expired threads and applies their
/// strategy. Threads whose sweep failed are released for the next sweep.
pub(in crate::server) async fn sweep_expired_threads(state: &AppState) {
    let limit = state.config().checkpointer.sweep_limit();
    let expired = match state.storage().claim_expired_threads(now_micros(), limit).await {
        Ok(expired) => expired,
        Err(error) => {
            tracing::error!(%error, "cannot read the threads whose TTL ran out");
            return;
        }
    };
    let (deleted, pruned): (Vec<_>, Vec<_>) = expired.into_iter().partition(|thread| thread.strategy == TtlStrategy::Delete);
    let deleted: Vec<Uuid> = deleted.into_iter().map(|thread| thread.thread_id).collect();
    let pruned: Vec<Uuid> = pruned.into_iter().map(|thread| thread.thread_id).collect();
    if !deleted.is_empty() {
        let targets = deleted.iter().map(|thread_id| (*thread_id, None)).collect();
        match state.runs().delete_threads(&deleted, state.storage().delete_threads(targets, Hidden::Skip)).await {
            Ok(done) => tracing::info!(threads = done.thread_ids.len(), "deleted threads whose TTL ran out"),
            Err(error) => {
                tracing::error!(%error, threads = deleted.len(), "cannot delete threads whose TTL ran out; the next sweep tries again");
                release(state, deleted).await;
            }
        }
    }
    if !pruned.is_empty() {
        match state.python().checkpoints(CheckpointOp::KeepLatest(pruned.clone())).await {
            Ok(()) => tracing::info!(threads = pruned.len(), "pruned the checkpoints of threads whose TTL ran out to the latest"),
            Err(error) => {
                tracing::error!(%error, threads = pruned.len(), "cannot prune threads whose TTL ran out; the next sweep tries again");
                release(state, pruned).await;
            }
        }
    }
}

async fn release(state: &AppState, thread_ids: Vec<Uuid>) {
    if let Err(error) = state.storage().release_expired_threads(thread_ids).await {
        tracing::error!(%error, "cannot release the claims of threads whose sweep failed; they wait for their next activity");
    }
}
