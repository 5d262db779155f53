//! The capture policy: what user and model text may be stored.
//!
//! Every record passes through [`apply`] on its way to the writer, so the policy holds in one
//! place whatever built the record. With `store.capture_text = false` no text written by a user
//! or a model is stored: not prompts, answers, tool-call arguments, the request's `tools` and
//! `response_format`, feedback's `final_text`, nor the provider's error messages (which can quote
//! the request); only their hashes, counts, timings and statuses. With capture on, every match
//! of a `store.redact` pattern is replaced by [`REDACTED`] in each stored string, including the
//! strings inside JSON values.

use rampart_core::config::StoreConfig;
use rampart_core::record::{Feedback, Pair, PairSide, RequestEvent};
use rampart_store::Record;
use serde_json::Value;

/// What a redacted match is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Apply the capture policy to a record about to be stored.
pub fn apply(store: &StoreConfig, record: &mut Record) {
    match record {
        Record::Event(e) => event(store, e),
        Record::Pair(p) => pair(store, p),
    }
}

pub fn event(store: &StoreConfig, e: &mut RequestEvent) {
    text(store, &mut e.output_text);
}

pub fn feedback(store: &StoreConfig, f: &mut Feedback) {
    text(store, &mut f.final_text);
}

pub fn pair(store: &StoreConfig, p: &mut Pair) {
    text(store, &mut p.prompt);
    json(store, &mut p.tools);
    json(store, &mut p.response_format);
    side(store, &mut p.baseline);
    side(store, &mut p.candidate);
}

fn side(store: &StoreConfig, s: &mut PairSide) {
    text(store, &mut s.text);
    json(store, &mut s.tool_calls);
    if !store.capture_text
        && let Some(err) = &mut s.error
    {
        // "status 400: <the provider's message, which may quote the request>" keeps its head.
        if let Some(at) = err.find(": ") {
            err.truncate(at);
        }
    }
}

fn text(store: &StoreConfig, t: &mut Option<String>) {
    if !store.capture_text {
        *t = None;
    } else if let Some(s) = t {
        redact(store, s);
    }
}

fn json(store: &StoreConfig, v: &mut Option<Value>) {
    if !store.capture_text {
        *v = None;
    } else if let Some(v) = v
        && !store.redact.is_empty()
    {
        redact_value(store, v);
    }
}

fn redact(store: &StoreConfig, s: &mut String) {
    for re in &store.redact {
        if re.is_match(s) {
            *s = re.replace_all(s, REDACTED).into_owned();
        }
    }
}

fn redact_value(store: &StoreConfig, v: &mut Value) {
    // Iterative, so a deeply nested value cannot exhaust the stack.
    let mut todo = vec![v];
    while let Some(v) = todo.pop() {
        match v {
            Value::String(s) => redact(store, s),
            Value::Array(a) => todo.extend(a.iter_mut()),
            Value::Object(o) => todo.extend(o.values_mut()),
            _ => {}
        }
    }
}
