//! Which replica the failover leader will promote, foreseen from the Sentinels' views with
//! the rules of Sentinel's own `sentinelSelectSlave`, so that its write port can open
//! while the Sentinels still elect their leader. Pure.
//!
//! Sentinel skips a replica that is down or disconnected, that has not answered for 5
//! ping periods, whose INFO is older than that, whose `replica-priority` is 0, or whose
//! link to the master has been down for longer than 10 × `down-after-milliseconds` plus
//! the time the master has been down; of the others it takes the lowest priority, then
//! the highest replication offset, then the lowest run id. A view is foreseen from only
//! when every figure it weighs is settled: the replicas' INFO taken after the master
//! went down (the offsets of a dead master's replicas no longer move), and no replica
//! near one of those cut-offs.

use std::cmp::Ordering;
use std::time::Duration;

use super::truth::Offsets;
use crate::sentinel::{Addr, ReplicaView, SentinelView};

/// Sentinel's ping period; a replica silent for 5 of them, or whose INFO is older than
/// that while the master is down, is skipped (`sentinel.c`).
const PING_PERIOD: Duration = Duration::from_secs(1);
const SKIPPED_AFTER: Duration = PING_PERIOD.saturating_mul(5);
/// How near one of Sentinel's cut-offs a figure may be before we cannot tell which side
/// the leader will see it on: it decides a moment after we read the view.
const UNSURE_WITHIN: Duration = PING_PERIOD;

/// The replica the leader will promote as `view` sees it, if this view can tell: the
/// master is subjectively down there (so its replicas' INFO is refreshed every second)
/// and every figure the choice weighs is settled.
pub(crate) fn foresee<'a>(view: &'a SentinelView, offsets: &Offsets) -> Option<&'a Addr> {
    let down_for = view.master.s_down_for?;
    // Sentinel's cut-off for a replica's link, at the earliest moment it can choose.
    let link_cutoff = view.master.down_after.saturating_mul(10) + down_for;
    let mut best: Option<(&ReplicaView, Key)> = None;
    for r in &view.replicas {
        if r.is_down() || r.has_flag("disconnected") {
            continue;
        }
        let c = &r.candidacy;
        let silent = c.last_ok_ping?;
        if near(silent, SKIPPED_AFTER) || near(r.link_down, link_cutoff) {
            return None;
        }
        if silent > SKIPPED_AFTER || r.link_down > link_cutoff {
            continue;
        }
        // The replica's own offset, asked now; or the view's, from INFO taken after the
        // master went down (before, it may still have moved).
        let offset = match offsets.get(&r.addr.canonical()) {
            Some(&asked) => asked,
            None if c.info_age? < down_for => r.repl_offset?,
            None => return None,
        };
        let key = Key {
            priority: c.priority?,
            offset,
            run_id: c.run_id.as_deref().map(str::to_ascii_lowercase),
        };
        if key.priority == 0 {
            continue;
        }
        best = match best {
            Some((b, bk)) if bk.cmp(&key) != Ordering::Greater => Some((b, bk)),
            _ => Some((r, key)),
        };
    }
    best.map(|(r, _)| &r.addr)
}

/// The replica every view that can tell foresees, when those are a majority of `views`
/// (all of `master`) and agree; `None` otherwise.
pub(crate) fn agreed(views: &[SentinelView], master: &Addr, offsets: &Offsets) -> Option<Addr> {
    let mut foreseen = views
        .iter()
        .filter(|v| v.master.addr.canonical() == *master)
        .filter_map(|v| foresee(v, offsets))
        .map(Addr::canonical);
    let first = foreseen.next()?;
    let mut count = 1;
    for other in foreseen {
        if other != first {
            return None;
        }
        count += 1;
    }
    (count * 2 > views.len()).then_some(first)
}

fn near(value: Duration, cutoff: Duration) -> bool {
    value.abs_diff(cutoff) < UNSURE_WITHIN
}

