//! The model reads and writes Octopus's JSON shape, so the server can store and serve it
//! as-is.

use cuttle_vars::{
    ScopeField, ScopeSpecification, Variable, VariablePrompt, VariableSet, VariableType,
};
use serde_json::{Value, json};

fn octopus_document() -> Value {
    json!({
        "Id": "variableset-Projects-1",
        "OwnerId": "Projects-1",
        "SpaceId": "Spaces-1",
        "Version": 3,
        "Variables": [
            {
                "Id": "5e3c1c2a-0000-0000-0000-000000000001",
                "Name": "ConnectionString",
                "Value": "Server=db;Database=#{DatabaseName}",
                "Description": null,
                "Scope": {
                    "Environment": ["Environments-1", "Environments-2"],
                    "Role": ["web"],
                    "Machine": ["Machines-1"],
                    "Action": ["DeploymentActions-1"],
                    "Channel": ["Channels-1"],
                    "ProcessOwner": ["Projects-1"],
                    "TenantTag": ["Tier/Gold"],
                    "Tenant": ["Tenants-1"]
                },
                "IsEditable": true,
                "Prompt": null,
                "Type": "String",
                "IsSensitive": false
            },
            {
                "Id": "5e3c1c2a-0000-0000-0000-000000000002",
                "Name": "Password",
                "Value": null,
                "Description": "The admin password",
                "Scope": {},
                "IsEditable": true,
                "Prompt": {
                    "Label": "Admin password",
                    "Description": "Asked at deployment",
                    "Required": true,
                    "DisplaySettings": { "Octopus.ControlType": "Sensitive" }
                },
                "Type": "Sensitive",
                "IsSensitive": true
            }
        ],
        "ScopeValues": { "Environments": [] },
        "Links": { "Self": "/api/Spaces-1/variables/variableset-Projects-1" }
    })
}

fn parse(document: Value) -> VariableSet {
    serde_json::from_value(document).expect("the Octopus document parses")
}

#[test]
fn reads_an_octopus_variable_set() {
    let set = parse(octopus_document());
    assert_eq!(set.id, "variableset-Projects-1");
    assert_eq!(set.owner_id, "Projects-1");
    assert_eq!(set.space_id.as_deref(), Some("Spaces-1"));
    assert_eq!(set.version, 3);
    assert_eq!(set.variables.len(), 2);

    let connection_string = &set.variables[0];
    assert_eq!(
        connection_string.scope.values(&ScopeField::Environment),
        ["Environments-1", "Environments-2"]
    );
    assert_eq!(
        connection_string.scope.values(&ScopeField::TenantTag),
        ["Tier/Gold"]
    );
    assert_eq!(connection_string.variable_type, VariableType::String);
    assert!(connection_string.is_editable);

    let password = &set.variables[1];
    assert!(password.is_secret());
    assert_eq!(password.value, None);
    let prompt = password.prompt.as_ref().expect("the password is prompted");
    assert_eq!(prompt.label.as_deref(), Some("Admin password"));
    assert!(prompt.required);
    assert!(prompt.collects_secret());
}

#[test]
fn writes_octopus_pascal_case_and_round_trips() {
    let set = parse(octopus_document());
    let written = serde_json::to_value(&set).expect("serialises");
    let variable = &written["Variables"][1];
    for key in [
        "Id",
        "Name",
        "Value",
        "Description",
        "Scope",
        "IsEditable",
        "Prompt",
        "Type",
        "IsSensitive",
    ] {
        assert!(variable.get(key).is_some(), "missing {key} in {variable}");
    }
    assert_eq!(variable["Type"], "Sensitive");
    assert_eq!(variable["Value"], Value::Null);
    assert_eq!(
        variable["Prompt"],
        json!({
            "Label": "Admin password",
            "Description": "Asked at deployment",
            "Required": true,
            "DisplaySettings": { "Octopus.ControlType": "Sensitive" }
        })
    );
    assert_eq!(written["Variables"][0]["Scope"]["Role"], json!(["web"]));
    // Server-computed fields (ScopeValues, Links) are not ours and are dropped.
    assert!(written.get("Links").is_none());
    let reparsed: VariableSet = serde_json::from_value(written).expect("round-trips");
    assert_eq!(reparsed, set);
}

