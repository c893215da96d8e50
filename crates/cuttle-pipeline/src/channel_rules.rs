//! Channel version rules, enforced when a release is created: which package versions a
//! channel accepts ([`check_package_version`], [`check_channel`]) and which channel suits a set
//! of selected packages ([`choose_channel`]).
//!
//! A rule (`ChannelVersionRule`) names the packages it governs as (action, package reference)
//! pairs, and constrains them with a NuGet/Maven version range (see `version_range.rs`), a tag
//! pattern, or both. The tag pattern is a regular expression matched against the version's
//! tag: the pre-release, then `+` and the build metadata when present (`beta.1+sha.abc`;
//! empty for a plain stable version), so `^$` means "stable only", `^beta` "beta
//! pre-releases" and `^(?!beta).+` "any pre-release but beta" (look-around is supported, as in
//! .NET, through `fancy-regex`).
//!
//! What it deliberately does not do: Git reference rules, tenant tags, and the feed-specific
//! version formats (Docker tags, Maven qualifiers).

use cuttle_domain::{Channel, ChannelVersionRule};
use fancy_regex::Regex;

use crate::version::parse_release_version;
use crate::version_range::{VersionRange, VersionRangeError, parse_version_range};

/// A package version chosen for a release.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectedPackage {
    /// The deployment action (for single-action steps, the step) that uses the package.
    pub action_name: String,
    /// The package reference's name; empty for the action's primary package.
    pub package_reference_name: String,
    /// The package id in its feed, e.g. `web`.
    pub package_id: String,
    pub version: String,
}

impl SelectedPackage {
    /// The name messages use: the package id, else the reference name, else the action name.
    pub fn display_name(&self) -> &str {
        [
            &self.package_id,
            &self.package_reference_name,
            &self.action_name,
        ]
        .into_iter()
        .find(|name| !name.is_empty())
        .map_or("", String::as_str)
    }
}

/// Why a channel does not accept a package version (or cannot judge it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelRuleViolation {
    #[error("the channel '{channel_name}' has a version rule with an invalid range: {error}")]
    InvalidRange {
        channel_name: String,
        error: VersionRangeError,
    },
    #[error(
        "the channel '{channel_name}' has a version rule with an invalid tag pattern '{pattern}': {reason}"
    )]
    InvalidTagPattern {
        channel_name: String,
        pattern: String,
        reason: String,
    },
    #[error("version '{version}' of package '{package_name}' is not a valid version: {reason}")]
    InvalidPackageVersion {
        package_name: String,
        version: String,
        reason: String,
    },
    #[error(
        "version {version} of package '{package_name}' is outside the channel '{channel_name}' range {range}"
    )]
    OutsideRange {
        package_name: String,
        version: String,
        channel_name: String,
        range: String,
    },
    #[error(
        "version {version} of package '{package_name}' {}, which the channel '{channel_name}' tag pattern '{pattern}' does not accept",
        describe_tag(.tag)
    )]
    TagMismatch {
        package_name: String,
        version: String,
        tag: String,
        channel_name: String,
        pattern: String,
    },
}

fn describe_tag(tag: &str) -> String {
    if tag.is_empty() {
        "has no pre-release tag".to_owned()
    } else {
        format!("has the tag '{tag}'")
    }
}

/// A rule with its range parsed and its tag pattern compiled, to check many packages.
#[derive(Clone, Debug)]
pub struct CompiledVersionRule {
    channel_name: String,
    action_packages: Vec<(String, String)>,
    range: Option<VersionRange>,
    tag_pattern: Option<(String, Regex)>,
}

