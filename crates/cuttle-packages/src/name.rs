//! Package file names as Octopus reads them: `<PackageId>.<Version><extension>`.
//!
//! The package id and version come only from the file name, never from the archive's content.
//! Octopus splits at the **first** `.` after which the rest parses as a version, so ids may
//! contain dots (`Acme.Web.1.0.0.zip` is `Acme.Web` / `1.0.0`). The price, which Octopus's own
//! documentation warns about, is that an id ending in a dot and a number cannot be written:
//! `Acme.2.1.0.0.zip` is `Acme` / `2.1.0.0`, not `Acme.2` / `1.0.0`.
//!
//! Versions are Octopus versions (one to four numbers, SemVer 2 pre-release and build
//! metadata), parsed by `cuttle-pipeline` so that packages and releases order the same way.

use cuttle_pipeline::{ReleaseVersion, parse_release_version};

use crate::archive::ArchiveFormat;

/// The longest package id accepted (NuGet's limit).
pub const MAXIMUM_PACKAGE_ID_LENGTH: usize = 100;

/// A package file name split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageFileName {
    pub package_id: String,
    /// The version as written in the file name (build metadata included).
    pub version: String,
    pub format: ArchiveFormat,
}

impl PackageFileName {
    /// The version parsed for ordering. Parsing succeeded when the name was parsed, so this
    /// only fails for a hand-built value.
    pub fn parsed_version(&self) -> Result<ReleaseVersion, PackageNameError> {
        parse_release_version(&self.version).map_err(|error| PackageNameError::InvalidVersion {
            file_name: format!(
                "{}.{}{}",
                self.package_id,
                self.version,
                self.format.extension()
            ),
            reason: error.to_string(),
        })
    }
}

/// Why a file name is not a package file name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackageNameError {
    #[error(
        "'{file_name}' is not a supported package file: the name must end in .zip, .nupkg, .tar.gz, .tgz, .tar or .tar.bz2"
    )]
    UnknownExtension { file_name: String },
    #[error(
        "'{file_name}' has no version: package file names are <PackageId>.<Version><extension>, like Acme.Web.1.2.3.zip"
    )]
    MissingVersion { file_name: String },
    #[error("'{file_name}' has an invalid version: {reason}")]
    InvalidVersion { file_name: String, reason: String },
    #[error("'{file_name}' has an invalid package id '{package_id}': {reason}")]
    InvalidPackageId {
        file_name: String,
        package_id: String,
        reason: String,
    },
}

/// Splits a package file name into id, version and archive format.
///
/// A path is reduced to its last component first (some clients send `C:\build\app.1.0.zip`).
/// The extension is matched case-insensitively; the id and version keep their case.
pub fn parse_package_file_name(file_name: &str) -> Result<PackageFileName, PackageNameError> {
    let base_name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(file_name)
        .trim();
    let format = ArchiveFormat::from_file_name(base_name).ok_or_else(|| {
        PackageNameError::UnknownExtension {
            file_name: base_name.to_owned(),
        }
    })?;
    let stem = &base_name[..base_name.len() - format.matched_extension_length(base_name)];

    let mut first_version_error = None;
    for (dot_index, _) in stem.match_indices('.') {
        let rest = &stem[dot_index + 1..];
        if !rest.starts_with(|character: char| character.is_ascii_digit()) {
            continue;
        }
        let package_id = &stem[..dot_index];
        match parse_release_version(rest) {
            Ok(_) => {
                check_package_id(package_id).map_err(|reason| {
                    PackageNameError::InvalidPackageId {
                        file_name: base_name.to_owned(),
                        package_id: package_id.to_owned(),
                        reason,
                    }
                })?;
                return Ok(PackageFileName {
                    package_id: package_id.to_owned(),
                    version: rest.to_owned(),
                    format,
                });
            }
            // Keep the first reason: when nothing parses, the leftmost candidate is the one
            // the user most likely meant as the version.
            Err(error) => {
                first_version_error.get_or_insert(error.reason);
            }
        }
    }
    Err(match first_version_error {
        Some(reason) => PackageNameError::InvalidVersion {
            file_name: base_name.to_owned(),
            reason,
        },
        None => PackageNameError::MissingVersion {
            file_name: base_name.to_owned(),
        },
    })
}

