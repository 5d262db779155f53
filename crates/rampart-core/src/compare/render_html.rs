//! The HTML rendering of a [`ComparisonReport`]: one self-contained page (inline CSS, inline
//! SVG plots, no scripts, no external assets) with sections `summary`, `length` (histograms
//! of both sides), `openings` (phrase bars), `formats`, `classes` (per-class regression table),
//! `guardrails` (time series supplied by the caller) and `pairs` (the most different pairs side
//! by side). Every text from the data (pair texts, class names, phrases) goes through
//! [`escape`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{ComparisonReport, OpeningShare};
use crate::outcomes::OutcomeSummary;

/// One guardrail observation: `(ts_ms, metric name, value)`.
pub type GuardrailPoint = (i64, String, f64);

/// HTML-escapes `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn num(x: Option<f64>, d: usize) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.d$}"))
}

fn pv(x: Option<f64>) -> String {
    match x {
        None => "–".to_string(),
        Some(p) if p < 1e-4 => "&lt;1e-4".to_string(),
        Some(p) => format!("{p:.4}"),
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}\
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
.flag{color:#b00;font-weight:bold}.ok{color:#080}.muted{color:#777;font-weight:normal}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin-bottom:1em}\
.pair pre{white-space:pre-wrap;background:#f7f7f7;padding:.6em;margin:0;font-size:.85em}\
.b{fill:#4a7bd0}.c{fill:#e08a2c}.legend span{margin-right:1em}";

fn bars_svg(top_b: &[OpeningShare], top_c: &[OpeningShare]) -> String {
    // Union of phrases, baseline order first.
    let mut phrases: Vec<&str> = Vec::new();
    for s in top_b.iter().chain(top_c).take(40) {
        if !phrases.contains(&s.phrase.as_str()) {
            phrases.push(&s.phrase);
        }
    }
    phrases.truncate(15);
    let share =
        |top: &[OpeningShare], p: &str| top.iter().find(|s| s.phrase == p).map_or(0.0, |s| s.share);
    let row = 26.0;
    let h = row * phrases.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{h}\" role=\"img\" aria-label=\"opening phrases\">"
    );
    for (i, p) in phrases.iter().enumerate() {
        let y = i as f64 * row + 5.0;
        let (b, c) = (share(top_b, p), share(top_c, p));
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text>\
             <rect class=\"b\" x=\"230\" y=\"{y:.1}\" width=\"{:.1}\" height=\"10\"/>\
             <rect class=\"c\" x=\"230\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{:.0}% / {:.0}%</text>",
            y + 14.0,
            escape(p),
            b * 400.0,
            y + 11.0,
            c * 400.0,
            235.0 + b.max(c) * 400.0,
            y + 14.0,
            b * 100.0,
            c * 100.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn histogram_svg(edges: &[f64], b: &[u64], c: &[u64]) -> String {
    let (w, h) = (720.0, 220.0);
    let n = b.len().max(1);
    let max = b.iter().chain(c).copied().max().unwrap_or(1).max(1) as f64;
    let bw = (w - 40.0) / n as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"length histograms\">",
        h + 20.0
    );
    for (i, (&x, &y)) in b.iter().zip(c).enumerate() {
        let x0 = 30.0 + i as f64 * bw;
        let hb = x as f64 / max * h;
        let hc = y as f64 / max * h;
        let _ = write!(
            svg,
            "<rect class=\"b\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hb:.1}\" opacity=\"0.8\"/>\
             <rect class=\"c\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hc:.1}\" opacity=\"0.8\"/>",
            h - hb,
            bw / 2.0,
            x0 + bw / 2.0,
            h - hc,
            bw / 2.0
        );
        if i % 4 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                h + 14.0,
                edges.get(i).copied().unwrap_or(0.0)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn series_svg(points: &[GuardrailPoint]) -> String {
    let mut by_name: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    for (ts, name, v) in points {
        if v.is_finite() {
            by_name.entry(name.as_str()).or_default().push((*ts, *v));
        }
    }
    let mut out = String::new();
    for (name, mut pts) in by_name {
        pts.sort_by_key(|p| p.0);
        let (t0, t1) = (
            pts.first().map_or(0, |p| p.0),
            pts.last().map_or(1, |p| p.0),
        );
        let span = (t1 - t0).max(1) as f64;
        let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let range = if hi > lo { hi - lo } else { 1.0 };
        let path: Vec<String> = pts
            .iter()
            .map(|(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    40.0 + (*t - t0) as f64 / span * 660.0,
                    110.0 - (v - lo) / range * 100.0
                )
            })
            .collect();
        let _ = write!(
            out,
            "<h3>{}</h3><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"120\" role=\"img\" aria-label=\"{}\">\
             <polyline fill=\"none\" stroke=\"#4a7bd0\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"0\" y=\"12\" font-size=\"10\">{}</text><text x=\"0\" y=\"110\" font-size=\"10\">{}</text></svg>",
            escape(name),
            escape(name),
            path.join(" "),
            num(Some(hi), 3),
            num(Some(lo), 3)
        );
    }
    out
}

/// [`render_html_with`] without guardrail series.
pub fn render_html(report: &ComparisonReport) -> String {
    render_html_with(report, &[])
}

/// Renders the report as one self-contained HTML page; `guardrails` are the series plotted in
/// the `guardrails` section (`(ts_ms, name, value)`, any order).
pub fn render_html_with(report: &ComparisonReport, guardrails: &[GuardrailPoint]) -> String {
    render_html_page(report, guardrails, "", "")
}

/// The section `outcomes`: per outcome name and cohort, n, mean and interval, and the
/// canary − control difference (empty string when there are none).
pub fn outcomes_section(summaries: &[OutcomeSummary]) -> String {
    if summaries.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        "<section id=\"outcomes\"><h2>Outcomes</h2><table><tr><th>name</th><th>cohort</th>\
         <th>n</th><th>mean [interval]</th><th>canary − control [interval]</th></tr>",
    );
    for s in summaries {
        let diff = s.difference.map_or_else(
            || "–".to_string(),
            |d| format!("{:.2} [{:.2}, {:.2}]", d.estimate, d.ci_low, d.ci_high),
        );
        for (i, c) in s.cohorts.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2} [{}, {}]</td><td>{}</td></tr>",
                escape(&s.name),
                c.cohort.as_str(),
                c.n,
                c.mean,
                num(c.ci_low, 2),
                num(c.ci_high, 2),
                if i == 0 { diff.as_str() } else { "" }
            );
        }
    }
    let level = summaries.first().map_or(0.95, |s| 1.0 - s.alpha);
    let _ = writeln!(
        h,
        "</table><p>Intervals are anytime-valid at {:.0}% (the slow gates' test).</p></section>",
        level * 100.0
    );
    h
}

/// [`render_html_with`] with extra sections: `before` right after the title (a run summary),
/// `after` before the most different pairs (e.g. [`outcomes_section`]). Both are HTML the
/// caller has escaped.
pub fn render_html_page(
    report: &ComparisonReport,
    guardrails: &[GuardrailPoint],
    before: &str,
    after: &str,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rampart comparison report</title>\
         <style>{CSS}</style></head><body>\n<h1>rampart comparison report</h1>\n{before}"
    );
    summary_section(&mut h, report);
    length_section(&mut h, report);
    openings_section(&mut h, report);
    formats_section(&mut h, report);
    judge_section(&mut h, report);
    classes_section(&mut h, report);
    guardrails_section(&mut h, guardrails);
    h.push_str(after);
    pairs_section(&mut h, report);
    h.push_str("</body></html>\n");
    h
}

