//! Which `redis_role` writes a sync makes, and in which order: demotions first, then
//! (once the old primary's writes are refused) the one promotion. Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::{NodeName, Role, RoleValue};

/// The writes of one sync, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Every write that is not a promotion, ex-primaries first.
    pub(crate) demotions: Vec<(NodeName, Role)>,
    /// Nodes whose `RedisLBWriteBlock` must be running before the promotion: every other
    /// node that may still run a master and is not down.
    pub(crate) wait_for: Vec<NodeName>,
    /// Nodes whose `RedisLBReadBlock` must be running before the promotion: every other
    /// node whose Redis the Sentinels know, that is not down and is not to serve reads.
    /// Their data lacks what the new primary will acknowledge; they must not answer
    /// reads once it can.
    pub(crate) read_wait: Vec<NodeName>,
    pub(crate) promotion: Option<NodeName>,
}

/// `desired` with every node in `held` that would be `primary` made `replica` instead:
/// the Sentinels still call its Redis the master while a switchover moves the primary
/// away from it; its writes are refused, its reads kept. Returns the nodes it held.
pub(crate) fn hold(
    desired: &mut BTreeMap<NodeName, Role>,
    held: &BTreeSet<NodeName>,
) -> Vec<NodeName> {
    let mut holding = Vec::new();
    for (node, role) in desired.iter_mut() {
        if *role == Role::Primary && held.contains(node) {
            *role = Role::Replica;
            holding.push(node.clone());
        }
    }
    holding
}

