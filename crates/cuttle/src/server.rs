//! `cuttle server`: opens the store, bootstraps it, and serves until SIGTERM or Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use cuttle_server::{
    AppState, BlobStore, BootstrapOptions, DEFAULT_HTTP_IDLE_TIMEOUT, DEFAULT_JSON_BODY_LIMIT,
    DEFAULT_MAX_PACKAGE_SIZE, FirstStartCredentials,
};
use cuttle_store::Store;

use crate::env_vars;

#[derive(Debug, clap::Args)]
pub(crate) struct ServerArguments {
    #[command(subcommand)]
    action: Option<ServerAction>,

    /// Where the embedded database (and later packages and keys) live.
    #[arg(long, global = true, env = env_vars::CUTTLE_DATA_DIR, default_value = "./cuttle-data")]
    data_dir: PathBuf,

    /// The address to serve HTTP on. Port 0 picks a free port, printed at start.
    #[arg(long, env = env_vars::CUTTLE_LISTEN, default_value = "127.0.0.1:8050")]
    listen: SocketAddr,

    /// The address agents connect to (polling agents dial it; port 0 picks a free one).
    #[arg(long, env = env_vars::CUTTLE_AGENT_LISTEN, default_value = "0.0.0.0:10943")]
    agent_listen: SocketAddr,

    /// Run on PostgreSQL (`postgres://user@host/database`) instead of the embedded SQLite.
    #[arg(long, global = true, env = env_vars::CUTTLE_DATABASE_URL, hide_env_values = true)]
    database_url: Option<String>,

    /// Run no scripts on the server itself: steps meant for a worker need a worker pool with
    /// workers, and ad-hoc scripts need targets.
    #[arg(long, env = env_vars::CUTTLE_DISABLE_BUILT_IN_WORKER)]
    disable_built_in_worker: bool,

    /// Where on SSH targets Cuttle keeps its binary and its work, relative to the account's
    /// home directory unless absolute.
    #[arg(long, env = env_vars::CUTTLE_SSH_REMOTE_DIRECTORY, default_value = ".cuttle")]
    ssh_remote_directory: String,

    /// The most tasks (deployments, health checks, scripts) this node runs at once; more
    /// wait in the queue. Octopus's task cap, 5 by default there too.
    #[arg(long, env = env_vars::CUTTLE_TASK_CAP, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    task_cap: u16,

    /// The largest JSON request body accepted, in bytes.
    #[arg(long, env = env_vars::CUTTLE_MAX_JSON_BODY, default_value_t = DEFAULT_JSON_BODY_LIMIT)]
    max_json_body: usize,

    /// Seconds an idle HTTP/1 connection (no request under way) is kept open.
    #[arg(long, env = env_vars::CUTTLE_HTTP_IDLE_TIMEOUT, default_value_t = DEFAULT_HTTP_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    http_idle_timeout: u64,

    /// The largest package file accepted by the built-in feed, in bytes.
    #[arg(long, env = env_vars::CUTTLE_MAX_PACKAGE_SIZE, default_value_t = DEFAULT_MAX_PACKAGE_SIZE)]
    max_package_size: u64,

    /// Seconds between retention passes, which delete the releases their lifecycles' release
    /// retention policies let go and the packages only those releases used; 0 runs none
    /// (`POST /api/retention/apply` still does). The first pass runs a minute after start.
    #[arg(long, env = env_vars::CUTTLE_RETENTION_INTERVAL, default_value_t = 3600)]
    retention_interval: u64,
}

#[derive(Debug, clap::Subcommand)]
enum ServerAction {
    /// Print the thumbprint of the certificate agents pin (SHA-256, hex), then exit.
    ShowThumbprint,
}

