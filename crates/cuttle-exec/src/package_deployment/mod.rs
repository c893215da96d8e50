//! Deploying a package on this machine (Octopus's `Octopus.TentaclePackage` step, Calamari's
//! `deploy-package`): the request ([`PackageDeployment`], carried by
//! [`crate::ScriptRequest::package_deployment`]), and the conventions that carry it out.
//!
//! A package deployment is a ticket like any script: the executor starts the *conventions
//! runner* (`cuttle exec-package`, the same binary, see [`crate::PackageRunner`]) in place of a
//! script's interpreter, as the leader of the ticket's process group, and hands it the
//! deployment and the variables on standard input. Its output therefore goes through the same
//! pipeline as a script's (service messages, masking, sequence-numbered persisted log lines,
//! output variables); cancel kills its whole process tree; the isolation mutex, timeouts and
//! restart semantics are the ticket's. Each configured or packaged script is a child of the
//! runner, wrapped in the usual bootstrap (so `set_octopusvariable`, `fail_step`… work).
//!
//! Conventions, in order (spec §2.3; module `conventions`): already installed (skip),
//! extract (never over an existing directory: `_1`, `_2`…), PreDeploy (configured, then
//! packaged), substitute variables in files, structured configuration variables, custom
//! installation directory (purge with exclusions, copy, work there), Deploy (packaged, then
//! configured), PostDeploy (packaged, then configured); on failure DeployFailed, then fail.
//! The deployment journal and retention (module `deployment_journal`) end each deployment.
//!
//! What this module does not do: acquire or transfer the package (it is already on this
//! machine), evaluate the configured scripts' `#{…}` (the server sends final text; files are
//! substituted here because they are only on this machine), XML config transforms, IIS or
//! other feature hooks, or run PowerShell scripts found in packages.

mod conventions;
mod deployment_journal;
mod files;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ExecError;
use crate::request::ScriptSyntax;

pub use conventions::run_conventions_process;
pub(crate) use conventions::runner_input;
pub use deployment_journal::{
    DeploymentJournal, JOURNAL_FILE_NAME, JournalEntry, journal_path_for_executor_root,
};

/// The output variable naming where the package was installed.
pub const INSTALLATION_DIRECTORY_PATH_VARIABLE: &str =
    "Octopus.Action.Package.InstallationDirectoryPath";
/// The output variable naming the custom installation directory, when one is used.
pub const CUSTOM_INSTALLATION_DIRECTORY_VARIABLE: &str =
    "Octopus.Action.Package.CustomInstallationDirectory";
/// A script that sets this to `True` skips the conventions after it.
pub const SKIP_REMAINING_CONVENTIONS_VARIABLE: &str = "Octopus.Action.SkipRemainingConventions";

/// One package to deploy on this machine, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackageDeployment {
    /// The package's id (`Acme.Web`).
    pub package_id: String,
    /// The package's version (`1.2.0`).
    pub version: String,
    /// The package on this machine: an archive file (zip, nupkg, tar, tar.gz, tar.bz2, told
    /// by its file name's extension; extracted with `cuttle-packages`), or a directory
    /// holding the package's contents, which is copied. A relative path resolves in the agent's file store (the
    /// agent resolves it before starting the ticket, as for staged files).
    pub package_path: PathBuf,
    /// The package file's SHA-256 (hex); checked before extracting when given.
    #[serde(default)]
    pub package_sha256: Option<String>,
    /// Where `[<Tenant>/]<Environment>/<PackageId>/<Version>` is created; `None` means
    /// `Applications` beside the executor's root (`<agent home>/Applications`).
    #[serde(default)]
    pub applications_directory: Option<PathBuf>,
    /// The environment's name (a directory level under the applications directory).
    pub environment_name: String,
    /// The tenant's name, for tenanted deployments (a directory level above the environment).
    #[serde(default)]
    pub tenant_name: Option<String>,
    /// Scripts configured on the step (`Octopus.Action.CustomScripts.<Stage>.<ext>`).
    #[serde(default)]
    pub configured_scripts: Vec<ConfiguredScript>,
    /// Whether `PreDeploy.sh`… found in the package run (`Octopus.Action.Package.RunScripts`).
    #[serde(default = "default_true")]
    pub run_packaged_scripts: bool,
    /// Globs of files whose `#{…}` are substituted (`Octopus.Action.SubstituteInFiles.TargetFiles`),
    /// relative to the installation directory; empty means the feature is off.
    #[serde(default)]
    pub substitute_in_files: Vec<String>,
    /// Globs of JSON, YAML, XML or properties files whose values are replaced by variables
    /// named like their paths (`Octopus.Action.StructuredConfigurationVariables.Targets`).
    #[serde(default)]
    pub structured_variable_files: Vec<String>,
    /// Copy the extracted package there and work there (`Octopus.Action.Package.CustomInstallationDirectory`).
    #[serde(default)]
    pub custom_installation_directory: Option<CustomInstallationDirectory>,
    /// Skip everything when the journal has a successful install of this package version for
    /// the same retention policy set (`Octopus.Action.Package.SkipIfAlreadyInstalled`).
    #[serde(default)]
    pub skip_if_already_installed: bool,
    /// Keep the current install and this many earlier successful ones of the same retention
    /// policy set; `None` keeps all.
    #[serde(default)]
    pub retention_keep_count: Option<u32>,
    /// Who the journal entry belongs to.
    pub journal: JournalIdentity,
}

