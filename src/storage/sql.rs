//! SQL both backends build alike: a WHERE clause under construction ([`Where`], `?`
//! placeholders and neutral [`Param`]s; Postgres numbers them) and auth filters compiled to
//! `EXISTS` lookups on the metadata side tables ([`compile_filter`]: one row per top-level key
//! and per list element, canonical JSON text under Python equality, `canonical.rs`).

use serde_json::{Map, Value};
use uuid::Uuid;

use super::canonical::canonical;
use crate::auth::Filter;
use crate::auth::filter::Clause;
use crate::storage::{AssistantQuery, AssistantSortBy, CronQuery, CronSortBy, ThreadQuery, ThreadSortBy};

/// A bound value, for either backend (SQLite binds a UUID as text).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Integer(i64),
    Real(f64),
    Text(String),
    Uuid(Uuid),
}

/// A WHERE clause under construction: SQL text and its parameters.
#[derive(Debug, Default)]
pub(super) struct Where {
    pub(super) parts: Vec<String>,
    pub(super) params: Vec<Param>,
}

impl Where {
    pub(super) fn push(&mut self, sql: String, params: impl IntoIterator<Item = Param>) {
        self.parts.push(sql);
        self.params.extend(params);
    }

    pub(super) fn sql(&self) -> String {
        if self.parts.is_empty() { "TRUE".to_string() } else { self.parts.join(" AND ") }
    }
}

/// Which side table and id column a filter is compiled against.
#[derive(Debug, Clone, Copy)]
pub(super) struct MetaTable {
    /// e.g. `thread_meta`.
    pub(super) table: &'static str,
    /// The id column in both tables, e.g. `thread_id`.
    pub(super) id: &'static str,
    /// The alias of the filtered row in the query.
    pub(super) alias: &'static str,
}

pub(super) const THREAD_META: MetaTable = MetaTable { table: "thread_meta", id: "thread_id", alias: "t" };
pub(super) const ASSISTANT_META: MetaTable = MetaTable { table: "assistant_meta", id: "assistant_id", alias: "t" };
pub(super) const CRON_META: MetaTable = MetaTable { table: "cron_meta", id: "cron_id", alias: "t" };
/// A cron's target thread, inside a cron query (the cron is `t`, the thread `th`).
pub(super) const CRON_THREAD_META: MetaTable = MetaTable { table: "thread_meta", id: "thread_id", alias: "th" };

/// An auth filter as SQL over the side table of `meta` (parameters appended to `params`).
///
/// On Postgres the side tables hold long keys and values as digests
/// ([`indexed`](super::canonical::indexed)): an index entry has a size limit there.
pub(super) fn compile_filter(dialect: Dialect, filter: &Filter, meta: MetaTable, params: &mut Vec<Param>) -> String {
    let MetaTable { table, id, alias } = meta;
    let text = |text: String| match dialect {
        Dialect::Sqlite => Param::Text(text),
        Dialect::Postgres => Param::Text(super::canonical::indexed(text)),
    };
    if filter.clauses.is_empty() {
        return "TRUE".to_string();
    }
    let parts: Vec<String> = filter
        .clauses
        .iter()
        .map(|clause| match clause {
            Clause::Eq { key, value } => {
                params.push(text(key.clone()));
                params.push(text(canonical(value)));
                format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.canon = ? AND m.elem = 0)")
            }
            Clause::Contains { key, values } if values.is_empty() => {
                params.push(text(key.clone()));
                format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.elem = 0 AND substr(m.canon, 1, 1) = '[')")
            }
            Clause::Contains { key, values } => values
                .iter()
                .map(|value| {
                    params.push(text(key.clone()));
                    params.push(text(canonical(value)));
                    format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.canon = ? AND m.elem = 1)")
                })
                .collect::<Vec<_>>()
                .join(" AND "),
            Clause::Or(groups) => format!("({})", groups.iter().map(|group| compile_filter(dialect, group, meta, params)).collect::<Vec<_>>().join(" OR ")),
            Clause::And(groups) => format!("({})", groups.iter().map(|group| compile_filter(dialect, group, meta, params)).collect::<Vec<_>>().join(" AND ")),
        })
        .collect();
    format!("({})", parts.join(" AND "))
}