/// `summary`: the pair counts, the flags and one row per metric (judge rows when judged).
fn summary_section(h: &mut String, report: &ComparisonReport) {
    let m = &report.metrics;
    let flags = if report.flags.is_empty() {
        "<span class=\"ok\">no flags</span>".to_string()
    } else {
        report
            .flags
            .iter()
            .map(|f| format!("<span class=\"flag\">{}</span>", escape(f)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let e = &m.equivalence;
    let l = &m.length_ratio;
    let _ = write!(
        h,
        "<section id=\"summary\"><h2>Summary</h2><p>{} pairs ({} comparable). Flags: {flags}</p><table>\
         <tr><th>metric</th><th>baseline</th><th>candidate</th><th>estimate [CI]</th><th>p (adjusted)</th></tr>\
         <tr><td>equivalence</td><td></td><td></td><td>{} [{}, {}]</td><td></td></tr>\
         <tr><td>length ratio</td><td>{} tok</td><td>{} tok</td><td>×{} [{}, {}]</td><td>{}</td></tr>\
         <tr><td>refusal</td><td>{}</td><td>{}</td><td></td><td>{}</td></tr>\
         <tr><td>errors</td><td>{}</td><td>{}</td><td></td><td>{}</td></tr>\
         <tr><td>latency p50 / p95</td><td>{} / {} ms</td><td>{} / {} ms</td><td></td><td></td></tr>\
         <tr><td>cost per successful request</td><td>${}</td><td>${}</td><td></td><td></td></tr>",
        report.pairs,
        report.comparable_pairs,
        pct(e.rate),
        pct(e.ci_low),
        pct(e.ci_high),
        num(l.baseline_mean_tokens, 1),
        num(l.candidate_mean_tokens, 1),
        num(l.estimate, 3),
        num(l.ci_low, 3),
        num(l.ci_high, 3),
        pv(l.p_adjusted),
        pct(m.refusal.baseline_rate),
        pct(m.refusal.candidate_rate),
        pv(m.refusal.p_adjusted),
        pct(m.errors.baseline_rate),
        pct(m.errors.candidate_rate),
        pv(m.errors.p_adjusted),
        num(m.latency.baseline_p50_ms, 0),
        num(m.latency.baseline_p95_ms, 0),
        num(m.latency.candidate_p50_ms, 0),
        num(m.latency.candidate_p95_ms, 0),
        num(m.cost.baseline_per_success_usd, 5),
        num(m.cost.candidate_per_success_usd, 5),
    );
    if let Some(j) = &report.judge {
        let _ = write!(
            h,
            "<tr><td>judge win rate (swap-corrected)</td><td></td><td></td><td>{} [{}, {}]</td><td></td></tr>\
             <tr><td>judge win rate (first position only)</td><td></td><td></td><td>{} [{}, {}]</td><td></td></tr>",
            pct(j.win_rate),
            pct(j.ci_low),
            pct(j.ci_high),
            pct(j.uncorrected_win_rate),
            pct(j.uncorrected_ci_low),
            pct(j.uncorrected_ci_high)
        );
    }
    h.push_str("</table></section>\n");
}

/// `length`: the token-length histograms of both sides.
fn length_section(h: &mut String, report: &ComparisonReport) {
    let l = &report.metrics.length_ratio;
    h.push_str("<section id=\"length\"><h2>Length (tokens)</h2><p class=\"legend\"><span style=\"color:#4a7bd0\">■ baseline</span><span style=\"color:#e08a2c\">■ candidate</span></p>");
    if let Some(hist) = &l.histogram {
        h.push_str(&histogram_svg(&hist.edges, &hist.baseline, &hist.candidate));
    } else {
        h.push_str("<p>no data</p>");
    }
    h.push_str("</section>\n");
}

/// `openings`: the opening-phrase drift and its bars.
fn openings_section(h: &mut String, report: &ComparisonReport) {
    let m = &report.metrics;
    let o = &m.openings;
    let _ = write!(
        h,
        "<section id=\"openings\"><h2>Opening phrases</h2><p>drift (total variation distance) {}; most changed \
         “{}” ({} pts), adjusted p {}{}</p>{}</section>",
        num(o.drift, 3),
        escape(o.phrase.as_deref().unwrap_or("–")),
        num(o.share_delta.map(|d| d * 100.0), 1),
        pv(o.p_adjusted),
        if o.drift_flagged {
            " <span class=\"flag\">flagged</span>"
        } else {
            ""
        },
        bars_svg(&o.baseline_top, &o.candidate_top)
    );
    h.push('\n');
}

/// `formats`: one row per format feature.
fn formats_section(h: &mut String, report: &ComparisonReport) {
    let m = &report.metrics;
    h.push_str("<section id=\"formats\"><h2>Formats</h2><table><tr><th>feature</th><th>baseline</th><th>candidate</th><th>changed</th><th>direction</th><th>p (adjusted)</th></tr>");
    for f in &m.formats {
        let _ = write!(
            h,
            "<tr><td{}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if f.flagged { " class=\"flag\"" } else { "" },
            escape(&f.feature),
            pct(f.baseline_rate),
            pct(f.candidate_rate),
            pct(f.changed_rate),
            escape(&f.direction),
            pv(f.p_adjusted)
        );
    }
    h.push_str("</table></section>\n");
}

/// `judge`, when the report was judged: the swap-corrected win rate and its counts.
fn judge_section(h: &mut String, report: &ComparisonReport) {
    if let Some(j) = &report.judge {
        let _ = writeln!(
            h,
            "<section id=\"judge\"><h2>Judge</h2><p>win rate {} [{}, {}], swap-corrected, over {} \
             judged pairs (candidate wins {}, baseline wins {}, ties {} of which {} inconsistent; \
             unparsed {}, failed {}). First position only: {} [{}, {}].</p></section>",
            pct(j.win_rate),
            pct(j.ci_low),
            pct(j.ci_high),
            j.judged_pairs,
            j.candidate_wins,
            j.baseline_wins,
            j.ties,
            j.inconsistent,
            j.unparsed,
            j.errors,
            pct(j.uncorrected_win_rate),
            pct(j.uncorrected_ci_low),
            pct(j.uncorrected_ci_high),
        );
    }
}

/// `classes`: the per-class regression table, flagged classes first.
fn classes_section(h: &mut String, report: &ComparisonReport) {
    h.push_str("<section id=\"classes\"><h2>Per-class regressions</h2><table><tr><th>class</th><th>pairs</th><th>equivalence</th><th>length ×</th><th>refusal</th><th>refusal p (adj.)</th><th>flags</th></tr>");
    let mut classes: Vec<_> = report.classes.iter().collect();
    classes.sort_by_key(|c| (c.flags.is_empty(), c.class.clone()));
    for c in classes {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td class=\"flag\">{}</td></tr>",
            escape(c.class.as_deref().unwrap_or("")),
            c.pairs,
            pct(c.metrics.equivalence.rate),
            num(c.metrics.length_ratio.estimate, 2),
            pct(c.metrics.refusal.baseline_rate),
            pct(c.metrics.refusal.candidate_rate),
            pv(c.metrics.refusal.p_adjusted),
            if c.too_few_pairs {
                format!(
                    "<span class=\"muted\">too few pairs (&lt; {})</span>",
                    report.settings.min_class_pairs
                )
            } else {
                escape(&c.flags.join(", "))
            }
        );
    }
    h.push_str("</table></section>\n");
}

/// `guardrails`: the series the caller supplied, or a note that there are none.
fn guardrails_section(h: &mut String, guardrails: &[GuardrailPoint]) {
    h.push_str("<section id=\"guardrails\"><h2>Guardrails</h2>");
    if guardrails.is_empty() {
        h.push_str("<p>no guardrail series supplied</p>");
    } else {
        h.push_str(&series_svg(guardrails));
    }
    h.push_str("</section>\n");
}

/// `pairs`: the most different pairs side by side.
fn pairs_section(h: &mut String, report: &ComparisonReport) {
    h.push_str("<section id=\"pairs\"><h2>Most different pairs</h2>");
    for d in &report.most_different {
        let _ = write!(
            h,
            "<h3>{} <small>({}; chrF {:.3})</small></h3><div class=\"pair\"><div><b>baseline</b><pre>{}</pre></div>\
             <div><b>candidate</b><pre>{}</pre></div></div>",
            escape(&d.request_id),
            escape(d.class.as_deref().unwrap_or("-")),
            d.similarity,
            escape(&d.baseline),
            escape(&d.candidate)
        );
    }
    h.push_str("</section>\n");
}
