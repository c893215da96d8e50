//! SSH targets: the server reaches a machine over SSH, with no agent installed there, and
//! runs its scripts with the same ticket semantics as everywhere else.
//!
//! ```text
//! SshTransport ─ pool per (host, port, space, account, fingerprint) ─ SSH connections
//!    │  each connection: host key pinned by SHA-256 fingerprint, authenticated once,
//!    │  up to `max_channels_per_connection` channels at a time (sshd's MaxSessions)
//!    ├─ SFTP: uploads this server's own `cuttle` binary once, named by its hash
//!    ├─ channel: `cuttle exec` ◄─ request JSON on stdin, JSON lines on stdout ─► journal
//!    └─ channel: `cuttle exec status|cancel|complete` for re-attach and cleanup
//! ```
//!
//! The target runs `cuttle exec` (the binary's `exec` subcommand, built on
//! [`cuttle_exec::run_foreground`]); its wire records live in [`protocol`], shared with the
//! binary. A ticket runs at most once on the target whatever this side does; the server
//! re-attaches after its own restart by asking the target (`cuttle exec status`).
//!
//! What this crate does not do: store or decrypt accounts (the server hands credentials over
//! through [`SshCredentials`]), trust a host key on first use (a fingerprint must be
//! configured, and a changed key is refused, unlike Octopus which updates it), transfer
//! packages, or run anything without the `cuttle` binary.

#![forbid(unsafe_code)]

mod binary;
mod connection;
pub mod credentials;
pub mod error;
pub mod fingerprint;
mod journal;
pub mod protocol;
mod remote;
pub mod transport;

pub use credentials::{SshAccount, SshAuth, SshCredentials, StaticCredentials};
pub use error::SshError;
pub use fingerprint::{FingerprintError, HostKeyFingerprint};
pub use transport::{SshTransport, SshTransportOptions, scan_host_key};
