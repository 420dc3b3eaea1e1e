//! Conversions between Rust data and Python objects, on the interpreter thread.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::auth::{EventValue, RequestInfo};

/// JSON → Python (`dict`, `list`, `str`, `int`, `float`, `bool`, `None`).
pub(crate) fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                int.into_pyobject(py)?.into_any()
            } else if let Some(int) = number.as_u64() {
                int.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, number.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(entries) => {
            let dict = PyDict::new(py);
            for (key, item) in entries {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// An auth event value → Python, with `uuid.UUID` and `tuple` where the reference has them.
pub(crate) fn event_value_to_py<'py>(py: Python<'py>, value: &EventValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        EventValue::Json(json) => json_to_py(py, json)?,
        EventValue::Uuid(id) => py.import(pyo3::intern!(py, "uuid"))?.getattr(pyo3::intern!(py, "UUID"))?.call1((id.to_string(),))?,
        EventValue::Tuple(items) => PyTuple::new(py, items)?.into_any(),
        EventValue::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(event_value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        EventValue::Map(entries) => {
            let dict = PyDict::new(py);
            for (key, item) in entries {
                dict.set_item(key, event_value_to_py(py, item)?)?;
            }
            dict.into_any()
        }
        EventValue::Identity => py.import(pyo3::intern!(py, "graphward_auth"))?.getattr(pyo3::intern!(py, "IDENTITY"))?,
    })
}

/// Python → JSON. Dict keys become strings; tuples lists; anything JSON cannot hold
/// (`uuid.UUID`, `datetime`, custom objects) its `str()` (`isoformat()` for dates).
pub(crate) fn py_to_json(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(int) = value.extract::<i64>() {
            return Ok(Value::from(int));
        }
        if let Ok(int) = value.extract::<u64>() {
            return Ok(Value::from(int));
        }
        return Ok(Value::String(value.str()?.to_string()));
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        return Ok(Number::from_f64(float.value()).map_or(Value::Null, Value::Number));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::String(text.to_str()?.to_string()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut out = Map::new();
        for (key, item) in dict.iter() {
            let key = match key.cast::<PyString>() {
                Ok(text) => text.to_str()?.to_string(),
                Err(_) => key.str()?.to_string(),
            };
            out.insert(key, py_to_json(&item)?);
        }
        return Ok(Value::Object(out));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        return value.try_iter()?.map(|item| py_to_json(&item?)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Value::String(String::from_utf8_lossy(bytes.as_bytes()).into_owned()));
    }
    if value.hasattr(pyo3::intern!(value.py(), "isoformat"))? {
        return Ok(Value::String(value.call_method0("isoformat")?.str()?.to_string()));
    }
    Ok(Value::String(value.str()?.to_string()))
}

/// The request as the Python auth host reads it (an ASGI-scope-like dict).
pub(crate) fn request_to_py<'py>(py: Python<'py>, request: &RequestInfo) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item(pyo3::intern!(py, "method"), &request.method)?;
    dict.set_item(pyo3::intern!(py, "path"), &request.path)?;
    dict.set_item(pyo3::intern!(py, "raw_path"), PyBytes::new(py, request.raw_path.as_bytes()))?;
    dict.set_item(pyo3::intern!(py, "query_string"), PyBytes::new(py, request.query.as_bytes()))?;
    let headers = PyList::empty(py);
    // Also as a map by name (names are lower-case already; the last value wins), which the
    // auth host would otherwise build in Python on every request.
    let map = PyDict::new(py);
    for (name, value) in &request.headers {
        let name = PyBytes::new(py, name.as_bytes());
        let value = PyBytes::new(py, value);
        map.set_item(&name, &value)?;
        headers.append((name, value))?;
    }
    dict.set_item(pyo3::intern!(py, "headers"), headers)?;
    dict.set_item(pyo3::intern!(py, "header_map"), map)?;
    let address = |address: Option<std::net::SocketAddr>| address.map(|address| (address.ip().to_string(), address.port()));
    dict.set_item(pyo3::intern!(py, "client"), address(request.client))?;
    dict.set_item(pyo3::intern!(py, "server"), address(request.server))?;
    dict.set_item(pyo3::intern!(py, "scheme"), "http")?;
    dict.set_item(pyo3::intern!(py, "http_version"), "1.1")?;
    if let Some(user) = &request.acting_as {
        dict.set_item(pyo3::intern!(py, "acting_as"), json_to_py(py, &user.to_json())?)?;
    }
    Ok(dict)
}
