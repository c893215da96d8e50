//! Which package versions a new release pins: the versions a caller asked for (Octopus's
//! `Packages` specs and `PackageVersion`), else the newest version in the feed that the
//! release's channel accepts.
//!
//! A spec is `StepName:Version`, `PackageId:Version` or `StepName:PackageReferenceName:Version`
//! (`=` works as the separator too, as in older Octopus tools); any name part may be `*`. The
//! most specific spec wins for each package reference: step + reference, then step (or
//! action), then package id, then `*`, then `PackageVersion`, then the feed's newest version.
//!
//! The feed is asked through a closure, so this module stays pure: it answers the versions it
//! holds for a package, or `None` when it cannot tell (a feed Cuttle does not host), in which
//! case an explicit version is taken on trust and "newest" is an error.

use cuttle_domain::Channel;

use crate::channel_rules::{self, ChannelRuleViolation, CompiledVersionRule};
use crate::version::parse_release_version;

/// One package reference of the release's process, with the names specs match against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageReferenceFact {
    pub step_name: String,
    pub action_name: String,
    /// Empty for the action's primary package.
    pub package_reference_name: String,
    pub package_id: String,
    pub feed_id: String,
}

/// What the caller asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageVersionRequest {
    /// Octopus's `Packages` specs.
    pub specs: Vec<String>,
    /// `PackageVersion`: the version of every package no spec names.
    pub default_version: Option<String>,
    /// `PackagePrerelease`: when choosing the newest version, only this pre-release tag.
    pub prerelease_tag: Option<String>,
    /// `IgnoreChannelRules`: pin versions the channel's rules would refuse.
    pub ignore_channel_rules: bool,
}

/// A package version the release pins, in the domain's shape plus the package id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinnedPackage {
    pub reference: PackageReferenceFact,
    pub version: String,
}

impl PinnedPackage {
    fn as_channel_package(&self) -> channel_rules::SelectedPackage {
        channel_rules::SelectedPackage {
            action_name: self.reference.action_name.clone(),
            package_reference_name: self.reference.package_reference_name.clone(),
            package_id: self.reference.package_id.clone(),
            version: self.version.clone(),
        }
    }

    /// The domain record a release keeps.
    pub fn to_selected_package(&self) -> cuttle_domain::SelectedPackage {
        cuttle_domain::SelectedPackage {
            action_name: self.reference.action_name.clone(),
            step_name: self.reference.step_name.clone(),
            package_reference_name: self.reference.package_reference_name.clone(),
            version: self.version.clone(),
        }
    }
}

/// A malformed spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the package spec '{spec}' is not StepName:Version, PackageId:Version or StepName:PackageReferenceName:Version"
)]
pub struct PackageSpecError {
    pub spec: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PackageSpec {
    /// A step name, action name or package id (two parts), or a step/action name (three).
    first: String,
    /// The package reference name of a three-part spec.
    reference: Option<String>,
    version: String,
}

fn parse_spec(spec: &str) -> Result<PackageSpec, PackageSpecError> {
    let error = || PackageSpecError {
        spec: spec.to_owned(),
    };
    let parts: Vec<&str> = spec.split([':', '=']).map(str::trim).collect();
    let (first, reference, version) = match parts.as_slice() {
        [first, version] => (*first, None, *version),
        [first, reference, version] => (*first, Some(*reference), *version),
        _ => return Err(error()),
    };
    // An empty reference name in a three-part spec names the primary package.
    if first.is_empty() || version.is_empty() {
        return Err(error());
    }
    Ok(PackageSpec {
        first: first.to_owned(),
        reference: reference.map(str::to_owned),
        version: version.to_owned(),
    })
}

fn name_matches(pattern: &str, name: &str) -> bool {
    pattern == "*" || pattern.eq_ignore_ascii_case(name)
}

impl PackageSpec {
    /// How specifically the spec names `reference`; `None` when it does not apply.
    fn specificity(&self, reference: &PackageReferenceFact) -> Option<u8> {
        let names_step = |pattern: &str| {
            name_matches(pattern, &reference.step_name)
                || name_matches(pattern, &reference.action_name)
        };
        match &self.reference {
            Some(reference_pattern) => {
                let applies = names_step(&self.first)
                    && name_matches(reference_pattern, &reference.package_reference_name);
                let concrete = u8::from(self.first != "*") + u8::from(reference_pattern != "*");
                applies.then_some(2 + concrete)
            }
            None if self.first == "*" => Some(1),
            None if names_step(&self.first) => Some(4),
            None if self.first.eq_ignore_ascii_case(&reference.package_id) => Some(3),
            None => None,
        }
    }
}

/// Why the versions could not be chosen; every problem is listed, one line each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct PackageSelectionError {
    pub problems: Vec<String>,
}

