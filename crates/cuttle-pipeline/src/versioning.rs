//! The next release version from the project's version template: [`next_release_version`].
//!
//! The template is evaluated with `cuttle-template` against these variables (plus any project
//! variables the caller passes, which the `Octopus.*` ones override):
//!
//! - `Octopus.Version.(Last|Next)(Major|Minor|Patch|Build|Revision|Suffix)`: from the highest
//!   existing release of the project (by [`ReleaseVersion`] precedence; unparsable versions
//!   are skipped). `Next*` is `Last*` plus one. `Build` is the third component, as in .NET's
//!   `Major.Minor.Build.Revision` (so `LastBuild` = `LastPatch`). `LastSuffix` is the
//!   pre-release with its hyphen (`-beta.1`) or empty; `NextSuffix` is the same text.
//!   Without releases every number is 0.
//! - `Octopus.Version.Channel.*`: the same, from the highest release in the release's channel;
//!   `Octopus.Version.Channel[Name].*` for every channel that has releases.
//! - `Octopus.Release.Channel.Name`.
//! - `Octopus.Date.(Day|Month|Year|DayOfYear)`, `Octopus.Time.(Hour|Minute|Second)` from `now`
//!   (UTC; Octopus uses the server's local time), without leading zeros.
//!
//! If the evaluated text is a mask (`2.1.c.i`, see `version_mask.rs`) it is applied to the
//! highest existing release matching its fixed components. The result must be a valid version
//! ([`parse_release_version`]) that no existing release of the project has.
//!
//! What it deliberately does not do: the donor-package strategy (the version of a package
//! chosen for a step), and per-channel release uniqueness (Octopus versions are unique per
//! project).

use chrono::{DateTime, Datelike, Timelike, Utc};
use cuttle_template::{
    DiagnosticKind, EvaluationOptions, VariableDictionary, VariableLookup, evaluate,
};

use crate::version::{ReleaseVersion, parse_release_version};
use crate::version_mask::VersionMask;

/// An existing release of the project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseVersionFact {
    pub version: String,
    pub channel_name: String,
}

impl ReleaseVersionFact {
    pub fn new(version: impl Into<String>, channel_name: impl Into<String>) -> ReleaseVersionFact {
        ReleaseVersionFact {
            version: version.into(),
            channel_name: channel_name.into(),
        }
    }
}

/// Why no release version could be made from the template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionTemplateError {
    #[error("the version template is empty")]
    EmptyTemplate,
    #[error("the version template could not be evaluated: {messages}")]
    Evaluation { messages: String },
    #[error(
        "the version template gave '{version}', which is not a valid release version: {reason}"
    )]
    InvalidVersion { version: String, reason: String },
    #[error(
        "the version template gave '{version}', but the project already has a release {version}"
    )]
    DuplicateVersion { version: String },
}

/// The version for a new release in the channel `channel_name`, from `template`.
pub fn next_release_version(
    template: &str,
    existing_releases: &[ReleaseVersionFact],
    channel_name: &str,
    now: DateTime<Utc>,
) -> Result<String, VersionTemplateError> {
    next_release_version_with_variables(
        template,
        existing_releases,
        channel_name,
        now,
        &VariableDictionary::new(),
    )
}

/// [`next_release_version`] with the project's variables (unscoped or scoped to the channel,
/// already chosen by the caller) available to the template.
pub fn next_release_version_with_variables(
    template: &str,
    existing_releases: &[ReleaseVersionFact],
    channel_name: &str,
    now: DateTime<Utc>,
    project_variables: &dyn VariableLookup,
) -> Result<String, VersionTemplateError> {
    if template.trim().is_empty() {
        return Err(VersionTemplateError::EmptyTemplate);
    }
    let parsed_releases: Vec<(ReleaseVersion, &str)> = existing_releases
        .iter()
        .filter_map(|release| {
            parse_release_version(&release.version)
                .ok()
                .map(|version| (version, release.channel_name.as_str()))
        })
        .collect();

    let variables = template_variables(&parsed_releases, channel_name, now, project_variables);
    let options = EvaluationOptions {
        now_utc: Some(now),
        ..EvaluationOptions::default()
    };
    let evaluation = evaluate(template, &variables, &options);
    // A missing token is only a warning to the template language, but a release version with
    // `#{...}` left in it is never what anyone wants.
    let problems: Vec<&str> = evaluation
        .diagnostics
        .iter()
        .filter(|diagnostic| {
            diagnostic.kind.is_error() || diagnostic.kind == DiagnosticKind::MissingToken
        })
        .map(|diagnostic| diagnostic.message.as_str())
        .collect();
    if !problems.is_empty() {
        return Err(VersionTemplateError::Evaluation {
            messages: problems.join("; "),
        });
    }
    let Some(output) = evaluation.output else {
        return Err(VersionTemplateError::Evaluation {
            messages: "the template evaluated to null".to_owned(),
        });
    };
    let evaluated = output.trim();

    let version = match VersionMask::parse(evaluated).filter(VersionMask::is_mask) {
        Some(mask) => {
            let latest = mask.latest_matching(parsed_releases.iter().map(|(version, _)| version));
            mask.apply(latest)
        }
        None => evaluated.to_owned(),
    };

    if let Err(error) = parse_release_version(&version) {
        return Err(VersionTemplateError::InvalidVersion {
            version,
            reason: error.reason,
        });
    }
    if existing_releases
        .iter()
        .any(|release| release.version.eq_ignore_ascii_case(&version))
    {
        return Err(VersionTemplateError::DuplicateVersion { version });
    }
    Ok(version)
}

