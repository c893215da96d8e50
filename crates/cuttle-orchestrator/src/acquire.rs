//! Package acquisition on one target (Octopus's "Acquire packages", spec §2.1): put one
//! package file from the server into the target's package cache, sending as little as
//! possible.
//!
//! 1. The target lists the versions of the package it holds; the exact SHA-256 there means
//!    nothing is sent ("Found in cache").
//! 2. Else, when delta compression is on and an earlier version is cached, the target signs
//!    that basis, the server plans a delta (`cuttle_delta::plan_delta`) and, when it is under
//!    80 % of the package, sends it for the target to apply into its cache, verified.
//! 3. Else, or when anything in step 2 fails, the whole file is sent.
//!
//! What this module does not do: choose targets or packages, log, or run in parallel (the
//! deployment engine does), or read the feed (the server hands the engine a
//! [`PackageBlobs`]).

use std::path::PathBuf;

use cuttle_exec::CachedPackage;
use cuttle_pipeline::{ReleaseVersion, parse_release_version};

use crate::transport::{PackageFile, TargetAddress, Transport, TransportError};

/// Where the built-in feed keeps package files: its content-addressed blob store.
pub trait PackageBlobs: Send + Sync + 'static {
    /// The file holding the content with this SHA-256, if the store has it.
    fn blob_path(&self, sha256: &str) -> Option<PathBuf>;
}

/// What acquiring a package on a target did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquisition {
    FoundInCache,
    Delta {
        delta_length: u64,
        package_length: u64,
        basis_version: String,
    },
    Full {
        length: u64,
        /// Why no delta was sent, when one was tried.
        why_not_delta: Option<String>,
    },
}

impl Acquisition {
    /// The log's words for it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Acquisition::FoundInCache => "Found in cache".to_owned(),
            Acquisition::Delta {
                delta_length,
                package_length,
                basis_version,
            } => format!(
                "Delta of {delta_length} bytes ({} % of the package) from version {basis_version}",
                percent(*delta_length, *package_length)
            ),
            Acquisition::Full {
                length,
                why_not_delta: None,
            } => format!("Full package, {length} bytes"),
            Acquisition::Full {
                length,
                why_not_delta: Some(reason),
            } => format!("Full package, {length} bytes ({reason})"),
        }
    }

    /// The bytes of package content sent.
    pub(crate) fn bytes_sent(&self) -> u64 {
        match self {
            Acquisition::FoundInCache => 0,
            Acquisition::Delta { delta_length, .. } => *delta_length,
            Acquisition::Full { length, .. } => *length,
        }
    }
}

/// `part` as a percentage of `whole`, with one decimal.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0".to_owned();
    }
    // Tenths of a percent, rounded, in integers so no float cast is needed.
    let tenths = (u128::from(part) * 1000 + u128::from(whole) / 2) / u128::from(whole);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The cached version to diff against: the newest version not newer than `version`, else the
/// oldest newer one; versions that do not parse come last.
fn choose_basis<'a>(cached: &'a [CachedPackage], version: &str) -> Option<&'a CachedPackage> {
    let wanted = parse_release_version(version).ok();
    let parsed: Vec<(Option<ReleaseVersion>, &CachedPackage)> = cached
        .iter()
        .map(|package| (parse_release_version(&package.version).ok(), package))
        .collect();
    let Some(wanted) = wanted else {
        return cached.first();
    };
    let older = parsed
        .iter()
        .filter_map(|(parsed, package)| parsed.as_ref().map(|parsed| (parsed, *package)))
        .filter(|(parsed, _)| **parsed <= wanted)
        .max_by(|left, right| left.0.cmp(right.0))
        .map(|(_, package)| package);
    let newer = || {
        parsed
            .iter()
            .filter_map(|(parsed, package)| parsed.as_ref().map(|parsed| (parsed, *package)))
            .min_by(|left, right| left.0.cmp(right.0))
            .map(|(_, package)| package)
    };
    older.or_else(newer).or_else(|| cached.first())
}

