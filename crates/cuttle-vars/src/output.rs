//! Output variables (spec B6): what a step's scripts set with `set_octopusvariable`, and how
//! later steps see it.
//!
//! For an output `Name` set by action `StepA`:
//! - on target `Web01` (id `Machines-1`), the server records
//!   `Octopus.Action[StepA].Output[Web01].Name` *unscoped* (the machine is in the name), and
//!   `Octopus.Action[StepA].Output.Name` *scoped to `Machines-1`*, so a later step on Web01
//!   sees Web01's value;
//! - it also records `Octopus.Action[StepA].Output.Name` *unscoped*, for later steps on
//!   other targets, on the server, and the deployment-wide view. When several targets set
//!   it, Octopus's choice is non-deterministic; here the value recorded **last** wins, as a
//!   dictionary overwrite does, so callers that want reproducible results feed records in a
//!   stable order (for instance the plan's target order once a step finishes);
//! - an action without a target (server or worker) records only the unscoped form.
//!
//! Recording the same output twice on the same target keeps the last value (a script that
//! sets a variable twice means the second). Names compare case-insensitively. A sensitive
//! output stays sensitive in every form.
//!
//! [`OutputVariableCollector::scoped_values`] turns the records into values for
//! [`crate::sources::VariableSources::add_output_variables`], where the machine-scoped form
//! outranks the unscoped one by B3 (Machine beats unscoped).
//!
//! What it does not do: parse `##octopus[setVariable ...]` service messages (the agent side
//! decodes them) or the in-step names Calamari sets for the rest of the same step (see
//! [`names_visible_within_step`] for those names).

use indexmap::IndexMap;

use crate::model::{ScopeField, ScopeSpecification};
use crate::scope::{fold_case, same_text_ignoring_case};
use crate::sources::ScopedValue;
use crate::system_names;

/// The target an output was set on: its id scopes the value, its name goes in the variable
/// name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputMachine {
    /// `Machines-1`.
    pub machine_id: String,
    /// `Web01`.
    pub machine_name: String,
}

impl OutputMachine {
    /// Shorthand constructor.
    pub fn new(machine_id: impl Into<String>, machine_name: impl Into<String>) -> Self {
        OutputMachine {
            machine_id: machine_id.into(),
            machine_name: machine_name.into(),
        }
    }
}

/// One output as the agent reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRecord {
    /// The action (step) name that set it: the `X` in `Octopus.Action[X]`.
    pub action_name: String,
    /// The target it ran on; `None` on the server or a worker.
    pub machine: Option<OutputMachine>,
    /// The output name, e.g. `TestResult` or `Package.InstallationDirectoryPath`.
    pub name: String,
    /// The value.
    pub value: String,
    /// True when set with `-sensitive` / `sensitive='True'`.
    pub is_sensitive: bool,
}

/// Collects outputs as steps finish and hands them to later steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputVariableCollector {
    /// Latest record per (action, machine id, name), case-folded; insertion order is first
    /// recording order, so emitted names are stable.
    latest_per_machine: IndexMap<(String, String, String), OutputRecord>,
    /// Latest record per (action, name), whichever target set it: the unscoped form.
    latest_overall: IndexMap<(String, String), OutputRecord>,
}

impl OutputVariableCollector {
    /// No outputs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one output.
    pub fn record(&mut self, record: OutputRecord) {
        let folded_action = fold_case(&record.action_name);
        let folded_name = fold_case(&record.name);
        if let Some(machine) = &record.machine {
            let key = (
                folded_action.clone(),
                fold_case(&machine.machine_id),
                folded_name.clone(),
            );
            upsert_keeping_spelling(&mut self.latest_per_machine, key, record.clone());
        }
        upsert_keeping_spelling(
            &mut self.latest_overall,
            (folded_action, folded_name),
            record,
        );
    }

    /// Shorthand for [`record`](Self::record).
    pub fn record_output(
        &mut self,
        action_name: &str,
        machine: Option<&OutputMachine>,
        name: &str,
        value: &str,
        is_sensitive: bool,
    ) {
        self.record(OutputRecord {
            action_name: action_name.to_string(),
            machine: machine.cloned(),
            name: name.to_string(),
            value: value.to_string(),
            is_sensitive,
        });
    }

