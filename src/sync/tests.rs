//! A whole sync against fake Sentinels and a fake cluster that records every write. The
//! same flows against real Redis, Sentinel and Pacemaker tools are in tests/it/.

use super::SyncError;
use super::report::Report;
use super::run::Sync;
use crate::cluster::NodeName;
use crate::config::Config;
use crate::deadline::Deadline;
use crate::exit::Exit;
use crate::observe::fake::{self, FakeCluster, FakeSentinels, no_dns, redis, view};
use crate::resolve::Resolved;
use crate::sentinel::SentinelView;

fn config() -> Config {
    fake::config("block_wait_ms = 1000\n")
}

fn sync(c: &Config, s: &FakeSentinels, cl: &FakeCluster, dry_run: bool) -> Result<(), SyncError> {
    sync_report(c, s, cl, dry_run).1
}

/// One sync, with its report.
fn sync_report(
    c: &Config,
    s: &FakeSentinels,
    cl: &FakeCluster,
    dry_run: bool,
) -> (Report, Result<(), SyncError>) {
    Sync {
        config: c,
        sentinels: s,
        cluster: cl,
        redis: None,
        resolve: &no_dns,
        dry_run,
        courtesy: None,
        deadline: Deadline::NONE,
    }
    .run()
}

fn some(v: &[&str]) -> Vec<Option<String>> {
    v.iter().map(|s| Some(s.to_string())).collect()
}

#[test]
fn first_sync_sets_every_role_and_a_second_writes_nothing() {
    let (c, s) = (config(), FakeSentinels::agreeing(1, 0, &[]));
    let cl = FakeCluster::new(&[None, None, None]);
    sync(&c, &s, &cl, false).unwrap();
    assert_eq!(
        cl.writes(),
        [
            "node2 epoch=0; node2=replica; node3=replica",
            "read",
            "node1=primary"
        ]
    );
    assert_eq!(cl.roles(), some(&["primary", "replica", "replica"]));
    cl.clear_writes();
    sync(&c, &s, &cl, false).unwrap();
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
}

/// Sentinels right after a switchover to node2: node1, still a running master until
/// Sentinel converts it, is listed as a replica whose link is not up.
fn switched() -> FakeSentinels {
    let s = FakeSentinels::agreeing(2, 1, &[]);
    for n in 1..=3 {
        let mut v = view(n, 2, 1, &[]);
        relisted(&mut v, &["slave"]);
        s.set(n, Ok(v));
    }
    s
}

#[test]
fn switchover_demotes_waits_for_the_block_then_promotes() {
    let (c, s) = (config(), switched());
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    sync(&c, &s, &cl, false).unwrap();
    assert_eq!(
        cl.writes(),
        ["node1 epoch=1; node1=fail", "read", "read", "node2=primary"]
    );
    assert_eq!(cl.max_primaries(), 1);
}

#[test]
fn a_dead_primary_is_failed_and_not_waited_for() {
    let (c, s) = (config(), FakeSentinels::agreeing(2, 1, &[1]));
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    sync(&c, &s, &cl, false).unwrap();
    assert_eq!(
        cl.writes(),
        ["node1 epoch=1; node1=fail", "read", "node2=primary"]
    );
}

#[test]
fn a_block_that_never_starts_stops_the_promotion_and_asks_for_a_retry() {
    let (c, s) = (config(), switched());
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.block_after = u32::MAX;
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_retries_naming(
        &err,
        "node1 demoted but RedisLBWriteBlock not running there",
    );
    assert_eq!(cl.roles(), some(&["fail", "replica", "replica"]));
}

/// node1 primary (offset 500), node2 a synced replica, node3 `fail` and returning: linked
/// after a full resync, its stream held back (offset 300), so not caught up yet.
fn returning_replica_behind() -> (FakeCluster, crate::observe::caught_up::tests::Servers) {
    use crate::observe::caught_up::tests::{Servers, master, replica};
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("fail")]);
    cl.set_epoch(Some(0));
    let servers = Servers::default();
    let primary = redis(1).to_string();
    servers.set(&primary, master(500));
    servers.set(&redis(2).to_string(), replica(&primary, true, 500));
    servers.set(&redis(3).to_string(), replica(&primary, true, 300));
    (cl, servers)
}

