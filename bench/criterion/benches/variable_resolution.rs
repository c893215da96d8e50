//! Benchmark (b): the effective variables of 1,000 deployment targets, resolved from 10,000
//! scoped values (one project set and two included library sets), by calling
//! [`VariableSources::resolve`] once per target, as a deployment does before each step runs
//! on each machine.
//!
//! The values are 2,000 names with 5 values each: one unscoped default plus four scoped on a
//! rotating mix of what real projects use: environment (one or several), target tag (role),
//! machine lists, action, channel, and pairs of those. Every target has two target tags and
//! runs one of 20 actions; about a fifth of the names have a value that applies only to some
//! machines. The fixture is built deterministically, with no randomness, so runs compare.
//!
//! Target: under 1 s for all 1,000 targets. A second measurement also turns each resolution
//! into a `cuttle_template::VariableDictionary`, the form file substitution consumes.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use cuttle_template::VariableDictionary;
use cuttle_vars::{
    ActionScope, DeploymentScope, ScopeContext, ScopeField, TargetScope, Variable, VariableSet,
    VariableSources,
};

const N_TARGETS: usize = 1_000;
const N_NAMES: usize = 2_000;
const N_VALUES_PER_NAME: usize = 5;
const N_ENVIRONMENTS: usize = 4;
const N_TAGS: usize = 20;
const N_ACTIONS: usize = 20;
const N_CHANNELS: usize = 3;

fn environment_id(environment_idx: usize) -> String {
    format!("Environments-{}", environment_idx % N_ENVIRONMENTS + 1)
}

fn machine_id(machine_idx: usize) -> String {
    format!("Machines-{}", machine_idx % N_TARGETS + 1)
}

fn tag(tag_idx: usize) -> String {
    const KINDS: [&str; 5] = ["web-server", "app-server", "worker", "db-migrator", "cache"];
    format!(
        "{}-{}",
        KINDS[tag_idx % KINDS.len()],
        tag_idx % N_TAGS / KINDS.len()
    )
}

fn action_id(action_idx: usize) -> String {
    format!("DeploymentActions-{}", action_idx % N_ACTIONS + 1)
}

fn channel_id(channel_idx: usize) -> String {
    format!("Channels-{}", channel_idx % N_CHANNELS + 1)
}

/// The `value_idx`-th scoped value (1..=4) of name `name_idx`: a rotating scope pattern.
fn scoped_value(name: &str, name_idx: usize, value_idx: usize) -> Variable {
    let pattern_idx = (name_idx + value_idx * 3) % 10;
    let seed = name_idx * 7 + value_idx * 13;
    let value = Variable::new(name, format!("{name}-value-{value_idx}-{pattern_idx}"));
    match pattern_idx {
        0 => value.scoped(ScopeField::Environment, &[&environment_id(seed)]),
        1 => value.scoped(
            ScopeField::Environment,
            &[&environment_id(seed), &environment_id(seed + 1)],
        ),
        2 => value.scoped(ScopeField::Role, &[&tag(seed)]),
        3 => value.scoped(
            ScopeField::Machine,
            &[
                &machine_id(seed),
                &machine_id(seed + 331),
                &machine_id(seed + 662),
            ],
        ),
        4 => value.scoped(ScopeField::Action, &[&action_id(seed)]),
        5 => value.scoped(ScopeField::Channel, &[&channel_id(seed)]),
        6 => value
            .scoped(ScopeField::Environment, &[&environment_id(seed)])
            .scoped(ScopeField::Role, &[&tag(seed), &tag(seed + 1)]),
        7 => value
            .scoped(ScopeField::Environment, &[&environment_id(seed)])
            .scoped(
                ScopeField::Machine,
                &[&machine_id(seed), &machine_id(seed + 500)],
            ),
        8 => value
            .scoped(ScopeField::Action, &[&action_id(seed)])
            .scoped(ScopeField::Role, &[&tag(seed)]),
        _ => value
            .scoped(ScopeField::Channel, &[&channel_id(seed)])
            .scoped(ScopeField::Environment, &[&environment_id(seed)]),
    }
}

