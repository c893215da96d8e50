//! The scoping and precedence rules of spec B2-B4 as a table of cases a reviewer can read:
//! the values (with their source and scope), the context, and the value expected to win.
//!
//! Sources: `project`, `library0`/`library1` (library sets, in inclusion order), `tenant`,
//! `steptemplate`, `system` (scope ignored: system values always rank Private) and `output`.
//! Scope and context syntax are described in `support.rs`. Every case resolves the
//! variable `Var` unless it says otherwise.

use cuttle_vars::{ResolutionWarning, ScopedValue, Variable, VariableSet, VariableSources};

use crate::support::{context, scope};

struct Case {
    /// What the case shows, with the spec rule it comes from.
    name: &'static str,
    /// `(source, name, value, scope)`.
    values: &'static [(&'static str, &'static str, &'static str, &'static str)],
    context: &'static str,
    lookup: &'static str,
    expected: Option<&'static str>,
    /// True when the winner was picked by the tie-break among different values, which must
    /// be reported as a warning.
    expect_tie_warning: bool,
}

const fn case(
    name: &'static str,
    values: &'static [(&'static str, &'static str, &'static str, &'static str)],
    context: &'static str,
    expected: Option<&'static str>,
) -> Case {
    Case {
        name,
        values,
        context,
        lookup: "Var",
        expected,
        expect_tie_warning: false,
    }
}

const fn tie(
    name: &'static str,
    values: &'static [(&'static str, &'static str, &'static str, &'static str)],
    context: &'static str,
    expected: Option<&'static str>,
) -> Case {
    Case {
        expect_tie_warning: true,
        ..case(name, values, context, expected)
    }
}

/// The blog's worked example (spec B3).
const WORKED_EXAMPLE: &[(&str, &str, &str, &str)] = &[
    ("project", "Var", "DB01", ""),
    ("project", "Var", "DB02", "Environment=Staging"),
    ("project", "Var", "DB03", "Environment=Production"),
    ("project", "Var", "DB04", "Role=Reporting"),
    (
        "project",
        "Var",
        "DB05",
        "Role=Reporting; Environment=Production",
    ),
];

const STEP_AND_ENVIRONMENTS: &[(&str, &str, &str, &str)] = &[
    ("project", "Var", "unscoped", ""),
    (
        "project",
        "Var",
        "step1-dev-or-test",
        "Environment=Dev,Test; Action=Step1",
    ),
];

