//! Output variables (spec B6): recording and what later steps see.

use cuttle_vars::output::names_visible_within_step;
use cuttle_vars::{
    ActionScope, DeploymentScope, OutputMachine, OutputVariableCollector, ScopeContext,
    TargetScope, VariableSources,
};

fn later_step_on(machine_id: Option<&str>) -> ScopeContext {
    ScopeContext::for_action(
        DeploymentScope {
            environment_id: Some("Environments-1".to_string()),
            ..DeploymentScope::default()
        },
        ActionScope {
            action_id: "DeploymentActions-2".to_string(),
            ..ActionScope::default()
        },
        machine_id.map(|machine_id| TargetScope {
            machine_id: machine_id.to_string(),
            tags: vec!["web".to_string()],
        }),
    )
}

fn web01() -> OutputMachine {
    OutputMachine::new("Machines-1", "Web01")
}

fn web02() -> OutputMachine {
    OutputMachine::new("Machines-2", "Web02")
}

/// StepA ran on Web01 then Web02, each setting TestResult.
fn collector() -> OutputVariableCollector {
    let mut collector = OutputVariableCollector::new();
    collector.record_output("StepA", Some(&web01()), "TestResult", "pass-01", false);
    collector.record_output("StepA", Some(&web02()), "TestResult", "fail-02", false);
    collector
}

fn sources_with(collector: &OutputVariableCollector) -> VariableSources {
    let mut sources = VariableSources::new();
    sources.add_output_variables(collector.scoped_values());
    sources
}

#[test]
fn each_machine_sees_its_own_value_under_the_plain_name() {
    let sources = sources_with(&collector());
    let on_web01 = sources.resolve(&later_step_on(Some("Machines-1")));
    let on_web02 = sources.resolve(&later_step_on(Some("Machines-2")));
    assert_eq!(
        on_web01
            .variables
            .value("Octopus.Action[StepA].Output.TestResult"),
        Some("pass-01")
    );
    assert_eq!(
        on_web02
            .variables
            .value("Octopus.Action[StepA].Output.TestResult"),
        Some("fail-02")
    );
    assert!(on_web01.warnings.is_empty());
}

#[test]
fn the_machine_named_forms_are_unscoped() {
    let sources = sources_with(&collector());
    for context in [later_step_on(Some("Machines-1")), later_step_on(None)] {
        let resolution = sources.resolve(&context);
        assert_eq!(
            resolution
                .variables
                .value("Octopus.Action[StepA].Output[Web01].TestResult"),
            Some("pass-01")
        );
        assert_eq!(
            resolution
                .variables
                .value("Octopus.Action[StepA].Output[Web02].TestResult"),
            Some("fail-02")
        );
    }
}

#[test]
fn elsewhere_the_plain_name_has_the_value_recorded_last() {
    let sources = sources_with(&collector());
    let on_server = sources.resolve(&later_step_on(None));
    let on_web03 = sources.resolve(&later_step_on(Some("Machines-3")));
    let deployment_wide = sources.resolve_for_deployment(&DeploymentScope::default());
    for resolution in [on_server, on_web03, deployment_wide] {
        assert_eq!(
            resolution
                .variables
                .value("Octopus.Action[StepA].Output.TestResult"),
            Some("fail-02")
        );
    }
    assert_eq!(
        collector().names_with_conflicting_values(),
        ["Octopus.Action[StepA].Output.TestResult"]
    );
}

#[test]
fn setting_twice_on_one_machine_keeps_the_last_value_and_names_ignore_case() {
    let mut collector = OutputVariableCollector::new();
    collector.record_output("StepA", Some(&web01()), "Result", "first", false);
    collector.record_output("stepa", Some(&web01()), "RESULT", "second", false);
    assert!(collector.names_with_conflicting_values().is_empty());
    let values = collector.scoped_values();
    // Machine-named, machine-scoped plain, unscoped plain: three values, one per form.
    assert_eq!(values.len(), 3);
    let sources = sources_with(&collector);
    let resolution = sources.resolve(&later_step_on(Some("Machines-1")));
    assert_eq!(
        resolution
            .variables
            .value("Octopus.Action[StepA].Output.Result"),
        Some("second")
    );
}

#[test]
fn a_step_without_a_target_records_only_the_plain_unscoped_form() {
    let mut collector = OutputVariableCollector::new();
    collector.record_output("Approve", None, "Manual.Notes", "looks good", false);
    let values = collector.scoped_values();
    assert_eq!(values.len(), 1);
    assert_eq!(
        values[0].name,
        "Octopus.Action[Approve].Output.Manual.Notes"
    );
    assert!(values[0].scope.is_unscoped());
}

#[test]
fn sensitive_outputs_stay_sensitive_in_every_form() {
    let mut collector = OutputVariableCollector::new();
    collector.record_output("StepA", Some(&web01()), "Token", "tok-secret", true);
    assert!(
        collector
            .scoped_values()
            .iter()
            .all(|value| value.is_sensitive)
    );
    let resolution = sources_with(&collector).resolve(&later_step_on(Some("Machines-1")));
    assert_eq!(resolution.variables.values_to_mask(), ["tok-secret"]);
}

#[test]
fn child_deployment_outputs_use_the_deployment_indexer() {
    let mut collector = OutputVariableCollector::new();
    collector.record_child_deployment_output("Deploy Child", "Run Tests", "Result", "ok", false);
    let resolution = sources_with(&collector).resolve(&later_step_on(None));
    assert_eq!(
        resolution
            .variables
            .value("Octopus.Action[Deploy Child].Output.Deployment[Run Tests].Result"),
        Some("ok")
    );
}

#[test]
fn within_the_same_step_an_output_has_three_names() {
    assert_eq!(
        names_visible_within_step("StepA", Some("Web01"), "Foo"),
        [
            "Foo",
            "Octopus.Action[StepA].Output.Foo",
            "Octopus.Action[StepA].Output[Web01].Foo"
        ]
    );
    assert_eq!(names_visible_within_step("StepA", None, "Foo").len(), 2);
}

#[test]
fn replacing_outputs_after_each_step_leaves_no_stale_copies() {
    let mut collector = OutputVariableCollector::new();
    let mut sources = VariableSources::new();
    collector.record_output("StepA", Some(&web01()), "Build", "1", false);
    sources.replace_output_variables(collector.scoped_values());
    collector.record_output("StepA", Some(&web02()), "Build", "2", false);
    sources.replace_output_variables(collector.scoped_values());
    let resolution = sources.resolve(&later_step_on(None));
    assert_eq!(
        resolution
            .variables
            .value("Octopus.Action[StepA].Output.Build"),
        Some("2")
    );
    assert!(resolution.warnings.is_empty());
    assert_eq!(sources.len(), collector.scoped_values().len());
}