/// NuGet's id rule, loosened to what Octopus accepts for other formats: letters, digits and
/// `.`, `-`, `_`, not starting or ending with a dot, no empty dot-separated part.
fn check_package_id(package_id: &str) -> Result<(), String> {
    if package_id.is_empty() {
        return Err("it is empty".to_owned());
    }
    if package_id.len() > MAXIMUM_PACKAGE_ID_LENGTH {
        return Err(format!(
            "it is longer than {MAXIMUM_PACKAGE_ID_LENGTH} characters"
        ));
    }
    if let Some(bad) = package_id.chars().find(|character| {
        !character.is_ascii_alphanumeric() && !matches!(character, '.' | '-' | '_')
    }) {
        return Err(format!(
            "it contains '{bad}'; only letters, digits, '.', '-' and '_' are allowed"
        ));
    }
    if package_id.split('.').any(str::is_empty) {
        return Err("it has an empty part between dots".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(file_name: &str) -> (String, String, ArchiveFormat) {
        match parse_package_file_name(file_name) {
            Ok(name) => (name.package_id, name.version, name.format),
            Err(error) => panic!("{file_name}: {error}"),
        }
    }

    #[test]
    fn splits_at_the_first_dot_followed_by_a_version() {
        let cases = [
            (
                "hello-web.1.0.0.zip",
                "hello-web",
                "1.0.0",
                ArchiveFormat::Zip,
            ),
            (
                "Acme.Web.1.0.0.zip",
                "Acme.Web",
                "1.0.0",
                ArchiveFormat::Zip,
            ),
            (
                "My.App.2.1.0-beta.1.zip",
                "My.App",
                "2.1.0-beta.1",
                ArchiveFormat::Zip,
            ),
            ("app.1.2.3.4.tar.gz", "app", "1.2.3.4", ArchiveFormat::TarGz),
            (
                "app.1.2.3+sha.5114f85.tgz",
                "app",
                "1.2.3+sha.5114f85",
                ArchiveFormat::TarGz,
            ),
            (
                "app.1.2.3-rc.1+build.7.tar",
                "app",
                "1.2.3-rc.1+build.7",
                ArchiveFormat::Tar,
            ),
            ("app.1.tar.bz2", "app", "1", ArchiveFormat::TarBz2),
            ("app.1.2.nupkg", "app", "1.2", ArchiveFormat::Nupkg),
            (
                "Acme.V2.Web.3.0.0.zip",
                "Acme.V2.Web",
                "3.0.0",
                ArchiveFormat::Zip,
            ),
            // `2.Web.1.0.0` is not a version, so the split moves on to the next dot.
            (
                "Acme.2.Web.1.0.0.zip",
                "Acme.2.Web",
                "1.0.0",
                ArchiveFormat::Zip,
            ),
            (
                "under_score.0.0.1.zip",
                "under_score",
                "0.0.1",
                ArchiveFormat::Zip,
            ),
            (
                "app.2024.12.05.zip",
                "app",
                "2024.12.05",
                ArchiveFormat::Zip,
            ),
        ];
        for (file_name, package_id, version, format) in cases {
            assert_eq!(
                parsed(file_name),
                (package_id.to_owned(), version.to_owned(), format),
                "{file_name}"
            );
        }
    }

    #[test]
    fn an_id_ending_in_a_number_is_misparsed_as_octopus_warns() {
        // Octopus's documented caveat: the first dot before a digit wins when the rest parses.
        assert_eq!(
            parsed("Acme.2.1.0.0.zip"),
            ("Acme".to_owned(), "2.1.0.0".to_owned(), ArchiveFormat::Zip)
        );
    }

    #[test]
    fn a_version_is_found_wherever_the_rest_parses() {
        // Not what the user meant, but what Octopus does: the rule needs no second guess.
        assert_eq!(
            parsed("app-1.0.0.zip"),
            ("app-1".to_owned(), "0.0".to_owned(), ArchiveFormat::Zip)
        );
        assert_eq!(
            parsed("app.1.0.0.0.0.zip"),
            ("app.1".to_owned(), "0.0.0.0".to_owned(), ArchiveFormat::Zip)
        );
    }

    #[test]
    fn extensions_are_case_insensitive_and_id_and_version_keep_their_case() {
        assert_eq!(
            parsed("Acme.Web.1.0.0-Beta.ZIP"),
            (
                "Acme.Web".to_owned(),
                "1.0.0-Beta".to_owned(),
                ArchiveFormat::Zip
            )
        );
        assert_eq!(parsed("a.1.0.TAR.GZ").2, ArchiveFormat::TarGz);
        assert_eq!(parsed("a.1.0.Tar.Bz2").2, ArchiveFormat::TarBz2);
        assert_eq!(parsed("a.1.0.NuPkg").2, ArchiveFormat::Nupkg);
    }

    #[test]
    fn a_path_is_reduced_to_its_file_name() {
        assert_eq!(parsed("C:\\build\\out\\app.1.0.0.zip").0, "app");
        assert_eq!(parsed("/tmp/out/app.1.0.0.zip").0, "app");
    }

    #[test]
    fn unknown_extensions_are_refused() {
        for file_name in [
            "app.1.0.0.rar",
            "app.1.0.0",
            "app.1.0.0.gz",
            "app.1.0.0.zip.txt",
            "",
            ".zip",
        ] {
            assert_eq!(
                parse_package_file_name(file_name),
                Err(PackageNameError::UnknownExtension {
                    file_name: file_name.to_owned()
                }),
                "{file_name}"
            );
        }
    }

    #[test]
    fn names_without_a_version_are_refused() {
        for file_name in ["app.zip", "Acme.Web.zip", "app-beta.zip", "app.vNext.zip"] {
            assert_eq!(
                parse_package_file_name(file_name),
                Err(PackageNameError::MissingVersion {
                    file_name: file_name.to_owned()
                }),
                "{file_name}"
            );
        }
    }

    #[test]
    fn names_whose_only_candidate_is_not_a_version_say_why() {
        let error = parse_package_file_name("app.1.0.0-.zip").map(|name| name.version);
        assert!(
            matches!(&error, Err(PackageNameError::InvalidVersion { reason, .. }) if reason.contains("empty identifier")),
            "{error:?}"
        );
        let error = parse_package_file_name("app.1.0.0-beta_1.zip").map(|name| name.version);
        assert!(
            matches!(&error, Err(PackageNameError::InvalidVersion { reason, .. }) if reason.contains("'_'")),
            "{error:?}"
        );
    }

    #[test]
    fn invalid_ids_are_refused() {
        for (file_name, expected_reason) in [
            (".1.0.0.zip", "empty"),
            ("my app.1.0.0.zip", "' '"),
            ("Acme..Web.1.0.0.zip", "empty part"),
            ("Acme%2F.1.0.0.zip", "'%'"),
        ] {
            let error = parse_package_file_name(file_name);
            assert!(
                matches!(&error, Err(PackageNameError::InvalidPackageId { reason, .. }) if reason.contains(expected_reason)),
                "{file_name}: {error:?}"
            );
        }
        let long_id = "a".repeat(MAXIMUM_PACKAGE_ID_LENGTH + 1);
        assert!(matches!(
            parse_package_file_name(&format!("{long_id}.1.0.0.zip")),
            Err(PackageNameError::InvalidPackageId { .. })
        ));
    }

    #[test]
    fn parsed_versions_order_like_releases() {
        let older = parse_package_file_name("app.1.0.0-beta.2.zip")
            .and_then(|name| name.parsed_version())
            .map_err(|error| error.to_string());
        let newer = parse_package_file_name("app.1.0.0.zip")
            .and_then(|name| name.parsed_version())
            .map_err(|error| error.to_string());
        assert!(older < newer, "{older:?} < {newer:?}");
    }
}
