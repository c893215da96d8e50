//! The `cuttle` binary: parses the command line, sets up logging, and runs a subcommand.
//!
//! It stays thin: the server lives in `cuttle-server`, the stores in `cuttle-store-*`, the
//! client commands' behaviour in `cli/` over `cuttle-client`. Errors become exit codes here
//! and, for the client commands, in `cli::finish`.

mod agent;
mod cli;
mod env_vars;
mod exec;
mod quickstart;
mod reference;
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
    /// Check a server address and API key, and save them for the other commands.
    Login(cli::resources::LoginArguments),
    /// Spaces: list them.
    Space(cli::resources::SpaceArguments),
    /// Environments: list or create them.
    Environment(cli::resources::EnvironmentArguments),
    /// Projects: list, create or show them.
    Project(cli::resources::ProjectArguments),
    /// Deployment targets: list them.
    Target(cli::resources::TargetArguments),
    /// Packages of the built-in feed: push them.
    Package(cli::packages::PackageArguments),
    /// Releases: create or list them.
    Release(cli::resources::ReleaseArguments),
    /// Deploy a release to environments, and optionally follow it to its end.
    Deploy(cli::tasks::DeployArguments),
    /// Server tasks: list, show, print the log of, wait for, or cancel them.
    Task(cli::tasks::TaskArguments),
    /// Start a server, an agent and a sample project in one go, and deploy it.
    Quickstart(quickstart::QuickstartArguments),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Generate reference documentation (`cuttle docs cli` writes docs/cli.md).
    #[command(hide = true, subcommand)]
    Docs(reference::DocsCommand),
    /// Set up and run the agent on a deployment target or worker (register, run, trust…).
    Agent(agent::AgentArguments),
    /// Run one script in the foreground from a JSON request on stdin (how SSH targets run work).
    Exec(exec::ExecArguments),
    /// The conventions runner of a package deployment; the executor starts it, people do not.
    #[command(hide = true)]
    ExecPackage(ExecPackageArguments),
    /// Run the Cuttle server: the REST API, the web portal and the built-in worker.
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
    init_logging(&cli.command);
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
        Command::Quickstart(arguments) => {
            run_async(quickstart::run(arguments)).map(|()| ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            reference::print_completions(shell, <Cli as clap::CommandFactory>::command())
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Docs(command) => {
            reference::print_docs(command, <Cli as clap::CommandFactory>::command())
                .map(|()| ExitCode::SUCCESS)
        }
        // The client commands print their own errors and choose their exit codes.
        Command::Login(arguments) => {
            return cli::finish(run_async(cli::resources::login(arguments)));
        }
        Command::Space(arguments) => {
            return cli::finish(run_async(cli::resources::space(arguments)));
        }
        Command::Environment(arguments) => {
            return cli::finish(run_async(cli::resources::environment(arguments)));
        }
        Command::Project(arguments) => {
            return cli::finish(run_async(cli::resources::project(arguments)));
        }
        Command::Target(arguments) => {
            return cli::finish(run_async(cli::resources::target(arguments)));
        }
        Command::Package(arguments) => {
            return cli::finish(run_async(cli::packages::package(arguments)));
        }
        Command::Release(arguments) => {
            return cli::finish(run_async(cli::resources::release(arguments)));
        }
        Command::Deploy(arguments) => return cli::finish(run_async(cli::tasks::deploy(arguments))),
        Command::Task(arguments) => return cli::finish(run_async(cli::tasks::task(arguments))),
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

fn init_logging(command: &Command) {
    // Client commands speak through their output; their log stays quiet unless asked for.
    let default_filter = match command {
        Command::Agent(_)
        | Command::Exec(_)
        | Command::ExecPackage(_)
        | Command::Server(_)
        | Command::Template(_)
        | Command::Quickstart(_) => "info,sqlx=warn",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::CUTTLE_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definitions_are_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