/// A Sentinel script's own sync has a deadline (Sentinel kills it at 60 s): the block
/// wait ends there, however long `block_wait_ms`, and so does the catch-up wait.
#[test]
fn the_waits_end_at_the_deadline() {
    use crate::observe::caught_up::tests::Servers;
    let c = fake::config("block_wait_ms = 60000\n");
    let within = |s: &FakeSentinels, cl: &FakeCluster, redis: Option<&Servers>| {
        let started = std::time::Instant::now();
        let (_, result) = Sync {
            config: &c,
            sentinels: s,
            cluster: cl,
            redis: redis.map(|r| r as &dyn crate::sentinel::RedisServers),
            resolve: &no_dns,
            dry_run: false,
            deadline: Deadline::after(std::time::Duration::from_millis(300)),
            courtesy: None,
        }
        .run();
        (started.elapsed(), result)
    };
    // A block that never starts.
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.block_after = u32::MAX;
    let (took, result) = within(&switched(), &cl, None);
    assert_retries_naming(
        &result.unwrap_err(),
        "node1 demoted but RedisLBWriteBlock not running there",
    );
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    assert_eq!(cl.roles(), some(&["fail", "replica", "replica"]));
    // A returning replica that does not catch up: it stays fail, the sync ends.
    let (cl, servers) = returning_replica_behind();
    let s = FakeSentinels::agreeing(1, 0, &[]);
    let (took, result) = within(&s, &cl, Some(&servers));
    result.unwrap();
    assert!(took < crate::observe::caught_up::CATCH_UP_WAIT, "{took:?}");
    assert_eq!(cl.roles(), some(&["primary", "replica", "fail"]));
}

/// The sync asks Sentinel to retry (exit 1), and says why.
fn assert_retries_naming(err: &SyncError, why: &str) {
    assert_eq!(err.exit().code(), 1, "{err}");
    assert!(err.to_string().contains(why), "{err}");
}

/// Node2 promoted after node1's crash, node3 still following the dead node1 (not
/// reconfigured yet): it lacks what node2 will acknowledge.
fn left_behind() -> FakeSentinels {
    let s = FakeSentinels::agreeing(2, 1, &[1]);
    for n in 1..=3 {
        let mut v = view(n, 2, 1, &[1]);
        for r in v.replicas.iter_mut().filter(|r| r.addr == redis(3)) {
            r.master = Some(redis(1));
            r.link_ok = false;
            r.link_down = std::time::Duration::from_secs(2);
        }
        s.set(n, Ok(v));
    }
    s
}

#[test]
fn a_replica_left_behind_has_its_reads_refused_before_the_promotion() {
    let (c, s) = (config(), left_behind());
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    // Node3's read block never starts: no promotion.
    cl.set_read_blocks(&["node1"]);
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_retries_naming(&err, "node3 demoted but RedisLBReadBlock not running there");
    assert_eq!(cl.roles(), some(&["fail", "replica", "fail"]));
    // Where it starts as the rules say, the promotion follows it.
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    sync(&c, &s, &cl, false).unwrap();
    assert_eq!(
        cl.writes(),
        [
            "node1 epoch=1; node1=fail; node3=fail",
            "read",
            "read",
            "node2=primary"
        ]
    );
}

#[test]
fn where_pacemaker_orders_the_reads_first_a_failover_is_one_transaction() {
    // The shipped order constraint: Pacemaker starts node3's read block before it stops
    // node2's write block, so the demotions and the promotion go in one transaction,
    // with every known node's role (node3 unchanged here is written too), and nothing
    // is waited for: the transition does that. Even where node3's read block never
    // starts: Pacemaker holds node2's write port closed until it does.
    let c = config();
    for (sentinels, want) in [
        (
            left_behind(),
            "node1 epoch=1; node1=fail; node3=fail; node2=primary",
        ),
        (
            FakeSentinels::agreeing(2, 1, &[1]),
            "node1 epoch=1; node1=fail; node3=replica; node2=primary",
        ),
    ] {
        let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
        cl.reads_ordered = true;
        cl.set_read_blocks(&["node1"]);
        sync(&c, &sentinels, &cl, false).unwrap();
        assert_eq!(cl.writes(), [want]);
        assert_eq!(cl.max_primaries(), 1);
    }
    // A live old master's write block is still seen running first: the order binds
    // read blocks, not one write block instance before another.
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.reads_ordered = true;
    sync(&c, &switched(), &cl, false).unwrap();
    assert_eq!(
        cl.writes(),
        ["node1 epoch=1; node1=fail", "read", "read", "node2=primary"]
    );
}

