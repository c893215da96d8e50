//! Date filters and .NET date handling (en-US culture): `Format` (numbers and dates),
//! `NowDate`, `NowDateUtc`, `AddHours`, `AddDays`.
//!
//! .NET distinguishes `DateTime` (with a kind: unspecified, UTC or local) from
//! `DateTimeOffset`; which one a filter parses into changes what `K`, `zz` and `O` print, so
//! [`DateValue`] keeps that distinction. "Local" means the caller's
//! [`crate::EvaluationOptions::local_offset`]; the clock is never read here.

use std::sync::OnceLock;

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Timelike};

use super::FilterContext;
use super::numbers::{self, NumberKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateKind {
    /// A .NET `DateTime` with no zone.
    Unspecified,
    /// A .NET `DateTime` in UTC.
    Utc,
    /// A .NET `DateTime` in the server's zone.
    Local,
    /// A .NET `DateTimeOffset`, with its offset.
    Offset(FixedOffset),
}

#[derive(Clone, Copy, Debug)]
struct DateValue {
    /// Wall-clock time in the value's own zone.
    wall_clock: NaiveDateTime,
    kind: DateKind,
}

/// What the text said about its zone.
#[derive(Clone, Copy, Debug)]
enum ParsedZone {
    None,
    Utc,
    Offset(FixedOffset),
}

fn utc_offset() -> FixedOffset {
    FixedOffset::east_opt(0).expect("a zero offset is always valid")
}

fn date_regexes() -> &'static [fancy_regex::Regex] {
    static REGEXES: OnceLock<Vec<fancy_regex::Regex>> = OnceLock::new();
    REGEXES.get_or_init(|| {
        [
            r"^(?<year>\d{4})[-/.](?<month>\d{1,2})[-/.](?<day>\d{1,2})",
            r"^(?<month>\d{1,2})[-/.](?<day>\d{1,2})[-/.](?<year>\d{4}|\d{2})(?!\d)",
            r"^(?<day>\d{1,2})[ -](?<monthname>[A-Za-z]{3,9})\.?[ ,-]*(?<year>\d{4})",
            r"^(?<monthname>[A-Za-z]{3,9})\.?[ ]+(?<day>\d{1,2}),?[ ]+(?<year>\d{4})",
        ]
        .iter()
        .filter_map(|pattern| fancy_regex::Regex::new(pattern).ok())
        .collect()
    })
}

fn time_regex() -> Option<&'static fancy_regex::Regex> {
    static REGEX: OnceLock<Option<fancy_regex::Regex>> = OnceLock::new();
    REGEX
        .get_or_init(|| {
            fancy_regex::Regex::new(
                r"^(?:(?:T|\s+|\s*,\s*)(?<hour>\d{1,2}):(?<minute>\d{2})(?::(?<second>\d{2})(?:[.,](?<fraction>\d+))?)?(?:\s*(?<meridiem>[AaPp][Mm]))?)?\s*(?<zone>Z|GMT|UTC|[+-]\d{1,2}(?::?\d{2})?)?\s*$",
            )
            .ok()
        })
        .as_ref()
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn month_from_name(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    MONTH_NAMES
        .iter()
        .position(|month| {
            let month = month.to_ascii_lowercase();
            month == lower
                || (lower.len() == 3 && month.starts_with(&lower))
                || (lower == "sept" && month == "september")
        })
        .and_then(|index| u32::try_from(index + 1).ok())
}

