//! LLM-as-judge, the pure part: the prompt, verdict parsing, position-swap correction, the win
//! rate with a bootstrap interval, and a spend cap.
//!
//! **Swap correction.** Each pair is judged twice: first with the baseline shown as A and the
//! candidate as B, then swapped. The two verdicts, mapped back to baseline/candidate, must agree;
//! if they do not (the judge picked the same *position* both times, or answered tie once), the
//! pair counts as a tie. Score per pair: 1 (candidate wins), ½ (tie), 0 (baseline wins); the
//! **win rate** is the mean score, its interval a seeded percentile bootstrap
//! (`rampart_stats::bootstrap::paired_bootstrap` of the scores against 0). The uncorrected rate
//! uses the first ordering only (Zheng et al. 2023, *Judging LLM-as-a-Judge with MT-Bench and
//! Chatbot Arena*, §3.3–4, position bias and swap consistency).
//!
//! What the correction does and does not do: a judge that answers "the first shown" with
//! probability q, and otherwise prefers the candidate with probability p, has an uncorrected
//! win rate of `(1 − q)·p`, biased *towards the baseline* (always shown first), while the
//! swap-corrected rate is `½ + (1 − q)·(p − ½)`: the direction-dependent bias is gone, only a
//! shrinkage towards ½ remains (the biased verdicts carry no information). A swap-corrected
//! rate above ½ therefore always means the judge prefers the candidate.

use rampart_stats::bootstrap::{BootstrapConfig, paired_bootstrap};
use serde::{Deserialize, Serialize};

use super::report::JudgeReport;

/// A judge's answer about the two answers as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    A,
    B,
    Tie,
}

/// The verdict of one pair after mapping back from positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeOutcome {
    CandidateWins,
    BaselineWins,
    Tie,
}

impl JudgeOutcome {
    /// 1, ½ or 0.
    pub fn score(self) -> f64 {
        match self {
            JudgeOutcome::CandidateWins => 1.0,
            JudgeOutcome::Tie => 0.5,
            JudgeOutcome::BaselineWins => 0.0,
        }
    }
}

/// The judge prompt: MT-Bench's pairwise prompt (Zheng et al. 2023, appendix, "pair-v2"),
/// `question` being the user's request, shown as assistant A and assistant B in that order.
/// The judge ends its reply with `[[A]]`, `[[B]]` or `[[C]]` (a tie).
pub fn judge_prompt(question: &str, answer_a: &str, answer_b: &str) -> String {
    format!(
        "Please act as an impartial judge and evaluate the quality of the responses provided by \
         two AI assistants to the user question displayed below. Choose the assistant that \
         follows the user's instructions and answers the user's question better, considering \
         helpfulness, relevance, accuracy, depth and tone. Avoid any position biases and ensure \
         that the order in which the responses were presented does not influence your decision. \
         Do not allow the length of the responses to influence your evaluation. Be as objective \
         as possible. After a short explanation, output your final verdict by strictly \
         following this format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is \
         better, and \"[[C]]\" for a tie.\n\n\
         [User Question]\n{question}\n\n\
         [The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n\
         [The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
    )
}

fn word_verdict(w: &str) -> Option<Verdict> {
    match w {
        "a" => Some(Verdict::A),
        "b" => Some(Verdict::B),
        "tie" | "draw" | "equal" | "both" | "neither" => Some(Verdict::Tie),
        _ => None,
    }
}

