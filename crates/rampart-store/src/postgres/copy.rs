//! `COPY … FROM STDIN` text format: rows encoded on the calling thread, shipped as one buffer.
//!
//! Invariants:
//! - Fields are tab-separated, rows newline-terminated, NULL is `\N`; backslash, tab, newline
//!   and carriage return inside text are backslash-escaped, so no field can end a row or the
//!   data early.
//! - NUL, which PostgreSQL's `text` cannot hold, becomes U+FFFD.
//! - Floats are written in Rust's shortest round-trip form, which PostgreSQL's `float8` reads
//!   back to the same value; infinities and NaN by PostgreSQL's own spelling.

use std::fmt::Write as _;

use rampart_core::compare::PairFeatures;
use rampart_core::record::{Pair, PairSide, RequestEvent};

use crate::columns::verdict_str;
use crate::error::Result;
use crate::sqlite::features::{equivalence_str, side_flags};

/// One `COPY` payload under construction.
#[derive(Debug, Default)]
pub(super) struct CopyText {
    buf: String,
    in_row: bool,
    rows: usize,
}

impl CopyText {
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.buf.into_bytes())
    }

    fn sep(&mut self) {
        if self.in_row {
            self.buf.push('\t');
        }
        self.in_row = true;
    }

    fn null(&mut self) {
        self.sep();
        self.buf.push_str("\\N");
    }

    fn text(&mut self, s: &str) {
        self.sep();
        for c in s.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\t' => self.buf.push_str("\\t"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                '\0' => self.buf.push('\u{FFFD}'),
                c => self.buf.push(c),
            }
        }
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn int(&mut self, v: impl std::fmt::Display) {
        self.sep();
        let _ = write!(self.buf, "{v}");
    }

    fn float(&mut self, v: f64) {
        self.sep();
        if v.is_nan() {
            self.buf.push_str("NaN");
        } else if v.is_infinite() {
            self.buf
                .push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        } else {
            let _ = write!(self.buf, "{v}");
        }
    }

    fn opt_float(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.float(v),
            None => self.null(),
        }
    }

    fn bool(&mut self, v: bool) {
        self.sep();
        self.buf.push(if v { 't' } else { 'f' });
    }

    fn opt_bool(&mut self, v: Option<bool>) {
        match v {
            Some(v) => self.bool(v),
            None => self.null(),
        }
    }

    fn json(&mut self, v: &Option<serde_json::Value>) -> Result<()> {
        match v {
            Some(v) => self.text(&serde_json::to_string(v)?),
            None => self.null(),
        }
        Ok(())
    }

    fn end_row(&mut self) {
        self.buf.push('\n');
        self.in_row = false;
        self.rows += 1;
    }
}

/// `ord` then [`crate::columns::EVENT_COLUMNS`].
pub(super) fn event_row(w: &mut CopyText, ord: usize, e: &RequestEvent) {
    w.int(ord);
    w.text(&e.request_id);
    w.int(e.ts_ms);
    w.text(&e.route);
    w.opt_text(e.rollout.as_deref());
    w.opt_text(e.stage.as_deref());
    w.text(&e.variant);
    w.text(e.cohort.as_str());
    w.opt_text(e.key_hash.as_deref());
    w.opt_text(e.tenant.as_deref());
    w.opt_text(e.class.as_deref());
    w.int(e.status);
    w.text(e.outcome.as_str());
    w.float(e.latency_ms);
    w.opt_float(e.ttft_ms);
    w.int(e.prompt_tokens);
    w.int(e.completion_tokens);
    w.float(e.cost_usd);
    w.bool(e.refusal);
    w.bool(e.streamed);
    w.opt_text(e.finish_reason.as_deref());
    w.opt_text(e.output_text.as_deref());
    w.end_row();
}

fn side(w: &mut CopyText, s: &PairSide) -> Result<()> {
    w.text(&s.variant);
    w.text(&s.model);
    w.opt_text(s.prompt_version.as_deref());
    w.opt_text(s.text.as_deref());
    w.json(&s.tool_calls)?;
    w.opt_text(s.finish_reason.as_deref());
    w.int(s.prompt_tokens);
    w.int(s.completion_tokens);
    w.float(s.latency_ms);
    w.opt_float(s.ttft_ms);
    w.float(s.cost_usd);
    w.bool(s.refusal);
    w.opt_text(s.error.as_deref());
    w.bool(s.cached);
    Ok(())
}

/// `ord` then [`crate::columns::PAIR_COLUMNS`].
pub(super) fn pair_row(w: &mut CopyText, ord: usize, p: &Pair) -> Result<()> {
    w.int(ord);
    w.text(&p.request_id);
    w.int(p.ts_ms);
    w.text(&p.route);
    w.text(&p.rollout);
    w.text(&p.stage);
    w.opt_text(p.key_hash.as_deref());
    w.opt_text(p.tenant.as_deref());
    w.opt_text(p.class.as_deref());
    w.opt_text(p.prompt.as_deref());
    w.text(&p.prompt_hash);
    side(w, &p.baseline)?;
    side(w, &p.candidate)?;
    w.json(&p.tools)?;
    w.json(&p.response_format)?;
    w.opt_float(p.embedding_similarity);
    let judge = p.judge.as_ref();
    w.opt_text(judge.map(|j| j.model.as_str()));
    w.opt_text(judge.and_then(|j| j.first).map(verdict_str));
    w.opt_text(judge.and_then(|j| j.second).map(verdict_str));
    w.opt_float(judge.map(|j| j.cost_usd));
    w.opt_text(judge.and_then(|j| j.error.as_deref()));
    w.end_row();
    Ok(())
}

/// [`super::batch::FEATURE_STAGE_COLUMNS`] of a pair's features.
pub(super) fn features_row(w: &mut CopyText, p: &Pair, f: &PairFeatures) {
    w.text(&p.rollout);
    w.text(&p.stage);
    w.text(&f.request_id);
    w.int(f.ts_ms);
    w.opt_text(f.class.as_deref());
    w.opt_text(f.tenant.as_deref());
    for s in [&f.baseline, &f.candidate] {
        w.int(side_flags(s));
        w.int(s.chars);
        w.int(s.tokens);
        w.int(s.completion_tokens);
        w.opt_text(s.opening.as_deref());
        w.float(s.latency_ms);
        w.float(s.cost_usd);
    }
    w.bool(f.exact_match);
    w.bool(f.normalized_match);
    w.float(f.similarity);
    w.opt_float(f.embedding_similarity);
    w.opt_text(f.equivalence.map(equivalence_str));
    w.opt_float(f.length_ratio);
    w.opt_text(f.judge.and_then(|j| j.first).map(verdict_str));
    w.opt_text(f.judge.and_then(|j| j.second).map(verdict_str));
    w.opt_bool(f.judge.map(|j| j.failed));
    w.end_row();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_null_is_marked() {
        let mut w = CopyText::default();
        w.text("a\tb\nc\\d\re\0f");
        w.opt_text(None);
        w.float(f64::INFINITY);
        w.float(0.1);
        w.bool(true);
        w.end_row();
        assert_eq!(
            String::from_utf8(w.into_bytes().to_vec()).unwrap_or_default(),
            "a\\tb\\nc\\\\d\\re\u{FFFD}f\t\\N\tInfinity\t0.1\tt\n"
        );
    }
}
