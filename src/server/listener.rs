//! The accept loop: HTTP/1.1 connections with a cap, a header read timeout and an idle
//! timeout, so a client that opens connections and stops sending cannot hold the server.
//!
//! - At most `max_connections` connections are served at once; at the cap the loop stops
//!   accepting until one closes (new clients wait in the kernel's backlog).
//! - A request's headers must arrive within `header_timeout` of the connection (or of the
//!   previous response, on a kept-alive connection), else hyper closes it: this is also how
//!   long an idle kept-alive connection stays open.
//! - A connection on which no byte moves in either direction for `idle_timeout` is shut down
//!   (a stalled body upload, a client that stops reading). Streams and waits write a
//!   heartbeat every 5 s, so they are never idle.
//! - On shutdown the loop stops accepting, every connection finishes its request in flight
//!   and closes, and after `DRAIN` whatever is left is dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How long shutdown waits for open connections before dropping them.
const DRAIN: Duration = Duration::from_secs(10);

/// Connection and request limits of the listener (and the pre-authentication body limit the
/// auth gate applies). Every field has a flag and an environment variable (README).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a request's headers to arrive (and for a kept-alive connection to stay idle).
    pub header_timeout: Duration,
    /// Time a connection may go without moving a byte.
    pub idle_timeout: Duration,
    /// Body bytes a request may send before it is authenticated.
    pub preauth_body_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: 1024, header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60), preauth_body_limit: 64 * 1024 }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module doc).
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // No Nagle delay: streamed bodies (SSE, `/wait`) are written in several small pieces,
        // and Nagle plus the client's delayed ACK would hold each back ~40 ms.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let (app, stopped) = (app.clone(), stopped.clone());
        tokio::spawn(async move {
            connection(stream, peer, app, limits, stopped).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
    Ok(())
}

/// One connection, until it closes, idles out, or the server stops.
async fn connection(stream: TcpStream, peer: SocketAddr, app: Router, limits: Limits, mut stopped: watch::Receiver<bool>) {
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched { inner: stream, started, activity: Arc::clone(&activity) });
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(tower_service_call(app, request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let connection = builder.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    // Set once the connection was asked to finish: if it then stays silent for another idle
    // period, it is dropped.
    let mut closing_since: Option<Instant> = None;
    loop {
        let last = Duration::from_micros(activity.load(Ordering::Relaxed));
        let quiet_since = closing_since.map_or(started + last, |since| (started + last).max(since));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until((quiet_since + limits.idle_timeout).into()) => {
                if Duration::from_micros(activity.load(Ordering::Relaxed)) > last {
                    continue;
                }
                if closing_since.is_some() {
                    tracing::debug!(%peer, "idle connection dropped");
                    return;
                }
                tracing::debug!(%peer, "idle connection shut down");
                connection.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            changed = stopped.changed(), if closing_since.is_none() => {
                if changed.is_err() || *stopped.borrow() {
                    connection.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                }
            }
        }
    }
}

async fn tower_service_call(app: Router, request: hyper::Request<hyper::body::Incoming>) -> axum::response::Response {
    use tower_service::Service;
    let mut app = app;
    match app.call(request.map(axum::body::Body::new)).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// A stream that records when a byte last moved (µs since `started`).
struct Watched {
    inner: TcpStream,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.activity.store(micros, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
