//! The bootstrap each script is wrapped with, so Octopus scripts run unchanged.
//!
//! For each syntax the ticket directory gets a bootstrap and the script (both mode 0600):
//! - bash: `bash --noprofile --norc bootstrap.sh script.sh ARGS…`; the bootstrap declares
//!   `octopus_parameters`, reads the variables preamble from stdin, defines
//!   `get_octopusvariable`, `set_octopusvariable NAME VALUE [-sensitive]`,
//!   `new_octopusartifact PATH [NAME]`, `fail_step MESSAGE`, `update_progress PERCENT MESSAGE`,
//!   `write_verbose|highlight|wait|warning`, `encode_servicemessagevalue`, then sources the
//!   script (as Calamari does), so the helpers are plain shell functions.
//! - sh: `sh bootstrap.sh script.sh ARGS…`, the same helpers in POSIX sh (no
//!   `octopus_parameters`).
//! - Python: `python3 -u bootstrap.py script.py ARGS…`; `octopusvariables`,
//!   `get_octopusvariable(name)`, `set_octopusvariable(name, value, sensitive=False)`,
//!   `createartifact(path, fileName=None)` (alias `new_octopusartifact`),
//!   `updateprogress` (alias `update_progress`), `failstep` (alias `fail_step`),
//!   `printverbose|printhighlight|printwait|printwarning`; the script runs as `__main__`.
//! - PowerShell: `pwsh -NoLogo -NoProfile -NonInteractive -File bootstrap.ps1 script.ps1 ARGS…`;
//!   `$OctopusParameters`, `Set-OctopusVariable`, `New-OctopusArtifact`, `Fail-Step`,
//!   `Update-Progress`, `Write-Highlight`, `Write-Wait`.
//!
//! How the variables reach the helpers is described in [`crate::variables`]. Windows line ends
//! in shell and Python bodies become Unix ones, as Calamari does.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;

use crate::error::ExecError;
use crate::journal::create_private;
use crate::request::ScriptSyntax;

const HELPERS_SH: &str = include_str!("bootstrap/helpers.sh");
const BASH_BOOTSTRAP: &str = include_str!("bootstrap/bash.sh");
const SH_BOOTSTRAP: &str = include_str!("bootstrap/sh.sh");
const PYTHON_BOOTSTRAP: &str = include_str!("bootstrap/python.py");
const POWERSHELL_BOOTSTRAP: &str = include_str!("bootstrap/powershell.ps1");
const HELPERS_MARKER: &str = "#### HELPERS ####";

/// The program and arguments that run a prepared script.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: OsString,
    pub(crate) arguments: Vec<OsString>,
}

/// Writes the bootstrap and the script into `write_directory` and says how to run them once
/// that directory has become `ticket_directory`.
pub(crate) fn prepare(
    write_directory: &Path,
    ticket_directory: &Path,
    syntax: ScriptSyntax,
    body: &str,
    arguments: &[String],
) -> Result<Launch, ExecError> {
    let (extension, bootstrap) = match syntax {
        ScriptSyntax::Bash => ("sh", BASH_BOOTSTRAP.replace(HELPERS_MARKER, HELPERS_SH)),
        ScriptSyntax::Sh => ("sh", SH_BOOTSTRAP.replace(HELPERS_MARKER, HELPERS_SH)),
        ScriptSyntax::Python => ("py", PYTHON_BOOTSTRAP.to_owned()),
        ScriptSyntax::PowerShell => ("ps1", POWERSHELL_BOOTSTRAP.to_owned()),
    };
    let body = match syntax {
        ScriptSyntax::PowerShell => body.to_owned(),
        _ => body.replace("\r\n", "\n"),
    };
    let bootstrap_name = format!("bootstrap.{extension}");
    let script_name = format!("script.{extension}");
    write_new(&write_directory.join(&bootstrap_name), bootstrap.as_bytes())?;
    write_new(&write_directory.join(&script_name), body.as_bytes())?;
    let bootstrap_path = ticket_directory.join(bootstrap_name);
    let script_path = ticket_directory.join(script_name);

    let (program, mut launch_arguments): (&'static str, Vec<OsString>) = match syntax {
        ScriptSyntax::Bash => ("bash", vec!["--noprofile".into(), "--norc".into()]),
        ScriptSyntax::Sh => ("sh", Vec::new()),
        ScriptSyntax::Python => ("python3", vec!["-u".into()]),
        ScriptSyntax::PowerShell => (
            "pwsh",
            vec![
                "-NoLogo".into(),
                "-NoProfile".into(),
                "-NonInteractive".into(),
                "-File".into(),
            ],
        ),
    };
    launch_arguments.push(bootstrap_path.into_os_string());
    launch_arguments.push(script_path.into_os_string());
    launch_arguments.extend(arguments.iter().map(OsString::from));
    Ok(Launch {
        program: program.into(),
        arguments: launch_arguments,
    })
}

fn write_new(path: &Path, contents: &[u8]) -> Result<(), ExecError> {
    let mut file = create_private(path)?;
    file.write_all(contents)
        .map_err(ExecError::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_bootstraps_include_the_helpers() {
        let directory = tempfile::tempdir().expect("tempdir");
        let launch = prepare(
            directory.path(),
            directory.path(),
            ScriptSyntax::Bash,
            "echo a\r\necho b\r\n",
            &["x".into()],
        )
        .expect("prepare");
        assert_eq!(launch.program, "bash");
        assert_eq!(launch.arguments.len(), 5);
        let bootstrap =
            std::fs::read_to_string(directory.path().join("bootstrap.sh")).expect("bootstrap");
        assert!(bootstrap.contains("set_octopusvariable()"));
        assert!(!bootstrap.contains(HELPERS_MARKER));
        let script = std::fs::read_to_string(directory.path().join("script.sh")).expect("script");
        assert_eq!(script, "echo a\necho b\n");
    }
}
