//! Sensitive values (spec B5): the API projection that hides them, the hook the server uses to
//! encrypt or decrypt them, and the list of strings a log masker must replace.
//!
//! Encryption at rest is the server's job (AES-GCM with its master key). This crate only
//! treats a sensitive `Value` as an opaque string: plaintext after the server decrypted it,
//! or ciphertext the caller maps later with [`map_sensitive_values`]. Keeping the crate
//! ignorant of keys keeps it pure and makes "which values are secret" the only thing it
//! decides.
//!
//! Sensitivity is not transitive (B5): a composite value that references a secret is not
//! itself sensitive, but the secret inside it is masked when logged. That is why masking is
//! plain substring replacement over [`ResolvedVariables::values_to_mask`], done on the
//! evaluated text by whoever writes the log.

use crate::model::{Variable, VariableSet};
use crate::resolve::ResolvedVariables;

/// Values of 3 characters or fewer are not masked (B5); masking them would shred ordinary
/// log text.
pub const MINIMUM_MASKED_LENGTH: usize = 4;

/// The form the API returns: sensitive values have `Value: null` and `IsSensitive: true`.
pub fn api_projection_of_variable(variable: &Variable) -> Variable {
    let mut projected = variable.clone();
    if variable.is_secret() {
        projected.value = None;
        projected.is_sensitive = true;
    }
    projected
}

/// [`api_projection_of_variable`] applied to every value of a set.
pub fn api_projection_of_set(set: &VariableSet) -> VariableSet {
    VariableSet {
        variables: set
            .variables
            .iter()
            .map(api_projection_of_variable)
            .collect(),
        ..set.clone()
    }
}

/// Rewrites every sensitive value with `map` (decrypt after loading, encrypt before saving),
/// leaving other values alone. Stops at the first error, returning it.
pub fn map_sensitive_values<E>(
    set: &VariableSet,
    mut map: impl FnMut(&Variable, &str) -> Result<String, E>,
) -> Result<VariableSet, E> {
    let mut mapped = set.clone();
    for variable in mapped.variables.iter_mut() {
        if !variable.is_secret() {
            continue;
        }
        if let Some(value) = variable.value.take() {
            variable.value = Some(map(variable, &value)?);
        }
    }
    Ok(mapped)
}

/// When a client saves a set it received from the API, sensitive values come back as `null`
/// meaning "unchanged". This restores them from the stored set by variable id, so the
/// server neither loses secrets nor needs to special-case nulls itself. Values with a
/// non-null new value, and values whose id is not in `stored`, are left as sent.
pub fn restore_unchanged_sensitive_values(
    submitted: &VariableSet,
    stored: &VariableSet,
) -> VariableSet {
    let mut restored = submitted.clone();
    for variable in restored.variables.iter_mut() {
        if !variable.is_secret() || variable.value.is_some() || variable.id.is_empty() {
            continue;
        }
        let previous = stored
            .variables
            .iter()
            .find(|candidate| candidate.id == variable.id && candidate.is_secret());
        if let Some(previous) = previous {
            variable.value = previous.value.clone();
        }
    }
    restored
}

impl ResolvedVariables {
    /// The sensitive values a log masker must replace: non-empty, at least
    /// [`MINIMUM_MASKED_LENGTH`] characters, longest first so a secret that contains another
    /// is masked whole, without duplicates.
    pub fn values_to_mask(&self) -> Vec<&str> {
        let mut values: Vec<&str> = self
            .iter()
            .filter(|variable| variable.is_sensitive)
            .map(|variable| variable.value.as_str())
            .filter(|value| value.chars().count() >= MINIMUM_MASKED_LENGTH)
            .collect();
        values.sort_by(|left, right| right.len().cmp(&left.len()).then_with(|| left.cmp(right)));
        values.dedup();
        values
    }
}
