//! The stored and served variable model, in Octopus's JSON shape.
//!
//! The server keeps a [`VariableSet`] as a JSON document and serves it as-is from
//! `/api/{spaceId}/variables/{id}`, so the field names are Octopus's PascalCase ones
//! (`Id`, `OwnerId`, `Version`, `Variables`, `Scope`, `IsSensitive`, ...). Deserialisation is
//! lenient in the ways real Octopus exports need: missing fields take their defaults, `null`
//! collections read as empty, camelCase property names (sent by the Go CLI) are accepted as
//! aliases, and unknown scope keys or variable types are kept rather than rejected, so that a
//! document written by a newer Octopus round-trips. [`crate::validation`] is where such
//! oddities are reported.
//!
//! What this module deliberately does not do: decide which value applies (see
//! [`crate::resolve`]), encrypt anything (sensitive values are opaque strings here, see
//! [`crate::sensitive`]) or check that scope ids exist (the server does that with
//! [`crate::validation::scope_references`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of variables owned by a project (its project variables) or by a library variable
/// set, as Octopus's `VariableSetResource`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VariableSet {
    /// `variableset-Projects-1` style id.
    #[serde(alias = "id", default)]
    pub id: String,
    /// The owning project (`Projects-1`) or library variable set (`LibraryVariableSets-1`).
    #[serde(alias = "ownerId", default)]
    pub owner_id: String,
    /// The space the set lives in. Octopus always sends it; older documents may lack it.
    #[serde(alias = "spaceId", default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    /// Optimistic-concurrency version: the server rejects a save whose version is stale.
    #[serde(alias = "version", default)]
    pub version: u64,
    /// The values, in declaration order. Order matters: it is the last tie-break of
    /// precedence (see [`crate::resolve`]).
    #[serde(alias = "variables", default, deserialize_with = "null_as_default")]
    pub variables: Vec<Variable>,
}

/// One value of a variable. Octopus calls each row a "variable", although several rows with
/// the same name and different scopes are the values of one variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Variable {
    /// A GUID-like id assigned by the server; empty in a create request.
    #[serde(alias = "id", default)]
    pub id: String,
    /// The variable name. Names compare case-insensitively everywhere.
    #[serde(alias = "name", default)]
    pub name: String,
    /// The raw value, which may contain `#{...}` (expanded later by `cuttle-template`).
    /// For sensitive values this is whatever the caller put there: plaintext after
    /// decryption, or an opaque ciphertext the caller maps (see [`crate::sensitive`]).
    /// `null` is how the API hides sensitive values.
    #[serde(alias = "value", default)]
    pub value: Option<String>,
    /// Free-text help shown in the UI.
    #[serde(alias = "description", default)]
    pub description: Option<String>,
    /// Where this value applies; empty means everywhere.
    #[serde(alias = "scope", default, deserialize_with = "null_as_default")]
    pub scope: ScopeSpecification,
    /// False for values the UI must not let users edit (Octopus sets it on some
    /// server-managed values).
    #[serde(alias = "isEditable", default = "default_true")]
    pub is_editable: bool,
    /// Present when the value is asked for at deployment creation.
    #[serde(alias = "prompt", default)]
    pub prompt: Option<VariablePrompt>,
    /// What kind of value this is; account, certificate and worker-pool types hold an id.
    #[serde(rename = "Type", alias = "type", default)]
    pub variable_type: VariableType,
    /// True for secrets. Octopus sets it whenever `Type` is `Sensitive`; older API clients
    /// set only this flag, so either marks the value sensitive (see [`Variable::is_secret`]).
    #[serde(alias = "isSensitive", default)]
    pub is_sensitive: bool,
}

fn default_true() -> bool {
    true
}

impl Default for Variable {
    fn default() -> Self {
        Variable {
            id: String::new(),
            name: String::new(),
            value: None,
            description: None,
            scope: ScopeSpecification::default(),
            is_editable: true,
            prompt: None,
            variable_type: VariableType::String,
            is_sensitive: false,
        }
    }
}

