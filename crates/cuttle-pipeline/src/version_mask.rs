//! Octopus's semantic version masks: `2.1.c.i`, `1.2.3-alpha.i`, where `i` takes the latest
//! matching version's component plus one and `c` keeps it.
//!
//! The behaviour follows Octopus's own implementation, quirks included (they decide what
//! existing projects' release numbers look like): once a numeric component is incremented the
//! next mask character becomes `0` (`i.c.c` after `1.2.3` gives `2.0.3`), a component the mask
//! leaves out but the latest version has becomes `0` (`c.c.i` after `1.2.3.4` gives
//! `1.2.4.0`), and pre-release counters that are not numbers count as zero. Without a
//! matching latest version every `i` and `c` is `0`.
//!
//! What it deliberately does not do: the `v` prefix Octopus also accepts on masks.

use crate::version::ReleaseVersion;

const INCREMENT: &str = "i";
const CURRENT: &str = "c";

/// A version text whose components may be `i` or `c`.
#[derive(Debug)]
pub(crate) struct VersionMask<'text> {
    /// One to four components: digits, `i` or `c`.
    numeric: Vec<&'text str>,
    prerelease: Option<&'text str>,
    build_metadata: Option<&'text str>,
}

fn is_substitute(component: &str) -> bool {
    component == INCREMENT || component == CURRENT
}

fn is_identifier(identifier: &str) -> bool {
    !identifier.is_empty()
        && identifier
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-')
}

impl<'text> VersionMask<'text> {
    /// Parses `text` as a mask; `None` when it has not the shape of a version.
    pub(crate) fn parse(text: &'text str) -> Option<VersionMask<'text>> {
        let (without_metadata, build_metadata) = match text.split_once('+') {
            Some((before, metadata)) => (before, Some(metadata)),
            None => (text, None),
        };
        let (numbers, prerelease) = match without_metadata.split_once('-') {
            Some((before, prerelease)) => (before, Some(prerelease)),
            None => (without_metadata, None),
        };
        let numeric: Vec<&str> = numbers.split('.').collect();
        let numeric_ok = numeric.len() <= 4
            && numeric.iter().all(|component| {
                is_substitute(component)
                    || (!component.is_empty()
                        && component.bytes().all(|byte| byte.is_ascii_digit()))
            });
        let tags_ok = [prerelease, build_metadata]
            .into_iter()
            .flatten()
            .all(|tag| tag.split('.').all(is_identifier));
        (numeric_ok && tags_ok).then_some(VersionMask {
            numeric,
            prerelease,
            build_metadata,
        })
    }

    /// Whether any component is `i` or `c`: only then is the text treated as a mask.
    pub(crate) fn is_mask(&self) -> bool {
        self.numeric
            .iter()
            .any(|component| is_substitute(component))
            || [self.prerelease, self.build_metadata]
                .into_iter()
                .flatten()
                .any(|tag| tag.split('.').any(is_substitute))
    }

    /// The highest of `versions` whose components before the mask's first `i`/`c` equal the
    /// mask's (missing ones count as 0).
    pub(crate) fn latest_matching<'version>(
        &self,
        versions: impl IntoIterator<Item = &'version ReleaseVersion>,
    ) -> Option<&'version ReleaseVersion> {
        versions
            .into_iter()
            .filter(|version| {
                for index in 0..4 {
                    let mask_component = self.numeric.get(index).copied();
                    if mask_component.is_some_and(is_substitute) {
                        return true;
                    }
                    let fixed = mask_component
                        .and_then(|component| component.parse::<u64>().ok())
                        .unwrap_or(0);
                    if version.numeric_component(index) != fixed {
                        return false;
                    }
                }
                true
            })
            .max()
    }

    /// The version the mask gives after `latest` (or from nothing).
    pub(crate) fn apply(&self, latest: Option<&ReleaseVersion>) -> String {
        match latest {
            None => self.apply_without_latest(),
            Some(latest) => self.apply_to_latest(latest),
        }
    }

    fn apply_without_latest(&self) -> String {
        let zero_substitutes = |component: &str| {
            if is_substitute(component) {
                "0".to_owned()
            } else {
                component.to_owned()
            }
        };
        let mut result = self
            .numeric
            .iter()
            .map(|component| zero_substitutes(component))
            .collect::<Vec<_>>()
            .join(".");
        for (separator, tag) in [('-', self.prerelease), ('+', self.build_metadata)] {
            if let Some(tag) = tag.filter(|tag| !tag.is_empty()) {
                result.push(separator);
                result.push_str(
                    &tag.split('.')
                        .map(zero_substitutes)
                        .collect::<Vec<_>>()
                        .join("."),
                );
            }
        }
        result
    }

    fn apply_to_latest(&self, latest: &ReleaseVersion) -> String {
        let substitute = |component: &str, index: usize| -> String {
            let current = latest.numeric_component(index);
            match component {
                INCREMENT => current.saturating_add(1).to_string(),
                CURRENT => current.to_string(),
                fixed => fixed.to_owned(),
            }
        };
        let mut result = substitute(self.numeric[0], 0);
        for index in 1..4 {
            let previous_mask_component = self.numeric.get(index - 1).copied();
            match self.numeric.get(index) {
                Some(component) => {
                    result.push('.');
                    if previous_mask_component == Some(INCREMENT) && is_substitute(component) {
                        result.push('0');
                    } else {
                        result.push_str(&substitute(component, index));
                    }
                }
                None => {
                    if latest.has_numeric_component(index) && previous_mask_component.is_some() {
                        result.push_str(".0");
                    }
                }
            }
        }
        let latest_prerelease = latest.prerelease();
        let latest_metadata = latest.build_metadata();
        for (separator, tag, latest_tag) in [
            ('-', self.prerelease, latest_prerelease.as_str()),
            ('+', self.build_metadata, latest_metadata),
        ] {
            if let Some(tag) = tag.filter(|tag| !tag.is_empty()) {
                result.push(separator);
                result.push_str(&substitute_tag(tag, latest_tag));
            }
        }
        result
    }
}

