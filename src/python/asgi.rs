//! The user's `http.app` on the interpreter (python/graphward/asgi.py): a request goes in
//! whole, the response comes back as the app sends it — its start, then body chunks — over a
//! channel, so streaming responses stream. Dropping the call before the app finished (the
//! client left) cancels its Task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::Stream;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use tokio::sync::mpsc;

use super::{PythonError, PythonHost, convert};

/// An HTTP request for the app (the ASGI scope's parts).
#[derive(Debug, Clone)]
pub struct AsgiRequest {
    pub method: String,
    /// Percent-decoded, with the mount prefix (the scope's `root_path`) in front.
    pub path: String,
    pub raw_path: Vec<u8>,
    pub query: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub root_path: String,
    pub client: Option<(String, u16)>,
    /// The authenticated user (`langgraph_auth_user`'s fields), when the app's routes are
    /// authenticated.
    pub user: Option<serde_json::Value>,
    /// Set when more of the body follows the first part, through [`PythonHost::feed_http_body`].
    pub body_id: Option<u64>,
}

/// What the app sent.
#[derive(Debug)]
pub enum AsgiMessage {
    Start { status: u16, headers: Vec<(Vec<u8>, Vec<u8>)> },
    Body(Bytes),
    /// The last body message (`more_body` false): the response is complete.
    End,
}

/// A route of the app's router, for graphward's routing (see `server/custom.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRoute {
    pub path: String,
    /// `None`: any method.
    pub methods: Option<Vec<String>>,
    /// A mount (everything under `path`).
    pub prefix: bool,
}

/// Receives the app's `send` messages on the interpreter thread.
#[pyclass(frozen)]
struct AsgiSink {
    sender: mpsc::UnboundedSender<AsgiMessage>,
    /// Body bytes sent and not yet taken by the client (the app's `send` waits above a window).
    pending: Arc<AtomicUsize>,
}

#[pymethods]
impl AsgiSink {
    fn start(&self, status: u16, headers: Vec<(Vec<u8>, Vec<u8>)>) {
        let _ = self.sender.send(AsgiMessage::Start { status, headers });
    }

    fn body(&self, chunk: Vec<u8>) {
        self.pending.fetch_add(chunk.len(), Ordering::AcqRel);
        let _ = self.sender.send(AsgiMessage::Body(Bytes::from(chunk)));
    }

    fn finish(&self) {
        let _ = self.sender.send(AsgiMessage::End);
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

type Done = Pin<Box<dyn Future<Output = Result<(), PythonError>> + Send>>;

/// One request being served by the app.
pub struct AsgiCall {
    messages: mpsc::UnboundedReceiver<AsgiMessage>,
    pending: Arc<AtomicUsize>,
    done: Option<Done>,
    outcome: Option<Result<(), PythonError>>,
    /// Cancels the app's Task if the call is dropped before it finished.
    guard: CancelGuard,
}

struct CancelGuard {
    host: PythonHost,
    token: u64,
    finished: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.host.cancel(self.token);
        }
    }
}

impl AsgiCall {
    /// The next message, or `None` once the app finished and sent nothing more.
    pub async fn next_message(&mut self) -> Option<AsgiMessage> {
        loop {
            let Some(done) = self.done.as_mut() else { return self.messages.try_recv().ok() };
            tokio::select! {
                biased;
                message = self.messages.recv() => return message,
                outcome = done => {
                    // Everything the app sent is queued before its call returns.
                    self.done = None;
                    self.guard.finished = true;
                    self.outcome = Some(outcome);
                }
            }
        }
    }

    /// Why the app ended without (more of) a response.
    pub async fn failure(mut self) -> String {
        while self.done.is_some() {
            let _ = self.next_message().await;
        }
        match self.outcome {
            Some(Err(error)) => error.to_string(),
            _ => "the app sent no response".to_string(),
        }
    }

