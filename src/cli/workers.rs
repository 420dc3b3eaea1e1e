//! `serve --workers N`: N processes, each with its own interpreter, serving one listening
//! socket and coordinating only through the shared database.
//!
//! The supervisor binds the address (so `--port 0` and a port in use behave as with one
//! process), leaves the socket open across `exec`, and starts N copies of its own command
//! line with `GRAPHWARD_LISTEN_FD` naming it; each worker accepts from that socket. A worker
//! that exits within [`STARTUP`] of its start failed to start (a broken `auth.py`, an
//! unreachable database): the others are stopped and its exit code is the supervisor's. One
//! that exits later is started again. SIGTERM or Ctrl-C stops every worker gracefully.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use crate::config::env_vars;

/// A worker that exits sooner than this after its start did not start.
const STARTUP: Duration = Duration::from_secs(20);

/// The listening socket a supervisor handed to this process, if any.
pub(super) fn inherited_listener() -> anyhow::Result<Option<std::net::TcpListener>> {
    let Some(fd) = std::env::var_os(env_vars::GRAPHWARD_LISTEN_FD) else { return Ok(None) };
    let fd: i32 = fd.to_str().and_then(|fd| fd.parse().ok()).ok_or_else(|| anyhow::anyhow!("{} must be a file descriptor number", env_vars::GRAPHWARD_LISTEN_FD))?;
    // SAFETY: the supervisor left this descriptor open for this process, which owns it from here.
    #[expect(unsafe_code, reason = "adopting an inherited socket")]
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Whether this process is a worker of a supervisor.
pub(super) fn is_worker() -> bool {
    std::env::var_os(env_vars::GRAPHWARD_LISTEN_FD).is_some()
}

/// Binds `host:port`, starts `workers` copies of `args` on it and supervises them until a
/// shutdown signal.
pub(super) fn supervise(args: &[OsString], host: &str, port: u16, workers: usize) -> anyhow::Result<ExitCode> {
    let address = format!("{host}:{port}");
    let listener = std::net::TcpListener::bind(&address).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("port {port} on {host} is already in use; stop the other server or pick another port with `--port`")
        } else {
            anyhow::anyhow!("cannot listen on {address}: {error}")
        }
    })?;
    let fd = listener.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns; clearing FD_CLOEXEC only.
    #[expect(unsafe_code, reason = "fcntl(2)")]
    let inheritable = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == 0;
    if !inheritable {
        anyhow::bail!("cannot hand the listening socket to the workers: {}", std::io::Error::last_os_error());
    }
    let local = listener.local_addr()?;
    tracing::info!(workers, "serving on http://{local} with {workers} worker processes");
    let start = |index: usize| -> anyhow::Result<(Child, Instant)> {
        let mut command = Command::new(&args[0]);
        command.args(&args[1..]).env(env_vars::GRAPHWARD_LISTEN_FD, fd.to_string()).env(env_vars::GRAPHWARD_WORKER, index.to_string());
        let child = command.spawn().map_err(|error| anyhow::anyhow!("cannot start worker {index} ({}): {error}", args[0].to_string_lossy()))?;
        Ok((child, Instant::now()))
    };
    let mut children = Vec::with_capacity(workers);
    for index in 0..workers {
        match start(index) {
            Ok(child) => children.push(child),
            Err(error) => {
                stop(&mut children);
                return Err(error);
            }
        }
    }
    let stopping = signal_flag()?;
    loop {
        if stopping.load(std::sync::atomic::Ordering::SeqCst) {
            stop(&mut children);
            tracing::info!("shut down");
            return Ok(ExitCode::SUCCESS);
        }
        for index in 0..children.len() {
            let Some(status) = children[index].0.try_wait()? else { continue };
            if children[index].1.elapsed() < STARTUP {
                tracing::error!(worker = index, %status, "a worker exited while starting; stopping the others");
                stop(&mut children);
                return Ok(ExitCode::from(u8::try_from(status.code().unwrap_or(2)).unwrap_or(2)));
            }
            tracing::warn!(worker = index, %status, "a worker exited; starting it again");
            children[index] = start(index)?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM to every worker, then waits for them (each drains its runs: `--shutdown-grace`).
fn stop(children: &mut [(Child, Instant)]) {
    for (child, _) in children.iter() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid.
            #[expect(unsafe_code, reason = "kill(2)")]
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    for (child, _) in children.iter_mut() {
        let _ = child.wait();
    }
}

/// Set once SIGTERM or SIGINT arrives (both are caught from before this returns).
fn signal_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut terminate, mut interrupt) = {
        let _inside = runtime.enter();
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?)
    };
    let set = std::sync::Arc::clone(&flag);
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
        });
        set.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    Ok(flag)
}