pub(crate) async fn run(arguments: ServerArguments) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = open_store(&arguments).await?;
    let master_key = Arc::new(load_master_key(&arguments)?);
    cuttle_server::check_master_key(&*store, &master_key)
        .await
        .context("check the master key")?;
    let server_identity = cuttle_server::load_or_create_server_identity(&*store, &master_key)
        .await
        .context("load the server certificate")?;
    if let Some(ServerAction::ShowThumbprint) = arguments.action {
        return announce(server_identity.thumbprint());
    }
    let options = BootstrapOptions {
        api_key: non_empty_env(env_vars::CUTTLE_BOOTSTRAP_API_KEY),
        admin_password: non_empty_env(env_vars::CUTTLE_BOOTSTRAP_ADMIN_PASSWORD),
    };
    let outcome = cuttle_server::bootstrap(&*store, &options)
        .await
        .context("prepare the store on start")?;
    if let Some(credentials) = &outcome.first_start {
        print_first_start_credentials(credentials)?;
    }

    let listener = tokio::net::TcpListener::bind(arguments.listen)
        .await
        .with_context(|| format!("listen on {}", arguments.listen))?;
    let address = listener.local_addr().context("read the listen address")?;
    let mut runner_config = cuttle_orchestrator::RunnerConfig::new(node_name(&arguments.data_dir)?);
    runner_config.max_concurrent_tasks = usize::from(arguments.task_cap);
    let mut runner = cuttle_orchestrator::TaskRunner::new(Arc::clone(&store), runner_config);
    let agent_listener = tokio::net::TcpListener::bind(arguments.agent_listen)
        .await
        .with_context(|| format!("listen for agents on {}", arguments.agent_listen))?;
    let agent_address = agent_listener
        .local_addr()
        .context("read the agent port's address")?;
    let polling_agents = Arc::new(cuttle_server::agents::PollingAgents::default());
    let agent_port = Arc::new(cuttle_server::agents::AgentPort::new(
        server_identity.clone(),
        Arc::clone(&store),
        Arc::clone(&polling_agents),
    ));
    let blob_root = arguments.data_dir.join("blobs");
    let blob_store = BlobStore::open(&blob_root)
        .map(Arc::new)
        .with_context(|| format!("open the package blob store in {}", blob_root.display()))?;
    let mut transports = cuttle_orchestrator::Transports::new();
    transports.register(
        cuttle_orchestrator::EndpointKind::ListeningAgent,
        Arc::new(cuttle_server::agents::AgentTransport(
            cuttle_server::agents::ListeningAgents::new(server_identity.clone()),
        )),
    );
    transports.register(
        cuttle_orchestrator::EndpointKind::PollingAgent,
        Arc::new(cuttle_server::agents::AgentTransport(Arc::clone(
            &polling_agents,
        ))),
    );
    let ssh_options = cuttle_ssh::SshTransportOptions {
        remote_binary_directory: format!("{}/bin", arguments.ssh_remote_directory),
        remote_work_directory: format!("{}/work", arguments.ssh_remote_directory),
        remote_upload_directory: format!("{}/uploads", arguments.ssh_remote_directory),
        ..cuttle_ssh::SshTransportOptions::default()
    };
    transports.register(
        cuttle_orchestrator::EndpointKind::Ssh,
        Arc::new(cuttle_ssh::SshTransport::new(
            Arc::new(cuttle_server::ssh::AccountCredentials::new(
                Arc::clone(&store),
                Arc::clone(&master_key),
            )),
            ssh_options,
        )),
    );
    if !arguments.disable_built_in_worker {
        let worker_root = arguments.data_dir.join("worker");
        let executor = cuttle_exec::Executor::open(&worker_root)
            .with_context(|| format!("open the built-in worker in {}", worker_root.display()))?;
        let package_cache_root = arguments.data_dir.join("worker-packages");
        let package_cache =
            cuttle_exec::PackageCache::open(&package_cache_root).with_context(|| {
                format!(
                    "open the built-in worker's package cache in {}",
                    package_cache_root.display()
                )
            })?;
        transports.set_built_in_worker(Arc::new(
            cuttle_orchestrator::BuiltInWorker::new(executor).with_package_cache(package_cache),
        ));
    }
    runner.register(
        cuttle_orchestrator::HEALTH_TASK,
        cuttle_orchestrator::HealthCheckHandler::new(transports.clone()),
    );
    runner.register(
        cuttle_orchestrator::DEPLOY_TASK,
        cuttle_orchestrator::DeploymentHandler::new(
            transports.clone(),
            Arc::clone(&master_key),
            Some(Arc::clone(&blob_store) as Arc<dyn cuttle_orchestrator::PackageBlobs>),
        ),
    );
    runner.register(
        cuttle_orchestrator::AD_HOC_SCRIPT_TASK,
        cuttle_orchestrator::AdHocScriptHandler::new(transports),
    );
    let runner = Arc::new(runner);
    let state = AppState::new(Arc::clone(&store), outcome.installation_id, master_key)
        .with_json_body_limit(arguments.max_json_body)
        .with_http_idle_timeout(std::time::Duration::from_secs(arguments.http_idle_timeout))
        .with_blob_store(blob_store, arguments.max_package_size)
        .with_task_waker(runner.waker())
        .with_server_thumbprint(server_identity.thumbprint());
    let (stop_runner, runner_stopped) = tokio::sync::watch::channel(false);
    let runner_task = tokio::spawn(Arc::clone(&runner).run(runner_stopped.clone()));
    let agent_port_task = tokio::spawn(agent_port.serve(agent_listener, runner_stopped.clone()));
    let promotion_task = tokio::spawn(promote_automatically(state.clone(), runner_stopped.clone()));
    let retention_task = tokio::spawn(apply_retention_periodically(
        state.clone(),
        arguments.retention_interval,
        runner_stopped.clone(),
    ));
    let schedule_task = tokio::spawn(schedule_health_checks(
        Arc::clone(&store),
        runner.waker(),
        runner_stopped,
    ));
    // The line tests and scripts wait for; stdout, so it is easy to read.
    announce(&format!(
        "Cuttle agent port is listening on {agent_address}"
    ))?;
    announce(&format!("Cuttle is listening on http://{address}"))?;
    tracing::info!(
        store = store.backend_name(),
        elapsed_ms = started.elapsed().as_millis(),
        "server started"
    );
    let served = cuttle_server::serve(listener, state, shutdown_signal()).await;
    // Stop taking tasks; those still running resume at the next start.
    stop_runner.send_replace(true);
    if let Err(error) = runner_task.await {
        tracing::warn!("the task runner ended abnormally: {error}");
    }
    agent_port_task.abort();
    schedule_task.abort();
    promotion_task.abort();
    retention_task.abort();
    served.context("serve HTTP")?;
    tracing::info!("server stopped");
    Ok(())
}