/// `current`: every cluster node's permanent `redis_role`; `desired`: the role of every node
/// whose Redis the Sentinels know; `down`: nodes whose Redis the Sentinels report down
/// (no need to wait for their block: a dead Redis takes no writes).
pub(crate) fn plan(
    current: &BTreeMap<NodeName, Option<RoleValue>>,
    desired: &BTreeMap<NodeName, Role>,
    down: &BTreeSet<NodeName>,
) -> Plan {
    let now = |n: &NodeName| current.get(n).cloned().flatten()?.role();
    let was_primary = |n: &NodeName| now(n) == Some(Role::Primary);
    let mut plan = Plan::default();
    // A node carrying `primary` that Sentinel does not call primary loses it, even one
    // Sentinel does not know: two primaries must never coexist.
    let mut demoted: Vec<(NodeName, Role)> = current
        .keys()
        .filter(|n| was_primary(n) && desired.get(*n) != Some(&Role::Primary))
        .map(|n| (n.clone(), desired.get(n).copied().unwrap_or(Role::Fail)))
        .collect();
    for (node, &role) in desired {
        if role == Role::Primary {
            if !was_primary(node) {
                plan.promotion = Some(node.clone());
            }
        } else if now(node) != Some(role) && !demoted.iter().any(|(n, _)| n == node) {
            demoted.push((node.clone(), role));
        }
    }
    plan.demotions = demoted;
    // Before a promotion, every other node that may still run a master must refuse
    // writes, unless its Redis is down: each the Sentinels do not call a synced replica
    // of the new primary (the old master keeps taking writes until Sentinel converts it,
    // seconds later), and a node carrying `primary` whose Redis they do not know. Not
    // only the nodes this sync demotes: a concurrent sync (another node's, or a Sentinel
    // retry) may have written the demotion already and still be waiting for the block. A
    // synced replica (its own INFO says so: role slave, link up) answers writes with
    // READONLY: no need to wait for its block.
    if let Some(promotion) = &plan.promotion {
        plan.wait_for = current
            .keys()
            .filter(|n| *n != promotion && !down.contains(*n))
            .filter(|n| match desired.get(*n) {
                Some(Role::Fail) => true,
                Some(Role::Replica | Role::Primary) => false,
                None => was_primary(n),
            })
            .cloned()
            .collect();
        plan.read_wait = desired
            .iter()
            .filter(|(n, role)| *n != promotion && **role == Role::Fail && !down.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    #[test]
    fn only_a_held_node_that_would_be_primary_is_held() {
        let held: BTreeSet<NodeName> = [n("node1"), n("node3")].into();
        let mut desired: BTreeMap<NodeName, Role> = [
            (n("node1"), Primary),
            (n("node2"), Replica),
            (n("node3"), Fail),
        ]
        .into();
        assert_eq!(hold(&mut desired, &held), [n("node1")]);
        assert_eq!(
            desired,
            [
                (n("node1"), Replica),
                (n("node2"), Replica),
                (n("node3"), Fail)
            ]
            .into()
        );
        assert!(hold(&mut desired, &BTreeSet::new()).is_empty());
    }

    fn n(name: &str) -> NodeName {
        NodeName(name.into())
    }

    fn current(roles: &[(&str, Option<&str>)]) -> BTreeMap<NodeName, Option<RoleValue>> {
        roles
            .iter()
            .map(|(k, v)| (n(k), v.map(RoleValue::parse)))
            .collect()
    }

    fn desired(roles: &[(&str, Role)]) -> BTreeMap<NodeName, Role> {
        roles.iter().map(|(k, v)| (n(k), *v)).collect()
    }

    /// (case, current roles, desired roles, nodes whose Redis is down, expected plan)
    type Case = (
        &'static str,
        Vec<(&'static str, Option<&'static str>)>,
        Vec<(&'static str, Role)>,
        &'static [&'static str],
        &'static str,
    );

    fn show(p: &Plan) -> String {
        let d: Vec<String> = p
            .demotions
            .iter()
            .map(|(n, r)| format!("{n}={r}"))
            .collect();
        let w: Vec<String> = p.wait_for.iter().map(|n| n.0.clone()).collect();
        let r: Vec<String> = p.read_wait.iter().map(|n| n.0.clone()).collect();
        let reads = if r.is_empty() {
            String::new()
        } else {
            format!(" reads [{}]", r.join(" "))
        };
        format!(
            "demote [{}] wait [{}]{reads} promote {}",
            d.join(" "),
            w.join(" "),
            p.promotion.as_ref().map_or("-".into(), |n| n.0.clone())
        )
    }

    #[test]
    fn plans_cover_first_set_up_failover_and_return() {
        let table: [Case; 12] = [
            (
                "nothing to change",
                vec![("a", Some("primary")), ("b", Some("replica"))],
                vec![("a", Primary), ("b", Replica)],
                &[],
                "demote [] wait [] promote -",
            ),
            (
                "first sync sets everything, promotion last",
                vec![("a", None), ("b", None), ("c", None)],
                vec![("a", Primary), ("b", Replica), ("c", Replica)],
                &[],
                "demote [b=replica c=replica] wait [] promote a",
            ),
            (
                "switchover: demote a, wait for its block, then promote b",
                vec![("a", Some("primary")), ("b", Some("replica"))],
                vec![("a", Fail), ("b", Primary)],
                &[],
                "demote [a=fail] wait [a] reads [a] promote b",
            ),
            (
                "the old primary is a synced replica already: no wait",
                vec![("a", Some("primary")), ("b", Some("replica"))],
                vec![("a", Replica), ("b", Primary)],
                &[],
                "demote [a=replica] wait [] promote b",
            ),
            (
                "a primary Sentinel does not know is waited for",
                vec![("a", Some("replica")), ("x", Some("primary"))],
                vec![("a", Primary)],
                &[],
                "demote [x=fail] wait [x] promote a",
            ),
            (
                "failover of a dead primary: no wait for its block",
                vec![
                    ("a", Some("primary")),
                    ("b", Some("replica")),
                    ("c", Some("replica")),
                ],
                vec![("a", Fail), ("b", Primary), ("c", Replica)],
                &["a"],
                "demote [a=fail] wait [] promote b",
            ),
            (
                "a primary Sentinel does not know is demoted to fail",
                vec![
                    ("a", Some("primary")),
                    ("x", Some("primary")),
                    ("b", Some("replica")),
                ],
                vec![("a", Primary), ("b", Replica)],
                &[],
                "demote [x=fail] wait [] promote -",
            ),
            (
                "another sync demoted the old primary already: still wait for its block",
                vec![
                    ("a", Some("fail")),
                    ("b", Some("replica")),
                    ("c", Some("replica")),
                ],
                vec![("a", Fail), ("b", Primary), ("c", Replica)],
                &[],
                "demote [] wait [a] reads [a] promote b",
            ),
            (
                "a node not a synced replica may run a master or lack the new one's \
                 writes: wait for its blocks, unless down",
                vec![
                    ("a", Some("primary")),
                    ("b", Some("replica")),
                    ("c", Some("replica")),
                    ("d", Some("replica")),
                ],
                vec![("a", Fail), ("b", Primary), ("c", Fail), ("d", Fail)],
                &["d"],
                "demote [a=fail c=fail d=fail] wait [a c] reads [a c] promote b",
            ),
            (
                "returning old master stays fail until synced",
                vec![("a", Some("fail")), ("b", Some("primary"))],
                vec![("a", Fail), ("b", Primary)],
                &[],
                "demote [] wait [] promote -",
            ),
            (
                "synced again: fail becomes replica",
                vec![("a", Some("fail")), ("b", Some("primary"))],
                vec![("a", Replica), ("b", Primary)],
                &[],
                "demote [a=replica] wait [] promote -",
            ),
            (
                "values compare like Pacemaker's, a typo is rewritten",
                vec![("a", Some("PRIMARY")), ("b", Some("replcia"))],
                vec![("a", Primary), ("b", Replica)],
                &[],
                "demote [b=replica] wait [] promote -",
            ),
        ];
        for (case, cur, want, down, expect) in table {
            let down: BTreeSet<NodeName> = down.iter().map(|d| n(d)).collect();
            let p = plan(&current(&cur), &desired(&want), &down);
            assert_eq!(show(&p), expect, "{case}");
        }
    }

    #[test]
    fn never_two_primaries_at_any_step() {
        // Apply the plan's writes one by one: before the promotion no node is primary
        // except those Sentinel still calls primary.
        let cur = current(&[
            ("a", Some("primary")),
            ("b", Some("replica")),
            ("c", Some("primary")),
        ]);
        let want = desired(&[("a", Fail), ("b", Primary), ("c", Fail)]);
        let p = plan(&cur, &want, &BTreeSet::new());
        let mut state = cur.clone();
        for (node, role) in &p.demotions {
            state.insert(node.clone(), Some(RoleValue::Is(*role)));
        }
        let primaries = state
            .values()
            .filter(|v| v.as_ref().and_then(RoleValue::role) == Some(Primary))
            .count();
        assert_eq!(primaries, 0, "after demotions: {p:?}");
        assert_eq!(p.wait_for, [n("a"), n("c")]);
        assert_eq!(p.promotion, Some(n("b")));
    }
}
