//! The async bridge: tokio tasks await Python coroutines without ever taking the GIL.
//!
//! A caller pushes a [`Job`] onto a queue and awaits a oneshot channel. The interpreter thread
//! is woken through an eventfd that its asyncio loop watches (`loop.add_reader`), but only when
//! the queue goes from empty to non-empty, so a burst of calls costs one wake-up. The loop
//! thread drains the queue; for each job it builds the Python object (usually a coroutine).
//! Short calls ([`eager_job`]) run the coroutine's first step at once, from Rust, in a fresh
//! `contextvars` context, and only make a Task if it suspends (`perf-baseline.md` §7); long
//! calls ([`submit_job`]) are Tasks from the start (`host.submit`). The result is converted to
//! Rust data on the loop thread and sent back through the oneshot.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

/// Work for the interpreter thread. It receives the `graphward.host` module.
pub(crate) type Job = Box<dyn for<'py> FnOnce(&Bound<'py, PyModule>) + Send>;

/// A completion callback: receives the Python result on the loop thread.
type Completion = Box<dyn for<'py> FnOnce(PyResult<Bound<'py, PyAny>>) + Send>;

/// The queue shared by tokio tasks (producers) and the interpreter thread (the one consumer).
pub(crate) struct Bridge {
    /// Pending jobs. A std mutex: sections are a push or a swap, never an await.
    jobs: Mutex<VecDeque<Job>>,
    /// True while a wake-up is outstanding; producers write the eventfd only on false → true.
    wake_pending: AtomicBool,
    /// The eventfd the asyncio loop watches.
    wake_fd: OwnedFd,
    /// Set once the loop has stopped; later calls fail fast instead of waiting forever.
    stopped: AtomicBool,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Bridge").field("wake_fd", &self.wake_fd).field("stopped", &self.stopped).finish_non_exhaustive()
    }
}

impl Bridge {
    pub(crate) fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        #[expect(unsafe_code, reason = "eventfd(2) has no safe wrapper in std")]
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        #[expect(unsafe_code, reason = "taking ownership of a raw descriptor")]
        let wake_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { jobs: Mutex::new(VecDeque::new()), wake_pending: AtomicBool::new(false), wake_fd, stopped: AtomicBool::new(false) })
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.wake_fd.as_raw_fd()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
        // Drop queued jobs: their oneshot senders close, so their callers see `Stopped`.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Queues a job and wakes the loop if it is not already due to drain.
    pub(crate) fn push(&self, job: Job) {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).push_back(job);
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            #[expect(unsafe_code, reason = "write(2) on the eventfd")]
            let written = unsafe { libc::write(self.raw_fd(), (&raw const one).cast(), 8) };
            debug_assert_eq!(written, 8, "eventfd write failed");
        }
    }

    /// Takes every queued job. Runs on the loop thread.
    fn take(&self) -> VecDeque<Job> {
        let mut counter: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an eventfd we own (non-blocking).
        #[expect(unsafe_code, reason = "read(2) on the eventfd")]
        let _ = unsafe { libc::read(self.raw_fd(), (&raw mut counter).cast(), 8) };
        // Clear the flag before taking: a job pushed after this point either lands in this
        // batch or writes the eventfd again, so none is left behind.
        self.wake_pending.store(false, Ordering::Release);
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The `loop.add_reader` callback that drains the queue on the loop thread.
    pub(crate) fn drain_callback<'py>(self: &Arc<Self>, host: &Bound<'py, PyModule>) -> PyResult<Bound<'py, PyCFunction>> {
        let bridge = Arc::clone(self);
        let host_ref: Py<PyModule> = host.clone().unbind();
        PyCFunction::new_closure(host.py(), Some(c"graphward_drain"), None, move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| {
            let host = host_ref.bind(args.py());
            for job in bridge.take() {
                job(host);
            }
        })
    }
}

