//! The agent protocol on the wire: paths, headers, limits and the JSON bodies (PascalCase).
//!
//! One RPC set serves both modes. Every call is an HTTP/2 request from the server (the RPC
//! client) to the agent (the RPC service), whichever side opened the TCP connection:
//!
//! | Call | Request | Answer |
//! |---|---|---|
//! | `POST` [`CAPABILITIES_PATH`] | empty | [`Capabilities`] |
//! | `POST` [`START_SCRIPT_PATH`] | [`cuttle_exec::ScriptRequest`] | [`StartScriptResponse`] |
//! | `POST` [`SCRIPT_STATUS_PATH`] | [`ScriptTicketRequest`] | [`cuttle_exec::ScriptStatus`] |
//! | `POST` [`CANCEL_SCRIPT_PATH`] | [`ScriptTicketRequest`] | [`cuttle_exec::ScriptStatus`] |
//! | `POST` [`COMPLETE_SCRIPT_PATH`] | [`CompleteScriptRequest`] | `{}` |
//! | `PUT` [`FILES_PATH`]`/{name}` | the bytes, header [`SHA256_HEADER`] | [`UploadedFile`] |
//! | `GET` [`FILES_PATH`]`/{name}` | empty | the bytes, header [`SHA256_HEADER`] |
//! | `GET` [`ARTIFACTS_PATH`]`/{ticket}/{name}` | empty | the bytes, header [`SHA256_HEADER`] |
//! | `POST` [`LIST_PACKAGES_PATH`] | [`ListPackagesRequest`] | [`CachedPackages`] |
//! | `PUT` [`PACKAGES_PATH`]`/{sha256}{ext}` | the bytes, headers [`SHA256_HEADER`], [`PACKAGE_ID_HEADER`], [`PACKAGE_VERSION_HEADER`] | [`cuttle_exec::CachedPackage`] |
//! | `GET` [`PACKAGE_SIGNATURE_PATH`]`/{sha256}` | empty | the delta signature's bytes, header [`SHA256_HEADER`] |
//! | `POST` [`APPLY_PACKAGE_DELTA_PATH`] | [`ApplyPackageDeltaRequest`] | [`cuttle_exec::CachedPackage`] |
//!
//! The package calls (feature [`features::PACKAGE_CACHE`]) keep the agent's package cache
//! (`cuttle_exec::PackageCache`): a package is stored by its SHA-256, and a delta, uploaded to
//! [`FILES_PATH`] first, is applied to a cached earlier version into the cache (verified),
//! then deleted.
//!
//! Failures answer 4xx/5xx with an [`ErrorResponse`]. Starting a ticket twice runs its script
//! once; a staged file's relative `Source` names a file uploaded to [`FILES_PATH`].
//!
//! What this module does not do: move bytes (see `crate::service` and `crate::client`).

use serde::{Deserialize, Serialize};

/// The port a listening agent accepts the server's connections on.
pub const DEFAULT_LISTEN_PORT: u16 = 10933;
/// The server's agent port, which polling agents dial.
pub const DEFAULT_SERVER_AGENT_PORT: u16 = 10943;

/// `POST`: what this agent can do.
pub const CAPABILITIES_PATH: &str = "/agent/capabilities";
/// `POST`: start a ticket's script (idempotent per ticket).
pub const START_SCRIPT_PATH: &str = "/agent/scripts/start";
/// `POST`: a ticket's state and its log lines after a sequence.
pub const SCRIPT_STATUS_PATH: &str = "/agent/scripts/status";
/// `POST`: ask a ticket's script to stop; answers its status.
pub const CANCEL_SCRIPT_PATH: &str = "/agent/scripts/cancel";
/// `POST`: forget a ticket (its workspace and log are deleted).
pub const COMPLETE_SCRIPT_PATH: &str = "/agent/scripts/complete";
/// `PUT` or `GET` `FILES_PATH/{name}`: upload or download one file of the agent's file store.
pub const FILES_PATH: &str = "/agent/files";

/// `GET ARTIFACTS_PATH/{ticket}/{name}`: download an artifact a ticket's script collected
/// (`new_octopusartifact`), by the name its status lists; only those files can be fetched.
pub const ARTIFACTS_PATH: &str = "/agent/artifacts";

/// `POST`: which versions of a package the cache holds.
pub const LIST_PACKAGES_PATH: &str = "/agent/packages/list";
/// `PUT PACKAGES_PATH/{sha256}{extension}`: store a package file in the cache.
pub const PACKAGES_PATH: &str = "/agent/packages";
/// `GET PACKAGE_SIGNATURE_PATH/{sha256}`: the delta signature of a cached package.
pub const PACKAGE_SIGNATURE_PATH: &str = "/agent/packages/signature";
/// `POST`: patch a cached package with an uploaded delta into the cache.
pub const APPLY_PACKAGE_DELTA_PATH: &str = "/agent/packages/apply-delta";
/// The package id of a package upload.
pub const PACKAGE_ID_HEADER: &str = "x-cuttle-package-id";
/// The version of a package upload.
pub const PACKAGE_VERSION_HEADER: &str = "x-cuttle-package-version";

/// The SHA-256 of a file's bytes, in hex: sent with an upload (the agent refuses the file when
/// the bytes do not match it) and with a download (the client checks the bytes against it).
pub const SHA256_HEADER: &str = "x-cuttle-sha256";