/// Just after `+switch-master`: the old master (node1) relisted as a replica that is not
/// connected yet (a former master's link was never up: Redis says -1, Sentinel -1000);
/// whether it is alive the Sentinels only know down-after-milliseconds later.
fn relisted(v: &mut SentinelView, flags: &[&str]) {
    for r in &mut v.replicas {
        if r.addr == redis(1) {
            r.flags = flags.iter().map(|f| f.to_string()).collect();
            r.link_ok = false;
            r.link_down = std::time::Duration::MAX;
        }
    }
}

#[test]
fn a_crashed_old_primary_is_waited_for_until_the_sentinels_report_it_down() {
    let (c, s) = (config(), FakeSentinels::agreeing(2, 1, &[]));
    for n in 1..=3 {
        let mut v = view(n, 2, 1, &[]);
        relisted(&mut v, &["slave", "disconnected"]);
        s.set(n, Ok(v));
    }
    // Its Pacemaker died with it: its block never starts.
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.block_after = u32::MAX;
    s.later(|v| relisted(v, &["slave", "s_down", "disconnected"]));
    let (report, result) = sync_report(&c, &s, &cl, false);
    result.unwrap();
    assert_eq!(report.given_up, [NodeName("node1".into())]);
    assert!(
        report
            .summary(false)
            .contains("stopped waiting for node1 (Redis down)"),
        "{}",
        report.summary(false)
    );
    assert_eq!(cl.roles(), some(&["fail", "primary", "replica"]));
    assert_eq!(cl.max_primaries(), 1);
}

#[test]
fn a_replica_that_resyncs_meanwhile_is_no_longer_waited_for() {
    // After the switch node3 is still resyncing to node2 (its link down since the crash):
    // it might be a master for all we know, so its block is waited for, until it is a
    // synced replica.
    let (c, s) = (config(), FakeSentinels::agreeing(2, 1, &[1]));
    for n in 1..=3 {
        let mut v = view(n, 2, 1, &[1]);
        for r in &mut v.replicas {
            if r.addr == redis(3) {
                r.link_ok = false;
                r.link_down = std::time::Duration::from_secs(3);
            }
        }
        s.set(n, Ok(v));
    }
    s.later(|v| {
        for r in &mut v.replicas {
            r.link_ok |= r.addr == redis(3);
        }
    });
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.block_after = u32::MAX;
    let (report, result) = sync_report(&c, &s, &cl, false);
    result.unwrap();
    assert!(report.given_up.is_empty(), "{:?}", report.given_up);
    assert_eq!(cl.roles(), some(&["fail", "primary", "fail"]));
}

#[test]
fn a_wait_ends_when_the_sentinels_move_on() {
    let (c, s) = (config(), switched());
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.block_after = u32::MAX;
    // A newer failover, to node3, while this sync waits to promote node2.
    s.later(|v| {
        let n: u8 = v.sentinel.host.rsplit('.').next().unwrap().parse().unwrap();
        *v = view(n, 3, 2, &[]);
    });
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 1, "{err}");
    assert!(err.to_string().contains("moved on"), "{err}");
    assert_ne!(cl.roles()[1].as_deref(), Some("primary"));
}

#[test]
fn no_quorum_or_no_majority_writes_nothing_and_retries() {
    let c = config();
    let mut cl = FakeCluster::new(&[None, None, None]);
    cl.quorate = false;
    let err = sync(&c, &FakeSentinels::agreeing(1, 0, &[]), &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 1);
    let cl = FakeCluster::new(&[None, None, None]);
    let s = FakeSentinels::agreeing(1, 0, &[]);
    s.set(2, Err("down".into()));
    s.set(3, Err("down".into()));
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 1);
    assert!(err.to_string().contains("no majority"), "{err}");
    assert!(cl.writes().is_empty());
}