const CASES: &[Case] = &[
    // ---- B2: which values are candidates ----
    case(
        "B2: an unscoped value always matches",
        &[("project", "Var", "only", "")],
        "environment=Prod",
        Some("only"),
    ),
    case(
        "B2: values within one dimension are OR'd",
        &[
            ("project", "Var", "any", ""),
            ("project", "Var", "dev-or-prod", "Environment=Dev,Prod"),
        ],
        "environment=Prod",
        Some("dev-or-prod"),
    ),
    case(
        "B2: dimensions are AND'd; Step 1 in Dev gets the step+environment value",
        STEP_AND_ENVIRONMENTS,
        "environment=Dev action=Step1",
        Some("step1-dev-or-test"),
    ),
    case(
        "B2: dimensions are AND'd; Step 2 in Dev falls back to the unscoped value",
        STEP_AND_ENVIRONMENTS,
        "environment=Dev action=Step2",
        Some("unscoped"),
    ),
    case(
        "B2: dimensions are AND'd; Step 1 in Prod falls back to the unscoped value",
        STEP_AND_ENVIRONMENTS,
        "environment=Prod action=Step1",
        Some("unscoped"),
    ),
    case(
        "B2: (Dev OR Prod) AND Default channel, matched",
        &[
            ("project", "Var", "u", ""),
            (
                "project",
                "Var",
                "scoped",
                "Environment=Dev,Prod; Channel=Default",
            ),
        ],
        "environment=Prod channel=Default",
        Some("scoped"),
    ),
    case(
        "B2: (Dev OR Prod) AND Default channel, other channel",
        &[
            ("project", "Var", "u", ""),
            (
                "project",
                "Var",
                "scoped",
                "Environment=Dev,Prod; Channel=Default",
            ),
        ],
        "environment=Prod channel=Beta",
        Some("u"),
    ),
    case(
        "B2: a channel-scoped value is unusable in a runbook run (no channel)",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "channel", "Channel=Default"),
        ],
        "environment=Prod process=Runbooks-1",
        Some("u"),
    ),
    case(
        "B2: a value scoped to a deployment step and a runbook process never matches a deployment",
        &[
            ("project", "Var", "u", ""),
            (
                "project",
                "Var",
                "never",
                "Action=Step1; ProcessOwner=Runbooks-1",
            ),
        ],
        "environment=Prod process=Projects-1 action=Step1",
        Some("u"),
    ),
    case(
        "B2: ... nor a runbook run (its actions are not the deployment's)",
        &[
            ("project", "Var", "u", ""),
            (
                "project",
                "Var",
                "never",
                "Action=Step1; ProcessOwner=Runbooks-1",
            ),
        ],
        "environment=Prod process=Runbooks-1 action=RunbookStep1",
        Some("u"),
    ),
    case(
        "B2: a value scoped to a runbook process applies in that runbook",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "runbook", "ProcessOwner=Runbooks-1"),
        ],
        "environment=Prod process=Runbooks-1",
        Some("runbook"),
    ),
    case(
        "B2: tenant tags are a query: a tag matches every tenant that has it",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "gold", "TenantTag=Tier/Gold"),
        ],
        "environment=Prod tenant=Tenants-7 tenanttags=Region/EU,Tier/Gold",
        Some("gold"),
    ),
    case(
        "B2: a tenant without the tag does not match",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "gold", "TenantTag=Tier/Gold"),
        ],
        "environment=Prod tenant=Tenants-7 tenanttags=Tier/Silver",
        Some("u"),
    ),
    case(
        "B2: an untenanted deployment matches no tenant tag",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "gold", "TenantTag=Tier/Gold"),
        ],
        "environment=Prod",
        Some("u"),
    ),
    case(
        "B2: machine- and tag-scoped values do not apply deployment-wide",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "machine", "Machine=Machines-1"),
            ("project", "Var", "tag", "Role=web"),
            ("project", "Var", "step", "Action=Step1"),
        ],
        "environment=Prod",
        Some("u"),
    ),
    case(
        "B2: a tag-scoped value needs a target: a step on the server does not match",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "tag", "Role=web"),
        ],
        "environment=Prod action=Step1 targets=web",
        Some("u"),
    ),
    case(
        "B2: with no unscoped value and nothing matching, the name is undefined",
        &[("project", "Var", "prod", "Environment=Prod")],
        "environment=Dev",
        None,
    ),
    case(
        "B2: an empty list is the same as no scope on that dimension",
        &[("project", "Var", "empty-list", "Environment=")],
        "environment=Dev",
        Some("empty-list"),
    ),
    case(
        "B2: an unknown scope key can never be satisfied",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "future", "Space=Spaces-1"),
        ],
        "environment=Dev",
        Some("u"),
    ),
    case(
        "B2: a Private scope written by a user never matches",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "private", "Private=x"),
        ],
        "environment=Dev",
        Some("u"),
    ),
    case(
        "B2: scope values compare case-insensitively",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "web", "Role=Web-Server"),
        ],
        "environment=Dev action=A targets=x machine=M1 tags=web-server",
        Some("web"),
    ),
    case(
        "B2: an Action scope naming the parent step reaches its child action",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "parent", "Action=ParentStep"),
        ],
        "environment=Dev action=ChildAction step=ParentStep",
        Some("parent"),
    ),
    case(
        "B2: an explicit TargetRole scope needs the tag on the machine and targeted by the step",
        &[
            ("project", "Var", "u", ""),
            ("project", "Var", "targeted", "TargetRole=web"),
        ],
        "environment=Dev action=A targets=db machine=M1 tags=web,db",
        Some("u"),
    ),
    // ---- B3: specificity, one case per adjacent pair in the ranking ----
    case(
        "B3: User beats Action (blog weights 10^6 over 10^5)",
        &[
            ("project", "Var", "action", "Action=A1"),
            ("project", "Var", "user", "User=Users-1"),
        ],
        "environment=E user=Users-1 action=A1",
        Some("user"),
    ),
    case(
        "B3 1>2: the step/action beats the machine",
        &[
            ("project", "Var", "machine", "Machine=M1"),
            ("project", "Var", "action", "Action=A1"),
        ],
        "environment=E action=A1 machine=M1",
        Some("action"),
    ),
    case(
        "B3 2>3: the machine beats a tag the step targets",
        &[
            ("project", "Var", "tag", "Role=web"),
            ("project", "Var", "machine", "Machine=M1"),
        ],
        "environment=E action=A1 targets=web machine=M1 tags=web",
        Some("machine"),
    ),
    case(
        "B3 3>4: a machine tag the step targets beats a machine tag it does not",
        &[
            ("project", "Var", "web", "Role=web"),
            ("project", "Var", "db", "Role=db"),
        ],
        "environment=E action=A1 targets=db machine=M1 tags=web,db",
        Some("db"),
    ),
    case(
        "B3 3>4: the same, with the targeted tag declared first",
        &[
            ("project", "Var", "db", "Role=db"),
            ("project", "Var", "web", "Role=web"),
        ],
        "environment=E action=A1 targets=db machine=M1 tags=web,db",
        Some("db"),
    ),
    case(
        "B3 4>5: a machine tag beats the tenant",
        &[
            ("project", "Var", "tenant", "Tenant=T1"),
            ("project", "Var", "tag", "Role=web"),
        ],
        "environment=E tenant=T1 action=A1 machine=M1 tags=web",
        Some("tag"),
    ),
    case(
        "B3 5>6: the tenant beats a tenant tag",
        &[
            ("project", "Var", "tag", "TenantTag=Tier/Gold"),
            ("project", "Var", "tenant", "Tenant=T1"),
        ],
        "environment=E tenant=T1 tenanttags=Tier/Gold",
        Some("tenant"),
    ),
    case(
        "B3 6>7: a tenant tag beats the environment",
        &[
            ("project", "Var", "env", "Environment=E"),
            ("project", "Var", "tag", "TenantTag=Tier/Gold"),
        ],
        "environment=E tenant=T1 tenanttags=Tier/Gold",
        Some("tag"),
    ),
    case(
        "B3 7>8: the environment beats the channel",
        &[
            ("project", "Var", "channel", "Channel=C1"),
            ("project", "Var", "env", "Environment=E"),
        ],
        "environment=E channel=C1",
        Some("env"),
    ),
    case(
        "B3 8>9: the channel beats the process",
        &[
            ("project", "Var", "process", "ProcessOwner=Projects-1"),
            ("project", "Var", "channel", "Channel=C1"),
        ],
        "environment=E channel=C1 process=Projects-1",
        Some("channel"),
    ),
    case(
        "B3 9>(Trigger): the process beats a trigger (Trigger is unranked in the spec; placed below Process)",
        &[
            ("project", "Var", "trigger", "Trigger=ProjectTriggers-1"),
            ("project", "Var", "process", "ProcessOwner=Projects-1"),
        ],
        "environment=E process=Projects-1 trigger=ProjectTriggers-1",
        Some("process"),
    ),
    case(
        "B3 (Trigger)>(ParentDeployment): our placement of the two unranked dimensions",
        &[
            ("project", "Var", "parent", "ParentDeployment=Deployments-9"),
            ("project", "Var", "trigger", "Trigger=ProjectTriggers-1"),
        ],
        "environment=E trigger=ProjectTriggers-1 parent=Deployments-9",
        Some("trigger"),
    ),
    case(
        "B3 (ParentDeployment)>10: the parent deployment beats the project",
        &[
            ("project", "Var", "project", "Project=Projects-1"),
            ("project", "Var", "parent", "ParentDeployment=Deployments-9"),
        ],
        "environment=E project=Projects-1 parent=Deployments-9",
        Some("parent"),
    ),
    case(
        "B3 10>11: the project beats unscoped",
        &[
            ("project", "Var", "unscoped", ""),
            ("project", "Var", "project", "Project=Projects-1"),
        ],
        "environment=E project=Projects-1",
        Some("project"),
    ),
    case(
        "B3 CSS-like: environment + tag beats the tag alone",
        &[
            ("project", "Var", "tag", "Role=web"),
            ("project", "Var", "env+tag", "Role=web; Environment=E"),
        ],
        "environment=E action=A1 machine=M1 tags=web",
        Some("env+tag"),
    ),
    case(
        "B3: the highest-priority dimension decides first: Action alone beats five lower dimensions",
        &[
            (
                "project",
                "Var",
                "many",
                "Machine=M1; Role=web; Tenant=T1; Environment=E; Channel=C1",
            ),
            ("project", "Var", "action", "Action=A1"),
        ],
        "environment=E channel=C1 tenant=T1 action=A1 targets=web machine=M1 tags=web",
        Some("action"),
    ),
    case(
        "B3: a dimension counts once however many values it lists",
        &[
            ("project", "Var", "three-envs", "Environment=E,F,G"),
            ("project", "Var", "env+channel", "Environment=E; Channel=C1"),
        ],
        "environment=E channel=C1",
        Some("env+channel"),
    ),
    case(
        "B3 worked example: a Reporting machine in Staging gets DB04 (tag beats environment)",
        WORKED_EXAMPLE,
        "environment=Staging action=A1 machine=M1 tags=Reporting",
        Some("DB04"),
    ),
    case(
        "B3 worked example: a Reporting machine in Production gets DB05 (two dimensions)",
        WORKED_EXAMPLE,
        "environment=Production action=A1 machine=M1 tags=Reporting",
        Some("DB05"),
    ),
    case(
        "B3 worked example: a web machine in Production gets DB03",
        WORKED_EXAMPLE,
        "environment=Production action=A1 machine=M2 tags=Web",
        Some("DB03"),
    ),
    case(
        "B3 worked example: anything else gets DB01",
        WORKED_EXAMPLE,
        "environment=Development action=A1 machine=M3 tags=Web",
        Some("DB01"),
    ),
    case(
        "B3 worked example: deployment-wide in Production gets DB03 (tag values need a target)",
        WORKED_EXAMPLE,
        "environment=Production",
        Some("DB03"),
    ),
    // ---- B3 ties and the deterministic tie-break ----
    tie(
        "B3 ties: the classic multi-tag tie goes to declaration order, with a warning",
        &[
            ("project", "Var", "DB01", "Role=Web,App"),
            ("project", "Var", "DB02", "Role=Web"),
            ("project", "Var", "DB03", "Role=App"),
        ],
        "environment=E action=A1 machine=M1 tags=Web,App",
        Some("DB01"),
    ),
    tie(
        "B3 ties: ... whichever is declared first",
        &[
            ("project", "Var", "DB03", "Role=App"),
            ("project", "Var", "DB02", "Role=Web"),
            ("project", "Var", "DB01", "Role=Web,App"),
        ],
        "environment=E action=A1 machine=M1 tags=Web,App",
        Some("DB03"),
    ),
    case(
        "B3 ties: equal values are no ambiguity (no warning)",
        &[
            ("project", "Var", "same", "Environment=E"),
            ("project", "Var", "same", "Environment=E,F"),
        ],
        "environment=E",
        Some("same"),
    ),
    tie(
        "B3 ties: a project value beats a library-set value of equal specificity",
        &[
            ("library0", "Var", "library", "Environment=E"),
            ("project", "Var", "project", "Environment=E"),
        ],
        "environment=E",
        Some("project"),
    ),
    tie(
        "B3 ties: unscoped project value beats unscoped library value",
        &[
            ("library0", "Var", "library", ""),
            ("project", "Var", "project", ""),
        ],
        "environment=E",
        Some("project"),
    ),
    case(
        "B3: specificity comes before origin: a more specific library value beats the project",
        &[
            ("project", "Var", "project", ""),
            ("library0", "Var", "library", "Environment=E"),
        ],
        "environment=E",
        Some("library"),
    ),
    tie(
        "B3 ties: between library sets, the earlier included set wins",
        &[
            ("library1", "Var", "second", "Environment=E"),
            ("library0", "Var", "first", "Environment=E"),
        ],
        "environment=E",
        Some("first"),
    ),
    // ---- B4: other sources and names ----
    case(
        "B4: names are case-insensitive: differently cased names are values of one variable",
        &[
            ("project", "var", "lower", ""),
            ("project", "VAR", "upper-scoped", "Environment=E"),
        ],
        "environment=E",
        Some("upper-scoped"),
    ),
    case(
        "B4: a tenant variable (tenant + environment) beats a project value scoped to the environment",
        &[
            ("project", "Var", "project", "Environment=E"),
            ("tenant", "Var", "tenant", "Tenant=T1; Environment=E"),
        ],
        "environment=E tenant=T1",
        Some("tenant"),
    ),
    case(
        "B4: a project value scoped to the step still beats a tenant variable",
        &[
            ("tenant", "Var", "tenant", "Tenant=T1"),
            ("project", "Var", "step", "Action=A1"),
        ],
        "environment=E tenant=T1 action=A1",
        Some("step"),
    ),
    case(
        "B4: a step-template parameter (action-scoped) beats an unscoped project value",
        &[
            ("project", "Var", "project", ""),
            ("steptemplate", "Var", "parameter", "Action=A1"),
        ],
        "environment=E action=A1",
        Some("parameter"),
    ),
    case(
        "B4: a step-template parameter does not leak to other actions",
        &[
            ("project", "Var", "project", ""),
            ("steptemplate", "Var", "parameter", "Action=A1"),
        ],
        "environment=E action=A2",
        Some("project"),
    ),
    Case {
        lookup: "Octopus.Environment.Name",
        ..case(
            "B4: system variables beat user values of the same name, however scoped (Private rank)",
            &[
                (
                    "project",
                    "Octopus.Environment.Name",
                    "user",
                    "Action=A1; Machine=M1",
                ),
                ("system", "Octopus.Environment.Name", "Production", ""),
            ],
            "environment=E action=A1 machine=M1",
            Some("Production"),
        )
    },
    case(
        "B6: the machine-scoped output beats the unscoped one on that machine",
        &[
            ("output", "Var", "last-recorded", ""),
            ("output", "Var", "web01", "Machine=M1"),
        ],
        "environment=E action=A2 machine=M1",
        Some("web01"),
    ),
    case(
        "B6: another machine gets the unscoped output",
        &[
            ("output", "Var", "last-recorded", ""),
            ("output", "Var", "web01", "Machine=M1"),
        ],
        "environment=E action=A2 machine=M9",
        Some("last-recorded"),
    ),
];

