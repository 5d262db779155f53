//! Several `rampart serve` replicas on one PostgreSQL database (`store.type = "postgres"`,
//! `[cluster]`): one rollback for the whole fleet, the kill switch everywhere within 2 s, a new
//! leader when the leader dies, operator orders through any replica, the database going away
//! under load, and racing orders ending in one state.
//!
//! The database outage is simulated by a TCP proxy the test controls (`replicas::Proxy`): the
//! replicas' every connection is closed and new ones refused, which is what a stopped server
//! looks like to them, without stopping the server other tests share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod replicas;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use replicas::{Answer, Proxy, Replica, chat, now_ms, scratch, until, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

/// Providers, one route and its rollout `r`: the candidate fails `error_rate` of its calls.
fn body(error_rate: f64, stages: &str) -> String {
    format!(
        r#"
[providers.sim]
type = "mock"
[providers.sim.models.base]
style = "casual"
latency_ms = {{ median = 5, p95 = 10 }}
[providers.sim.models.cand]
style = "casual"
latency_ms = {{ median = 5, p95 = 10 }}
error_rate = {error_rate}
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "base"
[routes.support.variants.v2]
provider = "sim"
model = "cand"
[rollouts.r]
route = "support"
candidate = "v2"
stages = {stages}
[rollouts.r.guardrails]
window = "30s"
check_interval = "200ms"
error_rate_max = 0.05
"#
    )
}

const CANARY: &str = r#"[ { name = "canary-50", percent = 50, min_duration = "1h" }, { name = "full", percent = 100 } ]"#;

