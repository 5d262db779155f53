//! The renderers: the HTML page is self-contained and well-formed, has every section and
//! escapes pair texts; the text rendering respects the width.
#![allow(clippy::unwrap_used)]

use rampart_core::compare::judge::JudgeTally;
use rampart_core::compare::{
    Accumulator, CompareConfig, pair_features, render_html, render_html_with, render_text,
};
use rampart_core::record::{Pair, PairSide};
use rampart_stats::bootstrap::BootstrapConfig;

fn side(text: &str, latency: f64) -> PairSide {
    PairSide {
        variant: "v".into(),
        model: "m".into(),
        text: Some(text.into()),
        finish_reason: Some("stop".into()),
        completion_tokens: text.split_whitespace().count() as u64,
        latency_ms: latency,
        cost_usd: 0.001,
        ..PairSide::default()
    }
}

fn report() -> rampart_core::compare::ComparisonReport {
    let mut acc = Accumulator::new(CompareConfig::default());
    for i in 0..40 {
        let (b, c) = if i == 0 {
            (
                "Normal answer & more.".to_string(),
                "<script>alert('x')</script> Über “quotes” 東京".to_string(),
            )
        } else {
            (
                format!("Hi there! Your card {i} ships soon.\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
                format!("Dear customer, card {i} ships soon.\n\n- a: 1"),
            )
        };
        let p = Pair {
            request_id: format!("r{i}"),
            ts_ms: i,
            route: "support".into(),
            rollout: "r".into(),
            stage: "shadow".into(),
            key_hash: None,
            tenant: None,
            class: Some(
                if i % 2 == 0 {
                    "card_<arrival>"
                } else {
                    "refund"
                }
                .into(),
            ),
            prompt: None,
            prompt_hash: "h".into(),
            baseline: side(&b, 100.0 + i as f64),
            candidate: side(&c, 90.0 + i as f64),
            tools: None,
            response_format: None,
            embedding_similarity: None,
            judge: None,
            features: None,
        };
        acc.push(&pair_features(&p));
    }
    let mut r = acc.finish();
    let mut t = JudgeTally::new();
    t.push(
        Some(rampart_core::compare::Verdict::B),
        Some(rampart_core::compare::Verdict::A),
    );
    t.push(
        Some(rampart_core::compare::Verdict::A),
        Some(rampart_core::compare::Verdict::A),
    );
    r.judge = Some(t.finish(&BootstrapConfig::default()));
    r
}

/// Checks that tags nest properly (void elements and `/>` self-closing tags excepted).
fn well_formed(html: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let close = rest.find('>').ok_or("unclosed <")?;
        let tag = &rest[..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.is_empty() {
            return Err(format!("bad tag <{tag}>"));
        }
        if self_closing || ["meta", "br", "hr", "img", "link"].contains(&name.as_str()) {
            continue;
        }
        if tag.starts_with('/') {
            match stack.pop() {
                Some(top) if top == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else {
            stack.push(name);
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

#[test]
fn html_is_self_contained_well_formed_and_escaped() {
    let r = report();
    let series = vec![
        (1_000, "error_rate".to_string(), 0.01),
        (2_000, "error_rate".to_string(), 0.02),
        (1_500, "p95_latency_ms".to_string(), 800.0),
        (2_500, "p95_latency_ms".to_string(), f64::NAN),
    ];
    let html = render_html_with(&r, &series);
    for id in [
        "summary",
        "length",
        "openings",
        "formats",
        "judge",
        "classes",
        "guardrails",
        "pairs",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "missing section {id}"
        );
    }
    assert!(!html.contains("<script"), "pair text must be escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("card_&lt;arrival&gt;"));
    assert!(html.contains("Über “quotes” 東京"));
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no external assets"
    );
    assert!(!html.contains("<link") && !html.contains("src="));
    assert!(html.contains("<svg") && html.contains("<polyline"));
    assert!(!html.contains("NaN"));
    well_formed(&html).unwrap();
    well_formed(&render_html(&r)).unwrap();
    assert!(render_html(&r).contains("no guardrail series supplied"));
}

#[test]
fn text_rendering_fits_the_width() {
    let r = report();
    let text = render_text(&r, 60);
    assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
    assert!(text.contains("flags: ") && text.contains("equivalence") && text.contains("judge"));
    let wide = render_text(&r, 200);
    assert!(wide.contains("openings") && wide.contains("most different pairs"));
}
