//! Who is what according to the Sentinels: the newest configuration seen by a majority.
//! Pure: the Sentinels' answers in, Redis roles by address out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cluster::Role;
use crate::config::{Policy, PromoteAt, ReadBound};
use crate::sentinel::{Addr, MasterView, ReplicaView, SentinelView};

use super::select;

/// What the Sentinels agree on, by Redis address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truth {
    /// The configuration epoch this truth comes from.
    pub(crate) epoch: u64,
    /// Every Redis the Sentinels know, with the role its node should have.
    pub(crate) roles: BTreeMap<Addr, Role>,
    /// Redis instances the Sentinels consider down (`s_down`/`o_down`): their node need
    /// not be waited for.
    pub(crate) down: BTreeSet<Addr>,
    /// Sentinels that answered, of all those known (configured or named by any view).
    pub(crate) reached: usize,
    pub(crate) known: usize,
    /// Which of the views the decision comes from: the newest configuration.
    pub(crate) newest: usize,
    /// The master is down for the Sentinels and the promotion is to be foreseen, but not
    /// from these views alone: the replicas whose own offsets would tell (asked of them
    /// directly, then decided again with [`Offsets`]).
    pub(crate) ask_offsets: Vec<Addr>,
}

/// Replicas' own `slave_repl_offset`s, asked of them directly.
pub(crate) type Offsets = BTreeMap<Addr, u64>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reached {reached} of {known} known Sentinels: no majority, so no decision")]
pub(crate) struct NoMajority {
    pub(crate) reached: usize,
    pub(crate) known: usize,
}

/// How long a failover takes once the Sentinels agree the master is down (election,
/// promotion, `+switch-master` everywhere: ~2 s measured here) and how stale a replica's
/// link figure can be (Sentinel asks replicas for INFO every second during a failover),
/// with margin: added to `down-after-milliseconds` for the default read bound.
pub(crate) const FAILOVER_ALLOWANCE: Duration = Duration::from_secs(5);

/// Sentinel pings every instance every second: a master that has not answered for
/// longer is probably gone, although no Sentinel calls it down yet.
const UNANSWERED: Duration = Duration::from_millis(1500);

/// How long a Sentinel must have taken a master for one before its closed link to it
/// (`disconnected`) counts as the master gone. A killed Redis resets every link to it and
/// refuses the reconnections, but a master a Sentinel has just taken (at its
/// `+switch-master`, which makes a new link, or since it started) is `disconnected` too
/// until that link is up: Sentinel reconnects at most once a second, and the leader's
/// `CLIENT KILL` at the promotion has just closed the others' links to it.
const SETTLED_MASTER: Duration = Duration::from_secs(3);

