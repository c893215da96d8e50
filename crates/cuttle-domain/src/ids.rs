//! Resource kinds and their ids (`Environments-1`, `Projects-12`).
//!
//! Ids are `<Collection>-<n>` with `n` unique per kind across all spaces, as Octopus does. Paths
//! and query strings may spell the collection in any case; [`parse_resource_id`] turns any
//! spelling into the canonical one so the store only ever sees one form.

use std::fmt;

/// Every kind of resource the store keeps as a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Space,
    Environment,
    Lifecycle,
    ProjectGroup,
    Project,
    Channel,
    DeploymentTarget,
    WorkerPool,
    Worker,
    LibraryVariableSet,
    User,
    ApiKey,
    /// A project's or library variable set's variables; ids are derived from the owner's
    /// (`variableset-Projects-1`), never allocated.
    VariableSet,
    /// A server task; tasks live in their own table, not as documents.
    Task,
    /// Credentials for targets (SSH key pairs, usernames and passwords).
    Account,
    /// How and how often targets are health-checked.
    MachinePolicy,
    /// A project's deployment process, or a release's snapshot of one; ids are derived
    /// (`deploymentprocess-Projects-1`), never allocated.
    DeploymentProcess,
    /// A project's release: a version with snapshots of the process and the variables.
    Release,
    /// A release deployed to one environment; its work is a server task.
    Deployment,
    /// A task waiting for a person: guided failure or manual intervention.
    Interruption,
    /// A file in a space's built-in feed; ids are derived (`packages-Acme.1.0.0`), never
    /// allocated.
    Package,
    /// Build information pushed for a package version.
    BuildInformation,
}

impl ResourceKind {
    /// All kinds, for lookups by prefix or name.
    pub const ALL: [ResourceKind; 22] = [
        ResourceKind::Space,
        ResourceKind::Environment,
        ResourceKind::Lifecycle,
        ResourceKind::ProjectGroup,
        ResourceKind::Project,
        ResourceKind::Channel,
        ResourceKind::DeploymentTarget,
        ResourceKind::WorkerPool,
        ResourceKind::Worker,
        ResourceKind::LibraryVariableSet,
        ResourceKind::User,
        ResourceKind::ApiKey,
        ResourceKind::VariableSet,
        ResourceKind::Task,
        ResourceKind::Account,
        ResourceKind::MachinePolicy,
        ResourceKind::DeploymentProcess,
        ResourceKind::Release,
        ResourceKind::Deployment,
        ResourceKind::Interruption,
        ResourceKind::Package,
        ResourceKind::BuildInformation,
    ];