fn template_variables(
    releases: &[(ReleaseVersion, &str)],
    channel_name: &str,
    now: DateTime<Utc>,
    project_variables: &dyn VariableLookup,
) -> VariableDictionary {
    let mut variables = VariableDictionary::new();
    project_variables.for_each_variable(&mut |name, value| variables.set(name, value));

    let highest = |in_channel: &dyn Fn(&str) -> bool| {
        releases
            .iter()
            .filter(|(_, release_channel)| in_channel(release_channel))
            .map(|(version, _)| version)
            .max()
    };
    set_version_variables(&mut variables, "Octopus.Version", highest(&|_| true));
    set_version_variables(
        &mut variables,
        "Octopus.Version.Channel",
        highest(&|release_channel| release_channel.eq_ignore_ascii_case(channel_name)),
    );
    let mut channel_names: Vec<&str> = Vec::new();
    for (_, release_channel) in releases {
        if !channel_names
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(release_channel))
        {
            channel_names.push(release_channel);
        }
    }
    for other_channel in channel_names {
        set_version_variables(
            &mut variables,
            &format!("Octopus.Version.Channel[{other_channel}]"),
            highest(&|release_channel| release_channel.eq_ignore_ascii_case(other_channel)),
        );
    }

    variables.set("Octopus.Release.Channel.Name", channel_name);
    variables.set("Octopus.Date.Day", now.day().to_string());
    variables.set("Octopus.Date.Month", now.month().to_string());
    variables.set("Octopus.Date.Year", now.year().to_string());
    variables.set("Octopus.Date.DayOfYear", now.ordinal().to_string());
    variables.set("Octopus.Time.Hour", now.hour().to_string());
    variables.set("Octopus.Time.Minute", now.minute().to_string());
    variables.set("Octopus.Time.Second", now.second().to_string());
    variables
}