/// Queues the lifecycle's automatic deployments after deployments succeed, every second,
/// until shut down. Starts a little in the past, so successes from just before a restart are
/// looked at too (queueing is idempotent).
async fn promote_automatically(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut since = chrono::Utc::now() - chrono::Duration::minutes(10);
    loop {
        match cuttle_server::promote_automatically(&state, since).await {
            Ok(newest) => since = newest,
            Err(error) => tracing::warn!("failed to queue automatic deployments: {error}"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Applies retention every `interval_seconds` (never when 0), the first time a minute after
/// start so a restart does not delete before the server has settled.
async fn apply_retention_periodically(
    state: AppState,
    interval_seconds: u64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if interval_seconds == 0 {
        return;
    }
    let mut delay = std::time::Duration::from_secs(interval_seconds.min(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(error) = cuttle_server::apply_retention(&state, chrono::Utc::now()).await {
            tracing::warn!("retention failed; it runs again at the next interval: {error}");
        }
        delay = std::time::Duration::from_secs(interval_seconds);
    }
}

/// Queues health checks as machine policies ask, every few seconds, until shut down.
async fn schedule_health_checks(
    store: Arc<dyn Store>,
    waker: cuttle_orchestrator::TaskWaker,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match cuttle_orchestrator::queue_due_health_checks(&*store, chrono::Utc::now()).await {
            Ok(queued) if !queued.is_empty() => waker.wake(),
            Ok(_) => {}
            Err(error) => tracing::warn!("failed to schedule health checks: {error}"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// This node's name for task leases: stable across restarts of the same data directory, so a
/// restarted server takes its own unfinished tasks back at once, and distinct between nodes.
fn node_name(data_directory: &std::path::Path) -> anyhow::Result<String> {
    let path = data_directory.join("node.id");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => {
            std::fs::create_dir_all(data_directory)
                .with_context(|| format!("create {}", data_directory.display()))?;
            let name = format!("node-{}", uuid::Uuid::new_v4().simple());
            std::fs::write(&path, &name).with_context(|| format!("write {}", path.display()))?;
            Ok(name)
        }
    }
}

/// The master key, from the environment or the data directory; logs where it came from.
fn load_master_key(arguments: &ServerArguments) -> anyhow::Result<cuttle_server::MasterKey> {
    let (master_key, key_source) = cuttle_server::MasterKey::load_or_create(
        non_empty_env(env_vars::CUTTLE_MASTER_KEY).as_deref(),
        &arguments.data_dir,
    )
    .context("load the master key")?;
    match &key_source {
        cuttle_server::KeySource::Environment => {
            tracing::info!("master key from {}", env_vars::CUTTLE_MASTER_KEY);
        }
        cuttle_server::KeySource::ExistingFile(path) => {
            tracing::info!(path = %path.display(), "master key loaded");
        }
        cuttle_server::KeySource::CreatedFile(path) => {
            tracing::info!(path = %path.display(), "master key created: back it up, secrets cannot be read without it");
        }
    }
    Ok(master_key)
}

async fn open_store(arguments: &ServerArguments) -> anyhow::Result<Arc<dyn Store>> {
    match &arguments.database_url {
        Some(database_url) => {
            let store = cuttle_store_postgres::PostgresStore::connect(database_url)
                .await
                .context("connect to PostgreSQL and apply migrations")?;
            Ok(Arc::new(store))
        }
        None => {
            let store = cuttle_store_sqlite::SqliteStore::open(&arguments.data_dir)
                .await
                .with_context(|| {
                    format!("open the SQLite store in {}", arguments.data_dir.display())
                })?;
            Ok(Arc::new(store))
        }
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

#[expect(
    clippy::print_stdout,
    reason = "the operator reads these lines on the console"
)]
fn announce(line: &str) -> anyhow::Result<()> {
    println!("{line}");
    std::io::stdout().flush().context("write to stdout")
}

/// Shown once, on the start that created them; only hashes are stored.
fn print_first_start_credentials(credentials: &FirstStartCredentials) -> anyhow::Result<()> {
    let mut lines = vec![
        "Cuttle has been set up. The administrator's credentials are shown this once:".to_owned(),
        format!("  Username: {}", credentials.username),
    ];
    lines.push(match &credentials.generated_password {
        Some(password) => format!("  Password: {password}"),
        None => format!(
            "  Password: (from {})",
            env_vars::CUTTLE_BOOTSTRAP_ADMIN_PASSWORD
        ),
    });
    lines.push(match &credentials.generated_api_key {
        Some(api_key) => format!("  API key:  {api_key}"),
        None => format!("  API key:  (from {})", env_vars::CUTTLE_BOOTSTRAP_API_KEY),
    });
    announce(&lines.join("\n"))
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!("could not listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!("could not listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