fn clean(s: &str) -> String {
    s.trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// Parses a judge's reply. Accepted, in order: the whole reply is a verdict word (`A`, `**B**`,
/// `"tie".`); a `[[A]]`, `[[B]]` or `[[C]]` (tie) marker; a `verdict:` / `answer:` / `winner:` / `better:` label; the
/// last non-empty line is a verdict word (`Answer A`, `Tie`); the word `tie` anywhere; the first
/// word is `A`/`B`. Otherwise `None` (the pair is left out and counted as unparsed).
pub fn parse_verdict(reply: &str) -> Option<Verdict> {
    let whole = clean(reply);
    if let Some(v) = word_verdict(&whole) {
        return Some(v);
    }
    let lower = reply.to_lowercase();
    for (marker, v) in [
        ("[[a]]", Verdict::A),
        ("[[b]]", Verdict::B),
        ("[[c]]", Verdict::Tie),
        ("[[tie]]", Verdict::Tie),
    ] {
        if lower.contains(marker) {
            return Some(v);
        }
    }
    for label in ["verdict:", "answer:", "winner:", "better:", "final answer:"] {
        if let Some(at) = lower.rfind(label) {
            let rest = &lower[at + label.len()..];
            if let Some(v) = rest
                .split_whitespace()
                .next()
                .and_then(|w| word_verdict(&clean(w)))
            {
                return Some(v);
            }
        }
    }
    if let Some(last) = lower.lines().rev().find(|l| !l.trim().is_empty()) {
        let words: Vec<String> = last.split_whitespace().map(clean).collect();
        if let Some(v) = words.last().and_then(|w| word_verdict(w))
            && words.len() <= 2
        {
            return Some(v);
        }
    }
    let words: Vec<String> = lower.split_whitespace().map(clean).collect();
    if words.iter().any(|w| w == "tie") {
        return Some(Verdict::Tie);
    }
    words.first().and_then(|w| match w.as_str() {
        "a" | "b" => word_verdict(w),
        _ => None,
    })
}

/// Combines the two orderings: `first` judged with the baseline as A, `second` with the
/// candidate as A. Disagreement is a tie.
pub fn combine(first: Verdict, second: Verdict) -> JudgeOutcome {
    let one = from_first(first);
    let two = match second {
        Verdict::A => JudgeOutcome::CandidateWins,
        Verdict::B => JudgeOutcome::BaselineWins,
        Verdict::Tie => JudgeOutcome::Tie,
    };
    if one == two { one } else { JudgeOutcome::Tie }
}

/// The outcome of the first ordering alone (baseline shown as A).
pub fn from_first(first: Verdict) -> JudgeOutcome {
    match first {
        Verdict::A => JudgeOutcome::BaselineWins,
        Verdict::B => JudgeOutcome::CandidateWins,
        Verdict::Tie => JudgeOutcome::Tie,
    }
}

/// Tally of judged pairs. Keeps one (corrected, uncorrected) score per pair: judge calls cost
/// money and are bounded by a [`JudgeBudget`], so this stays small.
#[derive(Debug, Clone, Default)]
pub struct JudgeTally {
    scores: Vec<f64>,
    first_only: Vec<f64>,
    candidate_wins: u64,
    baseline_wins: u64,
    ties: u64,
    inconsistent: u64,
    unparsed: u64,
    errors: u64,
}

impl JudgeTally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one pair's two verdicts (`None` = unparseable reply: the pair is left out).
    pub fn push(&mut self, first: Option<Verdict>, second: Option<Verdict>) {
        let (Some(first), Some(second)) = (first, second) else {
            self.unparsed += 1;
            return;
        };
        let outcome = combine(first, second);
        if outcome == JudgeOutcome::Tie && from_first(first) != combine_second(second) {
            self.inconsistent += 1;
        }
        match outcome {
            JudgeOutcome::CandidateWins => self.candidate_wins += 1,
            JudgeOutcome::BaselineWins => self.baseline_wins += 1,
            JudgeOutcome::Tie => self.ties += 1,
        }
        self.scores.push(outcome.score());
        self.first_only.push(from_first(first).score());
    }

    /// Records a pair whose judge call failed (left out of the rates).
    pub fn push_error(&mut self) {
        self.errors += 1;
    }

    /// Any pair was pushed (judged, unparsed or failed).
    pub fn seen(&self) -> bool {
        !self.scores.is_empty() || self.unparsed > 0 || self.errors > 0
    }

    /// Pairs judged with both verdicts parsed.
    pub fn judged(&self) -> u64 {
        self.scores.len() as u64
    }

    /// Win rates and percentile bootstrap intervals (`None` with fewer than two pairs).
    pub fn finish(&self, bootstrap: &BootstrapConfig) -> JudgeReport {
        let rate = |s: &[f64]| (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64);
        let ci = |s: &[f64]| {
            let zeros = vec![0.0; s.len()];
            // Single-threaded: on the caller's thread, never rayon's pool.
            paired_bootstrap(&zeros, s, bootstrap).ok().map(|i| i.ci)
        };
        let (c, u) = (ci(&self.scores), ci(&self.first_only));
        JudgeReport {
            judged_pairs: self.judged(),
            win_rate: rate(&self.scores),
            ci_low: c.map(|i| i.low),
            ci_high: c.map(|i| i.high),
            uncorrected_win_rate: rate(&self.first_only),
            uncorrected_ci_low: u.map(|i| i.low),
            uncorrected_ci_high: u.map(|i| i.high),
            candidate_wins: self.candidate_wins,
            baseline_wins: self.baseline_wins,
            ties: self.ties,
            inconsistent: self.inconsistent,
            unparsed: self.unparsed,
            errors: self.errors,
        }
    }
}

fn combine_second(second: Verdict) -> JudgeOutcome {
    match second {
        Verdict::A => JudgeOutcome::CandidateWins,
        Verdict::B => JudgeOutcome::BaselineWins,
        Verdict::Tie => JudgeOutcome::Tie,
    }
}

const DAY_MS: i64 = 86_400_000;

/// The judge's daily spend cap, on UTC days of the caller's clock (unix ms). A pair is admitted
/// while today's spend is under the cap; its calls' actual cost is charged once they are done,
/// so pairs already admitted may take a day over the cap by their own cost, never further. A
/// new day starts from zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JudgeBudget {
    cap_usd: f64,
    day: i64,
    spent_usd: f64,
}

