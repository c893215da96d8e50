//! Prompted variables (spec B7).

use cuttle_vars::{
    DeploymentScope, MissingPrompt, PromptAnswers, PromptError, ScopeField, Variable,
    VariablePrompt, VariableSet, VariableSources,
};

fn deployment_to(environment_id: &str) -> DeploymentScope {
    DeploymentScope {
        project_id: Some("Projects-1".to_string()),
        environment_id: Some(environment_id.to_string()),
        channel_id: Some("Channels-1".to_string()),
        process_owner_id: Some("Projects-1".to_string()),
        ..DeploymentScope::default()
    }
}

fn runbook_run_in(environment_id: &str) -> DeploymentScope {
    DeploymentScope {
        project_id: Some("Projects-1".to_string()),
        environment_id: Some(environment_id.to_string()),
        channel_id: None,
        process_owner_id: Some("Runbooks-1".to_string()),
        ..DeploymentScope::default()
    }
}

fn project_set() -> VariableSet {
    VariableSet {
        id: "variableset-Projects-1".to_string(),
        variables: vec![
            Variable::new("Zeta", "z-default")
                .with_id("v-zeta")
                .with_prompt(VariablePrompt::new("", false)),
            Variable::new("ReleaseNote", "")
                .with_id("v-note")
                .with_prompt(VariablePrompt::new("Approval note", true)),
            Variable::new_sensitive("AdminPassword", "")
                .with_id("v-password")
                .with_prompt(VariablePrompt::new("Admin password", true)),
            Variable::new("Ticket", "")
                .with_id("v-ticket-prod")
                .scoped(ScopeField::Environment, &["Environments-3"])
                .with_prompt(VariablePrompt::new("Change ticket", true)),
            Variable::new("Ticket", "n/a").with_id("v-ticket-default"),
            Variable::new("WebOnly", "w")
                .with_id("v-web")
                .scoped(ScopeField::Role, &["web"])
                .with_prompt(VariablePrompt::new("Web setting", false)),
            Variable::new("RunbookReason", "")
                .with_id("v-reason")
                .scoped(ScopeField::ProcessOwner, &["Runbooks-1"])
                .with_prompt(VariablePrompt::new("Reason", true)),
            Variable::new("Token", "").with_id("v-token").with_prompt(
                VariablePrompt::new("Deploy token", false).with_control_type("Sensitive"),
            ),
            Variable::new("NotPrompted", "x"),
        ],
        ..VariableSet::default()
    }
}

fn sources() -> VariableSources {
    let mut sources = VariableSources::new();
    sources.add_project_variables(&project_set());
    sources
}

fn labels(sources: &VariableSources, deployment: &DeploymentScope) -> Vec<String> {
    sources
        .prompts_for_deployment(deployment)
        .into_iter()
        .map(|request| request.label)
        .collect()
}

#[test]
fn prompts_are_the_in_scope_ones_sorted_by_label_then_name() {
    // Zeta has a blank label, so it sorts by its name. Ticket is Production-only,
    // RunbookReason runbook-only; WebOnly may apply to a web target, so it is asked.
    assert_eq!(
        labels(&sources(), &deployment_to("Environments-2")),
        [
            "Admin password",
            "Approval note",
            "Deploy token",
            "Web setting",
            "Zeta"
        ]
    );
    assert_eq!(
        labels(&sources(), &deployment_to("Environments-3")),
        [
            "Admin password",
            "Approval note",
            "Change ticket",
            "Deploy token",
            "Web setting",
            "Zeta"
        ]
    );
    assert_eq!(
        labels(&sources(), &runbook_run_in("Environments-2")),
        [
            "Admin password",
            "Approval note",
            "Deploy token",
            "Reason",
            "Web setting",
            "Zeta"
        ]
    );
}

#[test]
fn a_prompt_request_carries_settings_and_hides_secret_defaults() {
    let requests = sources().prompts_for_deployment(&deployment_to("Environments-2"));
    let zeta = requests
        .iter()
        .find(|request| request.name == "Zeta")
        .expect("asked");
    assert_eq!(zeta.default_value.as_deref(), Some("z-default"));
    assert!(!zeta.required);
    assert_eq!(zeta.variable_ids, ["v-zeta"]);
    let password = requests
        .iter()
        .find(|request| request.name == "AdminPassword")
        .expect("asked");
    assert!(password.is_sensitive);
    assert_eq!(password.default_value, None);
    let token = requests
        .iter()
        .find(|request| request.name == "Token")
        .expect("asked");
    assert!(
        token.is_sensitive,
        "the Sensitive control type makes the answer secret"
    );
}

