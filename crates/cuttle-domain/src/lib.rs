//! Cuttle's pure model: resource ids, the configuration resources (spaces, environments,
//! lifecycles, projects, channels, deployment targets, workers, library variable sets, users)
//! and the rules that make one of them valid.
//!
//! **Architecture Invariant:** this crate does no IO, no async, reads no clock and no
//! randomness. Whatever needs those (fresh ids, timestamps, GUIDs) is passed in by the caller.
//! That keeps every rule here testable with plain `#[test]`s.
//!
//! Resources are serialized in Octopus's shape (PascalCase), because that same JSON is both the
//! document the store keeps and the body the REST API speaks. Fields that only the server may set
//! (ids, health status) are overwritten by the server, never trusted from a request.

pub mod ids;
pub mod packages;
pub mod pipeline;
pub mod process;
pub mod resources;
pub mod validation;

pub use ids::{ResourceKind, parse_resource_id};
pub use packages::{
    BUILT_IN_FEED_ID, BuildInformation, Package, package_document_id, package_resource_id,
};
pub use pipeline::{
    Defect, Deployment, FormElement, Interruption, InterruptionForm, InterruptionType, Release,
    SelectedPackage, guided_failure_answers,
};
pub use process::{
    AutoRetry, DeploymentAction, DeploymentProcess, DeploymentStep, PackageReference,
    PackageRequirement, StartTrigger, StepCondition,
};
pub use resources::*;
pub use validation::{FieldError, Reference, Resource, slugify, validate_name};
