//! Pure text generation: the simulated answer to a prompt, in a given register.
//!
//! Invariants:
//! - [`answer`] is a pure function of `(style, length_factor, prompt, seed)`. The model's name
//!   plays no part, so two models of the same style and length factor give *identical* answers
//!   to the same prompt, and a different length factor only changes how many body sentences
//!   are kept (the opening, the sentence order and the closing stay the same).
//! - The answer is woven from the prompt's keywords ([`keywords`]): the opening names the topic
//!   and every body sentence mentions one keyword, so answers are about what was asked.
//! - Each style has its own family of openings ([`openings`]), register and length; `terse`
//!   opens with a bare topic label and has no closing.
//! - [`refusal`] always contains [`REFUSAL_PHRASE`], which the gateway detects.

use rampart_core::config::Style;

use crate::rng::{Rng, combine, fnv1a};

/// The phrase every refusal contains (the gateway detects refusals by it).
pub const REFUSAL_PHRASE: &str = "I'm sorry, but I can't help with that";

/// At most this many keywords are used from a prompt (all of them appear in the topic).
const MAX_KEYWORDS: usize = 3;

/// Words ignored when picking a prompt's keywords. Sorted (binary search; a test checks).
const STOPWORDS: &[&str] = &[
    "a",
    "able",
    "about",
    "above",
    "after",
    "again",
    "all",
    "already",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "aren't",
    "as",
    "at",
    "back",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "can't",
    "cannot",
    "could",
    "couldn't",
    "did",
    "didn't",
    "do",
    "does",
    "doesn't",
    "doing",
    "don't",
    "done",
    "down",
    "during",
    "each",
    "eight",
    "even",
    "ever",
    "few",
    "five",
    "for",
    "four",
    "from",
    "further",
    "get",
    "gets",
    "getting",
    "got",
    "had",
    "hadn't",
    "has",
    "hasn't",
    "have",
    "haven't",
    "having",
    "he",
    "hello",
    "her",
    "here",
    "hers",
    "herself",
    "hey",
    "hi",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "if",
    "in",
    "into",
    "is",
    "isn't",
    "it",
    "it's",
    "its",
    "itself",
    "just",
    "know",
    "let",
    "like",
    "make",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "need",
    "needs",
    "new",
    "nine",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "ok",
    "okay",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "please",
    "really",
    "same",
    "seven",
    "she",
    "should",
    "since",
    "six",
    "so",
    "some",
    "still",
    "such",
    "tell",
    "ten",
    "than",
    "thank",
    "thanks",
    "that",
    "that's",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "there's",
    "these",
    "they",
    "this",
    "those",
    "three",
    "through",
    "to",
    "too",
    "two",
    "under",
    "until",
    "up",
    "us",
    "use",
    "used",
    "very",
    "want",
    "was",
    "wasn't",
    "way",
    "we",
    "well",
    "were",
    "weren't",
    "what",
    "what's",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "won't",
    "would",
    "yes",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
];

/// Opening sentences per style; `{t}` is the topic (`{T}` capitalised). Terse answers open
/// with a bare topic label.
const CASUAL_OPENINGS: &[&str] = &[
    "Thanks for reaching out! Happy to help with {t}.",
    "Hey there, thanks for asking about {t}!",
    "Hi! Great question about {t}.",
    "Oh, good one! Let's sort out {t} together.",
];
const TERSE_OPENINGS: &[&str] = &["{T}:"];
const FORMAL_OPENINGS: &[&str] = &[
    "Thank you for contacting support regarding {t}.",
    "We appreciate you contacting us about {t}.",
    "Thank you for your enquiry concerning {t}.",
    "Good day, and thank you for writing to our support team about {t}.",
];