/// Decides from the views of the Sentinels we reached. `configured` are the Sentinels the
/// config names; the known set also includes every Sentinel any view names.
///
/// - primary: the master of the highest `config-epoch` view, unless it is lost: that view
///   says it is objectively down or mid-failover, or a majority of the views say it is
///   subjectively down (no node takes writes until the failover ends);
/// - replica: a replica in that view that is not down or disconnected and which
///   replicates from the primary, whose link to it is up (so it is synced); or, while
///   that master is lost and so nobody takes writes, whose link has been down for less
///   than `read_bound`: its data is the newest there is, it keeps serving reads. Once
///   a new primary may take writes (the leader has sent the replica it promotes
///   `REPLICAOF NO ONE`, or the newest view names that new master), only replicas synced
///   to it keep reads: the others lack what it acknowledges until they resync;
/// - fail: every other Redis any view knows, a returning old master included.
pub(crate) fn decide(
    views: &[SentinelView],
    configured: &[Addr],
    policy: &Policy,
    offsets: &Offsets,
) -> Result<Truth, NoMajority> {
    let Count {
        reached,
        known,
        kept,
    } = count(views, configured);
    if reached * 2 <= known {
        return Err(NoMajority { reached, known });
    }
    // One view per Sentinel: one reached under two addresses says nothing twice.
    let all = views;
    let unique: Vec<SentinelView> = kept.iter().map(|&at| all[at].clone()).collect();
    let views = &unique[..];
    // The failover leader bumps its config-epoch at `+promoted-slave` but names the new
    // master only at its own `+switch-master`, about a second later: until then its view
    // carries the new epoch, the old master's address and `failover_in_progress`. Of
    // views with the same epoch, prefer one that is not mid-failover; a newest view that
    // is mid-failover names no primary.
    let in_failover = |v: &SentinelView| v.master.has_flag("failover_in_progress");
    let (newest_at, newest) = views
        .iter()
        .enumerate()
        .max_by_key(|(_, v)| (v.master.config_epoch, !in_failover(v)))
        .expect("a majority is at least one view");
    let master = newest.master.addr.canonical();
    let bound = match policy.read_bound {
        ReadBound::Auto => {
            newest.master.down_after + newest.master.failover_timeout * 2 + FAILOVER_ALLOWANCE
        }
        ReadBound::Fixed(bound) => bound,
    };
    // Whether a majority of the views say `seen` of this same master.
    let majority = |seen: &dyn Fn(&MasterView) -> bool| {
        let saying = views
            .iter()
            .filter(|v| v.master.addr.canonical() == master && seen(&v.master))
            .count();
        saying * 2 > views.len()
    };
    // The failover leader's view of this master once it has reached the signal the policy
    // promotes at, with the replica it promotes (flagged `promoted`). Before
    // `+promoted-slave` the leader's config-epoch is still everybody's, so look at every
    // view, not only the newest.
    let promoting = views.iter().enumerate().find_map(|(at, v)| {
        // Down: a crash. Not down: a manual `SENTINEL FAILOVER` of a live master, which
        // keeps taking writes until Sentinel converts it: its block is waited for, and
        // the replica is promoted no earlier than `+promoted-slave` (`live_master`).
        let old_down = v.master.has_flag("o_down") || majority(&|m| m.has_flag("s_down"));
        let signal = if old_down {
            policy.promote_at
        } else {
            policy.promote_at.live_master()
        };
        let leading = in_failover(v)
            && v.master.addr.canonical() == master
            && v.master.config_epoch >= newest.master.config_epoch
            && v.master
                .failover_state
                .as_deref()
                .is_some_and(|state| signal.reached_by(state));
        let promoted = v.replicas.iter().find(|r| r.has_flag("promoted"))?;
        leading.then_some((at, v, promoted, old_down))
    });
    if let Some((leader_at, leader, promoted, old_down)) = promoting {
        let (roles, down) = promotion(views, leader, promoted, old_down);
        return Ok(Truth {
            epoch: leader.master.config_epoch,
            roles,
            down,
            reached,
            known,
            newest: kept[leader_at],
            ask_offsets: Vec::new(),
        });
    }
    // Lost: objectively down, mid-failover, or subjectively down for a majority of the
    // Sentinels (each reaches `+odown` on its own, up to a second apart: a majority
    // seeing it down is the same verdict, sooner). Nobody is primary then, and its node
    // need not be waited for: a Redis a majority cannot reach is failed over anyway, and
    // one that still reaches clients is cut off, which the isolation guard closes.
    let master_down = newest.master.has_flag("o_down")
        || in_failover(newest)
        || majority(&|m| m.has_flag("s_down"));
    // Nobody takes writes: lost, or silent for a majority of the Sentinels: no PING
    // answered for over a second and a half, or, for a master they have taken for one a
    // while, their links to it closed (a killed Redis resets them at once and refuses each
    // reconnection). Redis counts a replica's link-down time in whole seconds, so right
    // after a kill a replica's link can read 1 s down against a last PING answer of less
    // (`silent_since_link` below), and a Sentinel that asks a replica for INFO every
    // second (as it does while that replica last reported its link down) sees the broken
    // link long before anyone calls the master down (bench-failover, 2026-12-04: both
    // replicas refused 1.4 s before the first `+sdown`, 28 reads failed).
    let closed = |m: &MasterView| {
        m.has_flag("disconnected") && m.master_for.is_some_and(|t| t >= SETTLED_MASTER)
    };
    let master_gone = master_down || majority(&|m| m.last_ok_ping > UNANSWERED || closed(m));
    // A Sentinel has begun a failover of this live master (`SENTINEL FAILOVER`, its
    // `+try-failover`): it keeps taking writes until Sentinel converts it, and everything
    // it acknowledges after the promotion is discarded then. Its writes are refused from
    // now (its reads stay: its data is the newest there is).
    let failing_over = views.iter().any(|v| {
        in_failover(v)
            && v.master.addr.canonical() == master
            && v.master.config_epoch >= newest.master.config_epoch
    });
    let mut roles = every_redis_fail(views);
    let mut down = BTreeSet::new();
    if master_down {
        down.insert(master.clone());
    } else if failing_over {
        roles.insert(master.clone(), Role::Replica);
    } else {
        roles.insert(master.clone(), Role::Primary);
    }
    // Down for the Sentinels, not merely mid-failover (a manual `SENTINEL FAILOVER` of a
    // live master is waited for at its promotion): the replica the leader will choose
    // can be the primary now. It answers writes with READONLY until it is a master.
    let crashed = newest.master.has_flag("o_down") || majority(&|m| m.has_flag("s_down"));
    let foreseeing = crashed && policy.promote_at == PromoteAt::Foreseen;
    let foreseen = foreseeing
        .then(|| select::agreed(views, &master, offsets))
        .flatten();
    let ask_offsets = if foreseeing && foreseen.is_none() && offsets.is_empty() {
        newest
            .replicas
            .iter()
            .filter(|r| !r.is_down() && !r.has_flag("disconnected"))
            .map(|r| r.addr.canonical())
            .collect()
    } else {
        Vec::new()
    };
    for r in &newest.replicas {
        let addr = r.addr.canonical();
        let r = answered(r, views);
        // Down for the wait: no valid reply for down-after-milliseconds. Not merely
        // `disconnected`: right after `+switch-master` a Sentinel lists the old master,
        // still running and taking writes, as `slave,disconnected` for ~100 ms, until its
        // new link to it is up.
        let is_down = r.is_down();
        if is_down {
            down.insert(addr.clone());
        }
        let follows_master = r.master.as_ref().map(Addr::canonical) == Some(master.clone());
        let synced = !r.has_flag("disconnected") && !master_down && r.link_ok;
        // While nobody takes writes, a replica's data can only be as new as any: that a
        // Sentinel lost its link to it does not matter (the leader's `CLIENT KILL` at
        // the promotion cuts every other Sentinel's link to the promoted replica).
        // The master has not answered a PING (sent every second) since this replica's
        // link broke: it died then, before a majority calls it down or silent, and the
        // replica holds its last write. Redis counts the link's time down in whole
        // seconds, so a replica whose link broke from a live master (which answers
        // within a second) counts so only in that link's first second.
        let silent_since_link = follows_master
            && !r.link_ok
            && !r.has_flag("disconnected")
            && r.link_down <= newest.master.last_ok_ping;
        // Not once another replica is foreseen primary: its write port opens now, and it
        // takes writes as soon as the leader promotes it, which the others lack until
        // they resync from it. Their reads stop before it can take any (the sync waits
        // for their read blocks before it promotes).
        let recent = !bound.is_zero()
            && (master_gone || silent_since_link)
            && (r.link_ok || r.link_down < bound)
            && foreseen.as_ref().is_none_or(|f| *f == addr);
        if !is_down && addr != master && follows_master && (synced || recent) {
            let role = if foreseen.as_ref() == Some(&addr) {
                Role::Primary
            } else {
                Role::Replica
            };
            roles.insert(addr, role);
        }
    }
    Ok(Truth {
        epoch: newest.master.config_epoch,
        roles,
        down,
        reached,
        known,
        newest: kept[newest_at],
        ask_offsets,
    })
}

/// How many Sentinels answered, of how many known, and which views to decide from.
#[derive(Debug, PartialEq, Eq)]
struct Count {
    reached: usize,
    known: usize,
    /// The index of the first view of each Sentinel, in order.
    kept: Vec<usize>,
}

/// A Sentinel as counted: by its id where an answer or a peer list gives one for its
/// address, else by the address (an address nobody vouches for counts as a Sentinel of
/// its own: it can only make a majority harder to reach).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Who<'a> {
    Id(&'a str),
    Address(Addr),
}

/// Counts the Sentinels by id (`SENTINEL MYID`, the peers' `runid`), not by address: one
/// Sentinel configured under three addresses, or reached under one it is announced
/// under and another it is configured under, is one Sentinel, of which the others it
/// knows are as many more. `known` is every Sentinel configured, reached or named by an
/// answer; `reached` those that answered.
fn count(views: &[SentinelView], configured: &[Addr]) -> Count {
    let mut ids: BTreeMap<Addr, &str> = BTreeMap::new();
    for view in views {
        for peer in &view.sentinels {
            if let Some(id) = &peer.id {
                ids.insert(peer.addr.canonical(), id);
            }
        }
    }
    // What a Sentinel says of itself wins over what others remember of that address.
    for view in views {
        if let Some(id) = &view.id {
            ids.insert(view.sentinel.canonical(), id);
        }
    }
    let who = |addr: &Addr| {
        let addr = addr.canonical();
        match ids.get(&addr) {
            Some(id) => Who::Id(id),
            None => Who::Address(addr),
        }
    };
    let mut known: BTreeSet<Who> = configured.iter().map(who).collect();
    let mut reached: BTreeSet<Who> = BTreeSet::new();
    let mut kept = Vec::new();
    for (at, view) in views.iter().enumerate() {
        let me = who(&view.sentinel);
        if reached.insert(me.clone()) {
            kept.push(at);
        }
        known.insert(me);
        for peer in &view.sentinels {
            known.insert(match &peer.id {
                Some(id) => Who::Id(id),
                None => who(&peer.addr),
            });
        }
    }
    Count {
        reached: reached.len(),
        known: known.len(),
        kept,
    }
}

