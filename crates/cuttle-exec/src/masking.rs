//! Masking sensitive values in log text: every occurrence becomes `********`.
//!
//! Rules (variables spec B5): plain substring replacement; values of 3 characters or fewer
//! are not masked (they would mask half the log); where secrets overlap, the longest match at
//! the leftmost position wins, in one pass (Aho-Corasick, leftmost-longest), so a short secret
//! inside a long one never leaves part of the long one visible. A multi-line secret is also
//! masked line by line, because the log is split into lines before it is masked.

use aho_corasick::{AhoCorasick, MatchKind};

/// What a masked value is replaced with.
pub const MASK: &str = "********";

/// Values this short are not masked.
pub const MIN_MASKED_LENGTH: usize = 4;

/// A growing set of secrets and the matcher built from them.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    secrets: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Masker {
    /// A masker for these values (short ones are ignored).
    pub fn new<'value>(values: impl IntoIterator<Item = &'value str>) -> Masker {
        let mut masker = Masker::default();
        for value in values {
            masker.push(value);
        }
        masker.rebuild();
        masker
    }

    /// Adds one more secret (e.g. a sensitive output variable set at run time).
    pub fn add(&mut self, value: &str) {
        if self.push(value) {
            self.rebuild();
        }
    }

    /// Whether nothing would be masked.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn push(&mut self, value: &str) -> bool {
        let mut changed = false;
        let mut candidates = vec![value];
        if value.contains('\n') {
            candidates.extend(value.lines().map(|line| line.trim_end_matches('\r')));
        }
        for candidate in candidates {
            if candidate.chars().count() >= MIN_MASKED_LENGTH
                && !self.secrets.iter().any(|secret| secret == candidate)
            {
                self.secrets.push(candidate.to_owned());
                changed = true;
            }
        }
        changed
    }

    fn rebuild(&mut self) {
        self.matcher = if self.secrets.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&self.secrets)
                .ok()
        };
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        match &self.matcher {
            Some(matcher) => {
                let mut masked = String::with_capacity(text.len());
                matcher.replace_all_with(text, &mut masked, |_, _, masked| {
                    masked.push_str(MASK);
                    true
                });
                masked
            }
            None => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_masked() {
        let masker = Masker::new(["hunter22"]);
        assert_eq!(
            masker.mask("pw=hunter22 again hunter22."),
            "pw=******** again ********."
        );
    }

    #[test]
    fn short_values_are_not_masked() {
        let masker = Masker::new(["abc", "", "x"]);
        assert!(masker.is_empty());
        assert_eq!(masker.mask("abc x"), "abc x");
        assert_eq!(Masker::new(["abcd"]).mask("abcde"), "********e");
    }

    #[test]
    fn the_longest_secret_wins() {
        let masker = Masker::new(["pass", "password123"]);
        assert_eq!(masker.mask("password123 pass"), "******** ********");
        // Overlapping secrets: nothing of either stays visible where the longer one starts.
        let masker = Masker::new(["abcdef", "defghi"]);
        assert_eq!(masker.mask("abcdefghi"), "********ghi");
    }

    #[test]
    fn secrets_added_later_are_masked_from_then_on() {
        let mut masker = Masker::new([]);
        assert_eq!(masker.mask("token-1234"), "token-1234");
        masker.add("token-1234");
        masker.add("token-1234");
        assert_eq!(masker.mask("token-1234"), "********");
    }

    #[test]
    fn multi_line_secrets_are_masked_per_line() {
        let masker = Masker::new(["line-one\r\nline-two\nab"]);
        assert_eq!(masker.mask("x line-one y"), "x ******** y");
        assert_eq!(masker.mask("line-two"), "********");
        assert_eq!(masker.mask("ab"), "ab");
    }
}
