//! The graphs' LangGraph `BaseStore`, in Rust: `runner.py`'s store sends each `batch` here as
//! JSON and it runs through [`crate::store::batch`] on the storage the HTTP API uses, so one
//! implementation (one SQLite library, one writer) holds the store whichever path writes it.

use pyo3::prelude::*;

use crate::config::StoreSpec;
use crate::storage::StorageHandle;
use crate::store::{self, StoreError};
use crate::timestamp::now_micros;

/// The storage the graphs' store uses, and the runtime its calls are driven on (the
/// interpreter thread is not a tokio thread: it blocks on each call, the GIL released).
#[derive(Debug, Clone)]
pub struct StoreBackend {
    pub storage: StorageHandle,
    pub runtime: tokio::runtime::Handle,
    /// `langgraph.json`'s `store` (index fields and dims, ttl defaults).
    pub spec: std::sync::Arc<StoreSpec>,
}

#[pyclass(frozen)]
pub(super) struct NativeStore {
    backend: StoreBackend,
}

impl NativeStore {
    pub(super) fn new(backend: StoreBackend) -> Self {
        Self { backend }
    }
}

#[pymethods]
impl NativeStore {
    /// `batch(operations_json)` → `("ok", results_json)`, or `(kind, message)` for the Python
    /// side to raise (`namespace`, `filter`, `invalid`, `storage`). The storage call runs with
    /// the GIL released; the asyncio loop waits for it as it waited for `sqlite3` before.
    fn batch(&self, py: Python<'_>, operations: &str) -> (&'static str, String) {
        py.detach(|| {
            let outcome = parse(operations).and_then(|operations| self.backend.runtime.block_on(store::batch(&*self.backend.storage, &self.backend.spec, operations, now_micros())));
            answer(outcome)
        })
    }

    /// `plan(operations_json)` → `("ok", texts_json)`: per operation, the texts to embed
    /// before `batch` (see [`store::plan`]), or `(kind, message)`. Touches no storage.
    fn plan(&self, operations: &str) -> (&'static str, String) {
        answer(parse(operations).and_then(|operations| store::plan(&self.backend.spec, &operations)))
    }

    /// `store.ttl` as LangGraph's `TTLConfig` JSON, for the graphs' `BaseStore` to resolve
    /// per-call defaults the way LangGraph does.
    fn ttl_config(&self) -> String {
        let ttl = &self.backend.spec.ttl;
        serde_json::json!({"refresh_on_read": ttl.refresh_on_read, "default_ttl": ttl.default_ttl, "sweep_interval_minutes": ttl.sweep_interval_minutes}).to_string()
    }
}

fn parse(operations: &str) -> Result<Vec<store::Operation>, StoreError> {
    serde_json::from_str::<Vec<store::Operation>>(operations).map_err(|error| StoreError::Invalid(format!("malformed store operation: {error}")))
}

fn answer(outcome: Result<Vec<serde_json::Value>, StoreError>) -> (&'static str, String) {
    match outcome {
        Ok(results) => ("ok", serde_json::Value::Array(results).to_string()),
        Err(error) => (error.kind(), error.to_string()),
    }
}
