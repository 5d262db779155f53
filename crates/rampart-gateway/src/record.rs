//! Accounting for one served request: metrics, the request event, and the baseline side of a
//! shadow pair. Everything leaves through bounded queues; a full queue drops the record and
//! counts it (`rampart_events_dropped_total`), never blocking the request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_core::config::VariantConfig;
use rampart_core::record::{Outcome, PairSide, RequestEvent};
use rampart_core::refusal;
use rampart_core::request::{Answer, ChunkFields};
use rampart_core::routing::Cohort;
use rampart_store::{Record, TrySendError};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::plane::DataPlane;

/// HTTP status recorded for a request whose client went away (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

/// Hand a record to the writer; count it when it cannot be queued.
pub fn enqueue(gw: &DataPlane, mut record: Record) {
    crate::capture::apply(&gw.config.store, &mut record);
    match gw.writer.try_send(record) {
        Ok(()) => {}
        Err(TrySendError::Full) => gw.metrics.event_dropped("queue_full"),
        Err(TrySendError::Closed) => gw.metrics.event_dropped("closed"),
    }
}

/// One side of a pair, from what a variant answered and whether that is a refusal
/// ([`is_refusal`], computed once per answer by the caller).
pub fn pair_side(
    gw: &DataPlane,
    variant: &VariantConfig,
    answer: Option<&Answer>,
    latency: Duration,
    ttft: Option<Duration>,
    error: Option<String>,
    refusal: bool,
) -> PairSide {
    let capture = gw.config.store.capture_text;
    PairSide {
        variant: variant.name.clone(),
        model: variant.model.clone(),
        prompt_version: variant.prompt_version.clone(),
        text: answer.filter(|_| capture).map(|a| a.text.clone()),
        tool_calls: answer.and_then(|a| a.tool_calls.clone()),
        finish_reason: answer.and_then(|a| a.finish_reason.clone()),
        prompt_tokens: answer.map_or(0, |a| a.prompt_tokens),
        completion_tokens: answer.map_or(0, |a| a.completion_tokens),
        latency_ms: latency.as_secs_f64() * 1e3,
        ttft_ms: ttft.map(|d| d.as_secs_f64() * 1e3),
        cost_usd: answer.map_or(0.0, |a| {
            variant.cost_usd(a.prompt_tokens, a.completion_tokens)
        }),
        refusal,
        error,
        cached: false,
    }
}

pub fn is_refusal(gw: &DataPlane, a: &Answer) -> bool {
    refusal::is_refusal(
        Some(&a.text),
        a.refusal_field.as_deref(),
        a.finish_reason.as_deref(),
        &gw.config.refusals.phrases,
    )
}

/// The context of one request between routing and its end.
pub struct Served {
    pub gw: DataPlane,
    pub request_id: String,
    pub ts_ms: i64,
    pub started: Instant,
    pub route: String,
    pub rollout: Option<String>,
    pub stage: Option<String>,
    pub variant: Arc<VariantConfig>,
    pub cohort: Cohort,
    pub key_hash: Option<String>,
    pub tenant: Option<String>,
    pub class: Option<String>,
    pub streamed: bool,
    /// Where the baseline's side goes when this request is shadowed.
    pub baseline_tx: Option<oneshot::Sender<PairSide>>,
    /// Set once the request has been recorded; a `Served` dropped before that (the client went
    /// away mid-call) records itself as cancelled.
    pub done: bool,
    /// The request's trace span, ended by [`Served::finish`].
    pub span: crate::telemetry::RequestSpan,
}

