//! .NET number parsing and formatting (en-US culture): the round-trip `double` text used by
//! `calc` and JSON values, and the standard (`C`, `N2`, `E`, ...) and custom (`0.00`, `#,##0`)
//! format strings of the `Format` filter.
//!
//! Numbers are handled as decimal digit strings so that decimal values format exactly and
//! rounding is .NET's "half away from zero".

/// A finite number as decimal digits: `0.d1d2d3… × 10^point`, with no leading or trailing
/// zero digits (zero has no digits).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DecimalDigits {
    pub(crate) negative: bool,
    pub(crate) digits: Vec<u8>,
    pub(crate) point: i32,
    /// Fraction digits as written, which .NET `decimal` keeps for `G` and plain printing.
    pub(crate) scale: u32,
}

/// The kind of .NET value being formatted; some format strings only apply to some kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberKind {
    Integer,
    Decimal,
    Double,
}

impl DecimalDigits {
    fn normalised(negative: bool, mut digits: Vec<u8>, mut point: i32, scale: u32) -> Self {
        let leading_zeros = digits.iter().take_while(|&&digit| digit == 0).count();
        digits.drain(..leading_zeros);
        point -= i32::try_from(leading_zeros).unwrap_or(0);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            point = 0;
        }
        DecimalDigits {
            negative,
            digits,
            point,
            scale,
        }
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// From Rust's shortest round-trip rendering of a double.
    pub(crate) fn from_double(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let scientific = format!("{:e}", value.abs());
        let (mantissa, exponent) = scientific.split_once('e')?;
        let exponent: i32 = exponent.parse().ok()?;
        let digits: Vec<u8> = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|byte| byte - b'0')
            .collect();
        Some(Self::normalised(
            value.is_sign_negative(),
            digits,
            exponent + 1,
            0,
        ))
    }

    /// Parses plain decimal text (`-12.340`); the caller has already validated the shape.
    fn from_plain(negative: bool, integer_digits: &str, fraction_digits: &str) -> Self {
        let digits: Vec<u8> = integer_digits
            .bytes()
            .chain(fraction_digits.bytes())
            .map(|byte| byte - b'0')
            .collect();
        let point = i32::try_from(integer_digits.len()).unwrap_or(i32::MAX);
        Self::normalised(
            negative,
            digits,
            point,
            u32::try_from(fraction_digits.len()).unwrap_or(0),
        )
    }

    fn shifted(&self, places: i32) -> Self {
        let mut shifted = self.clone();
        if !shifted.is_zero() {
            shifted.point += places;
        }
        shifted
    }

    /// Keeps `count` significant digits, rounding half away from zero.
    fn rounded_to_significant(&self, count: i32) -> Self {
        let Ok(count) = usize::try_from(count) else {
            return Self::normalised(self.negative, Vec::new(), 0, self.scale);
        };
        if count >= self.digits.len() {
            return self.clone();
        }
        let round_up = self.digits[count] >= 5;
        let mut digits = self.digits[..count].to_vec();
        let mut point = self.point;
        if round_up {
            let mut carry_index = count;
            loop {
                if carry_index == 0 {
                    digits.insert(0, 1);
                    point += 1;
                    break;
                }
                carry_index -= 1;
                if digits[carry_index] == 9 {
                    digits[carry_index] = 0;
                } else {
                    digits[carry_index] += 1;
                    break;
                }
            }
        }
        Self::normalised(self.negative, digits, point, self.scale)
    }

    /// Keeps `decimals` digits after the point, rounding half away from zero.
    fn rounded_to_decimals(&self, decimals: i32) -> Self {
        let keep = self.point.saturating_add(decimals);
        if keep < 0 {
            return Self::normalised(self.negative, Vec::new(), 0, self.scale);
        }
        if keep == 0 {
            // Only the rounding digit remains: 0.5 rounds up to 1 in the last kept place.
            if self.digits.first().is_some_and(|&digit| digit >= 5) {
                return Self::normalised(self.negative, vec![1], self.point + 1, self.scale);
            }
            return Self::normalised(self.negative, Vec::new(), 0, self.scale);
        }
        self.rounded_to_significant(keep)
    }

    fn integer_digits(&self) -> String {
        if self.point <= 0 {
            return String::new();
        }
        let point = usize::try_from(self.point).unwrap_or(0);
        (0..point)
            .map(|index| char::from(b'0' + self.digits.get(index).copied().unwrap_or(0)))
            .collect()
    }

    /// Exactly `count` fraction digits, padded with zeros.
    fn fraction_digits(&self, count: usize) -> String {
        (0..count)
            .map(|offset| {
                let index = i64::from(self.point) + i64::try_from(offset).unwrap_or(0);
                let digit = usize::try_from(index)
                    .ok()
                    .and_then(|index| self.digits.get(index))
                    .copied()
                    .unwrap_or(0);
                char::from(b'0' + digit)
            })
            .collect()
    }

    /// The fraction digits that are significant (no trailing zeros).
    fn significant_fraction_digits(&self) -> String {
        let count = i64::try_from(self.digits.len()).unwrap_or(0) - i64::from(self.point);
        self.fraction_digits(usize::try_from(count).unwrap_or(0))
    }
}