/// Builds a job that hands the object `make` returns to `host.submit` (a coroutine becomes a
/// Task from the start, in a fresh `contextvars` context) and the result to `complete` on the
/// loop thread. For long calls (runs) whose code may need a current Task from its first line.
/// `token` (non-zero) lets [`cancel_job`] cancel the call if it outlives its caller.
pub(crate) fn submit_job<M, C>(token: u64, make: M, complete: C) -> Job
where
    M: for<'py> FnOnce(&Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
    C: for<'py> FnOnce(PyResult<Bound<'py, PyAny>>) + Send + 'static,
{
    Box::new(move |host| match make(host) {
        Ok(obj) => hand_over(host, complete, |reply| host.getattr(pyo3::intern!(host.py(), "submit"))?.call1((obj, reply, token))),
        Err(error) => complete(Err(error)),
    })
}

/// Builds a job for short calls (auth dispatch, graph queries) that does the eager first step
/// here, in Rust: `make` returns a coroutine (or a plain result), whose first step runs at once
/// in a fresh `contextvars` context (`PyIter_Send`). If it returns, the result goes straight
/// to `complete`, with no Python-level wrapper, reply object or exception in between. If it
/// suspends, the rest becomes a Task in the same context (`host.continue_task`). If that
/// first step fails because a library needs a current Task (httpx/anyio do), `make` is called
/// again and the new coroutine runs as a Task from the start (`host.submit`).
pub(crate) fn eager_job<M, C>(token: u64, make: M, complete: C) -> Job
where
    M: for<'py> Fn(&Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
    C: for<'py> FnOnce(PyResult<Bound<'py, PyAny>>) + Send + 'static,
{
    Box::new(move |host| {
        let py = host.py();
        let coroutine = match make(host) {
            Ok(coroutine) => coroutine,
            Err(error) => return complete(Err(error)),
        };
        match first_step(&coroutine) {
            Step::Returned(value) => complete(Ok(value)),
            Step::NotCoroutine => complete(Ok(coroutine)),
            Step::Failed(error) => {
                let needs_task = host.getattr(pyo3::intern!(py, "_needs_task")).and_then(|check| check.call1((error.value(py),))).and_then(|answer| answer.is_truthy());
                if needs_task.unwrap_or(false) {
                    hand_over(host, complete, |reply| host.getattr(pyo3::intern!(py, "submit"))?.call1((make(host)?, reply, token)));
                } else {
                    complete(Err(error));
                }
            }
            Step::Suspended { yielded, context } => {
                hand_over(host, complete, |reply| host.getattr(pyo3::intern!(py, "continue_task"))?.call1((coroutine, yielded, reply, token, context)));
            }
        }
    })
}

/// Gives the rest of a call to Python (`start`) with a `Reply` that fires `complete`; if
/// `start` fails, the reply fires with the error.
fn hand_over<'py, C, S>(host: &Bound<'py, PyModule>, complete: C, start: S)
where
    C: for<'a> FnOnce(PyResult<Bound<'a, PyAny>>) + Send + 'static,
    S: FnOnce(&Bound<'py, Reply>) -> PyResult<Bound<'py, PyAny>>,
{
    match Bound::new(host.py(), Reply { complete: Mutex::new(Some(Box::new(complete))) }) {
        Ok(reply) => {
            if let Err(error) = start(&reply) {
                reply.borrow().fire(Err(error));
            }
        }
        Err(error) => tracing::error!(%error, "cannot create a bridge reply"),
    }
}

/// The outcome of a coroutine's first step.
enum Step<'py> {
    Returned(Bound<'py, PyAny>),
    Suspended { yielded: Bound<'py, PyAny>, context: Bound<'py, PyAny> },
    Failed(PyErr),
    /// Not a coroutine: the object is the result.
    NotCoroutine,
}

/// Runs the first step of `coroutine` in a fresh `contextvars.Context`.
fn first_step<'py>(coroutine: &Bound<'py, PyAny>) -> Step<'py> {
    let py = coroutine.py();
    // SAFETY: the GIL is held (we have a `Bound`); every pointer passed is a live object, and
    // every new reference returned is checked for NULL and owned by a `Bound` at once.
    #[expect(unsafe_code, reason = "PyIter_Send and the contextvars C API have no pyo3 wrapper")]
    unsafe {
        if !capi::is_coroutine(coroutine.as_ptr()) {
            return Step::NotCoroutine;
        }
        let context = match Bound::from_owned_ptr_or_err(py, capi::PyContext_New()) {
            Ok(context) => context,
            Err(error) => return Step::Failed(error),
        };
        if capi::PyContext_Enter(context.as_ptr()) != 0 {
            return Step::Failed(PyErr::fetch(py));
        }
        let mut out = std::ptr::null_mut();
        let sent = pyo3::ffi::PyIter_Send(coroutine.as_ptr(), pyo3::ffi::Py_None(), &raw mut out);
        // Exiting cannot fail here: this thread entered `context` just above.
        // `into_value` attaches the fetched traceback to the exception (`__traceback__`), where
        // error reports read it.
        let error = if matches!(sent, pyo3::ffi::PySendResult::PYGEN_ERROR) { Some(PyErr::from_value(PyErr::fetch(py).into_value(py).into_bound(py).into_any())) } else { None };
        capi::PyContext_Exit(context.as_ptr());
        match (sent, error) {
            (_, Some(error)) => Step::Failed(error),
            (pyo3::ffi::PySendResult::PYGEN_RETURN, None) => Step::Returned(Bound::from_owned_ptr(py, out)),
            (_, None) => Step::Suspended { yielded: Bound::from_owned_ptr(py, out), context },
        }
    }
}

