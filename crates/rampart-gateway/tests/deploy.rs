//! `deploy/`: every metric the Grafana dashboard and the Prometheus rules name exists in a
//! running gateway's `/metrics` (`promtool check rules` runs in `.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{TestGateway, config};

/// Sample names a scrape of `text` can hold: each `# TYPE` family with its suffixes, and
/// every sample line's name.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            names.insert(name.to_string());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Every `rampart_…` identifier in a file.
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("rampart_") {
        let start = i + pos;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "rampart_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if before_ok && end > start + "rampart_".len() {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_rules_name_is_exported() {
    let t = TestGateway::start(&config(
        r#"{ name = "canary-5", percent = 5, shadow_percent = 10 }"#,
        "",
    ))
    .await;
    let scrape = common::metrics(&t.url).await;
    let exported = exported_names(&scrape);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    for file in ["grafana/rampart.json", "prometheus/rampart-rules.yml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let used = metric_tokens(&text);
        assert!(used.len() >= 6, "{file} names only {used:?}");
        let missing: Vec<_> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics the gateway does not export: {missing:?}\nexported: {exported:?}"
        );
    }
    // The holding alert reads the one-hot state gauge.
    assert!(
        scrape.contains(r#"rampart_rollout_state{rollout="support-v2",state="stage"} 1"#),
        "{scrape}"
    );
    assert!(scrape.contains(r#"rampart_rollout_state{rollout="support-v2",state="holding"} 0"#));
    t.shutdown().await;
}

#[test]
fn tokens_and_names_are_read_as_prometheus_writes_them() {
    let used = metric_tokens(
        r#"rate(rampart_requests_total{x="y"}[5m]) / my_rampart_x + rampart_a_bucket"#,
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["rampart_a_bucket", "rampart_requests_total"]
    );
    let names =
        exported_names("# TYPE rampart_d histogram\nrampart_d_sum 1\n# TYPE rampart_c counter\n");
    assert!(names.contains("rampart_d_bucket") && names.contains("rampart_c_total"));
}
