//! The guard's whole round against fakes of the cluster and the Sentinels: one
//! observation in, what it refuses on this node out. The same against real Sentinels,
//! iptables and a CIB file is in tests/it/sync.rs (the guard against real Sentinels).

use super::{observed, refuse};
use crate::cluster::NodeName;
use std::time::Duration;

use crate::observe::fake::{FakeCluster, FakeSentinels, config, master_lost, no_dns, view};

/// The cluster as each row sets it up.
type Setup = fn() -> (FakeCluster, FakeSentinels);

/// (case, this node, setup, write refused because…, read refused because…)
type Row = (
    &'static str,
    &'static str,
    Setup,
    Option<&'static str>,
    Option<&'static str>,
);

fn settled() -> (FakeCluster, FakeSentinels) {
    (
        FakeCluster::new(&[Some("primary"), Some("replica"), Some("replica")]),
        FakeSentinels::agreeing(1, 0, &[]),
    )
}

#[test]
fn a_round_refuses_what_this_node_cannot_confirm() {
    const NOT_PRIMARY: &str = "not the primary: the Sentinels name node1 primary";
    const NO_QUORUM: &str = "this node's partition has no quorum";
    const NOT_SYNCED: &str =
        "the Sentinels do not call this node's Redis the primary or a synced replica";
    let table: [Row; 11] = [
        (
            "a replica of a dead master keeps its reads",
            "node2",
            || {
                let (c, _) = settled();
                (c, master_lost(1, Duration::from_secs(2)))
            },
            Some("not the primary: the Sentinels name no node primary"),
            None,
        ),
        (
            "... until its link has been down past the bound (2 s + 2 x 10 s + 5 s)",
            "node2",
            || {
                let (c, _) = settled();
                (c, master_lost(1, Duration::from_secs(28)))
            },
            Some("not the primary: the Sentinels name no node primary"),
            Some(NOT_SYNCED),
        ),
        ("the confirmed primary", "node1", settled, None, None),
        (
            "a synced replica",
            "node2",
            settled,
            Some(NOT_PRIMARY),
            None,
        ),
        (
            "a replica whose Redis is down",
            "node3",
            || {
                let (c, _) = settled();
                (c, FakeSentinels::agreeing(1, 0, &[3]))
            },
            Some(NOT_PRIMARY),
            Some(NOT_SYNCED),
        ),
        (
            "promoted by the Sentinels, redis_role not yet written",
            "node2",
            || {
                let (c, _) = settled();
                (c, FakeSentinels::agreeing(2, 1, &[1]))
            },
            Some(
                "the Sentinels name this node primary, but its redis_role is replica (not yet promoted)",
            ),
            None,
        ),
        (
            "a transient redis_role wins over the permanent one",
            "node1",
            || {
                let (c, s) = settled();
                c.set_transient("node1", "replica");
                (c, s)
            },
            Some(
                "the Sentinels name this node primary, but its redis_role is replica (not yet promoted)",
            ),
            None,
        ),
        (
            "the primary's partition lost quorum",
            "node1",
            || {
                let (mut c, s) = settled();
                c.quorate = false;
                (c, s)
            },
            Some(NO_QUORUM),
            Some(NO_QUORUM),
        ),
        (
            "a Sentinel majority out of reach",
            "node1",
            || {
                let (c, s) = settled();
                s.set(2, Err("timeout".into()));
                s.set(3, Err("timeout".into()));
                (c, s)
            },
            Some(
                "reached 1 of 3 known Sentinels: no majority, so no decision; \
                 Sentinel 10.0.0.2:26379 unreachable: timeout; \
                 Sentinel 10.0.0.3:26379 unreachable: timeout",
            ),
            Some(
                "reached 1 of 3 known Sentinels: no majority, so no decision; \
                 Sentinel 10.0.0.2:26379 unreachable: timeout; \
                 Sentinel 10.0.0.3:26379 unreachable: timeout",
            ),
        ),
        (
            "Pacemaker stopped here",
            "node2",
            || {
                let (mut c, s) = settled();
                c.unreadable = Some("not connected");
                (c, s)
            },
            Some("Pacemaker cannot be asked: cibadmin --query failed (try again): not connected"),
            Some("Pacemaker cannot be asked: cibadmin --query failed (try again): not connected"),
        ),
        (
            "the old master back, not yet a replica of the new one",
            "node1",
            || {
                let c = FakeCluster::new(&[Some("fail"), Some("primary"), Some("replica")]);
                let s = FakeSentinels::agreeing(2, 1, &[]);
                for n in 1..=3 {
                    let mut v = view(n, 2, 1, &[]);
                    // Converted from a master: its link was never up (Redis -1).
                    for r in &mut v.replicas {
                        if r.addr.host == "10.0.0.1" {
                            r.link_ok = false;
                            r.link_down = std::time::Duration::MAX;
                        }
                    }
                    s.set(n, Ok(v));
                }
                (c, s)
            },
            Some("not the primary: the Sentinels name node2 primary"),
            Some(NOT_SYNCED),
        ),
    ];
    for (case, node, setup, write, read) in table {
        let (cluster, sentinels) = setup();
        let inputs = observed(
            &config(""),
            &cluster,
            &sentinels,
            &no_dns,
            &NodeName(node.into()),
        );
        let d = refuse(&inputs);
        assert_eq!(d.write.as_deref(), write, "{case}: write, {inputs:?}");
        assert_eq!(d.read.as_deref(), read, "{case}: read, {inputs:?}");
    }
}
