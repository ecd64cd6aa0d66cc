//! The whole screen from one observation of fakes of the cluster, the Sentinels and the
//! Redis servers (no daemons). The same screens from a live cluster are in tests/it/sync.rs.

use super::{gather, render};
use crate::observe::fake::{FakeCluster, FakeSentinels, config, no_dns, view};
use crate::sentinel::{Addr, RedisServers, Replication, SentinelError};

/// Every Redis answers `INFO replication` with offset 100, except 10.0.0.3 (90 when it
/// answers) and those in `silent`.
struct FakeServers<'a> {
    silent: &'a [&'a str],
}

impl RedisServers for FakeServers<'_> {
    fn replication(&self, redis: &Addr) -> Result<Replication, SentinelError> {
        if self.silent.contains(&redis.host.as_str()) {
            return Err(SentinelError::Unreachable {
                addr: redis.clone(),
                reason: "connection refused".into(),
            });
        }
        Ok(Replication {
            role: "slave".into(),
            offset: Some(if redis.host == "10.0.0.3" { 90 } else { 100 }),
            master: None,
            link_up: Some(true),
            backlog: Some(100),
        })
    }

    /// The status screen never asks for these.
    fn priority(&self, redis: &Addr) -> Result<u32, SentinelError> {
        Err(not_asked(redis))
    }

    fn set_priority(&self, redis: &Addr, _: u32) -> Result<(), SentinelError> {
        Err(not_asked(redis))
    }
}

fn not_asked(redis: &Addr) -> SentinelError {
    SentinelError::Protocol {
        addr: redis.clone(),
        reason: "the status screen does not ask this".into(),
    }
}

fn screen(cluster: &FakeCluster, sentinels: &FakeSentinels, silent: &[&str]) -> (String, bool) {
    let snapshot = gather(
        &config("guard = off\n"),
        cluster,
        sentinels,
        &FakeServers { silent },
        &no_dns,
    );
    render(&snapshot)
}

#[test]
fn a_settled_cluster_agrees_on_one_screen() {
    let cluster = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
    let (text, agree) = screen(&cluster, &FakeSentinels::agreeing(1, 0, &[]), &[]);
    assert!(agree, "{text}");
    assert_eq!(
        text,
        "master redis-ha\n\
         pacemaker: 3 nodes, quorum\n\
         sentinel:  3 of 3 Sentinels reached, config-epoch 0, master 10.0.0.1:6379\n\
         \n\
         NODE   REDIS          SENTINEL SAYS               redis_role  BLOCKS  AGREE\n\
         node1  10.0.0.1:6379  master                      primary     -       yes\n\
         node2  10.0.0.2:6379  replica, link ok, lag 0 B   replica     write   yes\n\
         node3  10.0.0.3:6379  replica, link ok, lag 10 B  replica     write   yes\n\
         \n\
         guard: off (guard = off in the config)\n\
         \n\
         all agree\n"
    );
}

#[test]
fn every_disagreement_found_by_one_observation_is_named() {
    // (case, cluster, Sentinels, Redis that do not answer, lines the screen must show)
    type Setup = fn() -> (FakeCluster, FakeSentinels);
    let table: [(&str, Setup, &[&str], &[&str]); 6] = [
        (
            "a read block where the role says the node serves reads",
            || {
                let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
                c.set_read_blocks(&["node2"]);
                (c, FakeSentinels::agreeing(1, 0, &[]))
            },
            &[],
            &[
                "node2  10.0.0.2:6379  replica, link ok, lag 0 B   replica     read+write  NO",
                "DISAGREE: node2: RedisLBReadBlock runs though redis_role is replica",
            ],
        ),
        (
            "mid-failover: the Sentinels moved the primary, the roles did not follow yet",
            || {
                let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
                (c, FakeSentinels::agreeing(2, 1, &[1]))
            },
            &["10.0.0.1"],
            &[
                "sentinel:  3 of 3 Sentinels reached, config-epoch 1, master 10.0.0.2:6379",
                "node1  10.0.0.1:6379  down (s_down,disconnected)",
                "DISAGREE: node1: redis_role is primary, the Sentinels say fail",
                "DISAGREE: node2: redis_role is replica, the Sentinels say primary",
            ],
        ),
        (
            "a transient role overrides the permanent one",
            || {
                let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
                c.set_transient("node3", "fail");
                (c, FakeSentinels::agreeing(1, 0, &[]))
            },
            &[],
            &[
                "fail (transient)",
                "DISAGREE: node3: a transient redis_role=fail overrides the permanent value",
                "DISAGREE: node3: redis_role is fail, the Sentinels say replica",
                "DISAGREE: node3: RedisLBReadBlock is not running though redis_role is fail",
            ],
        ),
        (
            "no majority of the Sentinels",
            || {
                let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
                let s = FakeSentinels::agreeing(1, 0, &[]);
                s.set(2, Err("timeout".into()));
                s.set(3, Err("timeout".into()));
                (c, s)
            },
            &[],
            &[
                "sentinel:  unknown",
                "node1  -      ?",
                "DISAGREE: Sentinel: reached 1 of 3 known Sentinels: no majority, so no decision",
            ],
        ),
        (
            "Pacemaker cannot be asked",
            || {
                let mut c = FakeCluster::new(&[None, None, None]);
                c.unreadable = Some("not connected");
                (c, FakeSentinels::agreeing(1, 0, &[]))
            },
            &[],
            &[
                "pacemaker: unknown",
                "DISAGREE: cannot read the cluster: cibadmin --query failed (try again): not connected",
                "DISAGREE: Sentinel: not mapped: the cluster's nodes are unknown",
            ],
        ),
        (
            "a replica's Redis cannot be asked for its lag",
            || {
                let c = FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]);
                let s = FakeSentinels::agreeing(1, 0, &[]);
                for n in 1..=3 {
                    s.set(n, Ok(view(n, 1, 0, &[])));
                }
                (c, s)
            },
            &["10.0.0.3"],
            &["node3  10.0.0.3:6379  replica, link ok, lag ?", "all agree"],
        ),
    ];
    for (case, setup, silent, lines) in table {
        let (cluster, sentinels) = setup();
        let (text, agree) = screen(&cluster, &sentinels, silent);
        let agreeing = lines.contains(&"all agree");
        assert_eq!(agree, agreeing, "{case}\n{text}");
        for line in lines {
            assert!(text.contains(line), "{case}: {line:?} missing from\n{text}");
        }
    }
}
