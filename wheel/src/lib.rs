//! `graphward._native`: the server as an extension module, for the wheel. The console script
//! (`graphward`, from `wheel/python/graphward/__init__.py`) calls [`main`] with the command
//! line; the command runs exactly as the binary's does, except that it is hosted by the
//! interpreter that imported it (`Hosting::Extension`): that interpreter's version and
//! `sys.path` are the user's, and no `VIRTUAL_ENV` or libpython is needed.
//!
//! The calling thread gives up the GIL for the whole command: the interpreter thread that
//! graphward starts takes it to run its asyncio loop, and tokio's threads never wait for it.

use pyo3::prelude::*;

/// mimalloc for Rust's allocations, as in the binary (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the `graphward` command line `argv` (program name first); the exit code. `relaunch`
/// is how to start this command again (the interpreter and `-m graphward`).
#[pyfunction]
#[pyo3(signature = (argv, relaunch = None))]
fn main(py: Python<'_>, argv: Vec<String>, relaunch: Option<Vec<String>>) -> u8 {
    if let Some(command) = relaunch {
        graphward::cli::set_relaunch_command(command.into_iter().map(std::ffi::OsString::from).collect());
    }
    let args = argv.into_iter().map(std::ffi::OsString::from).collect();
    let code = py.detach(|| graphward::cli::main(args, graphward::cli::Hosting::Extension));
    exit_code(code)
}

/// `ExitCode` keeps its number private; the command's codes are 0, 1 and 2.
fn exit_code(code: std::process::ExitCode) -> u8 {
    [0u8, 1, 2].into_iter().find(|&known| std::process::ExitCode::from(known) == code).unwrap_or(1)
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(main, module)?)
}
