//! The simulated pairwise judge: any mock model answers a pairwise comparison prompt in the
//! MT-Bench format with a verdict instead of a support answer.
//!
//! A prompt is a judge prompt when its last user message contains both answer sections:
//!
//! ```text
//! [User Question]
//! {question}
//! [The Start of Assistant A's Answer]
//! {answer a}
//! [The End of Assistant A's Answer]
//! [The Start of Assistant B's Answer]
//! {answer b}
//! [The End of Assistant B's Answer]
//! ```
//!
//! The reply is one sentence followed by the verdict `[[A]]`, `[[B]]` or `[[C]]` (tie), as
//! MT-Bench judges answer. How it decides, deterministically per `(prompt, seed)`:
//! 1. with probability `position_bias` (the model's config), `[[A]]` whatever the answers;
//! 2. otherwise by quality: a refusal loses to a non-refusal; else the answer mentioning
//!    clearly more of the question's keywords wins;
//! 3. otherwise (comparable answers) `[[A]]` 40%, `[[B]]` 40%, `[[C]]` 20%, so equivalent
//!    answers have a 50% win rate.

use crate::generate::{REFUSAL_PHRASE, keywords};
use crate::rng::{Rng, combine, fnv1a};

const START_A: &str = "[The Start of Assistant A's Answer]";
const END_A: &str = "[The End of Assistant A's Answer]";
const START_B: &str = "[The Start of Assistant B's Answer]";
const END_B: &str = "[The End of Assistant B's Answer]";
const QUESTION: &str = "[User Question]";

/// The parts of a judge prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgePrompt<'a> {
    pub question: &'a str,
    pub a: &'a str,
    pub b: &'a str,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(s[from..from + len].trim())
}

/// The judge prompt in `text`, if it is one.
pub fn parse(text: &str) -> Option<JudgePrompt<'_>> {
    let a = between(text, START_A, END_A)?;
    let b = between(text, START_B, END_B)?;
    let question = match text.find(QUESTION) {
        Some(q) => {
            let from = q + QUESTION.len();
            let end = text[from..].find(START_A).map_or(text.len(), |e| from + e);
            text[from..end].trim()
        }
        None => "",
    };
    Some(JudgePrompt { question, a, b })
}

/// Which answer a judge prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    A,
    B,
    Tie,
}

impl Verdict {
    /// The MT-Bench verdict token.
    pub fn token(self) -> &'static str {
        match self {
            Verdict::A => "[[A]]",
            Verdict::B => "[[B]]",
            Verdict::Tie => "[[C]]",
        }
    }
}

fn quality(question_keywords: &[String], answer: &str) -> f64 {
    if answer.contains(REFUSAL_PHRASE) || answer.trim().is_empty() {
        return 0.0;
    }
    if question_keywords.is_empty() {
        return 1.0;
    }
    let lower = answer.to_lowercase();
    let hit = question_keywords
        .iter()
        .filter(|k| lower.contains(k.as_str()))
        .count();
    1.0 + hit as f64 / question_keywords.len() as f64
}

/// The verdict on `p` (see the module doc).
pub fn verdict(p: &JudgePrompt<'_>, position_bias: f64, seed: u64) -> Verdict {
    let mut rng = Rng::new(combine(&[
        fnv1a(b"judge"),
        fnv1a(p.question.as_bytes()),
        fnv1a(p.a.as_bytes()),
        fnv1a(p.b.as_bytes()),
        seed,
    ]));
    if rng.uniform() < position_bias {
        return Verdict::A;
    }
    let kws = keywords(p.question);
    let (qa, qb) = (quality(&kws, p.a), quality(&kws, p.b));
    if (qa - qb).abs() > 0.34 {
        return if qa > qb { Verdict::A } else { Verdict::B };
    }
    match rng.uniform() {
        u if u < 0.4 => Verdict::A,
        u if u < 0.8 => Verdict::B,
        _ => Verdict::Tie,
    }
}

/// The judge's reply text for a verdict.
pub fn reply(v: Verdict) -> String {
    let reason = match v {
        Verdict::A => "Assistant A's answer addresses the user's question more helpfully.",
        Verdict::B => "Assistant B's answer addresses the user's question more helpfully.",
        Verdict::Tie => "Both answers are comparably helpful and accurate.",
    };
    format!("{reason} {}", v.token())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::generate::{answer, refusal};
    use rampart_core::config::Style;

    #[test]
    fn reads_the_gateways_judge_prompt() {
        let text = rampart_core::compare::judge_prompt(
            "Where is my card?",
            "It ships today.",
            "It arrives Monday.",
        );
        let p = parse(&text).unwrap();
        assert_eq!(
            (p.question, p.a, p.b),
            ("Where is my card?", "It ships today.", "It arrives Monday.")
        );
        for v in [Verdict::A, Verdict::B, Verdict::Tie] {
            let parsed = rampart_core::compare::parse_verdict(&reply(v));
            assert_eq!(format!("{parsed:?}"), format!("Some({v:?})"));
        }
    }

    fn prompt(q: &str, a: &str, b: &str) -> String {
        format!(
            "Compare the answers.\n{QUESTION}\n{q}\n\n{START_A}\n{a}\n{END_A}\n\n{START_B}\n{b}\n{END_B}\nOutput [[A]], [[B]] or [[C]]."
        )
    }

    #[test]
    fn parses_sections() {
        let text = prompt("Where is my card?", "answer one", "answer two");
        let p = parse(&text).unwrap();
        assert_eq!(p.question, "Where is my card?");
        assert_eq!((p.a, p.b), ("answer one", "answer two"));
        assert!(parse("Where is my card?").is_none());
    }

    #[test]
    fn refusals_lose_and_equivalents_split_evenly() {
        let q = "Where is my card?";
        let good = answer(Style::Casual, 1.0, q, 1);
        let bad = refusal(Style::Casual);
        let mut wins = 0;
        let n = 2000;
        for seed in 0..n {
            let t = prompt(q, &good, bad);
            assert_eq!(verdict(&parse(&t).unwrap(), 0.0, seed), Verdict::A);
            let t = prompt(q, bad, &good);
            assert_eq!(verdict(&parse(&t).unwrap(), 0.0, seed), Verdict::B);
            let other = answer(Style::Formal, 1.0, q, 1);
            let t = prompt(q, &good, &other);
            if verdict(&parse(&t).unwrap(), 0.0, seed) == Verdict::A {
                wins += 1;
            }
        }
        let rate = f64::from(wins) / n as f64;
        assert!(
            (rate - 0.4).abs() < 4.0 * (0.24f64 / n as f64).sqrt(),
            "{rate}"
        );
    }

    #[test]
    fn position_bias_prefers_the_first() {
        let q = "Where is my card?";
        let bad = refusal(Style::Casual);
        let good = answer(Style::Casual, 1.0, q, 1);
        let n = 2000u64;
        let firsts = (0..n)
            .filter(|s| verdict(&parse(&prompt(q, bad, &good)).unwrap(), 0.3, *s) == Verdict::A)
            .count();
        let rate = firsts as f64 / n as f64;
        assert!(
            (rate - 0.3).abs() < 4.0 * (0.21f64 / n as f64).sqrt(),
            "{rate}"
        );
    }
}
