//! What is generated from the clap definitions themselves: shell completion scripts
//! (`cuttle completions SHELL`) and the command-line reference `docs/cli.md` (`cuttle docs
//! cli`, hidden). Generating both from the definitions keeps them true; a test fails when the
//! committed `docs/cli.md` differs from what `cuttle docs cli` prints.

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::exit_codes;
use crate::cli::output::print_line;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DocsCommand {
    /// The command-line reference, in Markdown (docs/cli.md).
    Cli,
}

pub(crate) fn print_completions(
    shell: clap_complete::Shell,
    mut command: clap::Command,
) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cuttle", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .context("write the completion script")
}

pub(crate) fn print_docs(docs: DocsCommand, command: clap::Command) -> anyhow::Result<()> {
    match docs {
        DocsCommand::Cli => print_line(cli_reference(command).trim_end()),
    }
}

/// The whole reference: an introduction written here, then every visible command's help.
fn cli_reference(command: clap::Command) -> String {
    // The reference must not depend on who generates it: environment values are hidden.
    let mut command = hide_environment_values(command);
    command.build();
    let mut text = String::from(
        "# The `cuttle` command line\n\n\
         <!-- Generated from the clap definitions by `cuttle docs cli`: do not edit by hand. \
         After changing a command, run `cargo run -p cuttle -- docs cli > docs/cli.md`; \
         a test fails while this file is stale. -->\n\n",
    );
    text.push_str(INTRODUCTION);
    text.push_str(&exit_code_table());
    text.push('\n');
    write_command(&command, 2, &mut text);
    text
}

const INTRODUCTION: &str = "\
One binary is the server, the agent and the client. The client commands (`login`, `space`,
`environment`, `project`, `target`, `package`, `release`, `deploy`, `task`) call a server's REST
API with an API key:

```sh
cuttle login --server http://127.0.0.1:8050 --api-key API-XXXXXXXX   # checks, then saves them
cuttle project list
cuttle deploy --project \"Hello World\" --release 0.0.1 --environment Test --wait
```

`cuttle login` saves the server, the key and optionally the space in
`$XDG_CONFIG_HOME/cuttle/config.toml` (else `~/.config/cuttle/config.toml`), readable only by
you (mode 0600). `--server`, `--api-key` and `--space` (or `CUTTLE_SERVER`, `CUTTLE_API_KEY`,
`CUTTLE_SPACE`) override it for one command. Without a space, commands work in the server's
default space. Resources are named by name or id (projects by slug too), ignoring case.

Every client command prints a table by default and the server's JSON with `--output json`.
Results go to stdout; errors and notes to stderr. Shell completions: `cuttle completions bash`
(or `zsh`, `fish`), e.g. `source <(cuttle completions bash)`.

### Exit codes

";

fn exit_code_table() -> String {
    let rows = [
        (0, "success"),
        (
            exit_codes::OTHER,
            "any other failure: the server unreachable, invalid input, a conflict (a package version that exists)",
        ),
        (
            exit_codes::USAGE,
            "the command line is wrong (unknown option, missing value, no server configured)",
        ),
        (
            exit_codes::AUTH,
            "no API key, or the server refused it (401) or the action (403)",
        ),
        (
            exit_codes::NOT_FOUND,
            "a named space, project, release, environment, target or task does not exist",
        ),
        (
            exit_codes::TASK_UNSUCCESSFUL,
            "a task waited for (`deploy --wait`, `task wait`, `task log --follow`) failed, was cancelled or timed out",
        ),
    ];
    let mut table = String::from("| Code | Meaning |\n| --- | --- |\n");
    for (code, meaning) in rows {
        table.push_str(&format!("| {code} | {meaning} |\n"));
    }
    table
}

/// Shows `[env: NAME]` without the value the generating shell happens to have.
fn hide_environment_values(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|subcommand| subcommand.get_name().to_owned())
        .collect();
    let mut command = command.mut_args(|argument| argument.hide_env_values(true));
    for name in names {
        command = command.mut_subcommand(name, hide_environment_values);
    }
    command
}

fn write_command(command: &clap::Command, level: usize, text: &mut String) {
    if command.is_hide_set() {
        return;
    }
    let name = command
        .get_bin_name()
        .unwrap_or(command.get_name())
        .to_owned();
    let help = command.clone().render_long_help().to_string();
    let help: Vec<&str> = help.lines().map(str::trim_end).collect();
    text.push_str(&format!(
        "{} `{name}`\n\n```text\n{}\n```\n\n",
        "#".repeat(level.min(6)),
        help.join("\n").trim()
    ));
    for subcommand in command.get_subcommands() {
        if subcommand.get_name() != "help" {
            write_command(subcommand, level + 1, text);
        }
    }
}