/// 10,000 values: names 0..1200 in the project set, 1200..1600 and 1600..2000 in two library
/// sets. A few library names repeat project names, so precedence across sets is exercised.
fn variable_sources() -> VariableSources {
    let mut sets: [VariableSet; 3] = Default::default();
    for name_idx in 0..N_NAMES {
        let set_idx = match name_idx {
            0..1200 => 0,
            1200..1600 => 1,
            _ => 2,
        };
        // Every 50th library name shadows a project name.
        let name = if set_idx > 0 && name_idx % 50 == 0 {
            format!("Project.Setting{:04}", name_idx % 1200)
        } else {
            let prefix = ["Project", "Shared", "Platform"][set_idx];
            format!("{prefix}.Setting{name_idx:04}")
        };
        let set = &mut sets[set_idx];
        set.variables
            .push(Variable::new(&name, format!("{name}-default")));
        for value_idx in 1..N_VALUES_PER_NAME {
            set.variables.push(scoped_value(&name, name_idx, value_idx));
        }
    }
    let mut sources = VariableSources::new();
    sources.add_project_variables(&sets[0]);
    sources.add_library_variable_set(&sets[1]);
    sources.add_library_variable_set(&sets[2]);
    sources
}

/// One context per target: Production, channel 2, the target's action and its two tags.
fn target_contexts() -> Vec<ScopeContext> {
    let deployment = DeploymentScope {
        project_id: Some("Projects-1".to_string()),
        environment_id: Some(environment_id(2)),
        channel_id: Some(channel_id(1)),
        process_owner_id: Some("Projects-1".to_string()),
        ..DeploymentScope::default()
    };
    (0..N_TARGETS)
        .map(|target_idx| {
            let tags = vec![tag(target_idx), tag(target_idx + 7)];
            let action = ActionScope {
                action_id: action_id(target_idx),
                targeted_tags: vec![tags[0].clone()],
                ..ActionScope::default()
            };
            let target = TargetScope {
                machine_id: machine_id(target_idx),
                tags,
            };
            ScopeContext::for_action(deployment.clone(), action, Some(target))
        })
        .collect()
}

fn resolve_all(sources: &VariableSources, contexts: &[ScopeContext]) -> usize {
    contexts
        .iter()
        .map(|context| sources.resolve(context).variables.len())
        .sum()
}

fn resolve_all_into_dictionaries(sources: &VariableSources, contexts: &[ScopeContext]) -> usize {
    contexts
        .iter()
        .map(|context| {
            let resolution = sources.resolve(context);
            let dictionary: VariableDictionary = resolution.variables.name_value_pairs().collect();
            dictionary.len()
        })
        .sum()
}

fn resolve_for_targets(criterion: &mut Criterion) {
    let sources = variable_sources();
    let contexts = target_contexts();
    assert_eq!(sources.len(), N_NAMES * N_VALUES_PER_NAME);
    assert_eq!(contexts.len(), N_TARGETS);
    // Sanity: every name resolves (each has an unscoped default) and scoping does pick
    // non-default values, so the benchmark is not timing a degenerate case.
    let first = sources.resolve(&contexts[0]);
    let n_names = first.variables.len();
    let n_scoped_winners = first
        .variables
        .iter()
        .filter(|variable| !variable.value.ends_with("-default"))
        .count();
    assert!(n_names > 1_900, "{n_names} names resolved");
    assert!(n_scoped_winners > 300, "{n_scoped_winners} scoped winners");

    let mut group = criterion.benchmark_group("variable_resolution");
    group.sample_size(10);
    group.bench_function("10000_values_1000_targets_resolve", |bencher| {
        bencher.iter(|| resolve_all(black_box(&sources), black_box(&contexts)));
    });
    group.bench_function(
        "10000_values_1000_targets_resolve_into_dictionary",
        |bencher| {
            bencher
                .iter(|| resolve_all_into_dictionaries(black_box(&sources), black_box(&contexts)));
        },
    );
    group.finish();
}

criterion_group!(benches, resolve_for_targets);
criterion_main!(benches);