impl Variable {
    /// An unscoped, non-sensitive string value; the usual starting point in code and tests.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Variable {
            name: name.into(),
            value: Some(value.into()),
            ..Variable::default()
        }
    }

    /// An unscoped sensitive value (`Type: Sensitive`, `IsSensitive: true`).
    pub fn new_sensitive(name: impl Into<String>, value: impl Into<String>) -> Self {
        Variable {
            name: name.into(),
            value: Some(value.into()),
            variable_type: VariableType::Sensitive,
            is_sensitive: true,
            ..Variable::default()
        }
    }

    /// The same value with `values` added to the scope dimension `field`.
    pub fn scoped(mut self, field: ScopeField, values: &[&str]) -> Self {
        self.scope
            .add(field, values.iter().map(|value| value.to_string()));
        self
    }

    /// The same value with the given id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The same value, prompted for at deployment creation.
    pub fn with_prompt(mut self, prompt: VariablePrompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// True when the value is a secret: either the `Sensitive` type or the `IsSensitive`
    /// flag, because Octopus documents written by different client generations set one or
    /// the other, and treating a secret as plain text is the worse mistake.
    pub fn is_secret(&self) -> bool {
        self.is_sensitive || self.variable_type == VariableType::Sensitive
    }
}

/// Octopus's variable types. Types other than `String` and `Sensitive` hold the id of an
/// account, certificate or worker pool as their value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VariableType {
    /// Plain text.
    #[default]
    String,
    /// A secret: stored encrypted, never returned by the API, masked in logs.
    Sensitive,
    /// The id of a certificate (`Certificates-1`).
    Certificate,
    /// The id of an AWS account (`Accounts-1`).
    AmazonWebServicesAccount,
    /// The id of an Azure account.
    AzureAccount,
    /// The id of a Google Cloud account.
    GoogleCloudAccount,
    /// The id of a username/password account.
    UsernamePasswordAccount,
    /// The id of a generic OIDC account.
    GenericOidcAccount,
    /// The id of a worker pool (`WorkerPools-1`).
    WorkerPool,
    /// A type this crate does not know, kept verbatim so the document round-trips.
    Other(String),
}

impl VariableType {
    const KNOWN: [(VariableType, &'static str); 9] = [
        (VariableType::String, "String"),
        (VariableType::Sensitive, "Sensitive"),
        (VariableType::Certificate, "Certificate"),
        (
            VariableType::AmazonWebServicesAccount,
            "AmazonWebServicesAccount",
        ),
        (VariableType::AzureAccount, "AzureAccount"),
        (VariableType::GoogleCloudAccount, "GoogleCloudAccount"),
        (
            VariableType::UsernamePasswordAccount,
            "UsernamePasswordAccount",
        ),
        (VariableType::GenericOidcAccount, "GenericOidcAccount"),
        (VariableType::WorkerPool, "WorkerPool"),
    ];

    /// The name Octopus writes in `Type`.
    pub fn as_str(&self) -> &str {
        match self {
            VariableType::Other(name) => name,
            known => Self::KNOWN
                .iter()
                .find(|(candidate, _)| candidate == known)
                .map_or("String", |(_, name)| name),
        }
    }

    /// Parses Octopus's `Type` string; case-insensitive because the API binds enums that way.
    pub fn parse(text: &str) -> VariableType {
        Self::KNOWN
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(text))
            .map_or_else(
                || VariableType::Other(text.to_string()),
                |(known, _)| known.clone(),
            )
    }

    /// What kind of resource the value refers to, for types whose value is an id.
    pub fn referenced_resource(&self) -> Option<ReferencedResource> {
        match self {
            VariableType::Certificate => Some(ReferencedResource::Certificate),
            VariableType::AmazonWebServicesAccount
            | VariableType::AzureAccount
            | VariableType::GoogleCloudAccount
            | VariableType::UsernamePasswordAccount
            | VariableType::GenericOidcAccount => Some(ReferencedResource::Account),
            VariableType::WorkerPool => Some(ReferencedResource::WorkerPool),
            VariableType::String | VariableType::Sensitive | VariableType::Other(_) => None,
        }
    }
}

impl fmt::Display for VariableType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for VariableType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VariableType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        Ok(text.map_or(VariableType::String, |text| VariableType::parse(&text)))
    }
}

