//! Version ranges in NuGet's interval notation, which channel version rules use: [`VersionRange`]
//! and [`parse_version_range`].
//!
//! | Range           | Means                  |
//! | --------------- | ---------------------- |
//! | `1.0`           | 1.0 ≤ v                |
//! | `[1.0]`         | v = 1.0                |
//! | `(1.0,)`        | 1.0 < v                |
//! | `(,1.0]`        | v ≤ 1.0                |
//! | `[1.0,2.0)`     | 1.0 ≤ v < 2.0          |
//!
//! Maven ranges use the same brackets and may list several intervals, `[1.0,2.0),[3.0,)`,
//! meaning any of them; that form is accepted too. Comparison is [`ReleaseVersion`]'s, so
//! `[1.0,2.0)` contains `2.0.0-alpha.1` (it is lower than `2.0.0`); whether pre-releases are
//! welcome is the channel rule's tag's business, not the range's.
//!
//! What it deliberately does not do: floating ranges (`1.*`) and Maven's bare "soft
//! requirement" reading of `1.0` (here it means "at least 1.0", as in NuGet).

use std::fmt;

use crate::version::{ReleaseVersion, parse_release_version};

/// One end of an interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeBound {
    pub version: ReleaseVersion,
    pub inclusive: bool,
}

/// One interval; `None` means unbounded on that side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInterval {
    pub minimum: Option<RangeBound>,
    pub maximum: Option<RangeBound>,
}

impl VersionInterval {
    pub fn contains(&self, version: &ReleaseVersion) -> bool {
        let above_minimum = self.minimum.as_ref().is_none_or(|minimum| {
            if minimum.inclusive {
                *version >= minimum.version
            } else {
                *version > minimum.version
            }
        });
        let below_maximum = self.maximum.as_ref().is_none_or(|maximum| {
            if maximum.inclusive {
                *version <= maximum.version
            } else {
                *version < maximum.version
            }
        });
        above_minimum && below_maximum
    }
}

/// A parsed range: a version is in it when it is in any of its intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionRange {
    text: String,
    intervals: Vec<VersionInterval>,
}

impl VersionRange {
    pub fn contains(&self, version: &ReleaseVersion) -> bool {
        self.intervals
            .iter()
            .any(|interval| interval.contains(version))
    }

    pub fn intervals(&self) -> &[VersionInterval] {
        &self.intervals
    }

    /// The range as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// Why a text is not a version range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{range}' is not a valid version range: {reason}")]
pub struct VersionRangeError {
    pub range: String,
    pub reason: String,
}

/// Parses a NuGet (or Maven) version range. Whitespace around versions is ignored.
pub fn parse_version_range(text: &str) -> Result<VersionRange, VersionRangeError> {
    let invalid = |reason: String| VersionRangeError {
        range: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    if trimmed.contains('*') {
        return Err(invalid(
            "floating versions (with '*') are not supported in version rules".to_owned(),
        ));
    }
    if !trimmed.starts_with(['[', '(']) {
        let version = parse_bound_version(trimmed).map_err(invalid)?;
        return Ok(VersionRange {
            text: trimmed.to_owned(),
            intervals: vec![VersionInterval {
                minimum: Some(RangeBound {
                    version,
                    inclusive: true,
                }),
                maximum: None,
            }],
        });
    }

    let mut intervals = Vec::new();
    let mut rest = trimmed;
    loop {
        let Some(close_at) = rest.find([']', ')']) else {
            return Err(invalid(
                "a '[' or '(' is not closed by ']' or ')'".to_owned(),
            ));
        };
        let (interval_text, after) = rest.split_at(close_at + 1);
        intervals.push(parse_interval(interval_text).map_err(invalid)?);
        let after = after.trim_start();
        if after.is_empty() {
            break;
        }
        let Some(next) = after.strip_prefix(',') else {
            return Err(invalid(format!(
                "unexpected '{after}' after the interval {interval_text}"
            )));
        };
        rest = next.trim_start();
        if !rest.starts_with(['[', '(']) {
            return Err(invalid(
                "intervals after a comma must start with '[' or '('".to_owned(),
            ));
        }
    }
    Ok(VersionRange {
        text: trimmed.to_owned(),
        intervals,
    })
}

/// Parses one bracketed interval such as `[1.0,2.0)`; the text starts with `[`/`(` and ends
/// with `]`/`)`.
fn parse_interval(text: &str) -> Result<VersionInterval, String> {
    let minimum_inclusive = text.starts_with('[');
    let maximum_inclusive = text.ends_with(']');
    let inner = &text[1..text.len() - 1];
    if inner.contains(['[', '(']) {
        return Err(format!("{text} has an opening bracket inside it"));
    }
    match inner.split_once(',') {
        None => {
            let inner = inner.trim();
            if inner.is_empty() {
                return Err(format!("{text} names no version"));
            }
            if !(minimum_inclusive && maximum_inclusive) {
                return Err(format!(
                    "{text}: a single version must be written in square brackets, like [{inner}]"
                ));
            }
            let version = parse_bound_version(inner)?;
            Ok(VersionInterval {
                minimum: Some(RangeBound {
                    version: version.clone(),
                    inclusive: true,
                }),
                maximum: Some(RangeBound {
                    version,
                    inclusive: true,
                }),
            })
        }
        Some((minimum_text, maximum_text)) => {
            if maximum_text.contains(',') {
                return Err(format!("{text} has more than one comma"));
            }
            let minimum = optional_bound(minimum_text, minimum_inclusive)?;
            let maximum = optional_bound(maximum_text, maximum_inclusive)?;
            match (&minimum, &maximum) {
                (None, None) => Err(format!("{text} has neither a minimum nor a maximum")),
                (Some(minimum), Some(maximum)) if minimum.version > maximum.version => {
                    Err(format!(
                        "{text}: the minimum {} is above the maximum {}",
                        minimum.version, maximum.version
                    ))
                }
                (Some(minimum), Some(maximum))
                    if minimum.version == maximum.version
                        && !(minimum.inclusive && maximum.inclusive) =>
                {
                    Err(format!("{text} contains no version"))
                }
                _ => Ok(VersionInterval { minimum, maximum }),
            }
        }
    }
}

fn optional_bound(text: &str, inclusive: bool) -> Result<Option<RangeBound>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(RangeBound {
        version: parse_bound_version(text)?,
        inclusive,
    }))
}

