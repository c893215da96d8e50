//! Certificate thumbprints: the SHA-256 of a certificate's DER bytes as 64 upper-case hex
//! digits, the one form used for comparison, storage and display.
//!
//! Input from people (configuration, the command line, the API) is normalized first, so a
//! thumbprint pasted from another tool compares equal to the one computed here.

use sha2::{Digest as _, Sha256};

const THUMBPRINT_HEX_DIGITS: usize = 64;

/// Prefixes other tools print before a fingerprint (`openssl x509 -fingerprint -sha256`), in
/// lower case; they are stripped case-insensitively.
const KNOWN_PREFIXES: [&str; 2] = ["sha256 fingerprint=", "sha256:"];

/// The thumbprint of a DER-encoded certificate: SHA-256, 64 upper-case hex digits.
pub fn thumbprint_of_der(der: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(der))
}

/// The canonical form (64 upper-case hex digits) of a thumbprint as a person might write it, or
/// `None` when it is not one.
///
/// Accepts either case and bytes separated by colons or white space (`ab:cd:…`, `AB CD …`),
/// groups of any even length (`ABCD EF01 …`), and an optional `sha256:` or
/// `SHA256 Fingerprint=` prefix. Surrounding white space is ignored.
pub fn normalize_thumbprint(text: &str) -> Option<String> {
    let mut text = text.trim();
    for prefix in KNOWN_PREFIXES {
        if let Some(head) = text.get(..prefix.len())
            && head.eq_ignore_ascii_case(prefix)
        {
            text = text.get(prefix.len()..).unwrap_or_default().trim_start();
            break;
        }
    }
    let mut canonical = String::with_capacity(THUMBPRINT_HEX_DIGITS);
    for group in text
        .split(|character: char| character == ':' || character.is_whitespace())
        .filter(|group| !group.is_empty())
    {
        // A separator may only fall between two bytes.
        if group.len() % 2 != 0 || !group.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        canonical.push_str(&group.to_ascii_uppercase());
    }
    (canonical.len() == THUMBPRINT_HEX_DIGITS).then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

    fn check(text: &str, expected: Option<&str>) {
        assert_eq!(
            normalize_thumbprint(text).as_deref(),
            expected,
            "normalizing {text:?}"
        );
    }

    fn with_separator(separator: &str, lower: bool) -> String {
        let hex = if lower {
            CANONICAL.to_ascii_lowercase()
        } else {
            CANONICAL.to_owned()
        };
        let bytes: Vec<&str> = (0..hex.len())
            .step_by(2)
            .map(|index| &hex[index..index + 2])
            .collect();
        bytes.join(separator)
    }

    #[test]
    fn accepted_forms_normalize_to_upper_case_hex() {
        check(CANONICAL, Some(CANONICAL));
        check(&CANONICAL.to_ascii_lowercase(), Some(CANONICAL));
        check(&format!("  {CANONICAL}\n"), Some(CANONICAL));
        check(&with_separator(":", false), Some(CANONICAL));
        check(&with_separator(":", true), Some(CANONICAL));
        check(&with_separator(" ", true), Some(CANONICAL));
        check(&with_separator("  ", false), Some(CANONICAL));
        check(&format!("sha256:{CANONICAL}"), Some(CANONICAL));
        check(
            &format!("SHA256 Fingerprint={}", with_separator(":", false)),
            Some(CANONICAL),
        );
        let mixed = format!(
            "{}{}",
            &CANONICAL[..32],
            CANONICAL[32..].to_ascii_lowercase()
        );
        check(&mixed, Some(CANONICAL));
        let fours: Vec<&str> = (0..64).step_by(4).map(|i| &CANONICAL[i..i + 4]).collect();
        check(&fours.join(" "), Some(CANONICAL));
    }

    #[test]
    fn other_text_is_not_a_thumbprint() {
        check("", None);
        check("   ", None);
        check(&CANONICAL[..62], None);
        check(&format!("{CANONICAL}00"), None);
        check(&CANONICAL.replace('A', "G"), None);
        check(&format!("0{}", &CANONICAL[1..63]), None);
        // A separator inside a byte.
        check(&format!("0:{}", &CANONICAL[1..]), None);
        check(&CANONICAL.replacen("00", "0-0", 1), None);
        // SHA-1 thumbprints, as Octopus used, are too short.
        check("0123456789ABCDEF0123456789ABCDEF01234567", None);
    }

    #[test]
    fn thumbprints_are_sha256_of_der_in_upper_case_hex() {
        assert_eq!(
            thumbprint_of_der(b"abc"),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }
}