    /// The id prefix, which is also Octopus's collection name.
    pub fn id_prefix(self) -> &'static str {
        match self {
            ResourceKind::Space => "Spaces",
            ResourceKind::Environment => "Environments",
            ResourceKind::Lifecycle => "Lifecycles",
            ResourceKind::ProjectGroup => "ProjectGroups",
            ResourceKind::Project => "Projects",
            ResourceKind::Channel => "Channels",
            ResourceKind::DeploymentTarget => "Machines",
            ResourceKind::WorkerPool => "WorkerPools",
            ResourceKind::Worker => "Workers",
            ResourceKind::LibraryVariableSet => "LibraryVariableSets",
            ResourceKind::User => "Users",
            ResourceKind::ApiKey => "ApiKeys",
            ResourceKind::VariableSet => "variableset",
            ResourceKind::Task => "ServerTasks",
            ResourceKind::Account => "Accounts",
            ResourceKind::MachinePolicy => "MachinePolicies",
            ResourceKind::DeploymentProcess => "deploymentprocess",
            ResourceKind::Release => "Releases",
            ResourceKind::Deployment => "Deployments",
            ResourceKind::Interruption => "Interruptions",
            ResourceKind::Package => "packages",
            ResourceKind::BuildInformation => "BuildInformation",
        }
    }

    /// The singular type name used in `ItemType` and in messages.
    pub fn type_name(self) -> &'static str {
        match self {
            ResourceKind::Space => "Space",
            ResourceKind::Environment => "Environment",
            ResourceKind::Lifecycle => "Lifecycle",
            ResourceKind::ProjectGroup => "ProjectGroup",
            ResourceKind::Project => "Project",
            ResourceKind::Channel => "Channel",
            ResourceKind::DeploymentTarget => "DeploymentTarget",
            ResourceKind::WorkerPool => "WorkerPool",
            ResourceKind::Worker => "Worker",
            ResourceKind::LibraryVariableSet => "LibraryVariableSet",
            ResourceKind::User => "User",
            ResourceKind::ApiKey => "ApiKey",
            ResourceKind::VariableSet => "VariableSet",
            ResourceKind::Task => "Task",
            ResourceKind::Account => "Account",
            ResourceKind::MachinePolicy => "MachinePolicy",
            ResourceKind::DeploymentProcess => "DeploymentProcess",
            ResourceKind::Release => "Release",
            ResourceKind::Deployment => "Deployment",
            ResourceKind::Interruption => "Interruption",
            ResourceKind::Package => "Package",
            ResourceKind::BuildInformation => "BuildInformation",
        }
    }

    /// A lower-case human name for messages ("deployment target").
    pub fn human_name(self) -> &'static str {
        match self {
            ResourceKind::Space => "space",
            ResourceKind::Environment => "environment",
            ResourceKind::Lifecycle => "lifecycle",
            ResourceKind::ProjectGroup => "project group",
            ResourceKind::Project => "project",
            ResourceKind::Channel => "channel",
            ResourceKind::DeploymentTarget => "deployment target",
            ResourceKind::WorkerPool => "worker pool",
            ResourceKind::Worker => "worker",
            ResourceKind::LibraryVariableSet => "library variable set",
            ResourceKind::User => "user",
            ResourceKind::ApiKey => "API key",
            ResourceKind::VariableSet => "variable set",
            ResourceKind::Task => "task",
            ResourceKind::Account => "account",
            ResourceKind::MachinePolicy => "machine policy",
            ResourceKind::DeploymentProcess => "deployment process",
            ResourceKind::Release => "release",
            ResourceKind::Deployment => "deployment",
            ResourceKind::Interruption => "interruption",
            ResourceKind::Package => "package",
            ResourceKind::BuildInformation => "build information",
        }
    }

    /// The stable name stored in the database's `kind` column.
    pub fn storage_name(self) -> &'static str {
        self.type_name()
    }

    /// The inverse of [`ResourceKind::storage_name`].
    pub fn from_storage_name(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|kind| kind.storage_name() == name)
    }

    /// The id of the `number`th resource of this kind.
    pub fn format_id(self, number: i64) -> String {
        format!("{}-{number}", self.id_prefix())
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.human_name())
    }
}

/// Parses an id in any letter case into its kind and canonical spelling.
///
/// Returns `None` for anything that is not `<known prefix>-<positive number>`.
pub fn parse_resource_id(text: &str) -> Option<(ResourceKind, String)> {
    let (prefix, number) = text.rsplit_once('-')?;
    if number.is_empty() || number.len() > 18 || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number: i64 = number.parse().ok()?;
    let kind = ResourceKind::ALL
        .into_iter()
        .find(|kind| kind.id_prefix().eq_ignore_ascii_case(prefix))?;
    Some((kind, kind.format_id(number)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_any_case() {
        assert_eq!(
            parse_resource_id("environments-12"),
            Some((ResourceKind::Environment, "Environments-12".to_owned()))
        );
        assert_eq!(
            parse_resource_id("MACHINES-3"),
            Some((ResourceKind::DeploymentTarget, "Machines-3".to_owned()))
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in [
            "",
            "Environments",
            "Environments-",
            "Environments-x",
            "Nope-1",
            "Environments-1-2",
            "Environments-99999999999999999999",
            "Environments- 1",
        ] {
            assert_eq!(parse_resource_id(text), None, "{text}");
        }
    }

    #[test]
    fn storage_names_round_trip() {
        for kind in ResourceKind::ALL {
            assert_eq!(
                ResourceKind::from_storage_name(kind.storage_name()),
                Some(kind)
            );
        }
    }
}
