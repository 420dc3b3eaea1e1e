//! Crons: schedules of runs. This module holds the schedule language (5-field cron
//! expressions evaluated in an IANA time zone); storage keeps the rows, `server/` the API.

pub mod schedule;

pub use schedule::Schedule;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::AuthUser;

/// A stored cron.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    pub cron_id: Uuid,
    pub assistant_id: Uuid,
    /// `None` for stateless crons (a new thread per firing).
    pub thread_id: Option<Uuid>,
    /// `delete` or `keep` (stateless crons only).
    pub on_run_completed: Option<String>,
    /// As the client sent it.
    pub end_time: Option<String>,
    /// `end_time` parsed, microseconds since the epoch.
    pub end_time_micros: Option<i64>,
    pub schedule: String,
    /// IANA zone name; `None` = UTC.
    pub timezone: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The run fields of the create body (assistant resolved, `config.configurable.cron_id` set).
    pub payload: Map<String, Value>,
    /// The creator's identity (`""` without auth).
    pub user_id: Option<String>,
    /// Microseconds since the epoch; `None` when the schedule never fires again.
    pub next_run_date: Option<i64>,
    pub metadata: Map<String, Value>,
    pub enabled: bool,
    /// The creator as authenticated (identity, permissions): who the cron fires as. `None`
    /// without auth, or for a cron stored before it was kept (then `user_id` is used).
    pub creator: Option<AuthUser>,
}

/// The zone of a cron: `None` is UTC. The error is the client's message.
pub fn time_zone(name: Option<&str>) -> Result<jiff::tz::TimeZone, String> {
    match name {
        None => Ok(jiff::tz::TimeZone::UTC),
        Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| format!("Invalid timezone: '{name}'")),
    }
}

/// The next firing strictly after `after_micros`, as microseconds.
pub fn next_run(schedule: &Schedule, zone: &jiff::tz::TimeZone, after_micros: i64) -> Option<i64> {
    let after = jiff::Timestamp::from_microsecond(after_micros).ok()?;
    schedule.next_after(after, zone).map(|next| next.as_microsecond())
}

/// Parses an RFC 3339 timestamp (`end_time`) into microseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|timestamp| timestamp.as_microsecond())
}