/// Substitutes `i`/`c` identifiers of a pre-release or metadata mask from the latest version's
/// identifiers at the same position. When the tag ends in `.i`/`.c`, an identifier right after
/// an `i` resets to `0`.
fn substitute_tag(mask_tag: &str, latest_tag: &str) -> String {
    let mask_identifiers: Vec<&str> = mask_tag.split('.').collect();
    let latest_identifiers: Vec<&str> = if latest_tag.is_empty() {
        Vec::new()
    } else {
        latest_tag.split('.').collect()
    };
    let ends_with_substitute = mask_tag.ends_with(".i") || mask_tag.ends_with(".c");
    mask_identifiers
        .iter()
        .enumerate()
        .map(|(index, identifier)| {
            if index > 0 && mask_identifiers[index - 1] == INCREMENT && ends_with_substitute {
                return "0".to_owned();
            }
            // Octopus reads the latest identifier as a 32-bit number, anything else as 0.
            let current = latest_identifiers
                .get(index)
                .and_then(|latest| latest.parse::<i32>().ok())
                .unwrap_or(0);
            match *identifier {
                INCREMENT => (i64::from(current) + 1).to_string(),
                CURRENT => current.to_string(),
                fixed => fixed.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::parse_release_version;

    fn version(text: &str) -> ReleaseVersion {
        parse_release_version(text).expect("test versions are valid")
    }

    fn apply(mask: &str, latest: Option<&str>) -> String {
        let latest = latest.map(version);
        VersionMask::parse(mask)
            .expect("test masks parse")
            .apply(latest.as_ref())
    }

    /// Octopus's own vectors (OctopusDeploy/Versioning, `OctopusVersionMaskParserTests`,
    /// `ShouldApplyMask`), those whose latest version is a valid version.
    #[test]
    fn applies_masks_as_octopus_does() {
        let cases = [
            ("1.2.3-alpha.i", None, "1.2.3-alpha.0"),
            ("1.2.3-alpha.i", Some("1.2.3-alpha.25"), "1.2.3-alpha.26"),
            ("i.2.3-alpha.i", Some("1.2.3-alpha.25"), "2.2.3-alpha.26"),
            ("1.i.3-alpha.i", Some("1.2.3-alpha.25"), "1.3.3-alpha.26"),
            ("1.2.i-alpha.i", Some("1.2.3-alpha.25"), "1.2.4-alpha.26"),
            ("c.2.3-alpha.i", Some("1.2.3-alpha.25"), "1.2.3-alpha.26"),
            ("1.c.3-alpha.i", Some("1.2.3-alpha.25"), "1.2.3-alpha.26"),
            ("1.2.c-alpha.i", Some("1.2.3-alpha.25"), "1.2.3-alpha.26"),
            ("i.i.i-alpha.i", Some("1.2.3-alpha.25"), "2.0.0-alpha.26"),
            ("c.c.i-alpha.c", Some("1.2.3-alpha.25"), "1.2.4-alpha.25"),
            ("i.c.c", Some("1.2.3-alpha.25"), "2.0.3"),
            ("c.i.c", Some("1.2.3-alpha.25"), "1.3.0"),
            ("c.c.i", Some("1.2.3-alpha.25"), "1.2.4"),
            ("c.c.c-test", Some("0.0.0.0-alpha.25"), "0.0.0.0-test"),
            ("i.c.c-test", Some("0.0.0.0-alpha.25"), "1.0.0.0-test"),
            ("c.c.i-test", Some("0.0.0.0-alpha.25"), "0.0.1.0-test"),
            ("1.2.3-initial.8", Some("1.0.0.0"), "1.2.3.0-initial.8"),
            (
                "2021.4.0-0.121.27.202110617.1183ec5i",
                Some("2021.4.0.0-121.50.210609"),
                "2021.4.0.0-0.121.27.202110617.1183ec5i",
            ),
            ("c.c.i", Some("1.2.3.4"), "1.2.4.0"),
            ("1.2.3-hi.i", Some("1.1.1.1"), "1.2.3.0-hi.1"),
            ("1.2.3-i", Some("1.2.3-25"), "1.2.3-26"),
            ("1.2.3.4-i.1", Some("1.2.3.4-25.2"), "1.2.3.4-26.1"),
            ("1.2.3.4-c.1", Some("1.2.3.4-25.2"), "1.2.3.4-25.1"),
            (
                "1.2.3.4-1.blah.i.0",
                Some("1.2.3.4-whatever.3.1"),
                "1.2.3.4-1.blah.2.0",
            ),
            ("1.2.3-whatever", Some("1.2.2.2"), "1.2.3.0-whatever"),
        ];
        for (mask, latest, expected) in cases {
            assert_eq!(apply(mask, latest), expected, "{mask} after {latest:?}");
        }
    }

    #[test]
    fn without_a_latest_version_substitutes_are_zero() {
        assert_eq!(apply("2.1.c.i", None), "2.1.0.0");
        assert_eq!(apply("c.c.i+build.i", None), "0.0.0+build.0");
    }

    #[test]
    fn recognises_masks() {
        for mask in [
            "c.i",
            "c.c.i",
            "1.2.3.i",
            "i.2.3.4",
            "1.2.3.4-1.i",
            "1.2.3-i",
            "1.0+c",
        ] {
            assert!(
                VersionMask::parse(mask).is_some_and(|parsed| parsed.is_mask()),
                "{mask} is a mask"
            );
        }
        for not_mask in [
            "1.2.3",
            "1.2.3.4-blahi",
            "2021.4.0-0.121.1183ec5i",
            "1.2.3-rc.1",
        ] {
            assert!(
                VersionMask::parse(not_mask).is_some_and(|parsed| !parsed.is_mask()),
                "{not_mask} parses but is no mask"
            );
        }
        for not_version in [
            "ii.2.3",
            "1.cc.3",
            "1.2.3_i",
            "1. 2.i",
            "1.2.3.4.i",
            "1.2.3-1..i",
        ] {
            assert!(VersionMask::parse(not_version).is_none(), "{not_version}");
        }
    }

    /// Octopus's `GetLatestVersionMask` vectors, plus a choice among several.
    #[test]
    fn picks_the_latest_version_that_matches_the_fixed_components() {
        let latest = |mask: &str, versions: &[&str]| -> Option<String> {
            let versions: Vec<ReleaseVersion> = versions.iter().map(|text| version(text)).collect();
            VersionMask::parse(mask)
                .expect("test masks parse")
                .latest_matching(&versions)
                .map(|found| found.as_str().to_owned())
        };
        assert_eq!(latest("1.2.4", &["1.2.3"]), None);
        assert_eq!(latest("1.2.3-hi.i", &["1.2.3"]).as_deref(), Some("1.2.3"));
        assert_eq!(latest("1.2.i", &["1.2.3"]).as_deref(), Some("1.2.3"));
        assert_eq!(latest("1.i.i", &["1.2.3"]).as_deref(), Some("1.2.3"));
        assert_eq!(latest("1.i.i", &["2.0.0"]), None);
        assert_eq!(
            latest(
                "2.1.c.i",
                &["2.1.3.4", "2.1.3.9", "2.2.0.0", "1.9.9.9", "2.1.3.10-beta"]
            )
            .as_deref(),
            Some("2.1.3.10-beta")
        );
    }
}
