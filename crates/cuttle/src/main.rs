//! The `cuttle` binary: parses the command line, sets up logging, and runs a subcommand.
//!
//! It stays thin: the server lives in `cuttle-server`, the stores in `cuttle-store-*`. Errors
//! become exit codes here and nowhere else.

mod env_vars;
mod server;

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
    /// Run the Cuttle server: the REST API and, later, the web portal and built-in worker.
    Server(server::ServerArguments),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(arguments) => server::run(arguments).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::CUTTLE_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
