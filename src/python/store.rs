//! The graphs' LangGraph `BaseStore`, in Rust: `runner.py`'s store sends each `batch` here as
//! JSON and it runs through [`crate::store::batch`] on the storage the HTTP API uses, so one
//! implementation (one SQLite library, one writer) holds the store whichever path writes it.

use pyo3::prelude::*;

use crate::storage::StorageHandle;
use crate::store::{self, StoreError};
use crate::timestamp::now_micros;

/// The storage the graphs' store uses, and the runtime its calls are driven on (the
/// interpreter thread is not a tokio thread: it blocks on each call, the GIL released).
#[derive(Debug, Clone)]
pub struct StoreBackend {
    pub storage: StorageHandle,
    pub runtime: tokio::runtime::Handle,
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
            let outcome = serde_json::from_str::<Vec<store::Operation>>(operations)
                .map_err(|error| StoreError::Invalid(format!("malformed store operation: {error}")))
                .and_then(|operations| self.backend.runtime.block_on(store::batch(&*self.backend.storage, operations, now_micros())));
            match outcome {
                Ok(results) => ("ok", serde_json::Value::Array(results).to_string()),
                Err(error) => (error.kind(), error.to_string()),
            }
        })
    }
}
