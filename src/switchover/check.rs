//! Whether a switchover can begin, and what it moves: from the one observation of the
//! cluster to the primary, the target, the replicas Sentinel must not pick, and the
//! Sentinel to ask. Pure.

use crate::cluster::{ClusterState, NodeName, Role};
use crate::observe::Mapped;
use crate::sentinel::{Addr, ReplicaView};

/// What a switchover moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moves {
    /// The node that is primary now, and its Redis.
    pub(crate) primary: (NodeName, Addr),
    /// The node to make primary, and its Redis.
    pub(crate) target: (NodeName, Addr),
    /// Every other replica Sentinel could pick: its `replica-priority` is 0 meanwhile.
    pub(crate) others: Vec<Addr>,
    /// The Sentinel asked to fail over (the newest configuration's).
    pub(crate) sentinel: Addr,
}

/// Why a switchover cannot begin: one sentence for the operator.
pub(crate) type Refusal = String;

/// A switchover needs quorum, a Sentinel majority (`mapped` exists), no failover under
/// way, the Sentinels' primary to be `primary` in the CIB, and a target that is a synced
/// replica Sentinel may promote (`replica-priority` > 0): `to`, or else the one Sentinel
/// itself would choose (lowest priority, highest offset; then the node name).
pub(crate) fn check(
    state: &ClusterState,
    mapped: &Mapped,
    to: Option<&NodeName>,
) -> Result<Moves, Refusal> {
    if !state.quorate {
        return Err("this node's partition has no quorum".into());
    }
    let verdict = &mapped.verdict;
    let newest = verdict.newest();
    let master = newest.master.addr.canonical();
    for v in &verdict.views {
        let unsettled = ["s_down", "o_down", "failover_in_progress"]
            .into_iter()
            .find(|f| v.master.has_flag(f));
        if let Some(flag) = unsettled {
            return Err(format!(
                "Sentinel {} reports the master {flag}: a failover may be under way; \
                 wait until `redis-ha status` agrees",
                v.sentinel
            ));
        }
        if v.master.addr.canonical() != master {
            return Err(format!(
                "the Sentinels do not agree on the master yet ({} names {}): wait until \
                 `redis-ha status` agrees",
                v.sentinel, v.master.addr
            ));
        }
    }
    let a = &mapped.assignment;
    let Some((primary, primary_addr)) = a.primary.clone() else {
        return Err("the Sentinels name no primary among the cluster's nodes".into());
    };
    if state.role(&primary) != Some(Role::Primary) {
        return Err(format!(
            "{primary} is the Sentinels' primary but its redis_role is not primary: run \
             `redis-ha sync` first, or wait for it"
        ));
    }
    let replica_of = |node: &NodeName| -> Option<&ReplicaView> {
        let addrs = a.redis.get(node)?;
        newest
            .replicas
            .iter()
            .find(|r| addrs.iter().any(|x| x.canonical() == r.addr.canonical()))
    };
    // Why `node` cannot be the target, if it cannot.
    let unfit = |node: &NodeName| -> Option<String> {
        if *node == primary {
            return Some(format!("{node} is the primary already"));
        }
        if a.desired.get(node) != Some(&Role::Replica) {
            return Some(format!("{node} is not a replica the Sentinels call synced"));
        }
        let Some(r) = replica_of(node) else {
            return Some(format!("the Sentinels list no replica on {node}"));
        };
        if !r.link_ok || r.is_down() || r.has_flag("disconnected") {
            return Some(format!(
                "{node}'s Redis is not a synced replica for the Sentinels (link down; they \
                 read a replica's INFO every 10 s: after a resync, try again then)"
            ));
        }
        match r.candidacy.priority {
            Some(0) => Some(format!(
                "{node}'s replica-priority is 0: Sentinel never promotes it"
            )),
            None => Some(format!(
                "the Sentinels do not say {node}'s replica-priority"
            )),
            Some(_) => None,
        }
    };
    let target = match to {
        Some(node) => {
            if !state.roles.contains_key(node) {
                return Err(format!("there is no cluster node named {node}"));
            }
            if let Some(why) = unfit(node) {
                return Err(why);
            }
            node.clone()
        }
        None => a
            .desired
            .keys()
            .filter(|n| unfit(n).is_none())
            .min_by_key(|n| {
                let r = replica_of(n).expect("fit: listed");
                (
                    r.candidacy.priority,
                    std::cmp::Reverse(r.repl_offset),
                    (*n).clone(),
                )
            })
            .cloned()
            .ok_or_else(|| {
                "no replica can take over: none is synced with replica-priority > 0".to_string()
            })?,
    };
    let target_addr = replica_of(&target).expect("fit: listed").addr.clone();
    let others = newest
        .replicas
        .iter()
        .filter(|r| r.addr.canonical() != target_addr.canonical())
        .filter(|r| !r.is_down() && !r.has_flag("disconnected"))
        .map(|r| r.addr.clone())
        .collect();
    Ok(Moves {
        primary: (primary, primary_addr),
        target: (target, target_addr),
        others,
        sentinel: newest.sentinel.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fake::{FakeCluster, FakeSentinels, config, no_dns, redis, sentinel};
    use crate::observe::observe;

    fn n(s: &str) -> NodeName {
        NodeName(s.into())
    }

    /// The fakes' healthy cluster (node1 primary), every replica at priority 100 and
    /// replica 3 ahead, after `f` changed the Sentinels' views.
    fn seen(
        roles: &[Option<&str>],
        f: impl Fn(&mut crate::sentinel::SentinelView),
    ) -> (ClusterState, Mapped) {
        let s = FakeSentinels::agreeing(1, 0, &[]);
        for i in 1..=3 {
            let mut v = crate::observe::fake::view(i, 1, 0, &[]);
            for r in &mut v.replicas {
                r.candidacy.priority = Some(100);
                r.repl_offset = Some(if r.addr == redis(3) { 9 } else { 5 });
            }
            f(&mut v);
            s.set(i, Ok(v));
        }
        let c = FakeCluster::new(roles);
        let o = observe(&config(""), &c, &s, &no_dns);
        (o.cib.unwrap().state, o.sentinels.unwrap())
    }

    const SETTLED: [Option<&str>; 3] = [Some("primary"), Some("replica"), Some("replica")];

    #[test]
    fn the_target_is_the_one_asked_for_or_the_one_sentinel_would_choose() {
        let (state, mapped) = seen(&SETTLED, |_| {});
        let m = check(&state, &mapped, None).unwrap();
        assert_eq!(m.primary, (n("node1"), redis(1)));
        assert_eq!(m.target, (n("node3"), redis(3)), "the higher offset");
        assert_eq!(m.others, [redis(2)]);
        assert_eq!(m.sentinel.port, sentinel(1).port);
        let m = check(&state, &mapped, Some(&n("node2"))).unwrap();
        assert_eq!(m.target, (n("node2"), redis(2)));
        assert_eq!(m.others, [redis(3)]);
        // A lower priority first, as Sentinel.
        let (state, mapped) = seen(&SETTLED, |v| v.replicas[0].candidacy.priority = Some(10));
        assert_eq!(check(&state, &mapped, None).unwrap().target.0, n("node2"));
    }

    #[test]
    fn each_refusal_says_why() {
        let refused = |roles: &[Option<&str>],
                       f: &dyn Fn(&mut crate::sentinel::SentinelView),
                       to: Option<&str>|
         -> String {
            let (state, mapped) = seen(roles, f);
            check(&state, &mapped, to.map(n).as_ref()).unwrap_err()
        };
        let none = |_: &mut crate::sentinel::SentinelView| {};
        let table: [(&str, String); 7] = [
            (
                "is the primary already",
                refused(&SETTLED, &none, Some("node1")),
            ),
            (
                "no cluster node named node9",
                refused(&SETTLED, &none, Some("node9")),
            ),
            (
                "replica-priority is 0",
                refused(
                    &SETTLED,
                    &|v| v.replicas[0].candidacy.priority = Some(0),
                    Some("node2"),
                ),
            ),
            (
                "is not a replica the Sentinels call synced",
                refused(
                    &SETTLED,
                    &|v| v.replicas[0].flags.push("disconnected".into()),
                    Some("node2"),
                ),
            ),
            (
                "reports the master failover_in_progress",
                refused(
                    &SETTLED,
                    &|v| v.master.flags.push("failover_in_progress".into()),
                    None,
                ),
            ),
            (
                "its redis_role is not primary",
                refused(
                    &[Some("replica"), Some("replica"), Some("replica")],
                    &none,
                    None,
                ),
            ),
            (
                "none is synced with replica-priority > 0",
                refused(
                    &SETTLED,
                    &|v| {
                        v.replicas
                            .iter_mut()
                            .for_each(|r| r.candidacy.priority = Some(0))
                    },
                    None,
                ),
            ),
        ];
        for (want, got) in table {
            assert!(got.contains(want), "{want:?} not in {got:?}");
        }
    }

    #[test]
    fn no_quorum_no_switchover() {
        let (mut state, mapped) = seen(&SETTLED, |_| {});
        state.quorate = false;
        assert_eq!(
            check(&state, &mapped, None).unwrap_err(),
            "this node's partition has no quorum"
        );
    }
}
