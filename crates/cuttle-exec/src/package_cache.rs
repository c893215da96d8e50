//! The target's package cache (Tentacle's `Files` cache): package files the server pushed,
//! kept by content, so a package already here is never sent again and an earlier version can
//! be the basis of a delta.
//!
//! Layout, in one flat directory: `<sha256><extension>` holds the file (`3f…a9.zip`; the
//! extension tells the conventions runner how to extract it) and `<sha256>.json` its
//! [`CachedPackage`] record. The content appears only whole and verified (a caller streams
//! it in under a temporary name and renames it, or [`PackageCache::insert_copy`] and
//! [`PackageCache::apply_delta`] do); the record is written after it, by temporary file and
//! rename, so a record always names content that is there. Files ending in `.partial` are
//! leftovers of an interrupted write and are removed when the cache is opened.
//!
//! Eviction: a cache keeps the [`VERSIONS_KEPT_PER_PACKAGE`] newest versions of each package,
//! newest meaning most recently cached or deployed (the record's modification time, which
//! [`PackageCache::record`] and [`PackageCache::resolve_file_name`] set). Recording a package
//! removes the older ones beyond that, content first, so a half-removed entry is never found.
//! The version just recorded and the one a deployment just resolved are the newest, so neither
//! is evicted under a deployment that uses it; the previous version stays as a delta basis.
//!
//! The agent and the built-in worker each have one (`<agent home>/packages`,
//! `<data dir>/worker-packages`). What this module does not do: speak a protocol, or decide
//! what to send (the server's orchestrator does).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How many versions of one package a cache keeps (the newest by caching or deployment).
pub const VERSIONS_KEPT_PER_PACKAGE: usize = 5;

/// One package file in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CachedPackage {
    pub package_id: String,
    pub version: String,
    /// `.zip`, `.tar.gz`… with its leading dot.
    pub file_extension: String,
    /// Lower-case hex: the cache's key.
    pub sha256: String,
    pub length: u64,
}

impl CachedPackage {
    /// The content's file name in the cache: `<sha256><extension>`. A `PackagePath` of a
    /// package deployment may name it (the agent resolves it in its cache).
    pub fn file_name(&self) -> String {
        format!("{}{}", self.sha256, self.file_extension)
    }

