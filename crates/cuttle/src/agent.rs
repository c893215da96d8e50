//! `cuttle agent …`: set up and run the agent (Cuttle's Tentacle) on a deployment target or a
//! worker. The behaviour lives in `cuttle-agent`; this module parses arguments, picks the
//! home directory, handles signals and prints what happened.
//!
//! Lines tests wait for (stdout): `Cuttle agent is listening on ADDR` (listening mode, once
//! bound) and `Cuttle agent is connected to ADDR` (polling mode, at every connection).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use cuttle_agent::protocol::DEFAULT_LISTEN_PORT;
use cuttle_agent::registration::{
    AGENT_CERTIFICATE_NAME, ConnectionMode, MachineRole, RegisterOptions, RegistrationOutcome,
};
use cuttle_agent::run::{RunEvent, RunOptions};
use cuttle_agent::{AgentHome, AgentMode};

use crate::env_vars;

#[derive(Debug, clap::Args)]
pub(crate) struct AgentArguments {
    /// The agent's home directory: agent.json, its certificate, script workspaces and files.
    /// Default: ~/.cuttle-agent.
    #[arg(long, global = true, env = env_vars::CUTTLE_AGENT_HOME)]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AgentCommand {
    /// Register this machine with a server as a deployment target.
    Register(RegisterArguments),
    /// Register this machine with a server as a worker.
    RegisterWorker(RegisterWorkerArguments),
    /// Run the agent until SIGTERM or Ctrl-C: listen for the server, or poll it.
    Run(RunArguments),
    /// Print this agent's certificate thumbprint (the certificate is created on first use).
    ShowThumbprint,
    /// Trust a server's certificate thumbprint (to add this agent from the server's side).
    Trust {
        /// The server's SHA-256 thumbprint (`cuttle server show-thumbprint` prints it).
        #[arg(long)]
        thumbprint: String,
    },
    /// Delete this agent's machine from the server and forget the registration.
    Deregister {
        /// The server's address; default: the one the agent registered with.
        #[arg(long)]
        server: Option<String>,
        /// An API key allowed to delete machines.
        #[arg(long, env = env_vars::CUTTLE_API_KEY, hide_env_values = true)]
        api_key: String,
    },
}

/// The options `register` and `register-worker` share.
#[derive(Debug, clap::Args)]
struct ConnectionArguments {
    /// The server's address, e.g. https://cuttle.example.com.
    #[arg(long)]
    server: String,

    /// An API key allowed to create machines.
    #[arg(long, env = env_vars::CUTTLE_API_KEY, hide_env_values = true)]
    api_key: String,

    /// The space's name or id; default: the default space.
    #[arg(long)]
    space: Option<String>,

    /// The machine's name; default: this host's name.
    #[arg(long)]
    name: Option<String>,

    /// Dial the server instead of listening (for agents behind NAT or firewalls).
    #[arg(long)]
    polling: bool,

    /// Polling: the server's agent port, HOST:PORT; default: the host of --server, port 10943.
    #[arg(long, requires = "polling", value_name = "HOST:PORT")]
    server_comms_address: Option<String>,

    /// Listening: the port the server connects to.
    #[arg(long, conflicts_with = "polling", default_value_t = DEFAULT_LISTEN_PORT)]
    listen_port: u16,

    /// Listening: the host name the server dials; default: this host's name.
    #[arg(long, conflicts_with = "polling")]
    public_hostname: Option<String>,
}

#[derive(Debug, clap::Args)]
struct RegisterArguments {
    #[command(flatten)]
    connection: ConnectionArguments,

    /// An environment (name or id) the target deploys to; repeat for several.
    #[arg(long = "environment", required = true, value_name = "ENVIRONMENT")]
    environments: Vec<String>,