fn describe(reference: &PackageReferenceFact) -> String {
    if reference.package_reference_name.is_empty() {
        format!(
            "package '{}' of step '{}'",
            reference.package_id, reference.step_name
        )
    } else {
        format!(
            "package '{}' (reference '{}') of step '{}'",
            reference.package_id, reference.package_reference_name, reference.step_name
        )
    }
}

/// The rules of `channel` that govern `reference`, compiled; a broken rule is a problem.
fn governing_rules(
    channel: &Channel,
    reference: &PackageReferenceFact,
) -> Result<Vec<CompiledVersionRule>, ChannelRuleViolation> {
    let mut rules = Vec::new();
    for rule in &channel.rules {
        let compiled = CompiledVersionRule::compile(&channel.name, rule)?;
        if compiled.applies_to(&reference.action_name, &reference.package_reference_name) {
            rules.push(compiled);
        }
    }
    Ok(rules)
}

/// Chooses a version for every reference. `available_versions` answers the versions a feed
/// holds for a package id (any order), or `None` when the feed cannot be asked.
pub fn select_package_versions(
    references: &[PackageReferenceFact],
    request: &PackageVersionRequest,
    channel: &Channel,
    available_versions: impl Fn(&str, &str) -> Option<Vec<String>>,
) -> Result<Vec<PinnedPackage>, PackageSelectionError> {
    let mut problems = Vec::new();
    let specs: Vec<PackageSpec> = request
        .specs
        .iter()
        .filter(|spec| !spec.trim().is_empty())
        .filter_map(|spec| {
            parse_spec(spec)
                .map_err(|error| problems.push(error.to_string()))
                .ok()
        })
        .collect();
    let mut pinned = Vec::new();
    for reference in references {
        let asked = specs
            .iter()
            .filter_map(|spec| Some((spec.specificity(reference)?, spec)))
            .max_by_key(|(specificity, _)| *specificity)
            .map(|(_, spec)| spec.version.clone())
            .or_else(|| request.default_version.clone());
        let known_versions = available_versions(&reference.feed_id, &reference.package_id);
        let version = match asked {
            Some(version) => {
                let in_feed = known_versions.as_ref().is_none_or(|versions| {
                    versions.iter().any(|known| same_version(known, &version))
                });
                if !in_feed {
                    problems.push(format!(
                        "version {version} of {} was not found in feed '{}'",
                        describe(reference),
                        reference.feed_id
                    ));
                    continue;
                }
                version
            }
            None => match newest_accepted(reference, request, channel, known_versions) {
                Ok(version) => version,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            },
        };
        pinned.push(PinnedPackage {
            reference: reference.clone(),
            version,
        });
    }
    if problems.is_empty() && !request.ignore_channel_rules {
        let packages: Vec<_> = pinned
            .iter()
            .map(PinnedPackage::as_channel_package)
            .collect();
        if let Err(violations) = channel_rules::check_channel(channel, &packages) {
            problems.extend(violations.iter().map(ToString::to_string));
        }
    }
    if problems.is_empty() {
        Ok(pinned)
    } else {
        Err(PackageSelectionError { problems })
    }
}

/// Versions compare as versions where they parse (`1.0` and `1.0.0` are the same package
/// version in NuGet's eyes), else as text ignoring case.
fn same_version(left: &str, right: &str) -> bool {
    match (parse_release_version(left), parse_release_version(right)) {
        (Ok(left), Ok(right)) => left == right,
        _ => left.eq_ignore_ascii_case(right),
    }
}

