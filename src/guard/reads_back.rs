//! Reads the guard refused come back only once this node's Redis has caught up with the
//! primary. The Sentinels call a replica synced from `master_link_status`, which stays
//! `up` while the stream from the primary stalls, and from their INFO of it, up to 10 s
//! old: a replica cut off for 8 s had its read refusal lifted 2.5 s after the heal, while
//! its link's TCP retransmissions were still backing off, and answered 26 reads with
//! data from before the cut (`make chaos`, seed 666939, step 6). So, as the sync does
//! before it writes `replica` (`observe::caught_up`), both servers are asked.

use super::rules::{Decision, SentinelSide};
use crate::cluster::Role;
use crate::observe::caught_up::{Lag, lag};
use crate::sentinel::RedisServers;

const NOT_CAUGHT_UP: &str = "its Redis has not caught up with the primary yet";
const NO_PRIMARY: &str =
    "its reads were refused and no primary is named to check that it has caught up with";

/// Keeps refusing the reads of a replica whose reads were refused before this round
/// (`refused_before`: the first round of the process cannot know, so it counts as
/// refused) until its Redis has what the primary had acknowledged. Asked only when the
/// refusal would be lifted, not every round: only then is `redis` called (it reads the
/// password file). Without Redis credentials that can be read (`redis` gives None), the
/// Sentinels' word, as the sync.
pub(crate) fn hold_reads<R: RedisServers>(
    decision: &mut Decision,
    refused_before: bool,
    sentinels: &Result<SentinelSide, String>,
    redis: impl FnOnce() -> Option<R>,
) {
    if decision.read.is_some() || !refused_before {
        return;
    }
    let Ok(s) = sentinels else {
        return;
    };
    if s.local_role != Some(Role::Replica) {
        return;
    }
    let Some(redis) = redis() else {
        return;
    };
    // The reason stays the same while it catches up (no offsets in it): the guard logs
    // every change of reason, and `redis-ha status` shows the lag.
    let why = match (&s.primary_redis, &s.redis) {
        (Some(primary), Some(local)) => match lag(&redis, primary, local) {
            Lag::CaughtUp => return,
            Lag::Behind(_) => NOT_CAUGHT_UP,
        },
        _ => NO_PRIMARY,
    };
    decision.read = Some(why.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeName;
    use crate::observe::caught_up::tests::{Servers, addr, master, replica};

    const P: &str = "10.0.0.1:6379";
    const ME: &str = "10.0.0.2:6379";

    /// (case, refused before, this node as the Sentinels see it, this Redis's offset (None:
    /// no credentials), the decision's read refusal before, after)
    type Row = (
        &'static str,
        bool,
        Result<SentinelSide, String>,
        Option<u64>,
        Option<&'static str>,
        Option<&'static str>,
    );

    fn side(role: Role, primary: Option<&str>) -> Result<SentinelSide, String> {
        Ok(SentinelSide {
            local_role: Some(role),
            primary: primary.map(|_| NodeName("node1".into())),
            redis: Some(addr(ME)),
            primary_redis: primary.map(addr),
        })
    }

    #[test]
    fn a_replica_cut_off_gets_its_reads_back_from_the_guard_only_once_caught_up() {
        let open = || Decision {
            write: Some("not the primary".into()),
            read: None,
        };
        let behind = NOT_CAUGHT_UP;
        let table: [Row; 8] = [
            (
                "refused, still behind the primary: stays refused",
                true,
                side(Role::Replica, Some(P)),
                Some(300),
                None,
                Some(behind),
            ),
            (
                "refused, caught up: lifted",
                true,
                side(Role::Replica, Some(P)),
                Some(500),
                None,
                None,
            ),
            (
                "open before: not asked every round",
                false,
                side(Role::Replica, Some(P)),
                Some(300),
                None,
                None,
            ),
            (
                "the primary itself: nothing to catch up with",
                true,
                side(Role::Primary, Some(P)),
                Some(300),
                None,
                None,
            ),
            (
                "no Redis credentials: the Sentinels' word",
                true,
                side(Role::Replica, Some(P)),
                None,
                None,
                None,
            ),
            (
                "no primary named (mid-failover): stays refused",
                true,
                side(Role::Replica, None),
                Some(500),
                None,
                Some(NO_PRIMARY),
            ),
            (
                "refused for another reason: that reason",
                true,
                side(Role::Replica, Some(P)),
                Some(300),
                Some("no quorum"),
                Some("no quorum"),
            ),
            (
                "the Sentinels unknown: as decided",
                true,
                Err("no majority".into()),
                Some(300),
                Some("no majority"),
                Some("no majority"),
            ),
        ];
        for (case, refused_before, sentinels, offset, read, want) in table {
            let servers = Servers::default();
            servers.set(P, master(500));
            if let Some(o) = offset {
                servers.set(ME, replica(P, true, o));
            }
            let mut d = open();
            d.read = read.map(str::to_string);
            hold_reads(&mut d, refused_before, &sentinels, || {
                offset.map(|_| servers)
            });
            assert_eq!(d.read.as_deref(), want, "{case}");
            assert_eq!(
                d.write.as_deref(),
                Some("not the primary"),
                "{case}: writes untouched"
            );
        }
    }
}
