//! Cuttle's release-pipeline rules: which environments a release may be deployed to
//! ([`progression`]), which version a new release gets ([`versioning`]), and which package
//! versions a channel accepts ([`channel_rules`]) and a release pins ([`package_selection`]),
//! which releases retention lets go ([`retention`]),
//! with the version and range types they share ([`version`], [`version_range`]).
//!
//! **Architecture Invariant:** the crate is pure. It does no IO, never reads the clock (callers
//! pass `now`) and uses no randomness; it decides from the facts it is given (the lifecycle,
//! the environments, the deployment history, the existing releases) and returns decisions with
//! human reasons. Loading those facts and acting on the decisions (queueing automatic
//! deployments, refusing an API request) belongs to the server.

pub mod channel_rules;
pub mod package_selection;
pub mod progression;
pub mod retention;
pub mod version;
mod version_mask;
pub mod version_range;
pub mod versioning;

pub use version::{ReleaseVersion, VersionParseError, parse_release_version};
pub use version_range::{VersionRange, VersionRangeError, parse_version_range};