fn parse_bound_version(text: &str) -> Result<ReleaseVersion, String> {
    parse_release_version(text).map_err(|error| format!("{}: {}", error.version, error.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> ReleaseVersion {
        parse_release_version(text).expect("test versions are valid")
    }

    /// Checks which of `versions` the range contains: `inside` lists exactly those that are.
    fn check(range: &str, inside: &[&str], outside: &[&str]) {
        let parsed = parse_version_range(range).expect("test ranges are valid");
        for text in inside {
            assert!(
                parsed.contains(&version(text)),
                "{range} should contain {text}"
            );
        }
        for text in outside {
            assert!(
                !parsed.contains(&version(text)),
                "{range} should not contain {text}"
            );
        }
    }

    #[test]
    fn a_bare_version_is_a_minimum() {
        check(
            "1.0",
            &["1.0", "1.0.0", "1.0.1", "99.0"],
            &["0.9", "1.0.0-beta"],
        );
    }

    #[test]
    fn square_brackets_around_one_version_mean_exactly_it() {
        check(
            "[1.0]",
            &["1.0", "1.0.0.0"],
            &["1.0.1", "0.9", "1.0.0-rc.1"],
        );
    }

    #[test]
    fn exclusive_minimum_without_maximum() {
        check("(1.0,)", &["1.0.1", "2.0", "1.0.0.1"], &["1.0", "0.1"]);
    }

    #[test]
    fn inclusive_maximum_without_minimum() {
        check("(,1.0]", &["1.0", "0.0.1", "1.0.0-beta"], &["1.0.1"]);
    }

    #[test]
    fn half_open_interval() {
        check(
            "[1.0,2.0)",
            &["1.0", "1.5.3", "1.99.99.99", "2.0.0-alpha.1"],
            &["0.9.9", "2.0", "2.0.0", "2.1.0"],
        );
    }

    #[test]
    fn prerelease_bounds() {
        check(
            "[2.0.0-alpha.1,2.0.0)",
            &["2.0.0-alpha.1", "2.0.0-alpha.2", "2.0.0-beta"],
            &["2.0.0-alpha", "2.0.0", "1.9.9"],
        );
    }

    #[test]
    fn whitespace_inside_is_ignored() {
        check(" [ 1.0 , 2.0 ] ", &["1.0", "2.0"], &["2.0.1"]);
        assert_eq!(
            parse_version_range(" [ 1.0 , 2.0 ] ")
                .expect("valid")
                .to_string(),
            "[ 1.0 , 2.0 ]"
        );
    }

    #[test]
    fn maven_unions_match_any_interval() {
        check(
            "[1.0,2.0),[3.0,)",
            &["1.5", "3.0", "4.1"],
            &["2.0", "2.5", "0.5"],
        );
        check("(,1.0],[1.2,)", &["0.9", "1.2"], &["1.1"]);
    }

    #[test]
    fn invalid_ranges_say_why() {
        let cases = [
            ("", "'' is not a valid version range: it is empty"),
            (
                "[1.0",
                "'[1.0' is not a valid version range: a '[' or '(' is not closed by ']' or ')'",
            ),
            (
                "(1.0)",
                "'(1.0)' is not a valid version range: (1.0): a single version must be written in square brackets, like [1.0]",
            ),
            (
                "[2.0,1.0]",
                "'[2.0,1.0]' is not a valid version range: [2.0,1.0]: the minimum 2.0 is above the maximum 1.0",
            ),
            (
                "[1.0,1.0)",
                "'[1.0,1.0)' is not a valid version range: [1.0,1.0) contains no version",
            ),
            (
                "(,)",
                "'(,)' is not a valid version range: (,) has neither a minimum nor a maximum",
            ),
            (
                "[1.0,2.0,3.0]",
                "'[1.0,2.0,3.0]' is not a valid version range: [1.0,2.0,3.0] has more than one comma",
            ),
            (
                "[abc,2.0)",
                "'[abc,2.0)' is not a valid version range: abc: 'abc' is not a number; expected up to four numbers separated by dots, like 1.2.3",
            ),
            (
                "1.*",
                "'1.*' is not a valid version range: floating versions (with '*') are not supported in version rules",
            ),
            (
                "[1.0,2.0) junk",
                "'[1.0,2.0) junk' is not a valid version range: unexpected 'junk' after the interval [1.0,2.0)",
            ),
            (
                "[1.0,2.0),3.0",
                "'[1.0,2.0),3.0' is not a valid version range: intervals after a comma must start with '[' or '('",
            ),
            (
                "[]",
                "'[]' is not a valid version range: [] names no version",
            ),
            (
                "[(1.0,2.0]",
                "'[(1.0,2.0]' is not a valid version range: [(1.0,2.0] has an opening bracket inside it",
            ),
        ];
        for (range, expected) in cases {
            let error = parse_version_range(range).expect_err(range);
            assert_eq!(error.to_string(), expected, "for {range:?}");
        }
    }
}
