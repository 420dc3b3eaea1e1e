//! The graphs' LangGraph `BaseStore`, in Rust: `runner.py`'s store sends each `batch` here as
//! JSON and it runs through [`crate::store::batch`] on the storage the HTTP API uses, so one
//! implementation (one SQLite library, one writer) holds the store whichever path writes it.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::storage::Storage;
use crate::store::{self, StoreError};
use crate::timestamp::now_micros;

#[pyclass(frozen)]
pub(super) struct NativeStore {
    storage: Arc<dyn Storage>,
}

impl NativeStore {
    pub(super) fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
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
                .and_then(|operations| store::batch(self.storage.as_ref(), operations, now_micros()));
            match outcome {
                Ok(results) => ("ok", serde_json::Value::Array(results).to_string()),
                Err(error) => (error.kind(), error.to_string()),
            }
        })
    }
}
