//! The built-in feed on the wire: packages, package versions and the feed itself, in the
//! shapes Octopus's `PackageRepository` and `FeedRepository` read.

use serde::{Deserialize, Serialize};

use crate::Links;
use cuttle_domain::{BUILT_IN_FEED_ID, Package};

/// `PackageFromBuiltInFeedResource`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct PackageResource {
    pub id: String,
    pub package_id: String,
    pub version: String,
    pub feed_id: String,
    pub file_extension: String,
    pub published: String,
    pub package_size_bytes: u64,
    pub hash: String,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub release_notes: Option<String>,
    /// The build information pushed for this version, if any (`OctopusBuildInformation`).
    pub package_version_build_information: Option<serde_json::Value>,
    pub links: Links,
}

impl PackageResource {
    /// The API's view of a stored package in `space_id`.
    pub fn from_package(package: &Package, build_information: Option<serde_json::Value>) -> Self {
        let self_link = format!("/api/{}/packages/{}", package.space_id, package.id);
        let links = Links::from([
            ("Raw".to_owned(), format!("{self_link}/raw")),
            ("Self".to_owned(), self_link),
        ]);
        PackageResource {
            id: package.id.clone(),
            package_id: package.package_id.clone(),
            version: package.version.clone(),
            feed_id: BUILT_IN_FEED_ID.to_owned(),
            file_extension: package.file_extension.clone(),
            published: package.published.clone(),
            package_size_bytes: package.package_size_bytes,
            hash: package.hash.clone(),
            title: package.title.clone(),
            summary: package.summary.clone(),
            description: package.description.clone(),
            release_notes: package.release_notes.clone(),
            package_version_build_information: build_information,
            links,
        }
    }
}

/// `PackageVersionResource`: one version of a package in a feed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct PackageVersionResource {
    pub id: String,
    pub package_id: String,
    pub version: String,
    pub size_bytes: u64,
    pub published: String,
    pub feed_id: String,
    pub title: Option<String>,
    pub release_notes: Option<String>,
    pub links: Links,
}

impl PackageVersionResource {
    pub fn from_package(package: &Package) -> Self {
        PackageVersionResource {
            id: package.id.clone(),
            package_id: package.package_id.clone(),
            version: package.version.clone(),
            size_bytes: package.package_size_bytes,
            published: package.published.clone(),
            feed_id: BUILT_IN_FEED_ID.to_owned(),
            title: package.title.clone(),
            release_notes: package.release_notes.clone(),
            links: Links::new(),
        }
    }
}

/// `FeedResource` for the built-in feed (the only feed so far).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "PascalCase")]
pub struct FeedResource {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub feed_type: String,
    pub space_id: String,
    pub package_acquisition_location_options: Vec<String>,
    pub is_built_in_repo_sync_enabled: bool,
    pub delete_unreleased_packages_after_days: Option<u32>,
    pub links: Links,
}

impl FeedResource {
    /// The built-in feed of `space_id`.
    pub fn built_in(space_id: &str) -> Self {
        let self_link = format!("/api/{space_id}/feeds/{BUILT_IN_FEED_ID}");
        FeedResource {
            id: BUILT_IN_FEED_ID.to_owned(),
            name: "Octopus Server (built-in)".to_owned(),
            slug: "octopus-server-built-in".to_owned(),
            feed_type: "BuiltIn".to_owned(),
            space_id: space_id.to_owned(),
            package_acquisition_location_options: vec![
                "Server".to_owned(),
                "ExecutionTarget".to_owned(),
            ],
            is_built_in_repo_sync_enabled: false,
            delete_unreleased_packages_after_days: None,
            links: Links::from([
                (
                    "SearchPackageVersionsTemplate".to_owned(),
                    format!("{self_link}/packages/versions{{?packageId,take,skip}}"),
                ),
                ("Self".to_owned(), self_link),
            ]),
        }
    }
}
