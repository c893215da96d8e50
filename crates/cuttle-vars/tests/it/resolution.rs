//! Resolution as a whole: several names at once, deployment-wide versus per action, what a
//! resolved value carries, and the explanation of a choice.

use cuttle_vars::{
    ActionScope, DeploymentScope, OriginKind, RankedDimension, ResolutionWarning, ScopeContext,
    ScopeField, Specificity, TargetScope, Variable, VariableSet, VariableSources,
};

fn deployment() -> DeploymentScope {
    DeploymentScope {
        project_id: Some("Projects-1".to_string()),
        environment_id: Some("Environments-2".to_string()),
        channel_id: Some("Channels-1".to_string()),
        process_owner_id: Some("Projects-1".to_string()),
        ..DeploymentScope::default()
    }
}

fn web_step_on_web01() -> ScopeContext {
    ScopeContext::for_action(
        deployment(),
        ActionScope {
            action_id: "DeploymentActions-1".to_string(),
            step_id: None,
            targeted_tags: vec!["web".to_string()],
        },
        Some(TargetScope {
            machine_id: "Machines-1".to_string(),
            tags: vec!["web".to_string()],
        }),
    )
}

fn project_set() -> VariableSet {
    VariableSet {
        id: "variableset-Projects-1".to_string(),
        owner_id: "Projects-1".to_string(),
        variables: vec![
            Variable::new("LogLevel", "Info").with_id("v-1"),
            Variable::new("LogLevel", "Debug")
                .with_id("v-2")
                .scoped(ScopeField::Role, &["web"]),
            Variable::new("ConnectionString", "Server=#{Server}").with_id("v-3"),
            Variable::new("Server", "db-test")
                .with_id("v-4")
                .scoped(ScopeField::Environment, &["Environments-2"]),
            Variable::new_sensitive("ApiKey", "s3cr3t-key").with_id("v-5"),
            Variable {
                value: None,
                ..Variable::new("Empty", "").with_id("v-6")
            },
        ],
        ..VariableSet::default()
    }
}

fn sources() -> VariableSources {
    let mut sources = VariableSources::new();
    sources.add_project_variables(&project_set());
    sources
}

#[test]
fn deployment_wide_and_per_target_differ_only_where_scopes_need_a_target() {
    let sources = sources();
    let deployment_wide = sources.resolve_for_deployment(&deployment());
    let on_web01 = sources.resolve(&web_step_on_web01());
    assert_eq!(deployment_wide.variables.value("LogLevel"), Some("Info"));
    assert_eq!(on_web01.variables.value("LogLevel"), Some("Debug"));
    for name in ["ConnectionString", "Server", "ApiKey"] {
        assert_eq!(
            deployment_wide.variables.value(name),
            on_web01.variables.value(name),
            "{name}"
        );
    }
}

#[test]
fn values_are_raw_composites_are_not_expanded() {
    let resolution = sources().resolve(&web_step_on_web01());
    assert_eq!(
        resolution.variables.value("connectionstring"),
        Some("Server=#{Server}")
    );
}

#[test]
fn a_null_value_resolves_to_the_empty_string() {
    let resolution = sources().resolve(&web_step_on_web01());
    assert_eq!(resolution.variables.value("Empty"), Some(""));
}

#[test]
fn names_come_out_in_definition_order() {
    let resolution = sources().resolve(&web_step_on_web01());
    let names: Vec<&str> = resolution
        .variables
        .iter()
        .map(|variable| variable.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["LogLevel", "ConnectionString", "Server", "ApiKey", "Empty"]
    );
}

#[test]
fn a_resolved_value_carries_origin_specificity_and_sensitivity() {
    let resolution = sources().resolve(&web_step_on_web01());
    let log_level = resolution.variables.get("LOGLEVEL").expect("resolved");
    assert_eq!(log_level.origin.kind, OriginKind::ProjectVariables);
    assert_eq!(log_level.origin.variable_id.as_deref(), Some("v-2"));
    assert_eq!(
        log_level.origin.set_id.as_deref(),
        Some("variableset-Projects-1")
    );
    assert_eq!(
        log_level.specificity,
        Specificity::of(&[RankedDimension::TargetTagTargetedByStep])
    );
    let api_key = resolution.variables.get("ApiKey").expect("resolved");
    assert!(api_key.is_sensitive);
    assert!(!log_level.is_sensitive);
}

