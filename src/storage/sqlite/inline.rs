//! The work budget of storage calls run on a tokio worker ([`super::SqliteStorage`]).
//!
//! While [`attempt`] runs, [`deadline`] tells the implementation until when the call may work
//! (SQLite checks it from a progress handler every 1,000 VM instructions) and that it must not
//! wait for a lock. Past the budget, or when it would wait, the implementation abandons
//! the call without effect and calls [`exceeded`]; `attempt` then answers `None` and the
//! caller runs the call again on the blocking pool. A worker is thus never held for long by a
//! call that turns out to scan many rows or to queue behind another writer.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long an inline call may work before it is abandoned.
pub(super) const BUDGET: Duration = Duration::from_millis(1);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `call` with the budget on; `None` if it was abandoned.
pub(super) fn attempt<T>(call: impl FnOnce() -> T) -> Option<T> {
    attempt_within(BUDGET, call)
}

/// [`attempt`] with another budget.
pub(super) fn attempt_within<T>(budget: Duration, call: impl FnOnce() -> T) -> Option<T> {
    DEADLINE.with(|deadline| deadline.set(Some(Instant::now() + budget)));
    EXCEEDED.with(|exceeded| exceeded.set(false));
    let result = call();
    DEADLINE.with(|deadline| deadline.set(None));
    if EXCEEDED.with(Cell::take) { None } else { Some(result) }
}

/// The deadline in force on this thread, if any.
pub(super) fn deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// Records that the call on this thread was abandoned (out of budget, or it would wait).
pub(super) fn exceeded() {
    EXCEEDED.with(|exceeded| exceeded.set(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_reports_an_abandoned_call_and_resets() {
        assert_eq!(deadline(), None);
        assert!(attempt(deadline).is_some_and(|deadline| deadline.is_some()));
        assert_eq!(attempt(exceeded), None);
        assert_eq!(deadline(), None);
        assert_eq!(attempt(|| 7), Some(7));
    }
}
