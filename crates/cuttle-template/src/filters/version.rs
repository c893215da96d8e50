//! Version filters (`VersionMajor`, `VersionPreRelease`, ...), parsed the way Octopus.Versioning's
//! lenient `OctopusVersionParser` does.

use std::sync::OnceLock;

use super::{FilterError, FilterResult};

const OCTOPUS_VERSION_PATTERN: &str = r"^\s*(?:\s*(v|V)?\s*(\d+)\s*(?:\.\s*(\d+)\s*)?(?:\.\s*(\d+)\s*)?(?:\.\s*(\d+)\s*)?)?(?:[.\-_\\])?(?<pre>(?<prefix>[A-Za-z0-9]*?)([.\-_\\](?<counter>[A-Za-z0-9.\-_\\]*?)?)?)?(?:\+(?<meta>[A-Za-z0-9_\-.\\+]*?))?\s*$";

fn version_regex() -> Option<&'static fancy_regex::Regex> {
    static REGEX: OnceLock<Option<fancy_regex::Regex>> = OnceLock::new();
    REGEX
        .get_or_init(|| fancy_regex::Regex::new(OCTOPUS_VERSION_PATTERN).ok())
        .as_ref()
}

pub(super) fn version_part(filter: &str, input: Option<&str>, options: &[String]) -> FilterResult {
    let Some(input) = input else { return Ok(None) };
    if !options.is_empty() {
        return Ok(None);
    }
    let unparsable = || FilterError {
        message: format!("'{input}' is not a valid version"),
    };
    let regex = version_regex().ok_or_else(unparsable)?;
    // Upstream throws on a string that is not a version at all.
    let captures = regex
        .captures(input)
        .ok()
        .flatten()
        .ok_or_else(unparsable)?;
    let group = |name: &str| {
        captures
            .name(name)
            .map_or("", |matched| matched.as_str())
            .to_string()
    };
    let number = |index: usize| {
        let digits = captures
            .get(index)
            .map_or("", |matched| matched.as_str())
            .trim_start_matches('0');
        if digits.is_empty() {
            "0".to_string()
        } else {
            digits.to_string()
        }
    };
    Ok(Some(match filter {
        "versionmajor" => number(2),
        "versionminor" => number(3),
        "versionpatch" => number(4),
        "versionrevision" => number(5),
        "versionprerelease" => group("pre"),
        "versionprereleaseprefix" => group("prefix"),
        "versionprereleasecounter" => group("counter"),
        _ => group("meta"),
    }))
}
