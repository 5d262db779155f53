//! The terminal rendering of a [`ComparisonReport`]: a plain-text summary, no colour codes,
//! every line at most `width` characters (longer lines are cut with `…`).

use std::fmt::Write as _;

use super::report::{ComparisonReport, GroupReport, Metrics, PairedRate};

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

fn pv(x: Option<f64>) -> String {
    match x {
        None => "–".to_string(),
        Some(p) if p < 1e-4 => "<1e-4".to_string(),
        Some(p) => format!("{p:.4}"),
    }
}

fn flag(on: bool) -> &'static str {
    if on { "  ⚑ FLAG" } else { "" }
}

fn fit(line: &str, width: usize) -> String {
    let width = width.max(20);
    if line.chars().count() <= width {
        line.to_string()
    } else {
        let mut s: String = line.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn rate_line(name: &str, r: &PairedRate) -> String {
    format!(
        "{name:<13} {} → {}  (Δ {} pts; McNemar p {} adj {}){}",
        pct(r.baseline_rate),
        pct(r.candidate_rate),
        num(r.delta.map(|d| d * 100.0), 1),
        pv(Some(r.p_value)),
        pv(r.p_adjusted),
        flag(r.flagged)
    )
}

/// Renders the report for a terminal `width` columns wide (at least 20).
pub fn render_text(report: &ComparisonReport, width: usize) -> String {
    let m = &report.metrics;
    let mut lines: Vec<String> = Vec::new();
    headline(&mut lines, report);
    equivalence_and_length(&mut lines, m);
    lines.push(rate_line("refusal", &m.refusal));
    lines.push(rate_line("errors", &m.errors));
    openings(&mut lines, m);
    formats(&mut lines, m);
    latency_and_cost(&mut lines, m);
    judge(&mut lines, report);
    groups(&mut lines, report);
    most_different(&mut lines, report);
    let mut out = String::new();
    for line in lines {
        let _ = writeln!(out, "{}", fit(&line, width));
    }
    out
}

/// The title line, the flags and a blank line.
fn headline(lines: &mut Vec<String>, report: &ComparisonReport) {
    lines.push(format!(
        "rampart comparison report: {} pairs ({} comparable)",
        report.pairs, report.comparable_pairs
    ));
    lines.push(if report.flags.is_empty() {
        "flags: none".to_string()
    } else {
        format!("flags: {}", report.flags.join(", "))
    });
    lines.push(String::new());
}

/// The equivalence rate and the length ratio.
fn equivalence_and_length(lines: &mut Vec<String>, m: &Metrics) {
    let e = &m.equivalence;
    lines.push(format!(
        "{:<13} {} [{}, {}]  identical {}, equivalent {}, different {}; mean chrF {}",
        "equivalence",
        pct(e.rate),
        pct(e.ci_low),
        pct(e.ci_high),
        e.identical,
        e.equivalent,
        e.materially_different,
        num(e.mean_similarity, 3)
    ));
    let l = &m.length_ratio;
    lines.push(format!(
        "{:<13} ×{} [{}, {}]  tokens {} → {}; KS D {} p {} adj {}{}",
        "length ratio",
        num(l.estimate, 3),
        num(l.ci_low, 3),
        num(l.ci_high, 3),
        num(l.baseline_mean_tokens, 1),
        num(l.candidate_mean_tokens, 1),
        num(l.ks_statistic, 3),
        pv(l.p_value),
        pv(l.p_adjusted),
        flag(l.flagged)
    ));
}

/// The opening-phrase drift and the top five phrases of each side.
fn openings(lines: &mut Vec<String>, m: &Metrics) {
    let o = &m.openings;
    lines.push(format!(
        "{:<13} drift (TVD) {}; most changed \"{}\" {} pts, p adj {}{}",
        "openings",
        num(o.drift, 3),
        o.phrase.as_deref().unwrap_or("–"),
        num(o.share_delta.map(|d| d * 100.0), 1),
        pv(o.p_adjusted),
        flag(o.drift_flagged)
    ));
    for (side, top) in [
        ("baseline", &o.baseline_top),
        ("candidate", &o.candidate_top),
    ] {
        let items: Vec<String> = top
            .iter()
            .take(5)
            .map(|s| format!("\"{}\" {}", s.phrase, pct(Some(s.share))))
            .collect();
        lines.push(format!("  {side:<10} {}", items.join(", ")));
    }
}

/// The format features that occur on either side.
fn formats(lines: &mut Vec<String>, m: &Metrics) {
    lines.push("formats       baseline → candidate  changed  p adj".to_string());
    for f in &m.formats {
        if f.baseline_only + f.candidate_only == 0 && f.baseline_rate.unwrap_or(0.0) == 0.0 {
            continue;
        }
        lines.push(format!(
            "  {:<20} {} → {}  {} ({})  {}{}",
            f.feature,
            pct(f.baseline_rate),
            pct(f.candidate_rate),
            pct(f.changed_rate),
            f.direction,
            pv(f.p_adjusted),
            flag(f.flagged)
        ));
    }
}

/// Latency percentiles and cost per request.
fn latency_and_cost(lines: &mut Vec<String>, m: &Metrics) {
    let lat = &m.latency;
    lines.push(format!(
        "{:<13} p50 {} → {} ms, p95 {} → {} ms",
        "latency",
        num(lat.baseline_p50_ms, 0),
        num(lat.candidate_p50_ms, 0),
        num(lat.baseline_p95_ms, 0),
        num(lat.candidate_p95_ms, 0)
    ));
    let c = &m.cost;
    lines.push(format!(
        "{:<13} ${} → ${} per request; ${} → ${} per successful request",
        "cost",
        num(c.baseline_mean_usd, 5),
        num(c.candidate_mean_usd, 5),
        num(c.baseline_per_success_usd, 5),
        num(c.candidate_per_success_usd, 5)
    ));
}

/// The judge's win rate, when the report was judged.
fn judge(lines: &mut Vec<String>, report: &ComparisonReport) {
    if let Some(j) = &report.judge {
        lines.push(format!(
            "{:<13} win rate {} [{}, {}] (swap-corrected, {} pairs); first-position only {}",
            "judge",
            pct(j.win_rate),
            pct(j.ci_low),
            pct(j.ci_high),
            j.judged_pairs,
            pct(j.uncorrected_win_rate)
        ));
    }
}

/// Per class, then per tenant: how many are flagged, and the flagged ones.
fn groups(lines: &mut Vec<String>, report: &ComparisonReport) {
    for (title, groups) in [("classes", &report.classes), ("tenants", &report.tenants)] {
        if groups.is_empty() {
            continue;
        }
        lines.push(String::new());
        let flagged: Vec<&GroupReport> = groups.iter().filter(|g| !g.flags.is_empty()).collect();
        let few = groups.iter().filter(|g| g.too_few_pairs).count();
        let mut head = format!("{title}: {} of {} flagged", flagged.len(), groups.len());
        if few > 0 {
            let _ = write!(
                head,
                "; {few} with too few pairs (< {}), not tested",
                report.settings.min_class_pairs
            );
        }
        lines.push(head);
        for g in flagged {
            let name = g.class.as_deref().or(g.tenant.as_deref()).unwrap_or("");
            lines.push(format!(
                "  {name:<28} {:>6} pairs  refusal {} → {}  {}",
                g.pairs,
                pct(g.metrics.refusal.baseline_rate),
                pct(g.metrics.refusal.candidate_rate),
                g.flags.join(", ")
            ));
        }
    }
}

/// The five most different pairs, each text on one line.
fn most_different(lines: &mut Vec<String>, report: &ComparisonReport) {
    if !report.most_different.is_empty() {
        lines.push(String::new());
        lines.push("most different pairs".to_string());
        for d in report.most_different.iter().take(5) {
            lines.push(format!(
                "  {} ({}; chrF {:.3})",
                d.request_id,
                d.class.as_deref().unwrap_or("-"),
                d.similarity
            ));
            lines.push(format!("    baseline:  {}", one_line(&d.baseline)));
            lines.push(format!("    candidate: {}", one_line(&d.candidate)));
        }
    }
}
