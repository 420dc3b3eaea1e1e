//! The `graphward` command: CLI → config → tracing → serve. The only place `anyhow` is used.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use graphward::config::{AppConfig, env_vars};
use graphward::{Mode, StartOptions};
use graphward::storage::StorageConfig;
use tokio::net::TcpListener;

/// mimalloc for Rust's allocations (Python keeps its own allocators): under load glibc's malloc
/// took about 15% of the workers' time, much of it futex waits on its arena locks. Built with
/// arenas committed on demand (`.cargo/config.toml`), which keeps peak RSS where glibc had it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A LangGraph API server: runs your langgraph.json, auth.py and graphs unchanged.
#[derive(Debug, Parser)]
#[command(name = "graphward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Local development server, like `langgraph dev`: state kept next to langgraph.json.
    Dev(DevArgs),
    /// Production server.
    Serve(ServeArgs),
    /// Load langgraph.json and import the graphs without serving; exit non-zero on errors.
    Check(CheckArgs),
    /// Measure the auth round trip (authenticate + one `threads.read` handler) in µs per call.
    #[command(hide = true)]
    BenchAuth(BenchAuthArgs),
}

#[derive(Debug, Args)]
struct BenchAuthArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Calls to make (after 1,000 warm-up calls).
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// The `Authorization` header to send.
    #[arg(long, default_value = "Bearer user1-token")]
    authorization: String,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Path to langgraph.json.
    #[arg(long, short = 'c', default_value = "langgraph.json")]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct DevArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 2024)]
    port: u16,
    /// Accepted for compatibility with `langgraph dev`; graphward never opens a browser.
    #[arg(long)]
    no_browser: bool,
    /// Accepted for compatibility with `langgraph dev`; graphward does not reload on changes yet.
    #[arg(long)]
    no_reload: bool,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
struct StorageArgs {
    /// How many runs may execute at once (runs of one thread always run one at a time).
    #[arg(long, env = env_vars::GRAPHWARD_MAX_RUNS, default_value_t = 8)]
    max_runs: usize,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) lets executing runs finish; runs still executing
    /// then are stopped and queued again, and the next start runs them from the beginning.
    #[arg(long, env = env_vars::GRAPHWARD_SHUTDOWN_GRACE, default_value_t = 10.0)]
    shutdown_grace: f64,
    /// SQLite database file [default: .graphward/state.db next to langgraph.json].
    #[arg(long, env = env_vars::GRAPHWARD_DATABASE)]
    database: Option<PathBuf>,
}

/// Connection limits (README: "Limits").
#[derive(Debug, Args)]
struct LimitArgs {
    /// Connections served at once; at the cap new ones wait to be accepted.
    #[arg(long, env = env_vars::GRAPHWARD_MAX_CONNECTIONS, default_value_t = 1024)]
    max_connections: usize,
    /// Seconds for a request's headers to arrive (also how long an idle kept-alive connection stays open).
    #[arg(long, env = env_vars::GRAPHWARD_HEADER_TIMEOUT, default_value_t = 10.0)]
    header_timeout: f64,
    /// Seconds a connection may go without moving a byte before it is closed.
    #[arg(long, env = env_vars::GRAPHWARD_IDLE_TIMEOUT, default_value_t = 60.0)]
    idle_timeout: f64,
    /// Body bytes a request may send before it is authenticated (bigger bodies are read only after authentication).
    #[arg(long, env = env_vars::GRAPHWARD_PREAUTH_BODY_LIMIT, default_value_t = 65536)]
    preauth_body_limit: usize,
}

#[derive(Debug, Args)]
struct AuthArgs {
    /// Seconds one request's authentication and authorization may take; then 503.
    #[arg(long, env = env_vars::GRAPHWARD_AUTH_TIMEOUT, default_value_t = 10.0)]
    auth_timeout: f64,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Exit with code 1 when a resource/action pair has no auth handler.
    #[arg(long)]
    strict: bool,
}

/// Exit code of `check --strict` when some auth pair is uncovered.
const EXIT_UNCOVERED: u8 = 1;

