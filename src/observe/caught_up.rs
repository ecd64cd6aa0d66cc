//! Before a node's reads are given back (the sync: its `redis_role` becomes `replica`
//! from `fail` or unset), its Redis must hold what the primary has acknowledged, and
//! must be getting the primary's stream. A replica whose link to the primary has just
//! come up after a full resync says `master_link_status:up`, and the Sentinels call it
//! synced, while the primary may still hold back its stream: Redis starts it at the
//! replica's first `REPLCONF ACK` after the primary has reaped the child that sent the
//! RDB. It tries to reap it at that first ACK, but a child that has not exited yet
//! (under load) is reaped later, and the stream starts at the replica's next ACK, up to
//! a second later.
//! Drill 2 saw such replicas answer reads 0.4 s, and (under load) 0.7 s, older than
//! acknowledged writes: the first time the primary had taken writes during the transfer,
//! the second time it took them only after the replica's offset had reached its own. So
//! both servers are asked directly: the primary's offset first, then the replica's, which
//! must have reached it, and the replica's backlog, which a full resync empties and only
//! the primary's stream fills (a Sentinel's hello alone, `PUBLISH`ed on the primary every
//! 2 s, does so within seconds).

use std::time::Duration;

use crate::sentinel::{Addr, RedisServers};

/// How long one sync waits for a replica to catch up before it leaves its reads refused
/// for a later sync (the primary streams within a second of the replica's ACK).
pub(crate) const CATCH_UP_WAIT: Duration = Duration::from_millis(1500);

/// How often it asks again meanwhile.
pub(crate) const CATCH_UP_POLL: Duration = Duration::from_millis(50);

/// Whether `replica` has what `primary` had acknowledged when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lag {
    CaughtUp,
    /// Not (yet): why, for the sync's report.
    Behind(String),
}

pub(crate) fn lag(redis: &dyn RedisServers, primary: &Addr, replica: &Addr) -> Lag {
    let p = match redis.replication(primary) {
        Ok(p) => p,
        Err(e) => return Lag::Behind(format!("the primary cannot be asked: {e}")),
    };
    let Some(wanted) = p.master_offset() else {
        return Lag::Behind(format!("the primary {primary} says role {}", p.role));
    };
    let r = match redis.replication(replica) {
        Ok(r) => r,
        Err(e) => return Lag::Behind(format!("it cannot be asked: {e}")),
    };
    let follows = r.role == "slave"
        && r.master.as_ref().map(Addr::canonical) == Some(primary.canonical())
        && r.link_up == Some(true);
    if !follows {
        return Lag::Behind("it does not say it replicates the primary, link up".into());
    }
    match (r.backlog, r.offset) {
        (None, _) => Lag::Behind("its INFO gives no repl_backlog_histlen".into()),
        (Some(0), _) => Lag::Behind(
            "the primary has streamed it nothing since its full resync: repl_backlog_histlen 0"
                .into(),
        ),
        (_, Some(offset)) if offset >= wanted => Lag::CaughtUp,
        (_, offset) => Lag::Behind(format!(
            "offset {} of the primary's {wanted}",
            offset.map_or("unknown".to_string(), |o| o.to_string())
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sentinel::{Replication, SentinelError, parse_addr};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Each server's `INFO replication`, by address (missing: unreachable); what a test
    /// sets for an address is what it answers from then on.
    #[derive(Default)]
    pub(crate) struct Servers(pub(crate) Mutex<BTreeMap<Addr, Replication>>);

    impl Servers {
        pub(crate) fn set(&self, at: &str, r: Replication) {
            self.0.lock().unwrap().insert(addr(at), r);
        }
    }

    pub(crate) fn addr(at: &str) -> Addr {
        parse_addr(at, 6379).unwrap()
    }

    pub(crate) fn master(offset: u64) -> Replication {
        Replication {
            role: "master".into(),
            offset: Some(offset),
            master: None,
            link_up: None,
            backlog: Some(offset),
        }
    }

    /// A replica streamed to since its last full resync (its backlog holds `offset`).
    pub(crate) fn replica(of: &str, link_up: bool, offset: u64) -> Replication {
        Replication {
            role: "slave".into(),
            offset: Some(offset),
            master: Some(addr(of)),
            link_up: Some(link_up),
            backlog: Some(offset),
        }
    }

    /// A replica just after a full resync, nothing streamed since.
    pub(crate) fn resynced(of: &str, offset: u64) -> Replication {
        Replication {
            backlog: Some(0),
            ..replica(of, true, offset)
        }
    }

    impl RedisServers for Servers {
        fn replication(&self, redis: &Addr) -> Result<Replication, SentinelError> {
            let known = self.0.lock().unwrap().get(redis).cloned();
            known.ok_or_else(|| SentinelError::Unreachable {
                addr: redis.clone(),
                reason: "connection refused".into(),
            })
        }
        fn priority(&self, _: &Addr) -> Result<u32, SentinelError> {
            Ok(100)
        }
        fn set_priority(&self, _: &Addr, _: u32) -> Result<(), SentinelError> {
            Ok(())
        }
    }

    #[test]
    fn a_replica_has_caught_up_once_its_offset_reaches_the_primarys() {
        let p = "10.0.0.1:6379";
        // (case, primary's answer, replica's answer, caught up)
        let table: [(&str, Option<Replication>, Option<Replication>, bool); 10] = [
            (
                "equal",
                Some(master(500)),
                Some(replica(p, true, 500)),
                true,
            ),
            (
                "equal, but nothing streamed since a full resync: the stream may be held back",
                Some(master(500)),
                Some(resynced(p, 500)),
                false,
            ),
            (
                "its INFO gives no backlog",
                Some(master(500)),
                Some(Replication {
                    backlog: None,
                    ..replica(p, true, 500)
                }),
                false,
            ),
            (
                "past it",
                Some(master(500)),
                Some(replica(p, true, 520)),
                true,
            ),
            (
                "link up, the stream held back after a full resync",
                Some(master(500)),
                Some(replica(p, true, 300)),
                false,
            ),
            (
                "link down",
                Some(master(500)),
                Some(replica(p, false, 500)),
                false,
            ),
            (
                "follows another master",
                Some(master(500)),
                Some(replica("10.0.0.9:6379", true, 900)),
                false,
            ),
            (
                "the primary is no master",
                Some(replica(p, true, 900)),
                Some(replica(p, true, 900)),
                false,
            ),
            (
                "the primary cannot be asked",
                None,
                Some(replica(p, true, 900)),
                false,
            ),
            (
                "the replica cannot be asked",
                Some(master(500)),
                None,
                false,
            ),
        ];
        for (case, primary, rep, want) in table {
            let servers = Servers::default();
            if let Some(r) = primary {
                servers.set(p, r);
            }
            if let Some(r) = rep {
                servers.set("10.0.0.2:6379", r);
            }
            let got = lag(&servers, &addr(p), &addr("10.0.0.2:6379"));
            assert_eq!(got == Lag::CaughtUp, want, "{case}: {got:?}");
        }
    }
}