/// The C API the eager first step needs beyond what pyo3 offers. The full build takes it from
/// pyo3's bindings; the abi3 build (the wheel: one for CPython 3.10–3.13) declares it here,
/// since `contextvars` and the coroutine type are outside the limited API. These are public,
/// documented functions and a public type object, exported with the same signatures by
/// every CPython since 3.7.
#[expect(unsafe_code, reason = "C API declarations")]
mod capi {
    use pyo3::ffi::PyObject;

    #[cfg(not(Py_LIMITED_API))]
    pub(super) use pyo3::ffi::{PyContext_Enter, PyContext_Exit, PyContext_New};

    #[cfg(Py_LIMITED_API)]
    unsafe extern "C" {
        pub(super) fn PyContext_New() -> *mut PyObject;
        pub(super) fn PyContext_Enter(context: *mut PyObject) -> std::os::raw::c_int;
        pub(super) fn PyContext_Exit(context: *mut PyObject) -> std::os::raw::c_int;
        static mut PyCoro_Type: pyo3::ffi::PyTypeObject;
    }

    /// `PyCoro_CheckExact`: exactly a native coroutine.
    ///
    /// # Safety
    /// The GIL is held and `object` is a live object.
    pub(super) unsafe fn is_coroutine(object: *mut PyObject) -> bool {
        #[cfg(not(Py_LIMITED_API))]
        // SAFETY: the caller's guarantee.
        unsafe {
            pyo3::ffi::PyCoro_CheckExact(object) != 0
        }
        #[cfg(Py_LIMITED_API)]
        // SAFETY: the caller's guarantee; only the address of the type object is taken.
        unsafe {
            std::ptr::eq(pyo3::ffi::Py_TYPE(object), &raw mut PyCoro_Type)
        }
    }
}

/// A job that cancels the call submitted with `token`, if it is still running.
pub(crate) fn cancel_job(token: u64) -> Job {
    Box::new(move |host| {
        if let Err(error) = host.getattr("cancel").and_then(|cancel| cancel.call1((token,))) {
            tracing::error!(%error, "cannot cancel a timed-out Python call");
        }
    })
}

/// The callable Python receives as `reply(ok, value)`. Fires its completion at most once.
#[pyclass(frozen)]
struct Reply {
    complete: Mutex<Option<Completion>>,
}

impl Reply {
    fn fire(&self, result: PyResult<Bound<'_, PyAny>>) {
        let complete = self.complete.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(complete) = complete {
            complete(result);
        }
    }
}

#[pymethods]
impl Reply {
    fn __call__(&self, ok: bool, value: Bound<'_, PyAny>) {
        self.fire(if ok { Ok(value) } else { Err(PyErr::from_value(value)) });
    }
}
