//! The `graphward` command: CLI → config → tracing → serve. The only place `anyhow` is used.
//! [`main`] runs it for the binary (which embeds CPython) and for the wheel's console script
//! (an extension module inside the user's own interpreter): see [`Hosting`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

mod workers;

use crate as graphward;
use crate::config::{AppConfig, env_vars};
use crate::storage::StorageConfig;
use crate::{Mode, StartOptions};

/// How the process holds the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// The `graphward` binary: it starts the CPython it was built against and adds the user's
    /// venv (`VIRTUAL_ENV`, or `.venv` next to `langgraph.json`) to its `sys.path`.
    Embedded,
    /// The wheel's console script: graphward runs inside the user's own interpreter (whatever
    /// venv it belongs to), which is already initialized.
    Extension,
}

/// How to start this command again (`serve --workers`), when the process's own executable is
/// not it: the wheel's interpreter and `-m graphward`. Set once by the host, before [`main`].
static RELAUNCH: std::sync::OnceLock<Vec<std::ffi::OsString>> = std::sync::OnceLock::new();

/// Sets how [`main`] starts more processes of this command (see [`RELAUNCH`]).
pub fn set_relaunch_command(command: Vec<std::ffi::OsString>) {
    let _ = RELAUNCH.set(command);
}

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
    /// Do not reload when the app's code or langgraph.json changes.
    #[arg(long)]
    no_reload: bool,
    /// The LangGraph Studio the banner links to.
    #[arg(long, default_value = "https://smith.langchain.com")]
    studio_url: String,
    /// Like `langgraph dev`: the log level (debug, info, warning, error, critical); `GRAPHWARD_LOG` takes precedence.
    #[arg(long)]
    server_log_level: Option<String>,
    /// Like `langgraph dev`: how many runs may execute at once (the same as `--max-runs`).
    #[arg(long)]
    n_jobs_per_worker: Option<usize>,
    #[command(flatten)]
    reference_only: ReferenceOnlyArgs,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// `langgraph dev` flags that have no meaning here: each is accepted and named in a one-line
/// notice (TLS flags are refused: serving plain HTTP to a client that asked for HTTPS would be
/// worse than not starting).
#[derive(Debug, Args)]
struct ReferenceOnlyArgs {
    /// Accepted for compatibility with `langgraph dev`; graphward never raises on blocking calls.
    #[arg(long)]
    allow_blocking: bool,
    /// Not supported by graphward (no public tunnel).
    #[arg(long)]
    tunnel: bool,
    /// Not supported by graphward (no debugpy listener).
    #[arg(long)]
    debug_port: Option<u16>,
    /// Not supported by graphward (no debugpy listener).
    #[arg(long)]
    wait_for_client: bool,
    /// Not supported by graphward: put a TLS-terminating proxy in front.
    #[arg(long, value_name = "FILE")]
    ssl_keyfile: Option<PathBuf>,
    /// Not supported by graphward: put a TLS-terminating proxy in front.
    #[arg(long, value_name = "FILE")]
    ssl_certfile: Option<PathBuf>,
}

impl ReferenceOnlyArgs {
    /// The one-line notices for the flags given; an error for the TLS ones.
    fn notices(&self) -> anyhow::Result<Vec<&'static str>> {
        if self.ssl_keyfile.is_some() || self.ssl_certfile.is_some() {
            anyhow::bail!("`--ssl-keyfile`/`--ssl-certfile`: graphward serves plain HTTP only; put a TLS-terminating proxy in front of it");
        }
        let mut notices = Vec::new();
        if self.allow_blocking {
            notices.push("`--allow-blocking`: graphward never raises on blocking calls; ignored");
        }
        if self.tunnel {
            notices.push("`--tunnel`: graphward opens no public tunnel; ignored");
        }
        if self.debug_port.is_some() || self.wait_for_client {
            notices.push("`--debug-port`/`--wait-for-client`: graphward starts no debugpy listener; ignored");
        }
        Ok(notices)
    }
}

/// `--server-log-level` (the reference's names) as a tracing filter.
fn log_filter(level: &str) -> anyhow::Result<&'static str> {
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "critical" => "error",
        _ => anyhow::bail!("`--server-log-level` must be one of debug, info, warning, error, critical; got `{level}`"),
    })
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
    /// SQLite database file, served by one process at a time [default: .graphward/state.db next to langgraph.json].
    #[arg(long, env = env_vars::GRAPHWARD_DATABASE)]
    database: Option<PathBuf>,
    /// Postgres database that every graphward process of the deployment shares
    /// (`postgres://user:password@host:port/database`): records, run queue, events and
    /// checkpoints. Without it, the SQLite file of `--database`.
    #[arg(long, env = env_vars::DATABASE_URI, value_name = "URI", hide_env_values = true)]
    database_uri: Option<String>,
}