fn build_sources(values: &[(&str, &str, &str, &str)]) -> VariableSources {
    let mut project = VariableSet {
        id: "variableset-Projects-1".to_string(),
        ..VariableSet::default()
    };
    let mut libraries = [VariableSet::default(), VariableSet::default()];
    let mut tenant_values = Vec::new();
    let mut step_template_values = Vec::new();
    let mut system_values = Vec::new();
    let mut output_values = Vec::new();
    for (source, name, value, scope_text) in values {
        let variable = Variable {
            scope: scope(scope_text),
            ..Variable::new(*name, *value)
        };
        let scoped_value = ScopedValue {
            name: name.to_string(),
            value: value.to_string(),
            is_sensitive: false,
            scope: scope(scope_text),
        };
        match *source {
            "project" => project.variables.push(variable),
            "library0" => libraries[0].variables.push(variable),
            "library1" => libraries[1].variables.push(variable),
            "tenant" => tenant_values.push(scoped_value),
            "steptemplate" => step_template_values.push(scoped_value),
            "system" => system_values.push((name.to_string(), value.to_string())),
            "output" => output_values.push(scoped_value),
            other => panic!("unknown source {other}"),
        }
    }
    // Added in an order different from the precedence order on purpose: the origin, not
    // the call order, decides ties.
    let mut sources = VariableSources::new();
    sources
        .add_output_variables(output_values)
        .add_system_variables(system_values)
        .add_library_variable_set(&libraries[0])
        .add_library_variable_set(&libraries[1])
        .add_step_template_parameters(step_template_values)
        .add_tenant_variables(tenant_values)
        .add_project_variables(&project);
    sources
}

#[test]
fn scoping_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let sources = build_sources(case.values);
        let resolution = sources.resolve(&context(case.context));
        let actual = resolution.variables.value(case.lookup);
        if actual != case.expected {
            failures.push(format!(
                "{}\n    expected {:?}, got {:?}\n    candidates: {:#?}",
                case.name,
                case.expected,
                actual,
                sources.explain(case.lookup, &context(case.context))
            ));
        }
        let has_tie_warning = resolution.warnings.iter().any(|warning| {
            matches!(warning, ResolutionWarning::AmbiguousValue { name, .. } if name.eq_ignore_ascii_case(case.lookup))
        });
        if has_tie_warning != case.expect_tie_warning {
            failures.push(format!(
                "{}\n    expected tie warning: {}, warnings: {:?}",
                case.name, case.expect_tie_warning, resolution.warnings
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_name_is_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|case| case.name).collect();
    names.sort_unstable();
    let count = names.len();
    names.dedup();
    assert_eq!(
        names.len(),
        count,
        "duplicate case names make failures ambiguous"
    );
}
