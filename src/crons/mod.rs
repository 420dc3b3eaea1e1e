//! Crons: schedules of runs. This module holds the schedule language (5-field cron
//! expressions evaluated in an IANA time zone); storage keeps the rows, `server/` the API.

pub mod schedule;

pub use schedule::Schedule;
