//! Cron firing: each due cron starts its run as its creator, through the same run creation
//! and auth handlers as a client's request (spec auth.md §3.7).

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::runs::{Answer, FIRING_TAKEN, RunCreate, create_run, merge_into};
use crate::auth::AuthUser;
use crate::crons::{Cron, Schedule, next_run, time_zone};
use crate::server::AppState;
use crate::metrics::{self, CronFiring as Outcome};
use crate::server::auth::{AUTH_TIMED_OUT, Auth};
use crate::storage::CronFiring;
use crate::timestamp::now_micros;

/// How many due crons start their runs at once. Each start is a few storage calls and one
/// round trip to the auth handlers; one after another, hundreds of crons due in the same
/// second fired seconds late.
const CONCURRENT_FIRINGS: usize = 16;

/// Starts a run for every cron whose time has come, as the cron's creator: the run's
/// `threads.create_run` (and `assistants.read`) events go through the handlers with that
/// user. Up to [`CONCURRENT_FIRINGS`] crons start at once; the call returns when all have, so
/// the next tick never reads a cron whose next firing is not stored yet.
pub(in crate::server) async fn fire_due_crons(state: &AppState) {
    let now = now_micros();
    let due = match state.storage().due_crons(now).await {
        Ok(due) => due,
        Err(error) => {
            tracing::error!(%error, "cannot read due crons");
            return;
        }
    };
    let mut firing = tokio::task::JoinSet::new();
    for cron in due {
        while firing.len() >= CONCURRENT_FIRINGS {
            settled(firing.join_next().await);
        }
        firing.spawn(fire(state.clone(), cron, now));
    }
    while let Some(done) = firing.join_next().await {
        settled(Some(done));
    }
}

/// A firing that panicked is logged; the loop goes on with the others.
fn settled(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(error)) = done {
        tracing::error!(%error, "a cron firing failed");
    }
}

/// Fires one due cron: its run is stored in one transaction with the cron's move to its next
/// firing, and only if the cron is still at the firing read — so of the processes sharing a
/// database that read it as due, one fires it, and one that dies mid-firing leaves the tick to
/// the others. A firing that cannot start its run (the handlers refuse, fail or time out, the
/// payload is not a run, the end time passed) moves the cron on without a run: nothing runs
/// (fail closed), it is not retried every tick, and the cron stays for its next firing, as in
/// the reference (a permission given back makes it fire again). One that finds the database
/// unreachable is retried at the next tick. Every outcome is logged and counted
/// (`graphward_cron_firings_total`).
async fn fire(state: AppState, cron: Cron, now: i64) {
    let next = Schedule::parse(&cron.schedule)
        .ok()
        .zip(time_zone(cron.timezone.as_deref()).ok())
        .and_then(|(schedule, zone)| next_run(&schedule, &zone, now))
        .filter(|next| cron.end_time_micros.is_none_or(|end| *next <= end));
    let cron_id = cron.cron_id;
    let firing = CronFiring { cron_id, from: cron.next_run_date, to: next };
    // Moves the cron on without a run (if no other process has made this firing).
    let skip = |outcome: Outcome| {
        let state = state.clone();
        async move {
            metrics::global().cron_firing(outcome);
            if let Err(error) = state.storage().advance_cron(cron_id, firing.from, firing.to, now_micros()).await {
                tracing::error!(%cron_id, %error, "cannot move a cron to its next firing");
            }
        }
    };
    if cron.end_time_micros.is_some_and(|end| now > end) {
        return skip(Outcome::Skipped).await;
    }
    let body = match run_body(cron.payload, &cron.metadata, cron.thread_id.is_none(), cron.on_run_completed.as_deref()) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%cron_id, %error, "a cron's payload is not a run body");
            return skip(Outcome::Skipped).await;
        }
    };
    // As its creator, through the handlers again: a permission revoked since stops it.
    let creator = cron.creator.clone().or_else(|| cron.user_id.as_deref().filter(|identity| !identity.is_empty()).map(AuthUser::plain));
    // (None with auth configured: authenticate runs without credentials and refuses.)
    let path = cron.thread_id.map_or_else(|| "/runs".to_string(), |thread_id| format!("/threads/{thread_id}/runs"));
    let auth = Auth::acting_as(state.auth_policy().clone(), creator, "POST", path);
    match create_run(&state, &auth, cron.thread_id, body, Answer::Background, Some(firing)).await {
        Ok(created) => {
            metrics::global().cron_firing(Outcome::Fired);
            tracing::info!(%cron_id, run_id = %created.run.run_id, "cron fired");
        }
        Err(error) if error.detail == FIRING_TAKEN => {}
        Err(error) if error.status == StatusCode::SERVICE_UNAVAILABLE && error.detail != AUTH_TIMED_OUT => {
            metrics::global().cron_firing(Outcome::Retried);
            tracing::warn!(%cron_id, detail = %error.detail, "cron could not start its run; it fires at the next tick");
        }
        Err(error) => {
            let outcome = match error.status {
                StatusCode::SERVICE_UNAVAILABLE => Outcome::Timeout,
                status if status.is_server_error() => Outcome::Error,
                _ => Outcome::Refused,
            };
            tracing::warn!(%cron_id, status = %error.status, detail = %error.detail, "cron could not start its run");
            skip(outcome).await;
        }
    }
}

