//! Every environment variable Cuttle reads, in one place. Only the binary reads them.

/// The data directory (default `./cuttle-data`): the SQLite database and, later, blobs and keys.
pub(crate) const CUTTLE_DATA_DIR: &str = "CUTTLE_DATA_DIR";
/// The HTTP listen address (default `127.0.0.1:8050`).
pub(crate) const CUTTLE_LISTEN: &str = "CUTTLE_LISTEN";
/// A `postgres://` URL: run on PostgreSQL instead of the embedded SQLite store.
pub(crate) const CUTTLE_DATABASE_URL: &str = "CUTTLE_DATABASE_URL";
/// The admin's first API key, instead of a random one (first start only).
pub(crate) const CUTTLE_BOOTSTRAP_API_KEY: &str = "CUTTLE_BOOTSTRAP_API_KEY";
/// The admin's first password, instead of a random one (first start only).
pub(crate) const CUTTLE_BOOTSTRAP_ADMIN_PASSWORD: &str = "CUTTLE_BOOTSTRAP_ADMIN_PASSWORD";
/// The largest JSON request body in bytes (default 10 MiB).
pub(crate) const CUTTLE_MAX_JSON_BODY: &str = "CUTTLE_MAX_JSON_BODY";
/// Seconds an idle HTTP/1 connection is kept open before the server closes it (default 30).
pub(crate) const CUTTLE_HTTP_IDLE_TIMEOUT: &str = "CUTTLE_HTTP_IDLE_TIMEOUT";
/// The largest package file the built-in feed accepts, in bytes (default 4 GiB).
pub(crate) const CUTTLE_MAX_PACKAGE_SIZE: &str = "CUTTLE_MAX_PACKAGE_SIZE";
/// Seconds between retention passes (releases and packages per lifecycle policy); 0 = never.
pub(crate) const CUTTLE_RETENTION_INTERVAL: &str = "CUTTLE_RETENTION_INTERVAL";
/// The master key that seals secrets (32 bytes, base64 or hex). Without it, `master.key` in
/// the data directory is used, created on first start. Nodes sharing a database share it.
pub(crate) const CUTTLE_MASTER_KEY: &str = "CUTTLE_MASTER_KEY";
/// The most tasks one node runs at once (default 5).
pub(crate) const CUTTLE_TASK_CAP: &str = "CUTTLE_TASK_CAP";
/// Set to `true` to run no scripts on the server itself.
pub(crate) const CUTTLE_DISABLE_BUILT_IN_WORKER: &str = "CUTTLE_DISABLE_BUILT_IN_WORKER";
/// The address of the agent port, which polling agents dial (default `0.0.0.0:10943`).
pub(crate) const CUTTLE_AGENT_LISTEN: &str = "CUTTLE_AGENT_LISTEN";
/// Where on SSH targets Cuttle keeps its binary and work (default `.cuttle` in the home).
pub(crate) const CUTTLE_SSH_REMOTE_DIRECTORY: &str = "CUTTLE_SSH_REMOTE_DIRECTORY";
/// The log filter, in `tracing` syntax (default `info`).
pub(crate) const CUTTLE_LOG: &str = "CUTTLE_LOG";
/// The agent's home directory (default `~/.cuttle-agent`): `cuttle agent …`.
pub(crate) const CUTTLE_AGENT_HOME: &str = "CUTTLE_AGENT_HOME";
/// An API key for commands that call the REST API (`cuttle agent register`, `cuttle deploy`…),
/// instead of `--api-key` on the command line, where other users of the machine could read
/// it. It overrides the key `cuttle login` saved.
pub(crate) const CUTTLE_API_KEY: &str = "CUTTLE_API_KEY";
/// The server the client commands call (`cuttle deploy`…), overriding `cuttle login`'s.
pub(crate) const CUTTLE_SERVER: &str = "CUTTLE_SERVER";
/// The space the client commands work in (name or id), overriding `cuttle login`'s.
pub(crate) const CUTTLE_SPACE: &str = "CUTTLE_SPACE";
