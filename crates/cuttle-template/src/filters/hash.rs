//! Hash filters: `Md5`, `Sha1`, `Sha256`, `Sha384`, `Sha512` with optional size and encoding.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::text::{decode_base64, encode_text, parse_int};

/// Options are `[size] [encoding]` in either order. Size counts digest bytes (two hex digits
/// each), must be positive and is capped at the digest length.
pub(super) fn hash(algorithm: &str, input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    if options.len() > 2 {
        return None;
    }
    let mut size: Option<usize> = None;
    let mut encoding: Option<String> = None;
    for option in options {
        if let Some(number) = parse_int(option) {
            if size.is_some() || number <= 0 {
                return None;
            }
            size = usize::try_from(number).ok();
        } else {
            let lower = option.to_lowercase();
            if encoding.is_some()
                || !matches!(lower.as_str(), "utf8" | "utf-8" | "unicode" | "base64")
            {
                return None;
            }
            encoding = Some(lower);
        }
    }
    let bytes = match encoding.as_deref() {
        Some("unicode") => encode_text(input, true),
        Some("base64") => decode_base64(input)?,
        _ => encode_text(input, false),
    };
    let digest: Vec<u8> = match algorithm {
        "md5" => Md5::digest(&bytes).to_vec(),
        "sha1" => Sha1::digest(&bytes).to_vec(),
        "sha256" => Sha256::digest(&bytes).to_vec(),
        "sha384" => Sha384::digest(&bytes).to_vec(),
        _ => Sha512::digest(&bytes).to_vec(),
    };
    let kept = size.unwrap_or(digest.len()).min(digest.len());
    Some(
        digest[..kept]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    )
}