/// Puts `file` in `target`'s package cache, by the cheapest way that works.
pub(crate) async fn acquire_on_target(
    transport: &dyn Transport,
    target: &TargetAddress,
    file: &PackageFile,
    delta_enabled: bool,
) -> Result<Acquisition, TransportError> {
    let package = &file.package;
    let cached = transport
        .cached_packages(target, &package.package_id)
        .await?;
    if cached.iter().any(|entry| entry.sha256 == package.sha256) {
        return Ok(Acquisition::FoundInCache);
    }
    let mut why_not_delta = None;
    if delta_enabled && let Some(basis) = choose_basis(&cached, &package.version) {
        match send_delta(transport, target, file, basis).await {
            Ok(Some(acquisition)) => return Ok(acquisition),
            Ok(None) => {
                why_not_delta = Some(format!(
                    "a delta from version {} would be at least {} % of it",
                    basis.version,
                    cuttle_delta::FULL_TRANSFER_THRESHOLD_PERCENT
                ));
            }
            Err(reason) => {
                why_not_delta = Some(format!(
                    "the delta from version {} failed: {reason}",
                    basis.version
                ));
            }
        }
    }
    let stored = transport.upload_package(target, file).await?;
    if stored.sha256 != package.sha256 {
        return Err(TransportError::Unusable {
            target: target.name.clone(),
            message: format!(
                "it stored {} with SHA-256 {}, not {}",
                package.package_id, stored.sha256, package.sha256
            ),
        });
    }
    Ok(Acquisition::Full {
        length: stored.length,
        why_not_delta,
    })
}

/// Sends a delta from `basis`: `Ok(None)` when it would not save enough, `Err` with why it
/// failed (the caller sends the whole file either way).
async fn send_delta(
    transport: &dyn Transport,
    target: &TargetAddress,
    file: &PackageFile,
    basis: &CachedPackage,
) -> Result<Option<Acquisition>, String> {
    let signature = transport
        .package_signature(target, &basis.sha256)
        .await
        .map_err(|error| error.to_string())?;
    let new_file = file.path.clone();
    let plan = tokio::task::spawn_blocking(move || cuttle_delta::plan_delta(&signature, &new_file))
        .await
        .map_err(|error| format!("the delta task failed: {error}"))?
        .map_err(|error| error.to_string())?;
    let delta = match plan {
        cuttle_delta::DeltaPlan::SendFull { .. } => return Ok(None),
        cuttle_delta::DeltaPlan::SendDelta(delta) => delta,
    };
    if delta.new_file_sha256 != file.package.sha256 {
        return Err(format!(
            "the feed's file has SHA-256 {}, not the {} its record says",
            delta.new_file_sha256, file.package.sha256
        ));
    }
    let delta_length = delta.bytes.len() as u64;
    let stored = transport
        .apply_package_delta(target, &basis.sha256, delta.bytes, &file.package)
        .await
        .map_err(|error| error.to_string())?;
    if stored.sha256 != file.package.sha256 {
        return Err(format!("the patched file has SHA-256 {}", stored.sha256));
    }
    Ok(Some(Acquisition::Delta {
        delta_length,
        package_length: stored.length,
        basis_version: basis.version.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(version: &str) -> CachedPackage {
        CachedPackage {
            package_id: "Acme".to_owned(),
            version: version.to_owned(),
            file_extension: ".zip".to_owned(),
            sha256: format!("{version:0>64}"),
            length: 1,
        }
    }

    #[test]
    fn the_basis_is_the_newest_version_not_newer_than_the_new_one() {
        let all = [cached("1.0.0"), cached("1.2.0"), cached("2.0.0")];
        let version_of =
            |wanted: &str| choose_basis(&all, wanted).map(|basis| basis.version.clone());
        assert_eq!(version_of("1.3.0").as_deref(), Some("1.2.0"));
        assert_eq!(version_of("1.2.0").as_deref(), Some("1.2.0"));
        assert_eq!(version_of("0.9.0").as_deref(), Some("1.0.0"));
        assert_eq!(choose_basis(&[], "1.0.0"), None);
    }

    #[test]
    fn the_log_says_what_was_sent() {
        let delta = Acquisition::Delta {
            delta_length: 1_234,
            package_length: 100_000,
            basis_version: "1.0.0".to_owned(),
        };
        assert_eq!(
            delta.describe(),
            "Delta of 1234 bytes (1.2 % of the package) from version 1.0.0"
        );
        assert_eq!(
            Acquisition::Full {
                length: 10,
                why_not_delta: None
            }
            .describe(),
            "Full package, 10 bytes"
        );
        assert_eq!(Acquisition::FoundInCache.describe(), "Found in cache");
        assert_eq!(percent(1, 3), "33.3");
        assert_eq!(percent(0, 0), "0.0");
    }
}