/// Exit code for every start-up failure (bad config, import error, port in use).
const EXIT_STARTUP: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go through a background writer so request handlers never wait on stderr; the
    // guard flushes it on exit.
    let _log_guard = init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_STARTUP)
        }
    }
}

fn init_tracing() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::GRAPHWARD_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_target(false).init();
    guard
}

fn load_config(arg: &ConfigArg) -> anyhow::Result<Arc<AppConfig>> {
    let config = AppConfig::load(&arg.config)?;
    if !config.ignored_keys.is_empty() {
        let keys: Vec<String> = config.ignored_keys.iter().map(|key| format!("`{key}`")).collect();
        tracing::warn!("{}: ignoring {} (accepted, not acted on by graphward yet)", config.path.display(), keys.join(", "));
    }
    Ok(Arc::new(config))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dev(args) => {
            let config = load_config(&args.config)?;
            let mut options = options(&config, Mode::Dev, &args.auth, &args.storage)?;
            options.limits = limits(&args.limits)?;
            let grace = shutdown_grace(&args.storage)?;
            serve_command(config, &args.host, args.port, options, grace).map(|()| ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let config = load_config(&args.config)?;
            let mut options = options(&config, Mode::Serve, &args.auth, &args.storage)?;
            options.limits = limits(&args.limits)?;
            let grace = shutdown_grace(&args.storage)?;
            serve_command(config, &args.host, args.port, options, grace).map(|()| ExitCode::SUCCESS)
        }
        Command::BenchAuth(args) => {
            let config = load_config(&args.config)?;
            let scratch = std::env::temp_dir().join(format!("graphward-bench-{}.db", std::process::id()));
            let options = options(&config, Mode::Serve, &AuthArgs { auth_timeout: 10.0 }, &StorageArgs { database: Some(scratch), max_runs: 1, shutdown_grace: 1.0 })?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = runtime.block_on(graphward::bench_auth(config, options, args.calls, args.authorization)).map_err(anyhow::Error::msg)?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let config = load_config(&args.config)?;
            // `check` never touches the app's data: a throwaway database.
            let scratch = std::env::temp_dir().join(format!("graphward-check-{}.db", std::process::id()));
            let options = options(&config, Mode::Serve, &AuthArgs { auth_timeout: 10.0 }, &StorageArgs { database: Some(scratch), max_runs: 1, shutdown_grace: 1.0 })?;
            let files = options.storage.files();
            let outcome = check(&config, options, args.strict);
            for file in files {
                let _ = std::fs::remove_file(file);
            }
            outcome
        }
    }
}

