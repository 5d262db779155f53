//! Fixtures shared by the integration tests: sample records and a store wrapper with a hook on
//! batch writes (to stall or fail them).
#![allow(dead_code)]

pub mod pg;

use std::path::Path;

use rampart_core::compare::PairFeatures;
use rampart_core::record::{Feedback, Outcome, Pair, PairSide, RequestEvent};
use rampart_core::routing::Cohort;
use rampart_store::{
    AuditEntry, EventStore, FeedbackStore, PairFilter, PairPage, PairQuery, PairStore, Result,
    RolloutStore, SqliteStore, Store,
};

pub fn event(id: &str, rollout: &str, ts_ms: i64) -> RequestEvent {
    RequestEvent {
        request_id: id.to_owned(),
        ts_ms,
        route: "support".into(),
        rollout: Some(rollout.to_owned()),
        stage: Some("canary-1".into()),
        variant: "v2".into(),
        cohort: Cohort::Canary,
        key_hash: Some("ab12".into()),
        tenant: Some("acme".into()),
        class: Some("refunds".into()),
        status: 200,
        outcome: Outcome::Ok,
        latency_ms: 123.5,
        ttft_ms: Some(40.25),
        prompt_tokens: 17,
        completion_tokens: 250,
        cost_usd: 0.0042,
        refusal: false,
        streamed: true,
        finish_reason: Some("stop".into()),
        output_text: Some("Sure, here is your refund.".into()),
    }
}

