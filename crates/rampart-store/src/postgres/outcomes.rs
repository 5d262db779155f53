//! [`OutcomeStore`] on PostgreSQL: table `outcomes` (migration 0002), written in one multi-row
//! `INSERT … SELECT FROM UNNEST(…)` per call.

use rampart_core::outcomes::OutcomeRecord;
use rampart_core::routing::Cohort;

use super::{PgStore, Shared};
use crate::error::{Result, StoreError};
use crate::{OutcomeMoments, OutcomeStore};

/// Skips an outcome of a name for a request that already has one (also within the batch).
const INSERT: &str = "INSERT INTO outcomes (rollout, name, value, cohort, variant, stage, \
     request_id, key_hash, served_ms, at_ms, received_ms) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[]) \
     ON CONFLICT (request_id, name) WHERE request_id IS NOT NULL DO NOTHING";

/// Names and cohorts in byte order (`COLLATE "C"`), as SQLite sorts them.
const MOMENTS: &str = "SELECT name, cohort, COUNT(*), COALESCE(SUM(value), 0)::float8, \
     COALESCE(SUM(value * value), 0)::float8 FROM outcomes \
     WHERE rollout = $1 AND served_ms >= $2 GROUP BY name, cohort \
     ORDER BY name COLLATE \"C\", cohort COLLATE \"C\"";

async fn insert(s: &Shared, outcomes: Vec<OutcomeRecord>) -> Result<usize> {
    let col = |f: fn(&OutcomeRecord) -> String| outcomes.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&OutcomeRecord) -> Option<String>| outcomes.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&OutcomeRecord) -> i64| outcomes.iter().map(f).collect::<Vec<_>>();
    let rollout = col(|o| o.rollout.clone());
    let name = col(|o| o.name.clone());
    let value: Vec<f64> = outcomes.iter().map(|o| o.value).collect();
    let cohort = col(|o| o.cohort.as_str().to_string());
    let variant = col(|o| o.variant.clone());
    let stage = opt(|o| o.stage.clone());
    let request_id = opt(|o| o.request_id.clone());
    let key_hash = opt(|o| o.key_hash.clone());
    let served = int(|o| o.served_ms);
    let at = int(|o| o.at_ms);
    let received = int(|o| o.received_ms);
    let c = s.client().await?;
    let stmt = c.prepare_cached(INSERT).await?;
    let n = c
        .execute(
            &stmt,
            &[
                &rollout,
                &name,
                &value,
                &cohort,
                &variant,
                &stage,
                &request_id,
                &key_hash,
                &served,
                &at,
                &received,
            ],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

async fn moments(s: &Shared, rollout: &str, since_ms: i64) -> Result<Vec<OutcomeMoments>> {
    let c = s.client().await?;
    let stmt = c.prepare_cached(MOMENTS).await?;
    c.query(&stmt, &[&rollout, &since_ms])
        .await?
        .iter()
        .map(|r| {
            let cohort: String = r.try_get(1)?;
            let n: i64 = r.try_get(2)?;
            Ok(OutcomeMoments {
                name: r.try_get(0)?,
                cohort: Cohort::parse(&cohort).ok_or_else(|| StoreError::Corrupt {
                    column: "cohort",
                    value: cohort.clone(),
                })?,
                n: u64::try_from(n).unwrap_or(0),
                sum: r.try_get(3)?,
                sum_sq: r.try_get(4)?,
            })
        })
        .collect()
}

impl OutcomeStore for PgStore {
    fn insert_outcomes(&self, outcomes: &[OutcomeRecord]) -> Result<usize> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let outcomes = outcomes.to_vec();
        self.block(|s| async move { insert(&s, outcomes).await })
    }

    fn outcome_moments(&self, rollout: &str, since_ms: i64) -> Result<Vec<OutcomeMoments>> {
        let rollout = rollout.to_string();
        self.block(|s| async move { moments(&s, &rollout, since_ms).await })
    }
}
