//! The conventions runner of a package deployment, on its own: the same entry point as
//! `cuttle exec-package`, for this crate's tests and for machines with only the executor.
//! Usage: `cuttle-exec-package --executor-root ROOT --ticket-directory DIRECTORY`, with the
//! deployment on standard input (the executor starts it; people do not).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut executor_root: Option<PathBuf> = None;
    let mut ticket_directory: Option<PathBuf> = None;
    let mut arguments = std::env::args_os().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.to_str() {
            Some("--executor-root") => executor_root = arguments.next().map(PathBuf::from),
            Some("--ticket-directory") => ticket_directory = arguments.next().map(PathBuf::from),
            // `exec-package`, as the executor's default runner arguments name it.
            Some("exec-package") => {}
            _ => return ExitCode::from(2),
        }
    }
    let (Some(executor_root), Some(ticket_directory)) = (executor_root, ticket_directory) else {
        return ExitCode::from(2);
    };
    let code =
        cuttle_exec::package_deployment::run_conventions_process(&executor_root, &ticket_directory);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