#[test]
fn a_stale_minority_view_does_not_undo_a_newer_failover() {
    let c = config();
    let s = FakeSentinels::agreeing(2, 4, &[1]);
    s.set(1, Ok(view(1, 1, 3, &[]))); // the local Sentinel has not heard of it yet
    let cl = FakeCluster::new(&[Some("fail"), Some("primary"), Some("replica")]);
    sync(&c, &s, &cl, false).unwrap();
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
}

#[test]
fn a_stale_majority_view_writes_nothing_once_a_newer_epoch_was_applied() {
    let c = config();
    // Sentinels 1 and 3 (a majority) have not heard of epoch 4 yet; its leader, 2, is
    // out of reach. The roles in the CIB were written from epoch 4.
    let s = FakeSentinels::agreeing(1, 3, &[]);
    s.set(2, Err("timeout".into()));
    let cl = FakeCluster::new(&[Some("fail"), Some("primary"), Some("replica")]);
    cl.set_epoch(Some(4));
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 1, "{err}");
    assert!(
        err.to_string().contains("a stale view, writing nothing"),
        "{err}"
    );
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
    // Once they catch up, the same epoch is no news: nothing to write either.
    let s = FakeSentinels::agreeing(2, 4, &[1]);
    sync(&c, &s, &cl, false).unwrap();
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
}

#[test]
fn no_promotion_when_another_node_became_primary_meanwhile() {
    let (c, s) = (config(), FakeSentinels::agreeing(2, 1, &[]));
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.intruder = Some("node3");
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 1, "{err}");
    assert!(err.to_string().contains("node3 became primary"), "{err}");
    assert!(!cl.writes().contains(&"node2=primary".to_string()));
    assert_eq!(cl.roles(), some(&["replica", "replica", "primary"]));
}

/// Every node's sync writes the same thing at a failover: the one that finds the
/// promotion already written by another, after its wait, writes it no second time.
#[test]
fn a_promotion_another_sync_wrote_meanwhile_is_not_written_again() {
    let (c, s) = (config(), FakeSentinels::agreeing(2, 1, &[]));
    let mut cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.intruder = Some("node2");
    sync(&c, &s, &cl, false).unwrap();
    assert_eq!(cl.writes(), ["node1 epoch=1; node1=replica", "read"]);
    assert_eq!(cl.roles(), some(&["replica", "primary", "replica"]));
}

#[test]
fn unknown_master_name_gives_up_without_writing() {
    let mut c = config();
    c.master_name = "other".into();
    let cl = FakeCluster::new(&[None, None, None]);
    let err = sync(&c, &FakeSentinels::agreeing(1, 0, &[]), &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 2);
    assert!(cl.writes().is_empty());
}

#[test]
fn an_unmapped_primary_is_never_promoted_but_others_are_still_demoted() {
    let mut c = config();
    c.nodes.remove("node2");
    let s = FakeSentinels::agreeing(2, 1, &[1]);
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    let err = sync(&c, &s, &cl, false).unwrap_err();
    assert_eq!(err.exit().code(), 2);
    assert!(err.to_string().contains("map to no single node"), "{err}");
    assert_eq!(cl.roles(), some(&["fail", "replica", "replica"]));
}

#[test]
fn dry_run_plans_but_writes_nothing() {
    let (c, s) = (config(), FakeSentinels::agreeing(1, 0, &[]));
    let cl = FakeCluster::new(&[None, None, None]);
    let (report, result) = sync_report(&c, &s, &cl, true);
    result.unwrap();
    assert!(cl.writes().is_empty());
    assert_eq!(
        report.summary(true),
        "epoch 0, primary node1 (10.0.0.1:6379), 3 Sentinels reached: would write node2=replica, node3=replica, node1=primary"
    );
}

#[test]
fn while_the_master_is_lost_its_replicas_stay_replicas() {
    let c = config();
    let s = fake::master_lost(1, std::time::Duration::from_secs(2));
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    sync(&c, &s, &cl, false).unwrap();
    // The dead primary is failed, nobody promoted, the replicas keep serving reads.
    assert_eq!(cl.writes(), ["node1 epoch=0; node1=fail"]);
    assert_eq!(cl.roles(), some(&["fail", "replica", "replica"]));
}