fn default_true() -> bool {
    true
}

/// A script configured on the step for one stage.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfiguredScript {
    pub stage: DeploymentStage,
    pub syntax: ScriptSyntax,
    pub body: String,
}

impl std::fmt::Debug for ConfiguredScript {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may hold substituted secrets.
        formatter
            .debug_struct("ConfiguredScript")
            .field("stage", &self.stage)
            .field("syntax", &self.syntax)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// The stages scripts can run at, as Octopus names them (and packaged scripts are named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentStage {
    PreDeploy,
    Deploy,
    PostDeploy,
    DeployFailed,
}

impl DeploymentStage {
    /// The name as in `PreDeploy.sh` and `Octopus.Action.CustomScripts.PreDeploy.sh`.
    pub fn name(self) -> &'static str {
        match self {
            DeploymentStage::PreDeploy => "PreDeploy",
            DeploymentStage::Deploy => "Deploy",
            DeploymentStage::PostDeploy => "PostDeploy",
            DeploymentStage::DeployFailed => "DeployFailed",
        }
    }
}

/// Where to install instead of the extraction directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomInstallationDirectory {
    /// An absolute path, not inside the extraction directory.
    pub path: PathBuf,
    /// Delete what is there first (`…CustomInstallationDirectoryShouldBePurgedBeforeDeployment`).
    #[serde(default)]
    pub purge_before_deployment: bool,
    /// Globs (relative to `path`) of what a purge keeps (`…PurgeExclusions`); a kept
    /// directory is kept whole.
    #[serde(default)]
    pub purge_exclusions: Vec<String>,
}

/// The journal entry's identity: Octopus's `RetentionPolicySet` is made of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JournalIdentity {
    /// The entry's id (`Octopus.Deployment.Id`; the ticket when empty).
    #[serde(default)]
    pub deployment_id: String,
    pub environment_id: String,
    pub project_id: String,
    pub step_name: String,
    pub machine_id: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

impl JournalIdentity {
    /// `<EnvironmentId>/<ProjectId>/<StepName>/<MachineId>/<TenantId or "<default>">`.
    pub fn retention_policy_set(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.environment_id,
            self.project_id,
            self.step_name,
            self.machine_id,
            self.tenant_id.as_deref().unwrap_or("<default>")
        )
    }
}

impl PackageDeployment {
    /// Checks what becomes a path on this machine: ids, versions and names are single
    /// directory names; a custom installation directory is absolute.
    pub fn validate(&self) -> Result<(), ExecError> {
        let invalid = |message: String| Err(ExecError::InvalidRequest(message));
        for (what, value) in [
            ("package id", self.package_id.as_str()),
            ("package version", self.version.as_str()),
            ("environment name", self.environment_name.as_str()),
        ]
        .into_iter()
        .chain(
            self.tenant_name
                .as_deref()
                .map(|name| ("tenant name", name)),
        ) {
            if !is_single_directory_name(value) {
                return invalid(format!(
                    "the {what} {value:?} must be usable as one directory name"
                ));
            }
        }
        if let Some(custom) = &self.custom_installation_directory
            && !custom.path.is_absolute()
        {
            return invalid(format!(
                "the custom installation directory {} must be an absolute path",
                custom.path.display()
            ));
        }
        Ok(())
    }
}

/// Not empty, not `.` or `..`, no separators or NUL, at most 200 bytes.
fn is_single_directory_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 200
        && value != "."
        && value != ".."
        && !value.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> PackageDeployment {
        serde_json::from_value(serde_json::json!({
            "PackageId": "Acme.Web",
            "Version": "1.0.0",
            "PackagePath": "/tmp/Acme.Web.1.0.0.zip",
            "EnvironmentName": "Production",
            "Journal": {
                "EnvironmentId": "Environments-1",
                "ProjectId": "Projects-1",
                "StepName": "Deploy web",
                "MachineId": "Machines-1"
            }
        }))
        .expect("a minimal deployment parses")
    }

    #[test]
    fn a_minimal_request_takes_the_defaults() {
        let deployment = deployment();
        assert!(deployment.run_packaged_scripts);
        assert!(deployment.configured_scripts.is_empty());
        assert_eq!(deployment.retention_keep_count, None);
        assert_eq!(
            deployment.journal.retention_policy_set(),
            "Environments-1/Projects-1/Deploy web/Machines-1/<default>"
        );
        assert!(deployment.validate().is_ok());
    }

    #[test]
    fn names_that_would_escape_are_refused() {
        for bad in ["..", "a/b", "", "x\\y"] {
            let mut deployment = deployment();
            deployment.version = bad.to_owned();
            assert!(deployment.validate().is_err(), "{bad:?}");
        }
        let mut deployment = deployment();
        deployment.custom_installation_directory = Some(CustomInstallationDirectory {
            path: "relative/dir".into(),
            purge_before_deployment: false,
            purge_exclusions: Vec::new(),
        });
        assert!(deployment.validate().is_err());
    }
}