impl Served {
    /// Record the request's end: metrics, event, and the pair's baseline side.
    pub fn finish(
        &mut self,
        status: u16,
        outcome: Outcome,
        answer: Option<&Answer>,
        ttft: Option<Duration>,
        error: Option<String>,
    ) {
        if self.done {
            return;
        }
        self.done = true;
        self.span.finish(
            status,
            answer.map(|a| (a.prompt_tokens, a.completion_tokens)),
            answer.and_then(|a| a.finish_reason.as_deref()),
            error.as_deref(),
        );
        let latency = self.started.elapsed();
        let gw = self.gw.clone();
        let refusal = answer.is_some_and(|a| is_refusal(&gw, a));
        let (pt, ct) = answer.map_or((0, 0), |a| (a.prompt_tokens, a.completion_tokens));
        let cost = self.variant.cost_usd(pt, ct);
        if let Some(m) = gw
            .metrics
            .request(&self.route, &self.variant.name, self.cohort)
        {
            m.requests(outcome).inc();
            m.duration.observe(latency.as_secs_f64());
            if let Some(t) = ttft {
                m.ttft.observe(t.as_secs_f64());
            }
            if answer.is_some() {
                m.completion_tokens.observe(ct as f64);
                m.cost.inc_by(cost);
            }
            if refusal {
                m.refusals.inc();
            }
        }
        if let Some(rollout) = &self.rollout {
            gw.signal(crate::signal::Signal::Request {
                rollout: rollout.clone(),
                cohort: self.cohort,
                ts_ms: self.ts_ms,
                error: matches!(outcome, Outcome::Error | Outcome::Timeout),
                refusal,
                latency_ms: latency.as_secs_f64() * 1e3,
                ttft_ms: ttft.map(|d| d.as_secs_f64() * 1e3),
                prompt_tokens: answer.map(|_| pt),
                completion_tokens: answer.map(|_| ct),
                cost_usd: answer.map(|_| cost),
            });
        }
        if let Some(tx) = self.baseline_tx.take() {
            let side = pair_side(&gw, &self.variant, answer, latency, ttft, error, refusal);
            // The shadow task may have given up already; nothing to do then.
            let _ = tx.send(side);
        }
        let event = RequestEvent {
            request_id: std::mem::take(&mut self.request_id),
            ts_ms: self.ts_ms,
            route: std::mem::take(&mut self.route),
            rollout: self.rollout.take(),
            stage: self.stage.take(),
            variant: self.variant.name.clone(),
            cohort: self.cohort,
            key_hash: self.key_hash.take(),
            tenant: self.tenant.take(),
            class: self.class.take(),
            status,
            outcome,
            latency_ms: latency.as_secs_f64() * 1e3,
            ttft_ms: ttft.map(|d| d.as_secs_f64() * 1e3),
            prompt_tokens: pt,
            completion_tokens: ct,
            cost_usd: cost,
            refusal,
            streamed: self.streamed,
            finish_reason: answer.and_then(|a| a.finish_reason.clone()),
            output_text: answer
                .filter(|_| gw.config.store.capture_text)
                .map(|a| a.text.clone()),
        };
        enqueue(&gw, Record::Event(event));
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.finish(
            CLIENT_CLOSED,
            Outcome::Cancelled,
            None,
            None,
            Some("client closed the connection".into()),
        );
    }
}

/// Accounts a streamed answer chunk by chunk; records the request when the stream ends, fails,
/// or is dropped because the client went away.
pub struct StreamRecorder {
    served: Served,
    answer: Answer,
    ttft: Option<Duration>,
}

impl StreamRecorder {
    pub fn new(served: Served) -> StreamRecorder {
        StreamRecorder {
            served,
            answer: Answer::default(),
            ttft: None,
        }
    }

    pub fn push(&mut self, chunk: &ChunkFields) {
        let content = self.answer.push(chunk);
        if content && self.ttft.is_none() {
            self.ttft = Some(self.served.started.elapsed());
        }
    }

    pub fn complete(&mut self) {
        self.served
            .finish(200, Outcome::Ok, Some(&self.answer), self.ttft, None);
    }

    pub fn fail(&mut self, err: &ApiError) {
        let outcome = if matches!(err, ApiError::UpstreamTimeout(_)) {
            Outcome::Timeout
        } else {
            Outcome::Error
        };
        self.served.finish(
            200,
            outcome,
            Some(&self.answer),
            self.ttft,
            Some(err.to_string()),
        );
    }
}

impl StreamRecorder {
    /// The gateway cut the stream at its shutdown deadline: recorded as cancelled (not the
    /// variant's fault), with what was streamed so far.
    pub fn cut(&mut self, err: &ApiError) {
        self.served.finish(
            err.status().as_u16(),
            Outcome::Cancelled,
            Some(&self.answer),
            self.ttft,
            Some(err.to_string()),
        );
    }
}

impl Drop for StreamRecorder {
    fn drop(&mut self) {
        // Keep what was streamed before the client went away.
        self.served.finish(
            CLIENT_CLOSED,
            Outcome::Cancelled,
            Some(&self.answer),
            self.ttft,
            Some("client closed the stream".into()),
        );
    }
}