impl CompiledVersionRule {
    /// Parses the rule's range and compiles its tag pattern; blank ones mean "no constraint".
    pub fn compile(
        channel_name: &str,
        rule: &ChannelVersionRule,
    ) -> Result<CompiledVersionRule, ChannelRuleViolation> {
        let range = match rule.version_range.as_deref().map(str::trim) {
            Some(range) if !range.is_empty() => {
                Some(parse_version_range(range).map_err(|error| {
                    ChannelRuleViolation::InvalidRange {
                        channel_name: channel_name.to_owned(),
                        error,
                    }
                })?)
            }
            _ => None,
        };
        let tag_pattern = match rule.tag.as_deref() {
            Some(pattern) if !pattern.is_empty() => {
                let regex = Regex::new(pattern).map_err(|error| {
                    ChannelRuleViolation::InvalidTagPattern {
                        channel_name: channel_name.to_owned(),
                        pattern: pattern.to_owned(),
                        reason: error.to_string(),
                    }
                })?;
                Some((pattern.to_owned(), regex))
            }
            _ => None,
        };
        Ok(CompiledVersionRule {
            channel_name: channel_name.to_owned(),
            action_packages: rule
                .action_packages
                .iter()
                .map(|action_package| {
                    (
                        action_package.deployment_action.clone(),
                        action_package.package_reference.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            range,
            tag_pattern,
        })
    }

    /// Whether the rule governs the package `package_reference_name` of `action_name`
    /// (names compared without regard to case; an empty reference is the primary package).
    pub fn applies_to(&self, action_name: &str, package_reference_name: &str) -> bool {
        self.action_packages.iter().any(|(action, reference)| {
            action.eq_ignore_ascii_case(action_name)
                && reference.eq_ignore_ascii_case(package_reference_name)
        })
    }

    /// Whether the rule accepts `version` of the package called `package_name` in messages.
    pub fn check(&self, package_name: &str, version: &str) -> Result<(), ChannelRuleViolation> {
        let parsed = parse_release_version(version).map_err(|error| {
            ChannelRuleViolation::InvalidPackageVersion {
                package_name: package_name.to_owned(),
                version: version.to_owned(),
                reason: error.reason,
            }
        })?;
        if let Some(range) = self.range.as_ref().filter(|range| !range.contains(&parsed)) {
            return Err(ChannelRuleViolation::OutsideRange {
                package_name: package_name.to_owned(),
                version: version.to_owned(),
                channel_name: self.channel_name.clone(),
                range: range.to_string(),
            });
        }
        if let Some((pattern, regex)) = &self.tag_pattern {
            let tag = parsed.tag();
            // A match that gives up (backtracking limit) accepts nothing.
            if !regex.is_match(&tag).unwrap_or(false) {
                return Err(ChannelRuleViolation::TagMismatch {
                    package_name: package_name.to_owned(),
                    version: version.to_owned(),
                    tag,
                    channel_name: self.channel_name.clone(),
                    pattern: pattern.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Whether `rule` of the channel `channel_name` accepts `version` of `package_name`.
pub fn check_package_version(
    channel_name: &str,
    rule: &ChannelVersionRule,
    package_name: &str,
    version: &str,
) -> Result<(), ChannelRuleViolation> {
    CompiledVersionRule::compile(channel_name, rule)?.check(package_name, version)
}

/// Whether `rule` governs the package `package_reference_name` (empty for the primary
/// package) of the action or step `action_name`.
pub fn rule_applies_to(
    rule: &ChannelVersionRule,
    action_name: &str,
    package_reference_name: &str,
) -> bool {
    rule.action_packages.iter().any(|action_package| {
        action_package
            .deployment_action
            .eq_ignore_ascii_case(action_name)
            && action_package
                .package_reference
                .as_deref()
                .unwrap_or_default()
                .eq_ignore_ascii_case(package_reference_name)
    })
}

/// Checks every selected package against every rule of `channel` that governs it; returns all
/// violations, in rule order then package order.
pub fn check_channel(
    channel: &Channel,
    packages: &[SelectedPackage],
) -> Result<(), Vec<ChannelRuleViolation>> {
    let mut violations = Vec::new();
    for rule in &channel.rules {
        let compiled = match CompiledVersionRule::compile(&channel.name, rule) {
            Ok(compiled) => compiled,
            Err(violation) => {
                violations.push(violation);
                continue;
            }
        };
        let governed_packages = packages.iter().filter(|package| {
            compiled.applies_to(&package.action_name, &package.package_reference_name)
        });
        for package in governed_packages {
            if let Err(violation) = compiled.check(package.display_name(), &package.version) {
                violations.push(violation);
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// The channel a release with `packages` should go to when none was chosen: the first channel
/// (in the order given) that has a rule governing one of the packages and accepts all of them;
/// otherwise the default channel if it accepts them; otherwise none.
pub fn choose_channel<'channel>(
    channels: &'channel [Channel],
    packages: &[SelectedPackage],
) -> Option<&'channel Channel> {
    let governs_a_package = |channel: &Channel| {
        channel.rules.iter().any(|rule| {
            packages.iter().any(|package| {
                rule_applies_to(rule, &package.action_name, &package.package_reference_name)
            })
        })
    };
    channels
        .iter()
        .find(|channel| governs_a_package(channel) && check_channel(channel, packages).is_ok())
        .or_else(|| {
            channels
                .iter()
                .find(|channel| channel.is_default && check_channel(channel, packages).is_ok())
        })
}

#[cfg(test)]
mod tests {
    use cuttle_domain::ChannelRuleActionPackage;

    use super::*;

    fn rule(range: Option<&str>, tag: Option<&str>) -> ChannelVersionRule {
        ChannelVersionRule {
            id: String::new(),
            version_range: range.map(str::to_owned),
            tag: tag.map(str::to_owned),
            action_packages: vec![ChannelRuleActionPackage {
                deployment_action: "Deploy web".to_owned(),
                package_reference: None,
            }],
        }
    }

    fn check(range: Option<&str>, tag: Option<&str>, version: &str) -> Result<(), String> {
        check_package_version("Hotfix", &rule(range, tag), "web", version)
            .map_err(|violation| violation.to_string())
    }

    #[test]
    fn range_violation_names_the_version_package_channel_and_range() {
        assert_eq!(
            check(Some("[1.0,2.0)"), None, "2.1.0"),
            Err(
                "version 2.1.0 of package 'web' is outside the channel 'Hotfix' range [1.0,2.0)"
                    .to_owned()
            )
        );
        assert_eq!(check(Some("[1.0,2.0)"), None, "1.9.3"), Ok(()));
    }

    #[test]
    fn nuget_range_syntax() {
        let cases = [
            ("1.0", "1.0.0", true),
            ("1.0", "0.9.0", false),
            ("[1.0]", "1.0.0", true),
            ("[1.0]", "1.0.1", false),
            ("(1.0,)", "1.0.0", false),
            ("(1.0,)", "1.0.1", true),
            ("(,1.0]", "1.0.0", true),
            ("(,1.0]", "1.0.1", false),
            ("[1.0,2.0)", "2.0.0", false),
            ("[2.0.0-alpha.1,2.0.0)", "2.0.0-alpha.1", true),
            ("[2.0.0-alpha.1,2.0.0)", "2.0.0-beta", true),
            ("[2.0.0-alpha.1,2.0.0)", "2.0.0", false),
            ("[1.0,2.0),[3.0,)", "3.1.0", true),
        ];
        for (range, version, accepted) in cases {
            assert_eq!(
                check(Some(range), None, version).is_ok(),
                accepted,
                "{range} with {version}"
            );
        }
    }

    #[test]
    fn tag_patterns() {
        let cases = [
            ("^$", "1.0.0", true),
            ("^$", "1.0.0-beta", false),
            ("^beta", "1.0.0-beta.1", true),
            ("^beta", "1.0.0-alpha", false),
            ("^beta", "1.0.0", false),
            ("^beta", "1.0.0-beta.1+sha.abc", true),
            ("^(?!beta).+", "1.0.0-alpha", true),
            ("^(?!beta).+", "1.0.0-rc.1", true),
            ("^(?!beta).+", "1.0.0-beta.2", false),
            ("^(?!beta).+", "1.0.0", false),
            ("(?<=-)hotfix", "1.0.0-x-hotfix", true),
        ];
        for (pattern, version, accepted) in cases {
            assert_eq!(
                check(None, Some(pattern), version).is_ok(),
                accepted,
                "{pattern} with {version}"
            );
        }
    }

    #[test]
    fn tag_violation_says_what_the_tag_was() {
        assert_eq!(
            check(None, Some("^$"), "1.0.0-beta.1"),
            Err("version 1.0.0-beta.1 of package 'web' has the tag 'beta.1', which the channel 'Hotfix' tag pattern '^$' does not accept".to_owned())
        );
        assert_eq!(
            check(None, Some("^beta"), "1.0.0"),
            Err("version 1.0.0 of package 'web' has no pre-release tag, which the channel 'Hotfix' tag pattern '^beta' does not accept".to_owned())
        );
    }

    #[test]
    fn range_and_tag_must_both_accept() {
        assert_eq!(check(Some("[1.0,2.0)"), Some("^$"), "1.5.0"), Ok(()));
        assert!(check(Some("[1.0,2.0)"), Some("^$"), "1.5.0-beta").is_err());
        assert!(check(Some("[1.0,2.0)"), Some("^$"), "2.5.0").is_err());
    }

    #[test]
    fn blank_range_and_tag_accept_anything() {
        assert_eq!(check(Some("  "), Some(""), "0.0.1-whatever"), Ok(()));
        assert_eq!(check(None, None, "9.9.9"), Ok(()));
    }

    #[test]
    fn invalid_rules_and_versions_are_reported_clearly() {
        assert_eq!(
            check(Some("[2.0,1.0]"), None, "1.5.0"),
            Err("the channel 'Hotfix' has a version rule with an invalid range: '[2.0,1.0]' is not a valid version range: [2.0,1.0]: the minimum 2.0 is above the maximum 1.0".to_owned())
        );
        assert_eq!(
            check(Some("[1.0,2.0"), None, "1.5.0"),
            Err("the channel 'Hotfix' has a version rule with an invalid range: '[1.0,2.0' is not a valid version range: a '[' or '(' is not closed by ']' or ')'".to_owned())
        );
        let invalid_pattern = check(None, Some("^(beta"), "1.0.0").expect_err("invalid pattern");
        assert!(
            invalid_pattern.starts_with(
                "the channel 'Hotfix' has a version rule with an invalid tag pattern '^(beta': "
            ),
            "{invalid_pattern}"
        );
        assert_eq!(
            check(Some("1.0"), None, "latest"),
            Err("version 'latest' of package 'web' is not a valid version: 'latest' is not a number; expected up to four numbers separated by dots, like 1.2.3".to_owned())
        );
    }

    #[test]
    fn rules_apply_to_their_action_and_package_reference() {
        let mut rule = rule(Some("1.0"), None);
        rule.action_packages.push(ChannelRuleActionPackage {
            deployment_action: "Deploy api".to_owned(),
            package_reference: Some("sidecar".to_owned()),
        });
        assert!(rule_applies_to(&rule, "Deploy web", ""));
        assert!(rule_applies_to(&rule, "DEPLOY WEB", ""));
        assert!(!rule_applies_to(&rule, "Deploy web", "sidecar"));
        assert!(rule_applies_to(&rule, "Deploy api", "Sidecar"));
        assert!(!rule_applies_to(&rule, "Deploy api", ""));
        assert!(!rule_applies_to(&rule, "Run tests", ""));
        let compiled = CompiledVersionRule::compile("Hotfix", &rule).expect("valid rule");
        assert!(compiled.applies_to("deploy api", "sidecar"));
        assert!(!compiled.applies_to("Deploy api", ""));
    }

    fn package(action_name: &str, package_id: &str, version: &str) -> SelectedPackage {
        SelectedPackage {
            action_name: action_name.to_owned(),
            package_reference_name: String::new(),
            package_id: package_id.to_owned(),
            version: version.to_owned(),
        }
    }

    fn channel(name: &str, is_default: bool, rules: Vec<ChannelVersionRule>) -> Channel {
        Channel {
            name: name.to_owned(),
            is_default,
            rules,
            ..Channel::default()
        }
    }

    #[test]
    fn check_channel_reports_every_violation_of_governed_packages_only() {
        let hotfix = channel(
            "Hotfix",
            false,
            vec![rule(Some("[1.0,2.0)"), None), rule(None, Some("^$"))],
        );
        let packages = [
            package("Deploy web", "web", "2.1.0-beta"),
            package("Run migrations", "db", "9.0.0-anything"),
        ];
        let violations: Vec<String> = check_channel(&hotfix, &packages)
            .expect_err("web breaks both rules")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            violations,
            [
                "version 2.1.0-beta of package 'web' is outside the channel 'Hotfix' range [1.0,2.0)",
                "version 2.1.0-beta of package 'web' has the tag 'beta', which the channel 'Hotfix' tag pattern '^$' does not accept",
            ]
        );
        assert_eq!(
            check_channel(&hotfix, &[package("Deploy web", "web", "1.2.0")]),
            Ok(())
        );
    }

    #[test]
    fn chooses_the_first_channel_whose_rules_govern_and_accept_else_the_default() {
        let channels = [
            channel("Default", true, vec![rule(None, Some("^$"))]),
            channel("Beta", false, vec![rule(None, Some("^beta"))]),
            channel(
                "Hotfix",
                false,
                vec![rule(Some("[1.0,2.0)"), Some("^hotfix"))],
            ),
            channel("Anything", false, Vec::new()),
        ];
        let choose = |version: &str| {
            choose_channel(&channels, &[package("Deploy web", "web", version)])
                .map(|channel| channel.name.as_str())
        };
        assert_eq!(choose("3.0.0"), Some("Default"));
        assert_eq!(choose("3.0.0-beta.4"), Some("Beta"));
        assert_eq!(choose("1.2.0-hotfix.1"), Some("Hotfix"));
        assert_eq!(choose("3.0.0-hotfix.1"), None);

        // No rule governs the package: the default channel, if its rules accept.
        let unrelated = [package("Run script", "tools", "1.0.0-alpha")];
        assert_eq!(
            choose_channel(&channels, &unrelated).map(|channel| channel.name.as_str()),
            Some("Default")
        );
    }

    #[test]
    fn display_name_prefers_the_package_id() {
        let mut selected = package("Deploy web", "", "1.0.0");
        assert_eq!(selected.display_name(), "Deploy web");
        selected.package_reference_name = "sidecar".to_owned();
        assert_eq!(selected.display_name(), "sidecar");
        selected.package_id = "nginx".to_owned();
        assert_eq!(selected.display_name(), "nginx");
    }
}