/// The kind of resource a scope value or a typed variable value points at; the server uses
/// it to check that ids exist and are of the right kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReferencedResource {
    /// `Environments-1`.
    Environment,
    /// `Machines-1` (a deployment target).
    Machine,
    /// A target tag (role) name; tags are free text, not ids.
    TargetTag,
    /// A deployment action id (`DeploymentActions-1` or the action's GUID).
    Action,
    /// `Channels-1`.
    Channel,
    /// `Tenants-1`.
    Tenant,
    /// A canonical tenant tag name, `Tag Set/Tag`.
    TenantTag,
    /// A project (the deployment process owner) or a runbook (`Runbooks-1`).
    ProcessOwner,
    /// `Projects-1`.
    Project,
    /// `Users-1`.
    User,
    /// `ProjectTriggers-1`.
    Trigger,
    /// `Deployments-1` of a parent "Deploy a release" deployment.
    ParentDeployment,
    /// `Certificates-1`.
    Certificate,
    /// `Accounts-1`.
    Account,
    /// `WorkerPools-1`.
    WorkerPool,
}

/// A scope dimension: a key of Octopus's `Scope` object.
///
/// The list is Octopus's `ScopeField` enumeration as sent on the wire (Octopus.Client and
/// the Go client agree on these names). `TargetRole` and `Private` are mostly set by the
/// server itself; `Other` keeps keys from newer Octopus versions, which can never be
/// satisfied (spec B2: a dimension the context lacks cannot match).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeField {
    /// Projects (`Project`).
    Project,
    /// Environments (`Environment`).
    Environment,
    /// Deployment targets (`Machine`).
    Machine,
    /// Target tags, formerly roles (`Role`).
    Role,
    /// Target tags that the current step targets (`TargetRole`).
    TargetRole,
    /// Deployment steps/actions (`Action`).
    Action,
    /// Users (`User`).
    User,
    /// Server-internal values that must beat user-defined ones (`Private`).
    Private,
    /// Channels (`Channel`).
    Channel,
    /// Tenant tags, `Tag Set/Tag` (`TenantTag`).
    TenantTag,
    /// Tenants (`Tenant`).
    Tenant,
    /// The deployment process (its project id) or a runbook process (`ProcessOwner`).
    ProcessOwner,
    /// The parent deployment of a "Deploy a release" child (`ParentDeployment`).
    ParentDeployment,
    /// Project triggers (`Trigger`).
    Trigger,
    /// A key this crate does not know, kept verbatim.
    Other(String),
}

impl ScopeField {
    /// Every known dimension, in Octopus's enumeration order.
    pub const KNOWN: [ScopeField; 14] = [
        ScopeField::Project,
        ScopeField::Environment,
        ScopeField::Machine,
        ScopeField::Role,
        ScopeField::TargetRole,
        ScopeField::Action,
        ScopeField::User,
        ScopeField::Private,
        ScopeField::Channel,
        ScopeField::TenantTag,
        ScopeField::Tenant,
        ScopeField::ProcessOwner,
        ScopeField::ParentDeployment,
        ScopeField::Trigger,
    ];

    /// The key as written in JSON.
    pub fn as_str(&self) -> &str {
        match self {
            ScopeField::Project => "Project",
            ScopeField::Environment => "Environment",
            ScopeField::Machine => "Machine",
            ScopeField::Role => "Role",
            ScopeField::TargetRole => "TargetRole",
            ScopeField::Action => "Action",
            ScopeField::User => "User",
            ScopeField::Private => "Private",
            ScopeField::Channel => "Channel",
            ScopeField::TenantTag => "TenantTag",
            ScopeField::Tenant => "Tenant",
            ScopeField::ProcessOwner => "ProcessOwner",
            ScopeField::ParentDeployment => "ParentDeployment",
            ScopeField::Trigger => "Trigger",
            ScopeField::Other(name) => name,
        }
    }

    /// Parses a `Scope` key; case-insensitive like Octopus's enum binding.
    pub fn parse(text: &str) -> ScopeField {
        Self::KNOWN
            .iter()
            .find(|known| known.as_str().eq_ignore_ascii_case(text))
            .cloned()
            .unwrap_or_else(|| ScopeField::Other(text.to_string()))
    }

    /// What the values of this dimension refer to, `None` for unknown keys.
    pub fn referenced_resource(&self) -> Option<ReferencedResource> {
        match self {
            ScopeField::Project => Some(ReferencedResource::Project),
            ScopeField::Environment => Some(ReferencedResource::Environment),
            ScopeField::Machine => Some(ReferencedResource::Machine),
            ScopeField::Role | ScopeField::TargetRole => Some(ReferencedResource::TargetTag),
            ScopeField::Action => Some(ReferencedResource::Action),
            ScopeField::User => Some(ReferencedResource::User),
            ScopeField::Channel => Some(ReferencedResource::Channel),
            ScopeField::TenantTag => Some(ReferencedResource::TenantTag),
            ScopeField::Tenant => Some(ReferencedResource::Tenant),
            ScopeField::ProcessOwner => Some(ReferencedResource::ProcessOwner),
            ScopeField::ParentDeployment => Some(ReferencedResource::ParentDeployment),
            ScopeField::Trigger => Some(ReferencedResource::Trigger),
            ScopeField::Private | ScopeField::Other(_) => None,
        }
    }
}