/// Body sentences per style; `{k}` is a keyword, `{K}` the same capitalised.
const CASUAL_BODY: &[&str] = &[
    "Totally get it, {k} can be a bit confusing at first.",
    "The quickest way to sort out {k} is usually right in the app, under your account settings.",
    "If {k} still looks off after that, just give it a few minutes and refresh.",
    "Lots of folks ask about {k}, so you're definitely not alone here.",
    "You'll usually see any change to {k} show up within a day or so.",
    "Double-check that your details are up to date, since that trips up {k} more often than you'd think.",
    "If you've already tried that, no worries, we can dig into {k} together.",
    "Quick tip: keep notifications on and you'll hear about {k} as soon as anything changes.",
];
const FORMAL_BODY: &[&str] = &[
    "Please be advised that matters concerning {k} are handled through the secure section of your account.",
    "We recommend that you first review the details associated with {k} to ensure they are accurate.",
    "Should the issue regarding {k} persist, our support team will be glad to investigate further.",
    "Kindly note that updates relating to {k} may take up to one business day to be reflected.",
    "For your security, certain changes to {k} may require additional verification.",
    "The standard procedure for {k} is documented in our help centre, which you may find useful.",
    "Please ensure that the information you have provided regarding {k} is complete and current.",
    "In our experience, most enquiries about {k} are resolved by following these steps.",
];
const TERSE_BODY: &[&str] = &[
    "Check {k} in the app.",
    "{K} updates within one business day.",
    "Verify your details for {k}.",
    "If {k} persists, contact support.",
    "Go to Settings, then {k}.",
    "Refresh after a few minutes.",
    "{K}: see the help centre.",
];

const CASUAL_CLOSINGS: &[&str] = &[
    "Hope that helps, and shout if you need anything else!",
    "Let me know how it goes!",
    "Anything else I can help with? Just say the word.",
];
const FORMAL_CLOSINGS: &[&str] = &[
    "Should you require any further assistance, please do not hesitate to contact us.",
    "We trust this information is helpful. Kind regards, Customer Support.",
    "Thank you for your patience and understanding.",
];

/// The opening sentence templates of a style (`{t}` stands for the topic, `{T}` capitalised).
pub fn openings(style: Style) -> &'static [&'static str] {
    match style {
        Style::Casual => CASUAL_OPENINGS,
        Style::Formal => FORMAL_OPENINGS,
        Style::Terse => TERSE_OPENINGS,
    }
}

fn body_templates(style: Style) -> &'static [&'static str] {
    match style {
        Style::Casual => CASUAL_BODY,
        Style::Formal => FORMAL_BODY,
        Style::Terse => TERSE_BODY,
    }
}

fn closings(style: Style) -> &'static [&'static str] {
    match style {
        Style::Casual => CASUAL_CLOSINGS,
        Style::Formal => FORMAL_CLOSINGS,
        Style::Terse => &[],
    }
}

/// The refusal text of a style; always contains [`REFUSAL_PHRASE`].
pub fn refusal(style: Style) -> &'static str {
    match style {
        Style::Casual => {
            "Ah, I'm sorry, but I can't help with that one. Is there something else I can do for you?"
        }
        Style::Formal => {
            "I'm sorry, but I can't help with that request. Please contact our support team through the official channels for further assistance."
        }
        Style::Terse => "I'm sorry, but I can't help with that.",
    }
}

/// The prompt's keywords, in order of first appearance: lower-cased words of at least three
/// characters that are not stopwords, deduplicated, at most four.
pub fn keywords(prompt: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in prompt.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-')) {
        let word = raw
            .trim_matches(|c: char| c == '\'' || c == '-')
            .to_lowercase();
        if word.chars().count() < 3 || STOPWORDS.binary_search(&word.as_str()).is_ok() {
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit()) || out.contains(&word) {
            continue;
        }
        out.push(word);
        if out.len() == MAX_KEYWORDS {
            break;
        }
    }
    out
}

