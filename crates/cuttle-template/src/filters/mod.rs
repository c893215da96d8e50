//! Built-in filters (`#{Value | Filter option ...}`) and their dispatch by name.
//!
//! A filter receives an optional input (none when the path is missing or empty) and the
//! evaluated options, and returns `Ok(None)` when it cannot evaluate: the whole token is then
//! echoed. `Err` is reserved for the few filters that throw upstream (invalid base64 for
//! `FromBase64`, an unparsable version), which fail the evaluation. Names are case-insensitive.

mod dates;
mod escape;
mod hash;
pub(crate) mod numbers;
mod text;
mod uri;
mod version;

/// What filters may know about the world: the clock reading and zone passed in by the caller.
#[derive(Clone, Debug)]
pub(crate) struct FilterContext {
    pub(crate) now_utc: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) local_offset: chrono::FixedOffset,
}

/// A filter that failed hard, as a .NET exception would have failed Octostache.
#[derive(Debug)]
pub(crate) struct FilterError {
    pub(crate) message: String,
}

pub(crate) type FilterResult = Result<Option<String>, FilterError>;

/// Runs the filter called `name`; an unknown filter cannot evaluate.
pub(crate) fn invoke(
    name: &str,
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
) -> FilterResult {
    let lower_name = name.to_ascii_lowercase();
    let value = match lower_name.as_str() {
        "tolower" => text::to_lower(input, options),
        "toupper" => text::to_upper(input, options),
        "tobase64" => text::to_base64(input, options),
        "frombase64" => return text::from_base64(input, options),
        "trim" => text::trim(input, options),
        "truncate" => text::truncate(input, options),
        "substring" => text::substring(input, options),
        "replace" => text::replace(input, options),
        "append" => text::append(input, options),
        "prepend" => text::prepend(input, options),
        "indent" => text::indent(input, options),
        "match" => text::regex_match(input, options),
        "startswith" => text::compare(input, options, |value, option| value.starts_with(option)),
        "endswith" => text::compare(input, options, |value, option| value.ends_with(option)),
        "contains" => text::compare(input, options, |value, option| value.contains(option)),
        "null" => None,
        "htmlescape" => escape::html_escape(input, options),
        "xmlescape" => escape::xml_escape(input, options),
        "jsonescape" => escape::json_escape(input, options),
        "yamlsinglequoteescape" => escape::yaml_single_quote_escape(input, options),
        "yamldoublequoteescape" => escape::yaml_double_quote_escape(input, options),
        "propertieskeyescape" => escape::properties_key_escape(input, options),
        "propertiesvalueescape" => escape::properties_value_escape(input, options),
        "uriescape" => escape::uri_escape(input, options),
        "uridataescape" => escape::uri_data_escape(input, options),
        "markdown" | "markdowntohtml" => escape::markdown_to_html(input, options),
        "md5" | "sha1" | "sha256" | "sha384" | "sha512" => hash::hash(&lower_name, input, options),
        "format" => dates::format(input, options, context),
        "nowdate" => dates::now_date(input, options, context),
        "nowdateutc" => dates::now_date_utc(input, options, context),
        "addhours" => dates::add_hours(input, options, context),
        "adddays" => dates::add_days(input, options, context),
        "uripart" => uri::uri_part(input, options),
        "versionmajor"
        | "versionminor"
        | "versionpatch"
        | "versionrevision"
        | "versionprerelease"
        | "versionprereleaseprefix"
        | "versionprereleasecounter"
        | "versionmetadata" => {
            return version::version_part(&lower_name, input, options);
        }
        _ => None,
    };
    Ok(value)
}
