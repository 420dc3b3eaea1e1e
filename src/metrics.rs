//! Prometheus metrics, kept in the process (atomics and a few small maps; no dependency):
//! HTTP requests per route, run outcomes and durations, and — what the peers do not export —
//! the auth decisions per (resource, action, handler, decision), each handler's latency and
//! the auth round trip's. `GET /metrics` renders them (`server/routes/system.rs`) with the gauges read at
//! scrape time (run queue depth, `auth.cache`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Run duration buckets, in seconds (runs are longer than requests).
const RUN_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0];

/// A histogram with fixed buckets.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations, in microseconds.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(), sum_micros: AtomicU64::new(0), count: AtomicU64::new(0) }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = self.bounds.iter().position(|bound| seconds <= *bound) {
            self.counts[index].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let separator = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {cumulative}");
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {total}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {total}");
    }
}

/// What one auth event was decided as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// Allowed without a filter.
    Allow,
    /// Allowed with a filter (the records it lets through).
    Filter,
    /// Refused by a handler or by authenticate (4xx).
    Deny,
    /// A handler raised or answered something graphward refuses to guess about (5xx).
    Error,
    /// The handlers did not answer in time (503).
    Timeout,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Filter => "filter",
            Self::Deny => "deny",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

type AuthKey = (String, String, String, Decision);

/// How a due cron's firing ended (spec auth.md §3.7: it runs as its creator, through the
/// handlers again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CronFiring {
    /// Its run was stored.
    Fired,
    /// The handlers (or run creation) refused it as the creator: 4xx.
    Refused,
    /// A handler failed, or the run could not be created: 5xx. Nothing ran (fail closed).
    Error,
    /// The handlers did not answer in time. Nothing ran (fail closed).
    Timeout,
    /// The database was unreachable: the firing is tried again at the next tick.
    Retried,
    /// Not started: its end time passed, or its payload is no longer a run.
    Skipped,
}

impl CronFiring {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fired => "fired",
            Self::Refused => "refused",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Retried => "retried",
            Self::Skipped => "skipped",
        }
    }
}

/// Every series of this process.
#[derive(Debug)]
pub struct Metrics {
    /// (method, route, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (method, route) → latency.
    latency: Mutex<BTreeMap<(String, String), std::sync::Arc<Histogram>>>,
    /// (resource, action, handler, decision) → count.
    decisions: Mutex<BTreeMap<AuthKey, u64>>,
    /// (resource, action) of a request's first event → the auth round trip.
    auth_latency: Mutex<BTreeMap<(String, String), std::sync::Arc<Histogram>>>,
    /// (resource, action, handler) → that handler's time (`authenticate` as resource
    /// `authenticate`, action empty).
    handler_latency: Mutex<BTreeMap<(String, String, String), std::sync::Arc<Histogram>>>,
    /// Final run status → count.
    runs: Mutex<BTreeMap<String, u64>>,
    run_duration: Histogram,
    executing: AtomicU64,
    /// Cron firings by outcome.
    cron_firings: Mutex<BTreeMap<CronFiring, u64>>,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn histogram<K: Ord>(map: &Mutex<BTreeMap<K, std::sync::Arc<Histogram>>>, key: K) -> std::sync::Arc<Histogram> {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    std::sync::Arc::clone(map.entry(key).or_insert_with(|| std::sync::Arc::new(Histogram::new(&BUCKETS))))
}

impl Metrics {
    fn new() -> Self {
        Self {
            requests: Mutex::default(),
            latency: Mutex::default(),
            decisions: Mutex::default(),
            auth_latency: Mutex::default(),
            handler_latency: Mutex::default(),
            runs: Mutex::default(),
            run_duration: Histogram::new(&RUN_BUCKETS),
            executing: AtomicU64::new(0),
            cron_firings: Mutex::default(),
        }
    }

    /// One answered HTTP request (`route`: the route's template, or `unmatched`).
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self.requests.lock().unwrap_or_else(PoisonError::into_inner).entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        histogram(&self.latency, (method.to_string(), route.to_string())).observe(elapsed);
    }

    /// One auth event's decision.
    pub fn decision(&self, resource: &str, action: &str, handler: Option<&str>, decision: Decision) {
        let key = (resource.to_string(), action.to_string(), handler.unwrap_or("-").to_string(), decision);
        *self.decisions.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default() += 1;
    }

