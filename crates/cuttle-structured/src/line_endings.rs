//! The "most common line ending" rule Calamari uses when it re-serialises a file.

/// The line ending a rewritten file should use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineEnding {
    /// `\r\n`
    Dos,
    /// `\n`
    Unix,
}

impl LineEnding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LineEnding::Dos => "\r\n",
            LineEnding::Unix => "\n",
        }
    }
}

/// Counts `\r\n` against lone `\n` (a lone `\r` counts as neither, as in Calamari's
/// `GetMostCommonLineEnding`). A tie goes to whichever appeared first, and text without any line
/// break counts as DOS, both because that is what Calamari's LINQ grouping does.
pub(crate) fn most_common_line_ending(text: &str) -> LineEnding {
    let bytes = text.as_bytes();
    let mut dos_count = 0usize;
    let mut unix_count = 0usize;
    let mut first_seen = None;
    for (byte_idx, byte) in bytes.iter().enumerate() {
        if *byte != b'\n' {
            continue;
        }
        let ending = if byte_idx > 0 && bytes[byte_idx - 1] == b'\r' {
            dos_count += 1;
            LineEnding::Dos
        } else {
            unix_count += 1;
            LineEnding::Unix
        };
        first_seen.get_or_insert(ending);
    }
    if dos_count > unix_count {
        LineEnding::Dos
    } else if unix_count > dos_count {
        LineEnding::Unix
    } else {
        first_seen.unwrap_or(LineEnding::Dos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_dos_and_unix_endings() {
        assert_eq!(most_common_line_ending("a\nb\r\nc\n"), LineEnding::Unix);
        assert_eq!(most_common_line_ending("a\r\nb\r\nc\n"), LineEnding::Dos);
        assert_eq!(most_common_line_ending("no breaks"), LineEnding::Dos);
        assert_eq!(most_common_line_ending("a\nb\r\n"), LineEnding::Unix);
        assert_eq!(most_common_line_ending("a\r\nb\n"), LineEnding::Dos);
    }
}
