//! Per-pair features: everything the report needs from one shadow pair, computed once, so the
//! aggregates never look at texts again.
//!
//! * **Exact match**: the two texts are byte-equal.
//! * **Normalized match**: equal after [`normalize`] (Unicode lowercase, punctuation removed,
//!   whitespace runs collapsed).
//! * **Lexical similarity: token F1** ([`token_f1`]): the [`normalize`]d texts split into words;
//!   with `m` the clipped count of candidate words found in the baseline (multiset
//!   intersection), `P = m / |candidate|`, `R = m / |baseline|`, `F1 = 2·P·R / (P + R)`, in
//!   [0, 1] (1 for two empty texts, 0 when exactly one is empty). This is SQuAD's answer F1
//!   (Rajpurkar et al. 2016, *SQuAD: 100,000+ Questions for Machine Comprehension of Text*,
//!   EMNLP) without its article stripping. Chosen over chrF because it is about ten times
//!   cheaper (one hash per word, no allocation per word; a report covers millions of pairs) and
//!   separates rewordings from changes of register as well on our fixtures (see
//!   [`EQUIVALENT_F1`]). Its blind spot is scripts written without spaces, where a sentence is
//!   one "word": there the class falls back to `materially_different` unless the texts
//!   normalize equal or the caller supplies an embedding similarity. `chrf` (behind the `chrf`
//!   feature, for the calibration example) stays available for callers that want character
//!   n-grams; it is not used by the report.
//! * **Embedding similarity**: optional, the pair's `embedding_similarity` (the gateway fills it
//!   with the [`cosine`] of the two answers' embeddings when the rollout names an embeddings
//!   model).
//! * **Equivalence class** ([`Equivalence`]): `identical` when the normalized texts match;
//!   otherwise `materially_different` when exactly one side refused or the tool calls differ
//!   (name or parsed arguments); otherwise `equivalent`
//!   when token F1 ≥ [`EQUIVALENT_F1`] or the embedding cosine ≥ [`EQUIVALENT_COSINE`]
//!   (0.90); otherwise `materially_different`. A pair where either side failed (error, or no
//!   text and no tool calls) has no class (`None`) and is left out of the equivalence rate.
//! * **Lengths**: characters (Unicode scalar values) and whitespace tokens per side, and the
//!   candidate/baseline token ratio (`None` when the baseline has no tokens).
//! * **Opening phrase**: the first [`OPENING_WORDS`] words of the [`normalize`]d text.
//!
//! Cost: each side's text is normalized once, into a per-thread buffer reused from pair to
//! pair; the word hashes, the normalized match, the opening phrase and the similarity all come
//! from that buffer. Texts are only copied for the excerpts (and when a side has tool calls).
//! * **Format**: see [`super::format`]; `truncated` is `finish_reason = "length"`.
//!
//! Files: [`tokenize`] (one pass over a text: normalized bytes, word hashes, lengths),
//! [`similarity`] (token F1, cosine, and chrF behind a feature), and this file (one pair's
//! features assembled from both).

mod similarity;
mod tokenize;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::format::{self, Markdown};
use super::judge::Verdict;
use crate::record::{Pair, PairSide};
#[cfg(feature = "chrf")]
pub use similarity::chrf;
use similarity::{FeatureScratch, token_f1_hashes, with_scratch};
pub use similarity::{cosine, token_f1};
use tokenize::{Scan, opening_of_normalized, scan};
pub use tokenize::{normalize, normalize_into, opening_phrase, token_count};

/// Words in an opening phrase.
pub const OPENING_WORDS: usize = 3;
/// Token F1 at or above which two different texts are `equivalent`.
///
/// Measured on 5,000 BANKING77 queries answered by the simulated provider
/// (`cargo run --release -p rampart-mock --example similarity_calibration`): two samples of the
/// same style (a rewording: same facts, other sentences and openings) have a median of 0.56 and
/// 84.5 % of them reach 0.40; a casual answer against a formal one 1.3× longer (another
/// register) has a median of 0.24 and none reaches 0.40; against a terse one, median 0.24 and
/// 0.6 % reach 0.40. 0.40 is where the two families separate: a rewording counts as equivalent,
/// a change of register does not. (chrF ≥ 0.70, the former rule, called only about a quarter of
/// the rewordings equivalent.)
pub const EQUIVALENT_F1: f64 = 0.40;
/// Embedding cosine at or above which two different texts are `equivalent`.
pub const EQUIVALENT_COSINE: f64 = 0.90;
/// Characters of each text kept in [`PairFeatures`] for the "most different pairs" view.
pub const EXCERPT_CHARS: usize = 2_000;

