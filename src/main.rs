//! The `graphward` binary: CPython embedded (see `graphward::cli`).

use std::process::ExitCode;

/// mimalloc for Rust's allocations (Python keeps its own allocators): under load glibc's malloc
/// took about 15% of the workers' time, much of it futex waits on its arena locks. Built with
/// arenas committed on demand (`.cargo/config.toml`), which keeps peak RSS where glibc had it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    graphward::cli::main(std::env::args_os().collect(), graphward::cli::Hosting::Embedded)
}