const MAXIMUM_PRECISION: usize = 99;

/// .NET Core 3.0+ `double.ToString()`: shortest round-trip digits, scientific notation from
/// an exponent of 15 up or below -5.
pub(crate) fn format_double_round_trip(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "∞".to_string()
        } else {
            "-∞".to_string()
        };
    }
    let Some(number) = DecimalDigits::from_double(value) else {
        return "NaN".to_string();
    };
    if number.is_zero() {
        return if value.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    general_format(&number, 15, 'E', 2)
}

/// Shared by `G` and round-trip printing: fixed notation unless the exponent is at least
/// `precision` or below -5.
fn general_format(
    number: &DecimalDigits,
    precision: i32,
    exponent_symbol: char,
    minimum_exponent_digits: usize,
) -> String {
    let sign = if number.negative && !number.is_zero() {
        "-"
    } else {
        ""
    };
    if number.is_zero() {
        return "0".to_string();
    }
    let exponent = number.point - 1;
    if exponent >= precision || exponent < -5 {
        let mantissa_rest: String = number.digits[1..]
            .iter()
            .map(|&digit| char::from(b'0' + digit))
            .collect();
        let mantissa = if mantissa_rest.is_empty() {
            char::from(b'0' + number.digits[0]).to_string()
        } else {
            format!("{}.{mantissa_rest}", char::from(b'0' + number.digits[0]))
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{mantissa}{exponent_symbol}{exponent_sign}{:0minimum_exponent_digits$}",
            exponent.abs()
        );
    }
    let integer = number.integer_digits();
    let integer = if integer.is_empty() {
        "0".to_string()
    } else {
        integer
    };
    let fraction = number.significant_fraction_digits();
    if fraction.is_empty() {
        format!("{sign}{integer}")
    } else {
        format!("{sign}{integer}.{fraction}")
    }
}