/// How close two answers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Equivalence {
    Identical,
    Equivalent,
    MateriallyDifferent,
}

/// The features of one side of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideFeatures {
    /// The call succeeded (`error` is `None`).
    pub ok: bool,
    pub chars: u64,
    pub tokens: u64,
    pub completion_tokens: u64,
    pub refusal: bool,
    /// First words, normalized; `None` for an empty answer.
    pub opening: Option<String>,
    pub markdown: Markdown,
    /// `Some` only when the request asked for JSON.
    pub json_valid: Option<bool>,
    /// `Some` only when the answer has tool calls.
    pub tool_calls_valid: Option<bool>,
    /// `finish_reason = "length"`.
    pub truncated: bool,
    pub latency_ms: f64,
    pub cached: bool,
    pub cost_usd: f64,
}

/// Everything the aggregates need from one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairFeatures {
    pub request_id: String,
    pub ts_ms: i64,
    pub class: Option<String>,
    pub tenant: Option<String>,
    pub baseline: SideFeatures,
    pub candidate: SideFeatures,
    pub exact_match: bool,
    pub normalized_match: bool,
    /// Token F1 of the candidate against the baseline, in [0, 1] (1 when the normalized texts
    /// match).
    pub similarity: f64,
    pub embedding_similarity: Option<f64>,
    /// `None` when either side failed.
    pub equivalence: Option<Equivalence>,
    /// candidate tokens / baseline tokens.
    pub length_ratio: Option<f64>,
    /// The first [`EXCERPT_CHARS`] characters of each text, for the report's "most different
    /// pairs" (raw text: renderers escape it).
    pub baseline_excerpt: String,
    pub candidate_excerpt: String,
    /// The judge's verdicts, when the pair was judged.
    pub judge: Option<JudgeVerdicts>,
}

/// A judged pair's verdicts (see [`super::judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeVerdicts {
    /// Baseline shown as A; `None` = unparsed reply.
    pub first: Option<Verdict>,
    /// Candidate shown as A.
    pub second: Option<Verdict>,
    /// A judge call failed: the verdicts are not used.
    pub failed: bool,
}

/// The text compared for a side: the answer's text, then its tool calls' names and arguments
/// (borrowed when there are no tool calls, the common case).
fn comparable_text(side: &PairSide) -> Option<Cow<'_, str>> {
    let text = side.text.as_deref().unwrap_or("");
    let Some(calls) = side.tool_calls.as_ref() else {
        return side.text.as_deref().map(Cow::Borrowed);
    };
    let mut out = text.to_string();
    for f in calls
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("function"))
    {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        out.push('\n');
        out.push_str(name);
        out.push('(');
        match f.get("arguments") {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => {}
        }
        out.push(')');
    }
    Some(Cow::Owned(out))
}