#[test]
fn missing_fields_and_nulls_take_defaults() {
    let set = parse(json!({
        "Variables": [ { "Name": "A", "Value": "1", "Scope": null, "Type": null } ]
    }));
    let variable = &set.variables[0];
    assert!(variable.scope.is_unscoped());
    assert_eq!(variable.variable_type, VariableType::String);
    assert!(variable.is_editable, "IsEditable defaults to true");
    assert_eq!(set.version, 0);
    assert!(parse(json!({ "Variables": null })).variables.is_empty());
}

#[test]
fn accepts_camel_case_property_names() {
    let set = parse(json!({
        "id": "variableset-Projects-2",
        "ownerId": "Projects-2",
        "version": 1,
        "variables": [ { "name": "A", "value": "1", "isSensitive": true, "type": "sensitive",
                          "scope": { "environment": ["Environments-1"] } } ]
    }));
    assert_eq!(set.owner_id, "Projects-2");
    let variable = &set.variables[0];
    assert!(variable.is_sensitive);
    assert_eq!(variable.variable_type, VariableType::Sensitive);
    assert_eq!(
        variable.scope.values(&ScopeField::Environment),
        ["Environments-1"]
    );
}

#[test]
fn unknown_scope_keys_and_types_are_kept_verbatim() {
    let set = parse(json!({
        "Variables": [ { "Name": "A", "Value": "1", "Type": "FutureAccount",
                          "Scope": { "Space": ["Spaces-1"], "Trigger": ["ProjectTriggers-1"],
                                     "User": ["Users-1"], "ParentDeployment": ["Deployments-1"],
                                     "TargetRole": ["web"], "Private": ["x"], "Project": ["Projects-1"] } } ]
    }));
    let variable = &set.variables[0];
    assert_eq!(
        variable.variable_type,
        VariableType::Other("FutureAccount".to_string())
    );
    assert_eq!(
        variable
            .scope
            .values(&ScopeField::Other("Space".to_string())),
        ["Spaces-1"]
    );
    let written = serde_json::to_value(&set).expect("serialises");
    assert_eq!(written["Variables"][0]["Type"], "FutureAccount");
    assert_eq!(
        written["Variables"][0]["Scope"]["Space"],
        json!(["Spaces-1"])
    );
    for key in [
        "Trigger",
        "User",
        "ParentDeployment",
        "TargetRole",
        "Private",
        "Project",
    ] {
        assert!(
            written["Variables"][0]["Scope"].get(key).is_some(),
            "lost {key}"
        );
    }
}

#[test]
fn every_known_scope_key_and_type_round_trips_by_name() {
    for field in ScopeField::KNOWN {
        assert_eq!(ScopeField::parse(field.as_str()), field);
    }
    for type_name in [
        "String",
        "Sensitive",
        "Certificate",
        "AmazonWebServicesAccount",
        "AzureAccount",
        "GoogleCloudAccount",
        "UsernamePasswordAccount",
        "GenericOidcAccount",
        "WorkerPool",
    ] {
        let parsed = VariableType::parse(type_name);
        assert!(
            !matches!(parsed, VariableType::Other(_)),
            "{type_name} unknown"
        );
        assert_eq!(parsed.as_str(), type_name);
    }
}

#[test]
fn builders_produce_the_same_shape() {
    let built = Variable::new("Greeting", "Hello")
        .with_id("v1")
        .scoped(ScopeField::Environment, &["Environments-1"])
        .with_prompt(
            VariablePrompt::new("Greeting text", false).with_control_type("SingleLineText"),
        );
    let written = serde_json::to_value(&built).expect("serialises");
    assert_eq!(
        written,
        json!({
            "Id": "v1",
            "Name": "Greeting",
            "Value": "Hello",
            "Description": null,
            "Scope": { "Environment": ["Environments-1"] },
            "IsEditable": true,
            "Prompt": {
                "Label": "Greeting text",
                "Description": null,
                "Required": false,
                "DisplaySettings": { "Octopus.ControlType": "SingleLineText" }
            },
            "Type": "String",
            "IsSensitive": false
        })
    );
    let scope = ScopeSpecification::new().with(ScopeField::Environment, &["Environments-1"]);
    assert_eq!(built.scope, scope);
}
