//! The `cuttle` binary: parses the command line, sets up logging, and runs a subcommand.
//!
//! It stays thin: the server lives in `cuttle-server`, the stores in `cuttle-store-*`. Errors
//! become exit codes here and nowhere else.

mod agent;
mod env_vars;
mod exec;
mod server;
mod template;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Cuttle: self-hosted continuous delivery and release orchestration.
#[derive(Debug, Parser)]
#[command(name = "cuttle", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up and run the agent on a deployment target or worker (register, run, trust…).
    Agent(agent::AgentArguments),
    /// Run one script in the foreground from a JSON request on stdin (how SSH targets run work).
    Exec(exec::ExecArguments),
    /// The conventions runner of a package deployment; the executor starts it, people do not.
    #[command(hide = true)]
    ExecPackage(ExecPackageArguments),
    /// Run the Cuttle server: the REST API and, later, the web portal and built-in worker.
    Server(server::ServerArguments),
    /// Evaluate templates and structured replacements as a deployment would.
    #[command(subcommand)]
    Template(template::TemplateCommand),
}

/// `cuttle exec-package`: where the executor's root and the ticket are.
#[derive(Debug, clap::Args)]
struct ExecPackageArguments {
    #[arg(long)]
    executor_root: std::path::PathBuf,
    #[arg(long)]
    ticket_directory: std::path::PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        // The template engine is pure: no runtime needed.
        Command::Template(command) => template::run(command),
        // The agent waits on sockets and child processes; one thread does that and keeps an
        // idle agent small.
        Command::Agent(arguments) => {
            run_on_one_thread(agent::run(arguments)).map(|()| ExitCode::SUCCESS)
        }
        // Builds its own runtime: its exit code says whether it wrote an error record.
        Command::Exec(arguments) => exec::run(arguments),
        // Synchronous: it runs scripts one after another and forwards their output.
        Command::ExecPackage(arguments) => Ok(ExitCode::from(
            u8::try_from(cuttle_exec::package_deployment::run_conventions_process(
                &arguments.executor_root,
                &arguments.ticket_directory,
            ))
            .unwrap_or(1),
        )),
        Command::Server(arguments) => run_async(server::run(arguments)).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        tracing::error!("{error:#}");
        ExitCode::FAILURE
    })
}

/// Runs a future to completion on a multi-threaded runtime.
fn run_async(future: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("start the async runtime: {error}"))?;
    runtime.block_on(future)
}

/// Runs a future on a single-threaded runtime.
fn run_on_one_thread(
    future: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("start the async runtime: {error}"))?;
    runtime.block_on(future)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::CUTTLE_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
