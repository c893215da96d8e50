//! Small parsers that let test tables describe scopes and contexts in one line each.
//!
//! Scope: `"Environment=Env-Prod,Env-Test; Role=web"` (empty string = unscoped; `Key=` with
//! nothing after the `=` is an empty list). Context: space-separated `key=value` pairs; keys
//! `project environment channel process tenant tenanttags trigger parent user` describe the
//! deployment, `action step targets` the action, `machine tags` the target. List values are
//! comma-separated. Tests are the only callers, so malformed tables panic with a message.

use cuttle_vars::{
    ActionScope, DeploymentScope, ScopeContext, ScopeField, ScopeSpecification, TargetScope,
    TenantScope,
};

/// Parses the scope mini-language.
pub(crate) fn scope(text: &str) -> ScopeSpecification {
    let mut specification = ScopeSpecification::new();
    for clause in text
        .split(';')
        .map(str::trim)
        .filter(|clause| !clause.is_empty())
    {
        let (key, values) = clause
            .split_once('=')
            .unwrap_or_else(|| panic!("scope clause without '=': {clause}"));
        let values: Vec<String> = values
            .split(',')
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .collect();
        specification
            .values_by_field
            .entry(ScopeField::parse(key.trim()))
            .or_default()
            .extend(values);
    }
    specification
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses the context mini-language.
pub(crate) fn context(text: &str) -> ScopeContext {
    let mut deployment = DeploymentScope::default();
    let mut tenant_id = None;
    let mut tenant_tags = Vec::new();
    let mut action_id = None;
    let mut step_id = None;
    let mut targeted_tags = Vec::new();
    let mut machine_id = None;
    let mut machine_tags = Vec::new();
    for pair in text.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .unwrap_or_else(|| panic!("context item without '=': {pair}"));
        let value = value.to_string();
        match key {
            "project" => deployment.project_id = Some(value),
            "environment" => deployment.environment_id = Some(value),
            "channel" => deployment.channel_id = Some(value),
            "process" => deployment.process_owner_id = Some(value),
            "trigger" => deployment.trigger_id = Some(value),
            "parent" => deployment.parent_deployment_id = Some(value),
            "user" => deployment.user_id = Some(value),
            "tenant" => tenant_id = Some(value),
            "tenanttags" => tenant_tags = list(&value),
            "action" => action_id = Some(value),
            "step" => step_id = Some(value),
            "targets" => targeted_tags = list(&value),
            "machine" => machine_id = Some(value),
            "tags" => machine_tags = list(&value),
            other => panic!("unknown context key {other}"),
        }
    }
    deployment.tenant = tenant_id.map(|tenant_id| TenantScope {
        tenant_id,
        tenant_tags,
    });
    ScopeContext {
        deployment,
        action: action_id.map(|action_id| ActionScope {
            action_id,
            step_id,
            targeted_tags,
        }),
        target: machine_id.map(|machine_id| TargetScope {
            machine_id,
            tags: machine_tags,
        }),
    }
}
