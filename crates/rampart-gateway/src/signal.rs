//! What the data plane tells the control plane about each request, feedback and shadow pair.
//!
//! The data plane only ever holds a [`SignalSender`]: sending never waits, and a full queue
//! drops the signal with a count (`rampart_events_dropped_total{reason="controller_queue_full"}`),
//! so the request path never waits on the controller.

use rampart_core::record::Thumbs;
use rampart_core::routing::Cohort;
use tokio::sync::mpsc;

/// One measurement for the controller's guardrails and gates.
#[derive(Debug)]
pub enum Signal {
    Request {
        rollout: String,
        cohort: Cohort,
        ts_ms: i64,
        error: bool,
        refusal: bool,
        latency_ms: f64,
        /// Time to the first content token, for a streamed answer.
        ttft_ms: Option<f64>,
        /// Token counts and cost, `None` without an answer.
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
        cost_usd: Option<f64>,
    },
    Feedback {
        rollout: String,
        cohort: Cohort,
        ts_ms: i64,
        thumbs: Option<Thumbs>,
    },
    Pair {
        rollout: String,
        ts_ms: i64,
        baseline_error: bool,
        candidate_error: bool,
        baseline_refusal: bool,
        candidate_refusal: bool,
        baseline_latency_ms: f64,
        /// `None` for a cached candidate answer (kept out of latency statistics).
        candidate_latency_ms: Option<f64>,
    },
}

impl Signal {
    /// The rollout this signal is about.
    pub fn rollout(&self) -> &str {
        match self {
            Signal::Request { rollout, .. }
            | Signal::Feedback { rollout, .. }
            | Signal::Pair { rollout, .. } => rollout,
        }
    }
}

/// The data plane's end of the signal queue.
#[derive(Clone)]
pub struct SignalSender(mpsc::Sender<Signal>);

/// The control plane's end.
pub type SignalReceiver = mpsc::Receiver<Signal>;

/// A bounded signal queue of `capacity` (at least 1).
pub fn channel(capacity: usize) -> (SignalSender, SignalReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (SignalSender(tx), rx)
}

impl SignalSender {
    /// Queue a signal; never waits. `false` when it was dropped (queue full or closed).
    pub fn try_send(&self, s: Signal) -> bool {
        self.0.try_send(s).is_ok()
    }
}
