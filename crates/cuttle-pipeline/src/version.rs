//! Release and package versions as Octopus reads them: [`ReleaseVersion`], its parser and its
//! ordering.
//!
//! Octopus versions are SemVer with NuGet's leniency: one to four numeric components
//! (`1`, `1.2`, `1.2.3`, `1.2.3.4`), an optional pre-release (`-beta.1`) and optional build
//! metadata (`+sha.5114f85`). Missing numeric components count as zero when comparing, so
//! `1.0` and `1.0.0.0` have the same precedence.
//!
//! Precedence follows SemVer 2: numeric components first, then a version with a pre-release
//! is lower than the same version without one, and pre-release identifiers compare one by one
//! (numbers numerically and below text, text case-insensitively as NuGet does, a shorter list
//! below a longer one that it prefixes). Build metadata is ignored, so `Eq` and `Ord` agree:
//! `1.0.0+a == 1.0.0+b`. [`ReleaseVersion::as_str`] keeps the text as written.
//!
//! What it deliberately does not do: Maven's ordering rules (qualifiers like `SNAPSHOT`,
//! `final`), Docker tags and floating versions (`1.*`).

use std::cmp::Ordering;
use std::fmt;

/// A parsed release or package version. Build with [`parse_release_version`].
#[derive(Clone, Debug)]
pub struct ReleaseVersion {
    original: String,
    /// One to four components, as written.
    numeric_components: Vec<u64>,
    /// Dot-separated pre-release identifiers; empty for a stable version.
    prerelease_identifiers: Vec<String>,
    /// The text after `+`, without the `+`; empty when absent.
    build_metadata: String,
}

/// Why a text is not a version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{version}' is not a valid version: {reason}")]
pub struct VersionParseError {
    pub version: String,
    pub reason: String,
}

/// Releases are limited to this many characters (Octopus's limit for `Release.Version`).
pub const MAXIMUM_RELEASE_VERSION_LENGTH: usize = 349;

/// Parses a version such as `1.2.3`, `1.2.3.4`, `1.2` or `1.2.3-beta.1+meta`.
///
/// Surrounding whitespace is an error rather than trimmed, so a stored version is exactly the
/// text that was checked.
pub fn parse_release_version(text: &str) -> Result<ReleaseVersion, VersionParseError> {
    let invalid = |reason: &str| VersionParseError {
        version: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    if text.len() > MAXIMUM_RELEASE_VERSION_LENGTH {
        return Err(invalid(&format!(
            "it is longer than {MAXIMUM_RELEASE_VERSION_LENGTH} characters"
        )));
    }
    let (without_metadata, build_metadata) = match text.split_once('+') {
        Some((before, metadata)) => (before, Some(metadata)),
        None => (text, None),
    };
    let (numbers_text, prerelease) = match without_metadata.split_once('-') {
        Some((before, prerelease)) => (before, Some(prerelease)),
        None => (without_metadata, None),
    };

    let mut numeric_components = Vec::new();
    for component in numbers_text.split('.') {
        if component.is_empty() || !component.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid(&format!(
                "'{component}' is not a number; expected up to four numbers separated by dots, like 1.2.3"
            )));
        }
        let number = component
            .parse::<u64>()
            .map_err(|_| invalid(&format!("{component} is too large")))?;
        numeric_components.push(number);
    }
    if numeric_components.len() > 4 {
        return Err(invalid("it has more than four numeric components"));
    }

    let mut prerelease_identifiers = Vec::new();
    if let Some(prerelease) = prerelease {
        for identifier in prerelease.split('.') {
            check_identifier(identifier, "pre-release").map_err(|reason| invalid(&reason))?;
            prerelease_identifiers.push(identifier.to_owned());
        }
    }
    if let Some(build_metadata) = build_metadata {
        for identifier in build_metadata.split('.') {
            check_identifier(identifier, "build metadata").map_err(|reason| invalid(&reason))?;
        }
    }

    Ok(ReleaseVersion {
        original: text.to_owned(),
        numeric_components,
        prerelease_identifiers,
        build_metadata: build_metadata.unwrap_or_default().to_owned(),
    })
}

