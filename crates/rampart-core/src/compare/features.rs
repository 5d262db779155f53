//! Per-pair features: everything the report needs from one shadow pair, computed once, so the
//! aggregates never look at texts again.
//!
//! * **Exact match**: the two texts are byte-equal.
//! * **Normalized match**: equal after [`normalize`] (Unicode lowercase, punctuation removed,
//!   whitespace runs collapsed).
//! * **Lexical similarity: chrF** (Popović 2015, *chrF: character n-gram F-score for automatic MT
//!   evaluation*, WMT): character n-grams of orders 1..=6 over the text with whitespace removed;
//!   per order precision P_n and recall R_n of the candidate's n-grams against the baseline's
//!   (clipped counts); P and R are their averages over the orders that exist; `chrF_β =
//!   (1+β²)·P·R / (β²·P + R)` with β = 2 (sacreBLEU's default), reported in [0, 1]. Chosen over
//!   token F1 because it is robust to inflection, tokenisation and non-space-separated scripts.
//! * **Embedding similarity**: optional, the cosine of two caller-supplied vectors
//!   ([`cosine`]).
//! * **Equivalence class** ([`Equivalence`]): `identical` when the normalized texts match;
//!   otherwise `materially_different` when exactly one side refused or the tool calls differ
//!   (name or parsed arguments); otherwise `equivalent`
//!   when chrF ≥ [`EQUIVALENT_CHRF`] (0.70) or the embedding cosine ≥ [`EQUIVALENT_COSINE`]
//!   (0.90); otherwise `materially_different`. A pair where either side failed (error, or no
//!   text and no tool calls) has no class (`None`) and is left out of the equivalence rate.
//! * **Lengths**: characters (Unicode scalar values) and whitespace tokens per side, and the
//!   candidate/baseline token ratio (`None` when the baseline has no tokens).
//! * **Opening phrase**: the first [`OPENING_WORDS`] words of [`normalize`]d text.
//! * **Format**: see [`super::format`]; `truncated` is `finish_reason = "length"`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::format::{self, Markdown};
use crate::record::{Pair, PairSide};

/// Words in an opening phrase.
pub const OPENING_WORDS: usize = 3;
/// chrF at or above which two different texts are `equivalent`.
pub const EQUIVALENT_CHRF: f64 = 0.70;
/// Embedding cosine at or above which two different texts are `equivalent`.
pub const EQUIVALENT_COSINE: f64 = 0.90;
/// Characters of each text kept in [`PairFeatures`] for the "most different pairs" view.
pub const EXCERPT_CHARS: usize = 2_000;
/// chrF's maximum n-gram order and β.
const CHRF_ORDER: usize = 6;
const CHRF_BETA: f64 = 2.0;

/// How close two answers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Equivalence {
    Identical,
    Equivalent,
    MateriallyDifferent,
}

/// Inputs that are not in the [`Pair`]: the request's `tools` and `response_format` (the pair's
/// `prompt` holds the messages only) and an embedding similarity computed by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeatureInputs<'a> {
    pub tools: Option<&'a Value>,
    pub response_format: Option<&'a Value>,
    /// Cosine similarity of the two answers' embeddings, in [−1, 1] (see [`cosine`]).
    pub embedding_similarity: Option<f64>,
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
    /// chrF (β = 2) of the candidate against the baseline, in [0, 1].
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
}

/// Lowercase, punctuation removed (apostrophes dropped, other punctuation → space), whitespace
/// runs collapsed to one space, trimmed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        if ch == '\'' || ch == '’' {
            continue;
        }
        if ch.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// The first `words` words of the normalized text; `None` when it has none.
pub fn opening_phrase(text: &str, words: usize) -> Option<String> {
    let head: String = text.chars().take(200).collect();
    let n = normalize(&head);
    let phrase: Vec<&str> = n.split(' ').filter(|w| !w.is_empty()).take(words).collect();
    (!phrase.is_empty()).then(|| phrase.join(" "))
}

/// Whitespace-separated tokens (an approximation of model tokens; ≈ 0.75 per BPE token in
/// English).
pub fn token_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Cosine similarity `a·b / (|a|·|b|)`; `None` for different lengths, empty or zero vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let denom = (na * nb).sqrt();
    (denom > 0.0 && dot.is_finite()).then(|| (dot / denom).clamp(-1.0, 1.0))
}