    /// Checks what becomes a file name: a SHA-256 in lower-case hex and an extension of
    /// letters, digits and dots starting with a dot.
    pub fn validate(&self) -> Result<(), PackageCacheError> {
        if !is_sha256(&self.sha256) {
            return Err(PackageCacheError::Invalid(format!(
                "{:?} is not a SHA-256 in lower-case hex",
                self.sha256
            )));
        }
        if !is_extension(&self.file_extension) {
            return Err(PackageCacheError::Invalid(format!(
                "{:?} is not a package file extension such as .zip or .tar.gz",
                self.file_extension
            )));
        }
        if self.package_id.trim().is_empty() || self.version.trim().is_empty() {
            return Err(PackageCacheError::Invalid(
                "a cached package needs its package id and version".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Why the cache could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PackageCacheError {
    #[error("{0}")]
    Invalid(String),
    #[error("no cached package has the SHA-256 {0}")]
    NotCached(String),
    #[error("the copied file does not match its checksum: expected {expected}, received {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    #[error(transparent)]
    Delta(#[from] cuttle_delta::DeltaError),
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> PackageCacheError + use<> {
    let path = path.to_owned();
    move |source| PackageCacheError::Io {
        action,
        path,
        source,
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn is_extension(text: &str) -> bool {
    text.len() >= 2
        && text.len() <= 16
        && text.starts_with('.')
        && !text.contains("..")
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'.')
}

/// A directory of package files named by their SHA-256. Synchronous: async callers use
/// `spawn_blocking` for the calls that read or write whole files.
#[derive(Debug, Clone)]
pub struct PackageCache {
    directory: PathBuf,
}

impl PackageCache {
    /// Opens (creating) the cache and removes what interrupted writes left.
    pub fn open(directory: &Path) -> Result<PackageCache, PackageCacheError> {
        std::fs::create_dir_all(directory).map_err(io_error("create", directory))?;
        let entries = std::fs::read_dir(directory).map_err(io_error("list", directory))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".partial") || name.starts_with('.') {
                // A leftover that cannot be removed now is harmless: it is never read, and
                // the next open tries again.
                let _ignored = std::fs::remove_file(entry.path());
            }
        }
        Ok(PackageCache {
            directory: directory.to_owned(),
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Where a package's content is (or would be) kept.
    pub fn content_path(&self, package: &CachedPackage) -> Result<PathBuf, PackageCacheError> {
        package.validate()?;
        Ok(self.directory.join(package.file_name()))
    }

    fn record_path(&self, sha256: &str) -> PathBuf {
        self.directory.join(format!("{sha256}.json"))
    }

    /// The cached package with this SHA-256, if its record and content are both here.
    pub fn find(&self, sha256: &str) -> Option<CachedPackage> {
        if !is_sha256(sha256) {
            return None;
        }
        let text = std::fs::read(self.record_path(sha256)).ok()?;
        let package: CachedPackage = serde_json::from_slice(&text).ok()?;
        let path = self.content_path(&package).ok()?;
        let length = std::fs::metadata(&path).ok()?.len();
        (package.sha256 == sha256 && length == package.length).then_some(package)
    }

    /// Every cached version of `package_id` (ignoring case, as package ids compare).
    pub fn list(&self, package_id: &str) -> Vec<CachedPackage> {
        let Ok(entries) = std::fs::read_dir(&self.directory) else {
            return Vec::new();
        };
        let mut packages: Vec<CachedPackage> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let sha256 = name.strip_suffix(".json")?;
                self.find(sha256)
            })
            .filter(|package| package.package_id.eq_ignore_ascii_case(package_id))
            .collect();
        packages.sort_by(|left, right| left.sha256.cmp(&right.sha256));
        packages
    }

    /// The path of a cache file name (`<sha256><extension>`) that is cached, for a package
    /// deployment's `PackagePath`.
    /// The package counts as just used, so eviction keeps it.
    pub fn resolve_file_name(&self, file_name: &str) -> Option<PathBuf> {
        let sha256 = file_name.get(..64)?;
        let package = self.find(sha256)?;
        let path = (package.file_name() == file_name)
            .then(|| self.content_path(&package).ok())
            .flatten()?;
        self.mark_used(sha256);
        Some(path)
    }

    /// Sets the record's modification time to now: eviction's notion of "recently used".
    fn mark_used(&self, sha256: &str) {
        // Failing to mark only makes the package an earlier candidate for eviction.
        if let Ok(file) = std::fs::File::options()
            .write(true)
            .open(self.record_path(sha256))
        {
            let _ignored = file.set_modified(SystemTime::now());
        }
    }

    /// Removes the versions of `package_id` beyond the [`VERSIONS_KEPT_PER_PACKAGE`] most
    /// recently used; returns what it removed.
    pub fn evict_old_versions(&self, package_id: &str) -> Vec<CachedPackage> {
        let mut versions: Vec<(SystemTime, CachedPackage)> = self
            .list(package_id)
            .into_iter()
            .map(|package| {
                let used = std::fs::metadata(self.record_path(&package.sha256))
                    .and_then(|metadata| metadata.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (used, package)
            })
            .collect();
        versions.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
        let mut removed = Vec::new();
        for (_, package) in versions.into_iter().skip(VERSIONS_KEPT_PER_PACKAGE) {
            // The content goes first: a record whose content is gone is never found (`find`
            // checks the file), so a crash between the two leaves a small record behind,
            // never a large file nothing names.
            let Ok(path) = self.content_path(&package) else {
                continue;
            };
            if std::fs::remove_file(path).is_err() {
                continue;
            }
            let _ignored = std::fs::remove_file(self.record_path(&package.sha256));
            removed.push(package);
        }
        removed
    }

    /// Writes the record of a package whose content the caller put in place, verified, at
    /// [`PackageCache::content_path`], then evicts the package's old versions.
    pub fn record(&self, package: &CachedPackage) -> Result<(), PackageCacheError> {
        self.write_record(package)?;
        self.evict_old_versions(&package.package_id);
        Ok(())
    }

    fn write_record(&self, package: &CachedPackage) -> Result<(), PackageCacheError> {
        package.validate()?;
        let path = self.record_path(&package.sha256);
        let temporary = self.directory.join(format!(
            "{}.{:016x}.partial",
            package.sha256,
            rand::random::<u64>()
        ));
        let text = serde_json::to_vec_pretty(package)
            .map_err(|error| PackageCacheError::Invalid(error.to_string()))?;
        std::fs::write(&temporary, text).map_err(io_error("write", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(|error| {
            let _removed = std::fs::remove_file(&temporary);
            io_error("rename into place", &path)(error)
        })
    }

    /// Copies `source` into the cache as `package`, checking its SHA-256 while copying (the
    /// built-in worker's way in: the server's blob is on the same machine).
    pub fn insert_copy(
        &self,
        package: &CachedPackage,
        source: &Path,
    ) -> Result<CachedPackage, PackageCacheError> {
        let destination = self.content_path(package)?;
        let temporary = destination.with_file_name(format!(
            "{}.{:016x}.partial",
            package.file_name(),
            rand::random::<u64>()
        ));
        let copied = (|| {
            let mut input = std::fs::File::open(source).map_err(io_error("open", source))?;
            let mut output =
                std::fs::File::create(&temporary).map_err(io_error("create", &temporary))?;
            let mut hasher = Sha256::new();
            let mut length: u64 = 0;
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let read = input.read(&mut buffer).map_err(io_error("read", source))?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
                output
                    .write_all(&buffer[..read])
                    .map_err(io_error("write", &temporary))?;
                length += read as u64;
            }
            output.sync_all().map_err(io_error("sync", &temporary))?;
            let actual = hex::encode(hasher.finalize());
            if actual != package.sha256 {
                return Err(PackageCacheError::ChecksumMismatch {
                    expected: package.sha256.clone(),
                    actual,
                });
            }
            std::fs::rename(&temporary, &destination)
                .map_err(io_error("rename into place", &destination))?;
            Ok(length)
        })();
        let length = match copied {
            Ok(length) => length,
            Err(error) => {
                let _removed = std::fs::remove_file(&temporary);
                return Err(error);
            }
        };
        let stored = CachedPackage {
            length,
            ..package.clone()
        };
        self.record(&stored)?;
        Ok(stored)
    }

    /// The delta signature of the cached package with this SHA-256.
    pub fn signature(&self, sha256: &str) -> Result<Vec<u8>, PackageCacheError> {
        let basis = self
            .find(sha256)
            .ok_or_else(|| PackageCacheError::NotCached(sha256.to_owned()))?;
        Ok(cuttle_delta::signature(&self.content_path(&basis)?)?)
    }

    /// Patches the cached package `basis_sha256` with the delta file `delta` into the cache
    /// as `package`; the result appears only when its SHA-256 is `package.sha256`.
    pub fn apply_delta(
        &self,
        basis_sha256: &str,
        delta: &Path,
        package: &CachedPackage,
    ) -> Result<CachedPackage, PackageCacheError> {
        let basis = self
            .find(basis_sha256)
            .ok_or_else(|| PackageCacheError::NotCached(basis_sha256.to_owned()))?;
        let destination = self.content_path(package)?;
        let applied = cuttle_delta::apply(
            &self.content_path(&basis)?,
            delta,
            &package.sha256,
            &destination,
        )?;
        let stored = CachedPackage {
            length: applied.length,
            ..package.clone()
        };
        self.record(&stored)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(version: &str, content: &[u8]) -> CachedPackage {
        CachedPackage {
            package_id: "Acme.Web".to_owned(),
            version: version.to_owned(),
            file_extension: ".zip".to_owned(),
            sha256: hex::encode(Sha256::digest(content)),
            length: content.len() as u64,
        }
    }

    #[test]
    fn packages_are_cached_by_content_and_patched_from_an_earlier_version() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let cache = PackageCache::open(&directory.path().join("packages")).expect("open");
        let old_content: Vec<u8> = (0..200_000_u32).flat_map(u32::to_le_bytes).collect();
        let mut new_content = old_content.clone();
        new_content[1000..1100].fill(7);
        let source = directory.path().join("Acme.Web.1.0.0.zip");
        std::fs::write(&source, &old_content).expect("write");

        let old = package("1.0.0", &old_content);
        assert_eq!(cache.find(&old.sha256), None);
        let mut wrong = old.clone();
        wrong.sha256 = "0".repeat(64);
        assert!(matches!(
            cache.insert_copy(&wrong, &source),
            Err(PackageCacheError::ChecksumMismatch { .. })
        ));
        assert_eq!(cache.insert_copy(&old, &source).expect("copied"), old);
        assert_eq!(cache.list("acme.web"), vec![old.clone()]);
        assert!(cache.list("Other").is_empty());
        assert_eq!(
            cache.resolve_file_name(&old.file_name()),
            Some(cache.directory().join(old.file_name()))
        );
        assert_eq!(cache.resolve_file_name("../etc/passwd"), None);

        let new_file = directory.path().join("Acme.Web.1.0.1.zip");
        std::fs::write(&new_file, &new_content).expect("write");
        let signature = cache.signature(&old.sha256).expect("signature");
        let cuttle_delta::DeltaPlan::SendDelta(delta) =
            cuttle_delta::plan_delta(&signature, &new_file).expect("plan")
        else {
            panic!("a 100-byte change is sent as a delta");
        };
        let delta_file = directory.path().join("delta");
        std::fs::write(&delta_file, &delta.bytes).expect("write");
        let new = package("1.0.1", &new_content);
        let mut lying = new.clone();
        lying.sha256 = old.sha256.clone();
        lying.version = "9.9.9".to_owned();
        assert!(cache.apply_delta(&old.sha256, &delta_file, &lying).is_err());
        assert_eq!(cache.find(&old.sha256), Some(old.clone()), "untouched");
        assert_eq!(
            cache
                .apply_delta(&old.sha256, &delta_file, &new)
                .expect("applied"),
            new
        );
        assert_eq!(
            std::fs::read(cache.directory().join(new.file_name())).expect("read"),
            new_content
        );
        assert_eq!(cache.list("Acme.Web").len(), 2);
        let leftovers: Vec<_> = std::fs::read_dir(cache.directory())
            .expect("list")
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn old_versions_are_evicted_and_a_deployed_one_counts_as_new() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let cache = PackageCache::open(&directory.path().join("packages")).expect("open");
        let insert = |version: &str| {
            let content = format!("content of {version}");
            let source = directory.path().join(version);
            std::fs::write(&source, &content).expect("write");
            cache
                .insert_copy(&package(version, content.as_bytes()), &source)
                .expect("cached")
        };
        let age = |package: &CachedPackage, seconds_ago: u64| {
            let file = std::fs::File::options()
                .write(true)
                .open(cache.record_path(&package.sha256))
                .expect("open the record");
            file.set_modified(SystemTime::now() - std::time::Duration::from_secs(seconds_ago))
                .expect("set the time");
        };
        let versions: Vec<CachedPackage> = (1..=VERSIONS_KEPT_PER_PACKAGE)
            .map(|minor| insert(&format!("1.{minor}.0")))
            .collect();
        for (index, version) in versions.iter().enumerate() {
            age(version, 1000 - index as u64); // 1.1.0 is the oldest
        }
        let other = CachedPackage {
            package_id: "Other".to_owned(),
            ..package("1.0.0", b"other")
        };
        let other_source = directory.path().join("other");
        std::fs::write(&other_source, b"other").expect("write");
        cache.insert_copy(&other, &other_source).expect("cached");
        age(&other, 5000);
        assert_eq!(cache.list("Acme.Web").len(), VERSIONS_KEPT_PER_PACKAGE);

        // One more version: the oldest goes, content and record, and other packages stay.
        let newest = insert("2.0.0");
        assert_eq!(cache.find(&versions[0].sha256), None);
        assert!(!cache.directory().join(versions[0].file_name()).exists());
        assert!(!cache.record_path(&versions[0].sha256).exists());
        assert_eq!(cache.list("Acme.Web").len(), VERSIONS_KEPT_PER_PACKAGE);
        assert_eq!(cache.find(&newest.sha256), Some(newest));
        assert_eq!(cache.find(&other.sha256), Some(other));

        // Deploying the now-oldest (1.2.0) makes it recent, so 1.3.0 goes next instead.
        assert!(cache.resolve_file_name(&versions[1].file_name()).is_some());
        insert("2.1.0");
        assert!(cache.find(&versions[1].sha256).is_some());
        assert_eq!(cache.find(&versions[2].sha256), None);
    }

    #[test]
    fn records_must_name_plain_files() {
        let mut bad = package("1.0.0", b"x");
        bad.file_extension = "/../../x".to_owned();
        assert!(bad.validate().is_err());
        bad.file_extension = ".zip".to_owned();
        bad.sha256 = "../x".to_owned();
        assert!(bad.validate().is_err());
    }
}