#[test]
fn missing_required_prompts_are_all_named() {
    let mut sources = sources();
    let error = sources
        .apply_prompt_answers(
            &deployment_to("Environments-3"),
            &PromptAnswers::new().answer_by_name("ReleaseNote", "   "),
        )
        .expect_err("required prompts are missing");
    let PromptError::MissingRequiredValues { missing } = &error;
    assert_eq!(
        missing,
        &[
            MissingPrompt {
                name: "AdminPassword".to_string(),
                label: "Admin password".to_string()
            },
            MissingPrompt {
                name: "ReleaseNote".to_string(),
                label: "Approval note".to_string()
            },
            MissingPrompt {
                name: "Ticket".to_string(),
                label: "Change ticket".to_string()
            },
        ]
    );
    assert_eq!(
        error.to_string(),
        "required prompted variables have no value: 'Admin password' (AdminPassword), \
         'Approval note' (ReleaseNote), 'Change ticket' (Ticket)"
    );
    assert_eq!(sources, self::sources(), "nothing changes on error");
}

#[test]
fn answers_replace_the_prompted_values_and_secrets_stay_secret() {
    let mut sources = sources();
    let deployment = deployment_to("Environments-3");
    let answers = PromptAnswers::new()
        .answer_by_name("releasenote", "Approved by CAB")
        .answer_by_variable_id("v-password", "hunter22")
        .answer_by_name("Ticket", "CHG-42")
        .answer_by_name("Token", "tok-123")
        .answer_by_name("Unknown", "ignored");
    let applied = sources
        .apply_prompt_answers(&deployment, &answers)
        .expect("all required prompts answered");
    assert_eq!(applied.unused_answer_keys, ["Unknown"]);
    assert_eq!(applied.answered_names.len(), 4);

    let resolution = sources.resolve_for_deployment(&deployment);
    let variables = &resolution.variables;
    assert_eq!(variables.value("ReleaseNote"), Some("Approved by CAB"));
    assert_eq!(variables.value("Ticket"), Some("CHG-42"));
    assert_eq!(
        variables.value("Zeta"),
        Some("z-default"),
        "unanswered keeps its default"
    );
    let password = variables.get("AdminPassword").expect("resolved");
    assert_eq!(password.value, "hunter22");
    assert!(password.is_sensitive);
    let token = variables.get("Token").expect("resolved");
    assert!(
        token.is_sensitive,
        "answer to a Sensitive control is masked"
    );
    assert!(variables.values_to_mask().contains(&"tok-123"));
}

#[test]
fn an_answer_only_replaces_values_in_scope() {
    let mut sources = sources();
    // Deploying to Environments-2: the Production-only Ticket prompt is not asked, so an
    // answer for it must not touch the Production value, and the unscoped default stays.
    let applied = sources
        .apply_prompt_answers(
            &deployment_to("Environments-2"),
            &PromptAnswers::from_names([
                ("ReleaseNote", "ok"),
                ("AdminPassword", "pw-long"),
                ("Ticket", "CHG-1"),
            ]),
        )
        .expect("answered");
    assert_eq!(applied.unused_answer_keys, ["Ticket"]);
    let resolution = sources.resolve_for_deployment(&deployment_to("Environments-2"));
    assert_eq!(resolution.variables.value("Ticket"), Some("n/a"));
}

#[test]
fn a_required_prompt_with_a_non_blank_default_needs_no_answer() {
    let set = VariableSet {
        variables: vec![
            Variable::new("Region", "eu-west-1")
                .with_id("v-region")
                .with_prompt(VariablePrompt::new("Region", true)),
        ],
        ..VariableSet::default()
    };
    let mut sources = VariableSources::new();
    sources.add_project_variables(&set);
    let deployment = deployment_to("Environments-1");
    sources
        .apply_prompt_answers(&deployment, &PromptAnswers::new())
        .expect("the default is a usable value");
    assert_eq!(
        sources
            .resolve_for_deployment(&deployment)
            .variables
            .value("Region"),
        Some("eu-west-1")
    );
}

#[test]
fn a_variable_id_answer_beats_a_name_answer() {
    let mut sources = sources();
    let deployment = deployment_to("Environments-2");
    sources
        .apply_prompt_answers(
            &deployment,
            &PromptAnswers::new()
                .answer_by_name("ReleaseNote", "by name")
                .answer_by_variable_id("v-note", "by id")
                .answer_by_name("AdminPassword", "pw-long"),
        )
        .expect("answered");
    assert_eq!(
        sources
            .resolve_for_deployment(&deployment)
            .variables
            .value("ReleaseNote"),
        Some("by id")
    );
}

#[test]
fn library_set_prompts_are_asked_too() {
    let library = VariableSet {
        id: "variableset-LibraryVariableSets-1".to_string(),
        variables: vec![
            Variable::new("SharedQuestion", "")
                .with_id("v-shared")
                .with_prompt(VariablePrompt::new("Shared question", true)),
        ],
        ..VariableSet::default()
    };
    let mut sources = VariableSources::new();
    sources.add_library_variable_set(&library);
    let requests = sources.prompts_for_deployment(&deployment_to("Environments-1"));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].variable_ids, ["v-shared"]);
}