/// FNV-1a over chars, extended one char at a time: the hash of `chars[i..=i+k]` for every
/// order `k + 1` ≤ [`CHRF_ORDER`] starting at `i`, passed to `f(k, hash)`.
fn for_each_ngram(chars: &[char], mut f: impl FnMut(usize, u64)) {
    let len = chars.len();
    for i in 0..len {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, &c) in chars[i..len.min(i + CHRF_ORDER)].iter().enumerate() {
            h ^= u64::from(c);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            f(k, h);
        }
    }
}

/// A reusable open-addressing multiset of (order, n-gram hash) → count. Slots are valid only
/// when their stamp equals the current generation, so clearing is O(1).
#[derive(Default)]
struct NgramTable {
    keys: Vec<u64>,
    counts: Vec<u32>,
    stamps: Vec<u32>,
    generation: u32,
    mask: usize,
}

impl NgramTable {
    /// Empties the table and sizes it for `n` distinct keys at most (load ≤ ½).
    fn reset(&mut self, n: usize) {
        let cap = (n * 2).next_power_of_two().max(16);
        if cap > self.keys.len() || self.generation == u32::MAX {
            self.keys = vec![0; cap];
            self.counts = vec![0; cap];
            self.stamps = vec![0; cap];
            self.generation = 0;
        }
        self.generation += 1;
        self.mask = self.keys.len() - 1;
    }