/// The truth once the leader promotes `promoted`: it is the primary. The old master is
/// down unless `old_down` is false (a manual failover: it runs and takes writes until its
/// block is waited for). The other replicas keep their reads once synced to it.
fn promotion(
    views: &[SentinelView],
    leader: &SentinelView,
    promoted: &ReplicaView,
    old_down: bool,
) -> (BTreeMap<Addr, Role>, BTreeSet<Addr>) {
    let mut roles = every_redis_fail(views);
    let mut down = BTreeSet::new();
    let old = leader.master.addr.canonical();
    if old_down {
        down.insert(old.clone());
    }
    let new = promoted.addr.canonical();
    for r in &leader.replicas {
        let addr = r.addr.canonical();
        if r.is_down() {
            down.insert(addr.clone());
        }
        // Only one synced to the new primary: from the leader's `REPLICAOF NO ONE` the
        // promoted replica may take writes, and a replica still following the old master,
        // or reconfigured with its link not up yet, lacks them (for a second or more, until
        // the leader reconfigures it and it resyncs): its reads would be stale.
        let synced = r.master.as_ref().map(Addr::canonical).as_ref() == Some(&new)
            && !r.is_down()
            && !r.has_flag("disconnected")
            && r.link_ok;
        if synced && !r.has_flag("promoted") {
            roles.insert(addr, Role::Replica);
        }
    }
    roles.insert(promoted.addr.canonical(), Role::Primary);
    (roles, down)
}

/// `r` as the newest view lists it, or, when that Sentinel has had no INFO reply from it
/// yet (it made a new entry for every replica at its `+switch-master`, answered ~100 ms
/// later), as the first other view that has one describes it: a synced replica does
/// not lose its reads for the moment a Sentinel needs to meet it again.
fn answered<'a>(r: &'a ReplicaView, views: &'a [SentinelView]) -> &'a ReplicaView {
    if r.master.is_some() {
        return r;
    }
    let addr = r.addr.canonical();
    views
        .iter()
        .flat_map(|v| &v.replicas)
        .find(|o| o.master.is_some() && o.addr.canonical() == addr)
        .unwrap_or(r)
}

