//! Packages in the built-in feed and the build information pushed for them.
//!
//! A [`Package`] is the record of one uploaded file: id, version, size and the SHA-256 of its
//! content, which is kept apart in the server's content-addressed blob store. Octopus gives a
//! built-in package the id `packages-<PackageId>.<Version>` in every space, so the store's
//! document id (unique across spaces) is derived from the space and that id instead
//! ([`package_document_id`]); the API shows [`Package::id`].
//!
//! Package ids and versions compare ignoring case (`Acme.Web` and `acme.web` are one package),
//! as Octopus and NuGet do: the document's name is `<PackageId>.<Version>`, unique per space.

use serde::{Deserialize, Serialize};

use crate::ids::ResourceKind;
use crate::validation::{FieldError, Reference, Resource};

/// The id of the built-in feed, the same in every space.
pub const BUILT_IN_FEED_ID: &str = "feeds-builtin";

/// The prefix of built-in package ids.
pub const PACKAGE_ID_PREFIX: &str = "packages-";

/// Octopus's id for a built-in package: `packages-Acme.Web.1.0.0`.
pub fn package_resource_id(package_id: &str, version: &str) -> String {
    format!("{PACKAGE_ID_PREFIX}{package_id}.{version}")
}

/// The store's id for a package document: the space, then Octopus's id.
pub fn package_document_id(space_id: &str, package_id: &str, version: &str) -> String {
    format!("{space_id}/{}", package_resource_id(package_id, version))
}

/// One package file in a space's built-in feed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct Package {
    /// The store's id, from [`package_document_id`]; never shown by the API.
    pub document_id: String,
    /// Octopus's id, from [`package_resource_id`].
    pub id: String,
    pub space_id: String,
    pub package_id: String,
    pub version: String,
    /// `.zip`, `.tar.gz`, … (a `.tgz` upload is stored as `.tar.gz`).
    pub file_extension: String,
    /// When the file was uploaded, RFC 3339 UTC.
    pub published: String,
    pub package_size_bytes: u64,
    /// SHA-256 of the file, lower-case hex: the key of its content in the blob store.
    pub hash: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub release_notes: Option<String>,
}

impl Resource for Package {
    const KIND: ResourceKind = ResourceKind::Package;

    #[expect(
        clippy::misnamed_getters,
        reason = "the store's id is the document id; `id` is Octopus's, the same in every space"
    )]
    fn id(&self) -> &str {
        &self.document_id
    }
    fn set_id(&mut self, id: String) {
        self.document_id = id;
    }
    /// `<PackageId>.<Version>`: unique per space, ignoring case.
    fn name(&self) -> &str {
        self.id.strip_prefix(PACKAGE_ID_PREFIX).unwrap_or(&self.id)
    }
    fn space_id(&self) -> Option<&str> {
        Some(&self.space_id)
    }
    fn set_space_id(&mut self, space_id: &str) {
        space_id.clone_into(&mut self.space_id);
    }
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    /// Packages are built by the server from a parsed file name; nothing to normalize.
    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Build information for one package version (`POST /api/{space}/build-information`): where
/// the package came from. Kept as sent, apart from the ids.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct BuildInformation {
    /// `BuildInformation-<n>`, allocated.
    pub id: String,
    pub space_id: String,
    pub package_id: String,
    pub version: String,
    /// `<PackageId>.<Version>`, set by the server: unique per space, ignoring case.
    pub name: String,
    /// The body's `OctopusBuildInformation` object (branch, build URL, commits, …).
    pub octopus_build_information: serde_json::Value,
    /// When it was stored, RFC 3339 UTC.
    pub created: String,
}

impl Resource for BuildInformation {
    const KIND: ResourceKind = ResourceKind::BuildInformation;

    fn id(&self) -> &str {
        &self.id
    }
    fn set_id(&mut self, id: String) {
        self.id = id;
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn space_id(&self) -> Option<&str> {
        Some(&self.space_id)
    }
    fn set_space_id(&mut self, space_id: &str) {
        space_id.clone_into(&mut self.space_id);
    }
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    fn normalize_and_validate(&mut self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.package_id = self.package_id.trim().to_owned();
        self.version = self.version.trim().to_owned();
        if self.package_id.is_empty() {
            errors.push(FieldError::new("PackageId", "PackageId is required"));
        }
        if self.version.is_empty() {
            errors.push(FieldError::new("Version", "Version is required"));
        }
        self.name = format!("{}.{}", self.package_id, self.version);
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_follow_octopus_and_documents_are_unique_across_spaces() {
        assert_eq!(
            package_resource_id("hello-web", "1.0.0"),
            "packages-hello-web.1.0.0"
        );
        assert_ne!(
            package_document_id("Spaces-1", "hello-web", "1.0.0"),
            package_document_id("Spaces-2", "hello-web", "1.0.0")
        );
        let package = Package {
            id: package_resource_id("Acme.Web", "2.0.0-beta.1"),
            ..Package::default()
        };
        assert_eq!(package.name(), "Acme.Web.2.0.0-beta.1");
    }
}
