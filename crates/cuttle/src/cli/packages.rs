//! `cuttle package push`: pushes package files to the space's built-in feed, streamed from
//! disk (`cuttle-client` never holds a whole file), with a progress bar on stderr when it is
//! a terminal.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use cuttle_client::OverwriteMode;
use serde_json::Value;

use super::output::{Table, human_bytes, print_json};
use super::{ConnectionOptions, OutputFormat, Session};

/// `cuttle package …`.
#[derive(Debug, clap::Args)]
pub(crate) struct PackageArguments {
    #[command(flatten)]
    pub(crate) connection: ConnectionOptions,
    #[command(subcommand)]
    pub(crate) command: PackageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PackageCommand {
    /// Push package files to the built-in feed. Each file's name gives the package id and
    /// version: Acme.Web.1.2.3.zip is Acme.Web 1.2.3 (.zip, .nupkg, .tar.gz, .tgz, .tar,
    /// .tar.bz2). Files are pushed in order; the first failure stops the rest.
    Push {
        /// The package files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// What to do when the feed already holds the version.
        #[arg(long, value_enum, default_value_t = OverwriteModeArgument::FailIfExists)]
        overwrite_mode: OverwriteModeArgument,
    },
}

/// `--overwrite-mode`, spelled as Octopus spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "PascalCase")]
pub(crate) enum OverwriteModeArgument {
    /// Refuse the push (the server answers 409).
    FailIfExists,
    /// Replace the stored package.
    OverwriteExisting,
    /// Keep the stored package and carry on.
    IgnoreIfExists,
}

impl From<OverwriteModeArgument> for OverwriteMode {
    fn from(argument: OverwriteModeArgument) -> OverwriteMode {
        match argument {
            OverwriteModeArgument::FailIfExists => OverwriteMode::FailIfExists,
            OverwriteModeArgument::OverwriteExisting => OverwriteMode::OverwriteExisting,
            OverwriteModeArgument::IgnoreIfExists => OverwriteMode::IgnoreIfExists,
        }
    }
}

pub(crate) async fn package(arguments: PackageArguments) -> anyhow::Result<()> {
    let session = Session::open(&arguments.connection).await?;
    let PackageCommand::Push {
        files,
        overwrite_mode,
    } = arguments.command;
    let show_progress = std::io::stderr().is_terminal();
    let mut pushed = Vec::new();
    for file in &files {
        let length = std::fs::metadata(file)
            .with_context(|| format!("read {}", file.display()))?
            .len();
        let bar = if show_progress {
            progress_bar(length, file)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let bar_for_upload = bar.clone();
        let result = session
            .client
            .push_package(
                &session.space_id,
                file,
                overwrite_mode.into(),
                move |sent| {
                    bar_for_upload.set_position(sent);
                },
            )
            .await;
        bar.finish_and_clear();
        let package = result.with_context(|| format!("push {}", file.display()))?;
        pushed.push(serde_json::to_value(package)?);
    }
    if session.output == OutputFormat::Json {
        return print_json(&Value::Array(pushed));
    }
    let mut table = Table::new(&["Package", "Version", "Size", "SHA-256", "Id"]);
    for package in &pushed {
        let size = package
            .get("PackageSizeBytes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        table.row(vec![
            super::text(package, "PackageId"),
            super::text(package, "Version"),
            human_bytes(size),
            super::text(package, "Hash"),
            super::text(package, "Id"),
        ]);
    }
    table.print()
}

fn progress_bar(length: u64, file: &std::path::Path) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    bar.set_message(name);
    bar
}