/// Sets `{prefix}.Last*` and `{prefix}.Next*` from `last` (zeros when `None`).
fn set_version_variables(
    variables: &mut VariableDictionary,
    prefix: &str,
    last: Option<&ReleaseVersion>,
) {
    let component = |index: usize| last.map_or(0, |version| version.numeric_component(index));
    let numbers = [
        ("Major", component(0)),
        ("Minor", component(1)),
        ("Patch", component(2)),
        ("Build", component(2)),
        ("Revision", component(3)),
    ];
    for (name, value) in numbers {
        variables.set(format!("{prefix}.Last{name}"), value.to_string());
        variables.set(
            format!("{prefix}.Next{name}"),
            value.saturating_add(1).to_string(),
        );
    }
    let suffix = last
        .filter(|version| version.is_prerelease())
        .map(|version| format!("-{}", version.prerelease()))
        .unwrap_or_default();
    variables.set(format!("{prefix}.LastSuffix"), suffix.clone());
    variables.set(format!("{prefix}.NextSuffix"), suffix);
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cuttle_domain::DEFAULT_VERSION_TEMPLATE;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 7, 9, 5, 2)
            .single()
            .expect("a valid test instant")
    }

    fn releases(versions: &[(&str, &str)]) -> Vec<ReleaseVersionFact> {
        versions
            .iter()
            .map(|(version, channel)| ReleaseVersionFact::new(*version, *channel))
            .collect()
    }

    fn next(template: &str, existing: &[(&str, &str)], channel: &str) -> String {
        next_release_version(template, &releases(existing), channel, now())
            .expect("the template gives a version")
    }

    #[test]
    fn default_template_counts_patches_from_zero() {
        assert_eq!(next(DEFAULT_VERSION_TEMPLATE, &[], "Default"), "0.0.1");
        assert_eq!(
            next(DEFAULT_VERSION_TEMPLATE, &[("0.0.1", "Default")], "Default"),
            "0.0.2"
        );
    }

    #[test]
    fn last_is_the_highest_version_not_the_newest() {
        let existing = [
            ("1.4.9", "Default"),
            ("1.4.10", "Default"),
            ("1.4.11-beta", "Default"),
            ("not a version", "Default"),
            ("1.3.99", "Default"),
        ];
        assert_eq!(
            next(DEFAULT_VERSION_TEMPLATE, &existing, "Default"),
            "1.4.12"
        );
        assert_eq!(
            next(
                "#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.LastPatch}#{Octopus.Version.LastSuffix}.1",
                &existing,
                "Default"
            ),
            "1.4.11-beta.1"
        );
    }

    #[test]
    fn next_components_and_four_part_versions() {
        let existing = [("2.7.3.41", "Default")];
        assert_eq!(
            next("#{Octopus.Version.NextMajor}.0.0", &existing, "Default"),
            "3.0.0"
        );
        assert_eq!(
            next(
                "#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.LastBuild}.#{Octopus.Version.NextRevision}",
                &existing,
                "Default"
            ),
            "2.7.3.42"
        );
        assert_eq!(
            next(
                "#{Octopus.Version.LastMajor}.#{Octopus.Version.NextMinor}.0",
                &existing,
                "Default"
            ),
            "2.8.0"
        );
    }

    #[test]
    fn channel_variables_use_the_channel_releases() {
        let existing = [
            ("2.0.5", "Default"),
            ("1.0.3-hotfix", "Hotfix"),
            ("1.0.2-hotfix", "Hotfix"),
        ];
        let template = "#{Octopus.Version.Channel.LastMajor}.#{Octopus.Version.Channel.LastMinor}.#{Octopus.Version.Channel.NextPatch}-#{Octopus.Release.Channel.Name | ToLower}";
        assert_eq!(next(template, &existing, "Hotfix"), "1.0.4-hotfix");
        // A channel without releases starts from zero.
        assert_eq!(next(template, &existing, "Beta"), "0.0.1-beta");
        assert_eq!(
            next(
                "#{Octopus.Version.Channel[Default].LastMajor}.#{Octopus.Version.Channel[Default].LastMinor}.#{Octopus.Version.Channel[Default].NextPatch}",
                &existing,
                "Hotfix"
            ),
            "2.0.6"
        );
    }

    #[test]
    fn date_and_time_variables_come_from_now() {
        assert_eq!(
            next(
                "#{Octopus.Date.Year}.#{Octopus.Date.Month}.#{Octopus.Date.Day}.#{Octopus.Date.DayOfYear}",
                &[],
                "Default"
            ),
            "2026.3.7.66"
        );
        assert_eq!(
            next(
                "1.0.0-t#{Octopus.Time.Hour}h#{Octopus.Time.Minute}m#{Octopus.Time.Second}",
                &[],
                "Default"
            ),
            "1.0.0-t9h5m2"
        );
    }

    #[test]
    fn conditionals_work_as_in_any_template() {
        let template = "1.0.#{Octopus.Version.NextPatch}#{if Octopus.Release.Channel.Name != \"Default\"}-#{Octopus.Release.Channel.Name}#{/if}";
        assert_eq!(next(template, &[("1.0.4", "Default")], "Default"), "1.0.5");
        assert_eq!(
            next(template, &[("1.0.4", "Default")], "Beta"),
            "1.0.5-Beta"
        );
    }

    #[test]
    fn masks_increment_the_latest_matching_release() {
        assert_eq!(next("2.1.c.i", &[], "Default"), "2.1.0.0");
        let existing = [
            ("2.1.3.4", "Default"),
            ("2.1.3.9", "Default"),
            ("2.2.0.0", "Default"),
            ("1.9.9.9", "Default"),
        ];
        assert_eq!(next("2.1.c.i", &existing, "Default"), "2.1.3.10");
        assert_eq!(next("2.i.0", &existing, "Default"), "2.3.0.0");
        assert_eq!(
            next("#{Octopus.Version.LastMajor}.1.c.i", &existing, "Default"),
            "2.1.3.10"
        );
    }

    #[test]
    fn project_variables_are_available_but_octopus_ones_win() {
        let project_variables: VariableDictionary =
            [("Suffix", "rc"), ("Octopus.Version.NextPatch", "999")]
                .into_iter()
                .collect();
        assert_eq!(
            next_release_version_with_variables(
                "1.0.#{Octopus.Version.NextPatch}-#{Suffix}",
                &releases(&[("1.0.1-rc", "Default")]),
                "Default",
                now(),
                &project_variables,
            ),
            Ok("1.0.2-rc".to_owned())
        );
    }

    #[test]
    fn problems_are_errors_that_say_what_is_wrong() {
        let error = |template: &str, existing: &[(&str, &str)]| {
            next_release_version(template, &releases(existing), "Default", now())
                .expect_err("expected an error")
                .to_string()
        };
        assert_eq!(error("   ", &[]), "the version template is empty");
        assert_eq!(
            error("1.0.#{Unknown}", &[]),
            "the version template could not be evaluated: unable to evaluate '#{Unknown}'"
        );
        assert_eq!(
            error("release-#{Octopus.Version.NextPatch}", &[]),
            "the version template gave 'release-1', which is not a valid release version: 'release' is not a number; expected up to four numbers separated by dots, like 1.2.3"
        );
        assert_eq!(
            error("1.0.0", &[("1.0.0", "Default")]),
            "the version template gave '1.0.0', but the project already has a release 1.0.0"
        );
    }
}
