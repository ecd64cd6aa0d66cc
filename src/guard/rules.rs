//! What the guard refuses, from what this node can confirm right now. Pure: the CIB's
//! and the Sentinels' answers in, a reason per closed port out.

use crate::cluster::{NodeName, Role};
use crate::sentinel::Addr;

/// What Pacemaker says, as far as the guard needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PacemakerSide {
    /// `have-quorum` of this node's partition.
    pub(crate) quorate: bool,
    /// This node's `redis_role` as the rules see it (a transient value wins), if valid.
    pub(crate) local_role: Option<Role>,
}

/// What a Sentinel majority says, mapped to this cluster's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelSide {
    /// The role the Sentinels' newest configuration gives this node (None: they know no
    /// Redis here).
    pub(crate) local_role: Option<Role>,
    /// The node they name primary (None: none, e.g. mid-failover or master down).
    pub(crate) primary: Option<NodeName>,
    /// This node's Redis, as the Sentinels know it (None: they know none here).
    pub(crate) redis: Option<Addr>,
    /// The primary's Redis (None: none named).
    pub(crate) primary_redis: Option<Addr>,
}

/// Everything one guard round learned; an `Err` says why that side is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inputs {
    pub(crate) pacemaker: Result<PacemakerSide, String>,
    pub(crate) sentinels: Result<SentinelSide, String>,
}

/// Per port: `Some(reason)` when the guard refuses it, `None` when it leaves it to the
/// block clones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Decision {
    pub(crate) write: Option<String>,
    pub(crate) read: Option<String>,
}

/// - writes: refused unless this node is the confirmed primary: its partition has quorum,
///   a Sentinel majority's newest configuration names its Redis master, and its
///   `redis_role` is `primary` (so the guard never opens a port before the sync's
///   demote-wait-promote has);
/// - reads: refused unless the partition has quorum and a Sentinel majority calls this
///   node the primary or a synced replica.
///
/// The guard only ever adds refusals: where it leaves a port, the clones decide.
pub(crate) fn refuse(inputs: &Inputs) -> Decision {
    let unconfirmed = match (&inputs.pacemaker, &inputs.sentinels) {
        (Err(e), _) => Some(format!("Pacemaker cannot be asked: {e}")),
        (Ok(p), _) if !p.quorate => Some("this node's partition has no quorum".to_string()),
        (Ok(_), Err(e)) => Some(e.clone()),
        (Ok(_), Ok(_)) => None,
    };
    if let Some(why) = unconfirmed {
        return Decision {
            write: Some(why.clone()),
            read: Some(why),
        };
    }
    let (Ok(p), Ok(s)) = (&inputs.pacemaker, &inputs.sentinels) else {
        unreachable!("both sides are known here");
    };
    let named = || {
        s.primary
            .as_ref()
            .map_or("no node".to_string(), |n| n.to_string())
    };
    let write = match (s.local_role, p.local_role) {
        (Some(Role::Primary), Some(Role::Primary)) => None,
        (Some(Role::Primary), other) => Some(format!(
            "the Sentinels name this node primary, but its redis_role is {} (not yet promoted)",
            other.map_or("unset or unknown".to_string(), |r| r.to_string())
        )),
        _ => Some(format!(
            "not the primary: the Sentinels name {} primary",
            named()
        )),
    };
    let read = match s.local_role {
        Some(Role::Primary | Role::Replica) => None,
        Some(Role::Fail) => Some(
            "the Sentinels do not call this node's Redis the primary or a synced replica"
                .to_string(),
        ),
        None => Some("the Sentinels know no Redis on this node".to_string()),
    };
    Decision { write, read }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(quorate: bool, role: Option<Role>) -> Result<PacemakerSide, String> {
        Ok(PacemakerSide {
            quorate,
            local_role: role,
        })
    }

    fn st(role: Option<Role>, primary: Option<&str>) -> Result<SentinelSide, String> {
        Ok(SentinelSide {
            local_role: role,
            primary: primary.map(|p| NodeName(p.into())),
            redis: None,
            primary_redis: None,
        })
    }

    use Role::{Fail, Primary, Replica};

    #[test]
    fn only_what_is_confirmed_stays_open() {
        let no_majority = || Err("reached 1 of 3 known Sentinels: no majority".to_string());
        // (pacemaker, sentinels, write refused because…, read refused because…)
        let table = [
            // The confirmed primary: nothing refused.
            (
                pm(true, Some(Primary)),
                st(Some(Primary), Some("node1")),
                None,
                None,
            ),
            // A synced replica: writes refused, reads open.
            (
                pm(true, Some(Replica)),
                st(Some(Replica), Some("node1")),
                Some("not the primary: the Sentinels name node1 primary"),
                None,
            ),
            // Not synced (or the old master back): nothing.
            (
                pm(true, Some(Fail)),
                st(Some(Fail), Some("node2")),
                Some("not the primary: the Sentinels name node2 primary"),
                Some("the Sentinels do not call this node's Redis the primary or a synced replica"),
            ),
            // The Sentinels promoted us, the sync has not written it yet: reads only.
            (
                pm(true, Some(Replica)),
                st(Some(Primary), Some("node2")),
                Some(
                    "the Sentinels name this node primary, but its redis_role is replica (not yet promoted)",
                ),
                None,
            ),
            // Our redis_role still says primary, the Sentinels moved on (mid-failover).
            (
                pm(true, Some(Primary)),
                st(Some(Fail), None),
                Some("not the primary: the Sentinels name no node primary"),
                Some("the Sentinels do not call this node's Redis the primary or a synced replica"),
            ),
            // Sentinel knows no Redis here.
            (
                pm(true, None),
                st(None, Some("node1")),
                Some("not the primary: the Sentinels name node1 primary"),
                Some("the Sentinels know no Redis on this node"),
            ),
            // The isolated primary: no quorum, or no Sentinel majority, or both.
            (
                pm(false, Some(Primary)),
                st(Some(Primary), Some("node1")),
                Some("this node's partition has no quorum"),
                Some("this node's partition has no quorum"),
            ),
            (
                pm(true, Some(Primary)),
                no_majority(),
                Some("reached 1 of 3 known Sentinels: no majority"),
                Some("reached 1 of 3 known Sentinels: no majority"),
            ),
            (
                pm(false, Some(Replica)),
                no_majority(),
                Some("this node's partition has no quorum"),
                Some("this node's partition has no quorum"),
            ),
            // Pacemaker stopped here (clean shutdown): nothing is confirmed.
            (
                Err("cibadmin --query failed: not connected".to_string()),
                st(Some(Replica), Some("node1")),
                Some("Pacemaker cannot be asked: cibadmin --query failed: not connected"),
                Some("Pacemaker cannot be asked: cibadmin --query failed: not connected"),
            ),
        ];
        for (pacemaker, sentinels, write, read) in table {
            let inputs = Inputs {
                pacemaker,
                sentinels,
            };
            let d = refuse(&inputs);
            assert_eq!(d.write.as_deref(), write, "write: {inputs:?}");
            assert_eq!(d.read.as_deref(), read, "read: {inputs:?}");
        }
    }
}