/// Every Redis any view knows, each `fail` until the decision says otherwise.
fn every_redis_fail(views: &[SentinelView]) -> BTreeMap<Addr, Role> {
    views
        .iter()
        .flat_map(|v| std::iter::once(&v.master.addr).chain(v.replicas.iter().map(|r| &r.addr)))
        .map(|a| (a.canonical(), Role::Fail))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::PromoteAt;

    use crate::observe::fake::{addr as a, master_view, peer, redis, sentinel, sentinel_id};

    fn replica(n: u8, master: u8, flags: &str, link_ok: bool) -> ReplicaView {
        ReplicaView {
            addr: redis(n),
            flags: flags.split(',').map(String::from).collect(),
            link_ok,
            master: Some(redis(master)),
            repl_offset: Some(100),
            link_down: Duration::ZERO,
            candidacy: Default::default(),
        }
    }

    /// Sentinel `s`'s view: master `m` at `epoch` with these replicas.
    fn view(s: u8, m: u8, epoch: u64, flags: &str, replicas: Vec<ReplicaView>) -> SentinelView {
        SentinelView {
            sentinel: sentinel(s),
            id: Some(sentinel_id(s)),
            master: master_view(m, epoch, flags),
            replicas,
            sentinels: [1, 2, 3]
                .into_iter()
                .filter(|&o| o != s)
                .map(peer)
                .collect(),
        }
    }

    /// `v` as answered at another address (configured or announced twice).
    fn at(host: &str, mut v: SentinelView) -> SentinelView {
        v.sentinel = a(host, 26379);
        v
    }

    #[test]
    fn sentinels_count_by_id_not_by_address() {
        let s = |host: &str| a(host, 26379);
        let alone = |mut v: SentinelView| {
            v.sentinels.clear();
            v
        };
        let no_myid = |mut v: SentinelView| {
            v.id = None;
            v
        };
        let unknown_id = |mut v: SentinelView| {
            v.sentinels.iter_mut().for_each(|p| p.id = None);
            v
        };
        // (case, views, configured, Ok(reached, known) or Err(reached, known))
        type Case = (
            &'static str,
            Vec<SentinelView>,
            Vec<Addr>,
            Result<(usize, usize), (usize, usize)>,
        );
        let table: Vec<Case> = vec![
            (
                "one Sentinel of three under three addresses is one of three",
                vec![
                    healthy(1),
                    at("10.0.1.1", healthy(1)),
                    at("10.0.2.1", healthy(1)),
                ],
                vec![sentinel(1), s("10.0.1.1"), s("10.0.2.1")],
                Err((1, 3)),
            ),
            (
                "a lone Sentinel under two addresses is a majority of one",
                vec![alone(healthy(1)), at("10.0.1.1", alone(healthy(1)))],
                vec![sentinel(1), s("10.0.1.1")],
                Ok((1, 1)),
            ),
            (
                "two of three, one of them also reached under an alias",
                vec![healthy(1), at("10.0.1.1", healthy(1)), healthy(2)],
                vec![sentinel(1), s("10.0.1.1"), sentinel(2)],
                Ok((2, 3)),
            ),
            (
                "configured under an alias, announced under its own address: once",
                vec![healthy(1), at("10.0.2.2", healthy(2))],
                vec![sentinel(1), s("10.0.2.2")],
                Ok((2, 3)),
            ),
            (
                "a configured address nobody vouches for counts as one more",
                vec![healthy(1), healthy(2)],
                vec![sentinel(1), sentinel(2), sentinel(3), s("10.0.9.9")],
                Err((2, 4)),
            ),
            (
                "a peer without an id counts by its address",
                vec![unknown_id(healthy(1)), healthy(2)],
                vec![sentinel(1), sentinel(2)],
                Ok((2, 3)),
            ),
            (
                "one that refuses SENTINEL MYID (an older ACL) is named by its peers",
                vec![no_myid(healthy(1)), healthy(2), no_myid(healthy(3))],
                vec![sentinel(1), sentinel(2), sentinel(3)],
                Ok((3, 3)),
            ),
            (
                "refusing it, under three unvouched addresses: three (the defence needs MYID)",
                vec![
                    no_myid(healthy(1)),
                    at("10.0.1.1", no_myid(healthy(1))),
                    at("10.0.2.1", no_myid(healthy(1))),
                ],
                vec![sentinel(1), s("10.0.1.1"), s("10.0.2.1")],
                Ok((3, 5)),
            ),
        ];
        for (case, views, configured, want) in table {
            let got = decide_auto(&views, &configured)
                .map(|t| (t.reached, t.known))
                .map_err(|e| (e.reached, e.known));
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn the_newest_view_is_named_in_the_answers_as_given() {
        // The first two answers are one Sentinel's: the decision names the third view.
        let newer = view(2, 2, 5, "master", vec![replica(1, 2, "slave", true)]);
        let views = [healthy(1), at("10.0.1.1", healthy(1)), newer];
        let t = decide_auto(&views, &[sentinel(1)]).unwrap();
        assert_eq!(t.newest, 2);
        assert_eq!(t.epoch, 5);
    }

    fn healthy(s: u8) -> SentinelView {
        view(
            s,
            1,
            0,
            "master",
            vec![replica(2, 1, "slave", true), replica(3, 1, "slave", true)],
        )
    }

    fn decide_auto(views: &[SentinelView], configured: &[Addr]) -> Result<Truth, NoMajority> {
        decide(views, configured, &Policy::default(), &Offsets::new())
    }

    fn roles(t: &Truth) -> Vec<(String, Role)> {
        t.roles.iter().map(|(a, r)| (a.host.clone(), *r)).collect()
    }

    use Role::*;

    #[test]
    fn healthy_set_is_one_primary_and_synced_replicas() {
        let t = decide_auto(&[healthy(1), healthy(2)], &[sentinel(1)]).unwrap();
        assert_eq!(
            roles(&t),
            [
                ("10.0.0.1".into(), Primary),
                ("10.0.0.2".into(), Replica),
                ("10.0.0.3".into(), Replica)
            ]
        );
    }

    #[test]
    fn a_majority_of_known_sentinels_is_needed() {
        let err = decide_auto(&[healthy(1)], &[sentinel(1)]).unwrap_err();
        assert_eq!(
            err,
            NoMajority {
                reached: 1,
                known: 3
            }
        );
        assert!(decide_auto(&[], &[sentinel(1)]).is_err());
        // Two of three: enough.
        assert!(decide_auto(&[healthy(1), healthy(3)], &[]).is_ok());
    }

    #[test]
    fn the_newest_epoch_wins_over_a_stale_view() {
        let new = view(
            2,
            2,
            5,
            "master",
            vec![
                replica(1, 2, "slave,s_down,disconnected", false),
                replica(3, 2, "slave", true),
            ],
        );
        let t = decide_auto(&[healthy(1), new], &[]).unwrap();
        assert_eq!(t.epoch, 5);
        assert_eq!(
            roles(&t),
            [
                ("10.0.0.1".into(), Fail),
                ("10.0.0.2".into(), Primary),
                ("10.0.0.3".into(), Replica)
            ]
        );
        assert!(t.down.contains(&redis(1)));
    }

    #[test]
    fn replicas_count_only_when_synced_up_and_following_the_primary() {
        // Its link down for 3 s while the master answers: not synced.
        let link_down = ReplicaView {
            link_down: Duration::from_secs(3),
            ..replica(2, 1, "slave", false)
        };
        let table = [
            (replica(2, 1, "slave", true), Replica),
            (link_down, Fail),
            (replica(2, 1, "slave,s_down", true), Fail),
            (replica(2, 1, "slave,disconnected", true), Fail),
            (replica(2, 3, "slave", true), Fail), // follows someone else
        ];
        for (r, want) in table {
            let v = view(1, 1, 0, "master", vec![r.clone()]);
            let t =
                decide_auto(&[v.clone(), view(2, 1, 0, "master", vec![r.clone()])], &[]).unwrap();
            assert_eq!(t.roles[&redis(2)], want, "{r:?}");
        }
    }

    #[test]
    fn the_leader_mid_failover_names_no_primary() {
        // Between +promoted-slave and its own +switch-master the leader (Sentinel 1) has
        // epoch 1 but still the dead old master 1; Sentinels 2 and 3 switched to 3.
        let leader = view(
            1,
            1,
            1,
            "master,failover_in_progress",
            vec![
                replica(2, 1, "slave", false),
                replica(3, 1, "slave,promoted", false),
            ],
        );
        let switched = |s| {
            view(
                s,
                3,
                1,
                "master",
                vec![
                    replica(1, 3, "slave,s_down,disconnected", false),
                    replica(2, 3, "slave", true),
                ],
            )
        };
        for views in [
            vec![leader.clone(), switched(2), switched(3)],
            vec![switched(2), switched(3), leader.clone()],
        ] {
            let t = decide_auto(&views, &[]).unwrap();
            assert_eq!(t.roles[&redis(3)], Primary, "{views:?}");
            assert_eq!(t.roles[&redis(1)], Fail);
        }
        // Only the leader has the new epoch: nobody is primary until the others follow.
        let t = decide_auto(&[leader, healthy(2)], &[]).unwrap();
        assert!(!t.roles.values().any(|r| *r == Primary), "{t:?}");
    }

    #[test]
    fn a_relisted_old_master_is_fail_but_not_down() {
        // Just after `+switch-master`: the old master, alive, listed `slave,disconnected`.
        let v = |s| {
            view(
                s,
                2,
                1,
                "master",
                vec![
                    ReplicaView {
                        link_down: Duration::MAX,
                        ..replica(1, 2, "slave,disconnected", false)
                    },
                    replica(3, 2, "slave", true),
                ],
            )
        };
        let t = decide_auto(&[v(1), v(2)], &[]).unwrap();
        assert_eq!(t.roles[&redis(1)], Fail);
        assert!(!t.down.contains(&redis(1)), "its block must be waited for");
        let dead = |s| {
            view(
                s,
                2,
                1,
                "master",
                vec![replica(1, 2, "slave,s_down,disconnected", false)],
            )
        };
        let t = decide_auto(&[dead(1), dead(2)], &[]).unwrap();
        assert!(t.down.contains(&redis(1)));
    }

    #[test]
    fn an_objectively_down_master_is_nobody_primary() {
        let down = |s| {
            view(
                s,
                1,
                0,
                "master,s_down,o_down",
                vec![replica(2, 1, "slave", false)],
            )
        };
        let t = decide_auto(&[down(1), down(2)], &[]).unwrap();
        assert!(!t.roles.values().any(|r| *r == Primary), "{t:?}");
        assert!(t.down.contains(&redis(1)));
        // Subjectively down alone (this Sentinel's own view) does not demote it.
        let sdown = view(1, 1, 0, "master,s_down", vec![replica(2, 1, "slave", true)]);
        let t = decide_auto(&[sdown, healthy(2)], &[]).unwrap();
        assert_eq!(t.roles[&redis(1)], Primary);
    }

    #[test]
    fn addresses_compare_canonically() {
        let v6 = |s| {
            let mut v = healthy(s);
            v.master.addr = a("FD00::0001", 6379);
            for r in &mut v.replicas {
                r.master = Some(a("fd00::1", 6379));
            }
            v
        };
        let t = decide_auto(&[v6(1), v6(2)], &[]).unwrap();
        assert_eq!(t.roles[&a("fd00::1", 6379)], Primary);
        assert_eq!(t.roles[&redis(2)], Replica);
    }

    /// A replica of master 1 whose link has been down for `secs`.
    fn lost_link(n: u8, secs: u64) -> ReplicaView {
        ReplicaView {
            link_down: Duration::from_secs(secs),
            ..replica(n, 1, "slave", false)
        }
    }

    #[test]
    fn replicas_of_a_lost_master_keep_reads_within_the_bound() {
        let odown = "master,s_down,o_down";
        let failover = "master,s_down,o_down,failover_in_progress";
        // (case, master's flags in all three views, replica 2, bound, replica 2's role)
        let table = [
            (
                "o_down, link down 3 s",
                odown,
                lost_link(2, 3),
                ReadBound::Auto,
                Replica,
            ),
            (
                "mid-failover",
                failover,
                lost_link(2, 3),
                ReadBound::Auto,
                Replica,
            ),
            (
                "Sentinel still has its INFO from before",
                odown,
                replica(2, 1, "slave", true),
                ReadBound::Auto,
                Replica,
            ),
            (
                "a split election's retry (2 x failover-timeout) not yet come",
                odown,
                lost_link(2, 24),
                ReadBound::Auto,
                Replica,
            ),
            (
                "past down-after + 2 x failover-timeout + allowance (2 + 20 + 5 s)",
                odown,
                lost_link(2, 28),
                ReadBound::Auto,
                Fail,
            ),
            (
                "a shorter bound configured",
                odown,
                lost_link(2, 8),
                ReadBound::Fixed(Duration::from_secs(7)),
                Fail,
            ),
            (
                "a longer bound configured",
                odown,
                lost_link(2, 28),
                ReadBound::Fixed(Duration::from_secs(30)),
                Replica,
            ),
            (
                "off: reads stop with the master",
                odown,
                replica(2, 1, "slave", true),
                ReadBound::Fixed(Duration::ZERO),
                Fail,
            ),
            (
                "the replica is down itself",
                odown,
                replica(2, 1, "slave,s_down", false),
                ReadBound::Auto,
                Fail,
            ),
            (
                "Sentinel lost its link to the replica (CLIENT KILL at a promotion)",
                odown,
                replica(2, 1, "slave,disconnected", false),
                ReadBound::Auto,
                Replica,
            ),
            (
                "it follows another master",
                odown,
                replica(2, 3, "slave", false),
                ReadBound::Auto,
                Fail,
            ),
            (
                "cut off from a live primary",
                "master",
                lost_link(2, 1),
                ReadBound::Auto,
                Fail,
            ),
        ];
        for (case, flags, r, bound, want) in table {
            let views: Vec<SentinelView> = (1..=3)
                .map(|s| view(s, 1, 0, flags, vec![r.clone()]))
                .collect();
            let t = decide(
                &views,
                &[],
                &Policy {
                    read_bound: bound,
                    ..Policy::default()
                },
                &Offsets::new(),
            )
            .unwrap();
            assert_eq!(t.roles[&redis(2)], want, "{case}");
            let master = if flags.contains("o_down") {
                Fail
            } else {
                Primary
            };
            assert_eq!(t.roles[&redis(1)], master, "{case}: {t:?}");
        }
    }

    #[test]
    fn a_replica_keeps_reads_while_the_master_has_not_answered_since_its_link_broke() {
        // Before any Sentinel calls the master down: Sentinel's INFO says the replica's
        // link is down (Redis counts whole seconds), the master's last PING answer is
        // `silent` old.
        let case = |silent_ms: u64, link_down_ms: u64, flags: &str| {
            let r = ReplicaView {
                link_down: Duration::from_millis(link_down_ms),
                ..replica(2, 1, flags, false)
            };
            let v = |s| {
                let mut v = view(s, 1, 0, "master", vec![r.clone()]);
                v.master.last_ok_ping = Duration::from_millis(silent_ms);
                v
            };
            decide_auto(&[v(1), v(2), v(3)], &[]).unwrap().roles[&redis(2)]
        };
        assert_eq!(
            case(700, 0, "slave"),
            Replica,
            "the master died with the link"
        );
        assert_eq!(case(2400, 2000, "slave"), Replica, "still silent since");
        assert_eq!(
            case(300, 1000, "slave"),
            Fail,
            "the master answers: cut off"
        );
        assert_eq!(case(700, 0, "slave,disconnected"), Fail, "stale INFO of it");
    }

    #[test]
    fn a_replica_keeps_reads_once_a_majority_lost_the_link_to_a_killed_master() {
        // 0.7 s after the kill: the replica's link reads 1 s down (whole seconds), the
        // master's last PING answer is 750 ms old, and `closed` of the Sentinels' links to
        // it are closed, to a master they have taken for one for `master_for`.
        let r = ReplicaView {
            link_down: Duration::from_secs(1),
            ..replica(2, 1, "slave", false)
        };
        let case = |closed: u8, master_for: Option<Duration>| {
            let views: Vec<SentinelView> = (1..=3)
                .map(|s| {
                    let flags = if s <= closed {
                        "master,disconnected"
                    } else {
                        "master"
                    };
                    let mut v = view(s, 1, 0, flags, vec![r.clone()]);
                    v.master.last_ok_ping = Duration::from_millis(750);
                    v.master.master_for = master_for;
                    v
                })
                .collect();
            decide_auto(&views, &[]).unwrap().roles[&redis(2)]
        };
        let long = Some(Duration::from_secs(100));
        assert_eq!(case(3, long), Replica, "every Sentinel lost its link");
        assert_eq!(case(2, long), Replica, "a majority did");
        assert_eq!(case(1, long), Fail, "one Sentinel's link is no verdict");
        assert_eq!(case(0, long), Fail, "cut off from a live master");
        // Just switched to it (`redis-ha switchover`, drill 2): the leader's `CLIENT KILL`
        // closed the others' links, and their new ones are not up yet. The master is
        // alive and the replica re-pointed to it lacks what it takes.
        let fresh = Some(Duration::from_millis(150));
        assert_eq!(case(3, fresh), Fail, "a new master's links not up yet");
        assert_eq!(
            case(3, Some(SETTLED_MASTER)),
            Replica,
            "taken for one long enough"
        );
        assert_eq!(
            case(3, None),
            Fail,
            "no role-reported-time: not known how long"
        );
    }

    #[test]
    fn a_master_down_for_a_majority_of_the_sentinels_is_lost() {
        // Before each Sentinel's own `+odown`: two of three see the master subjectively
        // down. Nobody is primary, its node is not waited for, and its replica keeps
        // serving reads although Sentinel's fresh INFO says its link is down.
        let sdown = |s| view(s, 1, 0, "master,s_down", vec![lost_link(2, 1)]);
        let up = |s| view(s, 1, 0, "master", vec![lost_link(2, 1)]);
        let t = decide_auto(&[sdown(1), sdown(2), up(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(1)], Fail);
        assert!(t.down.contains(&redis(1)));
        assert_eq!(t.roles[&redis(2)], Replica);
        // One of three: the master stays, and the replica may be the one cut off.
        let t = decide_auto(&[sdown(1), up(2), up(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(1)], Primary);
        assert_eq!(t.roles[&redis(2)], Fail);
    }

    #[test]
    fn after_the_switch_only_a_replica_synced_to_the_new_primary_serves() {
        // Node 2 was promoted and the old master 1 is listed as its replica; node 3
        // still follows 1, not reconfigured yet: its data is 1's last write, and 2 takes
        // writes it lacks. No reads until it has resynced from 2.
        let after = |three: ReplicaView, bound: ReadBound| {
            let v = |s| {
                view(
                    s,
                    2,
                    1,
                    "master",
                    vec![
                        replica(1, 2, "slave,s_down,disconnected", false),
                        three.clone(),
                    ],
                )
            };
            let policy = Policy {
                read_bound: bound,
                ..Policy::default()
            };
            let t = decide(&[v(1), v(2), v(3)], &[], &policy, &Offsets::new()).unwrap();
            assert_eq!(t.roles[&redis(1)], Fail);
            assert_eq!(t.roles[&redis(2)], Primary);
            t.roles[&redis(3)]
        };
        // (case, node 3 as the new view lists it, the bound, its role)
        let table = [
            ("link down 3 s", lost_link(3, 3), ReadBound::Auto, Fail),
            (
                "past down-after + 2 x failover-timeout + allowance",
                lost_link(3, 28),
                ReadBound::Auto,
                Fail,
            ),
            (
                "off: reads stop with the master",
                lost_link(3, 3),
                ReadBound::Fixed(Duration::ZERO),
                Fail,
            ),
            (
                "link up to the old master: resynced from it, perhaps empty",
                replica(3, 1, "slave", true),
                ReadBound::Auto,
                Fail,
            ),
            (
                "down itself",
                ReplicaView {
                    flags: vec!["slave".into(), "s_down".into()],
                    ..lost_link(3, 3)
                },
                ReadBound::Auto,
                Fail,
            ),
            (
                "reconfigured, link to the new primary not up yet",
                ReplicaView {
                    link_down: Duration::from_secs(3),
                    ..replica(3, 2, "slave", false)
                },
                ReadBound::Auto,
                Fail,
            ),
            (
                "reconfigured, link to the new primary up",
                replica(3, 2, "slave", true),
                ReadBound::Auto,
                Replica,
            ),
        ];
        for (case, three, bound, want) in table {
            assert_eq!(after(three, bound), want, "{case}");
        }
    }

    #[test]
    fn a_replica_the_leader_reconfigured_serves_once_synced_before_any_sentinel_switched() {
        // The leader (Sentinel 2) is in reconf_slaves at epoch 1, the others still at
        // epoch 0; replica 3 has been reconfigured to the promoted 2.
        let with = |three: ReplicaView| {
            let mut leader = view(
                2,
                1,
                1,
                "master,s_down,o_down,failover_in_progress",
                vec![replica(2, 1, "slave,promoted", false), three],
            );
            leader.master.failover_state = Some("reconf_slaves".into());
            let old = |s| view(s, 1, 0, "master,s_down,o_down", vec![lost_link(2, 3)]);
            decide_auto(&[old(1), leader, old(3)], &[]).unwrap().roles[&redis(3)]
        };
        assert_eq!(
            with(replica(3, 2, "slave", true)),
            Replica,
            "synced to the new one"
        );
        let linking = ReplicaView {
            link_down: Duration::from_secs(3),
            ..replica(3, 2, "slave", false)
        };
        assert_eq!(
            with(linking),
            Fail,
            "its link not up yet: it lacks what 2 took since its promotion"
        );
        let never = ReplicaView {
            link_down: Duration::MAX,
            ..replica(3, 2, "slave", false)
        };
        assert_eq!(with(never), Fail, "a restarted one, never linked since");
    }

    #[test]
    fn a_replica_reconfigured_to_the_new_primary_has_no_reads_until_its_link_is_up() {
        // The leader has sent replica 3 `REPLICAOF` the new primary 2, and its INFO of 3
        // came before the link was up (down since the crash, 3.4 s); Sentinels 2 and 3
        // switched 150 ms ago and have not met 3 again. 2 takes writes 3 lacks.
        let reconfigured = ReplicaView {
            link_down: Duration::from_millis(3400),
            ..replica(3, 2, "slave", false)
        };
        let fresh = |n: u8| ReplicaView {
            master: None,
            ..replica(n, 2, "slave,disconnected", false)
        };
        let switched = |s| {
            let mut v = view(s, 2, 1, "master", vec![fresh(1), fresh(3)]);
            v.master.master_for = Some(Duration::from_millis(150));
            v
        };
        let mut leader = view(
            1,
            1,
            1,
            "master,s_down,o_down,failover_in_progress",
            vec![replica(2, 1, "slave,promoted", false), reconfigured.clone()],
        );
        leader.master.failover_state = Some("reconf_slaves".into());
        let t = decide_auto(&[leader.clone(), switched(2), switched(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(2)], Primary, "{t:?}");
        assert_eq!(t.roles[&redis(3)], Fail, "{t:?}");
        // Its link up: synced, it serves.
        leader.replicas[1] = replica(3, 2, "slave", true);
        let t = decide_auto(&[leader, switched(2), switched(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(3)], Replica, "{t:?}");
        // A replica cut off from a primary of long standing is refused as before.
        let long = |s| {
            let mut v = view(s, 2, 1, "master", vec![reconfigured.clone()]);
            v.master.master_for = Some(Duration::from_secs(100));
            v
        };
        let t = decide_auto(&[long(1), long(2), long(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(3)], Fail);
    }

    #[test]
    fn a_replica_a_switched_sentinel_has_not_met_yet_keeps_what_another_says() {
        // Sentinels 2 and 3 just switched to master 2 and made new entries for its
        // replicas: no INFO from them yet (`master-host ?`). The leader (Sentinel 1) is
        // still at its old epoch and has reconfigured replica 3, which is up on 2.
        let fresh = |n: u8| ReplicaView {
            master: None,
            ..replica(n, 2, "slave,disconnected", false)
        };
        let switched = |s| view(s, 2, 1, "master", vec![fresh(1), fresh(3)]);
        let mut leader = view(
            1,
            1,
            0,
            "master,s_down,o_down,failover_in_progress",
            vec![
                replica(2, 1, "slave,promoted", false),
                replica(3, 2, "slave", true),
            ],
        );
        leader.master.failover_state = Some("reconf_slaves".into());
        let t = decide_auto(&[leader.clone(), switched(2), switched(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(2)], Primary);
        assert_eq!(t.roles[&redis(3)], Replica, "{t:?}");
        assert_eq!(t.roles[&redis(1)], Fail);
        // Nobody has met it: unknown, so no reads.
        let t = decide_auto(&[switched(2), switched(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(3)], Fail);
        // What another view says of its link counts, not only that it answered: one
        // that followed the old master with its link up may have resynced from it.
        leader.replicas[1] = replica(3, 1, "slave", true);
        let t = decide_auto(&[leader, switched(2), switched(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(3)], Fail);
    }

    #[test]
    fn the_promoted_replica_is_primary_from_the_signal_the_policy_names() {
        // Sentinel 3 leads the failover of dead master 1 and promotes replica 3; the
        // others still see master 1 down at epoch 0. The leader's epoch moves to 1 at
        // +promoted-slave (failover-state reconf_slaves).
        let leader = |state: &str| {
            let epoch = u64::from(matches!(state, "reconf_slaves" | "update_config"));
            let promoted = if state == "select_slave" {
                "slave"
            } else {
                "slave,promoted"
            };
            let mut v = view(
                3,
                1,
                epoch,
                "master,s_down,o_down,failover_in_progress",
                vec![lost_link(2, 2), replica(3, 1, promoted, false)],
            );
            v.master.failover_state = Some(state.into());
            v
        };
        let others = |s| {
            view(
                s,
                1,
                0,
                "master,s_down,o_down",
                vec![lost_link(2, 2), lost_link(3, 2)],
            )
        };
        let at = |promote_at| Policy {
            promote_at,
            ..Policy::default()
        };
        use PromoteAt::*;
        // (leader's failover-state, policy, replica 3's role); replica 2, left behind on
        // the dead master, keeps its reads until 3 may take writes.
        let table = [
            ("select_slave", at(SelectedSlave), Replica),
            ("send_slaveof_noone", at(SelectedSlave), Primary),
            ("wait_promotion", at(SelectedSlave), Primary),
            ("reconf_slaves", at(SelectedSlave), Primary),
            ("update_config", at(SelectedSlave), Primary),
            ("wait_promotion", at(PromotedSlave), Replica),
            ("reconf_slaves", at(PromotedSlave), Primary),
            ("update_config", at(PromotedSlave), Primary),
            ("wait_promotion", at(SwitchMaster), Replica),
            ("reconf_slaves", at(SwitchMaster), Replica),
        ];
        for (state, policy, three) in table {
            for views in [
                [others(1), others(2), leader(state)],
                [leader(state), others(1), others(2)],
            ] {
                let t = decide(&views, &[], &policy, &Offsets::new()).unwrap();
                let case = format!("{state} {:?}", policy.promote_at);
                assert_eq!(t.roles[&redis(3)], three, "{case}");
                let two = if three == Primary { Fail } else { Replica };
                assert_eq!(t.roles[&redis(2)], two, "{case}: left behind");
                assert_eq!(t.roles[&redis(1)], Fail, "{case}");
                assert!(
                    t.down.contains(&redis(1)),
                    "{case}: the dead old master is not waited for"
                );
            }
        }
        // Promoted: the leader's epoch, which the first +switch-master repeats.
        let t = decide(
            &[others(1), others(2), leader("reconf_slaves")],
            &[],
            &Policy::default(),
            &Offsets::new(),
        )
        .unwrap();
        assert_eq!(t.epoch, 1);
        // Not a majority's: a view that only one Sentinel of three reached is no decision.
        assert!(
            decide(
                &[leader("wait_promotion")],
                &[],
                &Policy::default(),
                &Offsets::new()
            )
            .is_err()
        );
    }

    #[test]
    fn a_manual_failover_waits_for_the_live_old_masters_block() {
        // `SENTINEL FAILOVER`: master 1 is up and takes writes; Sentinel 1 leads, has
        // sent replica 2 REPLICAOF NO ONE. Until the leader has seen replica 2 answer as
        // a master (`+promoted-slave`, `reconf_slaves`) another Sentinel may still turn
        // it back, whatever the policy: nobody takes writes, and the old master's are
        // refused. Then replica 2 is the primary, but the old master is not down: its
        // node's write block must be running before the promotion.
        let leader = |state: &str| {
            let mut v = view(
                1,
                1,
                0,
                "master,failover_in_progress",
                vec![
                    replica(2, 1, "slave,promoted", true),
                    replica(3, 1, "slave", true),
                ],
            );
            v.master.failover_state = Some(state.into());
            v
        };
        for promote_at in [PromoteAt::Foreseen, PromoteAt::SelectedSlave] {
            let policy = Policy {
                promote_at,
                ..Policy::default()
            };
            for state in ["send_slaveof_noone", "wait_promotion"] {
                let views = [leader(state), healthy(2), healthy(3)];
                let t = decide(&views, &[], &policy, &Offsets::new()).unwrap();
                let case = format!("{state} {promote_at:?}");
                assert_eq!(t.roles[&redis(2)], Replica, "{case}");
                assert_eq!(t.roles[&redis(1)], Replica, "{case}: writes refused");
            }
        }
        let t = decide_auto(&[leader("reconf_slaves"), healthy(2), healthy(3)], &[]).unwrap();
        assert_eq!(t.roles[&redis(2)], Primary);
        assert_eq!(t.roles[&redis(1)], Fail);
        assert!(!t.down.contains(&redis(1)), "{t:?}");
        // Replica 3 still follows the live old master with its link up: its reads stop
        // until it follows the new primary (it could not be told from one resynced from
        // a returning old master).
        assert_eq!(t.roles[&redis(3)], Fail);
    }

    #[test]
    fn a_master_silent_for_a_majority_keeps_its_replicas_reads_before_any_sdown() {
        // The master died 1.8 s ago: no Sentinel calls it down yet (down-after 2 s), but
        // none had a PING answered since, and Sentinel's fresh INFO of the replica says
        // its link is down. It stays the primary (nothing is decided yet) and its replica
        // keeps serving reads; a replica cut off from a master that answers is refused.
        let silent = |s, ping: u64| {
            let mut v = view(s, 1, 0, "master", vec![lost_link(2, 1)]);
            v.master.last_ok_ping = Duration::from_millis(ping);
            v
        };
        let t = decide_auto(&[silent(1, 1800), silent(2, 1700), silent(3, 400)], &[]).unwrap();
        assert_eq!(t.roles[&redis(1)], Primary);
        assert_eq!(t.roles[&redis(2)], Replica);
        let t = decide_auto(&[silent(1, 1800), silent(2, 300), silent(3, 400)], &[]).unwrap();
        assert_eq!(
            t.roles[&redis(2)],
            Fail,
            "one Sentinel's silence is not enough"
        );
    }
}

#[cfg(test)]
mod foreseen {
    use std::time::Duration;

    use super::*;
    use crate::observe::fake::{candidate, master1_view, redis};
    use Role::*;

    /// Sentinel `s`'s view of master 1 with `flags`, replica 3 ahead of replica 2.
    fn view(s: u8, flags: &str) -> SentinelView {
        let replica = |n: u8, offset| candidate(n, 100, offset, &format!("run{n}"));
        master1_view(s, flags, vec![replica(2, 10), replica(3, 20)])
    }

    fn roles(views: &[SentinelView], promote_at: PromoteAt) -> [Role; 3] {
        let policy = Policy {
            promote_at,
            ..Policy::default()
        };
        let t = decide(views, &[], &policy, &Offsets::new()).unwrap();
        [1, 2, 3].map(|n| t.roles[&redis(n)])
    }

    #[test]
    fn a_crashed_masters_successor_is_the_primary_before_the_leader_picks_it() {
        let odown = "master,s_down,o_down";
        let all = |flags| [view(1, flags), view(2, flags), view(3, flags)];
        // (case, views, promote_at, roles of Redis 1, 2, 3); the replica not foreseen
        // loses its reads with the foreseen one's write port opening.
        let table = [
            (
                "o_down: the highest offset (3) is foreseen",
                all(odown).to_vec(),
                PromoteAt::Foreseen,
                [Fail, Fail, Primary],
            ),
            (
                "s_down at a majority, before o_down",
                vec![
                    view(1, "master,s_down"),
                    view(2, "master,s_down"),
                    view(3, "master"),
                ],
                PromoteAt::Foreseen,
                [Fail, Fail, Primary],
            ),
            (
                "another setting waits for the leader",
                all(odown).to_vec(),
                PromoteAt::SelectedSlave,
                [Fail, Replica, Replica],
            ),
            (
                "a manual failover of a live master: no",
                all("master,failover_in_progress").to_vec(),
                PromoteAt::Foreseen,
                [Fail, Replica, Replica],
            ),
            (
                "s_down at one Sentinel only: nothing is lost",
                vec![
                    view(1, "master,s_down"),
                    view(2, "master"),
                    view(3, "master"),
                ],
                PromoteAt::Foreseen,
                [Primary, Fail, Fail],
            ),
        ];
        for (case, views, promote_at, want) in table {
            assert_eq!(roles(&views, promote_at), want, "{case}");
        }
    }

    #[test]
    fn stale_views_ask_the_replicas_own_offsets() {
        let stale = |s| {
            let mut v = view(s, "master,s_down,o_down");
            for r in &mut v.replicas {
                r.candidacy.info_age = Some(Duration::from_secs(4));
            }
            v
        };
        let views = [stale(1), stale(2), stale(3)];
        let policy = Policy::default();
        let t = decide(&views, &[], &policy, &Offsets::new()).unwrap();
        assert_eq!(t.ask_offsets, [redis(2), redis(3)]);
        assert_eq!(t.roles[&redis(3)], Replica, "not foreseen yet");
        // Equal offsets: the lower run id.
        let asked: Offsets = [(redis(2), 30), (redis(3), 30)].into();
        let t = decide(&views, &[], &policy, &asked).unwrap();
        assert_eq!([t.roles[&redis(2)], t.roles[&redis(3)]], [Primary, Fail]);
        assert!(t.ask_offsets.is_empty());
        // Fresh views need no asking.
        let fresh = [1, 2, 3].map(|s| view(s, "master,s_down,o_down"));
        let t = decide(&fresh, &[], &policy, &Offsets::new()).unwrap();
        assert!(t.ask_offsets.is_empty());
        assert_eq!(t.roles[&redis(3)], Primary);
    }

    #[test]
    fn a_live_master_loses_its_writes_when_a_sentinel_begins_to_fail_it_over() {
        let mut leader = view(1, "master,failover_in_progress");
        leader.master.failover_state = Some("select_slave".into());
        let synced = |s| {
            let mut v = view(s, "master");
            for r in &mut v.replicas {
                r.link_ok = true;
                r.link_down = Duration::ZERO;
            }
            v
        };
        let mut leading = synced(1);
        leading.master = leader.master;
        let views = [leading, synced(2), synced(3)];
        assert_eq!(
            roles(&views, PromoteAt::Foreseen),
            [Replica, Replica, Replica],
            "no node takes writes; every node keeps its reads"
        );
        assert!(
            decide(&views, &[], &Policy::default(), &Offsets::new())
                .unwrap()
                .down
                .is_empty(),
            "the live master's block is waited for"
        );
        assert_eq!(
            roles(&[synced(1), synced(2), synced(3)], PromoteAt::Foreseen),
            [Primary, Replica, Replica]
        );
    }

    #[test]
    fn the_leaders_own_choice_wins_over_what_was_foreseen() {
        let mut leader = view(1, "master,s_down,o_down,failover_in_progress");
        leader.master.failover_state = Some("wait_promotion".into());
        leader.replicas[0].flags.push("promoted".into());
        let views = [
            leader,
            view(2, "master,s_down,o_down"),
            view(3, "master,s_down,o_down"),
        ];
        assert_eq!(
            roles(&views, PromoteAt::Foreseen),
            [Fail, Primary, Fail],
            "replica 3 was foreseen; the leader promotes 2 (3 lacks what 2 takes from now)"
        );
    }
}
