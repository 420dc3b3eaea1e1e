//! The `graphward` command: CLI → config → tracing → serve. The only place `anyhow` is used.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use graphward::config::{AppConfig, env_vars};
use tokio::net::TcpListener;

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
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Also fail when an auth resource/action pair has no handler (with custom auth).
    #[arg(long)]
    strict: bool,
}

/// Exit code for every start-up failure (bad config, import error, port in use).
const EXIT_STARTUP: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_STARTUP)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::GRAPHWARD_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn load_config(arg: &ConfigArg) -> anyhow::Result<Arc<AppConfig>> {
    let config = AppConfig::load(&arg.config)?;
    if !config.ignored_keys.is_empty() {
        let keys: Vec<String> = config.ignored_keys.iter().map(|key| format!("`{key}`")).collect();
        tracing::warn!("{}: ignoring {} (accepted, not acted on by graphward yet)", config.path.display(), keys.join(", "));
    }
    Ok(Arc::new(config))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => {
            let config = load_config(&args.config)?;
            serve_command(config, &args.host, args.port, true)
        }
        Command::Serve(args) => {
            let config = load_config(&args.config)?;
            serve_command(config, &args.host, args.port, false)
        }
        Command::Check(args) => {
            let config = load_config(&args.config)?;
            let (_, report) = graphward::start(Arc::clone(&config), venv(&config)).map_err(anyhow::Error::msg)?;
            println!("{}: OK ({})", config.path.display(), report.python);
            for graph in &report.graphs {
                println!("  graph `{}` (name `{}`)", graph.graph_id, graph.name);
            }
            let _ = args.strict;
            Ok(())
        }
    }
}

fn venv(config: &AppConfig) -> Option<PathBuf> {
    graphward::find_venv(config, std::env::var_os(env_vars::VIRTUAL_ENV).map(PathBuf::from))
}

fn serve_command(config: Arc<AppConfig>, host: &str, port: u16, dev: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
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
        let venv = venv(&config);
        let (state, report) = tokio::task::spawn_blocking(move || graphward::start(config, venv)).await?.map_err(anyhow::Error::msg)?;
        tracing::info!(python = %report.python, sdk = ?report.sdk, graphs = report.graphs.len(), "interpreter ready");
        let base = format!("http://{local}");
        if dev {
            println!("\n  graphward dev server ready\n  - API:  {base}\n  - Docs: {base}/docs\n");
        } else {
            tracing::info!("serving on {base}");
        }
        graphward::serve(listener, state, shutdown_signal()).await?;
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