    /// Records an output of a child deployment, exposed by a "Deploy a release" step as
    /// `Octopus.Action[Parent].Output.Deployment[ChildStep].Name`. It has no target of its
    /// own in the parent deployment, so only the unscoped form exists.
    pub fn record_child_deployment_output(
        &mut self,
        parent_action_name: &str,
        child_step_name: &str,
        name: &str,
        value: &str,
        is_sensitive: bool,
    ) {
        self.record_output(
            parent_action_name,
            None,
            &format!("Deployment[{child_step_name}].{name}"),
            value,
            is_sensitive,
        );
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.latest_overall.is_empty()
    }

    /// Outputs whose unscoped form had several different values from different targets, so
    /// the choice of the last one is worth a log line. Each entry is the unscoped variable
    /// name.
    pub fn names_with_conflicting_values(&self) -> Vec<String> {
        self.latest_overall
            .values()
            .filter(|latest| {
                self.latest_per_machine.values().any(|per_machine| {
                    same_output(per_machine, latest) && per_machine.value != latest.value
                })
            })
            .map(|latest| system_names::action_output(&latest.action_name, &latest.name))
            .collect()
    }

    /// The values later steps see, for
    /// [`VariableSources::add_output_variables`](crate::sources::VariableSources::add_output_variables):
    /// per target, the machine-named form (unscoped) and the plain form scoped to the
    /// machine; then the plain form unscoped with the last value recorded.
    pub fn scoped_values(&self) -> Vec<ScopedValue> {
        let mut values = Vec::new();
        for record in self.latest_per_machine.values() {
            let Some(machine) = &record.machine else {
                continue;
            };
            values.push(ScopedValue {
                name: system_names::action_machine_output(
                    &record.action_name,
                    &machine.machine_name,
                    &record.name,
                ),
                value: record.value.clone(),
                is_sensitive: record.is_sensitive,
                scope: ScopeSpecification::new(),
            });
            values.push(ScopedValue {
                name: system_names::action_output(&record.action_name, &record.name),
                value: record.value.clone(),
                is_sensitive: record.is_sensitive,
                scope: ScopeSpecification::new()
                    .with(ScopeField::Machine, &[machine.machine_id.as_str()]),
            });
        }
        for record in self.latest_overall.values() {
            values.push(ScopedValue {
                name: system_names::action_output(&record.action_name, &record.name),
                value: record.value.clone(),
                is_sensitive: record.is_sensitive,
                scope: ScopeSpecification::new(),
            });
        }
        values
    }
}

/// Last write wins for the value, but the first spelling of the action and output names is
/// kept, as a .NET dictionary with an ignore-case comparer keeps its first key.
fn upsert_keeping_spelling<K: std::hash::Hash + Eq>(
    records: &mut IndexMap<K, OutputRecord>,
    key: K,
    record: OutputRecord,
) {
    match records.get_mut(&key) {
        Some(existing) => {
            existing.value = record.value;
            existing.is_sensitive = record.is_sensitive;
            existing.machine = record.machine;
        }
        None => {
            records.insert(key, record);
        }
    }
}

fn same_output(left: &OutputRecord, right: &OutputRecord) -> bool {
    same_text_ignoring_case(&left.action_name, &right.action_name)
        && same_text_ignoring_case(&left.name, &right.name)
}

/// The names an output is visible under for the rest of the *same* step, inside the process
/// that set it (B6, "within Calamari"): `Name`, `Octopus.Action[Step].Output.Name` and, on a
/// target, `Octopus.Action[Step].Output[Machine].Name`.
pub fn names_visible_within_step(
    action_name: &str,
    machine_name: Option<&str>,
    name: &str,
) -> Vec<String> {
    let mut names = vec![
        name.to_string(),
        system_names::action_output(action_name, name),
    ];
    if let Some(machine_name) = machine_name {
        names.push(system_names::action_machine_output(
            action_name,
            machine_name,
            name,
        ));
    }
    names
}
