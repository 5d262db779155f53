//! A page of a rollout's shadow pairs, filtered the way the dashboard's pairs page filters them
//! (class, tenant, flag, time) and paged by a keyset cursor, so any page is a bounded read.
//!
//! Invariants:
//! - The flags are defined once, as SQL over the `pair_features` row stored with each pair
//!   ([`flag_sql`]); both backends run that same text, and each backend has a partial index per
//!   flag whose predicate is that text, so "the newest pairs with flag X" walks only the pairs
//!   that have it. Changing a flag's definition needs a migration that rebuilds its index.
//! - Pages are newest first, ordered by (`ts_ms`, id), both descending; a page's
//!   [`PairPage::next`] is the position of its last pair, and the next page starts strictly
//!   after it. No page is ever found by an offset.
//! - The SQL is built from fixed fragments only; every value is a bound parameter.

use std::fmt;
use std::str::FromStr;

use rampart_core::compare::features::{EQUIVALENT_COSINE, EQUIVALENT_F1};
use rampart_core::record::Pair;
use serde::{Deserialize, Serialize};

use crate::columns::PAIR_COLUMNS;
use crate::sqlite::features::{FORMAT_BITS, OK_BIT, REFUSAL_BIT};

/// A property of one pair that the pairs page filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairFlag {
    /// Either side refused.
    Refusal,
    /// Both sides answered and a format feature the report tracks (table, bullets, numbered
    /// list, code, citations, valid JSON, valid tool calls, truncation) differs between them.
    FormatChange,
    /// Both sides answered and the texts are not similar enough to be equivalent: token F1
    /// below [`EQUIVALENT_F1`] and no embedding cosine at or above [`EQUIVALENT_COSINE`] (the
    /// thresholds of [`rampart_core::compare::features::classify`]).
    LowSimilarity,
}

impl PairFlag {
    pub const ALL: [PairFlag; 3] = [
        PairFlag::Refusal,
        PairFlag::FormatChange,
        PairFlag::LowSimilarity,
    ];

    /// The name in the API and the page (`refusal`, `format_change`, `low_similarity`).
    pub fn as_str(self) -> &'static str {
        match self {
            PairFlag::Refusal => "refusal",
            PairFlag::FormatChange => "format_change",
            PairFlag::LowSimilarity => "low_similarity",
        }
    }
}

impl FromStr for PairFlag {
    type Err = UnknownFlag;
    fn from_str(s: &str) -> Result<PairFlag, UnknownFlag> {
        PairFlag::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFlag(s.to_string()))
    }
}

/// A flag name that is not one of [`PairFlag::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pair flag `{0}`; use refusal, format_change or low_similarity")]
pub struct UnknownFlag(pub String);

/// The SQL condition of `flag` over the `pair_features` columns, as the partial indexes of both
/// backends spell it (their migrations hold this text with the constants written out; a test
/// checks the indexes are used).
pub(crate) fn flag_sql(flag: PairFlag) -> String {
    match flag {
        PairFlag::Refusal => format!("((b_flags | c_flags) & {REFUSAL_BIT}) <> 0"),
        PairFlag::FormatChange => format!(
            "(b_flags & c_flags & {OK_BIT}) <> 0 \
             AND (((b_flags | c_flags) - (b_flags & c_flags)) & {FORMAT_BITS}) <> 0"
        ),
        PairFlag::LowSimilarity => format!(
            "equivalence IS NOT NULL AND similarity < {EQUIVALENT_F1:?} \
             AND (embedding_similarity IS NULL OR embedding_similarity < {EQUIVALENT_COSINE:?})"
        ),
    }
}

/// A position in a rollout's pairs, newest first: the page after it holds the pairs older than
/// it. Written `TS_MS:ID` in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairCursor {
    pub ts_ms: i64,
    pub id: i64,
}

impl fmt::Display for PairCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ts_ms, self.id)
    }
}