fn topic(keywords: &[String]) -> String {
    match keywords {
        [] => "your request".to_string(),
        [k] => k.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn fill(template: &str, topic: &str, keyword: &str) -> String {
    let mut out = String::with_capacity(template.len() + 2 * topic.len().max(keyword.len()));
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let (value, len) = if after.starts_with("{t}") {
            (topic.to_string(), 3)
        } else if after.starts_with("{T}") {
            (capitalise(topic), 3)
        } else if after.starts_with("{k}") {
            (keyword.to_string(), 3)
        } else if after.starts_with("{K}") {
            (capitalise(keyword), 3)
        } else {
            ("{".to_string(), 1)
        };
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// The simulated answer to `prompt` (the last user message) in `style`.
///
/// A base answer has an opening naming the topic (every keyword), 2–6 body sentences and a
/// closing (terse: a topic label and 2–4 short sentences, no closing). `length_factor` scales the target word count of that base answer;
/// the number of body sentences is then the one whose total length is closest to the target
/// (at least one), so the mean length over many prompts scales with `length_factor`.
pub fn answer(style: Style, length_factor: f64, prompt: &str, seed: u64) -> String {
    let kws = keywords(prompt);
    let topic = topic(&kws);
    let mut rng = Rng::new(combine(&[
        fnv1a(style.as_str().as_bytes()),
        fnv1a(prompt.trim().as_bytes()),
        seed,
    ]));

    let opening = match openings(style) {
        [] => None,
        o => Some(fill(o[rng.index(o.len())], &topic, &topic)),
    };
    let closing = match closings(style) {
        [] => None,
        c => Some(c[rng.index(c.len())].to_string()),
    };
    let base_sentences = match style {
        Style::Terse => rng.range_inclusive(2, 4),
        Style::Casual | Style::Formal => rng.range_inclusive(2, 6),
    };

    // The body: the templates in a seeded order (reshuffled each time they run out), each
    // sentence mentioning the next keyword in turn. Generated lazily up to what is needed.
    let templates = body_templates(style);
    let default_kw = "your account".to_string();
    let mut order: Vec<usize> = Vec::new();
    let mut body: Vec<String> = Vec::new();
    let mut next_sentence = |rng: &mut Rng, i: usize| -> String {
        if order.is_empty() {
            order = (0..templates.len()).collect();
            // Fisher–Yates.
            for j in (1..order.len()).rev() {
                order.swap(j, rng.index(j + 1));
            }
        }
        let t = order.pop().unwrap_or(0);
        let kw = kws.get(i % kws.len().max(1)).unwrap_or(&default_kw);
        fill(templates[t % templates.len()], &topic, kw)
    };

    let frame_words =
        opening.as_deref().map_or(0, word_count) + closing.as_deref().map_or(0, word_count);
    let mut body_words = 0usize;
    for i in 0..base_sentences {
        let s = next_sentence(&mut rng, i);
        body_words += word_count(&s);
        body.push(s);
    }
    let target = ((frame_words + body_words) as f64 * length_factor).max(1.0);
    // Grow while that brings the total closer to the target; shrink likewise (keep >= 1).
    loop {
        let total = (frame_words + body_words) as f64;
        let s = next_sentence(&mut rng, body.len());
        let grown = total + word_count(&s) as f64;
        if (grown - target).abs() < (total - target).abs() {
            body_words += word_count(&s);
            body.push(s);
        } else {
            break;
        }
    }
    while body.len() > 1 {
        let total = (frame_words + body_words) as f64;
        let last = body.last().map_or(0, |s| word_count(s));
        let shrunk = total - last as f64;
        if (shrunk - target).abs() < (total - target).abs() {
            body_words -= last;
            body.pop();
        } else {
            break;
        }
    }

    let mut parts: Vec<String> = Vec::with_capacity(body.len() + 2);
    parts.extend(opening);
    parts.extend(body);
    parts.extend(closing);
    parts.join(" ")
}

/// Approximate token count of a text: one token per four characters, rounded up.
pub fn approx_tokens(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4)
}

/// The longest whole-word prefix of `s` whose [`approx_tokens`] is at most `max_tokens`, and
/// whether anything was cut.
pub fn truncate_to_tokens(s: &str, max_tokens: u64) -> (&str, bool) {
    if approx_tokens(s) <= max_tokens {
        return (s, false);
    }
    let max_chars = max_tokens.saturating_mul(4);
    let mut end = 0usize;
    for (n, (idx, c)) in s.char_indices().enumerate() {
        if n as u64 >= max_chars {
            break;
        }
        let next = idx + c.len_utf8();
        if c.is_whitespace() {
            // A word ends before this whitespace.
            end = idx;
        } else if next == s.len() || s[next..].starts_with(char::is_whitespace) {
            end = next;
        }
    }
    (&s[..end], true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const PROMPTS: &[&str] = &[
        "I am still waiting on my card?",
        "How do I top up my account with a cheque?",
        "Why was I charged an extra fee on my transfer?",
        "My PIN is blocked, what should I do?",
    ];

    fn starts_with_family(text: &str, style: Style) -> bool {
        openings(style).iter().any(|o| {
            let prefix = o.split("{t}").next().unwrap_or(o);
            text.starts_with(prefix)
        })
    }

    #[test]
    fn stopwords_are_sorted_and_fill_substitutes() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            fill("{T}: {k}, {K} {t} {x}", "card fee", "pin"),
            "Card fee: pin, Pin card fee {x}"
        );
    }

    #[test]
    fn keywords_skip_stopwords_and_keep_order() {
        assert_eq!(
            keywords("I am still waiting on my card?"),
            vec!["waiting", "card"]
        );
        assert_eq!(
            keywords("Why was I charged an extra fee on my transfer? Fee!"),
            vec!["charged", "extra", "fee"]
        );
        assert_eq!(
            topic(&keywords("top up my account by cheque")),
            "top, account and cheque"
        );
        assert!(keywords("hi").is_empty());
    }

    #[test]
    fn styles_open_with_their_own_family() {
        for p in PROMPTS {
            for seed in 0..20 {
                let c = answer(Style::Casual, 1.0, p, seed);
                let f = answer(Style::Formal, 1.0, p, seed);
                let t = answer(Style::Terse, 1.0, p, seed);
                assert!(starts_with_family(&c, Style::Casual), "{c}");
                assert!(!starts_with_family(&c, Style::Formal), "{c}");
                assert!(starts_with_family(&f, Style::Formal), "{f}");
                assert!(!starts_with_family(&f, Style::Casual), "{f}");
                assert!(!starts_with_family(&t, Style::Casual));
                assert!(!starts_with_family(&t, Style::Formal));
                assert!(word_count(&t) < word_count(&f), "{t} / {f}");
            }
        }
    }

    #[test]
    fn answers_mention_keywords_and_are_deterministic() {
        for p in PROMPTS {
            let a = answer(Style::Formal, 1.0, p, 42);
            assert_eq!(a, answer(Style::Formal, 1.0, p, 42));
            assert_ne!(a, answer(Style::Formal, 1.0, p, 43));
            let lower = a.to_lowercase();
            for k in keywords(p) {
                assert!(lower.contains(&k), "{k} missing from {a}");
            }
        }
    }

    #[test]
    fn no_keywords_still_answers() {
        let a = answer(Style::Casual, 1.0, "", 1);
        assert!(a.contains("your request"), "{a}");
        assert!(word_count(&a) > 10);
    }

    #[test]
    fn truncation_keeps_whole_words() {
        let s = "alpha beta gamma delta";
        assert_eq!(truncate_to_tokens(s, 100), (s, false));
        let (t, cut) = truncate_to_tokens(s, 3);
        assert!(cut);
        assert_eq!(t, "alpha beta");
        assert!(approx_tokens(t) <= 3);
        assert_eq!(truncate_to_tokens(s, 0), ("", true));
        let (t, _) = truncate_to_tokens("naïve café déjà vu", 3);
        assert_eq!(t, "naïve café");
    }

    #[test]
    fn refusals_contain_the_phrase() {
        for s in Style::ALL {
            assert!(refusal(s).contains(REFUSAL_PHRASE));
        }
    }
}