    fn key(order: usize, h: u64) -> u64 {
        // Orders are kept apart: a 1-gram never matches a 2-gram.
        h ^ (order as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn slot(&self, key: u64) -> usize {
        let mut i = (key.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) as usize & self.mask;
        loop {
            if self.stamps[i] != self.generation || self.keys[i] == key {
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn add(&mut self, key: u64) {
        let i = self.slot(key);
        if self.stamps[i] == self.generation {
            self.counts[i] += 1;
        } else {
            self.stamps[i] = self.generation;
            self.keys[i] = key;
            self.counts[i] = 1;
        }
    }

    /// Takes one occurrence of `key` if any is left (clipped counting); whether it did.
    fn take(&mut self, key: u64) -> bool {
        let i = self.slot(key);
        if self.stamps[i] == self.generation && self.counts[i] > 0 {
            self.counts[i] -= 1;
            true
        } else {
            false
        }
    }
}

/// Per-thread scratch space of [`chrf`], so a report over a million pairs allocates nothing
/// per pair here.
#[derive(Default)]
struct ChrfScratch {
    reference: Vec<char>,
    hypothesis: Vec<char>,
    table: NgramTable,
}

thread_local! {
    static CHRF_SCRATCH: std::cell::RefCell<ChrfScratch> = std::cell::RefCell::default();
}

/// chrF (β = 2, orders 1..=6) of `hypothesis` against `reference`, in [0, 1]; 1 for two empty
/// texts, 0 when exactly one is empty. See the module doc for the formula. The clipped n-gram
/// matches are counted with a multiset of the reference's n-grams (linear time).
pub fn chrf(reference: &str, hypothesis: &str) -> f64 {
    CHRF_SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => chrf_with(&mut s, reference, hypothesis),
        // Only reachable through re-entrance, which chrf never does; stay correct anyway.
        Err(_) => chrf_with(&mut ChrfScratch::default(), reference, hypothesis),
    })
}

fn chrf_with(s: &mut ChrfScratch, reference: &str, hypothesis: &str) -> f64 {
    let ChrfScratch {
        reference: r,
        hypothesis: h,
        table,
    } = s;
    r.clear();
    r.extend(reference.chars().filter(|c| !c.is_whitespace()));
    h.clear();
    h.extend(hypothesis.chars().filter(|c| !c.is_whitespace()));
    if r.is_empty() && h.is_empty() {
        return 1.0;
    }
    if r.is_empty() || h.is_empty() {
        return 0.0;
    }
    table.reset(r.len() * CHRF_ORDER);
    for_each_ngram(r, |k, g| table.add(NgramTable::key(k, g)));
    let mut matches = [0usize; CHRF_ORDER];
    for_each_ngram(h, |k, g| {
        if table.take(NgramTable::key(k, g)) {
            matches[k] += 1;
        }
    });
    let (mut p_sum, mut r_sum, mut orders) = (0.0, 0.0, 0usize);
    for (k, &m) in matches.iter().enumerate() {
        // n-grams of order k+1 in a text of L chars: L − k.
        let (rn, hn) = (r.len().saturating_sub(k), h.len().saturating_sub(k));
        if rn == 0 || hn == 0 {
            break;
        }
        p_sum += m as f64 / hn as f64;
        r_sum += m as f64 / rn as f64;
        orders += 1;
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, rc) = (p_sum / orders as f64, r_sum / orders as f64);
    let b2 = CHRF_BETA * CHRF_BETA;
    if p + rc == 0.0 {
        0.0
    } else {
        (1.0 + b2) * p * rc / (b2 * p + rc)
    }
}

/// The text compared for a side: the answer's text, then its tool calls' names and arguments.
fn comparable_text(side: &PairSide) -> Option<String> {
    let mut out = side.text.clone().unwrap_or_default();
    if let Some(calls) = side.tool_calls.as_ref().and_then(Value::as_array) {
        for call in calls {
            if let Some(f) = call.get("function") {
                let name = f.get("name").and_then(Value::as_str).unwrap_or("");
                let args = match f.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                out.push_str(&format!("\n{name}({args})"));
            }
        }
    }
    (side.text.is_some() || side.tool_calls.is_some()).then_some(out)
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

fn side_features(side: &PairSide, inputs: &FeatureInputs<'_>) -> SideFeatures {
    let text = side.text.as_deref().unwrap_or("");
    SideFeatures {
        ok: side.error.is_none(),
        chars: text.chars().count() as u64,
        tokens: token_count(text),
        completion_tokens: side.completion_tokens,
        refusal: side.refusal,
        opening: opening_phrase(text, OPENING_WORDS),
        markdown: format::markdown(text),
        json_valid: if side.error.is_none() {
            format::json_valid(side.text.as_deref(), inputs.response_format)
        } else {
            None
        },
        tool_calls_valid: format::tool_calls_valid(side.tool_calls.as_ref(), inputs.tools),
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
    chrf: f64,
    embedding: Option<f64>,
) -> Equivalence {
    if normalized_match {
        Equivalence::Identical
    } else if material_mismatch {
        Equivalence::MateriallyDifferent
    } else if chrf >= EQUIVALENT_CHRF || embedding.is_some_and(|c| c >= EQUIVALENT_COSINE) {
        Equivalence::Equivalent
    } else {
        Equivalence::MateriallyDifferent
    }
}

/// The features of one pair. Pure; linear in the texts' lengths.
pub fn pair_features(pair: &Pair, inputs: &FeatureInputs<'_>) -> PairFeatures {
    let baseline = side_features(&pair.baseline, inputs);
    let candidate = side_features(&pair.candidate, inputs);
    let bt = comparable_text(&pair.baseline);
    let ct = comparable_text(&pair.candidate);
    let (exact_match, normalized_match, similarity, equivalence) = match (&bt, &ct) {
        (Some(b), Some(c)) if baseline.ok && candidate.ok => {
            let exact = b == c;
            let norm = exact || normalize(b) == normalize(c);
            let sim = if exact { 1.0 } else { chrf(b, c) };
            let class = classify(
                norm,
                baseline.refusal != candidate.refusal
                    || tool_calls_key(&pair.baseline) != tool_calls_key(&pair.candidate),
                sim,
                inputs.embedding_similarity,
            );
            (exact, norm, sim, Some(class))
        }
        _ => (false, false, 0.0, None),
    };
    let length_ratio = (baseline.ok && candidate.ok && baseline.tokens > 0)
        .then(|| candidate.tokens as f64 / baseline.tokens as f64);
    let excerpt = |t: &Option<String>| -> String {
        t.as_deref()
            .unwrap_or("")
            .chars()
            .take(EXCERPT_CHARS)
            .collect()
    };
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
        embedding_similarity: inputs.embedding_similarity,
        equivalence,
        length_ratio,
        baseline_excerpt: excerpt(&pair.baseline.text),
        candidate_excerpt: excerpt(&pair.candidate.text),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
    fn chrf_bounds_and_order() {
        assert_eq!(chrf("", ""), 1.0);
        assert_eq!(chrf("abc", ""), 0.0);
        assert!((chrf("the card arrives soon", "the card arrives soon") - 1.0).abs() < 1e-12);
        let near = chrf(
            "Your card will arrive in 3 days.",
            "Your card should arrive in 3 days.",
        );
        let far = chrf(
            "Your card will arrive in 3 days.",
            "I cannot help with that request.",
        );
        assert!(near > EQUIVALENT_CHRF && far < 0.4, "{near} {far}");
        // Non-space-separated scripts work (character n-grams).
        assert!(chrf("東京へ行きます", "東京へ行きました") > 0.6);
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
        let f = pair_features(
            &pair(Some("Hello, world."), Some("hello world")),
            &FeatureInputs::default(),
        );
        assert!(!f.exact_match && f.normalized_match);
        assert_eq!(f.equivalence, Some(Equivalence::Identical));
        let f = pair_features(
            &pair(
                Some("Your card will arrive in 3 days."),
                Some("Your card should arrive in 3 days."),
            ),
            &FeatureInputs::default(),
        );
        assert_eq!(f.equivalence, Some(Equivalence::Equivalent));
        let f = pair_features(
            &pair(
                Some("Your card will arrive in 3 days."),
                Some("Please contact the branch."),
            ),
            &FeatureInputs::default(),
        );
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
        // The caller's embedding can make a paraphrase equivalent.
        let f = pair_features(
            &pair(
                Some("Your card will arrive in 3 days."),
                Some("Expect delivery by Thursday."),
            ),
            &FeatureInputs {
                embedding_similarity: Some(0.95),
                ..FeatureInputs::default()
            },
        );
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
        assert_eq!(
            pair_features(&p, &FeatureInputs::default()).equivalence,
            Some(Equivalence::Identical)
        );
    }

    #[test]
    fn empty_outputs_and_failures() {
        let f = pair_features(&pair(Some(""), Some("")), &FeatureInputs::default());
        assert_eq!(f.equivalence, Some(Equivalence::Identical));
        assert_eq!((f.baseline.tokens, f.length_ratio), (0, None));
        assert_eq!(f.baseline.opening, None);
        let f = pair_features(
            &pair(Some(""), Some("Something")),
            &FeatureInputs::default(),
        );
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
        let mut p = pair(Some("ok"), None);
        p.candidate.error = Some("timeout".into());
        let f = pair_features(&p, &FeatureInputs::default());
        assert_eq!(f.equivalence, None);
        assert!(!f.candidate.ok && f.length_ratio.is_none());
    }

    #[test]
    fn lengths_truncation_and_non_ascii() {
        let mut p = pair(Some("héllo wörld"), Some("héllo wörld and more words here"));
        p.candidate.finish_reason = Some("length".into());
        let f = pair_features(&p, &FeatureInputs::default());
        assert_eq!(
            (f.baseline.chars, f.baseline.tokens, f.candidate.tokens),
            (11, 2, 6)
        );
        assert_eq!(f.length_ratio, Some(3.0));
        assert!(f.candidate.truncated && !f.baseline.truncated);
    }

    #[test]
    fn json_and_tools_inputs() {
        let fmt = serde_json::json!({"type": "json_object"});
        let inputs = FeatureInputs {
            response_format: Some(&fmt),
            ..FeatureInputs::default()
        };
        let f = pair_features(&pair(Some("{\"a\":1}"), Some("{\"a\":1,")), &inputs);
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
        let f = pair_features(
            &p,
            &FeatureInputs {
                tools: Some(&tools),
                ..FeatureInputs::default()
            },
        );
        assert_eq!(
            (f.baseline.tool_calls_valid, f.candidate.tool_calls_valid),
            (Some(true), Some(false))
        );
        assert_eq!(f.equivalence, Some(Equivalence::MateriallyDifferent));
    }
}