#[test]
fn specificity_orders_like_the_blog_decade_weights() {
    let environment_and_tag =
        Specificity::of(&[RankedDimension::Environment, RankedDimension::TargetTag]);
    let tag = Specificity::of(&[RankedDimension::TargetTag]);
    let action = Specificity::of(&[RankedDimension::Action]);
    assert!(environment_and_tag > tag);
    assert!(action > environment_and_tag);
    assert!(environment_and_tag.decade_weight() > tag.decade_weight());
    assert!(action.decade_weight() > environment_and_tag.decade_weight());
    // Every ordered pair of single dimensions agrees with the decade weights.
    for lower in RankedDimension::ALL {
        for higher in RankedDimension::ALL {
            let (lower, higher) = (Specificity::of(&[lower]), Specificity::of(&[higher]));
            assert_eq!(
                lower.cmp(&higher),
                lower.decade_weight().cmp(&higher.decade_weight())
            );
        }
    }
    assert_eq!(Specificity::UNSCOPED.to_string(), "unscoped");
    assert_eq!(environment_and_tag.to_string(), "TargetTag + Environment");
}

#[test]
fn a_tie_warning_names_the_winner_and_the_others() {
    let set = VariableSet {
        variables: vec![
            Variable::new("Db", "DB01")
                .with_id("a")
                .scoped(ScopeField::Role, &["Web", "App"]),
            Variable::new("Db", "DB02")
                .with_id("b")
                .scoped(ScopeField::Role, &["Web"]),
            Variable::new("Db", "DB03")
                .with_id("c")
                .scoped(ScopeField::Role, &["App"]),
        ],
        ..VariableSet::default()
    };
    let mut sources = VariableSources::new();
    sources.add_project_variables(&set);
    let context = ScopeContext::for_action(
        deployment(),
        ActionScope {
            action_id: "A".to_string(),
            ..ActionScope::default()
        },
        Some(TargetScope {
            machine_id: "M".to_string(),
            tags: vec!["Web".to_string(), "App".to_string()],
        }),
    );
    let resolution = sources.resolve(&context);
    assert_eq!(resolution.variables.value("Db"), Some("DB01"));
    let [
        ResolutionWarning::AmbiguousValue {
            name,
            chosen,
            tied_with,
            specificity,
        },
    ] = resolution.warnings.as_slice()
    else {
        panic!("expected one warning, got {:?}", resolution.warnings);
    };
    assert_eq!(name, "Db");
    assert_eq!(*specificity, Specificity::of(&[RankedDimension::TargetTag]));
    assert_eq!(chosen.variable_id.as_deref(), Some("a"));
    let others: Vec<Option<&str>> = tied_with
        .iter()
        .map(|origin| origin.variable_id.as_deref())
        .collect();
    assert_eq!(others, [Some("b"), Some("c")]);
}

#[test]
fn explain_shows_every_candidate_and_hides_secrets() {
    let mut set = project_set();
    set.variables.push(
        Variable::new_sensitive("ApiKey", "prod-key")
            .with_id("v-7")
            .scoped(ScopeField::Environment, &["Environments-3"]),
    );
    let mut sources = VariableSources::new();
    sources.add_project_variables(&set);
    let explanations = sources.explain("apikey", &web_step_on_web01());
    assert_eq!(explanations.len(), 2);
    assert!(explanations[0].is_winner);
    assert_eq!(explanations[0].visible_value, None);
    assert_eq!(explanations[0].outcome, Ok(Specificity::UNSCOPED));
    assert!(!explanations[1].is_winner);
    assert_eq!(
        explanations[1]
            .outcome
            .as_ref()
            .map_err(|unmatched| &unmatched.0),
        Err(&ScopeField::Environment)
    );
}

#[test]
fn resolving_is_repeatable_for_many_contexts_from_one_manifest() {
    let sources = sources();
    let first = sources.resolve(&web_step_on_web01());
    let second = sources.resolve(&web_step_on_web01());
    assert_eq!(first, second);
    assert_eq!(sources.len(), project_set().variables.len());
}