/// A lenient version of .NET's `DateTime.TryParse` for the shapes people actually write:
/// ISO-like, US `M/d/yyyy`, `22 May 2030`, `May 22, 2030`, RFC 1123, each with an optional
/// time, AM/PM and zone.
fn parse_date_text(text: &str) -> Option<(NaiveDateTime, ParsedZone)> {
    let mut rest = text.trim();
    // An optional leading day name, as in RFC 1123 dates.
    if let Some((word, after)) = rest.split_once([',', ' ']) {
        let lower = word.to_ascii_lowercase();
        if DAY_NAMES.iter().any(|day| {
            let day = day.to_ascii_lowercase();
            day == lower || (lower.len() == 3 && day.starts_with(&lower))
        }) {
            rest = after.trim_start_matches([',', ' ']);
        }
    }
    let (date, after_date) = date_regexes().iter().find_map(|regex| {
        let captures = regex.captures(rest).ok().flatten()?;
        let whole = captures.get(0)?;
        let number = |name: &str| {
            captures
                .name(name)
                .and_then(|matched| matched.as_str().parse::<u32>().ok())
        };
        let month = number("month").or_else(|| {
            captures
                .name("monthname")
                .and_then(|matched| month_from_name(matched.as_str()))
        })?;
        let year_text = captures.name("year")?.as_str();
        let mut year: i32 = year_text.parse().ok()?;
        if year_text.len() == 2 {
            // .NET's two-digit-year window ends at 2049.
            year += if year < 50 { 2000 } else { 1900 };
        }
        let date = NaiveDate::from_ymd_opt(year, month, number("day")?)?;
        Some((date, &rest[whole.end()..]))
    })?;
    let captures = time_regex()?.captures(after_date).ok().flatten()?;
    let number = |name: &str| {
        captures
            .name(name)
            .and_then(|matched| matched.as_str().parse::<u32>().ok())
    };
    let mut hour = number("hour").unwrap_or(0);
    if let Some(meridiem) = captures.name("meridiem") {
        if hour == 0 || hour > 12 {
            return None;
        }
        let is_afternoon = meridiem.as_str().eq_ignore_ascii_case("pm");
        hour = match (hour, is_afternoon) {
            (12, false) => 0,
            (12, true) => 12,
            (hour, true) => hour + 12,
            (hour, false) => hour,
        };
    }
    let nanoseconds = captures.name("fraction").map_or(0, |fraction| {
        let digits: String = fraction
            .as_str()
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        digits.parse::<u32>().unwrap_or(0)
    });
    let time = chrono::NaiveTime::from_hms_nano_opt(
        hour,
        number("minute").unwrap_or(0),
        number("second").unwrap_or(0),
        nanoseconds,
    )?;
    let zone = match captures.name("zone").map(|matched| matched.as_str()) {
        None => ParsedZone::None,
        Some("Z" | "GMT" | "UTC") => ParsedZone::Utc,
        Some(offset) => {
            let negative = offset.starts_with('-');
            let digits: String = offset[1..].chars().filter(char::is_ascii_digit).collect();
            let (hours, minutes) = match digits.len() {
                1 | 2 => (digits.parse::<i32>().ok()?, 0),
                3 => (
                    digits[..1].parse::<i32>().ok()?,
                    digits[1..].parse::<i32>().ok()?,
                ),
                _ => (
                    digits[..2].parse::<i32>().ok()?,
                    digits[2..].parse::<i32>().ok()?,
                ),
            };
            if hours > 14 || minutes > 59 {
                return None;
            }
            let seconds = (hours * 3600 + minutes * 60) * if negative { -1 } else { 1 };
            ParsedZone::Offset(FixedOffset::east_opt(seconds)?)
        }
    };
    Some((date.and_time(time), zone))
}

/// .NET `DateTime.TryParse`: a zone in the text converts the value to local time.
fn parse_date_time(text: &str, local_offset: FixedOffset) -> Option<DateValue> {
    let (wall_clock, zone) = parse_date_text(text)?;
    let to_local = |offset: FixedOffset| {
        let utc = wall_clock - Duration::seconds(i64::from(offset.local_minus_utc()));
        utc + Duration::seconds(i64::from(local_offset.local_minus_utc()))
    };
    Some(match zone {
        ParsedZone::None => DateValue {
            wall_clock,
            kind: DateKind::Unspecified,
        },
        ParsedZone::Utc => DateValue {
            wall_clock: to_local(utc_offset()),
            kind: DateKind::Local,
        },
        ParsedZone::Offset(offset) => DateValue {
            wall_clock: to_local(offset),
            kind: DateKind::Local,
        },
    })
}

