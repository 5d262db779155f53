//! Per-second window aggregates: written once per key, read back whole (sketch and moments
//! bytes included) in key order, summed per side over a span, pruned by age.

use rampart_core::rollout::{CohortCounts, MetricMoments};
use rampart_stats::sketch::DdSketch;
use rampart_store::{AggregateRow, AggregateSide, AggregateTotal, Store};

fn row(rollout: &str, second: i64, replica: &str, side: AggregateSide, n: u64) -> AggregateRow {
    let mut sketch = DdSketch::default();
    for i in 0..n {
        sketch.add(10.0 + i as f64).unwrap();
    }
    let mut m = MetricMoments::default();
    m.push(0.25 * n as f64);
    AggregateRow {
        rollout: rollout.into(),
        second,
        replica: replica.into(),
        side,
        counts: CohortCounts {
            requests: n,
            errors: n / 2,
            refusals: n / 3,
            feedback: n / 4,
            thumbs_up: n / 5,
            thumbs_down: n / 6,
            distinct_keys: None,
        },
        latency: (n > 0).then(|| sketch.to_bytes()),
        custom: vec![m, MetricMoments::default()],
    }
}

pub fn window_aggregates_are_written_once_read_in_order_summed_and_pruned(store: &dyn Store) {
    let agg = store.aggregates().expect("the backend keeps aggregates");
    use AggregateSide::*;
    let rows = vec![
        row("ro", 101, "b", Canary, 7),
        row("ro", 100, "a", Control, 10),
        row("ro", 100, "a", Canary, 0),
        row("ro", 100, "b", PairBaseline, 3),
        row("ro", 100, "b", PairCandidate, 3),
        row("other", 100, "a", Control, 1),
        row("ro", 90, "a", Control, 4),
    ];
    agg.insert_aggregates(&rows).unwrap();
    // A retried flush, and a second write of a key with other counts: both skipped.
    agg.insert_aggregates(&rows[..2]).unwrap();
    agg.insert_aggregates(&[row("ro", 100, "a", Control, 99)])
        .unwrap();
    agg.insert_aggregates(&[]).unwrap();

    let got = agg.aggregates_since(&["ro".to_string()], 100).unwrap();
    // Sides in the order of their stored names.
    let want = vec![
        rows[2].clone(),
        rows[1].clone(),
        rows[3].clone(),
        rows[4].clone(),
        rows[0].clone(),
    ];
    assert_eq!(got, want);
    let back = DdSketch::from_bytes(got[1].latency.as_ref().unwrap()).unwrap();
    assert_eq!(back.count(), 10);
    let both = agg
        .aggregates_since(&["ro".to_string(), "other".to_string()], 95)
        .unwrap();
    assert_eq!(both.len(), 6);
    assert_eq!(both[0].rollout, "other");
    assert!(agg.aggregates_since(&[], 0).unwrap().is_empty());

    let totals = agg.aggregate_totals("ro", 90, 101).unwrap();
    let sum = |a: &AggregateRow, b: &AggregateRow| {
        let mut c = a.counts;
        c.add(&b.counts);
        c
    };
    assert_eq!(
        totals,
        vec![
            AggregateTotal {
                side: Control,
                counts: sum(&rows[1], &rows[6]),
            },
            AggregateTotal {
                side: Canary,
                counts: rows[2].counts,
            },
            AggregateTotal {
                side: PairBaseline,
                counts: rows[3].counts,
            },
            AggregateTotal {
                side: PairCandidate,
                counts: rows[4].counts,
            },
        ]
    );
    assert!(agg.aggregate_totals("ro", 200, 300).unwrap().is_empty());

    assert_eq!(agg.prune_aggregates(100).unwrap(), 1);
    assert_eq!(
        agg.aggregates_since(&["ro".to_string()], 0).unwrap().len(),
        5
    );
    assert_eq!(agg.prune_aggregates(100).unwrap(), 0);
}
