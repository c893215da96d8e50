//! What every handler shares: the store, the blob store and the server's identity.

use std::sync::Arc;
use std::time::Duration;

use cuttle_secrets::MasterKey;
use cuttle_store::Store;

use cuttle_domain::Space;

use crate::blobs::BlobStore;
use crate::cache::{CachedCredential, GenerationCache, MAX_CREDENTIALS, MAX_SPACES, ResponseCache};

/// The default limit on JSON request bodies: 10 MiB.
pub const DEFAULT_JSON_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// The default limit on an uploaded package file: 4 GiB.
pub const DEFAULT_MAX_PACKAGE_SIZE: u64 = 4 * 1024 * 1024 * 1024;

/// The default time an HTTP/1 connection may stay idle, between requests or before its first,
/// before the server closes it: 30 s (Node.js clients drop their own idle sockets after 5 s).
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of the HTTP app; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) installation_id: Arc<str>,
    pub(crate) master_key: Arc<MasterKey>,
    pub(crate) json_body_limit: usize,
    /// How long [`crate::serve`] keeps an idle HTTP/1 connection open.
    pub(crate) http_idle_timeout: Duration,
    pub(crate) credential_cache: Arc<GenerationCache<CachedCredential>>,
    pub(crate) space_cache: Arc<GenerationCache<Space>>,
    pub(crate) response_cache: Arc<ResponseCache>,
    pub(crate) task_waker: Option<cuttle_orchestrator::TaskWaker>,
    pub(crate) server_thumbprint: Option<Arc<str>>,
    /// Package files; without it the built-in feed answers that it has no storage.
    pub(crate) blob_store: Option<Arc<BlobStore>>,
    pub(crate) max_package_size: u64,
    /// Held while a package record and its blob change together (upload, delete), so a blob
    /// is never removed while another upload is about to reference it.
    pub(crate) package_lock: Arc<tokio::sync::Mutex<()>>,
    /// Failed sign-ins by username (`POST /api/users/login`).
    pub(crate) sign_in_throttle: Arc<crate::throttle::SignInThrottle>,
}

impl AppState {
    /// State over `store`, for an installation with the given id (see [`crate::bootstrap`]),
    /// sealing secrets with `master_key`.
    pub fn new(
        store: Arc<dyn Store>,
        installation_id: String,
        master_key: Arc<MasterKey>,
    ) -> AppState {
        AppState {
            store,
            installation_id: installation_id.into(),
            master_key,
            json_body_limit: DEFAULT_JSON_BODY_LIMIT,
            http_idle_timeout: DEFAULT_HTTP_IDLE_TIMEOUT,
            credential_cache: Arc::new(GenerationCache::new(MAX_CREDENTIALS)),
            space_cache: Arc::new(GenerationCache::new(MAX_SPACES)),
            response_cache: Arc::default(),
            task_waker: None,
            server_thumbprint: None,
            blob_store: None,
            max_package_size: DEFAULT_MAX_PACKAGE_SIZE,
            package_lock: Arc::default(),
            sign_in_throttle: Arc::default(),
        }
    }

    /// Keeps package files in `blob_store` and refuses package files larger than
    /// `max_package_size` bytes.
    pub fn with_blob_store(
        mut self,
        blob_store: Arc<BlobStore>,
        max_package_size: u64,
    ) -> AppState {
        self.blob_store = Some(blob_store);
        self.max_package_size = max_package_size;
        self
    }

    /// The thumbprint of the certificate agents see (`GET /api/certificates/certificate-global`).
    pub fn with_server_thumbprint(mut self, thumbprint: &str) -> AppState {
        self.server_thumbprint = Some(thumbprint.into());
        self
    }

    /// Lets the API wake the task runner when it queues or cancels a task.
    pub fn with_task_waker(mut self, waker: cuttle_orchestrator::TaskWaker) -> AppState {
        self.task_waker = Some(waker);
        self
    }

    pub(crate) fn wake_task_runner(&self) {
        if let Some(waker) = &self.task_waker {
            waker.wake();
        }
    }

    /// Sets the largest JSON request body accepted, in bytes.
    pub fn with_json_body_limit(mut self, limit: usize) -> AppState {
        self.json_body_limit = limit;
        self
    }

    /// Sets how long an idle HTTP/1 connection is kept open (see [`crate::serve`]).
    pub fn with_http_idle_timeout(mut self, timeout: Duration) -> AppState {
        self.http_idle_timeout = timeout;
        self
    }

    /// The master key sealed secrets open with.
    pub fn master_key(&self) -> Arc<MasterKey> {
        Arc::clone(&self.master_key)
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }
}
