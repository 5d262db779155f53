//! [`OutcomeStore`] on SQLite: table `outcomes` (migration 0004).

use rampart_core::outcomes::OutcomeRecord;
use rampart_core::routing::Cohort;
use rusqlite::params;

use super::SqliteStore;
use crate::{OutcomeMoments, OutcomeStore, Result};

impl OutcomeStore for SqliteStore {
    fn insert_outcomes(&self, outcomes: &[OutcomeRecord]) -> Result<usize> {
        let mut conn = self.write_conn();
        let tx = conn.transaction()?;
        let mut new = 0;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO outcomes (rollout, name, value, cohort, variant, stage, \
                 request_id, key_hash, served_ms, at_ms, received_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for o in outcomes {
                new += stmt.execute(params![
                    o.rollout,
                    o.name,
                    o.value,
                    o.cohort.as_str(),
                    o.variant,
                    o.stage,
                    o.request_id,
                    o.key_hash,
                    o.served_ms,
                    o.at_ms,
                    o.received_ms,
                ])?;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    fn outcome_moments(&self, rollout: &str, since_ms: i64) -> Result<Vec<OutcomeMoments>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, cohort, COUNT(*), TOTAL(value), TOTAL(value * value) FROM outcomes \
                 WHERE rollout = ?1 AND served_ms >= ?2 GROUP BY name, cohort ORDER BY name, cohort",
            )?;
            let rows = stmt.query_map(params![rollout, since_ms], |r| {
                let cohort: String = r.get(1)?;
                Ok(OutcomeMoments {
                    name: r.get(0)?,
                    cohort: Cohort::parse(&cohort).unwrap_or(Cohort::Unkeyed),
                    n: r.get::<_, i64>(2)?.max(0) as u64,
                    sum: r.get(3)?,
                    sum_sq: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
