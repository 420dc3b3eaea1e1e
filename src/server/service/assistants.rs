//! Assistant deletion and its cascade: the assistant's crons, with `delete_threads` its
//! threads, and the runs it leaves on threads that stay.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::{Action, Endpoint, Resource};
use crate::error::ApiError;
use crate::runs::CancelAction;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::storage::{AssistantCascade, CronQuery, CronSortBy, SortOrder, StorageError, StorageHandle, StorageResult, ThreadQuery, ThreadSortBy};

/// Deletes an assistant the caller may delete. The cascade touches only what the caller may
/// delete, each record authorized on its own (a second round trip): its crons (all of them, or
/// nothing is deleted: 409) and, with `delete_threads`, the threads that pass their
/// `threads.delete` event (spec http-api.md). Assistant, crons and threads go in one storage
/// call; the runs it leaves on other threads are interrupted where the caller may update them.
pub(in crate::server) async fn delete(state: &AppState, auth: &Auth, assistant_id: Uuid, delete_threads: bool) -> Result<(), ApiError> {
    let missing = || ApiError::not_found(format!("Assistant with ID {assistant_id} not found"));
    let authorization = auth.authorize(Endpoint::AssistantsDelete { assistant_id }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Delete).cloned();
    let visible = filter.clone();
    state.storage().get_assistant(assistant_id, visible).await.map_err(|error| match error {
        StorageError::NotFound => missing(),
        other => other.into(),
    })?;
    let cron_ids = crons_of(state.storage(), assistant_id).await?;
    let thread_ids = if delete_threads { threads_of(state.storage(), assistant_id).await? } else { Vec::new() };
    let mut cascade = AssistantCascade::default();
    if !cron_ids.is_empty() {
        let per_cron = auth.authorize(Endpoint::CronsDeleteEach { cron_ids: cron_ids.clone() }).await?;
        cascade.crons = cron_ids.into_iter().zip(per_cron.events.into_iter().map(|event| event.filter)).collect();
    }
    if !thread_ids.is_empty() {
        let per_thread = auth.authorize(Endpoint::ThreadsDeleteEach { thread_ids: thread_ids.clone() }).await?;
        cascade.threads = thread_ids.iter().copied().zip(per_thread.events.into_iter().map(|event| event.filter)).collect();
    }
    state
        .runs()
        .delete_threads(&thread_ids, state.storage().delete_assistant(assistant_id, filter, cascade))
        .await
        .map_err(|error| match error {
            StorageError::NotFound => missing(),
            StorageError::Conflict => ApiError::new(StatusCode::CONFLICT, format!("Assistant {assistant_id} has crons you may not delete; it was not deleted")),
            other => other.into(),
        })?;
    // Its runs on the threads that stay are interrupted, where the caller may update the thread.
    let update = authorization.filter(Resource::Threads, Action::Update).cloned();
    for run in state.storage().all_active_runs(None).await?.into_iter().filter(|run| run.assistant_id == assistant_id) {
        if state.storage().get_thread(run.thread_id, update.clone()).await.is_ok() {
            state.runs().cancel(&run, CancelAction::Interrupt).await.map_err(ApiError::internal)?;
        }
    }
    Ok(())
}

/// The ids of every cron of this assistant.
async fn crons_of(storage: &StorageHandle, assistant_id: Uuid) -> StorageResult<Vec<Uuid>> {
    let query = CronQuery { assistant_id: Some(assistant_id), ..CronQuery::default() };
    every_page(|offset| {
        let page = storage.search_crons(query.clone(), CronSortBy::CreatedAt, SortOrder::Asc, PAGE, offset);
        async move { Ok(page.await?.into_iter().map(|cron| cron.cron_id).collect()) }
    })
    .await
}

/// The ids of every thread whose `metadata.assistant_id` is this assistant.
async fn threads_of(storage: &StorageHandle, assistant_id: Uuid) -> StorageResult<Vec<Uuid>> {
    let mut metadata = Map::new();
    metadata.insert("assistant_id".to_string(), Value::from(assistant_id.to_string()));
    let query = ThreadQuery { metadata: Some(metadata), ..ThreadQuery::default() };
    every_page(|offset| {
        let page = storage.search_threads(query.clone(), ThreadSortBy::CreatedAt, SortOrder::Asc, PAGE, offset);
        async move { Ok(page.await?.into_iter().map(|thread| thread.thread_id).collect()) }
    })
    .await
}

const PAGE: i64 = 1000;

/// Reads pages of `PAGE` ids from offset 0 until a short page.
async fn every_page<F: Future<Output = StorageResult<Vec<Uuid>>>>(page: impl Fn(i64) -> F) -> StorageResult<Vec<Uuid>> {
    let mut ids = Vec::new();
    loop {
        let next = page(i64::try_from(ids.len()).unwrap_or(i64::MAX)).await?;
        let full = i64::try_from(next.len()).unwrap_or(0) == PAGE;
        ids.extend(next);
        if !full {
            return Ok(ids);
        }
    }
}
