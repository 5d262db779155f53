//! The shadow dispatcher: mirrors sampled requests to the candidate without touching the
//! user's path.
//!
//! Invariants: dispatching never waits. A shadow call is skipped, and counted in
//! `rampart_shadow_dropped_total{reason}`, when `shadow.max_in_flight` calls are already running
//! (`max_in_flight`), when today's cost or token budget is spent (`budget_cost`,
//! `budget_tokens`; the budget day is the UTC day of the injected clock), or when the gateway
//! is shutting down. Each call has its own timeout. The candidate answers the client's request
//! rewritten for the candidate variant and never streams; the pair is written, through the same
//! bounded writer as request events, once both sides are known (with their embedding
//! similarity when the rollout names an embeddings model, see [`crate::embeddings`], and once
//! the judge has ruled on it when the rollout has a judge, see [`crate::judge`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_core::compare::pair_features;
use rampart_core::config::{RouteConfig, ShadowConfig, VariantConfig};
use rampart_core::record::{Pair, PairSide};
use rampart_core::request::{self, Answer, ChatRequest};
use rampart_core::routing::RolloutView;
use rampart_store::Record;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::metrics::ShadowMetrics;
use crate::plane::DataPlane;
use crate::providers::{Provider, Reply};
use crate::record::{Served, enqueue, is_refusal, pair_side};

const DAY_MS: i64 = 86_400_000;
/// How long a shadow task waits for the user's (baseline) answer to finish.
const BASELINE_WAIT: Duration = Duration::from_secs(600);
const CACHE_MAX_ENTRIES: usize = 10_000;

/// What the request path hands to the dispatcher.
pub struct ShadowJob<'a> {
    pub request: &'a ChatRequest,
    pub route: &'a RouteConfig,
    pub candidate: &'a Arc<VariantConfig>,
    pub view: &'a RolloutView,
    pub served: &'a Served,
}

/// Identical (variant, request) answered once within the TTL.
struct ResponseCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
}

impl ResponseCache {
    fn key(variant: &str, body: &[u8]) -> [u8; 32] {
        // The body as sent: requests equal byte for byte share an answer.
        let mut h = Sha256::new();
        h.update(variant.as_bytes());
        h.update([0]);
        h.update(body);
        h.finalize().into()
    }