/// Keyed traffic, round-robin over `urls`, from `workers` tasks until `stop`.
struct Traffic {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(urls: Vec<String>, workers: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let urls = Arc::new(urls);
        let tasks = (0..workers)
            .map(|_| {
                let (stop, answers, next, urls) =
                    (stop.clone(), answers.clone(), next.clone(), urls.clone());
                tokio::spawn(async move {
                    let c = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let i = n % urls.len();
                        let a = chat(&c, &urls[i], &format!("user-{}", n % 997), i).await;
                        answers.lock().unwrap().push(a);
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            answers,
            tasks,
        }
    }

    fn count(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.answers).unwrap().into_inner().unwrap()
    }
}

fn actions(audit: &[Value]) -> Vec<String> {
    audit
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .filter(|a| a != "leader")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_roll_back_once_and_all_serve_the_baseline_within_two_seconds() {
    let db = scratch("rampart_cluster");
    let dir = tempfile::tempdir().unwrap();
    let body = body(0.3, CANARY);
    let fleet: Vec<Replica> = (0..3)
        .map(|i| Replica::start(dir.path(), &format!("r{i}"), "", &body, db.url()))
        .collect();
    let traffic = Traffic::start(fleet.iter().map(Replica::url).collect(), 6);
    let decision_ms = wait_for("a kill-switch decision in the audit log", WAIT, || async {
        let audit = fleet[0].audit("r").await;
        audit
            .iter()
            .find(|e| e["action"] == "kill_switch")
            .map(|e| e["ts_ms"].as_i64().unwrap())
    })
    .await;
    until("4 s of traffic after the decision", WAIT, || async {
        now_ms() > decision_ms + 4_000
    })
    .await;
    let answers = traffic.finish().await;

    assert!(answers.iter().all(|a| a.status == 200), "no 5xx, ever");
    let audit = fleet[1].audit("r").await;
    let decisions = actions(&audit);
    assert_eq!(
        decisions
            .iter()
            .filter(|a| *a == "kill_switch" || *a == "rollback")
            .count(),
        1,
        "exactly one rollback decision for the fleet: {decisions:?}"
    );
    let late: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent_ms > decision_ms + 2_000)
        .collect();
    assert!(
        late.len() >= 30,
        "traffic after the decision: {}",
        late.len()
    );
    for replica in 0..3 {
        assert!(late.iter().any(|a| a.replica == replica));
    }
    let wrong: Vec<_> = late
        .iter()
        .filter(|a| a.variant != "v1" || a.fallback)
        .collect();
    assert!(
        wrong.is_empty(),
        "admitted more than 2 s after the decision but not answered by the baseline: {wrong:?}"
    );
    // Before it, the candidate did serve canary users (the rollback changed something).
    assert!(
        answers
            .iter()
            .any(|a| a.sent_ms < decision_ms && (a.variant == "v2" || a.fallback))
    );
    let mut versions = Vec::new();
    for r in &fleet {
        let st = r.status("r").await;
        assert_eq!(st["status"]["phase"], "rolled_back", "{st}");
        versions.push(st["status"]["version"].as_i64().unwrap());
    }
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
}

/// The replica that leads, as every live one says (once they agree).
async fn agreed_leader(fleet: &[Replica], alive: &[usize]) -> String {
    wait_for("the live replicas to agree on a leader", WAIT, || async {
        let mut seen = Vec::new();
        let mut leading = Vec::new();
        for &i in alive {
            let c = &fleet[i].status("r").await["status"]["cluster"];
            seen.push(c["leader"].as_str().unwrap_or("").to_string());
            if c["leading"] == true {
                leading.push(fleet[i].id.clone());
            }
        }
        // Agreed: every live replica names the same leader, and that one (a live one: a killed
        // leader's lease is still named until it expires) is the only replica leading.
        let agreed = !seen[0].is_empty()
            && seen.iter().all(|s| *s == seen[0])
            && leading == [seen[0].clone()];
        agreed.then(|| seen[0].clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_killed_another_leads_within_10_s_and_a_pause_holds_on_all_three() {
    let db = scratch("rampart_cluster");
    let dir = tempfile::tempdir().unwrap();
    let body = body(0.0, CANARY);
    let cluster = "poll_interval = \"500ms\"";
    let mut fleet: Vec<Replica> = (0..3)
        .map(|i| Replica::start(dir.path(), &format!("r{i}"), cluster, &body, db.url()))
        .collect();
    let traffic = Traffic::start(fleet.iter().map(Replica::url).collect(), 3);
    let first = agreed_leader(&fleet, &[0, 1, 2]).await;
    let dead = fleet.iter().position(|r| r.id == first).unwrap();
    let killed_ms = now_ms();
    fleet[dead].kill();
    let alive: Vec<usize> = (0..3).filter(|i| *i != dead).collect();
    let second = agreed_leader(&fleet, &alive).await;
    assert_ne!(second, first);
    // The takeover is in the audit log, with its time.
    let audit = fleet[alive[0]].audit("r").await;
    let took = audit
        .iter()
        .find(|e| e["action"] == "leader" && e["actor"] == second.as_str())
        .unwrap_or_else(|| panic!("no leader row for {second}: {audit:?}"));
    let takeover_ms = took["ts_ms"].as_i64().unwrap() - killed_ms;
    assert!(
        takeover_ms <= 10_000,
        "{second} took over {takeover_ms} ms after {first} was killed"
    );
    // The rollout goes on: the new leader evaluates it.
    let lead = fleet.iter().position(|r| r.id == second).unwrap();
    let follower = alive.iter().copied().find(|i| *i != lead).unwrap();
    let shown = fleet[follower].cli_status("r");
    assert!(
        shown.contains(&format!("leader {second}")),
        "`rampart status` names the leader: {shown}"
    );
    until("the new leader's evaluation", WAIT, || async {
        !fleet[lead].status("r").await["status"]["evaluation"].is_null()
    })
    .await;

    // The killed replica comes back; a pause sent to a follower holds on all three.
    fleet[dead] = Replica::start(dir.path(), &first, cluster, &body, db.url());
    let (code, answer) = fleet[follower].order("r", "pause").await;
    assert_eq!(code, 200, "{answer}");
    let paused_at = now_ms();
    until("every replica paused", WAIT, || async {
        let mut all = true;
        for r in &fleet {
            all &= r.status("r").await["status"]["phase"] == "paused";
        }
        all
    })
    .await;
    // Held: after the leader has checked the rollout again, still paused everywhere, and
    // nobody's canary users are on the candidate beyond the paused split.
    until("the leader to check the paused rollout", WAIT, || async {
        let st = fleet[lead].status("r").await;
        st["status"]["updated_ms"].as_i64().unwrap() > paused_at + 1_000
    })
    .await;
    for r in &fleet {
        let st = r.status("r").await;
        assert_eq!(st["status"]["phase"], "paused", "{}: {st}", r.id);
    }
    let answers = traffic.finish().await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 || (a.replica == dead && a.status == 0)),
        "only the killed replica may leave a request unanswered"
    );
    let audit = actions(&fleet[lead].audit("r").await);
    assert_eq!(
        audit.iter().filter(|a| *a == "pause").count(),
        1,
        "{audit:?}"
    );
}

/// Guardrails over the fleet: no replica ever serves enough canary requests to trip on its own
/// (`catastrophic_min_requests = 60`; 30 to each follower, none to the leader) but the fleet
/// does. The leader rolls back on the window it merged from the followers' aggregate rows, and
/// its audit row's evidence holds the fleet's counts, not one replica's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_trips_on_the_fleets_merged_window_which_no_replica_reaches_alone() {
    let db = scratch("rampart_cluster");
    let dir = tempfile::tempdir().unwrap();
    let body = body(1.0, CANARY).replace(
        "error_rate_max = 0.05",
        "error_rate_max = 0.05\nmin_exposure = 1000\ncatastrophic_error_rate = 0.5\n\
         catastrophic_min_requests = 60",
    );
    let cluster = "poll_interval = \"200ms\"";
    let fleet: Vec<Replica> = (0..3)
        .map(|i| Replica::start(dir.path(), &format!("r{i}"), cluster, &body, db.url()))
        .collect();
    let leader = agreed_leader(&fleet, &[0, 1, 2]).await;
    let followers: Vec<usize> = (0..3).filter(|i| fleet[*i].id != leader).collect();
    // The fleet's stage counters cover whole seconds since the stage began: start the traffic
    // in the first one.
    let epoch = fleet[0].status("r").await["status"]["state"]["stage_epoch_ms"]
        .as_i64()
        .unwrap();
    until("the stage's first whole second", WAIT, || async {
        now_ms() >= (epoch / 1000 + 1) * 1000
    })
    .await;
    let c = reqwest::Client::new();
    let (mut n, mut control) = (0, 0);
    for &f in &followers {
        let mut canary = 0;
        while canary < 30 {
            let a = chat(&c, &fleet[f].url(), &format!("user-{n}"), f).await;
            n += 1;
            assert_eq!(a.status, 200, "{a:?}");
            match a.cohort.as_str() {
                "canary" => canary += 1,
                "control" => control += 1,
                other => panic!("keyed request in cohort {other:?}"),
            }
        }
    }
    let lead = fleet.iter().position(|r| r.id == leader).unwrap();
    let trip = wait_for("the leader's kill-switch row", WAIT, || async {
        let audit = fleet[lead].audit("r").await;
        audit.into_iter().find(|e| e["action"] == "kill_switch")
    })
    .await;
    assert_eq!(trip["details"]["replica"], leader.as_str(), "{trip}");
    let window = &trip["details"]["window"];
    assert_eq!(
        window["canary"]["requests"], 60,
        "the fleet's canary: {trip}"
    );
    assert_eq!(window["canary"]["errors"], 60, "{trip}");
    assert_eq!(window["control"]["requests"], control, "{trip}");
    // One rollback for the fleet; every replica ends rolled back.
    let audit = actions(&fleet[lead].audit("r").await);
    assert_eq!(
        audit.iter().filter(|a| *a == "kill_switch").count(),
        1,
        "{audit:?}"
    );
    until("every replica rolled back", WAIT, || async {
        let mut all = true;
        for r in &fleet {
            all &= r.status("r").await["status"]["phase"] == "rolled_back";
        }
        all
    })
    .await;
    // The followers' own stage counters hold their own 30; the leader's the fleet's 60.
    let st = fleet[lead].status("r").await;
    assert_eq!(st["status"]["stage_canary"]["requests"], 60, "{st}");
    for &f in &followers {
        let st = fleet[f].status("r").await;
        assert_eq!(st["status"]["stage_canary"]["requests"], 30, "{st}");
    }
}

/// Gates over the fleet: the leader, sent no request at all, advances the stage once the
/// followers' traffic gives the fleet's stage counters the gates' sample size (its own stage
/// counters stay at zero, which no `min_samples` gate passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_advances_a_stage_on_the_fleets_samples_having_served_none() {
    let db = scratch("rampart_cluster");
    let dir = tempfile::tempdir().unwrap();
    let stages = r#"[ { name = "a", percent = 50, min_duration = "1s" }, { name = "b", percent = 60, min_duration = "1h" }, { name = "full", percent = 100 } ]"#;
    let body = format!(
        "{}[rollouts.r.gates]\nmde = 0.3\nalpha = 0.2\npower = 0.5\n",
        body(0.0, stages)
    );
    let cluster = "poll_interval = \"200ms\"";
    let fleet: Vec<Replica> = (0..3)
        .map(|i| Replica::start(dir.path(), &format!("g{i}"), cluster, &body, db.url()))
        .collect();
    let leader = agreed_leader(&fleet, &[0, 1, 2]).await;
    let lead = fleet.iter().position(|r| r.id == leader).unwrap();
    let followers: Vec<usize> = (0..3).filter(|i| *i != lead).collect();
    let c = reqwest::Client::new();
    let mut n = 0;
    let advance = wait_for("the leader's advance", WAIT, || {
        let (c, fleet, followers) = (&c, &fleet, &followers);
        n += 1;
        let round = n;
        async move {
            for &f in followers {
                for k in 0..4 {
                    let a = chat(c, &fleet[f].url(), &format!("u-{round}-{k}"), f).await;
                    assert_eq!(a.status, 200, "{a:?}");
                }
            }
            let audit = fleet[lead].audit("r").await;
            audit.into_iter().find(|e| e["action"] == "advance")
        }
    })
    .await;
    assert_eq!(advance["details"]["replica"], leader.as_str(), "{advance}");
    let reports = advance["details"]["gates"].as_array().unwrap();
    let min = reports
        .iter()
        .find(|g| g["name"] == "min_samples")
        .unwrap_or_else(|| panic!("no min_samples gate: {advance}"));
    assert_eq!(min["passed"], true, "{advance}");
    assert!(min["samples"].as_u64().unwrap() >= 1, "{advance}");
    assert!(
        min["samples"].as_u64() >= min["samples_needed"].as_u64(),
        "{advance}"
    );
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_going_away_under_load_fails_no_request_and_loses_no_event() {
    let db = scratch("rampart_cluster");
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&replicas::host_port(db.url())).await;
    let url = replicas::through(db.url(), proxy.port);
    let body = body(0.0, CANARY);
    let cluster = "poll_interval = \"200ms\"\nstale_after = \"1s\"";
    let mut fleet: Vec<Replica> = (0..2)
        .map(|i| Replica::start(dir.path(), &format!("r{i}"), cluster, &body, &url))
        .collect();
    let traffic = Traffic::start(fleet.iter().map(Replica::url).collect(), 4);
    until("traffic before the outage", WAIT, || async {
        traffic.count() >= 50
    })
    .await;

    proxy.cut();
    until(
        "every replica to say the store is degraded",
        WAIT,
        || async {
            let mut all = true;
            for r in &fleet {
                all &= r.readyz().await.contains("degraded");
            }
            all
        },
    )
    .await;
    let at_cut = traffic.count();
    until("traffic during the outage", WAIT, || async {
        traffic.count() >= at_cut + 100
    })
    .await;
    // Stale for longer than `stale_after`: still serving (on_stale = "keep").
    until("the replicas to count as stale", WAIT, || async {
        fleet[0].status("r").await["status"]["cluster"]["stale"] == true
    })
    .await;
    proxy.restore();
    until("every replica ready again", WAIT, || async {
        let mut all = true;
        for r in &fleet {
            all &= r.readyz().await == "ready";
        }
        all
    })
    .await;
    let at_restore = traffic.count();
    until("traffic after the outage", WAIT, || async {
        traffic.count() >= at_restore + 50
    })
    .await;
    let answers = traffic.finish().await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "no request may fail while the database is away"
    );
    let mut dropped = 0.0;
    for r in &fleet {
        dropped += metric_sum(&r.metrics().await, "rampart_events_dropped_total");
    }
    for r in &mut fleet {
        r.stop();
    }
    let ids: Vec<String> = answers.iter().map(|a| a.request_id.clone()).collect();
    let direct = db.url().to_string();
    let missing = tokio::task::spawn_blocking(move || {
        use rampart_store::EventStore;
        let opts = rampart_store::PgOptions {
            pool_size: 2,
            maintenance_interval: None,
            ..rampart_store::PgOptions::default()
        };
        let store = rampart_store::PgStore::connect(&direct, opts).unwrap();
        ids.iter()
            .filter(|id| !store.event_exists(id).unwrap())
            .count()
    })
    .await
    .unwrap();
    assert!(
        missing as f64 <= dropped,
        "{missing} events missing, {dropped} counted as dropped"
    );
    assert_eq!(dropped, 0.0, "the bounded queue held the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promote_and_rollback_racing_on_two_replicas_end_in_one_state() {
    let db = scratch("rampart_cluster");
    let dir = tempfile::tempdir().unwrap();
    let stages = r#"[ { name = "a", percent = 10, min_duration = "1h" }, { name = "b", percent = 50, min_duration = "1h" }, { name = "full", percent = 100 } ]"#;
    let mut body = String::from(
        "[providers.sim]\ntype = \"mock\"\n[providers.sim.models.m]\nstyle = \"casual\"\n",
    );
    const N: usize = 6;
    for i in 0..N {
        body.push_str(&format!(
            "[routes.s{i}]\nbaseline = \"v1\"\n[routes.s{i}.variants.v1]\nprovider = \"sim\"\n\
             model = \"m\"\n[routes.s{i}.variants.v2]\nprovider = \"sim\"\nmodel = \"m\"\n\
             [rollouts.r{i}]\nroute = \"s{i}\"\ncandidate = \"v2\"\nstages = {stages}\n"
        ));
    }
    let fleet: Vec<Replica> = (0..2)
        .map(|i| Replica::start(dir.path(), &format!("x{i}"), "", &body, db.url()))
        .collect();
    for i in 0..N {
        let r = format!("r{i}");
        // Alternate which replica gets which order.
        let (p, b) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
        let (promote, rollback) = tokio::join!(
            fleet[p].order(&r, "promote"),
            fleet[b].order(&r, "rollback")
        );
        assert_eq!(
            rollback.0, 200,
            "{r}: a rollback is always allowed: {}",
            rollback.1
        );
        assert!(
            promote.0 == 200 || promote.0 == 409,
            "{r}: promote answered {}: {}",
            promote.0,
            promote.1
        );
        until("both replicas on one version", WAIT, || async {
            let a = fleet[0].status(&r).await;
            let b = fleet[1].status(&r).await;
            a["status"]["version"] == b["status"]["version"]
                && a["status"]["state"] == b["status"]["state"]
        })
        .await;
        let st = fleet[0].status(&r).await;
        assert_eq!(st["status"]["phase"], "rolled_back", "{r}: {st}");
        let audit = actions(&fleet[1].audit(&r).await);
        let expected: &[&str] = if promote.0 == 200 {
            &["promote", "rollback"]
        } else {
            &["rollback"]
        };
        assert_eq!(audit, expected, "{r}: promote answered {}", promote.0);
        if promote.0 == 200 {
            // Stored promote then rollback: the rollback came from the promoted stage.
            assert_eq!(st["status"]["state"]["phase"]["from_index"], 1, "{st}");
        }
    }
}