/// Tool calls as (name, parsed arguments), for an exact comparison: a different call or
/// different arguments is always a material difference.
fn tool_calls_key(side: &PairSide) -> Vec<(String, Value)> {
    side.tool_calls
        .as_ref()
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| c.get("function"))
                .map(|f| {
                    let name = f
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let args = match f.get("arguments") {
                        Some(Value::String(s)) => {
                            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                        }
                        Some(v) => v.clone(),
                        None => Value::Null,
                    };
                    (name, args)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A side's features; `normalized` is its text, [`normalize`]d (for the opening phrase), and
/// `scan` its lengths.
fn side_features(side: &PairSide, pair: &Pair, normalized: &[u8], scan: &Scan) -> SideFeatures {
    let text = side.text.as_deref().unwrap_or("");
    SideFeatures {
        ok: side.error.is_none(),
        chars: scan.chars,
        tokens: scan.tokens,
        completion_tokens: side.completion_tokens,
        refusal: side.refusal,
        opening: opening_of_normalized(normalized, OPENING_WORDS),
        markdown: format::markdown(text),
        json_valid: if side.error.is_none() {
            format::json_valid(side.text.as_deref(), pair.response_format.as_ref())
        } else {
            None
        },
        tool_calls_valid: format::tool_calls_valid(side.tool_calls.as_ref(), pair.tools.as_ref()),
        truncated: side.finish_reason.as_deref() == Some("length"),
        latency_ms: side.latency_ms,
        cached: side.cached,
        cost_usd: side.cost_usd,
    }
}

/// Classifies a pair from its similarity signals (see the module doc for the thresholds).
/// `material_mismatch`: one side refused and the other did not, or the tool calls differ.
pub fn classify(
    normalized_match: bool,
    material_mismatch: bool,
    similarity: f64,
    embedding: Option<f64>,
) -> Equivalence {
    if normalized_match {
        Equivalence::Identical
    } else if material_mismatch {
        Equivalence::MateriallyDifferent
    } else if similarity >= EQUIVALENT_F1 || embedding.is_some_and(|c| c >= EQUIVALENT_COSINE) {
        Equivalence::Equivalent
    } else {
        Equivalence::MateriallyDifferent
    }
}

/// The features of one pair. Pure; linear in the texts' lengths. Each text is normalized once,
/// into a per-thread buffer. Besides the two sides it reads the pair's `tools` and
/// `response_format` (for the format features) and its `embedding_similarity`.
pub fn pair_features(pair: &Pair) -> PairFeatures {
    with_scratch(|s| pair_features_with(s, pair))
}

fn pair_features_with(s: &mut FeatureScratch, pair: &Pair) -> PairFeatures {
    let FeatureScratch {
        baseline: nb,
        candidate: nc,
        baseline_words: wb,
        candidate_words: wc,
        table,
    } = s;
    let sb = scan(pair.baseline.text.as_deref().unwrap_or(""), nb, wb);
    let sc = scan(pair.candidate.text.as_deref().unwrap_or(""), nc, wc);
    let baseline = side_features(&pair.baseline, pair, nb, &sb);
    let candidate = side_features(&pair.candidate, pair, nc, &sc);
    let bt = comparable_text(&pair.baseline);
    let ct = comparable_text(&pair.candidate);
    let (exact_match, normalized_match, similarity, equivalence) = match (&bt, &ct) {
        (Some(b), Some(c)) if baseline.ok && candidate.ok => {
            // With tool calls the compared text is longer than the answer: normalize it again.
            if matches!(b, Cow::Owned(_)) {
                scan(b, nb, wb);
            }
            if matches!(c, Cow::Owned(_)) {
                scan(c, nc, wc);
            }
            let exact = b == c;
            let norm = exact || nb == nc;
            let sim = if norm {
                1.0
            } else {
                token_f1_hashes(table, wb, wc)
            };
            let class = classify(
                norm,
                baseline.refusal != candidate.refusal
                    || tool_calls_key(&pair.baseline) != tool_calls_key(&pair.candidate),
                sim,
                pair.embedding_similarity,
            );
            (exact, norm, sim, Some(class))
        }
        _ => (false, false, 0.0, None),
    };
    let length_ratio = (baseline.ok && candidate.ok && baseline.tokens > 0)
        .then(|| candidate.tokens as f64 / baseline.tokens as f64);
    PairFeatures {
        request_id: pair.request_id.clone(),
        ts_ms: pair.ts_ms,
        class: pair.class.clone(),
        tenant: pair.tenant.clone(),
        baseline,
        candidate,
        exact_match,
        normalized_match,
        similarity,
        embedding_similarity: pair.embedding_similarity,
        equivalence,
        length_ratio,
        baseline_excerpt: excerpt(pair.baseline.text.as_deref()),
        candidate_excerpt: excerpt(pair.candidate.text.as_deref()),
        judge: pair.judge.as_ref().map(|j| JudgeVerdicts {
            first: j.first,
            second: j.second,
            failed: j.error.is_some(),
        }),
    }
}

/// The first [`EXCERPT_CHARS`] characters of a text (a byte-range copy).
pub fn excerpt(text: Option<&str>) -> String {
    let t = text.unwrap_or("");
    // No more bytes than the limit means no more characters either: no need to count.
    let end = if t.len() <= EXCERPT_CHARS {
        t.len()
    } else {
        t.char_indices()
            .nth(EXCERPT_CHARS)
            .map_or(t.len(), |(i, _)| i)
    };
    t[..end].to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::tokenize::word_hash;
    use super::*;

    fn side(text: Option<&str>) -> PairSide {
        PairSide {
            variant: "v".into(),
            model: "m".into(),
            text: text.map(str::to_string),
            finish_reason: Some("stop".into()),
            ..PairSide::default()
        }
    }

    fn pair(b: Option<&str>, c: Option<&str>) -> Pair {
        Pair {
            request_id: "r".into(),
            ts_ms: 0,
            route: "support".into(),
            rollout: "r".into(),
            stage: "shadow".into(),
            key_hash: None,
            tenant: None,
            class: Some("card_arrival".into()),
            prompt: None,
            prompt_hash: "h".into(),
            baseline: side(b),
            candidate: side(c),
            tools: None,
            response_format: None,
            embedding_similarity: None,
            judge: None,
            features: None,
        }
    }

    #[test]
    fn normalize_and_opening() {
        assert_eq!(
            normalize("  Hello,   WORLD!! It's me."),
            "hello world its me"
        );
        assert_eq!(
            opening_phrase("Hi there! Thanks for asking…", 3).unwrap(),
            "hi there thanks"
        );
        assert_eq!(opening_phrase("", 3), None);
        assert_eq!(opening_phrase("!!! ...", 3), None);
        assert_eq!(
            opening_phrase("Ünïcödé ÉTÉ — 東京 へ", 3).unwrap(),
            "ünïcödé été 東京"
        );
    }

    #[test]
    fn token_f1_formula() {
        assert_eq!(token_f1("", ""), 1.0);
        assert_eq!(token_f1("!!", "..."), 1.0);
        assert_eq!(token_f1("abc", ""), 0.0);
        assert_eq!(token_f1("The card, arrives!", "the card arrives"), 1.0);
        // 5 of 7 reference words, 5 of 7 hypothesis words: P = R = F1 = 5/7.
        let f = token_f1(
            "Your card will arrive in 3 days.",
            "Your card should arrive in 3 weeks.",
        );
        assert!((f - 5.0 / 7.0).abs() < 1e-12, "{f}");
        // Clipped counts: "the the the" against "the cat": m = 1, P = 1/3, R = 1/2.
        let f = token_f1("the cat", "the the the");
        assert!((f - 0.4).abs() < 1e-12, "{f}");
        let far = token_f1(
            "Your card will arrive in 3 days.",
            "I cannot help with that request.",
        );
        assert_eq!(far, 0.0);
        // Word order does not matter; symmetric.
        assert_eq!(token_f1("a b c d", "d c b a"), 1.0);
        assert_eq!(token_f1("a b c", "a x"), token_f1("a x", "a b c"));
    }

    #[test]
    fn normalize_into_reuses_and_matches_normalize() {
        let mut buf = String::from("left over");
        for t in [
            "  Hello,   WORLD!! It's me.",
            "Ünïcödé ÉTÉ — 東京 へ",
            "",
            "İ’m ok",
        ] {
            normalize_into(t, &mut buf);
            assert_eq!(buf, normalize(t));
        }
        assert_eq!(normalize("İ’m ok"), "i̇m ok");
        // The one-pass counts agree with the plain definitions.
        let (mut bytes, mut words) = (Vec::new(), Vec::new());
        for t in [
            "a\u{0B}b\u{A0}c  d\t",
            "  héllo wörld ",
            "東京 へ 行く",
            "",
            "x",
        ] {
            let s = scan(t, &mut bytes, &mut words);
            assert_eq!(s.chars, t.chars().count() as u64, "{t:?}");
            assert_eq!(s.tokens, token_count(t), "{t:?}");
            let n = String::from_utf8(bytes.clone()).unwrap();
            assert_eq!(n, normalize(t));
            let expected: Vec<u64> = n
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(|w| word_hash(w.as_bytes()))
                .collect();
            assert_eq!(words, expected, "{t:?}");
        }
    }

    #[test]
    fn tool_call_text_is_compared() {
        let mut p = pair(Some("Looking it up."), Some("Looking it up."));
        p.baseline.tool_calls =
            Some(serde_json::json!([{"function": {"name": "lookup", "arguments": "{\"id\": 4}"}}]));
        p.candidate.tool_calls =
            Some(serde_json::json!([{"function": {"name": "lookup", "arguments": "{\"id\": 5}"}}]));
        let f = pair_features(&p);
        assert!(!f.exact_match && !f.normalized_match && f.similarity < 1.0);
        assert_eq!(f.baseline.opening.as_deref(), Some("looking it up"));
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
    }

    #[test]
    fn cosine_edge_cases() {
        assert_eq!(cosine(&[1.0, 0.0], &[1.0, 0.0]), Some(1.0));
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert_eq!(cosine(&[], &[]), None);
    }

    #[test]
    fn equivalence_classes() {
        let f = pair_features(&pair(Some("Hello, world."), Some("hello world")));
        assert!(!f.exact_match && f.normalized_match);
        assert_eq!(f.equivalence, Some(Equivalence::Identical));
        let f = pair_features(&pair(
            Some("Your card will arrive in 3 days."),
            Some("Your card should arrive in 3 days."),
        ));
        assert_eq!(f.equivalence, Some(Equivalence::Equivalent));
        let f = pair_features(&pair(
            Some("Your card will arrive in 3 days."),
            Some("Please contact the branch."),
        ));
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
        // An embedding similarity can make a paraphrase equivalent.
        let mut p = pair(
            Some("Your card will arrive in 3 days."),
            Some("Expect delivery by Thursday."),
        );
        p.embedding_similarity = Some(0.95);
        let f = pair_features(&p);
        assert_eq!(f.equivalence, Some(Equivalence::Equivalent));
        // A refusal on one side is always material.
        let mut p = pair(
            Some("I can't help with that."),
            Some("I can't help with that!!"),
        );
        p.candidate.refusal = true;
        assert_eq!(
            classify(false, true, 0.99, Some(1.0)),
            Equivalence::MateriallyDifferent
        );
        assert_eq!(pair_features(&p).equivalence, Some(Equivalence::Identical));
    }

    #[test]
    fn empty_outputs_and_failures() {
        let f = pair_features(&pair(Some(""), Some("")));
        assert_eq!(f.equivalence, Some(Equivalence::Identical));
        assert_eq!((f.baseline.tokens, f.length_ratio), (0, None));
        assert_eq!(f.baseline.opening, None);
        let f = pair_features(&pair(Some(""), Some("Something")));
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
        let mut p = pair(Some("ok"), None);
        p.candidate.error = Some("timeout".into());
        let f = pair_features(&p);
        assert_eq!(f.equivalence, None);
        assert!(!f.candidate.ok && f.length_ratio.is_none());
    }

    #[test]
    fn lengths_truncation_and_non_ascii() {
        let mut p = pair(Some("héllo wörld"), Some("héllo wörld and more words here"));
        p.candidate.finish_reason = Some("length".into());
        let f = pair_features(&p);
        assert_eq!(
            (f.baseline.chars, f.baseline.tokens, f.candidate.tokens),
            (11, 2, 6)
        );
        assert_eq!(f.length_ratio, Some(3.0));
        assert!(f.candidate.truncated && !f.baseline.truncated);
    }

    #[test]
    fn json_and_tools_inputs() {
        let mut p = pair(Some("{\"a\":1}"), Some("{\"a\":1,"));
        p.response_format = Some(serde_json::json!({"type": "json_object"}));
        let f = pair_features(&p);
        assert_eq!(
            (f.baseline.json_valid, f.candidate.json_valid),
            (Some(true), Some(false))
        );
        let tools = serde_json::json!([{"type": "function", "function": {"name": "lookup",
            "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}}}]);
        let mut p = pair(None, None);
        p.baseline.tool_calls =
            Some(serde_json::json!([{"function": {"name": "lookup", "arguments": "{\"id\": 4}"}}]));
        p.candidate.tool_calls = Some(
            serde_json::json!([{"function": {"name": "lookup", "arguments": "{\"id\": \"four\"}"}}]),
        );
        p.tools = Some(tools);
        let f = pair_features(&p);
        assert_eq!(
            (f.baseline.tool_calls_valid, f.candidate.tool_calls_valid),
            (Some(true), Some(false))
        );
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
    }
}
