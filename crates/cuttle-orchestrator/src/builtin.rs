//! The built-in worker: the server's own executor, reached in-process, for steps that run on
//! a worker when the space has no workers of its own (and for ad-hoc scripts on no target).
//!
//! It keeps a package cache of its own (`<data dir>/worker-packages`) filled by copying the
//! built-in feed's blob, so package steps on it go through acquisition like on an agent.

use std::path::Path;

use async_trait::async_trait;
use cuttle_exec::{
    CachedPackage, ExecError, Executor, PackageCache, PackageCacheError, ScriptRequest,
    ScriptStatus, StartOutcome,
};

use crate::transport::{
    HealthReport, PackageFile, PackageSupport, TargetAddress, Transport, TransportError,
};

/// The name the built-in worker goes by in logs.
pub const BUILT_IN_WORKER_NAME: &str = "the built-in worker";

pub struct BuiltInWorker {
    executor: Executor,
    package_cache: Option<PackageCache>,
}

impl BuiltInWorker {
    pub fn new(executor: Executor) -> BuiltInWorker {
        BuiltInWorker {
            executor,
            package_cache: None,
        }
    }

    /// The same worker, deploying packages from `package_cache`.
    pub fn with_package_cache(mut self, package_cache: PackageCache) -> BuiltInWorker {
        self.package_cache = Some(package_cache);
        self
    }

    fn cache(&self) -> Result<PackageCache, TransportError> {
        self.package_cache
            .clone()
            .ok_or_else(|| TransportError::Unusable {
                target: BUILT_IN_WORKER_NAME.to_owned(),
                message: "it has no package cache".to_owned(),
            })
    }
}

fn unusable(error: ExecError) -> TransportError {
    TransportError::Unusable {
        target: BUILT_IN_WORKER_NAME.to_owned(),
        message: error.to_string(),
    }
}

fn cache_error(error: PackageCacheError) -> TransportError {
    TransportError::Unusable {
        target: BUILT_IN_WORKER_NAME.to_owned(),
        message: error.to_string(),
    }
}

/// Runs cache work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PackageCacheError> + Send + 'static,
) -> Result<T, TransportError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| TransportError::Unusable {
            target: BUILT_IN_WORKER_NAME.to_owned(),
            message: format!("a package cache task failed: {error}"),
        })?
        .map_err(cache_error)
}

#[async_trait]
impl Transport for BuiltInWorker {
    async fn check_health(&self, _target: &TargetAddress) -> Result<HealthReport, TransportError> {
        Ok(HealthReport {
            warnings: Vec::new(),
            summary: format!("the server's own executor ({})", std::env::consts::OS),
        })
    }

    async fn start_script(
        &self,
        _target: &TargetAddress,
        request: &ScriptRequest,
    ) -> Result<StartOutcome, TransportError> {
        let mut request = request.clone();
        // A relative package path names a file of the cache, as on an agent.
        if let Some(deployment) = &mut request.package_deployment
            && deployment.package_path.is_relative()
            && let Some(cache) = &self.package_cache
            && let Some(path) = deployment
                .package_path
                .to_str()
                .and_then(|name| cache.resolve_file_name(name))
        {
            deployment.package_path = path;
        }
        self.executor.start(request).await.map_err(unusable)
    }

    async fn script_status(
        &self,
        _target: &TargetAddress,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, TransportError> {
        self.executor
            .status(ticket, after_sequence)
            .await
            .map_err(unusable)
    }

    async fn cancel_script(
        &self,
        _target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        self.executor.cancel(ticket).await.map_err(unusable)
    }

    async fn complete_script(
        &self,
        _target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        self.executor.complete(ticket).await.map_err(unusable)
    }

    async fn package_support(
        &self,
        _target: &TargetAddress,
    ) -> Result<PackageSupport, TransportError> {
        Ok(PackageSupport {
            deploy: true,
            cache: self.package_cache.is_some(),
        })
    }

    async fn cached_packages(
        &self,
        _target: &TargetAddress,
        package_id: &str,
    ) -> Result<Vec<CachedPackage>, TransportError> {
        let cache = self.cache()?;
        let package_id = package_id.to_owned();
        blocking(move || Ok(cache.list(&package_id))).await
    }

    async fn package_signature(
        &self,
        _target: &TargetAddress,
        sha256: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let cache = self.cache()?;
        let sha256 = sha256.to_owned();
        blocking(move || cache.signature(&sha256)).await
    }

    async fn upload_package(
        &self,
        _target: &TargetAddress,
        file: &PackageFile,
    ) -> Result<CachedPackage, TransportError> {
        let cache = self.cache()?;
        let file = file.clone();
        blocking(move || cache.insert_copy(&file.package, &file.path)).await
    }

    async fn apply_package_delta(
        &self,
        _target: &TargetAddress,
        basis_sha256: &str,
        delta: Vec<u8>,
        package: &CachedPackage,
    ) -> Result<CachedPackage, TransportError> {
        let cache = self.cache()?;
        let basis_sha256 = basis_sha256.to_owned();
        let package = package.clone();
        blocking(move || {
            // A name starting with a dot: the cache removes it at its next open if this
            // process dies before removing it itself.
            let delta_path = cache
                .directory()
                .join(format!(".delta-{:016x}", rand::random::<u64>()));
            write_file(&delta_path, &delta)?;
            let applied = cache.apply_delta(&basis_sha256, &delta_path, &package);
            let _ignored = std::fs::remove_file(&delta_path);
            applied
        })
        .await
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PackageCacheError> {
    std::fs::write(path, bytes).map_err(|source| PackageCacheError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}
