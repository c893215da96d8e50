//! Test helpers: the real `cuttle` binary started on an ephemeral port, on SQLite or on a
//! fresh PostgreSQL schema, with a known admin API key and a ready client.
//!
//! Tests talk to it over real HTTP, as users do. The server's log goes to a file in its data
//! directory and is printed when a start fails.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context as _, bail};
use cuttle_client::Client;

/// The admin API key every test server starts with.
pub const TEST_API_KEY: &str = "API-CUTTLETESTKEY0000000000000000000001";
/// The admin password every test server starts with.
pub const TEST_ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `CI=true`: tests that cannot get what they need must fail, not skip.
pub fn running_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// The PostgreSQL URL for tests, from `CUTTLE_TEST_DATABASE_URL`.
///
/// `None` outside CI when unset (the caller skips with a note); under `CI=true` unset is an error.
pub fn test_database_url() -> anyhow::Result<Option<String>> {
    match std::env::var("CUTTLE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if running_in_ci() => {
            bail!("CI=true but CUTTLE_TEST_DATABASE_URL is not set: PostgreSQL tests must run")
        }
        _ => Ok(None),
    }
}

/// How to start a test server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub backend: Backend,
    /// Set `CUTTLE_BOOTSTRAP_API_KEY` and `CUTTLE_BOOTSTRAP_ADMIN_PASSWORD` to the test values.
    pub bootstrap_credentials: bool,
    /// More environment variables for the server process.
    pub environment: Vec<(String, String)>,
    /// More command-line arguments after `server`.
    pub arguments: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            backend: Backend::Sqlite,
            bootstrap_credentials: true,
            environment: Vec::new(),
            arguments: Vec::new(),
        }
    }
}

/// A running `cuttle server`, stopped (SIGTERM, then kill) when dropped.
pub struct TestServer {
    child: Child,
    pub base_url: String,
    /// The agent port (`127.0.0.1:PORT`), which polling agents dial.
    pub agent_address: String,
    pub client: Client,
    binary: PathBuf,
    options: ServerOptions,
    data_directory: tempfile::TempDir,
    /// `(database URL, schema)` when on PostgreSQL.
    schema: Option<(String, String)>,
    stdout_lines: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_cuttle")`) on SQLite in a fresh data directory.
    pub async fn start(binary: &Path) -> anyhow::Result<TestServer> {
        TestServer::start_with(binary, ServerOptions::default()).await
    }