/// .NET `DateTimeOffset.TryParse`: a zone-less value is taken to be local.
fn parse_date_time_offset(text: &str, local_offset: FixedOffset) -> Option<DateValue> {
    let (wall_clock, zone) = parse_date_text(text)?;
    let offset = match zone {
        ParsedZone::None => local_offset,
        ParsedZone::Utc => utc_offset(),
        ParsedZone::Offset(offset) => offset,
    };
    Some(DateValue {
        wall_clock,
        kind: DateKind::Offset(offset),
    })
}

fn format_offset(offset: FixedOffset, width: usize) -> String {
    let seconds = offset.local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let hours = seconds.abs() / 3600;
    let minutes = seconds.abs() % 3600 / 60;
    match width {
        1 => format!("{sign}{hours}"),
        2 => format!("{sign}{hours:02}"),
        _ => format!("{sign}{hours:02}:{minutes:02}"),
    }
}

impl DateValue {
    /// The offset `z`/`zz`/`zzz` report: a `DateTime` reports the local offset unless UTC.
    fn offset_for_z(&self, local_offset: FixedOffset) -> FixedOffset {
        match self.kind {
            DateKind::Offset(offset) => offset,
            DateKind::Utc => utc_offset(),
            DateKind::Unspecified | DateKind::Local => local_offset,
        }
    }

    fn to_utc(self, local_offset: FixedOffset) -> DateValue {
        let offset = match self.kind {
            DateKind::Offset(offset) => offset,
            DateKind::Utc => return self,
            DateKind::Unspecified | DateKind::Local => local_offset,
        };
        let wall_clock = self.wall_clock - Duration::seconds(i64::from(offset.local_minus_utc()));
        let kind = if matches!(self.kind, DateKind::Offset(_)) {
            DateKind::Offset(utc_offset())
        } else {
            DateKind::Utc
        };
        DateValue { wall_clock, kind }
    }
}

/// Formats like .NET `DateTime.ToString(format)` / `DateTimeOffset.ToString(format)` in en-US.
/// `None` where .NET throws `FormatException`.
fn format_date(value: DateValue, format: &str, local_offset: FixedOffset) -> Option<String> {
    let is_offset_type = matches!(value.kind, DateKind::Offset(_));
    let mut value = value;
    let pattern: String = if format.is_empty() {
        if is_offset_type {
            "M/d/yyyy h:mm:ss tt zzz".to_string()
        } else {
            "M/d/yyyy h:mm:ss tt".to_string()
        }
    } else if format.chars().count() == 1 {
        let standard = match format {
            "d" => "M/d/yyyy",
            "D" => "dddd, MMMM d, yyyy",
            "f" => "dddd, MMMM d, yyyy h:mm tt",
            "F" => "dddd, MMMM d, yyyy h:mm:ss tt",
            "g" => "M/d/yyyy h:mm tt",
            "G" => "M/d/yyyy h:mm:ss tt",
            "M" | "m" => "MMMM d",
            "O" | "o" => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
            "R" | "r" => {
                value = value.to_utc(local_offset);
                "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'"
            }
            "s" => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
            "t" => "h:mm tt",
            "T" => "h:mm:ss tt",
            "u" => {
                if is_offset_type {
                    value = value.to_utc(local_offset);
                }
                "yyyy'-'MM'-'dd HH':'mm':'ss'Z'"
            }
            "U" => {
                value = value.to_utc(local_offset);
                "dddd, MMMM d, yyyy h:mm:ss tt"
            }
            "Y" | "y" => "MMMM yyyy",
            _ => return None,
        };
        standard.to_string()
    } else {
        format.to_string()
    };
    format_custom_date(value, &pattern, local_offset)
}