    /// One auth round trip (authenticate and every handler of the request).
    pub fn auth_round_trip(&self, resource: &str, action: &str, elapsed: Duration) {
        histogram(&self.auth_latency, (resource.to_string(), action.to_string())).observe(elapsed);
    }

    /// One handler's time as the auth host measured it (`seconds`; nonsense values count as 0).
    pub fn handler_time(&self, resource: &str, action: &str, handler: Option<&str>, seconds: f64) {
        let elapsed = Duration::try_from_secs_f64(seconds).unwrap_or_default();
        histogram(&self.handler_latency, (resource.to_string(), action.to_string(), handler.unwrap_or("-").to_string())).observe(elapsed);
    }

    /// A run started executing here.
    pub fn run_started(&self) {
        self.executing.fetch_add(1, Ordering::Relaxed);
    }

    /// A run that executed here ended with `status` after `elapsed`.
    pub fn run_ended(&self, status: &str, elapsed: Duration) {
        let _ = self.executing.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |value| value.checked_sub(1));
        *self.runs.lock().unwrap_or_else(PoisonError::into_inner).entry(status.to_string()).or_default() += 1;
        self.run_duration.observe(elapsed);
    }

    /// One due cron's firing, decided.
    pub fn cron_firing(&self, outcome: CronFiring) {
        *self.cron_firings.lock().unwrap_or_else(PoisonError::into_inner).entry(outcome).or_default() += 1;
    }

    /// The Prometheus text format (0.0.4) of every series, with the scrape-time gauges.
    pub fn render(&self, scraped: &Scraped) -> String {
        let mut out = String::new();
        out.push_str("# HELP graphward_http_requests_total HTTP requests answered, by method, route and status.\n# TYPE graphward_http_requests_total counter\n");
        for ((method, route, status), count) in self.requests.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "graphward_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}", escape(method), escape(route));
        }
        out.push_str("# HELP graphward_http_request_duration_seconds Time to answer an HTTP request (to its first byte for streams).\n# TYPE graphward_http_request_duration_seconds histogram\n");
        for ((method, route), histogram) in self.latency.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            histogram.render(&mut out, "graphward_http_request_duration_seconds", &format!("method=\"{}\",route=\"{}\"", escape(method), escape(route)));
        }
        out.push_str("# HELP graphward_auth_decisions_total Auth events decided, by resource, action, handler and decision (allow, filter, deny, error, timeout).\n# TYPE graphward_auth_decisions_total counter\n");
        for ((resource, action, handler, decision), count) in self.decisions.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(
                out,
                "graphward_auth_decisions_total{{resource=\"{}\",action=\"{}\",handler=\"{}\",decision=\"{}\"}} {count}",
                escape(resource),
                escape(action),
                escape(handler),
                decision.as_str()
            );
        }
        out.push_str("# HELP graphward_auth_duration_seconds One request's authentication and handlers (one interpreter round trip), by its first event.\n# TYPE graphward_auth_duration_seconds histogram\n");
        for ((resource, action), histogram) in self.auth_latency.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            histogram.render(&mut out, "graphward_auth_duration_seconds", &format!("resource=\"{}\",action=\"{}\"", escape(resource), escape(action)));
        }
        out.push_str("# HELP graphward_auth_handler_duration_seconds Time one auth handler ran, by resource, action and handler (authenticate: resource \"authenticate\"; not for auth.cache hits).\n# TYPE graphward_auth_handler_duration_seconds histogram\n");
        for ((resource, action, handler), histogram) in self.handler_latency.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let labels = format!("resource=\"{}\",action=\"{}\",handler=\"{}\"", escape(resource), escape(action), escape(handler));
            histogram.render(&mut out, "graphward_auth_handler_duration_seconds", &labels);
        }
        if let Some((hits, misses, entries)) = scraped.auth_cache {
            out.push_str("# HELP graphward_auth_cache_hits_total auth.cache lookups that found a user.\n# TYPE graphward_auth_cache_hits_total counter\n");
            let _ = writeln!(out, "graphward_auth_cache_hits_total {hits}");
            out.push_str("# HELP graphward_auth_cache_misses_total auth.cache lookups that ran authenticate.\n# TYPE graphward_auth_cache_misses_total counter\n");
            let _ = writeln!(out, "graphward_auth_cache_misses_total {misses}");
            out.push_str("# HELP graphward_auth_cache_entries Users in auth.cache.\n# TYPE graphward_auth_cache_entries gauge\n");
            let _ = writeln!(out, "graphward_auth_cache_entries {entries}");
        }
        out.push_str("# HELP graphward_runs_total Runs that executed in this process, by final status.\n# TYPE graphward_runs_total counter\n");
        for (status, count) in self.runs.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "graphward_runs_total{{status=\"{}\"}} {count}", escape(status));
        }
        out.push_str("# HELP graphward_run_duration_seconds Time a run executed in this process.\n# TYPE graphward_run_duration_seconds histogram\n");
        self.run_duration.render(&mut out, "graphward_run_duration_seconds", "");
        out.push_str("# HELP graphward_runs_executing Runs executing in this process now.\n# TYPE graphward_runs_executing gauge\n");
        let _ = writeln!(out, "graphward_runs_executing {}", self.executing.load(Ordering::Relaxed));
        out.push_str("# HELP graphward_cron_firings_total Due crons this process fired or refused to fire, by outcome (fired, refused, error, timeout, retried, skipped).\n# TYPE graphward_cron_firings_total counter\n");
        for (outcome, count) in self.cron_firings.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "graphward_cron_firings_total{{outcome=\"{}\"}} {count}", outcome.as_str());
        }
        if let Some(pending) = scraped.pending_runs {
            out.push_str("# HELP graphward_run_queue_depth Runs waiting to be claimed (every process of the database).\n# TYPE graphward_run_queue_depth gauge\n");
            let _ = writeln!(out, "graphward_run_queue_depth {pending}");
        }
        out
    }
}

