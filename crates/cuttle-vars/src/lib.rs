//! Cuttle's variables: the stored variable-set model, scoping and precedence, prompted,
//! sensitive, system and output variables, all Octopus-compatible.
//!
//! The flow for one deployment:
//! 1. Load the release's snapshot of the project's [`VariableSet`] and its included library
//!    sets, and add them, with tenant variables, step-template parameters and
//!    [`build_system_variables`] output, to a [`VariableSources`] (the B4 "manifest").
//! 2. [`VariableSources::prompts_for_deployment`] tells the UI what to ask;
//!    [`VariableSources::apply_prompt_answers`] puts the answers in.
//! 3. [`VariableSources::resolve`] gives the effective raw values for one context: the
//!    deployment as a whole, or one action on one target ([`ScopeContext`]).
//! 4. As steps finish, an [`OutputVariableCollector`] records their outputs, which are added
//!    to the sources of later steps.
//!
//! ```
//! use cuttle_vars::{
//!     ActionScope, DeploymentScope, ScopeContext, ScopeField, TargetScope, Variable,
//!     VariableSet, VariableSources,
//! };
//!
//! let project_variables = VariableSet {
//!     variables: vec![
//!         Variable::new("DatabaseName", "DB01"),
//!         Variable::new("DatabaseName", "DB03").scoped(ScopeField::Environment, &["Production"]),
//!         Variable::new("DatabaseName", "DB05")
//!             .scoped(ScopeField::Environment, &["Production"])
//!             .scoped(ScopeField::Role, &["Reporting"]),
//!     ],
//!     ..VariableSet::default()
//! };
//! let mut sources = VariableSources::new();
//! sources.add_project_variables(&project_variables);
//!
//! let deployment = DeploymentScope {
//!     environment_id: Some("Production".to_string()),
//!     ..DeploymentScope::default()
//! };
//! let whole = sources.resolve_for_deployment(&deployment);
//! assert_eq!(whole.variables.value("databasename"), Some("DB03"));
//!
//! let on_reporting_machine = ScopeContext::for_action(
//!     deployment,
//!     ActionScope { action_id: "DeploymentActions-1".to_string(), ..ActionScope::default() },
//!     Some(TargetScope { machine_id: "Machines-1".to_string(), tags: vec!["Reporting".to_string()] }),
//! );
//! let per_target = sources.resolve(&on_reporting_machine);
//! assert_eq!(per_target.variables.value("DatabaseName"), Some("DB05"));
//! ```
//!
//! **Architecture Invariant:** the crate is pure: no IO, no async, no clock, no randomness.
//! Timestamps and ids arrive as strings; sensitive values arrive decrypted or as opaque
//! ciphertext that the caller maps ([`sensitive::map_sensitive_values`]).
//!
//! **Architecture Invariant:** resolution never fails. Ties and other oddities come back as
//! [`ResolutionWarning`]s; only validation and prompt answers return errors, because those
//! are user input the server must refuse.
//!
//! **Precedence**, in one paragraph (details in [`scope`] and [`resolve`]): a value is a
//! candidate only if every dimension it is scoped on matches the context (OR within a
//! dimension, AND across, an absent dimension never matches: spec B2). Among candidates the
//! most specific wins, comparing dimensions in the order Private > User > Action > Machine
//! \> target tag targeted by the step > target tag > Tenant > TenantTag > Environment
//! \> Channel > ProcessOwner > Trigger > ParentDeployment > Project > unscoped (spec B3).
//! Ties go to the
//! earlier source in the B4 order (project, library sets in inclusion order, tenant
//! variables, step-template parameters, system variables, output variables), then to the
//! earlier declaration.
//!
//! What this crate deliberately does not do: evaluate `#{...}` templates (that is
//! `cuttle-template`; resolution returns raw values and composite values are expanded after
//! scoping), encrypt or decrypt, mask log lines (it lists the values to mask), check that
//! referenced ids exist (it lists them for the server), or structured configuration
//! replacement.

#![forbid(unsafe_code)]

pub mod model;
pub mod output;
pub mod prompts;
pub mod resolve;
pub mod scope;
pub mod sensitive;
pub mod sources;
pub mod system;
pub mod system_names;
pub mod validation;

pub use model::{
    ReferencedResource, ScopeField, ScopeSpecification, Variable, VariablePrompt, VariableSet,
    VariableType,
};
pub use output::{OutputMachine, OutputRecord, OutputVariableCollector};
pub use prompts::{AppliedPrompts, MissingPrompt, PromptAnswers, PromptError, PromptRequest};
pub use resolve::{
    CandidateExplanation, Resolution, ResolutionWarning, ResolvedVariable, ResolvedVariables,
};
pub use scope::{
    ActionScope, DeploymentScope, RankedDimension, ScopeContext, Specificity, TargetScope,
    TenantScope,
};
pub use sources::{OriginKind, ScopedValue, ValueOrigin, VariableSources};
pub use system::{SystemVariableInputs, build_system_variables};
pub use validation::{
    ScopeReference, ValidationError, ValidationErrors, VariableSetKind, normalize_variable_set,
    scope_references, validate_variable_set,
};