/// The largest file an agent accepts by default, in bytes (4 GiB).
pub const DEFAULT_MAX_FILE_LENGTH: u64 = 4 << 30;
/// The largest JSON request body an agent accepts, in bytes.
pub const MAX_JSON_BODY: usize = 64 << 20;
/// The longest file name accepted.
pub const MAX_FILE_NAME_LENGTH: usize = 200;

/// The features every agent of this version has, listed in [`Capabilities::features`].
pub mod features {
    /// Ticket-based scripts: start (idempotent), status after a sequence, cancel, complete.
    pub const SCRIPTS: &str = "Scripts";
    /// Upload and download of named files, checked with SHA-256.
    pub const FILE_TRANSFER: &str = "FileTransfer";
    /// Staged files whose `Source` is a relative name resolve in the agent's file store.
    pub const STAGED_FILES_FROM_STORE: &str = "StagedFilesFromStore";
    /// Download of the artifacts a ticket's script collected.
    pub const ARTIFACTS: &str = "Artifacts";
    /// Start requests may carry a `PackageDeployment` (Octopus's deploy-a-package step, run
    /// by the conventions runner). An agent without it would ignore the field and run the
    /// empty script body: never send one to such an agent.
    pub const PACKAGE_DEPLOYMENT: &str = "PackageDeployment";
    /// The package cache calls: list by package id, upload by SHA-256, signature, apply a
    /// delta. A `PackageDeployment`'s relative `PackagePath` may name a cached file.
    pub const PACKAGE_CACHE: &str = "PackageCache";
}

/// What an agent is and what it can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    /// The agent's `cuttle` version.
    pub agent_version: String,
    /// `linux`, `macos`, `windows`… (Rust's `std::env::consts::OS`).
    pub os: String,
    /// `x86_64`, `aarch64`… (Rust's `std::env::consts::ARCH`).
    pub architecture: String,
    /// The script syntaxes whose interpreter was found on the agent's `PATH` at start.
    pub shells: Vec<cuttle_exec::ScriptSyntax>,
    /// Names from [`features`].
    pub features: Vec<String>,
    /// A polling agent's subscription id (the server knows it as `poll://<id>/`), so the
    /// server can tell which registration a connection belongs to; `None` when listening.
    #[serde(default)]
    pub subscription_id: Option<String>,
}

/// What starting a ticket did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartScriptResponse {
    pub outcome: cuttle_exec::StartOutcome,
}

/// Names a ticket and the last log line the caller already has (0 for none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScriptTicketRequest {
    pub ticket: String,
    #[serde(default)]
    pub after_sequence: u64,
}

/// Names the ticket to forget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompleteScriptRequest {
    pub ticket: String,
}

/// The empty JSON object `{}` some calls answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A file the agent stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadedFile {
    pub name: String,
    pub length: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Asks which versions of a package the cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPackagesRequest {
    pub package_id: String,
}

/// The cached versions of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CachedPackages {
    pub packages: Vec<cuttle_exec::CachedPackage>,
}

/// Patch the cached package `BasisSha256` with the delta uploaded as the file store's
/// `DeltaFileName` into the cache as `Package` (whose `Sha256` the result must have). The
/// delta file is deleted either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApplyPackageDeltaRequest {
    pub basis_sha256: String,
    pub delta_file_name: String,
    pub package: cuttle_exec::CachedPackage,
}

/// Every failure answer, as the REST API has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorResponse {
    pub error_message: String,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// Checks a file name of the agent's file store: 1–200 characters of `[A-Za-z0-9._+-]`, not
/// starting with a dot. So it is always one plain file name (no `/`, no `..`), and never one
/// of the store's hidden temporary files.
pub fn validate_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_FILE_NAME_LENGTH {
        return Err(format!(
            "a file name must be 1–{MAX_FILE_NAME_LENGTH} characters long"
        ));
    }
    if name.starts_with('.') {
        return Err(format!("the file name {name:?} must not start with '.'"));
    }
    if !name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'+'))
    {
        return Err(format!(
            "the file name {name:?} may hold only letters, digits, '.', '_', '-' and '+'"
        ));
    }
    Ok(())
}

/// The path of one file of the store: `FILES_PATH/{name}`.
pub fn file_path(name: &str) -> String {
    format!("{FILES_PATH}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_single_plain_names() {
        for good in ["app.1.2.0.zip", "a", "x+y_z-1", &"a".repeat(200)] {
            assert!(validate_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "a b",
            "é",
            "a%2Fb",
            &"a".repeat(201),
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_are_pascal_case() {
        let request: ScriptTicketRequest =
            serde_json::from_str(r#"{"Ticket":"T-1"}"#).expect("a minimal request");
        assert_eq!(request.after_sequence, 0);
        let capabilities = Capabilities {
            agent_version: "1".into(),
            os: "linux".into(),
            architecture: "x86_64".into(),
            shells: vec![cuttle_exec::ScriptSyntax::Bash],
            features: vec![features::SCRIPTS.into()],
            subscription_id: None,
        };
        let json = serde_json::to_value(&capabilities).expect("json");
        assert_eq!(json["AgentVersion"], "1");
        assert_eq!(json["Shells"][0], "Bash");
        let json = serde_json::to_value(StartScriptResponse {
            outcome: cuttle_exec::StartOutcome::AlreadyStarted,
        })
        .expect("json");
        assert_eq!(json, serde_json::json!({"Outcome": "AlreadyStarted"}));
        assert_eq!(serde_json::to_string(&Empty {}).expect("json"), "{}");
    }
}