fn format_custom_date(
    value: DateValue,
    pattern: &str,
    local_offset: FixedOffset,
) -> Option<String> {
    let characters: Vec<char> = pattern.chars().collect();
    let wall_clock = value.wall_clock;
    let mut output = String::new();
    let mut position = 0;
    while position < characters.len() {
        let character = characters[position];
        let mut count = 1;
        while position + count < characters.len() && characters[position + count] == character {
            count += 1;
        }
        let mut advance = count;
        match character {
            'd' => match count {
                1 => output.push_str(&wall_clock.day().to_string()),
                2 => output.push_str(&format!("{:02}", wall_clock.day())),
                3 => output.push_str(
                    &DAY_NAMES[wall_clock.weekday().num_days_from_sunday() as usize][..3],
                ),
                _ => {
                    output.push_str(DAY_NAMES[wall_clock.weekday().num_days_from_sunday() as usize])
                }
            },
            'M' => {
                let month_index = wall_clock.month0() as usize;
                match count {
                    1 => output.push_str(&wall_clock.month().to_string()),
                    2 => output.push_str(&format!("{:02}", wall_clock.month())),
                    3 => output.push_str(&MONTH_NAMES[month_index][..3]),
                    _ => output.push_str(MONTH_NAMES[month_index]),
                }
            }
            'y' => {
                let year = wall_clock.year();
                match count {
                    1 => output.push_str(&(year % 100).to_string()),
                    2 => output.push_str(&format!("{:02}", year % 100)),
                    width => output.push_str(&format!("{year:0width$}")),
                }
            }
            'h' => {
                let hour = match wall_clock.hour() % 12 {
                    0 => 12,
                    hour => hour,
                };
                if count == 1 {
                    output.push_str(&hour.to_string())
                } else {
                    output.push_str(&format!("{hour:02}"))
                }
            }
            'H' => {
                if count == 1 {
                    output.push_str(&wall_clock.hour().to_string())
                } else {
                    output.push_str(&format!("{:02}", wall_clock.hour()))
                }
            }
            'm' => {
                if count == 1 {
                    output.push_str(&wall_clock.minute().to_string())
                } else {
                    output.push_str(&format!("{:02}", wall_clock.minute()))
                }
            }
            's' => {
                if count == 1 {
                    output.push_str(&wall_clock.second().to_string())
                } else {
                    output.push_str(&format!("{:02}", wall_clock.second()))
                }
            }
            'f' | 'F' => {
                if count > 7 {
                    return None;
                }
                let ticks = format!("{:07}", wall_clock.nanosecond().min(999_999_999) / 100);
                let digits = &ticks[..count];
                if character == 'f' {
                    output.push_str(digits);
                } else {
                    let trimmed = digits.trim_end_matches('0');
                    if trimmed.is_empty() {
                        // .NET drops a decimal point that precedes an all-zero `F` fraction.
                        if output.ends_with('.') {
                            output.pop();
                        }
                    } else {
                        output.push_str(trimmed);
                    }
                }
            }
            't' => {
                let designator = if wall_clock.hour() < 12 { "AM" } else { "PM" };
                output.push_str(if count == 1 {
                    &designator[..1]
                } else {
                    designator
                });
            }
            'g' => output.push_str("A.D."),
            'z' => output.push_str(&format_offset(
                value.offset_for_z(local_offset),
                count.min(3),
            )),
            'K' => {
                advance = 1;
                match value.kind {
                    DateKind::Unspecified => {}
                    DateKind::Utc => output.push('Z'),
                    DateKind::Local => output.push_str(&format_offset(local_offset, 3)),
                    DateKind::Offset(offset) => output.push_str(&format_offset(offset, 3)),
                }
            }
            ':' | '/' => {
                advance = 1;
                output.push(character);
            }
            '\'' | '"' => {
                let closing = characters[position + 1..]
                    .iter()
                    .position(|&candidate| candidate == character)?;
                output.extend(&characters[position + 1..position + 1 + closing]);
                advance = closing + 2;
            }
            '%' => {
                // `%c` is the single custom specifier `c`.
                let next = *characters.get(position + 1)?;
                if next == '%' {
                    return None;
                }
                let single = format_custom_date(value, &next.to_string(), local_offset)?;
                output.push_str(&single);
                advance = 2;
            }
            '\\' => {
                output.push(*characters.get(position + 1)?);
                advance = 2;
            }
            other => {
                advance = 1;
                output.push(other);
            }
        }
        position += advance;
    }
    Some(output)
}

