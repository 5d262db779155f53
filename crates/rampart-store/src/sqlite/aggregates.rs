//! [`AggregateStore`] on SQLite: table `window_aggregates` (migration 0008). A single node never
//! flushes aggregates; this keeps the backends alike (and the shared suite on both).

use rusqlite::{Row, params};

use super::SqliteStore;
use crate::aggregates::{
    AggregateSide, AggregateTotal, column, count, decode_moments, encode_moments,
};
use crate::{AggregateRow, AggregateStore, Result};

const COLUMNS: &str = "rollout, second, replica, side, requests, errors, refusals, feedback, \
     thumbs_up, thumbs_down, latency, custom";

fn counts_at(r: &Row<'_>, first: usize) -> Result<rampart_core::rollout::CohortCounts> {
    let get = |i: usize, name: &'static str| -> Result<u64> { count(name, r.get(first + i)?) };
    Ok(rampart_core::rollout::CohortCounts {
        requests: get(0, "requests")?,
        errors: get(1, "errors")?,
        refusals: get(2, "refusals")?,
        feedback: get(3, "feedback")?,
        thumbs_up: get(4, "thumbs_up")?,
        thumbs_down: get(5, "thumbs_down")?,
        distinct_keys: None,
    })
}

fn row_from(r: &Row<'_>) -> Result<AggregateRow> {
    let custom: Vec<u8> = r.get(11)?;
    Ok(AggregateRow {
        rollout: r.get(0)?,
        second: r.get(1)?,
        replica: r.get(2)?,
        side: AggregateSide::from_column(r.get(3)?)?,
        counts: counts_at(r, 4)?,
        latency: r.get(10)?,
        custom: decode_moments(&custom)?,
    })
}

impl AggregateStore for SqliteStore {
    fn insert_aggregates(&self, rows: &[AggregateRow]) -> Result<()> {
        let mut conn = self.write_conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO window_aggregates ({COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ))?;
            for a in rows {
                let c = &a.counts;
                stmt.execute(params![
                    a.rollout,
                    a.second,
                    a.replica,
                    a.side.as_str(),
                    column(c.requests),
                    column(c.errors),
                    column(c.refusals),
                    column(c.feedback),
                    column(c.thumbs_up),
                    column(c.thumbs_down),
                    a.latency,
                    encode_moments(&a.custom),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn aggregates_since(
        &self,
        rollouts: &[String],
        since_second: i64,
    ) -> Result<Vec<AggregateRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM window_aggregates WHERE rollout = ?1 AND second >= ?2 \
                 ORDER BY second, replica, side"
            ))?;
            let mut sorted: Vec<&String> = rollouts.iter().collect();
            sorted.sort();
            sorted.dedup();
            let mut out = Vec::new();
            for rollout in sorted {
                let mut rows = stmt.query(params![rollout, since_second])?;
                while let Some(r) = rows.next()? {
                    out.push(row_from(r)?);
                }
            }
            Ok(out)
        })
    }

    fn aggregate_totals(
        &self,
        rollout: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<AggregateTotal>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT side, SUM(requests), SUM(errors), SUM(refusals), SUM(feedback), \
                 SUM(thumbs_up), SUM(thumbs_down) FROM window_aggregates \
                 WHERE rollout = ?1 AND second >= ?2 AND second < ?3 GROUP BY side",
            )?;
            let mut rows = stmt.query(params![rollout, from_second, to_second])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(AggregateTotal {
                    side: AggregateSide::from_column(r.get(0)?)?,
                    counts: counts_at(r, 1)?,
                });
            }
            out.sort_by_key(|t| t.side);
            Ok(out)
        })
    }

    fn prune_aggregates(&self, before_second: i64) -> Result<u64> {
        let conn = self.write_conn();
        let n = conn
            .prepare_cached("DELETE FROM window_aggregates WHERE second < ?1")?
            .execute([before_second])?;
        Ok(n as u64)
    }
}