#[test]
fn a_promotion_with_nothing_before_it_is_written_without_a_second_read() {
    // The lost master's node was demoted when the Sentinels called it down; now the
    // leader names replica 2 at the same epoch: one write, no CIB read after the first.
    let (c, s) = (config(), FakeSentinels::agreeing(2, 0, &[1]));
    let cl = FakeCluster::new(&[Some("fail"), Some("replica"), Some("replica")]);
    cl.set_epoch(Some(0));
    sync(&c, &s, &cl, false).unwrap();
    assert_eq!(cl.writes(), ["node2=primary"]);
    // A new epoch is recorded first: then the CIB is read again before the promotion (a
    // sync with a newer view may have written meanwhile).
    let cl = FakeCluster::new(&[Some("fail"), Some("replica"), Some("replica")]);
    cl.set_epoch(Some(0));
    sync(&c, &FakeSentinels::agreeing(2, 1, &[1]), &cl, false).unwrap();
    assert_eq!(cl.writes(), ["node2 epoch=1", "read", "node2=primary"]);
}

#[test]
fn a_node_line_naming_no_cluster_node_writes_nothing() {
    // `node nodeX` where the cluster has node1: node1's Redis (the primary) would map to
    // nowhere and node1 be demoted as a node the Sentinels do not know.
    let c = Config::parse(
        "master_name = redis-ha\nsentinel = 10.0.0.1:26379\n\
         node nodeX = 10.0.0.1\nnode node2 = 10.0.0.2\nnode node3 = 10.0.0.3\n",
        "test",
    )
    .unwrap();
    let s = FakeSentinels::agreeing(1, 0, &[]);
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    let (report, result) = sync_report(&c, &s, &cl, false);
    let e = result.unwrap_err();
    assert!(matches!(e, SyncError::UnknownNodes), "{e}");
    assert_eq!(e.exit().code(), 2);
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
    let said: Vec<String> = report
        .mapping_errors
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        said.iter()
            .any(|m| m.contains("`node nodeX = ...` names no cluster node")
                && m.contains("node1, node2, node3")),
        "{said:?}"
    );
}

#[test]
fn a_held_primary_is_made_replica_until_its_hold_runs_out() {
    use crate::cluster::Cluster;
    let (c, s) = (config(), FakeSentinels::agreeing(1, 0, &[]));
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    let node1 = NodeName("node1".into());
    let now = super::run::unix_now();
    cl.set_epoch(Some(0));
    cl.set_hold(&node1, Some(now + 60)).unwrap();
    cl.clear_writes();
    let (report, result) = sync_report(&c, &s, &cl, false);
    result.unwrap();
    assert_eq!(cl.writes(), ["node1=replica"]);
    assert!(
        report
            .summary(false)
            .ends_with("node1 held from primary by a switchover"),
        "{}",
        report.summary(false)
    );
    // Lifted, or run out: the Sentinels' master is primary again.
    for until in [None, Some(now - 1)] {
        cl.set_hold(&node1, until).unwrap();
        cl.set_role(&node1, crate::cluster::Role::Replica).unwrap();
        cl.clear_writes();
        sync(&c, &s, &cl, false).unwrap();
        assert_eq!(cl.writes(), ["node1=primary"], "hold {until:?}");
    }
}

/// Redis servers that only take `replica-priority` settings, and record them.
#[derive(Default)]
struct Priorities(std::sync::Mutex<Vec<String>>);

impl crate::sentinel::RedisServers for Priorities {
    fn replication(
        &self,
        redis: &crate::sentinel::Addr,
    ) -> Result<crate::sentinel::Replication, crate::sentinel::SentinelError> {
        Err(crate::sentinel::SentinelError::Unreachable {
            addr: redis.clone(),
            reason: "not asked".into(),
        })
    }

    fn priority(
        &self,
        redis: &crate::sentinel::Addr,
    ) -> Result<u32, crate::sentinel::SentinelError> {
        self.replication(redis).map(|_| 0)
    }

