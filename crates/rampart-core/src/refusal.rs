//! Refusal detection: is this answer the model declining to help?
//!
//! An answer is a refusal when the provider says so (OpenAI's `message.refusal` field is set,
//! or `finish_reason = "content_filter"`), or when its text contains one of the configured
//! phrases (case-insensitive; defaults in [`crate::config::DEFAULT_REFUSAL_PHRASES`]).

/// Whether an answer is a refusal.
///
/// `phrases` must be lower-case (the validated config guarantees it).
pub fn is_refusal(
    text: Option<&str>,
    refusal_field: Option<&str>,
    finish_reason: Option<&str>,
    phrases: &[String],
) -> bool {
    if refusal_field.is_some_and(|r| !r.trim().is_empty()) {
        return true;
    }
    if finish_reason == Some("content_filter") {
        return true;
    }
    let Some(text) = text else { return false };
    // Refusals announce themselves early; bound the work on long answers.
    let head: String = text.chars().take(400).collect::<String>().to_lowercase();
    let head = head.replace('’', "'");
    phrases.iter().any(|p| head.contains(p.as_str()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_REFUSAL_PHRASES;

    fn phrases() -> Vec<String> {
        DEFAULT_REFUSAL_PHRASES
            .iter()
            .map(|s| s.to_string())
            .collect()
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
}