impl JudgeBudget {
    pub fn new(cap_usd: f64) -> Self {
        JudgeBudget {
            cap_usd: cap_usd.max(0.0),
            day: i64::MIN,
            spent_usd: 0.0,
        }
    }

    fn roll(&mut self, now_ms: i64) {
        let today = now_ms.div_euclid(DAY_MS);
        if today != self.day {
            self.day = today;
            self.spent_usd = 0.0;
        }
    }

    /// Whether a pair may be judged at `now_ms`: today's spend is under the cap.
    pub fn admits(&mut self, now_ms: i64) -> bool {
        self.roll(now_ms);
        self.spent_usd < self.cap_usd
    }

    /// Charges a judged pair's cost to the day of `now_ms` (a non-finite or negative cost is
    /// ignored).
    pub fn charge(&mut self, now_ms: i64, cost_usd: f64) {
        self.roll(now_ms);
        if cost_usd.is_finite() && cost_usd > 0.0 {
            self.spent_usd += cost_usd;
        }
    }

    /// Spent on the current day.
    pub fn spent_usd(&self) -> f64 {
        self.spent_usd
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prompt_shows_both_answers_in_order() {
        let p = judge_prompt("Where is my card?", "first answer", "second answer");
        let (a, b) = (
            p.find("first answer").unwrap(),
            p.find("second answer").unwrap(),
        );
        assert!(a < b && p.contains("\"[[C]]\" for a tie"));
    }

    #[test]
    fn parses_common_reply_shapes() {
        for (reply, v) in [
            ("A", Verdict::A),
            (" **B** ", Verdict::B),
            ("\"tie\".", Verdict::Tie),
            ("Tie", Verdict::Tie),
            ("Both are fine, so [[tie]]", Verdict::Tie),
            ("Both answers are comparably helpful. [[C]]", Verdict::Tie),
            ("Assistant B's answer is more helpful. [[B]]", Verdict::B),
            ("Reasoning...\nVerdict: B", Verdict::B),
            ("A is more complete.\n\nA", Verdict::A),
            ("Answer B is clearer and correct.\nB", Verdict::B),
            ("After comparing:\nanswer a", Verdict::A),
            ("It's a tie overall.", Verdict::Tie),
            ("B, because it is shorter.", Verdict::B),
        ] {
            assert_eq!(parse_verdict(reply), Some(v), "{reply:?}");
        }
        assert_eq!(parse_verdict(""), None);
        assert_eq!(
            parse_verdict("I cannot decide between these options."),
            None
        );
        assert_eq!(parse_verdict("回答Aのほうが良い"), None);
    }

    #[test]
    fn swap_logic() {
        // Same position twice = inconsistent = tie.
        assert_eq!(combine(Verdict::A, Verdict::A), JudgeOutcome::Tie);
        assert_eq!(combine(Verdict::B, Verdict::A), JudgeOutcome::CandidateWins);
        assert_eq!(combine(Verdict::A, Verdict::B), JudgeOutcome::BaselineWins);
        assert_eq!(combine(Verdict::Tie, Verdict::Tie), JudgeOutcome::Tie);
        let mut t = JudgeTally::new();
        t.push(Some(Verdict::A), Some(Verdict::A));
        t.push(Some(Verdict::B), Some(Verdict::A));
        t.push(None, Some(Verdict::A));
        let r = t.finish(&BootstrapConfig::default());
        assert_eq!((r.judged_pairs, r.inconsistent, r.unparsed), (2, 1, 1));
        assert_eq!(r.win_rate, Some(0.75));
        assert_eq!(r.uncorrected_win_rate, Some(0.5));
    }

    #[test]
    fn budget_caps_each_day() {
        const DAY: i64 = 86_400_000;
        let mut b = JudgeBudget::new(1.0);
        let mut judged = 0;
        while b.admits(5) {
            b.charge(5, 0.3);
            judged += 1;
        }
        // 0.3, 0.6, 0.9 are under the cap; the fourth pair takes the day to 1.2, then none.
        assert_eq!(judged, 4);
        assert!((b.spent_usd() - 1.2).abs() < 1e-12);
        b.charge(6, f64::NAN);
        b.charge(6, -1.0);
        assert!((b.spent_usd() - 1.2).abs() < 1e-12 && !b.admits(DAY - 1));
        // A new UTC day starts from zero, a charge landing after midnight counts for the new day.
        assert!(b.admits(DAY));
        b.charge(2 * DAY + 1, 0.5);
        assert!((b.spent_usd() - 0.5).abs() < 1e-12 && b.admits(2 * DAY + 2));
        assert!(!JudgeBudget::new(0.0).admits(0));
    }
}
