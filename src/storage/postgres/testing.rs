//! A throw-away Postgres cluster for the tests: `GRAPHWARD_TEST_POSTGRES` (a server URI that
//! scripts/test.sh starts once for the whole run) or, without it, one this process starts —
//! `initdb` into a temporary folder (as user `postgres` when run as root), a free port,
//! `fsync=off` — and stops when it exits. Each caller gets a database of its own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The Postgres 15 binaries (Debian's layout), or `GRAPHWARD_PG_BIN`.
fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("GRAPHWARD_PG_BIN").map_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"), PathBuf::from);
    dir.join(name)
}

/// The cluster this process started, stopped at exit.
static STARTED: OnceLock<PathBuf> = OnceLock::new();

/// The server's URI (its `postgres` database).
fn server() -> &'static str {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER.get_or_init(|| std::env::var("GRAPHWARD_TEST_POSTGRES").unwrap_or_else(|_| start()))
}

/// Runs `command` as user `postgres` when this process is root (initdb refuses root).
fn as_postgres(program: PathBuf) -> Command {
    // SAFETY: geteuid has no preconditions.
    #[expect(unsafe_code, reason = "geteuid(2)")]
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A cluster of this process's own.
pub(crate) struct Cluster {
    data: PathBuf,
    options: String,
    pub(crate) uri: String,
}

impl Cluster {
    /// `initdb` into a temporary folder and start it on a free port.
    pub(crate) fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("graphward-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the cluster folder");
        let _ = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let data = dir.join("data");
        let initdb = as_postgres(bin("initdb")).args(["--auth=trust", "--username=postgres", "--no-sync", "-D"]).arg(&data).output().expect("run initdb");
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let cluster = Self { data, options, uri: format!("postgres://postgres@127.0.0.1:{port}/postgres") };
        cluster.pg_ctl(&["-w", "start"]);
        cluster
    }

    fn pg_ctl(&self, action: &[&str]) {
        let log = self.data.with_file_name("log");
        let done = as_postgres(bin("pg_ctl")).arg("-D").arg(&self.data).args(["-o", &self.options, "-l"]).arg(log).args(action).output().expect("run pg_ctl");
        assert!(done.status.success(), "pg_ctl {action:?} failed: {}", String::from_utf8_lossy(&done.stderr));
    }

    /// Stops the server (fast: connections are dropped, like a crash of the network).
    pub(crate) fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    pub(crate) fn resume(&self) {
        self.pg_ctl(&["-w", "start"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        stop_cluster(&self.data);
    }
}

fn start() -> String {
    let cluster = Cluster::start();
    let uri = cluster.uri.clone();
    let _ = STARTED.set(cluster.data.clone());
    std::mem::forget(cluster);
    // SAFETY: `stop_at_exit` is an `extern "C" fn()` that only runs a child process.
    #[expect(unsafe_code, reason = "atexit(3)")]
    unsafe {
        libc::atexit(stop_at_exit);
    }
    uri
}

extern "C" fn stop_at_exit() {
    if let Some(data) = STARTED.get() {
        stop_cluster(data);
    }
}

fn stop_cluster(data: &std::path::Path) {
    let _ = as_postgres(bin("pg_ctl")).args(["-D"]).arg(data).args(["-m", "immediate", "stop"]).output();
    if let Some(dir) = data.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A new, empty database on the test server; its URI.
pub(crate) async fn fresh_database() -> String {
    let server = server();
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls).await.expect("connect to the test server");
    tokio::spawn(connection);
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    format!("{base}/{name}")
}