/// The SQL dialect a clause is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// JSON containment of `wanted` in the JSON column `column` (`t.metadata` or `t."values"`):
/// numbers compare as numbers, lists and objects whole, `null` only a present `null`.
///
/// `side`: the column's metadata side table, if it has one. On Postgres a top-level string is
/// then looked up there (the same test: a key's row holds the canonical JSON of its value,
/// and a string's is its JSON text), because the planner cannot estimate a JSON path
/// predicate: taking it for a rare one, it scanned and sorted a million threads where
/// walking the sort index takes ten (`bench/scale.sh` with the example auth: 1.3 s → 1 ms).
pub(super) fn compile_containment(dialect: Dialect, column: &str, wanted: &Map<String, Value>, side: Option<MetaTable>, where_: &mut Where) {
    match dialect {
        Dialect::Sqlite => sqlite_containment(column, wanted, where_),
        Dialect::Postgres => {
            let mut rest = wanted.clone();
            if let Some(MetaTable { table, id, alias }) = side {
                for (key, value) in wanted {
                    if let Value::String(_) = value {
                        rest.remove(key);
                        where_.push(
                            format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.canon = ? AND m.elem = 0)"),
                            [Param::Text(super::canonical::indexed(key.clone())), Param::Text(super::canonical::indexed(canonical(value)))],
                        );
                    }
                }
            }
            postgres_containment(column, &rest, where_);
        }
    }
}