impl fmt::Display for ScopeField {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Serialize for ScopeField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ScopeField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(ScopeField::parse(&text))
    }
}

/// Octopus's `Scope` object: for each dimension, the values the variable value applies to.
///
/// Within one dimension the values are OR'd, across dimensions AND'd (spec B2). A
/// dimension with an empty list is the same as an absent one, as in Octopus's own
/// `IsEmpty` checks, so `{"Environment": []}` is unscoped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSpecification {
    /// Dimension to values. A `BTreeMap` so serialisation order is stable.
    pub values_by_field: BTreeMap<ScopeField, Vec<String>>,
}

impl ScopeSpecification {
    /// An unscoped specification.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `values` to dimension `field`, keeping existing ones.
    pub fn add(&mut self, field: ScopeField, values: impl IntoIterator<Item = String>) {
        self.values_by_field
            .entry(field)
            .or_default()
            .extend(values);
    }

    /// The same specification with `values` added to `field`; for building in one expression.
    pub fn with(mut self, field: ScopeField, values: &[&str]) -> Self {
        self.add(field, values.iter().map(|value| value.to_string()));
        self
    }

    /// The values of `field`, empty when the dimension is not scoped.
    pub fn values(&self, field: &ScopeField) -> &[String] {
        self.values_by_field.get(field).map_or(&[], Vec::as_slice)
    }

    /// The dimensions that actually constrain the value (non-empty lists).
    pub fn scoped_fields(&self) -> impl Iterator<Item = (&ScopeField, &[String])> {
        self.values_by_field
            .iter()
            .filter(|(_, values)| !values.is_empty())
            .map(|(field, values)| (field, values.as_slice()))
    }

    /// True when no dimension constrains the value.
    pub fn is_unscoped(&self) -> bool {
        self.scoped_fields().next().is_none()
    }
}

/// Prompt settings of a value asked for at deployment creation (spec B7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VariablePrompt {
    /// The label shown in the form; the variable name is used when it is empty.
    #[serde(alias = "label", default)]
    pub label: Option<String>,
    /// Help text.
    #[serde(alias = "description", default)]
    pub description: Option<String>,
    /// A required prompt must be answered with a non-blank value.
    #[serde(alias = "required", default)]
    pub required: bool,
    /// Control settings, notably `Octopus.ControlType` (`SingleLineText`, `MultiLineText`,
    /// `Select`, `Checkbox`, `Sensitive`, ...) and `Octopus.SelectOptions`.
    #[serde(
        alias = "displaySettings",
        default,
        deserialize_with = "null_as_default"
    )]
    pub display_settings: BTreeMap<String, String>,
}

/// The `DisplaySettings` key that names the prompt's control type.
pub const CONTROL_TYPE_SETTING: &str = "Octopus.ControlType";

/// The control type that makes a prompted answer a secret.
pub const SENSITIVE_CONTROL_TYPE: &str = "Sensitive";

impl VariablePrompt {
    /// A prompt with a label.
    pub fn new(label: impl Into<String>, required: bool) -> Self {
        VariablePrompt {
            label: Some(label.into()),
            required,
            ..VariablePrompt::default()
        }
    }

    /// The same prompt with `Octopus.ControlType` set.
    pub fn with_control_type(mut self, control_type: impl Into<String>) -> Self {
        self.display_settings
            .insert(CONTROL_TYPE_SETTING.to_string(), control_type.into());
        self
    }

    /// The `Octopus.ControlType` setting, if any.
    pub fn control_type(&self) -> Option<&str> {
        self.display_settings
            .get(CONTROL_TYPE_SETTING)
            .map(String::as_str)
    }

    /// True when the control collects a secret, so the answer must stay sensitive.
    pub fn collects_secret(&self) -> bool {
        self.control_type()
            .is_some_and(|control_type| control_type.eq_ignore_ascii_case(SENSITIVE_CONTROL_TYPE))
    }
}

/// Reads JSON `null` as the type's default; Octopus writes `null` for empty collections in
/// some documents and we must not refuse them.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
