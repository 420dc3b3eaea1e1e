//! SQL both backends build alike: a WHERE clause under construction ([`Where`], `?`
//! placeholders and neutral [`Param`]s; Postgres numbers them) and auth filters compiled to
//! `EXISTS` lookups on the metadata side tables ([`compile_filter`]: one row per top-level key
//! and per list element, canonical JSON text under Python equality, `canonical.rs`).

use uuid::Uuid;

use super::canonical::canonical;
use crate::auth::Filter;
use crate::auth::filter::Clause;

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
pub(super) fn compile_filter(filter: &Filter, meta: MetaTable, params: &mut Vec<Param>) -> String {
    let MetaTable { table, id, alias } = meta;
    if filter.clauses.is_empty() {
        return "TRUE".to_string();
    }
    let parts: Vec<String> = filter
        .clauses
        .iter()
        .map(|clause| match clause {
            Clause::Eq { key, value } => {
                params.push(Param::Text(key.clone()));
                params.push(Param::Text(canonical(value)));
                format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.canon = ? AND m.elem = 0)")
            }
            Clause::Contains { key, values } if values.is_empty() => {
                params.push(Param::Text(key.clone()));
                format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.elem = 0 AND substr(m.canon, 1, 1) = '[')")
            }
            Clause::Contains { key, values } => values
                .iter()
                .map(|value| {
                    params.push(Param::Text(key.clone()));
                    params.push(Param::Text(canonical(value)));
                    format!("EXISTS (SELECT 1 FROM {table} m WHERE m.{id} = {alias}.{id} AND m.key = ? AND m.canon = ? AND m.elem = 1)")
                })
                .collect::<Vec<_>>()
                .join(" AND "),
            Clause::Or(groups) => format!("({})", groups.iter().map(|group| compile_filter(group, meta, params)).collect::<Vec<_>>().join(" OR ")),
            Clause::And(groups) => format!("({})", groups.iter().map(|group| compile_filter(group, meta, params)).collect::<Vec<_>>().join(" AND ")),
        })
        .collect();
    format!("({})", parts.join(" AND "))
}