fn sqlite_containment(column: &str, wanted: &Map<String, Value>, where_: &mut Where) {
    fn walk(column: &str, path: &str, wanted: &Map<String, Value>, where_: &mut Where) {
        for (key, value) in wanted {
            let path = format!("{path}.\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
            let path_param = Param::Text(path.clone());
            match value {
                Value::Object(inner) => {
                    where_.push(format!("json_type({column}, ?) = 'object'"), [path_param]);
                    walk(column, &path, inner, where_);
                }
                Value::Null => where_.push(format!("json_type({column}, ?) = 'null'"), [path_param]),
                Value::Bool(flag) => where_.push(format!("json_type({column}, ?) = '{flag}'"), [path_param]),
                Value::Number(number) => {
                    let number = number.as_f64().unwrap_or(f64::NAN);
                    where_.push(
                        format!("json_type({column}, ?) IN ('integer', 'real') AND json_extract({column}, ?) = ?"),
                        [path_param.clone(), path_param, Param::Real(number)],
                    );
                }
                Value::String(text) => where_.push(
                    format!("json_type({column}, ?) = 'text' AND json_extract({column}, ?) = ?"),
                    [path_param.clone(), path_param, Param::Text(text.clone())],
                ),
                Value::Array(_) => where_.push(
                    format!("json_type({column}, ?) = 'array' AND json(json_extract({column}, ?)) = json(?)"),
                    [path_param.clone(), path_param, Param::Text(value.to_string())],
                ),
            }
        }
    }
    walk(column, "$", wanted, where_);
}


fn postgres_containment(column: &str, wanted: &Map<String, Value>, where_: &mut Where) {
    fn walk(column: &str, path: &[String], wanted: &Map<String, Value>, where_: &mut Where) {
        for (key, value) in wanted {
            let mut path = path.to_vec();
            path.push(key.clone());
            let array = format!("ARRAY[{}]::text[]", vec!["?"; path.len()].join(", "));
            let at = |params: &mut Vec<Param>| params.extend(path.iter().cloned().map(Param::Text));
            let mut params = Vec::new();
            let sql = match value {
                Value::Object(inner) => {
                    at(&mut params);
                    where_.push(format!("json_typeof({column} #> {array}) = 'object'"), params);
                    walk(column, &path, inner, where_);
                    continue;
                }
                Value::Null => {
                    at(&mut params);
                    format!("json_typeof({column} #> {array}) = 'null'")
                }
                Value::Bool(flag) => {
                    at(&mut params);
                    at(&mut params);
                    format!("json_typeof({column} #> {array}) = 'boolean' AND {column} #>> {array} = '{flag}'")
                }
                Value::Number(number) => {
                    at(&mut params);
                    at(&mut params);
                    params.push(Param::Real(number.as_f64().unwrap_or(f64::NAN)));
                    format!("json_typeof({column} #> {array}) = 'number' AND ({column} #>> {array})::float8 = ?")
                }
                Value::String(text) => {
                    at(&mut params);
                    at(&mut params);
                    params.push(Param::Text(text.clone()));
                    format!("json_typeof({column} #> {array}) = 'string' AND {column} #>> {array} = ?")
                }
                Value::Array(_) => {
                    at(&mut params);
                    at(&mut params);
                    params.push(Param::Text(value.to_string()));
                    format!("json_typeof({column} #> {array}) = 'array' AND ({column} #> {array})::jsonb = (?::text)::jsonb")
                }
            };
            where_.push(sql, params);
        }
    }
    walk(column, &[], wanted, where_);
}


/// Which threads a query selects (the thread is `t`).
pub(super) fn thread_where(dialect: Dialect, query: &ThreadQuery) -> Where {
    let mut where_ = Where::default();
    if let Some(ids) = &query.ids {
        if ids.is_empty() {
            where_.push("FALSE".to_string(), []);
        } else {
            where_.push(format!("t.thread_id IN ({})", vec!["?"; ids.len()].join(", ")), ids.iter().copied().map(Param::Uuid));
        }
    }
    if let Some(status) = query.status {
        where_.push("t.status = ?".to_string(), [Param::Text(status.as_str().to_string())]);
    }
    if let Some(metadata) = &query.metadata {
        compile_containment(dialect, "t.metadata", metadata, Some(THREAD_META), &mut where_);
    }
    if let Some(values) = &query.values {
        where_.push(r#"t."values" IS NOT NULL"#.to_string(), []);
        compile_containment(dialect, r#"t."values""#, values, None, &mut where_);
    }
    if let Some(filter) = &query.auth {
        let mut params = Vec::new();
        let sql = compile_filter(dialect, filter, THREAD_META, &mut params);
        where_.push(sql, params);
    }
    where_
}

/// Which assistants a query selects (the assistant is `t`).
pub(super) fn assistant_where(dialect: Dialect, query: &AssistantQuery) -> Where {
    let mut where_ = Where::default();
    if let Some(graph_id) = &query.graph_id {
        where_.push("t.graph_id = ?".to_string(), [Param::Text(graph_id.clone())]);
    }
    if let Some(name) = &query.name {
        let found = match dialect {
            Dialect::Sqlite => "instr(lower(t.name), lower(?)) > 0",
            Dialect::Postgres => "strpos(lower(t.name), lower(?)) > 0",
        };
        where_.push(found.to_string(), [Param::Text(name.clone())]);
    }
    if let Some(metadata) = &query.metadata {
        compile_containment(dialect, "t.metadata", metadata, Some(ASSISTANT_META), &mut where_);
    }
    if let Some(filter) = &query.auth {
        let mut params = Vec::new();
        let sql = compile_filter(dialect, filter, ASSISTANT_META, &mut params);
        where_.push(sql, params);
    }
    where_
}

/// Which crons a query selects (the cron is `t`, its thread `th`).
pub(super) fn cron_where(dialect: Dialect, query: &CronQuery) -> Where {
    let mut where_ = Where::default();
    if let Some(assistant_id) = query.assistant_id {
        where_.push("t.assistant_id = ?".to_string(), [Param::Uuid(assistant_id)]);
    }
    if let Some(thread_id) = query.thread_id {
        where_.push("t.thread_id = ?".to_string(), [Param::Uuid(thread_id)]);
    }
    if let Some(enabled) = query.enabled {
        where_.push(format!("t.enabled = {}", if enabled { "TRUE" } else { "FALSE" }), []);
    }
    if let Some(metadata) = &query.metadata {
        compile_containment(dialect, "t.metadata", metadata, Some(CRON_META), &mut where_);
    }
    if let Some(filter) = &query.auth {
        let mut params = Vec::new();
        let sql = compile_filter(dialect, filter, CRON_META, &mut params);
        where_.push(sql, params);
    }
    if let Some(filter) = &query.thread_auth {
        let mut params = Vec::new();
        let on_thread = compile_filter(dialect, filter, CRON_THREAD_META, &mut params);
        let gone_passes = if filter.matches(&Map::new()) { "TRUE" } else { "FALSE" };
        where_.push(
            format!(
                "(t.thread_id IS NULL OR EXISTS (SELECT 1 FROM threads th WHERE th.thread_id = t.thread_id AND {on_thread}) \
                 OR (NOT EXISTS (SELECT 1 FROM threads th WHERE th.thread_id = t.thread_id) AND {gone_passes}))"
            ),
            params,
        );
    }
    where_
}

/// The column a thread search sorts by.
pub(super) fn thread_sort_column(sort_by: ThreadSortBy) -> &'static str {
    match sort_by {
        ThreadSortBy::ThreadId => "t.thread_id",
        ThreadSortBy::Status => "t.status",
        ThreadSortBy::CreatedAt => "t.created_at",
        ThreadSortBy::UpdatedAt => "t.updated_at",
        ThreadSortBy::StateUpdatedAt => "t.state_updated_at",
    }
}

/// The column an assistant search sorts by (names case-insensitively).
pub(super) fn assistant_sort_column(sort_by: AssistantSortBy) -> &'static str {
    match sort_by {
        AssistantSortBy::AssistantId => "t.assistant_id",
        AssistantSortBy::CreatedAt => "t.created_at",
        AssistantSortBy::UpdatedAt => "t.updated_at",
        AssistantSortBy::Name => "lower(t.name)",
        AssistantSortBy::GraphId => "lower(t.graph_id)",
    }
}

/// The column a cron search sorts by.
pub(super) fn cron_sort_column(sort_by: CronSortBy) -> &'static str {
    match sort_by {
        CronSortBy::CronId => "t.cron_id",
        CronSortBy::AssistantId => "t.assistant_id",
        CronSortBy::ThreadId => "t.thread_id",
        CronSortBy::NextRunDate => "t.next_run_date",
        CronSortBy::EndTime => "t.end_time_micros",
        CronSortBy::CreatedAt => "t.created_at",
        CronSortBy::UpdatedAt => "t.updated_at",
    }
}