    fn get(&self, key: &[u8; 32]) -> Option<Answer> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: [u8; 32], value: Answer) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= CACHE_MAX_ENTRIES {
                return;
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

pub struct ShadowDispatcher {
    permits: Arc<Semaphore>,
    timeout: Duration,
    max_cost_micro_usd: Option<u64>,
    max_tokens: Option<u64>,
    day: AtomicI64,
    spent_micro_usd: AtomicU64,
    spent_tokens: AtomicU64,
    cache: Option<ResponseCache>,
}

impl ShadowDispatcher {
    pub fn new(cfg: &ShadowConfig) -> ShadowDispatcher {
        ShadowDispatcher {
            permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
            timeout: cfg.timeout,
            max_cost_micro_usd: cfg.max_cost_usd_per_day.map(|c| (c * 1e6).round() as u64),
            max_tokens: cfg.max_tokens_per_day,
            day: AtomicI64::new(i64::MIN),
            spent_micro_usd: AtomicU64::new(0),
            spent_tokens: AtomicU64::new(0),
            cache: cfg.cache_ttl.map(|ttl| ResponseCache {
                ttl,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn roll_day(&self, now_ms: i64) {
        let today = now_ms.div_euclid(DAY_MS);
        let seen = self.day.load(Ordering::Acquire);
        if seen != today
            && self
                .day
                .compare_exchange(seen, today, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.spent_micro_usd.store(0, Ordering::Release);
            self.spent_tokens.store(0, Ordering::Release);
        }
    }

    fn over_budget(&self) -> Option<&'static str> {
        if self
            .max_cost_micro_usd
            .is_some_and(|cap| self.spent_micro_usd.load(Ordering::Acquire) >= cap)
        {
            return Some("budget_cost");
        }
        if self
            .max_tokens
            .is_some_and(|cap| self.spent_tokens.load(Ordering::Acquire) >= cap)
        {
            return Some("budget_tokens");
        }
        None
    }

    fn charge(&self, cost_usd: f64, tokens: u64) {
        self.spent_micro_usd
            .fetch_add((cost_usd * 1e6).round() as u64, Ordering::AcqRel);
        self.spent_tokens.fetch_add(tokens, Ordering::AcqRel);
    }

    /// Start the candidate call for a shadowed request, or skip it (counted). Returns where the
    /// request path must send the baseline's side once it is known.
    pub fn dispatch(
        &self,
        gw: &DataPlane,
        job: ShadowJob<'_>,
    ) -> Option<oneshot::Sender<PairSide>> {
        let metrics = gw
            .metrics
            .shadow(&job.route.name, &job.candidate.name)
            .cloned();
        let drop_for = |reason: &'static str| {
            gw.metrics.shadow_dropped(reason);
            if let Some(m) = &metrics {
                m.dropped.inc();
            }
            None
        };
        if gw.shutdown.is_cancelled() {
            return drop_for("shutting_down");
        }
        self.roll_day(gw.clock.now_ms());
        if let Some(reason) = self.over_budget() {
            return drop_for(reason);
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return drop_for("max_in_flight");
        };
        let Some(provider) = gw.providers.get(&job.candidate.provider).cloned() else {
            return drop_for("no_provider");
        };
        let (tx, rx) = oneshot::channel::<PairSide>();
        let s = job.served;
        let pair = Pair {
            request_id: s.request_id.clone(),
            ts_ms: s.ts_ms,
            route: s.route.clone(),
            rollout: job.view.rollout.clone(),
            stage: job.view.stage.clone(),
            key_hash: s.key_hash.clone(),
            tenant: s.tenant.clone(),
            class: s.class.clone(),
            prompt: None,
            prompt_hash: String::new(),
            baseline: PairSide::default(),
            candidate: PairSide::default(),
            tools: None,
            response_format: None,
            embedding_similarity: None,
            judge: None,
            features: None,
        };
        let mut span = gw
            .telemetry
            .shadow(s.span.context(), &s.route, &s.request_id);
        span.assigned(
            &s.request_id,
            job.candidate,
            "shadow",
            Some(&job.view.rollout),
            Some(&job.view.stage),
        );
        let call = ShadowCall {
            gw: gw.clone(),
            // Shares the client's bytes; the candidate's body is written in the task.
            request: job.request.clone(),
            candidate: job.candidate.clone(),
            provider,
            metrics,
            timeout: self.timeout,
        };
        gw.tasks.spawn(call.run(pair, rx, permit, span));
        Some(tx)
    }
}

/// One shadow call, run off the request path.
struct ShadowCall {
    gw: DataPlane,
    request: ChatRequest,
    candidate: Arc<VariantConfig>,
    provider: Provider,
    metrics: Option<Arc<ShadowMetrics>>,
    timeout: Duration,
}

impl ShadowCall {
    async fn run(
        self,
        mut pair: Pair,
        baseline: oneshot::Receiver<PairSide>,
        permit: OwnedSemaphorePermit,
        mut span: crate::telemetry::RequestSpan,
    ) {
        let gw = self.gw.clone();
        let body = request::for_variant(&self.request, &self.candidate, false);
        let prompt = self.request.raw_messages();
        pair.prompt_hash = rampart_core::hex::encode(&Sha256::digest(prompt.as_bytes()));
        pair.prompt = gw.config.store.capture_text.then(|| prompt.to_string());
        pair.tools = self.request.field_value("tools");
        pair.response_format = self.request.field_value("response_format");
        pair.candidate = self.call_candidate(&body, pair.class.as_deref()).await;
        let side = &pair.candidate;
        span.finish(
            if side.error.is_some() { 502 } else { 200 },
            side.error
                .is_none()
                .then_some((side.prompt_tokens, side.completion_tokens)),
            side.finish_reason.as_deref(),
            side.error.as_deref(),
        );
        pair.baseline = match tokio::time::timeout(BASELINE_WAIT, baseline).await {
            Ok(Ok(b)) => b,
            _ => PairSide {
                error: Some("the baseline's answer was not recorded".into()),
                ..PairSide::default()
            },
        };
        gw.signal(crate::signal::Signal::Pair {
            rollout: pair.rollout.clone(),
            ts_ms: gw.clock.now_ms(),
            baseline_error: pair.baseline.error.is_some(),
            candidate_error: pair.candidate.error.is_some(),
            baseline_refusal: pair.baseline.refusal,
            candidate_refusal: pair.candidate.refusal,
            baseline_latency_ms: pair.baseline.latency_ms,
            candidate_latency_ms: (!pair.candidate.cached).then_some(pair.candidate.latency_ms),
        });
        // The guardrails have the pair; what follows only enriches the stored record.
        pair.embedding_similarity = crate::embeddings::similarity(&gw, &pair).await;
        drop(permit);
        if let Some(admitted) = gw.judges.admit(&gw, &pair) {
            // The candidate's request keeps the client's user messages as they were.
            let question = serde_json::from_slice::<Map<String, Value>>(&body)
                .map(|m| crate::judge::question(&m))
                .unwrap_or_default();
            pair.judge = Some(admitted.judge(&gw, &question, &pair).await);
        }
        // A few microseconds here, pair by pair, rather than a whole batch's worth at once
        // on the writer's thread (which shares the cores with the request path).
        pair.features = Some(Box::new(pair_features(&pair)));
        enqueue(&gw, Record::Pair(pair));
    }

    /// The candidate's side: from the cache, or from one call bounded by `shadow.timeout`.
    async fn call_candidate(&self, body: &bytes::Bytes, class: Option<&str>) -> PairSide {
        let dispatcher = &self.gw.shadow;
        let started = Instant::now();
        let cache_key = dispatcher
            .cache
            .as_ref()
            .map(|_| ResponseCache::key(&self.candidate.name, body));
        let cached = match (&dispatcher.cache, &cache_key) {
            (Some(c), Some(k)) => c.get(k),
            _ => None,
        };
        let (answer, error, outcome) = match &cached {
            Some(a) => (Some(a.clone()), None, "ok"),
            None => {
                match tokio::time::timeout(self.timeout, self.provider.chat(body, class, false))
                    .await
                {
                    Ok(Ok(Reply::Json(c))) => {
                        let answer = c.answer;
                        if let (Some(cache), Some(k)) = (&dispatcher.cache, cache_key) {
                            cache.put(k, answer.clone());
                        }
                        (Some(answer), None, "ok")
                    }
                    Ok(Ok(Reply::Stream(_))) => (
                        None,
                        Some("provider streamed an unrequested stream".into()),
                        "error",
                    ),
                    Ok(Err(e @ crate::providers::ProviderError::Timeout(_))) => {
                        (None, Some(e.describe()), "timeout")
                    }
                    Ok(Err(e)) => (None, Some(e.describe()), "error"),
                    Err(_) => (None, Some("timeout".to_string()), "timeout"),
                }
            }
        };
        let refusal = answer.as_ref().is_some_and(|a| is_refusal(&self.gw, a));
        let mut side = pair_side(
            &self.gw,
            &self.candidate,
            answer.as_ref(),
            started.elapsed(),
            None,
            error,
            refusal,
        );
        side.cached = cached.is_some();
        if !side.cached {
            dispatcher.charge(side.cost_usd, side.prompt_tokens + side.completion_tokens);
        }
        if let Some(m) = &self.metrics {
            match outcome {
                "ok" => m.ok.inc(),
                "timeout" => m.timeout.inc(),
                _ => m.error.inc(),
            };
            if !side.cached {
                m.duration.observe(side.latency_ms / 1e3);
                m.cost.inc_by(side.cost_usd);
            }
        }
        side
    }
}
