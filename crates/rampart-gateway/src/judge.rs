//! The live judge: for a rollout with `[rollouts.R.judge]`, a sample of its shadow pairs is
//! judged by the judge variant, twice with the answers' positions swapped (the pure part, the
//! prompt, verdict parsing and swap correction, is `rampart_core::compare::judge`). The verdicts
//! are stored with the pair, so reports and the shadow gate read them with its features.
//!
//! Invariants:
//! - Never on the request path: the shadow task judges once both answers are known, after it
//!   has signalled the pair to the controller, and then stores the pair with the verdicts. It
//!   gives its shadow permit back first, so judging never holds shadow capacity.
//! - Bounded: at most `max_in_flight` pairs are being judged per rollout; a pair past that is
//!   stored unjudged and counted (`rampart_judge_pairs_total{outcome="skipped_max_in_flight"}`),
//!   never queued.
//! - Spend is capped per UTC day of the injected clock: no pair is admitted once today's judge
//!   spend reached `max_cost_usd_per_day` (`skipped_budget`); pairs already admitted may finish
//!   over it by their own cost.
//! - Sampling is deterministic by request id, so the same traffic judges the same pairs.
//! - On shutdown nothing new is admitted, and a judgment under way is abandoned (the pair is
//!   stored with the judge's error) rather than holding the drain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rampart_core::compare::judge::{JudgeBudget, judge_prompt, parse_verdict};
use rampart_core::config::{Config, JudgeConfig, VariantConfig};
use rampart_core::record::{Pair, PairJudgment};
use rampart_core::request;
use rampart_core::routing::{shadow_bucket, under_percent};
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{rollout_labels, rollout_outcome_labels};
use crate::plane::DataPlane;
use crate::providers::Reply;

/// The judges of every rollout that has one.
pub struct Judges {
    by_rollout: HashMap<String, Arc<RolloutJudge>>,
}

struct RolloutJudge {
    rollout: String,
    cfg: JudgeConfig,
    variant: Arc<VariantConfig>,
    permits: Arc<Semaphore>,
    budget: Mutex<JudgeBudget>,
}

/// A pair admitted for judging; holds one of its rollout's in-flight permits.
pub struct Admitted {
    judge: Arc<RolloutJudge>,
    _permit: OwnedSemaphorePermit,
}

impl Judges {
    pub fn new(config: &Config) -> Judges {
        let by_rollout = config
            .rollouts
            .values()
            .filter_map(|r| {
                let cfg = r.judge.clone()?;
                let variant = config.routes.get(&r.route)?.variants.get(&cfg.variant)?;
                Some((
                    r.name.clone(),
                    Arc::new(RolloutJudge {
                        rollout: r.name.clone(),
                        variant: variant.clone(),
                        permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
                        budget: Mutex::new(JudgeBudget::new(cfg.max_cost_usd_per_day)),
                        cfg,
                    }),
                ))
            })
            .collect();
        Judges { by_rollout }
    }

    /// Whether `pair` is judged now: sampled, both sides answered with text, a permit free and
    /// budget left. Every sampled pair that is not admitted is counted by reason.
    pub fn admit(&self, gw: &DataPlane, pair: &Pair) -> Option<Admitted> {
        let judge = self.eligible(gw, pair)?;
        let Ok(permit) = judge.permits.clone().try_acquire_owned() else {
            judge.count(gw, "skipped_max_in_flight");
            return None;
        };
        Some(Admitted {
            judge: judge.clone(),
            _permit: permit,
        })
    }

    /// As [`Judges::admit`], but waits for a free permit instead of skipping the pair (offline
    /// replay, where nobody is waiting on the pair and every judged pair counts).
    pub async fn admit_waiting(&self, gw: &DataPlane, pair: &Pair) -> Option<Admitted> {
        let judge = self.eligible(gw, pair)?;
        let permit = judge.permits.clone().acquire_owned().await.ok()?;
        Some(Admitted {
            judge: judge.clone(),
            _permit: permit,
        })
    }

    /// The pair's judge when the pair is sampled, has both answers and today's budget is not
    /// spent (each refusal counted by reason).
    fn eligible(&self, gw: &DataPlane, pair: &Pair) -> Option<&Arc<RolloutJudge>> {
        let judge = self.by_rollout.get(&pair.rollout)?;
        let salt = format!("judge:{}", pair.rollout);
        if !under_percent(
            shadow_bucket(&salt, &pair.request_id),
            judge.cfg.sample_percent,
        ) || gw.shutdown.is_cancelled()
        {
            return None;
        }
        let skip = |outcome: &str| {
            judge.count(gw, outcome);
            None
        };
        if pair.baseline.answered_text().is_none() || pair.candidate.answered_text().is_none() {
            return skip("skipped_no_text");
        }
        let admitted = judge
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admits(gw.clock.now_ms());
        if !admitted {
            return skip("skipped_budget");
        }
        Some(judge)
    }
}