/// Sentinel's order (`compareSlavesForPromotion`): lower priority, higher offset, lower
/// run id (case-insensitive), a missing run id last.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    priority: u32,
    offset: u64,
    run_id: Option<String>,
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then(other.offset.cmp(&self.offset))
            .then(match (&self.run_id, &other.run_id) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fake::{candidate as r, master1_view, redis};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Sentinel `s`'s view: master 1 down for 300 ms there.
    fn v(s: u8, replicas: Vec<ReplicaView>) -> SentinelView {
        master1_view(s, "master,s_down,o_down", replicas)
    }

    fn none() -> Offsets {
        Offsets::new()
    }

    fn with(mut r: ReplicaView, f: impl FnOnce(&mut ReplicaView)) -> ReplicaView {
        f(&mut r);
        r
    }

    #[test]
    fn the_leaders_choice_as_sentinel_makes_it() {
        // (case, replicas of the view, who is foreseen)
        let table: Vec<(&str, Vec<ReplicaView>, Option<u8>)> = vec![
            (
                "the highest offset",
                vec![r(2, 100, 10, "b"), r(3, 100, 20, "a")],
                Some(3),
            ),
            (
                "equal offsets: the lower run id",
                vec![r(2, 100, 10, "b"), r(3, 100, 10, "A")],
                Some(3),
            ),
            (
                "the lower priority first",
                vec![r(2, 10, 5, "b"), r(3, 100, 20, "a")],
                Some(2),
            ),
            (
                "priority 0 never",
                vec![r(2, 0, 99, "a"), r(3, 100, 1, "b")],
                Some(3),
            ),
            (
                "a missing run id last",
                vec![
                    with(r(2, 100, 10, "a"), |x| x.candidacy.run_id = None),
                    r(3, 100, 10, "z"),
                ],
                Some(3),
            ),
            (
                "a replica that is down is skipped",
                vec![
                    with(r(2, 100, 99, "a"), |x| x.flags.push("s_down".into())),
                    r(3, 100, 1, "b"),
                ],
                Some(3),
            ),
            (
                "so is a disconnected one",
                vec![
                    with(r(2, 100, 99, "a"), |x| x.flags.push("disconnected".into())),
                    r(3, 100, 1, "b"),
                ],
                Some(3),
            ),
            (
                "and one silent for over 5 s",
                vec![
                    with(r(2, 100, 99, "a"), |x| {
                        x.candidacy.last_ok_ping = Some(MS(7000))
                    }),
                    r(3, 100, 1, "b"),
                ],
                Some(3),
            ),
            (
                "and one whose link was down long before (10 x 2 s + 0.3 s)",
                vec![
                    with(r(2, 100, 99, "a"), |x| x.link_down = MS(30_000)),
                    r(3, 100, 1, "b"),
                ],
                Some(3),
            ),
            (
                "INFO from before the master went down: its offset may still move",
                vec![
                    with(r(2, 100, 10, "a"), |x| {
                        x.candidacy.info_age = Some(MS(4000))
                    }),
                    r(3, 100, 20, "b"),
                ],
                None,
            ),
            (
                "silent for nearly 5 s: the leader may skip it or not",
                vec![
                    with(r(2, 100, 99, "a"), |x| {
                        x.candidacy.last_ok_ping = Some(MS(4500))
                    }),
                    r(3, 100, 1, "b"),
                ],
                None,
            ),
            (
                "a link near the cut-off",
                vec![
                    with(r(2, 100, 99, "a"), |x| x.link_down = MS(20_000)),
                    r(3, 100, 1, "b"),
                ],
                None,
            ),
            (
                "an unknown priority",
                vec![
                    with(r(2, 100, 99, "a"), |x| x.candidacy.priority = None),
                    r(3, 100, 1, "b"),
                ],
                None,
            ),
            ("no replica to promote", vec![r(2, 0, 1, "a")], None),
        ];
        for (case, replicas, want) in table {
            let view = v(1, replicas);
            assert_eq!(foresee(&view, &none()), want.map(redis).as_ref(), "{case}");
        }
    }

    #[test]
    fn only_a_master_down_in_that_view_is_foreseen_from() {
        let mut view = v(1, vec![r(2, 100, 10, "a")]);
        assert_eq!(foresee(&view, &none()), Some(&redis(2)));
        view.master.s_down_for = None;
        assert_eq!(foresee(&view, &none()), None);
    }

    #[test]
    fn the_replicas_own_offsets_tell_before_the_sentinels_info_does() {
        // INFO of both from before the master went down (replica 2's the newer).
        let stale = |n, offset| {
            with(r(n, 100, offset, &format!("run{n}")), |x| {
                x.candidacy.info_age = Some(MS(4000))
            })
        };
        let view = v(1, vec![stale(2, 20), stale(3, 10)]);
        assert_eq!(foresee(&view, &none()), None);
        // Asked now: both have everything the master sent, the run id decides.
        let asked: Offsets = [(redis(2), 30), (redis(3), 30)].into();
        assert_eq!(foresee(&view, &asked), Some(&redis(2)));
        let asked: Offsets = [(redis(2), 29), (redis(3), 30)].into();
        assert_eq!(foresee(&view, &asked), Some(&redis(3)));
        // One did not answer: its stale INFO cannot stand in.
        let asked: Offsets = [(redis(3), 30)].into();
        assert_eq!(foresee(&view, &asked), None);
    }

    #[test]
    fn a_majority_of_the_views_must_foresee_the_same_replica() {
        let two = || vec![r(2, 100, 20, "a"), r(3, 100, 10, "b")];
        let stale = || {
            v(
                3,
                vec![with(r(2, 100, 20, "a"), |x| {
                    x.candidacy.info_age = Some(MS(9000))
                })],
            )
        };
        let other = || v(3, vec![r(2, 100, 10, "a"), r(3, 100, 20, "b")]);
        let m = redis(1);
        assert_eq!(
            agreed(&[v(1, two()), v(2, two()), v(3, two())], &m, &none()),
            Some(redis(2))
        );
        assert_eq!(
            agreed(&[v(1, two()), v(2, two()), stale()], &m, &none()),
            Some(redis(2))
        );
        assert_eq!(
            agreed(&[v(1, two()), stale(), stale()], &m, &none()),
            None,
            "one of three"
        );
        assert_eq!(
            agreed(&[v(1, two()), v(2, two()), other()], &m, &none()),
            None,
            "they disagree"
        );
        assert_eq!(
            agreed(&[v(1, two()), v(2, two())], &redis(2), &none()),
            None,
            "another master"
        );
    }
}