    fn set_priority(
        &self,
        redis: &crate::sentinel::Addr,
        priority: u32,
    ) -> Result<(), crate::sentinel::SentinelError> {
        self.0.lock().unwrap().push(format!("{redis}={priority}"));
        Ok(())
    }
}

#[test]
fn priorities_a_dead_switchover_left_are_restored_once_its_time_has_passed() {
    use crate::cluster::{Cluster, PriorityRecord};
    let (c, s) = (config(), FakeSentinels::agreeing(1, 0, &[]));
    let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    cl.set_epoch(Some(0));
    let node1 = NodeName("node1".into());
    let now = super::run::unix_now();
    let record = |until| PriorityRecord {
        until,
        entries: vec![("10.0.0.2:6379".into(), 100), ("[fd00::3]:6379".into(), 7)],
    };
    let redis = Priorities::default();
    let run = |cl: &FakeCluster| {
        Sync {
            config: &c,
            sentinels: &s,
            cluster: cl,
            redis: Some(&redis),
            resolve: &no_dns,
            dry_run: false,
            courtesy: None,
            deadline: Deadline::NONE,
        }
        .run()
    };
    // The switchover may still run: nothing.
    cl.set_priority_record(&node1, Some(&record(now + 30)))
        .unwrap();
    cl.clear_writes();
    let (_, result) = run(&cl);
    result.unwrap();
    assert!(redis.0.lock().unwrap().is_empty());
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
    // Its time has passed: restored, the record deleted, both said.
    cl.set_priority_record(&node1, Some(&record(now - 1)))
        .unwrap();
    cl.clear_writes();
    let (report, result) = run(&cl);
    result.unwrap();
    assert_eq!(
        *redis.0.lock().unwrap(),
        ["10.0.0.2:6379=100", "[fd00::3]:6379=7"]
    );
    assert_eq!(cl.writes(), ["node1 priorities deleted"]);
    let line = report.summary(false);
    assert!(
        line.contains("restored replica-priority 100 of 10.0.0.2:6379 (left by a switchover)"),
        "{line}"
    );
}

#[test]
fn a_returning_replica_gets_its_reads_back_only_once_it_has_caught_up() {
    use crate::observe::caught_up::tests::replica;
    let (c, s) = (config(), FakeSentinels::agreeing(1, 0, &[]));
    let (cl, servers) = returning_replica_behind();
    let primary = redis(1).to_string();
    let run = || {
        Sync {
            config: &c,
            sentinels: &s,
            cluster: &cl,
            redis: Some(&servers),
            resolve: &no_dns,
            dry_run: false,
            courtesy: None,
            deadline: Deadline::NONE,
        }
        .run()
    };
    let started = std::time::Instant::now();
    let (report, result) = run();
    result.unwrap();
    assert!(started.elapsed() >= crate::observe::caught_up::CATCH_UP_WAIT);
    assert!(cl.writes().is_empty(), "{:?}", cl.writes());
    let line = report.summary(false);
    assert!(
        line.contains("node3 stays fail until it has caught up with the primary (offset 300 of the primary's 500)"),
        "{line}"
    );
    // Caught up: replica.
    servers.set(&redis(3).to_string(), replica(&primary, true, 500));
    let (_, result) = run();
    result.unwrap();
    assert_eq!(cl.writes(), ["node3=replica"]);
}

/// In the service, every node syncs at the same events: one whose plan promotes another
/// node leaves it to that node's own sync for a moment, then writes what is still to be
/// written (here everything: the promoted node's sync never came, as when its service is
/// down). The promoted node itself, and a one-shot sync, write at once.
#[test]
fn a_promotion_of_another_node_is_left_to_its_own_sync_first_but_not_for_good() {
    let (c, s) = (config(), FakeSentinels::agreeing(2, 1, &[1]));
    for (me, deferred) in [(Some("node3"), true), (Some("node2"), false), (None, false)] {
        let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
        let me = me.map(|n| NodeName(n.into()));
        let (report, result) = Sync {
            config: &c,
            sentinels: &s,
            cluster: &cl,
            redis: None,
            resolve: &no_dns,
            dry_run: false,
            courtesy: me.as_ref(),
            deadline: Deadline::NONE,
        }
        .run();
        result.unwrap();
        assert_eq!(
            report.deferred_to,
            deferred.then(|| NodeName("node2".into())),
            "{me:?}"
        );
        assert_eq!(
            cl.writes(),
            ["node1 epoch=1; node1=fail", "read", "node2=primary"],
            "{me:?}"
        );
        let line = report.summary(false);
        assert_eq!(
            line.contains("after leaving the promotion to node2's own sync"),
            deferred,
            "{line}"
        );
    }
}