/// SemVer identifiers: non-empty, ASCII letters, digits and hyphens.
fn check_identifier(identifier: &str, part: &str) -> Result<(), String> {
    if identifier.is_empty() {
        return Err(format!("the {part} has an empty identifier"));
    }
    if let Some(bad) = identifier
        .chars()
        .find(|character| !character.is_ascii_alphanumeric() && *character != '-')
    {
        return Err(format!(
            "the {part} contains '{bad}'; only letters, digits, hyphens and dots are allowed"
        ));
    }
    Ok(())
}

impl ReleaseVersion {
    /// The version exactly as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// How many numeric components were written (1 to 4).
    pub fn n_numeric_components(&self) -> usize {
        self.numeric_components.len()
    }

    /// The numeric component at `index` (0 = major), zero when not written.
    pub fn numeric_component(&self, index: usize) -> u64 {
        self.numeric_components.get(index).copied().unwrap_or(0)
    }

    /// Whether the numeric component at `index` was written.
    pub fn has_numeric_component(&self, index: usize) -> bool {
        index < self.numeric_components.len()
    }

    pub fn major(&self) -> u64 {
        self.numeric_component(0)
    }

    pub fn minor(&self) -> u64 {
        self.numeric_component(1)
    }

    pub fn patch(&self) -> u64 {
        self.numeric_component(2)
    }

    /// The fourth component (.NET's `Revision`).
    pub fn revision(&self) -> u64 {
        self.numeric_component(3)
    }

    /// The pre-release without the leading `-`, empty for a stable version.
    pub fn prerelease(&self) -> String {
        self.prerelease_identifiers.join(".")
    }

    pub fn prerelease_identifiers(&self) -> &[String] {
        &self.prerelease_identifiers
    }

    /// Build metadata without the leading `+`, empty when absent.
    pub fn build_metadata(&self) -> &str {
        &self.build_metadata
    }

    pub fn is_prerelease(&self) -> bool {
        !self.prerelease_identifiers.is_empty()
    }

    /// What channel tag rules match: the pre-release, then `+` and the build metadata when
    /// there is any (`beta.1+sha.abc`); empty for a stable version without metadata.
    pub fn tag(&self) -> String {
        let mut tag = self.prerelease();
        if !self.build_metadata.is_empty() {
            tag.push('+');
            tag.push_str(&self.build_metadata);
        }
        tag
    }
}

impl fmt::Display for ReleaseVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.original)
    }
}

impl PartialEq for ReleaseVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ReleaseVersion {}

impl PartialOrd for ReleaseVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReleaseVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        for index in 0..4 {
            let ordering = self
                .numeric_component(index)
                .cmp(&other.numeric_component(index));
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        match (self.is_prerelease(), other.is_prerelease()) {
            (false, false) => Ordering::Equal,
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (true, true) => {
                compare_prerelease(&self.prerelease_identifiers, &other.prerelease_identifiers)
            }
        }
    }
}