/// The newest version in the feed that the channel's rules (unless ignored) and the requested
/// pre-release tag accept.
fn newest_accepted(
    reference: &PackageReferenceFact,
    request: &PackageVersionRequest,
    channel: &Channel,
    known_versions: Option<Vec<String>>,
) -> Result<String, String> {
    let Some(known_versions) = known_versions else {
        return Err(format!(
            "{} comes from feed '{}', which Cuttle cannot search; give its version in Packages or PackageVersion",
            describe(reference),
            reference.feed_id
        ));
    };
    let rules = if request.ignore_channel_rules {
        Vec::new()
    } else {
        governing_rules(channel, reference).map_err(|violation| violation.to_string())?
    };
    let prerelease_tag = request
        .prerelease_tag
        .as_deref()
        .map(str::trim)
        .filter(|tag| !tag.is_empty());
    let newest = known_versions
        .iter()
        .filter_map(|text| Some((parse_release_version(text).ok()?, text)))
        .filter(|(version, _)| {
            prerelease_tag.is_none_or(|tag| version.prerelease().eq_ignore_ascii_case(tag))
        })
        .filter(|(_, text)| {
            rules
                .iter()
                .all(|rule| rule.check(&reference.package_id, text).is_ok())
        })
        .max_by(|(left, _), (right, _)| left.cmp(right))
        .map(|(_, text)| text.clone());
    newest.ok_or_else(|| {
        if known_versions.is_empty() {
            format!(
                "{} has no versions in feed '{}'",
                describe(reference),
                reference.feed_id
            )
        } else {
            format!(
                "no version of {} in feed '{}' is accepted by the channel '{}'{}",
                describe(reference),
                reference.feed_id,
                channel.name,
                prerelease_tag
                    .map(|tag| format!(" with the pre-release tag '{tag}'"))
                    .unwrap_or_default()
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use cuttle_domain::{ChannelRuleActionPackage, ChannelVersionRule};

    use super::*;

    fn reference(step: &str, reference_name: &str, package_id: &str) -> PackageReferenceFact {
        PackageReferenceFact {
            step_name: step.to_owned(),
            action_name: step.to_owned(),
            package_reference_name: reference_name.to_owned(),
            package_id: package_id.to_owned(),
            feed_id: "feeds-builtin".to_owned(),
        }
    }

    fn feed(package_id: &str) -> Option<Vec<String>> {
        let versions: &[&str] = match package_id {
            "web" => &["1.0.0", "1.2.0", "2.0.0-beta.1", "1.10.0"],
            "api" => &["3.0.0", "3.1.0"],
            _ => &[],
        };
        Some(
            versions
                .iter()
                .map(|version| (*version).to_owned())
                .collect(),
        )
    }

    fn channel_with_rule(range: Option<&str>, tag: Option<&str>) -> Channel {
        Channel {
            name: "Default".to_owned(),
            is_default: true,
            rules: vec![ChannelVersionRule {
                id: "rule".to_owned(),
                version_range: range.map(str::to_owned),
                tag: tag.map(str::to_owned),
                action_packages: vec![ChannelRuleActionPackage {
                    deployment_action: "Deploy web".to_owned(),
                    package_reference: None,
                }],
            }],
            ..Channel::default()
        }
    }

    fn versions(pinned: &[PinnedPackage]) -> Vec<&str> {
        pinned
            .iter()
            .map(|package| package.version.as_str())
            .collect()
    }

    #[test]
    fn newest_version_is_chosen_by_version_order_not_text() {
        let pinned = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &PackageVersionRequest::default(),
            &Channel::default(),
            |_, id| feed(id),
        )
        .expect("selects");
        assert_eq!(versions(&pinned), ["2.0.0-beta.1"]);
    }

    #[test]
    fn channel_rules_narrow_the_newest_version() {
        let pinned = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &PackageVersionRequest::default(),
            &channel_with_rule(Some("[1.0,2.0)"), Some("^$")),
            |_, id| feed(id),
        )
        .expect("selects");
        assert_eq!(versions(&pinned), ["1.10.0"]);
    }

    #[test]
    fn the_most_specific_spec_wins() {
        let references = [
            reference("Deploy web", "", "web"),
            reference("Deploy api", "", "api"),
            reference("Deploy api", "sidecar", "web"),
        ];
        let request = PackageVersionRequest {
            specs: vec![
                "*:1.0.0".to_owned(),
                "api:3.0.0".to_owned(),
                "Deploy api:sidecar:1.2.0".to_owned(),
            ],
            ..PackageVersionRequest::default()
        };
        let pinned =
            select_package_versions(&references, &request, &Channel::default(), |_, id| feed(id))
                .expect("selects");
        assert_eq!(versions(&pinned), ["1.0.0", "3.0.0", "1.2.0"]);
    }

    #[test]
    fn package_version_applies_where_no_spec_does() {
        let request = PackageVersionRequest {
            specs: vec!["Deploy api=3.1.0".to_owned()],
            default_version: Some("1.2.0".to_owned()),
            ..PackageVersionRequest::default()
        };
        let pinned = select_package_versions(
            &[
                reference("Deploy web", "", "web"),
                reference("Deploy api", "", "api"),
            ],
            &request,
            &Channel::default(),
            |_, id| feed(id),
        )
        .expect("selects");
        assert_eq!(versions(&pinned), ["1.2.0", "3.1.0"]);
    }

    #[test]
    fn an_explicit_version_outside_the_channel_is_refused_with_the_rule() {
        let request = PackageVersionRequest {
            specs: vec!["web:2.0.0-beta.1".to_owned()],
            ..PackageVersionRequest::default()
        };
        let error = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &request,
            &channel_with_rule(Some("[1.0,1.5)"), None),
            |_, id| feed(id),
        )
        .expect_err("refused");
        assert_eq!(error.problems.len(), 1);
        assert!(
            error.problems[0].contains("outside the channel 'Default' range [1.0,1.5)"),
            "{error}"
        );
        let ignored = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &PackageVersionRequest {
                ignore_channel_rules: true,
                ..request
            },
            &channel_with_rule(Some("[1.0,1.5)"), None),
            |_, id| feed(id),
        )
        .expect("rules ignored");
        assert_eq!(versions(&ignored), ["2.0.0-beta.1"]);
    }

    #[test]
    fn unknown_versions_and_empty_feeds_are_reported_together() {
        let request = PackageVersionRequest {
            specs: vec!["web:9.9.9".to_owned()],
            ..PackageVersionRequest::default()
        };
        let error = select_package_versions(
            &[
                reference("Deploy web", "", "web"),
                reference("Deploy db", "", "db"),
            ],
            &request,
            &Channel::default(),
            |_, id| feed(id),
        )
        .expect_err("refused");
        assert_eq!(
            error.problems,
            [
                "version 9.9.9 of package 'web' of step 'Deploy web' was not found in feed 'feeds-builtin'",
                "package 'db' of step 'Deploy db' has no versions in feed 'feeds-builtin'",
            ]
        );
    }

    #[test]
    fn feeds_that_cannot_be_searched_need_explicit_versions() {
        let external = |_: &str, _: &str| None;
        let pinned = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &PackageVersionRequest {
                default_version: Some("4.0.0".to_owned()),
                ..PackageVersionRequest::default()
            },
            &Channel::default(),
            external,
        )
        .expect("taken on trust");
        assert_eq!(versions(&pinned), ["4.0.0"]);
        let error = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &PackageVersionRequest::default(),
            &Channel::default(),
            external,
        )
        .expect_err("cannot choose");
        assert!(error.problems[0].contains("cannot search"), "{error}");
    }

    #[test]
    fn prerelease_tag_restricts_the_newest_version() {
        let pinned = select_package_versions(
            &[reference("Deploy web", "", "web")],
            &PackageVersionRequest {
                prerelease_tag: Some("beta.1".to_owned()),
                ..PackageVersionRequest::default()
            },
            &Channel::default(),
            |_, id| feed(id),
        )
        .expect("selects");
        assert_eq!(versions(&pinned), ["2.0.0-beta.1"]);
    }

    #[test]
    fn malformed_specs_are_refused() {
        for spec in ["web", "a:b:c:d", ":1.0.0", "web:"] {
            let error = select_package_versions(
                &[],
                &PackageVersionRequest {
                    specs: vec![spec.to_owned()],
                    ..PackageVersionRequest::default()
                },
                &Channel::default(),
                |_, id| feed(id),
            )
            .expect_err(spec);
            assert!(error.problems[0].contains(spec), "{error}");
        }
    }
}