pub fn pair(id: &str, rollout: &str, ts_ms: i64, class: Option<&str>) -> Pair {
    Pair {
        request_id: id.to_owned(),
        ts_ms,
        route: "support".into(),
        rollout: rollout.to_owned(),
        stage: "shadow".into(),
        key_hash: Some("ab12".into()),
        tenant: None,
        class: class.map(str::to_owned),
        prompt: Some(r#"[{"role":"user","content":"refund?"}]"#.into()),
        prompt_hash: "deadbeef".into(),
        baseline: PairSide {
            variant: "v1".into(),
            model: "support-old".into(),
            prompt_version: Some("support-v1".into()),
            text: Some("Hi! Sure thing.".into()),
            tool_calls: None,
            finish_reason: Some("stop".into()),
            prompt_tokens: 10,
            completion_tokens: 20,
            latency_ms: 400.0,
            ttft_ms: Some(100.0),
            cost_usd: 0.001,
            refusal: false,
            error: None,
            cached: false,
        },
        candidate: PairSide {
            variant: "v2".into(),
            model: "support-new".into(),
            prompt_version: None,
            text: None,
            tool_calls: Some(serde_json::json!([{
                "id": "call_1",
                "type": "function",
                "function": {"name": "refund", "arguments": "{\"order\":42}"}
            }])),
            finish_reason: Some("tool_calls".into()),
            prompt_tokens: 10,
            completion_tokens: 0,
            latency_ms: 350.5,
            ttft_ms: None,
            cost_usd: 0.0005,
            refusal: true,
            error: Some("status 500: upstream".into()),
            cached: true,
        },
        tools: Some(serde_json::json!([{"type": "function", "function": {"name": "refund"}}])),
        response_format: None,
        embedding_similarity: Some(0.5),
        judge: None,
        features: None,
    }
}

pub type Hook = Box<dyn Fn(&[RequestEvent], &[Pair]) -> Result<()> + Send + Sync>;

/// A [`SqliteStore`] whose batch writes first go through `hook` (which may block or fail).
pub struct Hooked {
    pub inner: SqliteStore,
    pub hook: Hook,
}

impl Hooked {
    pub fn open(path: &Path, hook: Hook) -> Hooked {
        Hooked {
            inner: SqliteStore::open(path).unwrap(),
            hook,
        }
    }
}

impl EventStore for Hooked {
    fn insert_events(&self, events: &[RequestEvent]) -> Result<()> {
        self.inner.insert_events(events)
    }
    fn event_exists(&self, request_id: &str) -> Result<bool> {
        self.inner.event_exists(request_id)
    }
    fn get_event(&self, request_id: &str) -> Result<Option<RequestEvent>> {
        self.inner.get_event(request_id)
    }
    fn count_events(&self) -> Result<u64> {
        self.inner.count_events()
    }
    fn events_since(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<RequestEvent>> {
        self.inner.events_since(rollout, since_ms, limit)
    }
    fn latest_events(&self, rollout: &str, limit: usize) -> Result<Vec<RequestEvent>> {
        self.inner.latest_events(rollout, limit)
    }
}

impl FeedbackStore for Hooked {
    fn insert_feedback(&self, fb: &Feedback) -> Result<bool> {
        self.inner.insert_feedback(fb)
    }
    fn feedback_for(&self, request_id: &str) -> Result<Vec<Feedback>> {
        self.inner.feedback_for(request_id)
    }
    fn feedback_with_events(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(RequestEvent, Feedback)>> {
        self.inner.feedback_with_events(rollout, since_ms, limit)
    }
}

impl PairStore for Hooked {
    fn insert_pairs(&self, pairs: &[Pair]) -> Result<()> {
        self.inner.insert_pairs(pairs)
    }
    fn recent_pairs(
        &self,
        rollout: &str,
        limit: usize,
        class: Option<&str>,
        since_ms: Option<i64>,
    ) -> Result<Vec<Pair>> {
        self.inner.recent_pairs(rollout, limit, class, since_ms)
    }
    fn pairs_page(&self, rollout: &str, query: &PairQuery, limit: usize) -> Result<PairPage> {
        self.inner.pairs_page(rollout, query, limit)
    }
    fn count_pairs(&self, rollout: &str) -> Result<u64> {
        self.inner.count_pairs(rollout)
    }
    fn for_each_pair(&self, rollout: &str, f: &mut dyn FnMut(Pair)) -> Result<()> {
        self.inner.for_each_pair(rollout, f)
    }
    fn get_pair(&self, rollout: &str, request_id: &str) -> Result<Option<Pair>> {
        self.inner.get_pair(rollout, request_id)
    }
    fn for_each_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        f: &mut dyn FnMut(PairFeatures),
    ) -> Result<()> {
        self.inner.for_each_pair_features(rollout, filter, f)
    }
    fn recent_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        limit: usize,
    ) -> Result<Vec<PairFeatures>> {
        self.inner.recent_pair_features(rollout, filter, limit)
    }
}

impl RolloutStore for Hooked {
    fn load_rollout_state(&self, rollout: &str) -> Result<Option<String>> {
        self.inner.load_rollout_state(rollout)
    }
    fn save_rollout_state(&self, rollout: &str, state_json: &str, updated_ms: i64) -> Result<()> {
        self.inner
            .save_rollout_state(rollout, state_json, updated_ms)
    }
    fn save_tenant_cap(
        &self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
        updated_ms: i64,
    ) -> Result<()> {
        self.inner
            .save_tenant_cap(rollout, tenant, max_percent, updated_ms)
    }
    fn tenant_caps(&self, rollout: &str) -> Result<std::collections::BTreeMap<String, f64>> {
        self.inner.tenant_caps(rollout)
    }
    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.inner.append_audit(entry)
    }
    fn audit_log(&self, rollout: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.inner.audit_log(rollout, limit)
    }
    fn load_rollout(&self, rollout: &str) -> Result<Option<rampart_store::StoredRollout>> {
        self.inner.load_rollout(rollout)
    }
    fn rollout_versions(&self) -> Result<std::collections::BTreeMap<String, i64>> {
        self.inner.rollout_versions()
    }
    fn apply_change(
        &self,
        change: &rampart_store::RolloutChange,
    ) -> Result<rampart_store::CasOutcome> {
        self.inner.apply_change(change)
    }
}

impl Store for Hooked {
    fn write_batch(&self, events: &[RequestEvent], pairs: &[Pair]) -> Result<()> {
        (self.hook)(events, pairs)?;
        self.inner.write_batch(events, pairs)
    }
}