impl Serialize for PairCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A cursor that is not `TS_MS:ID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pairs cursor is `TS_MS:ID`, as a page's `next` gives it (got `{0}`)")]
pub struct BadCursor(pub String);

impl FromStr for PairCursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<PairCursor, BadCursor> {
        let bad = || BadCursor(s.to_string());
        let (ts, id) = s.split_once(':').ok_or_else(bad)?;
        Ok(PairCursor {
            ts_ms: ts.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// Which of a rollout's pairs a page shows. Every filter set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairQuery {
    pub class: Option<String>,
    pub tenant: Option<String>,
    pub flag: Option<PairFlag>,
    /// Only pairs at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Only pairs after this position (older): the previous page's [`PairPage::next`].
    pub before: Option<PairCursor>,
}

/// One stored pair and the flags it has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlaggedPair {
    #[serde(flatten)]
    pub pair: Pair,
    pub flags: Vec<PairFlag>,
}

/// A page of pairs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairPage {
    pub pairs: Vec<FlaggedPair>,
    /// Where the next (older) page starts; `None` when this page was not full, so there is no
    /// more.
    pub next: Option<PairCursor>,
}

impl PairPage {
    /// The page from its rows (`(id, pair, flags)`, newest first) and the limit asked for.
    pub(crate) fn from_rows(rows: Vec<(i64, FlaggedPair)>, limit: usize) -> PairPage {
        let next = (rows.len() == limit && limit > 0)
            .then(|| rows.last())
            .flatten()
            .map(|(id, p)| PairCursor {
                ts_ms: p.pair.ts_ms,
                id: *id,
            });
        PairPage {
            pairs: rows.into_iter().map(|(_, p)| p).collect(),
            next,
        }
    }
}

/// A bound value of [`PageSql`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// The statement of one page and its parameters, in order. Its columns: the pair's id, the
/// pair ([`PAIR_COLUMNS`]), then one yes/no per flag of [`PairFlag::ALL`].
#[derive(Debug)]
pub(crate) struct PageSql<'a> {
    pub sql: String,
    pub params: Vec<Param<'a>>,
}

/// Builds the page's statement; `placeholder(n)` spells the n-th parameter (1-based): `?n` for
/// SQLite, `$n` for PostgreSQL. `join_ts` adds `p.rollout = f.rollout AND p.ts_ms = f.ts_ms` to
/// the join (PostgreSQL's tables are partitioned on `ts_ms` and index ids per rollout).
///
/// With a flag, the newest pairs with that flag come from the flag's partial index over
/// `pair_features` and are joined to `pairs`; without, from `pairs`' own indexes ((rollout,
/// ts_ms), (rollout, class, ts_ms), (rollout, tenant, ts_ms)).
pub(crate) fn page_sql<'a>(
    rollout: &'a str,
    q: &'a PairQuery,
    limit: usize,
    placeholder: fn(usize) -> String,
    join_ts: bool,
) -> PageSql<'a> {
    let mut params = Vec::new();
    let bind = |v: Param<'a>, params: &mut Vec<Param<'a>>| {
        params.push(v);
        placeholder(params.len())
    };
    // The driving table: its columns carry the filters, the order and the cursor.
    let (t, id) = if q.flag.is_some() {
        ("f", "pair_id")
    } else {
        ("p", "id")
    };
    let mut conds = vec![
        format!("{t}.rollout = {}", bind(Param::Text(rollout), &mut params)),
        format!(
            "{t}.ts_ms >= {}",
            bind(Param::Int(q.since_ms.unwrap_or(i64::MIN)), &mut params)
        ),
    ];
    if let Some(c) = q.before {
        let ts = bind(Param::Int(c.ts_ms), &mut params);
        let after = bind(Param::Int(c.id), &mut params);
        conds.push(format!(
            "{t}.ts_ms <= {ts} AND ({t}.ts_ms < {ts} OR {t}.{id} < {after})"
        ));
    }
    if let Some(class) = &q.class {
        conds.push(format!(
            "{t}.class = {}",
            bind(Param::Text(class), &mut params)
        ));
    }
    if let Some(tenant) = &q.tenant {
        conds.push(format!(
            "{t}.tenant = {}",
            bind(Param::Text(tenant), &mut params)
        ));
    }
    if let Some(flag) = q.flag {
        conds.push(qualified(&flag_sql(flag), "f"));
    }
    let limit = bind(
        Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
        &mut params,
    );
    let columns: Vec<String> = PAIR_COLUMNS
        .split(',')
        .map(|c| format!("p.{}", c.trim()))
        .collect();
    let flags: Vec<String> = PairFlag::ALL
        .iter()
        .map(|f| {
            format!(
                "CASE WHEN {} THEN 1 ELSE 0 END",
                qualified(&flag_sql(*f), "f")
            )
        })
        .collect();
    let on_ts = if join_ts {
        " AND p.rollout = f.rollout AND p.ts_ms = f.ts_ms"
    } else {
        ""
    };
    let from = if q.flag.is_some() {
        format!("pair_features f JOIN pairs p ON p.id = f.pair_id{on_ts}")
    } else {
        format!("pairs p JOIN pair_features f ON f.pair_id = p.id{on_ts}")
    };
    PageSql {
        sql: format!(
            "SELECT p.id, {}, {} FROM {from} WHERE {} ORDER BY {t}.ts_ms DESC, {t}.{id} DESC \
             LIMIT {limit}",
            columns.join(", "),
            flags.join(", "),
            conds.join(" AND "),
        ),
        params,
    }
}

/// `sql` with each `pair_features` column it names prefixed by `alias.`.
pub(crate) fn qualified(sql: &str, alias: &str) -> String {
    const COLUMNS: [&str; 5] = [
        "b_flags",
        "c_flags",
        "embedding_similarity",
        "equivalence",
        "similarity",
    ];
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    'outer: while !rest.is_empty() {
        let boundary = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        if boundary {
            for c in COLUMNS {
                let word_ends = rest[c.len().min(rest.len())..]
                    .chars()
                    .next()
                    .is_none_or(|n| !(n.is_ascii_alphanumeric() || n == '_'));
                if rest.starts_with(c) && word_ends {
                    out.push_str(alias);
                    out.push('.');
                    out.push_str(c);
                    rest = &rest[c.len()..];
                    continue 'outer;
                }
            }
        }
        let Some(ch) = rest.chars().next() else { break };
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_named() {
        let c = PairCursor { ts_ms: -5, id: 42 };
        assert_eq!(c.to_string().parse::<PairCursor>().unwrap(), c);
        assert!("12".parse::<PairCursor>().is_err());
        assert!("a:1".parse::<PairCursor>().is_err());
        assert_eq!(
            "format_change".parse::<PairFlag>().unwrap(),
            PairFlag::FormatChange
        );
        assert!(
            "nope"
                .parse::<PairFlag>()
                .unwrap_err()
                .to_string()
                .contains("refusal")
        );
    }

    #[test]
    fn columns_are_qualified_as_whole_words_only() {
        assert_eq!(
            qualified(
                "equivalence IS NOT NULL AND similarity < 0.4 AND (embedding_similarity IS NULL)",
                "f"
            ),
            "f.equivalence IS NOT NULL AND f.similarity < 0.4 AND (f.embedding_similarity IS NULL)"
        );
        assert_eq!(
            qualified("((b_flags | c_flags) & 2) <> 0", "f"),
            "((f.b_flags | f.c_flags) & 2) <> 0"
        );
    }

    #[test]
    fn the_migrations_hold_the_flag_conditions_as_written_here() {
        for migration in [
            include_str!("sqlite/migrations/0005_pair_filters.sql"),
            include_str!("sqlite/migrations/0007_pair_flag_groups.sql"),
            include_str!("postgres/migrations/0003_pair_filters.sql"),
            include_str!("postgres/migrations/0004_pair_flag_groups.sql"),
        ] {
            let flat = migration.split_whitespace().collect::<Vec<_>>().join(" ");
            for f in PairFlag::ALL {
                let cond = flag_sql(f).split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    flat.contains(&format!("WHERE {cond};")),
                    "{f:?}: `{cond}` is not a partial index predicate in\n{migration}"
                );
            }
        }
    }
}