/// Gauges read when `/metrics` is scraped.
#[derive(Debug, Default, Clone, Copy)]
pub struct Scraped {
    /// Pending runs in the database.
    pub pending_runs: Option<usize>,
    /// `auth.cache`: (hits, misses, entries), when configured.
    pub auth_cache: Option<(u64, u64, u64)>,
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let metrics = Metrics::new();
        metrics.request("GET", "/threads/{thread_id}", 200, Duration::from_millis(3));
        metrics.request("GET", "/threads/{thread_id}", 200, Duration::from_millis(30));
        metrics.decision("threads", "read", Some("owner_only"), Decision::Filter);
        metrics.decision("threads", "read", Some("owner \"q\""), Decision::Deny);
        metrics.handler_time("threads", "read", Some("owner_only"), 0.002);
        metrics.handler_time("authenticate", "", Some("who"), f64::NAN);
        metrics.run_started();
        metrics.run_ended("success", Duration::from_millis(20));
        metrics.cron_firing(CronFiring::Refused);
        let text = metrics.render(&Scraped { pending_runs: Some(2), auth_cache: Some((3, 1, 1)) });
        assert!(text.contains("graphward_http_requests_total{method=\"GET\",route=\"/threads/{thread_id}\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("graphward_http_request_duration_seconds_bucket{method=\"GET\",route=\"/threads/{thread_id}\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("graphward_http_request_duration_seconds_bucket{method=\"GET\",route=\"/threads/{thread_id}\",le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("graphward_auth_decisions_total{resource=\"threads\",action=\"read\",handler=\"owner_only\",decision=\"filter\"} 1"), "{text}");
        assert!(text.contains("handler=\"owner \\\"q\\\"\""), "{text}");
        assert!(text.contains("graphward_auth_handler_duration_seconds_bucket{resource=\"threads\",action=\"read\",handler=\"owner_only\",le=\"0.001\"} 0"), "{text}");
        assert!(text.contains("graphward_auth_handler_duration_seconds_bucket{resource=\"threads\",action=\"read\",handler=\"owner_only\",le=\"0.0025\"} 1"), "{text}");
        assert!(text.contains("graphward_auth_handler_duration_seconds_count{resource=\"authenticate\",action=\"\",handler=\"who\"} 1"), "{text}");
        assert!(text.contains("graphward_runs_total{status=\"success\"} 1"), "{text}");
        assert!(text.contains("graphward_runs_executing 0"), "{text}");
        assert!(text.contains("graphward_run_queue_depth 2"), "{text}");
        assert!(text.contains("graphward_auth_cache_hits_total 3"), "{text}");
        assert!(text.contains("graphward_cron_firings_total{outcome=\"refused\"} 1"), "{text}");
    }
}