    /// Starts `binary` with `options` in a fresh data directory (and schema, on PostgreSQL).
    pub async fn start_with(binary: &Path, options: ServerOptions) -> anyhow::Result<TestServer> {
        let data_directory = tempfile::tempdir().context("create a data directory")?;
        let schema = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let database_url = test_database_url()?
                    .context("PostgreSQL requested but CUTTLE_TEST_DATABASE_URL is not set")?;
                let schema_name = create_schema(&database_url).await?;
                Some((database_url, schema_name))
            }
        };
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (child, base_url, agent_address) = spawn_server(
            binary,
            "127.0.0.1:0",
            &options,
            data_directory.path(),
            schema.as_ref(),
            &stdout_lines,
        )?;
        let client = Client::new(&base_url, Some(TEST_API_KEY.to_owned()))?;
        Ok(TestServer {
            child,
            base_url,
            agent_address,
            client,
            binary: binary.to_owned(),
            options,
            data_directory,
            schema,
            stdout_lines,
        })
    }

    /// Stops the server with SIGTERM and starts it again on the same data (and schema).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.terminate()?;
        self.stdout_lines
            .lock()
            .map_err(|_| anyhow::anyhow!("stdout lock poisoned"))?
            .clear();
        // The agent port stays where it was, so polling agents find the server again.
        let (child, base_url, agent_address) = spawn_server(
            &self.binary,
            &self.agent_address,
            &self.options,
            self.data_directory.path(),
            self.schema.as_ref(),
            &self.stdout_lines,
        )?;
        self.child = child;
        self.agent_address = agent_address;
        self.client = Client::new(&base_url, Some(TEST_API_KEY.to_owned()))?;
        self.base_url = base_url;
        Ok(())
    }

    /// Starts a second node on the same PostgreSQL schema (its own data directory), as a
    /// high-availability deployment runs several. The first server keeps ownership of the
    /// schema; the peer must not outlive it.
    pub fn start_peer(&self) -> anyhow::Result<TestServer> {
        let schema = self
            .schema
            .clone()
            .context("only a server on PostgreSQL can have a peer")?;
        let data_directory = tempfile::tempdir().context("create a data directory")?;
        // Nodes on one database share the master key, as the operator guide says.
        std::fs::copy(
            self.data_directory.path().join("master.key"),
            data_directory.path().join("master.key"),
        )
        .context("copy the master key to the peer")?;
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (child, base_url, agent_address) = spawn_server(
            &self.binary,
            "127.0.0.1:0",
            &self.options,
            data_directory.path(),
            Some(&schema),
            &stdout_lines,
        )?;
        let client = Client::new(&base_url, Some(TEST_API_KEY.to_owned()))?;
        Ok(TestServer {
            child,
            base_url,
            agent_address,
            client,
            binary: self.binary.clone(),
            options: self.options.clone(),
            data_directory,
            // The peer never drops the shared schema.
            schema: None,
            stdout_lines,
        })
    }

    /// The options the next [`TestServer::restart`] uses.
    pub fn options_mut(&mut self) -> &mut ServerOptions {
        &mut self.options
    }

    /// What the server printed on stdout since it (re)started.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    /// The data directory the server runs in.
    pub fn data_directory(&self) -> PathBuf {
        self.data_directory.path().to_owned()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_directory.path().join("server.log")).unwrap_or_default()
    }

    /// The process id, to send signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL, as a crash or `kill -9` would: nothing is flushed and
    /// no lease released. Start it again with [`TestServer::restart`].
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill().context("send SIGKILL")?;
            self.child.wait().context("wait for the killed server")?;
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("send SIGTERM")?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the server did not exit within 10 s of SIGTERM")
    }

    /// Drops the PostgreSQL schema, if any. Call at the end of a passing test.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        let _ = self.terminate();
        if let Some((database_url, schema)) = self.schema.take() {
            let pool = sqlx::PgPool::connect(&database_url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the process and waits for its "listening" line; returns it and the base URL.
fn spawn_server(
    binary: &Path,
    agent_listen: &str,
    options: &ServerOptions,
    data_directory: &Path,
    schema: Option<&(String, String)>,
    stdout_lines: &Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<(Child, String, String)> {
    let mut command = Command::new(binary);
    command
        .arg("server")
        .arg("--data-dir")
        .arg(data_directory)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--agent-listen")
        .arg(agent_listen)
        .args(&options.arguments)
        .env("CUTTLE_LOG", "info,cuttle_server=debug,sqlx=warn")
        .env_remove("CUTTLE_DATABASE_URL")
        .env_remove("CUTTLE_AGENT_LISTEN")
        .env_remove("CUTTLE_BOOTSTRAP_API_KEY")
        .env_remove("CUTTLE_BOOTSTRAP_ADMIN_PASSWORD");
    if options.bootstrap_credentials {
        command
            .env("CUTTLE_BOOTSTRAP_API_KEY", TEST_API_KEY)
            .env("CUTTLE_BOOTSTRAP_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD);
    }
    if let Some((database_url, schema)) = schema {
        command
            .arg("--database-url")
            .arg(url_with_search_path(database_url, schema));
    }
    for (name, value) in &options.environment {
        command.env(name, value);
    }
    let log_path = data_directory.join("server.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .context("open the server log")?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file));
    let mut child = command
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let stdout = child.stdout.take().context("take the server's stdout")?;

    // Read stdout on a thread for the whole life of the server, so it never blocks on a full
    // pipe; hand over the listening line.
    let (address_sender, address_receiver) = mpsc::channel();
    let (agent_sender, agent_receiver) = mpsc::channel();
    let lines = Arc::clone(stdout_lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("Cuttle agent port is listening on ") {
                let _ = agent_sender.send(address.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("Cuttle is listening on ") {
                let _ = address_sender.send(url.trim().to_owned());
            }
            if let Ok(mut lines) = lines.lock() {
                lines.push(line);
            }
        }
    });
    match address_receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => {
            let agent_address = agent_receiver.try_recv().unwrap_or_default();
            Ok((child, url, agent_address))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the server did not start within 60 s; its log:\n{log}");
        }
    }
}

async fn create_schema(database_url: &str) -> anyhow::Result<String> {
    let pool = sqlx::PgPool::connect(database_url)
        .await
        .context("connect to CUTTLE_TEST_DATABASE_URL")?;
    let schema = format!("cuttle_it_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .context("create a test schema")?;
    pool.close().await;
    Ok(schema)
}

/// The URL with `options=-c search_path=<schema>`, so the server works inside the schema.
fn url_with_search_path(database_url: &str, schema: &str) -> String {
    let separator = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{separator}options=-c%20search_path%3D{schema}")
}
