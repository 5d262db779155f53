//! [`AggregateStore`] on PostgreSQL: table `window_aggregates` (migration 0005). A flush is one
//! multi-row `INSERT … SELECT FROM UNNEST(…)` that skips keys already stored; a read is one
//! range scan of the primary key per call.

use rampart_core::rollout::CohortCounts;
use tokio_postgres::Row;

use super::{PgStore, Shared};
use crate::aggregates::{
    AggregateSide, AggregateTotal, column, count, decode_moments, encode_moments,
};
use crate::error::Result;
use crate::{AggregateRow, AggregateStore};

const INSERT: &str = "INSERT INTO window_aggregates (rollout, second, replica, side, requests, \
     errors, refusals, feedback, thumbs_up, thumbs_down, latency, custom) \
     SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], \
     $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::bytea[], $12::bytea[]) \
     ON CONFLICT (rollout, second, replica, side) DO NOTHING";

const SINCE: &str = "SELECT rollout, second, replica, side, requests, errors, refusals, \
     feedback, thumbs_up, thumbs_down, latency, custom FROM window_aggregates \
     WHERE rollout = ANY($1) AND second >= $2 \
     ORDER BY rollout COLLATE \"C\", second, replica COLLATE \"C\", side COLLATE \"C\"";

const TOTALS: &str = "SELECT side, SUM(requests)::int8, SUM(errors)::int8, \
     SUM(refusals)::int8, SUM(feedback)::int8, SUM(thumbs_up)::int8, SUM(thumbs_down)::int8 \
     FROM window_aggregates WHERE rollout = $1 AND second >= $2 AND second < $3 GROUP BY side";

fn counts_at(r: &Row, first: usize) -> Result<CohortCounts> {
    let get = |i: usize, name: &'static str| -> Result<u64> {
        count(name, r.try_get::<_, i64>(first + i)?)
    };
    Ok(CohortCounts {
        requests: get(0, "requests")?,
        errors: get(1, "errors")?,
        refusals: get(2, "refusals")?,
        feedback: get(3, "feedback")?,
        thumbs_up: get(4, "thumbs_up")?,
        thumbs_down: get(5, "thumbs_down")?,
        distinct_keys: None,
    })
}

async fn insert(s: &Shared, rows: Vec<AggregateRow>) -> Result<()> {
    let text = |f: fn(&AggregateRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&CohortCounts) -> u64| {
        rows.iter()
            .map(|a| column(f(&a.counts)))
            .collect::<Vec<_>>()
    };
    let rollout = text(|a| a.rollout.clone());
    let second: Vec<i64> = rows.iter().map(|a| a.second).collect();
    let replica = text(|a| a.replica.clone());
    let side = text(|a| a.side.as_str().to_string());
    let latency: Vec<Option<Vec<u8>>> = rows.iter().map(|a| a.latency.clone()).collect();
    let custom: Vec<Vec<u8>> = rows.iter().map(|a| encode_moments(&a.custom)).collect();
    let c = s.client().await?;
    let stmt = c.prepare_cached(INSERT).await?;
    c.execute(
        &stmt,
        &[
            &rollout,
            &second,
            &replica,
            &side,
            &int(|c| c.requests),
            &int(|c| c.errors),
            &int(|c| c.refusals),
            &int(|c| c.feedback),
            &int(|c| c.thumbs_up),
            &int(|c| c.thumbs_down),
            &latency,
            &custom,
        ],
    )
    .await?;
    Ok(())
}

async fn since(s: &Shared, rollouts: Vec<String>, since: i64) -> Result<Vec<AggregateRow>> {
    let c = s.client().await?;
    let stmt = c.prepare_cached(SINCE).await?;
    c.query(&stmt, &[&rollouts, &since])
        .await?
        .iter()
        .map(|r| {
            let custom: Vec<u8> = r.try_get(11)?;
            Ok(AggregateRow {
                rollout: r.try_get(0)?,
                second: r.try_get(1)?,
                replica: r.try_get(2)?,
                side: AggregateSide::from_column(r.try_get(3)?)?,
                counts: counts_at(r, 4)?,
                latency: r.try_get(10)?,
                custom: decode_moments(&custom)?,
            })
        })
        .collect()
}

async fn totals(s: &Shared, rollout: String, from: i64, to: i64) -> Result<Vec<AggregateTotal>> {
    let c = s.client().await?;
    let stmt = c.prepare_cached(TOTALS).await?;
    let mut out = c
        .query(&stmt, &[&rollout, &from, &to])
        .await?
        .iter()
        .map(|r| {
            Ok(AggregateTotal {
                side: AggregateSide::from_column(r.try_get(0)?)?,
                counts: counts_at(r, 1)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|t| t.side);
    Ok(out)
}

impl AggregateStore for PgStore {
    fn insert_aggregates(&self, rows: &[AggregateRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.to_vec();
        self.block(|s| async move { insert(&s, rows).await })
    }

    fn aggregates_since(
        &self,
        rollouts: &[String],
        since_second: i64,
    ) -> Result<Vec<AggregateRow>> {
        let rollouts = rollouts.to_vec();
        self.block(|s| async move { since(&s, rollouts, since_second).await })
    }

    fn aggregate_totals(
        &self,
        rollout: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<AggregateTotal>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { totals(&s, rollout, from_second, to_second).await })
    }

    fn prune_aggregates(&self, before_second: i64) -> Result<u64> {
        self.block(|s| async move {
            let c = s.client().await?;
            let stmt = c
                .prepare_cached("DELETE FROM window_aggregates WHERE second < $1")
                .await?;
            Ok(c.execute(&stmt, &[&before_second]).await?)
        })
    }
}