fn check(config: &Arc<AppConfig>, options: StartOptions, strict: bool) -> anyhow::Result<ExitCode> {
    {
        {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let (_, report) = runtime.block_on(graphward::start(Arc::clone(config), options)).map_err(anyhow::Error::msg)?;
            println!("{}: OK ({})", config.path.display(), report.python);
            for graph in &report.graphs {
                println!("  graph `{}` (name `{}`)", graph.graph_id, graph.name);
            }
            let Some(auth) = &report.auth else {
                println!("  auth: none configured (every request is allowed)");
                return Ok(ExitCode::SUCCESS);
            };
            println!("  auth: {} ({:?} langgraph_sdk)", config.auth.as_ref().and_then(|a| a.path.as_ref()).map_or("", |p| p.raw.as_str()), report.sdk);
            println!("\n  {:<12} {:<16} handler", "resource", "action");
            let mut uncovered = 0;
            for row in &auth.coverage {
                let handler = match (&row.handler, &row.via) {
                    (Some(handler), Some(via)) => format!("{handler} ({via})"),
                    (Some(handler), None) => handler.clone(),
                    (None, _) => {
                        uncovered += 1;
                        "allowed: no handler".to_string()
                    }
                };
                println!("  {:<12} {:<16} {handler}", row.resource, row.action);
            }
            if auth.coverage.iter().any(|row| row.resource == "store" && row.handler.is_some()) {
                println!("\n  store filters: a filter a store handler returns applies to item values: `put` writes only a");
                println!("  value that passes it over an item that passes it (else 403), `get`/`delete` treat other items as");
                println!("  missing, `search` returns passing items only; `list_namespaces` with a filter is refused (500).");
            }
            if strict && uncovered > 0 {
                eprintln!("error: {uncovered} resource/action pair(s) have no auth handler (--strict)");
                return Ok(ExitCode::from(EXIT_UNCOVERED));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn options(config: &AppConfig, mode: Mode, auth: &AuthArgs, storage: &StorageArgs) -> anyhow::Result<StartOptions> {
    if !(auth.auth_timeout.is_finite() && auth.auth_timeout > 0.0) {
        anyhow::bail!("`--auth-timeout` must be a positive number of seconds, got {}", auth.auth_timeout);
    }
    Ok(StartOptions {
        mode,
        venv: graphward::find_venv(config, std::env::var_os(env_vars::VIRTUAL_ENV).map(PathBuf::from)),
        auth_timeout: Duration::from_secs_f64(auth.auth_timeout),
        storage: storage.database.clone().map_or_else(|| graphward::default_storage(config), |path| StorageConfig::Sqlite { path }),
        max_runs: storage.max_runs,
        limits: graphward::server::listener::Limits::default(),
    })
}

fn limits(args: &LimitArgs) -> anyhow::Result<graphward::server::listener::Limits> {
    let seconds = |flag: &str, value: f64| {
        if value.is_finite() && value > 0.0 { Ok(Duration::from_secs_f64(value)) } else { Err(anyhow::anyhow!("`--{flag}` must be a positive number of seconds, got {value}")) }
    };
    if args.max_connections == 0 {
        anyhow::bail!("`--max-connections` must be at least 1");
    }
    Ok(graphward::server::listener::Limits {
        max_connections: args.max_connections,
        header_timeout: seconds("header-timeout", args.header_timeout)?,
        idle_timeout: seconds("idle-timeout", args.idle_timeout)?,
        preauth_body_limit: args.preauth_body_limit,
    })
}

fn shutdown_grace(storage: &StorageArgs) -> anyhow::Result<Duration> {
    if storage.shutdown_grace.is_finite() && storage.shutdown_grace >= 0.0 {
        Ok(Duration::from_secs_f64(storage.shutdown_grace))
    } else {
        anyhow::bail!("`--shutdown-grace` must be a number of seconds (0 or more), got {}", storage.shutdown_grace)
    }
}

fn serve_command(config: Arc<AppConfig>, host: &str, port: u16, options: StartOptions, shutdown_grace: Duration) -> anyhow::Result<()> {
    let dev = options.mode == Mode::Dev;
    // Storage calls run on the workers; the blocking pool only takes those that outgrow their
    // budget or wait for the writer, which a few threads serve as well as hundreds (each idle
    // thread would keep its own allocator pages).
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(16).build()?;
    runtime.block_on(async move {
        let address = format!("{host}:{port}");
        let listener = TcpListener::bind(&address).await.map_err(|error| {
            if error.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!("port {port} on {host} is already in use; stop the other server or pick another port with `--port`")
            } else {
                anyhow::anyhow!("cannot listen on {address}: {error}")
            }
        })?;
        let local: SocketAddr = listener.local_addr()?;
        let (state, report) = graphward::start(config, options).await.map_err(anyhow::Error::msg)?;
        tracing::info!(python = %report.python, sdk = ?report.sdk, graphs = report.graphs.len(), auth = report.auth.is_some(), checkpointer = %report.checkpointer, "interpreter ready");
        if let Some(auth) = &report.auth
            && !auth.missing_paths.is_empty()
        {
            tracing::warn!(
                missing_paths = ?auth.missing_paths,
                suggestion = "@auth.on\nasync def deny_by_default(ctx, value):\n    return False",
                "Custom auth has no handler registered for some dispatch paths. Authentication still applies, but these paths are allowed without resource-level checks."
            );
        }
        let base = format!("http://{local}");
        if dev {
            println!("\n  graphward dev server ready\n  - API:  {base}\n  - Docs: {base}/docs\n");
        } else {
            tracing::info!("serving on {base}");
        }
        graphward::serve(listener, state, shutdown_grace, shutdown_signal()).await?;
        tracing::info!("shut down");
        Ok(())
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