    /// A target role (tag) such as web-server; repeat for several.
    #[arg(long = "role", required = true, value_name = "ROLE")]
    roles: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RegisterWorkerArguments {
    #[command(flatten)]
    connection: ConnectionArguments,

    /// A worker pool (name or id) to join; repeat for several.
    #[arg(long = "worker-pool", required = true, value_name = "POOL")]
    worker_pools: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RunArguments {
    /// Listening mode: the address to listen on instead of every interface on the configured
    /// port. Port 0 picks a free port, printed at start.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

pub(crate) async fn run(arguments: AgentArguments) -> anyhow::Result<()> {
    let home = agent_home(arguments.home)?;
    match arguments.command {
        AgentCommand::Register(register) => {
            let role = MachineRole::DeploymentTarget {
                environments: register.environments,
                roles: register.roles,
            };
            register_machine(&home, register.connection, role).await
        }
        AgentCommand::RegisterWorker(register) => {
            let role = MachineRole::Worker {
                worker_pools: register.worker_pools,
            };
            register_machine(&home, register.connection, role).await
        }
        AgentCommand::Run(run) => run_agent(&home, run).await,
        AgentCommand::ShowThumbprint => {
            let (identity, _) = home
                .identity(AGENT_CERTIFICATE_NAME)
                .context("load the agent's certificate")?;
            announce(identity.thumbprint())
        }
        AgentCommand::Trust { thumbprint } => {
            let mut config = home
                .load_config()
                .context("load the agent's configuration")?;
            let (canonical, added) = config.trust(&thumbprint)?;
            home.save_config(&config)
                .context("save the agent's configuration")?;
            if added {
                announce(&format!("Trusted the server thumbprint {canonical}"))
            } else {
                announce(&format!(
                    "The server thumbprint {canonical} was already trusted"
                ))
            }
        }
        AgentCommand::Deregister { server, api_key } => {
            let registration =
                cuttle_agent::registration::deregister(&home, server.as_deref(), &api_key).await?;
            announce(&format!(
                "Deregistered {} {} ({})",
                registration.kind, registration.id, registration.name
            ))
        }
    }
}

/// `--home`, `CUTTLE_AGENT_HOME`, or the default under the user's home, made absolute.
fn agent_home(home: Option<PathBuf>) -> anyhow::Result<AgentHome> {
    let root = home.unwrap_or_else(|| {
        let user_home = std::env::var_os("HOME").map(PathBuf::from);
        AgentHome::default_location(user_home.as_deref())
    });
    let root = std::path::absolute(&root)
        .with_context(|| format!("resolve the home directory {}", root.display()))?;
    Ok(AgentHome::new(root))
}

async fn register_machine(
    home: &AgentHome,
    connection: ConnectionArguments,
    role: MachineRole,
) -> anyhow::Result<()> {
    let mode = if connection.polling {
        ConnectionMode::Polling {
            server_comms_address: connection.server_comms_address,
        }
    } else {
        ConnectionMode::Listening {
            port: connection.listen_port,
        }
    };
    let options = RegisterOptions {
        server_url: connection.server.clone(),
        api_key: connection.api_key,
        space: connection.space,
        name: connection.name,
        role,
        mode,
        public_hostname: connection.public_hostname,
    };
    let outcome = cuttle_agent::registration::register(home, options).await?;
    print_registration(home, &connection.server, &outcome)
}

fn print_registration(
    home: &AgentHome,
    server: &str,
    outcome: &RegistrationOutcome,
) -> anyhow::Result<()> {
    let registration = &outcome.registration;
    let mut lines = vec![
        format!(
            "Registered this agent with {server} as {} {} ({}) in space {}.",
            registration.kind, registration.id, registration.name, outcome.space_name
        ),
        format!("  Machine id:        {}", registration.id),
    ];
    match outcome.mode {
        AgentMode::Listening => lines.push(format!(
            "  Mode:              listening; the server dials {}",
            outcome.endpoint_uri
        )),
        AgentMode::Polling => lines.push(format!(
            "  Mode:              polling {} as {}",
            outcome.server_comms_address.as_deref().unwrap_or_default(),
            outcome.endpoint_uri
        )),
    }
    lines.push(format!(
        "  Agent thumbprint:  {}{}",
        outcome.agent_thumbprint,
        if outcome.identity_created {
            " (new certificate)"
        } else {
            ""
        }
    ));
    lines.push(format!(
        "  Server thumbprint: {} (trusted)",
        registration.server_thumbprint
    ));
    lines.push(format!(
        "  Configuration:     {}",
        home.config_path().display()
    ));
    lines.push("Start it with `cuttle agent run`.".to_owned());
    announce(&lines.join("\n"))
}

async fn run_agent(home: &AgentHome, arguments: RunArguments) -> anyhow::Result<()> {
    let options = RunOptions {
        listen_address: arguments.listen,
        ..RunOptions::default()
    };
    tracing::info!(home = %home.root().display(), "starting the agent");
    cuttle_agent::run::run(
        home,
        options,
        |event| {
            let line = match event {
                RunEvent::Listening(address) => format!("Cuttle agent is listening on {address}"),
                RunEvent::Connected(address) => format!("Cuttle agent is connected to {address}"),
            };
            if let Err(error) = announce(&line) {
                tracing::warn!("{error:#}");
            }
        },
        shutdown_signal(),
    )
    .await?;
    tracing::info!("agent stopped");
    Ok(())
}

#[expect(
    clippy::print_stdout,
    reason = "the operator and tests read these lines on the console"
)]
fn announce(line: &str) -> anyhow::Result<()> {
    println!("{line}");
    std::io::stdout().flush().context("write to stdout")
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
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
    tracing::info!("shutting down the agent");
}