    /// The rest of the body, as the app sends it. An app that fails or returns before its
    /// last body message ends the stream with an error, so the client sees an incomplete
    /// response (the connection is closed without the final chunk), never a complete one.
    pub fn into_body(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |call| async move {
            let mut call = call?;
            loop {
                match call.next_message().await {
                    Some(AsgiMessage::Body(chunk)) => {
                        call.pending.fetch_sub(chunk.len(), Ordering::AcqRel);
                        return Some((Ok(chunk), Some(call)));
                    }
                    Some(AsgiMessage::Start { .. }) => {}
                    Some(AsgiMessage::End) => {
                        // Anything after the end is not the client's; the app may still run.
                        return None;
                    }
                    None => {
                        let why = match &call.outcome {
                            Some(Err(error)) => error.to_string(),
                            _ => "the app stopped before the end of its response".to_string(),
                        };
                        tracing::warn!(error = %why, "http.app response cut short");
                        return Some((Err(std::io::Error::other(why)), None));
                    }
                }
            }
        })
    }
}

impl PythonHost {
    /// Runs the lifespan shut-down of `http.app` (when there is one), at server stop.
    pub async fn stop_http_app(&self) {
        let stopped = self
            .call(
                |host| {
                    let py = host.py();
                    match py.import(pyo3::intern!(py, "graphward_asgi")) {
                        Ok(asgi) => asgi.getattr(pyo3::intern!(py, "shutdown"))?.call0(),
                        // No `http.app`: nothing to stop.
                        Err(_) => Ok(py.None().into_bound(py)),
                    }
                },
                |_| Ok(()),
            )
            .await;
        if let Err(error) = stopped {
            tracing::warn!(%error, "http.app's shut-down failed");
        }
    }

    /// A new id for a request body fed in parts.
    pub fn next_body_id(&self) -> u64 {
        self.next_token.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Hands the app the next part of body `body_id`; completes once the app has room for it.
    /// `false`: the request is over, stop feeding.
    pub async fn feed_http_body(&self, body_id: u64, chunk: Bytes, more: bool) -> bool {
        let fed = self
            .call(
                move |host| {
                    let py = host.py();
                    let asgi = py.import(pyo3::intern!(py, "graphward_asgi"))?;
                    asgi.getattr(pyo3::intern!(py, "feed"))?.call1((body_id, PyBytes::new(py, &chunk), more))
                },
                |value| value.extract::<bool>(),
            )
            .await;
        fed.unwrap_or(false)
    }

    /// Serves `request` (with the first part of its body) through the user's `http.app`.
    pub fn serve_http(&self, request: AsgiRequest, body: Bytes) -> AsgiCall {
        let (sender, messages) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let sink_pending = Arc::clone(&pending);
        let (token, done) = self.call_cancellable(
            move |host| {
                let py = host.py();
                let asgi = py.import(pyo3::intern!(py, "graphward_asgi"))?;
                let scope = PyDict::new(py);
                scope.set_item("method", &request.method)?;
                scope.set_item("path", &request.path)?;
                scope.set_item("raw_path", PyBytes::new(py, &request.raw_path))?;
                scope.set_item("query", PyBytes::new(py, &request.query))?;
                let headers = PyList::empty(py);
                for (name, value) in &request.headers {
                    headers.append((PyBytes::new(py, name), PyBytes::new(py, value)))?;
                }
                scope.set_item("headers", headers)?;
                scope.set_item("root_path", &request.root_path)?;
                scope.set_item("client", request.client.clone())?;
                scope.set_item("server", py.None())?;
                let user = request.user.as_ref().map(|user| convert::json_to_py(py, user)).transpose()?;
                scope.set_item("user", user)?;
                scope.set_item("body_id", request.body_id)?;
                let sink = Bound::new(py, AsgiSink { sender, pending: sink_pending })?;
                asgi.getattr(pyo3::intern!(py, "serve"))?.call1((scope, PyBytes::new(py, &body), sink))
            },
            |_| Ok(()),
        );
        AsgiCall { messages, pending, done: Some(Box::pin(done)), outcome: None, guard: CancelGuard { host: self.clone(), token, finished: false } }
    }
}