/// `Format fmt` tries a decimal, then a `DateTimeOffset`; `Format type fmt` names the type.
pub(super) fn format(
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
) -> Option<String> {
    let input = input?;
    let local_offset = context.local_offset;
    match options {
        [format] => {
            if let Some(number) = numbers::parse_decimal(input) {
                return numbers::format_number(&number, NumberKind::Decimal, format);
            }
            format_date(
                parse_date_time_offset(input, local_offset)?,
                format,
                local_offset,
            )
        }
        [type_name, format] => match type_name.to_lowercase().as_str() {
            "int" | "int32" => {
                numbers::format_number(&numbers::parse_integer(input)?, NumberKind::Integer, format)
            }
            "double" => {
                let value = numbers::parse_double(input)?;
                match numbers::DecimalDigits::from_double(value) {
                    Some(number) => numbers::format_number(&number, NumberKind::Double, format),
                    None => Some(numbers::format_double_round_trip(value)),
                }
            }
            "decimal" => {
                numbers::format_number(&numbers::parse_decimal(input)?, NumberKind::Decimal, format)
            }
            "date" | "datetime" => {
                format_date(parse_date_time(input, local_offset)?, format, local_offset)
            }
            "datetimeoffset" => format_date(
                parse_date_time_offset(input, local_offset)?,
                format,
                local_offset,
            ),
            _ => None,
        },
        _ => None,
    }
}

/// The caller's clock reading, or `None` (the filter cannot evaluate) when none was given.
fn now(context: &FilterContext) -> Option<NaiveDateTime> {
    context.now_utc.map(|now| now.naive_utc())
}

/// `NowDate` requires a null input; the local time prints without an offset by default.
pub(super) fn now_date(
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
) -> Option<String> {
    if input.is_some() || options.len() > 1 {
        return None;
    }
    let local =
        now(context)? + Duration::seconds(i64::from(context.local_offset.local_minus_utc()));
    let format = options.first().map_or("O", String::as_str);
    format_date(
        DateValue {
            wall_clock: local,
            kind: DateKind::Unspecified,
        },
        format,
        context.local_offset,
    )
}

pub(super) fn now_date_utc(
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
) -> Option<String> {
    if input.is_some() || options.len() > 1 {
        return None;
    }
    let format = options.first().map_or("O", String::as_str);
    format_date(
        DateValue {
            wall_clock: now(context)?,
            kind: DateKind::Utc,
        },
        format,
        context.local_offset,
    )
}

pub(super) fn add_hours(
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
) -> Option<String> {
    shift_date(input, options, context, 3_600_000.0)
}

pub(super) fn add_days(
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
) -> Option<String> {
    shift_date(input, options, context, 86_400_000.0)
}

/// Shifts by a (possibly fractional) amount, rounded to the millisecond as .NET does, and
/// prints as `O`, keeping the input's kind of zone.
fn shift_date(
    input: Option<&str>,
    options: &[String],
    context: &FilterContext,
    milliseconds_per_unit: f64,
) -> Option<String> {
    let input = input?;
    let [amount] = options else { return None };
    let amount = numbers::parse_double(amount)?;
    let milliseconds = (amount * milliseconds_per_unit).round();
    if !milliseconds.is_finite() || milliseconds.abs() > 3.2e14 {
        return None;
    }
    // The range check above keeps the value well inside i64.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "bounded by the range check above"
    )]
    let shift = Duration::milliseconds(milliseconds as i64);
    let (wall_clock, zone) = parse_date_text(input)?;
    let kind = match zone {
        ParsedZone::None => DateKind::Unspecified,
        ParsedZone::Utc => DateKind::Utc,
        ParsedZone::Offset(offset) => DateKind::Offset(offset),
    };
    let shifted = wall_clock.checked_add_signed(shift)?;
    format_date(
        DateValue {
            wall_clock: shifted,
            kind,
        },
        "O",
        context.local_offset,
    )
}
