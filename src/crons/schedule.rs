//! 5-field cron expressions (`minute hour day-of-month month day-of-week`) and their next
//! firing time in a time zone.
//!
//! Fields accept `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and
//! weekday names (`JAN`, `MON`); weekday 7 is Sunday like 0. When both day fields are
//! restricted a day matches if either does (classic cron). Macros: `@yearly`/`@annually`,
//! `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Whether each day field was restricted (not `*`).
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses an expression; the error says which field is wrong.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let expanded = match expression.trim().to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            _ => expression.trim().to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected 5 fields (minute hour day-of-month month day-of-week), got {}", fields.len()));
        }
        let mut days_of_week = parse_field(fields[4], 0, 7, &WEEKDAYS, "day-of-week")?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week |= 1;
        }
        Ok(Self {
            minutes: parse_field(fields[0], 0, 59, &[], "minute")?,
            hours: parse_field(fields[1], 0, 23, &[], "hour")?,
            days_of_month: parse_field(fields[2], 1, 31, &[], "day-of-month")?,
            months: parse_field(fields[3], 1, 12, &MONTHS, "month")?,
            days_of_week,
            day_of_month_restricted: fields[2] != "*",
            day_of_week_restricted: fields[4] != "*",
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.day_of_month_restricted, self.day_of_week_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first firing time strictly after `after`, in `zone`; `None` if there is none
    /// within about five years (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned_datetime(zone.clone()).datetime();
        let mut current = local.date().to_datetime(Time::new(local.hour(), local.minute(), 0, 0).ok()?).checked_add(1.minute()).ok()?;
        let limit = current.date().checked_add(5.years()).ok()?;
        while current.date() < limit {
            let month_bit = 1u64 << current.month();
            if self.months & month_bit == 0 {
                let first = current.date().first_of_month().checked_add(1.month()).ok()?;
                current = first.to_datetime(Time::midnight());
                continue;
            }
            if !self.day_matches(current.date()) {
                current = current.date().tomorrow().ok()?.to_datetime(Time::midnight());
                continue;
            }
            if self.hours & (1 << current.hour()) == 0 {
                current = start_of_next_hour(current)?;
                continue;
            }
            if self.minutes & (1 << current.minute()) == 0 {
                current = current.checked_add(1.minute()).ok()?;
                continue;
            }
            // A local time in a DST gap resolves forward; a repeated one to its first instance.
            let timestamp = zone.to_ambiguous_zoned_datetime(current).compatible().ok()?.timestamp();
            if timestamp > after {
                return Some(timestamp);
            }
            current = current.checked_add(1.minute()).ok()?;
        }
        None
    }
}

fn start_of_next_hour(current: DateTime) -> Option<DateTime> {
    let hour = current.date().to_datetime(Time::new(current.hour(), 0, 0, 0).ok()?);
    hour.checked_add(1.hour()).ok()
}

/// One field → a bit set of allowed values.
fn parse_field(field: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| format!("bad step `{step}` in the {what} field"))?;
                if step == 0 {
                    return Err(format!("step 0 in the {what} field"));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (value(low, min, max, names, what)?, value(high, min, max, names, what)?)
        } else {
            let single = value(range, min, max, names, what)?;
            (single, if part.contains('/') { max } else { single })
        };
        if low > high {
            return Err(format!("range `{range}` is backwards in the {what} field"));
        }
        let mut current = low;
        while current <= high {
            bits |= 1 << current;
            current += step;
        }
    }
    Ok(bits)
}

fn value(text: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(index) = names.iter().position(|name| *name == upper) {
        let offset = if names.len() == 12 { 1 } else { 0 };
        return Ok(u32::try_from(index).unwrap_or(0) + offset);
    }
    let number: u32 = text.parse().map_err(|_| format!("`{text}` is not a valid {what}"))?;
    if number < min || number > max {
        return Err(format!("{number} is out of range for the {what} field ({min}-{max})"));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(expression: &str, after: &str, zone: &str) -> String {
        let schedule = Schedule::parse(expression).expect("valid");
        let zone = TimeZone::get(zone).expect("zone");
        let after: Timestamp = after.parse().expect("timestamp");
        schedule.next_after(after, &zone).map_or_else(|| "none".to_string(), |ts| ts.to_string())
    }

    #[test]
    fn next_firing_times() {
        let rows = [
            ("* * * * *", "2026-11-28T10:15:30Z", "UTC", "2026-11-28T10:16:00Z"),
            ("*/15 * * * *", "2026-11-28T10:15:00Z", "UTC", "2026-11-28T10:30:00Z"),
            ("0 9 * * MON-FRI", "2026-11-28T10:00:00Z", "UTC", "2026-11-30T09:00:00Z"),
            ("30 2 1 * *", "2026-11-28T00:00:00Z", "UTC", "2026-12-01T02:30:00Z"),
            ("0 0 1 JAN *", "2026-11-28T00:00:00Z", "UTC", "2027-01-01T00:00:00Z"),
            ("@daily", "2026-11-28T23:59:00Z", "UTC", "2026-11-29T00:00:00Z"),
            ("0 9 * * *", "2026-11-28T10:00:00Z", "America/New_York", "2026-11-28T14:00:00Z"),
            ("0 0 29 2 *", "2026-03-01T00:00:00Z", "UTC", "2028-02-29T00:00:00Z"),
            ("0 0 13 * 5", "2026-11-28T00:00:00Z", "UTC", "2026-12-04T00:00:00Z"),
            ("0 0 * * 7", "2026-11-28T00:00:00Z", "UTC", "2026-11-29T00:00:00Z"),
            ("0 0 31 2 *", "2026-11-28T00:00:00Z", "UTC", "none"),
        ];
        for (expression, after, zone, expected) in rows {
            assert_eq!(next(expression, after, zone), expected, "{expression} after {after} in {zone}");
        }
    }

    #[test]
    fn bad_expressions_say_why() {
        for (expression, expected) in [
            ("* * * *", "expected 5 fields"),
            ("60 * * * *", "out of range for the minute field"),
            ("* * * FOO *", "not a valid month"),
            ("*/0 * * * *", "step 0"),
            ("5-1 * * * *", "backwards"),
        ] {
            let error = Schedule::parse(expression).expect_err("invalid");
            assert!(error.contains(expected), "{expression}: {error}");
        }
    }
}