fn compare_prerelease(left: &[String], right: &[String]) -> Ordering {
    for (left_identifier, right_identifier) in left.iter().zip(right) {
        let ordering = compare_identifier(left_identifier, right_identifier);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    left.len().cmp(&right.len())
}

fn compare_identifier(left: &str, right: &str) -> Ordering {
    let left_number = numeric_identifier(left);
    let right_number = numeric_identifier(right);
    match (left_number, right_number) {
        (Some(left_number), Some(right_number)) => left_number.cmp(&right_number),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => left.to_ascii_lowercase().cmp(&right.to_ascii_lowercase()),
    }
}

/// A pre-release identifier made only of digits, as a number. Digits too many for `u128` still
/// count as numeric: compare them by length first, then as text.
fn numeric_identifier(identifier: &str) -> Option<(usize, String)> {
    if identifier.bytes().all(|byte| byte.is_ascii_digit()) {
        let digits = identifier.trim_start_matches('0');
        Some((digits.len(), digits.to_owned()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> ReleaseVersion {
        parse_release_version(text).expect("test versions are valid")
    }

    #[test]
    fn parses_the_parts_of_a_full_version() {
        let parsed = version("1.2.3.4-beta.1+sha.5114f85");
        assert_eq!(
            (
                parsed.major(),
                parsed.minor(),
                parsed.patch(),
                parsed.revision()
            ),
            (1, 2, 3, 4)
        );
        assert_eq!(parsed.prerelease(), "beta.1");
        assert_eq!(parsed.build_metadata(), "sha.5114f85");
        assert_eq!(parsed.tag(), "beta.1+sha.5114f85");
        assert_eq!(parsed.n_numeric_components(), 4);
        assert_eq!(parsed.as_str(), "1.2.3.4-beta.1+sha.5114f85");
        assert!(parsed.is_prerelease());
    }

    #[test]
    fn short_versions_fill_missing_components_with_zero() {
        let parsed = version("7");
        assert_eq!((parsed.major(), parsed.minor(), parsed.patch()), (7, 0, 0));
        assert!(!parsed.has_numeric_component(1));
        assert_eq!(version("1.0"), version("1.0.0.0"));
    }

    #[test]
    fn hyphens_inside_the_prerelease_stay_in_it() {
        let parsed = version("1.0.0-x-y-z.--");
        assert_eq!(parsed.prerelease_identifiers(), ["x-y-z", "--"]);
        assert_eq!(version("1.0.0+build-7").build_metadata(), "build-7");
        assert_eq!(version("1.0.0+build-7").tag(), "+build-7");
    }

    #[test]
    fn rejects_malformed_versions_with_a_reason() {
        let cases = [
            ("", "'' is not a valid version: it is empty"),
            (
                "1.2.3.4.5",
                "'1.2.3.4.5' is not a valid version: it has more than four numeric components",
            ),
            (
                "1..2",
                "'1..2' is not a valid version: '' is not a number; expected up to four numbers separated by dots, like 1.2.3",
            ),
            (
                "v1.2",
                "'v1.2' is not a valid version: 'v1' is not a number; expected up to four numbers separated by dots, like 1.2.3",
            ),
            (
                "1.2.3-",
                "'1.2.3-' is not a valid version: the pre-release has an empty identifier",
            ),
            (
                "1.2.3-beta..1",
                "'1.2.3-beta..1' is not a valid version: the pre-release has an empty identifier",
            ),
            (
                "1.2.3-beta_1",
                "'1.2.3-beta_1' is not a valid version: the pre-release contains '_'; only letters, digits, hyphens and dots are allowed",
            ),
            (
                "1.2.3+",
                "'1.2.3+' is not a valid version: the build metadata has an empty identifier",
            ),
            (
                " 1.2.3",
                "' 1.2.3' is not a valid version: ' 1' is not a number; expected up to four numbers separated by dots, like 1.2.3",
            ),
            (
                "99999999999999999999.1",
                "'99999999999999999999.1' is not a valid version: 99999999999999999999 is too large",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_release_version(text).expect_err(text);
            assert_eq!(error.to_string(), expected, "for {text:?}");
        }
        let too_long = format!("1.0.0-{}", "a".repeat(400));
        assert!(
            parse_release_version(&too_long)
                .expect_err("too long")
                .reason
                .contains("349")
        );
    }

    #[test]
    fn orders_by_semver_precedence() {
        // Each version is strictly lower than the next (the SemVer 2 specification's example
        // chain, plus four-part versions and numeric components).
        let ascending = [
            "0.9",
            "1.0.0-0.3.7",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0.1",
            "1.0.2",
            "1.0.10",
            "1.10.0",
            "2.0.0-alpha.1",
            "2.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(
                version(pair[0]) < version(pair[1]),
                "{} should be lower than {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn build_metadata_and_case_do_not_change_precedence() {
        assert_eq!(version("1.0.0+a"), version("1.0.0+b"));
        assert_eq!(version("1.0.0-Beta"), version("1.0.0-beta"));
        assert_eq!(version("1.0.0-01"), version("1.0.0-1"));
        assert!(version("1.0.0-99999999999999999999999999999999999999999") > version("1.0.0-2"));
    }

    #[test]
    fn sorting_a_list_gives_the_highest_last() {
        let mut versions: Vec<ReleaseVersion> = ["1.0.10", "1.0.9", "1.0.10-beta", "0.1"]
            .into_iter()
            .map(version)
            .collect();
        versions.sort();
        let sorted: Vec<&str> = versions.iter().map(ReleaseVersion::as_str).collect();
        assert_eq!(sorted, ["0.1", "1.0.9", "1.0.10-beta", "1.0.10"]);
    }
}