impl RolloutJudge {
    fn count(&self, gw: &DataPlane, outcome: &str) {
        gw.metrics
            .judge
            .pairs
            .get_or_create(&rollout_outcome_labels(&self.rollout, outcome))
            .inc();
    }
}

impl Admitted {
    /// Judges the pair (both orderings at once), charges the spend, and returns the verdicts.
    /// `question` is the user's request as the judge sees it (see [`question`]).
    pub async fn judge(self, gw: &DataPlane, question: &str, pair: &Pair) -> PairJudgment {
        let j = &self.judge;
        let b = pair.baseline.answered_text().unwrap_or_default();
        let c = pair.candidate.answered_text().unwrap_or_default();
        let calls = async {
            tokio::join!(
                call(gw, &j.variant, judge_prompt(question, b, c), j.cfg.timeout),
                call(gw, &j.variant, judge_prompt(question, c, b), j.cfg.timeout),
            )
        };
        let (first, second) = tokio::select! {
            r = calls => r,
            _ = gw.shutdown.cancelled() => {
                let e = Err((0.0, "the gateway shut down while judging".to_string()));
                (e.clone(), e)
            }
        };
        let cost_usd = [&first, &second]
            .iter()
            .map(|r| match r {
                Ok((_, cost)) | Err((cost, _)) => *cost,
            })
            .sum::<f64>();
        j.budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .charge(gw.clock.now_ms(), cost_usd);
        gw.metrics
            .judge
            .cost
            .get_or_create(&rollout_labels(&j.rollout))
            .inc_by(cost_usd);
        let error = [&first, &second]
            .iter()
            .find_map(|r| r.as_ref().err().map(|(_, e)| e.clone()));
        j.count(gw, if error.is_some() { "failed" } else { "judged" });
        let verdict = |r: &Result<(String, f64), (f64, String)>| {
            r.as_ref().ok().and_then(|(reply, _)| parse_verdict(reply))
        };
        PairJudgment {
            model: j.variant.model.clone(),
            first: verdict(&first),
            second: verdict(&second),
            cost_usd,
            error,
        }
    }
}

/// One judge call: the reply's text and its cost, or the cost so far and what went wrong.
async fn call(
    gw: &DataPlane,
    variant: &VariantConfig,
    prompt: String,
    timeout: Duration,
) -> Result<(String, f64), (f64, String)> {
    let Some(provider) = gw.providers.get(&variant.provider) else {
        return Err((0.0, format!("no provider `{}`", variant.provider)));
    };
    let mut request = Map::new();
    request.insert("model".into(), json!(variant.model));
    // Deterministic by default; the variant's own parameters override this.
    request.insert("temperature".into(), json!(0));
    request.insert(
        "messages".into(),
        json!([{"role": "user", "content": prompt}]),
    );
    let request = match request::ChatRequest::from_value(&Value::Object(request)) {
        Ok(r) => r,
        Err(e) => return Err((0.0, format!("cannot build the judge's request: {e}"))),
    };
    let body = request::for_variant(&request, variant, false);
    match tokio::time::timeout(timeout, provider.chat(&body, None, false)).await {
        Ok(Ok(Reply::Json(c))) => {
            let a = c.answer;
            Ok((
                a.text,
                variant.cost_usd(a.prompt_tokens, a.completion_tokens),
            ))
        }
        Ok(Ok(Reply::Stream(_))) => Err((0.0, "the judge streamed unasked".into())),
        Ok(Err(e)) => Err((0.0, format!("judge call failed: {}", e.describe()))),
        Err(_) => Err((0.0, format!("judge call timed out after {timeout:?}"))),
    }
}

/// The user's request as the judge sees it: the text of the last user message (text parts of a
/// multi-part content joined by newlines).
pub fn question(request: &Map<String, Value>) -> String {
    let last_user = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        });
    match last_user.and_then(|m| m.get("content")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_is_the_last_user_message() {
        let req = |v: Value| v.as_object().cloned().unwrap_or_default();
        let r = req(json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"},
                {"type": "text", "text": "b"}]},
            {"role": "system", "content": "late system"},
        ]}));
        assert_eq!(question(&r), "a\nb");
        assert_eq!(question(&req(json!({"messages": []}))), "");
        assert_eq!(question(&req(json!({}))), "");
    }
}
