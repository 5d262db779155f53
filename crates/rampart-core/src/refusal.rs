//! Refusal detection: is this answer the model declining to help?
//!
//! An answer is a refusal when the provider says so (OpenAI's `message.refusal` field is set,
//! or `finish_reason = "content_filter"`), or when its text contains one of the configured
//! phrases (case-insensitive; defaults in [`crate::config::DEFAULT_REFUSAL_PHRASES`]).

use aho_corasick::AhoCorasick;

/// How much of an answer is searched: refusals announce themselves early, and this bounds the
/// work on long answers.
const HEAD_CHARS: usize = 400;

/// The configured refusal phrases, lower-cased, with a matcher for all of them built once.
#[derive(Debug, Clone)]
pub struct Phrases {
    list: Vec<String>,
    /// Every phrase in one automaton folding ASCII case: one pass over an answer whose head is
    /// ASCII (the usual case) instead of a lower-cased copy searched phrase by phrase. `None`
    /// only when the phrases are too many for an automaton; the copy is searched then.
    ascii: Option<AhoCorasick>,
}

impl Phrases {
    /// Lower-cases each phrase; blank ones are dropped.
    pub fn new(phrases: impl IntoIterator<Item = String>) -> Phrases {
        let list: Vec<String> = phrases
            .into_iter()
            .map(|p| p.to_lowercase())
            .filter(|p| !p.trim().is_empty())
            .collect();
        let ascii = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&list)
            .ok();
        Phrases { list, ascii }
    }

    /// The phrases, lower-cased.
    pub fn as_slice(&self) -> &[String] {
        &self.list
    }

    /// Whether the first [`HEAD_CHARS`] characters of `text` contain a phrase, ignoring case
    /// (Unicode lower-casing) and reading a typographic apostrophe (’) as `'`.
    fn found_in(&self, text: &str) -> bool {
        let head = text.as_bytes().get(..HEAD_CHARS).unwrap_or(text.as_bytes());
        if let Some(ac) = &self.ascii
            && head.is_ascii()
        {
            // ASCII: these bytes are the first HEAD_CHARS characters, lower-casing them is
            // ASCII folding, and they hold no ’. A phrase with non-ASCII letters cannot match
            // here either way.
            return ac.is_match(head);
        }
        by_lowered_copy(text, &self.list)
    }
}

/// The definition the automaton agrees with: lower-case the head, read ’ as ', and look for
/// each phrase in turn.
fn by_lowered_copy(text: &str, phrases: &[String]) -> bool {
    let head = text
        .chars()
        .take(HEAD_CHARS)
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    phrases.iter().any(|p| head.contains(p.as_str()))
}

/// Whether an answer is a refusal.
pub fn is_refusal(
    text: Option<&str>,
    refusal_field: Option<&str>,
    finish_reason: Option<&str>,
    phrases: &Phrases,
) -> bool {
    if refusal_field.is_some_and(|r| !r.trim().is_empty()) {
        return true;
    }
    if finish_reason == Some("content_filter") {
        return true;
    }
    text.is_some_and(|t| phrases.found_in(t))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_REFUSAL_PHRASES;

    fn phrases() -> Phrases {
        Phrases::new(DEFAULT_REFUSAL_PHRASES.iter().map(|s| s.to_string()))
    }

    #[test]
    fn detects_each_signal() {
        let p = phrases();
        assert!(is_refusal(None, Some("I can't do that"), None, &p));
        assert!(is_refusal(Some("ok"), None, Some("content_filter"), &p));
        assert!(is_refusal(
            Some("I’m sorry, but I can’t help with that."),
            None,
            Some("stop"),
            &p
        ));
        assert!(is_refusal(
            Some("I CANNOT HELP WITH this request"),
            None,
            None,
            &p
        ));
        assert!(!is_refusal(
            Some("Sure, here is how to reset your PIN."),
            None,
            Some("stop"),
            &p
        ));
        assert!(!is_refusal(None, Some("  "), None, &p));
        assert!(!is_refusal(Some(""), None, None, &p));
    }

    #[test]
    fn only_the_head_is_searched() {
        let p = phrases();
        let late = format!("{} I cannot help with that", "x".repeat(HEAD_CHARS));
        assert!(!is_refusal(Some(&late), None, None, &p));
        let straddling = format!("{}I cannot help with that", "é".repeat(HEAD_CHARS - 8));
        assert!(!is_refusal(Some(&straddling), None, None, &p));
        let early = format!("{}I cannot help with that", "é".repeat(10));
        assert!(is_refusal(Some(&early), None, None, &p));
    }

    proptest::proptest! {
        /// ASCII and non-ASCII answers, either case, curly apostrophes, phrases across the
        /// head's end: the one-pass matcher says what the definition says.
        #[test]
        fn the_matcher_agrees_with_the_definition(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "I can't help with", "I CAN’T HELP WITH", "i'm unable to help", "Ünable",
                    "sure", " ", "é", "’", "'", "x", "İ", "Straße", "help", "nicht möglich",
                ]),
                0..120,
            ),
            extra in proptest::sample::select(vec!["", "nicht möglich", "straße", "CAN"]),
        ) {
            let text: String = parts.concat();
            let mut list: Vec<String> =
                DEFAULT_REFUSAL_PHRASES.iter().map(|s| s.to_string()).collect();
            list.push(extra.to_string());
            let p = Phrases::new(list);
            proptest::prop_assert_eq!(
                is_refusal(Some(&text), None, None, &p),
                by_lowered_copy(&text, p.as_slice())
            );
        }
    }
}