/// The run a firing creates: the cron's payload with the cron's metadata (what its handlers
/// approved), which wins over anything in the payload, and a stateless cron's
/// `on_run_completed`.
fn run_body(mut payload: Map<String, Value>, cron_metadata: &Map<String, Value>, stateless: bool, on_run_completed: Option<&str>) -> serde_json::Result<RunCreate> {
    let mut metadata = payload.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    merge_into(&mut metadata, Some(cron_metadata));
    payload.insert("metadata".to_string(), Value::Object(metadata));
    if stateless {
        payload.insert("on_completion".to_string(), Value::from(on_run_completed.unwrap_or("delete")));
    }
    serde_json::from_value(Value::Object(payload))
}

/// A cron update as the client sent it (checked) and its handlers left it.
pub(in crate::server) struct CronPatch {
    /// The body: shallow-merged into the payload.
    pub(in crate::server) body: Map<String, Value>,
    /// Merged into the cron's metadata (the handler's, else the body's).
    pub(in crate::server) metadata: Option<Map<String, Value>>,
    pub(in crate::server) enabled: Option<bool>,
    /// Only for a stateless cron.
    pub(in crate::server) on_run_completed: Option<String>,
    /// `Some(None)`: cleared.
    pub(in crate::server) end_time: Option<Option<(String, i64)>>,
    pub(in crate::server) schedule: Option<(String, Schedule)>,
    pub(in crate::server) timezone: Option<String>,
}

impl CronPatch {
    /// Applies the update: the payload keeps the cron's resolved assistant and its id, and
    /// carries the cron's metadata; a new schedule or time zone moves the next firing.
    pub(in crate::server) fn apply(self, cron: &mut Cron, now: i64) -> Result<(), String> {
        let preserved_assistant = cron.payload.get("assistant_id").cloned();
        let preserved_cron_id = cron.payload.get("config").and_then(|config| config.get("configurable")).and_then(|c| c.get("cron_id")).cloned();
        cron.payload.extend(self.body);
        if let Some(assistant) = preserved_assistant {
            cron.payload.insert("assistant_id".to_string(), assistant);
        }
        if let Some(id) = preserved_cron_id {
            object_at(object_at(&mut cron.payload, "config"), "configurable").insert("cron_id".to_string(), id);
        }
        if let Some(metadata) = self.metadata {
            cron.metadata.extend(metadata);
        }
        // The payload's metadata is the cron's, as the handler left it (never the body's own).
        cron.payload.insert("metadata".to_string(), Value::Object(cron.metadata.clone()));
        if let Some(flag) = self.enabled {
            cron.enabled = flag;
        }
        if self.on_run_completed.is_some() && cron.thread_id.is_none() {
            cron.on_run_completed = self.on_run_completed;
        }
        if let Some(end_time) = self.end_time {
            (cron.end_time, cron.end_time_micros) = match end_time {
                Some((text, micros)) => (Some(text), Some(micros)),
                None => (None, None),
            };
        }
        if self.schedule.is_some() || self.timezone.is_some() {
            let schedule = match self.schedule {
                Some((text, schedule)) => {
                    cron.schedule = text;
                    schedule
                }
                None => Schedule::parse(&cron.schedule).map_err(|reason| invalid_schedule(&cron.schedule, &reason))?,
            };
            if self.timezone.is_some() {
                cron.timezone = self.timezone;
            }
            let zone = time_zone(cron.timezone.as_deref())?;
            cron.next_run_date = next_run(&schedule, &zone, now);
        }
        cron.updated_at = now;
        Ok(())
    }
}

/// The message for a schedule that does not parse.
pub(in crate::server) fn invalid_schedule(schedule: &str, reason: &str) -> String {
    format!("Invalid cron schedule: '{schedule}'. {reason}")
}

/// The object under `key`, created (or put in place of a value that is not one) if needed.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(object) => object,
        _ => unreachable!("replaced by an object above"),
    }
}