/// The cluster's node names looked up as DNS would: node2 and node3 at the fakes'
/// addresses, node1 as `node1` says.
fn dns(node1: Resolved) -> impl Fn(&[&str]) -> Vec<Resolved> + std::marker::Sync {
    move |names| {
        names
            .iter()
            .map(|name| match *name {
                "node1" => node1.clone(),
                "node2" => Resolved::Addrs(vec!["10.0.0.2".parse().unwrap()]),
                "node3" => Resolved::Addrs(vec!["10.0.0.3".parse().unwrap()]),
                _ => Resolved::Addrs(vec![]),
            })
            .collect()
    }
}

/// A name server that did not answer in time for the primary's node name once made the
/// sync give up (exit 2), as for a name without an address, and Sentinel never ran it
/// again: a stall is worth a retry (exit 1) that names the name. Either way nothing is
/// written for the node whose Redis maps to none.
#[test]
fn a_node_name_not_looked_up_in_time_is_retried_and_one_without_an_address_given_up() {
    // No `node` lines: the cluster's node names are looked up.
    let c = Config::parse(
        "master_name = redis-ha\nsentinel = 10.0.0.1:26379\nblock_wait_ms = 1000\n",
        "test",
    )
    .unwrap();
    let s = FakeSentinels::agreeing(1, 0, &[]);
    let run = |cl: &FakeCluster, node1: Resolved| {
        Sync {
            config: &c,
            sentinels: &s,
            cluster: cl,
            redis: None,
            resolve: &dns(node1),
            dry_run: false,
            courtesy: None,
            deadline: Deadline::NONE,
        }
        .run()
    };
    // Resolved: mapped, node1 made primary.
    let cl = FakeCluster::new(&[None, None, None]);
    let (_, result) = run(&cl, Resolved::Addrs(vec!["10.0.0.1".parse().unwrap()]));
    result.unwrap();
    assert_eq!(cl.roles(), some(&["primary", "replica", "replica"]));
    // (case, node1's lookup, the exit code, what the error says, what the report says)
    let table = [
        (
            "late",
            Resolved::Late,
            1,
            "map to no node yet: the lookup of node1 did not finish in time",
            "Redis at 10.0.0.1 belongs to no cluster node yet: the lookup of node1",
        ),
        (
            "no address",
            Resolved::Addrs(vec![]),
            2,
            "map to no single node",
            "Redis at 10.0.0.1 belongs to no cluster node (add `node NAME = 10.0.0.1`",
        ),
    ];
    for (case, node1, code, error, reported) in table {
        let cl = FakeCluster::new(&[None, None, None]);
        if case == "late" {
            // node1 carries `primary` and its name's lookup is late: it keeps it, and
            // nothing else is written either until the name maps.
            let cl = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
            let (_, result) = run(&cl, Resolved::Late);
            assert_eq!(result.unwrap_err().exit().code(), 1);
            assert!(cl.writes().is_empty(), "{:?}", cl.writes());
        }
        let (report, result) = run(&cl, node1);
        let e = result.unwrap_err();
        assert_eq!(e.exit().code(), code, "{case}: {e}");
        assert!(e.to_string().contains(error), "{case}: {e}");
        let line = report.summary(false);
        assert!(line.contains(reported), "{case}: {line}");
        assert!(
            cl.writes().iter().all(|w| !w.contains("node1")),
            "{case}: {:?}",
            cl.writes()
        );
        // Late: nothing written until every name maps. No address: the others are
        // still written.
        let others = (case != "late").then(|| "replica".to_string());
        assert_eq!(cl.roles(), [None, others.clone(), others], "{case}");
    }
}