impl StorageArgs {
    /// Throwaway SQLite storage for commands that must not touch the app's data.
    fn scratch(path: PathBuf) -> Self {
        Self { database: Some(path), database_uri: None, max_runs: 1, shutdown_grace: 1.0 }
    }

    /// The storage these flags name (`None`: the app's default).
    fn config(&self) -> anyhow::Result<Option<StorageConfig>> {
        if let Some(uri) = self.database_uri.as_deref().filter(|uri| !uri.is_empty()) {
            if self.database.is_some() {
                anyhow::bail!("`--database` (a SQLite file) and `--database-uri`/DATABASE_URI (Postgres) name two databases; give one");
            }
            if !(uri.starts_with("postgres://") || uri.starts_with("postgresql://")) {
                anyhow::bail!("`--database-uri`/DATABASE_URI must be a postgres:// or postgresql:// URI, got `{}`", graphward::storage::redact_uri(uri));
            }
            return Ok(Some(StorageConfig::Postgres { uri: uri.to_string() }));
        }
        Ok(self.database.clone().map(|path| StorageConfig::Sqlite { path }))
    }
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
    /// Processes serving the port, each with its own interpreter (graph runs and Python auth
    /// then use every core). More than 1 needs `--database-uri`: the processes coordinate only
    /// through Postgres.
    #[arg(long, env = env_vars::GRAPHWARD_WORKERS, default_value_t = 1)]
    workers: usize,
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

/// Runs the command line `args` (the program name first) and answers the exit code.
pub fn main(args: Vec<std::ffi::OsString>, hosting: Hosting) -> ExitCode {
    let cli = Cli::parse_from(args.clone());
    let level = match &cli.command {
        Command::Dev(args) => args.server_log_level.as_deref().map(log_filter).transpose(),
        _ => Ok(None),
    };
    let level = match level {
        Ok(level) => level.unwrap_or("info"),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    // Logs go through a background writer so request handlers never wait on stderr; the
    // guard flushes it on exit.
    let log_guard = init_tracing(level);
    let _ = LAUNCH_ENV.set(std::env::vars_os().collect());
    match run(cli, hosting, &args) {
        Ok(Finished::Exit(code)) => code,
        Ok(Finished::Restart) => {
            drop(log_guard);
            restart(&args)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_STARTUP)
        }
    }
}

/// How a command ended.
enum Finished {
    Exit(ExitCode),
    /// `dev`'s reload asked for a new process (see `graphward::reload`).
    Restart,
}

/// The program and leading arguments that run this command again.
fn relaunch_program(command_line: &[std::ffi::OsString]) -> Vec<std::ffi::OsString> {
    match RELAUNCH.get() {
        Some(command) => command.clone(),
        None => vec![std::env::current_exe().map_or_else(|_| command_line[0].clone(), std::ffi::OsString::from)],
    }
}

/// The environment this process was started with, before `langgraph.json`'s `env` (applied by
/// the interpreter) changed it. Restarts and `graphward check` get this one, so that a key
/// removed from `.env` is gone after the restart instead of inherited from the old values.
static LAUNCH_ENV: std::sync::OnceLock<Vec<(std::ffi::OsString, std::ffi::OsString)>> = std::sync::OnceLock::new();

/// `program` with the environment this process was launched with.
fn launched(program: &[std::ffi::OsString]) -> std::process::Command {
    let mut command = std::process::Command::new(&program[0]);
    command.args(&program[1..]);
    if let Some(environment) = LAUNCH_ENV.get() {
        command.env_clear().envs(environment.iter().map(|(key, value)| (key, value)));
    }
    command
}

/// Replaces this process with the same command (same pid, so whatever started `dev` keeps
/// watching it).
fn restart(command_line: &[std::ffi::OsString]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let program = relaunch_program(command_line);
    let error = launched(&program).args(&command_line[1..]).exec();
    eprintln!("error: cannot restart graphward: {error}");
    ExitCode::from(EXIT_STARTUP)
}

/// Runs `graphward check` on `config` in a new process: what a restart would import.
fn validator(command_line: &[std::ffi::OsString]) -> graphward::reload::Validator {
    let program = relaunch_program(command_line);
    Arc::new(move |config: &std::path::Path| {
        let output = launched(&program)
            .arg("check")
            .arg("--config")
            .arg(config)
            .output()
            .map_err(|error| format!("cannot run `graphward check`: {error}"))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("`graphward check` failed");
        Err(line.trim().trim_start_matches("error: ").to_string())
    })
}

/// Logs at `level` unless `GRAPHWARD_LOG` says otherwise.
fn init_tracing(level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::GRAPHWARD_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
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

fn run(cli: Cli, hosting: Hosting, command_line: &[std::ffi::OsString]) -> anyhow::Result<Finished> {
    match cli.command {
        Command::Dev(args) => {
            for notice in args.reference_only.notices()? {
                tracing::warn!("{notice}");
            }
            let config = load_config(&args.config)?;
            let mut options = options(hosting, &config, Mode::Dev, &args.auth, &args.storage)?;
            options.limits = limits(&args.limits)?;
            if let Some(jobs) = args.n_jobs_per_worker {
                options.max_runs = jobs;
            }
            let grace = shutdown_grace(&args.storage)?;
            let reload = (!args.no_reload).then(|| validator(command_line));
            serve_command(config, &args.host, args.port, options, grace, Some(&args.studio_url), reload)
        }
        Command::Serve(args) => {
            let config = load_config(&args.config)?;
            let mut options = options(hosting, &config, Mode::Serve, &args.auth, &args.storage)?;
            if args.workers == 0 {
                anyhow::bail!("`--workers` must be at least 1");
            }
            if args.workers > 1 && !workers::is_worker() {
                if !options.storage.is_shared() {
                    anyhow::bail!(
                        "`--workers {}` needs a database the processes share: set `--database-uri`/DATABASE_URI to a Postgres database (a SQLite file is served by one process)",
                        args.workers
                    );
                }
                // The program and the arguments that start this command again.
                let relaunch: Vec<std::ffi::OsString> = relaunch_program(command_line).into_iter().chain(command_line[1..].iter().cloned()).collect();
                return workers::supervise(&relaunch, &args.host, args.port, args.workers).map(Finished::Exit);
            }
            options.limits = limits(&args.limits)?;
            let grace = shutdown_grace(&args.storage)?;
            serve_command(config, &args.host, args.port, options, grace, None, None)
        }
        Command::BenchAuth(args) => {
            let config = load_config(&args.config)?;
            let scratch = std::env::temp_dir().join(format!("graphward-bench-{}.db", std::process::id()));
            let options = options(hosting, &config, Mode::Serve, &AuthArgs { auth_timeout: 10.0 }, &StorageArgs::scratch(scratch))?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = runtime.block_on(graphward::bench_auth(config, options, args.calls, args.authorization)).map_err(anyhow::Error::msg)?;
            println!("{report}");
            Ok(Finished::Exit(ExitCode::SUCCESS))
        }
        Command::Check(args) => {
            let config = load_config(&args.config)?;
            // `check` never touches the app's data: a throwaway database.
            let scratch = std::env::temp_dir().join(format!("graphward-check-{}.db", std::process::id()));
            let options = options(hosting, &config, Mode::Serve, &AuthArgs { auth_timeout: 10.0 }, &StorageArgs::scratch(scratch))?;
            let files = options.storage.files();
            let outcome = check(&config, options, args.strict);
            for file in files {
                let _ = std::fs::remove_file(file);
            }
            outcome.map(Finished::Exit)
        }
    }
}

fn check(config: &Arc<AppConfig>, options: StartOptions, strict: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The interpreter thread stops when the state (its last handle) goes.
    let (_state, report) = runtime.block_on(graphward::start(Arc::clone(config), options)).map_err(anyhow::Error::msg)?;
    Ok(print_check(config, &report, strict))
}

/// `check`'s report: the graphs and the auth coverage; the exit code.
fn print_check(config: &AppConfig, report: &graphward::python::StartupReport, strict: bool) -> ExitCode {
    println!("{}: OK ({})", config.path.display(), report.python);
    for graph in &report.graphs {
        println!("  graph `{}` (name `{}`)", graph.graph_id, graph.name);
    }
    if let Some(app) = &config.http.app {
        let authenticated = if config.http.enable_custom_route_auth { "authenticated" } else { "public" };
        match &report.custom_routes {
            Some(routes) => {
                let paths: Vec<String> = routes.iter().map(|route| format!("{}{}", route.path, if route.prefix { "/…" } else { "" })).collect();
                println!("  http.app: {} ({authenticated}): {}", app.raw, paths.join(", "));
            }
            None => println!("  http.app: {} ({authenticated}): an ASGI app without a route table; it gets every path the API does not serve", app.raw),
        }
    }
    let Some(auth) = &report.auth else {
        println!("  auth: none configured (every request is allowed)");
        return ExitCode::SUCCESS;
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
        return ExitCode::from(EXIT_UNCOVERED);
    }
    ExitCode::SUCCESS
}

fn options(hosting: Hosting, config: &AppConfig, mode: Mode, auth: &AuthArgs, storage: &StorageArgs) -> anyhow::Result<StartOptions> {
    if !(auth.auth_timeout.is_finite() && auth.auth_timeout > 0.0) {
        anyhow::bail!("`--auth-timeout` must be a positive number of seconds, got {}", auth.auth_timeout);
    }
    Ok(StartOptions {
        mode,
        // Inside the user's interpreter its own `sys.path` is the environment.
        venv: match hosting {
            Hosting::Embedded => graphward::find_venv(config, std::env::var_os(env_vars::VIRTUAL_ENV).map(PathBuf::from)),
            Hosting::Extension => None,
        },
        auth_timeout: Duration::from_secs_f64(auth.auth_timeout),
        storage: storage.config()?.unwrap_or_else(|| graphward::default_storage(config)),
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

/// Serves until a shutdown signal. `studio`: the LangGraph Studio `dev` links its banner to.
/// `reload`: watch the app's files and reload its code (`dev`), restarting when a change needs
/// a new process.
fn serve_command(
    config: Arc<AppConfig>,
    host: &str,
    port: u16,
    options: StartOptions,
    shutdown_grace: Duration,
    studio: Option<&str>,
    reload: Option<graphward::reload::Validator>,
) -> anyhow::Result<Finished> {
    let studio = studio.map(|url| url.trim_end_matches('/').to_string());
    // Storage calls run on the workers; the blocking pool only takes those that outgrow their
    // budget or wait for the writer, which a few threads serve as well as hundreds (each idle
    // thread would keep its own allocator pages).
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(16).build()?;
    runtime.block_on(async move {
        let address = format!("{host}:{port}");
        let inherited = workers::inherited_listener()?;
        let listener = match inherited {
            Some(listener) => TcpListener::from_std(listener)?,
            None => TcpListener::bind(&address).await.map_err(|error| {
                if error.kind() == std::io::ErrorKind::AddrInUse {
                    anyhow::anyhow!("port {port} on {host} is already in use; stop the other server or pick another port with `--port`")
                } else {
                    anyhow::anyhow!("cannot listen on {address}: {error}")
                }
            })?,
        };
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
        if let Some(studio) = &studio {
            // The reference's banner lines, so what people look for is where they expect it.
            println!("\n  graphward dev server ready\n\n- 🚀 API: {base}\n- 🎨 Studio UI: {studio}/studio/?baseUrl={base}\n- 📚 API Docs: {base}/docs\n");
        } else {
            tracing::info!("serving on {base}");
        }
        let (stop_watching, watching) = tokio::sync::watch::channel(false);
        let (restart_requested, restart) = tokio::sync::oneshot::channel();
        if let Some(validate) = reload {
            let watched = state.clone();
            tokio::spawn(async move {
                if graphward::reload::watch(watched, watching, validate).await == graphward::reload::Outcome::Restart {
                    let _ = restart_requested.send(());
                }
            });
        }
        let restarting = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let restart_flag = Arc::clone(&restarting);
        let shutdown = async move {
            tokio::select! {
                () = shutdown_signal() => {}
                Ok(()) = restart => restart_flag.store(true, std::sync::atomic::Ordering::Release),
            }
            let _ = stop_watching.send(true);
        };
        // The interpreter thread stops once the runtime drops the last handle to it.
        graphward::serve(listener, state, shutdown_grace, shutdown).await?;
        if restarting.load(std::sync::atomic::Ordering::Acquire) {
            tracing::info!("restarting");
            return Ok(Finished::Restart);
        }
        tracing::info!("shut down");
        Ok(Finished::Exit(ExitCode::SUCCESS))
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