/// .NET `double.TryParse` in en-US: whitespace, sign, thousands separators, exponent.
pub(crate) fn parse_double(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    match trimmed {
        "∞" | "Infinity" => return Some(f64::INFINITY),
        "-∞" | "-Infinity" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    let without_groups: String = trimmed
        .chars()
        .filter(|&character| character != ',')
        .collect();
    let valid = !without_groups.is_empty()
        && without_groups.chars().all(|character| {
            character.is_ascii_digit() || matches!(character, '+' | '-' | '.' | 'e' | 'E')
        });
    if !valid || trimmed.starts_with(',') {
        return None;
    }
    without_groups.parse::<f64>().ok()
}

/// .NET `decimal.TryParse` in en-US (`NumberStyles.Number`): no exponent.
pub(crate) fn parse_decimal(text: &str) -> Option<DecimalDigits> {
    let trimmed = text.trim();
    let (negative, unsigned) = if let Some(rest) = trimmed.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = trimmed.strip_suffix('-') {
        (true, rest)
    } else {
        (false, trimmed.strip_prefix('+').unwrap_or(trimmed))
    };
    let (integer_part, fraction_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if integer_part.starts_with(',') {
        return None;
    }
    let integer_digits: String = integer_part
        .chars()
        .filter(|&character| character != ',')
        .collect();
    if (integer_digits.is_empty() && fraction_part.is_empty())
        || !integer_digits
            .chars()
            .all(|character| character.is_ascii_digit())
        || !fraction_part
            .chars()
            .all(|character| character.is_ascii_digit())
        || integer_digits.len() + fraction_part.len() > 29
    {
        return None;
    }
    Some(DecimalDigits::from_plain(
        negative,
        &integer_digits,
        fraction_part,
    ))
}

/// .NET `int.TryParse` (`NumberStyles.Integer`).
pub(crate) fn parse_integer(text: &str) -> Option<DecimalDigits> {
    let trimmed = text.trim();
    let value: i64 = trimmed.strip_prefix('+').unwrap_or(trimmed).parse().ok()?;
    i32::try_from(value).ok()?;
    let digits = value.unsigned_abs().to_string();
    Some(DecimalDigits::from_plain(value < 0, &digits, ""))
}

fn group_thousands(integer: &str) -> String {
    let length = integer.len();
    let mut grouped = String::with_capacity(length + length / 3);
    for (index, character) in integer.chars().enumerate() {
        if index > 0 && (length - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(character);
    }
    grouped
}

fn fixed_text(number: &DecimalDigits, decimals: usize, grouped: bool) -> String {
    let integer = number.integer_digits();
    let integer = if integer.is_empty() {
        "0".to_string()
    } else {
        integer
    };
    let integer = if grouped {
        group_thousands(&integer)
    } else {
        integer
    };
    if decimals == 0 {
        integer
    } else {
        format!("{integer}.{}", number.fraction_digits(decimals))
    }
}

/// Formats a number with a .NET numeric format string; `None` where .NET throws.
pub(crate) fn format_number(
    number: &DecimalDigits,
    kind: NumberKind,
    format: &str,
) -> Option<String> {
    let mut characters = format.chars();
    let Some(letter) = characters.next() else {
        return format_number(number, kind, "G");
    };
    let precision_text: String = characters.collect();
    let is_standard = letter.is_ascii_alphabetic()
        && precision_text.len() <= 9
        && precision_text
            .chars()
            .all(|character| character.is_ascii_digit());
    if !is_standard {
        return Some(format_custom(number, format));
    }
    let precision: Option<usize> = if precision_text.is_empty() {
        None
    } else {
        precision_text.parse().ok()
    };
    // .NET Framework's limit; it also keeps a hostile `F999999999` from allocating gigabytes.
    if precision.is_some_and(|precision| precision > MAXIMUM_PRECISION) {
        return None;
    }
    let sign = |value: &DecimalDigits| {
        if value.negative && !value.is_zero() {
            "-"
        } else {
            ""
        }
    };
    let decimals = |default: usize| i32::try_from(precision.unwrap_or(default)).unwrap_or(i32::MAX);
    match letter.to_ascii_uppercase() {
        'C' => {
            let rounded = number.rounded_to_decimals(decimals(2));
            Some(format!(
                "{}${}",
                sign(&rounded),
                fixed_text(&rounded, precision.unwrap_or(2), true)
            ))
        }
        'F' => {
            let rounded = number.rounded_to_decimals(decimals(2));
            Some(format!(
                "{}{}",
                sign(&rounded),
                fixed_text(&rounded, precision.unwrap_or(2), false)
            ))
        }
        'N' => {
            let rounded = number.rounded_to_decimals(decimals(2));
            Some(format!(
                "{}{}",
                sign(&rounded),
                fixed_text(&rounded, precision.unwrap_or(2), true)
            ))
        }
        'P' => {
            let rounded = number.shifted(2).rounded_to_decimals(decimals(2));
            Some(format!(
                "{}{}%",
                sign(&rounded),
                fixed_text(&rounded, precision.unwrap_or(2), true)
            ))
        }
        'D' if kind == NumberKind::Integer => {
            let integer = number.integer_digits();
            let integer = if integer.is_empty() {
                "0".to_string()
            } else {
                integer
            };
            Some(format!(
                "{}{integer:0>width$}",
                sign(number),
                width = precision.unwrap_or(0)
            ))
        }
        'X' if kind == NumberKind::Integer => {
            let magnitude: i64 = number.integer_digits().parse().unwrap_or(0);
            let value = if number.negative {
                -magnitude
            } else {
                magnitude
            };
            let bits = u32::from_ne_bytes(i32::try_from(value).unwrap_or(0).to_ne_bytes());
            let hex = if letter == 'X' {
                format!("{bits:X}")
            } else {
                format!("{bits:x}")
            };
            Some(format!("{hex:0>width$}", width = precision.unwrap_or(0)))
        }
        'E' => {
            let significant = i32::try_from(precision.unwrap_or(6))
                .unwrap_or(i32::MAX)
                .saturating_add(1);
            let rounded = number.rounded_to_significant(significant);
            let exponent = if rounded.is_zero() {
                0
            } else {
                rounded.point - 1
            };
            let mantissa = DecimalDigits {
                point: 1,
                ..rounded.clone()
            };
            let mantissa_text = fixed_text(&mantissa, precision.unwrap_or(6), false);
            let exponent_sign = if exponent < 0 { '-' } else { '+' };
            let symbol = if letter == 'E' { 'E' } else { 'e' };
            Some(format!(
                "{}{mantissa_text}{symbol}{exponent_sign}{:03}",
                sign(&rounded),
                exponent.abs()
            ))
        }
        'G' => {
            let symbol = if letter == 'G' { 'E' } else { 'e' };
            match (precision.filter(|&precision| precision > 0), kind) {
                (None, NumberKind::Decimal) => Some(plain_decimal(number)),
                (None, NumberKind::Integer) => Some(plain_decimal(number)),
                (None, NumberKind::Double) => Some(general_format(number, 15, symbol, 2)),
                (Some(precision), _) => {
                    let precision = i32::try_from(precision).unwrap_or(i32::MAX);
                    Some(general_format(
                        &number.rounded_to_significant(precision),
                        precision,
                        symbol,
                        2,
                    ))
                }
            }
        }
        'R' if kind == NumberKind::Double => Some(general_format(number, 15, 'E', 2)),
        _ => None,
    }
}

/// A .NET `decimal` printed plainly keeps its written scale (`23.40` stays `23.40`).
fn plain_decimal(number: &DecimalDigits) -> String {
    let sign = if number.negative && !number.is_zero() {
        "-"
    } else {
        ""
    };
    let scale = usize::try_from(number.scale).unwrap_or(0);
    format!("{sign}{}", fixed_text(number, scale, false))
}

/// One section of a custom numeric format, split into what matters for formatting.
enum FormatPart {
    Literal(String),
    DigitPlaceholder {
        is_zero: bool,
    },
    DecimalPoint,
    Exponent {
        symbol: char,
        always_sign: bool,
        minimum_digits: usize,
    },
}

fn split_sections(format: &str) -> Vec<String> {
    let mut sections = vec![String::new()];
    let mut quote: Option<char> = None;
    let mut characters = format.chars();
    while let Some(character) = characters.next() {
        let current = sections
            .last_mut()
            .expect("sections starts non-empty and only grows");
        match (quote, character) {
            (Some(open), close) if close == open => {
                quote = None;
                current.push(character);
            }
            (Some(_), _) => current.push(character),
            (None, '\'' | '"') => {
                quote = Some(character);
                current.push(character);
            }
            (None, '\\') => {
                current.push(character);
                if let Some(escaped) = characters.next() {
                    current.push(escaped);
                }
            }
            (None, ';') => sections.push(String::new()),
            (None, _) => current.push(character),
        }
    }
    sections
}

/// Custom numeric formats: `0`, `#`, `.`, `,` (grouping or scaling), `%`, `‰`, `E+0`,
/// quoted literals, `\` escapes and `;` sections.
fn format_custom(number: &DecimalDigits, format: &str) -> String {
    let sections = split_sections(format);
    let (section, add_minus) = match sections.len() {
        1 => (sections[0].as_str(), number.negative),
        _ if number.is_zero() && sections.len() >= 3 && !sections[2].is_empty() => {
            (sections[2].as_str(), false)
        }
        _ if number.negative && !sections[1].is_empty() => (sections[1].as_str(), false),
        _ => (sections[0].as_str(), number.negative),
    };

    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut characters = section.chars().peekable();
    let mut seen_point = false;
    let mut integer_commas_pending = 0;
    let mut uses_grouping = false;
    let mut scaling_commas = 0;
    let mut seen_integer_placeholder = false;
    let mut percent_shift = 0;
    let flush = |literal: &mut String, parts: &mut Vec<FormatPart>| {
        if !literal.is_empty() {
            parts.push(FormatPart::Literal(std::mem::take(literal)));
        }
    };
    while let Some(character) = characters.next() {
        match character {
            '0' | '#' => {
                if integer_commas_pending > 0 && !seen_point && seen_integer_placeholder {
                    uses_grouping = true;
                }
                integer_commas_pending = 0;
                if !seen_point {
                    seen_integer_placeholder = true;
                }
                flush(&mut literal, &mut parts);
                parts.push(FormatPart::DigitPlaceholder {
                    is_zero: character == '0',
                });
            }
            '.' if !seen_point => {
                scaling_commas += integer_commas_pending;
                integer_commas_pending = 0;
                seen_point = true;
                flush(&mut literal, &mut parts);
                parts.push(FormatPart::DecimalPoint);
            }
            ',' if !seen_point => integer_commas_pending += 1,
            ',' => {}
            '%' => {
                percent_shift += 2;
                literal.push('%');
            }
            '‰' => {
                percent_shift += 3;
                literal.push('‰');
            }
            'E' | 'e' if matches!(characters.peek(), Some('0' | '+' | '-')) => {
                let mut always_sign = false;
                if let Some(&sign) = characters.peek()
                    && (sign == '+' || sign == '-')
                {
                    always_sign = sign == '+';
                    characters.next();
                }
                let mut minimum_digits = 0;
                while characters.peek() == Some(&'0') {
                    characters.next();
                    minimum_digits += 1;
                }
                flush(&mut literal, &mut parts);
                parts.push(FormatPart::Exponent {
                    symbol: character,
                    always_sign,
                    minimum_digits: minimum_digits.max(1),
                });
            }
            '\\' => {
                if let Some(escaped) = characters.next() {
                    literal.push(escaped);
                }
            }
            '\'' | '"' => {
                for quoted in characters.by_ref() {
                    if quoted == character {
                        break;
                    }
                    literal.push(quoted);
                }
            }
            other => literal.push(other),
        }
    }
    if !seen_point {
        scaling_commas += integer_commas_pending;
    }
    flush(&mut literal, &mut parts);

    let integer_placeholders: Vec<bool> = parts
        .iter()
        .take_while(|part| !matches!(part, FormatPart::DecimalPoint | FormatPart::Exponent { .. }))
        .filter_map(|part| match part {
            FormatPart::DigitPlaceholder { is_zero } => Some(*is_zero),
            _ => None,
        })
        .collect();
    let fraction_placeholders: Vec<bool> = parts
        .iter()
        .skip_while(|part| !matches!(part, FormatPart::DecimalPoint))
        .take_while(|part| !matches!(part, FormatPart::Exponent { .. }))
        .filter_map(|part| match part {
            FormatPart::DigitPlaceholder { is_zero } => Some(*is_zero),
            _ => None,
        })
        .collect();
    let exponent_part = parts.iter().find_map(|part| match part {
        FormatPart::Exponent {
            symbol,
            always_sign,
            minimum_digits,
        } => Some((*symbol, *always_sign, *minimum_digits)),
        _ => None,
    });

    let mut value = number.shifted(percent_shift - 3 * scaling_commas);
    let mut exponent_value = 0;
    let fraction_total = i32::try_from(fraction_placeholders.len()).unwrap_or(0);
    if exponent_part.is_some() {
        let integer_count = i32::try_from(integer_placeholders.len().max(1)).unwrap_or(1);
        if !value.is_zero() {
            exponent_value = value.point - integer_count;
            value = value.shifted(-exponent_value);
        }
        value = value.rounded_to_significant(integer_count + fraction_total);
        if value.point > integer_count {
            exponent_value += value.point - integer_count;
            value = value.shifted(integer_count - value.point);
        }
    } else {
        value = value.rounded_to_decimals(fraction_total);
    }

    let minimum_integer_digits = integer_placeholders
        .iter()
        .position(|&is_zero| is_zero)
        .map_or(0, |first_zero| integer_placeholders.len() - first_zero);
    let mut integer_digits = value.integer_digits();
    if integer_digits.len() < minimum_integer_digits {
        integer_digits = format!("{integer_digits:0>minimum_integer_digits$}");
    }
    let minimum_fraction_digits = fraction_placeholders
        .iter()
        .rposition(|&is_zero| is_zero)
        .map_or(0, |last_zero| last_zero + 1);
    let significant_fraction = value.significant_fraction_digits();
    let fraction_count = significant_fraction
        .len()
        .clamp(minimum_fraction_digits, fraction_placeholders.len());
    let fraction_digits = value.fraction_digits(fraction_count);

    let mut output = String::new();
    let digit_count = integer_digits.len();
    let digit_chars: Vec<char> = integer_digits.chars().collect();
    let mut integer_placeholders_left = integer_placeholders.len();
    let mut fraction_index = 0;
    let mut in_fraction = false;
    let push_integer_digit = |output: &mut String, position_from_right: usize| {
        if let Some(&digit) = digit_chars.get(digit_count - position_from_right) {
            output.push(digit);
            if uses_grouping
                && position_from_right > 1
                && (position_from_right - 1).is_multiple_of(3)
            {
                output.push(',');
            }
        }
    };
    for part in &parts {
        match part {
            FormatPart::Literal(text) => output.push_str(text),
            FormatPart::DigitPlaceholder { .. } if !in_fraction => {
                if integer_placeholders_left == integer_placeholders.len() {
                    // Digits beyond the placeholders all go where the first placeholder is.
                    for position_from_right in (integer_placeholders_left + 1..=digit_count).rev() {
                        push_integer_digit(&mut output, position_from_right);
                    }
                }
                if integer_placeholders_left <= digit_count {
                    push_integer_digit(&mut output, integer_placeholders_left);
                }
                integer_placeholders_left -= 1;
            }
            FormatPart::DigitPlaceholder { .. } => {
                if let Some(digit) = fraction_digits.chars().nth(fraction_index) {
                    output.push(digit);
                }
                fraction_index += 1;
            }
            FormatPart::DecimalPoint => {
                in_fraction = true;
                if integer_placeholders.is_empty() && digit_count > 0 {
                    output.push_str(&integer_digits);
                }
                if fraction_count > 0 {
                    output.push('.');
                }
            }
            FormatPart::Exponent {
                symbol,
                always_sign,
                minimum_digits,
            } => {
                in_fraction = true;
                let exponent_sign = if exponent_value < 0 {
                    "-"
                } else if *always_sign {
                    "+"
                } else {
                    ""
                };
                output.push_str(&format!(
                    "{symbol}{exponent_sign}{:0width$}",
                    exponent_value.abs(),
                    width = *minimum_digits
                ));
            }
        }
    }
    let is_rounded_zero = value.is_zero();
    let minus = if add_minus && (!is_rounded_zero || number.negative && !number.is_zero()) {
        "-"
    } else {
        ""
    };
    format!("{minus}{output}")
}
